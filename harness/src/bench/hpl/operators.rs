//! The operators refinement needs on the distributed linear system Ax = b: each rank's
//! blocks of A, the f64 product A·x (from a kept f64 copy or regenerated on the fly), and
//! M⁻¹ = U⁻¹L⁻¹ with the distributed low-precision factors. Vectors are replicated on every
//! rank; every collective that makes them is a reduction to one rank followed by a
//! broadcast, so all ranks hold the same bits and take the same decisions.

use super::backend::Backend;
use super::factor::Local;
use super::grid::{Axis, Grid};
use crate::bench::wire::Pod;
use crate::error::Result;
use effcal_kernels::gemm::GemmElement;
use effcal_kernels::precision::Real;
use effcal_kernels::hpl_mxp::matgen::{Matrix, abs_units};
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rayon::prelude::*;

/// Exact integer row sums across a process row: three 40-bit limbs per row, summed as u64.
fn sum_units(row_comm: &SimpleCommunicator, units: &[u128]) -> Vec<u128> {
    const BITS: u32 = 40;
    let mask = (1u128 << BITS) - 1;
    let limbs: Vec<u64> = units.iter().flat_map(|&u| [(u & mask) as u64, ((u >> BITS) & mask) as u64, (u >> (2 * BITS)) as u64]).collect();
    let mut total = vec![0u64; limbs.len()];
    row_comm.all_reduce_into(&limbs[..], &mut total[..], SystemOperation::sum());
    total.chunks(3).map(|l| l[0] as u128 + ((l[1] as u128) << BITS) + ((l[2] as u128) << (2 * BITS))).collect()
}

/// For local row block `lb` (of `len` rows) and each of my columns: the generated values
/// of that column segment (before the diagonal is replaced) in `f(local column, global
/// column, values)`.
fn each_column(m: &Matrix, rows: Axis, cols: Axis, lb: usize, len: usize, mut f: impl FnMut(usize, usize, &mut [f64])) {
    let i0 = (lb * rows.procs + rows.me) * rows.nb;
    let mut column = vec![0.0; len];
    for (bj, lc0, w) in cols.my_blocks() {
        for c in 0..w {
            let j = bj * cols.nb + c;
            m.column_values(i0, j, &mut column);
            f(lc0 + c, j, &mut column);
        }
    }
}

/// What generation tells the solver besides the blocks.
#[derive(Clone, Debug)]
pub struct Generated {
    /// A(i, i) for my local rows.
    pub diag: Vec<f64>,
    /// ‖A‖∞ (over all rows, on every rank).
    pub a_inf: f64,
}

/// Fills my blocks of `scale`·A (rounded to A's type; `scale` a power of two, so the
/// scaled system is exact in f64) and returns the diagonal of my rows and ‖A‖∞, scaled.
pub fn generate<A: Real>(m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator, a: &mut Local<A>) -> Generated {
    let (rows, cols, ld) = (a.rows, a.cols, a.ld());
    let nb = rows.nb;
    let mut units = vec![0u128; rows.local_len()];
    a.data.par_chunks_mut(nb * ld.max(1)).zip(units.par_chunks_mut(nb)).enumerate().for_each(|(lb, (out, sums))| {
        let i0 = (lb * rows.procs + rows.me) * nb;
        each_column(m, rows, cols, lb, sums.len(), |lc, j, column| {
            for (r, &v) in column.iter().enumerate() {
                out[r * ld + lc] = A::from_f64(v * scale);
                if i0 + r != j {
                    sums[r] += abs_units(v);
                }
            }
        });
    });
    let generated = from_units(m, scale, grid, world, &units);
    set_diagonal(&generated.diag, a);
    generated
}

/// The diagonal of my rows and ‖A‖∞ without storing A (a backend that fills its blocks
/// elsewhere, from this diagonal): the same sums as [`generate`]'s, the same bits.
pub fn diagonal(m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator, rows: Axis, cols: Axis) -> Generated {
    let nb = rows.nb;
    let mut units = vec![0u128; rows.local_len()];
    units.par_chunks_mut(nb).enumerate().for_each(|(lb, sums)| {
        let i0 = (lb * rows.procs + rows.me) * nb;
        each_column(m, rows, cols, lb, sums.len(), |_, j, column| {
            for (r, &v) in column.iter().enumerate() {
                if i0 + r != j {
                    sums[r] += abs_units(v);
                }
            }
        });
    });
    from_units(m, scale, grid, world, &units)
}

/// The diagonal and ‖A‖∞ from my rows' partial sums of |off-diagonal| (summed across the
/// process row here).
fn from_units(m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator, units: &[u128]) -> Generated {
    let units = sum_units(&grid.row_comm, units);
    let diag: Vec<f64> = units.iter().map(|&u| m.diagonal_from_units(u) * scale).collect();
    let row_max = diag.iter().zip(&units).fold(0f64, |mx, (d, &u)| mx.max(d.abs() + effcal_kernels::hpl_mxp::matgen::units_to_f64(u) * scale));
    let mut a_inf = 0.0;
    world.all_reduce_into(&row_max, &mut a_inf, SystemOperation::max());
    Generated { diag, a_inf }
}

