//! One function per command: each parses what it needs, starts MPI only when it measures,
//! and returns whether every result passed. [`plan_runs`] turns a plan into the
//! measurements it asks for without MPI, so tests can check it.

use crate::bench::gemm::{GemmSettings, PathChoice};
use crate::bench::gpu::{Device, GpuGemmSettings, GpuPeakSettings};
use effcal_gpu::gemm::Arith;
use effcal_kernels::gemm::{Accumulate, Blocking, GemmParams};
use crate::bench::hpl::{self, HplSettings, Refine};
use crate::bench::peak::PeakSettings;
use crate::bench::stencil::{self, StencilSettings, StoresSetting};
use crate::bench::{self, Ctx};
use crate::calibration::{self, Calibration};
use crate::cli::{self, EstimateArgs, GemmArgs, HplArgs, MergeArgs, NetArgs, PeakArgs, ReportArgs, RunArgs, SlurmArgs, StencilArgs};
use crate::error::{Error, Result};
use crate::session::{Session, check_json, check_output, resume, setup};
use crate::{Outcome, config, correct, estimate, merge, output, report, slurm};
use effcal_kernels::precision::scaling::ScaleMode;
use effcal_kernels::stencil::Kind;
use effcal_kernels::{Overflow, Precision};
use std::io::{BufRead, Write};
use std::path::Path;

/// What the global flags lend every command: a system description (`--system`) and peaks
/// measured before (`--peaks`: the file, and the calibration it holds).
#[derive(Clone, Copy, Default)]
pub struct Given<'a> {
    pub described: Option<&'a config::Checked>,
    pub peaks: Option<&'a (String, Calibration)>,
}

/// `--peaks FILE`: a calibration whose peaks later commands use instead of measuring them.
pub fn load_peaks(path: &Path) -> Result<(String, Calibration)> {
    let cal = read_calibration(path).map_err(|e| match e {
        Error::InvalidInput { given, allowed, .. } => Error::InvalidInput { field: "--peaks".into(), given, allowed },
        e => e,
    })?;
    if cal.peaks.is_none() {
        return Err(Error::invalid("--peaks", path.display(), "a calibration with peaks (effcal peak --json FILE writes one)"));
    }
    Ok((path.display().to_string(), cal))
}

/// `effcal formats`.
pub fn formats() -> Result<Outcome> {
    print!("{}", output::formats_table());
    Ok(Outcome::Passed)
}

/// `effcal merge`.
pub fn merge(a: &MergeArgs) -> Result<Outcome> {
    calibration::check_output(&a.out, "--out", false)?;
    print!("{}", merge::merge(&a.files, &a.out, a.force)?);
    Ok(Outcome::Passed)
}

/// `effcal slurm`.
pub fn slurm(a: &SlurmArgs) -> Result<Outcome> {
    let checked = config::Plan::load(&a.config)?;
    for path in slurm::render(&checked, &a.config, &a.out_dir, a.pjm)? {
        println!("wrote {}", path.display());
    }
    Ok(Outcome::Passed)
}

/// `effcal schema [--estimate]`.
pub fn schema(estimate: bool) -> Result<Outcome> {
    print!("{}", if estimate { estimate::schema_json() } else { calibration::schema_json() });
    Ok(Outcome::Passed)
}

/// `effcal report`.
pub fn report(a: &ReportArgs, given: &Given) -> Result<Outcome> {
    let cal = calibration_with(&a.calibration, given.described)?;
    for path in report::write(&cal, &a.calibration.display().to_string(), &a.out)? {
        println!("wrote {}", path.display());
    }
    Ok(Outcome::Passed)
}

/// `effcal estimate`.
pub fn estimate(a: &EstimateArgs, given: &Given) -> Result<Outcome> {
    let json = a.json.clone().unwrap_or_else(|| "results/estimate.json".into());
    calibration::check_output(&json, "--json", a.json.is_none())?;
    let cal = calibration_with(&a.calibration, given.described)?;
    let target = a.target.as_deref().map(estimate::LibrarySystem::load).transpose()?;
    let demand = estimate::Demand::default().with(&a.demand)?;
    let e = estimate::estimate(&cal, &a.calibration.display().to_string(), &demand, target.as_ref(), a.allow_suspect_peaks)?;
    print!("{}", estimate::markdown(&e));
    let _ = std::io::stdout().flush();
    calibration::write_atomic(&json, &e)?;
    eprintln!("effcal: estimate written to {}", json.display());
    Ok(Outcome::Passed)
}

/// `effcal gemm`: one record per `--precision`, in the order given.
pub fn gemm(a: &GemmArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    if a.device == "gpu" {
        return gpu_gemm(a, threads, given);
    }
    // Every precision is checked before anything runs.
    let mut runs = Vec::new();
    for name in &a.precision {
        let precision: Precision = match name.parse() {
            Ok(p) => p,
            Err(_) if Arith::parse(name).is_ok() => {
                return Err(Error::invalid("--precision", name, format!("one of {} on the CPU; {name} GEMMs run with --device gpu", Precision::allowed())));
            }
            Err(e) => return Err(e.into()),
        };
        runs.push(gemm_settings(a, precision)?);
    }
    check_samples(a.samples)?;
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
    check_json(&ctx, a.json.as_deref())?;
    let mut session = Session::start(&ctx, a.json.as_deref(), &peak_settings(0.2, None, given), None)?;
    session.print(&output::gemm_header(ctx.world.size(), ctx.threads));
    for settings in &runs {
        let record = bench::gemm::measure(&ctx, settings, session.doc.peaks.as_ref())?;
        let row = output::gemm_row(&record);
        session.add(record, &row)?;
    }
    session.finish()
}

/// The CPU GEMM of one precision as the flags ask, or the flag that does not fit it.
fn gemm_settings(a: &GemmArgs, precision: Precision) -> Result<GemmSettings> {
    let n = a.n as usize;
    let settings = GemmSettings {
        m: a.m.map_or(n, |m| m as usize),
        k: a.k.map_or(n, |k| k as usize),
        scaling: a.scaling.unwrap_or(ScaleMode::default_for(precision)),
        path: a.backend,
        params: GemmParams {
            accumulate: accumulation(&a.accumulate, a.acc_block),
            blocking: a.blocking,
            ..GemmParams::default()
        },
        ..GemmSettings::square(precision, n, a.samples)
    };
    if !precision.scalable() && settings.scaling != ScaleMode::None {
        return Err(Error::invalid("--scaling", settings.scaling.name(), "none for f64, f32 and bf16 (scaling applies to f16, e4m3, e5m2)"));
    }
    if a.accumulate == "f16" && precision != Precision::F16 {
        return Err(Error::invalid("--accumulate", &a.accumulate, format!("wide for {precision} inputs: f16 accumulation for f16 inputs only")));
    }
    Ok(settings)
}

