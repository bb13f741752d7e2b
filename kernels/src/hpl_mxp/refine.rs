//! Refinement in f64 with the low-precision LU factors as preconditioner M ≈ A, to
//! HPL-MxP's accuracy: ‖b − A·x‖∞ / ((‖A‖∞‖x‖∞ + ‖b‖∞)·n·ε) ≤ 16, ε = 2^-53.
//!
//! - [`ir`], classical iterative refinement:
//!   ```text
//!   x = 0
//!   repeat: r = b − A·x (f64); stop when the scaled residual ≤ 16
//!           x += M⁻¹r
//!   ```
//! - [`gmres_ir`], GMRES-IR (Carson & Higham, SIAM J. Sci. Comput. 40(2), 2018): x = M⁻¹b,
//!   then restarted GMRES(m) in f64 on A, right-preconditioned by M (Arnoldi with modified
//!   Gram–Schmidt, Givens rotations), x updated and its true residual checked after every
//!   cycle. A cycle ends early once its residual estimate is below the threshold.
//!
//! Both take A and M⁻¹ as functions, so the same code refines the one-process factors and
//! the distributed ones. `iterations` counts applications of M⁻¹ that corrected x (IR) or
//! preconditioned Arnoldi steps plus the first solve (GMRES-IR); at most `max_iters`
//! (HPL-MxP allows 50). A run that does not reach the threshold is not converged, and the
//! caller reports it FAILED.

/// HPL-MxP's threshold on the scaled residual.
pub const THRESHOLD: f64 = 16.0;
/// HPL-MxP's limit on refinement steps.
pub const MAX_ITERS: usize = 50;
/// HPL's ε: 2^-53.
pub const EPS: f64 = 1.1102230246251565e-16;

#[derive(Clone, Debug, PartialEq)]
pub struct IrInfo {
    /// Preconditioner applications that corrected x (see the module documentation).
    pub iterations: usize,
    /// GMRES cycles (0 for classical IR).
    pub restarts: usize,
    /// The scaled residual of the returned x.
    pub scaled_residual: f64,
    pub converged: bool,
}

/// ‖r‖∞ / ((‖A‖∞‖x‖∞ + ‖b‖∞)·n·2^-53).
pub fn scaled_residual(r_inf: f64, a_inf: f64, x_inf: f64, b_inf: f64, n: usize) -> f64 {
    r_inf / ((a_inf * x_inf + b_inf) * n as f64 * EPS)
}

pub fn norm_inf(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The system and the operators refinement needs.
pub struct System<'a> {
    /// `y = A·x` in f64.
    pub matvec: &'a mut dyn FnMut(&[f64], &mut [f64]),
    /// `v ← M⁻¹·v` with the LU factors.
    pub precond: &'a mut dyn FnMut(&mut [f64]),
    pub b: &'a [f64],
    /// ‖A‖∞.
    pub a_inf: f64,
}

impl System<'_> {
    /// r = b − A·x; returns the scaled residual and ‖r‖∞.
    fn residual(&mut self, x: &[f64], r: &mut [f64]) -> f64 {
        (self.matvec)(x, r);
        for (ri, &bi) in r.iter_mut().zip(self.b) {
            *ri = bi - *ri;
        }
        scaled_residual(norm_inf(r), self.a_inf, norm_inf(x), norm_inf(self.b), self.b.len())
    }
}

/// Classical iterative refinement from x = 0.
pub fn ir(sys: &mut System<'_>, max_iters: usize) -> (Vec<f64>, IrInfo) {
    let n = sys.b.len();
    let (mut x, mut r) = (vec![0.0; n], vec![0.0; n]);
    let mut info = IrInfo { iterations: 0, restarts: 0, scaled_residual: f64::INFINITY, converged: false };
    loop {
        info.scaled_residual = sys.residual(&x, &mut r);
        info.converged = info.scaled_residual <= THRESHOLD;
        if info.converged || info.iterations == max_iters || !info.scaled_residual.is_finite() {
            return (x, info);
        }
        (sys.precond)(&mut r);
        for (xi, &di) in x.iter_mut().zip(&r) {
            *xi += di;
        }
        info.iterations += 1;
    }
}

