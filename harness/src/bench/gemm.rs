//! GEMM across ranks as HPCC's StarDGEMM does it: every rank multiplies its own matrices
//! (generated from its own seed), the time of a repetition is the slowest rank's, and the
//! rate is `ranks · 2mnk / time`. Every rank checks sampled entries of its C against a
//! twice-f64 reference; the run is valid only when every rank's result is.

use super::{Ctx, with_element};
use effcal_kernels::{Precision, cost};
use crate::error::Result;
use crate::calibration::{Accuracy, Efficiency, Peaks, Record};
use crate::timing::{self, Stats};
use crate::world::World;
use effcal_kernels::gemm::{self, Backend, GemmElement, GemmParams, accuracy};
use effcal_kernels::precision::scaling::{KAxis, Quantized, ScaleMode};
use effcal_kernels::rng::{stream, uniform_f32};
use serde_json::json;

/// One GEMM measurement.
#[derive(Clone, Copy, Debug)]
pub struct GemmSettings {
    pub precision: Precision,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub scaling: ScaleMode,
    /// How the path is chosen; `params.backend` is set from it.
    pub path: PathChoice,
    pub params: GemmParams,
    pub samples: usize,
}

impl GemmSettings {
    /// n×n times n×n in `precision` with its default scaling (per tensor for FP8), the
    /// fastest path, and `samples` entries of C checked per rank.
    pub fn square(precision: Precision, n: usize, samples: usize) -> Self {
        GemmSettings { precision, m: n, n, k: n, scaling: ScaleMode::default_for(precision), path: PathChoice::Fastest, params: GemmParams::default(), samples }
    }
}

/// How a GEMM's path is chosen (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChoice {
    /// Time every path this CPU has for the precision (see [`probe`]) and keep the faster:
    /// an instruction that exists is not taken to be fast (Emerald Rapids' `vdpbf16ps`
    /// runs at half its f32 FMA rate, where widening bf16 to f32, exact, wins).
    Fastest,
    /// This backend, as asked: auto (effcal's own kernel where the CPU has one) or portable.
    Fixed(Backend),
}

impl PathChoice {
    pub const ALLOWED: &str = "fastest, auto, portable";

    pub const fn name(self) -> &'static str {
        match self {
            Self::Fastest => "fastest",
            Self::Fixed(b) => b.name(),
        }
    }
}

impl PathChoice {
    /// Sets `params.backend` as chosen: the backend asked for, or the faster one of the
    /// probe `probe` runs; returns the probe's outcome where one ran.
    pub fn apply(self, params: &mut GemmParams, probe: impl FnOnce() -> Option<Probe>) -> Option<Probe> {
        match self {
            Self::Fixed(backend) => {
                params.backend = backend;
                None
            }
            Self::Fastest => {
                let outcome = probe();
                if let Some((backend, _)) = &outcome {
                    params.backend = *backend;
                }
                outcome
            }
        }
    }
}

impl std::str::FromStr for PathChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fastest" => Ok(Self::Fastest),
            _ => s.parse().map(Self::Fixed).map_err(|_| format!("unknown backend '{s}' (allowed: {})", Self::ALLOWED)),
        }
    }
}

/// A probe's outcome: the faster backend and each path's time (name, seconds).
pub type Probe = (Backend, Vec<(String, f64)>);

/// Chooses between the paths `p` has on this CPU ([`gemm::backends`]) by timing
/// `multiply(backend)` (which returns the path it took): once untimed, then twice, for each
/// (time = max over ranks, the least of the two); every rank gets the same answer. None
/// where there is one path.
pub fn probe(ctx: &Ctx, p: Precision, acc: gemm::Accumulate, mut multiply: impl FnMut(Backend) -> gemm::GemmPath) -> Option<Probe> {
    let backends = gemm::backends(p, acc);
    if backends.len() < 2 {
        return None;
    }
    let mut times = Vec::new();
    for &backend in backends {
        let path = multiply(backend);
        let best = timing::time_reps(&ctx.world, 0, 2, || { multiply(backend); }, || {}).into_iter().fold(f64::INFINITY, f64::min);
        times.push((backend, path.name().to_string(), best));
    }
    let fastest = times.iter().min_by(|x, y| x.2.total_cmp(&y.2)).map(|x| x.0)?;
    Some((fastest, times.into_iter().map(|(_, name, t)| (name, t)).collect()))
}

/// The blocking `path` ran with `params` as JSON: {kc, mc, nc} for effcal's packed
/// kernels, null for the paths that block themselves.
pub fn blocking_json(path: Option<gemm::GemmPath>, params: &GemmParams) -> serde_json::Value {
    path.and_then(|p| gemm::blocking(p, params)).map_or(serde_json::Value::Null, |b| json!({"kc": b.kc, "mc": b.mc, "nc": b.nc}))
}

