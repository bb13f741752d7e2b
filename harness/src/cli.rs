//! The command line. Every measuring command runs under MPI (one rank when started
//! plainly); `formats` and `schema` measure nothing and need no MPI.

use clap::{Args, Parser, Subcommand};
use effcal_kernels::Precision;
use effcal_kernels::gemm::Blocking;
use crate::bench::gemm::PathChoice;
use effcal_kernels::precision::scaling::ScaleMode;
use std::path::PathBuf;

/// `--acc-block`'s default and largest value (`gemm`, `hpl-mxp`; the plan key `acc_block`
/// takes the same).
pub const ACC_BLOCK_DEFAULT: u32 = 32;
pub const ACC_BLOCK_MAX: u32 = 65536;

#[derive(Debug, Parser)]
#[command(name = "effcal", version, long_version = long_version(), about = "How much of a machine's peak real mixed-precision work gets: measured, validated, calibrated.")]
pub struct Cli {
    /// rayon threads per rank [default: the cores in the rank's binding]
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Take the system description (clock, FLOP/cycle, memory bandwidth, sources: the
    /// theoretical peaks) from the [system] section of this TOML instead of detecting it
    /// (for `run`: instead of the plan's own; for `estimate` and `report`: recompute the
    /// calibration's peaks and every efficiency with it)
    #[arg(long, global = true)]
    pub system: Option<PathBuf>,
    /// Use the peaks of this calibration (`effcal peak --json FILE`, or any command's JSON)
    /// instead of measuring them; it must be of this run's cores and CPU
    #[arg(long, global = true)]
    pub peaks: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the table of storage formats, or round values to one
    Formats {
        #[command(subcommand)]
        action: Option<FormatsAction>,
    },
    /// Mixed-precision GEMM: every rank multiplies its own n×n matrices
    Gemm(GemmArgs),
    /// HPL-MxP: LU without pivoting in a low precision on a P×Q grid, refined in f64
    #[command(name = "hpl-mxp")]
    HplMxp(Box<HplArgs>),
    /// 3D stencils (7-point, Himeno, 27-point) across ranks with halo exchange
    Stencil(Box<StencilArgs>),
    /// Theoretical and empirical peaks (FMA per precision, clock, STREAM triad)
    Peak(PeakArgs),
    /// The network between ranks: ping-pong latency and bandwidth (rank 0 with each other
    /// rank, 0 B to 4 MiB), allreduce and broadcast times (IMB / OSU conventions)
    Net(NetArgs),
    /// Run a plan (peaks, then every kernel in it) and write one calibration JSON
    Run(RunArgs),
    /// Print the JSON Schema of the calibration document (or of the estimate's)
    Schema {
        /// The schema of `effcal estimate`'s JSON instead
        #[arg(long)]
        estimate: bool,
    },
    /// Recompute the survey's capacity estimates (GPUs for 500 EF of FP16, 10 EF of FP64
    /// simulation, 12 GFLOP/s per core, Fugaku NEXT's FP8) with a calibration's measured
    /// efficiencies; Markdown on stdout, JSON to --json
    Estimate(EstimateArgs),
    /// A calibration as a Markdown report with its roofline picture (SVG and PNG)
    Report(ReportArgs),
    /// Merge calibrations (jobs of different rank or node counts, precisions) into one,
    /// with the parallel efficiency of each weak and strong scaling series
    Merge(MergeArgs),
    /// Render batch scripts from a plan's [job] section: one sbatch script (or PJM script
    /// with --pjm) per node count, each running the plan
    Slurm(SlurmArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A calibration JSON
    #[arg(long)]
    pub calibration: PathBuf,
    /// Directory for report.md, roofline.svg and roofline.png
    #[arg(long, default_value = "results/report")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// A calibration JSON (`effcal run --out`)
    #[arg(long)]
    pub calibration: PathBuf,
    /// A system TOML (configs/systems/ format) to apply the efficiencies to
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Change a starting figure, key=value, comma-separated or repeated: fp16 (EF, 500),
    /// fp64 (EF, 10), per-core (GFLOP/s, 12), growth (×, 10), jupiter-usable (EF, 10)
    #[arg(long, value_delimiter = ',')]
    pub demand: Vec<String>,
    /// The estimate JSON [default: results/estimate.json]
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Use theoretical peaks that failed the guard (empirical / theoretical outside
    /// [0.5, 1.05]) instead of refusing the calibration; the estimate says so
    #[arg(long)]
    pub allow_suspect_peaks: bool,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Plan TOML with a [job] section
    #[arg(long)]
    pub config: PathBuf,
    /// Directory the scripts are written to
    #[arg(long, default_value = "slurm/generated")]
    pub out_dir: PathBuf,
    /// Fujitsu PJM scripts (Fugaku) instead of Slurm's
    #[arg(long)]
    pub pjm: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Calibration JSON files (two or more)
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<std::path::PathBuf>,
    /// The merged document
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Merge documents of different schema versions or systems
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum FormatsAction {
    /// Round values to a format; prints "<input> <rounded>" per value, the rounded value
    /// exactly (shortest decimal that reads back as the same f64)
    Quantize {
        /// Target format
        #[arg(long, value_parser = parse_precision)]
        to: Precision,
        /// Overflow handling: saturate (to ±max) or ieee (±Inf; NaN for e4m3)
        #[arg(long, default_value = "saturate", value_parser = ["saturate", "ieee"])]
        overflow: String,
        /// Values to round; one per line on stdin when none are given
        #[arg(allow_hyphen_values = true)]
        values: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct GemmArgs {
    /// Storage precision(s) of A and B, comma-separated, run in that order: f64, f32, bf16,
    /// f16, e4m3, e5m2; with --device gpu also tf32 (f32 inputs on TF32 tensor cores) and
    /// int8 (into int32)
    #[arg(long, value_delimiter = ',', required = true)]
    pub precision: Vec<String>,
    /// What computes: cpu (effcal's kernels on the ranks' cores) or gpu (cuBLASLt on one
    /// NVIDIA GPU per rank; a build with the CUDA driver and libraries found at run time)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
    /// Matrix size (C is n×n, inner dimension n); --m/--k override those dimensions
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub n: u32,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub m: Option<u32>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub k: Option<u32>,
    /// Timed repetitions
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
    /// Repetitions run first and discarded
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Input scaling: none, tensor, mx (f16, e4m3, e5m2 only) [default: tensor for
    /// e4m3/e5m2, none otherwise]
    #[arg(long, value_parser = parse_scaling)]
    pub scaling: Option<ScaleMode>,
    /// GEMM path: fastest (time each exact path this CPU has for the precision and keep the
    /// faster), auto (effcal's own kernel where the CPU has one) or portable (faer / convert
    /// to f32)
    #[arg(long, default_value = "fastest", value_parser = parse_path_choice)]
    pub backend: PathChoice,
    /// How products are summed: wide (f32; f64 for f64) or f16 (f16 inputs: in f16 over
    /// blocks of --acc-block terms, as an FP16 FMA unit, each block then added in f32;
    /// AVX512_FP16 where the CPU has it, else portable scalar code, slow: an accuracy what-if)
    #[arg(long, default_value = "wide", value_parser = ["wide", "f16"])]
    pub accumulate: String,
    /// Terms of k summed in f16 before a block's sum goes to f32 (--accumulate f16)
    #[arg(long, default_value_t = ACC_BLOCK_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(ACC_BLOCK_MAX)))]
    pub acc_block: u32,
    /// Cache blocking of effcal's own packed GEMM kernels (f64, bf16, native f16) as KC,MC,NC:
    /// terms of k per packed panel, rows of A per block, columns of B per panel (each kernel
    /// rounds KC to its k step and MC to whole tiles; the JSON's `blocking` says what ran)
    /// [default: each kernel's own]. For tuning on a new CPU; faer's paths block themselves
    #[arg(long, value_parser = parse_blocking, value_name = "KC,MC,NC")]
    pub blocking: Option<Blocking>,
    /// Entries of C checked against a twice-f64 reference, per rank
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the calibration JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HplArgs {
    /// What factors: cpu (effcal's kernels on the ranks' cores) or gpu (one NVIDIA GPU per
    /// rank: panels and updates by cuBLAS in device memory, bf16/f16/f32/f64, NB 1024 by
    /// default; the CUDA driver and libraries found at run time)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
    /// Order of the matrix (several with --dat)
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=4_000_000), required_unless_present = "dat")]
    pub n: Option<u32>,
    /// Block size [default: 768 for bf16, 384 otherwise]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub nb: Option<u32>,
    /// Storage precision(s) of the factorisation, comma-separated: f64, f32, bf16, f16,
    /// e4m3, e5m2 (FP8 is a what-if: the list no longer accepts it)
    #[arg(long, value_delimiter = ',', value_parser = parse_precision, default_value = "bf16")]
    pub precision: Vec<Precision>,
    /// Process grid rows [default: the most square P ≤ Q for the rank count]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub p: Option<u32>,
    /// Process grid columns
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub q: Option<u32>,
    /// Rank-to-grid mapping: row (rank = row·Q + col, HPL's PMAP 0) or col
    #[arg(long, default_value = "row", value_parser = ["row", "col"])]
    pub pmap: String,
    /// Refinement: ir (classical) or gmres (GMRES-IR)
    #[arg(long, default_value = "ir", value_parser = ["ir", "gmres"])]
    pub refine: String,
    /// GMRES restart length
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub restart: u32,
    /// Matrix generator: reference (diagonal = row sums) or shifted (diagonal √n)
    #[arg(long, default_value = "reference", value_parser = ["reference", "shifted"])]
    pub generator: String,
    /// Panel broadcast: ring, binomial or mpi (MPI_Ibcast)
    #[arg(long, default_value = "ring", value_parser = ["ring", "binomial", "mpi"])]
    pub bcast: String,
    /// Look-ahead depth: 0 or 1
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    pub lookahead: u32,
    /// The f64 matrix of the residuals: kept (an f64 copy, 8 bytes per element) or
    /// regenerated from the generator at every product (no copy)
    #[arg(long = "f64-matrix", default_value = "regenerated", value_parser = ["kept", "regenerated"])]
    pub f64_matrix: String,
    /// Panel scaling: none, tensor, mx (f16, e4m3, e5m2) [default: tensor for FP8]
    #[arg(long, value_parser = parse_scaling)]
    pub scaling: Option<ScaleMode>,
    /// Scale the system by 2^E (exact in f64, same solution): moves the matrix through a
    /// format's range, e.g. 20 puts the reference matrix beyond f16's
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-1000..=1000))]
    pub scale_exp: i32,
    /// Columns per trailing-update chunk (the broadcast progresses between chunks)
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub chunk: u32,
    /// A progress line every this many steps [default: about ten per factorisation; 0: none]
    #[arg(long)]
    pub progress_every: Option<usize>,
    /// Timed repetitions
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
    /// Repetitions run first and discarded
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Trailing-update GEMM path: fastest (time each exact path this CPU has for the
    /// precision on an update's shape and keep the faster), auto (effcal's own kernel where
    /// the CPU has one) or portable (faer / convert to f32)
    #[arg(long, default_value = "fastest", value_parser = parse_path_choice)]
    pub backend: PathChoice,
    /// How the f16 runs' trailing updates sum the products: wide (f32) or f16 (over blocks
    /// of --acc-block terms, as an FP16 FMA unit; AVX512_FP16 where the CPU has it, else
    /// portable scalar code, slow); the other precisions sum wide
    #[arg(long, default_value = "wide", value_parser = ["wide", "f16"])]
    pub accumulate: String,
    /// Where each diagonal block is factored with --device gpu: host (the CPU's code, the
    /// same bits, while the GPU updates) or gpu (on the GPU on its way to the host: the
    /// CPU's recursion, cuBLAS TRSM and GEMM, a kernel for the 32-column leaves)
    #[arg(long, default_value = "host", value_parser = ["host", "gpu"])]
    pub diagonal: String,
    /// Terms of k summed in f16 before a block's sum goes to f32 (--accumulate f16)
    #[arg(long, default_value_t = ACC_BLOCK_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(ACC_BLOCK_MAX)))]
    pub acc_block: u32,
    /// Cache blocking of the trailing updates' packed GEMM kernels (f64, bf16, native f16) as KC,MC,NC:
    /// terms of k per packed panel, rows of A per block, columns of B per panel (each kernel
    /// rounds KC to its k step and MC to whole tiles; the JSON's `blocking` says what ran)
    /// [default: each kernel's own]. For tuning on a new CPU; faer's paths block themselves
    #[arg(long, value_parser = parse_blocking, value_name = "KC,MC,NC")]
    pub blocking: Option<Blocking>,
    /// Matrix seed (the right-hand side uses seed + 1)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Read sizes, block sizes, mapping, grids, broadcasts and depths from an HPL.dat /
    /// HPL-MxP.dat file (--n, --nb, --p, --q, --pmap, --bcast, --lookahead then do not apply)
    #[arg(long, conflicts_with_all = ["n", "nb", "p", "q"])]
    pub dat: Option<PathBuf>,
    /// Write the calibration JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StencilArgs {
    /// What sweeps: cpu (effcal's kernels on the ranks' cores) or gpu (one NVIDIA GPU per
    /// rank, halos through the host: 7pt and 27pt in f64, f32, bf16, f16, checked bit for
    /// bit against the host's sweeps)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
    /// Stencil(s), comma-separated, run in that order: 7pt, himeno, 27pt
    #[arg(long, value_delimiter = ',', default_value = "7pt", value_parser = ["7pt", "himeno", "27pt"])]
    pub kind: Vec<String>,
    /// Storage precision(s), comma-separated (arithmetic in f32, f64 for f64; see --arithmetic)
    #[arg(long, value_delimiter = ',', value_parser = parse_precision, default_value = "f64")]
    pub precision: Vec<Precision>,
    /// Grid points NX NY NZ (k = NZ contiguous), boundary planes included; per rank with --weak
    #[arg(long, num_args = 3, value_names = ["NX", "NY", "NZ"], value_parser = clap::value_parser!(u32).range(3..=1_000_000), conflicts_with = "class")]
    pub size: Option<Vec<u32>>,
    /// Himeno's sizes, as RIKEN's himenoBMTxpa.c (i × j × k, k fastest): XS (32×32×64), S (64×64×128), M (128×128×256), L (256×256×512)
    #[arg(long, value_parser = ["XS", "S", "M", "L"])]
    pub class: Option<String>,
    /// Sweeps per repetition
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iters: u32,
    /// Ranks per dimension PX PY PZ [default: balanced for the grid]
    #[arg(long, num_args = 3, value_names = ["PX", "PY", "PZ"], value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub dims: Option<Vec<u32>>,
    /// Halo exchange: on (overlapped with the interior), off (exchange, then compute), both
    #[arg(long, default_value = "on", value_parser = ["on", "off", "both"])]
    pub overlap: String,
    /// How sweeps write the new field: auto (streaming where the fields exceed the last-level
    /// cache, on x86-64), normal, or streaming (non-temporal stores)
    #[arg(long, default_value = "auto", value_parser = ["auto", "normal", "streaming"])]
    pub stores: String,
    /// What f16 fields compute in: wide (f32, as every 16-bit and FP8 format), f16 (every
    /// operation rounded to f16; 7pt and 27pt; native on AVX512_FP16, emulated elsewhere: its
    /// error is f16 arithmetic's, its rate then the emulation's), or both (a record of each);
    /// other precisions are wide
    #[arg(long, default_value = "wide", value_parser = ["wide", "f16", "both"])]
    pub arithmetic: String,
    /// Weak scaling: --size is per rank (the global grid is size × dims)
    #[arg(long)]
    pub weak: bool,
    /// Measure the network first (as `effcal net`): each record then carries its halo model
    /// (its messages timed by the ping-pong table) beside the measured halo time
    #[arg(long)]
    pub net: bool,
    /// f64 elements per array of the STREAM triad the stencils are measured against, per
    /// rank [default: 4 × last-level cache over the node's ranks]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    pub triad_elements: Option<u64>,
    /// Timed repetitions
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
    /// Repetitions run first and discarded
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Seed of the initial field (7pt, 27pt)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the calibration JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PeakArgs {
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
    /// Seconds per FMA repetition (per GEMM repetition too, with --device gpu)
    #[arg(long, default_value_t = 0.2)]
    pub fma_seconds: f64,
    /// f64 elements per triad array per rank [default: 4 × last-level cache over the node's ranks; with
    /// --device gpu 2^27 (1 GiB per array), fewer where the GPU's free memory is less]
    #[arg(long)]
    pub triad_elements: Option<usize>,
    /// What to measure: cpu (the ranks' cores) or gpu (one NVIDIA GPU per rank)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
    /// Order of the GEMMs that measure the GPU's tensor-core and FP64 peaks (--device gpu)
    /// [default: 8192]
    #[arg(long, value_parser = clap::value_parser!(u32).range(256..=65536))]
    pub gemm_n: Option<u32>,
    /// Write the calibration JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NetArgs {
    /// The largest message, bytes (sizes are 0 and the powers of two up to it)
    #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    pub max_bytes: u64,
    /// Round trips per repetition for messages up to 64 KiB (a tenth beyond, at least 5)
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub iters: u64,
    /// Timed repetitions
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
    /// Repetitions run first and discarded
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Write the calibration JSON (its `network` section) here
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plan TOML [default: configs/local.toml, built in]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Calibration JSON to write, rewritten atomically after every record [default: the
    /// plan's run.out, else results/calibration.json]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the records already in the output file (of a job killed at its time limit) and
    /// measure only the plan's missing ones, against the peaks that file holds
    #[arg(long)]
    pub resume: bool,
    /// Overwrite an existing output file (refused otherwise: use --resume to continue it)
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Print the resolved runs (sizes, ranks, memory per rank, a lower bound of the time of
    /// each record) and measure nothing but the clock
    #[arg(long)]
    pub dry_run: bool,
}

/// `effcal --version`: the version, the commit and the build's code-generation flags and
/// vector features (a benchmark binary is built for the node that runs it).
fn long_version() -> &'static str {
    let mut features = Vec::new();
    macro_rules! feature {
        ($($f:tt),*) => {$( if cfg!(target_feature = $f) { features.push($f); } )*};
    }
    feature!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", "neon", "sve");
    let text = format!(
        "{} (commit {}; RUSTFLAGS: {}; compiled for: {}; {})",
        env!("CARGO_PKG_VERSION"),
        env!("EFFCAL_COMMIT"),
        env!("EFFCAL_RUSTFLAGS"),
        if features.is_empty() { "the baseline of the target".to_string() } else { features.join(" ") },
        if cfg!(feature = "mpi") { "MPI" } else { "without MPI: one process" }
    );
    // Built once per process, for clap, which wants a &'static str.
    Box::leak(text.into_boxed_str())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: effcal_kernels::KernelError| e.to_string())
}

fn parse_scaling(s: &str) -> Result<ScaleMode, String> {
    s.parse().map_err(|e: effcal_kernels::KernelError| e.to_string())
}

fn parse_path_choice(s: &str) -> Result<PathChoice, String> {
    s.parse()
}

/// `--blocking KC,MC,NC`: three whole numbers from 1 to 10⁶.
pub fn parse_blocking(s: &str) -> Result<Blocking, String> {
    let allowed = "KC,MC,NC: three whole numbers from 1 to 1000000, e.g. 256,480,4096 (terms of k per packed panel, rows of A per block, columns of B per panel)";
    let v: Vec<usize> = s.split(',').map(|x| x.trim().parse().ok().filter(|v| (1..=1_000_000).contains(v))).collect::<Option<_>>().ok_or_else(|| allowed.to_string())?;
    match v[..] {
        [kc, mc, nc] => Ok(Blocking { kc, mc, nc }),
        _ => Err(allowed.into()),
    }
}
