//! `effcal estimate`: the survey's capacity estimates recomputed with measured efficiencies.
//!
//! A calibration's records become efficiencies by class (dense GEMM per precision, HPL-MxP,
//! FP64 HPL, stencils), each the record's rate over the theoretical peak of its precision on
//! the cores it ran on, with the spread over repetitions. The system library
//! (configs/systems/, built in) supplies the machines: the survey's table B systems, Fugaku,
//! Fugaku NEXT's target and the GPU generations. Every figure the estimate uses comes from a
//! file with its source, from the calibration, or from a `--demand` value; every assumption
//! the estimate adds is in `Estimate::assumptions`.

use crate::error::{Error, Result};
use crate::calibration::{self, Calibration, Record};
use crate::timing::Stats;
use effcal_kernels::Precision;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Bumped whenever a field of the estimate changes meaning or disappears.
pub const ESTIMATE_SCHEMA_VERSION: u32 = 1;

/// A figure: one value, or the `[low, high]` range a source gives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Figure {
    One(f64),
    Range([f64; 2]),
}

impl Figure {
    pub fn low(self) -> f64 {
        match self {
            Self::One(x) => x,
            Self::Range([a, _]) => a,
        }
    }
    pub fn high(self) -> f64 {
        match self {
            Self::One(x) => x,
            Self::Range([_, b]) => b,
        }
    }
    /// `f` of each end (a decreasing `f` swaps them back into low ≤ high).
    pub fn map(self, f: impl Fn(f64) -> f64) -> Self {
        match self {
            Self::One(x) => Self::One(f(x)),
            Self::Range([a, b]) => {
                let (x, y) = (f(a), f(b));
                Self::Range([x.min(y), x.max(y)])
            }
        }
    }
    fn show(self, digits: usize) -> String {
        match self {
            Self::One(x) => num(x, digits),
            Self::Range([a, b]) => format!("{}–{}", num(a, digits), num(b, digits)),
        }
    }
}

/// A number with thousands separators above 10,000, else with `digits` decimals.
fn num(x: f64, digits: usize) -> String {
    if x.abs() >= 10_000.0 {
        let s = format!("{:.0}", x);
        let (sign, d) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else {
        format!("{x:.digits$}")
    }
}

/// One system or GPU of the library (configs/systems/*.toml).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LibrarySystem {
    pub name: String,
    /// "system" or "gpu" (peaks of one GPU).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_per_node: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mw: Option<Figure>,
    /// Theoretical peak per precision, PFLOP/s.
    #[serde(default)]
    pub peak_pflops: BTreeMap<String, Figure>,
    /// List results, PFLOP/s: hpl, hpl_mxp, hpcg.
    #[serde(default)]
    pub list_pflops: BTreeMap<String, Figure>,
    /// The source of each figure, keyed by its field ("peak_pflops.f16", "gpus", ...).
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

/// configs/systems/, built in: (file stem, text).
pub const LIBRARY: [(&str, &str); 11] = [
    ("el-capitan", include_str!("../../configs/systems/el-capitan.toml")),
    ("aurora", include_str!("../../configs/systems/aurora.toml")),
    ("frontier", include_str!("../../configs/systems/frontier.toml")),
    ("jupiter", include_str!("../../configs/systems/jupiter.toml")),
    ("fugaku", include_str!("../../configs/systems/fugaku.toml")),
    ("fugaku-next", include_str!("../../configs/systems/fugaku-next.toml")),
    ("h100", include_str!("../../configs/systems/h100.toml")),
    ("h200", include_str!("../../configs/systems/h200.toml")),
    ("b200", include_str!("../../configs/systems/b200.toml")),
    ("r100", include_str!("../../configs/systems/r100.toml")),
    ("feynman", include_str!("../../configs/systems/feynman.toml")),
];

impl LibrarySystem {
    /// Parses and checks one system file: known precisions and list names, positive
    /// figures with low ≤ high, and a source for every figure.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let err = |message: String| Error::Config { file: file.to_string(), message };
        let s: LibrarySystem = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        if s.kind != "system" && s.kind != "gpu" {
            return Err(err(format!("kind = \"{}\": allowed: \"system\", \"gpu\"", s.kind)));
        }
        let mut figures: Vec<(String, Figure)> = Vec::new();
        for (p, &f) in &s.peak_pflops {
            p.parse::<Precision>().map_err(|_| err(format!("peak_pflops.{p}: unknown precision (allowed: {})", Precision::allowed())))?;
            figures.push((format!("peak_pflops.{p}"), f));
        }
        for (l, &f) in &s.list_pflops {
            if !["hpl", "hpl_mxp", "hpcg"].contains(&l.as_str()) {
                return Err(err(format!("list_pflops.{l}: unknown list (allowed: hpl, hpl_mxp, hpcg)")));
            }
            figures.push((format!("list_pflops.{l}"), f));
        }
        if let Some(p) = s.power_mw {
            figures.push(("power_mw".into(), p));
        }
        for (key, v) in [("nodes", s.nodes), ("gpus", s.gpus), ("gpus_per_node", s.gpus_per_node), ("cores", s.cores)] {
            if let Some(v) = v {
                figures.push((key.into(), Figure::One(v as f64)));
            }
        }
        for (key, f) in &figures {
            if !(f.low() > 0.0 && f.low() <= f.high() && f.high().is_finite()) {
                return Err(err(format!("{key} = {f:?}: allowed: a positive number, or [low, high] with 0 < low ≤ high")));
            }
            if !s.sources.contains_key(key) {
                return Err(err(format!("{key} has no source: add sources.\"{key}\" = \"where the figure comes from\"")));
            }
        }
        Ok(s)
    }

    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    fn peak(&self, p: &str) -> Option<Figure> {
        self.peak_pflops.get(p).copied()
    }
    fn list(&self, l: &str) -> Option<Figure> {
        self.list_pflops.get(l).copied()
    }
}

