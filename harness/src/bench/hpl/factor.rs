//! The distributed LU without pivoting on the P×Q grid, right-looking, with look-ahead.
//!
//! Step k (block column k, owners row pk = k mod P, column qk = k mod Q):
//! 1. panel (process column qk; done one step early, see below): the owner of A_kk factors
//!    it in the accumulation type (f32, f64 for the baseline); with P > 1 it broadcasts the
//!    factors down its process column; every rank of the column solves its part of the L
//!    panel `A_ik·U_kk⁻¹`, rounds it to the storage format and broadcasts it along its
//!    process row (with L_kk for the row that needs it) — the message carries the
//!    factorisation's status, so a breakdown stops every rank at the same step;
//! 2. U panel (process row pk): `L_kk⁻¹·A_kj` for the rank's columns, rounded, and
//!    broadcast down each process column when P > 1;
//! 3. trailing update `A_ij −= L_ik·U_kj` with effcal-kernels' mixed GEMM (storage-format
//!    inputs, f32 accumulation into the f32 trailing matrix), in column chunks.
//!
//! Look-ahead (depth 1): the process column that owns block column k+1 updates that block
//! column first, factors panel k+1 and starts its broadcast, then updates the rest of its
//! trailing matrix, letting the broadcast progress between chunks; the other columns
//! post their receives and do the same. The next step finds its panel already there.

use super::backend::Backend;
use super::bcast::{Algorithm, Bcast};
use super::grid::{Axis, Grid};
use super::operators::Diagonals;
use crate::bench::wire::{self, Pod};
use crate::error::Result;
use effcal_kernels::KernelError;
use effcal_kernels::gemm::{GemmElement, GemmParams, GemmPath};
use effcal_kernels::precision::Real;
use effcal_kernels::precision::scaling::{KAxis, ScaleMode};
use std::time::Instant;

/// This rank's part of the matrix: its local rows × local columns, row-major.
pub struct Local<A> {
    pub data: Vec<A>,
    pub rows: Axis,
    pub cols: Axis,
}

impl<A: Copy + Default> Local<A> {
    pub fn zeros(rows: Axis, cols: Axis) -> Self {
        Self { data: vec![A::default(); rows.local_len() * cols.local_len()], rows, cols }
    }

    /// Row stride.
    pub fn ld(&self) -> usize {
        self.cols.local_len()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub nb: usize,
    pub scaling: ScaleMode,
    pub bcast: Algorithm,
    pub lookahead: bool,
    pub gemm: GemmParams,
    /// Columns per trailing-update chunk (between two progress calls).
    pub chunk: usize,
}

/// Seconds this rank spent in each part of the factorisation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    /// Factoring diagonal blocks.
    pub diagonal: f64,
    /// Triangular solves of the L and U panels.
    pub panel: f64,
    /// Rounding panels to the storage format (and packing them).
    pub convert: f64,
    /// Waiting for broadcasts.
    pub bcast: f64,
    /// Trailing updates (look-ahead column included).
    pub update: f64,
}

/// What the factorisation did on this rank.
pub struct Outcome<A> {
    pub phases: Phases,
    pub path: Option<GemmPath>,
    /// The factored diagonal blocks this rank owns (the preconditioner's).
    pub diags: Diagonals<A>,
}

const OK: i64 = -1;

struct Run<'a> {
    grid: &'a Grid,
    s: &'a Settings,
    phases: Phases,
}

