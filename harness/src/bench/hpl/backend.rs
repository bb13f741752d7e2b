//! Where a rank's part of the matrix lives and what computes on it: the one seam between
//! the HPL-MxP algorithm (grid, look-ahead, broadcasts, refinement: [`super::factor`],
//! [`super::operators`]) and the hardware. The CPU backend is [`Local`] in host memory with
//! effcal-kernels' code; the GPU backend ([`super::gpu`]) keeps the matrix in device
//! memory and calls cuBLAS. Everything on the wire, every decision and every check is the
//! driver's, so the tests that run without a GPU cover it for both.
//!
//! Conventions: the local matrix is row-major (local rows × local columns, row stride
//! [`Backend::ld`]); positions are local (row, column) indices; the diagonal blocks are
//! factored on the host in the accumulation type by effcal-kernels' `factor_block` on both
//! backends (the same bits), so the breakdown check and the factors on the wire are one code.

use super::factor::Local;
use super::grid::{Axis, Grid};
use super::operators::{self, F64Matrix, Generated};
use effcal_kernels::hpl_mxp::matgen::Matrix;
use mpi::topology::SimpleCommunicator;
use crate::bench::wire::{self, Pod};
use crate::error::Result;
use effcal_kernels::KernelError;
use effcal_kernels::gemm::{GemmElement, GemmParams, GemmPath, Update, gemm_update};
use effcal_kernels::hpl_mxp::lu::{factor_block, quantize_block, rm_mut, rm_ref, solve_l_panel, solve_u_panel};
use effcal_kernels::precision::Real;
use effcal_kernels::precision::scaling::{KAxis, ScaleMode};
use rayon::prelude::*;

/// A breakdown of the diagonal factorisation: the global column and its pivot.
pub type Breakdown = Option<(usize, f64)>;