/// The built-in library, parsed.
pub fn library() -> Result<Vec<LibrarySystem>> {
    LIBRARY.iter().map(|(stem, text)| LibrarySystem::parse(text, &format!("configs/systems/{stem}.toml"))).collect()
}

/// The values the survey's estimates start from; `--demand key=value` changes them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Demand {
    /// Effective FP16 for AI in 2030, EFLOP/s (survey: ~500).
    pub fp16_ef: f64,
    /// Effective FP64 for simulation in 2030, EFLOP/s (survey: ~10).
    pub fp64_ef: f64,
    /// Effective FP64 per core of real simulation work, GFLOP/s (survey: 12).
    pub gflops_per_core: f64,
    /// GPU performance growth to 2030 (survey: ×10).
    pub gpu_growth: f64,
    /// JUPITER's usable FP16, EFLOP/s, that the survey scales (survey: ~10).
    pub jupiter_usable_ef: f64,
}

impl Default for Demand {
    fn default() -> Self {
        Self { fp16_ef: 500.0, fp64_ef: 10.0, gflops_per_core: 12.0, gpu_growth: 10.0, jupiter_usable_ef: 10.0 }
    }
}

impl Demand {
    pub const KEYS: &'static str = "fp16 (EF), fp64 (EF), per-core (GFLOP/s), growth (×), jupiter-usable (EF)";

    /// Applies "key=value" settings.
    pub fn with(mut self, settings: &[String]) -> Result<Self> {
        for s in settings {
            let bad = || Error::invalid("--demand", s, format!("key=value with a positive number; keys: {}", Self::KEYS));
            let (k, v) = s.split_once('=').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().ok().filter(|v: &f64| *v > 0.0 && v.is_finite()).ok_or_else(bad)?;
            match k.trim() {
                "fp16" => self.fp16_ef = v,
                "fp64" => self.fp64_ef = v,
                "per-core" => self.gflops_per_core = v,
                "growth" => self.gpu_growth = v,
                "jupiter-usable" => self.jupiter_usable_ef = v,
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }
}

/// One measured efficiency: a record's rate over the peaks of its precision.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassEfficiency {
    /// "gemm", "hpl-mxp", "hpl-f64", "stencil-7pt", "himeno", "stencil-27pt".
    pub class: String,
    pub precision: String,
    /// The record's problem, e.g. "n=4096" or "512x256x256".
    pub problem: String,
    pub ranks: usize,
    pub threads_per_rank: usize,
    /// Rate over the theoretical peak of the precision, per repetition: min/median/max.
    pub vs_theoretical: Option<Stats>,
    /// Rate over the FMA kernel's best rate of the precision.
    pub vs_empirical: Stats,
    /// GFLOP/s per core (the run's ranks × threads); per GPU in a calibration of GPUs.
    pub gflops_per_core: Stats,
    /// Stencils: bandwidth over the run's STREAM triad (median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_vs_triad: Option<f64>,
}

/// A row of the survey's table B, with the measured scenario beside it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyRow {
    pub system: String,
    pub gpus: Option<u64>,
    pub fp16_peak_ef: Figure,
    pub hpl_mxp_ef: Figure,
    /// HPL-MxP / FP16 Rpeak: the efficiency the survey's table implies.
    pub implicit_efficiency: Figure,
    /// FP16 Rpeak × the measured HPL-MxP-like efficiency (scenario).
    pub effective_fp16_ef_measured_hpl_mxp: Option<Figure>,
    /// FP16 Rpeak × the measured low-precision GEMM efficiency (scenario).
    pub effective_fp16_ef_measured_gemm: Option<Figure>,
}

/// GPUs one generation needs for the FP16 demand, at one efficiency.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuCount {
    pub gpu: String,
    pub fp16_peak_pf_per_gpu: Figure,
    /// What the efficiency is ("survey: JUPITER's usable share", "measured: ...").
    pub scenario: String,
    pub efficiency: f64,
    /// ceil(demand / (peak × efficiency)); a peak range gives a count range.
    pub gpus: Figure,
}

/// What the FP64 simulation demand needs at one efficiency.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fp64Need {
    pub scenario: String,
    pub efficiency: f64,
    /// FP64 Rpeak that delivers the demand at this efficiency, EFLOP/s.
    pub fp64_peak_ef: f64,
    /// That peak in units of named systems' FP64 Rpeak.
    pub in_systems: BTreeMap<String, f64>,
    /// Cores at this calibration's measured per-core rate of the class (median).
    pub cores_at_measured_rate: Option<f64>,
}

/// The survey's 12 GFLOP/s per core beside per-core peaks.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerCore {
    pub assumed_gflops: f64,
    /// Cores the FP64 demand needs at the assumed rate.
    pub cores_for_fp64_demand: f64,
    /// Per-core peaks and measured rates (GFLOP/s) and the assumption as a fraction of each.
    pub against: Vec<PerCoreRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerCoreRow {
    pub what: String,
    pub gflops_per_core: f64,
    pub assumed_fraction: f64,
}

/// Fugaku NEXT's FP8 target as effective work, and per watt.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPower {
    pub system: String,
    pub precision: String,
    pub peak_ef: Figure,
    pub rows: Vec<PowerRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerRow {
    pub scenario: String,
    pub efficiency: f64,
    pub effective_ef: Figure,
    /// GFLOP/s per watt at each power, keyed "30 MW", "40 MW".
    pub gflops_per_watt: BTreeMap<String, Figure>,
}

