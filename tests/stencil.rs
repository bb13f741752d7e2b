//! `effcal stencil` under `mpirun -n 1/2/4` (oversubscribed): the f64 field is the same bits
//! (checksum) whatever the rank count, decomposition and halo variant; Himeno's gosa agrees
//! to rounding; bad sizes and dims are refused with the field named.

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
    for kind in ["7pt", "27pt", "himeno"] {
        let mut checksums = Vec::new();
        let mut gosa = Vec::new();
        for (ranks, dims) in [(1, "1 1 1"), (2, "2 1 1"), (2, "1 1 2"), (4, "2 2 1"), (4, "1 2 2"), (4, "4 1 1")] {
            let d: Vec<&str> = dims.split(' ').collect();
            let records = stencil(
                ranks,
                &["--kind", kind, "--size", "13", "11", "17", "--iters", "4", "--dims", d[0], d[1], d[2], "--overlap", "both", "--precision", "f64,bf16"],
                &format!("st-{kind}-{ranks}-{}.json", dims.replace(' ', "")),
            );
            assert_eq!(records.len(), 4);
            for r in &records {
                assert_eq!(r["valid"], true, "{r}");
                assert!(r["bandwidth_gbs"]["median"].as_f64().unwrap() > 0.0);
                let p = r["precision"].as_str().unwrap();
                checksums.push((p.to_string(), r["checksum"].as_str().unwrap().to_string()));
                if let Some(g) = r["results"].get("gosa") {
                    gosa.push((p.to_string(), g.as_f64().unwrap()));
                }
                if p == "bf16" {
                    let e = r["results"]["rel_error_max_vs_f64"].as_f64().unwrap();
                    assert!(e > 0.0 && e < 0.05, "bf16 costs accuracy, within reason: {e}");
                }
            }
        }
        for p in ["f64", "bf16"] {
            let mine: Vec<&String> = checksums.iter().filter(|(q, _)| q == p).map(|(_, c)| c).collect();
            assert!(mine.iter().all(|c| *c == mine[0]), "{kind} {p}: {mine:?}");
        }
        for p in ["f64", "bf16"] {
            let mine: Vec<f64> = gosa.iter().filter(|(q, _)| q == p).map(|(_, g)| *g).collect();
            assert_eq!(mine.is_empty(), kind != "himeno");
            assert!(mine.iter().all(|g| (g - mine[0]).abs() <= 1e-5 * mine[0]), "{kind} {p}: {mine:?}");
        }
    }
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
