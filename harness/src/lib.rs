//! effcal-harness: MPI world, timing, topology, run plans, drivers, calibration JSON, CLI.
//!
//! [`main`] is the whole program: it parses the command line, runs the command on every
//! rank, prints the human tables on rank 0's stdout, writes the calibration JSON from
//! rank 0, and returns the exit code: 0 all results PASSED, 1 a result FAILED its
//! validation (everything measured is still written), 2 bad input, 3 another error.

pub mod bench;
pub mod calibration;
pub mod cli;
pub mod config;
pub mod correct;
pub mod error;
pub mod estimate;
pub mod machine;
pub mod merge;
pub mod output;
pub mod report;
pub mod roofline;
pub mod slurm;
pub mod timing;
pub mod topology;
pub mod uarch;
pub mod world;

use bench::Ctx;
use bench::gemm::GemmSettings;
use bench::hpl::{self, HplSettings, Refine};
use bench::stencil::{self, StencilSettings};
use effcal_kernels::stencil::Kind;
use bench::peak::PeakSettings;
use clap::Parser;
use cli::{Cli, Command, FormatsAction};
use effcal_kernels::gemm::GemmParams;
use effcal_kernels::precision::scaling::ScaleMode;
use effcal_kernels::{Overflow, Precision};
use error::{Error, Result};
use calibration::{Binding, Calibration, Environment, Record};
use std::io::{BufRead, Write};
use std::path::Path;

/// Did every result pass its validation?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
}

/// Runs effcal and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Passed) => 0,
        Ok(Outcome::Failed) => 1,
        Err(e) => {
            // One write, so the lines of ranks that fail together do not interleave.
            let _ = std::io::stderr().write_all(format!("effcal: error: {e}\n").as_bytes());
            match e {
                Error::InvalidInput { .. } | Error::Config { .. } | Error::Kernel(_) => 2,
                _ => 3,
            }
        }
    }
}