/// `--target`: a system's peaks with the measured efficiencies applied.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetEstimate {
    pub system: String,
    pub rows: Vec<TargetRow>,
}

/// One precision of the target at one measured class's efficiency.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRow {
    pub precision: String,
    pub peak_pf: Figure,
    pub class: String,
    pub efficiency: f64,
    pub effective_pf: Figure,
}

/// The estimate document (`effcal estimate --json`); schema: docs/estimate.schema.json.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    pub schema_version: u32,
    pub effcal_version: String,
    pub created: String,
    /// The calibration the efficiencies come from: path, created, CPU (or GPU), ranks ×
    /// threads.
    pub calibration: String,
    /// The GPU the efficiencies were measured on (a calibration of `--device gpu`); absent
    /// for CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// What the reader must know about the peaks the efficiencies are over: a correction
    /// with `--system`, and suspect peaks used under `--allow-suspect-peaks`.
    #[serde(default)]
    pub peak_notes: Vec<String>,
    pub demand: Demand,
    pub assumptions: Vec<String>,
    pub efficiencies: Vec<ClassEfficiency>,
    pub survey_table: Vec<SurveyRow>,
    /// The survey's own arithmetic: JUPITER's GPUs × (demand / JUPITER's usable FP16) /
    /// growth (24,000 × 50 / 10 = 120,000 with its figures).
    pub survey_gpus: f64,
    pub gpus_for_fp16_demand: Vec<GpuCount>,
    pub fp64_simulation: Vec<Fp64Need>,
    pub per_core: PerCore,
    pub fugaku_next: Option<TargetPower>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetEstimate>,
    /// "system: field: source" for every library figure used.
    pub sources: Vec<String>,
}

/// The record's problem size as one number (for "largest") and as text.
fn problem(r: &Record) -> (f64, String) {
    let p = |k: &str| r.params.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    match r.kernel.as_str() {
        "gemm" => (p("m") * p("n") * p("k"), format!("n={}", p("n"))),
        "hpl-mxp" => (p("n"), format!("n={}", p("n"))),
        _ => {
            let size: Vec<f64> = r.params.get("size").and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
            (size.iter().product(), size.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("x"))
        }
    }
}

/// Efficiencies of every valid record of the calibration, the largest problem of each
/// (class, precision); a stencil's f16-arithmetic records (`arithmetic_impl`) are an
/// accuracy what-if beside the wide ones (and where emulated, measure the emulation), so
/// they are left out.
pub fn efficiencies(cal: &Calibration) -> Vec<ClassEfficiency> {
    let Some(peaks) = &cal.peaks else { return Vec::new() };
    let mut best: BTreeMap<(String, String), (f64, &Record)> = BTreeMap::new();
    for r in cal.records.iter().filter(|r| r.valid && !r.params.contains_key("arithmetic_impl")) {
        let class = if r.kernel == "hpl-mxp" && r.precision == "f64" { "hpl-f64".to_string() } else { r.kernel.clone() };
        let size = problem(r).0;
        let e = best.entry((class, r.precision.clone())).or_insert((size, r));
        if size >= e.0 {
            *e = (size, r);
        }
    }
    let order = |c: &str| ["gemm", "hpl-mxp", "hpl-f64", "stencil-7pt", "himeno", "stencil-27pt"].iter().position(|x| *x == c).unwrap_or(9);
    let mut out: Vec<ClassEfficiency> = best
        .into_iter()
        .filter_map(|((class, precision), (_, r))| {
            let peak = peaks.per_precision.get(&precision)?;
            let over = |d: f64| Stats { min: r.gflops.min / d, median: r.gflops.median / d, max: r.gflops.max / d };
            let cores = peaks.gpus.unwrap_or(peaks.cores).max(1) as f64;
            Some(ClassEfficiency {
                class,
                precision,
                problem: problem(r).1,
                ranks: cal.system.ranks,
                threads_per_rank: cal.system.threads_per_rank,
                vs_theoretical: peak.theoretical_gflops.map(over),
                vs_empirical: over(peak.empirical_gflops),
                gflops_per_core: over(cores),
                bandwidth_vs_triad: r.bandwidth_gbs.as_ref().zip(peaks.stream_triad_gbs).map(|(b, t)| b.median / t),
            })
        })
        .collect();
    let precisions = ["f64", "f64_fma", "f32", "tf32", "bf16", "f16", "e4m3", "e5m2", "int8"];
    out.sort_by_key(|e| (order(&e.class), precisions.iter().position(|p| *p == e.precision)));
    out
}

/// The median efficiency vs theoretical of the first of `choices` (class, precision) that
/// was measured, with its label.
fn pick(effs: &[ClassEfficiency], choices: &[(&str, &str)]) -> Option<(String, f64)> {
    choices.iter().find_map(|(c, p)| {
        let e = effs.iter().find(|e| e.class == *c && e.precision == *p)?;
        Some((format!("measured {} {} ({})", e.class, e.precision, e.problem), e.vs_theoretical?.median))
    })
}

/// The library figures an estimate cites, "system: field: source", each once, in the order
/// first used.
#[derive(Default)]
struct Sources(Vec<String>);

impl Sources {
    fn cite(&mut self, s: &LibrarySystem, key: &str) {
        if let Some(src) = s.sources.get(key) {
            let line = format!("{}: {key}: {src}", s.name);
            if !self.0.contains(&line) {
                self.0.push(line);
            }
        }
    }
}

