//! 3D stencil sweeps (Jacobi: every point of the new field from the old one) on a block of
//! a grid with one ghost layer, stored in any format and computed in f32 (f64 for f64).
//!
//! - [`Kind::Seven`]: `u' = c0·u + c1·(u_i−1 + u_i+1 + u_j−1 + u_j+1 + u_k−1 + u_k+1)`,
//!   8 FLOPs per point (5 + 1 additions, 2 multiplications), the heat equation's explicit step.
//! - [`Kind::Himeno`]: RIKEN's Himeno benchmark (v3.0), the 19-point Jacobi sweep of a
//!   pressure Poisson equation with coefficient arrays a (4), b (3), c (3), wrk1, bnd and
//!   omega = 0.8, its expression evaluated in the original's order; 34 FLOPs per point (the
//!   original's count); returns gosa, Σ ss² (accumulated in f64).
//! - [`Kind::TwentySeven`]: `u' = c0·u + c1·Σ(26 neighbours)`, HPCG's 27-point operator
//!   counted as HPCG counts it, 2 FLOPs per matrix entry: 54 per point (the sweep itself
//!   does 26 additions and 3 operations more).
//!
//! Layout: index (i, j, k), k fastest, each of the three extents padded by one ghost point
//! on both sides, so block point (i, j, k) for i in 1..=ni is local, 0 and ni+1 are
//! ghosts. The sums are evaluated in a fixed order, so a point's new value depends only on
//! the old values around it: the result is the same bits whatever the decomposition.

use crate::lu::Real;
use crate::precision::{Element, Overflow};
use rayon::prelude::*;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Seven,
    Himeno,
    TwentySeven,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Self::Seven, Self::Himeno, Self::TwentySeven];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Seven => "7pt",
            Self::Himeno => "himeno",
            Self::TwentySeven => "27pt",
        }
    }

    /// FLOPs counted per updated point.
    pub const fn flops_per_point(self) -> u64 {
        match self {
            Self::Seven => 8,
            Self::Himeno => 34,
            Self::TwentySeven => 54,
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = crate::KernelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| crate::KernelError::InvalidParameter {
            name: "kind",
            given: s.into(),
            allowed: "7pt, himeno, 27pt".into(),
        })
    }
}

/// A block of ni×nj×nk points with one ghost layer, k fastest.
#[derive(Clone, Debug, PartialEq)]
pub struct Block<T> {
    pub data: Vec<T>,
    /// Local extents without ghosts.
    pub n: [usize; 3],
}

impl<T: Copy + Default> Block<T> {
    pub fn zeros(n: [usize; 3]) -> Self {
        Self { data: vec![T::default(); (n[0] + 2) * (n[1] + 2) * (n[2] + 2)], n }
    }

    /// Points per i-plane, ghosts included.
    pub fn plane(&self) -> usize {
        (self.n[1] + 2) * (self.n[2] + 2)
    }

    /// Points per row (k), ghosts included.
    pub fn row(&self) -> usize {
        self.n[2] + 2
    }

    /// Index of (i, j, k), ghost-inclusive coordinates (0..=n+1).
    pub fn at(&self, i: usize, j: usize, k: usize) -> usize {
        (i * (self.n[1] + 2) + j) * (self.n[2] + 2) + k
    }
}

/// The points a sweep updates, in ghost-inclusive coordinates (each range within 1..=n).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub i: Range<usize>,
    pub j: Range<usize>,
    pub k: Range<usize>,
}

impl Region {
    pub fn points(&self) -> usize {
        self.i.len() * self.j.len() * self.k.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points() == 0
    }
}

/// The coefficient arrays of Himeno (same shape as p).
#[derive(Clone, Debug)]
pub struct HimenoCoefficients<T> {
    pub a: [Block<T>; 4],
    pub b: [Block<T>; 3],
    pub c: [Block<T>; 3],
    pub wrk1: Block<T>,
    pub bnd: Block<T>,
}

