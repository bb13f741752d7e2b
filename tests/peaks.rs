//! Peaks you can trust: the measured clock against what the system states, the theoretical
//! f64 peak against the measured FMA rate (the guard), a wrong clock caught, refused by the
//! estimator, and corrected afterwards with `--system`. Nothing here depends on the CPU
//! model: where the CPU is not in the microarchitecture table the checks that need a
//! table figure say so and are skipped, nothing else is.

mod common;

use common::{calibration, effcal, ok, text, tmp};
use serde_json::Value;
use std::path::PathBuf;

/// The tests here measure clocks and rates: one at a time, so two runs never share a core
/// (each effcal without a launcher's binding places its thread on the first core).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_clock_and_the_f64_peak_agree_with_the_system() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let json = tmp("peaks-clock.json");
    let stdout = ok(&effcal(&["--threads", "1", "peak", "--reps", "3", "--fma-seconds", "0.05", "--triad-elements", "100000", "--json", json.to_str().unwrap()]));
    assert!(stdout.contains("Clock readings (GHz): imul chain"), "{stdout}");
    let doc = calibration(&json);
    let peaks = &doc["peaks"];
    let clock = &peaks["clock"];
    let (scalar, loaded) = (f(&clock["measured_scalar_ghz"]), f(&clock["measured_fma_ghz"]));
    // The stated maximum, where the system states one: the measured clock is at most 10 %
    // above it (above that it would have been refused, and the run said so).
    if let Some(max) = clock["stated_max_ghz"].as_f64() {
        assert!(loaded <= 1.1 * max && scalar <= 1.1 * max, "measured {loaded} / {scalar} GHz, stated maximum {max}: {clock}");
        assert!(clock["refused"].is_null(), "{clock}");
    }
    // The loaded clock is what the peaks use, and a core never runs faster with wide FMAs
    // in flight than without beyond noise.
    assert_eq!(peaks["clock_ghz"], clock["measured_fma_ghz"]);
    assert!(loaded <= 1.05 * scalar, "loaded {loaded} GHz above scalar {scalar} GHz");
    let f64p = &peaks["per_precision"]["f64"];
    assert_eq!(f64p["compute_precision"], "f64");
    assert_eq!(f64p["empirical_gflops"], f64p["empirical"]["max"], "the empirical peak is the best repetition");
    if peaks["microarch"]["entry"].is_null() {
        eprintln!("skipped: {} is not in configs/microarch.toml", peaks["microarch"]["cpu"]);
        return;
    }
    // theoretical = 1 core × clock × FLOP/cycle, and the FMA kernel reaches [0.5, 1.05] of it.
    let theoretical = f(&f64p["theoretical_gflops"]);
    assert!((theoretical - f(&peaks["clock_ghz"]) * f(&f64p["flop_per_cycle_per_core"])).abs() < 1e-9 * theoretical);
    let ratio = f(&f64p["empirical_gflops"]) / theoretical;
    assert!((0.5..=1.05).contains(&ratio), "f64: empirical / theoretical = {ratio}: {f64p}");
    assert!((f(&f64p["empirical_over_theoretical"]) - ratio).abs() < 1e-12);
    assert!(f64p["suspect"].is_null(), "{f64p}");
    // Every precision with native arithmetic passes the guard too.
    for (name, pk) in peaks["per_precision"].as_object().unwrap() {
        if !pk["theoretical_gflops"].is_null() {
            assert!(pk["suspect"].is_null(), "{name}: {pk}");
        }
    }
}

const PLAN: &str = "[run]\nreps = 2\nwarmup = 0\n[peak]\nfma_seconds = 0.02\ntriad_elements = 100000\n\
                    [gemm]\nn = 96\nprecisions = [\"f64\", \"bf16\"]\n\
                    [hpl_mxp]\nn = 192\nnb = 64\nprecisions = [\"f64\", \"bf16\"]\n";