/// A measured efficiency a section applies: its label and the median vs theoretical.
type Scenario = Option<(String, f64)>;

/// The scenarios of the calibration: HPL-MxP-like, GEMM-like at 16 bits, GEMM-like at FP8,
/// and the GPU they were measured on (None: a CPU).
struct Measured {
    hpl_mxp: Scenario,
    gemm16: Scenario,
    gemm8: Scenario,
    gpu: Option<String>,
}

impl Measured {
    /// How an efficiency measured here is labelled where it is applied to `to` (a library
    /// GPU's name; None: a system of unnamed GPUs): a CPU's is a scenario; a GPU's is
    /// "measured on" its own generation and a scenario on any other.
    fn label(&self, measured: &str, to: Option<&str>) -> String {
        match (&self.gpu, to) {
            (None, _) => format!("{measured}, scenario"),
            (Some(gpu), Some(to)) if same_generation(gpu, to) => format!("{measured}, measured on {gpu}"),
            (Some(gpu), Some(to)) => format!("{measured}, measured on {gpu}, applied to {to}: a scenario"),
            (Some(gpu), None) => format!("{measured}, measured on {gpu}, applied to other GPUs: a scenario"),
        }
    }
}

/// Whether the device `gpu` (e.g. "NVIDIA H100 80GB HBM3") is of the library generation
/// `generation` (e.g. "NVIDIA H100"): the generation's model ("H100") is a word of the
/// device's name.
fn same_generation(gpu: &str, generation: &str) -> bool {
    let model = generation.trim_start_matches("NVIDIA ").split_whitespace().next().unwrap_or("");
    !model.is_empty() && gpu.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w.eq_ignore_ascii_case(model))
}

/// The estimate of `cal` (read from `cal_path`) with `demand`, and `target` when given. A
/// theoretical peak the estimate divides by that the guard marked suspect refuses the
/// calibration, unless `allow_suspect` (then the estimate says which it used).
pub fn estimate(cal: &Calibration, cal_path: &str, demand: &Demand, target: Option<&LibrarySystem>, allow_suspect: bool) -> Result<Estimate> {
    let lib = library()?;
    let effs = efficiencies(cal);
    let peak_notes = peak_notes(cal, &effs, cal_path, allow_suspect)?;
    let measured = Measured {
        hpl_mxp: pick(&effs, &[("hpl-mxp", "f16"), ("hpl-mxp", "bf16")]),
        gemm16: pick(&effs, &[("gemm", "f16"), ("gemm", "bf16")]),
        gemm8: pick(&effs, &[("gemm", "e4m3"), ("gemm", "e5m2")]),
        gpu: cal.system.gpu.as_ref().map(|g| g.name.clone()),
    };
    let mut sources = Sources::default();
    let survey_table = survey_table(&lib, &measured, &mut sources);
    let jupiter = find(&lib, "JUPITER").ok_or_else(|| Error::Config { file: "configs/systems".into(), message: "JUPITER is missing from the library".into() })?;
    let jupiter_gpus = jupiter.gpus.unwrap_or(0) as f64;
    let gpus_for_fp16_demand = gpu_counts(&lib, jupiter, demand, &survey_table, &measured, &mut sources);
    let fp64_simulation = fp64_simulation(&lib, demand, &effs, measured.gpu.is_some(), &mut sources);
    let per_core = per_core(cal, &lib, demand, &effs, &mut sources);
    let fugaku_next = fugaku_next(&lib, &measured, &mut sources);
    let target = target.map(|t| target_rows(t, &effs, &mut sources));
    let sys = &cal.system;
    let on = match &measured.gpu {
        Some(gpu) => format!("{} × {gpu}", sys.ranks),
        None => format!("{}, {} rank(s) × {} thread(s)", sys.cpu_model, sys.ranks, sys.threads_per_rank),
    };
    Ok(Estimate {
        schema_version: ESTIMATE_SCHEMA_VERSION,
        effcal_version: env!("CARGO_PKG_VERSION").to_string(),
        created: calibration::now_rfc3339(),
        calibration: format!("{cal_path} (created {}, {on})", cal.created),
        gpu: measured.gpu.clone(),
        peak_notes,
        demand: demand.clone(),
        assumptions: assumptions(cal, demand, jupiter_gpus),
        efficiencies: effs,
        survey_table,
        survey_gpus: survey_arithmetic(jupiter_gpus, demand),
        gpus_for_fp16_demand,
        fp64_simulation,
        per_core,
        fugaku_next,
        target,
        sources: sources.0,
    })
}

fn find<'a>(lib: &'a [LibrarySystem], name: &str) -> Option<&'a LibrarySystem> {
    lib.iter().find(|s| s.name == name)
}

/// What the reader must know about the denominators: a `--system` correction, and the
/// suspect peaks used under `--allow-suspect-peaks`; without it a suspect denominator (of
/// a measured class, or f64 for the per-core figures) refuses the calibration.
fn peak_notes(cal: &Calibration, effs: &[ClassEfficiency], cal_path: &str, allow_suspect: bool) -> Result<Vec<String>> {
    let mut notes: Vec<String> = cal.peaks.iter().filter_map(|p| p.corrected.clone()).collect();
    let suspects: Vec<String> = cal
        .peaks
        .iter()
        .flat_map(|p| p.suspects())
        .filter(|(name, _)| *name == "f64" || effs.iter().any(|e| e.precision == *name))
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    if suspects.is_empty() {
        return Ok(notes);
    }
    if !allow_suspect {
        return Err(Error::invalid(
            "--calibration",
            cal_path,
            format!(
                "theoretical peaks that pass the guard; these do not: {}. Correct them with --system FILE (a [system] with clock_ghz and flop_per_cycle), or pass --allow-suspect-peaks to use them anyway",
                suspects.join("; ")
            ),
        ));
    }
    notes.extend(suspects.iter().map(|s| format!("--allow-suspect-peaks: a suspect theoretical peak is used: {s}")));
    Ok(notes)
}

