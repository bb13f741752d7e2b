//! Peaks of the cores this run uses: the clock under FMA load (with every clock the system
//! states), theoretical FLOP/s (cores × clock × FLOP/cycle from the plan or the
//! microarchitecture table), register-only FLOP/s of every arithmetic the CPU has, the
//! guard between the two, and STREAM triad bandwidth.

use super::Ctx;
use crate::calibration::{ClockReadings, Microarch, Peaks, PrecisionPeak, Triad};
use crate::timing::Stats;
use crate::{topology, uarch};
use effcal_kernels::Precision;
use effcal_kernels::peak::fma::{self, Arith};
use effcal_kernels::peak::{clock, triad};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to measure and what the config says about the system.
pub struct PeakSettings {
    pub fma_seconds: f64,
    /// f64 elements per triad array per rank; 0 = [`default_triad_elements`]; None = no triad.
    pub triad_elements: Option<usize>,
    pub clock_ghz: Option<f64>,
    pub flop_per_cycle: BTreeMap<Precision, f64>,
    /// Theoretical memory bandwidth per node, GB/s.
    pub memory_bandwidth_gbs: Option<f64>,
    /// The plan's sources, by `[system]` key.
    pub sources: BTreeMap<String, String>,
    /// The whole `[system]` description, echoed into the calibration.
    pub description: Option<crate::machine::Description>,
    /// Peaks measured before (`--peaks`: the file, and its calibration), used instead.
    pub reuse: Option<(String, crate::calibration::Calibration)>,
}

impl PeakSettings {
    /// Detection only (no system description): the single-kernel commands.
    pub fn detected(fma_seconds: f64, triad_elements: Option<usize>) -> Self {
        Self { fma_seconds, triad_elements, clock_ghz: None, flop_per_cycle: BTreeMap::new(), memory_bandwidth_gbs: None, sources: BTreeMap::new(), description: None, reuse: None }
    }

    /// The FLOP/cycle the plan gives for `p` computed in `arith` ([`configured_figure`]).
    fn configured(&self, p: Precision, arith: Arith) -> Option<f64> {
        configured_figure(&self.flop_per_cycle, p.name(), arith.name())
    }

    /// "config", or "config: <source>" when the plan cites one for `key`.
    fn config_source(&self, key: &str) -> String {
        match self.sources.get(key) {
            Some(s) => format!("config: {s}"),
            None => "config".to_string(),
        }
    }
}

/// The mean clock over every thread of every rank, all running the chain at once. A thread
/// that was not running for part of its measurement (a shared or virtual machine's other
/// work) reads low, never high, so each thread keeps its best reading, and the measurement
/// is repeated while the threads of all ranks differ by more than [`CLOCK_SPREAD`].
fn mean_clock(ctx: &Ctx, load: clock::Load) -> Option<f64> {
    let w = &ctx.world;
    let measure = || {
        let ghz: Vec<Option<clock::Clock>> = rayon::broadcast(|_| clock::measure_ghz(Duration::from_millis(100), load));
        w.all(ghz.iter().all(Option::is_some)).then(|| ghz.iter().flatten().map(|c| c.ghz).collect())
    };
    let agree = |best: &[f64]| {
        let (lo, hi) = best.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &g| (lo.min(g), hi.max(g)));
        w.max(hi) <= CLOCK_SPREAD * w.min(lo)
    };
    let best = settled_clocks(measure, agree)?;
    Some(w.sum(best.iter().sum()) / w.sum(best.len() as f64))
}

/// How far apart the threads' clocks may be (highest over lowest) before the clock is
/// measured again.
const CLOCK_SPREAD: f64 = 1.05;

/// Measurements of the clock, at most this many.
const CLOCK_ATTEMPTS: usize = 4;

/// Each thread's best clock over repeated `measure()`s (None if one fails): measured again
/// while `agree` says the bests disagree, [`CLOCK_ATTEMPTS`] times at most.
fn settled_clocks(mut measure: impl FnMut() -> Option<Vec<f64>>, agree: impl Fn(&[f64]) -> bool) -> Option<Vec<f64>> {
    let mut best = measure()?;
    for _ in 1..CLOCK_ATTEMPTS {
        if agree(&best) {
            break;
        }
        for (b, g) in best.iter_mut().zip(measure()?) {
            *b = b.max(g);
        }
    }
    Some(best)
}