/// A run of PLAN with `system` as its [system] section (none when empty).
fn run(name: &str, system: &str) -> (PathBuf, String) {
    let cfg = tmp(&format!("{name}.toml"));
    std::fs::write(&cfg, format!("{PLAN}{system}")).unwrap();
    let json = tmp(&format!("{name}.json"));
    let stdout = ok(&effcal(&["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]));
    (json, stdout)
}

/// The H100 counts of an estimate, by scenario (measured ones only).
fn h100(estimate: &Value) -> Vec<(String, f64)> {
    estimate["gpus_for_fp16_demand"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["gpu"] == "NVIDIA H100" && g["scenario"].as_str().unwrap().starts_with("measured"))
        .map(|g| (g["scenario"].as_str().unwrap().to_string(), f(&g["gpus"])))
        .collect()
}

#[test]
fn a_wrong_clock_is_caught_refused_and_corrected_afterwards() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Five times the real clock: the denominator the imul-less chain gave on Golden Cove.
    let (fresh, _) = run("peaks-fresh", "");
    let doc = calibration(&fresh);
    let measured = f(&doc["peaks"]["clock"]["measured_fma_ghz"]);
    if doc["peaks"]["microarch"]["entry"].is_null() {
        eprintln!("skipped: {} is not in configs/microarch.toml", doc["peaks"]["microarch"]["cpu"]);
        return;
    }
    let wrong = format!("[system]\nclock_ghz = {:.3}\n", (5.0 * measured).min(19.9));
    let (bad, stdout) = run("peaks-wrong", &wrong);
    assert!(stdout.contains("WARNING: the f64 theoretical peak is suspect: the"), "{stdout}");
    let doc = calibration(&bad);
    let f64p = &doc["peaks"]["per_precision"]["f64"];
    assert!(f(&f64p["empirical_over_theoretical"]) < 0.5, "{f64p}");
    let why = f64p["suspect"].as_str().unwrap();
    // The warning names both figures.
    assert!(why.contains(&format!("{:.1} GFLOP/s", f(&f64p["empirical_gflops"]))) && why.contains(&format!("{:.1} GFLOP/s", f(&f64p["theoretical_gflops"]))), "{why}");
    // The raw rates stay, so efficiencies can be recomputed.
    assert!(doc["records"].as_array().unwrap().iter().all(|r| f(&r["gflops"]["median"]) > 0.0));

    // The estimator refuses the suspect denominator, naming the way out...
    let est = tmp("peaks-estimate.json");
    let out = effcal(&["estimate", "--calibration", bad.to_str().unwrap(), "--json", est.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("invalid --calibration") && err.contains("f64: the") && err.contains("--allow-suspect-peaks") && err.contains("--system FILE"), "{err}");
    // ...uses it when told, and says so.
    let md = ok(&effcal(&["estimate", "--calibration", bad.to_str().unwrap(), "--allow-suspect-peaks", "--json", est.to_str().unwrap()]));
    assert!(md.contains("**Peaks:** --allow-suspect-peaks: a suspect theoretical peak is used: f64:"), "{md}");
    let suspect_estimate: Value = serde_json::from_str(&std::fs::read_to_string(&est).unwrap()).unwrap();

    // Corrected afterwards with a hand-written [system] of the right clock, as the run whose
    // FMA rates it divides measured it (the higher of the dependent imul chain alone and
    // under FMA load; the fresh run's reading may catch the shared machine slower, and the
    // guard would then rightly find that run's FMA rate above 1.05 of the peak):
    // efficiencies recomputed from the raw rates, and said so.
    let clock = &doc["peaks"]["clock"];
    let imul = f(&clock["measured_scalar_ghz"]).max(f(&clock["measured_fma_ghz"]));
    let right = tmp("peaks-right.toml");
    let imul: f64 = format!("{imul:.4}").parse().unwrap();
    std::fs::write(&right, format!("[system]\nclock_ghz = {imul}\n[system.sources]\nclock_ghz = \"dependent imul chain\"\n")).unwrap();
    let md = ok(&effcal(&["--system", right.to_str().unwrap(), "estimate", "--calibration", bad.to_str().unwrap(), "--json", est.to_str().unwrap()]));
    assert!(md.contains(&format!("**Peaks:** peaks recomputed after the run from {}: clock {imul} GHz", right.display())), "{md}");
    let corrected: Value = serde_json::from_str(&std::fs::read_to_string(&est).unwrap()).unwrap();
    let gemm_f64 = corrected["efficiencies"].as_array().unwrap().iter().find(|e| e["class"] == "gemm" && e["precision"] == "f64").unwrap();
    let record = doc["records"].as_array().unwrap().iter().find(|r| r["kernel"] == "gemm" && r["precision"] == "f64").unwrap();
    let denominator = imul * f(&f64p["flop_per_cycle_per_core"]);
    assert!((f(&gemm_f64["vs_theoretical"]["median"]) - f(&record["gflops"]["median"]) / denominator).abs() < 1e-9, "{gemm_f64}");
    // The fresh calibration and the corrected one agree within 2× on every H100 count; the
    // suspect one was 5× off.
    let fresh_est = tmp("peaks-fresh-estimate.json");
    ok(&effcal(&["estimate", "--calibration", fresh.to_str().unwrap(), "--json", fresh_est.to_str().unwrap()]));
    let fresh_estimate: Value = serde_json::from_str(&std::fs::read_to_string(&fresh_est).unwrap()).unwrap();
    let (a, b, c) = (h100(&fresh_estimate), h100(&corrected), h100(&suspect_estimate));
    assert!(!a.is_empty() && a.len() == b.len() && b.len() == c.len(), "{a:?} {b:?} {c:?}");
    for ((scenario, x), ((_, y), (_, z))) in a.iter().zip(b.iter().zip(&c)) {
        assert!((0.5..=2.0).contains(&(x / y)), "{scenario}: fresh {x} vs corrected {y}");
        assert!(z / y > 3.0, "{scenario}: suspect {z} vs corrected {y}");
    }

    // The report recomputes the same way and says so.
    let dir = tmp("peaks-report");
    ok(&effcal(&["--system", right.to_str().unwrap(), "report", "--calibration", bad.to_str().unwrap(), "--out", dir.to_str().unwrap()]));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("**Corrected:** peaks recomputed after the run") && !report.contains("SUSPECT"), "{report}");
    ok(&effcal(&["report", "--calibration", bad.to_str().unwrap(), "--out", dir.to_str().unwrap()]));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("| SUSPECT |") && report.contains("**Warning:** the f64 theoretical peak is suspect"), "{report}");

    // A description with nothing to correct with is refused by name.
    let empty = tmp("peaks-empty.toml");
    std::fs::write(&empty, "[system]\nname = \"x\"\n").unwrap();
    let out = effcal(&["--system", empty.to_str().unwrap(), "estimate", "--calibration", bad.to_str().unwrap(), "--json", est.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --system") && text(&out.stderr).contains("clock_ghz, flop_per_cycle or memory_bandwidth_gbs"), "{}", text(&out.stderr));
}
