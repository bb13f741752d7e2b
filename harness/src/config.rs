//! Run plans (TOML). Unknown keys and bad values are errors that name the file, the key and
//! what is allowed, before any measurement starts.

use crate::error::{Error, Result};
use crate::machine;
use effcal_kernels::{Precision, cost};
use effcal_kernels::precision::scaling::ScaleMode;
use serde::Deserialize;
use std::collections::BTreeMap;

/// configs/local.toml, built in: the plan `effcal run` uses without --config.
pub const LOCAL_TOML: &str = include_str!("../../configs/local.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub peak: PeakSection,
    pub gemm: Option<GemmSection>,
    pub hpl_mxp: Option<HplSection>,
    pub stencil: Option<StencilSection>,
    /// The network between ranks (`effcal net`), measured after the peaks.
    pub net: Option<NetSection>,
    #[serde(default)]
    pub system: machine::Description,
    /// What `effcal slurm` renders batch scripts from.
    pub job: Option<JobSection>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
    /// rayon threads per rank [default: the cores of the rank's binding]; --threads wins.
    pub threads: Option<usize>,
    /// The calibration JSON [default: results/calibration.json]; --out wins.
    pub out: Option<String>,
    /// What measures: cpu (default) or gpu (one NVIDIA GPU per rank, as `--device gpu`).
    pub device: String,
}

impl Default for RunSection {
    fn default() -> Self {
        Self { reps: 5, warmup: 1, seed: 42, threads: None, out: None, device: "cpu".into() }
    }
}