/// The clock the theoretical peaks use and where it comes from, with every reading: a
/// configured clock wins; else the one measured under FMA load, unless it is more than 10 %
/// above the clock the system states as its maximum, when it is refused and the stated
/// maximum is used instead.
pub fn clock(ctx: &Ctx, configured: Option<(f64, String)>) -> (Option<f64>, String, ClockReadings) {
    let stated = topology::StatedClocks::read();
    let scalar = mean_clock(ctx, clock::Load::Scalar);
    let fma = mean_clock(ctx, clock::Load::Fma);
    let ghz = |khz: Option<u64>| khz.map(|k| k as f64 / 1e6);
    let mut r = ClockReadings {
        measured_scalar_ghz: scalar,
        measured_fma_ghz: fma,
        fma_load_isa: clock::load_isa(clock::Load::Fma).to_string(),
        cpuid_base_ghz: stated.cpuid_base_mhz.map(|m| f64::from(m) / 1e3),
        cpuid_max_ghz: stated.cpuid_max_mhz.map(|m| f64::from(m) / 1e3),
        cpufreq_max_ghz: ghz(stated.cpufreq_max_khz),
        cpufreq_cur_ghz: ghz(stated.cpufreq_cur_khz),
        cpufreq_driver: stated.cpufreq_driver.clone(),
        proc_cpuinfo_ghz: stated.proc_cpuinfo_mhz.map(|m| m / 1e3),
        stated_max_ghz: None,
        stated_max_source: None,
        refused: None,
    };
    let max = stated.max_ghz();
    (r.stated_max_ghz, r.stated_max_source) = (max.as_ref().map(|m| m.0), max.as_ref().map(|m| m.1.clone()));
    if let (Some(m), Some((limit, source))) = (fma, &max)
        && m > 1.1 * limit
    {
        r.refused = Some(format!("measured {m:.3} GHz is more than 10 % above the stated maximum {limit:.3} GHz ({source})"));
    }
    let (clock, source) = match (configured, &r.refused, fma) {
        (Some((c, source)), _, _) => (Some(c), source),
        (None, Some(why), _) => (max.as_ref().map(|m| m.0), format!("stated maximum, {}: {why}, refused", max.as_ref().map_or("", |m| m.1.as_str()))),
        (None, None, Some(m)) => (Some(m), format!("measured: dependent imul chain under {} FMA load", r.fma_load_isa)),
        (None, None, None) => (None, "unknown: give system.clock_ghz in the config".into()),
    };
    (clock, source, r)
}

/// Runs the kernel of `a` on every thread of every rank; GFLOP/s (GOP/s) per repetition.
fn rates(ctx: &Ctx, a: Arith, seconds: f64) -> Stats {
    // Calibrate the iteration count on this rank, then agree on the smallest.
    let probe = 200_000u64;
    let t = Instant::now();
    fma::run(a, probe);
    let per_iter = t.elapsed().as_secs_f64() / probe as f64;
    let iters = ctx.world.min(((seconds / per_iter) as u64).max(1_000) as f64) as u64;
    let mut local_ops = 0.0;
    let times = ctx.time(&format!("peak {}", a.name()), || {
        local_ops = rayon::broadcast(|_| fma::run(a, iters).unwrap_or(0.0)).iter().sum();
    });
    let total = ctx.world.sum(local_ops);
    Stats::rate(total / 1e9, &Stats::of(&times))
}

fn measure_triad(ctx: &Ctx, elements: usize) -> Triad {
    let len = if elements > 0 { elements } else { default_triad_elements(ctx.node.llc_bytes, ctx.node.memory_bytes, ctx.local_ranks()) };
    let mut arrays = triad::Triad::new(len);
    let times = ctx.time("peak stream triad", || arrays.run());
    let valid = ctx.world.all(arrays.verify());
    let bytes = ctx.world.sum(arrays.bytes());
    Triad { elements_per_rank: len, bytes_per_element: effcal_kernels::cost::triad::BYTES_PER_ELEMENT, gbs: Stats::rate(bytes / 1e9, &Stats::of(&times)), valid }
}

