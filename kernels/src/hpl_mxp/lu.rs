//! LU factorisation without pivoting, right-looking and blocked, with the trailing update
//! in a low storage precision: HPL-MxP's factorisation. The building blocks here
//! ([`factor_block`], [`solve_l_panel`], [`solve_u_panel`], [`quantize_block`]) are what
//! the distributed solver of effcal-harness calls on each rank's pieces; [`factor`] puts
//! them together on one process.
//!
//! For each block column k of width `nb` of the row-major n×n matrix A (held in the
//! accumulation type: f32, or f64 for the f64 baseline):
//! 1. factor the diagonal block `A_kk = L_kk·U_kk` (recursive, no pivoting);
//! 2. the U panel `U_kj = L_kk⁻¹·A_kj` and the L panel `L_ik = A_ik·U_kk⁻¹` (triangular
//!    solves in the accumulation type), stored back in A;
//! 3. round both panels to the storage precision T and update the trailing matrix
//!    `A_ij −= L_ik·U_kj` with [`crate::gemm::gemm_update`] (f32 accumulation into A).
//!
//! FLOPs: 2/3·n³ (+ 3/2·n² for the solve), HPL's convention. Without pivoting the matrix
//! must be one that factors stably so (the HPL-MxP generators' are); a zero or non-finite
//! pivot is an error, not a panic.

use crate::KernelError;
use crate::gemm::{GemmElement, GemmParams, GemmPath, Update, gemm_update};
use crate::precision::scaling::{KAxis, Quantized, ScaleMode, Scaling};
use crate::precision::{Element, Overflow, Real};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{solve_lower_triangular_in_place, solve_unit_lower_triangular_in_place};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

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

fn par() -> Par {
    match rayon::current_num_threads() {
        1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// The row-major `rows × cols` matrix of row stride `ld` at the start of `a`, as a view.
pub fn rm_mut<A: Real>(a: &mut [A], rows: usize, cols: usize, ld: usize) -> MatMut<'_, A> {
    let len = if rows == 0 { 0 } else { (rows - 1) * ld + cols };
    // The transpose of a column-major view (see `gemm::faer_matmul` on faer 0.24.4).
    MatMut::from_column_major_slice_with_stride_mut(&mut a[..len], cols, rows, ld).transpose_mut()
}

/// [`rm_mut`], read-only.
pub fn rm_ref<A: Real>(a: &[A], rows: usize, cols: usize, ld: usize) -> MatRef<'_, A> {
    let len = if rows == 0 { 0 } else { (rows - 1) * ld + cols };
    MatRef::from_column_major_slice_with_stride(&a[..len], cols, rows, ld).transpose()
}

/// Factors the square block `a` in place into unit-lower L and U, without pivoting:
/// recursive halving, triangular solves and the Schur update by faer, 32 columns and
/// fewer unblocked. `col0` is the block's first global column, for the error message.
pub fn factor_block<A: Real>(a: MatMut<'_, A>, col0: usize) -> Result<(), KernelError> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "factor_block: the block must be square");
    if n <= 32 {
        return factor_unblocked(a, col0);
    }
    let n1 = n / 2;
    let (mut a11, mut a12, mut a21, a22) = a.split_at_mut(n1, n1);
    factor_block(a11.rb_mut(), col0)?;
    solve_unit_lower_triangular_in_place(a11.rb(), a12.rb_mut(), par());
    solve_lower_triangular_in_place(a11.rb().transpose(), a21.rb_mut().transpose_mut(), par());
    let mut a22 = a22;
    matmul(a22.rb_mut(), Accum::Add, a21.rb(), a12.rb(), -A::from(1.0), par());
    factor_block(a22, col0 + n1)
}

fn factor_unblocked<A: Real>(mut a: MatMut<'_, A>, col0: usize) -> Result<(), KernelError> {
    let n = a.nrows();
    for j in 0..n {
        let pivot = *a.rb().get(j, j);
        if pivot == A::default() || !pivot.is_finite() {
            return Err(KernelError::Breakdown { column: col0 + j, pivot: pivot.into() });
        }
        for i in j + 1..n {
            let l = *a.rb().get(i, j) / pivot;
            *a.rb_mut().get_mut(i, j) = l;
            for c in j + 1..n {
                let u = *a.rb().get(j, c);
                let x = a.rb_mut().get_mut(i, c);
                *x -= l * u;
            }
        }
    }
    Ok(())
}

/// The L panel: `panel ← panel · U⁻¹`, U the upper triangle (diagonal included) of the
/// factored diagonal block `diag`.
pub fn solve_l_panel<A: Real>(diag: MatRef<'_, A>, panel: MatMut<'_, A>) {
    if panel.nrows() > 0 {
        solve_lower_triangular_in_place(diag.transpose(), panel.transpose_mut(), par());
    }
}

