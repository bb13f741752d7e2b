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

/// The FP16 operations of the kernels, as the tests compute them (the interpreter of
/// `asm_interp` and the emulation).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// `vaddph d, s1, s2`: d = s1 + s2.
    Add,
    /// `vmulph d, s1, s2`: d = s1 · s2.
    Mul,
    /// `vfmadd231ph d, s1, s2`: d = s1 · s2 + d, one rounding.
    Fma231,
}

/// One f16 lane of `op`, correctly rounded to nearest even (`d`: the destination's old
/// value, the FMA's addend). The FMA is [`crate::gemm::f16acc::fma_f16`], the portable
/// path's; addition and multiplication are half's f16 operators, the exact f32 result
/// rounded to f16 (correctly rounded, as 24 ≥ 2·11 + 2).
#[cfg(test)]
pub(crate) fn lane(op: Op, x: half::f16, y: half::f16, d: half::f16) -> half::f16 {
    match op {
        Op::Add => x + y,
        Op::Mul => x * y,
        Op::Fma231 => half::f16::from_f64(crate::gemm::f16acc::fma_f16(x.to_f64(), y.to_f64(), d.to_f64())),
    }
}

#[cfg(not(all(test, target_os = "linux")))]
fn emulated() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod emulation;
#[cfg(all(test, target_os = "linux"))]
use emulation::emulated;
