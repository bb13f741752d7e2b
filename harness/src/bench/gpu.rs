//! The GPU drivers (`--device gpu`): each rank drives one GPU (the one its position among
//! its host's ranks selects) through effcal-gpu, with the CPU drivers' conventions: the
//! same inputs from the same seeds, the same sampled check of C against a twice-f64
//! reference, warm-up discarded, a barrier before each timed repetition, time = slowest
//! rank. A repetition is a batch of launches long enough to time with the host's clock
//! (at least `min_rep_s`), ended by a stream synchronisation; the time per launch is the
//! batch's over its launches. Energy comes from the board's counter over the timed
//! repetitions (NVML), with the SM clock and any throttling read while they run.

use super::Ctx;
use crate::calibration::{Accuracy, Efficiency, GpuEnvironment, Peaks, PrecisionPeak, Record, Triad};
use crate::error::{Error, Result};
use crate::timing::Stats;
use effcal_gpu::gemm::{Arith, DeviceGemm, Layout, first_operand};
use effcal_gpu::kernels::{FmaPeak, Kernels, Triad as DeviceTriad};
use effcal_gpu::power::Power;
use effcal_gpu::{Gpu, GpuError};
use effcal_kernels::cost;
use effcal_kernels::gemm::accuracy;
use effcal_kernels::precision::scaling::{KAxis, Quantized, ScaleMode};
use effcal_kernels::precision::{E4M3, E5M2, Element, bf16, f16};
use effcal_kernels::rng::{fill_uniform, stream, uniform_f32};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// This rank's GPU, its energy counter (or why there is none) and effcal's own kernels
/// (compiled when first needed: GEMM needs no NVRTC).
pub struct Device {
    pub gpu: Gpu,
    pub(crate) power: std::result::Result<Power, String>,
    kernels: Option<Kernels>,
}

/// A GPU error as the harness reports it: no usable GPU is bad input (`--device gpu` on a
/// machine without one, exit 2, nothing measured); anything else is the device's (exit 3).
pub(crate) fn error(e: GpuError) -> Error {
    match e {
        GpuError::Unavailable(why) => Error::invalid("--device", "gpu", format!("a machine with a usable NVIDIA GPU ({why}); nothing was measured: --device cpu measures the CPU")),
        e => Error::Gpu(e.to_string()),
    }
}

/// `r` where every rank's is Ok; else each rank's own error, or, on the ranks that had
/// none, one that says another rank failed (so no rank goes on into a collective alone).
pub(crate) fn agreed<T>(ctx: &Ctx, r: Result<T>) -> Result<T> {
    if ctx.world.all(r.is_ok()) {
        return r;
    }
    // Refused alike everywhere (no GPU on any rank): bad input, said once by rank 0.
    // Refused on some ranks only: each of those says its own reason.
    let everywhere = ctx.world.all(matches!(r, Err(Error::InvalidInput { .. })));
    match r {
        Err(e @ Error::InvalidInput { .. }) if everywhere => Err(e),
        Err(e) => Err(Error::Gpu(e.to_string())),
        Ok(_) => Err(Error::Gpu("another rank could not go on (it says why)".into())),
    }
}

/// The first GPU two ranks of one host would share, said as such: `hosts[r]` and `buses[r]`
/// are rank r's host and its GPU's PCI bus id.
fn shared_gpu(hosts: &[String], buses: &[String]) -> Option<String> {
    let mut seen = BTreeMap::new();
    for (r, key) in hosts.iter().zip(buses).enumerate() {
        if let Some(first) = seen.insert(key, r) {
            return Some(format!("ranks {first} and {r} on {} would both use the GPU at {}", key.0, key.1));
        }
    }
    None
}