/// Himeno's relaxation factor.
pub const OMEGA: f64 = 0.8;

/// The old field's planes i−1, i, i+1 around the plane being computed, as the
/// accumulation type: borrowed where the storage is that type (f64, f32), widened once per
/// plane into a rolling window of three buffers otherwise.
struct Window<'a, T: Element> {
    src: &'a Block<T>,
    direct: Option<&'a [T::Acc]>,
    bufs: [Vec<T::Acc>; 3],
    /// The plane in bufs[1].
    centre: usize,
}

impl<'a, T: Element> Window<'a, T> {
    fn new(src: &'a Block<T>, i: usize) -> Self {
        let direct = T::as_acc_slice(&src.data);
        let len = if direct.is_some() { 0 } else { src.plane() };
        let mut w = Self { src, direct, bufs: std::array::from_fn(|_| vec![T::Acc::default(); len]), centre: i };
        if w.direct.is_none() {
            for (b, p) in [i - 1, i, i + 1].into_iter().enumerate() {
                w.widen(b, p);
            }
        }
        w
    }

    fn widen(&mut self, b: usize, plane: usize) {
        let n = self.src.plane();
        T::to_acc_slice(&self.src.data[plane * n..(plane + 1) * n], &mut self.bufs[b]);
    }

    /// Moves the window one plane on.
    fn advance(&mut self) {
        self.centre += 1;
        if self.direct.is_none() {
            self.bufs.rotate_left(1);
            self.widen(2, self.centre + 1);
        }
    }

    /// Row j of plane centre + d − 1 (d in 0..3), ghosts included.
    fn row(&self, d: usize, j: usize) -> &[T::Acc] {
        let n = self.src.row();
        let at = j * n;
        match self.direct {
            Some(all) => {
                let p = (self.centre + d - 1) * self.src.plane();
                &all[p + at..p + at + n]
            }
            None => &self.bufs[d][at..at + n],
        }
    }
}

/// Runs `plane_fn(window, i, out_plane)` for every i-plane of `r`: parallel tasks take
/// blocks of consecutive planes, and each task's window rolls along i (so every plane of
/// the old field is widened once per task, not three times). Returns the sum of what
/// `plane_fn` returns (Himeno's gosa; 0 for the others).
fn each_plane<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, plane_fn: impl Fn(&Window<'_, T>, usize, &mut [T]) -> f64 + Sync) -> f64 {
    assert_eq!(src.n, dst.n, "sweep: blocks of different shapes");
    if r.is_empty() {
        return 0.0;
    }
    let plane = dst.plane();
    let planes = &mut dst.data[r.i.start * plane..r.i.end * plane];
    let tasks = (4 * rayon::current_num_threads()).min(r.i.len()).max(1);
    let per = r.i.len().div_ceil(tasks);
    planes
        .par_chunks_mut(per * plane)
        .enumerate()
        .map(|(t, block)| {
            let i0 = r.i.start + t * per;
            let mut w = Window::new(src, i0);
            let mut sum = 0.0;
            for (n, out) in block.chunks_mut(plane).enumerate() {
                if n > 0 {
                    w.advance();
                }
                sum += plane_fn(&w, i0 + n, out);
            }
            sum
        })
        .sum()
}

/// Computes a row of results (the accumulation type) straight into the new field where the
/// storage is the accumulation type, else into `res`, then rounds it into the field.
fn store_row<T: Element>(out: &mut [T], res: &mut [T::Acc], f: impl FnOnce(&mut [T::Acc])) {
    match T::as_acc_slice_mut(out) {
        Some(direct) => f(direct),
        None => {
            f(res);
            T::from_acc_slice(res, out, Overflow::Saturate);
        }
    }
}

