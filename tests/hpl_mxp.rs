//! `effcal hpl-mxp` under `mpirun -n 1/2/4` (oversubscribed): the solve passes on every
//! grid, with block sizes that do not divide n, the same refinement iterations whatever
//! the grid; variants (GMRES-IR, broadcasts, no look-ahead, generators, FP8 what-if,
//! kept f64 matrix), HPL.dat input, bad grids, and a system the low precision cannot
//! hold, which FAILS with a message instead of hanging.

mod common;

use common::*;
use serde_json::Value;

const N: usize = 300;

/// Runs hpl-mxp under mpirun with 1 thread per rank and returns its records.
fn hpl(ranks: usize, args: &[&str], name: &str) -> (String, Vec<Value>) {
    let json = tmp(name);
    let mut all = vec!["--threads", "1", "hpl-mxp", "--reps", "1", "--warmup", "0", "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let stdout = ok(&mpirun(ranks, &all));
    assert_eq!(stdout.matches("Result: PASSED").count(), 1, "{stdout}");
    let doc = calibration(&json);
    (stdout, doc["records"].as_array().unwrap().clone())
}

fn check_record(r: &Value, n: usize, ranks: usize) {
    let p = r["precision"].as_str().unwrap();
    assert_eq!(r["kernel"], "hpl-mxp");
    assert_eq!(r["valid"], true, "{p}: {r}");
    assert!(r.get("failure").is_none(), "{r}");
    assert_eq!(r["params"]["n"], n);
    assert_eq!(r["params"]["ranks"], ranks);
    let a = &r["accuracy"];
    assert!(a["scaled_residual"].as_f64().unwrap() <= 16.0, "{p}: {a}");
    assert!(a["iterations"].as_u64().unwrap() <= 50, "{p}: {a}");
    // rate = (2/3 n³ + 3/2 n²) / time; LU-only rate = 2/3 n³ / LU time.
    let nf = n as f64;
    let t = r["time_s"]["median"].as_f64().unwrap();
    let rate = r["gflops"]["median"].as_f64().unwrap();
    assert!((rate - (2.0 / 3.0 * nf.powi(3) + 1.5 * nf * nf) / t / 1e9).abs() <= 1e-9 * rate, "{p}: {r}");
    let lu_t = r["results"]["lu_time_s"]["median"].as_f64().unwrap();
    assert!(lu_t <= t, "{p}: the LU is part of the solve: {r}");
    let phases = &r["results"]["phases_s"];
    for k in ["diagonal", "panel_solve", "convert", "bcast_wait", "trailing_update", "refine"] {
        assert!(phases[k].as_f64().unwrap() >= 0.0, "{p}: {k} in {phases}");
    }
}

#[test]
fn every_grid_solves_with_the_same_iterations() {
    let grids: [(usize, &str, &str, &str); 6] = [(1, "1", "1", "row"), (2, "1", "2", "row"), (2, "2", "1", "col"), (4, "2", "2", "row"), (4, "1", "4", "row"), (4, "4", "1", "col")];
    let mut iterations: Vec<Vec<u64>> = Vec::new();
    for (ranks, p, q, pmap) in grids {
        // NB = 64 does not divide 300: the last block row and column are 44 wide.
        let (stdout, records) = hpl(ranks, &["--n", "300", "--nb", "64", "--p", p, "--q", q, "--pmap", pmap, "--precision", "f64,bf16,f16"], &format!("grid-{ranks}-{p}x{q}.json"));
        assert_eq!(records.len(), 3, "{stdout}");
        for r in &records {
            check_record(r, N, ranks);
            assert_eq!(r["params"]["p"].to_string(), p);
            assert_eq!(r["params"]["q"].to_string(), q);
        }
        // f64: the factorisation is already accurate to the last bits.
        let f64_run = &records[0]["accuracy"];
        assert!(f64_run["iterations"].as_u64().unwrap() <= 1 && f64_run["scaled_residual"].as_f64().unwrap() < 1.0, "{f64_run}");
        assert!(records[1]["results"]["speedup_vs_f64"].as_f64().unwrap() > 0.0);
        assert!(stdout.contains("||Ax-b||_oo/(eps*(||A||_oo*||x||_oo+||b||_oo)*N)="), "{stdout}");
        iterations.push(records.iter().map(|r| r["accuracy"]["iterations"].as_u64().unwrap()).collect());
    }
    assert!(iterations.iter().all(|i| *i == iterations[0]), "iterations per grid: {iterations:?}");
}

#[test]
fn variants_solve_too() {
    let cases: [(usize, &[&str]); 7] = [
        (2, &["--refine", "gmres", "--restart", "5", "--precision", "bf16,f16"]),
        (4, &["--bcast", "binomial", "--p", "1", "--q", "4", "--precision", "bf16"]),
        (4, &["--bcast", "mpi", "--precision", "f16"]),
        (3, &["--bcast", "ring", "--lookahead", "0", "--precision", "bf16"]),
        (2, &["--generator", "shifted", "--f64-matrix", "kept", "--precision", "f32,bf16"]),
        (2, &["--precision", "e4m3,e5m2", "--scaling", "mx"]),
        (2, &["--nb", "1000", "--precision", "bf16"]),
    ];
    for (i, (ranks, args)) in cases.into_iter().enumerate() {
        let mut all = vec!["--n", "200", "--nb", "48"];
        if args.contains(&"--nb") {
            all.truncate(2);
        }
        all.extend_from_slice(args);
        let (stdout, records) = hpl(ranks, &all, &format!("variant-{i}.json"));
        for r in &records {
            check_record(r, 200, ranks);
        }
        if args.contains(&"e4m3,e5m2") {
            assert_eq!(stdout.matches("what-if:").count(), 2, "{stdout}");
            assert_eq!(records[0]["params"]["what_if"], true);
        }
        if args.contains(&"gmres") {
            assert!(records[0]["results"]["restarts"].as_u64().unwrap() >= 1, "{}", records[0]);
        }
    }
}

#[test]
fn an_hpl_dat_file_runs_every_combination() {
    let dat = tmp("HPL.dat");
    std::fs::write(
        &dat,
        "HPLinpack benchmark input file\nInnovative Computing Laboratory, University of Tennessee\nHPL.out      output file name (if any)\n\
         6            device out (6=stdout,7=stderr,file)\n2            # of problems sizes (N)\n150 211      Ns\n\
         2            # of NBs\n32 100       NBs\n0            PMAP process mapping (0=Row-,1=Column-major)\n\
         2            # of process grids (P x Q)\n1 2          Ps\n2 1          Qs\n16.0         threshold\n",
    )
    .unwrap();
    let (_, records) = hpl(2, &["--dat", dat.to_str().unwrap(), "--precision", "bf16"], "dat.json");
    let got: Vec<(u64, u64, u64, u64)> = records
        .iter()
        .map(|r| {
            check_record(r, r["params"]["n"].as_u64().unwrap() as usize, 2);
            let p = |k: &str| r["params"][k].as_u64().unwrap();
            (p("p"), p("q"), p("n"), p("nb"))
        })
        .collect();
    assert_eq!(got, [(1, 2, 150, 32), (1, 2, 150, 100), (1, 2, 211, 32), (1, 2, 211, 100), (2, 1, 150, 32), (2, 1, 150, 100), (2, 1, 211, 32), (2, 1, 211, 100)]);
}

#[test]
fn a_grid_that_does_not_fit_the_ranks_is_refused() {
    let out = mpirun(2, &["hpl-mxp", "--n", "100", "--p", "3", "--q", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("effcal: error: invalid --p/--q '3×1': a grid with P·Q = 2, the number of ranks (e.g. --p 1 --q 2)"), "{err}");
    assert!(text(&out.stdout).is_empty(), "refused before measuring: {}", text(&out.stdout));

    let out = effcal(&["hpl-mxp", "--n", "100", "--p", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --q 'missing': --p and --q together, or neither"), "{}", text(&out.stderr));

    let out = effcal(&["hpl-mxp", "--n", "100", "--precision", "bf16", "--scaling", "mx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --scaling 'mx'"), "{}", text(&out.stderr));
}

#[test]
fn a_system_beyond_the_factors_range_fails_cleanly() {
    // 2^130 · A overflows f32, the working precision of the f16 factorisation; f64 solves it.
    let json = tmp("overflow.json");
    let out = mpirun(2, &["--threads", "1", "hpl-mxp", "--n", "200", "--nb", "48", "--precision", "f64,f16", "--scale-exp", "130", "--reps", "1", "--warmup", "0", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAILED: LU without pivoting broke down at column 0: pivot inf"), "{stdout}");
    assert!(stdout.contains("Result: FAILED"), "{stdout}");
    let doc = calibration(&json);
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records[0]["valid"], true);
    assert_eq!(records[1]["valid"], false);
    assert!(records[1]["failure"].as_str().unwrap().contains("broke down"), "{}", records[1]);
    assert!(records[1]["results"].get("speedup_vs_f64").is_none());
}

#[test]
fn f16_accumulation_solves_and_says_so() {
    // The f16 run's trailing updates sum in f16 over blocks of 16 terms (natively where the
    // CPU has AVX512_FP16); the f64 baseline beside it sums wide. Refinement still reaches
    // HPL's threshold, and the iterations are reported.
    let (stdout, records) = hpl(2, &["--n", "300", "--nb", "64", "--precision", "f64,f16", "--accumulate", "f16", "--acc-block", "16"], "f16acc.json");
    assert_eq!(records.len(), 2, "{stdout}");
    for r in &records {
        check_record(r, N, 2);
    }
    let params = |i: usize, k: &str| records[i]["params"][k].clone();
    assert_eq!((params(0, "accumulation"), params(0, "accumulation_block")), (Value::from("f64"), Value::Null));
    assert_eq!((params(1, "accumulation"), params(1, "accumulation_block")), (Value::from("f16"), Value::from(16)));
    let path = params(1, "path");
    assert!(path == "f16acc-portable" || path == "avx512fp16-f16acc", "{path}");
    assert_eq!(params(1, "arithmetic"), "f16");
    // The native kernel's k blocks hold whole f16 blocks; the scalar path has no blocking.
    let blocking = params(1, "blocking");
    match path.as_str() {
        Some("avx512fp16-f16acc") => assert_eq!(blocking["kc"].as_u64().unwrap() % 16, 0, "{blocking}"),
        _ => assert_eq!(blocking, Value::Null),
    }
}