impl Device {
    /// Opens this rank's GPU: the i-th of the GPUs the process sees for the i-th rank on
    /// its host, or its only one (Slurm's --gpus-per-task, or a per-rank
    /// CUDA_VISIBLE_DEVICES). Refused on every rank when two ranks of a host would share a
    /// GPU (found by PCI bus id, so it holds however the GPUs were handed out).
    pub fn open(ctx: &Ctx) -> Result<Self> {
        let me = ctx.world.rank();
        let local = (0..me).filter(|&r| ctx.hosts[r] == ctx.node.host).count();
        let gpu = agreed(ctx, Gpu::open(local).map_err(error))?;
        let buses = ctx.world.all_gather_string(&gpu.info.pci_bus_id);
        if let Some(shared) = shared_gpu(&ctx.hosts, &buses) {
            return Err(Error::invalid("--device", "gpu", format!("one GPU per rank: {shared}; start at most as many ranks per node as it has GPUs (with Slurm: --ntasks-per-node = --gpus-per-node)")));
        }
        let power = Power::open(&gpu.info.pci_bus_id);
        Ok(Device { gpu, power, kernels: None })
    }

    fn kernels(&mut self) -> std::result::Result<&Kernels, GpuError> {
        if self.kernels.is_none() {
            self.kernels = Some(Kernels::load(&self.gpu)?);
        }
        Ok(self.kernels.as_ref().expect("loaded above"))
    }

    /// What the calibration says of the GPU (rank 0's; every rank runs the same kind).
    pub fn environment(&self, sm_clock_mhz_under_load: Option<u32>) -> GpuEnvironment {
        let i = &self.gpu.info;
        GpuEnvironment {
            name: i.name.clone(),
            compute_capability: format!("{}.{}", i.compute_capability.0, i.compute_capability.1),
            memory_bytes: i.memory_bytes,
            multiprocessors: i.multiprocessors,
            l2_bytes: i.l2_bytes,
            pci_bus_id: i.pci_bus_id.clone(),
            visible: i.visible,
            driver_version: i.driver_version.clone(),
            cuda_driver_api: i.cuda_driver_api.clone(),
            cublas_version: i.cublas_version.clone(),
            spec_entry: i.spec.map(|s| s.name.clone()),
            spec_source: i.spec.map(|s| s.source.clone()),
            power_limit_w: self.power.as_ref().ok().and_then(|p| p.limit_w),
            power_unavailable: self.power.as_ref().err().cloned(),
            sm_clock_mhz_under_load,
            mpi_transfers: Some("host-staged".into()),
            mpi_cuda_aware: crate::world::cuda_aware(),
        }
    }
}

/// What a batched measurement found: seconds per launch of each timed repetition (slowest
/// rank), the launches per repetition, and the power over the timed repetitions.
pub(crate) struct Batched {
    pub(crate) per_launch: Vec<f64>,
    pub(crate) launches: usize,
    power: Option<PowerReading>,
    /// Why there is no power reading.
    no_power: Option<String>,
}

/// Energy over the timed repetitions, summed over the ranks' GPUs.
#[derive(Clone, Debug)]
struct PowerReading {
    joules: f64,
    seconds: f64,
    mean_w: f64,
    /// The slowest GPU's median SM clock over the repetitions (one reading each, taken
    /// while its launches run).
    sm_clock_mhz: Option<u32>,
    /// Every reason any GPU's clocks were held down at a reading (NVML's names).
    throttle: Vec<String>,
}

impl PowerReading {
    /// The record's `results.power`: the reading, with `work_per_w` (GFLOP/s per W, or
    /// GB/s per W for bandwidth) under the name given.
    fn json(&self, name: &str, rate: f64, limit_w: Option<f64>) -> Value {
        json!({
            "joules": self.joules,
            "seconds": self.seconds,
            "mean_w": self.mean_w,
            name: rate / self.mean_w,
            "sm_clock_mhz": self.sm_clock_mhz,
            "throttle": self.throttle,
            "limit_w_per_gpu": limit_w,
            "gpus": null,
        })
    }
}

