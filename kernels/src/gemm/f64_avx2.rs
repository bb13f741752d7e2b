//! f64 GEMM on AVX2 with FMA (Haswell to Zen 3, and the AVX-512 CPUs' fallback is the
//! AVX-512 kernel instead): a 6×8 tile of C in 12 ymm registers (4 f64 lanes each); per k
//! it loads 2 ymm of B, broadcasts 6 values of A and issues 12 FMAs, so 15 of the 16 ymm
//! registers are live (the BLIS Haswell/Zen shape). Blocking: [`super::blocked`], one k
//! value per packed word.

use super::Blocking;
use super::blocked::{self, MicroKernel, prefetch_tile};
use std::arch::x86_64::*;

/// True when this CPU runs the kernel (checked at run time).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `C = α·A·B`, or `C += α·A·B` when `accumulate`, for row-major f64 A (m×k), B (k×n) and
/// C (m×n, row stride `ldc`), blocked as `blocking` asks (None: this kernel's own).
///
/// # Panics
/// If the CPU lacks AVX2 or FMA (check [`available`]) or the slice lengths do not match.
#[allow(clippy::too_many_arguments)]
pub fn gemm(c: &mut [f64], ldc: usize, a: &[f64], b: &[f64], mnk: (usize, usize, usize), alpha: f64, accumulate: bool, blocking: Option<Blocking>) {
    assert!(available(), "f64_avx2::gemm needs AVX2 and FMA");
    blocked::gemm(&F64Avx2Kernel, blocking, c, ldc, a, b, mnk, alpha, accumulate);
}

/// The blocking [`gemm`] runs for `requested` (None: this kernel's own).
pub fn blocking(requested: Option<Blocking>) -> Blocking {
    blocked::resolve(&F64Avx2Kernel, requested)
}

struct F64Avx2Kernel;

const MR: usize = 6;
const NR: usize = 8;

impl MicroKernel for F64Avx2Kernel {
    type In = f64;
    type Word = f64;
    type Out = f64;
    const MR: usize = MR;
    const NR: usize = NR;
    // A micro-panel 6·512·8 B = 24 KiB and a B micro-panel 512·8·8 B = 32 KiB: the B
    // micro-panel is reused across the A block from L1/L2; an A block 96·512·8 B = 384 KiB
    // (L2, 512 KiB on Zen 3); a B panel 512·4096·8 B = 16 MiB (L3). Measured on Zen 3
    // (docs/results.md).
    const KC: usize = 512;
    const MC: usize = 96;
    const NC: usize = 4096;
    const KSTEP: usize = 1;

    fn word([x, _]: [Option<f64>; 2]) -> f64 {
        x.unwrap_or(0.0)
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(&self, kp: usize, a: &[f64], b: &[f64], c: &mut [f64], ldc: usize, rows: usize, cols: usize, alpha: f64, accumulate: bool) {
        // SAFETY: forwarded from the trait's contract.
        unsafe { kernel(kp, a, b, c, ldc, rows, cols, alpha, accumulate) }
    }
}

#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(kp: usize, a: &[f64], b: &[f64], c: &mut [f64], ldc: usize, rows: usize, cols: usize, alpha: f64, accumulate: bool) {
    assert!(a.len() >= kp * MR && b.len() >= kp * NR && rows <= MR && cols <= NR);
    assert!(rows == 0 || c.len() >= (rows - 1) * ldc + cols);
    prefetch_tile(c.as_ptr().cast(), ldc * 8, rows, NR * 8);
    let mut acc = [[_mm256_setzero_pd(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kp {
        // SAFETY: p < kp, and the panels hold kp·NR and kp·MR values (asserted above).
        unsafe {
            let b0 = _mm256_loadu_pd(bp.add(p * NR));
            let b1 = _mm256_loadu_pd(bp.add(p * NR + 4));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_sd(&*ap.add(p * MR + r));
                acc_r[0] = _mm256_fmadd_pd(av, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_pd(av, b1, acc_r[1]);
            }
        }
    }
    let alpha = _mm256_set1_pd(alpha);
    for (r, acc_r) in acc.iter().enumerate().take(rows) {
        // SAFETY: row r < rows starts at r·ldc and holds `cols` entries from the tile's start.
        let cp = unsafe { c.as_mut_ptr().add(r * ldc) };
        if cols == NR {
            for (v, &x) in acc_r.iter().enumerate() {
                // SAFETY: the whole 8-wide row lies inside C (cols == NR).
                unsafe {
                    let x = _mm256_mul_pd(alpha, x);
                    let y = if accumulate { _mm256_add_pd(x, _mm256_loadu_pd(cp.add(4 * v))) } else { x };
                    _mm256_storeu_pd(cp.add(4 * v), y);
                }
            }
        } else {
            // A partial tile at the right edge: through a row buffer, `cols` entries written.
            let mut row = [0.0f64; NR];
            // SAFETY: `row` holds NR = 2·4 f64.
            unsafe {
                _mm256_storeu_pd(row.as_mut_ptr(), _mm256_mul_pd(alpha, acc_r[0]));
                _mm256_storeu_pd(row.as_mut_ptr().add(4), _mm256_mul_pd(alpha, acc_r[1]));
            }
            for (j, &x) in row.iter().enumerate().take(cols) {
                // SAFETY: j < cols, inside row r.
                unsafe { *cp.add(j) = if accumulate { x + *cp.add(j) } else { x } };
            }
        }
    }
}
