//! Run plans (TOML). Unknown keys and bad values are errors that name the file, the key and
//! what is allowed, before any measurement starts.

use crate::error::{Error, Result};
use effcal_kernels::Precision;
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
    #[serde(default)]
    pub system: SystemSection,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
}

impl Default for RunSection {
    fn default() -> Self {
        Self { reps: 5, warmup: 1, seed: 42 }
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
    pub n: usize,
    pub precisions: Vec<String>,
    #[serde(default = "default_fp8_scaling")]
    pub scaling_fp8: String,
    #[serde(default = "default_samples")]
    pub samples: usize,
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
    pub n: usize,
    pub precisions: Vec<String>,
    /// Block size [default: per precision, see `hpl::default_nb`].
    pub nb: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StencilSection {
    /// 7pt, himeno, 27pt.
    pub kinds: Vec<String>,
    pub precisions: Vec<String>,
    /// Grid points NX NY NZ, boundary planes included.
    pub size: [usize; 3],
    pub iters: usize,
    /// Halo exchange overlapped with the interior.
    #[serde(default = "default_true")]
    pub overlap: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSection {
    pub clock_ghz: Option<f64>,
    #[serde(default)]
    pub flop_per_cycle: BTreeMap<String, f64>,
}

/// A plan with its values checked and parsed.
#[derive(Clone, Debug)]
pub struct Checked {
    pub plan: Plan,
    pub gemm_precisions: Vec<Precision>,
    pub hpl_precisions: Vec<Precision>,
    pub stencil_kinds: Vec<effcal_kernels::stencil::Kind>,
    pub stencil_precisions: Vec<Precision>,
    pub fp8_scaling: ScaleMode,
    pub flop_per_cycle: BTreeMap<Precision, f64>,
}

impl Plan {
    /// Parses and checks a plan; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Checked> {
        let err = |message: String| Error::Config { file: file.to_string(), message };
        let plan: Plan = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        if plan.run.reps == 0 {
            return Err(err("run.reps = 0: must be at least 1".into()));
        }
        if !(plan.peak.fma_seconds > 0.0 && plan.peak.fma_seconds <= 60.0) {
            return Err(err(format!("peak.fma_seconds = {}: must be in (0, 60]", plan.peak.fma_seconds)));
        }
        let precision = |key: &str, s: &str| {
            s.parse::<Precision>().map_err(|_| err(format!("{key}: unknown precision '{s}' (allowed: {})", Precision::allowed())))
        };
        let mut gemm_precisions = Vec::new();
        let mut fp8_scaling = ScaleMode::Tensor;
        if let Some(g) = &plan.gemm {
            if g.n == 0 || g.n > 65_536 {
                return Err(err(format!("gemm.n = {}: must be in 1..=65536", g.n)));
            }
            for s in &g.precisions {
                gemm_precisions.push(precision("gemm.precisions", s)?);
            }
            fp8_scaling = g
                .scaling_fp8
                .parse()
                .map_err(|_| err(format!("gemm.scaling_fp8: unknown scaling '{}' (allowed: none, tensor, mx)", g.scaling_fp8)))?;
        }
        let mut hpl_precisions = Vec::new();
        if let Some(h) = &plan.hpl_mxp {
            if h.n < 2 || h.n > 4_000_000 {
                return Err(err(format!("hpl_mxp.n = {}: must be in 2..=4000000", h.n)));
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
            if st.size.iter().any(|&g| g < 3) {
                return Err(err(format!("stencil.size = {:?}: at least 3 points per dimension", st.size)));
            }
            if st.iters == 0 {
                return Err(err("stencil.iters = 0: must be at least 1".into()));
            }
        }
        let mut flop_per_cycle = BTreeMap::new();
        for (name, &v) in &plan.system.flop_per_cycle {
            let p = precision("system.flop_per_cycle", name)?;
            if !(v > 0.0) {
                return Err(err(format!("system.flop_per_cycle.{name} = {v}: must be positive")));
            }
            flop_per_cycle.insert(p, v);
        }
        if let Some(c) = plan.system.clock_ghz.filter(|c| !(*c > 0.0 && *c < 20.0)) {
            return Err(err(format!("system.clock_ghz = {c}: must be in (0, 20)")));
        }
        Ok(Checked { plan, gemm_precisions, hpl_precisions, stencil_kinds, stencil_precisions, fp8_scaling, flop_per_cycle })
    }

    /// Reads and checks a plan file.
    pub fn load(path: &std::path::Path) -> Result<Checked> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }
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
    }
}