/// The survey's table B, the efficiencies it implies, and the measured scenarios beside.
fn survey_table(lib: &[LibrarySystem], m: &Measured, src: &mut Sources) -> Vec<SurveyRow> {
    let mut rows = Vec::new();
    for s in lib.iter().filter(|s| s.kind == "system" && s.gpus.is_some()) {
        let (Some(f16), Some(mxp)) = (s.peak("f16"), s.list("hpl_mxp")) else { continue };
        src.cite(s, "peak_pflops.f16");
        src.cite(s, "list_pflops.hpl_mxp");
        src.cite(s, "gpus");
        let ef = |f: Figure| f.map(|x| x / 1000.0);
        rows.push(SurveyRow {
            system: s.name.clone(),
            gpus: s.gpus,
            fp16_peak_ef: ef(f16),
            hpl_mxp_ef: ef(mxp),
            implicit_efficiency: Figure::One(mxp.low() / f16.low()),
            effective_fp16_ef_measured_hpl_mxp: m.hpl_mxp.as_ref().map(|(_, e)| ef(f16).map(|x| x * e)),
            effective_fp16_ef_measured_gemm: m.gemm16.as_ref().map(|(_, e)| ef(f16).map(|x| x * e)),
        });
    }
    rows
}

/// GPUs per generation for the FP16 demand: at the survey's usable share of JUPITER, at the
/// list's lowest and highest implicit efficiencies, and at the measured scenarios.
fn gpu_counts(lib: &[LibrarySystem], jupiter: &LibrarySystem, demand: &Demand, survey: &[SurveyRow], m: &Measured, src: &mut Sources) -> Vec<GpuCount> {
    let jupiter_f16_ef = jupiter.peak("f16").map_or(f64::NAN, |f| f.low() / 1000.0);
    let mut scenarios: Vec<(String, f64)> = vec![(format!("survey: JUPITER's usable FP16, {} of {jupiter_f16_ef} EF", demand.jupiter_usable_ef), demand.jupiter_usable_ef / jupiter_f16_ef)];
    let implicit: Vec<(&str, f64)> = survey.iter().map(|r| (r.system.as_str(), r.implicit_efficiency.low())).collect();
    if let Some((name, lo)) = implicit.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)) {
        scenarios.push((format!("HPL-MxP list, lowest ({name})"), lo));
    }
    if let Some((name, hi)) = implicit.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) {
        scenarios.push((format!("HPL-MxP list, highest ({name})"), hi));
    }
    let mut counts = Vec::new();
    for g in lib.iter().filter(|s| s.kind == "gpu") {
        let Some(peak) = g.peak("f16") else { continue };
        src.cite(g, "peak_pflops.f16");
        let measured = [&m.hpl_mxp, &m.gemm16].into_iter().flatten().map(|(l, e)| (m.label(l, Some(&g.name)), *e));
        for (scenario, eff) in scenarios.iter().cloned().chain(measured) {
            counts.push(GpuCount {
                gpu: g.name.clone(),
                fp16_peak_pf_per_gpu: peak,
                scenario,
                efficiency: eff,
                gpus: peak.map(|p| (demand.fp16_ef * 1000.0 / (p * eff)).ceil()),
            });
        }
    }
    counts
}

/// The FP64 Rpeak the simulation demand needs at each measured f64 class (GEMM aside), in
/// units of Fugaku and El Capitan, and the cores at the class's measured per-core rate.
fn fp64_simulation(lib: &[LibrarySystem], demand: &Demand, effs: &[ClassEfficiency], per_gpu: bool, src: &mut Sources) -> Vec<Fp64Need> {
    let named: Vec<&LibrarySystem> = ["Fugaku", "El Capitan"].iter().filter_map(|n| find(lib, n)).collect();
    let mut needs = Vec::new();
    for e in effs.iter().filter(|e| e.precision == "f64" && e.class != "gemm") {
        let Some(eff) = e.vs_theoretical.map(|s| s.median) else { continue };
        let peak_ef = demand.fp64_ef / eff;
        let mut in_systems = BTreeMap::new();
        for s in &named {
            if let Some(p) = s.peak("f64") {
                src.cite(s, "peak_pflops.f64");
                in_systems.insert(s.name.clone(), peak_ef * 1000.0 / p.low());
            }
        }
        needs.push(Fp64Need {
            scenario: format!("measured {} f64 ({})", e.class, e.problem),
            efficiency: eff,
            fp64_peak_ef: peak_ef,
            in_systems,
            // Cores at a GPU's rate per GPU would be no count of cores.
            cores_at_measured_rate: (!per_gpu).then(|| demand.fp64_ef * 1e9 / e.gflops_per_core.median),
        });
    }
    needs
}

