//! effcal-kernels: the compute of effcal on one process (rayon threads inside, no MPI).
//!
//! - [`precision`]: the storage formats f64, f32, bf16, f16, OCP FP8 E4M3/E5M2, their
//!   rounding, and per-tensor / MX scaling;
//! - [`cost`]: what every kernel family counts: FLOPs, bytes moved, bytes held;
//! - [`gemm`]: C = A·B with A, B stored in any format, accumulated in f32 (f64 for f64);
//! - [`hpl_mxp`]: the HPL-MxP reference matrices, low-precision LU without pivoting, and
//!   refinement in f64 (HPL-MxP on one process);
//! - [`stencil`]: 7-point, Himeno and 27-point Jacobi sweeps of a block;
//! - [`peak`]: register-only arithmetic micro-kernels, the clock and STREAM triad;
//! - [`rng`]: a counter-based generator, so any element can be regenerated anywhere.

/// Held by the tests that time the CPU and by those that load every core for long (the
/// AVX512_FP16 emulation's child process), so neither runs beside the other.
#[cfg(test)]
static CPU_TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(all(test, target_arch = "x86_64"))]
mod asm_interp;
#[cfg(target_arch = "x86_64")]
mod avx512fp16;
pub mod cost;
pub mod gemm;
pub mod hpl_mxp;
pub mod peak;
pub mod precision;
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
