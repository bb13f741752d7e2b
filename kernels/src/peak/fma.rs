//! Register-only arithmetic throughput: independent accumulator chains, enough to cover the
//! latency of every current core (latency × FMA pipes is at most 10), and few enough that
//! they and the two operands stay in registers: 16 chains of zmm (32 registers), 12 of ymm
//! (16 registers: 16 chains spilled and ran at 0.57 of the pipes on Zen 3). Nothing is loaded
//! or stored inside the loop. The widest instruction set the CPU has is chosen at run time.
//!
//! Counting: 2 FLOP per lane of an FMA (multiply + add); 4 per f32 lane of `vdpbf16ps`
//! (two products, two additions); 8 operations per i32 lane of `vpdpbusd` (four u8 × i8
//! products, four additions), the convention INT8 TOPS figures use.

use crate::precision::Precision;

/// Independent accumulator registers of the 512-bit kernels (AVX-512 has 32 registers).
const CHAINS_ZMM: usize = 16;
/// Independent accumulator registers of the 256-bit kernels (AVX2 has 16 registers).
const CHAINS_YMM: usize = 12;

/// An arithmetic a CPU may have natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arith {
    /// f64 FMA.
    F64,
    /// f32 FMA.
    F32,
    /// bf16 pairs into f32 (`vdpbf16ps`, AVX512_BF16).
    Bf16Dot,
    /// f16 FMA (`vfmadd231ph`, AVX512_FP16).
    F16,
    /// u8 × i8 quadruples into i32 (`vpdpbusd`, AVX512_VNNI or AVX-VNNI).
    Int8Dot,
}

impl Arith {
    pub const ALL: [Arith; 5] = [Self::F64, Self::F32, Self::Bf16Dot, Self::F16, Self::Int8Dot];

    /// The name of the peak-table row: the precision it serves, or "int8".
    pub const fn name(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32",
            Self::Bf16Dot => "bf16",
            Self::F16 => "f16",
            Self::Int8Dot => "int8",
        }
    }

    /// The arithmetic that computes `p` natively where a CPU has it (FP8 has none on CPUs).
    pub const fn of(p: Precision) -> Option<Arith> {
        match p {
            Precision::F64 => Some(Self::F64),
            Precision::F32 => Some(Self::F32),
            Precision::Bf16 => Some(Self::Bf16Dot),
            Precision::F16 => Some(Self::F16),
            Precision::E4m3 | Precision::E5m2 => None,
        }
    }
}

/// The instruction set [`run`] uses for `a` on this CPU, or `None` when the CPU lacks it.
pub fn isa(a: Arith) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = is_x86_feature_detected!("avx512f");
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        match a {
            Arith::F64 | Arith::F32 if avx512 => Some("avx512f"),
            Arith::F64 | Arith::F32 if avx2 => Some("avx2+fma"),
            Arith::F64 | Arith::F32 => Some("portable"),
            Arith::Bf16Dot if avx512 && is_x86_feature_detected!("avx512bf16") => Some("avx512bf16"),
            Arith::F16 if crate::avx512fp16::available() => Some("avx512fp16"),
            Arith::Int8Dot if avx512 && is_x86_feature_detected!("avx512vnni") => Some("avx512vnni"),
            Arith::Int8Dot if is_x86_feature_detected!("avxvnni") => Some("avxvnni"),
            _ => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    match a {
        Arith::F64 | Arith::F32 => Some("portable"),
        _ => None,
    }
}