/// Times `launch` (which queues one unit of work) in batches: one untimed launch (lazy
/// set-up, JIT), one timed launch to size the batch, then ctx's warm-up and timed
/// repetitions of `launches` launches and a synchronisation each.
pub(crate) fn batched(ctx: &Ctx, dev: &Device, what: &str, min_rep_s: f64, mut launch: impl FnMut() -> std::result::Result<(), GpuError>) -> Result<Batched> {
    let first = launch().and_then(|()| dev.gpu.synchronize()).map_err(error);
    agreed(ctx, first)?;
    let t = Instant::now();
    let probe = launch().and_then(|()| dev.gpu.synchronize()).map_err(error);
    let one = ctx.world.max(t.elapsed().as_secs_f64());
    agreed(ctx, probe)?;
    let launches = ((min_rep_s / one.max(1e-7)).ceil() as usize).clamp(1, 1_000_000);
    let mut failed: Option<GpuError> = None;
    let mut window = None;
    let mut clocks: Vec<u32> = Vec::new();
    let mut throttle: Vec<&'static str> = Vec::new();
    let mut rep = 0usize;
    let warmup = ctx.warmup;
    let power = dev.power.as_ref().ok();
    let times = ctx.time(what, || {
        if failed.is_some() {
            return;
        }
        if rep == warmup {
            window = power.and_then(Power::start);
        }
        let queued = (0..launches).try_for_each(|_| launch());
        // Read while the queued launches run.
        if rep >= warmup
            && let Some(p) = power
        {
            clocks.extend(p.sm_clock_mhz());
            for why in p.throttled().unwrap_or_default() {
                if !throttle.contains(&why) {
                    throttle.push(why);
                }
            }
        }
        if let Err(e) = queued.and_then(|()| dev.gpu.synchronize()) {
            failed = Some(e);
        }
        rep += 1;
    });
    let energy = window.and_then(|w| power?.finish(w));
    agreed(ctx, failed.map_or(Ok(()), |e| Err(error(e))))?;
    let have = ctx.world.all(energy.is_some());
    let (power, no_power) = if have {
        let e = energy.expect("every rank has one");
        let joules = ctx.world.sum(e.joules);
        let seconds = ctx.world.max(e.seconds);
        clocks.sort_unstable();
        let median = clocks.get(clocks.len() / 2).copied();
        let slowest = ctx.world.min(median.map_or(f64::INFINITY, f64::from));
        let reasons: Vec<String> = ctx.world.all_gather_string(&throttle.join(",")).iter().flat_map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>()).collect();
        let mut unique: Vec<String> = Vec::new();
        for r in reasons {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        (Some(PowerReading { joules, seconds, mean_w: joules / seconds, sm_clock_mhz: slowest.is_finite().then_some(slowest as u32), throttle: unique }), None)
    } else {
        let why = match &dev.power {
            Err(why) => why.clone(),
            Ok(_) => "the energy counter could not be read over the repetitions".into(),
        };
        (None, Some(format!("{why} (on rank {} or another)", ctx.world.rank())))
    };
    Ok(Batched { per_launch: times.iter().map(|t| t / launches as f64).collect(), launches, power, no_power })
}

/// Puts a batched measurement's power into a record's results (or why there is none).
pub(crate) fn record_power(results: &mut BTreeMap<String, Value>, b: &Batched, name: &str, rate: f64, dev: &Device, gpus: usize) {
    match &b.power {
        Some(p) => {
            let mut v = p.json(name, rate, dev.power.as_ref().ok().and_then(|p| p.limit_w));
            v["gpus"] = json!(gpus);
            results.insert("power".into(), v);
        }
        None => {
            results.insert("power_unavailable".into(), json!(b.no_power));
        }
    }
}

