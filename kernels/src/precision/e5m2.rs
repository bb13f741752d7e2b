//! OCP 8-bit floating point E5M2: bias 15, max 57344 = 1.11b·2^15, IEEE-style ±Inf
//! (S.11111.00) and NaN (S.11111.xx, xx ≠ 00), min normal 2^-14, min subnormal 2^-16.

use super::Precision;
use super::codec::{Layout, Special};

pub const LAYOUT: Layout = Layout { exp_bits: 5, man_bits: 2, bias: 15, special: Special::Ieee };

super::minifloat::fp8_format!(E5M2, Precision::E5m2, LAYOUT);