fn run(cli: Cli) -> Result<Outcome> {
    let threads = cli.threads.map(|t| t as usize);
    // --system: a TOML whose [system] section describes the machine (read before MPI starts).
    let described = cli.system.as_deref().map(config::Plan::load).transpose()?;
    let quick = |fma_seconds: f64, triad: Option<usize>| peak_settings(fma_seconds, triad, described.as_ref());
    match cli.command {
        Command::Formats { action: None } => {
            print!("{}", output::formats_table());
            Ok(Outcome::Passed)
        }
        Command::Formats { action: Some(FormatsAction::Quantize { to, overflow, values }) } => {
            let overflow = if overflow == "ieee" { Overflow::NonSaturating } else { Overflow::Saturate };
            quantize(to, overflow, values)
        }
        Command::Merge(a) => {
            print!("{}", merge::merge(&a.files, &a.out, a.force)?);
            Ok(Outcome::Passed)
        }
        Command::Slurm(a) => {
            let checked = config::Plan::load(&a.config)?;
            for path in slurm::render(&checked, &a.config, &a.out_dir, a.pjm)? {
                println!("wrote {}", path.display());
            }
            Ok(Outcome::Passed)
        }
        Command::Schema { estimate } => {
            print!("{}", if estimate { estimate::schema_json() } else { calibration::schema_json() });
            Ok(Outcome::Passed)
        }
        Command::Report(a) => {
            let cal = calibration_with(&a.calibration, described.as_ref())?;
            for path in report::write(&cal, &a.calibration.display().to_string(), &a.out)? {
                println!("wrote {}", path.display());
            }
            Ok(Outcome::Passed)
        }
        Command::Estimate(a) => {
            let cal = calibration_with(&a.calibration, described.as_ref())?;
            let target = a.target.as_deref().map(estimate::LibrarySystem::load).transpose()?;
            let demand = estimate::Demand::default().with(&a.demand)?;
            let e = estimate::estimate(&cal, &a.calibration.display().to_string(), &demand, target.as_ref(), a.allow_suspect_peaks)?;
            print!("{}", estimate::markdown(&e));
            let _ = std::io::stdout().flush();
            calibration::write_atomic(&a.json, &e)?;
            eprintln!("effcal: estimate written to {}", a.json.display());
            Ok(Outcome::Passed)
        }
        Command::Gemm(a) => {
            let n = a.n as usize;
            let settings = GemmSettings {
                precision: a.precision,
                m: a.m.map_or(n, |m| m as usize),
                n,
                k: a.k.map_or(n, |k| k as usize),
                scaling: a.scaling.unwrap_or(ScaleMode::default_for(a.precision)),
                params: GemmParams { backend: a.backend, ..Default::default() },
                samples: a.samples,
            };
            if !a.precision.scalable() && settings.scaling != ScaleMode::None {
                return Err(Error::invalid("--scaling", settings.scaling.name(), "none for f64, f32 and bf16 (scaling applies to f16, e4m3, e5m2)"));
            }
            let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
            let mut session = Session::start(&ctx, a.json.as_deref(), &quick(0.2, None), None)?;
            session.print(&output::gemm_header(ctx.world.size(), ctx.threads));
            let record = bench::gemm::measure(&ctx, &settings, session.doc.peaks.as_ref())?;
            let row = output::gemm_row(&record);
            session.add(record, &row)?;
            session.finish()
        }
        Command::HplMxp(a) => {
            let mut runs = hpl_runs(&a)?;
            let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
            for s in runs.iter_mut() {
                if s.p == 0 {
                    (s.p, s.q) = hpl::grid::default_grid(ctx.world.size());
                }
                hpl::check(s, ctx.world.size())?;
            }
            let mut session = Session::start(&ctx, a.json.as_deref(), &quick(0.2, None), None)?;
            run_hpl(&ctx, &mut session, &runs)?;
            session.finish()
        }
        Command::Stencil(a) => {
            let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
            let runs = stencil_runs(&a, ctx.world.size())?;
            // The triad is the ceiling the stencils are measured against: measure it.
            let mut session = Session::start(&ctx, a.json.as_deref(), &quick(0.05, Some(0)), None)?;
            run_stencils(&ctx, &mut session, &runs)?;
            session.finish()
        }
        Command::Peak(a) => {
            if !(a.fma_seconds > 0.0 && a.fma_seconds <= 60.0) {
                return Err(Error::invalid("--fma-seconds", a.fma_seconds, "a number of seconds in (0, 60]"));
            }
            let ctx = setup(threads, a.reps as usize, 1, 42)?;
            Session::start(&ctx, a.json.as_deref(), &quick(a.fma_seconds, Some(a.triad_elements.unwrap_or(0))), None)?.finish()
        }
        Command::Run(a) => {
            let checked = match &a.config {
                Some(path) => config::Plan::load(path)?,
                None => config::Plan::parse(config::LOCAL_TOML, "configs/local.toml (built in)")?,
            };
            let plan = &checked.plan;
            let out = a.out.clone().or_else(|| plan.run.out.as_ref().map(Into::into)).unwrap_or_else(|| "results/calibration.json".into());
            let ctx = setup(threads.or(plan.run.threads), plan.run.reps, plan.run.warmup, plan.run.seed)?;
            // Sizes for this run's ranks and memory, and every stencil run checked, before
            // anything is measured.
            let node_share = ctx.node.memory_bytes / ctx.local_ranks() as u64;
            let memory = config::Memory { per_rank: ctx.world.min(node_share as f64) as u64, ranks: ctx.world.size() };
            let ranks = ctx.world.size();
            let sizes = checked.sizes(memory, |size| stencil::decomp::balanced_dims(ranks, size))?;
            let mut stencils = Vec::new();
            if let Some(st) = &plan.stencil {
                for &kind in &checked.stencil_kinds {
                    for &precision in &checked.stencil_precisions {
                        let s = StencilSettings { kind, precision, global: sizes.stencil, iters: st.iters, dims: sizes.stencil_dims, overlap: st.overlap };
                        stencil::check(&s, ranks).map_err(|e| Error::Config { file: checked.file.clone(), message: format!("stencil: {e}") })?;
                        stencils.push(s);
                    }
                }
            }
            let resumed = if a.resume { resume(&ctx, &out)? } else { None };
            let s = peak_settings(plan.peak.fma_seconds, Some(plan.peak.triad_elements), Some(described.as_ref().unwrap_or(&checked)));
            let mut session = Session::start(&ctx, Some(&out), &s, resumed)?;
            if let Some(g) = &plan.gemm {
                session.print(&output::gemm_header(ranks, ctx.threads));
                for &p in &checked.gemm_precisions {
                    let n = sizes.gemm_n;
                    if session.skip("gemm", p, &[("n", serde_json::json!(n))]) {
                        continue;
                    }
                    let settings = GemmSettings {
                        precision: p,
                        m: n,
                        n,
                        k: n,
                        scaling: if p.is_fp8() { checked.fp8_scaling } else { ScaleMode::None },
                        params: GemmParams::default(),
                        samples: g.samples,
                    };
                    let record = bench::gemm::measure(&ctx, &settings, session.doc.peaks.as_ref())?;
                    let row = output::gemm_row(&record);
                    session.add(record, &row)?;
                }
            }
            if let Some(h) = &plan.hpl_mxp {
                let (p, q) = bench::hpl::grid::default_grid(ranks);
                let mut runs = Vec::new();
                for &precision in &checked.hpl_precisions {
                    let (n, nb) = (sizes.hpl_n, h.nb.unwrap_or(hpl::default_nb(precision)));
                    if session.skip("hpl-mxp", precision, &[("n", serde_json::json!(n)), ("nb", serde_json::json!(nb))]) {
                        continue;
                    }
                    runs.push(HplSettings {
                        n,
                        nb,
                        precision,
                        p,
                        q,
                        pmap: hpl::grid::Pmap::Row,
                        refine: Refine::Ir,
                        generator: Default::default(),
                        scaling: if precision.is_fp8() { checked.fp8_scaling } else { ScaleMode::None },
                        bcast: hpl::bcast::Algorithm::Ring,
                        lookahead: true,
                        keep_f64: false,
                        chunk: 2048,
                        scale: 1.0,
                        progress_every: 0,
                        gemm: GemmParams::default(),
                    });
                }
                run_hpl(&ctx, &mut session, &runs)?;
            }
            let key = |s: &StencilSettings| [("size", serde_json::json!(s.global)), ("iters", serde_json::json!(s.iters)), ("overlap", serde_json::json!(s.overlap))];
            stencils.retain(|s| !session.skip(stencil::record_kernel(s.kind), s.precision, &key(s)));
            if plan.stencil.is_some() {
                run_stencils(&ctx, &mut session, &stencils)?;
            }
            session.finish()
        }
    }
}

