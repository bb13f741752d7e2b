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
            let (d, broke) = a.factor_diag(rows.local_start(k), lc, kb, k * s.nb)?;
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
            a.solve_l(&diag, lr1, lc, rows_after, kb)?;
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
            a.solve_u(diag, lr, lc1, kb, cols_after)?;
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
