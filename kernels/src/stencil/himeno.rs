//! RIKEN's Himeno benchmark (v3.0): the 19-point Jacobi sweep of a pressure Poisson
//! equation with coefficient arrays a (4), b (3), c (3), wrk1, bnd and omega = 0.8, its
//! expression evaluated in the original's order (34 FLOPs per point, the original's count),
//! returning gosa = Σ ss² (accumulated in f64); and the original's initial state.

use super::window::{RowOut, each_plane};
use super::{Block, Region, Stores};
use crate::precision::{Element, Overflow, Real};

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

/// One Himeno sweep of `r` (v3.0's loop body): `wrk2 = p + omega·ss` with
/// `ss = (s0·a3 − p)·bnd`; returns gosa = Σ ss² over `r`, summed in f64 row by row.
pub fn himeno<T: Element + Send>(p: &Block<T>, wrk2: &mut Block<T>, co: &HimenoCoefficients<T>, r: &Region, stores: Stores) -> f64
where
    T::Acc: Real,
{
    let (row, len) = (p.row(), r.k.len());
    let (k0, k1) = (r.k.start, r.k.end);
    let omega = T::Acc::from_f64(OMEGA);
    // Whole planes: besides p's window the sweep streams 12 coefficient arrays, and slabs
    // of rows cut those streams short (bf16 Himeno ran at 0.65× in slabs, Zen 3, 2 ranks).
    each_plane(p, wrk2, r, std::slice::from_ref(&r.j), stores, |w, i, js, out| {
        let mut gosa = 0f64;
        let mut cr = vec![vec![T::Acc::default(); len]; 12];
        let mut row_out = RowOut::<T>::new(len, stores);
        let mut sq = vec![T::Acc::default(); len];
        let arrays: Vec<&Block<T>> = co.a.iter().chain(&co.b).chain(&co.c).chain([&co.wrk1, &co.bnd]).collect();
        let direct: Option<Vec<&[T::Acc]>> = arrays.iter().map(|a| T::as_acc_slice(&a.data)).collect();
        for j in js {
            let at = j * row;
            let s = arrays[0].at(i, j, k0);
            // p around the row's points: (i + di, j + dj, k + dk) for di, dj, dk in −1..=1
            // (given as 0..=2). Every operand is a slice of exactly `len` points, so the loop
            // has no bounds checks and vectorises (indexed at offsets into rows of different
            // lengths it ran scalar, at a third of a plain C loop's rate in f32).
            let p = |di: usize, dj: usize, dk: usize| &w.row(di, j + dj - 1)[k0 + dk - 1..][..len];
            let ps = Around {
                c: [p(1, 1, 0), p(1, 1, 1), p(1, 1, 2)],
                im: [p(0, 1, 0), p(0, 1, 1), p(0, 1, 2)],
                ip: [p(2, 1, 0), p(2, 1, 1), p(2, 1, 2)],
                jm: [p(1, 0, 0), p(1, 0, 1), p(1, 0, 2)],
                jp: [p(1, 2, 0), p(1, 2, 1), p(1, 2, 2)],
                diag: [p(2, 2, 1), p(2, 0, 1), p(0, 2, 1), p(0, 0, 1)],
            };
            let sq = &mut sq[..len];
            row_out.store(&mut out[at + k0..at + k1], |dst| {
                let dst = &mut dst[..len];
                // The 12 coefficient rows: read as stored where that is the arithmetic type;
                // bf16 widened point by point inside the loop (a shift, which vectorises:
                // 1.4–1.6× the rate of widening each row into a buffer first, Zen 4, 2
                // ranks); other formats widened into buffers first (f16's per-point
                // conversion does not vectorise: 0.2× in the loop).
                if let Some(direct) = &direct {
                    sweep_row(std::array::from_fn(|n| &direct[n][s..s + len]), |x| x, &ps, omega, sq, dst);
                } else if T::PRECISION == crate::Precision::Bf16 {
                    // Exact: bf16 → f64 → f32 is bf16's own f32 value.
                    sweep_row(std::array::from_fn(|n| &arrays[n].data[s..s + len]), |x: T| T::Acc::from(x.to_f64() as f32), &ps, omega, sq, dst);
                } else {
                    for (b, arr) in cr.iter_mut().zip(&arrays) {
                        T::to_acc_slice(&arr.data[s..s + len], b);
                    }
                    sweep_row(std::array::from_fn(|n| &cr[n][..]), |x| x, &ps, omega, sq, dst);
                }
            });
            gosa += sum_f64(sq);
        }
        gosa
    })
}