/// `--blocking` is for effcal's CPU kernels: cuBLAS blocks its own GEMMs.
fn refuse_blocking_on_gpu(blocking: Option<Blocking>) -> Result<()> {
    match blocking {
        Some(b) => Err(Error::invalid("--blocking", format!("{},{},{}", b.kc, b.mc, b.nc), "only with --device cpu: cuBLAS blocks the GPU's GEMMs itself")),
        None => Ok(()),
    }
}

/// `--accumulate` and `--acc-block` (clap checked both).
fn accumulation(accumulate: &str, block: u32) -> Accumulate {
    if accumulate == "f16" { Accumulate::F16 { block: block as usize } } else { Accumulate::Wide }
}

fn check_samples(samples: usize) -> Result<()> {
    if samples == 0 {
        return Err(Error::invalid("--samples", 0, "at least 1 sampled entry of C per rank (with none, no result would be checked)"));
    }
    Ok(())
}

/// What `--device gpu` measures its peaks with before a GEMM (no triad: a GEMM's ceiling is
/// arithmetic).
const GPU_GEMM_PEAKS: GpuPeakSettings = GpuPeakSettings { fma_seconds: 0.2, gemm_n: 8192, triad_elements: None };

/// `effcal gemm --device gpu`: the GEMM on one GPU per rank, after the GPUs' peaks.
fn gpu_gemm(a: &GemmArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    let ariths = a.precision.iter().map(|name| Arith::parse(name).map_err(|_| Error::invalid("--precision", name, format!("one of {} with --device gpu", Arith::ALL.map(Arith::name).join(", "))))).collect::<Result<Vec<_>>>()?;
    if a.backend != PathChoice::Fastest {
        return Err(Error::invalid("--backend", a.backend.name(), "fastest (the default) with --device gpu: cuBLASLt's heuristic picks the GPU's algorithm, and the record names it"));
    }
    if a.accumulate != "wide" {
        return Err(Error::invalid("--accumulate", &a.accumulate, "wide (the default) with --device gpu: the tensor cores' accumulation is the arithmetic's (see the record's params.arithmetic)"));
    }
    refuse_blocking_on_gpu(a.blocking)?;
    check_samples(a.samples)?;
    let n = a.n as usize;
    let mut runs = Vec::new();
    for arith in ariths {
        let square = GpuGemmSettings::square(arith, n, a.samples);
        let scaling = a.scaling.unwrap_or(square.scaling);
        GpuGemmSettings::check_scaling(arith, scaling)?;
        runs.push(GpuGemmSettings { m: a.m.map_or(n, |m| m as usize), k: a.k.map_or(n, |k| k as usize), scaling, ..square });
    }
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
    let mut dev = Device::open(&ctx)?;
    check_json(&ctx, a.json.as_deref())?;
    let mut session = Session::start_gpu(&ctx, a.json.as_deref(), &mut dev, &GPU_GEMM_PEAKS, given.peaks)?;
    session.print(&output::gpu_gemm_header(ctx.world.size(), &dev.gpu.info.name));
    for settings in &runs {
        let record = bench::gpu::gemm(&ctx, &dev, settings, session.doc.peaks.as_ref())?;
        let row = output::gemm_row(&record) + &output::gpu_power_line(&record);
        session.add(record, &row)?;
    }
    session.finish()
}

/// `effcal hpl-mxp --device gpu`: each solve on one GPU per rank, after the GPUs' peaks.
fn gpu_hpl(a: &HplArgs, mut runs: Vec<HplSettings>, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    for s in &runs {
        hpl::gpu::check(s)?;
    }
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
    for s in runs.iter_mut() {
        if s.p == 0 {
            (s.p, s.q) = hpl::grid::default_grid(ctx.world.size());
        }
        hpl::check(s, ctx.world.size())?;
    }
    let mut dev = Device::open(&ctx)?;
    check_json(&ctx, a.json.as_deref())?;
    let mut session = Session::start_gpu(&ctx, a.json.as_deref(), &mut dev, &GPU_GEMM_PEAKS, given.peaks)?;
    run_gpu_hpl(&ctx, &dev, &mut session, &runs)?;
    session.finish()
}

/// What `effcal stencil --device gpu` measures its peaks with: the triad is the stencils'
/// ceiling.
const GPU_STENCIL_PEAKS: GpuPeakSettings = GpuPeakSettings { fma_seconds: 0.2, gemm_n: 8192, triad_elements: Some(1 << 27) };

/// `effcal stencil --device gpu`: each run on one GPU (one rank), after the GPU's peaks.
fn gpu_stencil(a: &StencilArgs, ctx: &Ctx, runs: &[StencilSettings], given: &Given) -> Result<Outcome> {
    for s in runs {
        bench::stencil::gpu::check(s, a.net)?;
    }
    let mut dev = Device::open(ctx)?;
    check_json(ctx, a.json.as_deref())?;
    let mut session = Session::start_gpu(ctx, a.json.as_deref(), &mut dev, &GPU_STENCIL_PEAKS, given.peaks)?;
    run_gpu_stencils(ctx, &dev, &mut session, runs)?;
    session.finish()
}

/// `effcal peak --device gpu`.
fn gpu_peak(a: &PeakArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    let s = GpuPeakSettings { fma_seconds: a.fma_seconds, gemm_n: a.gemm_n.map_or(8192, |n| n as usize), triad_elements: Some(a.triad_elements.unwrap_or(1 << 27)) };
    let ctx = setup(threads, a.reps as usize, 1, 42)?;
    let mut dev = Device::open(&ctx)?;
    check_json(&ctx, a.json.as_deref())?;
    Session::start_gpu(&ctx, a.json.as_deref(), &mut dev, &s, given.peaks)?.finish()
}

/// `effcal hpl-mxp`.
pub fn hpl_mxp(a: &HplArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    let mut runs = hpl_runs(a)?;
    if a.device == "gpu" {
        refuse_blocking_on_gpu(a.blocking)?;
        return gpu_hpl(a, runs, threads, given);
    }
    if a.diagonal == "gpu" {
        return Err(Error::invalid("--diagonal", "gpu", "host with --device cpu (gpu factors the diagonal blocks on the GPU of a --device gpu run)"));
    }
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
    for s in runs.iter_mut() {
        if s.p == 0 {
            (s.p, s.q) = hpl::grid::default_grid(ctx.world.size());
        }
        hpl::check(s, ctx.world.size())?;
    }
    check_json(&ctx, a.json.as_deref())?;
    let mut session = Session::start(&ctx, a.json.as_deref(), &peak_settings(0.2, None, given), None)?;
    run_hpl(&ctx, &mut session, &runs)?;
    session.finish()
}

