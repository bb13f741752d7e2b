//! HPL-MxP across ranks: the matrix generated block-cyclically on a P×Q grid, factored
//! without pivoting in a low storage precision ([`factor`]), refined in f64 to HPL
//! accuracy with the distributed factors as preconditioner ([`operators`]).
//!
//! Reported rate: (2/3·n³ + 3/2·n²) / (factorisation + refinement time), the time of a
//! repetition being the slowest rank's; the LU-only rate is 2/3·n³ over the factorisation
//! time. Generation is outside the timed region (as in HPL).

pub mod backend;
pub mod bcast;
pub mod dat;
pub mod factor;
pub mod gpu;
pub mod grid;
pub mod operators;

use super::{Ctx, with_element};
use crate::error::{Error, Result};
use crate::calibration::{Accuracy, Efficiency, Peaks, Record};
use crate::timing::{self, Slowest, Stats};
use crate::world::World;
use bcast::Algorithm;
use crate::bench::gemm::{PathChoice, Probe, probe, probe_json};
use effcal_kernels::gemm::{self, Accumulate, GemmElement, GemmParams, GemmPath, Update};
use effcal_kernels::precision::scaling::{KAxis, Quantized};
use effcal_kernels::rng::stream;
use effcal_kernels::precision::Real;
use effcal_kernels::hpl_mxp::matgen::{Generator, Matrix};
use effcal_kernels::precision::scaling::ScaleMode;
use effcal_kernels::hpl_mxp::refine::{self, IrInfo, MAX_ITERS, THRESHOLD};
use effcal_kernels::{KernelError, Precision, cost};
use backend::Backend;
use factor::{Local, Phases};
use grid::{Grid, Pmap};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::time::Instant;
use super::wire::Pod;

/// The refinement scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refine {
    Ir,
    Gmres { restart: usize },
}

impl Refine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ir => "ir",
            Self::Gmres { .. } => "gmres",
        }
    }
}

/// One HPL-MxP measurement.
#[derive(Clone, Copy, Debug)]
pub struct HplSettings {
    pub n: usize,
    pub nb: usize,
    pub precision: Precision,
    pub p: usize,
    pub q: usize,
    pub pmap: Pmap,
    pub refine: Refine,
    pub generator: Generator,
    pub scaling: ScaleMode,
    pub bcast: Algorithm,
    pub lookahead: bool,
    /// Keep an f64 copy of A for the residuals (else regenerate it at every product).
    pub keep_f64: bool,
    /// Columns per trailing-update chunk.
    pub chunk: usize,
    /// The system is scaled by this power of two (1: the generator's own): exact in f64,
    /// it moves the entries through a format's range.
    pub scale: f64,
    /// A progress line every this many steps (0: none).
    pub progress_every: usize,
    /// How the trailing update's GEMM path is chosen; `gemm.backend` is set from it.
    pub path: PathChoice,
    pub gemm: GemmParams,
    /// GPU runs: each diagonal block factored on the GPU on its way to the host (else on
    /// the host, by the CPU's code).
    pub diagonal_on_gpu: bool,
}

pub use effcal_kernels::hpl_mxp::default_nb;

/// The block size when none is given: per precision on CPUs ([`default_nb`]),
/// [`gpu::GPU_NB`] on GPUs.
pub fn default_nb_on(precision: Precision, gpu: bool) -> usize {
    if gpu { gpu::GPU_NB } else { default_nb(precision) }
}

impl HplSettings {
    /// A solve of order `n` in `precision` with block size `nb`, every other choice at its
    /// default: the most square grid for the rank count (p = q = 0 until MPI runs), rows
    /// first, classical refinement, the reference generator, the precision's default
    /// scaling (per tensor for FP8), ring broadcasts with look-ahead, the f64 matrix
    /// regenerated, 2048-column update chunks, the system unscaled, no progress lines, the
    /// diagonal blocks factored on the host.
    pub fn new(n: usize, nb: usize, precision: Precision) -> Self {
        HplSettings {
            n,
            nb,
            precision,
            p: 0,
            q: 0,
            pmap: Pmap::Row,
            refine: Refine::Ir,
            generator: Generator::default(),
            scaling: ScaleMode::default_for(precision),
            bcast: Algorithm::Ring,
            lookahead: true,
            keep_f64: false,
            chunk: 2048,
            scale: 1.0,
            progress_every: 0,
            path: PathChoice::Fastest,
            gemm: GemmParams::default(),
            diagonal_on_gpu: false,
        }
    }
}