/// Element types whose memory is exactly their bits (no padding, no invalid patterns the
/// device could not read): what goes to and comes back from cuBLASLt.
trait Raw: Copy + Send + Sync {
    fn from_ne(bytes: &[u8]) -> Self;
}
macro_rules! raw {
    ($($t:ty => $from:expr),*) => {$(impl Raw for $t { fn from_ne(b: &[u8]) -> Self { $from(b) } })*};
}
raw!(
    f64 => |b: &[u8]| f64::from_ne_bytes(b.try_into().expect("8 bytes")),
    f32 => |b: &[u8]| f32::from_ne_bytes(b.try_into().expect("4 bytes")),
    i32 => |b: &[u8]| i32::from_ne_bytes(b.try_into().expect("4 bytes")),
    i8 => |b: &[u8]| b[0] as i8,
    bf16 => |b: &[u8]| bf16::from_bits(u16::from_ne_bytes(b.try_into().expect("2 bytes"))),
    f16 => |b: &[u8]| f16::from_bits(u16::from_ne_bytes(b.try_into().expect("2 bytes"))),
    E4M3 => |b: &[u8]| E4M3(b[0]),
    E5M2 => |b: &[u8]| E5M2(b[0])
);

fn bytes<T: Raw>(v: &[T]) -> &[u8] {
    // SAFETY: `Raw` types are plain bits without padding; the slice covers `v` exactly.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn from_bytes<T: Raw>(b: &[u8]) -> Vec<T> {
    b.chunks_exact(size_of::<T>()).map(T::from_ne).collect()
}

/// One GPU GEMM measurement.
#[derive(Clone, Copy, Debug)]
pub struct GpuGemmSettings {
    pub arith: Arith,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// none, or tensor (FP8 only: cuBLASLt's per-tensor scales).
    pub scaling: ScaleMode,
    pub samples: usize,
    /// Least seconds per timed repetition.
    pub min_rep_s: f64,
}

impl GpuGemmSettings {
    pub fn square(arith: Arith, n: usize, samples: usize) -> Self {
        let scaling = if arith.scaled() { ScaleMode::Tensor } else { ScaleMode::None };
        GpuGemmSettings { arith, m: n, n, k: n, scaling, samples, min_rep_s: 0.2 }
    }

    /// The scalings a GPU GEMM of `arith` takes.
    pub fn check_scaling(arith: Arith, scaling: ScaleMode) -> Result<()> {
        match (arith.scaled(), scaling) {
            (_, ScaleMode::None) | (true, ScaleMode::Tensor) => Ok(()),
            (true, ScaleMode::Mx) => Err(Error::invalid("--scaling", "mx", "none or tensor for e4m3/e5m2 on --device gpu (MX block scales need Blackwell's block-scaled GEMMs, which effcal does not drive yet)")),
            (false, s) => Err(Error::invalid("--scaling", s.name(), format!("none for {} on --device gpu (scaling applies to e4m3 and e5m2)", arith.name()))),
        }
    }
}

/// A GEMM on every rank's GPU: a record like the CPU's, with the device, library, algorithm
/// and power. An arithmetic the device has no kernel for is refused (`--precision`).
pub fn gemm(ctx: &Ctx, dev: &Device, s: &GpuGemmSettings, peaks: Option<&Peaks>) -> Result<Record> {
    match s.arith {
        Arith::F64 => float::<f64>(ctx, dev, s, peaks),
        Arith::F32 | Arith::Tf32 => float::<f32>(ctx, dev, s, peaks),
        Arith::Bf16 => float::<bf16>(ctx, dev, s, peaks),
        Arith::F16 => float::<f16>(ctx, dev, s, peaks),
        Arith::E4m3 => float::<E4M3>(ctx, dev, s, peaks),
        Arith::E5m2 => float::<E5M2>(ctx, dev, s, peaks),
        Arith::Int8 => int8(ctx, dev, s, peaks),
    }
}