/// `effcal stencil`.
pub fn stencil(a: &StencilArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, a.seed)?;
    let runs = stencil_runs(a, ctx.world.size())?;
    if a.device == "gpu" {
        return gpu_stencil(a, &ctx, &runs, given);
    }
    // The triad is the ceiling the stencils are measured against: measure it.
    check_json(&ctx, a.json.as_deref())?;
    let triad = a.triad_elements.map_or(0, |e| e as usize);
    let mut session = Session::start(&ctx, a.json.as_deref(), &peak_settings(0.05, Some(triad), given), None)?;
    if a.net {
        let network = bench::net::measure(&ctx, &bench::net::NetSettings::default());
        let text = output::network_table(&network);
        session.set_network(network, &text)?;
    }
    run_stencils(&ctx, &mut session, &runs)?;
    session.finish()
}

/// `effcal peak`.
pub fn peak(a: &PeakArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    if !(a.fma_seconds > 0.0 && a.fma_seconds <= 60.0) {
        return Err(Error::invalid("--fma-seconds", a.fma_seconds, "a number of seconds in (0, 60]"));
    }
    if a.device == "gpu" {
        return gpu_peak(a, threads, given);
    }
    if let Some(n) = a.gemm_n {
        return Err(Error::invalid("--gemm-n", n, "only with --device gpu (a CPU's peaks come from its FMA kernels)"));
    }
    let ctx = setup(threads, a.reps as usize, 1, 42)?;
    check_json(&ctx, a.json.as_deref())?;
    Session::start(&ctx, a.json.as_deref(), &peak_settings(a.fma_seconds, Some(a.triad_elements.unwrap_or(0)), given), None)?.finish()
}

/// `effcal net`.
pub fn net(a: &NetArgs, threads: Option<usize>) -> Result<Outcome> {
    let ctx = setup(threads, a.reps as usize, a.warmup as usize, 42)?;
    check_json(&ctx, a.json.as_deref())?;
    let s = bench::net::NetSettings { max_bytes: a.max_bytes as usize, iters: a.iters as usize };
    let mut session = Session::without_peaks(&ctx, a.json.as_deref())?;
    let network = bench::net::measure(&ctx, &s);
    let text = output::network_table(&network);
    session.set_network(network, &text)?;
    session.finish()
}

/// The measurements a plan asks for, in the order they run.
#[derive(Clone, Debug, Default)]
pub struct PlanRuns {
    pub gemm: Vec<GemmSettings>,
    pub hpl: Vec<HplSettings>,
    pub stencils: Vec<StencilSettings>,
}

/// Every measurement of `checked` sized by `sizes` for `ranks` ranks: GEMM per precision,
/// HPL-MxP per precision on the most square grid, stencils per kind × precision, each
/// stencil checked against the rank count (refused by the plan's file and key).
pub fn plan_runs(checked: &config::Checked, sizes: &config::Sizes, ranks: usize) -> Result<PlanRuns> {
    let plan = &checked.plan;
    let fp8_scaling = |p: Precision| if p.is_fp8() { checked.fp8_scaling } else { ScaleMode::None };
    let mut runs = PlanRuns::default();
    if let Some(g) = &plan.gemm {
        let path = backend(checked, "gemm", &g.backend)?;
        let params = GemmParams { blocking: blocking(checked, "gemm", &g.blocking)?, ..GemmParams::default() };
        runs.gemm = checked.gemm_precisions.iter().map(|&p| GemmSettings { scaling: fp8_scaling(p), path, params, ..GemmSettings::square(p, sizes.gemm_n, g.samples) }).collect();
    }
    if let Some(h) = &plan.hpl_mxp {
        let base = hpl_choices(checked, h, ranks)?;
        runs.hpl = checked
            .hpl_precisions
            .iter()
            .map(|&precision| {
                let nb = h.nb.unwrap_or(hpl::default_nb_on(precision, plan.run.gpu()));
                let scaling = if precision.is_fp8() { base.scaling } else { ScaleMode::None };
                HplSettings { n: sizes.hpl_n, nb, precision, scaling, ..base }
            })
            .collect();
    }
    if let Some(st) = &plan.stencil {
        let stores: StoresSetting = match &st.stores {
            Some(v) => v.parse().map_err(|_| Error::Config { file: checked.file.clone(), message: format!("stencil.stores = \"{v}\": allowed: {}", StoresSetting::ALLOWED) })?,
            None => StoresSetting::Auto,
        };
        let setting = st.arithmetic.as_deref().unwrap_or("wide");
        let refuse = |why: &str| Error::Config { file: checked.file.clone(), message: format!("stencil.arithmetic = \"{setting}\": {why}") };
        if stencil::Arithmetic::for_setting(setting, Precision::F16).is_none() {
            return Err(refuse(&format!("allowed: {}", stencil::Arithmetic::ALLOWED)));
        }
        if setting != "wide" && !checked.stencil_precisions.contains(&Precision::F16) {
            return Err(refuse("allowed: wide for these precisions (f16 and both apply to f16 fields, and stencil.precisions has no f16)"));
        }
        for &kind in &checked.stencil_kinds {
            for &precision in &checked.stencil_precisions {
                let arithmetics = stencil::Arithmetic::for_setting(setting, precision).expect("checked above");
                for arithmetic in arithmetics {
                    let s = StencilSettings { kind, precision, global: sizes.stencil, iters: st.iters, dims: sizes.stencil_dims, overlap: st.overlap, stores, arithmetic };
                    stencil::check(&s, ranks).map_err(|e| Error::Config { file: checked.file.clone(), message: format!("stencil: {e}") })?;
                    runs.stencils.push(s);
                }
            }
        }
    }
    Ok(runs)
}