/// The checks that need nothing but the settings and the rank count, done on every rank
/// before any MPI work (so every rank refuses alike).
pub fn check(s: &HplSettings, ranks: usize) -> Result<()> {
    if s.p * s.q != ranks {
        return Err(Error::invalid(
            "--p/--q",
            format!("{}×{}", s.p, s.q),
            format!("a grid with P·Q = {ranks}, the number of ranks (e.g. --p {} --q {})", grid::default_grid(ranks).0, grid::default_grid(ranks).1),
        ));
    }
    if s.n < 2 {
        return Err(Error::invalid("--n", s.n, "an order of at least 2"));
    }
    if s.nb == 0 {
        return Err(Error::invalid("--nb", s.nb, "a block size of at least 1"));
    }
    if s.scaling != ScaleMode::None && !s.precision.scalable() {
        return Err(Error::invalid("--scaling", s.scaling.name(), "none for f64, f32 and bf16 (scaling applies to f16, e4m3, e5m2)"));
    }
    // A panel broadcast carries at most a process's rows (or columns) of one block column
    // and the diagonal block, in at most 8 bytes an element: it must fit one MPI message.
    let local = s.n.div_ceil(s.nb).div_ceil(s.p.min(s.q)) * s.nb;
    let panel = (local + s.nb).saturating_mul(s.nb).saturating_mul(8);
    if panel > crate::bench::raw::MAX_MESSAGE {
        return Err(Error::invalid(
            "--nb",
            s.nb,
            format!("panels under 2 GiB per broadcast (n = {}, NB = {} on {}×{} ranks makes up to {panel} bytes): a smaller NB, or more ranks", s.n, s.nb, s.p, s.q),
        ));
    }
    Ok(())
}

pub fn measure(ctx: &Ctx, s: &HplSettings, peaks: Option<&Peaks>) -> Result<Record> {
    // f16 accumulation applies to f16 factorisations; the others (an f64 baseline beside
    // them) sum wide.
    let s = &match s.gemm.accumulate {
        Accumulate::F16 { .. } if s.precision != Precision::F16 => HplSettings { gemm: GemmParams { accumulate: Accumulate::Wide, ..s.gemm }, ..*s },
        _ => *s,
    };
    with_element!(s.precision, run(ctx, s, peaks))
}

/// One repetition: seconds of the solve, of the factorisation and of the refinement, and
/// of each phase; what refinement reached; why it failed, if it did.
struct Rep {
    total: f64,
    lu: f64,
    refine: f64,
    phases: Phases,
    ir: Option<IrInfo>,
    failure: Option<String>,
}

impl Slowest for Rep {
    fn slowest(self, w: &World) -> Self {
        let p = &self.phases;
        let phases = Phases { diagonal: w.max(p.diagonal), panel: w.max(p.panel), convert: w.max(p.convert), bcast: w.max(p.bcast), update: w.max(p.update) };
        Rep { total: w.max(self.total), lu: w.max(self.lu), refine: w.max(self.refine), phases, ..self }
    }

    /// The same matrix fails the same way again.
    fn stops(&self) -> bool {
        self.failure.is_some()
    }
}

fn run<T: GemmElement + Pod>(ctx: &Ctx, s: &HplSettings, peaks: Option<&Peaks>) -> Result<Record>
where
    T::Acc: Real + Pod,
{
    check(s, ctx.world.size())?;
    let grid = Grid::new(ctx.world.comm(), s.p, s.q, s.pmap);
    let (rows, cols) = (grid.rows(s.n, s.nb), grid.cols(s.n, s.nb));
    let mut gemm = s.gemm;
    let probe = s.path.apply(&mut gemm, || probe_update::<T>(ctx, s, rows.local_len(), cols.local_len()));
    let mut a = Local::<T::Acc>::zeros(rows, cols);
    solve::<T, _>(ctx, s, peaks, &grid, &mut a, gemm, probe)
}

