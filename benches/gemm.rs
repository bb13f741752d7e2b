//! Criterion benches of the GEMM kernels on one process (the rayon pool of the machine).
//! Shapes and precisions come from benches/gemm.toml.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use effcal_kernels::gemm::{GemmElement, GemmParams, gemm};
use effcal_kernels::precision::scaling::{KAxis, Quantized, ScaleMode};
use effcal_kernels::precision::{E4M3, E5M2, bf16, f16};
use effcal_kernels::Precision;
use std::hint::black_box;

#[derive(serde::Deserialize)]
struct Plan {
    precisions: Vec<String>,
    shapes: Vec<Shape>,
}

#[derive(serde::Deserialize)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
}

fn bench_one<T: GemmElement>(c: &mut Criterion, shapes: &[Shape]) {
    let p = T::PRECISION;
    let mut group = c.benchmark_group(format!("gemm/{p}"));
    group.sample_size(10);
    for s in shapes {
        let operand = |rows, cols, seed, axis| Quantized::<T>::uniform(seed, rows, cols, axis, ScaleMode::default_for(p));
        let a = operand(s.m, s.k, 1, KAxis::Cols);
        let b = operand(s.k, s.n, 2, KAxis::Rows);
        let mut out = vec![T::Acc::default(); s.m * s.n];
        group.throughput(Throughput::Elements((2 * s.m * s.n * s.k) as u64));
        group.bench_function(format!("{}x{}x{}", s.m, s.n, s.k), |bencher| {
            bencher.iter(|| gemm(black_box(&mut out), &a, &b, &GemmParams::default()).unwrap())
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gemm.toml");
    let plan: Plan = toml::from_str(&std::fs::read_to_string(path).expect("benches/gemm.toml")).expect("valid benches/gemm.toml");
    for name in &plan.precisions {
        match name.parse::<Precision>().expect("precision names in benches/gemm.toml") {
            Precision::F64 => bench_one::<f64>(c, &plan.shapes),
            Precision::F32 => bench_one::<f32>(c, &plan.shapes),
            Precision::Bf16 => bench_one::<bf16>(c, &plan.shapes),
            Precision::F16 => bench_one::<f16>(c, &plan.shapes),
            Precision::E4m3 => bench_one::<E4M3>(c, &plan.shapes),
            Precision::E5m2 => bench_one::<E5M2>(c, &plan.shapes),
        }
    }
}

criterion_group!(gemm_benches, benches);
criterion_main!(gemm_benches);