/// The HPL-MxP choices of a plan's `[hpl_mxp]` (every flag of `effcal hpl-mxp` has a key),
/// refused by key with the allowed values; n, nb and the precision are filled in per run.
fn hpl_choices(checked: &config::Checked, h: &config::HplSection, ranks: usize) -> Result<HplSettings> {
    let err = |message: String| Error::Config { file: checked.file.clone(), message };
    let pick = |key: &str, given: &Option<String>, allowed: &[&str]| -> Result<Option<usize>> {
        given.as_ref().map(|v| allowed.iter().position(|a| a == v).ok_or_else(|| err(format!("hpl_mxp.{key} = \"{v}\": allowed: {}", allowed.join(", "))))).transpose()
    };
    let mut s = HplSettings::new(0, 0, Precision::F64);
    (s.p, s.q) = match (h.p, h.q) {
        (Some(p), Some(q)) if p * q == ranks => (p, q),
        (Some(p), Some(q)) => return Err(err(format!("hpl_mxp.p × hpl_mxp.q = {p} × {q}: must be the number of ranks, {ranks}"))),
        (None, None) => hpl::grid::default_grid(ranks),
        _ => return Err(err("hpl_mxp: p and q go together (or neither: the most square grid)".into())),
    };
    if pick("pmap", &h.pmap, &["row", "col"])? == Some(1) {
        s.pmap = hpl::grid::Pmap::Col;
    }
    let restart = h.restart.unwrap_or(30);
    if !(1..=1000).contains(&restart) {
        return Err(err(format!("hpl_mxp.restart = {restart}: must be in 1..=1000")));
    }
    if pick("refine", &h.refine, &["ir", "gmres"])? == Some(1) {
        s.refine = Refine::Gmres { restart };
    }
    if let Some(g) = &h.generator {
        s.generator = g.parse().map_err(|e| err(format!("hpl_mxp.generator: {e}")))?;
    }
    if let Some(b) = &h.bcast {
        s.bcast = b.parse().map_err(|e| err(format!("hpl_mxp.bcast: {e}")))?;
    }
    match h.lookahead {
        Some(0) => s.lookahead = false,
        Some(1) | None => {}
        Some(d) => return Err(err(format!("hpl_mxp.lookahead = {d}: allowed: 0, 1"))),
    }
    s.keep_f64 = pick("f64_matrix", &h.f64_matrix, &["kept", "regenerated"])? == Some(0);
    s.scaling = match &h.scaling_fp8 {
        Some(m) => m.parse().map_err(|_| err(format!("hpl_mxp.scaling_fp8 = \"{m}\": allowed: none, tensor, mx")))?,
        None => checked.fp8_scaling,
    };
    if let Some(e) = h.scale_exp {
        if !(-1000..=1000).contains(&e) {
            return Err(err(format!("hpl_mxp.scale_exp = {e}: must be in -1000..=1000")));
        }
        s.scale = 2f64.powi(e);
    }
    if let Some(c) = h.chunk {
        if c == 0 {
            return Err(err("hpl_mxp.chunk = 0: must be at least 1".into()));
        }
        s.chunk = c;
    }
    s.path = backend(checked, "hpl_mxp", &h.backend)?;
    s.gemm.blocking = blocking(checked, "hpl_mxp", &h.blocking)?;
    let (default, max) = (cli::ACC_BLOCK_DEFAULT as usize, cli::ACC_BLOCK_MAX as usize);
    let block = h.acc_block.unwrap_or(default);
    if !(1..=max).contains(&block) {
        return Err(err(format!("hpl_mxp.acc_block = {block}: must be in 1..={max}")));
    }
    if pick("diagonal", &h.diagonal, &["host", "gpu"])? == Some(1) {
        if !checked.plan.run.gpu() {
            return Err(err("hpl_mxp.diagonal = \"gpu\" with run.device = \"cpu\": allowed: host (gpu factors the diagonal blocks on the GPUs of a GPU plan)".into()));
        }
        s.diagonal_on_gpu = true;
    }
    if pick("accumulate", &h.accumulate, &["wide", "f16"])? == Some(1) {
        s.gemm.accumulate = Accumulate::F16 { block };
    }
    Ok(s)
}

/// A plan's `backend` key of `section`: fastest where absent.
fn backend(checked: &config::Checked, section: &str, given: &Option<String>) -> Result<PathChoice> {
    given.as_deref().map_or(Ok(PathChoice::Fastest), |v| {
        v.parse().map_err(|_| Error::Config { file: checked.file.clone(), message: format!("{section}.backend = \"{v}\": allowed: {}", PathChoice::ALLOWED) })
    })
}

/// A plan's `blocking` key of `section`: each kernel's own where absent.
fn blocking(checked: &config::Checked, section: &str, given: &Option<String>) -> Result<Option<Blocking>> {
    given.as_deref().map(|v| cli::parse_blocking(v).map_err(|allowed| Error::Config { file: checked.file.clone(), message: format!("{section}.blocking = \"{v}\": allowed: {allowed}") })).transpose()
}

/// `effcal run`: a plan's peaks, then every kernel in it, into one calibration; with
/// `--resume`, what the output file already holds is kept and skipped.
pub fn run(a: &RunArgs, threads: Option<usize>, given: &Given) -> Result<Outcome> {
    let checked = match &a.config {
        Some(path) => config::Plan::load(path)?,
        None => config::Plan::parse(config::LOCAL_TOML, "configs/local.toml (built in)")?,
    };
    let plan = &checked.plan;
    // The plan's own [system] unless --system lends another.
    let given = &Given { described: given.described.or(Some(&checked)), ..*given };
    let named_out = a.out.clone().or_else(|| plan.run.out.as_ref().map(Into::into));
    let out = named_out.clone().unwrap_or_else(|| "results/calibration.json".into());
    let ctx = setup(threads.or(plan.run.threads), plan.run.reps, plan.run.warmup, plan.run.seed)?;
    // Sizes for this run's ranks and memory, and every run checked, before anything is
    // measured.
    let node_share = ctx.node.memory_bytes / ctx.local_ranks() as u64;
    // A GPU plan's sizes are given (parse refuses fractions) and not held in host memory.
    let memory = config::Memory { per_rank: if plan.run.gpu() { 0 } else { ctx.world.min(node_share as f64) as u64 }, ranks: ctx.world.size() };
    let ranks = ctx.world.size();
    let sizes = checked.sizes(memory, |size| stencil::decomp::balanced_dims(ranks, size))?;
    let mut runs = plan_runs(&checked, &sizes, ranks)?;
    if plan.run.gpu() {
        return gpu_plan(a, &ctx, &checked, runs, named_out, out, given);
    }
    if a.dry_run {
        let s = peak_settings(plan.peak.fma_seconds, None, given);
        let (peaks, clock) = bench::peak::theoretical(&ctx, &s);
        if ctx.world.is_root() {
            print!("{}", dry_run_table(&checked, &runs, &ctx, memory.per_rank, &peaks, &clock));
        }
        return Ok(Outcome::Passed);
    }
    let resumed = plan_output(&ctx, a, &out, named_out.is_none())?;
    let s = peak_settings(plan.peak.fma_seconds, Some(plan.peak.triad_elements), given);
    let mut session = Session::start(&ctx, Some(&out), &s, resumed)?;
    if let Some(n) = &plan.net {
        if session.doc.network.is_some() {
            session.print("net: already in the calibration (resumed), skipped\n");
        } else {
            let d = bench::net::NetSettings::default();
            let s = bench::net::NetSettings { max_bytes: n.max_bytes.unwrap_or(d.max_bytes), iters: n.iters.unwrap_or(d.iters) };
            let network = bench::net::measure(&ctx, &s);
            let text = output::network_table(&network);
            session.set_network(network, &text)?;
        }
    }
    if plan.gemm.is_some() {
        session.print(&output::gemm_header(ranks, ctx.threads));
        for g in &runs.gemm {
            if session.skip("gemm", g.precision, &[("n", serde_json::json!(g.n))]) {
                continue;
            }
            let record = bench::gemm::measure(&ctx, g, session.doc.peaks.as_ref())?;
            let row = output::gemm_row(&record);
            session.add(record, &row)?;
        }
    }
    if plan.hpl_mxp.is_some() {
        runs.hpl.retain(|h| !session.skip("hpl-mxp", h.precision, &[("n", serde_json::json!(h.n)), ("nb", serde_json::json!(h.nb))]));
        run_hpl(&ctx, &mut session, &runs.hpl)?;
    }
    let key = |s: &StencilSettings| [("size", serde_json::json!(s.global)), ("iters", serde_json::json!(s.iters)), ("overlap", serde_json::json!(s.overlap)), ("stores_setting", serde_json::json!(s.stores.name()))];
    runs.stencils.retain(|s| !session.skip(stencil::record_kernel(s.kind), s.precision, &key(s)));
    if plan.stencil.is_some() {
        run_stencils(&ctx, &mut session, &runs.stencils)?;
    }
    session.finish()
}

