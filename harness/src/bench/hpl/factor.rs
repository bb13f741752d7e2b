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

use super::bcast::{Algorithm, Bcast};
use super::grid::{Axis, Grid};
use crate::bench::wire::{self, Pod};
use effcal_kernels::KernelError;
use effcal_kernels::gemm::{GemmElement, GemmParams, GemmPath, Update, gemm_update};
use effcal_kernels::precision::Real;
use effcal_kernels::hpl_mxp::lu::{factor_block, quantize_block, rm_mut, rm_ref, solve_l_panel, solve_u_panel};
use effcal_kernels::precision::scaling::{KAxis, Quantized, ScaleMode};
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
pub struct Outcome {
    pub phases: Phases,
    pub path: Option<GemmPath>,
}

const OK: i64 = -1;

/// `d[off..]`, empty past the end (a piece with no rows may start there).
fn tail<A>(d: &mut [A], off: usize) -> &mut [A] {
    let off = off.min(d.len());
    &mut d[off..]
}

fn tail_ref<A>(d: &[A], off: usize) -> &[A] {
    &d[off.min(d.len())..]
}

struct Run<'a, T: GemmElement> {
    grid: &'a Grid,
    s: &'a Settings,
    phases: Phases,
    _t: std::marker::PhantomData<T>,
}

/// Factors `a` in place; `step_done(k, steps)` runs after each step (progress display).
pub fn factor<T: GemmElement + Pod>(grid: &Grid, a: &mut Local<T::Acc>, s: &Settings, mut step_done: impl FnMut(usize, usize)) -> Result<Outcome, KernelError>
where
    T::Acc: Real + Pod,
{
    let mut run = Run::<T> { grid, s, phases: Phases::default(), _t: std::marker::PhantomData };
    let (rows, cols) = (a.rows, a.cols);
    let steps = rows.blocks();
    let ld = a.ld();
    let mut path = None;
    let mut pending = Some(run.panel(a, 0));
    for k in 0..steps {
        let kb = rows.block_len(k);
        let pk = k % grid.p;
        let lr1 = rows.local_before(k + 1);
        let lc1 = cols.local_before(k + 1);
        let (rows_after, cols_after) = (rows.local_len() - lr1, cols.local_len() - lc1);

        // 1. This step's panel.
        let t = Instant::now();
        let msg = pending.take().expect("a panel per step").wait();
        run.phases.bcast += t.elapsed().as_secs_f64();
        let (head, rest) = wire::read::<i64>(&msg, 1);
        let (pivot, rest) = wire::read::<f64>(rest, 1);
        if head[0] != OK {
            return Err(KernelError::Breakdown { column: head[0] as usize, pivot: pivot[0] });
        }
        let (diag, rest) = if grid.row == pk { wire::read::<T::Acc>(rest, kb * kb) } else { (Vec::new(), rest) };
        let (l, _) = wire::read_piece::<T>(rest, rows_after, kb, KAxis::Cols, s.scaling);
        if k + 1 == steps {
            step_done(k, steps);
            break;
        }

        // 2. The U panel of my columns.
        let u = run.u_panel(a, k, kb, &diag, cols_after);

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
        let up = Update { alpha: -T::Acc::from(1.0), accumulate: true };
        let mut update = |run: &mut Run<T>, a: &mut Local<T::Acc>, (c0, c1): (usize, usize)| -> Result<(), KernelError> {
            if rows_after == 0 {
                return Ok(());
            }
            let t = Instant::now();
            let piece = if (c0, c1) == (0, cols_after) { None } else { Some(wire::columns(&u, c0, c1)) };
            let info = gemm_update(&mut a.data[lr1 * ld + lc1 + c0..], ld, &l, piece.as_ref().unwrap_or(&u), up, &s.gemm)?;
            path = Some(info.path);
            run.phases.update += t.elapsed().as_secs_f64();
            Ok(())
        };
        let mut todo = chunks.as_slice();
        if s.lookahead {
            if cols.mine(k + 1) {
                update(&mut run, a, chunks[0])?;
                todo = &chunks[1..];
            }
            pending = Some(run.panel(a, k + 1));
        }
        for &ch in todo {
            update(&mut run, a, ch)?;
            if let Some(b) = pending.as_mut() {
                b.progress();
            }
        }
        if !s.lookahead {
            pending = Some(run.panel(a, k + 1));
        }
        step_done(k, steps);
    }
    Ok(Outcome { phases: run.phases, path })
}

