//! bfloat16: the upper half of an f32 (8 exponent bits, bias 127, 7 mantissa bits),
//! IEEE Inf/NaN, max ≈ 3.39e38, epsilon 2^-7.

use super::codec::{Layout, Overflow, Special, encode};
use super::{Element, Precision};
pub use half::bf16;
#[cfg(target_arch = "x86_64")]
use half::slice::HalfFloatSliceExt;

pub const LAYOUT: Layout = Layout { exp_bits: 8, man_bits: 7, bias: 127, special: Special::Ieee };

/// f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
#[inline(always)]
pub(crate) fn encode_f32(x: f32, overflow: Overflow) -> u16 {
    let bits = x.to_bits();
    let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
    let nan = ((bits >> 16) as u16) | 0x0040;
    let abs = bits & 0x7fff_ffff;
    let code = if abs > 0x7f80_0000 { nan } else { rounded };
    // Saturation: a result that became (or was) ±Inf is clamped to ±max.
    let is_inf = code & 0x7fff == 0x7f80;
    if overflow == Overflow::Saturate && is_inf { (code & 0x8000) | 0x7f7f } else { code }
}

/// The portable rounding of a slice (vectorised by the compiler): what the x86 path
/// leaves, and everything on other CPUs.
pub(crate) fn from_f32_scalar(src: &[f32], dst: &mut [bf16], overflow: Overflow) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16::from_bits(encode_f32(s, overflow));
    }
}

impl super::private::Sealed for bf16 {}
impl Element for bf16 {
    const PRECISION: Precision = Precision::Bf16;
    type Acc = f32;
    fn from_f64(x: f64, overflow: Overflow) -> Self {
        bf16::from_bits(encode(&LAYOUT, x, overflow) as u16)
    }
    fn to_f64(self) -> f64 {
        // Exact: a bf16 is the upper half of an f32.
        f64::from(f32::from_bits((self.to_bits() as u32) << 16))
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self], overflow: Overflow) {
        assert_eq!(src.len(), dst.len());
        #[cfg(target_arch = "x86_64")]
        let done = super::x86::bf16_from_f32(src, dst.reinterpret_cast_mut(), overflow);
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        from_f32_scalar(&src[done..], &mut dst[done..], overflow);
    }
    fn from_acc_slice(src: &[f32], dst: &mut [Self], overflow: Overflow) {
        Self::from_f32_slice(src, dst, overflow);
    }
    fn to_acc_slice(src: &[Self], dst: &mut [f32]) {
        Self::to_f32_slice(src, dst);
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len());
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f32::from_bits((s.to_bits() as u32) << 16);
        }
    }
}
