//! The 7-point sweep: `u' = c0·u + c1·(u_i−1 + u_i+1 + u_j−1 + u_j+1 + u_k−1 + u_k+1)`,
//! 8 FLOPs per point (5 + 1 additions, 2 multiplications), the heat equation's explicit step.

use super::window::{LANES, chunked, each_row, window};
use super::{Block, Region, Stores};
use crate::precision::{Element, Real};
use std::ops::{Add, Mul};

/// `c0·u + c1·s` with s the six neighbours `[u_k−1, u_k+1, u_i−1, u_i+1, u_j−1, u_j+1]`
/// summed `((u_k−1 + u_k+1) + (u_i−1 + u_i+1)) + (u_j−1 + u_j+1)`: the order every 7-point
/// sweep of effcal computes in (in f32 or f64, in f16 arithmetic, on the GPU).
#[inline(always)]
pub(super) fn update7<A: Copy + Add<Output = A> + Mul<Output = A>>(c0: A, c1: A, u: A, [km, kp, im, ip, jm, jp]: [A; 6]) -> A {
    c0 * u + c1 * (((km + kp) + (im + ip)) + (jm + jp))
}

/// One 7-point sweep of `r`: dst = c0·src + c1·Σ(6 neighbours); bf16 and f16 fields by
/// `super::seven_x86`'s rows where the CPU has AVX-512F.
pub fn sweep7<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc, stores: Stores)
where
    T::Acc: Real,
{
    #[cfg(target_arch = "x86_64")]
    if super::seven_x86::sweep7(src, dst, r, c0, c1, stores) {
        return;
    }
    sweep7_window(src, dst, r, c0, c1, stores);
}

/// [`sweep7`] through the window of widened planes (every format, every CPU).
pub(super) fn sweep7_window<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc, stores: Stores)
where
    T::Acc: Real,
{
    let (k0, k1) = (r.k.start, r.k.end);
    each_row(src, dst, r, stores, |w, j, dst| {
        let (cr, im, ip) = (&w.row(1, j)[k0 - 1..k1 + 1], &w.row(0, j)[k0..k1], &w.row(2, j)[k0..k1]);
        let (jm, jp) = (&w.row(1, j - 1)[k0..k1], &w.row(1, j + 1)[k0..k1]);
        let point = |k: usize| update7(c0, c1, cr[k + 1], [cr[k], cr[k + 2], im[k], ip[k], jm[k], jp[k]]);
        chunked(
            dst,
            |at, out| {
                let c: &[T::Acc; LANES + 2] = window(cr, at);
                let [a, b, d, e]: [&[T::Acc; LANES]; 4] = [im, ip, jm, jp].map(|x| window(x, at));
                for l in 0..LANES {
                    out[l] = update7(c0, c1, c[l + 1], [c[l], c[l + 2], a[l], b[l], d[l], e[l]]);
                }
            },
            point,
        );
    });
}

