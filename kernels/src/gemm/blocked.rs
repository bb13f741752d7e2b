//! The Goto/BLIS blocking loops shared by effcal's own micro-kernels, vectorised along the
//! columns of row-major C:
//!
//! ```text
//! for j0 in n by NC            B panel  KC × NC, packed into NR-column micro-panels
//!   for k0 in k by KC
//!     pack B panel (rayon over micro-panels)
//!     for each row block       about MC rows, a multiple of MR; rayon over blocks; each
//!                              packs its own A block
//!       pack A block           MC × KC, in MR-row micro-panels
//!       for each B micro-panel, for each A micro-panel:
//!         micro-kernel: C[MR × NR] (+)= A micro-panel · B micro-panel
//! ```
//!
//! A packed *word* holds `KSTEP` consecutive k values of one row (A) or one column (B):
//! one f64 for the f64 kernel, a pair of bf16 for `vdpbf16ps`. Rows and columns past the
//! matrix, and k past its end, are packed as zeros.

use super::Blocking;
use rayon::prelude::*;
use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};

/// A register-blocked micro-kernel, the packing it expects and its default blocking
/// (`KC`, `MC`, `NC`: what [`super::GemmParams::blocking`] overrides).
pub(crate) trait MicroKernel: Sync {
    type In: Copy + Sync;
    type Word: Copy + Default + Send + Sync;
    type Out: Copy + Default + Send + Sync;
    const MR: usize;
    const NR: usize;
    const KC: usize;
    const MC: usize;
    const NC: usize;
    /// k values per packed word.
    const KSTEP: usize;
    /// Packs `KSTEP` consecutive k values (missing ones are `None`: zero).
    fn word(values: [Option<Self::In>; 2]) -> Self::Word;
    /// The k block used when `requested` is asked for: a multiple of `KSTEP` (at least
    /// one word), or of whatever else the kernel's own parameters need.
    fn kc(&self, requested: usize) -> usize {
        requested.div_ceil(Self::KSTEP).max(1).saturating_mul(Self::KSTEP)
    }
    /// `C = α·A_panel·B_panel`, or `C += α·A_panel·B_panel` when `accumulate`, on one
    /// `rows × cols` tile over `kp` words of k.
    ///
    /// # Safety
    /// The CPU must have the kernel's features; `a` and `b` hold `kp·MR` and `kp·NR`
    /// words; `rows <= MR`, `cols <= NR`, and the tile (stride `ldc`) lies inside `c`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(
        &self,
        kp: usize,
        a: &[Self::Word],
        b: &[Self::Word],
        c: &mut [Self::Out],
        ldc: usize,
        rows: usize,
        cols: usize,
        alpha: Self::Out,
        accumulate: bool,
    );
}

/// The blocking `kernel` runs when `requested` is asked for (None: its own `KC`, `MC`,
/// `NC`): k blocks as [`MicroKernel::kc`] allows, row blocks a whole number of MR-row tiles,
/// B panels of `nc` columns (at least one; a multiple of NR leaves no narrow micro-panel
/// inside the matrix).
pub(crate) fn resolve<K: MicroKernel>(kernel: &K, requested: Option<Blocking>) -> Blocking {
    let r = requested.unwrap_or(Blocking { kc: K::KC, mc: K::MC, nc: K::NC });
    Blocking { kc: kernel.kc(r.kc), mc: r.mc.div_ceil(K::MR).max(1).saturating_mul(K::MR), nc: r.nc.max(1) }
}

/// `C = α·A·B`, or `C += α·A·B` when `accumulate`, for row-major A (m×k), B (k×n) and
/// C (m×n, row stride `ldc`), blocked as `requested` (see [`resolve`]). The caller checked
/// the CPU features.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<K: MicroKernel>(
    kernel: &K,
    requested: Option<Blocking>,
    c: &mut [K::Out],
    ldc: usize,
    a: &[K::In],
    b: &[K::In],
    (m, n, k): (usize, usize, usize),
    alpha: K::Out,
    accumulate: bool,
) {
    assert!(a.len() == m * k && b.len() == k * n, "gemm: slice lengths do not match m, n, k");
    assert!(ldc >= n && (m == 0 || c.len() >= (m - 1) * ldc + n), "gemm: C does not hold m rows of n with stride ldc");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            super::zero_window(c, ldc, m, n);
        }
        return;
    }
    let Blocking { kc, mc, nc } = resolve(kernel, requested);
    let mut bpack = Vec::new();
    for j0 in (0..n).step_by(nc) {
        let nb = nc.min(n - j0);
        for k0 in (0..k).step_by(kc) {
            let kb = kc.min(k - k0);
            let kp = kb.div_ceil(K::KSTEP);
            pack_b::<K>(&mut bpack, b, n, k0, kb, j0, nb);
            let bpack = &bpack;
            let first = k0 == 0 && !accumulate;
            row_blocks::<K>(c, m, ldc, mc).into_par_iter().for_each_init(Vec::new, |apack, (i0, mb, cblock)| {
                pack_a::<K>(apack, a, k, i0, mb, k0, kb);
                for (jp, bpanel) in bpack.chunks_exact(kp * K::NR).enumerate() {
                    let jj = jp * K::NR;
                    let cols = K::NR.min(nb - jj);
                    for (ip, apanel) in apack.chunks_exact(kp * K::MR).enumerate() {
                        let rows = K::MR.min(mb - ip * K::MR);
                        let ctile = &mut cblock[ip * K::MR * ldc + j0 + jj..];
                        // SAFETY: the caller checked the features; the panels hold kp·MR
                        // and kp·NR words; `rows` rows of stride ldc with `cols` columns
                        // from the tile's start lie inside this row block.
                        unsafe { kernel.kernel(kp, apanel, bpanel, ctile, ldc, rows, cols, alpha, !first) };
                    }
                }
            });
        }
    }
}

