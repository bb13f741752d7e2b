//! The native IEEE 754 formats binary64 (f64) and binary32 (f32).
//! f32 follows the same codec as the small formats (checked in the tests); f64 is the
//! reference precision and is never rounded.

use super::codec::{Layout, Overflow, Special};
use super::{Element, Precision};

pub const F32_LAYOUT: Layout = Layout { exp_bits: 8, man_bits: 23, bias: 127, special: Special::Ieee };

impl super::private::Sealed for f64 {}
impl Element for f64 {
    const PRECISION: Precision = Precision::F64;
    type Acc = f64;
    fn from_f64(x: f64, _: Overflow) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self], _: Overflow) {
        assert_eq!(src.len(), dst.len());
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s as f64;
        }
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len());
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s as f32;
        }
    }
    fn from_acc_slice(src: &[f64], dst: &mut [Self], _: Overflow) {
        dst.copy_from_slice(src);
    }
    fn to_acc_slice(src: &[Self], dst: &mut [f64]) {
        dst.copy_from_slice(src);
    }
    fn as_acc_slice(src: &[Self]) -> Option<&[f64]> {
        Some(src)
    }
    fn as_acc_slice_mut(src: &mut [Self]) -> Option<&mut [f64]> {
        Some(src)
    }
}

impl super::private::Sealed for f32 {}
impl Element for f32 {
    const PRECISION: Precision = Precision::F32;
    type Acc = f32;
    fn from_f64(x: f64, overflow: Overflow) -> Self {
        let y = x as f32;
        match overflow {
            Overflow::Saturate if y.is_infinite() => f32::MAX.copysign(y),
            _ => y,
        }
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self], _: Overflow) {
        dst.copy_from_slice(src);
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn from_acc_slice(src: &[f32], dst: &mut [Self], _: Overflow) {
        dst.copy_from_slice(src);
    }
    fn to_acc_slice(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn as_acc_slice(src: &[Self]) -> Option<&[f32]> {
        Some(src)
    }
    fn as_acc_slice_mut(src: &mut [Self]) -> Option<&mut [f32]> {
        Some(src)
    }
}