/// STREAM's rule for the default array length: the node's ranks run the triad at once, so
/// each array, summed over the node's ranks, holds at least 4 × the last-level cache:
/// `4·LLC / 8 B / ranks` f64 per rank, at least 2^22. A node whose cache is large against
/// its memory (a VM that reports its host's L3) is capped at a quarter of the memory for the
/// three arrays of all its ranks, and the record's `elements_per_rank` says what ran.
pub fn default_triad_elements(llc_bytes: u64, memory_bytes: u64, local_ranks: usize) -> usize {
    let ranks = local_ranks.max(1) as u64;
    let stream_rule = (4 * llc_bytes / 8).div_ceil(ranks).max(1 << 22);
    let cap = if memory_bytes > 0 { (memory_bytes / 4 / (3 * 8 * ranks)).max(1 << 16) } else { u64::MAX };
    stream_rule.min(cap) as usize
}

/// This CPU as the microarchitecture table sees it.
struct Cpu {
    id: Option<uarch::CpuId>,
    entry: Option<&'static uarch::Entry>,
    /// The vector width the CPU exposes (the table's figures scale to it).
    exposed_bits: Option<u32>,
    /// Where the entry covers parts with different counts of FMA units: the count whose f64
    /// figure is nearest to the measured f64 FLOP per cycle per core.
    units: Option<u32>,
}

impl Cpu {
    fn identify(measured_f64_per_cycle: Option<f64>) -> Self {
        let id = uarch::CpuId::detect();
        let entry = id.as_ref().and_then(|id| uarch::Table::builtin().lookup(id));
        let exposed_bits = entry.map(|e| topology::exposed_vector_bits(e.vector_bits));
        let units = entry.zip(exposed_bits).zip(measured_f64_per_cycle).and_then(|((e, bits), m)| e.units_for(m, bits));
        Cpu { id, entry, exposed_bits, units }
    }

    /// FLOP (INT8: operations) per cycle per core of `a` from the table, and where it comes
    /// from; `None` with the reason where the table cannot say.
    fn per_cycle(&self, a: Arith) -> (Option<f64>, String) {
        let Some(e) = self.entry else {
            let cpu = self.id.as_ref().map_or("this CPU".to_string(), |id| id.to_string());
            return (None, format!("unknown: {cpu} is not in configs/microarch.toml; give system.flop_per_cycle in the config"));
        };
        let bits = self.exposed_bits.unwrap_or(e.vector_bits);
        let Some(f) = e.per_cycle(a, bits, self.units) else {
            return (None, format!("unknown: the table has no {} figure for {}; give system.flop_per_cycle in the config", a.name(), e.name));
        };
        let mut how = format!("table: {}", e.name);
        if let Some(u) = self.units {
            let other: Vec<String> = e.fma_units.iter().filter(|&&x| x != u).map(|&x| format!("{} with {x}", e.per_cycle(Arith::F64, bits, Some(x)).unwrap_or(0.0))).collect();
            how += &format!(", {u} FMA unit(s): chosen by the measured f64 rate (f64 FLOP/cycle would be {})", other.join(", "));
        }
        if bits < e.datapath_bits {
            how += &format!(", {bits}-bit vectors exposed of {} (scaled)", e.datapath_bits);
        }
        (Some(f), how)
    }

    fn microarch(&self) -> Option<Microarch> {
        let id = self.id.as_ref()?;
        Some(Microarch {
            cpu: id.to_string(),
            entry: self.entry.map(|e| e.name.clone()),
            source: self.entry.map(|e| e.source.clone()),
            exposed_vector_bits: self.exposed_bits,
            fma_units: self.units,
        })
    }
}