impl RunSection {
    pub fn gpu(&self) -> bool {
        self.device == "gpu"
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeakSection {
    pub fma_seconds: f64,
    pub triad_elements: usize,
}

impl Default for PeakSection {
    fn default() -> Self {
        Self { fma_seconds: 0.2, triad_elements: 0 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GemmSection {
    /// Order of each rank's matrices; or `memory_fraction`.
    pub n: Option<usize>,
    /// Fraction of a rank's memory A, B and C may fill (n chosen to fit, a multiple of 256).
    pub memory_fraction: Option<f64>,
    pub precisions: Vec<String>,
    #[serde(default = "default_fp8_scaling")]
    pub scaling_fp8: String,
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// GEMM path: fastest (default), auto, portable (as `--backend`).
    pub backend: Option<String>,
    /// "KC,MC,NC": effcal's packed kernels' blocking (as `--blocking`; CPU plans).
    pub blocking: Option<String>,
}

fn default_fp8_scaling() -> String {
    "tensor".into()
}
fn default_samples() -> usize {
    64
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HplSection {
    /// Order of the matrix; or `memory_fraction`.
    pub n: Option<usize>,
    /// Fraction of the run's memory the matrix may fill (HPL's sizing rule; n a multiple of
    /// the block size).
    pub memory_fraction: Option<f64>,
    pub precisions: Vec<String>,
    /// Block size [default: per precision, see `effcal_kernels::hpl_mxp::default_nb`].
    pub nb: Option<usize>,
    /// The choices `effcal hpl-mxp` takes as flags, by the same names and defaults: the
    /// process grid (p and q together; default the most square P ≤ Q), pmap (row, col),
    /// refine (ir, gmres) and restart, generator (reference, shifted), bcast (ring,
    /// binomial, mpi), lookahead (0, 1), f64_matrix (kept, regenerated), scaling_fp8 (none,
    /// tensor, mx; default [gemm]'s), scale_exp, chunk. Checked when the run starts.
    pub p: Option<usize>,
    pub q: Option<usize>,
    pub pmap: Option<String>,
    pub refine: Option<String>,
    pub restart: Option<usize>,
    pub generator: Option<String>,
    pub bcast: Option<String>,
    pub lookahead: Option<u32>,
    pub f64_matrix: Option<String>,
    pub scaling_fp8: Option<String>,
    pub scale_exp: Option<i32>,
    pub chunk: Option<usize>,
    /// Trailing-update GEMM path: fastest (default), auto, portable (as `--backend`).
    pub backend: Option<String>,
    /// "KC,MC,NC": the trailing updates' packed kernels' blocking (as `--blocking`; CPU plans).
    pub blocking: Option<String>,
    /// How the f16 trailing updates sum: wide (default) or f16, over blocks of `acc_block`
    /// terms (as `--accumulate`, `--acc-block`).
    pub accumulate: Option<String>,
    pub acc_block: Option<usize>,
    /// GPU plans: where the diagonal blocks are factored, "host" or "gpu".
    pub diagonal: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StencilSection {
    /// 7pt, himeno, 27pt.
    pub kinds: Vec<String>,
    pub precisions: Vec<String>,
    /// Grid points NX NY NZ, boundary planes included (per rank with `weak`); or
    /// `memory_fraction`.
    pub size: Option<[usize; 3]>,
    /// Fraction of a rank's memory its block may fill (a cube per rank; weak by nature).
    pub memory_fraction: Option<f64>,
    /// `size` is per rank: the global grid is size × the balanced dims (weak scaling).
    #[serde(default)]
    pub weak: bool,
    pub iters: usize,
    /// Halo exchange overlapped with the interior.
    #[serde(default = "default_true")]
    pub overlap: bool,
    /// How sweeps write the new field: auto (default), normal, streaming.
    pub stores: Option<String>,
    /// What f16 fields compute in: wide (default), f16, both (as `--arithmetic`).
    pub arithmetic: Option<String>,
}

/// A plan's `[net]`: the keys of `effcal net`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSection {
    /// The largest message, bytes [default 4 MiB].
    pub max_bytes: Option<usize>,
    /// Round trips per repetition up to 64 KiB [default 200].
    pub iters: Option<usize>,
}

fn default_true() -> bool {
    true
}

/// The batch job `effcal slurm` renders: one script per node count.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// Job name and the stem of the scripts and results.
    #[serde(default = "default_job_name")]
    pub name: String,
    /// Node counts: one script each (a scaling sweep when more than one).
    pub nodes: Vec<usize>,
    pub ranks_per_node: usize,
    /// Wall-clock limit, HH:MM:SS.
    #[serde(default = "default_time")]
    pub time: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// srun's --mpi plugin.
    #[serde(default = "default_mpi")]
    pub mpi: String,
    /// PJM resource group (Fugaku), for `effcal slurm --pjm`.
    pub rscgrp: Option<String>,
    /// GPUs per node a GPU plan asks Slurm for (--gpus-per-node): one rank each, so
    /// ranks_per_node when absent.
    pub gpus_per_node: Option<usize>,
}

fn default_job_name() -> String {
    "effcal".into()
}
fn default_time() -> String {
    "00:30:00".into()
}
fn default_mpi() -> String {
    "pmix".into()
}

/// A plan with its values checked and parsed.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The file, as errors name it.
    pub file: String,
    pub plan: Plan,
    pub gemm_precisions: Vec<Precision>,
    pub hpl_precisions: Vec<Precision>,
    pub stencil_kinds: Vec<effcal_kernels::stencil::Kind>,
    pub stencil_precisions: Vec<Precision>,
    pub fp8_scaling: ScaleMode,
    pub flop_per_cycle: BTreeMap<Precision, f64>,
}

/// Keys of `[system]` that `sources` may cite.
const SYSTEM_KEYS: &str = "name, nodes, cores_per_node, clock_ghz, flop_per_cycle, memory_bandwidth_gbs, memory_gib";

impl Plan {
    /// Parses and checks a plan; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Checked> {
        let err = |message: String| Error::Config { file: file.to_string(), message };
        let plan: Plan = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        if plan.run.reps == 0 {
            return Err(err("run.reps = 0: must be at least 1".into()));
        }
        if let Some(t) = plan.run.threads.filter(|&t| t == 0 || t > 4096) {
            return Err(err(format!("run.threads = {t}: must be in 1..=4096")));
        }
        if plan.run.device != "cpu" && plan.run.device != "gpu" {
            return Err(err(format!("run.device = \"{}\": allowed: \"cpu\", \"gpu\"", plan.run.device)));
        }
        if plan.run.gpu() {
            // A GPU plan's GEMMs and stencils are sized by hand (the memory rules here are the
            // CPU runs'); HPL-MxP's memory_fraction is of each GPU's memory, sized when the
            // GPUs are open.
            let fraction = [plan.gemm.as_ref().map(|g| ("gemm", g.memory_fraction)), plan.stencil.as_ref().map(|s| ("stencil", s.memory_fraction))].into_iter().flatten().find(|(_, f)| f.is_some());
            if let Some((section, _)) = fraction {
                return Err(err(format!("{section}.memory_fraction with run.device = \"gpu\": allowed: a size (n or size); on GPUs only hpl_mxp.memory_fraction (of each GPU's memory) is sized for you")));
            }
            let blocking = [plan.gemm.as_ref().map(|g| ("gemm", &g.blocking)), plan.hpl_mxp.as_ref().map(|h| ("hpl_mxp", &h.blocking))].into_iter().flatten().find(|(_, b)| b.is_some());
            if let Some((section, Some(b))) = blocking {
                return Err(err(format!("{section}.blocking = \"{b}\" with run.device = \"gpu\": allowed: none (cuBLAS blocks the GPU's GEMMs itself)")));
            }
        }
        if !(plan.peak.fma_seconds > 0.0 && plan.peak.fma_seconds <= 60.0) {
            return Err(err(format!("peak.fma_seconds = {}: must be in (0, 60]", plan.peak.fma_seconds)));
        }
        let precision = |key: &str, s: &str| {
            s.parse::<Precision>().map_err(|_| err(format!("{key}: unknown precision '{s}' (allowed: {})", Precision::allowed())))
        };
        // Exactly one of a size and a memory fraction.
        let size_or_fraction = |section: &str, size_key: &str, has_size: bool, fraction: Option<f64>| -> Result<()> {
            match (has_size, fraction) {
                (true, Some(_)) => Err(err(format!("{section}: both {size_key} and memory_fraction given; allowed: one of them"))),
                (false, None) => Err(err(format!("{section}: missing size; allowed: {size_key} = ..., or memory_fraction = a number in (0, 0.95]"))),
                (_, Some(f)) if !(f > 0.0 && f <= 0.95) => Err(err(format!("{section}.memory_fraction = {f}: must be in (0, 0.95]"))),
                _ => Ok(()),
            }
        };
        let mut gemm_precisions = Vec::new();
        let mut fp8_scaling = ScaleMode::Tensor;
        if let Some(g) = &plan.gemm {
            size_or_fraction("gemm", "n", g.n.is_some(), g.memory_fraction)?;
            if let Some(n) = g.n.filter(|&n| n == 0 || n > 65_536) {
                return Err(err(format!("gemm.n = {n}: must be in 1..=65536")));
            }
            for s in &g.precisions {
                gemm_precisions.push(precision("gemm.precisions", s)?);
            }
            if g.samples == 0 {
                return Err(err("gemm.samples = 0: must be at least 1 (with none, no result would be checked)".into()));
            }
            fp8_scaling = g
                .scaling_fp8
                .parse()
                .map_err(|_| err(format!("gemm.scaling_fp8: unknown scaling '{}' (allowed: none, tensor, mx)", g.scaling_fp8)))?;
        }
        let mut hpl_precisions = Vec::new();
        if let Some(h) = &plan.hpl_mxp {
            size_or_fraction("hpl_mxp", "n", h.n.is_some(), h.memory_fraction)?;
            if let Some(n) = h.n.filter(|&n| !(2..=4_000_000).contains(&n)) {
                return Err(err(format!("hpl_mxp.n = {n}: must be in 2..=4000000")));
            }
            if h.nb == Some(0) {
                return Err(err("hpl_mxp.nb = 0: must be at least 1".into()));
            }
            for s in &h.precisions {
                hpl_precisions.push(precision("hpl_mxp.precisions", s)?);
            }
        }
        let (mut stencil_kinds, mut stencil_precisions) = (Vec::new(), Vec::new());
        if let Some(st) = &plan.stencil {
            for k in &st.kinds {
                stencil_kinds.push(k.parse().map_err(|_| err(format!("stencil.kinds: unknown kind '{k}' (allowed: 7pt, himeno, 27pt)")))?);
            }
            for s in &st.precisions {
                stencil_precisions.push(precision("stencil.precisions", s)?);
            }
            size_or_fraction("stencil", "size", st.size.is_some(), st.memory_fraction)?;
            if let Some(size) = st.size.filter(|s| s.iter().any(|&g| g < 3)) {
                return Err(err(format!("stencil.size = {size:?}: at least 3 points per dimension")));
            }
            if st.iters == 0 {
                return Err(err("stencil.iters = 0: must be at least 1".into()));
            }
        }
        let sys = &plan.system;
        let mut flop_per_cycle = BTreeMap::new();
        for (name, &v) in &sys.flop_per_cycle {
            let p = precision("system.flop_per_cycle", name)?;
            if v.is_nan() || v <= 0.0 {
                return Err(err(format!("system.flop_per_cycle.{name} = {v}: must be positive")));
            }
            flop_per_cycle.insert(p, v);
        }
        if let Some(c) = sys.clock_ghz.filter(|c| !(*c > 0.0 && *c < 20.0)) {
            return Err(err(format!("system.clock_ghz = {c}: must be in (0, 20)")));
        }
        for (key, v) in [("memory_bandwidth_gbs", sys.memory_bandwidth_gbs), ("memory_gib", sys.memory_gib)] {
            if let Some(v) = v.filter(|v| !(*v > 0.0 && v.is_finite())) {
                return Err(err(format!("system.{key} = {v}: must be a positive number")));
            }
        }
        for (key, v) in [("nodes", sys.nodes), ("cores_per_node", sys.cores_per_node)] {
            if v == Some(0) {
                return Err(err(format!("system.{key} = 0: must be at least 1")));
            }
        }
        if let Some(k) = sys.sources.keys().find(|k| !SYSTEM_KEYS.split(", ").any(|a| a == k.as_str())) {
            return Err(err(format!("system.sources.{k}: not a field of [system] (allowed: {SYSTEM_KEYS})")));
        }
        if let Some(job) = &plan.job {
            job.check(plan.run.gpu()).map_err(err)?;
        }
        Ok(Checked { file: file.to_string(), plan, gemm_precisions, hpl_precisions, stencil_kinds, stencil_precisions, fp8_scaling, flop_per_cycle })
    }

    /// Reads and checks a plan file.
    pub fn load(path: &std::path::Path) -> Result<Checked> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }
}

impl JobSection {
    /// The GPUs per node the scripts ask for: a GPU plan's, one per rank.
    pub fn gpus(&self, gpu_plan: bool) -> Option<usize> {
        gpu_plan.then(|| self.gpus_per_node.unwrap_or(self.ranks_per_node))
    }

    fn check(&self, gpu_plan: bool) -> std::result::Result<(), String> {
        match self.gpus_per_node {
            Some(g) if !gpu_plan => return Err(format!("job.gpus_per_node = {g} with run.device = \"cpu\": allowed only in a GPU plan (run.device = \"gpu\")")),
            Some(g) if g != self.ranks_per_node => {
                return Err(format!("job.gpus_per_node = {g} with job.ranks_per_node = {}: a GPU plan runs one rank per GPU; allowed: the same number for both", self.ranks_per_node));
            }
            _ => {}
        }
        if self.nodes.is_empty() || self.nodes.contains(&0) {
            return Err(format!("job.nodes = {:?}: allowed: a list of node counts ≥ 1, e.g. [1, 2, 4]", self.nodes));
        }
        if self.ranks_per_node == 0 {
            return Err("job.ranks_per_node = 0: must be at least 1".into());
        }
        let hms: Vec<&str> = self.time.split(':').collect();
        if hms.len() != 3 || hms.iter().any(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("job.time = \"{}\": allowed: HH:MM:SS, e.g. \"01:30:00\"", self.time));
        }
        let safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        for (key, v) in [("name", Some(&self.name)), ("partition", self.partition.as_ref()), ("account", self.account.as_ref()), ("mpi", Some(&self.mpi)), ("rscgrp", self.rscgrp.as_ref())] {
            if let Some(v) = v.filter(|v| !safe(v)) {
                return Err(format!("job.{key} = \"{v}\": allowed: letters, digits, '-', '_' and '.'"));
            }
        }
        Ok(())
    }
}

/// The memory a run may size its problems from: the smallest share of any rank (its
/// node's memory divided by the ranks on that node), and the ranks.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub per_rank: u64,
    pub ranks: usize,
}