/// The device GEMM of row-major A (m×k) and B (k×n), as cuBLASLt is given them; an
/// arithmetic without a kernel is refused as `--precision` (alike on every rank).
fn device_gemm<'g, T: Raw>(ctx: &Ctx, dev: &'g Device, s: &GpuGemmSettings, a: &[T], b: &[T], scales: [f32; 2]) -> Result<DeviceGemm<'g>> {
    let first = first_operand(b, s.k, s.n);
    let made = DeviceGemm::new(&dev.gpu, s.arith, Layout::row_major(s.m, s.n, s.k), bytes(&first), bytes(a), scales).map_err(|e| match e {
        GpuError::Unsupported(why) => Error::invalid("--precision", s.arith.name(), format!("a GEMM this GPU has: {why}")),
        e => error(e),
    });
    agreed(ctx, made)
}

/// Times the GEMM; returns this rank's C and the batch.
fn timed(ctx: &Ctx, dev: &Device, s: &GpuGemmSettings, mut g: DeviceGemm) -> Result<(Vec<u8>, Batched)> {
    let what = format!("gpu gemm {} n={}", s.arith.name(), s.n);
    let b = batched(ctx, dev, &what, s.min_rep_s, || g.launch())?;
    let c = agreed(ctx, g.result_bytes().map_err(error))?;
    Ok((c, b))
}

fn float<T: Element + Raw>(ctx: &Ctx, dev: &Device, s: &GpuGemmSettings, peaks: Option<&Peaks>) -> Result<Record>
where
    T::Acc: Raw,
{
    let (m, n, k) = (s.m, s.n, s.k);
    let rank = ctx.world.rank() as u64;
    let (seed_a, seed_b) = (stream(ctx.seed, 2 * rank), stream(ctx.seed, 2 * rank + 1));
    let a = Quantized::<T>::uniform(seed_a, m, k, KAxis::Cols, s.scaling);
    let b = Quantized::<T>::uniform(seed_b, k, n, KAxis::Rows, s.scaling);
    // cuBLASLt's scales multiply the stored values back: real = stored / effcal's factor.
    let scales = [1.0 / b.tensor_scale(), 1.0 / a.tensor_scale()];
    let g = device_gemm(ctx, dev, s, &a.data, &b.data, scales)?;
    let (algo_id, workspace) = (g.algo_id, g.algo_workspace);
    let (c, batch) = timed(ctx, dev, s, g)?;
    let c: Vec<T::Acc> = from_bytes(&c);
    let (bound, model) = s.arith.arithmetic_bound(k);
    let acc = accuracy::check_bounded(
        &c,
        &a,
        &b,
        |i, l| uniform_f32(seed_a, (i * k + l) as u64) as f64,
        |l, j| uniform_f32(seed_b, (l * n + j) as u64) as f64,
        s.samples,
        stream(ctx.seed, 1_000_000 + rank),
        bound,
    );
    let (valid, accuracy) = super::gemm::over_ranks(&ctx.world, &acc);
    Ok(gemm_record(ctx, dev, s, peaks, batch, accuracy, valid, model, algo_id, workspace))
}