/// The FLOP/cycle a plan's `[system] flop_per_cycle` (`figures`) gives the peak row `row`
/// computed in the arithmetic named `compute`: the row's own figure where it computes in its
/// own arithmetic; else the figure of that arithmetic's precision (f32's for a format
/// computed in f32), or the row's where the plan gives none for it. The peaks take them so
/// when measured, and `--system` when it corrects a calibration afterwards.
pub fn configured_figure(figures: &BTreeMap<Precision, f64>, row: &str, compute: &str) -> Option<f64> {
    let order: &[&str] = if compute == row { &[row] } else { &[compute, row] };
    order.iter().find_map(|n| n.parse::<Precision>().ok().and_then(|p| figures.get(&p).copied()))
}

/// The arithmetics that compute the products of values stored in `p` exactly and sum them
/// in f32 or wider (f64 for f64), in the order taken when none is clearly faster: the
/// format's own first (f16's own is f16 FMA), then f32 FMA on the values widened (exact for
/// every format of 16 bits or fewer), and for FP8 the bf16 dot (every FP8 value is a bf16).
pub fn exact_arithmetics(p: Precision) -> &'static [Arith] {
    match p {
        Precision::F64 => &[Arith::F64],
        Precision::F32 => &[Arith::F32],
        Precision::Bf16 => &[Arith::Bf16Dot, Arith::F32],
        Precision::F16 => &[Arith::F16, Arith::F32],
        Precision::E4m3 | Precision::E5m2 => &[Arith::F32, Arith::Bf16Dot],
    }
}

/// A later arithmetic replaces the one before only when it is at least this much faster:
/// arithmetics of the same rate keep the first, run after run.
const CLEARLY_FASTER: f64 = 1.2;

/// The arithmetic `p`'s peak row computes in: of [`exact_arithmetics`] those the CPU `has`,
/// the first, unless a later one's `rate` is [`CLEARLY_FASTER`] (rates compared only where
/// both are known). Where the CPU has none of them, f32.
pub fn peak_arithmetic(p: Precision, has: impl Fn(Arith) -> bool, rate: impl Fn(Arith) -> Option<f64>) -> Arith {
    let mut candidates = exact_arithmetics(p).iter().copied().filter(|&a| has(a));
    let Some(mut pick) = candidates.next() else { return Arith::F32 };
    for a in candidates {
        if let (Some(x), Some(y)) = (rate(a), rate(pick))
            && x >= CLEARLY_FASTER * y
        {
            pick = a;
        }
    }
    pick
}

/// The rows of CPU peaks that [`peak_arithmetic`] would not choose from the peaks' own
/// rates (a row measures an arithmetic's rate where it is that arithmetic's own row), each
/// said as "<format> row computes in <a>, <b> measured <x>× its rate".
pub fn stale_rows(peaks: &Peaks) -> Vec<String> {
    let rate = |a: Arith| peaks.per_precision.get(a.name()).filter(|pk| pk.compute_precision == a.name()).map(|pk| pk.empirical.median);
    let mut stale = Vec::new();
    for p in Precision::ALL {
        let Some(row) = peaks.per_precision.get(p.name()) else { continue };
        let want = peak_arithmetic(p, |a| rate(a).is_some(), rate);
        if want.name() != row.compute_precision {
            let ratio = rate(want).zip(peaks.per_precision.get(&row.compute_precision).map(|pk| pk.empirical.median)).map_or(f64::NAN, |(x, y)| x / y);
            stale.push(format!("{p} row computes in {}, {} measured {ratio:.2}× its rate", row.compute_precision, want.name()));
        }
    }
    stale
}

