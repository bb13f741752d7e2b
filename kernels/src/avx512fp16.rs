//! Whether this CPU runs effcal's AVX512_FP16 kernels (the native f16 GEMM, the f16
//! stencil rows and the FP16 peak kernel): AVX512F, AVX512BW and AVX512_FP16, checked at
//! run time.
//!
//! In the tests, a CPU with AVX512F and AVX512BW but no AVX512_FP16 (AMD Zen 4) runs those
//! kernels' machine code as well: [`emulation`] catches the SIGILL each FP16 instruction
//! raises there and does its arithmetic, so the compiled kernels (register allocation,
//! addressing, loops, the Rust around them) are tested on CPUs that lack the instructions.

/// True where the AVX512_FP16 kernels run: the CPU has the features, or (tests only) their
/// FP16 instructions are emulated in this process.
pub(crate) fn available() -> bool {
    detected() || emulated()
}

/// True where the CPU itself has AVX512F, AVX512BW and AVX512_FP16.
fn detected() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512fp16")
}

#[cfg(not(all(test, target_os = "linux")))]
fn emulated() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod emulation;
#[cfg(all(test, target_os = "linux"))]
use emulation::emulated;
