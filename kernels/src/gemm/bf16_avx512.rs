//! bf16 GEMM on AVX512_BF16: `vdpbf16ps` computes, for each of 16 f32 lanes,
//! `acc += a[2l]·b[2l] + a[2l+1]·b[2l+1]` with bf16 inputs. A bf16×bf16 product has at most
//! 16 significant bits, so it is exact in f32; only the additions round, as in an f32 GEMM
//! (the instruction treats bf16 subnormal inputs as zero, and flushes subnormal results).
//!
//! Blocking follows the BLIS/Goto scheme, vectorised along the columns of row-major C:
//! - B is packed per `KC × NC` panel into micro-panels of `NR = 32` columns; for each pair
//!   of k values, a micro-panel row holds 32 `u32` words `(B[k][j], B[k+1][j])`;
//! - A is packed per `MC × KC` block into micro-panels of `MR = 12` rows; for each pair of
//!   k values, 12 words `(A[i][k], A[i][k+1])`, each broadcast to all lanes;
//! - the micro-kernel keeps a 12×32 f32 tile of C in 24 zmm registers; per pair of k it
//!   loads 2 zmm of B, broadcasts 12 words of A and issues 24 `vdpbf16ps`.
//!
//! Row blocks of C (MC rows) are distributed over the rayon threads; each packs its own A.

use half::bf16;
use rayon::prelude::*;
use std::arch::x86_64::*;

const MR: usize = 12;
const NR: usize = 32;
/// Block sizes, measured on Zen 4 (n = 4096; 1 core: 175 GF/s at KC = 256, 213 at 2048).
/// What limits this kernel is traffic to C, which is read and written once per KC block,
/// so KC is long: an A micro-panel is MR·KC·2 B = 48 KiB and a B micro-panel KC·NR·2 B =
/// 128 KiB (both L2), an A block MC·KC·2 B = 576 KiB (L2), a B panel KC·NC·2 B = 8 MiB (L3).
const KC: usize = 2048;
const MC: usize = 144;
const NC: usize = 2048;

/// True when this CPU runs the kernel (checked at run time).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
}

/// `C = A·B` for row-major bf16 A (m×k), B (k×n) and f32 C (m×n).
///
/// # Panics
/// If the CPU lacks AVX512_BF16 (check [`available`]) or the slice lengths do not match.
pub fn gemm(c: &mut [f32], a: &[bf16], b: &[bf16], m: usize, n: usize, k: usize) {
    assert!(available(), "bf16_avx512::gemm needs AVX512F and AVX512_BF16");
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n, "bf16 gemm: slice lengths do not match m, n, k");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let mut bpack = Vec::<u32>::new();
    for j0 in (0..n).step_by(NC) {
        let nb = NC.min(n - j0);
        for k0 in (0..k).step_by(KC) {
            let kb = KC.min(k - k0);
            let kp = kb.div_ceil(2);
            pack_b(&mut bpack, b, n, k0, kb, j0, nb);
            let bpack = &bpack;
            c.par_chunks_mut(MC * n).enumerate().for_each_init(Vec::<u32>::new, |apack, (ib, cblock)| {
                let i0 = ib * MC;
                let mb = cblock.len() / n;
                pack_a(apack, a, k, i0, mb, k0, kb);
                for (jp, bpanel) in bpack.chunks_exact(kp * NR).enumerate() {
                    let jj = jp * NR;
                    let cols = NR.min(nb - jj);
                    for (ip, apanel) in apack.chunks_exact(kp * MR).enumerate() {
                        let rows = MR.min(mb - ip * MR);
                        let ctile = &mut cblock[ip * MR * n + j0 + jj..];
                        // SAFETY: `available()` was asserted; panels hold kp·MR and kp·NR
                        // words; the tile has `rows` rows of stride n with `cols` columns
                        // inside the slice (checked by the assertion inside).
                        unsafe { kernel(kp, apanel, bpanel, ctile, n, rows, cols, k0 > 0) };
                    }
                }
            });
        }
    }
}

/// Packs rows i0..i0+mb, columns k0..k0+kb of A into MR-row micro-panels of k pairs
/// (zero padding past the matrix).
fn pack_a(out: &mut Vec<u32>, a: &[bf16], lda: usize, i0: usize, mb: usize, k0: usize, kb: usize) {
    let kp = kb.div_ceil(2);
    out.clear();
    out.resize(mb.div_ceil(MR) * kp * MR, 0);
    for (ip, panel) in out.chunks_exact_mut(kp * MR).enumerate() {
        for r in 0..MR.min(mb - ip * MR) {
            let row = &a[(i0 + ip * MR + r) * lda + k0..][..kb];
            for (p, pair) in row.chunks(2).enumerate() {
                let hi = pair.get(1).map_or(0, |x| x.to_bits() as u32);
                panel[p * MR + r] = pair[0].to_bits() as u32 | hi << 16;
            }
        }
    }
}

/// Packs rows k0..k0+kb, columns j0..j0+nb of B into NR-column micro-panels of k pairs.
fn pack_b(out: &mut Vec<u32>, b: &[bf16], ldb: usize, k0: usize, kb: usize, j0: usize, nb: usize) {
    let kp = kb.div_ceil(2);
    out.clear();
    out.resize(nb.div_ceil(NR) * kp * NR, 0);
    out.par_chunks_mut(kp * NR).enumerate().for_each(|(jp, panel)| {
        let jj = j0 + jp * NR;
        let cols = NR.min(j0 + nb - jj);
        for (p, words) in panel.chunks_exact_mut(NR).enumerate() {
            let r0 = &b[(k0 + 2 * p) * ldb + jj..][..cols];
            let r1 = (2 * p + 1 < kb).then(|| &b[(k0 + 2 * p + 1) * ldb + jj..][..cols]);
            for j in 0..cols {
                let hi = r1.map_or(0, |r| r[j].to_bits() as u32);
                words[j] = r0[j].to_bits() as u32 | hi << 16;
            }
        }
    });
}

/// One MR×NR tile: `C (+)= A_panel · B_panel` over `kp` pairs of k.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(kp: usize, a: &[u32], b: &[u32], c: &mut [f32], ldc: usize, rows: usize, cols: usize, accumulate: bool) {
    assert!(a.len() >= kp * MR && b.len() >= kp * NR && rows <= MR && cols <= NR);
    assert!(rows == 0 || c.len() >= (rows - 1) * ldc + cols);
    // C is far larger than the caches: fetch this tile's rows (2 lines each) now, so the
    // update at the end does not wait on memory.
    for r in 0..rows {
        // SAFETY: row r < rows lies inside `c` (asserted above); prefetch never faults.
        unsafe {
            let row = c.as_ptr().add(r * ldc).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.add(64));
        }
    }
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
    let mask = |lo: usize| -> __mmask16 {
        let w = cols.saturating_sub(lo).min(16);
        ((1u32 << w) - 1) as __mmask16
    };
    let (m0, m1) = (mask(0), mask(16));
    for (r, acc_r) in acc.iter().enumerate().take(rows) {
        // SAFETY: row r < rows starts at r·ldc, and masked lanes stay below `cols`.
        unsafe {
            let cp = c.as_mut_ptr().add(r * ldc);
            let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cp));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cp.add(16)));
            }
            _mm512_mask_storeu_ps(cp, m0, v0);
            _mm512_mask_storeu_ps(cp.add(16), m1, v1);
        }
    }
}
