//! The error of a GEMM, measured on sampled entries of C against a reference computed in
//! twice-f64 precision (Ogita–Rump–Oishi Dot2: TwoProduct by FMA, TwoSum).
//!
//! Two errors, both componentwise relative to `Σ_k |a_ik|·|b_kj|`:
//! - `rel_error_vs_f64`: against the *unrounded* inputs, i.e. what using the storage
//!   precision costs. Expected below `2u + u² + (k + 4)·u_acc` (u of the storage format,
//!   u_acc of the accumulation), plus a subnormal term for FP8. Under MX scaling the
//!   element error can reach `1 − max/2^(emax+1)` (12.5% for E4M3 and E5M2): the OCP
//!   rule `X = 2^(floor(log2 amax) − emax)` maps a block's largest values into
//!   `[2^emax, 2^(emax+1))`, above the format's max, and they are clamped. That larger
//!   per-element error replaces u in the expected error.
//! - `rel_error_vs_rounded`: against the stored inputs, i.e. the arithmetic alone. It must
//!   stay below [`arithmetic_bound`] = `(k + 4)·u_acc` (Higham's γ_k for k products and
//!   sums, plus the final scaling): this is the check that marks a result valid.

use crate::precision::scaling::{Quantized, Scaling};
use crate::precision::{Element, Precision};

/// What the sampled check found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    pub samples: usize,
    /// max over samples of |c − Σ a·b| / Σ|a||b|, with a, b the unrounded inputs.
    pub rel_error_vs_f64: f64,
    /// max over samples of |c − Σ â·b̂| / Σ|â||b̂|, with â, b̂ the stored inputs.
    pub rel_error_vs_rounded: f64,
    /// The bound `rel_error_vs_rounded` must respect.
    pub arithmetic_bound: f64,
    /// The expected size of `rel_error_vs_f64`: `2u + u² + arithmetic_bound`.
    pub expected_error: f64,
}

impl Accuracy {
    /// True when the arithmetic error is within its bound and nothing is NaN.
    pub fn valid(&self) -> bool {
        self.rel_error_vs_rounded <= self.arithmetic_bound && self.rel_error_vs_f64.is_finite()
    }
}

/// `(k + 4)·u_acc`: the arithmetic error bound of a k-term dot product accumulated in the
/// compute precision of `p`, with room for the conversion of the scales.
pub fn arithmetic_bound(p: Precision, k: usize) -> f64 {
    (k as f64 + 4.0) * p.compute().info().unit_roundoff()
}

/// The largest relative error of storing one element: u, or the MX clamping error.
pub fn element_error(p: Precision, mx: bool) -> f64 {
    let u = p.info().unit_roundoff();
    match p.layout() {
        Some(l) if mx => u.max(1.0 - l.max() / 2f64.powi(l.emax() + 1)),
        _ => u,
    }
}

/// Σ x_i·y_i in twice-f64 precision (Dot2); also returns Σ |x_i·y_i|.
pub fn dot2(x: impl Iterator<Item = f64>, y: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut s, mut comp, mut abs) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in x.zip(y) {
        let p = a * b;
        let perr = a.mul_add(b, -p);
        let t = s + p;
        let z = t - s;
        let serr = (s - (t - z)) + (p - z);
        s = t;
        comp += perr + serr;
        abs += p.abs();
    }
    (s + comp, abs)
}

/// Checks `c = a·b` on `samples` entries chosen by `seed`; `a_src(i, l)` and `b_src(l, j)`
/// give the unrounded inputs the quantised operands were made from.
#[allow(clippy::too_many_arguments)]
pub fn check<T: Element>(
    c: &[T::Acc],
    a: &Quantized<T>,
    b: &Quantized<T>,
    a_src: impl Fn(usize, usize) -> f64 + Sync,
    b_src: impl Fn(usize, usize) -> f64 + Sync,
    samples: usize,
    seed: u64,
    accumulate: super::Accumulate,
) -> Accuracy {
    let bound = match accumulate {
        super::Accumulate::Wide => arithmetic_bound(T::PRECISION, a.cols),
        super::Accumulate::F16 { block } => super::f16acc::bound(a.cols, block),
    };
    check_bounded(c, a, b, a_src, b_src, samples, seed, bound)
}

/// [`check`] against a given arithmetic bound (an arithmetic other than this crate's: a
/// GPU's tensor cores, with the bound model of its backend).
#[allow(clippy::too_many_arguments)]
pub fn check_bounded<T: Element>(
    c: &[T::Acc],
    a: &Quantized<T>,
    b: &Quantized<T>,
    a_src: impl Fn(usize, usize) -> f64 + Sync,
    b_src: impl Fn(usize, usize) -> f64 + Sync,
    samples: usize,
    seed: u64,
    bound: f64,
) -> Accuracy {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let mut acc = Accuracy { samples: 0, rel_error_vs_f64: 0.0, rel_error_vs_rounded: 0.0, arithmetic_bound: bound, expected_error: 0.0 };
    let mx = |q: &Quantized<T>| matches!(q.scaling, Scaling::Mx { .. });
    let u = element_error(T::PRECISION, mx(a) || mx(b));
    acc.expected_error = 2.0 * u + u * u + acc.arithmetic_bound;
    if m == 0 || n == 0 {
        return acc;
    }
    let rel = |err: f64, scale: f64| if scale > 0.0 { err / scale } else if err == 0.0 { 0.0 } else { f64::INFINITY };
    for s in 0..samples {
        let r = crate::rng::mix(seed, s as u64);
        let (i, j) = ((r % m as u64) as usize, ((r >> 32) % n as u64) as usize);
        let got: f64 = c[i * n + j].into();
        let (exact, scale) = dot2((0..k).map(|l| a_src(i, l)), (0..k).map(|l| b_src(l, j)));
        let (exact_r, scale_r) = dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
        // NaN compares false with max(): route it to infinity so that it cannot hide.
        let e1 = rel((got - exact).abs(), scale);
        let e2 = rel((got - exact_r).abs(), scale_r);
        acc.rel_error_vs_f64 = if e1.is_nan() { f64::INFINITY } else { acc.rel_error_vs_f64.max(e1) };
        acc.rel_error_vs_rounded = if e2.is_nan() { f64::INFINITY } else { acc.rel_error_vs_rounded.max(e2) };
        acc.samples += 1;
    }
    acc
}