/// The theoretical peak (GFLOP/s) of each precision on this run's cores, as [`measure`]
/// finds it, but running nothing except the clock: for `effcal run --dry-run`. The
/// arithmetic of each row is chosen by the table's FLOP/cycle instead of measured rates.
/// The second value says where the clock comes from.
pub fn theoretical(ctx: &Ctx, s: &PeakSettings) -> (BTreeMap<Precision, Option<f64>>, String) {
    let cores = (ctx.world.size() * ctx.threads) as f64;
    let (clock, source, _) = clock(ctx, s.clock_ghz.map(|c| (c, s.config_source("clock_ghz"))));
    let cpu = Cpu::identify(None);
    let per_cycle = |p: Precision, a: Arith| s.configured(p, a).or_else(|| cpu.per_cycle(a).0);
    let peaks = Precision::ALL
        .into_iter()
        .map(|p| {
            let arith = peak_arithmetic(p, |a| fma::isa(a).is_some(), |a| per_cycle(p, a));
            (p, per_cycle(p, arith).zip(clock).map(|(f, c)| cores * c * f))
        })
        .collect();
    (peaks, source)
}

/// All peaks, and the clock as measured under FMA load. Every arithmetic the CPU has runs
/// its register-only kernel (f64, f32, and where present bf16 dot, f16 FMA, INT8 dot); each
/// precision's row is that of the arithmetic [`peak_arithmetic`] chooses by the measured
/// rates: its own where the CPU has it and nothing exact is clearly faster (bf16 on Golden
/// Cove-class cores, whose bf16 dot runs at half the f32 rate, takes f32's), else f32's, or
/// for FP8 the bf16 dot's where that is clearly faster (Zen 4). FLOP/cycle come from the plan's `[system]`, else from the
/// microarchitecture table; then the guard checks each theoretical peak against its
/// measured rate, and rank 0 prints a warning for each suspect one.
pub fn measure(ctx: &Ctx, s: &PeakSettings) -> (Peaks, Option<f64>) {
    let cores = ctx.world.size() * ctx.threads;
    let (clock, clock_source, readings) = clock(ctx, s.clock_ghz.map(|c| (c, s.config_source("clock_ghz"))));
    let mut native = BTreeMap::new();
    for a in Arith::ALL {
        if let Some(isa) = fma::isa(a) {
            native.insert(a, (rates(ctx, a, s.fma_seconds), isa.to_string()));
        }
    }
    let f64_per_cycle = native.get(&Arith::F64).zip(clock).map(|((rate, _), c)| rate.max / (cores as f64 * c));
    let cpu = Cpu::identify(f64_per_cycle);
    let mut per_precision = BTreeMap::new();
    let median = |a: Arith| native.get(&a).map(|(rate, _)| rate.median);
    // `note`: why a row computes in another arithmetic than its own.
    let mut row = |name: &str, arith: Arith, configured: Option<f64>, note: Option<String>| {
        let (rate, isa) = native.get(&arith).cloned().expect("f64, f32 and native rows have a kernel");
        let (fpc, source) = match configured {
            Some(v) => (Some(v), s.config_source("flop_per_cycle")),
            None => cpu.per_cycle(arith),
        };
        per_precision.insert(
            name.to_string(),
            PrecisionPeak {
                compute_precision: arith.name().to_string(),
                theoretical_gflops: fpc.zip(clock).map(|(f, c)| cores as f64 * c * f),
                flop_per_cycle_per_core: fpc,
                flop_per_cycle_source: match &note {
                    Some(n) => format!("{source}; {n}"),
                    None => source,
                },
                empirical_gflops: rate.max,
                empirical: rate,
                isa: if note.is_some() { format!("{isa} ({})", arith.name()) } else { isa },
                empirical_over_theoretical: None,
                suspect: None,
            },
        );
    };
    for p in Precision::ALL {
        let arith = peak_arithmetic(p, |a| native.contains_key(&a), median);
        let own = Arith::of(p).filter(|a| native.contains_key(a));
        let note = match own {
            Some(o) if o == arith => None,
            Some(o) => Some(format!(
                "computed in {}: exact for {p} and measured faster here (median {:.1} GFLOP/s against {}'s {:.1})",
                arith.name(),
                median(arith).unwrap_or(f64::NAN),
                native[&o].1,
                median(o).unwrap_or(f64::NAN)
            )),
            None if arith == Arith::F32 => Some("computed in f32 (no native arithmetic)".to_string()),
            None => Some(format!(
                "computed in {} (no native arithmetic; exact for {p}, and measured faster here than f32: median {:.1} GFLOP/s against {:.1})",
                arith.name(),
                median(arith).unwrap_or(f64::NAN),
                median(Arith::F32).unwrap_or(f64::NAN)
            )),
        };
        row(p.name(), arith, s.configured(p, arith), note);
    }
    if native.contains_key(&Arith::Int8Dot) {
        row("int8", Arith::Int8Dot, None, None);
    }
    let triad = s.triad_elements.map(|e| measure_triad(ctx, e));
    let mut peaks = Peaks {
        clock_ghz: clock,
        clock_source,
        cores,
        gpus: None,
        per_precision,
        stream_triad_gbs: triad.as_ref().map(|t| t.gbs.max),
        stream_triad: triad,
        memory_bandwidth_gbs: s.memory_bandwidth_gbs.map(|b| b * ctx.nodes() as f64),
        memory_bandwidth_source: s.memory_bandwidth_gbs.map(|b| format!("{b} GB/s per node × {} node(s); {}", ctx.nodes(), s.config_source("memory_bandwidth_gbs"))),
        clock: Some(readings.clone()),
        microarch: cpu.microarch(),
        corrected: None,
    };
    peaks.guard();
    if ctx.world.is_root() {
        if let Some(why) = &readings.refused {
            eprintln!("effcal: warning: clock: {why}; the theoretical peaks use {}", peaks.clock_source);
        }
        let suspects: Vec<String> = peaks
            .per_precision
            .iter()
            .filter(|(_, pk)| pk.suspect.is_some())
            .map(|(name, pk)| format!("{name} ({:.3} of it measured)", pk.empirical_over_theoretical.unwrap_or(f64::NAN)))
            .collect();
        if !suspects.is_empty() {
            eprintln!("effcal: warning: suspect theoretical peaks, outside [0.5, 1.05] of the measured rate: {} (the peak table says why)", suspects.join(", "));
        }
    }
    (peaks, readings.measured_fma_ghz)
}