/// Writes the diagonal entries of my rows that fall in my columns.
fn set_diagonal<A: Real>(diag: &[f64], a: &mut Local<A>) {
    let (rows, cols, ld) = (a.rows, a.cols, a.ld());
    for (b, lr0, len) in rows.my_blocks() {
        for r in 0..len {
            let i = b * rows.nb + r;
            let bj = i / cols.nb;
            if cols.mine(bj) {
                a.data[(lr0 + r) * ld + cols.local_start(bj) + i % cols.nb] = A::from_f64(diag[lr0 + r]);
            }
        }
    }
}

/// Fills local row blocks `lb0..` of `scale`·A, whole blocks of `ld` columns in `out`
/// (as many as it holds), with the diagonal `diag` of [`diagonal`] in place of the
/// generator's: the bits [`generate`] writes there, for a backend that fills its matrix a
/// piece at a time.
pub fn fill_blocks<A: Real>(m: &Matrix, scale: f64, diag: &[f64], rows: Axis, cols: Axis, lb0: usize, out: &mut [A]) {
    let (nb, ld) = (rows.nb, cols.local_len());
    if ld == 0 {
        return;
    }
    out.par_chunks_mut(nb * ld).enumerate().for_each(|(b, out)| {
        let lb = lb0 + b;
        let i0 = (lb * rows.procs + rows.me) * nb;
        let len = out.len() / ld;
        each_column(m, rows, cols, lb, len, |lc, j, column| {
            for (r, &v) in column.iter().enumerate() {
                out[r * ld + lc] = A::from_f64(if i0 + r == j { diag[lb * nb + r] } else { v * scale });
            }
        });
    });
}

/// `scale`·b, the same on every rank.
pub fn rhs(m: &Matrix, scale: f64) -> Vec<f64> {
    (0..m.n()).map(|i| m.rhs(i) * scale).collect()
}

/// Sums every rank's `v` into `v` on every rank, the same bits everywhere (a reduction to
/// rank 0, then a broadcast).
fn sum_everywhere(world: &SimpleCommunicator, v: &mut [f64]) {
    let root = world.process_at_rank(0);
    if world.rank() == 0 {
        let mut total = vec![0.0; v.len()];
        root.reduce_into_root(&v[..], &mut total[..], SystemOperation::sum());
        v.copy_from_slice(&total);
    } else {
        root.reduce_into(&v[..], SystemOperation::sum());
    }
    root.broadcast_into(v);
}

/// Σ a_i·x_i in f64, eight partial sums (so the loop vectorises).
pub(super) fn dot<A: Real>(a: &[A], x: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let (ac, xc) = (a.chunks_exact(8), x.chunks_exact(8));
    let (ar, xr) = (ac.remainder(), xc.remainder());
    for (a8, x8) in ac.zip(xc) {
        for l in 0..8 {
            let v: f64 = a8[l].into();
            acc[l] += v * x8[l];
        }
    }
    let tail: f64 = ar.iter().zip(xr).map(|(&v, &x)| Into::<f64>::into(v) * x).sum();
    acc.iter().sum::<f64>() + tail
}

/// Where A·x gets A in f64 from.
pub enum F64Matrix<'a> {
    /// A copy of my blocks in f64, kept from generation (8 bytes per element).
    Kept(&'a Local<f64>),
    /// Regenerated from the generator at every product (no f64 copy).
    /// `diag` is scaled already; the products are scaled at the end (exact: a power of two).
    Regenerated { m: &'a Matrix, scale: f64, rows: Axis, cols: Axis, diag: &'a [f64] },
}

impl F64Matrix<'_> {
    fn axes(&self) -> (Axis, Axis) {
        match self {
            F64Matrix::Kept(l) => (l.rows, l.cols),
            F64Matrix::Regenerated { rows, cols, .. } => (*rows, *cols),
        }
    }
}

/// My blocks of A times `xl` (x at my local columns) in f64 on the host: one sum per local
/// row.
pub fn local_product(a: &F64Matrix<'_>, xl: &[f64]) -> Vec<f64> {
    let (rows, cols) = a.axes();
    let nb = rows.nb;
    let mut part = vec![0.0; rows.local_len()];
    match a {
        F64Matrix::Kept(l) => {
            let ld = l.ld();
            part.par_iter_mut().enumerate().for_each(|(r, p)| {
                *p = dot(&l.data[r * ld..r * ld + ld], xl);
            });
        }
        F64Matrix::Regenerated { m, scale, diag, .. } => {
            part.par_chunks_mut(nb).enumerate().for_each(|(lb, out)| {
                let i0 = (lb * rows.procs + rows.me) * nb;
                each_column(m, rows, cols, lb, out.len(), |lc, j, column| {
                    if (i0..i0 + column.len()).contains(&j) {
                        // The generator's value at (j, j) is replaced by the diagonal.
                        column[j - i0] = diag[lb * nb + j - i0] / scale;
                    }
                    let xj = xl[lc];
                    for (o, &v) in out.iter_mut().zip(column.iter()) {
                        *o += v * xj;
                    }
                });
                out.iter_mut().for_each(|o| *o *= scale);
            });
        }
    }
    part
}

