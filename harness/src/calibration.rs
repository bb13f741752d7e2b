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
    pub system: Environment,
    pub peaks: Option<Peaks>,
    pub records: Vec<Record>,
    /// Ping-pong and collective timings between the ranks (`effcal net`, a plan's `[net]`);
    /// absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

/// The network between ranks (docs/methodology.md, "Network").
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// How the figures are counted (IMB PingPong / OSU conventions).
    pub convention: String,
    /// Round trips (operations) per repetition for messages up to 64 KiB; a tenth beyond.
    pub iters_small: usize,
    /// Rank 0 with each other rank, each pair alone.
    pub pingpong: Vec<PingPong>,
    /// MPI_Allreduce, sum of f64, every rank.
    pub allreduce: Vec<CollectivePoint>,
    /// MPI_Bcast from rank 0, every rank.
    pub bcast: Vec<CollectivePoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingPong {
    pub ranks: [usize; 2],
    pub hosts: [String; 2],
    /// Both ranks on one host (shared memory, where the MPI library uses it).
    pub same_host: bool,
    pub points: Vec<PingPongPoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingPongPoint {
    pub bytes: usize,
    /// One-way time: half the mean round trip, µs.
    pub latency_us: Stats,
    /// bytes / one-way time, GB/s (1e9 bytes/s).
    pub bandwidth_gbs: Stats,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectivePoint {
    pub bytes: usize,
    /// Mean time per operation, slowest rank, µs.
    pub time_us: Stats,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "System")]
pub struct Environment {
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
    /// Core clock under FMA load, GHz, measured by a dependent-multiply chain on every
    /// thread (mean); null where it could not be measured (peaks.clock has every reading).
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
    pub description: Option<crate::machine::Description>,
    /// The GPU of a `--device gpu` run (rank 0's; one GPU per rank); absent for CPU runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuEnvironment>,
}

/// A GPU as a `--device gpu` run found it (docs/methodology.md, "GPUs").
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuEnvironment {
    /// The CUDA device name, e.g. "NVIDIA H200".
    pub name: String,
    /// "major.minor", e.g. "9.0".
    pub compute_capability: String,
    pub memory_bytes: u64,
    pub multiprocessors: u32,
    pub l2_bytes: u64,
    /// PCI domain:bus:device.function of rank 0's GPU.
    pub pci_bus_id: String,
    /// GPUs rank 0's process sees (after CUDA_VISIBLE_DEVICES); each rank uses the one its
    /// local rank selects.
    pub visible: usize,
    /// The NVIDIA driver (NVML); null where NVML is missing.
    pub driver_version: Option<String>,
    /// The CUDA version the driver supports, e.g. "13.0".
    pub cuda_driver_api: String,
    /// cuBLAS (and cuBLASLt) as loaded, e.g. "13.0.0".
    pub cublas_version: String,
    /// The entry of configs/gpus.toml the theoretical peaks come from, and its source;
    /// null where the table has none for this device.
    pub spec_entry: Option<String>,
    pub spec_source: Option<String>,
    /// The board's enforced power limit, W (NVML).
    pub power_limit_w: Option<f64>,
    /// Why power and energy could not be read (no NVML, no energy counter); absent when
    /// every record carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_unavailable: Option<String>,
    /// The SM clock under the FP64 FMA load of the peak kernel, MHz (NVML, median of one
    /// reading per repetition); null where it was not read.
    pub sm_clock_mhz_under_load: Option<u32>,
    /// How the ranks' messages (HPL-MxP's panels, the stencils' halos) travel: "host-staged"
    /// (copied between the device and host memory around every MPI call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi_transfers: Option<String>,
    /// The MPI library's own answer to whether it takes device buffers (Open MPI's
    /// MPIX_Query_cuda_support, MPICH's MPIX_GPU_query_support); null where it has no such
    /// query. effcal does not use it yet: transfers stay host-staged either way.
    #[serde(default)]
    pub mpi_cuda_aware: Option<bool>,
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
    /// Where clock_ghz comes from: "config[: source]", "measured: ...", or the stated
    /// maximum when the measured clock was refused.
    pub clock_source: String,
    /// Cores the peaks are for: ranks × threads per rank (0 for GPU peaks: see gpus).
    pub cores: usize,
    /// GPUs the peaks are for (one per rank): theoretical = gpus × the spec table's dense
    /// peak; absent for CPU peaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<usize>,
    /// Keyed by precision name (f64, f32, bf16, f16, e4m3, e5m2), and "int8" (u8 × i8 dot
    /// products into i32, in GOP/s: 2 operations per product) where the CPU has them. GPU
    /// peaks add "tf32" and "f64_fma" (FP64 on the CUDA cores; "f64" is the tensor cores').
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
    /// Every clock reading of the run: what effcal measured and what the system states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockReadings>,
    /// The CPU's identity and the microarchitecture table's entry the FLOP/cycle come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microarch: Option<Microarch>,
    /// Set by `effcal estimate --system` and `effcal report --system` (never written by a
    /// run): what was recomputed after the run, from which file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected: Option<String>,
}

/// The range empirical ÷ theoretical must lie in for a theoretical peak to be trusted: the
/// register-only kernel reaches at least half of a right peak, and cannot beat it by more
/// than timing noise.
pub const GUARD: [f64; 2] = [0.5, 1.05];

impl Peaks {
    /// Checks every theoretical peak against the measured rate of the arithmetic it
    /// describes: sets `empirical_over_theoretical`, and `suspect` with the reason where
    /// the ratio is outside [`GUARD`] (its top widened, with a measured clock, by how much
    /// the scalar clock exceeds the one under FMA load).
    pub fn guard(&mut self) {
        let clock = self.clock_ghz.map_or("unknown".into(), |c| format!("{c:.3} GHz ({})", self.clock_source));
        // With a measured clock, no arithmetic can outrun the scalar clock: a rate above the
        // theoretical by no more than the gap between the two clocks is a lighter instruction
        // running faster than the FMA load the peaks assume, not a wrong figure.
        let headroom = match (self.clock_source.starts_with("measured"), self.clock.as_ref().and_then(|c| c.measured_scalar_ghz), self.clock_ghz) {
            (true, Some(scalar), Some(used)) if used > 0.0 => (scalar / used).max(1.0),
            _ => 1.0,
        };
        for (name, pk) in self.per_precision.iter_mut() {
            pk.empirical_over_theoretical = pk.theoretical_gflops.filter(|t| *t > 0.0).map(|t| pk.empirical_gflops / t);
            pk.suspect = match (pk.empirical_over_theoretical, pk.theoretical_gflops) {
                (Some(r), Some(t)) if r < GUARD[0] || r > GUARD[1] * headroom => Some(match self.gpus {
                    None => format!(
                        "the {} kernel measured {:.1} {unit}, {r:.3} of the theoretical {t:.1} {unit} (clock {clock} × {} per cycle per core, {}); allowed {}–{}: the clock or the per-cycle figure is wrong, or the cores were not free",
                        pk.isa,
                        pk.empirical_gflops,
                        pk.flop_per_cycle_per_core.map_or("?".into(), |f| format!("{f}")),
                        pk.flop_per_cycle_source,
                        GUARD[0],
                        if headroom > 1.0 { format!("{:.3} (1.05 × the scalar over the loaded clock)", GUARD[1] * headroom) } else { GUARD[1].to_string() },
                        unit = if name == "int8" { "GOP/s" } else { "GFLOP/s" },
                    ),
                    Some(_) => format!(
                        "the {} measured {:.1} {unit}, {r:.3} of the theoretical {t:.1} {unit} ({}); allowed {}–{}: the table's entry is not this board's, or the GPU was not free or was held down (see the record's power.throttle)",
                        pk.isa,
                        pk.empirical_gflops,
                        pk.flop_per_cycle_source,
                        GUARD[0],
                        GUARD[1],
                        unit = if name == "int8" { "GOP/s" } else { "GFLOP/s" },
                    ),
                }),
                _ => None,
            };
        }
    }

    /// The precisions whose theoretical peak is suspect, with the reasons.
    pub fn suspects(&self) -> Vec<(&str, &str)> {
        self.per_precision.iter().filter_map(|(name, pk)| Some((name.as_str(), pk.suspect.as_deref()?))).collect()
    }
}

/// The clock: what effcal measured and what the system states, in GHz.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockReadings {
    /// A chain of dependent `imul` alone (x86-64; `add` on aarch64), mean over every
    /// thread of every rank running it at once.
    pub measured_scalar_ghz: Option<f64>,
    /// The same chain with FMAs issued beside it: the clock vector code runs at.
    pub measured_fma_ghz: Option<f64>,
    /// The FMAs beside the chain: "avx512f", "avx2+fma", or "none".
    pub fma_load_isa: String,
    /// CPUID leaf 0x16 base and maximum (Intel), where given.
    pub cpuid_base_ghz: Option<f64>,
    pub cpuid_max_ghz: Option<f64>,
    /// cpufreq's cpuinfo_max_freq and scaling_cur_freq of cpu0, and its driver.
    pub cpufreq_max_ghz: Option<f64>,
    pub cpufreq_cur_ghz: Option<f64>,
    pub cpufreq_driver: Option<String>,
    /// /proc/cpuinfo's "cpu MHz" of the first CPU (a current or nominal clock; on VMs often
    /// the TSC rate).
    pub proc_cpuinfo_ghz: Option<f64>,
    /// The highest clock the system states (cpufreq, or CPUID 0x16), and which one.
    pub stated_max_ghz: Option<f64>,
    pub stated_max_source: Option<String>,
    /// Why the measured clock was refused as a measurement (more than 10 % above the stated
    /// maximum); null when it was not.
    pub refused: Option<String>,
}

