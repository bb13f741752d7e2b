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

/// Rows of the old field around output row (i, j), widened to the accumulation type.
struct Rows<A> {
    bufs: Vec<Vec<A>>,
}

impl<A: Copy + Default> Rows<A> {
    fn new(count: usize, len: usize) -> Self {
        Self { bufs: vec![vec![A::default(); len]; count] }
    }
}

/// Widens `src[start..start + len]` into `buf`.
fn load<T: Element>(src: &[T], start: usize, buf: &mut [T::Acc]) {
    T::to_acc_slice(&src[start..start + buf.len()], buf);
}

/// Runs `row(i, j, out_row)` for every row of `r` in parallel over i-planes; `out_row` is
/// the k range `r.k` of dst's row (i, j).
fn each_row<T: Element + Send>(dst: &mut Block<T>, r: &Region, row: impl Fn(usize, usize, &mut [T]) + Sync) {
    let (plane, rowlen) = (dst.plane(), dst.row());
    dst.data.par_chunks_mut(plane).enumerate().filter(|(i, _)| r.i.contains(i)).for_each(|(i, p)| {
        for j in r.j.clone() {
            row(i, j, &mut p[j * rowlen + r.k.start..j * rowlen + r.k.end]);
        }
    });
}

/// One 7-point sweep of `r`: dst = c0·src + c1·Σ(6 neighbours).
pub fn sweep7<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc)
where
    T::Acc: Real,
{
    assert_eq!(src.n, dst.n, "sweep: blocks of different shapes");
    if r.is_empty() {
        return;
    }
    let len = r.k.len();
    each_row(dst, r, |i, j, out| {
        let mut rows = Rows::<T::Acc>::new(5, len);
        let mut acc = vec![T::Acc::default(); len + 2];
        load(&src.data, src.at(i, j, r.k.start - 1), &mut acc);
        for (b, (di, dj)) in rows.bufs.iter_mut().zip([(0, 1), (2, 1), (1, 0), (1, 2)]) {
            load(&src.data, src.at(i + di - 1, j + dj - 1, r.k.start), b);
        }
        let [im, ip, jm, jp, res] = &mut rows.bufs[..] else { unreachable!() };
        for k in 0..len {
            let s = ((acc[k] + acc[k + 2]) + (im[k] + ip[k])) + (jm[k] + jp[k]);
            res[k] = c0 * acc[k + 1] + c1 * s;
        }
        T::from_acc_slice(res, out, Overflow::Saturate);
    });
}

/// One 27-point sweep of `r`: dst = c0·src + c1·Σ(26 neighbours).
pub fn sweep27<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc)
where
    T::Acc: Real,
{
    assert_eq!(src.n, dst.n, "sweep: blocks of different shapes");
    if r.is_empty() {
        return;
    }
    let len = r.k.len();
    each_row(dst, r, |i, j, out| {
        let mut rows = Rows::<T::Acc>::new(9, len + 2);
        for (n, b) in rows.bufs.iter_mut().enumerate() {
            load(&src.data, src.at(i + n / 3 - 1, j + n % 3 - 1, r.k.start - 1), b);
        }
        let mut res = vec![T::Acc::default(); len];
        for (k, out_k) in res.iter_mut().enumerate() {
            let mut s = T::Acc::default();
            for (n, b) in rows.bufs.iter().enumerate() {
                s = s + b[k] + if n == 4 { T::Acc::default() } else { b[k + 1] } + b[k + 2];
            }
            *out_k = c0 * rows.bufs[4][k + 1] + c1 * s;
        }
        T::from_acc_slice(&res, out, Overflow::Saturate);
    });
}

/// One Himeno sweep of `r` (v3.0's loop body): `wrk2 = p + omega·ss` with
/// `ss = (s0·a3 − p)·bnd`; returns gosa = Σ ss² over `r`, summed in f64 row by row.
pub fn himeno<T: Element + Send>(p: &Block<T>, wrk2: &mut Block<T>, co: &HimenoCoefficients<T>, r: &Region) -> f64
where
    T::Acc: Real,
{
    assert_eq!(p.n, wrk2.n, "sweep: blocks of different shapes");
    if r.is_empty() {
        return 0.0;
    }
    let len = r.k.len();
    let omega = T::Acc::from_f64(OMEGA);
    let (plane, rowlen) = (wrk2.plane(), wrk2.row());
    wrk2.data
        .par_chunks_mut(plane)
        .enumerate()
        .filter(|(i, _)| r.i.contains(i))
        .map(|(i, pl)| {
            let mut gosa = 0f64;
            // p rows (i + di, j + dj) for di, dj in −1..=1, each k−1..=k+1; 12 coefficient rows.
            let mut pr = Rows::<T::Acc>::new(9, len + 2);
            let mut cr = Rows::<T::Acc>::new(12, len);
            let mut res = vec![T::Acc::default(); len];
            for j in r.j.clone() {
                for (n, b) in pr.bufs.iter_mut().enumerate() {
                    load(&p.data, p.at(i + n / 3 - 1, j + n % 3 - 1, r.k.start - 1), b);
                }
                let arrays = co.a.iter().chain(&co.b).chain(&co.c).chain([&co.wrk1, &co.bnd]);
                for (b, arr) in cr.bufs.iter_mut().zip(arrays) {
                    load(&arr.data, arr.at(i, j, r.k.start), b);
                }
                // pr index (di+1)*3 + (dj+1); offset +1 in k is the point itself.
                let q = |di: usize, dj: usize| &pr.bufs[di * 3 + dj];
                let (pc, pim, pip, pjm, pjp) = (q(1, 1), q(0, 1), q(2, 1), q(1, 0), q(1, 2));
                let (pipjp, pipjm, pimjp, pimjm) = (q(2, 2), q(2, 0), q(0, 2), q(0, 0));
                let c = &cr.bufs;
                let (a0, a1, a2, a3, b0, b1, b2, c0, c1, c2, wrk1, bnd) =
                    (&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9], &c[10], &c[11]);
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
                    gosa += Into::<f64>::into(ss * ss);
                    res[k] = pc[m] + omega * ss;
                }
                T::from_acc_slice(&res, &mut pl[j * rowlen + r.k.start..j * rowlen + r.k.end], Overflow::Saturate);
            }
            gosa
        })
        .sum()
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