/// A calibration JSON from a file, refused (naming the flag) when it is not one this effcal
/// reads.
fn read_calibration(path: &Path) -> Result<Calibration> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let cal: Calibration = serde_json::from_str(&text)
        .map_err(|e| Error::invalid("--calibration", path.display(), format!("a calibration JSON of `effcal run`, `gemm`, `hpl-mxp` or `stencil` ({e})")))?;
    if cal.schema_version != calibration::SCHEMA_VERSION {
        return Err(Error::invalid("--calibration", path.display(), format!("schema_version {} (this effcal reads {})", cal.schema_version, calibration::SCHEMA_VERSION)));
    }
    Ok(cal)
}

/// A calibration to read: its peaks recomputed with a system description (`--system`),
/// where one is given, and checked by the guard either way (a file of an older effcal, or
/// edited by hand, may carry no verdict or a stale one).
fn calibration_with(path: &Path, described: Option<&config::Checked>) -> Result<Calibration> {
    let mut cal = read_calibration(path)?;
    match described {
        Some(d) => eprintln!("effcal: {}", correct::with_system(&mut cal, d)?),
        None => {
            if let Some(p) = cal.peaks.as_mut() {
                p.guard();
            }
        }
    }
    Ok(cal)
}

/// Peak settings with the theoretical inputs of a system description, where there is one.
fn peak_settings(fma_seconds: f64, triad_elements: Option<usize>, described: Option<&config::Checked>) -> PeakSettings {
    let mut s = PeakSettings::detected(fma_seconds, triad_elements);
    if let Some(c) = described {
        let sys = &c.plan.system;
        s.clock_ghz = sys.clock_ghz;
        s.flop_per_cycle = c.flop_per_cycle.clone();
        s.memory_bandwidth_gbs = sys.memory_bandwidth_gbs;
        s.sources = sys.sources.clone();
        s.description = Some(sys.clone());
    }
    s
}

