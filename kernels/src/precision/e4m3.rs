//! OCP 8-bit floating point E4M3 ("FN"): bias 7, max 448 = 1.110b·2^8, no Inf,
//! NaN only as S.1111.111, min normal 2^-6, min subnormal 2^-9.

use super::Precision;
use super::codec::{Layout, Special};

pub const LAYOUT: Layout = Layout { exp_bits: 4, man_bits: 3, bias: 7, special: Special::FiniteNanOnly };

super::minifloat::fp8_format!(E4M3, Precision::E4m3, LAYOUT);