#[cfg(test)]
mod tests {
    use super::{Arith, CLOCK_ATTEMPTS, PeakSettings, Precision, default_triad_elements, peak_arithmetic, settled_clocks};

    /// Each format's row on CPUs with these median rates (GFLOP/s per core; absent: the CPU
    /// lacks the arithmetic), in Precision::ALL order.
    fn rows(rates: &[(Arith, f64)]) -> Vec<Arith> {
        let rate = |a: Arith| rates.iter().find(|r| r.0 == a).map(|r| r.1);
        Precision::ALL.into_iter().map(|p| peak_arithmetic(p, |a| rate(a).is_some(), rate)).collect()
    }

    #[test]
    fn each_format_computes_in_its_fastest_exact_arithmetic() {
        use Arith::*;
        // Emerald Rapids (measured per core): bf16 dot at half the f32 rate, f16 FMA at twice.
        let emr = rows(&[(F64, 122.0), (F32, 246.0), (Bf16Dot, 123.0), (F16, 490.0), (Int8Dot, 960.0)]);
        assert_eq!(emr, [F64, F32, F32, F16, F32, F32]);
        // Zen 4: bf16 dot at twice f32, no f16 arithmetic: FP8 on the bf16 dot.
        let zen4 = rows(&[(F64, 58.0), (F32, 116.0), (Bf16Dot, 232.0), (Int8Dot, 465.0)]);
        assert_eq!(zen4, [F64, F32, Bf16Dot, F32, Bf16Dot, Bf16Dot]);
        // AVX2 only: everything narrow in f32.
        assert_eq!(rows(&[(F64, 30.0), (F32, 60.0)]), [F64, F32, F32, F32, F32, F32]);
        // Within 1.2× the first stays: bf16 keeps its own, FP8 keeps f32.
        assert_eq!(rows(&[(F64, 30.0), (F32, 60.0), (Bf16Dot, 70.0)]), [F64, F32, Bf16Dot, F32, F32, F32]);
        assert_eq!(rows(&[(F64, 30.0), (F32, 60.0), (Bf16Dot, 60.0 * 1.19)])[2..], [Bf16Dot, F32, F32, F32]);
        assert_eq!(rows(&[(F64, 30.0), (F32, 60.0), (Bf16Dot, 60.0 * 1.2)])[4..], [Bf16Dot, Bf16Dot]);
        // Rates unknown (a dry run without a table entry): the first the CPU has.
        assert_eq!(peak_arithmetic(Precision::Bf16, |_| true, |_| None), Bf16Dot);
        assert_eq!(peak_arithmetic(Precision::E4m3, |_| true, |_| None), F32);
    }

