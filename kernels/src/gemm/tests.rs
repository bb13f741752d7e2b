//! GEMM results against twice-f64 references, for every format, shape and path.

use super::accuracy::{self, Accuracy};
use super::*;
use crate::precision::Overflow;
use crate::precision::scaling::ScaleMode;
use crate::rng::uniform_f32;

const SEED_A: u64 = 11;
const SEED_B: u64 = 12;

/// Inputs `AMP · uniform[-1, 1)`: exactly representable in f32.
fn input(seed: u64, i: usize, amp: f32) -> f32 {
    amp * uniform_f32(seed, i as u64)
}

fn operands<T: Element>(m: usize, n: usize, k: usize, mode: ScaleMode, amp: f32) -> (Quantized<T>, Quantized<T>) {
    let a: Vec<f32> = (0..m * k).map(|i| input(SEED_A, i, amp)).collect();
    let b: Vec<f32> = (0..k * n).map(|i| input(SEED_B, i, amp)).collect();
    (
        Quantized::from_f32(&a, m, k, KAxis::Cols, mode, Overflow::Saturate),
        Quantized::from_f32(&b, k, n, KAxis::Rows, mode, Overflow::Saturate),
    )
}

fn run<T: GemmElement>(m: usize, n: usize, k: usize, mode: ScaleMode, params: GemmParams) -> (Vec<T::Acc>, Accuracy, GemmPath) {
    run_amp::<T>(m, n, k, mode, params, 1.0)
}

fn run_amp<T: GemmElement>(m: usize, n: usize, k: usize, mode: ScaleMode, params: GemmParams, amp: f32) -> (Vec<T::Acc>, Accuracy, GemmPath) {
    let (a, b) = operands::<T>(m, n, k, mode, amp);
    let mut c = vec![T::Acc::default(); m * n];
    let info = gemm(&mut c, &a, &b, &params).unwrap();
    let acc = accuracy::check(
        &c,
        &a,
        &b,
        |i, l| input(SEED_A, i * k + l, amp) as f64,
        |l, j| input(SEED_B, l * n + j, amp) as f64,
        (m * n).min(400),
        5,
        params.accumulate,
    );
    (c, acc, info.path)
}

/// Shapes around the block sizes of every path (bf16 kernel: MR 12, NR 32, MC 144,
/// KC 2048, NC 2048; convert path: kc 512), empty ones included.
const SHAPES: [(usize, usize, usize); 12] = [
    (0, 3, 4),
    (3, 0, 4),
    (3, 4, 0),
    (1, 1, 1),
    (2, 3, 1),
    (3, 5, 7),
    (13, 33, 2),
    (12, 32, 256),
    (145, 65, 257),
    (289, 31, 513),
    (5, 2049, 3),
    (13, 40, 2049),
];

fn check_all<T: GemmElement>(mode: ScaleMode, params: GemmParams) {
    for (m, n, k) in SHAPES {
        let (_, acc, path) = run::<T>(m, n, k, mode, params);
        let p = T::PRECISION;
        assert!(acc.valid(), "{p} {m}×{n}×{k} via {}: arithmetic error {:e} > bound {:e}", path.name(), acc.rel_error_vs_rounded, acc.arithmetic_bound);
        // FP8 subnormals add an absolute error of at most half the smallest subnormal per
        // element; relative to the elements' mean magnitude it stays below 1e-3·u.
        let slack = if p.is_fp8() { 1.001 } else { 1.0 };
        assert!(
            acc.rel_error_vs_f64 <= acc.expected_error * slack,
            "{p} {mode:?} {m}×{n}×{k} via {}: error vs f64 {:e} > expected {:e}",
            path.name(),
            acc.rel_error_vs_f64,
            acc.expected_error
        );
    }
}

#[test]
fn f64_and_f32_are_accurate() {
    check_all::<f64>(ScaleMode::None, GemmParams::default());
    check_all::<f64>(ScaleMode::None, GemmParams { backend: Backend::Portable, ..Default::default() });
    check_all::<f32>(ScaleMode::None, GemmParams::default());
}