/// Factors this rank's blocks in `a` (the backend's) in place; `step_done(k, steps)` runs
/// after each step (progress display). A breakdown is `Error::Kernel(Breakdown)`, the same
/// on every rank.
pub fn factor<T: GemmElement + Pod, B: Backend<T>>(grid: &Grid, a: &mut B, s: &Settings, mut step_done: impl FnMut(usize, usize)) -> Result<Outcome<T::Acc>>
where
    T::Acc: Real + Pod,
{
    let mut run = Run { grid, s, phases: Phases::default() };
    let (rows, cols) = (a.rows(), a.cols());
    let steps = rows.blocks();
    let mut path = None;
    let mut diags = Diagonals::new(steps);
    let mut pending = Some(run.panel(a, 0, &mut diags)?);
    for k in 0..steps {
        let kb = rows.block_len(k);
        let pk = k % grid.p;
        let lr1 = rows.local_before(k + 1);
        let lc1 = cols.local_before(k + 1);
        let (rows_after, cols_after) = (rows.local_len() - lr1, cols.local_len() - lc1);

        // 1. This step's panel.
        let t = Instant::now();
        let (msg, mine) = pending.take().expect("a panel per step").wait();
        run.phases.bcast += t.elapsed().as_secs_f64();
        let (head, rest) = wire::read::<i64>(&msg, 1);
        let (pivot, rest) = wire::read::<f64>(rest, 1);
        if head[0] != OK {
            return Err(KernelError::Breakdown { column: head[0] as usize, pivot: pivot[0] }.into());
        }
        let (diag, rest) = if grid.row == pk { wire::read::<T::Acc>(rest, kb * kb) } else { (Vec::new(), rest) };
        let l = match mine {
            Some(l) => l,
            None => a.read_panel(rest, rows_after, kb, KAxis::Cols, s.scaling)?.0,
        };
        if k + 1 == steps {
            step_done(k, steps);
            break;
        }

        // 2. The U panel of my columns.
        let u = run.u_panel(a, k, kb, &diag, cols_after)?;

        // 3. Column chunks of the trailing update: block column k+1 first when it is mine.
        let mut chunks = Vec::new();
        let mut c = 0;
        if cols.mine(k + 1) {
            c = cols.block_len(k + 1);
            chunks.push((0, c));
        }
        while c < cols_after {
            let w = s.chunk.max(1).min(cols_after - c);
            chunks.push((c, c + w));
            c += w;
        }
        let mut update = |run: &mut Run, a: &mut B, (c0, c1): (usize, usize)| -> Result<()> {
            if rows_after == 0 {
                return Ok(());
            }
            let t = Instant::now();
            path = a.update((lr1, lc1), &l, &u, (c0, c1), &s.gemm)?.or(path);
            run.phases.update += t.elapsed().as_secs_f64();
            Ok(())
        };
        let mut todo = chunks.as_slice();
        if s.lookahead {
            if cols.mine(k + 1) {
                update(&mut run, a, chunks[0])?;
                todo = &chunks[1..];
            }
            if a.asynchronous() {
                // Queue the whole update first; the next diagonal block is final at the mark.
                if cols.mine(k + 1) && rows.mine(k + 1) {
                    a.mark()?;
                }
                for &ch in todo {
                    update(&mut run, a, ch)?;
                }
                todo = &[];
            }
            pending = Some(run.panel(a, k + 1, &mut diags)?);
        }
        for &ch in todo {
            update(&mut run, a, ch)?;
            if let Some(b) = pending.as_mut() {
                b.progress();
            }
        }
        if !s.lookahead {
            pending = Some(run.panel(a, k + 1, &mut diags)?);
        }
        step_done(k, steps);
    }
    let t = Instant::now();
    a.finish()?;
    run.phases.update += t.elapsed().as_secs_f64();
    Ok(Outcome { phases: run.phases, path, diags })
}

/// A panel on its way: the broadcast of its message, and on the rank that made it the
/// rounded L panel itself (a backend's panel need not come back from its wire form).
struct Pending<'a, P> {
    bcast: Bcast<'a>,
    mine: Option<P>,
}

impl<P> Pending<'_, P> {
    fn wait(self) -> (Vec<u8>, Option<P>) {
        (self.bcast.wait(), self.mine)
    }

    fn progress(&mut self) {
        self.bcast.progress();
    }
}