/// Splits C into row blocks of about `mc` rows (a multiple of MR), each a whole number of
/// MR-row tiles, in a multiple of the thread count, with tile counts differing by at most
/// one: no thread waits on a last, lone block. Returns (first row, row count, rows of C)
/// per block.
fn row_blocks<K: MicroKernel>(c: &mut [K::Out], m: usize, ldc: usize, mc: usize) -> Vec<(usize, usize, &mut [K::Out])> {
    let tiles = m.div_ceil(K::MR);
    let threads = rayon::current_num_threads().max(1);
    let blocks = tiles.div_ceil(mc / K::MR).div_ceil(threads) * threads;
    let blocks = blocks.min(tiles).max(1);
    let mut out = Vec::with_capacity(blocks);
    let mut rest = c;
    let mut i0 = 0;
    for b in 0..blocks {
        let block_tiles = tiles / blocks + usize::from(b < tiles % blocks);
        let rows = (block_tiles * K::MR).min(m - i0);
        // The last row of C may end before a full stride.
        let (head, tail) = rest.split_at_mut((rows * ldc).min(rest.len()));
        out.push((i0, rows, head));
        rest = tail;
        i0 += rows;
    }
    out
}

/// Packs rows i0..i0+mb, columns k0..k0+kb of A into MR-row micro-panels.
fn pack_a<K: MicroKernel>(out: &mut Vec<K::Word>, a: &[K::In], lda: usize, i0: usize, mb: usize, k0: usize, kb: usize) {
    let kp = kb.div_ceil(K::KSTEP);
    out.clear();
    out.resize(mb.div_ceil(K::MR) * kp * K::MR, K::Word::default());
    for (ip, panel) in out.chunks_exact_mut(kp * K::MR).enumerate() {
        for r in 0..K::MR.min(mb - ip * K::MR) {
            let row = &a[(i0 + ip * K::MR + r) * lda + k0..][..kb];
            for (p, ks) in row.chunks(K::KSTEP).enumerate() {
                panel[p * K::MR + r] = K::word([Some(ks[0]), ks.get(1).copied()]);
            }
        }
    }
}

/// Packs rows k0..k0+kb, columns j0..j0+nb of B into NR-column micro-panels.
fn pack_b<K: MicroKernel>(out: &mut Vec<K::Word>, b: &[K::In], ldb: usize, k0: usize, kb: usize, j0: usize, nb: usize) {
    let kp = kb.div_ceil(K::KSTEP);
    out.clear();
    out.resize(nb.div_ceil(K::NR) * kp * K::NR, K::Word::default());
    out.par_chunks_mut(kp * K::NR).enumerate().for_each(|(jp, panel)| {
        let jj = j0 + jp * K::NR;
        let cols = K::NR.min(j0 + nb - jj);
        for (p, words) in panel.chunks_exact_mut(K::NR).enumerate() {
            let kk = K::KSTEP * p;
            let r0 = &b[(k0 + kk) * ldb + jj..][..cols];
            let r1 = (K::KSTEP == 2 && kk + 1 < kb).then(|| &b[(k0 + kk + 1) * ldb + jj..][..cols]);
            for j in 0..cols {
                words[j] = K::word([Some(r0[j]), r1.map(|r| r[j])]);
            }
        }
    });
}

/// Mask of the lanes `lo..lo+lanes` of a tile row that fall below `cols`, as bits from 0.
pub(crate) fn lane_mask(cols: usize, lo: usize, lanes: usize) -> u32 {
    let w = cols.saturating_sub(lo).min(lanes);
    ((1u64 << w) - 1) as u32
}

/// C is far larger than the caches: fetch a tile's rows (`row_bytes` from the start of
/// each, stride `ldc_bytes`) when its micro-kernel starts, so that the update at the end
/// does not wait on memory.
#[inline(always)]
pub(crate) fn prefetch_tile(c: *const i8, ldc_bytes: usize, rows: usize, row_bytes: usize) {
    for r in 0..rows {
        for line in (0..row_bytes).step_by(64) {
            // SAFETY: prefetching never faults; the addresses are only hints.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(r * ldc_bytes + line)) };
        }
    }
}