#[test]
fn a_requested_blocking_is_rounded_to_the_kernel_and_stays_accurate() {
    let ask = |kc, mc, nc| GemmParams { blocking: Some(Blocking { kc, mc, nc }), ..Default::default() };
    // faer and the paths built on it block themselves.
    assert_eq!(blocking(GemmPath::Faer, &ask(64, 64, 64)), None);
    assert_eq!(blocking(GemmPath::ConvertToF32, &ask(64, 64, 64)), None);
    #[cfg(target_arch = "x86_64")]
    {
        let b = |kc, mc, nc| Some(Blocking { kc, mc, nc });
        // kc to the k step (one f64, a pair of bf16), mc to whole MR-row tiles, nc as asked
        // (at least 1); the defaults as documented in each kernel.
        assert_eq!(blocking(GemmPath::Avx512F64, &ask(3, 1, 1)), b(3, 8, 1));
        assert_eq!(blocking(GemmPath::Avx512F64, &GemmParams::default()), b(1024, 144, 4096));
        assert_eq!(blocking(GemmPath::Avx2F64, &ask(3, 7, 9)), b(3, 12, 9));
        assert_eq!(blocking(GemmPath::Avx512Bf16, &ask(3, 13, 33)), b(4, 24, 33));
        assert_eq!(blocking(GemmPath::Avx512Bf16, &ask(0, 0, 0)), b(2, 12, 1));
        // The native f16 kernel's k blocks hold whole f16 accumulation blocks.
        let f16acc = |block, blocking| GemmParams { accumulate: Accumulate::F16 { block }, blocking, ..Default::default() };
        assert_eq!(blocking(GemmPath::Avx512Fp16, &f16acc(32, Some(Blocking { kc: 100, mc: 12, nc: 64 }))), b(96, 12, 64));
        assert_eq!(blocking(GemmPath::Avx512Fp16, &f16acc(32, Some(Blocking { kc: 10, mc: 12, nc: 64 }))), b(32, 12, 64));
        assert_eq!(blocking(GemmPath::Avx512Fp16, &f16acc(32, None)), b(2048, 144, 2048));
    }
    // Small blocks: every shape crosses k blocks, row blocks and B panels, each result
    // within its bound (on CPUs without the kernels these run faer, blocking ignored).
    check_all::<f64>(ScaleMode::None, ask(5, 13, 50));
    check_all::<bf16>(ScaleMode::None, ask(6, 25, 70));
}

#[test]
fn bf16_is_accurate_on_every_path() {
    check_all::<bf16>(ScaleMode::None, GemmParams::default());
    check_all::<bf16>(ScaleMode::None, GemmParams { backend: Backend::Portable, convert_kc: 64, ..Default::default() });
}

#[test]
fn f16_and_fp8_are_accurate_with_every_scaling() {
    for mode in [ScaleMode::None, ScaleMode::Tensor, ScaleMode::Mx] {
        check_all::<f16>(mode, GemmParams::default());
        check_all::<E5M2>(mode, GemmParams::default());
    }
    for mode in [ScaleMode::Tensor, ScaleMode::Mx] {
        check_all::<E4M3>(mode, GemmParams { convert_kc: 3, ..Default::default() });
    }
}

#[test]
fn fp8_without_scaling_loses_small_values() {
    // Inputs in [-1e-3, 1e-3) lie below E4M3's smallest subnormal (2^-9) unless scaled.
    let p = GemmParams::default();
    let (_, plain, _) = run_amp::<E4M3>(64, 64, 256, ScaleMode::None, p, 1e-3);
    let (_, scaled, _) = run_amp::<E4M3>(64, 64, 256, ScaleMode::Tensor, p, 1e-3);
    assert!(plain.rel_error_vs_f64 > plain.expected_error, "{plain:?}");
    assert!(scaled.rel_error_vs_f64 <= scaled.expected_error, "{scaled:?}");
}