/// The sizes of a plan's kernels for this run's ranks and memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sizes {
    pub gemm_n: usize,
    /// 0: sized on the GPUs (a GPU plan's hpl_mxp.memory_fraction).
    pub hpl_n: usize,
    /// Global grid, boundary planes included.
    pub stencil: [usize; 3],
    /// The rank dims a per-rank size (`weak`, or a memory fraction) was multiplied by; the
    /// run must use these dims so every rank gets that block.
    pub stencil_dims: Option<[usize; 3]>,
}

fn gb(bytes: f64) -> String {
    format!("{:.2} GB", bytes / 1e9)
}

impl Checked {
    /// Sizes every kernel of the plan for `mem`: a memory fraction becomes a size (for the
    /// most demanding precision of the list, so every precision runs the same problem), and
    /// a given size that cannot fit is refused, naming the key, what it needs and what fits.
    pub fn sizes(&self, mem: Memory, dims: impl Fn([usize; 3]) -> [usize; 3]) -> Result<Sizes> {
        let err = |message: String| Error::Config { file: self.file.clone(), message };
        // Memory unknown (no /proc/meminfo; a GPU plan's host memory): given sizes go
        // unchecked, fractions cannot be sized (a GPU plan's hpl_mxp one is sized on the GPUs).
        let gpu = self.plan.run.gpu();
        if mem.per_rank == 0 {
            let fraction = [self.plan.gemm.as_ref().map(|g| ("gemm", g.memory_fraction)), self.plan.hpl_mxp.as_ref().filter(|_| !gpu).map(|h| ("hpl_mxp", h.memory_fraction)), self.plan.stencil.as_ref().map(|s| ("stencil", s.memory_fraction))]
                .into_iter()
                .flatten()
                .find(|(_, f)| f.is_some());
            if let Some((section, _)) = fraction {
                return Err(err(format!("{section}.memory_fraction: this node's memory could not be detected; allowed here: a size (n or size)")));
            }
        }
        let per_rank = if mem.per_rank == 0 { f64::INFINITY } else { mem.per_rank as f64 };
        let total = per_rank * mem.ranks as f64;
        let mut sizes = Sizes::default();
        if let Some(g) = &self.plan.gemm {
            let bpe = self.gemm_precisions.iter().map(|&p| cost::gemm::bytes_held_per_element(p)).max().unwrap_or(8) as f64;
            let fit = |f: f64| ((f * per_rank / bpe).sqrt() as usize / 256 * 256).clamp(256, 65_536);
            sizes.gemm_n = match (g.n, g.memory_fraction) {
                (Some(n), _) => {
                    let need = bpe * (n * n) as f64;
                    if need > 0.95 * per_rank {
                        return Err(err(format!(
                            "gemm.n = {n}: needs {} per rank (A, B and C), a rank has {}; allowed: n ≤ {}, or memory_fraction",
                            gb(need),
                            gb(per_rank),
                            fit(0.95)
                        )));
                    }
                    n
                }
                (None, Some(f)) => fit(f),
                (None, None) => unreachable!("checked by parse"),
            };
        }
        if let Some(h) = &self.plan.hpl_mxp {
            let bpe = self.hpl_precisions.iter().map(|&p| cost::hpl::bytes_held_per_element(p)).max().unwrap_or(8) as f64;
            let nb = h.nb.unwrap_or_else(|| self.hpl_precisions.iter().map(|&p| effcal_kernels::hpl_mxp::default_nb(p)).fold(1, lcm));
            let fit = |f: f64| ((f * total / bpe).sqrt() as usize / nb * nb).max(nb);
            sizes.hpl_n = match (h.n, h.memory_fraction) {
                (Some(n), _) => {
                    let need = bpe * (n as f64).powi(2);
                    if need > 0.95 * total {
                        return Err(err(format!(
                            "hpl_mxp.n = {n}: the matrix needs {} over {} rank(s), they have {}; allowed: n ≤ {}, or memory_fraction",
                            gb(need),
                            mem.ranks,
                            gb(total),
                            fit(0.95)
                        )));
                    }
                    n
                }
                (None, Some(_)) if gpu => 0,
                (None, Some(f)) => fit(f),
                (None, None) => unreachable!("checked by parse"),
            };
        }
        if let Some(st) = &self.plan.stencil {
            let bpp = self
                .stencil_kinds
                .iter()
                .flat_map(|&k| self.stencil_precisions.iter().map(move |&p| cost::stencil::bytes_held_per_point(k, p)))
                .max()
                .unwrap_or(24) as f64;
            sizes.stencil = match (st.size, st.memory_fraction) {
                (Some(size), _) => {
                    let global = if st.weak {
                        let d = dims(size);
                        sizes.stencil_dims = Some(d);
                        [size[0] * d[0], size[1] * d[1], size[2] * d[2]]
                    } else {
                        size
                    };
                    let need = bpp * global.iter().map(|&g| g as f64).product::<f64>();
                    if need > 0.95 * total {
                        let side = (0.95 * per_rank / bpp).cbrt() as usize;
                        return Err(err(format!(
                            "stencil.size = {size:?}: the grid needs {} over {} rank(s), they have {}; allowed: a size up to about {side}³ per rank, or memory_fraction",
                            gb(need),
                            mem.ranks,
                            gb(total)
                        )));
                    }
                    global
                }
                (None, Some(f)) => {
                    let side = ((f * per_rank / bpp).cbrt() as usize).max(3);
                    let d = dims([side; 3]);
                    sizes.stencil_dims = Some(d);
                    [side * d[0], side * d[1], side * d[2]]
                }
                (None, None) => unreachable!("checked by parse"),
            };
        }
        Ok(sizes)
    }
}