/// The operations the distributed LU and the refinement need on this rank's blocks.
pub trait Backend<T: GemmElement>
where
    T::Acc: Real + Pod,
{
    /// A panel rounded to the storage format, where the trailing update reads it.
    type Panel;

    fn rows(&self) -> Axis;
    fn cols(&self) -> Axis;

    /// Loads the repetition's matrix, `scale`·A rounded to the accumulation type (untimed,
    /// as in HPL); returns my rows' diagonal and ‖A‖∞ (the same on every backend).
    fn load(&mut self, m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator) -> Result<Generated>;

    /// Factors diagonal block `k` (kb×kb, at (lr, lc)) in place; returns the factors,
    /// row-major, and any breakdown.
    fn factor_diag(&mut self, k: usize, lr: usize, lc: usize, kb: usize) -> Result<(Vec<T::Acc>, Breakdown)>;

    /// The L panel of step `k`: rows `lr1..lr1 + rows` of columns `lc..lc + kb` ← A·U⁻¹
    /// (`diag` the factored diagonal block `k`: the same factors for every call with this
    /// `k` in a factorisation, so a backend may keep them where it solves).
    fn solve_l(&mut self, k: usize, diag: &[T::Acc], lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()>;

    /// The U panel of step `k`: rows `lr..lr + kb` of columns `lc1..lc1 + cols` ← L⁻¹·A.
    fn solve_u(&mut self, k: usize, diag: &[T::Acc], lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()>;

    /// The rows × cols block at (r0, c0) rounded to T (saturating), scaled per `mode`.
    fn round(&mut self, r0: usize, c0: usize, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<Self::Panel>;

    /// Appends a panel's wire form ([`wire::write_piece`]'s) to `msg`.
    fn write_panel(&mut self, p: &Self::Panel, msg: &mut Vec<u8>) -> Result<()>;

    /// A panel from its wire form at the start of `msg`; returns it and the rest.
    fn read_panel<'m>(&mut self, msg: &'m [u8], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<(Self::Panel, &'m [u8])>;

    /// A(r0.., c0 + uc0 .. c0 + uc1) −= L·U(:, uc0..uc1), `at` = (r0, c0) and `chunk` =
    /// (uc0, uc1): the trailing update of one column chunk, L the rows × kb panel, U the
    /// kb × cols panel. Returns the GEMM path (None: no CPU path ran).
    fn update(&mut self, at: (usize, usize), l: &Self::Panel, u: &Self::Panel, chunk: (usize, usize), gemm: &GemmParams) -> Result<Option<GemmPath>>;

    /// Whether operations return before their work is done (a GPU's stream): the
    /// factorisation then queues a step's whole trailing update before it factors the next
    /// panel, having marked ([`Self::mark`]) where the next diagonal block is final, so the
    /// panel's host work runs while the device updates.
    fn asynchronous(&self) -> bool {
        false
    }

    /// The work queued so far finishes the next diagonal block (see [`Self::asynchronous`]).
    fn mark(&mut self) -> Result<()> {
        Ok(())
    }

    /// Waits for the work queued (a GPU's stream; nothing on the CPU).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// `part[i] += Σ_c A(r0 + i, lc + c)·piece[c]` in f64, for `part.len()` rows: the
    /// preconditioner's off-diagonal products with the factors.
    fn products(&mut self, r0: usize, lc: usize, piece: &[f64], part: &mut [f64]) -> Result<()>;

    /// Whether the backend holds its own f64 copy of the matrix for [`Self::f64_product`]
    /// (the driver then keeps none on the host).
    fn holds_f64(&self) -> bool {
        false
    }

    /// A timed repetition begins (after the barrier) or ends: a GPU reads its energy
    /// counter here.
    fn begin_timed(&mut self) {}
    fn end_timed(&mut self) {}

    /// The f64 product of this rank's blocks of A with `xl` (x at my local columns): one
    /// sum per local row. The CPU's code by default (kept copy or regenerated on the host).
    fn f64_product(&mut self, a: &F64Matrix<'_>, xl: &[f64]) -> Result<Vec<f64>> {
        Ok(operators::local_product(a, xl))
    }
}

/// `d[off..]`, empty past the end (a piece with no rows may start there).
fn tail<A>(d: &mut [A], off: usize) -> &mut [A] {
    let off = off.min(d.len());
    &mut d[off..]
}

fn tail_ref<A>(d: &[A], off: usize) -> &[A] {
    &d[off.min(d.len())..]
}

/// Factors the kb×kb block at the start of `block` (row stride `ld`, first global column
/// `col0`) in place on the host: every backend's diagonal blocks, so the factors and the
/// breakdown check are one code. Returns the breakdown, if any.
pub(super) fn factor_on_host<A: Real>(block: &mut [A], ld: usize, kb: usize, col0: usize) -> Result<Breakdown> {
    match factor_block(rm_mut(block, kb, kb, ld), col0) {
        Err(KernelError::Breakdown { column, pivot }) => Ok(Some((column, pivot))),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(None),
    }
}

/// The CPU backend: the matrix in host memory, effcal-kernels' LU pieces and mixed GEMM.
impl<T: GemmElement + Pod> Backend<T> for Local<T::Acc>
where
    T::Acc: Real + Pod,
{
    type Panel = effcal_kernels::precision::scaling::Quantized<T>;

    fn rows(&self) -> Axis {
        self.rows
    }

    fn cols(&self) -> Axis {
        self.cols
    }

    fn load(&mut self, m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator) -> Result<Generated> {
        Ok(operators::generate(m, scale, grid, world, self))
    }

    fn factor_diag(&mut self, k: usize, lr: usize, lc: usize, kb: usize) -> Result<(Vec<T::Acc>, Breakdown)> {
        let ld = self.ld();
        let broke = factor_on_host(&mut self.data[lr * ld + lc..], ld, kb, k * self.rows.nb)?;
        let mut diag = vec![T::Acc::default(); kb * kb];
        for (r, out) in diag.chunks_mut(kb).enumerate() {
            out.copy_from_slice(&self.data[(lr + r) * ld + lc..(lr + r) * ld + lc + kb]);
        }
        Ok((diag, broke))
    }

    fn solve_l(&mut self, _k: usize, diag: &[T::Acc], lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()> {
        let ld = self.ld();
        solve_l_panel(rm_ref(diag, kb, kb, kb), rm_mut(tail(&mut self.data, lr1 * ld + lc), rows, kb, ld));
        Ok(())
    }

    fn solve_u(&mut self, _k: usize, diag: &[T::Acc], lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()> {
        let ld = self.ld();
        solve_u_panel(rm_ref(diag, kb, kb, kb), rm_mut(tail(&mut self.data, lr * ld + lc1), kb, cols, ld));
        Ok(())
    }

    fn round(&mut self, r0: usize, c0: usize, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<Self::Panel> {
        let ld = self.ld();
        Ok(quantize_block::<T>(tail_ref(&self.data, r0 * ld + c0), ld, rows, cols, k_axis, mode))
    }

    fn write_panel(&mut self, p: &Self::Panel, msg: &mut Vec<u8>) -> Result<()> {
        wire::write_piece(p, msg);
        Ok(())
    }

    fn read_panel<'m>(&mut self, msg: &'m [u8], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<(Self::Panel, &'m [u8])> {
        Ok(wire::read_piece::<T>(msg, rows, cols, k_axis, mode))
    }

    fn update(&mut self, (r0, c0): (usize, usize), l: &Self::Panel, u: &Self::Panel, (uc0, uc1): (usize, usize), gemm: &GemmParams) -> Result<Option<GemmPath>> {
        if l.rows == 0 || uc0 == uc1 {
            return Ok(None);
        }
        let ld = self.ld();
        let piece = if (uc0, uc1) == (0, u.cols) { None } else { Some(wire::columns(u, uc0, uc1)) };
        let up = Update { alpha: -T::Acc::from(1.0), accumulate: true };
        let info = gemm_update(&mut self.data[r0 * ld + c0 + uc0..], ld, l, piece.as_ref().unwrap_or(u), up, gemm)?;
        Ok(Some(info.path))
    }

    fn products(&mut self, r0: usize, lc: usize, piece: &[f64], part: &mut [f64]) -> Result<()> {
        let (ld, kb) = (self.ld(), piece.len());
        let data = &self.data;
        part.par_iter_mut().enumerate().for_each(|(i, p)| {
            let r = r0 + i;
            *p += operators::dot(&data[r * ld + lc..r * ld + lc + kb], piece);
        });
        Ok(())
    }
}
