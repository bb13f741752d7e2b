//! The 27-point sweep: `u' = c0·u + c1·Σ(26 neighbours)`, HPCG's 27-point operator,
//! counted as HPCG counts it: 2 FLOPs per matrix entry, 54 per point.
//!
//! The 26 neighbours are summed as a tree, row by row, then plane by plane: each of the
//! nine rows (i + di, j + dj) gives `(u[k−1] + u[k]) + u[k+1]` (the centre row
//! `u[k−1] + u[k+1]`), each plane di the sum `(row dj=−1 + row 0) + row +1`, and the point
//! `(plane −1 + plane 0) + plane +1`: 25 additions six deep. Summed one after another from
//! zero (26 additions in one chain of dependences) the sweep waited on the adder's latency:
//! the tree runs 1.2–1.4× faster on one Zen 4 core (docs/results.md).

use super::window::{LANES, chunked, each_row, window};
use super::{Block, Region, Stores};
use crate::precision::{Element, Real};
use std::ops::Add;

/// The sum of the 26 neighbours of a point from the three values around it in each of the
/// nine rows (di, dj) = (n / 3 − 1, n % 3 − 1): `at(n, d)` is row n's value at k + d − 1.
/// The order every 27-point sweep of effcal sums in: in f32 or f64, and in f16 arithmetic
/// (`super::f16_arith`; and the GPU's kernel).
#[inline(always)]
pub(super) fn neighbours27<A: Copy + Add<Output = A>>(at: impl Fn(usize, usize) -> A) -> A {
    let row = |n: usize| if n == 4 { at(n, 0) + at(n, 2) } else { (at(n, 0) + at(n, 1)) + at(n, 2) };
    let plane = |d: usize| (row(3 * d) + row(3 * d + 1)) + row(3 * d + 2);
    (plane(0) + plane(1)) + plane(2)
}

/// One 27-point sweep of `r`: dst = c0·src + c1·Σ(26 neighbours).
pub fn sweep27<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc, stores: Stores)
where
    T::Acc: Real,
{
    let (k0, k1) = (r.k.start, r.k.end);
    each_row(src, dst, r, stores, |w, j, dst| {
        // The nine rows (i + di, j + dj), di, dj in −1..=1, each k0−1..k1+1.
        let nine: [&[T::Acc]; 9] = std::array::from_fn(|n| &w.row(n / 3, j + n % 3 - 1)[k0 - 1..k1 + 1]);
        let point = |k: usize| c0 * nine[4][k + 1] + c1 * neighbours27(|n, d| nine[n][k + d]);
        chunked(
            dst,
            |at, out| {
                let rows: [&[T::Acc; LANES + 2]; 9] = std::array::from_fn(|n| window(nine[n], at));
                for (l, out) in out.iter_mut().enumerate() {
                    *out = c0 * rows[4][l + 1] + c1 * neighbours27(|n, d| rows[n][l + d]);
                }
            },
            point,
        );
    });
}
