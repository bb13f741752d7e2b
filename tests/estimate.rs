//! `effcal estimate`: the arithmetic against hand-computed cases (a real calibration whose
//! rates and peaks are set to round numbers) and against the survey's own figures.

mod common;

use common::{effcal, ok, text, tmp};
use serde_json::{json, Value};
use std::path::Path;

const PLAN: &str = "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.01\ntriad_elements = 262144\n\
                    [gemm]\nn = 64\nprecisions = [\"f64\", \"f16\", \"e4m3\"]\n\
                    [hpl_mxp]\nn = 128\nprecisions = [\"f64\", \"f16\"]\n\
                    [stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nsize = [18, 10, 10]\niters = 1\n";

/// Sets a record's rate to `median` GFLOP/s (min and max ±10 %).
fn set_rate(doc: &mut Value, kernel: &str, precision: &str, median: f64) {
    let r = doc["records"].as_array_mut().unwrap().iter_mut().find(|r| r["kernel"] == kernel && r["precision"] == precision).unwrap();
    r["gflops"] = json!({"min": 0.9 * median, "median": median, "max": 1.1 * median});
}

/// The test's own calibration (`name` keeps the files of tests that run at once apart).
fn calibration(name: &str) -> std::path::PathBuf {
    let cfg = tmp(&format!("{name}-plan.toml"));
    std::fs::write(&cfg, PLAN).unwrap();
    let json = tmp(&format!("{name}-cal.json"));
    ok(&effcal(&["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]));
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["peaks"]["cores"], 1);
    // Round peaks, each with a measured rate the guard accepts (0.9 of it).
    for (p, peak) in [("f64", 100.0), ("f16", 200.0), ("e4m3", 400.0)] {
        doc["peaks"]["per_precision"][p]["theoretical_gflops"] = json!(peak);
        doc["peaks"]["per_precision"][p]["empirical_gflops"] = json!(0.9 * peak);
    }
    set_rate(&mut doc, "gemm", "f64", 80.0);
    set_rate(&mut doc, "gemm", "f16", 150.0); // 0.75 of 200
    set_rate(&mut doc, "gemm", "e4m3", 100.0); // 0.25 of 400
    set_rate(&mut doc, "hpl-mxp", "f16", 100.0); // 0.5 of 200
    set_rate(&mut doc, "hpl-mxp", "f64", 50.0); // 0.5 of 100
    set_rate(&mut doc, "stencil-7pt", "f64", 10.0); // 0.1 of 100
    std::fs::write(&json, serde_json::to_string(&doc).unwrap()).unwrap();
    json
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn the_estimate_by_hand() {
    let cal = calibration("estimate");
    let out_json = tmp("estimate.json");
    let fugaku = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/systems/fugaku.toml");
    let md = ok(&effcal(&["estimate", "--calibration", cal.to_str().unwrap(), "--target", fugaku.to_str().unwrap(), "--json", out_json.to_str().unwrap()]));
    let e: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/estimate.schema.json")).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&e).map(|x| x.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // The survey's own arithmetic: 24,000 × 50 / 10.
    assert_eq!(e["survey_gpus"], 120000.0);
    assert!(md.contains("The survey's own arithmetic: 120,000 GPUs."), "{md}");

    let eff = |class: &str, p: &str| e["efficiencies"].as_array().unwrap().iter().find(|x| x["class"] == class && x["precision"] == p).unwrap()["vs_theoretical"]["median"].as_f64().unwrap();
    assert!(close(eff("gemm", "f16"), 0.75) && close(eff("hpl-mxp", "f16"), 0.5) && close(eff("hpl-f64", "f64"), 0.5) && close(eff("stencil-7pt", "f64"), 0.1));

    // H100 (1.0 PF FP16): 500 EF / (1.0 PF × 0.5) = 1,000,000 GPUs; × 0.75: 666,667.
    let gpus = |gpu: &str, scenario: &str| {
        e["gpus_for_fp16_demand"].as_array().unwrap().iter().find(|g| g["gpu"] == gpu && g["scenario"].as_str().unwrap().starts_with(scenario)).unwrap()["gpus"].clone()
    };
    assert_eq!(gpus("NVIDIA H100", "measured hpl-mxp f16"), json!(1000000.0));
    assert_eq!(gpus("NVIDIA H100", "measured gemm f16"), json!(666667.0));
    // B200 (2.2–2.5 PF) at the survey's usable share of JUPITER, 10 / 23.7:
    // ceil(500,000 / (2.5 · 10/23.7)) = 474,000 and ceil(500,000 / (2.2 · 10/23.7)) = 538,637.
    assert_eq!(gpus("NVIDIA B200", "survey"), json!([474000.0, 538637.0]));

    // Survey table B: El Capitan's implicit 16.7 / 29.1; FP16 Rpeak × 0.5 = 14.55 EF.
    let elcap = e["survey_table"].as_array().unwrap().iter().find(|r| r["system"] == "El Capitan").unwrap().clone();
    assert!(close(elcap["implicit_efficiency"].as_f64().unwrap(), 16.7 / 29.1));
    assert!(close(elcap["effective_fp16_ef_measured_hpl_mxp"].as_f64().unwrap(), 14.55));

    // 10 EF of FP64 at the HPL efficiency 0.5: 20 EF of Rpeak = 20,000 / 537.21 Fugakus;
    // at the stencil's 0.1 per core of 100 GF/s peak, 10 GF/s per core: 1e9 cores.
    let sim = |s: &str| e["fp64_simulation"].as_array().unwrap().iter().find(|f| f["scenario"].as_str().unwrap().starts_with(s)).unwrap().clone();
    let hpl = sim("measured hpl-f64");
    assert!(close(hpl["fp64_peak_ef"].as_f64().unwrap(), 20.0));
    assert!(close(hpl["in_systems"]["Fugaku"].as_f64().unwrap(), 20_000.0 / 537.21));
    assert!(close(sim("measured stencil-7pt")["cores_at_measured_rate"].as_f64().unwrap(), 1e9));

    // 12 GF/s per core: 12 % of this calibration's 100 GF/s per-core f64 peak; 10 EF / 12 GF/s.
    let pc = &e["per_core"];
    assert!(close(pc["cores_for_fp64_demand"].as_f64().unwrap(), 10e18 / 12e9));
    let row = pc["against"].as_array().unwrap().iter().find(|r| r["what"].as_str().unwrap().contains("theoretical peak per core")).unwrap();
    assert!(close(row["assumed_fraction"].as_f64().unwrap(), 0.12));
    let fugaku_core = pc["against"].as_array().unwrap().iter().find(|r| r["what"].as_str().unwrap().starts_with("Fugaku")).unwrap();
    assert!(close(fugaku_core["gflops_per_core"].as_f64().unwrap(), 537.21e6 / 7_630_848.0));

    // Fugaku NEXT: 600 EF of FP8 × 0.25 (GEMM e4m3) = 150 EF; 150e18 / 30 MW = 5,000 GF/s/W.
    let rows = e["fugaku_next"]["rows"].as_array().unwrap();
    let peak = &rows[0];
    assert_eq!(peak["gflops_per_watt"]["30 MW"], json!(20000.0));
    let gemm = rows.iter().find(|r| r["scenario"].as_str().unwrap().starts_with("GEMM-like")).unwrap();
    assert!(close(gemm["effective_ef"].as_f64().unwrap(), 150.0));
    assert!(close(gemm["gflops_per_watt"]["30 MW"].as_f64().unwrap(), 5000.0));
    assert!(close(gemm["gflops_per_watt"]["40 MW"].as_f64().unwrap(), 3750.0));

    // The target: Fugaku's FP64 peak × the HPL efficiency.
    let t = e["target"]["rows"].as_array().unwrap().iter().find(|r| r["class"] == "hpl-f64 f64").unwrap();
    assert!(close(t["effective_pf"].as_f64().unwrap(), 537.21 * 0.5));
    assert!(md.contains("## Assumptions") && md.contains("labelled scenario") && md.contains("survey table B"), "{md}");
}

#[test]
fn bad_demands_and_files_are_refused_by_name() {
    let out = effcal(&["estimate", "--calibration", "/nonexistent.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("reading /nonexistent.json"));
    let cal = tmp("not-a-calibration.json");
    std::fs::write(&cal, "{\"records\": []}").unwrap();
    let out = effcal(&["estimate", "--calibration", cal.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a calibration JSON of `effcal run`"), "{}", text(&out.stderr));
    let out = effcal(&["estimate", "--calibration", cal.to_str().unwrap(), "--demand", "fp16=-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn committed_estimate_schema_is_the_generated_one() {
    let generated = ok(&effcal(&["schema", "--estimate"]));
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/estimate.schema.json")).unwrap();
    assert_eq!(generated, committed, "run `effcal schema --estimate > docs/estimate.schema.json`");
}

/// A calibration of one GPU (`--device gpu`), made from a CPU one: the estimate labels its
/// efficiencies "measured on" that GPU for its own generation, a scenario for any other,
/// and takes no per-core figure from it.
#[test]
fn gpu_efficiencies_are_measured_on_their_generation_and_a_scenario_elsewhere() {
    let cal = calibration("estimate-gpu");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let gpu = "NVIDIA H100 80GB HBM3";
    doc["system"]["gpu"] = json!({
        "name": gpu, "compute_capability": "9.0", "memory_bytes": 85_520_809_984u64, "multiprocessors": 132,
        "l2_bytes": 52_428_800, "pci_bus_id": "00000000:00:07.0", "visible": 1, "driver_version": "580.159.04",
        "cuda_driver_api": "13.0", "cublas_version": "13.0.0", "spec_entry": "NVIDIA H100 SXM5 80GB",
        "spec_source": "datasheet", "power_limit_w": 700.0, "sm_clock_mhz_under_load": 1755
    });
    doc["peaks"]["gpus"] = json!(1);
    doc["peaks"]["cores"] = json!(0);
    for (p, peak) in [("f64", 67e3), ("f16", 989.4e3), ("e4m3", 1978.9e3)] {
        doc["peaks"]["per_precision"][p]["theoretical_gflops"] = json!(peak);
        doc["peaks"]["per_precision"][p]["empirical_gflops"] = json!(0.9 * peak);
    }
    doc["records"].as_array_mut().unwrap().retain(|r| r["kernel"] == "gemm");
    set_rate(&mut doc, "gemm", "f16", 0.75 * 989.4e3);
    set_rate(&mut doc, "gemm", "e4m3", 0.5 * 1978.9e3);
    let path = tmp("estimate-gpu-cal.json");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = tmp("estimate-gpu.json");
    let md = ok(&effcal(&["estimate", "--calibration", path.to_str().unwrap(), "--json", out.to_str().unwrap()]));
    let e: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(e["gpu"], gpu);
    assert!(e["calibration"].as_str().unwrap().ends_with(&format!("1 × {gpu})")), "{}", e["calibration"]);
    let scenario = |name: &str| -> Vec<String> {
        e["gpus_for_fp16_demand"].as_array().unwrap().iter().filter(|g| g["gpu"] == name).map(|g| g["scenario"].as_str().unwrap().to_string()).collect()
    };
    assert!(scenario("NVIDIA H100").contains(&format!("measured gemm f16 (n=64), measured on {gpu}")), "{:?}", scenario("NVIDIA H100"));
    assert!(scenario("NVIDIA B200").contains(&format!("measured gemm f16 (n=64), measured on {gpu}, applied to NVIDIA B200: a scenario")), "{:?}", scenario("NVIDIA B200"));
    // H100 at 0.75 of 1.0 PF: 500 EF / 0.75 PF = 666,667 GPUs.
    let h100 = e["gpus_for_fp16_demand"].as_array().unwrap().iter().find(|g| g["gpu"] == "NVIDIA H100" && g["scenario"].as_str().unwrap().starts_with("measured gemm f16")).unwrap().clone();
    assert_eq!(h100["gpus"], json!(666667.0));
    let fugaku_next: Vec<&str> = e["fugaku_next"]["rows"].as_array().unwrap().iter().map(|r| r["scenario"].as_str().unwrap()).collect();
    assert!(fugaku_next.contains(&format!("GEMM-like: measured gemm e4m3 (n=64), measured on {gpu}, applied to other GPUs: a scenario").as_str()), "{fugaku_next:?}");
    let against: Vec<&str> = e["per_core"]["against"].as_array().unwrap().iter().map(|r| r["what"].as_str().unwrap()).collect();
    assert!(against.iter().all(|w| !w.starts_with("this calibration")), "{against:?}");
    assert!(md.contains("| GFLOP/s per GPU |") && md.contains(&format!("measured on 1 × {gpu}")), "{md}");
}