/// `effcal run` of a plan with `run.device = "gpu"`: its runs on one GPU per rank, after
/// the GPUs' peaks (with the device triad, the stencils' ceiling), as the `--device gpu`
/// commands run them; `--dry-run` lists them.
fn gpu_plan(a: &RunArgs, ctx: &Ctx, checked: &config::Checked, mut runs: PlanRuns, named_out: Option<std::path::PathBuf>, out: std::path::PathBuf, given: &Given) -> Result<Outcome> {
    let plan = &checked.plan;
    let cfg = |message: String| Error::Config { file: checked.file.clone(), message };
    let mut gemms = Vec::new();
    for g in &runs.gemm {
        let arith = Arith::parse(g.precision.name()).map_err(cfg)?;
        if g.scaling == ScaleMode::Mx {
            return Err(cfg("gemm.scaling_fp8 = \"mx\" with run.device = \"gpu\": allowed: none, tensor".into()));
        }
        gemms.push(GpuGemmSettings { scaling: g.scaling, ..GpuGemmSettings::square(arith, g.n, g.samples) });
    }
    // hpl_mxp.memory_fraction: N is sized when the GPUs are open (n = 0 until then; the
    // checks here see a stand-in order of whole blocks).
    let fraction = plan.hpl_mxp.as_ref().and_then(|h| h.memory_fraction);
    for h in &runs.hpl {
        let h = HplSettings { n: if h.n == 0 { 16 * h.nb } else { h.n }, ..*h };
        hpl::gpu::check(&h).map_err(|e| cfg(format!("hpl_mxp: {e}")))?;
        hpl::check(&h, ctx.world.size())?;
    }
    for s in &runs.stencils {
        bench::stencil::gpu::check(s, false).map_err(|e| cfg(format!("stencil: {e}")))?;
    }
    if a.dry_run {
        if ctx.world.is_root() {
            let mut t = format!("Dry run of {} on {} GPU(s), one per rank; nothing measured.\n", checked.file, ctx.world.size());
            t += &gemms.iter().map(|g| format!("gemm     {:<5} n={}\n", g.arith.name(), g.n)).collect::<String>();
            let n = |h: &HplSettings| if h.n == 0 { format!("({} of each GPU's memory)", fraction.unwrap_or_default()) } else { h.n.to_string() };
            t += &runs.hpl.iter().map(|h| format!("hpl-mxp  {:<5} n={} nb={} {}×{}\n", h.precision.name(), n(h), h.nb, h.p, h.q)).collect::<String>();
            t += &runs.stencils.iter().map(|s| format!("{:<8} {:<5} {}×{}×{} iters={}\n", stencil::record_kernel(s.kind), s.precision.name(), s.global[0], s.global[1], s.global[2], s.iters)).collect::<String>();
            print!("{t}");
        }
        return Ok(Outcome::Passed);
    }
    let resumed = plan_output(ctx, a, &out, named_out.is_none())?;
    let mut dev = Device::open(ctx)?;
    if let Some(f) = fraction.filter(|_| runs.hpl.iter().any(|h| h.n == 0)) {
        let memory = ctx.world.min(dev.gpu.info.memory_bytes as f64) as u64;
        let n = hpl::gpu::n_for_memory(f, memory, ctx.world.size(), &runs.hpl);
        for h in &mut runs.hpl {
            h.n = n;
            hpl::gpu::check(h).map_err(|e| cfg(format!("hpl_mxp: {e}")))?;
            hpl::check(h, ctx.world.size())?;
        }
        if ctx.world.is_root() {
            println!("hpl_mxp.memory_fraction = {f}: N = {n} ({} bytes an element on {} GPU(s) of {:.1} GiB)", runs.hpl.iter().map(|h| hpl::gpu::bytes_per_element(h.precision)).max().unwrap_or(12), ctx.world.size(), memory as f64 / (1u64 << 30) as f64);
        }
    }
    let triad = if plan.peak.triad_elements > 0 { plan.peak.triad_elements } else { 1 << 27 };
    let peaks = GpuPeakSettings { fma_seconds: plan.peak.fma_seconds, gemm_n: 8192, triad_elements: Some(triad) };
    let mut session = Session::start_gpu(ctx, Some(&out), &mut dev, &peaks, given.peaks)?;
    if let Some(resumed) = resumed {
        session.doc.records = resumed.records;
    }
    if !gemms.is_empty() {
        session.print(&output::gpu_gemm_header(ctx.world.size(), &dev.gpu.info.name));
    }
    for g in &gemms {
        if session.skip_named("gemm", g.arith.name(), &[("n", serde_json::json!(g.n))]) {
            continue;
        }
        let record = match bench::gpu::gemm(ctx, &dev, g, session.doc.peaks.as_ref()) {
            Ok(r) => r,
            // A format this GPU has no GEMM kernel for (refused alike on every rank before
            // anything was timed): said, and the rest of the plan runs.
            Err(Error::InvalidInput { field, allowed, .. }) if field == "--precision" => {
                session.print(&format!("gemm {} n={}: not measured, this GPU has no such GEMM: {allowed}\n", g.arith.name(), g.n));
                continue;
            }
            Err(e) => return Err(e),
        };
        let row = output::gemm_row(&record) + &output::gpu_power_line(&record);
        session.add(record, &row)?;
    }
    runs.hpl.retain(|h| !session.skip("hpl-mxp", h.precision, &[("n", serde_json::json!(h.n)), ("nb", serde_json::json!(h.nb))]));
    if !runs.hpl.is_empty() {
        run_gpu_hpl(ctx, &dev, &mut session, &runs.hpl)?;
    }
    let key = |s: &StencilSettings| [("size", serde_json::json!(s.global)), ("iters", serde_json::json!(s.iters))];
    runs.stencils.retain(|s| !session.skip(stencil::record_kernel(s.kind), s.precision, &key(s)));
    if !runs.stencils.is_empty() {
        run_gpu_stencils(ctx, &dev, &mut session, &runs.stencils)?;
    }
    session.finish()
}

