//! effcal-gpu: the GPU backend. One CUDA device per process, reached through cudarc with
//! its libraries loaded when first used (libcuda.so.1, CUDA 13's cuBLAS, cuBLASLt, NVRTC;
//! NVML for power), so effcal builds, and runs everything else, on a machine without CUDA.
//! Like effcal-kernels it knows nothing of MPI: the harness times, validates and records.
//!
//! - [`device`]: finding the device (a clear error where there is none) and what it is;
//! - [`gemm`]: GEMM in FP64 to FP8 and INT8 through cuBLAS and cuBLASLt;
//! - [`kernels`]: effcal's own CUDA C (FMA peak, STREAM triad), compiled by NVRTC at run time;
//! - [`lu`]: one rank's HPL-MxP blocks on the device (cuBLAS TRSM and GemmEx, rounding and
//!   product kernels), driven by the harness's distributed LU;
//! - [`stencil`]: the 7- and 27-point sweeps on the device, the CPU's bits (NVRTC, no FMA contraction);
//! - [`power`]: energy and clock through NVML over a window of work;
//! - [`spec`]: the vendor's stated peaks (configs/gpus.toml).

pub mod device;
pub mod gemm;
pub mod kernels;
pub mod lu;
pub mod power;
pub mod spec;
pub mod stencil;

pub use device::{Gpu, GpuInfo};

/// What can go wrong on a GPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No usable device: no driver library, no device, or a library effcal needs is missing.
    /// Nothing was measured.
    #[error("{0}")]
    Unavailable(String),
    /// The device cannot do what was asked (a format its libraries have no kernel for).
    #[error("{0}")]
    Unsupported(String),
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    #[error("cuBLAS: {0}")]
    Blas(String),
    #[error("NVRTC: {0}")]
    Nvrtc(String),
}

pub type Result<T, E = GpuError> = std::result::Result<T, E>;
