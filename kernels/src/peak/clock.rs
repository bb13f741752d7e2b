//! Core clock from a chain of dependent integer multiplications.
//!
//! Each `imul r64, r64` needs the previous product, so the chain retires one multiply every
//! [`IMUL_LATENCY`] cycles: cycles = 3 × multiplies, on every x86-64 core since Nehalem and
//! Zen (Intel's optimisation manual and AMD's software optimisation guides list latency 3
//! for families 17h to 1Ah and every Core since 2008). No core folds or eliminates a
//! register-register multiply, unlike `add reg, imm`, which Golden Cove-class cores resolve
//! at rename several per cycle (a chain of those reads 6 to 17 "GHz" there).
//! On aarch64 the chain is `add x, x, y` with a register operand: latency 1 on every Arm
//! core in effcal's table (A64FX, Neoverse N2/V1/V2).
//!
//! [`Load::Fma`] runs the same chain with wide FMAs issued beside it, at about half the
//! core's FMA rate: the clock the core keeps while vector code runs, which is the one a
//! theoretical FLOP rate needs (AVX-512 heavy code may run below the scalar clock). The
//! FMAs take other ports than the multiply and sit off its dependency chain, so the chain
//! still bounds the loop. Interruptions can only make a trial look slower, never faster,
//! so the estimate is the best of several short trials.

use std::time::{Duration, Instant};

/// Cycles per link of the dependent chain: `imul r64, r64` on x86-64, `add` on aarch64.
#[cfg(target_arch = "x86_64")]
pub const CHAIN_LATENCY: u64 = 3;
#[cfg(not(target_arch = "x86_64"))]
pub const CHAIN_LATENCY: u64 = 1;

/// Links of the chain per loop iteration.
const LINKS: u64 = 64;

/// Trials per measurement; the fastest one counts.
const TRIALS: u32 = 8;

/// What runs beside the dependent chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// The chain alone: the scalar clock.
    Scalar,
    /// The chain with the widest FMAs the CPU has issued beside it.
    Fma,
}

/// A clock measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    pub ghz: f64,
    /// The FMAs that ran beside the chain ("avx512f", "avx2+fma"), or "none".
    pub load_isa: &'static str,
}

/// The instruction set [`Load::Fma`] uses on this CPU ("none" where there is no kernel).
pub fn load_isa(load: Load) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if load == Load::Fma {
        if is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    let _ = load;
    "none"
}

/// Runs the chain for about `duration` in [`TRIALS`] trials and returns the clock of the
/// fastest; `None` where the architecture has no chain (then a config must give the clock).
pub fn measure_ghz(duration: Duration, load: Load) -> Option<Clock> {
    let isa = load_isa(load);
    let run = |iters: u64| chain(iters, isa);
    run(100_000)?; // wake the core up to its running clock
    let trial = duration / TRIALS;
    let mut iters = 1_000u64;
    let mut best = 0f64;
    let mut done = 0;
    while done < TRIALS {
        let t = Instant::now();
        run(iters);
        let dt = t.elapsed();
        if dt < trial {
            iters *= 2; // still calibrating the trial length
            continue;
        }
        best = best.max((iters * LINKS * CHAIN_LATENCY) as f64 / dt.as_nanos() as f64);
        done += 1;
    }
    Some(Clock { ghz: best, load_isa: isa })
}

/// `iters` iterations of the chain with the load of `isa` beside it; `None` where there is
/// no chain for this architecture.
#[cfg(target_arch = "x86_64")]
fn chain(iters: u64, isa: &str) -> Option<()> {
    let iters = iters.max(1);
    // SAFETY: each kernel runs only where `load_isa` detected its features.
    match isa {
        "avx512f" => unsafe { x86::imul_zmm(iters) },
        "avx2+fma" => unsafe { x86::imul_ymm(iters) },
        _ => x86::imul(iters),
    }
    Some(())
}

