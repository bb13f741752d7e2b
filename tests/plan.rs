//! Run plans: a job killed part-way keeps its finished records and `--resume` measures only
//! the rest; memory fractions become sizes; sizes that cannot fit are refused, by key, before
//! anything is measured; a system description supplies the theoretical figures.

mod common;

use common::{calibration, effcal, mpirun, ok, text, tmp, BIN};
use std::process::Command;

const SMALL: &str = "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.01\ntriad_elements = 262144\n\
                     [gemm]\nn = 128\nprecisions = [\"f64\", \"bf16\"]\n\
                     [stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\", \"f32\"]\nsize = [34, 18, 18]\niters = 2\n";

fn plan(name: &str, text: &str) -> std::path::PathBuf {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_killed_job_resumes_where_it_stopped() {
    let cfg = plan("resume.toml", SMALL);
    let json = tmp("resume.json");
    // The job dies after its first record (as at a time limit): that record is on disk.
    let out = Command::new(BIN)
        .env("EFFCAL_FAIL_RANK", "0")
        .args(["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let first = calibration(&json);
    assert_eq!(first["records"].as_array().unwrap().len(), 1);

    let stdout = ok(&effcal(&["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap(), "--resume"]));
    assert!(stdout.contains("Resuming") && stdout.contains("gemm f64: already in the calibration (resumed), skipped"), "{stdout}");
    let doc = calibration(&json);
    let records = doc["records"].as_array().unwrap();
    let which: Vec<String> = records.iter().map(|r| format!("{} {}", r["kernel"].as_str().unwrap(), r["precision"].as_str().unwrap())).collect();
    assert_eq!(which, ["gemm f64", "gemm bf16", "stencil-7pt f64", "stencil-7pt f32"]);
    // The kept record and the peaks are those of the killed job, untouched.
    assert_eq!(records[0], first["records"][0]);
    assert_eq!(doc["peaks"], first["peaks"]);
    assert_eq!(doc["created"], first["created"]);

    // Nothing left to do: a second resume measures nothing.
    let again = ok(&effcal(&["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap(), "--resume"]));
    assert_eq!(again.matches("skipped").count(), 4, "{again}");
    // A file of another shape is refused, not mixed in.
    let err = text(&mpirun(2, &["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap(), "--resume"]).stderr);
    assert!(err.contains("invalid --resume") && err.contains("2 rank(s) × 1 thread(s)") && err.contains("that file is schema 2, 1 rank(s)"), "{err}");
}

#[test]
fn memory_fractions_size_the_run_and_impossible_sizes_are_refused_first() {
    let cfg = plan("fit.toml", "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.01\ntriad_elements = 262144\n[hpl_mxp]\nmemory_fraction = 0.0005\nprecisions = [\"bf16\"]\n");
    let json = tmp("fit.json");
    // (--resume with no file yet starts a new calibration, on every rank alike.)
    let out = ok(&mpirun(2, &["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap(), "--resume"]));
    assert!(out.contains("Result: PASSED"), "{out}");
    let doc = calibration(&json);
    let mem = doc["system"]["memory_bytes_per_node"].as_u64().unwrap();
    let n = doc["records"][0]["params"]["n"].as_u64().unwrap();
    // HPL's rule: the f32 factors fill the fraction of both ranks' share of the node, n a
    // multiple of the block size (768 for bf16).
    let expect = ((0.0005 * (mem / 2 * 2) as f64 / 4.0).sqrt() as u64 / 768 * 768).max(768);
    assert_eq!(n, expect, "memory {mem}");

    let cfg = plan("huge.toml", "[hpl_mxp]\nn = 4000000\nprecisions = [\"bf16\"]\n");
    let json = tmp("huge.json");
    let out = effcal(&["run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("config {}: hpl_mxp.n = 4000000: the matrix needs 64000.00 GB over 1 rank(s)", cfg.display())) && err.contains("allowed: n ≤"), "{err}");
    assert!(!text(&out.stdout).contains("Peaks for"), "measured before refusing");
    assert!(!json.exists());
}

#[test]
fn a_system_description_gives_the_theoretical_peaks_and_bandwidth() {
    let json = tmp("described.json");
    let root = env!("CARGO_MANIFEST_DIR");
    let system = format!("{root}/configs/fugaku.toml");
    let out = ok(&effcal(&["--threads", "1", "--system", &system, "stencil", "--size", "34", "18", "18", "--iters", "2", "--reps", "1", "--json", json.to_str().unwrap()]));
    assert!(out.contains("Memory bandwidth, theoretical: 1024.0 GB/s (1024 GB/s per node × 1 node(s); config: Fujitsu A64FX datasheet"), "{out}");
    let doc = calibration(&json);
    assert_eq!(doc["system"]["description"]["name"], "Fugaku");
    let peaks = &doc["peaks"];
    assert_eq!(peaks["clock_ghz"], 2.2);
    assert!(peaks["clock_source"].as_str().unwrap().starts_with("config: Fugaku boost mode"));
    // 1 core × 2.2 GHz × 32 FLOP/cycle.
    assert!((peaks["per_precision"]["f64"]["theoretical_gflops"].as_f64().unwrap() - 70.4).abs() < 1e-9);
    assert_eq!(peaks["memory_bandwidth_gbs"], 1024.0);
    let r = &doc["records"][0];
    let vs = r["efficiency"]["vs_theoretical"].as_f64().unwrap();
    assert!((vs - r["bandwidth_gbs"]["median"].as_f64().unwrap() / 1024.0).abs() < 1e-12);
}

/// A plan with `run.device = "gpu"`: its runs listed by --dry-run with the GPU's block size,
/// what a GPU cannot run refused by key, and without a GPU the run refused before anything
/// is measured (exit 2, no JSON).
#[test]
fn a_gpu_plan_lists_its_runs_and_is_refused_without_a_gpu() {
    let gpu = "[run]\nreps = 1\nwarmup = 0\ndevice = \"gpu\"\n[gemm]\nn = 1024\nprecisions = [\"f64\", \"e4m3\"]\n\
               [hpl_mxp]\nn = 8192\nprecisions = [\"bf16\", \"f64\"]\ndiagonal = \"gpu\"\n[stencil]\nkinds = [\"27pt\"]\nprecisions = [\"f16\"]\nsize = [66, 66, 66]\niters = 3\n";
    let cfg = plan("gpu.toml", gpu);
    let json = tmp("gpu-plan.json");
    let out = ok(&effcal(&["run", "--dry-run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]));
    assert!(out.contains("on 1 GPU(s), one per rank; nothing measured"), "{out}");
    for line in ["gemm     f64   n=1024", "gemm     e4m3  n=1024", "hpl-mxp  bf16  n=8192 nb=1024 1×1", "hpl-mxp  f64   n=8192 nb=1024 1×1", "stencil-27pt f16   66×66×66 iters=3"] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let out = effcal(&["run", "--config", cfg.to_str().unwrap(), "--out", json.to_str().unwrap()]);
    let err = text(&out.stderr);
    if out.status.code() == Some(2) {
        assert!(err.contains("invalid --device 'gpu': a machine with a usable NVIDIA GPU"), "{err}");
        assert!(!text(&out.stdout).contains("Peaks for") && !json.exists(), "nothing measured");
    }
    let refused = |name: &str, body: &str, want: &str| {
        let cfg = plan(name, body);
        let out = effcal(&["run", "--dry-run", "--config", cfg.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("config {}: {want}", cfg.display())), "{name}: {err}");
    };
    refused("gpu-device.toml", "[run]\ndevice = \"tpu\"\n", "run.device = \"tpu\": allowed: \"cpu\", \"gpu\"");
    refused("gpu-fraction.toml", "[run]\ndevice = \"gpu\"\n[gemm]\nmemory_fraction = 0.5\nprecisions = [\"bf16\"]\n", "gemm.memory_fraction with run.device = \"gpu\": allowed: a size (n or size); on GPUs only hpl_mxp.memory_fraction");
    refused("gpu-blocking.toml", "[run]\ndevice = \"gpu\"\n[gemm]\nn = 64\nprecisions = [\"bf16\"]\nblocking = \"256,480,4096\"\n", "gemm.blocking = \"256,480,4096\" with run.device = \"gpu\": allowed: none (cuBLAS blocks the GPU's GEMMs itself)");
    // HPL-MxP's memory fraction is of each GPU's memory: sized when the GPUs are open.
    let cfg = plan("gpu-hpl-fraction.toml", "[run]\ndevice = \"gpu\"\n[hpl_mxp]\nmemory_fraction = 0.6\nprecisions = [\"bf16\", \"e4m3\"]\n");
    let out = ok(&effcal(&["run", "--dry-run", "--config", cfg.to_str().unwrap()]));
    for line in ["hpl-mxp  bf16  n=(0.6 of each GPU's memory) nb=1024 1×1", "hpl-mxp  e4m3  n=(0.6 of each GPU's memory) nb=1024 1×1"] {
        assert!(out.contains(line), "{line}: {out}");
    }
    refused("gpu-fp8.toml", "[run]\ndevice = \"gpu\"\n[hpl_mxp]\nn = 1024\nprecisions = [\"e5m2\"]\n", "hpl_mxp: invalid --precision 'e5m2': f64, f32, bf16, f16 or e4m3 with --device gpu");
    refused("gpu-fp8-n.toml", "[run]\ndevice = \"gpu\"\n[hpl_mxp]\nn = 1000\nprecisions = [\"e4m3\"]\n", "hpl_mxp: invalid --n '1000': a multiple of 16 for e4m3 with --device gpu");
    refused("cpu-diagonal.toml", "[hpl_mxp]\nn = 1024\nprecisions = [\"bf16\"]\ndiagonal = \"gpu\"\n", "hpl_mxp.diagonal = \"gpu\" with run.device = \"cpu\": allowed: host");
    refused("gpu-diagonal.toml", "[run]\ndevice = \"gpu\"\n[hpl_mxp]\nn = 1024\nprecisions = [\"bf16\"]\ndiagonal = \"device\"\n", "hpl_mxp.diagonal = \"device\": allowed: host, gpu");
    refused("gpu-himeno.toml", "[run]\ndevice = \"gpu\"\n[stencil]\nkinds = [\"himeno\"]\nprecisions = [\"f32\"]\nsize = [34, 34, 66]\niters = 2\n", "stencil: invalid --kind 'himeno': 7pt or 27pt with --device gpu");
}