/// The calibration `--resume` continues: the output file as rank 0 reads it (shared with
/// every rank, so all skip the same records), or None when there is none yet. A file from
/// another schema, machine or rank × thread shape is refused.
fn resume(ctx: &Ctx, path: &Path) -> Result<Option<Calibration>> {
    let text = if ctx.world.is_root() { std::fs::read_to_string(path).unwrap_or_default() } else { String::new() };
    let text = ctx.world.all_gather_string(&text).swap_remove(0);
    if text.is_empty() {
        if ctx.world.is_root() {
            eprintln!("effcal: --resume: no calibration at {} yet; starting a new one", path.display());
        }
        return Ok(None);
    }
    let doc: Calibration = serde_json::from_str(&text).map_err(|e| Error::invalid("--resume", path.display(), format!("a calibration JSON effcal wrote ({e})")))?;
    let shape = |schema: u32, ranks: usize, threads: usize, cpu: &str| format!("schema {schema}, {ranks} rank(s) × {threads} thread(s) on '{cpu}'");
    let mine = shape(calibration::SCHEMA_VERSION, ctx.world.size(), ctx.threads, &ctx.node.cpu_model);
    let theirs = shape(doc.schema_version, doc.system.ranks, doc.system.threads_per_rank, &doc.system.cpu_model);
    if mine != theirs || doc.peaks.is_none() {
        return Err(Error::invalid("--resume", path.display(), format!("a calibration of this run's shape ({mine}); that file is {theirs}: write to another --out")));
    }
    Ok(Some(doc))
}

/// The runs of `effcal hpl-mxp`: every precision for each combination of the HPL.dat
/// (grids, sizes, block sizes, broadcasts, depths), or for the flags.
fn hpl_runs(a: &cli::HplArgs) -> Result<Vec<HplSettings>> {
    let refine = if a.refine == "gmres" { Refine::Gmres { restart: a.restart as usize } } else { Refine::Ir };
    let generator = a.generator.parse().map_err(Error::Kernel)?;
    let bcast = a.bcast.parse::<hpl::bcast::Algorithm>().map_err(|e| Error::invalid("--bcast", &a.bcast, e))?;
    let base = |precision: Precision| HplSettings {
        n: 0,
        nb: 0,
        precision,
        p: 0,
        q: 0,
        pmap: if a.pmap == "col" { hpl::grid::Pmap::Col } else { hpl::grid::Pmap::Row },
        refine,
        generator,
        scaling: a.scaling.unwrap_or(ScaleMode::default_for(precision)),
        bcast,
        lookahead: a.lookahead == 1,
        keep_f64: a.f64_matrix == "kept",
        chunk: a.chunk as usize,
        scale: 2f64.powi(a.scale_exp),
        progress_every: a.progress_every.unwrap_or(0),
        gemm: GemmParams { backend: a.backend, ..Default::default() },
    };
    let mut runs = Vec::new();
    let steps = |n: usize, nb: usize| a.progress_every.unwrap_or(n.div_ceil(nb).div_ceil(10).max(1));
    match &a.dat {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let d = hpl::dat::parse(&text, &path.display().to_string()).map_err(|m| Error::Config { file: path.display().to_string(), message: m })?;
            for &(p, q) in &d.grids {
                for &n in &d.ns {
                    for &nb in &d.nbs {
                        for &bcast in &d.bcasts {
                            for &lookahead in &d.lookaheads {
                                for &precision in &a.precision {
                                    let s = HplSettings { n, nb, p, q, pmap: d.pmap, bcast, lookahead, progress_every: steps(n, nb), ..base(precision) };
                                    runs.push(s);
                                }
                            }
                        }
                    }
                }
            }
        }
        None => {
            let n = a.n.expect("clap requires --n without --dat") as usize;
            for &precision in &a.precision {
                let nb = a.nb.map_or(hpl::default_nb(precision), |v| v as usize);
                runs.push(HplSettings { n, nb, progress_every: steps(n, nb), ..base(precision) });
            }
        }
    }
    // The grid: given, or the most square for the rank count (filled in once MPI runs).
    let (p, q) = (a.p.map(|v| v as usize), a.q.map(|v| v as usize));
    if p.is_some() != q.is_some() {
        return Err(Error::invalid(if p.is_some() { "--q" } else { "--p" }, "missing", "--p and --q together, or neither"));
    }
    if let (Some(p), Some(q)) = (p, q) {
        for s in runs.iter_mut() {
            s.p = p;
            s.q = q;
        }
    }
    Ok(runs)
}