#[test]
fn native_bf16_matches_the_portable_path() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if !bf16_avx512::available() {
        eprintln!("skipped: this CPU has no AVX512_BF16");
        return;
    }
    for (m, n, k) in SHAPES {
        let (native, _, path) = run::<bf16>(m, n, k, ScaleMode::None, GemmParams::default());
        assert_eq!(path, GemmPath::Avx512Bf16);
        let (portable, _, _) = run::<bf16>(m, n, k, ScaleMode::None, GemmParams { backend: Backend::Portable, convert_kc: 512, ..Default::default() });
        let (a, b) = operands::<bf16>(m, n, k, ScaleMode::None, 1.0);
        for i in 0..m {
            for j in 0..n {
                let (_, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                let diff = (native[i * n + j] - portable[i * n + j]).abs() as f64;
                // Both are within (k+4)u of the exact sum: they differ by at most twice that.
                assert!(diff <= 2.0 * accuracy::arithmetic_bound(Precision::Bf16, k) * scale, "{m}×{n}×{k} ({i},{j}): {diff:e}");
            }
        }
    }
}

#[test]
fn every_fp8_value_is_a_bf16() {
    for code in 0..=255u8 {
        for (v, bits) in [(E4M3(code).to_f64(), E4M3(code).bf16_bits()), (E5M2(code).to_f64(), E5M2(code).bf16_bits())] {
            let packed = bf16::from_bits(bits).to_f64();
            if v.is_nan() {
                assert!(packed.is_nan(), "{code:#04x}");
            } else {
                assert_eq!(packed, v, "{code:#04x}");
                assert_eq!(bf16::from_f64(v).to_f64(), v, "{code:#04x}");
            }
        }
    }
}

