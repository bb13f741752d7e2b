//! Register-only FMA throughput: 16 independent accumulator chains (enough to cover the
//! FMA latency of every current core), nothing loaded or stored inside the loop.
//! The widest instruction set the CPU has is chosen at run time.

use crate::precision::Precision;

/// Independent accumulator registers.
const CHAINS: usize = 16;

/// The instruction set [`run`] uses for `p` on this CPU, or `None` when `p` has no native
/// arithmetic here (f16 and FP8 compute in f32 on CPUs).
pub fn isa(p: Precision) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = is_x86_feature_detected!("avx512f");
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        match p {
            Precision::F64 | Precision::F32 if avx512 => Some("avx512f"),
            Precision::F64 | Precision::F32 if avx2 => Some("avx2+fma"),
            Precision::F64 | Precision::F32 => Some("scalar"),
            Precision::Bf16 if avx512 && is_x86_feature_detected!("avx512bf16") => Some("avx512bf16"),
            _ => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    match p {
        Precision::F64 | Precision::F32 => Some("scalar"),
        _ => None,
    }
}

/// Runs `iters` iterations on the calling thread and returns the FLOPs executed, or
/// `None` when `p` has no native arithmetic here (see [`isa`]).
pub fn run(p: Precision, iters: u64) -> Option<f64> {
    let isa = isa(p)?;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: each branch runs only where `isa` detected its features.
    let flops = unsafe {
        match (p, isa) {
            (Precision::F64, "avx512f") => x86::f64_avx512(iters),
            (Precision::F32, "avx512f") => x86::f32_avx512(iters),
            (Precision::F64, "avx2+fma") => x86::f64_avx2(iters),
            (Precision::F32, "avx2+fma") => x86::f32_avx2(iters),
            (Precision::Bf16, _) => x86::bf16_avx512(iters),
            (Precision::F64, _) => scalar::<f64>(iters),
            _ => scalar::<f32>(iters),
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let flops = match (p, isa) {
        (Precision::F64, _) => scalar::<f64>(iters),
        _ => scalar::<f32>(iters),
    };
    Some(flops)
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

fn scalar<T: Fma>(iters: u64) -> f64 {
    let mut x = [T::ONE; CHAINS];
    let (a, b) = (std::hint::black_box(T::A), std::hint::black_box(T::B));
    for _ in 0..iters {
        for v in x.iter_mut() {
            *v = v.fma(a, b);
        }
    }
    std::hint::black_box(x);
    (iters * CHAINS as u64 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// Defines a kernel: 16 chains `x = x·a + b` of `$vec` registers, `$flops` per FMA.
    macro_rules! fma_kernel {
        ($name:ident, $feat:literal, $vec:ty, $set1:ident, $fma:ident, $a:expr, $b:expr, $flops:expr) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(iters: u64) -> f64 {
                let (a, b) = ($set1(std::hint::black_box($a)), $set1(std::hint::black_box($b)));
                let mut x: [$vec; CHAINS] = [$set1(1.0); CHAINS];
                for _ in 0..iters {
                    for v in x.iter_mut() {
                        *v = $fma(*v, a, b);
                    }
                }
                std::hint::black_box(&x);
                (iters * CHAINS as u64 * $flops) as f64
            }
        };
    }
    fma_kernel!(f64_avx512, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, 0.999_999, 1e-6, 16);
    fma_kernel!(f32_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 0.999_9, 1e-4, 32);
    fma_kernel!(f64_avx2, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, 0.999_999, 1e-6, 8);
    fma_kernel!(f32_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 0.999_9, 1e-4, 16);

    /// 16 chains of `vdpbf16ps`: each of 16 lanes does 2 products and 2 additions.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn bf16_avx512(iters: u64) -> f64 {
        // 2^-10 in every bf16 of the operands: the sums grow slowly and stay finite.
        let word = std::hint::black_box(0x3a80_3a80u32 as i32);
        // SAFETY: same-size reinterpretation of 512 bits.
        let (a, b): (__m512bh, __m512bh) =
            unsafe { (std::mem::transmute(_mm512_set1_epi32(word)), std::mem::transmute(_mm512_set1_epi32(word))) };
        let mut x = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..iters {
            for v in x.iter_mut() {
                *v = _mm512_dpbf16_ps(*v, a, b);
            }
        }
        std::hint::black_box(&x);
        (iters * CHAINS as u64 * 64) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flops_for_native_precisions_only() {
        assert_eq!(run(Precision::F64, 10).map(|f| f > 0.0), Some(true));
        assert_eq!(run(Precision::F32, 10).map(|f| f > 0.0), Some(true));
        assert_eq!(run(Precision::F16, 10), None);
        assert_eq!(run(Precision::E4m3, 10), None);
    }
}