/// The runs of `effcal stencil`: every precision, plain and/or overlapped; checked on every
/// rank before anything is measured.
fn stencil_runs(a: &cli::StencilArgs, ranks: usize) -> Result<Vec<StencilSettings>> {
    let kind: Kind = a.kind.parse().map_err(Error::Kernel)?;
    let base: [usize; 3] = match (&a.size, &a.class) {
        (Some(v), _) => [v[0] as usize, v[1] as usize, v[2] as usize],
        (None, Some(c)) => stencil::HIMENO_CLASSES.iter().find(|(n, _)| n == c).map(|x| x.1).expect("clap allows only XS, S, M, L"),
        (None, None) => return Err(Error::invalid("--size", "missing", "--size NX NY NZ or --class XS|S|M|L")),
    };
    let dims = a.dims.as_ref().map(|d| [d[0] as usize, d[1] as usize, d[2] as usize]);
    let global = if a.weak {
        let d = dims.unwrap_or_else(|| stencil::decomp::balanced_dims(ranks, base));
        [base[0] * d[0], base[1] * d[1], base[2] * d[2]]
    } else {
        base
    };
    let overlaps: &[bool] = match a.overlap.as_str() {
        "on" => &[true],
        "off" => &[false],
        _ => &[false, true],
    };
    let mut runs = Vec::new();
    for &precision in &a.precision {
        for &overlap in overlaps {
            let s = StencilSettings { kind, precision, global, iters: a.iters as usize, dims, overlap };
            stencil::check(&s, ranks)?;
            runs.push(s);
        }
    }
    Ok(runs)
}

/// Runs stencil settings in order, printing a row for each.
fn run_stencils(ctx: &Ctx, session: &mut Session<'_>, runs: &[StencilSettings]) -> Result<()> {
    session.print(&output::stencil_header(ctx.world.size(), ctx.threads));
    for s in runs {
        let record = stencil::measure(ctx, s, session.doc.peaks.as_ref())?;
        let text = output::stencil_row(&record);
        session.add(record, &text)?;
    }
    session.annotate(output::apply_halo_hidden)
}

/// Runs HPL-MxP settings in order, printing HPL's result block, then the speed-ups over
/// f64 of every run that has an f64 run of the same size and grid.
fn run_hpl(ctx: &Ctx, session: &mut Session<'_>, runs: &[HplSettings]) -> Result<()> {
    session.print(&output::hpl_header());
    for s in runs {
        let mut s = *s;
        if s.p == 0 {
            (s.p, s.q) = hpl::grid::default_grid(ctx.world.size());
        }
        let record = hpl::measure(ctx, &s, session.doc.peaks.as_ref())?;
        let text = output::hpl_block(&record);
        session.add(record, &text)?;
    }
    session.annotate(output::apply_speedups)
}

/// `effcal formats quantize`: one "<input> <rounded>" line per value.
fn quantize(to: Precision, overflow: Overflow, values: Vec<String>) -> Result<Outcome> {
    let values = if values.is_empty() {
        let stdin = std::io::stdin();
        let mut v = Vec::new();
        for line in stdin.lock().lines() {
            let line = line.map_err(|e| Error::io("reading values from stdin", e))?;
            v.extend(line.split_whitespace().map(str::to_string));
        }
        v
    } else {
        values
    };
    let mut out = std::io::stdout().lock();
    for s in values {
        let x: f64 = s.trim().parse().map_err(|_| Error::invalid("value", &s, "a decimal number such as 0.1, -3e5, inf or nan"))?;
        let _ = writeln!(out, "{s} {}", output::exact(to.quantize(x, overflow)));
    }
    Ok(Outcome::Passed)
}