/// The timed repetitions of one solve on `a` (a backend holding this rank's blocks): the
/// matrix loaded (untimed), factored, refined in f64; then the record. Shared by every
/// backend: the grid, broadcasts, refinement, checks and record are the same code.
pub(crate) fn solve<T: GemmElement + Pod, B: Backend<T>>(ctx: &Ctx, s: &HplSettings, peaks: Option<&Peaks>, grid: &Grid, a: &mut B, gemm: GemmParams, probe: Option<Probe>) -> Result<Record>
where
    T::Acc: Real + Pod,
{
    let world = ctx.world.comm();
    let (rows, cols) = (a.rows(), a.cols());
    let m = Matrix::new(s.n, ctx.seed, s.generator);
    let b = operators::rhs(&m, s.scale);
    let kept = (s.keep_f64 && !a.holds_f64()).then(|| {
        let mut a64 = Local::<f64>::zeros(rows, cols);
        operators::generate(&m, s.scale, grid, world, &mut a64);
        a64
    });
    let settings = factor::Settings { nb: s.nb, scaling: s.scaling, bcast: s.bcast, lookahead: s.lookahead, gemm, chunk: s.chunk };
    let mut path = None;
    let root = ctx.world.is_root();
    let total_reps = ctx.warmup + ctx.reps;
    let reps = timing::repetitions(&ctx.world, ctx.warmup, ctx.reps, |rep, start| {
        // Untimed, as in HPL: the matrix of this repetition.
        let generated = a.load(&m, s.scale, grid, world)?;
        let f64a = match &kept {
            Some(a64) => operators::F64Matrix::Kept(a64),
            None => operators::F64Matrix::Regenerated { m: &m, scale: s.scale, rows, cols, diag: &generated.diag },
        };
        let label = format!("{} {}/{}{}", s.precision, rep + 1, total_reps, if rep < ctx.warmup { " (warm-up)" } else { "" });
        let mut progress = Progress::new(root && s.progress_every > 0, s.progress_every, s.n, s.nb, label);
        let t0 = start();
        let timed = rep >= ctx.warmup;
        if timed {
            a.begin_timed();
        }
        let outcome = factor::factor::<T, B>(grid, a, &settings, |k, steps| progress.step(k, steps));
        let t_lu = t0.elapsed().as_secs_f64();
        progress.finish();
        // A backend's error on one rank (a GPU's) stops every rank here, each saying its own.
        let broke = matches!(outcome, Err(Error::Kernel(KernelError::Breakdown { .. })));
        if !ctx.world.all(outcome.is_ok() || broke) {
            return Err(outcome.err().unwrap_or_else(|| Error::Gpu("another rank could not go on (it says why)".into())));
        }
        let out = match outcome {
            Err(Error::Kernel(e @ KernelError::Breakdown { .. })) => {
                if timed {
                    a.end_timed();
                }
                return Ok(Rep { total: t_lu, lu: t_lu, refine: 0.0, phases: Phases::default(), ir: None, failure: Some(e.to_string()) });
            }
            Err(e) => return Err(e),
            Ok(out) => out,
        };
        path = out.path.or(path);
        let t1 = Instant::now();
        // The operators run inside refinement's closures, which cannot fail: the first
        // error is kept (every rank still takes part in each collective) and returned after.
        let failed = std::cell::RefCell::new(None);
        let keep = |r: Result<()>| {
            if let Err(e) = r {
                failed.borrow_mut().get_or_insert(e);
            }
        };
        let a_cell = std::cell::RefCell::new(&mut *a);
        let mut matvec = |x: &[f64], y: &mut [f64]| keep(operators::matvec(world, rows, cols, x, y, |xl| a_cell.borrow_mut().f64_product(&f64a, xl)));
        let mut precond = |v: &mut [f64]| keep(operators::precondition::<T, B>(world, grid, *a_cell.borrow_mut(), &out.diags, v));
        let mut sys = refine::System { matvec: &mut matvec, precond: &mut precond, b: &b, a_inf: generated.a_inf };
        let (_, info) = match s.refine {
            Refine::Ir => refine::ir(&mut sys, MAX_ITERS),
            Refine::Gmres { restart } => refine::gmres_ir(&mut sys, restart, MAX_ITERS),
        };
        let t_ref = t1.elapsed().as_secs_f64();
        let total = t0.elapsed().as_secs_f64();
        if timed {
            a_cell.into_inner().end_timed();
        }
        let failed = failed.into_inner();
        if !ctx.world.all(failed.is_none()) {
            return Err(failed.unwrap_or_else(|| Error::Gpu("another rank could not go on (it says why)".into())));
        }
        let failure = (!info.converged).then(|| {
            format!(
                "refinement did not reach the threshold: scaled residual {:.3e} > {THRESHOLD} after {} iterations (at most {MAX_ITERS})",
                info.scaled_residual, info.iterations
            )
        });
        Ok(Rep { total, lu: t_lu, refine: t_ref, phases: out.phases, ir: Some(info), failure })
    })?;
    // The path of the trailing updates: rank 0's, or where rank 0 had none (all its columns
    // factored before any update reached them), the first rank's that had one.
    let paths = ctx.world.all_gather_string(path.map_or("", GemmPath::name));
    let path = paths.iter().find_map(|name| GemmPath::ALL.into_iter().find(|p| p.name() == name));
    Ok(summarise(ctx, s, peaks, &reps, path, &probe))
}

