//! The arithmetic types effcal computes in: f32 and f64. Every storage format accumulates
//! in one of them ([`super::Element::Acc`]); the LU factorisation, the refinement and the
//! stencil sweeps are generic over this trait.

use std::ops::{Add, Div, Mul, Neg, Sub, SubAssign};

/// The accumulation types the factorisation computes in: f32 and f64.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + SubAssign
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + From<f32>
    + Into<f64>
    + faer::traits::ComplexField
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn is_finite(self) -> bool;
}

impl Real for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}
