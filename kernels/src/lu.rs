//! LU factorisation without pivoting, right-looking and blocked, with the trailing update
//! in a low storage precision (the HPL-MxP factorisation, on one process).
//!
//! For each block column k of width `nb` of the row-major n×n matrix A (held in the
//! accumulation type: f32, or f64 for the f64 baseline):
//! 1. factor the diagonal block `A_kk = L_kk·U_kk` (unblocked, no pivoting);
//! 2. the U panel `U_kj = L_kk⁻¹·A_kj` and the L panel `L_ik = A_ik·U_kk⁻¹` (triangular
//!    solves in the accumulation type), stored back in A;
//! 3. round both panels to the storage precision T and update the trailing matrix
//!    `A_ij −= L_ik·U_kj` with [`crate::gemm::gemm_update`] (f32 accumulation into A).
//!
//! FLOPs: 2/3·n³ (+ 3/2·n² for the solve), HPL's convention. Without pivoting the matrix
//! must be one that factors stably so (the HPL-MxP generator's rows are diagonally
//! dominant); a zero or non-finite pivot is an error, not a panic.

use crate::KernelError;
use crate::gemm::{GemmElement, GemmParams, GemmPath, Update, gemm_update};
use crate::precision::scaling::{KAxis, Quantized, Scaling};
use crate::precision::{Element, Overflow};
use rayon::prelude::*;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// The accumulation types the factorisation computes in: f32 and f64.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + From<f32>
    + Into<f64>
{
    fn from_f64(x: f64) -> Self;
    fn is_finite(self) -> bool;
}

impl Real for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuParams {
    /// Block size (columns per step).
    pub nb: usize,
    pub gemm: GemmParams,
}

/// What the factorisation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuInfo {
    /// The GEMM path of the trailing updates (None when n <= nb: no update).
    pub path: Option<GemmPath>,
    pub steps: usize,
}

/// Factors `a` (row-major n×n) in place into unit-lower L (below the diagonal) and U, with
/// the trailing updates done with panels rounded to `T`.
pub fn factor<T: GemmElement>(a: &mut [T::Acc], n: usize, p: &LuParams) -> Result<LuInfo, KernelError>
where
    T::Acc: Real,
{
    if a.len() != n * n {
        return Err(KernelError::Dimensions(format!("LU: {} elements for a {n}×{n} matrix", a.len())));
    }
    if p.nb == 0 {
        return Err(KernelError::InvalidParameter { name: "nb", given: "0".into(), allowed: "a block size of at least 1".into() });
    }
    let mut info = LuInfo { path: None, steps: 0 };
    for k0 in (0..n).step_by(p.nb) {
        let kb = p.nb.min(n - k0);
        info.steps += 1;
        factor_diagonal(a, n, k0, kb)?;
        let (r0, rest) = (k0 + kb, n - k0 - kb);
        if rest == 0 {
            break;
        }
        solve_u_panel(a, n, k0, kb);
        solve_l_panel(a, n, k0, kb);
        let l = quantize::<T>(a, n, (r0, k0), (rest, kb), KAxis::Cols);
        let u = quantize::<T>(a, n, (k0, r0), (kb, rest), KAxis::Rows);
        let minus_one = -T::Acc::from(1.0);
        let up = Update { alpha: minus_one, accumulate: true };
        info.path = Some(gemm_update(&mut a[r0 * n + r0..], n, &l, &u, up, &p.gemm)?.path);
    }
    Ok(info)
}

/// Unblocked LU of the kb×kb diagonal block at (k0, k0).
fn factor_diagonal<A: Real>(a: &mut [A], n: usize, k0: usize, kb: usize) -> Result<(), KernelError> {
    for j in k0..k0 + kb {
        let pivot = a[j * n + j];
        if pivot == A::default() || !pivot.is_finite() {
            return Err(KernelError::Breakdown { column: j, pivot: pivot.into() });
        }
        let (top, below) = a.split_at_mut((j + 1) * n);
        let urow = &top[j * n + j + 1..j * n + k0 + kb];
        for row in below.chunks_mut(n).take(k0 + kb - j - 1) {
            let l = row[j] / pivot;
            row[j] = l;
            for (x, &u) in row[j + 1..k0 + kb].iter_mut().zip(urow) {
                *x = *x - l * u;
            }
        }
    }
    Ok(())
}

/// U panel: rows k0..k0+kb, columns k0+kb..n ← L_kk⁻¹ · (that block), L_kk unit lower.
fn solve_u_panel<A: Real>(a: &mut [A], n: usize, k0: usize, kb: usize) {
    let c0 = k0 + kb;
    for i in k0 + 1..k0 + kb {
        let (top, rest) = a.split_at_mut(i * n);
        let row = &mut rest[..n];
        for l in k0..i {
            let f = row[l];
            for (x, &u) in row[c0..].iter_mut().zip(&top[l * n + c0..l * n + n]) {
                *x = *x - f * u;
            }
        }
    }
}

/// L panel: rows k0+kb..n, columns k0..k0+kb ← (that block) · U_kk⁻¹, one row per task.
fn solve_l_panel<A: Real>(a: &mut [A], n: usize, k0: usize, kb: usize) {
    let (top, below) = a.split_at_mut((k0 + kb) * n);
    let ukk = &top[k0 * n..];
    below.par_chunks_mut(n).for_each(|row| {
        for l in k0..k0 + kb {
            let urow = &ukk[(l - k0) * n..];
            let x = row[l] / urow[l];
            row[l] = x;
            for (y, &u) in row[l + 1..k0 + kb].iter_mut().zip(&urow[l + 1..k0 + kb]) {
                *y = *y - x * u;
            }
        }
    });
}

/// Rounds the block at `(i0, j0)` of shape `(rows, cols)` to `T`, row-major.
fn quantize<T: Element>(a: &[T::Acc], n: usize, (i0, j0): (usize, usize), (rows, cols): (usize, usize), k_axis: KAxis) -> Quantized<T> {
    let mut data = vec![T::default(); rows * cols];
    data.par_chunks_mut(cols).enumerate().for_each(|(r, out)| {
        let start = (i0 + r) * n + j0;
        T::from_acc_slice(&a[start..start + cols], out, Overflow::Saturate);
    });
    Quantized { data, rows, cols, k_axis, scaling: Scaling::None }
}

/// Solves `L·U·x = b` in place with the factors of [`factor`] (forward, then backward).
pub fn solve<A: Real>(lu: &[A], n: usize, x: &mut [A]) {
    assert!(lu.len() == n * n && x.len() == n, "solve: sizes do not match n");
    for i in 0..n {
        let row = &lu[i * n..i * n + i];
        let s = row.iter().zip(&x[..i]).fold(A::default(), |s, (&l, &y)| s + l * y);
        x[i] = x[i] - s;
    }
    for i in (0..n).rev() {
        let row = &lu[i * n..(i + 1) * n];
        let s = row[i + 1..].iter().zip(&x[i + 1..]).fold(A::default(), |s, (&u, &y)| s + u * y);
        x[i] = (x[i] - s) / row[i];
    }
}
