//! effcal built without MPI (`cargo build --no-default-features`, the GPU bundle's build):
//! one process gives the bits the MPI build gives on one rank (HPL-MxP's scaled residual
//! and iterations, the stencils' checksums), its calibration matches the schema and says it
//! had no MPI, and a launch of several copies is refused.
//!
//! scripts/test.sh builds that binary and names it in EFFCAL_SERIAL_BIN; without it these
//! tests say so and check nothing.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};

fn serial_bin() -> Option<String> {
    let bin = std::env::var("EFFCAL_SERIAL_BIN").ok();
    if bin.is_none() {
        eprintln!("EFFCAL_SERIAL_BIN is not set (scripts/test.sh sets it): the single-process build is not tested");
    }
    bin
}

fn serial(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).env_remove("OMPI_COMM_WORLD_SIZE").output().expect("the single-process effcal runs")
}

/// The records of `args` run by the single-process build and by the MPI build on 1 rank.
fn both(bin: &str, args: &[&str], name: &str) -> (Vec<Value>, Vec<Value>) {
    let run = |mpi: bool| {
        let json = tmp(&format!("{name}-{}.json", if mpi { "mpi" } else { "serial" }));
        let mut all = vec!["--threads", "1"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--json", json.to_str().unwrap()]);
        let out = if mpi { mpirun(1, &all) } else { serial(bin, &all) };
        let stdout = ok(&out);
        assert!(stdout.contains("Result: PASSED"), "{stdout}");
        let doc = calibration(&json);
        (doc["system"]["mpi_library"].as_str().unwrap_or_default().to_string(), doc["records"].as_array().unwrap().clone())
    };
    let ((serial_mpi, serial), (mpi_lib, mpi)) = (run(false), run(true));
    assert!(serial_mpi.starts_with("none"), "the single-process build names no MPI library: {serial_mpi}");
    assert!(mpi_lib.contains("MPI"), "{mpi_lib}");
    (serial, mpi)
}

#[test]
fn one_process_gives_the_answers_of_one_mpi_rank() {
    let Some(bin) = serial_bin() else { return };
    let v = ok(&serial(&bin, &["--version"]));
    assert!(v.contains("without MPI: one process"), "{v}");

    let (s, m) = both(&bin, &["hpl-mxp", "--n", "512", "--nb", "128", "--precision", "f64,bf16", "--reps", "1", "--backend", "portable"], "serial-hpl");
    assert_eq!(s.len(), 2);
    for (a, b) in s.iter().zip(&m) {
        for key in ["scaled_residual", "iterations"] {
            assert_eq!(a["accuracy"][key], b["accuracy"][key], "{key}: {a} vs {b}");
        }
        assert_eq!(a["valid"], true);
    }

    let (s, m) = both(&bin, &["stencil", "--kind", "27pt", "--size", "13", "11", "17", "--iters", "3", "--precision", "f64,bf16", "--reps", "1", "--warmup", "0"], "serial-stencil");
    assert_eq!(s.len(), 2);
    for (a, b) in s.iter().zip(&m) {
        assert_eq!(a["checksum"], b["checksum"], "{a} vs {b}");
    }
}

#[test]
fn several_copies_are_refused() {
    let Some(bin) = serial_bin() else { return };
    let out = Command::new(&bin).args(["hpl-mxp", "--n", "256"]).env("OMPI_COMM_WORLD_SIZE", "2").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("process count '2 (OMPI_COMM_WORLD_SIZE)'") && err.contains("built without MPI"), "{err}");
}
