//! Helpers shared by the integration tests: running the binary, plainly and under mpirun,
//! and reading its calibration JSON against the committed schema.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_effcal");

pub fn effcal(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("effcal runs")
}

/// `mpirun -n <ranks> effcal <args>`, oversubscribing where ranks exceed cores. Each run
/// keeps Open MPI's session directory under a base of its own: the tests run mpiruns side
/// by side, and in the shared /tmp/ompi.<host>.<uid> one job's cleanup can remove the
/// directory while another creates it (Open MPI 4.1: "orte_session_dir failed", mkdir:
/// "File exists").
pub fn mpirun(ranks: usize, args: &[&str]) -> Output {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir().join(format!("effcal-test-ompi-{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&base).unwrap();
    let out = Command::new("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_orte_tmpdir_base", &base)
        .args(["--oversubscribe", "-n", &ranks.to_string(), BIN])
        .args(args)
        .output()
        .expect("mpirun is installed (scripts/test.sh installs openmpi-bin)");
    let _ = std::fs::remove_dir_all(&base);
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

pub fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

pub fn schema() -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/calibration.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Reads a calibration and checks it against the committed schema.
pub fn calibration(path: &Path) -> Value {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{} does not match the schema:\n{}", path.display(), errors.join("\n"));
    doc
}


/// The physical cores of this machine (distinct core and socket ids, as lscpu lists them).
pub fn physical_cores() -> usize {
    let lscpu = Command::new("lscpu").arg("-p=Core,Socket").output().expect("lscpu runs");
    text(&lscpu.stdout).lines().filter(|l| !l.starts_with('#')).collect::<std::collections::BTreeSet<_>>().len()
}

/// `reframe` (the binary `bin`) on effcal's check (slurm/reframe/effcal_check.py) with the
/// configuration `settings`, `prefix` its output and stage directories (and HOME, so that
/// ReFrame's own files stay there), from the project's root, the check's binary the one
/// under test. The caller adds `-S` variables, environment and `-r`.
pub fn reframe_command(bin: &str, settings: &str, prefix: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", prefix)
        .args(["--nocolor", "-C", settings, "-c", "slurm/reframe/effcal_check.py", "--prefix"])
        .arg(prefix)
        .args(["-S", &format!("effcal={BIN}")]);
    cmd
}
