//! Criterion benches of the 7- and 27-point sweeps on one process (the rayon pool of the
//! machine): one sweep of a block per iteration, normal stores. Kinds, precisions and
//! grids come from benches/stencil.toml; "f16-arith" is the f16 field computed in f16
//! (native on AVX512_FP16, emulated elsewhere: the group's name says which).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use effcal_kernels::precision::{E4M3, E5M2, Element, Overflow, Real, bf16, f16};
use effcal_kernels::stencil::{Block, Kind, Region, Stores, f16_arith_native, sweep7, sweep7_f16, sweep27, sweep27_f16};
use effcal_kernels::{Precision, rng};
use std::hint::black_box;

#[derive(serde::Deserialize)]
struct Plan {
    kinds: Vec<String>,
    precisions: Vec<String>,
    grids: Vec<[usize; 3]>,
}

/// A block of `n` points (ghosts around) with values in [−1, 1).
fn field<T: Element>(n: [usize; 3]) -> Block<T> {
    let mut b = Block::<T>::zeros(n);
    let vals: Vec<f32> = (0..b.data.len()).map(|x| rng::uniform_f32(7, x as u64)).collect();
    T::from_f32_slice(&vals, &mut b.data, Overflow::Saturate);
    b
}

fn whole<T: Copy + Default>(b: &Block<T>) -> Region {
    Region { i: 1..b.n[0] + 1, j: 1..b.n[1] + 1, k: 1..b.n[2] + 1 }
}

/// The 7-point and 27-point weights of effcal's problems.
fn weights(kind: Kind) -> (f64, f64) {
    if kind == Kind::Seven { (0.25, 0.125) } else { (0.59375, 1.0 / 64.0) }
}

/// One group `name`: `sweep(src, dst, region)` once per iteration, on a field of each grid.
fn group<T: Element>(c: &mut Criterion, name: String, grids: &[[usize; 3]], sweep: impl Fn(&Block<T>, &mut Block<T>, &Region)) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for &n in grids {
        let src = field::<T>(n);
        let mut dst = src.clone();
        let r = whole(&src);
        group.throughput(Throughput::Elements(r.points() as u64));
        group.bench_function(format!("{}x{}x{}", n[0], n[1], n[2]), |bencher| bencher.iter(|| sweep(black_box(&src), &mut dst, &r)));
    }
    group.finish();
}

fn bench_one<T: Element + Send>(c: &mut Criterion, kind: Kind, grids: &[[usize; 3]])
where
    T::Acc: Real,
{
    let (c0, c1) = weights(kind);
    let (c0, c1) = (T::Acc::from_f64(c0), T::Acc::from_f64(c1));
    group::<T>(c, format!("stencil-{}/{}", kind.name(), T::PRECISION), grids, |src, dst, r| match kind {
        Kind::Seven => sweep7(src, dst, r, c0, c1, Stores::Normal),
        _ => sweep27(src, dst, r, c0, c1, Stores::Normal),
    });
}

fn bench_f16_arith(c: &mut Criterion, kind: Kind, grids: &[[usize; 3]]) {
    let how = if f16_arith_native() { "native" } else { "emulated" };
    let (c0, c1) = weights(kind);
    let (c0, c1) = (f16::from_f64(c0), f16::from_f64(c1));
    group::<f16>(c, format!("stencil-{}/f16-arith-{how}", kind.name()), grids, |src, dst, r| match kind {
        Kind::Seven => sweep7_f16(src, dst, r, c0, c1, Stores::Normal),
        _ => sweep27_f16(src, dst, r, c0, c1, Stores::Normal),
    });
}

fn benches(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/stencil.toml");
    let plan: Plan = toml::from_str(&std::fs::read_to_string(path).expect("benches/stencil.toml")).expect("valid benches/stencil.toml");
    for kind in &plan.kinds {
        let kind: Kind = kind.parse().expect("kinds in benches/stencil.toml: 7pt or 27pt");
        assert!(kind != Kind::Himeno, "benches/stencil.toml: the bench sweeps 7pt and 27pt");
        for name in &plan.precisions {
            if name == "f16-arith" {
                bench_f16_arith(c, kind, &plan.grids);
                continue;
            }
            match name.parse::<Precision>().expect("precision names in benches/stencil.toml") {
                Precision::F64 => bench_one::<f64>(c, kind, &plan.grids),
                Precision::F32 => bench_one::<f32>(c, kind, &plan.grids),
                Precision::Bf16 => bench_one::<bf16>(c, kind, &plan.grids),
                Precision::F16 => bench_one::<f16>(c, kind, &plan.grids),
                Precision::E4m3 => bench_one::<E4M3>(c, kind, &plan.grids),
                Precision::E5m2 => bench_one::<E5M2>(c, kind, &plan.grids),
            }
        }
    }
}

criterion_group!(stencil_benches, benches);
criterion_main!(stencil_benches);