/// Chooses the trailing update's GEMM path where the precision has two on this CPU: a
/// probe (see [`crate::bench::gemm::probe`]) of one update of the first step's shape, this
/// rank's rows by one column chunk by nb (each at most 4096), on random operands.
fn probe_update<T: GemmElement>(ctx: &Ctx, s: &HplSettings, rows: usize, cols: usize) -> Option<Probe> {
    if gemm::backends(s.precision, s.gemm.accumulate).len() < 2 {
        return None;
    }
    let (m, n, k) = (rows.clamp(1, 4096), cols.min(s.chunk).clamp(1, 4096), s.nb);
    let seed = stream(ctx.seed, 3_000_000 + ctx.world.rank() as u64);
    let a = Quantized::<T>::uniform(seed, m, k, KAxis::Cols, ScaleMode::None);
    let b = Quantized::<T>::uniform(seed + 1, k, n, KAxis::Rows, ScaleMode::None);
    let mut c = vec![T::Acc::default(); m * n];
    let update = Update { alpha: T::Acc::from(-1.0), accumulate: true };
    probe(ctx, s.precision, s.gemm.accumulate, |backend| gemm::gemm_update(&mut c, n, &a, &b, update, &GemmParams { backend, ..s.gemm }).expect("shapes made to fit").path)
}

