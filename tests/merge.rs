//! `effcal merge`: a 1-rank and a 2-rank calibration give each kernel's parallel efficiency;
//! documents of different schema versions or systems are refused unless --force, the same
//! run twice always.

mod common;

use common::{effcal, mpirun, ok, text, tmp};

#[test]
fn a_one_and_a_two_rank_calibration_merge_into_scaling_series() {
    let (one, two, merged) = (tmp("merge-1.json"), tmp("merge-2.json"), tmp("merged.json"));
    let args = |p: &std::path::Path| vec!["--threads".to_string(), "1".into(), "gemm".into(), "--precision".into(), "f64".into(), "--n".into(), "128".into(), "--reps".into(), "2".into(), "--json".into(), p.display().to_string()];
    ok(&mpirun(1, &args(&one).iter().map(String::as_str).collect::<Vec<_>>()));
    ok(&mpirun(2, &args(&two).iter().map(String::as_str).collect::<Vec<_>>()));
    let table = ok(&effcal(&["merge", one.to_str().unwrap(), two.to_str().unwrap(), "--out", merged.to_str().unwrap()]));
    assert!(table.contains("gemm           f64    weak"), "{table}");

    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(doc["records"].as_array().unwrap().len(), 2);
    let series = &doc["scaling"][0];
    assert_eq!((series["kernel"].as_str(), series["series"].as_str()), (Some("gemm"), Some("weak")));
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.iter().map(|p| p["ranks"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    // The efficiency is the rates' ratio over the resources' ratio, from the two records.
    let rate = |p: &std::path::Path| -> f64 {
        let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        d["records"][0]["gflops"]["median"].as_f64().unwrap()
    };
    let want = rate(&two) / rate(&one) / 2.0;
    let got = points[1]["parallel_efficiency"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12 * want, "{got} vs {want}");
    assert_eq!(points[0]["parallel_efficiency"].as_f64(), Some(1.0));

    // Another schema version: refused, naming both, unless --force.
    let mut other: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&two).unwrap()).unwrap();
    other["schema_version"] = 1.into();
    let old = tmp("merge-old.json");
    std::fs::write(&old, other.to_string()).unwrap();
    let out = effcal(&["merge", one.to_str().unwrap(), old.to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("documents of one schema version") && err.contains("--force"), "{err}");
    ok(&effcal(&["merge", "--force", one.to_str().unwrap(), old.to_str().unwrap(), "--out", merged.to_str().unwrap()]));
    // The merged document is of the version this effcal writes, whatever its inputs were.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 2);

    // One run given twice would count twice: refused, naming both.
    let out = effcal(&["merge", one.to_str().unwrap(), two.to_str().unwrap(), one.to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("calibrations of different runs") && err.contains("is the same run as"), "{err}");
    // An output path that is a directory: refused before anything is read or written.
    let out = effcal(&["merge", one.to_str().unwrap(), two.to_str().unwrap(), "--out", std::env::temp_dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a file path: this is a directory"), "{}", text(&out.stderr));

    // Another system: refused too.
    other["schema_version"] = 2.into();
    other["system"]["cpu_model"] = "Fujitsu A64FX".into();
    std::fs::write(&old, other.to_string()).unwrap();
    let err = text(&effcal(&["merge", one.to_str().unwrap(), old.to_str().unwrap(), "--out", merged.to_str().unwrap()]).stderr);
    assert!(err.contains("documents of one system") && err.contains("Fujitsu A64FX"), "{err}");
}
