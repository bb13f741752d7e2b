//! The calibration document: what effcal measured, in fixed snake_case fields that
//! capacity estimators read. `effcal schema` prints its JSON Schema (generated from these
//! types); docs/calibration.schema.json is that output, and the tests keep them equal.
//!
//! Units: GFLOP/s (1e9 FLOP/s), GB/s (1e9 B/s), seconds, bytes. Rates are aggregates over
//! all ranks of the run; every `Stats` is min/median/max over the timed repetitions.

use crate::error::{Error, Result};
use crate::timing::Stats;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped whenever a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub schema_version: u32,
    pub effcal_version: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The command line of rank 0.
    pub command: String,
    pub system: System,
    pub peaks: Option<Peaks>,
    pub records: Vec<Record>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct System {
    /// Host of rank 0.
    pub host: String,
    /// Distinct hosts of the run, in rank order of first appearance.
    pub hosts: Vec<String>,
    pub cpu_model: String,
    /// Physical cores of rank 0's node.
    pub cores_per_node: usize,
    pub numa_nodes: usize,
    /// Last-level cache, bytes.
    pub llc_bytes: u64,
    pub ranks: usize,
    pub threads_per_rank: usize,
    /// Core clock under load, GHz, measured by a dependent-add chain on every thread
    /// (mean); null where it could not be measured.
    pub clock_ghz_measured: Option<f64>,
    pub cpu_features: Vec<String>,
    pub mpi_library: String,
    /// Each rank's host and cpuset.
    pub bindings: Vec<Binding>,
    /// Memory of rank 0's node this run may use, bytes (MemTotal, or the job's cgroup limit
    /// when lower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes_per_node: Option<u64>,
    /// The plan's `[system]` description as given (name, peaks' inputs, sources); absent
    /// when the plan has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<crate::config::SystemSection>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub rank: usize,
    pub host: String,
    /// CPUs in the rank's affinity mask, e.g. "0-1".
    pub cpus: String,
    pub threads: usize,
    /// "launcher": the rank kept the cpuset its launcher bound it to; "divided": the ranks
    /// of the node shared one cpuset and effcal gave each its own cores of it.
    #[serde(default)]
    pub placement: String,
}

/// Peaks of the cores this run used (ranks × threads per rank).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Peaks {
    /// The clock the theoretical peaks use, GHz.
    pub clock_ghz: Option<f64>,
    /// "measured" or "config".
    pub clock_source: String,
    /// Cores the peaks are for: ranks × threads per rank.
    pub cores: usize,
    /// Keyed by precision name (f64, f32, bf16, f16, e4m3, e5m2).
    pub per_precision: BTreeMap<String, PrecisionPeak>,
    /// STREAM triad bandwidth, best repetition (GB/s, STREAM byte convention); null when
    /// the command did not measure it (`effcal gemm`).
    pub stream_triad_gbs: Option<f64>,
    pub stream_triad: Option<Triad>,
    /// Theoretical memory bandwidth of the nodes of the run (GB/s): the plan's
    /// system.memory_bandwidth_gbs per node × nodes; null when the plan does not give it
    /// (it cannot be detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth_gbs: Option<f64>,
    /// Where memory_bandwidth_gbs comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth_source: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionPeak {
    /// The arithmetic this peak measures: the precision itself where the CPU has it
    /// natively (f64, f32, bf16 with `vdpbf16ps`), f32 where the format is computed by
    /// conversion to f32 (f16 and FP8 on CPUs; bf16 without AVX512_BF16).
    pub compute_precision: String,
    /// cores × clock × FLOP/cycle/core; null when neither detection nor config knows.
    pub theoretical_gflops: Option<f64>,
    pub flop_per_cycle_per_core: Option<f64>,
    /// Where FLOP/cycle comes from ("config", or "detected: ...").
    pub flop_per_cycle_source: String,
    /// Best repetition of the register-only FMA kernel on all cores.
    pub empirical_gflops: f64,
    pub empirical: Stats,
    /// Instruction set of the FMA kernel (e.g. "avx512f"), or "f32" when borrowed.
    pub isa: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triad {
    /// Elements per array per rank (f64).
    pub elements_per_rank: usize,
    /// Bytes counted per element: 24 (2 loads + 1 store, no write-allocate).
    pub bytes_per_element: usize,
    pub gbs: Stats,
    pub valid: bool,
}