/// The survey's GFLOP/s per core against this calibration's per-core peaks and measured
/// rates (a CPU calibration's), and against an A64FX core.
fn per_core(cal: &Calibration, lib: &[LibrarySystem], demand: &Demand, effs: &[ClassEfficiency], src: &mut Sources) -> PerCore {
    let mut against = Vec::new();
    let cpu = cal.peaks.as_ref().filter(|p| p.gpus.is_none());
    if let Some(f64_peak) = cpu.and_then(|p| p.per_precision.get("f64").map(|x| (x.clone(), p.cores.max(1) as f64))) {
        let (pk, cores) = f64_peak;
        if let Some(t) = pk.theoretical_gflops {
            against.push(("this calibration: f64 theoretical peak per core".to_string(), t / cores));
        }
        against.push(("this calibration: f64 FMA kernel per core (empirical peak)".to_string(), pk.empirical_gflops / cores));
    }
    for e in effs.iter().filter(|e| cpu.is_some() && e.precision == "f64" && e.class != "gemm") {
        against.push((format!("this calibration: measured {} f64 ({}) per core", e.class, e.problem), e.gflops_per_core.median));
    }
    if let Some((f, p, c)) = find(lib, "Fugaku").and_then(|f| Some((f, f.peak("f64")?, f.cores?))) {
        src.cite(f, "cores");
        against.push(("Fugaku: f64 peak per core (A64FX)".to_string(), p.low() * 1e6 / c as f64));
    }
    PerCore {
        assumed_gflops: demand.gflops_per_core,
        cores_for_fp64_demand: demand.fp64_ef * 1e9 / demand.gflops_per_core,
        against: against.into_iter().map(|(what, g)| PerCoreRow { what, gflops_per_core: g, assumed_fraction: demand.gflops_per_core / g }).collect(),
    }
}

/// Fugaku NEXT's FP8 target as effective EF and GFLOP/s per watt at each end of its power.
fn fugaku_next(lib: &[LibrarySystem], m: &Measured, src: &mut Sources) -> Option<TargetPower> {
    let s = find(lib, "Fugaku NEXT (target)")?;
    let peak = s.peak("e4m3")?;
    src.cite(s, "peak_pflops.e4m3");
    src.cite(s, "power_mw");
    let peak_ef = peak.map(|x| x / 1000.0);
    let power = s.power_mw.unwrap_or(Figure::One(f64::NAN));
    let mut rows = vec![("peak (efficiency 1)".to_string(), 1.0)];
    rows.extend(m.gemm8.clone().map(|(l, e)| (m.label(&format!("GEMM-like: {l}"), None), e)));
    rows.extend(m.hpl_mxp.clone().map(|(l, e)| (m.label(&format!("HPL-MxP-like: {l}"), None), e)));
    let rows = rows
        .into_iter()
        .map(|(scenario, eff)| {
            let effective = peak_ef.map(|x| x * eff);
            let per_watt = [power.low(), power.high()].into_iter().map(|mw| (format!("{mw} MW"), effective.map(|ef| ef * 1e18 / (mw * 1e6) / 1e9))).collect();
            PowerRow { scenario, efficiency: eff, effective_ef: effective, gflops_per_watt: per_watt }
        })
        .collect();
    Some(TargetPower { system: s.name.clone(), precision: "e4m3".into(), peak_ef, rows })
}

/// `--target`: each of the system's peaks times the efficiencies of the matching classes.
fn target_rows(t: &LibrarySystem, effs: &[ClassEfficiency], src: &mut Sources) -> TargetEstimate {
    let mut rows = Vec::new();
    for (p, &peak) in &t.peak_pflops {
        src.cite(t, &format!("peak_pflops.{p}"));
        let classes: Vec<(&str, &str)> = match p.as_str() {
            "f64" => vec![("gemm", "f64"), ("hpl-f64", "f64"), ("stencil-7pt", "f64"), ("himeno", "f64"), ("stencil-27pt", "f64")],
            "f32" => vec![("gemm", "f32"), ("himeno", "f32")],
            "f16" | "bf16" => vec![("gemm", p), ("hpl-mxp", p)],
            _ => vec![("gemm", p)],
        };
        for (c, q) in classes {
            if let Some(e) = effs.iter().find(|e| e.class == c && e.precision == q).and_then(|e| e.vs_theoretical.map(|s| s.median)) {
                rows.push(TargetRow { precision: p.clone(), peak_pf: peak, class: format!("{c} {q}"), efficiency: e, effective_pf: peak.map(|x| x * e) });
            }
        }
    }
    TargetEstimate { system: t.name.clone(), rows }
}

