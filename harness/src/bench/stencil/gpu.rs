//! Stencils on GPUs (`effcal stencil --device gpu`, one GPU per rank): the 7- and 27-point
//! sweeps of fields stored in f64, f32, bf16 or f16 on the device (effcal-gpu's
//! DeviceStencil), on the CPU runs' decomposition, timed in batches as the GPU GEMMs are,
//! and checked exactly: the same exchange-and-sweeps run on the host by effcal-kernels from
//! the same initial field must give the same bits (the device code is the same expression
//! in the same order, without FMA contraction). A field that differs is FAILED. The halo
//! is host-staged: each rank's faces come from its device into a host copy of its block,
//! the CPU's three-phase exchange runs there, the ghosts go back (no overlap). Bytes per
//! point and FLOPs are the CPU records' conventions.

use super::halo::{face, pack, unpack};
use super::{Arithmetic, Halo, Place, Rates, State, StencilSettings, checksum, error_vs_f64, initial_field, owned, place, weights};
use effcal_kernels::stencil::Block;
use crate::bench::gpu::{Device, agreed, batched, error, record_power};
use crate::bench::wire::{self, Pod};
use crate::bench::{Ctx, with_element};
use crate::calibration::{Peaks, Record};
use crate::error::{Error, Result};
use crate::timing::Stats;
use effcal_gpu::lu::Storage;
use effcal_gpu::stencil::{DeviceStencil, Sweep};
use effcal_kernels::precision::{Element, Real};
use effcal_kernels::stencil::{Kind, Stores};
use effcal_kernels::cost;
use serde_json::json;
use std::collections::BTreeMap;

/// The settings a GPU stencil refuses, each by its field, before the device is opened.
pub fn check(s: &StencilSettings, net: bool) -> Result<()> {
    if s.kind == Kind::Himeno {
        return Err(Error::invalid("--kind", "himeno", "7pt or 27pt with --device gpu"));
    }
    if Storage::of(s.precision).is_none() {
        return Err(Error::invalid("--precision", s.precision.name(), "f64, f32, bf16 or f16 with --device gpu"));
    }
    if s.arithmetic != Arithmetic::Wide {
        return Err(Error::invalid("--arithmetic", "f16", "wide (the default) with --device gpu"));
    }
    if net {
        return Err(Error::invalid("--net", "on", "off with --device gpu (the halo model is the CPU runs')"));
    }
    Ok(())
}


pub fn measure(ctx: &Ctx, dev: &Device, s: &StencilSettings, peaks: Option<&Peaks>) -> Result<Record> {
    check(s, false)?;
    with_element!(s.precision, run(ctx, dev, s, peaks))
}