/// Which CPU this is, and the microarchitecture table entry (configs/microarch.toml) the
/// FLOP/cycle come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Microarch {
    /// As the table keys it, e.g. "GenuineIntel family 0x6 model 0xcf (207) stepping 2".
    pub cpu: String,
    /// The entry's name; null when the CPU is not in the table.
    pub entry: Option<String>,
    pub source: Option<String>,
    /// The widest vectors the CPU exposes, bits (the table's figures scale to it).
    pub exposed_vector_bits: Option<u32>,
    /// The count of FMA units taken, where one model covers parts with different counts
    /// (chosen by the measured f64 rate).
    pub fma_units: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionPeak {
    /// The arithmetic this peak measures: the fastest exact one for the format on this CPU
    /// (docs/methodology.md, Peaks). The precision itself where the CPU has it natively
    /// (f64, f32, bf16 with `vdpbf16ps`, f16 with AVX512_FP16) and nothing exact is clearly
    /// faster; f32 where the format is computed by exact conversion to f32 (FP8 and f16
    /// without native arithmetic; bf16 without AVX512_BF16, or where `vdpbf16ps` is the
    /// slower, as on Golden Cove-class cores); bf16 for FP8 where `vdpbf16ps` is clearly
    /// faster than f32 FMA (Zen 4). flop_per_cycle_source says why when it is not its own.
    pub compute_precision: String,
    /// cores × clock × FLOP/cycle/core; null when neither detection nor config knows.
    pub theoretical_gflops: Option<f64>,
    pub flop_per_cycle_per_core: Option<f64>,
    /// Where FLOP/cycle comes from ("config", or "detected: ...").
    pub flop_per_cycle_source: String,
    /// Best repetition of the register-only FMA kernel on all cores.
    pub empirical_gflops: f64,
    pub empirical: Stats,
    /// Instruction set of the FMA kernel (e.g. "avx512f"), or "<isa> (<arithmetic>)" when
    /// the format computes in another's arithmetic (e.g. "avx512f (f32)").
    pub isa: String,
    /// empirical_gflops / theoretical_gflops: what the guard checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empirical_over_theoretical: Option<f64>,
    /// Why the theoretical peak is not to be trusted (the ratio is outside [0.5, 1.05]);
    /// absent when it passed. `effcal estimate` refuses a suspect denominator unless
    /// `--allow-suspect-peaks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<String>,
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
        Self::of_name(gflops, peaks, precision.name())
    }

    /// `gflops` over the peaks keyed `name` (GPU arithmetics: "tf32", "int8", ...).
    pub fn of_name(gflops: f64, peaks: Option<&Peaks>, name: &str) -> Self {
        let peak = peaks.and_then(|p| p.per_precision.get(name));
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

/// Checks, before anything is measured, that `path` (given as `flag`) can be written: not a
/// directory, in a directory that exists (created only when `create_dir`, for effcal's
/// own default results/), where a file can be created. The error names the user's path.
pub fn check_output(path: &Path, flag: &str, create_dir: bool) -> Result<()> {
    if path.is_dir() {
        return Err(Error::invalid(flag, path.display(), "a file path: this is a directory"));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if create_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        } else if !dir.is_dir() {
            return Err(Error::invalid(flag, path.display(), format!("a file in an existing directory ({} does not exist)", dir.display())));
        }
    }
    let tmp = temporary(path);
    std::fs::write(&tmp, b"").map_err(|e| Error::invalid(flag, path.display(), format!("a path this process can write ({e})")))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// The temporary file a write goes through: beside the target, named for this process.
fn temporary(path: &Path) -> std::path::PathBuf {
    path.with_extension(format!("tmp.{}", std::process::id()))
}

/// Writes `value` as pretty JSON to `path` atomically: a temporary file beside it, then a
/// rename, so a reader (or a killed job) never sees half a document. On any failure the
/// temporary file is removed and the error names `path`.
pub fn write_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    let tmp = temporary(path);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("writing {} (the file is left as it was last written)", path.display()), e)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peak(theoretical: Option<f64>, empirical: f64) -> PrecisionPeak {
        PrecisionPeak {
            compute_precision: "f64".into(),
            theoretical_gflops: theoretical,
            flop_per_cycle_per_core: Some(32.0),
            flop_per_cycle_source: "table: X".into(),
            empirical_gflops: empirical,
            empirical: Stats { min: empirical, median: empirical, max: empirical },
            isa: "avx512f".into(),
            empirical_over_theoretical: None,
            suspect: Some("stale".into()),
        }
    }

    #[test]
    fn the_guard_flags_peaks_outside_half_to_105_percent_of_the_measured_rate() {
        let mut p = Peaks {
            clock_ghz: Some(14.916),
            clock_source: "measured".into(),
            cores: 2,
            gpus: None,
            per_precision: BTreeMap::new(),
            stream_triad_gbs: None,
            stream_triad: None,
            memory_bandwidth_gbs: None,
            memory_bandwidth_source: None,
            clock: None,
            microarch: None,
            corrected: None,
        };
        // The Golden Cove case: 954.6 theoretical against 168 measured; a right peak (0.9);
        // the edges; a measured rate above the peak; no theoretical peak at all.
        for (name, t, e) in [("f64", Some(954.6), 168.0), ("f32", Some(100.0), 90.0), ("bf16", Some(100.0), 50.0), ("f16", Some(100.0), 105.0), ("e4m3", Some(100.0), 106.0), ("e5m2", None, 10.0)] {
            p.per_precision.insert(name.into(), peak(t, e));
        }
        p.guard();
        let verdict = |n: &str| (p.per_precision[n].empirical_over_theoretical, p.per_precision[n].suspect.is_some());
        assert_eq!(verdict("f64"), (Some(168.0 / 954.6), true));
        assert_eq!(verdict("f32"), (Some(0.9), false));
        assert_eq!(verdict("bf16"), (Some(0.5), false));
        assert_eq!(verdict("f16"), (Some(1.05), false));
        assert_eq!(verdict("e4m3"), (Some(1.06), true));
        assert_eq!(verdict("e5m2"), (None, false), "no theoretical peak: nothing to judge, and a stale verdict goes");
        assert_eq!(p.suspects().iter().map(|s| s.0).collect::<Vec<_>>(), ["e4m3", "f64"]);
        assert_eq!(
            p.suspects()[1].1,
            "the avx512f kernel measured 168.0 GFLOP/s, 0.176 of the theoretical 954.6 GFLOP/s \
             (clock 14.916 GHz (measured) × 32 per cycle per core, table: X); allowed 0.5–1.05: the clock or the per-cycle figure is wrong, or the cores were not free"
        );
        // A measured clock under FMA load 2.72 GHz, 2.94 alone: a lighter arithmetic may run
        // up to 8 % faster than the peak assumes before it is suspect; a configured clock
        // gets no such room.
        p.clock_source = "measured: dependent imul chain under avx512f FMA load".into();
        p.clock_ghz = Some(2.72);
        p.clock = Some(ClockReadings { measured_scalar_ghz: Some(2.94), ..Default::default() });
        p.per_precision.insert("f16".into(), peak(Some(100.0), 108.0));
        p.guard();
        assert!(p.per_precision["f16"].suspect.is_none(), "within 1.05 × 2.94/2.72");
        p.per_precision.insert("f16".into(), peak(Some(100.0), 114.0));
        p.guard();
        assert!(p.per_precision["f16"].suspect.is_some(), "beyond it");
        p.clock_source = "config".into();
        p.per_precision.insert("f16".into(), peak(Some(100.0), 108.0));
        p.guard();
        assert!(p.per_precision["f16"].suspect.is_some(), "a configured clock");
    }
}