/// INT8 × INT8 into INT32: inputs round(127·u) of the same uniform streams, and sampled
/// entries of C checked exactly against an i64 sum (integer arithmetic has no error).
fn int8(ctx: &Ctx, dev: &Device, s: &GpuGemmSettings, peaks: Option<&Peaks>) -> Result<Record> {
    let (m, n, k) = (s.m, s.n, s.k);
    let rank = ctx.world.rank() as u64;
    let ints = |seed: u64, len: usize| {
        let mut u = vec![0f32; len];
        fill_uniform(&mut u, seed, 0);
        u.iter().map(|x| (x * 127.0).round() as i8).collect::<Vec<i8>>()
    };
    let (a, b) = (ints(stream(ctx.seed, 2 * rank), m * k), ints(stream(ctx.seed, 2 * rank + 1), k * n));
    let g = device_gemm(ctx, dev, s, &a, &b, [1.0, 1.0])?;
    let (algo_id, workspace) = (g.algo_id, g.algo_workspace);
    let (c, batch) = timed(ctx, dev, s, g)?;
    let c: Vec<i32> = from_bytes(&c);
    let seed = stream(ctx.seed, 1_000_000 + rank);
    let mut worst = 0f64;
    let mut checked = 0;
    for t in 0..s.samples.min(m * n) {
        let r = effcal_kernels::rng::mix(seed, t as u64);
        let (i, j) = ((r % m as u64) as usize, ((r >> 32) % n as u64) as usize);
        let (exact, scale) = (0..k).fold((0i64, 0i64), |(e, sc), l| {
            let p = a[i * k + l] as i64 * b[l * n + j] as i64;
            (e + p, sc + p.abs())
        });
        let err = (c[i * n + j] as i64 - exact).abs() as f64;
        worst = worst.max(if scale > 0 { err / scale as f64 } else { err });
        checked += 1;
    }
    let valid = ctx.world.all(worst == 0.0);
    let accuracy = Accuracy { rel_error_vs_rounded: Some(ctx.world.max(worst)), arithmetic_bound: Some(0.0), samples: Some(checked), ..Default::default() };
    let (_, model) = s.arith.arithmetic_bound(k);
    Ok(gemm_record(ctx, dev, s, peaks, batch, accuracy, valid, model, algo_id, workspace))
}

#[allow(clippy::too_many_arguments)]
fn gemm_record(ctx: &Ctx, dev: &Device, s: &GpuGemmSettings, peaks: Option<&Peaks>, batch: Batched, accuracy: Accuracy, valid: bool, model: &str, algo_id: i32, workspace: usize) -> Record {
    let ranks = ctx.world.size();
    let flops = ranks as f64 * cost::gemm::flops(s.m, s.n, s.k);
    let time_s = Stats::of(&batch.per_launch);
    let gflops = Stats::rate(flops / 1e9, &time_s);
    let efficiency = Efficiency::of_name(gflops.median, peaks, s.arith.name());
    let info = &dev.gpu.info;
    let params = [
        ("m", json!(s.m)),
        ("n", json!(s.n)),
        ("k", json!(s.k)),
        ("ranks", json!(ranks)),
        ("device", json!("gpu")),
        ("gpu", json!(info.name)),
        ("scaling", json!(s.scaling.name())),
        ("path", json!(format!("cublaslt-{algo_id}"))),
        ("library", json!(format!("cuBLASLt {}", info.cublas_version))),
        ("algo_id", json!(algo_id)),
        ("algo_workspace_bytes", json!(workspace)),
        ("arithmetic", json!(s.arith.arithmetic())),
        ("bound_model", json!(model)),
        ("launches_per_rep", json!(batch.launches)),
    ];
    let mut results = BTreeMap::new();
    record_power(&mut results, &batch, "gflops_per_w", gflops.median, dev, ranks);
    Record {
        kernel: "gemm".into(),
        precision: s.arith.name().into(),
        params: params.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        flop_convention: format!("{}; INT8: operations, GOP/s", cost::gemm::FLOP_CONVENTION),
        time_s,
        gflops,
        efficiency,
        accuracy,
        valid,
        failure: (!valid).then(|| if s.arith == Arith::Int8 { "an entry of C differs from the exact integer sum".to_string() } else { "an entry of C is outside the arithmetic error bound".to_string() }),
        results,
        bandwidth_gbs: None,
        checksum: None,
    }
}

/// What `effcal peak --device gpu` measures.
#[derive(Clone, Copy, Debug)]
pub struct GpuPeakSettings {
    /// Seconds per repetition of the FMA kernels.
    pub fma_seconds: f64,
    /// Order of the GEMMs that measure the tensor-core peaks.
    pub gemm_n: usize,
    /// f64 elements per triad array per GPU (clamped to the free memory); None: no triad.
    pub triad_elements: Option<usize>,
}