/// One measured kernel × precision × size.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// "gemm", ...
    pub kernel: String,
    /// Storage precision of the inputs.
    pub precision: String,
    /// Kernel parameters: sizes (m, n, k), ranks, threads_per_rank, scaling, path, ...
    pub params: BTreeMap<String, serde_json::Value>,
    /// How FLOPs are counted, e.g. "2mnk per rank".
    pub flop_convention: String,
    /// Seconds per repetition, maximum over ranks.
    pub time_s: Stats,
    /// Aggregate over ranks.
    pub gflops: Stats,
    pub efficiency: Efficiency,
    pub accuracy: Accuracy,
    /// True when the result passed its validation.
    pub valid: bool,
    /// Why the result is not valid (null when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Kernel-specific measurements beyond the common fields. HPL-MxP: lu_time_s and
    /// lu_gflops (Stats), lu_efficiency (vs_theoretical/vs_empirical of the LU-only
    /// rate), refine_time_s (Stats), restarts, phases_s (seconds per phase, median over
    /// repetitions of the maximum over ranks), speedup_vs_f64 (when f64 ran in the same
    /// invocation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, serde_json::Value>,
    /// Stencils: effective bandwidth, GB/s (STREAM convention: the bytes a sweep must move
    /// with perfect reuse, see docs/methodology.md), aggregate over ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbs: Option<Stats>,
    /// Stencils: a checksum of the final field, exact and independent of the decomposition
    /// (the wrapping sum of the f64 bit patterns of every point), 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// Median rate over peak. Stencils are measured against memory bandwidth instead:
/// vs_theoretical is bandwidth_gbs over peaks.memory_bandwidth_gbs (the plan's), vs_empirical
/// over the STREAM triad of the same run.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    pub vs_theoretical: Option<f64>,
    pub vs_empirical: Option<f64>,
}

impl Efficiency {
    /// `gflops` over the peaks of `precision` (null where a peak is unknown).
    pub fn of(gflops: f64, peaks: Option<&Peaks>, precision: effcal_kernels::Precision) -> Self {
        let peak = peaks.and_then(|p| p.per_precision.get(precision.name()));
        Self {
            vs_theoretical: peak.and_then(|p| p.theoretical_gflops).map(|t| gflops / t),
            vs_empirical: peak.map(|p| gflops / p.empirical_gflops),
        }
    }
}

/// How accurate the result was, and the bound it was validated against. Which fields
/// are present depends on the kernel: GEMM records carry the error fields, HPL-MxP
/// records the residual fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accuracy {
    /// GEMM: max over sampled entries and ranks of |c − Σab| / Σ|a||b| with the unrounded
    /// inputs, the reference summed in twice-f64 precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_error_vs_f64: Option<f64>,
    /// GEMM: the same against the stored (rounded) inputs: the arithmetic alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_error_vs_rounded: Option<f64>,
    /// GEMM: the bound rel_error_vs_rounded must meet: (k + 4)·u of the accumulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arithmetic_bound: Option<f64>,
    /// GEMM: the size rel_error_vs_f64 is expected below: 2u + u² + arithmetic_bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_error: Option<f64>,
    /// GEMM: sampled entries per rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// HPL-MxP: ‖Ax−b‖∞ / ((‖A‖∞‖x‖∞ + ‖b‖∞)·n·2⁻⁵³) of the final x, worst repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_residual: Option<f64>,
    /// HPL-MxP: the threshold scaled_residual must meet (16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual_threshold: Option<f64>,
    /// HPL-MxP: refinement iterations (preconditioner applications), worst repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// HPL-MxP: the most iterations allowed (50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<usize>,
}

/// The JSON Schema of [`Calibration`], pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Calibration);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

/// Writes `value` as pretty JSON to `path` atomically: a temporary file beside it, then a
/// rename, so a reader (or a killed job) never sees half a document.
pub fn write_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming {} to {}", tmp.display(), path.display()), e))
}

/// Now as RFC 3339 UTC ("2026-11-21T05:00:00Z"), from the system clock.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
