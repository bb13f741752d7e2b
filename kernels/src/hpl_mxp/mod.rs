//! HPL-MxP on one process: the reference matrices ([`matgen`]), LU without pivoting in a
//! low storage precision ([`lu`]), and refinement in f64 to HPL's threshold ([`refine`]).
//! The distributed solver in effcal-harness calls the same building blocks on each rank's
//! pieces. FLOPs: [`crate::cost::hpl`].

pub mod lu;
pub mod matgen;
pub mod refine;

use crate::Precision;

/// The block size NB for a storage precision when none is given, measured on the
/// project's Zen 4 machine (2 ranks, n = 8192 and 16384; docs/methodology.md): bf16 wants a
/// long k for its `vdpbf16ps` kernel (768); f64, f32, f16 and FP8 384.
pub fn default_nb(p: Precision) -> usize {
    match p {
        Precision::Bf16 => 768,
        _ => 384,
    }
}
