//! `effcal stencil` under `mpirun -n 1/2/4` (oversubscribed): the f64 field is the same bits
//! (checksum) whatever the rank count, decomposition and halo variant; the averaging
//! stencils pass their gold check; Himeno's gosa is the original benchmark's; f16 fields
//! computed in f16 are the same field on every decomposition; bad sizes, dims and
//! arithmetics are refused with the field named.

mod common;

use common::*;
use serde_json::Value;

fn stencil(ranks: usize, args: &[&str], name: &str) -> Vec<Value> {
    let json = tmp(name);
    let mut all = vec!["--threads", "1", "stencil", "--reps", "1", "--warmup", "0", "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let stdout = ok(&mpirun(ranks, &all));
    assert_eq!(stdout.matches("Result: PASSED").count(), 1, "{stdout}");
    calibration(&json)["records"].as_array().unwrap().clone()
}

#[test]
fn every_decomposition_gives_the_same_field() {
    // Every kind in one run per decomposition (`--kind` takes a list, run in its order).
    let kinds = ["7pt", "27pt", "himeno"];
    let mut checksums = Vec::new();
    let mut gosa = Vec::new();
    let runs = [(1, "1 1 1"), (2, "2 1 1"), (2, "1 1 2"), (4, "2 2 1"), (4, "1 2 2"), (4, "4 1 1")];
    for (n, (ranks, dims)) in runs.into_iter().enumerate() {
        let d: Vec<&str> = dims.split(' ').collect();
        // Streamed stores write the same bits; auto on a grid this small stores normally.
        let stores = ["normal", "streaming", "auto"][n % 3];
        let records = stencil(
            ranks,
            &["--kind", &kinds.join(","), "--size", "13", "11", "17", "--iters", "4", "--dims", d[0], d[1], d[2], "--overlap", "both", "--precision", "f64,bf16", "--stores", stores],
            &format!("st-{ranks}-{}.json", dims.replace(' ', "")),
        );
        assert_eq!(records.len(), 4 * kinds.len());
        for (i, r) in records.iter().enumerate() {
            let kind = kinds[i / 4];
            assert_eq!(r["kernel"].as_str().unwrap().trim_start_matches("stencil-"), kind, "records in the order of --kind: {r}");
            assert_eq!(r["valid"], true, "{r}");
            assert_eq!(r["params"]["stores_setting"], stores);
            assert_eq!(r["params"]["stores"], if stores == "streaming" { "streaming" } else { "normal" }, "{r}");
            assert_eq!(r["results"]["stores_probe_s"], Value::Null, "{r}");
            assert!(r["bandwidth_gbs"]["median"].as_f64().unwrap() > 0.0);
            // 13×11×17 points fit in any last-level cache: the record says so.
            assert_eq!(r["results"]["in_cache"], r["results"]["llc_bytes"].as_u64().unwrap() > 0, "{r}");
            let p = r["precision"].as_str().unwrap();
            checksums.push((kind, p.to_string(), r["checksum"].as_str().unwrap().to_string()));
            // The gold check ran on this decomposition: averaging stencils leave a linear
            // field unchanged to rounding; Himeno is no average and has none.
            let gold = (r["results"].get("gold_change").and_then(Value::as_f64), r["results"].get("gold_bound").and_then(Value::as_f64));
            match gold {
                (Some(change), Some(bound)) => assert!(kind != "himeno" && bound > 0.0 && change <= bound, "{kind} {p}: {gold:?}"),
                _ => assert_eq!((kind, gold), ("himeno", (None, None))),
            }
            if let Some(g) = r["results"].get("gosa") {
                gosa.push((kind, p.to_string(), g.as_f64().unwrap()));
            }
            if p == "bf16" {
                let e = r["results"]["rel_error_max_vs_f64"].as_f64().unwrap();
                assert!(e > 0.0 && e < 0.05, "bf16 costs accuracy, within reason: {e}");
            }
        }
    }
    for kind in kinds {
        for p in ["f64", "bf16"] {
            let mine: Vec<&String> = checksums.iter().filter(|(k, q, _)| *k == kind && q == p).map(|(_, _, c)| c).collect();
            assert_eq!(mine.len(), 2 * runs.len());
            assert!(mine.iter().all(|c| *c == mine[0]), "{kind} {p}: {mine:?}");
            let mine: Vec<f64> = gosa.iter().filter(|(k, q, _)| *k == kind && q == p).map(|(_, _, g)| *g).collect();
            assert_eq!(mine.is_empty(), kind != "himeno");
            assert!(mine.iter().all(|g| (g - mine[0]).abs() <= 1e-5 * mine[0]), "{kind} {p}: {mine:?}");
        }
    }
}

/// f16 fields computed in f16 (`--arithmetic both`: a wide record, then an f16 one): the same
/// field on every decomposition, a different one from the wide arithmetic's, passing the
/// gold check within f16's bound, dearer in accuracy, and said to be native (AVX512_FP16)
/// or emulated, as this CPU has it.
#[test]
fn f16_arithmetic_is_the_same_field_on_every_decomposition() {
    let (how, note) = if effcal_kernels::stencil::f16_arith_native() {
        ("avx512fp16", "arithmetic: f16, every operation rounded to f16 (avx512fp16: vaddph, vmulph)")
    } else {
        ("emulated", "arithmetic: f16, every operation rounded to f16, emulated")
    };
    for kind in ["7pt", "27pt"] {
        let mut checksums = Vec::new();
        for (ranks, dims) in [(1, ["1", "1", "1"]), (2, ["2", "1", "1"]), (2, ["1", "1", "2"])] {
            let json = tmp(&format!("st-f16-{kind}-{}.json", dims.concat()));
            let args = ["--threads", "1", "stencil", "--reps", "1", "--warmup", "0", "--json", json.to_str().unwrap(), "--kind", kind, "--size", "13", "11", "41", "--iters", "4", "--dims", dims[0], dims[1], dims[2], "--precision", "f16", "--arithmetic", "both"];
            let stdout = ok(&mpirun(ranks, &args));
            assert!(stdout.contains(note), "{stdout}");
            let records = calibration(&json)["records"].as_array().unwrap().clone();
            assert_eq!(records.len(), 2);
            let (wide, f16) = (&records[0], &records[1]);
            assert_eq!((&wide["params"]["arithmetic"], wide["params"].get("arithmetic_impl")), (&Value::from("f32"), None), "{wide}");
            assert_eq!((&f16["params"]["arithmetic"], &f16["params"]["arithmetic_impl"]), (&Value::from("f16"), &Value::from(how)), "{f16}");
            for r in [wide, f16] {
                assert_eq!(r["valid"], true, "{r}");
                let (change, bound) = (r["results"]["gold_change"].as_f64().unwrap(), r["results"]["gold_bound"].as_f64().unwrap());
                assert!(change <= bound, "{r}");
            }
            // The gold bound is f16 arithmetic's: 3 roundings of storage and 32 of the arithmetic.
            assert_eq!(f16["results"]["gold_bound"].as_f64().unwrap(), 35.0 * 2f64.powi(-11));
            let rms = |r: &Value| r["results"]["rel_error_rms_vs_f64"].as_f64().unwrap();
            assert!(rms(f16) > rms(wide) && rms(f16) < 0.01, "{kind}: f16 arithmetic rms error {} against the wide {}", rms(f16), rms(wide));
            assert_ne!(f16["checksum"], wide["checksum"]);
            checksums.push((wide["checksum"].clone(), f16["checksum"].clone()));
        }
        assert!(checksums.iter().all(|c| *c == checksums[0]), "{kind}: {checksums:?}");
    }
    // f16 arithmetic is for f16 fields of the averaging stencils.
    let out = effcal(&["stencil", "--size", "8", "8", "8", "--precision", "f64,bf16", "--arithmetic", "f16"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --arithmetic 'f16': wide for these precisions"), "{}", text(&out.stderr));
    let out = effcal(&["stencil", "--kind", "himeno", "--class", "XS", "--precision", "f16", "--arithmetic", "f16"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --arithmetic 'f16 for himeno f16'"), "{}", text(&out.stderr));
}

#[test]
fn bad_sizes_and_dims_are_refused() {
    let out = mpirun(2, &["stencil", "--size", "16", "16", "16", "--dims", "3", "1", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("invalid --dims '3 1 1': three counts whose product is the number of ranks, 2"), "{err}");
    assert!(text(&out.stdout).is_empty());

    let out = mpirun(4, &["stencil", "--size", "3", "64", "64", "--dims", "4", "1", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("at most as many ranks as points in each dimension (dimension 0 has 3 points)"), "{}", text(&out.stderr));

    let out = effcal(&["stencil", "--size", "2", "8", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--size"), "{}", text(&out.stderr));

    let out = effcal(&["stencil", "--kind", "5pt", "--class", "S"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("[possible values: 7pt, himeno, 27pt]"), "{}", text(&out.stderr));
}

/// The arithmetic of the reference: f64 (the original made all-double) or f32 (the original).
trait Arith: Copy + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> + std::ops::Div<Output = Self> + Into<f64> {
    fn of(x: f64) -> Self;
}
impl Arith for f64 {
    fn of(x: f64) -> f64 {
        x
    }
}
impl Arith for f32 {
    fn of(x: f64) -> f32 {
        x as f32
    }
}

/// Himeno v3.0 as RIKEN's `main` sets it up and runs it, in plain loops (not effcal's
/// kernel): arrays [i][j][k] of mimax × mjmax × mkmax with k fastest; `mat_set_init`
/// p = i²/(mimax−1)²; `mat_set` a = (1, 1, 1, 1/6), b = 0, c = 1, wrk1 = 0, bnd = 1; then
/// `jacobi(nn)`: s0 in the original's order, ss = (s0·a3 − p)·bnd, wrk2 = p + ω·ss over the
/// interior, p = wrk2. Returns the last sweep's gosa, Σ ss² (summed in f64, effcal's
/// documented convention; the original's all-double version sums in double too).
fn himeno_reference<F: Arith>([mi, mj, mk]: [usize; 3], nn: usize) -> f64 {
    let at = |i: usize, j: usize, k: usize| (i * mj + j) * mk + k;
    let mut p = vec![F::of(0.0); mi * mj * mk];
    for i in 0..mi {
        for j in 0..mj {
            for k in 0..mk {
                p[at(i, j, k)] = F::of((i * i) as f64) / F::of(((mi - 1) * (mi - 1)) as f64);
            }
        }
    }
    let (a, a3, b, c, wrk1, bnd, omega) = (F::of(1.0), F::of(1.0) / F::of(6.0), F::of(0.0), F::of(1.0), F::of(0.0), F::of(1.0), F::of(0.8));
    let mut wrk2 = p.clone();
    let mut gosa = 0.0;
    for _ in 0..nn {
        gosa = 0.0;
        for i in 1..mi - 1 {
            for j in 1..mj - 1 {
                for k in 1..mk - 1 {
                    let q = |di: usize, dj: usize, dk: usize| p[at(i + di - 1, j + dj - 1, k + dk - 1)];
                    let s0 = a * q(2, 1, 1)
                        + a * q(1, 2, 1)
                        + a * q(1, 1, 2)
                        + b * (q(2, 2, 1) - q(2, 0, 1) - q(0, 2, 1) + q(0, 0, 1))
                        + b * (q(1, 2, 2) - q(1, 0, 2) - q(1, 2, 0) + q(1, 0, 0))
                        + b * (q(2, 1, 2) - q(0, 1, 2) - q(2, 1, 0) + q(0, 1, 0))
                        + c * q(0, 1, 1)
                        + c * q(1, 0, 1)
                        + c * q(1, 1, 0)
                        + wrk1;
                    let ss = (s0 * a3 - q(1, 1, 1)) * bnd;
                    gosa += (ss * ss).into();
                    wrk2[at(i, j, k)] = q(1, 1, 1) + omega * ss;
                }
            }
        }
        for i in 1..mi - 1 {
            for j in 1..mj - 1 {
                let r = at(i, j, 1)..at(i, j, mk - 1);
                p[r.clone()].copy_from_slice(&wrk2[r]);
            }
        }
    }
    gosa
}

#[test]
fn himeno_is_the_original_benchmark() {
    let classes = [("XS", [32, 32, 64]), ("S", [64, 64, 128])];
    for (class, size) in classes {
        for sweeps in [1usize, 3, 10] {
            let want = [("f64", himeno_reference::<f64>(size, sweeps), 1e-10), ("f32", himeno_reference::<f32>(size, sweeps), 1e-5)];
            for ranks in [1, 2, 4] {
                let records = stencil(
                    ranks,
                    &["--kind", "himeno", "--class", class, "--iters", &sweeps.to_string(), "--overlap", "off", "--precision", "f64,f32"],
                    &format!("himeno-{class}-{sweeps}-{ranks}.json"),
                );
                for (r, (p, reference, tolerance)) in records.iter().zip(want) {
                    assert_eq!((r["precision"].as_str().unwrap(), &r["params"]["size"]), (p, &serde_json::json!(size)));
                    let gosa = r["results"]["gosa"].as_f64().unwrap();
                    let rel = (gosa - reference).abs() / reference;
                    assert!(rel <= tolerance, "{class} {p}, {sweeps} sweep(s), {ranks} rank(s): gosa {gosa:e} vs the original's {reference:e} ({rel:.1e})");
                }
            }
        }
    }
}