impl<'a, T: GemmElement + Pod> Run<'a, T>
where
    T::Acc: Real + Pod,
{
    /// Panel k: factored and sent by process column k mod Q, received by the others.
    fn panel(&mut self, a: &mut Local<T::Acc>, k: usize) -> Bcast<'a> {
        let (grid, s) = (self.grid, self.s);
        let (rows, cols) = (a.rows, a.cols);
        let ld = a.ld();
        let kb = rows.block_len(k);
        let (pk, qk) = (k % grid.p, k % grid.q);
        let lr1 = rows.local_before(k + 1);
        let rows_after = rows.local_len() - lr1;
        let with_diag = grid.row == pk;
        let acc = std::mem::size_of::<T::Acc>();
        let len = 16 + if with_diag { kb * kb * acc } else { 0 } + wire::piece_len::<T>(rows_after, kb, KAxis::Cols, s.scaling);
        let tag = 3 * k as u32;
        if grid.col != qk {
            return Bcast::start(&grid.row_comm, qk, vec![0u8; len], s.bcast, tag);
        }
        let lc = cols.local_start(k);
        // The diagonal block: factored by its owner, sent down the process column.
        let mut head = (OK, 0f64);
        let mut diag = vec![T::Acc::default(); kb * kb];
        if grid.row == pk {
            let t = Instant::now();
            let lr = rows.local_start(k);
            if let Err(KernelError::Breakdown { column, pivot }) = factor_block(rm_mut(&mut a.data[lr * ld + lc..], kb, kb, ld), k * s.nb) {
                head = (column as i64, pivot);
            }
            for (r, out) in diag.chunks_mut(kb).enumerate() {
                out.copy_from_slice(&a.data[(lr + r) * ld + lc..(lr + r) * ld + lc + kb]);
            }
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
        if head.0 == OK {
            solve_l_panel(rm_ref(&diag, kb, kb, kb), rm_mut(tail(&mut a.data, lr1 * ld + lc), rows_after, kb, ld));
        }
        self.phases.panel += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let l = quantize_block::<T>(tail_ref(&a.data, lr1 * ld + lc), ld, rows_after, kb, KAxis::Cols, s.scaling);
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(wire::bytes_of(&[head.0]));
        msg.extend_from_slice(wire::bytes_of(&[head.1]));
        if with_diag {
            msg.extend_from_slice(wire::bytes_of(&diag));
        }
        wire::write_piece(&l, &mut msg);
        debug_assert_eq!(msg.len(), len);
        self.phases.convert += t.elapsed().as_secs_f64();
        Bcast::start(&grid.row_comm, qk, msg, s.bcast, tag)
    }

    /// U_kj for my columns after k: solved and rounded by process row pk, received by the
    /// others (P > 1).
    fn u_panel(&mut self, a: &mut Local<T::Acc>, k: usize, kb: usize, diag: &[T::Acc], cols_after: usize) -> Quantized<T> {
        let (grid, s) = (self.grid, self.s);
        let pk = k % grid.p;
        let ld = a.ld();
        let lc1 = a.cols.local_before(k + 1);
        let len = wire::piece_len::<T>(kb, cols_after, KAxis::Rows, s.scaling);
        if grid.row != pk {
            let t = Instant::now();
            let msg = Bcast::start(&grid.col_comm, pk, vec![0u8; len], s.bcast, 3 * k as u32 + 2).wait();
            self.phases.bcast += t.elapsed().as_secs_f64();
            return wire::read_piece::<T>(&msg, kb, cols_after, KAxis::Rows, s.scaling).0;
        }
        let lr = a.rows.local_start(k);
        let t = Instant::now();
        solve_u_panel(rm_ref(diag, kb, kb, kb), rm_mut(&mut a.data[lr * ld + lc1..], kb, cols_after, ld));
        self.phases.panel += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let u = quantize_block::<T>(&a.data[lr * ld + lc1..], ld, kb, cols_after, KAxis::Rows, s.scaling);
        self.phases.convert += t.elapsed().as_secs_f64();
        if grid.p > 1 {
            let t = Instant::now();
            let mut msg = Vec::with_capacity(len);
            wire::write_piece(&u, &mut msg);
            drop(Bcast::start(&grid.col_comm, pk, msg, s.bcast, 3 * k as u32 + 2).wait());
            self.phases.bcast += t.elapsed().as_secs_f64();
        }
        u
    }
}
