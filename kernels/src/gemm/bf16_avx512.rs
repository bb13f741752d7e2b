//! bf16 GEMM on AVX512_BF16: `vdpbf16ps` computes, for each of 16 f32 lanes,
//! `acc += a[2l]·b[2l] + a[2l+1]·b[2l+1]` with bf16 inputs. A bf16×bf16 product has at most
//! 16 significant bits, so it is exact in f32; only the additions round, as in an f32 GEMM
//! (the instruction treats bf16 subnormal inputs as zero, and flushes subnormal results).
//!
//! Blocking: [`super::blocked`]. A packed word is a pair of k values `(x[k], x[k+1])` in a
//! u32. The micro-kernel keeps a 12×32 f32 tile of C in 24 zmm registers; per pair of k it
//! loads 2 zmm of B, broadcasts 12 words of A and issues 24 `vdpbf16ps`.

use super::Blocking;
use super::blocked::{self, MicroKernel, lane_mask, prefetch_tile};
use half::bf16;
use std::arch::x86_64::*;
use std::marker::PhantomData;

pub use super::Bf16Bits;

/// True when this CPU runs the kernel (checked at run time).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
}

/// `C = α·A·B`, or `C += α·A·B` when `accumulate`, for row-major A (m×k) and B (k×n) of
/// bf16 values (bf16, or a format whose every value is one) and f32 C (m×n, row stride
/// `ldc`), blocked as `blocking` asks (None: this kernel's own).
///
/// # Panics
/// If the CPU lacks AVX512_BF16 (check [`available`]) or the slice lengths do not match.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Bf16Bits>(c: &mut [f32], ldc: usize, a: &[T], b: &[T], mnk: (usize, usize, usize), alpha: f32, accumulate: bool, blocking: Option<Blocking>) {
    assert!(available(), "bf16_avx512::gemm needs AVX512F and AVX512_BF16");
    blocked::gemm(&Bf16Kernel::<T>(PhantomData), blocking, c, ldc, a, b, mnk, alpha, accumulate);
}

/// The blocking [`gemm`] runs for `requested` (None: this kernel's own).
pub fn blocking(requested: Option<Blocking>) -> Blocking {
    blocked::resolve(&Bf16Kernel::<bf16>(PhantomData), requested)
}

struct Bf16Kernel<T>(PhantomData<T>);

impl<T: Bf16Bits> MicroKernel for Bf16Kernel<T> {
    type In = T;
    type Word = u32;
    type Out = f32;
    const MR: usize = 12;
    const NR: usize = 32;
    // Measured on Zen 4 (n = 4096, 1 core): 175 GF/s at KC = 256, 213 at KC = 2048. Traffic
    // to C (read and written once per KC block) is what limits it, so KC is long: an A
    // micro-panel is 12·2048·2 B = 48 KiB and a B micro-panel 2048·32·2 B = 128 KiB (L2),
    // an A block 144·2048·2 B = 576 KiB (L2), a B panel 2048·2048·2 B = 8 MiB (L3).
    const KC: usize = 2048;
    const MC: usize = 144;
    const NC: usize = 2048;
    const KSTEP: usize = 2;

    fn word([lo, hi]: [Option<T>; 2]) -> u32 {
        let bits = |x: Option<T>| x.map_or(0, |v| v.bf16_bits() as u32);
        bits(lo) | bits(hi) << 16
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(&self, kp: usize, a: &[u32], b: &[u32], c: &mut [f32], ldc: usize, rows: usize, cols: usize, alpha: f32, accumulate: bool) {
        // SAFETY: forwarded from the trait's contract.
        unsafe { kernel(kp, a, b, c, ldc, rows, cols, alpha, accumulate) }
    }
}

const MR: usize = Bf16Kernel::<bf16>::MR;
const NR: usize = Bf16Kernel::<bf16>::NR;

#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(kp: usize, a: &[u32], b: &[u32], c: &mut [f32], ldc: usize, rows: usize, cols: usize, alpha: f32, accumulate: bool) {
    assert!(a.len() >= kp * MR && b.len() >= kp * NR && rows <= MR && cols <= NR);
    assert!(rows == 0 || c.len() >= (rows - 1) * ldc + cols);
    prefetch_tile(c.as_ptr().cast(), ldc * 4, rows, NR * 4);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kp {
        // SAFETY: p < kp, and the panels hold kp·NR and kp·MR words (asserted above).
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR + 16).cast()));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(p * MR + r) as i32));
                acc_r[0] = _mm512_dpbf16_ps(acc_r[0], av, b0);
                acc_r[1] = _mm512_dpbf16_ps(acc_r[1], av, b1);
            }
        }
    }
    let (m0, m1) = (lane_mask(cols, 0, 16), lane_mask(cols, 16, 16));
    let alpha = _mm512_set1_ps(alpha);
    for (r, acc_r) in acc.iter().enumerate().take(rows) {
        // SAFETY: row r < rows starts at r·ldc, and masked lanes stay below `cols`.
        unsafe {
            let cp = c.as_mut_ptr().add(r * ldc);
            let (mut v0, mut v1) = (_mm512_mul_ps(alpha, acc_r[0]), _mm512_mul_ps(alpha, acc_r[1]));
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0 as __mmask16, cp));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1 as __mmask16, cp.add(16)));
            }
            _mm512_mask_storeu_ps(cp, m0 as __mmask16, v0);
            _mm512_mask_storeu_ps(cp.add(16), m1 as __mmask16, v1);
        }
    }
}