#[cfg(target_arch = "aarch64")]
fn chain(iters: u64, _isa: &str) -> Option<()> {
    let mut x = 0u64;
    // SAFETY: register-only arithmetic; no memory is touched.
    unsafe {
        std::arch::asm!(
            "2:",
            ".rept 64",
            "add {x}, {x}, {one}",
            ".endr",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            x = inout(reg) x,
            one = in(reg) 1u64,
            n = inout(reg) iters.max(1) => _,
            options(nomem, nostack),
        );
    }
    std::hint::black_box(x);
    Some(())
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn chain(_iters: u64, _isa: &str) -> Option<()> {
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;

    /// 64 dependent `imul` per iteration (x stays 1: 1 × 1).
    pub(super) fn imul(iters: u64) {
        let mut x = 1u64;
        // SAFETY: register-only arithmetic; no memory is touched.
        unsafe {
            asm!(
                "2:",
                ".rept 64",
                "imul {x}, {one}",
                ".endr",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                one = in(reg) 1u64,
                n = inout(reg) iters => _,
                options(nomem, nostack),
            );
        }
        std::hint::black_box(x);
    }

    /// Defines a loaded chain: `$zero` clears the accumulators and operands, then each
    /// iteration runs the same 64 `imul` in 8 groups of 8, each group followed by `$fma`
    /// (one FMA per accumulator, 0 · 0 + x: the values never change); `$reg` are every
    /// vector register the code writes.
    macro_rules! loaded_chain {
        ($(#[$doc:meta])* $name:ident, $feat:literal, $zero:literal, $fma:literal, $($reg:tt),+) => {
            $(#[$doc])*
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(iters: u64) {
                let mut x = 1u64;
                // SAFETY: registers only; every vector register written is declared clobbered.
                unsafe {
                    asm!(
                        $zero,
                        "2:",
                        ".rept 8",
                        ".rept 8",
                        "imul {x}, {one}",
                        ".endr",
                        $fma,
                        ".endr",
                        "dec {n}",
                        "jnz 2b",
                        x = inout(reg) x,
                        one = in(reg) 1u64,
                        n = inout(reg) iters => _,
                        $(out($reg) _,)+
                        options(nomem, nostack),
                    );
                }
                std::hint::black_box(x);
            }
        };
    }
    loaded_chain!(
        /// 128 `vfmadd231pd zmm` on 16 accumulators beside the 64 `imul`.
        imul_zmm,
        "avx512f",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\nvpxord zmm\\r, zmm\\r, zmm\\r\n.endr",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nvfmadd231pd zmm\\r, zmm16, zmm17\n.endr",
        "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17"
    );
    loaded_chain!(
        /// 112 `vfmadd231pd ymm` on 14 accumulators (AVX2 has 16 registers) beside the 64 `imul`.
        imul_ymm,
        "avx2,fma",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nvxorpd ymm\\r, ymm\\r, ymm\\r\n.endr",
        ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13\nvfmadd231pd ymm\\r, ymm14, ymm15\n.endr",
        "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loaded and the scalar chain count the same cycles: their clocks agree within what
    /// AVX-512 licences move (at most about 25 % below) and what other tests running beside
    /// this one can take from one of them, while a miscounted chain (twice or half the
    /// links) would fall outside. Whether the figure is the core's clock is checked against
    /// the system's stated maximum and the FMA rate in tests/peaks.rs, one run at a time.
    #[test]
    fn loaded_and_scalar_clocks_agree() {
        let _alone = crate::CPU_TIMING.lock().unwrap_or_else(|e| e.into_inner());
        let Some(scalar) = measure_ghz(Duration::from_millis(80), Load::Scalar) else { return };
        let loaded = measure_ghz(Duration::from_millis(80), Load::Fma).expect("a chain exists");
        assert_eq!(scalar.load_isa, "none");
        assert_eq!(loaded.load_isa, load_isa(Load::Fma));
        let ratio = loaded.ghz / scalar.ghz;
        assert!((0.55..1.45).contains(&ratio), "loaded {} GHz vs scalar {} GHz", loaded.ghz, scalar.ghz);
    }
}
