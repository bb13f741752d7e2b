//! f16 accumulation, portable (issue 15): the arithmetic of an FP16 FMA unit (AVX512_FP16's
//! `vfmadd231ph`, A64FX's FP16 `fmla`) written in scalar code, the reference a native kernel
//! must match and the what-if of its accuracy on any CPU. Over each block of `block` terms
//! of k the partial sum is an f16, each step `s ← round_f16(a·b + s)` with one rounding (a
//! fused multiply-add); each block's sum is then added to an f32 accumulator, and
//! `C = α·acc` (or `C += α·acc`) in f32.
//!
//! Each step is computed in f64 and rounded once to f16, which is the correctly rounded
//! FMA: a·b of two f16 is exact (22 bits); a·b + s is exact in f64 whenever |a·b| < 2^29
//! and s is not far larger (the sum's bits then span at most 2^28 down to 2^-24: 53 bits);
//! where s is far larger, a·b lies far below half an f16 ulp of s and the f64 rounding
//! cannot move the f16 result off s; beyond 2^29 the result overflows f16 (to ±inf, IEEE)
//! either way.
//!
//! It is slow (scalar, one rounding per step): for tests, accuracy studies and CPUs without
//! FP16 arithmetic.

use super::{GemmInfo, GemmPath, Update};
use crate::precision::scaling::Quantized;
use crate::precision::{Element, Overflow, f16};
use rayon::prelude::*;

/// `C = α·A·B` or `C += α·A·B` on the m×n C of row stride `ldc`, products summed in f16
/// over blocks of `block` terms (see the module documentation). A and B are unscaled.
pub(super) fn gemm(c: &mut [f32], ldc: usize, a: &Quantized<f16>, b: &Quantized<f16>, up: Update<f32>, block: usize) -> GemmInfo {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let av: Vec<f64> = a.data.iter().map(|&x| Element::to_f64(x)).collect();
    // B by columns, so a column's k terms are contiguous.
    let mut bt = vec![0f64; k * n];
    for l in 0..k {
        for j in 0..n {
            bt[j * k + l] = Element::to_f64(b.data[l * n + j]);
        }
    }
    c.par_chunks_mut(ldc.max(1)).take(m).enumerate().for_each(|(i, row)| {
        let x = &av[i * k..(i + 1) * k];
        for (j, out) in row[..n].iter_mut().enumerate() {
            let s = up.alpha * dot(x, &bt[j * k..(j + 1) * k], block);
            *out = if up.accumulate { *out + s } else { s };
        }
    });
    GemmInfo { path: GemmPath::F16Accumulate }
}

/// Σ x_l·y_l of f16 values: in f16 over each block of `block` terms, one rounding per step,
/// the blocks' sums added in f32.
pub fn dot(x: &[f64], y: &[f64], block: usize) -> f32 {
    let mut acc = 0f32;
    for (xb, yb) in x.chunks(block.max(1)).zip(y.chunks(block.max(1))) {
        let mut s = 0f64;
        for (&a, &b) in xb.iter().zip(yb) {
            s = fma_f16(a, b, s);
        }
        acc += s as f32;
    }
    acc
}

/// round_f16(a·b + s) for f16 values held in f64: one rounding, to nearest even, overflow
/// to ±inf.
pub fn fma_f16(a: f64, b: f64, s: f64) -> f64 {
    Element::to_f64(<f16 as Element>::from_f64(a.mul_add(b, s), Overflow::NonSaturating))
}

/// The bound of the arithmetic error of a k-term dot product summed this way, relative to
/// Σ|a·b|: γ(block) in f16's unit roundoff for a block's chain of FMAs, plus γ(blocks + 4)
/// in f32's for adding the blocks and the final α (γ(n) ≈ n·u; (n + 1)·u here).
pub fn bound(k: usize, block: usize) -> f64 {
    let (u16, u32) = (2f64.powi(-11), 2f64.powi(-24));
    let blocks = k.div_ceil(block.max(1)) as f64;
    let chain = (block.min(k.max(1)) as f64 + 1.0) * u16;
    chain + (blocks + 5.0) * u32 * (1.0 + chain)
}