/// Every assumption the estimate adds, printed with it.
fn assumptions(cal: &Calibration, demand: &Demand, jupiter_gpus: f64) -> Vec<String> {
    let sys = &cal.system;
    let (measured, applied) = match &sys.gpu {
        Some(g) => (
            format!(
                "Efficiencies are measured on {} × {} (one per rank): a record's rate over the vendor's dense peak of its precision × GPUs (configs/gpus.toml entry {}; peaks.per_precision.<p>.theoretical_gflops of the calibration), spread = min/median/max over repetitions; estimates use the median. GFLOP/s per core is per GPU here, and the per-core section uses no figure of this calibration.",
                sys.ranks,
                g.name,
                g.spec_entry.as_deref().unwrap_or("none: no theoretical peak")
            ),
            format!("A GPU-measured efficiency is labelled \"measured on {}\" where applied to that GPU's generation; applied to another generation (or to a system's unnamed GPUs) it is a labelled scenario: the same share of a different peak.", g.name),
        ),
        None => (
            format!(
                "Efficiencies are measured on {} ({} rank(s) × {} thread(s), {} cores): a record's rate over the theoretical peak of its precision on those cores (peaks.per_precision.<p>.theoretical_gflops of the calibration), spread = min/median/max over repetitions; estimates use the median.",
                sys.cpu_model,
                sys.ranks,
                sys.threads_per_rank,
                cal.peaks.as_ref().map_or(0, |p| p.cores)
            ),
            "Applying a CPU-measured efficiency to a GPU system is a labelled scenario: it says what a machine that loses the same share of its peak to the same kind of work would deliver, not what that GPU does.".into(),
        ),
    };
    vec![
        measured,
        applied,
        "Each (class, precision) uses the calibration's largest valid problem of it; invalid (FAILED) records are not used.".into(),
        "HPL-MxP-like efficiency: the f16 record if measured, else bf16, against that precision's peak on the measured CPU (where the CPU has no f16 arithmetic, f16 is computed in f32 and its peak is f32's). GEMM-like: the same choice among GEMM records; FP8: e4m3, else e5m2.".into(),
        "The survey's implicit efficiency of a system is its HPL-MxP result over its FP16 Rpeak (survey table B).".into(),
        format!(
            "The survey's arithmetic: {} EF = {} × JUPITER's ~{} EF of usable FP16, and GPU performance grows ×{} by 2030, so GPUs = {} × {} / {}.",
            demand.fp16_ef,
            demand.fp16_ef / demand.jupiter_usable_ef,
            demand.jupiter_usable_ef,
            demand.gpu_growth,
            jupiter_gpus,
            demand.fp16_ef / demand.jupiter_usable_ef,
            demand.gpu_growth
        ),
        "GPU counts are ceil(demand / (FP16 peak per GPU × efficiency)); a per-GPU peak given as a range gives a range of counts (the higher peak, the fewer GPUs). Growth beyond the named generations is not assumed.".into(),
        format!("FP64 simulation: the FP64 Rpeak that delivers {} EF at an efficiency is {} EF / efficiency; cores at a measured per-core rate are {} EF / that rate.", demand.fp64_ef, demand.fp64_ef, demand.fp64_ef),
        format!("{} GFLOP/s per core is the survey's assumed effective FP64 rate of real simulation work per core (from OMol25: 6e9 core-hours ≈ 0.1 EF × 1 month).", demand.gflops_per_core),
        "GFLOP/s per watt = effective FLOP/s / whole-system power, at each end of the stated power.".into(),
    ]
}

/// The survey's GPU count: JUPITER's GPUs × (demand / JUPITER's usable FP16) / growth.
pub fn survey_arithmetic(jupiter_gpus: f64, d: &Demand) -> f64 {
    jupiter_gpus * (d.fp16_ef / d.jupiter_usable_ef) / d.gpu_growth
}

/// A fraction as a Markdown percentage, "12.3 %".
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn opt(f: Option<Figure>, digits: usize) -> String {
    f.map_or("–".into(), |f| f.show(digits))
}

/// The estimate as Markdown.
pub fn markdown(e: &Estimate) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# effcal estimate\n\nCalibration: {}\n", e.calibration);
    for n in &e.peak_notes {
        let _ = writeln!(s, "**Peaks:** {n}.\n");
    }
    let _ = writeln!(s, "## Measured efficiencies (rate / theoretical peak of the precision; min / median / max over repetitions)\n");
    let unit = if e.gpu.is_some() { "GPU" } else { "core" };
    let _ = writeln!(s, "| class | precision | problem | vs theoretical | vs empirical (median) | GFLOP/s per {unit} | bandwidth / triad |\n|---|---|---|---|---|---|---|");
    for c in &e.efficiencies {
        let th = c.vs_theoretical.map_or("–".into(), |t| format!("{} / {} / {}", pct(t.min), pct(t.median), pct(t.max)));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {th} | {} | {:.2} | {} |",
            c.class,
            c.precision,
            c.problem,
            pct(c.vs_empirical.median),
            c.gflops_per_core.median,
            c.bandwidth_vs_triad.map_or("–".into(), pct)
        );
    }
    let _ = writeln!(s, "\n## The survey's table B, with the measured efficiencies as scenarios\n");
    let _ = writeln!(s, "| system | GPUs | FP16 Rpeak (EF) | HPL-MxP (EF) | implicit efficiency | FP16 EF at measured HPL-MxP-like | FP16 EF at measured GEMM-like |\n|---|---|---|---|---|---|---|");
    for r in &e.survey_table {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.system,
            r.gpus.map_or("–".into(), |g| num(g as f64, 0)),
            r.fp16_peak_ef.show(1),
            r.hpl_mxp_ef.show(2),
            pct(r.implicit_efficiency.low()),
            opt(r.effective_fp16_ef_measured_hpl_mxp, 2),
            opt(r.effective_fp16_ef_measured_gemm, 2)
        );
    }
    let _ = writeln!(s, "\nThe survey's own arithmetic: {} GPUs.", num(e.survey_gpus, 0));
    let _ = writeln!(s, "\n## GPUs for {} EF of effective FP16\n", e.demand.fp16_ef);
    let _ = writeln!(s, "| GPU | FP16 PF per GPU | scenario | efficiency | GPUs |\n|---|---|---|---|---|");
    for g in &e.gpus_for_fp16_demand {
        let _ = writeln!(s, "| {} | {} | {} | {} | {} |", g.gpu, g.fp16_peak_pf_per_gpu.show(1), g.scenario, pct(g.efficiency), g.gpus.show(0));
    }
    let _ = writeln!(s, "\n## {} EF of FP64 simulation\n", e.demand.fp64_ef);
    let names: Vec<String> = e.fp64_simulation.first().map(|f| f.in_systems.keys().cloned().collect()).unwrap_or_default();
    let _ = writeln!(s, "| scenario | efficiency | FP64 Rpeak needed (EF) | {} | cores at the measured per-core rate |\n|---|---|---|{}---|", names.iter().map(|n| format!("× {n} FP64 Rpeak")).collect::<Vec<_>>().join(" | "), "---|".repeat(names.len()));
    for f in &e.fp64_simulation {
        let cols: Vec<String> = names.iter().map(|n| f.in_systems.get(n).map_or("–".into(), |x| format!("{x:.1}"))).collect();
        let _ = writeln!(s, "| {} | {} | {:.1} | {} | {} |", f.scenario, pct(f.efficiency), f.fp64_peak_ef, cols.join(" | "), f.cores_at_measured_rate.map_or("–".into(), |c| format!("{c:.3e}")));
    }
    let p = &e.per_core;
    let _ = writeln!(s, "\n## {} GFLOP/s per core\n\nAt {} GFLOP/s per core, {} EF of FP64 needs {:.3e} cores.\n", p.assumed_gflops, p.assumed_gflops, e.demand.fp64_ef, p.cores_for_fp64_demand);
    let _ = writeln!(s, "| against | GFLOP/s per core | {} GFLOP/s is |\n|---|---|---|", p.assumed_gflops);
    for r in &p.against {
        let _ = writeln!(s, "| {} | {:.2} | {} |", r.what, r.gflops_per_core, pct(r.assumed_fraction));
    }
    if let Some(f) = &e.fugaku_next {
        let powers: Vec<String> = f.rows.first().map(|r| r.gflops_per_watt.keys().cloned().collect()).unwrap_or_default();
        let _ = writeln!(s, "\n## {}: {} EF of {}\n", f.system, f.peak_ef.show(0), f.precision);
        let _ = writeln!(s, "| scenario | efficiency | effective EF | {} |\n|---|---|---|{}", powers.iter().map(|p| format!("GFLOP/s/W at {p}")).collect::<Vec<_>>().join(" | "), "---|".repeat(powers.len()));
        for r in &f.rows {
            let cols: Vec<String> = powers.iter().map(|p| r.gflops_per_watt.get(p).map_or("–".into(), |x| x.show(0))).collect();
            let _ = writeln!(s, "| {} | {} | {} | {} |", r.scenario, pct(r.efficiency), r.effective_ef.show(1), cols.join(" | "));
        }
    }
    if let Some(t) = &e.target {
        let _ = writeln!(s, "\n## Target: {}\n\n| precision | peak (PF) | class | efficiency | effective (PF) |\n|---|---|---|---|---|", t.system);
        for r in &t.rows {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} |", r.precision, r.peak_pf.show(1), r.class, pct(r.efficiency), r.effective_pf.show(1));
        }
    }
    let _ = writeln!(s, "\n## Assumptions\n");
    for a in &e.assumptions {
        let _ = writeln!(s, "- {a}");
    }
    let _ = writeln!(s, "\n## Sources\n");
    for src in &e.sources {
        let _ = writeln!(s, "- {src}");
    }
    s
}

