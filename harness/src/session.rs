//! A measuring command's life on every rank: detect the node, start MPI and place the
//! threads ([`setup`]), then build the calibration record by record ([`Session`]): peaks
//! first (or those of the calibration being resumed), each record printed on rank 0 and
//! the JSON rewritten atomically after it, so a killed job keeps what it finished.

use crate::Outcome;
use crate::bench::Ctx;
use crate::bench::peak::PeakSettings;
use crate::calibration::{self, Binding, Calibration, Environment, Record};
use crate::error::{Error, Result};
use crate::{bench, output, topology, world};
use effcal_kernels::Precision;
use std::io::Write;
use std::path::Path;

/// Detects the node, starts MPI, places this rank's threads (one core each) and starts its
/// rayon pool on them.
pub(crate) fn setup(threads: Option<usize>, reps: usize, warmup: usize, seed: u64) -> Result<Ctx> {
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
pub(crate) struct Session<'a> {
    ctx: &'a Ctx,
    pub(crate) doc: Calibration,
    out: Option<&'a Path>,
    outcome: Outcome,
}

impl<'a> Session<'a> {
    /// Gathers the system, measures the peaks (or keeps those of the calibration being
    /// resumed, with its records), prints them.
    pub(crate) fn start(ctx: &'a Ctx, out: Option<&'a Path>, peak: &PeakSettings, resumed: Option<Calibration>) -> Result<Self> {
        let mut system = gather_system(ctx);
        system.description = peak.description.clone();
        let doc = match resumed {
            Some(mut doc) => {
                system.clock_ghz_measured = doc.system.clock_ghz_measured;
                doc.system = system;
                doc
            }
            None => {
                let (peaks, measured_clock) = match &peak.reuse {
                    Some((file, cal)) => reused_peaks(ctx, file, cal)?,
                    None => bench::peak::measure(ctx, peak),
                };
                system.clock_ghz_measured = measured_clock;
                new_doc(system, Some(peaks))
            }
        };
        let table = output::peaks_table(doc.peaks.as_ref().expect("set above"));
        Self::open(ctx, out, doc, peak.reuse.as_ref(), &table)
    }

    /// [`start`](Self::start) for `--device gpu`: the peaks of the run's GPUs, one per rank
    /// (measured, or those of `reuse` where they are of as many GPUs of this kind), and the
    /// GPU's description in the system section.
    pub(crate) fn start_gpu(ctx: &'a Ctx, out: Option<&'a Path>, dev: &mut bench::gpu::Device, s: &bench::gpu::GpuPeakSettings, reuse: Option<&(String, Calibration)>) -> Result<Self> {
        let mut system = gather_system(ctx);
        let (peaks, gpu, notes) = match reuse {
            Some((file, cal)) => {
                let peaks = cal.peaks.clone().expect("load_peaks refuses a calibration without peaks");
                let theirs = cal.system.gpu.as_ref().map(|g| g.name.as_str());
                let ranks = ctx.world.size();
                if peaks.gpus != Some(ranks) || theirs != Some(dev.gpu.info.name.as_str()) {
                    let what = match (peaks.gpus, theirs) {
                        (Some(g), Some(name)) => format!("{g} × '{name}'"),
                        _ => format!("CPU peaks ({} core(s))", peaks.cores),
                    };
                    return Err(Error::invalid("--peaks", file, format!("peaks of this run's {ranks} × '{}' (effcal peak --device gpu writes them); that file's are {what}", dev.gpu.info.name)));
                }
                let clock = cal.system.gpu.as_ref().and_then(|g| g.sm_clock_mhz_under_load);
                (peaks, dev.environment(clock), String::new())
            }
            None => bench::gpu::peaks(ctx, dev, s)?,
        };
        system.gpu = Some(gpu);
        let doc = new_doc(system, Some(peaks));
        let table = output::gpu_peaks_table(doc.peaks.as_ref().expect("set above")) + &notes;
        Self::open(ctx, out, doc, reuse, &table)
    }

    /// Prints the banner, where the peaks are from and the peaks table; writes the JSON.
    fn open(ctx: &'a Ctx, out: Option<&'a Path>, doc: Calibration, reuse: Option<&(String, Calibration)>, table: &str) -> Result<Self> {
        let triad_failed = matches!(doc.peaks.as_ref().and_then(|p| p.stream_triad.as_ref()), Some(t) if !t.valid);
        let outcome = if triad_failed || doc.records.iter().any(|r| !r.valid) { Outcome::Failed } else { Outcome::Passed };
        let s = Session { ctx, doc, out, outcome };
        s.banner();
        if let (Some((file, cal)), true) = (reuse, s.doc.records.is_empty()) {
            s.print(&format!("Peaks from {file} (measured {}), not measured again\n", cal.created));
        }
        if !s.doc.records.is_empty() {
            s.print(&format!("Resuming {}: {} record(s) kept, peaks as measured then ({})\n", out.map_or("".into(), |p| p.display().to_string()), s.doc.records.len(), s.doc.created));
        }
        s.print(table);
        s.write()?;
        Ok(s)
    }

    /// A calibration of the system alone, measuring no peaks (`effcal net`).
    pub(crate) fn without_peaks(ctx: &'a Ctx, out: Option<&'a Path>) -> Result<Self> {
        let s = Session { ctx, doc: new_doc(gather_system(ctx), None), out, outcome: Outcome::Passed };
        s.banner();
        s.write()?;
        Ok(s)
    }

    /// Sets the network section, printing `text` for it, and rewrites the JSON.
    pub(crate) fn set_network(&mut self, network: calibration::Network, text: &str) -> Result<()> {
        self.print(text);
        self.doc.network = Some(network);
        self.write()
    }

