//! The effcal binary as users run it: plainly and under `mpirun -n 1/2/4`. Asserts exit
//! codes, exact outputs, schema-valid JSON and the figures' internal consistency (never
//! their speed). mpirun must be installed (scripts/test.sh installs it): a missing mpirun
//! fails these tests rather than skipping them.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn committed_schema_is_the_generated_one() {
    let generated = ok(&effcal(&["schema"]));
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/calibration.schema.json")).unwrap();
    assert_eq!(generated, committed, "run `effcal schema > docs/calibration.schema.json`");
}

#[test]
fn formats_table_rows() {
    let out = ok(&effcal(&["formats"]));
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    let row = |name: &str| rows.iter().find(|r| r.first() == Some(&name)).unwrap_or_else(|| panic!("no row {name}:\n{out}")).clone();
    assert_eq!(row("e4m3")[..9], ["e4m3", "8", "4", "3", "7", "448", "2^-6", "2^-9", "2^-3"]);
    assert_eq!(row("e5m2")[..9], ["e5m2", "8", "5", "2", "15", "57344", "2^-14", "2^-16", "2^-2"]);
    assert_eq!(row("f16")[..9], ["f16", "16", "5", "10", "15", "65504", "2^-14", "2^-24", "2^-10"]);
    assert_eq!(row("bf16")[..9], ["bf16", "16", "8", "7", "127", "3.3895313892515355e38", "2^-126", "2^-133", "2^-7"]);
    assert_eq!(row("f32")[..9], ["f32", "32", "8", "23", "127", "3.4028234663852886e38", "2^-126", "2^-149", "2^-23"]);
    assert_eq!(row("f64")[..9], ["f64", "64", "11", "52", "1023", "1.7976931348623157e308", "2^-1022", "2^-1074", "2^-52"]);
    assert!(row("e4m3").join(" ").contains("no Inf; NaN only S.1111.111"));
}

#[test]
fn quantize_prints_each_input_and_its_exact_rounding() {
    let out = ok(&effcal(&["formats", "quantize", "--to", "e4m3", "0.1", "464", "465", "-1e-3", "1e9", "nan"]));
    assert_eq!(out, "0.1 0.1015625\n464 448\n465 448\n-1e-3 -0.001953125\n1e9 448\nnan NaN\n");
    let out = ok(&effcal(&["formats", "quantize", "--to", "e4m3", "--overflow", "ieee", "1e9"]));
    assert_eq!(out, "1e9 NaN\n");
    let out = ok(&effcal(&["formats", "quantize", "--to", "e5m2", "--overflow", "ieee", "61440", "61439"]));
    assert_eq!(out, "61440 inf\n61439 57344\n");
    let out = ok(&effcal(&["formats", "quantize", "--to", "bf16", "1.00390625", "1.01171875", "3.14159"]));
    assert_eq!(out, "1.00390625 1\n1.01171875 1.015625\n3.14159 3.140625\n");

    // Values on stdin, one per line, when none are given.
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["formats", "quantize", "--to", "f16"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"0.1\n65519\n6e-8\n").unwrap();
    let out = ok(&child.wait_with_output().unwrap());
    assert_eq!(out, "0.1 0.0999755859375\n65519 65504\n6e-8 5.960464477539063e-8\n");

    // A bad value on stdin is named with its line; saturation clamps ±inf in every format.
    let mut child = Command::new(BIN)
        .args(["formats", "quantize", "--to", "bf16"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"1 2\n\n3 x4\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value (stdin line 3) 'x4'"), "{}", text(&out.stderr));
    for to in ["f16", "bf16", "e4m3", "e5m2"] {
        let out = ok(&effcal(&["formats", "quantize", "--to", to, "inf", "-inf"]));
        assert!(!out.contains("inf inf") && !out.contains("-inf -inf") && !out.contains("NaN"), "{to}: {out}");
    }
    assert!(ok(&effcal(&["formats"])).contains("±Inf included, in every format"));
}

