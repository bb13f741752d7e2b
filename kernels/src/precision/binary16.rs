//! IEEE 754 binary16: 5 exponent bits, bias 15, 10 mantissa bits, max 65504,
//! min normal 2^-14, min subnormal 2^-24, epsilon 2^-10.
//! Decoding uses F16C through the `half` crate, rounding F16C's `vcvtps2ph` (module `x86`),
//! both detected at run time.

use super::codec::{Layout, Overflow, Special, encode};
use super::{Element, Precision, minifloat};
pub use half::f16;
use half::slice::HalfFloatSliceExt;

pub const LAYOUT: Layout = Layout { exp_bits: 5, man_bits: 10, bias: 15, special: Special::Ieee };

/// The portable rounding of a slice (vectorised by the compiler): what the x86 path
/// leaves, and everything on other CPUs.
pub(crate) fn from_f32_scalar(src: &[f32], dst: &mut [f16], overflow: Overflow) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_bits(minifloat::encode_f32(&LAYOUT, s, overflow) as u16);
    }
}

impl super::private::Sealed for f16 {}
impl Element for f16 {
    const PRECISION: Precision = Precision::F16;
    type Acc = f32;
    fn from_f64(x: f64, overflow: Overflow) -> Self {
        f16::from_bits(encode(&LAYOUT, x, overflow) as u16)
    }
    fn to_f64(self) -> f64 {
        // Exact (half's widening; every f16 is an f32).
        f64::from(self)
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self], overflow: Overflow) {
        assert_eq!(src.len(), dst.len());
        #[cfg(target_arch = "x86_64")]
        let done = super::x86::f16_from_f32(src, dst.reinterpret_cast_mut(), overflow);
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
        src.convert_to_f32_slice(dst);
    }
}