    #[test]
    fn a_row_computed_in_another_arithmetic_takes_that_one_s_configured_figure() {
        let mut s = PeakSettings::detected(0.1, None);
        s.flop_per_cycle = [(Precision::F32, 64.0), (Precision::Bf16, 32.0), (Precision::E4m3, 60.0)].into_iter().collect();
        assert_eq!(s.configured(Precision::Bf16, Arith::Bf16Dot), Some(32.0));
        assert_eq!(s.configured(Precision::Bf16, Arith::F32), Some(64.0));
        assert_eq!(s.configured(Precision::E4m3, Arith::F32), Some(64.0));
        assert_eq!(s.configured(Precision::E4m3, Arith::Bf16Dot), Some(32.0));
        // The row's own figure where the arithmetic's is not given.
        assert_eq!(s.configured(Precision::E4m3, Arith::F16), Some(60.0));
        assert_eq!(s.configured(Precision::F16, Arith::F16), None);
    }

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn the_node_s_arrays_hold_four_times_its_last_level_cache() {
        // 32 MiB L3, 2 ranks: 64 MiB per rank per array, the node's 128 MiB = 4 × L3.
        assert_eq!(default_triad_elements(32 * MIB, 24 * GIB, 2), (64 * MIB / 8) as usize);
        assert_eq!(default_triad_elements(32 * MIB, 24 * GIB, 1), (128 * MIB / 8) as usize);
        // Never below 2^22 f64 (32 MiB) per array per rank, nor with an unknown cache.
        assert_eq!(default_triad_elements(32 * MIB, 24 * GIB, 64), 1 << 22);
        assert_eq!(default_triad_elements(0, 0, 4), 1 << 22);
    }

    #[test]
    fn a_cache_large_against_memory_is_capped_at_a_quarter_of_it() {
        // A VM reporting its host's 320 MiB L3 with 4 GiB: 4 ranks × 3 arrays within 1 GiB.
        let e = default_triad_elements(320 * MIB, 4 * GIB, 4) as u64;
        assert_eq!(e, GIB / (3 * 8 * 4));
        assert!(4 * 3 * 8 * e <= GIB);
    }

    #[test]
    fn a_thread_that_read_low_is_measured_again() {
        let agree = |b: &[f64]| b.iter().cloned().fold(0.0, f64::max) <= 1.05 * b.iter().cloned().fold(f64::INFINITY, f64::min);
        // A thread descheduled in the first measurement: measured again, each keeps its best.
        let mut readings = vec![vec![3.6, 1.9], vec![3.5, 3.6], vec![1.0, 1.0]].into_iter();
        assert_eq!(settled_clocks(|| readings.next(), agree), Some(vec![3.6, 3.6]));
        assert_eq!(readings.len(), 1, "stops once the threads agree");
        // Agreeing at once: measured once.
        let mut calls = 0;
        assert_eq!(settled_clocks(|| { calls += 1; Some(vec![3.0, 3.1]) }, agree), Some(vec![3.0, 3.1]));
        assert_eq!(calls, 1);
        // Never agreeing (cores that really differ): the bests after the last attempt.
        let mut calls = 0;
        assert_eq!(settled_clocks(|| { calls += 1; Some(vec![2.0 + calls as f64 * 0.1, 3.0]) }, agree), Some(vec![2.4, 3.0]));
        assert_eq!(calls, CLOCK_ATTEMPTS);
        // A failed measurement is no clock.
        assert_eq!(settled_clocks(|| None, agree), None);
    }
}