/// p's 19 rows around a row's points, each exactly the row's length: the centre row and
/// the rows at i ∓ 1 and j ∓ 1 at k − 1, k, k + 1, and the four (i ± 1, j ± 1) at k.
struct Around<'a, A> {
    c: [&'a [A]; 3],
    im: [&'a [A]; 3],
    ip: [&'a [A]; 3],
    jm: [&'a [A]; 3],
    jp: [&'a [A]; 3],
    /// (i+1, j+1), (i+1, j−1), (i−1, j+1), (i−1, j−1).
    diag: [&'a [A]; 4],
}

/// Himeno's update of one row, in the original's order: `dst = p + ω·ss`, `sq = ss²`. The
/// coefficients are `C`, each widened by `widen` as it is read.
#[inline(always)]
fn sweep_row<C: Copy, A: Real>(coef: [&[C]; 12], widen: impl Fn(C) -> A, p: &Around<'_, A>, omega: A, sq: &mut [A], dst: &mut [A]) {
    let len = dst.len();
    let coef: [&[C]; 12] = coef.map(|c| &c[..len]);
    let [a0, a1, a2, a3, b0, b1, b2, c0, c1, c2, wrk1, bnd] = coef;
    let [pc_m, pc_0, pc_p] = p.c.map(|x| &x[..len]);
    let [pim_m, pim_0, pim_p] = p.im.map(|x| &x[..len]);
    let [pip_m, pip_0, pip_p] = p.ip.map(|x| &x[..len]);
    let [pjm_m, pjm_0, pjm_p] = p.jm.map(|x| &x[..len]);
    let [pjp_m, pjp_0, pjp_p] = p.jp.map(|x| &x[..len]);
    let [pipjp, pipjm, pimjp, pimjm] = p.diag.map(|x| &x[..len]);
    let sq = &mut sq[..len];
    for k in 0..len {
        let s0 = widen(a0[k]) * pip_0[k]
            + widen(a1[k]) * pjp_0[k]
            + widen(a2[k]) * pc_p[k]
            + widen(b0[k]) * (pipjp[k] - pipjm[k] - pimjp[k] + pimjm[k])
            + widen(b1[k]) * (pjp_p[k] - pjm_p[k] - pjp_m[k] + pjm_m[k])
            + widen(b2[k]) * (pip_p[k] - pim_p[k] - pip_m[k] + pim_m[k])
            + widen(c0[k]) * pim_0[k]
            + widen(c1[k]) * pjm_0[k]
            + widen(c2[k]) * pc_m[k]
            + widen(wrk1[k]);
        let ss = (s0 * widen(a3[k]) - pc_0[k]) * widen(bnd[k]);
        sq[k] = ss * ss;
        dst[k] = pc_0[k] + omega * ss;
    }
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

/// Himeno v3.0's initial state (its `main`: `mat_set_init`, then `mat_set`) for a grid of
/// gi×gj×gk points (boundary planes included), at the block whose first local point (block
/// coordinates (1, 1, 1)) is global point `origin`: a0..a2 = 1, a3 = 1/6, b = 0, c = 1,
/// wrk1 = 0, bnd = 1, p = i²/(gi−1)². The quotients are computed in the accumulation type,
/// as the original computes them in its working precision (float; double when made
/// all-double), then stored. Ghost points are set too where they lie inside the grid.
pub fn himeno_init<T: Element>(n: [usize; 3], origin: [usize; 3], global: [usize; 3]) -> (Block<T>, HimenoCoefficients<T>)
where
    T::Acc: Real,
{
    let store = |v: T::Acc| T::from_f64(v.into(), Overflow::Saturate);
    let fill = |v: T::Acc| {
        let mut b = Block::<T>::zeros(n);
        b.data.fill(store(v));
        b
    };
    let acc = |x: f64| <T::Acc as Real>::from_f64(x);
    let mut p = Block::<T>::zeros(n);
    // Squares of indices below 2^24 are exact in f32: the quotient is the only rounding.
    let denom = acc(((global[0] - 1) * (global[0] - 1)) as f64);
    for i in 0..n[0] + 2 {
        let gi = origin[0] as i64 + i as i64 - 1;
        if gi < 0 || gi >= global[0] as i64 {
            continue;
        }
        let v = store(acc((gi * gi) as f64) / denom);
        let plane = p.plane();
        p.data[i * plane..(i + 1) * plane].fill(v);
    }
    let co = HimenoCoefficients {
        a: [fill(acc(1.0)), fill(acc(1.0)), fill(acc(1.0)), fill(acc(1.0) / acc(6.0))],
        b: [fill(acc(0.0)), fill(acc(0.0)), fill(acc(0.0))],
        c: [fill(acc(1.0)), fill(acc(1.0)), fill(acc(1.0))],
        wrk1: fill(acc(0.0)),
        bnd: fill(acc(1.0)),
    };
    (p, co)
}