/// FP8 takes the bf16 kernel where the CPU has it and every value widens to bf16 exactly
/// and far from subnormals; its results are within twice the f32 bound of the f32 path's.
/// MX scales that push values below 2^-56 send it down the f32 path.
#[test]
fn fp8_takes_the_bf16_kernel_where_its_products_are_exact() {
    #[cfg(target_arch = "x86_64")]
    let native = bf16_avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    let native = false;
    let kernel = if native { GemmPath::Avx512Bf16 } else { GemmPath::ConvertToF32 };
    for mode in [ScaleMode::None, ScaleMode::Tensor, ScaleMode::Mx] {
        for (m, n, k) in SHAPES {
            let (fast, acc, path) = run::<E4M3>(m, n, k, mode, GemmParams::default());
            assert_eq!(path, kernel, "{mode:?} {m}×{n}×{k}");
            assert!(acc.valid(), "{mode:?} {m}×{n}×{k}: {acc:?}");
            let (portable, _, path) = run::<E4M3>(m, n, k, mode, GemmParams { backend: Backend::Portable, ..Default::default() });
            assert_eq!(path, GemmPath::ConvertToF32);
            let (a, b) = operands::<E4M3>(m, n, k, mode, 1.0);
            for i in 0..m {
                for j in 0..n {
                    let (_, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                    let diff = (fast[i * n + j] - portable[i * n + j]).abs() as f64;
                    assert!(diff <= 2.0 * accuracy::arithmetic_bound(Precision::E4m3, k) * scale, "{mode:?} {m}×{n}×{k} ({i},{j}): {diff:e}");
                }
            }
        }
    }
    // Inputs of 1e-18 scaled by MX blocks stay near 1e-18, below 2^-56: the f32 path (their
    // products, near 1e-36, are still normal in f32).
    let (_, acc, path) = run_amp::<E5M2>(33, 40, 70, ScaleMode::Mx, GemmParams::default(), 1e-18);
    assert_eq!(path, GemmPath::ConvertToF32);
    assert!(acc.valid(), "{acc:?}");
    // Tensor scales stay out of the products: the same inputs take the kernel. Their
    // α/(s_A·s_B), about 3e-46, is no normal f32: it is applied in f64 after the product,
    // on both paths.
    for (backend, want) in [(Backend::Auto, kernel), (Backend::Portable, GemmPath::ConvertToF32)] {
        let (_, acc, path) = run_amp::<E5M2>(33, 40, 70, ScaleMode::Tensor, GemmParams { backend, ..Default::default() }, 1e-18);
        assert_eq!(path, want);
        assert!(acc.valid() && acc.rel_error_vs_f64 <= acc.expected_error * 1.001, "{backend:?}: {acc:?}");
    }
}

#[test]
fn mismatched_dimensions_and_scaled_wide_operands_are_errors() {
    let (a, b) = operands::<f32>(4, 5, 6, ScaleMode::None, 1.0);
    let mut c = vec![0f32; 19];
    assert!(matches!(gemm(&mut c, &a, &b, &GemmParams::default()), Err(KernelError::Dimensions(_))));
    let (a, b) = operands::<f32>(4, 5, 6, ScaleMode::Tensor, 1.0);
    let mut c = vec![0f32; 20];
    let err = gemm(&mut c, &a, &b, &GemmParams::default()).unwrap_err();
    assert!(err.to_string().contains("scaling only for f16, e4m3, e5m2"), "{err}");
    let (a, b) = operands::<bf16>(4, 5, 6, ScaleMode::Mx, 1.0);
    assert!(gemm(&mut c, &a, &b, &GemmParams::default()).is_err(), "bf16 is not scaled");
}

use crate::Precision;

/// `C += (−1)·A·B` and `C = 2·A·B` on an m×n window of a wider matrix (row stride n + 7):
/// the window gets the product, the columns beside it keep their values.
fn check_update<T: GemmElement>(mode: ScaleMode, params: GemmParams) {
    check_update_amp::<T>(mode, params, 1.0);
}

/// [`check_update`] with inputs `amp · uniform[-1, 1)` and C's old entries `amp²` times
/// their usual size.
fn check_update_amp<T: GemmElement>(mode: ScaleMode, params: GemmParams, amp: f32) {
    let p = T::PRECISION;
    for (m, n, k) in [(5, 33, 7), (13, 40, 2049), (145, 65, 257), (3, 4, 0)] {
        let (a, b) = operands::<T>(m, n, k, mode, amp);
        let ldc = n + 7;
        let sentinel = T::Acc::from(12345.0);
        let c0 = |i: usize, j: usize| if j < n { T::Acc::from(10.0 * amp * amp * uniform_f32(99, (i * ldc + j) as u64)) } else { sentinel };
        let u = p.compute().info().unit_roundoff();
        for (alpha, accumulate) in [(-1.0f32, true), (2.0, false)] {
            let mut c: Vec<T::Acc> = (0..m * ldc).map(|x| c0(x / ldc, x % ldc)).collect();
            let info = gemm_update(&mut c, ldc, &a, &b, Update { alpha: T::Acc::from(alpha), accumulate }, &params).unwrap();
            for i in 0..m {
                for j in 0..ldc {
                    let got: f64 = c[i * ldc + j].into();
                    if j >= n {
                        assert_eq!(got, 12345.0, "{p} via {}: column {j} beside the window changed", info.path.name());
                        continue;
                    }
                    let (dot, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                    let old: f64 = if accumulate { c0(i, j).into() } else { 0.0 };
                    let want = old + alpha as f64 * dot;
                    let bound = (k as f64 + 5.0) * u * (2.0 * scale + old.abs());
                    assert!(
                        (got - want).abs() <= bound,
                        "{p} {mode:?} via {} {m}×{n}×{k} α={alpha} acc={accumulate} ({i},{j}): {got} vs {want}",
                        info.path.name()
                    );
                }
            }
        }
    }
}

#[test]
fn updates_land_in_a_strided_window_on_every_path() {
    let portable = GemmParams { backend: Backend::Portable, convert_kc: 64, ..Default::default() };
    check_update::<f64>(ScaleMode::None, GemmParams::default());
    check_update::<f64>(ScaleMode::None, portable);
    check_update::<f32>(ScaleMode::None, GemmParams::default());
    check_update::<bf16>(ScaleMode::None, GemmParams::default());
    check_update::<bf16>(ScaleMode::None, portable);
    check_update::<f16>(ScaleMode::Tensor, GemmParams::default());
    check_update::<E4M3>(ScaleMode::Tensor, portable);
    check_update::<E4M3>(ScaleMode::Tensor, GemmParams::default());
    check_update::<E5M2>(ScaleMode::Mx, GemmParams::default());
    check_update_amp::<E4M3>(ScaleMode::Tensor, GemmParams::default(), 1e-18);
    check_update_amp::<f16>(ScaleMode::Tensor, portable, 1e-18);
    check_update::<f16>(ScaleMode::Mx, GemmParams::default());
}

#[test]
fn f16_accumulation_rounds_once_per_step_and_stays_within_its_bound() {
    use super::f16acc::{dot, fma_f16};
    // One rounding: (1 + 2^-10)² − (1 + 2^-9) = 2^-20 exactly (an f16); rounding the
    // product first would give 0.
    let x = 1.0 + 2f64.powi(-10);
    assert_eq!(fma_f16(x, x, -(1.0 + 2f64.powi(-9))), 2f64.powi(-20));
    // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    assert_eq!(fma_f16(1.0, 1.0, 2f64.powi(-11)), 1.0);
    // Overflow goes to infinity, as IEEE accumulators do.
    assert_eq!(fma_f16(256.0, 256.0, 0.0), f64::INFINITY);
    // Summing ones in f16 stalls at 2048 (2049 is a tie, to even); blocks of 1024 do not.
    let ones = vec![1.0; 4096];
    assert_eq!(dot(&ones, &ones, 4096), 2048.0);
    assert_eq!(dot(&ones, &ones, 1024), 4096.0);

    // GEMM: valid against its own bound, and less accurate than f32 accumulation.
    let (m, n, k) = (33, 17, 300);
    let f16acc = |block| GemmParams { accumulate: Accumulate::F16 { block }, ..Default::default() };
    let (_, wide, _) = run::<f16>(m, n, k, ScaleMode::None, GemmParams::default());
    for block in [1, 32, 300] {
        let (_, acc, path) = run::<f16>(m, n, k, ScaleMode::None, GemmParams { backend: Backend::Portable, ..f16acc(block) });
        assert_eq!(path, GemmPath::F16Accumulate);
        assert!(acc.valid(), "block {block}: {acc:?}");
        assert_eq!(acc.arithmetic_bound, super::f16acc::bound(k, block));
        assert!(acc.rel_error_vs_rounded > wide.rel_error_vs_rounded, "block {block}: {acc:?} vs {wide:?}");
    }
    // Refused: other formats, empty blocks, scaled operands.
    let (a, b) = operands::<bf16>(4, 4, 4, ScaleMode::None, 1.0);
    let mut c = vec![0f32; 16];
    let e = gemm(&mut c, &a, &b, &f16acc(32)).unwrap_err().to_string();
    assert!(e.contains("f16 accumulation for f16 inputs only"), "{e}");
    let (a, b) = operands::<f16>(4, 4, 4, ScaleMode::None, 1.0);
    assert!(gemm(&mut c, &a, &b, &f16acc(0)).unwrap_err().to_string().contains("at least 1 term"));
    let (a, b) = operands::<f16>(4, 4, 4, ScaleMode::Tensor, 1.0);
    assert!(gemm(&mut c, &a, &b, &f16acc(32)).unwrap_err().to_string().contains("unscaled f16 operands"));
}

#[test]
fn the_avx2_f64_kernel_matches_faer_on_every_edge() {
    #[cfg(target_arch = "x86_64")]
    {
        use super::f64_avx2;
        if !f64_avx2::available() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        // Every shape, into a window of a wider C (stride n + 3), replaced and accumulated.
        for (m, n, k) in SHAPES {
            let (a, b) = operands::<f64>(m, n, k, ScaleMode::None, 1.0);
            let ldc = n + 3;
            let start: Vec<f64> = (0..m * ldc).map(|i| input(7, i, 1.0) as f64).collect();
            for accumulate in [false, true] {
                let (mut own, mut reference) = (start.clone(), start.clone());
                f64_avx2::gemm(&mut own, ldc, &a.data, &b.data, (m, n, k), -1.5, accumulate, None);
                faer_matmul(&mut reference, ldc, &a.data, &b.data, (m, n, k), beta(accumulate), -1.5);
                for i in 0..m {
                    for j in 0..ldc {
                        let (x, y) = (own[i * ldc + j], reference[i * ldc + j]);
                        if j >= n {
                            assert_eq!(x, start[i * ldc + j], "{m}×{n}×{k}: ({i},{j}) outside the window was written");
                            continue;
                        }
                        let (_, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                        let bound = 2.0 * 1.5 * accuracy::arithmetic_bound(Precision::F64, k) * scale + f64::EPSILON * start[i * ldc + j].abs() * 2.0;
                        assert!((x - y).abs() <= bound, "{m}×{n}×{k} acc={accumulate} ({i},{j}): {x} vs faer {y}");
                    }
                }
            }
        }
    }
}

#[test]
fn native_f16_accumulation_matches_the_portable_path() {
    #[cfg(target_arch = "x86_64")]
    {
        use super::f16_avx512fp16;
        let f16acc = |block, backend| GemmParams { accumulate: Accumulate::F16 { block }, backend, ..Default::default() };
        // The scalar portable path never competes with the native one (`--backend fastest`
        // would time it for minutes).
        assert_eq!(backends(Precision::F16, Accumulate::F16 { block: 32 }), &[Backend::Auto]);
        let (_, _, path) = run::<f16>(13, 40, 65, ScaleMode::None, f16acc(32, Backend::Auto));
        if !f16_avx512fp16::available() {
            // Without the instructions the default backend falls back on the portable path.
            assert_eq!(path, GemmPath::F16Accumulate);
            eprintln!("skipped: this CPU has no AVX512_FP16");
            return;
        }
        assert_eq!(path, GemmPath::Avx512Fp16);
        // Every edge shape (k past one KC block, m and n tails), blocks that do and do not
        // divide k, one longer than KC: each path within its bound, the two within twice it.
        for (m, n, k) in SHAPES {
            for block in [1, 7, 32, 3000] {
                let (native, acc, path) = run::<f16>(m, n, k, ScaleMode::None, f16acc(block, Backend::Auto));
                assert_eq!(path, GemmPath::Avx512Fp16);
                assert!(acc.valid(), "{m}×{n}×{k} block {block}: {acc:?}");
                let (portable, _, _) = run::<f16>(m, n, k, ScaleMode::None, f16acc(block, Backend::Portable));
                let (a, b) = operands::<f16>(m, n, k, ScaleMode::None, 1.0);
                for i in 0..m {
                    for j in 0..n {
                        let (_, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                        let diff = (native[i * n + j] - portable[i * n + j]).abs() as f64;
                        assert!(diff <= 2.0 * super::f16acc::bound(k, block) * scale, "{m}×{n}×{k} block {block} ({i},{j}): {diff:e}");
                    }
                }
            }
        }
        // Updates into a strided window, as HPL-MxP's trailing update makes them: columns
        // beside it untouched, the window as the portable path leaves it within the bound.
        let (m, n, k) = (13, 70, 2049);
        let (a, b) = operands::<f16>(m, n, k, ScaleMode::None, 1.0);
        let ldc = n + 7;
        for (alpha, accumulate) in [(-1.0f32, true), (2.0, false)] {
            let start: Vec<f32> = (0..m * ldc).map(|x| if x % ldc < n { uniform_f32(99, x as u64) } else { 12345.0 }).collect();
            let (mut native, mut portable) = (start.clone(), start.clone());
            let up = Update { alpha, accumulate };
            assert_eq!(gemm_update(&mut native, ldc, &a, &b, up, &f16acc(32, Backend::Auto)).unwrap().path, GemmPath::Avx512Fp16);
            gemm_update(&mut portable, ldc, &a, &b, up, &f16acc(32, Backend::Portable)).unwrap();
            for (x, (&got, &want)) in native.iter().zip(&portable).enumerate() {
                let (i, j) = (x / ldc, x % ldc);
                if j >= n {
                    assert_eq!(got, 12345.0, "column {j} beside the window changed");
                    continue;
                }
                let (_, scale) = accuracy::dot2((0..k).map(|l| a.value(i, l)), (0..k).map(|l| b.value(l, j)));
                let bound = 2.0 * alpha.abs() as f64 * super::f16acc::bound(k, 32) * scale + 2f64.powi(-23) * start[x].abs() as f64;
                assert!(((got - want).abs() as f64) <= bound, "α={alpha} acc={accumulate} ({i},{j}): {got} vs {want}");
            }
        }
    }
}
