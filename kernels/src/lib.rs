//! effcal-kernels: the compute of effcal on one process (rayon threads inside, no MPI).
//!
//! - [`precision`]: the storage formats f64, f32, bf16, f16, OCP FP8 E4M3/E5M2, their
//!   rounding, and per-tensor / MX scaling;
//! - [`gemm`]: C = A·B with A, B stored in any format, accumulated in f32 (f64 for f64);
//! - [`matgen`]: the HPL-MxP reference matrix (HPL's LCG with jump-ahead);
//! - [`lu`], [`refine`]: low-precision LU without pivoting, refined in f64 (HPL-MxP on one
//!   process);
//! - [`peak`]: register-only FMA micro-kernels, a clock measurement and STREAM triad;
//! - [`rng`]: a counter-based generator, so any element can be regenerated anywhere.

pub mod gemm;
pub mod lu;
pub mod matgen;
pub mod peak;
pub mod precision;
pub mod refine;
pub mod rng;
pub mod stencil;

pub use precision::{Element, Overflow, Precision};

/// Everything a kernel can refuse, as a value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KernelError {
    #[error("unknown precision '{given}' (allowed: {allowed})")]
    UnknownPrecision { given: String, allowed: String },
    #[error("invalid {name} '{given}' (allowed: {allowed})")]
    InvalidParameter { name: &'static str, given: String, allowed: String },
    #[error("dimension mismatch: {0}")]
    Dimensions(String),
    #[error("LU without pivoting broke down at column {column}: pivot {pivot} (the matrix needs pivoting, or a wider precision)")]
    Breakdown { column: usize, pivot: f64 },
}
