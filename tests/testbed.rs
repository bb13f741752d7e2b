//! Across hosts for real: scripts/testbed.sh makes hosts effh1..effh4 on this machine
//! (network namespaces, one veth each to a bridge, their own hostnames and CPUs), and Open
//! MPI launches across them over TCP only (no shared memory). The answers must be those of
//! the same ranks on one host: stencil checksums and gosa bit for bit, HPL-MxP PASSED with
//! the same iterations and scaled residual; the calibration names each rank's host.
//! Skipped, with a message, only where the machine cannot have a test bed (exit 77).

mod common;

use common::{BIN, calibration, ok, text, tmp};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh");

/// The test bed's hosts, removed when dropped (whatever happened).
struct Testbed {
    /// mpirun's options to launch across the hosts.
    options: Vec<String>,
}

impl Testbed {
    fn up(hosts: usize) -> Option<Self> {
        let out = Command::new("bash").args([SCRIPT, "up", &hosts.to_string()]).output().expect("bash runs");
        if out.status.code() == Some(77) {
            eprintln!("SKIPPED: the test bed needs root and network namespaces:\n{}", text(&out.stderr));
            return None;
        }
        let stdout = ok(&out);
        let options = stdout.lines().last().expect("the mpirun options").split_whitespace().map(str::to_string).collect();
        Some(Testbed { options })
    }

    /// `mpirun <options> -n <ranks> effcal <args>` across the hosts (ranks round the hosts).
    fn mpirun(&self, ranks: usize, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("300")
            .arg("mpirun")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .args(&self.options)
            .args(["-n", &ranks.to_string(), BIN])
            .args(args)
            .output()
            .expect("mpirun is installed")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash").args([SCRIPT, "down"]).status();
    }
}

/// The same ranks on this one host (shared memory).
fn one_host(ranks: usize, args: &[&str]) -> Output {
    common::mpirun(ranks, args)
}

fn records(path: &Path) -> (Value, Vec<Value>) {
    let doc = calibration(path);
    let records = doc["records"].as_array().unwrap().clone();
    (doc, records)
}

/// What must be equal across hosts and on one host: the answer, not the time.
fn answer(r: &Value) -> (String, String, Value, Value, Value, Value, Value) {
    let res = &r["results"];
    (
        r["kernel"].as_str().unwrap().into(),
        r["precision"].as_str().unwrap().into(),
        r["checksum"].clone(),
        res.get("gosa").cloned().unwrap_or(Value::Null),
        r["accuracy"].get("scaled_residual").cloned().unwrap_or(Value::Null),
        r["accuracy"].get("iterations").cloned().unwrap_or(Value::Null),
        r["valid"].clone(),
    )
}

#[test]
fn across_hosts_the_answers_are_those_of_one_host() {
    let Some(bed) = Testbed::up(4) else { return };
    let common = ["--threads", "1", "--reps", "1", "--warmup", "0"];
    for ranks in [2usize, 4] {
        let mut runs: Vec<(String, Vec<&str>)> = ["7pt", "himeno", "27pt"]
            .iter()
            .map(|kind| (format!("stencil-{kind}"), vec!["stencil", "--kind", kind, "--size", "34", "21", "27", "--iters", "3", "--precision", "f64,bf16", "--triad-elements", "100000"]))
            .collect();
        runs.push(("hpl".into(), vec!["hpl-mxp", "--n", "768", "--nb", "64", "--precision", "f64,bf16"]));
        for (name, args) in runs {
            let (global, command) = (&common[..2], &args[..]);
            let run = |across: bool| {
                let json = tmp(&format!("testbed-{name}-{ranks}-{}.json", if across { "hosts" } else { "one" }));
                let json_arg = json.to_str().unwrap().to_string();
                let mut all: Vec<&str> = global.to_vec();
                all.extend_from_slice(command);
                all.extend_from_slice(&common[2..]);
                all.extend_from_slice(&["--json", &json_arg]);
                let out = if across { bed.mpirun(ranks, &all) } else { one_host(ranks, &all) };
                let stdout = ok(&out);
                assert!(stdout.contains("Result: PASSED"), "{name} on {ranks} ranks ({}): {stdout}", if across { "hosts" } else { "one host" });
                records(&json)
            };
            let (doc, across) = run(true);
            let (_, here) = run(false);
            // Each rank on its own host, named in the calibration and its binding report.
            let hosts: Vec<String> = (1..=ranks).map(|i| format!("effh{i}")).collect();
            assert_eq!(doc["system"]["hosts"], serde_json::json!(hosts), "{name}");
            let bound: Vec<&str> = doc["system"]["bindings"].as_array().unwrap().iter().map(|b| b["host"].as_str().unwrap()).collect();
            assert_eq!(bound, hosts, "{name}");
            assert_eq!(across.len(), here.len());
            for (a, h) in across.iter().zip(&here) {
                assert_eq!(a["valid"], true, "{name}: {a}");
                assert_eq!(answer(a), answer(h), "{name} on {ranks} ranks: across hosts, then on one host");
            }
        }
    }
}