/// Runs `row_fn(window, j, results)` for every row of `r` (plane by plane, see
/// [`each_plane`]), `results` being the row's k range `r.k` of the new field.
fn each_row<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, row_fn: impl Fn(&Window<'_, T>, usize, &mut [T::Acc]) + Sync) {
    let (row, len) = (src.row(), r.k.len());
    let (k0, k1) = (r.k.start, r.k.end);
    let plane = src.plane();
    let _ = each_plane(src, dst, r, |w, i, out| {
        let mut res = vec![T::Acc::default(); len];
        // The plane the window widens after the next step, prefetched into L2 row by row
        // while this plane is swept (so that widening does not wait on memory).
        let ahead = (w.direct.is_none() && i + 2 < src.data.len() / plane).then(|| &src.data[(i + 2) * plane..(i + 3) * plane]);
        for j in r.j.clone() {
            if let Some(next) = ahead {
                prefetch::<INTO_L2, _>(&next[j * row..(j + 1) * row]);
                // And the row four ahead of the new field, ready to be written (rounded
                // storage rows are written whole); on the direct f64/f32 path it costs more
                // than it saves, measured.
                if j + 4 < out.len() / row {
                    prefetch::<FOR_WRITE, _>(&out[(j + 4) * row..(j + 5) * row]);
                }
            }
            store_row(&mut out[j * row + k0..j * row + k1], &mut res, |dst| row_fn(w, j, dst));
        }
        0.0
    });
}

/// Prefetches the cache lines of `xs` with `_mm_prefetch`'s hint `HINT` (a hint only:
/// nothing on other CPUs).
#[inline(always)]
fn prefetch<const HINT: i32, A>(xs: &[A]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(xs);
        let p = xs.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch of an address inside `xs` reads nothing and cannot fault.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<HINT>(p.add(off));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = xs;
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{_MM_HINT_ET0 as FOR_WRITE, _MM_HINT_T1 as INTO_L2};
#[cfg(not(target_arch = "x86_64"))]
const INTO_L2: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
const FOR_WRITE: i32 = 0;

/// Points per chunk of a row: one AVX-512 register of f32 (two of f64).
const LANES: usize = 16;

/// Runs `chunk(k0, out)` over `dst` in chunks of [`LANES`] points with no scalar remainder:
/// the last chunk overlaps the one before it where the row is not a multiple of LANES (those
/// points are computed twice from the same inputs, to the same bits). Fixed-length chunks
/// let the compiler drop bounds checks and keep the whole row in vector registers; a row
/// shorter than LANES goes point by point through `point`.
#[inline(always)]
fn chunked<A: Copy>(dst: &mut [A], chunk: impl Fn(usize, &mut [A; LANES]), point: impl Fn(usize) -> A) {
    let n = dst.len();
    if n < LANES {
        for (k, out) in dst.iter_mut().enumerate() {
            *out = point(k);
        }
        return;
    }
    for k0 in chunk_starts(n) {
        chunk(k0, (&mut dst[k0..k0 + LANES]).try_into().expect("LANES points"));
    }
}

/// Starts of the [`LANES`]-point chunks that cover 0..n (n ≥ LANES): every multiple of
/// LANES that fits, then n − LANES where n is not a multiple (overlapping the one before).
fn chunk_starts(n: usize) -> impl Iterator<Item = usize> {
    (0..n / LANES).map(|c| c * LANES).chain((!n.is_multiple_of(LANES)).then(|| n - LANES))
}

/// `LANES + extra` values of `row` from `at`, as an array reference (no bounds checks after).
#[inline(always)]
fn window<A, const N: usize>(row: &[A], at: usize) -> &[A; N] {
    row[at..at + N].try_into().expect("N values")
}

/// One 7-point sweep of `r`: dst = c0·src + c1·Σ(6 neighbours).
pub fn sweep7<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc)
where
    T::Acc: Real,
{
    let (k0, k1) = (r.k.start, r.k.end);
    each_row(src, dst, r, |w, j, dst| {
        let (cr, im, ip) = (&w.row(1, j)[k0 - 1..k1 + 1], &w.row(0, j)[k0..k1], &w.row(2, j)[k0..k1]);
        let (jm, jp) = (&w.row(1, j - 1)[k0..k1], &w.row(1, j + 1)[k0..k1]);
        let point = |k: usize| {
            let s = ((cr[k] + cr[k + 2]) + (im[k] + ip[k])) + (jm[k] + jp[k]);
            c0 * cr[k + 1] + c1 * s
        };
        chunked(
            dst,
            |at, out| {
                let c: &[T::Acc; LANES + 2] = window(cr, at);
                let [a, b, d, e]: [&[T::Acc; LANES]; 4] = [im, ip, jm, jp].map(|x| window(x, at));
                for l in 0..LANES {
                    let s = ((c[l] + c[l + 2]) + (a[l] + b[l])) + (d[l] + e[l]);
                    out[l] = c0 * c[l + 1] + c1 * s;
                }
            },
            point,
        );
    });
}