/// GMRES-IR with restart length `restart`: x = M⁻¹b, then GMRES(restart) cycles.
pub fn gmres_ir(sys: &mut System<'_>, restart: usize, max_iters: usize) -> (Vec<f64>, IrInfo) {
    let n = sys.b.len();
    let m = restart.max(1);
    let mut x = sys.b.to_vec();
    let mut info = IrInfo { iterations: 0, restarts: 0, scaled_residual: f64::INFINITY, converged: false };
    if max_iters > 0 {
        (sys.precond)(&mut x);
        info.iterations = 1;
    }
    let mut r = vec![0.0; n];
    let b_inf = norm_inf(sys.b);
    // Krylov basis V (m + 1 vectors), Hessenberg H (column j has j + 2 entries), rotations.
    let mut v: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
    let mut w = vec![0.0; n];
    loop {
        info.scaled_residual = sys.residual(&x, &mut r);
        info.converged = info.scaled_residual <= THRESHOLD;
        if info.converged || info.iterations >= max_iters || !info.scaled_residual.is_finite() {
            return (x, info);
        }
        info.restarts += 1;
        // Stop a cycle once ‖r‖₂ (≥ ‖r‖∞) is below half the threshold's ‖r‖∞.
        let target = 0.5 * THRESHOLD * (sys.a_inf * norm_inf(&x) + b_inf) * n as f64 * EPS;
        let beta = norm2(&r);
        v.clear();
        v.push(r.iter().map(|ri| ri / beta).collect());
        let mut h: Vec<Vec<f64>> = Vec::with_capacity(m);
        let (mut cs, mut sn): (Vec<f64>, Vec<f64>) = (Vec::with_capacity(m), Vec::with_capacity(m));
        let mut g = vec![beta];
        for j in 0..m {
            if info.iterations >= max_iters {
                break;
            }
            // w = A·M⁻¹·v_j
            let mut z = v[j].clone();
            (sys.precond)(&mut z);
            (sys.matvec)(&z, &mut w);
            info.iterations += 1;
            let mut hj = Vec::with_capacity(j + 2);
            for vi in &v {
                let hij = dot(&w, vi);
                for (wk, &vk) in w.iter_mut().zip(vi) {
                    *wk -= hij * vk;
                }
                hj.push(hij);
            }
            let hnext = norm2(&w);
            hj.push(hnext);
            // Apply the previous rotations, then a new one that zeroes h[j+1].
            for i in 0..j {
                let (a, b) = (hj[i], hj[i + 1]);
                hj[i] = cs[i] * a + sn[i] * b;
                hj[i + 1] = -sn[i] * a + cs[i] * b;
            }
            let d = hj[j].hypot(hj[j + 1]);
            let (c, s) = if d == 0.0 { (1.0, 0.0) } else { (hj[j] / d, hj[j + 1] / d) };
            hj[j] = d;
            hj[j + 1] = 0.0;
            cs.push(c);
            sn.push(s);
            let gj = g[j];
            g[j] = c * gj;
            g.push(-s * gj);
            h.push(hj);
            if g[j + 1].abs() <= target || hnext == 0.0 || !hnext.is_finite() {
                break;
            }
            v.push(w.iter().map(|wk| wk / hnext).collect());
        }
        // y = H⁻¹g (upper triangular), x += M⁻¹·(V·y).
        let k = h.len();
        let mut y = vec![0.0; k];
        for i in (0..k).rev() {
            let s: f64 = (i + 1..k).map(|l| h[l][i] * y[l]).sum();
            y[i] = (g[i] - s) / h[i][i];
        }
        let mut dx = vec![0.0; n];
        for (vi, &yi) in v.iter().zip(&y) {
            for (d, &vk) in dx.iter_mut().zip(vi) {
                *d += yi * vk;
            }
        }
        (sys.precond)(&mut dx);
        for (xi, d) in x.iter_mut().zip(&dx) {
            *xi += d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KernelError;
    use crate::gemm::{Accumulate, Backend, GemmElement, GemmParams, GemmPath};
    use crate::hpl_mxp::lu::{LuParams, factor, solve};
    use crate::precision::Real;
    use crate::hpl_mxp::matgen::{Generator, Matrix};
    use crate::precision::{bf16, f16};

    /// The HPL-MxP reference system, dense row-major in f64, and ‖A‖∞.
    fn system(n: usize) -> (Vec<f64>, Vec<f64>, f64) {
        let r = Matrix::new(n, 42, Generator::Reference);
        let mut col_major = vec![0.0; n * n];
        r.fill_block(0, 0, n, n, &mut col_major, n);
        let a: Vec<f64> = (0..n * n).map(|x| col_major[(x % n) * n + x / n]).collect();
        let b = (0..n).map(|i| r.rhs(i)).collect();
        let a_inf = a.chunks(n).map(|row| row.iter().map(|v| v.abs()).sum::<f64>()).fold(0.0, f64::max);
        (a, b, a_inf)
    }

    fn solve_with<T: GemmElement>(n: usize, nb: usize, restart: Option<usize>) -> IrInfo
    where
        T::Acc: Real,
    {
        let (a, b, a_inf) = system(n);
        let mut lu: Vec<T::Acc> = a.iter().map(|&v| T::Acc::from_f64(v)).collect();
        factor::<T>(&mut lu, n, &LuParams { nb, gemm: GemmParams::default() }).unwrap();
        refine_with(&a, &b, a_inf, &lu, restart)
    }

    /// Refines `A·x = b` (A dense row-major) from the factors `lu` of [`factor`]: IR, or
    /// GMRES-IR restarted every `restart` steps.
    fn refine_with<A: Real>(a: &[f64], b: &[f64], a_inf: f64, lu: &[A], restart: Option<usize>) -> IrInfo {
        let n = b.len();
        let mut matvec = |x: &[f64], y: &mut [f64]| {
            for (yi, row) in y.iter_mut().zip(a.chunks(n)) {
                *yi = row.iter().zip(x).map(|(p, q)| p * q).sum();
            }
        };
        let mut precond = |v: &mut [f64]| {
            let mut d: Vec<A> = v.iter().map(|&x| A::from_f64(x)).collect();
            solve(lu, n, &mut d);
            v.iter_mut().zip(&d).for_each(|(x, &y)| *x = y.into());
        };
        let mut sys = System { matvec: &mut matvec, precond: &mut precond, b, a_inf };
        match restart {
            None => ir(&mut sys, MAX_ITERS).1,
            Some(m) => gmres_ir(&mut sys, m, MAX_ITERS).1,
        }
    }

    #[test]
    fn every_precision_refines_to_hpl_accuracy() {
        // n = 1 has no off-diagonal entries, so its diagonal is 0: the generator starts at 2.
        for (n, nb) in [(2, 1), (7, 3), (100, 16), (300, 64), (257, 256)] {
            for restart in [None, Some(10)] {
                let f64_run = solve_with::<f64>(n, nb, restart);
                assert!(f64_run.converged && f64_run.iterations <= 2, "f64 n={n} nb={nb} {restart:?}: {f64_run:?}");
                for (name, run) in [
                    ("f32", solve_with::<f32>(n, nb, restart)),
                    ("bf16", solve_with::<bf16>(n, nb, restart)),
                    ("f16", solve_with::<f16>(n, nb, restart)),
                ] {
                    assert!(run.converged && run.scaled_residual <= THRESHOLD, "{name} n={n} nb={nb} {restart:?}: {run:?}");
                    assert!(run.iterations <= 10, "{name} n={n} nb={nb} {restart:?}: {run:?}");
                }
            }
        }
    }

    /// f16 accumulation (`--accumulate f16`): the dispatched trailing update (native on
    /// AVX512_FP16) gives the portable path's factors bit for bit (each update's k is one
    /// step's nb ≤ KC, so both sum the same f16 blocks in the same order, then add them in
    /// f32 from zero), and IR reaches HPL accuracy from them.
    #[test]
    fn f16_accumulation_factors_the_same_bits_on_every_path() {
        let (n, nb) = (300, 64);
        let (a, b, a_inf) = system(n);
        let acc = Accumulate::F16 { block: 32 };
        let factors = |backend| {
            let mut lu: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let gemm = GemmParams { backend, accumulate: acc, ..Default::default() };
            let info = factor::<f16>(&mut lu, n, &LuParams { nb, gemm }).unwrap();
            (lu, info.path)
        };
        let (dispatched, path) = factors(Backend::Auto);
        let (portable, portable_path) = factors(Backend::Portable);
        assert_eq!(portable_path, Some(GemmPath::F16Accumulate));
        #[cfg(target_arch = "x86_64")]
        let native = crate::gemm::f16_avx512fp16::available();
        #[cfg(not(target_arch = "x86_64"))]
        let native = false;
        assert_eq!(path, Some(if native { GemmPath::Avx512Fp16 } else { GemmPath::F16Accumulate }));
        if let Some(i) = dispatched.iter().zip(&portable).position(|(x, y)| x.to_bits() != y.to_bits()) {
            panic!("factor entry ({}, {}): {:e} on {path:?}, {:e} on the portable path", i / n, i % n, dispatched[i], portable[i]);
        }
        let run = refine_with(&a, &b, a_inf, &dispatched, None);
        assert!(run.converged && run.scaled_residual <= THRESHOLD, "{run:?}");
    }

    #[test]
    fn the_same_system_needs_the_same_iterations_whatever_the_block_size() {
        for restart in [None, Some(5)] {
            let a = solve_with::<bf16>(200, 16, restart);
            let b = solve_with::<bf16>(200, 64, restart);
            assert!(a.converged && b.converged, "{a:?} {b:?}");
            assert!((a.iterations as i64 - b.iterations as i64).abs() <= 1, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gmres_solves_what_ir_cannot() {
        // A bad preconditioner (the diagonal only, of a matrix with large off-diagonal
        // entries): IR diverges, GMRES converges within its Krylov space.
        let n = 30;
        let a: Vec<f64> = (0..n * n).map(|x| if x / n == x % n { 1.0 } else { (((x * 37) % 11) as f64 - 5.0) / 4.0 }).collect();
        let b: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 / 7.0).collect();
        let a_inf = a.chunks(n).map(|row| row.iter().map(|v| v.abs()).sum::<f64>()).fold(0.0, f64::max);
        let mut matvec = |x: &[f64], y: &mut [f64]| {
            for (yi, row) in y.iter_mut().zip(a.chunks(n)) {
                *yi = row.iter().zip(x).map(|(p, q)| p * q).sum();
            }
        };
        let mut precond = |_: &mut [f64]| {};
        let mut sys = System { matvec: &mut matvec, precond: &mut precond, b: &b, a_inf };
        let (_, info) = ir(&mut sys, MAX_ITERS);
        assert!(!info.converged, "{info:?}");
        let (_, info) = gmres_ir(&mut sys, n, MAX_ITERS);
        assert!(info.converged && info.iterations <= n + 2, "{info:?}");
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