/// Checks a plan's output file before anything is measured (writable; new unless resumed
/// or forced, as rank 0 sees it, on every rank alike) and reads the calibration `--resume`
/// continues.
fn plan_output(ctx: &Ctx, a: &RunArgs, out: &std::path::Path, default_out: bool) -> Result<Option<Calibration>> {
    check_output(ctx, out, "--out", default_out)?;
    // Rank 0 writes the file: its view decides, on every rank alike.
    let exists = !ctx.world.all(!(ctx.world.is_root() && out.exists()));
    if exists && !a.resume && !a.force {
        return Err(Error::invalid("--out", out.display(), "a new file: it exists (--resume continues it, --force overwrites it)"));
    }
    if a.resume { resume(ctx, out) } else { Ok(None) }
}

/// Runs HPL-MxP settings on the ranks' GPUs in order, as [`run_hpl`] on their cores: HPL's
/// block (with the power line) for each, then the speed-ups over f64.
fn run_gpu_hpl(ctx: &Ctx, dev: &Device, session: &mut Session<'_>, runs: &[HplSettings]) -> Result<()> {
    session.print(&output::hpl_header());
    for s in runs {
        let record = hpl::gpu::measure(ctx, dev, s, session.doc.peaks.as_ref())?;
        let text = output::hpl_block(&record) + &output::gpu_power_line(&record);
        session.add(record, &text)?;
    }
    session.annotate(output::apply_speedups)
}

/// Runs stencil settings on the ranks' GPUs in order, a row (and power line) for each.
fn run_gpu_stencils(ctx: &Ctx, dev: &Device, session: &mut Session<'_>, runs: &[StencilSettings]) -> Result<()> {
    session.print(&output::stencil_header(ctx.world.size(), ctx.threads));
    for s in runs {
        let record = bench::stencil::gpu::measure(ctx, dev, s, session.doc.peaks.as_ref())?;
        let text = output::stencil_row(&record) + &output::gpu_power_line(&record);
        session.add(record, &text)?;
    }
    Ok(())
}

/// What `effcal run --dry-run` prints: every run of the plan with its size, the memory it
/// holds per rank, and the least time it can take: its FLOPs over the theoretical peak of
/// its precision on these cores, for every warm-up and timed repetition (stencils: every
/// sweep too). No kernel runs.
fn dry_run_table(checked: &config::Checked, runs: &PlanRuns, ctx: &Ctx, memory_per_rank: u64, peaks: &std::collections::BTreeMap<Precision, Option<f64>>, clock: &str) -> String {
    use effcal_kernels::cost;
    let ranks = ctx.world.size();
    let reps = (checked.plan.run.warmup + checked.plan.run.reps) as f64;
    let mut t = format!(
        "Dry run of {}: {ranks} rank(s) × {} thread(s), {:.2} GB of memory per rank; nothing measured but the clock ({clock}).\n\
         'at least' = FLOPs / theoretical peak of the precision × (warm-up + timed repetitions), {} of them.\n",
        checked.file,
        ctx.threads,
        memory_per_rank as f64 / 1e9,
        reps
    );
    t += &format!("{:<12} {:<5} {:<22} {:>14} {:>12}\n", "kernel", "prec", "size", "GB per rank", "at least");
    let at_least = |p: Precision, flops: f64| peaks.get(&p).copied().flatten().map_or("-".to_string(), |g| format!("{:.2} s", reps * flops / (g * 1e9)));
    for g in &runs.gemm {
        let bytes = (g.m * g.n) as f64 * cost::gemm::bytes_held_per_element(g.precision) as f64;
        let flops = ranks as f64 * cost::gemm::flops(g.m, g.n, g.k);
        t += &format!("{:<12} {:<5} {:<22} {:>14.3} {:>12}\n", "gemm", g.precision.name(), format!("n={}", g.n), bytes / 1e9, at_least(g.precision, flops));
    }
    for h in &runs.hpl {
        let bytes = (h.n * h.n) as f64 * cost::hpl::bytes_held_per_element(h.precision) as f64 / ranks as f64;
        t += &format!("{:<12} {:<5} {:<22} {:>14.3} {:>12}\n", "hpl-mxp", h.precision.name(), format!("n={} nb={} {}×{}", h.n, h.nb, h.p, h.q), bytes / 1e9, at_least(h.precision, cost::hpl::flops(h.n)));
    }
    for s in &runs.stencils {
        let points: usize = s.global.iter().product();
        let bytes = points as f64 * cost::stencil::bytes_held_per_point(s.kind, s.precision) as f64 / ranks as f64;
        let updated: usize = s.global.iter().map(|g| g - 2).product();
        let flops = (updated * s.iters) as f64 * cost::stencil::flops_per_point(s.kind) as f64;
        let size = format!("{}x{}x{} ×{}", s.global[0], s.global[1], s.global[2], s.iters);
        t += &format!("{:<12} {:<5} {:<22} {:>14.3} {:>12}\n", stencil::record_kernel(s.kind), s.precision.name(), size, bytes / 1e9, at_least(s.precision, flops));
    }
    if let Some(n) = &checked.plan.net {
        // A network measurement moves no FLOPs: its size is its largest message (a buffer
        // of it, and f64 ones twice its size for allreduce).
        let max = n.max_bytes.unwrap_or(bench::net::NetSettings::default().max_bytes);
        t += &format!("{:<12} {:<5} {:<22} {:>14.3} {:>12}\n", "net", "-", format!("0 B to {max} B"), 3.0 * max as f64 / 1e9, "-");
    }
    t
}