/// One 27-point sweep of `r`: dst = c0·src + c1·Σ(26 neighbours).
pub fn sweep27<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc)
where
    T::Acc: Real,
{
    let (k0, k1) = (r.k.start, r.k.end);
    each_row(src, dst, r, |w, j, dst| {
        // The nine rows (i + di, j + dj), di, dj in −1..=1, each k0−1..k1+1.
        let nine: [&[T::Acc]; 9] = std::array::from_fn(|n| &w.row(n / 3, j + n % 3 - 1)[k0 - 1..k1 + 1]);
        let point = |k: usize| {
            let mut s = T::Acc::default();
            for (n, b) in nine.iter().enumerate() {
                s = s + b[k] + if n == 4 { T::Acc::default() } else { b[k + 1] } + b[k + 2];
            }
            c0 * nine[4][k + 1] + c1 * s
        };
        chunked(
            dst,
            |at, out| {
                let rows: [&[T::Acc; LANES + 2]; 9] = std::array::from_fn(|n| window(nine[n], at));
                for (l, out) in out.iter_mut().enumerate() {
                    let mut s = T::Acc::default();
                    for (n, b) in rows.iter().enumerate() {
                        s = s + b[l] + if n == 4 { T::Acc::default() } else { b[l + 1] } + b[l + 2];
                    }
                    *out = c0 * rows[4][l + 1] + c1 * s;
                }
            },
            point,
        );
    });
}

