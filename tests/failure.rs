//! A rank that fails stops the whole job with its rank and reason, never a hang: rank 1
//! panics after its first record (EFFCAL_FAIL_RANK) while rank 0 goes on into the next
//! measurement's collectives; MPI_Abort ends both, and the finished record is kept.

mod common;

use common::{text, tmp, BIN};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_failing_rank_aborts_the_job_with_its_rank_and_reason() {
    let json = tmp("failure.json");
    let mut child = Command::new("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("EFFCAL_FAIL_RANK", "1")
        .args(["--oversubscribe", "-n", "2", BIN, "stencil", "--size", "32", "16", "16", "--precision", "f64,f32", "--iters", "2", "--reps", "1"])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the job hung after rank 1 failed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "exit {:?}", out.status.code());
    assert!(err.contains("effcal: rank 1 of 2 failed: failure injected by EFFCAL_FAIL_RANK=1"), "{err}");
    assert!(err.contains("aborting all 2 ranks"), "{err}");
    // What rank 0 had finished is still in the calibration.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["records"].as_array().unwrap().len(), 1, "{doc}");
}