#[test]
fn bad_arguments_name_the_field_and_the_allowed_values() {
    let out = effcal(&["gemm", "--precision", "fp4", "--n", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown precision 'fp4' (allowed: f64, f32, bf16, f16, e4m3, e5m2)"), "{}", text(&out.stderr));

    // No sampled entries would mean no check: refused, not PASSED.
    let out = effcal(&["gemm", "--precision", "f32", "--n", "8", "--samples", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --samples '0': at least 1 sampled entry of C per rank"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "refused before measuring");

    let out = effcal(&["gemm", "--precision", "f32", "--n", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--n"), "{}", text(&out.stderr));

    let out = effcal(&["gemm", "--precision", "e4m3", "--n", "8", "--scaling", "block"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid scaling 'block' (allowed: none, tensor, mx)"), "{}", text(&out.stderr));

    let out = effcal(&["formats", "quantize", "--to", "f16", "one"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'one'"), "{}", text(&out.stderr));

    let out = effcal(&["--threads", "1", "gemm", "--precision", "f32", "--n", "8", "--scaling", "tensor", "--reps", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "effcal: error: invalid --scaling 'tensor': none for f64, f32 and bf16 (scaling applies to f16, e4m3, e5m2)\n");
    assert!(text(&out.stdout).is_empty(), "refused before measuring anything");

    let out = effcal(&["peak", "--fma-seconds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --fma-seconds '0'"), "{}", text(&out.stderr));

    for bad in ["0,144,4096", "256,480", "256,480,4096,1", "kc,mc,nc", "256,18446744073709551615,4096"] {
        for cmd in [&["gemm", "--precision", "f64", "--n", "8"][..], &["hpl-mxp", "--n", "64"]] {
            let out = effcal(&[cmd, &["--blocking", bad]].concat());
            assert_eq!(out.status.code(), Some(2), "{bad}");
            let want = format!("invalid value '{bad}' for '--blocking <KC,MC,NC>': KC,MC,NC: three whole numbers from 1 to 1000000, e.g. 256,480,4096");
            assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
        }
    }
}

/// `--blocking` reaches effcal's own packed kernels, rounded to what each runs, and the
/// record says what ran; faer's paths block themselves (null).
#[test]
fn a_requested_blocking_is_what_the_record_says_ran() {
    let blocking = |precision: &str, backend: &str, extra: &[&str]| {
        let json = tmp(&format!("gemm-blocking-{precision}-{backend}.json"));
        let args = [&["--threads", "1", "gemm", "--precision", precision, "--n", "67", "--reps", "1", "--backend", backend, "--json", json.to_str().unwrap()][..], extra].concat();
        ok(&effcal(&args));
        let r = calibration(&json)["records"][0].clone();
        (r["params"]["path"].as_str().unwrap().to_string(), r["params"]["blocking"].clone())
    };
    let own_f64 = has_feature("avx512f") || (has_feature("avx2") && has_feature("fma"));
    let (path, b) = blocking("f64", "auto", &["--blocking", "20,10,50"]);
    if own_f64 {
        // kc as asked (one f64 per k step), mc to whole tiles of the kernel's MR rows.
        let mr = if path == "avx512-f64" { 8 } else { 6 };
        assert_eq!(b, serde_json::json!({"kc": 20, "mc": 10usize.div_ceil(mr) * mr, "nc": 50}), "{path}");
        let (_, b) = blocking("f64", "auto", &[]);
        assert!(b["kc"].as_u64().unwrap() > 0, "the default blocking is reported too: {b}");
    } else {
        assert_eq!((path.as_str(), &b), ("faer", &Value::Null));
    }
    let (path, b) = blocking("f64", "portable", &["--blocking", "20,10,50"]);
    assert_eq!((path.as_str(), &b), ("faer", &Value::Null));
    if has_feature("avx512bf16") {
        // bf16 packs pairs of k: kc rounded up to even.
        assert_eq!(blocking("bf16", "auto", &["--blocking", "21,13,40"]).1, serde_json::json!({"kc": 22, "mc": 24, "nc": 40}));
    }
}

#[test]
fn a_bad_config_is_refused_before_any_measurement() {
    let cfg = tmp("bad.toml");
    std::fs::write(&cfg, "[gemm]\nn = 64\nprecisions = [\"f32\", \"int8\"]\n").unwrap();
    let out = effcal(&["run", "--config", cfg.to_str().unwrap(), "--out", tmp("bad.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("gemm.precisions: unknown precision 'int8'"), "{err}");
    assert!(text(&out.stdout).is_empty(), "nothing measured: {}", text(&out.stdout));

    std::fs::write(&cfg, "[gemm]\nn = 64\nprecisions = [\"f32\"]\nsize = 3\n").unwrap();
    let out = effcal(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown field `size`"), "{}", text(&out.stderr));
}

/// Checks one GEMM record's internal consistency.
fn check_gemm_record(r: &Value, ranks: u64, n: u64) {
    let p = r["precision"].as_str().unwrap();
    assert_eq!(r["kernel"], "gemm");
    assert_eq!(r["valid"], true, "{p}: {r}");
    assert_eq!(r["params"]["ranks"], ranks);
    assert_eq!(r["params"]["n"], n);
    let g = &r["gflops"];
    assert!(g["min"].as_f64().unwrap() <= g["median"].as_f64().unwrap() && g["median"].as_f64().unwrap() <= g["max"].as_f64().unwrap());
    // The rate is ranks · 2n³ over the slowest rank's time.
    let flops = ranks as f64 * 2.0 * (n as f64).powi(3);
    let t = r["time_s"]["median"].as_f64().unwrap();
    let rate = g["median"].as_f64().unwrap();
    assert!((rate - flops / t / 1e9).abs() <= 1e-9 * rate, "{p}: {rate} vs {}", flops / t / 1e9);
    let a = &r["accuracy"];
    assert!(a["rel_error_vs_rounded"].as_f64().unwrap() <= a["arithmetic_bound"].as_f64().unwrap(), "{p}: {a}");
    assert!(a["rel_error_vs_f64"].as_f64().unwrap() <= a["expected_error"].as_f64().unwrap() * 1.001, "{p}: {a}");
}

#[test]
fn gemm_json_is_schema_valid_in_every_precision() {
    // One run, every precision in the order given: a record each.
    let precisions = ["f64", "f32", "bf16", "f16", "e4m3", "e5m2"];
    let json = tmp("gemm-all.json");
    let out = effcal(&["gemm", "--precision", &precisions.join(","), "--n", "67", "--reps", "2", "--samples", "200", "--json", json.to_str().unwrap()]);
    let stdout = ok(&out);
    assert!(stdout.contains("Result: PASSED"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.ends_with("  PASSED")).count(), precisions.len(), "{stdout}");
    let doc = calibration(&json);
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["system"]["ranks"], 1);
    assert_eq!(doc["records"].as_array().unwrap().len(), precisions.len());
    let peaks = &doc["peaks"]["per_precision"];
    for q in precisions {
        assert!(peaks[q]["empirical_gflops"].as_f64().unwrap() > 0.0, "{q}: {peaks}");
    }
    // f16 computes natively only where the CPU has f16 arithmetic (AVX512_FP16).
    let native_f16 = cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        let has = std::arch::is_x86_feature_detected!("avx512fp16") && std::arch::is_x86_feature_detected!("avx512bw");
        #[cfg(not(target_arch = "x86_64"))]
        let has = false;
        has
    };
    assert_eq!(peaks["f16"]["compute_precision"], if native_f16 { "f16" } else { "f32" });
    // FP8 computes in the faster of f32 and bf16 dot (exact for FP8) where the CPU has the
    // latter and it is clearly faster (1.2×), as its row's source says.
    let median = |q: &str| peaks[q]["empirical"]["median"].as_f64().unwrap();
    let bf16_dot = peaks["bf16"]["compute_precision"] == "bf16";
    let fp8 = if bf16_dot && median("bf16") >= 1.2 * median("f32") { "bf16" } else { "f32" };
    for q in ["e4m3", "e5m2"] {
        assert_eq!(peaks[q]["compute_precision"], fp8, "{q}: {peaks}");
        assert!(peaks[q]["flop_per_cycle_source"].as_str().unwrap().contains(&format!("computed in {fp8} (no native arithmetic")), "{peaks}");
    }
    for (r, p) in doc["records"].as_array().unwrap().iter().zip(precisions) {
        assert_eq!(r["precision"], p, "records in the order of --precision: {r}");
        check_gemm_record(r, 1, 67);
        // The fastest path: where the CPU has effcal's own kernel for the precision besides
        // the portable path, both were timed and the faster ran; else there was nothing to
        // choose from.
        assert_eq!(r["params"]["backend"], "fastest");
        let own = match p {
            "f64" => has_feature("avx512f") || (has_feature("avx2") && has_feature("fma")),
            "bf16" | "e4m3" | "e5m2" => has_feature("avx512bf16"),
            _ => false,
        };
        match r["results"].get("path_probe_s").and_then(Value::as_object) {
            Some(times) => {
                assert!(own, "{p}: a probe with one path: {r}");
                assert_eq!(times.len(), 2, "{p}: {times:?}");
                let fastest = times.iter().min_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap())).unwrap().0;
                assert_eq!(r["params"]["path"], fastest.as_str(), "{p}: {r}");
            }
            None => assert!(!own, "{p}: no probe though the CPU has two paths: {r}"),
        }
    }
    // A path asked for is the path taken, without a probe.
    for (backend, path) in [("portable", "convert-f32+faer"), ("auto", if has_feature("avx512bf16") { "avx512-bf16" } else { "convert-f32+faer" })] {
        let json = tmp(&format!("gemm-{backend}.json"));
        ok(&effcal(&["gemm", "--precision", "bf16", "--n", "67", "--reps", "1", "--backend", backend, "--json", json.to_str().unwrap()]));
        let r = &calibration(&json)["records"][0];
        assert_eq!((&r["params"]["backend"], &r["params"]["path"]), (&Value::from(backend), &Value::from(path)), "{r}");
        assert!(r["results"].get("path_probe_s").is_none(), "{r}");
    }
}

#[test]
fn f16_accumulation_is_checked_against_its_own_bound() {
    let json = tmp("gemm-f16acc.json");
    let stdout = ok(&effcal(&["gemm", "--precision", "f16", "--n", "67", "--reps", "1", "--accumulate", "f16", "--acc-block", "16", "--samples", "300", "--json", json.to_str().unwrap()]));
    assert!(stdout.contains("f16acc-portable") && stdout.contains("Result: PASSED"), "{stdout}");
    let r = &calibration(&json)["records"][0];
    assert_eq!((&r["params"]["accumulation"], &r["params"]["accumulation_block"], &r["params"]["arithmetic"]), (&Value::from("f16"), &Value::from(16), &Value::from("f16")));
    // The bound of 16-term f16 chains: (16 + 1)·2^-11 and the f32 sums of 5 blocks.
    let bound = r["accuracy"]["arithmetic_bound"].as_f64().unwrap();
    assert!((bound - (17.0 * 2f64.powi(-11) + 10.0 * 2f64.powi(-24) * (1.0 + 17.0 * 2f64.powi(-11)))).abs() < 1e-15, "{bound}");
    // f16 accumulation is for f16 inputs: refused before anything runs, whichever precision
    // of the list it does not fit.
    let out = effcal(&["gemm", "--precision", "bf16", "--n", "16", "--accumulate", "f16"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "effcal: error: invalid --accumulate 'f16': wide for bf16 inputs: f16 accumulation for f16 inputs only\n");
    let json = tmp("gemm-f16acc-list.json");
    let out = effcal(&["gemm", "--precision", "f16,f32", "--n", "16", "--accumulate", "f16", "--json", json.to_str().unwrap()]);
    assert_eq!(text(&out.stderr), "effcal: error: invalid --accumulate 'f16': wide for f32 inputs: f16 accumulation for f16 inputs only\n");
    assert!(out.stdout.is_empty() && !json.exists(), "nothing ran");
}

/// True when this CPU has the x86 feature (false elsewhere).
fn has_feature(f: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    return match f {
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        _ => false,
    };
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = f;
        false
    }
}

#[test]
fn gemm_under_mpirun_aggregates_every_rank() {
    for ranks in [1usize, 2, 4] {
        let json = tmp(&format!("gemm-mpi{ranks}.json"));
        let out = mpirun(ranks, &["--threads", "1", "gemm", "--precision", "bf16", "--n", "96", "--reps", "2", "--json", json.to_str().unwrap()]);
        let stdout = ok(&out);
        assert_eq!(stdout.matches("Result: PASSED").count(), 1, "only rank 0 prints:\n{stdout}");
        let doc = calibration(&json);
        assert_eq!(doc["system"]["ranks"], ranks);
        assert_eq!(doc["system"]["bindings"].as_array().unwrap().len(), ranks);
        assert_eq!(doc["peaks"]["cores"], ranks);
        check_gemm_record(&doc["records"][0], ranks as u64, 96);
    }
}

#[test]
fn run_writes_every_record_of_the_plan_under_mpirun() {
    let cfg = tmp("small.toml");
    std::fs::write(
        &cfg,
        "[run]\nreps = 2\nwarmup = 1\n[peak]\nfma_seconds = 0.02\ntriad_elements = 100000\n\
         [gemm]\nn = 80\nprecisions = [\"f64\", \"f32\", \"bf16\", \"f16\", \"e4m3\", \"e5m2\"]\nscaling_fp8 = \"mx\"\n\
         [hpl_mxp]\nn = 200\nnb = 48\nprecisions = [\"f64\", \"bf16\"]\n\
         [stencil]\nkinds = [\"7pt\", \"himeno\"]\nprecisions = [\"f64\", \"bf16\"]\nsize = [12, 10, 14]\niters = 2\n\
         [net]\nmax_bytes = 4096\niters = 20\n",
    )
    .unwrap();
    let json = tmp("run.json");
    let out = mpirun(2, &["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]);
    let stdout = ok(&out);
    assert!(stdout.contains("STREAM triad") && stdout.contains("Result: PASSED"), "{stdout}");
    let doc = calibration(&json);
    let records = doc["records"].as_array().unwrap();
    let names: Vec<(&str, &str)> = records.iter().map(|r| (r["kernel"].as_str().unwrap(), r["precision"].as_str().unwrap())).collect();
    let gemm = ["f64", "f32", "bf16", "f16", "e4m3", "e5m2"].map(|p| ("gemm", p));
    assert_eq!(names[..6], gemm);
    assert_eq!(names[6..8], [("hpl-mxp", "f64"), ("hpl-mxp", "bf16")]);
    assert_eq!(names[8..], [("stencil-7pt", "f64"), ("stencil-7pt", "bf16"), ("himeno", "f64"), ("himeno", "bf16")]);
    for r in &records[8..] {
        assert_eq!(r["valid"], true, "{r}");
        assert!(r["bandwidth_gbs"]["median"].as_f64().unwrap() > 0.0 && r["checksum"].as_str().unwrap().len() == 16, "{r}");
    }
    for r in &records[..6] {
        check_gemm_record(r, 2, 80);
    }
    assert_eq!(records[6]["valid"], true);
    assert_eq!(records[7]["valid"], true);
    assert!(records[7]["results"]["speedup_vs_f64"].as_f64().unwrap() > 0.0, "{}", records[7]);
    assert_eq!(records[4]["params"]["scaling"], "mx");
    let triad = &doc["peaks"]["stream_triad"];
    assert_eq!(triad["valid"], true);
    assert_eq!(triad["bytes_per_element"], 24);
    assert_eq!(doc["peaks"]["stream_triad_gbs"], triad["gbs"]["max"]);
    // [net]: the network between the two ranks (one host here), and every stencil's halo
    // model by it.
    let pair = &doc["network"]["pingpong"][0];
    assert_eq!((&pair["ranks"], &pair["same_host"]), (&serde_json::json!([0, 1]), &Value::Bool(true)));
    assert_eq!(pair["points"].as_array().unwrap().len(), 14, "0 B and 1 B to 4 KiB");
    for r in &records[8..] {
        assert!(r["results"]["halo_model_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn peak_reports_theoretical_and_empirical_side_by_side() {
    let json = tmp("peak.json");
    let stdout = ok(&effcal(&["--threads", "1", "peak", "--reps", "2", "--fma-seconds", "0.02", "--triad-elements", "100000", "--json", json.to_str().unwrap()]));
    assert!(stdout.contains("Theoretical = cores × clock × FLOP/cycle/core"), "{stdout}");
    let doc = calibration(&json);
    let peaks = &doc["peaks"];
    assert_eq!(peaks["cores"], 1);
    let f64p = &peaks["per_precision"]["f64"];
    let f32p = &peaks["per_precision"]["f32"];
    for q in [f64p, f32p] {
        assert!(q["empirical_gflops"].as_f64().unwrap() > 0.0);
        assert_eq!(q["empirical_gflops"], q["empirical"]["max"], "the empirical peak is the best repetition");
    }
    assert_eq!(f64p["compute_precision"], "f64");
    if peaks["microarch"]["entry"].is_null() {
        // Not in the table: no figure is made up, and the source says what to give.
        assert!(f64p["theoretical_gflops"].is_null(), "{f64p}");
        assert!(f64p["flop_per_cycle_source"].as_str().unwrap().starts_with("unknown: "), "{f64p}");
    } else {
        // In the table: 1 core × clock × FLOP/cycle, f32 twice f64 on every core it lists, and
        // the printed row is the JSON's.
        let (c, f) = (peaks["clock_ghz"].as_f64().unwrap(), f64p["flop_per_cycle_per_core"].as_f64().unwrap());
        let t = f64p["theoretical_gflops"].as_f64().unwrap();
        assert!((t - c * f).abs() < 1e-9 * t, "theoretical = 1 core × clock × FLOP/cycle: {t} vs {c} × {f}");
        assert_eq!(f32p["flop_per_cycle_per_core"].as_f64().unwrap(), 2.0 * f, "{f32p}");
        assert!(f64p["flop_per_cycle_source"].as_str().unwrap().starts_with("table: "), "{f64p}");
        let row = stdout.lines().find(|l| l.starts_with("f64 ")).unwrap();
        assert!(row.contains(&format!(" {f} ")) && row.contains(&format!("{t:.1}")), "{row}");
    }
    assert!(doc["records"].as_array().unwrap().is_empty());
}

#[test]
fn output_paths_are_checked_before_anything_is_measured() {
    // A directory, a missing directory: refused by flag and path, nothing measured, nothing
    // left behind.
    let dir = tmp("out-dir");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = effcal(&["gemm", "--precision", "f64", "--n", "16", "--json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("invalid --json '{}': a file path: this is a directory", dir.display())), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("GEMM"), "measured before refusing: {}", text(&out.stdout));
    let missing = dir.join("no/such/dir/x.json");
    let out = effcal(&["peak", "--json", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("invalid --json '{}': a file in an existing directory", missing.display())), "{}", text(&out.stderr));
    assert!(!dir.join("no").exists(), "no directory is made for a path the user gave");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing left in {}", dir.display());

    // run: an existing output is not overwritten unless --force (--resume continues it); the
    // refusal is printed once, by rank 0.
    let cfg = tmp("tiny.toml");
    std::fs::write(&cfg, "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.01\ntriad_elements = 10000\n[gemm]\nn = 16\nprecisions = [\"f64\"]\n").unwrap();
    let json = tmp("tiny.json");
    let run = |extra: &[&str]| {
        let mut args = vec!["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()];
        args.extend_from_slice(extra);
        mpirun(2, &args)
    };
    ok(&run(&[]));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.matches("effcal: error: invalid --out").count(), 1, "once, by rank 0: {err}");
    assert!(err.contains("a new file: it exists (--resume continues it, --force overwrites it)"), "{err}");
    ok(&run(&["--force"]));
    // A flag the command does not take: clap's message, once.
    let out = run(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.matches("error: unexpected argument '--no-such-flag'").count(), 1, "once, by rank 0: {err}");
}

#[test]
fn version_says_the_commit_and_the_build_flags() {
    let v = ok(&effcal(&["--version"]));
    assert!(v.starts_with(&format!("effcal {} (commit ", env!("CARGO_PKG_VERSION"))) && v.contains("; RUSTFLAGS: ") && v.contains("; compiled for: "), "{v}");
}

#[test]
fn a_dry_run_lists_every_run_and_measures_nothing() {
    let cfg = tmp("dry.toml");
    std::fs::write(&cfg, "[gemm]\nn = 512\nprecisions = [\"f64\", \"bf16\"]\n[hpl_mxp]\nn = 1024\nprecisions = [\"f64\"]\n[stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f32\"]\nsize = [34, 34, 34]\niters = 2\n[net]\nmax_bytes = 1048576\n").unwrap();
    let json = tmp("dry.json");
    let out = ok(&mpirun(2, &["--threads", "1", "run", "--dry-run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]));
    assert!(out.starts_with(&format!("Dry run of {}: 2 rank(s) × 1 thread(s)", cfg.display())), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| ["gemm ", "hpl-mxp ", "stencil-7pt "].iter().any(|k| l.starts_with(k))).collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows[0].contains("f64") && rows[0].contains("n=512") && rows[2].contains("n=1024 nb=384 1×2") && rows[3].contains("34x34x34 ×2"), "{out}");
    // GEMM f64 holds A, B and C in f64: 3 · 8 · 512² bytes per rank.
    assert!(rows[0].contains(&format!("{:.3}", 3.0 * 8.0 * 512.0 * 512.0 / 1e9)), "{}", rows[0]);
    assert!(out.lines().any(|l| l.starts_with("net ") && l.contains("0 B to 1048576 B")), "{out}");
    assert!(!json.exists(), "a dry run writes no calibration");
}

#[test]
fn peaks_measured_once_serve_later_commands() {
    let peaks = tmp("reuse-peak.json");
    ok(&effcal(&["--threads", "1", "peak", "--reps", "2", "--fma-seconds", "0.02", "--triad-elements", "100000", "--json", peaks.to_str().unwrap()]));
    let json = tmp("reuse-stencil.json");
    let out = ok(&effcal(&["--threads", "1", "--peaks", peaks.to_str().unwrap(), "stencil", "--size", "20", "20", "20", "--iters", "1", "--reps", "1", "--json", json.to_str().unwrap()]));
    assert!(out.contains(&format!("Peaks from {} (measured ", peaks.display())), "{out}");
    let (a, b) = (calibration(&peaks), calibration(&json));
    assert_eq!(a["peaks"], b["peaks"], "the file's peaks, as they were");
    // The triad of the file is the stencil's ceiling.
    let r = &b["records"][0];
    let want = r["bandwidth_gbs"]["median"].as_f64().unwrap() / a["peaks"]["stream_triad_gbs"].as_f64().unwrap();
    assert!((r["efficiency"]["vs_empirical"].as_f64().unwrap() - want).abs() < 1e-12, "{r}");
    // Peaks of other cores are refused.
    let out = mpirun(2, &["--threads", "1", "--peaks", peaks.to_str().unwrap(), "gemm", "--precision", "f64", "--n", "16"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("peaks of this run's 2 core(s)"), "{}", text(&out.stderr));
    // Peaks whose rows an older effcal chose (e4m3 in f32 though the bf16 dot is far faster)
    // are refused: a faster path would measure above its format's peak.
    let mut doc = a.clone();
    let rows = &mut doc["peaks"]["per_precision"];
    let f32_median = rows["f32"]["empirical"]["median"].as_f64().unwrap();
    rows["bf16"]["compute_precision"] = "bf16".into();
    rows["bf16"]["empirical"]["median"] = (10.0 * f32_median).into();
    rows["e4m3"]["compute_precision"] = "f32".into();
    let stale = tmp("reuse-stale-peak.json");
    std::fs::write(&stale, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = effcal(&["--threads", "1", "--peaks", stale.to_str().unwrap(), "gemm", "--precision", "f64", "--n", "16"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("that file's e4m3 row computes in f32, bf16 measured 10.00× its rate: written by an older effcal"), "{}", text(&out.stderr));
}


#[test]
fn gpu_flags_are_checked_before_anything_runs() {
    let refused = |args: &[&str], want: &str| {
        let out = effcal(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).is_empty(), "{args:?}: refused before measuring");
    };
    refused(&["gemm", "--device", "gpu", "--precision", "fp4", "--n", "64"], "invalid --precision 'fp4': one of f64, f32, tf32, bf16, f16, e4m3, e5m2, int8 with --device gpu");
    refused(&["gemm", "--device", "gpu", "--precision", "f16", "--n", "64", "--backend", "portable"], "invalid --backend 'portable': fastest (the default) with --device gpu");
    refused(&["gemm", "--device", "gpu", "--precision", "f16", "--n", "64", "--accumulate", "f16"], "invalid --accumulate 'f16': wide (the default) with --device gpu");
    refused(&["gemm", "--device", "gpu", "--precision", "e4m3", "--n", "64", "--scaling", "mx"], "invalid --scaling 'mx': none or tensor for e4m3/e5m2 on --device gpu");
    refused(&["gemm", "--device", "gpu", "--precision", "bf16", "--n", "64", "--scaling", "tensor"], "invalid --scaling 'tensor': none for bf16 on --device gpu");
    refused(&["gemm", "--device", "tpu", "--precision", "f16", "--n", "64"], "invalid value 'tpu' for '--device <DEVICE>'");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--precision", "bf16,e5m2"], "invalid --precision 'e5m2': f64, f32, bf16, f16 or e4m3 with --device gpu (Hopper's FP8 GEMMs take E4M3 × E4M3, not E5M2 × E5M2)");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "100", "--precision", "e4m3"], "invalid --n '100': a multiple of 16 for e4m3 with --device gpu");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--precision", "e4m3", "--chunk", "40"], "invalid --chunk '40': a multiple of 16 for e4m3 with --device gpu");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--precision", "e4m3", "--scaling", "mx"], "invalid --scaling 'mx': tensor (the default for FP8) or none with --device gpu");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--precision", "f16", "--scaling", "tensor"], "invalid --scaling 'tensor': none with --device gpu");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--precision", "f16", "--accumulate", "f16"], "invalid --accumulate 'f16': wide (the default) with --device gpu");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--backend", "portable"], "invalid --backend 'portable': fastest (the default) with --device gpu");
    refused(&["stencil", "--device", "gpu", "--kind", "himeno", "--size", "8", "8", "8"], "invalid --kind 'himeno': 7pt or 27pt with --device gpu");
    refused(&["stencil", "--device", "gpu", "--precision", "f64,e5m2", "--size", "8", "8", "8"], "invalid --precision 'e5m2': f64, f32, bf16 or f16 with --device gpu");
    refused(&["stencil", "--device", "gpu", "--precision", "f16", "--arithmetic", "f16", "--size", "8", "8", "8"], "invalid --arithmetic 'f16': wide (the default) with --device gpu");
    refused(&["gemm", "--precision", "tf32", "--n", "8"], "invalid --precision 'tf32': one of f64, f32, bf16, f16, e4m3, e5m2 on the CPU; tf32 GEMMs run with --device gpu");
    refused(&["peak", "--gemm-n", "512"], "invalid --gemm-n '512': only with --device gpu");
    refused(&["hpl-mxp", "--n", "64", "--diagonal", "gpu"], "invalid --diagonal 'gpu': host with --device cpu");
    refused(&["gemm", "--device", "gpu", "--precision", "bf16", "--n", "64", "--blocking", "256,480,4096"], "invalid --blocking '256,480,4096': only with --device cpu: cuBLAS blocks the GPU's GEMMs itself");
    refused(&["hpl-mxp", "--device", "gpu", "--n", "64", "--blocking", "256,480,4096"], "invalid --blocking '256,480,4096': only with --device cpu");
}

/// Whether this machine has a GPU effcal can use: where it has none, `--device gpu` is
/// refused as bad input (exit 2) that names the reason, measures nothing and writes no JSON;
/// where it has one, the same commands measure it.
#[test]
fn device_gpu_without_a_gpu_is_refused_and_measures_nothing() {
    let json = tmp("gpu-peak.json");
    let peak = ["--threads", "1", "peak", "--device", "gpu", "--reps", "2", "--fma-seconds", "0.05", "--gemm-n", "1024", "--triad-elements", "1048576", "--json", json.to_str().unwrap()];
    let out = effcal(&peak);
    let err = text(&out.stderr);
    if out.status.code() == Some(2) {
        assert!(err.starts_with("effcal: error: invalid --device 'gpu': a machine with a usable NVIDIA GPU ("), "{err}");
        assert!(err.ends_with("); nothing was measured: --device cpu measures the CPU\n"), "{err}");
        assert!(text(&out.stdout).is_empty() && !json.exists(), "nothing measured, no JSON");
        // Under mpirun too: every rank is refused alike and rank 0 says so, once.
        let out = mpirun(2, &["--threads", "1", "gemm", "--device", "gpu", "--precision", "f16", "--n", "64"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(text(&out.stderr).matches("invalid --device 'gpu'").count(), 1, "{}", text(&out.stderr));
        assert!(text(&out.stdout).is_empty());
        // Stencils under mpirun: each rank refused alike, said once.
        let out = mpirun(2, &["--threads", "1", "stencil", "--device", "gpu", "--size", "8", "8", "8"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(text(&out.stderr).matches("invalid --device 'gpu': a machine with a usable NVIDIA GPU").count(), 1, "{}", text(&out.stderr));
        // HPL-MxP too, before anything runs.
        let out = effcal(&["--threads", "1", "hpl-mxp", "--device", "gpu", "--n", "256", "--nb", "64"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("effcal: error: invalid --device 'gpu': a machine with a usable NVIDIA GPU ("), "{}", text(&out.stderr));
        return;
    }
    // A GPU is here: the peaks are measured and described.
    let stdout = ok(&out);
    assert!(stdout.contains("Peaks for 1 GPU(s)"), "{stdout}");
    let doc = calibration(&json);
    assert_eq!(doc["peaks"]["gpus"], 1);
    assert!(doc["system"]["gpu"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    let g = tmp("gpu-gemm.json");
    let stdout = ok(&effcal(&["--threads", "1", "--peaks", json.to_str().unwrap(), "gemm", "--device", "gpu", "--precision", "f16", "--n", "512", "--reps", "2", "--json", g.to_str().unwrap()]));
    assert!(stdout.contains("PASSED"), "{stdout}");
    let r = &calibration(&g)["records"][0];
    assert_eq!(r["params"]["device"], "gpu");
    assert!(r["valid"].as_bool().unwrap(), "{r}");
    // HPL-MxP on the GPU: an FP64 baseline and BF16 (N not a multiple of NB), both PASSED,
    // the speed-up over the FP64 LU, power or why not.
    let h = tmp("gpu-hpl.json");
    let stdout = ok(&effcal(&["--threads", "1", "--peaks", json.to_str().unwrap(), "hpl-mxp", "--device", "gpu", "--precision", "f64,bf16", "--n", "3000", "--nb", "256", "--reps", "2", "--json", h.to_str().unwrap()]));
    assert_eq!(stdout.matches("PASSED").count(), 4, "{stdout}");
    let doc = calibration(&h);
    for r in doc["records"].as_array().unwrap() {
        assert_eq!(r["params"]["device"], "gpu");
        assert!(r["valid"].as_bool().unwrap(), "{r}");
        assert!(r["results"].get("power").is_some() || r["results"].get("power_unavailable").is_some(), "{r}");
    }
    // Stencils on the GPU: the host's bits.
    let st = tmp("gpu-stencil.json");
    let stdout = ok(&effcal(&["--threads", "1", "--peaks", json.to_str().unwrap(), "stencil", "--device", "gpu", "--kind", "27pt", "--precision", "f64,bf16", "--size", "40", "30", "300", "--iters", "3", "--json", st.to_str().unwrap()]));
    assert_eq!(stdout.matches("PASSED").count(), 2, "{stdout}");
    for r in calibration(&st)["records"].as_array().unwrap() {
        assert_eq!(r["results"]["points_differing_from_host"], 0, "{r}");
    }
    // Two ranks (where the GPU can take two processes): the host-staged halo gives the
    // host's bits on each rank's block.
    let out = mpirun(2, &["--threads", "1", "--peaks", json.to_str().unwrap(), "stencil", "--device", "gpu", "--kind", "27pt", "--precision", "f32", "--size", "40", "30", "300", "--dims", "2", "1", "1", "--iters", "3"]);
    if out.status.code() != Some(2) {
        assert!(ok(&out).contains("PASSED"));
    }
}
