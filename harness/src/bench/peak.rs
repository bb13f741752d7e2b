//! Peaks of the cores this run uses: the clock under load, theoretical FLOP/s
//! (cores × clock × FLOP/cycle), register-only FMA FLOP/s, and STREAM triad bandwidth.

use super::Ctx;
use crate::report::{Peaks, PrecisionPeak, Triad};
use crate::timing::Stats;
use crate::topology;
use effcal_kernels::Precision;
use effcal_kernels::peak::{clock, fma, triad};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to measure and what the config says about the system.
pub struct PeakSettings {
    pub fma_seconds: f64,
    /// f64 elements per triad array per rank; 0 = 4 × last-level cache; None = no triad.
    pub triad_elements: Option<usize>,
    pub clock_ghz: Option<f64>,
    pub flop_per_cycle: BTreeMap<Precision, f64>,
    /// Theoretical memory bandwidth per node, GB/s.
    pub memory_bandwidth_gbs: Option<f64>,
    /// The plan's sources, by `[system]` key.
    pub sources: BTreeMap<String, String>,
    /// The whole `[system]` description, echoed into the calibration.
    pub description: Option<crate::config::SystemSection>,
}

impl PeakSettings {
    /// Detection only (no system description): the single-kernel commands.
    pub fn detected(fma_seconds: f64, triad_elements: Option<usize>) -> Self {
        Self { fma_seconds, triad_elements, clock_ghz: None, flop_per_cycle: BTreeMap::new(), memory_bandwidth_gbs: None, sources: BTreeMap::new(), description: None }
    }

    /// "config", or "config: <source>" when the plan cites one for `key`.
    fn config_source(&self, key: &str) -> String {
        match self.sources.get(key) {
            Some(s) => format!("config: {s}"),
            None => "config".to_string(),
        }
    }
}

/// The mean clock over every thread of every rank, all running the chain at once.
pub fn measure_clock(ctx: &Ctx) -> Option<f64> {
    let ghz: Vec<Option<f64>> = rayon::broadcast(|_| clock::measure_ghz(Duration::from_millis(200)));
    let local_ok = ghz.iter().all(Option::is_some);
    let local_sum: f64 = ghz.iter().flatten().sum();
    let all_ok = ctx.world.all(local_ok);
    let total = ctx.world.sum(local_sum);
    let count = ctx.world.sum(ghz.len() as f64);
    all_ok.then(|| total / count)
}

/// Runs the FMA kernel of `p` on every thread of every rank; GFLOP/s per repetition.
fn fma_rates(ctx: &Ctx, p: Precision, seconds: f64) -> Stats {
    // Calibrate the iteration count on this rank, then agree on the smallest.
    let probe = 200_000u64;
    let t = Instant::now();
    fma::run(p, probe);
    let per_iter = t.elapsed().as_secs_f64() / probe as f64;
    let iters = ctx.world.min(((seconds / per_iter) as u64).max(1_000) as f64) as u64;
    let mut local_flops = 0.0;
    let times = ctx.time(&format!("peak fma {p}"), || {
        local_flops = rayon::broadcast(|_| fma::run(p, iters).unwrap_or(0.0)).iter().sum();
    });
    let total = ctx.world.sum(local_flops);
    Stats::rate(total / 1e9, &Stats::of(&times))
}

fn measure_triad(ctx: &Ctx, elements: usize) -> Triad {
    let len = if elements > 0 { elements } else { (4 * ctx.node.llc_bytes as usize / 8).max(1 << 22) };
    let mut arrays = triad::Triad::new(len);
    let times = ctx.time("peak stream triad", || arrays.run());
    let valid = ctx.world.all(arrays.verify());
    let bytes = ctx.world.sum(arrays.bytes());
    Triad { elements_per_rank: len, bytes_per_element: triad::BYTES_PER_ELEMENT, gbs: Stats::rate(bytes / 1e9, &Stats::of(&times)), valid }
}

/// All peaks, and the clock as measured (which the peaks use unless the config gives one).
/// FMA kernels run for f64, f32 and (where native) bf16; f16 and FP8, which compute in
/// f32 here, get the f32 figures.
pub fn measure(ctx: &Ctx, s: &PeakSettings) -> (Peaks, Option<f64>) {
    let cores = ctx.world.size() * ctx.threads;
    let measured = measure_clock(ctx);
    let (clock, clock_source) = match s.clock_ghz {
        Some(c) => (Some(c), s.config_source("clock_ghz")),
        None => (measured, "measured".to_string()),
    };
    let mut native = BTreeMap::new();
    for p in [Precision::F64, Precision::F32, Precision::Bf16] {
        if let Some(isa) = fma::isa(p) {
            native.insert(p, (fma_rates(ctx, p, s.fma_seconds), isa.to_string()));
        }
    }
    let mut per_precision = BTreeMap::new();
    for p in Precision::ALL {
        let (empirical, isa) = native.get(&p).or_else(|| native.get(&Precision::F32)).cloned().expect("f32 always has an FMA kernel");
        let (isa, compute) = if native.contains_key(&p) { (isa, p) } else { (format!("{isa} (f32)"), Precision::F32) };
        let (fpc, source) = match s.flop_per_cycle.get(&p) {
            Some(&v) => (Some(v), s.config_source("flop_per_cycle")),
            None => match topology::flop_per_cycle(p) {
                Some(r) => (Some(r.per_cycle), r.source),
                None => (None, "unknown: give system.flop_per_cycle in the config".to_string()),
            },
        };
        let theoretical = match (fpc, clock) {
            (Some(f), Some(c)) => Some(cores as f64 * c * f),
            _ => None,
        };
        per_precision.insert(
            p.name().to_string(),
            PrecisionPeak {
                compute_precision: compute.name().to_string(),
                theoretical_gflops: theoretical,
                flop_per_cycle_per_core: fpc,
                flop_per_cycle_source: source,
                empirical_gflops: empirical.max,
                empirical,
                isa,
            },
        );
    }
    let triad = s.triad_elements.map(|e| measure_triad(ctx, e));
    let peaks = Peaks {
        clock_ghz: clock,
        clock_source,
        cores,
        per_precision,
        stream_triad_gbs: triad.as_ref().map(|t| t.gbs.max),
        stream_triad: triad,
        memory_bandwidth_gbs: s.memory_bandwidth_gbs.map(|b| b * ctx.nodes() as f64),
        memory_bandwidth_source: s.memory_bandwidth_gbs.map(|b| format!("{b} GB/s per node × {} node(s); {}", ctx.nodes(), s.config_source("memory_bandwidth_gbs"))),
    };
    (peaks, measured)
}