/// Runs `iters` iterations on the calling thread and returns the operations executed, or
/// `None` when the CPU lacks `a` (see [`isa`]).
pub fn run(a: Arith, iters: u64) -> Option<f64> {
    let isa = isa(a)?;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: each branch runs only where `isa` detected its features.
    let ops = unsafe {
        match (a, isa) {
            (Arith::F64, "avx512f") => x86::f64_avx512(iters),
            (Arith::F32, "avx512f") => x86::f32_avx512(iters),
            (Arith::F64, "avx2+fma") => x86::f64_avx2(iters),
            (Arith::F32, "avx2+fma") => x86::f32_avx2(iters),
            (Arith::Bf16Dot, _) => x86::bf16_avx512(iters),
            (Arith::F16, _) => x86::f16_avx512fp16(iters),
            (Arith::Int8Dot, "avx512vnni") => x86::int8_avx512vnni(iters),
            (Arith::Int8Dot, _) => x86::int8_avxvnni(iters),
            (Arith::F64, _) => portable::<f64>(iters),
            (Arith::F32, _) => portable::<f32>(iters),
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let ops = match (a, isa) {
        (Arith::F64, _) => portable::<f64>(iters),
        _ => portable::<f32>(iters),
    };
    Some(ops)
}

trait Fma: Copy {
    const ONE: Self;
    const A: Self;
    const B: Self;
    fn fma(self, a: Self, b: Self) -> Self;
}
impl Fma for f64 {
    const ONE: f64 = 1.0;
    const A: f64 = 0.999_999;
    const B: f64 = 1e-6;
    fn fma(self, a: f64, b: f64) -> f64 {
        self.mul_add(a, b)
    }
}
impl Fma for f32 {
    const ONE: f32 = 1.0;
    const A: f32 = 0.999_9;
    const B: f32 = 1e-4;
    fn fma(self, a: f32, b: f32) -> f32 {
        self.mul_add(a, b)
    }
}

/// Lanes of the portable kernel: 16 chains of 128-bit vectors of f32 once the compiler
/// vectorises it (NEON), so the latency of a 2-pipe core is covered.
const PORTABLE_LANES: usize = 64;

/// The FMA chains in plain Rust, for CPUs without an intrinsics kernel (aarch64, x86-64
/// without AVX2): `mul_add` over an array the compiler vectorises for the target.
fn portable<T: Fma>(iters: u64) -> f64 {
    let mut x = [T::ONE; PORTABLE_LANES];
    let (a, b) = (std::hint::black_box(T::A), std::hint::black_box(T::B));
    for _ in 0..iters {
        for v in x.iter_mut() {
            *v = v.fma(a, b);
        }
    }
    std::hint::black_box(x);
    (iters * PORTABLE_LANES as u64 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS_YMM, CHAINS_ZMM};
    use std::arch::x86_64::*;

    /// Defines a kernel: `$chains` chains `x = x·a + b` of `$vec` registers, `$flops` per FMA.
    macro_rules! fma_kernel {
        ($name:ident, $feat:literal, $vec:ty, $chains:ident, $set1:ident, $fma:ident, $a:expr, $b:expr, $flops:expr) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(iters: u64) -> f64 {
                let (a, b) = ($set1(std::hint::black_box($a)), $set1(std::hint::black_box($b)));
                let mut x: [$vec; $chains] = [$set1(1.0); $chains];
                for _ in 0..iters {
                    for v in x.iter_mut() {
                        *v = $fma(*v, a, b);
                    }
                }
                std::hint::black_box(&x);
                (iters * $chains as u64 * $flops) as f64
            }
        };
    }
    fma_kernel!(f64_avx512, "avx512f", __m512d, CHAINS_ZMM, _mm512_set1_pd, _mm512_fmadd_pd, 0.999_999, 1e-6, 16);
    fma_kernel!(f32_avx512, "avx512f", __m512, CHAINS_ZMM, _mm512_set1_ps, _mm512_fmadd_ps, 0.999_9, 1e-4, 32);
    fma_kernel!(f64_avx2, "avx2,fma", __m256d, CHAINS_YMM, _mm256_set1_pd, _mm256_fmadd_pd, 0.999_999, 1e-6, 8);
    fma_kernel!(f32_avx2, "avx2,fma", __m256, CHAINS_YMM, _mm256_set1_ps, _mm256_fmadd_ps, 0.999_9, 1e-4, 16);

    /// 16 chains of `vdpbf16ps`: each of 16 lanes does 2 products and 2 additions.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn bf16_avx512(iters: u64) -> f64 {
        // 2^-10 in every bf16 of the operands: the sums grow slowly and stay finite.
        let word = std::hint::black_box(0x3a80_3a80u32 as i32);
        // SAFETY: same-size reinterpretation of 512 bits.
        let (a, b): (__m512bh, __m512bh) =
            unsafe { (std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(word)), std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(word))) };
        let mut x = [_mm512_setzero_ps(); CHAINS_ZMM];
        for _ in 0..iters {
            for v in x.iter_mut() {
                *v = _mm512_dpbf16_ps(*v, a, b);
            }
        }
        std::hint::black_box(&x);
        (iters * CHAINS_ZMM as u64 * 64) as f64
    }

    /// Defines a kernel: `$chains` chains of `vpdpbusd` on `$vec` registers, `$ops` per instruction.
    macro_rules! dot_kernel {
        ($name:ident, $feat:literal, $vec:ty, $chains:ident, $set1:ident, $zero:ident, $dot:ident, $ops:expr) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(iters: u64) -> f64 {
                // Bytes of 1: each i32 lane grows by 4 per instruction and wraps harmlessly.
                let (a, b) = ($set1(std::hint::black_box(0x0101_0101)), $set1(std::hint::black_box(0x0101_0101)));
                let mut x: [$vec; $chains] = [$zero(); $chains];
                for _ in 0..iters {
                    for v in x.iter_mut() {
                        *v = $dot(*v, a, b);
                    }
                }
                std::hint::black_box(&x);
                (iters * $chains as u64 * $ops) as f64
            }
        };
    }
    dot_kernel!(int8_avx512vnni, "avx512f,avx512vnni", __m512i, CHAINS_ZMM, _mm512_set1_epi32, _mm512_setzero_si512, _mm512_dpbusd_epi32, 128);
    dot_kernel!(int8_avxvnni, "avx2,avxvnni", __m256i, CHAINS_YMM, _mm256_set1_epi32, _mm256_setzero_si256, _mm256_dpbusd_avx_epi32, 64);

    /// 16 chains of `vfmadd231ph zmm` (32 f16 lanes, 2 FLOP each): x = 1 · 0 + x, so the
    /// values never change. AVX512_FP16 intrinsics are not stable in Rust, the instruction
    /// is written out; the caller checks AVX512_FP16 (and AVX512BW for the broadcast).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn f16_avx512fp16(iters: u64) -> f64 {
        // SAFETY: registers only; every zmm written is declared clobbered; runs only where
        // the caller detected AVX512_FP16.
        unsafe {
            std::arch::asm!(
                "vpbroadcastw zmm16, {one:e}",
                "vpxord zmm17, zmm17, zmm17",
                ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                "vmovdqa64 zmm\\r, zmm16",
                ".endr",
                "2:",
                ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                "vfmadd231ph zmm\\r, zmm16, zmm17",
                ".endr",
                "dec {n}",
                "jnz 2b",
                one = in(reg) 0x3c00u32,
                n = inout(reg) iters.max(1) => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
                out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
                options(nomem, nostack),
            );
        }
        (iters.max(1) * CHAINS_ZMM as u64 * 64) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_operations_per_instruction_for_what_the_cpu_has() {
        // 10 iterations of the kernel's chains: the count is exact, per instruction's lanes.
        let chains = |a: Arith| match isa(a) {
            Some("avx2+fma" | "avxvnni") => CHAINS_YMM,
            Some("portable") => PORTABLE_LANES,
            _ => CHAINS_ZMM,
        };
        let per_iter = |a: Arith| run(a, 10).map(|ops| ops / (10.0 * chains(a) as f64));
        match isa(Arith::F64) {
            Some("avx512f") => assert_eq!((per_iter(Arith::F64), per_iter(Arith::F32)), (Some(16.0), Some(32.0))),
            Some("avx2+fma") => assert_eq!((per_iter(Arith::F64), per_iter(Arith::F32)), (Some(8.0), Some(16.0))),
            other => assert_eq!(other, Some("portable")),
        }
        for (a, per) in [(Arith::Bf16Dot, 64.0), (Arith::F16, 64.0)] {
            assert_eq!(per_iter(a), isa(a).map(|_| per), "{a:?}");
        }
        let int8 = match isa(Arith::Int8Dot) {
            Some("avx512vnni") => Some(128.0),
            Some(_) => Some(64.0),
            None => None,
        };
        assert_eq!(per_iter(Arith::Int8Dot), int8);
    }

    #[test]
    fn only_formats_with_arithmetic_map_to_one() {
        assert_eq!(Precision::ALL.map(Arith::of), [Some(Arith::F64), Some(Arith::F32), Some(Arith::Bf16Dot), Some(Arith::F16), None, None]);
        assert_eq!(Arith::ALL.map(Arith::name), ["f64", "f32", "bf16", "f16", "int8"]);
    }
}