/// A probe's times as JSON: {path: seconds}, null without a probe.
pub fn probe_json(probe: &Option<Probe>) -> serde_json::Value {
    probe.as_ref().map_or(serde_json::Value::Null, |(_, times)| times.iter().map(|(name, t)| (name.clone(), json!(t))).collect::<serde_json::Map<_, _>>().into())
}

pub fn measure(ctx: &Ctx, s: &GemmSettings, peaks: Option<&Peaks>) -> Result<Record> {
    with_element!(s.precision, run(ctx, s, peaks))
}

fn run<T: GemmElement>(ctx: &Ctx, s: &GemmSettings, peaks: Option<&Peaks>) -> Result<Record> {
    let (m, n, k) = (s.m, s.n, s.k);
    let rank = ctx.world.rank() as u64;
    let (seed_a, seed_b) = (stream(ctx.seed, 2 * rank), stream(ctx.seed, 2 * rank + 1));
    let a = Quantized::<T>::uniform(seed_a, m, k, KAxis::Cols, s.scaling);
    let b = Quantized::<T>::uniform(seed_b, k, n, KAxis::Rows, s.scaling);
    let mut c = vec![T::Acc::default(); m * n];

    // Argument errors are the same on every rank: find them before the collective loop.
    gemm::gemm(&mut c, &a, &b, &s.params)?;
    let mut params = s.params;
    let probe = s.path.apply(&mut params, || probe(ctx, s.precision, s.params.accumulate, |backend| gemm::gemm(&mut c, &a, &b, &GemmParams { backend, ..s.params }).expect("checked above").path));
    let info = gemm::gemm(&mut c, &a, &b, &params).expect("checked above");
    let times = ctx.time(&format!("gemm {} n={n}", s.precision), || {
        gemm::gemm(&mut c, &a, &b, &params).expect("checked above");
    });

    let acc = accuracy::check(
        &c,
        &a,
        &b,
        |i, l| uniform_f32(seed_a, (i * k + l) as u64) as f64,
        |l, j| uniform_f32(seed_b, (l * n + j) as u64) as f64,
        s.samples,
        stream(ctx.seed, 1_000_000 + rank),
        params.accumulate,
    );
    let (valid, accuracy) = over_ranks(&ctx.world, &acc);

    let ranks = ctx.world.size();
    let flops = ranks as f64 * cost::gemm::flops(m, n, k);
    let time_s = Stats::of(&times);
    let gflops = Stats::rate(flops / 1e9, &time_s);
    let efficiency = Efficiency::of(gflops.median, peaks, s.precision);
    let params = [
        ("m", json!(m)),
        ("n", json!(n)),
        ("k", json!(k)),
        ("ranks", json!(ranks)),
        ("threads_per_rank", json!(ctx.threads)),
        ("scaling", json!(s.scaling.name())),
        ("backend", json!(s.path.name())),
        ("path", json!(info.path.name())),
        ("arithmetic", json!(info.path.arithmetic(s.precision).name())),
        ("accumulation", json!(params.accumulate.name(s.precision))),
        ("accumulation_block", json!(params.accumulate.block())),
        ("blocking", blocking_json(Some(info.path), &params)),
    ];
    Ok(Record {
        kernel: "gemm".into(),
        precision: s.precision.name().into(),
        params: params.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        flop_convention: cost::gemm::FLOP_CONVENTION.into(),
        time_s,
        gflops,
        efficiency,
        accuracy,
        valid,
        failure: (!valid).then(|| "an entry of C is outside the arithmetic error bound".to_string()),
        results: [("path_probe_s".to_string(), probe_json(&probe))].into_iter().filter(|(_, v)| !v.is_null()).collect(),
        bandwidth_gbs: None,
        checksum: None,
    })
}

/// A GEMM record's accuracy from each rank's sampled check: valid on every rank, the errors
/// the largest over ranks (collectives: every rank calls it).
pub(super) fn over_ranks(world: &World, acc: &accuracy::Accuracy) -> (bool, Accuracy) {
    let accuracy = Accuracy {
        rel_error_vs_f64: Some(world.max(acc.rel_error_vs_f64)),
        rel_error_vs_rounded: Some(world.max(acc.rel_error_vs_rounded)),
        arithmetic_bound: Some(acc.arithmetic_bound),
        expected_error: Some(acc.expected_error),
        samples: Some(acc.samples),
        ..Default::default()
    };
    (world.all(acc.valid()), accuracy)
}