/// The JSON Schema of [`Estimate`], pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Estimate);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_parses_and_every_figure_has_a_source() {
        let lib = library().unwrap();
        assert_eq!(lib.len(), LIBRARY.len());
        let e = LibrarySystem::parse("name = \"x\"\nkind = \"gpu\"\n[peak_pflops]\nf16 = 1.0\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "config x.toml: peak_pflops.f16 has no source: add sources.\"peak_pflops.f16\" = \"where the figure comes from\"");
        let e = LibrarySystem::parse("name = \"x\"\nkind = \"tpu\"\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "config x.toml: kind = \"tpu\": allowed: \"system\", \"gpu\"");
        let e = LibrarySystem::parse("name = \"x\"\nkind = \"gpu\"\n[peak_pflops]\nf16 = [5.0, 4.0]\n[sources]\n\"peak_pflops.f16\" = \"s\"\n", "x.toml").unwrap_err().to_string();
        assert!(e.contains("[low, high] with 0 < low ≤ high"), "{e}");
    }

    #[test]
    fn the_survey_arithmetic_from_its_own_figures() {
        // 24,000 × (500 / 10) / 10 = 120,000.
        assert_eq!(survey_arithmetic(24_000.0, &Demand::default()), 120_000.0);
        let lib = library().unwrap();
        let implicit = |name: &str| {
            let s = lib.iter().find(|s| s.name == name).unwrap();
            s.list("hpl_mxp").unwrap().low() / s.peak("f16").unwrap().low()
        };
        // The survey's implicit efficiencies: El Capitan 0.57, Aurora 0.22, Frontier 0.79, JUPITER 0.26.
        for (name, want) in [("El Capitan", 0.57), ("Aurora", 0.22), ("Frontier", 0.79), ("JUPITER", 0.26)] {
            assert!((implicit(name) - want).abs() < 0.005, "{name}: {}", implicit(name));
        }
        let d = Demand::default().with(&["fp16=1000".into(), "growth=20".into()]).unwrap();
        assert_eq!(survey_arithmetic(24_000.0, &d), 120_000.0);
        let e = Demand::default().with(&["fp32=1".into()]).unwrap_err().to_string();
        assert!(e.starts_with("invalid --demand 'fp32=1': key=value with a positive number; keys: fp16 (EF)"), "{e}");
    }

    #[test]
    fn figures_keep_low_and_high_in_order() {
        let r = Figure::Range([2.2, 2.5]).map(|p| (500_000.0 / (p * 0.5)).ceil());
        assert_eq!(r, Figure::Range([400_000.0, 454_546.0]));
        assert_eq!(num(120_000.0, 0), "120,000");
        assert_eq!(num(0.5, 2), "0.50");
    }
}