/// `effcal formats quantize`: the values from the command line, or from stdin.
pub fn quantize_args(to: Precision, overflow: &str, values: Vec<String>) -> Result<Outcome> {
    let overflow = if overflow == "ieee" { Overflow::NonSaturating } else { Overflow::Saturate };
    quantize(to, overflow, values)
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
fn peak_settings(fma_seconds: f64, triad_elements: Option<usize>, given: &Given) -> PeakSettings {
    let mut s = PeakSettings::detected(fma_seconds, triad_elements);
    s.reuse = given.peaks.cloned();
    if let Some(c) = given.described {
        let sys = &c.plan.system;
        s.clock_ghz = sys.clock_ghz;
        s.flop_per_cycle = c.flop_per_cycle.clone();
        s.memory_bandwidth_gbs = sys.memory_bandwidth_gbs;
        s.sources = sys.sources.clone();
        s.description = Some(sys.clone());
    }
    s
}

/// The runs of `effcal hpl-mxp`: every precision for each combination of the HPL.dat
/// (grids, sizes, block sizes, broadcasts, depths), or for the flags.
fn hpl_runs(a: &HplArgs) -> Result<Vec<HplSettings>> {
    let refine = if a.refine == "gmres" { Refine::Gmres { restart: a.restart as usize } } else { Refine::Ir };
    let generator = a.generator.parse().map_err(Error::Kernel)?;
    let bcast = a.bcast.parse::<hpl::bcast::Algorithm>().map_err(|e| Error::invalid("--bcast", &a.bcast, e))?;
    let base = |precision: Precision| HplSettings {
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
        path: a.backend,
        gemm: GemmParams { accumulate: accumulation(&a.accumulate, a.acc_block), blocking: a.blocking, ..GemmParams::default() },
        diagonal_on_gpu: a.diagonal == "gpu",
        ..HplSettings::new(0, 0, precision)
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
                let nb = a.nb.map_or(hpl::default_nb_on(precision, a.device == "gpu"), |v| v as usize);
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
fn stencil_runs(a: &StencilArgs, ranks: usize) -> Result<Vec<StencilSettings>> {
    let kinds = a.kind.iter().map(|k| k.parse::<Kind>().map_err(Error::Kernel)).collect::<Result<Vec<_>>>()?;
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
    if a.arithmetic != "wide" && !a.precision.contains(&Precision::F16) {
        return Err(Error::invalid("--arithmetic", &a.arithmetic, "wide for these precisions: f16 and both apply to f16 fields, and --precision has no f16"));
    }
    let stores: StoresSetting = a.stores.parse().map_err(|_| Error::invalid("--stores", &a.stores, StoresSetting::ALLOWED))?;
    let mut runs = Vec::new();
    for &kind in &kinds {
        for &precision in &a.precision {
            let arithmetics = stencil::Arithmetic::for_setting(&a.arithmetic, precision).expect("clap allows only wide, f16, both");
            for arithmetic in arithmetics {
                for &overlap in overlaps {
                    let s = StencilSettings { kind, precision, global, iters: a.iters as usize, dims, overlap, stores, arithmetic };
                    stencil::check(&s, ranks)?;
                    runs.push(s);
                }
            }
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
    session.annotate(output::apply_halo_hidden)?;
    session.annotate_halo_model()
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

/// `effcal formats quantize`: one "<input> <rounded>" line per value, from the command
/// line or from stdin (where a bad value is named with its line).
fn quantize(to: Precision, overflow: Overflow, values: Vec<String>) -> Result<Outcome> {
    // (value, where it came from)
    let values: Vec<(String, String)> = if values.is_empty() {
        let stdin = std::io::stdin();
        let mut v = Vec::new();
        for (n, line) in stdin.lock().lines().enumerate() {
            let line = line.map_err(|e| Error::io("reading values from stdin", e))?;
            v.extend(line.split_whitespace().map(|x| (x.to_string(), format!("value (stdin line {})", n + 1))));
        }
        v
    } else {
        values.into_iter().map(|x| (x, "value".to_string())).collect()
    };
    let mut out = std::io::stdout().lock();
    for (s, field) in values {
        let x: f64 = s.trim().parse().map_err(|_| Error::invalid(field, &s, "a decimal number such as 0.1, -3e5, inf or nan"))?;
        let _ = writeln!(out, "{s} {}", output::exact(to.quantize(x, overflow)));
    }
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "[gemm]\nn = 256\nprecisions = [\"f64\", \"e4m3\"]\nscaling_fp8 = \"mx\"\nblocking = \"100,50,200\"\n\
                        [hpl_mxp]\nn = 1024\nprecisions = [\"f64\", \"bf16\", \"e5m2\"]\n\
                        [stencil]\nkinds = [\"7pt\", \"himeno\"]\nprecisions = [\"f32\"]\nsize = [34, 18, 18]\niters = 2\n";

    #[test]
    fn a_plan_becomes_its_runs_without_mpi() {
        let checked = config::Plan::parse(PLAN, "t.toml").unwrap();
        let ranks = 4;
        let sizes = checked.sizes(config::Memory { per_rank: 8 << 30, ranks }, |s| stencil::decomp::balanced_dims(ranks, s)).unwrap();
        let runs = plan_runs(&checked, &sizes, ranks).unwrap();
        let gemm: Vec<(Precision, [usize; 3], ScaleMode)> = runs.gemm.iter().map(|g| (g.precision, [g.m, g.n, g.k], g.scaling)).collect();
        assert_eq!(gemm, [(Precision::F64, [256; 3], ScaleMode::None), (Precision::E4m3, [256; 3], ScaleMode::Mx)]);
        assert!(runs.gemm.iter().all(|g| g.params.blocking == Some(Blocking { kc: 100, mc: 50, nc: 200 })), "the plan's blocking reaches every GEMM");
        assert_eq!(runs.hpl[0].gemm.blocking, None, "[gemm]'s blocking is not [hpl_mxp]'s");
        // The plan's FP8 scaling, each precision's default NB, the most square grid.
        type Hpl = (Precision, usize, usize, (usize, usize), ScaleMode);
        let hpl: Vec<Hpl> = runs.hpl.iter().map(|h| (h.precision, h.n, h.nb, (h.p, h.q), h.scaling)).collect();
        assert_eq!(
            hpl,
            [(Precision::F64, 1024, 384, (2, 2), ScaleMode::None), (Precision::Bf16, 1024, 768, (2, 2), ScaleMode::None), (Precision::E5m2, 1024, 384, (2, 2), ScaleMode::Mx)]
        );
        let st: Vec<(Kind, [usize; 3], usize, bool)> = runs.stencils.iter().map(|s| (s.kind, s.global, s.iters, s.overlap)).collect();
        assert_eq!(st, [(Kind::Seven, [34, 18, 18], 2, true), (Kind::Himeno, [34, 18, 18], 2, true)]);
    }

    #[test]
    fn a_plan_takes_every_hpl_mxp_choice_the_cli_takes() {
        let plan = "[hpl_mxp]\nn = 512\nprecisions = [\"f16\", \"e4m3\"]\np = 2\nq = 1\npmap = \"col\"\nrefine = \"gmres\"\nrestart = 12\n\
                    generator = \"shifted\"\nbcast = \"binomial\"\nlookahead = 0\nf64_matrix = \"kept\"\nscaling_fp8 = \"mx\"\nscale_exp = 3\nchunk = 64\nbackend = \"portable\"\n\
                    accumulate = \"f16\"\nacc_block = 8\nblocking = \"256,480,4096\"\n";
        let checked = config::Plan::parse(plan, "h.toml").unwrap();
        let sizes = checked.sizes(config::Memory { per_rank: 8 << 30, ranks: 2 }, |s| s).unwrap();
        let runs = plan_runs(&checked, &sizes, 2).unwrap();
        let h = runs.hpl[1];
        assert_eq!((h.precision, h.n, h.p, h.q, h.pmap, h.refine), (Precision::E4m3, 512, 2, 1, hpl::grid::Pmap::Col, Refine::Gmres { restart: 12 }));
        assert_eq!((h.generator, h.bcast, h.lookahead, h.keep_f64, h.scaling, h.scale, h.chunk), (effcal_kernels::hpl_mxp::matgen::Generator::Shifted, hpl::bcast::Algorithm::Binomial, false, true, ScaleMode::Mx, 8.0, 64));
        assert_eq!(runs.hpl[0].scaling, ScaleMode::None, "FP8 scaling is for FP8");
        assert_eq!(h.path, PathChoice::Fixed(effcal_kernels::gemm::Backend::Portable));
        assert_eq!(h.gemm.accumulate, Accumulate::F16 { block: 8 });
        assert_eq!(h.gemm.blocking, Some(Blocking { kc: 256, mc: 480, nc: 4096 }));
        let refused = |extra: &str, ranks: usize| {
            let checked = config::Plan::parse(&format!("[hpl_mxp]\nn = 512\nprecisions = [\"f64\"]\n{extra}"), "h.toml").unwrap();
            plan_runs(&checked, &sizes, ranks).unwrap_err().to_string()
        };
        assert_eq!(refused("p = 3\nq = 1\n", 2), "config h.toml: hpl_mxp.p × hpl_mxp.q = 3 × 1: must be the number of ranks, 2");
        assert_eq!(refused("p = 2\n", 2), "config h.toml: hpl_mxp: p and q go together (or neither: the most square grid)");
        assert_eq!(refused("bcast = \"tree\"\n", 2), "config h.toml: hpl_mxp.bcast: unknown broadcast 'tree' (allowed: ring, binomial, mpi)");
        assert_eq!(refused("refine = \"cg\"\n", 2), "config h.toml: hpl_mxp.refine = \"cg\": allowed: ir, gmres");
        assert_eq!(refused("accumulate = \"f8\"\n", 2), "config h.toml: hpl_mxp.accumulate = \"f8\": allowed: wide, f16");
        assert_eq!(refused("acc_block = 0\n", 2), "config h.toml: hpl_mxp.acc_block = 0: must be in 1..=65536");
        assert_eq!(refused("lookahead = 2\n", 2), "config h.toml: hpl_mxp.lookahead = 2: allowed: 0, 1");
        assert_eq!(refused("backend = \"fast\"\n", 2), "config h.toml: hpl_mxp.backend = \"fast\": allowed: fastest, auto, portable");
        assert_eq!(
            refused("blocking = \"256,480\"\n", 2),
            "config h.toml: hpl_mxp.blocking = \"256,480\": allowed: KC,MC,NC: three whole numbers from 1 to 1000000, e.g. 256,480,4096 (terms of k per packed panel, rows of A per block, columns of B per panel)"
        );
    }

    #[test]
    fn a_stencil_the_ranks_cannot_share_is_refused_by_the_plan() {
        let checked = config::Plan::parse("[stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nsize = [3, 3, 3]\niters = 1\n", "small.toml").unwrap();
        // Five ranks must cut some dimension of 3 points five ways.
        let sizes = checked.sizes(config::Memory { per_rank: 8 << 30, ranks: 5 }, |s| stencil::decomp::balanced_dims(5, s)).unwrap();
        let e = plan_runs(&checked, &sizes, 5).unwrap_err().to_string();
        assert!(e.starts_with("config small.toml: stencil: invalid --dims") && e.contains("at most as many ranks as points"), "{e}");
    }

    #[test]
    fn a_plan_chooses_the_stencil_stores() {
        let runs = |extra: &str| {
            let checked = config::Plan::parse(&format!("[stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nsize = [8, 8, 8]\niters = 1\n{extra}"), "s.toml").unwrap();
            let sizes = checked.sizes(config::Memory { per_rank: 8 << 30, ranks: 1 }, |s| stencil::decomp::balanced_dims(1, s)).unwrap();
            plan_runs(&checked, &sizes, 1)
        };
        assert_eq!(runs("").unwrap().stencils[0].stores, StoresSetting::Auto);
        assert_eq!(runs("stores = \"streaming\"\n").unwrap().stencils[0].stores, StoresSetting::Streaming);
        assert_eq!(runs("stores = \"fast\"\n").unwrap_err().to_string(), "config s.toml: stencil.stores = \"fast\": allowed: auto, normal, streaming");
    }
    #[test]
    fn a_plan_chooses_the_arithmetic_of_f16_stencils() {
        let runs = |kinds: &str, precisions: &str, extra: &str| {
            let checked = config::Plan::parse(&format!("[stencil]\nkinds = [{kinds}]\nprecisions = [{precisions}]\nsize = [8, 8, 8]\niters = 1\n{extra}"), "a.toml").unwrap();
            let sizes = checked.sizes(config::Memory { per_rank: 8 << 30, ranks: 1 }, |s| stencil::decomp::balanced_dims(1, s)).unwrap();
            plan_runs(&checked, &sizes, 1).map(|r| r.stencils.iter().map(|s| (s.precision, s.arithmetic)).collect::<Vec<_>>())
        };
        use stencil::Arithmetic::{F16, Wide};
        let (f64_, f16_) = (Precision::F64, Precision::F16);
        assert_eq!(runs("\"7pt\"", "\"f64\", \"f16\"", "").unwrap(), [(f64_, Wide), (f16_, Wide)]);
        // f16 arithmetic is for the f16 fields; the others stay wide.
        assert_eq!(runs("\"7pt\"", "\"f64\", \"f16\"", "arithmetic = \"f16\"\n").unwrap(), [(f64_, Wide), (f16_, F16)]);
        assert_eq!(runs("\"27pt\"", "\"f16\"", "arithmetic = \"both\"\n").unwrap(), [(f16_, Wide), (f16_, F16)]);
        let refused = |kinds: &str, precisions: &str, extra: &str| runs(kinds, precisions, extra).unwrap_err().to_string();
        assert_eq!(refused("\"7pt\"", "\"f64\"", "arithmetic = \"f8\"\n"), "config a.toml: stencil.arithmetic = \"f8\": allowed: wide, f16, both");
        assert_eq!(
            refused("\"7pt\"", "\"f64\"", "arithmetic = \"f16\"\n"),
            "config a.toml: stencil.arithmetic = \"f16\": allowed: wide for these precisions (f16 and both apply to f16 fields, and stencil.precisions has no f16)"
        );
        let e = refused("\"himeno\"", "\"f16\"", "arithmetic = \"f16\"\n");
        assert!(e.starts_with("config a.toml: stencil: invalid --arithmetic 'f16 for himeno f16': f16 arithmetic for f16 fields of the 7pt and 27pt stencils"), "{e}");
    }
}