/// One Himeno sweep of `r` (v3.0's loop body): `wrk2 = p + omega·ss` with
/// `ss = (s0·a3 − p)·bnd`; returns gosa = Σ ss² over `r`, summed in f64 row by row.
pub fn himeno<T: Element + Send>(p: &Block<T>, wrk2: &mut Block<T>, co: &HimenoCoefficients<T>, r: &Region) -> f64
where
    T::Acc: Real,
{
    let (row, len) = (p.row(), r.k.len());
    let (k0, k1) = (r.k.start, r.k.end);
    let omega = T::Acc::from_f64(OMEGA);
    each_plane(p, wrk2, r, |w, i, out| {
        let mut gosa = 0f64;
        let mut cr = vec![vec![T::Acc::default(); len]; 12];
        let mut res = vec![T::Acc::default(); len];
        let mut sq = vec![T::Acc::default(); len];
        let arrays: Vec<&Block<T>> = co.a.iter().chain(&co.b).chain(&co.c).chain([&co.wrk1, &co.bnd]).collect();
        for j in r.j.clone() {
            let at = j * row;
            // p rows (i + di, j + dj) for di, dj in −1..=1, each k0−1..k1+1.
            let q = |di: usize, dj: usize| &w.row(di, j + dj - 1)[k0 - 1..k1 + 1];
            let (pc, pim, pip, pjm, pjp) = (q(1, 1), q(0, 1), q(2, 1), q(1, 0), q(1, 2));
            let (pipjp, pipjm, pimjp, pimjm) = (q(2, 2), q(2, 0), q(0, 2), q(0, 0));
            // The 12 coefficient rows: borrowed where stored in the arithmetic type.
            let s = arrays[0].at(i, j, k0);
            if T::as_acc_slice(&arrays[0].data).is_none() {
                for (b, arr) in cr.iter_mut().zip(&arrays) {
                    T::to_acc_slice(&arr.data[s..s + len], b);
                }
            }
            let coef: [&[T::Acc]; 12] = std::array::from_fn(|n| match T::as_acc_slice(&arrays[n].data) {
                Some(direct) => &direct[s..s + len],
                None => &cr[n][..],
            });
            let [a0, a1, a2, a3, b0, b1, b2, c0, c1, c2, wrk1, bnd] = coef;
            store_row(&mut out[at + k0..at + k1], &mut res, |dst| {
                for k in 0..len {
                    let m = k + 1; // the point's own k in the p rows
                    let s0 = a0[k] * pip[m]
                        + a1[k] * pjp[m]
                        + a2[k] * pc[m + 1]
                        + b0[k] * (pipjp[m] - pipjm[m] - pimjp[m] + pimjm[m])
                        + b1[k] * (pjp[m + 1] - pjm[m + 1] - pjp[m - 1] + pjm[m - 1])
                        + b2[k] * (pip[m + 1] - pim[m + 1] - pip[m - 1] + pim[m - 1])
                        + c0[k] * pim[m]
                        + c1[k] * pjm[m]
                        + c2[k] * pc[m - 1]
                        + wrk1[k];
                    let ss = (s0 * a3[k] - pc[m]) * bnd[k];
                    sq[k] = ss * ss;
                    dst[k] = pc[m] + omega * ss;
                }
            });
            gosa += sum_f64(&sq);
        }
        gosa
    })
}

/// Σ x in f64 with eight partial sums (so the sweep's loop stays vectorised; gosa is
/// summed in a fixed order per row).
fn sum_f64<A: Real>(xs: &[A]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&x| Into::<f64>::into(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += Into::<f64>::into(x);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Himeno v3.0's initial state for a grid of gi×gj×gk points (boundary planes included),
/// at the block whose first local point (block coordinates (1, 1, 1)) is global point
/// `origin`: a0..a2 = 1, a3 = 1/6,
/// b = 0, c = 1, wrk1 = 0, bnd = 1, p = i²/(gi−1)² (computed in f32, as the original does).
/// Ghost points are set too where they lie inside the grid.
pub fn himeno_init<T: Element>(n: [usize; 3], origin: [usize; 3], global: [usize; 3]) -> (Block<T>, HimenoCoefficients<T>) {
    let fill = |v: f64| {
        let mut b = Block::<T>::zeros(n);
        b.data.fill(T::from_f64(v, Overflow::Saturate));
        b
    };
    let mut p = Block::<T>::zeros(n);
    let denom = ((global[0] - 1) * (global[0] - 1)) as f32;
    for i in 0..n[0] + 2 {
        let gi = origin[0] as i64 + i as i64 - 1;
        if gi < 0 || gi >= global[0] as i64 {
            continue;
        }
        let v = T::from_f64(((gi * gi) as f32 / denom) as f64, Overflow::Saturate);
        let plane = p.plane();
        p.data[i * plane..(i + 1) * plane].fill(v);
    }
    let co = HimenoCoefficients {
        a: [fill(1.0), fill(1.0), fill(1.0), fill((1.0f32 / 6.0f32) as f64)],
        b: [fill(0.0), fill(0.0), fill(0.0)],
        c: [fill(1.0), fill(1.0), fill(1.0)],
        wrk1: fill(0.0),
        bnd: fill(1.0),
    };
    (p, co)
}

#[cfg(test)]
mod tests;