/// Detects the node, starts MPI, places this rank's threads (one core each) and starts its
/// rayon pool on them.
fn setup(threads: Option<usize>, reps: usize, warmup: usize, seed: u64) -> Result<Ctx> {
    let mut node = topology::Node::detect();
    let world = world::World::init()?;
    // The ranks of this node, and whether the launcher bound them (different cpusets) or
    // left them all on the same one, which effcal then divides.
    let hosts = world.all_gather_string(&node.host);
    let masks = world.all_gather_string(&node.binding);
    let local: Vec<usize> = (0..world.size()).filter(|&r| hosts[r] == node.host).collect();
    let me = local.iter().position(|&r| r == world.rank()).expect("this rank is on its own host");
    let shared = local.iter().all(|&r| masks[r] == node.binding);
    let cores = node.bound_cores.len();
    let threads = threads.unwrap_or(if shared { (cores / local.len()).max(1) } else { cores.max(1) });
    let place = topology::Placement::new(&node.bound_cores, me, local.len(), shared, threads);
    if !place.threads.is_empty() {
        let all = place.cpus();
        // The process first (MPI's and other helper threads stay on the rank's cores), then
        // each rayon thread on its own core.
        if topology::bind_current_thread(&all).is_ok() {
            node.binding = topology::cpu_list(&all);
            node.bound_cores = place.threads.clone();
            node.bound_cores.sort_unstable();
            node.bound_cores.dedup();
        }
    }
    let per_thread = place.threads.clone();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |t| {
            if let Some(cpus) = per_thread.get(t) {
                let _ = topology::bind_current_thread(cpus);
            }
        })
        .build_global()
        .map_err(|e| Error::invalid("--threads", threads, format!("a thread count the system can start ({e})")))?;
    let mut ctx = Ctx::new(world, node, hosts, if place.divided { "divided" } else { "launcher" }, threads);
    (ctx.reps, ctx.warmup, ctx.seed) = (reps, warmup, seed);
    Ok(ctx)
}

/// A calibration being built: printed as it grows, rewritten atomically after each record.
struct Session<'a> {
    ctx: &'a Ctx,
    doc: Calibration,
    out: Option<&'a Path>,
    outcome: Outcome,
}

impl<'a> Session<'a> {
    /// Gathers the system, measures the peaks (or keeps those of the calibration being
    /// resumed, with its records), prints them.
    fn start(ctx: &'a Ctx, out: Option<&'a Path>, peak: &PeakSettings, resumed: Option<Calibration>) -> Result<Self> {
        let mut system = gather_system(ctx);
        system.description = peak.description.clone();
        let doc = match resumed {
            Some(mut doc) => {
                system.clock_ghz_measured = doc.system.clock_ghz_measured;
                doc.system = system;
                doc
            }
            None => {
                let (peaks, measured_clock) = bench::peak::measure(ctx, peak);
                system.clock_ghz_measured = measured_clock;
                Calibration {
                    schema_version: calibration::SCHEMA_VERSION,
                    effcal_version: env!("CARGO_PKG_VERSION").to_string(),
                    created: calibration::now_rfc3339(),
                    command: std::env::args().collect::<Vec<_>>().join(" "),
                    system,
                    peaks: Some(peaks),
                    records: Vec::new(),
                }
            }
        };
        let triad_failed = matches!(doc.peaks.as_ref().and_then(|p| p.stream_triad.as_ref()), Some(t) if !t.valid);
        let outcome = if triad_failed || doc.records.iter().any(|r| !r.valid) { Outcome::Failed } else { Outcome::Passed };
        let s = Session { ctx, doc, out, outcome };
        s.print(&format!("effcal {} on {} ({}), {} rank(s) × {} thread(s)\n", s.doc.effcal_version, s.doc.system.host, s.doc.system.cpu_model, ctx.world.size(), ctx.threads));
        if !s.doc.records.is_empty() {
            s.print(&format!("Resuming {}: {} record(s) kept, peaks as measured then ({})\n", out.map_or("".into(), |p| p.display().to_string()), s.doc.records.len(), s.doc.created));
        }
        s.print(&output::peaks_table(s.doc.peaks.as_ref().expect("set above")));
        s.write()?;
        Ok(s)
    }

