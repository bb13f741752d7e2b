//! Branch-free f32 <-> 8/16-bit float conversion for slices, written so that the compiler
//! vectorises it (selects, no branches). Rounding is to nearest, ties to even:
//! - normal range: rebias the exponent and round the mantissa in the integer domain
//!   (`bits + (half - 1) + lsb`, then shift; a carry moves into the exponent, as it must);
//! - subnormal range: add `2^(emin - M + 23)` in f32, whose ulp is exactly the target's
//!   subnormal quantum, so the FPU rounds (ties to even) for us.
//!
//! Codes are monotone in magnitude, so "rounded past the largest finite code" is the
//! overflow test for both paths. Checked against [`super::codec::encode`] in the tests.

use super::codec::{Layout, Overflow};

/// Convert one f32 to a code of `layout` (which must have at most 16 bits and M <= 22).
#[inline(always)]
pub(crate) fn encode_f32(l: &Layout, x: f32, overflow: Overflow) -> u32 {
    let bits = x.to_bits();
    let sign = (bits >> 31) << (l.exp_bits + l.man_bits);
    let abs = bits & 0x7fff_ffff;
    let shift = 23 - l.man_bits;

    let rebias = ((127 - l.bias) as u32) << 23;
    let lsb = (abs >> shift) & 1;
    let normal = abs.wrapping_sub(rebias).wrapping_add((1 << (shift - 1)) - 1 + lsb) >> shift;

    let magic = f32::from_bits(((l.emin() - l.man_bits as i32 + 23 + 127) as u32) << 23);
    let subnormal = (f32::from_bits(abs) + magic).to_bits().wrapping_sub(magic.to_bits());

    let min_normal_bits = ((l.emin() + 127) as u32) << 23;
    let mag = if abs < min_normal_bits { subnormal } else { normal };

    let max = l.max_code();
    let over = match (overflow, l.inf_code(false)) {
        (Overflow::Saturate, _) => max,
        (Overflow::NonSaturating, Some(inf)) => inf,
        (Overflow::NonSaturating, None) => l.nan_code(false),
    };
    let mag = if mag > max || abs >= 0x7f80_0000 { over } else { mag };
    let mag = if abs > 0x7f80_0000 { l.nan_code(false) } else { mag };
    sign | mag
}

/// The 256 decoded values of an 8-bit format, as f32 (exact: every value fits).
pub(crate) fn decode_table(l: &Layout) -> [f32; 256] {
    core::array::from_fn(|code| super::codec::decode(l, code as u32) as f32)
}

/// Defines an 8-bit format type `$ty` (bit pattern in a `u8`) with its [`super::Element`]
/// impl: scalar conversions through the exact codec, slice conversions through
/// [`encode_f32`] and a 256-entry decode table.
macro_rules! fp8_format {
    ($ty:ident, $precision:expr, $layout:expr) => {
        #[doc = concat!("An ", stringify!($ty), " value, stored as its bit pattern.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[repr(transparent)]
        pub struct $ty(pub u8);

        static TABLE: std::sync::LazyLock<[f32; 256]> =
            std::sync::LazyLock::new(|| $crate::precision::minifloat::decode_table(&$layout));

        impl $crate::precision::private::Sealed for $ty {}
        impl $crate::precision::Element for $ty {
            const PRECISION: $crate::precision::Precision = $precision;
            type Acc = f32;
            fn from_f64(x: f64, overflow: $crate::precision::Overflow) -> Self {
                $ty($crate::precision::codec::encode(&$layout, x, overflow) as u8)
            }
            fn to_f64(self) -> f64 {
                // The table's f32 values are exact.
                f64::from(TABLE[self.0 as usize])
            }
            fn from_f32_slice(src: &[f32], dst: &mut [Self], overflow: $crate::precision::Overflow) {
                assert_eq!(src.len(), dst.len());
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = $ty($crate::precision::minifloat::encode_f32(&$layout, s, overflow) as u8);
                }
            }
            fn from_acc_slice(src: &[f32], dst: &mut [Self], overflow: $crate::precision::Overflow) {
                Self::from_f32_slice(src, dst, overflow);
            }
            fn to_acc_slice(src: &[Self], dst: &mut [f32]) {
                Self::to_f32_slice(src, dst);
            }
            fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
                assert_eq!(src.len(), dst.len());
                let t = &*TABLE;
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = t[s.0 as usize];
                }
            }
        }
    };
}
pub(crate) use fp8_format;