/// The spec table's dense figure of `name` for `gpus` GPUs, GFLOP/s, and where it is from.
fn theoretical(dev: &Device, name: &str, gpus: usize) -> (Option<f64>, String) {
    match dev.gpu.info.spec {
        Some(spec) => match spec.dense.get(name) {
            Some(tf) => (Some(tf * 1e3 * gpus as f64), format!("spec: {} dense {name} × {gpus} GPU(s) ({})", spec.name, spec.source)),
            None => (None, format!("unknown: configs/gpus.toml's {} has no {name} figure", spec.name)),
        },
        None => (None, format!("unknown: '{}' is not in configs/gpus.toml", dev.gpu.info.name)),
    }
}

fn peak_row(dev: &Device, name: &str, compute: &str, rate: Stats, isa: String, gpus: usize) -> PrecisionPeak {
    let (theoretical_gflops, source) = theoretical(dev, name, gpus);
    PrecisionPeak {
        compute_precision: compute.into(),
        theoretical_gflops,
        flop_per_cycle_per_core: None,
        flop_per_cycle_source: source,
        empirical_gflops: rate.max,
        empirical: rate,
        isa,
        empirical_over_theoretical: None,
        suspect: None,
    }
}

/// The GPU peaks of the run's GPUs (one per rank): the spec table's dense figures as the
/// theoretical peaks, against measured rates: effcal's FMA kernel on the CUDA cores (f32,
/// f64_fma), cuBLASLt GEMMs of order `gemm_n` for the tensor-core arithmetics and FP64
/// (cuBLAS's DGEMM runs on FP64 tensor cores), and the triad on device memory. An
/// arithmetic the GPU has no GEMM for is left out, and said so; so is one whose GEMM
/// failed its check. Returns the peaks, the GPU's description, and what was said.
pub fn peaks(ctx: &Ctx, dev: &mut Device, s: &GpuPeakSettings) -> Result<(Peaks, GpuEnvironment, String)> {
    let gpus = ctx.world.size();
    let mut notes = String::new();
    let mut per_precision = BTreeMap::new();
    let mut sm_clock = None;
    agreed(ctx, dev.kernels().map(|_| ()).map_err(error))?;
    for (name, f64) in [("f64_fma", true), ("f32", false)] {
        // Size the launch to fma_seconds from a short one.
        let mut fma = agreed(ctx, FmaPeak::new(&dev.gpu, 2, 1 << 12).map_err(error))?;
        let t = Instant::now();
        let k = dev.kernels.as_ref().expect("loaded above");
        agreed(ctx, fma.launch(&dev.gpu, k, f64).and_then(|()| dev.gpu.synchronize()).map_err(error))?;
        let short = ctx.world.max(t.elapsed().as_secs_f64());
        fma.iters = ((fma.iters as f64 * s.fma_seconds / short.max(1e-6)) as u64).max(1 << 12);
        let flops = fma.flops();
        let b = batched(ctx, dev, &format!("gpu peak {name}"), s.fma_seconds, || fma.launch(&dev.gpu, k, f64))?;
        let rate = Stats::rate(flops * gpus as f64 / 1e9, &Stats::of(&b.per_launch));
        if f64 {
            sm_clock = b.power.as_ref().and_then(|p| p.sm_clock_mhz);
        }
        let compute = if f64 { "f64" } else { "f32" };
        per_precision.insert(name.to_string(), peak_row(dev, name, compute, rate, "CUDA FMA kernel (NVRTC)".into(), gpus));
    }
    for arith in [Arith::F64, Arith::Tf32, Arith::Bf16, Arith::F16, Arith::E4m3, Arith::E5m2, Arith::Int8] {
        let settings = GpuGemmSettings { min_rep_s: s.fma_seconds, ..GpuGemmSettings::square(arith, s.gemm_n, 16) };
        let record = match gemm(ctx, dev, &settings, None) {
            Ok(r) => r,
            Err(Error::InvalidInput { allowed, .. }) => {
                notes += &format!("{} peak: not measured: {allowed}\n", arith.name());
                continue;
            }
            Err(e) => return Err(e),
        };
        if !record.valid {
            notes += &format!("{} peak: not used: its GEMM failed the check ({})\n", arith.name(), record.failure.unwrap_or_default());
            continue;
        }
        let isa = format!("cuBLASLt GEMM n={} ({})", s.gemm_n, record.params["path"].as_str().unwrap_or("-"));
        per_precision.insert(arith.name().to_string(), peak_row(dev, arith.name(), arith.arithmetic(), record.gflops, isa, gpus));
    }
    let triad = match s.triad_elements {
        Some(len) => Some(triad(ctx, dev, len)?),
        None => None,
    };
    let spec = dev.gpu.info.spec;
    let mut peaks = Peaks {
        clock_ghz: None,
        clock_source: format!(
            "spec: the datasheet's boost clock (the SM clock under the FP64 FMA load, NVML: {})",
            sm_clock.map_or("not read".into(), |c| format!("{c} MHz"))
        ),
        cores: 0,
        gpus: Some(gpus),
        per_precision,
        stream_triad_gbs: triad.as_ref().map(|t| t.gbs.max),
        stream_triad: triad,
        memory_bandwidth_gbs: spec.map(|sp| sp.memory_bandwidth_gbs * gpus as f64),
        memory_bandwidth_source: spec.map(|sp| format!("spec: {} {} GB/s × {gpus} GPU(s) ({})", sp.name, sp.memory_bandwidth_gbs, sp.source)),
        clock: None,
        microarch: None,
        corrected: None,
    };
    peaks.guard();
    Ok((peaks, dev.environment(sm_clock), notes))
}

