//! Iterative refinement in f64 with low-precision LU factors as the preconditioner
//! (classical IR, the HPL-MxP scheme on one process):
//!
//! ```text
//! x = 0
//! repeat: r = b − A·x (f64); stop when ‖r‖∞ / ((‖A‖∞‖x‖∞ + ‖b‖∞)·n·ε) ≤ 16, ε = 2^-53
//!         d = U⁻¹L⁻¹r (in the factors' precision); x += d
//! ```
//!
//! At most `max_iters` corrections (HPL-MxP allows 50); a run that does not reach the
//! threshold is not converged, and the caller reports it FAILED.

use crate::lu::{Real, solve};

/// HPL-MxP's threshold on the scaled residual.
pub const THRESHOLD: f64 = 16.0;
/// HPL-MxP's limit on refinement steps.
pub const MAX_ITERS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct IrInfo {
    /// Corrections applied.
    pub iterations: usize,
    /// The scaled residual after the last correction.
    pub scaled_residual: f64,
    pub converged: bool,
}

/// ‖r‖∞ / ((‖A‖∞‖x‖∞ + ‖b‖∞)·n·2^-53).
pub fn scaled_residual(r_inf: f64, a_inf: f64, x_inf: f64, b_inf: f64, n: usize) -> f64 {
    r_inf / ((a_inf * x_inf + b_inf) * n as f64 * 2f64.powi(-53))
}

fn norm_inf(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Refines the solution of `A x = b`: `matvec(x, y)` computes `y = A·x` in f64, `lu` holds
/// the factors, `a_inf` is ‖A‖∞. Returns x and what happened.
pub fn refine<A: Real>(lu: &[A], n: usize, matvec: impl Fn(&[f64], &mut [f64]), b: &[f64], a_inf: f64, max_iters: usize) -> (Vec<f64>, IrInfo) {
    let mut x = vec![0.0; n];
    let (mut ax, mut d) = (vec![0.0; n], vec![A::default(); n]);
    let b_inf = norm_inf(b);
    let mut info = IrInfo { iterations: 0, scaled_residual: f64::INFINITY, converged: false };
    loop {
        matvec(&x, &mut ax);
        let mut r_inf = 0f64;
        for ((di, &bi), &yi) in d.iter_mut().zip(b).zip(&ax) {
            let r = bi - yi;
            r_inf = r_inf.max(r.abs());
            *di = A::from_f64(r);
        }
        info.scaled_residual = scaled_residual(r_inf, a_inf, norm_inf(&x), b_inf, n);
        info.converged = info.scaled_residual <= THRESHOLD;
        if info.converged || info.iterations == max_iters || !info.scaled_residual.is_finite() {
            return (x, info);
        }
        solve(lu, n, &mut d);
        for (xi, &di) in x.iter_mut().zip(&d) {
            *xi += di.into();
        }
        info.iterations += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KernelError;
    use crate::gemm::{GemmElement, GemmParams};
    use crate::lu::{LuParams, factor};
    use crate::matgen::Reference;
    use crate::precision::{bf16, f16};

    /// The HPL-MxP reference system, dense row-major in f64, and ‖A‖∞.
    fn system(n: usize) -> (Vec<f64>, Vec<f64>, f64) {
        let r = Reference::new(n, 42);
        let mut col_major = vec![0.0; n * n];
        r.fill_block(0, 0, n, n, &mut col_major, n);
        let a: Vec<f64> = (0..n * n).map(|x| col_major[(x % n) * n + x / n]).collect();
        let b = (0..n).map(|i| r.rhs(i)).collect();
        let a_inf = a.chunks(n).map(|row| row.iter().map(|v| v.abs()).sum::<f64>()).fold(0.0, f64::max);
        (a, b, a_inf)
    }

    fn solve_with<T: GemmElement>(n: usize, nb: usize) -> IrInfo
    where
        T::Acc: Real,
    {
        let (a, b, a_inf) = system(n);
        let mut lu: Vec<T::Acc> = a.iter().map(|&v| T::Acc::from_f64(v)).collect();
        factor::<T>(&mut lu, n, &LuParams { nb, gemm: GemmParams::default() }).unwrap();
        let matvec = |x: &[f64], y: &mut [f64]| {
            for (yi, row) in y.iter_mut().zip(a.chunks(n)) {
                *yi = row.iter().zip(x).map(|(p, q)| p * q).sum();
            }
        };
        refine(&lu, n, matvec, &b, a_inf, MAX_ITERS).1
    }

    #[test]
    fn every_precision_refines_to_hpl_accuracy() {
        // n = 1 has no off-diagonal entries, so its diagonal is 0: the generator starts at 2.
        for (n, nb) in [(2, 1), (7, 3), (100, 16), (300, 64), (257, 256)] {
            let f64_run = solve_with::<f64>(n, nb);
            assert!(f64_run.converged && f64_run.iterations <= 2, "f64 n={n} nb={nb}: {f64_run:?}");
            for (name, run) in [("f32", solve_with::<f32>(n, nb)), ("bf16", solve_with::<bf16>(n, nb)), ("f16", solve_with::<f16>(n, nb))] {
                assert!(run.converged && run.scaled_residual <= THRESHOLD, "{name} n={n} nb={nb}: {run:?}");
                assert!(run.iterations <= MAX_ITERS, "{name} n={n} nb={nb}: {run:?}");
            }
        }
    }

    #[test]
    fn the_same_system_needs_the_same_iterations_whatever_the_block_size() {
        let a = solve_with::<bf16>(200, 16);
        let b = solve_with::<bf16>(200, 64);
        assert!(a.converged && b.converged, "{a:?} {b:?}");
        assert!((a.iterations as i64 - b.iterations as i64).abs() <= 1, "{a:?} vs {b:?}");
    }

    #[test]
    fn a_zero_pivot_is_an_error_that_names_the_column() {
        let n = 4;
        let mut a = vec![1.0f32; n * n]; // rank one: the second pivot is 0
        let err = factor::<f32>(&mut a, n, &LuParams { nb: 2, gemm: GemmParams::default() }).unwrap_err();
        assert_eq!(err, KernelError::Breakdown { column: 1, pivot: 0.0 });
        assert!(err.to_string().contains("column 1"), "{err}");
    }
}