    /// The first line a run prints: effcal, the host, the CPU, ranks × threads.
    fn banner(&self) {
        let (doc, ctx) = (&self.doc, self.ctx);
        self.print(&format!("effcal {} on {} ({}), {} rank(s) × {} thread(s)\n", doc.effcal_version, doc.system.host, doc.system.cpu_model, ctx.world.size(), ctx.threads));
        if let Some(g) = &doc.system.gpu {
            self.print(&format!(
                "GPU {} (compute capability {}, {:.1} GiB, {} SMs), one per rank; driver {}, CUDA {}, cuBLAS {}\n",
                g.name,
                g.compute_capability,
                g.memory_bytes as f64 / f64::from(1u32 << 30),
                g.multiprocessors,
                g.driver_version.as_deref().unwrap_or("unknown (no NVML)"),
                g.cuda_driver_api,
                g.cublas_version
            ));
        }
    }

    /// True (and says so) when the calibration already holds a record of `kernel` in
    /// `precision` whose params have these values: a resumed run skips it.
    pub(crate) fn skip(&self, kernel: &str, precision: Precision, params: &[(&str, serde_json::Value)]) -> bool {
        self.skip_named(kernel, precision.name(), params)
    }

    /// [`skip`](Self::skip) for a precision by name (a GPU's, such as tf32).
    pub(crate) fn skip_named(&self, kernel: &str, precision: &str, params: &[(&str, serde_json::Value)]) -> bool {
        let done = self.doc.records.iter().any(|r| r.kernel == kernel && r.precision == precision && params.iter().all(|(k, v)| r.params.get(*k) == Some(v)));
        if done {
            self.print(&format!("{kernel} {precision}: already in the calibration (resumed), skipped\n"));
        }
        done
    }

    pub(crate) fn print(&self, text: &str) {
        if self.ctx.world.is_root() {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    }

    /// Adds a record, printing `text` for it, and rewrites the JSON.
    pub(crate) fn add(&mut self, record: Record, text: &str) -> Result<()> {
        self.print(text);
        if let Some(note) = output::above_peak_note(&record, self.doc.peaks.as_ref()) {
            self.print(&note);
        }
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
    pub(crate) fn annotate(&mut self, f: fn(&mut [Record]) -> String) -> Result<()> {
        let text = f(&mut self.doc.records);
        if text.is_empty() {
            return Ok(());
        }
        self.print(&text);
        self.write()
    }

    /// Sets every stencil record's halo model where the calibration has a network table.
    pub(crate) fn annotate_halo_model(&mut self) -> Result<()> {
        let Some(net) = &self.doc.network else { return Ok(()) };
        let text = output::apply_halo_model(&mut self.doc.records, net);
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

    pub(crate) fn finish(self) -> Result<Outcome> {
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

/// A new calibration of `system`, created now by this command line.
fn new_doc(system: Environment, peaks: Option<calibration::Peaks>) -> Calibration {
    Calibration {
        schema_version: calibration::SCHEMA_VERSION,
        effcal_version: env!("CARGO_PKG_VERSION").to_string(),
        created: calibration::now_rfc3339(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        system,
        peaks,
        records: Vec::new(),
        network: None,
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
        gpu: None,
    }
}

/// The calibration `--resume` continues: the output file as rank 0 reads it (shared with
/// every rank, so all skip the same records), or None when there is none yet. A file from
/// another schema, machine or rank × thread shape is refused.
pub(crate) fn resume(ctx: &Ctx, path: &Path) -> Result<Option<Calibration>> {
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

/// Checks on rank 0, before anything is measured, that the output file can be written (see
/// `calibration::check_output`), and makes every rank agree: the others return a refusal
/// too (rank 0 says why), so no rank goes on into a collective alone.
pub(crate) fn check_output(ctx: &Ctx, path: &Path, flag: &str, create_dir: bool) -> Result<()> {
    let mine = if ctx.world.is_root() { calibration::check_output(path, flag, create_dir) } else { Ok(()) };
    if ctx.world.all(mine.is_ok()) {
        return Ok(());
    }
    mine.and(Err(Error::invalid(flag, path.display(), "refused on rank 0")))
}

/// The peaks of a calibration given with `--peaks`, where they are of this run's cores and
/// CPU (the same on every rank: each read the same file).
fn reused_peaks(ctx: &Ctx, file: &str, cal: &Calibration) -> Result<(calibration::Peaks, Option<f64>)> {
    let peaks = cal.peaks.clone().expect("load_peaks refuses a calibration without peaks");
    let cores = ctx.world.size() * ctx.threads;
    if let Some(gpus) = peaks.gpus {
        return Err(Error::invalid("--peaks", file, format!("CPU peaks (effcal peak writes them); that file's are of {gpus} GPU(s): use it with --device gpu")));
    }
    if peaks.cores != cores || cal.system.cpu_model != ctx.node.cpu_model {
        return Err(Error::invalid(
            "--peaks",
            file,
            format!("peaks of this run's {cores} core(s) on '{}'; that file's are of {} core(s) on '{}'", ctx.node.cpu_model, peaks.cores, cal.system.cpu_model),
        ));
    }
    // Rows chosen by an older rule (before each format took its fastest exact arithmetic)
    // would put a faster path above its format's peak.
    if let Some(stale) = bench::peak::stale_rows(&peaks).first() {
        return Err(Error::invalid("--peaks", file, format!("peaks whose rows are each format's fastest exact arithmetic; that file's {stale}: written by an older effcal, measure them again (effcal peak --json)")));
    }
    Ok((peaks, cal.system.clock_ghz_measured))
}

/// [`check_output`] of a measuring command's `--json`, where one is given.
pub(crate) fn check_json(ctx: &Ctx, json: Option<&Path>) -> Result<()> {
    json.map_or(Ok(()), |path| check_output(ctx, path, "--json", false))
}

