//! The 27-point sweep: `u' = c0·u + c1·Σ(26 neighbours)`, HPCG's 27-point operator,
//! counted as HPCG counts it: 2 FLOPs per matrix entry, 54 per point.

use super::window::{LANES, chunked, each_row, window};
use super::{Block, Region, Stores};
use crate::precision::{Element, Real};

/// One 27-point sweep of `r`: dst = c0·src + c1·Σ(26 neighbours).
pub fn sweep27<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc, stores: Stores)
where
    T::Acc: Real,
{
    let (k0, k1) = (r.k.start, r.k.end);
    each_row(src, dst, r, stores, |w, j, dst| {
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