/// The U panel: `panel ← L⁻¹ · panel`, L the unit lower triangle of the factored
/// diagonal block `diag`.
pub fn solve_u_panel<A: Real>(diag: MatRef<'_, A>, panel: MatMut<'_, A>) {
    if panel.ncols() > 0 {
        solve_unit_lower_triangular_in_place(diag, panel, par());
    }
}

/// Rounds the row-major `rows × cols` block of row stride `ld` at the start of `a` to `T`
/// (nearest even, saturating), scaled per `mode` (tensor or MX only for f16 and FP8,
/// whose accumulation type is f32).
pub fn quantize_block<T: Element>(a: &[T::Acc], ld: usize, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Quantized<T> {
    if mode != ScaleMode::None {
        let mut src = vec![0f32; rows * cols];
        src.par_chunks_mut(cols.max(1)).enumerate().for_each(|(r, out)| {
            for (o, &x) in out.iter_mut().zip(&a[r * ld..r * ld + cols]) {
                *o = x.into() as f32; // exact: Acc is f32 for every scalable format
            }
        });
        return Quantized::from_f32(&src, rows, cols, k_axis, mode, Overflow::Saturate);
    }
    let mut data = vec![T::default(); rows * cols];
    data.par_chunks_mut(cols.max(1)).enumerate().for_each(|(r, out)| {
        T::from_acc_slice(&a[r * ld..r * ld + cols], out, Overflow::Saturate);
    });
    Quantized { data, rows, cols, k_axis, scaling: Scaling::None }
}

/// Factors `a` (row-major n×n) in place into unit-lower L (below the diagonal) and U, with
/// the trailing updates done with panels rounded to `T` (no scaling).
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
        let (r0, rest) = (k0 + kb, n - k0 - kb);
        // Rows k0.. from column k0: [A_kk A_kj; A_ik A_ij].
        let view = rm_mut(&mut a[k0 * n + k0..], n - k0, n - k0, n);
        let (mut akk, akj, aik, _) = view.split_at_mut(kb, kb);
        factor_block(akk.rb_mut(), k0)?;
        if rest == 0 {
            break;
        }
        solve_u_panel(akk.rb(), akj);
        solve_l_panel(akk.rb(), aik);
        let l = quantize_block::<T>(&a[r0 * n + k0..], n, rest, kb, KAxis::Cols, ScaleMode::None);
        let u = quantize_block::<T>(&a[k0 * n + r0..], n, kb, rest, KAxis::Rows, ScaleMode::None);
        let up = Update { alpha: -T::Acc::from(1.0), accumulate: true };
        info.path = Some(gemm_update(&mut a[r0 * n + r0..], n, &l, &u, up, &p.gemm)?.path);
    }
    Ok(info)
}

/// Solves `L·U·x = b` in place with the factors of [`factor`] (forward, then backward).
pub fn solve<A: Real>(lu: &[A], n: usize, x: &mut [A]) {
    assert!(lu.len() == n * n && x.len() == n, "solve: sizes do not match n");
    for i in 0..n {
        let row = &lu[i * n..i * n + i];
        let s = row.iter().zip(&x[..i]).fold(A::default(), |s, (&l, &y)| s + l * y);
        x[i] -= s;
    }
    for i in (0..n).rev() {
        let row = &lu[i * n..(i + 1) * n];
        let s = row[i + 1..].iter().zip(&x[i + 1..]).fold(A::default(), |s, (&u, &y)| s + u * y);
        x[i] = (x[i] - s) / row[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diagonally dominant test matrix with exact small entries.
    fn matrix(n: usize) -> Vec<f64> {
        (0..n * n).map(|x| if x / n == x % n { n as f64 } else { ((x * 7919 % 13) as f64 - 6.0) / 8.0 }).collect()
    }

    #[test]
    fn the_recursive_block_factorisation_reproduces_the_matrix() {
        for n in [1, 5, 32, 33, 100] {
            let a = matrix(n);
            let mut lu = a.clone();
            factor_block(rm_mut(&mut lu, n, n, n), 0).unwrap();
            for i in 0..n {
                for j in 0..n {
                    let s: f64 = (0..=i.min(j)).map(|l| if l == i { lu[l * n + j] } else { lu[i * n + l] * lu[l * n + j] }).sum();
                    assert!((s - a[i * n + j]).abs() <= 1e-12 * n as f64, "n={n} ({i},{j}): {s} vs {}", a[i * n + j]);
                }
            }
        }
    }

    #[test]
    fn a_breakdown_deep_in_the_recursion_names_its_global_column() {
        let n = 70;
        let mut a = matrix(n);
        for j in 0..n {
            a[50 * n + j] = a[49 * n + j]; // rows 49 and 50 equal: pivot 50 becomes 0
        }
        for i in 0..n {
            a[i * n + 50] = a[i * n + 49];
        }
        let err = factor_block(rm_mut(&mut a, n, n, n), 1000).unwrap_err();
        assert!(matches!(err, KernelError::Breakdown { column: 1050, .. }), "{err:?}");
    }
}
