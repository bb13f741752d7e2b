//! The ReFrame check (slurm/reframe/effcal_check.py) under ReFrame 4, local scheduler and
//! mpirun (slurm/reframe/settings.py), on a small plan (tests/reframe/plan.toml): it passes,
//! reports every record as performance variables named by what sets them apart, and keeps
//! the calibration JSON; against a baseline it fails exactly the variables that fall short;
//! a run whose rank fails fails its sanity check, and so does a GPU plan without a GPU.
//!
//! scripts/test.sh installs ReFrame from PyPI in target/reframe and names it in
//! EFFCAL_REFRAME; without it these tests say so and check nothing.

mod common;

use common::{calibration, physical_cores, reframe_command, text, BIN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn reframe_bin() -> Option<String> {
    let bin = std::env::var("EFFCAL_REFRAME").ok();
    if bin.is_none() {
        eprintln!("EFFCAL_REFRAME is not set (scripts/test.sh sets it): the ReFrame check is not tested");
    }
    bin
}

/// A fresh ReFrame prefix for one test.
fn prefix(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reframe").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test plan on 2 ranks (-S name=value).
const PLAN: [&str; 2] = ["plan=tests/reframe/plan.toml", "ranks_per_node=2"];

/// `reframe -r` on the check with the variables `vars` (-S name=value).
fn reframe(bin: &str, prefix: &Path, vars: &[&str], env: &[(&str, &str)]) -> Output {
    let ompi = prefix.join("ompi");
    std::fs::create_dir_all(&ompi).unwrap();
    let mut cmd = reframe_command(bin, "slurm/reframe/settings.py", prefix);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1").env("OMPI_MCA_orte_tmpdir_base", &ompi);
    for s in vars {
        cmd.args(["-S", s]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("-r").output().expect("reframe runs")
}

/// `s` without ANSI colour sequences (ReFrame colours a failed variable's line even with
/// --nocolor).
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('\u{1b}') {
        out += &rest[..at];
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out + rest
}

/// The performance variables a run printed ("P: name: value unit ..."), by name.
fn variables(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("P: "))
        .map(|l| {
            let (name, rest) = l.split_once(": ").unwrap();
            (name.to_string(), rest.split_whitespace().next().unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn the_reframe_check_reports_every_record_and_checks_a_baseline() {
    let Some(bin) = reframe_bin() else { return };
    let dir = prefix("plan");
    let out = reframe(&bin, &dir, &PLAN, &[]);
    let stdout = plain(&text(&out.stdout));
    assert!(out.status.success(), "reframe failed:\n{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Ran 1/1 test case(s) from 1 check(s) (0 failure(s)"), "{stdout}");
    let json = dir.join("output/workstation/default/builtin/effcal_plan/calibration.json");
    let doc = calibration(&json);
    let records = doc["records"].as_array().unwrap();
    assert_eq!(doc["system"]["ranks"], 2);
    let vars = variables(&stdout);
    let value = |name: &str| vars.iter().find(|(n, _)| n == name).map(|v| v.1).unwrap_or_else(|| panic!("no variable {name}:\n{stdout}"));
    // Each record's median rate and its efficiency, the measured peaks and the triad.
    let peaks = doc["peaks"]["per_precision"].as_object().unwrap();
    let mut names: Vec<String> = peaks.keys().map(|p| format!("peak_{p}")).collect();
    names.push("triad".into());
    for record in ["gemm_f64_n256", "gemm_e4m3_n256_scaling_mx", "hpl_mxp_f64_n512_refine_gmres", "hpl_mxp_f16_n512_accumulate_f16_refine_gmres"]
        .into_iter()
        .chain(["stencil_7pt_f64_64x32x32", "stencil_7pt_f16_64x32x32", "stencil_7pt_f16_64x32x32_arithmetic_f16"])
    {
        names.extend([record.to_string(), format!("{record}_eff")]);
    }
    assert_eq!(vars.iter().map(|v| v.0.clone()).collect::<Vec<_>>(), names, "{stdout}");
    assert_eq!(records.len(), 7);
    let gemm = records.iter().find(|r| r["kernel"] == "gemm" && r["precision"] == "f64").unwrap();
    assert_eq!(value("gemm_f64_n256"), gemm["gflops"]["median"].as_f64().unwrap());
    assert_eq!(value("gemm_f64_n256_eff"), 100.0 * gemm["efficiency"]["vs_empirical"].as_f64().unwrap());
    let sten = records.iter().find(|r| r["kernel"] == "stencil-7pt" && r["params"]["arithmetic"] == "f16").unwrap();
    assert_eq!(value("stencil_7pt_f16_64x32x32_arithmetic_f16"), sten["bandwidth_gbs"]["median"].as_f64().unwrap());
    let hpl = records.iter().find(|r| r["kernel"] == "hpl-mxp" && r["precision"] == "f16").unwrap();
    assert_eq!(value("hpl_mxp_f16_n512_accumulate_f16_refine_gmres_eff"), 100.0 * hpl["efficiency"]["vs_empirical"].as_f64().unwrap());
    assert_eq!(value("triad"), doc["peaks"]["stream_triad"]["gbs"]["median"].as_f64().unwrap());
    assert_eq!(value("peak_f64"), peaks["f64"]["empirical"]["median"].as_f64().unwrap());

    // A baseline that only f64 GEMM's rate cannot reach: every other figure set to zero.
    let mut base: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for r in base["records"].as_array_mut().unwrap() {
        let f64_gemm = r["kernel"] == "gemm" && r["precision"] == "f64";
        for key in ["gflops", "bandwidth_gbs"] {
            if r[key].is_object() {
                r[key]["median"] = if f64_gemm { Value::from(r[key]["median"].as_f64().unwrap() * 10.0) } else { Value::from(0.0) };
            }
        }
        r["efficiency"]["vs_empirical"] = Value::from(0.0);
    }
    for p in base["peaks"]["per_precision"].as_object_mut().unwrap().values_mut() {
        p["empirical"]["median"] = Value::from(0.0);
    }
    base["peaks"]["stream_triad"]["gbs"]["median"] = Value::from(0.0);
    let base_path = dir.join("baseline.json");
    std::fs::write(&base_path, serde_json::to_string(&base).unwrap()).unwrap();
    let dir2 = prefix("baseline");
    let baseline = format!("baseline={}", base_path.display());
    let out = reframe(&bin, &dir2, &[PLAN[0], PLAN[1], &baseline, "tolerance=0.1"], &[]);
    let stdout = plain(&text(&out.stdout));
    assert!(!out.status.success(), "a baseline ten times the f64 GEMM rate passed:\n{stdout}");
    // "failed to meet reference(s): NAME=VALUE UNIT, expected REF (l=LOW, u=inf)", one or more.
    let (_, reasons) = stdout.split_once("failed to meet reference(s):").unwrap_or_else(|| panic!("{stdout}"));
    let reasons = reasons.split("\n---").next().unwrap();
    let failed: Vec<&str> = reasons.split_whitespace().filter(|t| t.contains('=') && !t.starts_with('(') && !t.starts_with("u=")).map(|t| t.split('=').next().unwrap()).collect();
    assert_eq!(failed, ["gemm_f64_n256"], "{stdout}");
}

#[test]
fn a_failed_run_fails_the_reframe_sanity_check() {
    let Some(bin) = reframe_bin() else { return };
    let dir = prefix("failed");
    let out = reframe(&bin, &dir, &PLAN, &[("EFFCAL_FAIL_RANK", "1")]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "a run whose rank failed passed:\n{stdout}");
    assert!(stdout.contains("Failing phase: sanity"), "{stdout}");

    // A GPU plan on one rank: the host's cores are its threads; effcal refuses without CUDA.
    let dir = prefix("gpu");
    let out = reframe(&bin, &dir, &["plan=configs/gpu-node.toml", "ranks_per_node=1"], &[]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success() && stdout.contains("Failing phase: sanity"), "{stdout}");
    let cores = physical_cores();
    let job = std::fs::read_to_string(dir.join("stage/workstation/default/builtin/effcal_plan/rfm_job.sh")).unwrap();
    assert!(job.contains(&format!("mpirun -np 1 {BIN} --threads {cores} run --config {ROOT}/configs/gpu-node.toml")), "{job}");
}