/// y = A·x in f64: each rank's blocks by `product` (the backend's), summed everywhere.
pub fn matvec(world: &SimpleCommunicator, rows: Axis, cols: Axis, x: &[f64], y: &mut [f64], product: impl FnOnce(&[f64]) -> Result<Vec<f64>>) -> Result<()> {
    let nb = rows.nb;
    // x at my local columns.
    let xl: Vec<f64> = cols.my_blocks().flat_map(|(b, _, w)| x[b * cols.nb..b * cols.nb + w].iter().copied()).collect();
    let part = product(&xl);
    // Every rank takes part in the sum, also one whose product failed (it then says why).
    y.fill(0.0);
    if let Ok(p) = &part {
        for (b, lr0, len) in rows.my_blocks() {
            y[b * nb..b * nb + len].copy_from_slice(&p[lr0..lr0 + len]);
        }
    }
    sum_everywhere(world, y);
    part.map(|_| ())
}

/// v ← U⁻¹L⁻¹v with the distributed factors, in f64 arithmetic. Block by block: the process
/// row of block J sums its partial products onto J's diagonal owner, which solves with
/// the diagonal block (`diags[J]`, kept by the factorisation) and broadcasts the piece of
/// the solution to everyone; the process column of J then adds that piece's products with
/// its part of the factors (the backend's [`Backend::products`]) to its partial sums.
pub fn precondition<T: GemmElement, B: Backend<T>>(world: &SimpleCommunicator, grid: &Grid, lu: &mut B, diags: &Diagonals<T::Acc>, v: &mut [f64]) -> Result<()>
where
    T::Acc: Real + Pod,
{
    let (rows, cols) = (lu.rows(), lu.cols());
    let nb = rows.nb;
    let blocks = rows.blocks();
    let mut failed = None;
    for forward in [true, false] {
        let mut part = vec![0.0; rows.local_len()];
        let order: Vec<usize> = if forward { (0..blocks).collect() } else { (0..blocks).rev().collect() };
        for j in order {
            let (pj, qj) = (j % grid.p, j % grid.q);
            let kb = rows.block_len(j);
            let owner = grid.rank_of(pj, qj);
            let mut piece = vec![0.0; kb];
            if grid.row == pj {
                let lr = rows.local_start(j);
                let mine = &part[lr..lr + kb];
                let root = grid.row_comm.process_at_rank(qj as i32);
                if grid.col == qj {
                    let mut total = vec![0.0; kb];
                    root.reduce_into_root(mine, &mut total[..], SystemOperation::sum());
                    let d = diags.get(j);
                    let at = |r: usize, c: usize| -> f64 { d[r * kb + c].into() };
                    // Solve with the diagonal block: unit lower (forward) or upper (backward).
                    let rhs: Vec<f64> = (0..kb).map(|r| v[j * nb + r] - total[r]).collect();
                    if forward {
                        for r in 0..kb {
                            piece[r] = rhs[r] - (0..r).map(|c| at(r, c) * piece[c]).sum::<f64>();
                        }
                    } else {
                        for r in (0..kb).rev() {
                            let s: f64 = (r + 1..kb).map(|c| at(r, c) * piece[c]).sum();
                            piece[r] = (rhs[r] - s) / at(r, r);
                        }
                    }
                } else {
                    root.reduce_into(mine, SystemOperation::sum());
                }
            }
            world.process_at_rank(owner as i32).broadcast_into(&mut piece[..]);
            v[j * nb..j * nb + kb].copy_from_slice(&piece);
            if grid.col == qj && failed.is_none() {
                let lc = cols.local_start(j);
                // Rows below J (forward, L) or above J (backward, U).
                let range = if forward { rows.local_before(j + 1)..rows.local_len() } else { 0..rows.local_before(j) };
                let start = range.start;
                if !range.is_empty()
                    && let Err(e) = lu.products(start, lc, &piece, &mut part[range])
                {
                    failed = Some(e);
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The factored diagonal blocks this rank owns, row-major, by block index: kept by the
/// factorisation for the preconditioner's solves (a copy of N·NB/(P·Q) elements at most).
pub struct Diagonals<A> {
    blocks: Vec<Option<Vec<A>>>,
}

impl<A> Diagonals<A> {
    pub fn new(blocks: usize) -> Self {
        Self { blocks: (0..blocks).map(|_| None).collect() }
    }

    pub fn set(&mut self, j: usize, d: Vec<A>) {
        self.blocks[j] = Some(d);
    }

    fn get(&self, j: usize) -> &[A] {
        self.blocks[j].as_deref().expect("the diagonal owner kept its factored block")
    }
}