impl<'a> Run<'a> {
    /// Panel k: factored and sent by process column k mod Q, received by the others. The
    /// owner of the diagonal block keeps its factors in `diags`.
    fn panel<T: GemmElement + Pod, B: Backend<T>>(&mut self, a: &mut B, k: usize, diags: &mut Diagonals<T::Acc>) -> Result<Pending<'a, B::Panel>>
    where
        T::Acc: Real + Pod,
    {
        let (grid, s) = (self.grid, self.s);
        let (rows, cols) = (a.rows(), a.cols());
        let kb = rows.block_len(k);
        let (pk, qk) = (k % grid.p, k % grid.q);
        let lr1 = rows.local_before(k + 1);
        let rows_after = rows.local_len() - lr1;
        let with_diag = grid.row == pk;
        let acc = std::mem::size_of::<T::Acc>();
        let len = 16 + if with_diag { kb * kb * acc } else { 0 } + wire::piece_len::<T>(rows_after, kb, KAxis::Cols, s.scaling);
        let tag = 3 * k as u32;
        if grid.col != qk {
            return Ok(Pending { bcast: Bcast::start(&grid.row_comm, qk, vec![0u8; len], s.bcast, tag), mine: None });
        }
        let lc = cols.local_start(k);
        // The diagonal block: factored by its owner, sent down the process column.
        let mut head = (OK, 0f64);
        let mut diag = vec![T::Acc::default(); kb * kb];
        if grid.row == pk {
            let t = Instant::now();
            let (d, broke) = a.factor_diag(k, rows.local_start(k), lc, kb)?;
            if let Some((column, pivot)) = broke {
                head = (column as i64, pivot);
            }
            diag = d;
            diags.set(k, diag.clone());
            self.phases.diagonal += t.elapsed().as_secs_f64();
        }
        if grid.p > 1 {
            let t = Instant::now();
            let mut msg = Vec::with_capacity(16 + kb * kb * acc);
            msg.extend_from_slice(wire::bytes_of(&[head.0]));
            msg.extend_from_slice(wire::bytes_of(&[head.1]));
            msg.extend_from_slice(wire::bytes_of(&diag));
            let msg = Bcast::start(&grid.col_comm, pk, msg, s.bcast, tag + 1).wait();
            let (h, rest) = wire::read::<i64>(&msg, 1);
            let (pv, rest) = wire::read::<f64>(rest, 1);
            head = (h[0], pv[0]);
            diag = wire::read::<T::Acc>(rest, kb * kb).0;
            self.phases.bcast += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        if head.0 == OK && rows_after > 0 {
            a.solve_l(k, &diag, lr1, lc, rows_after, kb)?;
        }
        self.phases.panel += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let l = a.round(lr1, lc, rows_after, kb, KAxis::Cols, s.scaling)?;
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(wire::bytes_of(&[head.0]));
        msg.extend_from_slice(wire::bytes_of(&[head.1]));
        if with_diag {
            msg.extend_from_slice(wire::bytes_of(&diag));
        }
        // The panel's bits travel only where another process column waits for them.
        if grid.q > 1 {
            a.write_panel(&l, &mut msg)?;
            debug_assert_eq!(msg.len(), len);
        }
        self.phases.convert += t.elapsed().as_secs_f64();
        Ok(Pending { bcast: Bcast::start(&grid.row_comm, qk, msg, s.bcast, tag), mine: Some(l) })
    }

    /// U_kj for my columns after k: solved and rounded by process row pk, received by the
    /// others (P > 1).
    fn u_panel<T: GemmElement + Pod, B: Backend<T>>(&mut self, a: &mut B, k: usize, kb: usize, diag: &[T::Acc], cols_after: usize) -> Result<B::Panel>
    where
        T::Acc: Real + Pod,
    {
        let (grid, s) = (self.grid, self.s);
        let pk = k % grid.p;
        let lc1 = a.cols().local_before(k + 1);
        let len = wire::piece_len::<T>(kb, cols_after, KAxis::Rows, s.scaling);
        if grid.row != pk {
            let t = Instant::now();
            let msg = Bcast::start(&grid.col_comm, pk, vec![0u8; len], s.bcast, 3 * k as u32 + 2).wait();
            self.phases.bcast += t.elapsed().as_secs_f64();
            return Ok(a.read_panel(&msg, kb, cols_after, KAxis::Rows, s.scaling)?.0);
        }
        let lr = a.rows().local_start(k);
        let t = Instant::now();
        if cols_after > 0 {
            a.solve_u(k, diag, lr, lc1, kb, cols_after)?;
        }
        self.phases.panel += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let u = a.round(lr, lc1, kb, cols_after, KAxis::Rows, s.scaling)?;
        self.phases.convert += t.elapsed().as_secs_f64();
        if grid.p > 1 {
            let t = Instant::now();
            let mut msg = Vec::with_capacity(len);
            a.write_panel(&u, &mut msg)?;
            drop(Bcast::start(&grid.col_comm, pk, msg, s.bcast, 3 * k as u32 + 2).wait());
            self.phases.bcast += t.elapsed().as_secs_f64();
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::hpl::backend::Breakdown;
    use crate::bench::hpl::grid::Pmap;
    use crate::bench::hpl::operators::{self, F64Matrix, Generated};
    use effcal_kernels::hpl_mxp::matgen::{Generator, Matrix};
    use effcal_kernels::precision::bf16;
    use mpi::topology::SimpleCommunicator;

    /// The CPU backend posing as an asynchronous one (as a GPU's is): the factorisation then
    /// queues each step's whole update before the next panel and marks where the next
    /// diagonal block is final. Every mark must be taken by the next diagonal
    /// factorisation, and that factorisation must have one.
    struct Eager {
        cpu: Local<f32>,
        marked: bool,
        marks: usize,
        /// Look-ahead is on: every diagonal block after the first needs a mark.
        lookahead: bool,
        /// Local columns the updates touched before the mark, and after it.
        before: Vec<(usize, usize)>,
        after: Vec<(usize, usize)>,
    }

    impl Backend<bf16> for Eager {
        type Panel = <Local<f32> as Backend<bf16>>::Panel;
        fn rows(&self) -> Axis {
            self.cpu.rows
        }
        fn cols(&self) -> Axis {
            self.cpu.cols
        }
        fn load(&mut self, m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator) -> Result<Generated> {
            Backend::<bf16>::load(&mut self.cpu, m, scale, grid, world)
        }
        fn asynchronous(&self) -> bool {
            true
        }
        fn mark(&mut self) -> Result<()> {
            assert!(!self.marked, "a mark was left untaken");
            self.marked = true;
            self.marks += 1;
            self.after.clear();
            Ok(())
        }
        fn factor_diag(&mut self, k: usize, lr: usize, lc: usize, kb: usize) -> Result<(Vec<f32>, Breakdown)> {
            let col0 = k * self.cpu.rows.nb;
            // The first block has no update before it, so no mark.
            assert!(self.marked || col0 == 0 || !self.lookahead, "diagonal block at column {col0} factored without a mark");
            if self.marked {
                // Its last update came before the mark; the updates queued after the mark
                // leave its columns alone.
                let hits = |&(c0, c1): &(usize, usize)| c0 < lc + kb && lc < c1;
                assert!(self.before.iter().any(hits), "the update of block column {col0} was queued before the mark");
                assert!(!self.after.iter().any(hits), "an update after the mark touched block column {col0}");
                if lc + kb < self.cpu.cols.local_len() {
                    assert!(!self.after.is_empty(), "the rest of the update was queued after the mark, to run while block column {col0} is factored");
                }
            }
            self.marked = false;
            self.before.clear();
            Backend::<bf16>::factor_diag(&mut self.cpu, k, lr, lc, kb)
        }
        fn solve_l(&mut self, k: usize, diag: &[f32], lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()> {
            Backend::<bf16>::solve_l(&mut self.cpu, k, diag, lr1, lc, rows, kb)
        }
        fn solve_u(&mut self, k: usize, diag: &[f32], lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()> {
            Backend::<bf16>::solve_u(&mut self.cpu, k, diag, lr, lc1, kb, cols)
        }
        fn round(&mut self, r0: usize, c0: usize, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<Self::Panel> {
            Backend::<bf16>::round(&mut self.cpu, r0, c0, rows, cols, k_axis, mode)
        }
        fn write_panel(&mut self, p: &Self::Panel, msg: &mut Vec<u8>) -> Result<()> {
            Backend::<bf16>::write_panel(&mut self.cpu, p, msg)
        }
        fn read_panel<'m>(&mut self, msg: &'m [u8], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<(Self::Panel, &'m [u8])> {
            Backend::<bf16>::read_panel(&mut self.cpu, msg, rows, cols, k_axis, mode)
        }
        fn update(&mut self, at: (usize, usize), l: &Self::Panel, u: &Self::Panel, chunk: (usize, usize), gemm: &GemmParams) -> Result<Option<GemmPath>> {
            let touched = (at.1 + chunk.0, at.1 + chunk.1);
            if self.marked { self.after.push(touched) } else { self.before.push(touched) }
            Backend::<bf16>::update(&mut self.cpu, at, l, u, chunk, gemm)
        }
        fn products(&mut self, r0: usize, lc: usize, piece: &[f64], part: &mut [f64]) -> Result<()> {
            Backend::<bf16>::products(&mut self.cpu, r0, lc, piece, part)
        }
        fn f64_product(&mut self, a: &F64Matrix<'_>, xl: &[f64]) -> Result<Vec<f64>> {
            Backend::<bf16>::f64_product(&mut self.cpu, a, xl)
        }
    }

    /// The order an asynchronous backend is driven in gives the CPU's factors bit for bit,
    /// with one mark before each diagonal block after the first (one process: MPI's
    /// singleton start, the only MPI this test binary uses).
    #[test]
    fn the_asynchronous_order_gives_the_same_factors() {
        let universe = mpi::initialize().expect("MPI starts once in this test binary");
        let world = universe.world();
        let grid = Grid::new(&world, 1, 1, Pmap::Row);
        let (n, nb) = (300, 64);
        let (rows, cols) = (grid.rows(n, nb), grid.cols(n, nb));
        let m = Matrix::new(n, 42, Generator::Reference);
        let mut cpu = Local::<f32>::zeros(rows, cols);
        operators::generate(&m, 1.0, &grid, &world, &mut cpu);
        let mut eager = Eager { cpu: Local { data: cpu.data.clone(), rows, cols }, marked: false, marks: 0, lookahead: true, before: Vec::new(), after: Vec::new() };
        for lookahead in [true, false] {
            let s = Settings { nb, scaling: ScaleMode::None, bcast: Algorithm::Ring, lookahead, gemm: GemmParams::default(), chunk: 48 };
            let (mut a, mut b) = (Local { data: cpu.data.clone(), rows, cols }, Local { data: cpu.data.clone(), rows, cols });
            factor::<bf16, _>(&grid, &mut a, &s, |_, _| {}).expect("factors");
            std::mem::swap(&mut eager.cpu, &mut b);
            eager.marks = 0;
            eager.lookahead = lookahead;
            let out = factor::<bf16, _>(&grid, &mut eager, &s, |_, _| {});
            std::mem::swap(&mut eager.cpu, &mut b);
            out.expect("factors");
            assert!(a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits()), "lookahead {lookahead}: the same factors");
            // Without look-ahead nothing is queued ahead of a panel: no marks, and the
            // diagonal blocks are factored after everything before them (the check above).
            if lookahead {
                assert_eq!(eager.marks, n.div_ceil(nb) - 1, "a mark per diagonal block after the first");
            }
        }
    }
}