/// STREAM triad on device memory: `len` f64 per array (fewer where the free memory cannot
/// hold three arrays and a margin), checked element by element after the run.
fn triad(ctx: &Ctx, dev: &Device, len: usize) -> Result<Triad> {
    let (free, _) = agreed(ctx, dev.gpu.memory().map_err(error))?;
    let fits = (free.saturating_sub(1 << 30) / 24) as usize;
    let len = ctx.world.min(len.min(fits).max(1 << 20) as f64) as usize;
    let k = dev.kernels.as_ref().expect("loaded by peaks()");
    let mut t = agreed(ctx, DeviceTriad::new(&dev.gpu, k, len).map_err(error))?;
    let bytes = t.bytes();
    let b = batched(ctx, dev, "gpu peak stream triad", 0.2, || t.launch(&dev.gpu, k))?;
    let valid = ctx.world.all(t.check(&dev.gpu).unwrap_or(false));
    Ok(Triad { elements_per_rank: len, bytes_per_element: cost::triad::BYTES_PER_ELEMENT, gbs: Stats::rate(bytes * ctx.world.size() as f64 / 1e9, &Stats::of(&b.per_launch)), valid })
}

#[cfg(test)]
mod tests {
    use super::shared_gpu;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_ranks_of_a_host_on_one_gpu_are_found_by_bus_id() {
        // Every GPU visible to every rank (ordinal = place on the host), or one each (Slurm's
        // --gpus-per-task: every rank's ordinal 0, distinct buses): both fine; the same bus
        // id on another host is another GPU.
        let hosts = strings(&["a", "a", "b", "b"]);
        assert_eq!(shared_gpu(&hosts, &strings(&["0000:19:00.0", "0000:3b:00.0", "0000:19:00.0", "0000:3b:00.0"])), None);
        // Two ranks on a host with one GPU visible (ordinal % 1 = 0 for both).
        let e = shared_gpu(&hosts, &strings(&["0000:19:00.0", "0000:3b:00.0", "0000:3b:00.0", "0000:3b:00.0"])).unwrap();
        assert_eq!(e, "ranks 2 and 3 on b would both use the GPU at 0000:3b:00.0");
        assert_eq!(shared_gpu(&strings(&["a"]), &strings(&["0000:19:00.0"])), None);
    }
}