fn summarise(ctx: &Ctx, s: &HplSettings, peaks: Option<&Peaks>, reps: &[Rep], path: Option<GemmPath>, probe: &Option<Probe>) -> Record {
    let times: Vec<f64> = reps.iter().map(|r| r.total).collect();
    let lu_times: Vec<f64> = reps.iter().map(|r| r.lu).collect();
    let ref_times: Vec<f64> = reps.iter().map(|r| r.refine).collect();
    let time_s = Stats::of(&times);
    let lu_time_s = Stats::of(&lu_times);
    let gflops = Stats::rate(cost::hpl::flops(s.n) / 1e9, &time_s);
    let lu_gflops = Stats::rate(cost::hpl::lu_flops(s.n) / 1e9, &lu_time_s);
    let eff = |rate: f64| Efficiency::of(rate, peaks, s.precision);
    let failure = reps.iter().find_map(|r| r.failure.clone());
    let iterations = reps.iter().filter_map(|r| r.ir.as_ref().map(|i| i.iterations)).max();
    let residual = reps.iter().filter_map(|r| r.ir.as_ref().map(|i| i.scaled_residual)).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let median = |f: fn(&Phases) -> f64| Stats::of(&reps.iter().map(|r| f(&r.phases)).collect::<Vec<_>>()).median;
    let phases = json!({
        "diagonal": median(|p| p.diagonal),
        "panel_solve": median(|p| p.panel),
        "convert": median(|p| p.convert),
        "bcast_wait": median(|p| p.bcast),
        "trailing_update": median(|p| p.update),
        "refine": Stats::of(&ref_times).median,
    });
    let what_if = s.precision.is_fp8();
    let params = [
        ("n", json!(s.n)),
        ("nb", json!(s.nb)),
        ("p", json!(s.p)),
        ("q", json!(s.q)),
        ("pmap", json!(s.pmap.name())),
        ("ranks", json!(ctx.world.size())),
        ("threads_per_rank", json!(ctx.threads)),
        ("generator", json!(s.generator.name())),
        ("refine", json!(s.refine.name())),
        ("restart", json!(match s.refine { Refine::Gmres { restart } => Some(restart), Refine::Ir => None })),
        ("bcast", json!(s.bcast.name())),
        ("lookahead", json!(if s.lookahead { 1 } else { 0 })),
        ("f64_matrix", json!(if s.keep_f64 { "kept" } else { "regenerated" })),
        ("scaling", json!(s.scaling.name())),
        ("matrix_scale", json!(s.scale)),
        ("backend", json!(s.path.name())),
        ("accumulation", json!(s.gemm.accumulate.name(s.precision))),
        ("accumulation_block", json!(s.gemm.accumulate.block())),
        ("path", json!(path.map(GemmPath::name))),
        ("blocking", crate::bench::gemm::blocking_json(path, &s.gemm)),
        // The arithmetic of the trailing update, where the FLOPs are.
        ("arithmetic", json!(path.map(|p| p.arithmetic(s.precision).name()))),
        ("factor_precision", json!(s.precision.compute().name())),
        ("what_if", json!(what_if)),
    ];
    let results = [
        ("path_probe_s", probe_json(probe)),
        ("lu_time_s", json!(lu_time_s)),
        ("lu_gflops", json!(lu_gflops)),
        ("lu_efficiency", json!(eff(lu_gflops.median))),
        ("refine_time_s", json!(Stats::of(&ref_times))),
        ("restarts", json!(reps.iter().filter_map(|r| r.ir.as_ref().map(|i| i.restarts)).max())),
        ("phases_s", phases),
    ];
    Record {
        kernel: "hpl-mxp".into(),
        precision: s.precision.name().into(),
        params: params.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        flop_convention: cost::hpl::FLOP_CONVENTION.into(),
        time_s,
        gflops,
        efficiency: eff(gflops.median),
        accuracy: Accuracy {
            scaled_residual: residual,
            residual_threshold: Some(THRESHOLD),
            iterations,
            max_iterations: Some(MAX_ITERS),
            ..Default::default()
        },
        valid: failure.is_none(),
        failure,
        results: results.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        bandwidth_gbs: None,
        checksum: None,
    }
}

/// rocHPL-MxP-style progress on rank 0's stderr: every `every` steps, the share of the
/// factorisation's FLOPs done and the rate since the factorisation began. Not the rate since
/// the last line: with look-ahead a step's panel is factored during the step before, so the
/// last lines' share of FLOPs was mostly done before them (a last line of 985 GFLOPS on one
/// core of 229 peak, N = 1000).
struct Progress {
    on: bool,
    every: usize,
    n: f64,
    nb: usize,
    label: String,
    start: Instant,
}

impl Progress {
    fn new(on: bool, every: usize, n: usize, nb: usize, label: String) -> Self {
        Self { on, every, n: n as f64, nb, label, start: Instant::now() }
    }

    fn step(&mut self, k: usize, steps: usize) {
        if !self.on || (!(k + 1).is_multiple_of(self.every) && k + 1 != steps) {
            return;
        }
        let left = (self.n - ((k + 1) * self.nb) as f64).max(0.0);
        let done = 1.0 - (left / self.n).powi(3);
        let rate = done * cost::hpl::lu_flops(self.n as usize) / self.start.elapsed().as_secs_f64() / 1e9;
        let line = format!("  HPL-MxP {}  step {:>5}/{:<5} {:>5.1}%  {:>9.1} GFLOPS so far", self.label, k + 1, steps, 100.0 * done, rate);
        let mut err = std::io::stderr().lock();
        if err.is_terminal() {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn finish(&self) {
        if self.on && std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
}
