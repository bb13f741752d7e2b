//! The project's own sbatch script on a real Slurm: tests/slurm/cluster.sh brings up a
//! single-node Slurm (munged, slurmctld, slurmd, installed from Debian when missing),
//! `sbatch --wait slurm/effcal.sbatch` runs a small plan through srun on one rank per
//! physical core (as its header says), and the calibration JSON it wrote is checked. The daemons are stopped by their PIDs whatever
//! happens. A second test brings up 2 nodes on the test bed (scripts/testbed.sh: one slurmd
//! per host) and runs the scripts `effcal slurm` renders for 1 and 2 nodes, then merges them.
//! The first test also runs the ReFrame check (slurm/reframe/) on that cluster.
//! Skipped, with a message, only where Slurm cannot be installed (exit 77).

mod common;

use common::{calibration, effcal, ok, physical_cores, reframe_command, text, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Stops the test cluster when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    /// None where Slurm cannot be installed here.
    fn up(dir: &Path) -> Option<Self> {
        Self::up_nodes(dir, 1)
    }

    /// `nodes` > 1: on the test bed (scripts/testbed.sh), one slurmd per host.
    fn up_nodes(dir: &Path, nodes: usize) -> Option<Self> {
        let out = Command::new("bash").arg(Path::new(ROOT).join("tests/slurm/cluster.sh")).arg("up").arg(dir).arg(nodes.to_string()).output().expect("bash runs");
        if out.status.code() == Some(77) {
            eprintln!("SKIPPED: the Slurm test needs slurmctld, slurmd, munge (apt) and root:\n{}", text(&out.stderr));
            return None;
        }
        assert!(out.status.success(), "cluster.sh up failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
        Some(Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf") })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(Path::new(ROOT).join("tests/slurm/cluster.sh")).arg("down").arg(&self.dir).status();
    }
}

#[test]
fn the_sbatch_script_runs_one_rank_per_core_under_slurm() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let Some(cluster) = Cluster::up(&dir) else { return };
    let json = dir.join("calibration.json");
    let log = dir.join("job-%j.out");
    let out = Command::new("sbatch")
        .current_dir(ROOT)
        .env("SLURM_CONF", &cluster.conf)
        .env("EFFCAL_BIN", BIN)
        .env("EFFCAL_PLAN", "tests/slurm/plan.toml")
        .env("EFFCAL_OUT", &json)
        .arg("--wait")
        .arg(format!("--output={}", log.display()))
        .arg("slurm/effcal.sbatch")
        .output()
        .expect("sbatch runs");
    let logs: String = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("job-")).map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
    assert!(out.status.success(), "sbatch --wait failed ({:?}):\n{}\n{}\njob output:\n{logs}", out.status.code(), text(&out.stdout), text(&out.stderr));
    assert!(logs.contains("Result: PASSED"), "job output:\n{logs}");

    let doc = calibration(&json);
    let system = &doc["system"];
    // As its header says: the node whole, one rank per physical core.
    let cores = physical_cores();
    assert_eq!(system["ranks"], cores, "{system}");
    let script = std::fs::read_to_string(Path::new(ROOT).join("slurm/effcal.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --exclusive") && !script.contains("#SBATCH --ntasks-per-node"), "slurm/effcal.sbatch");
    let bindings = system["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), cores);
    // effcal binds each rank's threads to its own cores when the launcher did not.
    assert_ne!(bindings[0]["cpus"], bindings[1]["cpus"], "ranks share cores: {bindings:?}");
    let records = doc["records"].as_array().unwrap();
    let kernels: Vec<&str> = records.iter().map(|r| r["kernel"].as_str().unwrap()).collect();
    for k in ["gemm", "hpl-mxp", "stencil-7pt"] {
        assert!(kernels.contains(&k), "no {k} record in {kernels:?}");
    }
    assert!(records.iter().all(|r| r["valid"] == true), "a record failed: {records:?}");
    assert!(doc["command"].as_str().unwrap().contains("run --config tests/slurm/plan.toml"), "{}", doc["command"]);
    assert!(bindings.iter().all(|b| b["placement"] == "divided"), "{bindings:?}");

    // The script `effcal slurm` renders from the plan's [job] section runs as it is too.
    let scripts = dir.join("generated");
    ok(&effcal(&["slurm", "--config", "tests/slurm/plan.toml", "--out-dir", scripts.to_str().unwrap()]));
    let rendered = dir.join("rendered.json");
    let out = Command::new("sbatch")
        .current_dir(ROOT)
        .env("SLURM_CONF", &cluster.conf)
        .env("EFFCAL_BIN", BIN)
        .env("EFFCAL_OUT", &rendered)
        .arg("--wait")
        .arg(format!("--output={}", dir.join("rendered-%j.out").display()))
        .arg(scripts.join("slurmtest-1n.sbatch"))
        .output()
        .expect("sbatch runs");
    let logs: String = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rendered-")).map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
    assert!(out.status.success(), "the rendered script failed ({:?}):\n{}\njob output:\n{logs}", out.status.code(), text(&out.stderr));
    let doc = calibration(&rendered);
    assert_eq!(doc["system"]["ranks"], 2);
    assert!(doc["records"].as_array().unwrap().iter().all(|r| r["valid"] == true));

    // The GPU script on the node's two stand-in GPUs: one rank per GPU the job holds, up to
    // effcal's own refusal (no CUDA here), said once, exit 2, nothing written; a CPU plan
    // is refused by the script itself.
    let gpu_json = dir.join("gpu.json");
    let gpu_job = |plan: &str, log: &str| {
        let out = Command::new("sbatch")
            .current_dir(ROOT)
            .env("SLURM_CONF", &cluster.conf)
            .env("EFFCAL_BIN", BIN)
            .env("EFFCAL_PLAN", plan)
            .env("EFFCAL_OUT", &gpu_json)
            .args(["--wait", "--gpus-per-node=2"])
            .arg(format!("--output={}", dir.join(format!("{log}-%j.out")).display()))
            .arg("slurm/effcal-gpu.sbatch")
            .output()
            .expect("sbatch runs");
        let logs: String = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(log)).map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
        (out.status.code(), logs)
    };
    let (code, logs) = gpu_job("configs/gpu-node.toml", "gpu");
    assert_eq!(code, Some(2), "job output:\n{logs}");
    let threads = (cores / 2).max(1);
    assert!(logs.contains(&format!(": 2 rank(s), one per GPU, × {threads} thread(s); configs/gpu-node.toml")), "job output:\n{logs}");
    assert_eq!(logs.matches("effcal: error: invalid --device 'gpu': a machine with a usable NVIDIA GPU").count(), 1, "job output:\n{logs}");
    assert!(!gpu_json.exists());
    let (code, logs) = gpu_job("tests/slurm/plan.toml", "gpu-cpu-plan");
    assert_eq!(code, Some(2), "job output:\n{logs}");
    assert!(logs.contains("effcal-gpu.sbatch: tests/slurm/plan.toml is not a GPU plan"), "job output:\n{logs}");

    // The ReFrame check (slurm/reframe/) on the same cluster: sbatch, squeue and srun.
    let Ok(reframe) = std::env::var("EFFCAL_REFRAME") else {
        eprintln!("EFFCAL_REFRAME is not set (scripts/test.sh sets it): the ReFrame check does not run under Slurm");
        return;
    };
    let check = |name: &str, vars: &[&str]| {
        let prefix = dir.join(name);
        let mut cmd = reframe_command(&reframe, "tests/reframe/settings-slurm.py", &prefix);
        cmd.env("SLURM_CONF", &cluster.conf);
        for v in vars {
            cmd.args(["-S", v]);
        }
        (prefix, cmd.arg("-r").output().expect("reframe runs"))
    };
    let (prefix, out) = check("reframe", &["plan=tests/slurm/plan.toml", "ranks_per_node=2"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "the ReFrame check failed under Slurm:\n{stdout}\n{}", text(&out.stderr));
    let output = prefix.join("output/testcluster/debug/builtin/effcal_plan");
    let job = std::fs::read_to_string(output.join("rfm_job.sh")).unwrap();
    for line in ["#SBATCH --ntasks=2", "#SBATCH --ntasks-per-node=2", "#SBATCH --cpus-per-task=1", "#SBATCH --hint=nomultithread", "srun "] {
        assert!(job.contains(line), "no {line:?} in the job script:\n{job}");
    }
    let doc = calibration(&output.join("calibration.json"));
    assert_eq!(doc["system"]["ranks"], 2);
    assert!(doc["records"].as_array().unwrap().iter().all(|r| r["valid"] == true));
    assert!(stdout.contains("\nP: gemm_f64_n256: ") && stdout.contains("\nP: stencil_7pt_f32_64x32x32_eff: "), "{stdout}");
    // A GPU plan: a rank per GPU of the partition's (gres), up to effcal's refusal without
    // CUDA, which fails the check's sanity. The configuration does not give the partition's
    // processor, so a rank gets one thread (with it: the node's cores over its GPUs).
    let (prefix, out) = check("reframe-gpu", &["plan=configs/gpu-node.toml"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success() && stdout.contains("Failing phase: sanity"), "{stdout}\n{}", text(&out.stderr));
    let stage = prefix.join("stage/testcluster/debug/builtin/effcal_plan");
    let job = std::fs::read_to_string(stage.join("rfm_job.sh")).unwrap();
    for line in ["#SBATCH --ntasks=2".to_string(), "#SBATCH --gres=gpu:2".into(), "#SBATCH --cpus-per-task=1".into(), format!("--threads 1 run --config {ROOT}/configs/gpu-node.toml")] {
        assert!(job.contains(&line), "no {line:?} in the job script:\n{job}");
    }
    let err = std::fs::read_to_string(stage.join("rfm_job.err")).unwrap();
    assert!(err.contains("effcal: error: invalid --device 'gpu': a machine with a usable NVIDIA GPU"), "{err}");
}

/// Runs a rendered script with `sbatch --wait` and returns its calibration.
fn submit(cluster: &Cluster, script: &Path, json: &Path, log: &str) -> serde_json::Value {
    let out = Command::new("sbatch")
        .current_dir(ROOT)
        .env("SLURM_CONF", &cluster.conf)
        .env("EFFCAL_BIN", BIN)
        .env("EFFCAL_OUT", json)
        .arg("--wait")
        .arg(format!("--output={}", cluster.dir.join(format!("{log}-%j.out")).display()))
        .arg(script)
        .output()
        .expect("sbatch runs");
    let logs: String = std::fs::read_dir(&cluster.dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(log)).map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
    assert!(out.status.success(), "{} failed ({:?}):\n{}\njob output:\n{logs}", script.display(), out.status.code(), text(&out.stderr));
    calibration(json)
}

#[test]
fn rendered_scripts_run_on_two_nodes_and_merge_into_scaling_figures() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-2n");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let Some(cluster) = Cluster::up_nodes(&dir, 2) else { return };
    let scripts = dir.join("generated");
    ok(&effcal(&["slurm", "--config", "tests/slurm/plan-2n.toml", "--out-dir", scripts.to_str().unwrap()]));
    let mut docs = Vec::new();
    for nodes in [1, 2] {
        let json = dir.join(format!("bed-{nodes}n.json"));
        let doc = submit(&cluster, &scripts.join(format!("bed-{nodes}n.sbatch")), &json, &format!("bed-{nodes}n"));
        // One rank per node, each on its own host (srun -N, PMIx across the bed).
        let hosts: Vec<String> = (1..=nodes).map(|i| format!("effh{i}")).collect();
        assert_eq!(doc["system"]["hosts"], serde_json::json!(hosts), "{nodes} node(s)");
        assert_eq!(doc["system"]["ranks"], nodes);
        let records = doc["records"].as_array().unwrap();
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(records.iter().all(|r| r["valid"] == true), "{records:?}");
        docs.push(json);
    }
    // The two node counts merge into scaling figures: HPL-MxP's strong (same n), the
    // stencil's strong (same grid), each point with its efficiency.
    let merged = dir.join("bed.json");
    let table = ok(&effcal(&["merge", docs[0].to_str().unwrap(), docs[1].to_str().unwrap(), "--out", merged.to_str().unwrap()]));
    eprintln!("{table}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let scaling = doc["scaling"].as_array().unwrap();
    for (kernel, precision) in [("hpl-mxp", "f64"), ("hpl-mxp", "bf16"), ("stencil-7pt", "f64")] {
        let series = scaling.iter().find(|s| s["kernel"] == kernel && s["precision"] == precision).unwrap_or_else(|| panic!("no {kernel} {precision} series: {scaling:?}"));
        assert_eq!(series["series"], "strong", "{series}");
        assert_eq!(series["points"].as_array().unwrap().len(), 2, "{series}");
    }
}