    /// True (and says so) when the calibration already holds a record of `kernel` in
    /// `precision` whose params have these values: a resumed run skips it.
    fn skip(&self, kernel: &str, precision: Precision, params: &[(&str, serde_json::Value)]) -> bool {
        let done = self.doc.records.iter().any(|r| r.kernel == kernel && r.precision == precision.name() && params.iter().all(|(k, v)| r.params.get(*k) == Some(v)));
        if done {
            self.print(&format!("{kernel} {precision}: already in the calibration (resumed), skipped\n"));
        }
        done
    }

    fn print(&self, text: &str) {
        if self.ctx.world.is_root() {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    }

    /// Adds a record, printing `text` for it, and rewrites the JSON.
    fn add(&mut self, record: Record, text: &str) -> Result<()> {
        self.print(text);
        if !record.valid {
            self.outcome = Outcome::Failed;
        }
        self.doc.records.push(record);
        self.write()?;
        // Fault injection, for the test of the failure path: EFFCAL_FAIL_RANK=r makes rank
        // r panic after the first record while the other ranks go on to the next.
        if self.doc.records.len() == 1 && std::env::var("EFFCAL_FAIL_RANK").ok().and_then(|v| v.parse().ok()) == Some(self.ctx.world.rank()) {
            panic!("failure injected by EFFCAL_FAIL_RANK={}", self.ctx.world.rank());
        }
        Ok(())
    }

    /// Lets `f` add cross-record results (speed-ups, halo hidden) to the records (those of
    /// a resumed calibration too); prints what it reports and rewrites the JSON when it
    /// reports anything.
    fn annotate(&mut self, f: fn(&mut [Record]) -> String) -> Result<()> {
        let text = f(&mut self.doc.records);
        if text.is_empty() {
            return Ok(());
        }
        self.print(&text);
        self.write()
    }

    fn write(&self) -> Result<()> {
        match self.out {
            Some(path) if self.ctx.world.is_root() => calibration::write_atomic(path, &self.doc),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<Outcome> {
        self.write()?;
        self.print(&output::bindings_line(&self.doc));
        if let Some(path) = self.out {
            self.print(&format!("Calibration written to {}\n", path.display()));
        }
        let word = if self.outcome == Outcome::Passed { "PASSED" } else { "FAILED" };
        self.print(&format!("Result: {word}\n"));
        Ok(self.outcome)
    }
}

/// Every rank's host, binding and threads, and rank 0's node facts.
fn gather_system(ctx: &Ctx) -> Environment {
    let w = &ctx.world;
    let cpus = w.all_gather_string(&ctx.node.binding);
    let threads = w.all_gather_string(&ctx.threads.to_string());
    let placements = w.all_gather_string(ctx.placement);
    let bindings: Vec<Binding> = (0..w.size())
        .map(|r| Binding { rank: r, host: ctx.hosts[r].clone(), cpus: cpus[r].clone(), threads: threads[r].parse().unwrap_or(0), placement: placements[r].clone() })
        .collect();
    let on_my_host: usize = bindings.iter().filter(|b| b.host == ctx.node.host).map(|b| b.threads).sum();
    if on_my_host > ctx.node.cores && bindings.iter().find(|b| b.host == ctx.node.host).map(|b| b.rank) == Some(w.rank()) {
        eprintln!(
            "effcal: warning: {} threads on {} with {} cores: oversubscribed, figures will be low",
            on_my_host, ctx.node.host, ctx.node.cores
        );
    }
    Environment {
        host: ctx.node.host.clone(),
        hosts: ctx.distinct_hosts(),
        cpu_model: ctx.node.cpu_model.clone(),
        cores_per_node: ctx.node.cores,
        numa_nodes: ctx.node.numa_nodes,
        llc_bytes: ctx.node.llc_bytes,
        ranks: w.size(),
        threads_per_rank: ctx.threads,
        clock_ghz_measured: None,
        cpu_features: ctx.node.features.clone(),
        mpi_library: world::library_version(),
        bindings,
        memory_bytes_per_node: (ctx.node.memory_bytes > 0).then_some(ctx.node.memory_bytes),
        description: None,
    }
}