fn run<T: Element + Send + Pod>(ctx: &Ctx, dev: &Device, s: &StencilSettings, peaks: Option<&Peaks>) -> Result<Record>
where
    T::Acc: Real,
{
    let dims = super::check(s, ctx.world.size())?;
    let pl: Place = place(ctx, s.global, dims);
    if pl.n.iter().any(|&x| x > 65535) {
        return Err(Error::invalid("--size", format!("{:?}", s.global), "blocks of at most 65535 points per dimension with --device gpu (more ranks, or a smaller grid)"));
    }
    let mut halo = Halo::new(&pl.cart, pl.neighbours);
    let start = initial_field::<T>(&pl, s.global, ctx.seed);
    // The host's copy of the field the halo exchange reads and writes: only the faces
    // travel between it and the device.
    let mut mirror = start.clone();
    let sweep = if s.kind == Kind::Seven { Sweep::Seven } else { Sweep::TwentySeven };
    let (c0, c1) = weights::<f64>(s.kind);
    let padded = pl.n.map(|x| x + 2);
    let region = [pl.region.i.clone(), pl.region.j.clone(), pl.region.k.clone()];
    let made = DeviceStencil::new(&dev.gpu, sweep, Storage::of(s.precision).expect("checked"), padded, wire::bytes_of(&start.data), (c0, c1)).map_err(error);
    let mut st = agreed(ctx, made)?;

    // The answer: `iters` exchange-and-sweeps from the initial field, against the host's.
    let answer = (0..s.iters).try_for_each(|_| step(&mut st, &mut halo, &mut mirror, &region)).and_then(|()| st.field()).map_err(error);
    let got = agreed(ctx, answer)?;
    let got = effcal_kernels::stencil::Block::<T> { data: wire::read::<T>(&got, start.data.len()).0, ..start.clone() };
    let mut host = State::<T> { u: start.clone(), v: start.clone(), coefficients: None, stores: Stores::Normal, arithmetic: Arithmetic::Wide, gosa: 0.0, halo_s: 0.0 };
    for _ in 0..s.iters {
        host.step(s.kind, &mut halo, &pl.region, false);
    }
    let points: usize = s.global.iter().map(|g| g - 2).product();
    let (mine, want) = (owned(&got), owned(&host.u));
    let differ = mine.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    let (max_err, rms_err) = error_vs_f64(ctx, s, &pl, &mut halo, &mine);

    // Timing: a launch is `iters` sweeps; batches of launches as the GPU GEMMs.
    agreed(ctx, st.load(wire::bytes_of(&start.data)).map_err(error))?;
    let what = format!("gpu stencil {} {}", s.kind.name(), s.precision);
    let mut mirror = start.clone();
    let batch = batched(ctx, dev, &what, 0.2, || (0..s.iters).try_for_each(|_| step(&mut st, &mut halo, &mut mirror, &region)))?;

    let time_s = Stats::of(&batch.per_launch);
    let rates = Rates::of(s, &time_s);
    let w = &ctx.world;
    let differ = w.sum(differ as f64) as usize;
    let finite = w.all(mine.iter().all(|x| x.is_finite()));
    let valid = finite && differ == 0;
    let failure = if differ > 0 {
        Some(format!("the GPUs' field differs from the host's (effcal-kernels' sweeps of the same field, the same decomposition) at {differ} of {points} points"))
    } else if !finite {
        Some("the field holds non-finite values".to_string())
    } else {
        None
    };
    let info = &dev.gpu.info;
    let params = [
        ("size", json!(s.global)),
        ("dims", json!(dims)),
        ("iters", json!(s.iters)),
        ("ranks", json!(ctx.world.size())),
        ("overlap", json!(false)),
        ("device", json!("gpu")),
        ("gpu", json!(info.name)),
        ("path", json!(format!("cuda-{}", sweep.kernel(Storage::of(s.precision).expect("checked")).expect("a field storage")))),
        ("bytes_per_point", json!(cost::stencil::bytes_per_point(s.kind, s.precision))),
        ("arithmetic", json!(s.precision.compute().name())),
        ("launches_per_rep", json!(batch.launches)),
    ];
    let mut results: BTreeMap<String, serde_json::Value> = [
        ("mpoints_per_s", json!(rates.mpts)),
        ("rel_error_max_vs_f64", json!(max_err)),
        ("rel_error_rms_vs_f64", json!(rms_err)),
        ("checksum_sum", json!(w.sum(mine.iter().sum::<f64>()))),
        ("points_differing_from_host", json!(differ)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    record_power(&mut results, &batch, "gbs_per_w", rates.gbs.median, dev, w.size());
    let params = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(rates.record(s, peaks, time_s, (params, results), (valid, failure), checksum(ctx, &mine)))
}

/// One exchange-and-sweep on the device: the faces the halo sends come from the device into
/// the host's copy, the three phases run there as on the CPU, the ghosts they filled go
/// back; then the sweep. Without neighbours (one rank) nothing moves.
fn step<T: Pod>(st: &mut DeviceStencil, halo: &mut Halo, mirror: &mut Block<T>, region: &[std::ops::Range<usize>; 3]) -> effcal_gpu::Result<()> {
    let neighbours = halo.neighbours();
    let n = mirror.n;
    // (dimension, side) of every neighbour.
    let sides: Vec<(usize, usize)> = (0..3).flat_map(|d| (0..2).map(move |side| (d, side))).filter(|&(d, side)| neighbours[d][side].is_some()).collect();
    if !sides.is_empty() {
        for &(d, side) in &sides {
            let b = face(n, d, side, false);
            unpack(mirror, &b, &st.download_box(&b)?);
        }
        halo.exchange(mirror);
        let mut bytes = Vec::new();
        for &(d, side) in &sides {
            let b = face(n, d, side, true);
            pack(mirror, &b, &mut bytes);
            st.upload_box(&b, &bytes)?;
        }
    }
    st.sweep(region)
}
