//! GEMM across ranks as HPCC's StarDGEMM does it: every rank multiplies its own matrices
//! (generated from its own seed), the time of a repetition is the slowest rank's, and the
//! rate is `ranks · 2mnk / time`. Every rank checks sampled entries of its C against a
//! twice-f64 reference; the run is valid only when every rank's result is.

use super::{Ctx, with_element};
use effcal_kernels::{Precision, cost};
use crate::error::Result;
use crate::calibration::{Accuracy, Efficiency, Peaks, Record};
use crate::timing::Stats;
use effcal_kernels::gemm::{self, GemmElement, GemmParams, accuracy};
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
    pub params: GemmParams,
    pub samples: usize,
}

impl GemmSettings {
    /// n×n times n×n in `precision` with its default scaling (per tensor for FP8), the
    /// default path, and `samples` entries of C checked per rank.
    pub fn square(precision: Precision, n: usize, samples: usize) -> Self {
        GemmSettings { precision, m: n, n, k: n, scaling: ScaleMode::default_for(precision), params: GemmParams::default(), samples }
    }
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
    let info = gemm::gemm(&mut c, &a, &b, &s.params)?;
    let times = ctx.time(&format!("gemm {} n={n}", s.precision), || {
        gemm::gemm(&mut c, &a, &b, &s.params).expect("checked above");
    });

    let acc = accuracy::check(
        &c,
        &a,
        &b,
        |i, l| uniform_f32(seed_a, (i * k + l) as u64) as f64,
        |l, j| uniform_f32(seed_b, (l * n + j) as u64) as f64,
        s.samples,
        stream(ctx.seed, 1_000_000 + rank),
    );
    let valid = ctx.world.all(acc.valid());
    let accuracy = Accuracy {
        rel_error_vs_f64: Some(ctx.world.max(acc.rel_error_vs_f64)),
        rel_error_vs_rounded: Some(ctx.world.max(acc.rel_error_vs_rounded)),
        arithmetic_bound: Some(acc.arithmetic_bound),
        expected_error: Some(acc.expected_error),
        samples: Some(acc.samples),
        ..Default::default()
    };

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
        ("path", json!(info.path.name())),
        ("arithmetic", json!(info.path.arithmetic(s.precision).name())),
        ("accumulation", json!(s.precision.compute().name())),
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
        results: Default::default(),
        bandwidth_gbs: None,
        checksum: None,
    })
}