pub(crate) fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_plan_is_valid() {
        let c = Plan::parse(LOCAL_TOML, "configs/local.toml").unwrap();
        assert_eq!(c.gemm_precisions, Precision::ALL.to_vec());
        assert_eq!(c.fp8_scaling, ScaleMode::Tensor);
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_allowed_values() {
        let e = Plan::parse("[gemm]\nn = 64\nprecisions = [\"fp4\"]\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm.precisions: unknown precision 'fp4' (allowed: f64, f32, bf16, f16, e4m3, e5m2)");
        let e = Plan::parse("[run]\nrepz = 3\n", "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("config p.toml: ") && e.contains("unknown field `repz`") && e.contains("`reps`"), "{e}");
        let e = Plan::parse("[gemm]\nn = \"big\"\nprecisions = []\n", "p.toml").unwrap_err().to_string();
        assert!(e.contains("invalid type") && e.contains("n ="), "{e}");
        let e = Plan::parse("[gemm]\nn = 0\nprecisions = []\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm.n = 0: must be in 1..=65536");
        let e = Plan::parse("[gemm]\nn = 64\nprecisions = [\"f64\"]\nsamples = 0\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm.samples = 0: must be at least 1 (with none, no result would be checked)");
    }

    fn example(name: &str) -> Checked {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(name);
        Plan::load(&path).unwrap()
    }

    #[test]
    fn the_example_plans_are_valid_and_describe_their_systems() {
        let f = example("fugaku.toml");
        let sys = &f.plan.system;
        assert_eq!((sys.cores_per_node, sys.clock_ghz, sys.memory_bandwidth_gbs), (Some(48), Some(2.2), Some(1024.0)));
        // The published peak: 158,976 nodes × 48 cores × 2.2 GHz × 32 FLOP/cycle ≈ 537 PF.
        let peak = sys.nodes.unwrap() as f64 * 48.0 * 2.2e9 * f.flop_per_cycle[&Precision::F64];
        assert!((peak / 1e15 - 537.2).abs() < 0.05, "{peak}");
        assert_eq!(f.plan.run.threads, Some(12));
        let h = example("hpci-cluster.toml");
        assert_eq!(h.plan.job.as_ref().unwrap().nodes, vec![1, 2, 4, 8]);
        assert!(h.plan.system.sources.contains_key("memory_bandwidth_gbs"));
        // Its Sapphire Rapids figures are the microarchitecture table's (each arithmetic's own;
        // FP8 computes in f32).
        use effcal_kernels::peak::fma::Arith;
        let spr = crate::uarch::Table::builtin().entries.iter().find(|e| e.name == "Intel Sapphire Rapids").unwrap();
        for (p, a) in [(Precision::F64, Arith::F64), (Precision::F32, Arith::F32), (Precision::Bf16, Arith::Bf16Dot), (Precision::F16, Arith::F16), (Precision::E4m3, Arith::F32), (Precision::E5m2, Arith::F32)] {
            assert_eq!(Some(h.flop_per_cycle[&p]), spr.figure(a), "{p}");
        }
        let g = example("gpu-node.toml");
        assert!(g.plan.run.gpu());
        assert_eq!(g.plan.job.as_ref().unwrap().gpus(true), Some(4));
    }

    #[test]
    fn memory_fractions_become_sizes_for_the_most_demanding_precision() {
        let c = Plan::parse(
            "[gemm]\nmemory_fraction = 0.5\nprecisions = [\"f64\", \"bf16\"]\n\
             [hpl_mxp]\nmemory_fraction = 0.5\nprecisions = [\"f64\", \"bf16\"]\n\
             [stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\", \"f32\"]\nmemory_fraction = 0.5\niters = 1\n",
            "p.toml",
        )
        .unwrap();
        let gib = 1u64 << 30;
        let sizes = c.sizes(Memory { per_rank: 4 * gib, ranks: 2 }, |_| [2, 1, 1]).unwrap();
        // GEMM, f64 (24 B per element: A, B, C): √(0.5 · 4 GiB / 24) = 9459 → 9216.
        assert_eq!(sizes.gemm_n, 9216);
        // HPL-MxP, f64 factors (8 B) over both ranks' 8 GiB: √(0.5 · 8 GiB / 8) = 23170, a
        // multiple of lcm(384, 768) = 768 → 23040.
        assert_eq!(sizes.hpl_n, 23040);
        // Stencil: f32 with its f64 reference, 2·4 + 8 + 2·8 + 8 = 40 B per point:
        // ∛(0.5 · 4 GiB / 40) = 377 per rank, × dims 2, 1, 1.
        assert_eq!((sizes.stencil, sizes.stencil_dims), ([754, 377, 377], Some([2, 1, 1])));
    }

    #[test]
    fn sizes_that_cannot_fit_and_bad_system_figures_are_refused_by_name() {
        let c = Plan::parse("[hpl_mxp]\nn = 100000\nprecisions = [\"f64\"]\n", "p.toml").unwrap();
        let gib = 1u64 << 30;
        let e = c.sizes(Memory { per_rank: 8 * gib, ranks: 2 }, |_| [1, 1, 1]).unwrap_err().to_string();
        assert_eq!(e, "config p.toml: hpl_mxp.n = 100000: the matrix needs 80.00 GB over 2 rank(s), they have 17.18 GB; allowed: n ≤ 44928, or memory_fraction");
        // Memory not detected: given sizes run unchecked, fractions are refused.
        assert_eq!(c.sizes(Memory { per_rank: 0, ranks: 2 }, |_| [1, 1, 1]).unwrap().hpl_n, 100_000);
        let f = Plan::parse("[gemm]\nmemory_fraction = 0.5\nprecisions = [\"f64\"]\n", "p.toml").unwrap();
        let e = f.sizes(Memory { per_rank: 0, ranks: 1 }, |_| [1, 1, 1]).unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm.memory_fraction: this node's memory could not be detected; allowed here: a size (n or size)");
        let e = Plan::parse("[gemm]\nprecisions = [\"f64\"]\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm: missing size; allowed: n = ..., or memory_fraction = a number in (0, 0.95]");
        let e = Plan::parse("[gemm]\nn = 64\nmemory_fraction = 0.5\nprecisions = [\"f64\"]\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: gemm: both n and memory_fraction given; allowed: one of them");
        let e = Plan::parse("[stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nmemory_fraction = 1.5\niters = 1\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: stencil.memory_fraction = 1.5: must be in (0, 0.95]");
        let e = Plan::parse("[system]\nmemory_bandwidth_gbs = -1\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: system.memory_bandwidth_gbs = -1: must be a positive number");
        let e = Plan::parse("[system.sources]\nbandwidth = \"x\"\n", "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("config p.toml: system.sources.bandwidth: not a field of [system] (allowed: name, nodes,"), "{e}");
    }
}
