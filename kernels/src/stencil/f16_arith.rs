//! The 7- and 27-point sweeps of f16 fields computed in f16: every addition and
//! multiplication rounded to f16 (IEEE binary16, nearest-even, overflow to ±Inf), in the
//! order of operations the wide sweeps use, with no fused multiply-add. That is the
//! arithmetic of an FP16 unit (A64FX, AVX512_FP16, a GPU's half2), without the widening
//! to f32 the other sweeps do; its error against f64 is what a code computing in f16 pays.
//!
//! Native where the CPU has AVX512_FP16 (`super::f16_native`: `vaddph`, `vmulph` on the
//! f16 fields in place); emulated elsewhere: each operation is done over a row in f32 and
//! the row rounded to f16 (F16C where the CPU has it). One operation on two f16 values
//! rounded first to f32 and then to f16 gives the correctly rounded f16 result (f32's 24
//! bits ≥ 2·11 + 2: the double rounding is innocuous), so the two give the same bits.

use super::window::each_row;
use super::{Block, Region, Stores};
use crate::precision::{Element, Overflow, f16};

/// The rows one operation of a sweep works on: results in f32 (each an f16 value) and the
/// f16 bits they are rounded through.
struct Rows {
    bits: Vec<f16>,
}

impl Rows {
    fn new(len: usize) -> Self {
        Self { bits: vec![f16::ZERO; len] }
    }

    /// One f16 operation on every point of a row: `out[k] = f16(f(k, out[k]))`.
    fn op(&mut self, out: &mut [f32], f: impl Fn(usize, f32) -> f32) {
        for (k, x) in out.iter_mut().enumerate() {
            *x = f(k, *x);
        }
        f16::from_f32_slice(out, &mut self.bits, Overflow::NonSaturating);
        f16::to_f32_slice(&self.bits, out);
    }
}

/// True where the f16-arithmetic sweeps run natively (AVX512_FP16), false where they are
/// emulated.
pub fn f16_arith_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::f16_native::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One 7-point sweep of `r` in f16 arithmetic: dst = c0·u + c1·(((u_k−1 + u_k+1) +
/// (u_i−1 + u_i+1)) + (u_j−1 + u_j+1)), 8 roundings per point; native where
/// [`f16_arith_native`].
pub fn sweep7_f16(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    #[cfg(target_arch = "x86_64")]
    if super::f16_native::available() {
        return super::f16_native::sweep7(src, dst, r, c0, c1, stores);
    }
    sweep7_emulated(src, dst, r, c0, c1, stores);
}

/// [`sweep7_f16`], emulated.
pub(super) fn sweep7_emulated(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    let (k0, k1) = (r.k.start, r.k.end);
    let (c0, c1) = (c0.to_f32(), c1.to_f32());
    each_row(src, dst, r, stores, |w, j, out| {
        let (cr, im, ip) = (&w.row(1, j)[k0 - 1..k1 + 1], &w.row(0, j)[k0..k1], &w.row(2, j)[k0..k1]);
        let (jm, jp) = (&w.row(1, j - 1)[k0..k1], &w.row(1, j + 1)[k0..k1]);
        let mut rows = Rows::new(out.len());
        let (mut s, mut t) = (vec![0f32; out.len()], vec![0f32; out.len()]);
        rows.op(&mut s, |k, _| cr[k] + cr[k + 2]);
        rows.op(&mut t, |k, _| im[k] + ip[k]);
        rows.op(&mut s, |k, x| x + t[k]);
        rows.op(&mut t, |k, _| jm[k] + jp[k]);
        rows.op(&mut s, |k, x| x + t[k]);
        rows.op(&mut s, |_, x| c1 * x);
        rows.op(out, |k, _| c0 * cr[k + 1]);
        rows.op(out, |k, x| x + s[k]);
    });
}

/// One 27-point sweep of `r` in f16 arithmetic: the 26 neighbours summed as the wide sweep
/// sums them (rows `(u_k−1 + u_k) + u_k+1`, planes `(row + row) + row`, then `(plane +
/// plane) + plane`: 25 additions), then dst = c0·u + c1·sum; 28 roundings per point; native
/// where [`f16_arith_native`].
pub fn sweep27_f16(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    #[cfg(target_arch = "x86_64")]
    if super::f16_native::available() {
        return super::f16_native::sweep27(src, dst, r, c0, c1, stores);
    }
    sweep27_emulated(src, dst, r, c0, c1, stores);
}

/// [`sweep27_f16`], emulated.
pub(super) fn sweep27_emulated(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    let (k0, k1) = (r.k.start, r.k.end);
    let (c0, c1) = (c0.to_f32(), c1.to_f32());
    each_row(src, dst, r, stores, |w, j, out| {
        // The nine rows (i + di, j + dj), di, dj in −1..=1, each k0−1..k1+1.
        let nine: [&[f32]; 9] = std::array::from_fn(|n| &w.row(n / 3, j + n % 3 - 1)[k0 - 1..k1 + 1]);
        let mut rows = Rows::new(out.len());
        // Row n's sum into `to`.
        let row_sum = |rows: &mut Rows, to: &mut [f32], n: usize| {
            let b = nine[n];
            if n == 4 {
                rows.op(to, |k, _| b[k] + b[k + 2]);
            } else {
                rows.op(to, |k, _| b[k] + b[k + 1]);
                rows.op(to, |k, x| x + b[k + 2]);
            }
        };
        let mut planes = [vec![0f32; out.len()], vec![0f32; out.len()], vec![0f32; out.len()]];
        let mut t = vec![0f32; out.len()];
        for (d, p) in planes.iter_mut().enumerate() {
            row_sum(&mut rows, p, 3 * d);
            for n in [3 * d + 1, 3 * d + 2] {
                row_sum(&mut rows, &mut t, n);
                rows.op(p, |k, x| x + t[k]);
            }
        }
        let [mut s, p1, p2] = planes;
        rows.op(&mut s, |k, x| x + p1[k]);
        rows.op(&mut s, |k, x| x + p2[k]);
        rows.op(&mut s, |_, x| c1 * x);
        rows.op(out, |k, _| c0 * nine[4][k + 1]);
        rows.op(out, |k, x| x + s[k]);
    });
}
