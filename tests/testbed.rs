//! Across hosts for real: scripts/testbed.sh makes hosts effh1..effh4 on this machine
//! (network namespaces, one veth each to a bridge, their own hostnames and CPUs), and Open
//! MPI launches across them over TCP only (no shared memory). The answers must be those of
//! the same ranks on one host: stencil checksums and gosa bit for bit, HPL-MxP PASSED with
//! the same iterations and scaled residual; the calibration names each rank's host.
//! A host killed mid-run ends the job at once and `--resume` finishes it elsewhere; a link
//! dropped for 10 s delays the run and changes nothing; a full disk keeps what was written.
//! Skipped, with a message, only where the machine cannot have a test bed (exit 77).

mod common;

use common::{BIN, calibration, ok, text, tmp};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh");

/// One test bed at a time (its names are fixed): the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test bed's hosts, removed when dropped (whatever happened).
struct Testbed {
    /// mpirun's options to launch across the hosts.
    options: Vec<String>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Testbed {
    fn up(hosts: usize) -> Option<Self> {
        // A test that failed holding the bed poisons the lock; the next still gets its turn.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new("bash").args([SCRIPT, "up", &hosts.to_string()]).output().expect("bash runs");
        if out.status.code() == Some(77) {
            eprintln!("SKIPPED: the test bed needs root and network namespaces:\n{}", text(&out.stderr));
            return None;
        }
        let stdout = ok(&out);
        let options = stdout.lines().last().expect("the mpirun options").split_whitespace().map(str::to_string).collect();
        Some(Testbed { options, _turn: turn })
    }

    /// `mpirun <options> -n <ranks> effcal <args>` across the hosts (ranks round the hosts).
    fn mpirun(&self, ranks: usize, args: &[&str]) -> Output {
        launch(&self.options, ranks, args)
    }

    /// The mpirun options for the given hosts only (1-based: effh1 is 1).
    fn options_on(&self, hosts: &[usize]) -> Vec<String> {
        let list: Vec<String> = hosts.iter().map(|h| format!("10.77.0.{h}")).collect();
        let mut options = self.options.clone();
        let at = options.iter().position(|o| o == "--host").expect("the options name the hosts") + 1;
        options[at] = list.join(",");
        options
    }
}

/// `mpirun <options> -n <ranks> effcal <args>`, ended after 300 s whatever happens.
fn launch(options: &[String], ranks: usize, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("300")
        .arg("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(options)
        .args(["-n", &ranks.to_string(), BIN])
        .args(args)
        .output()
        .expect("mpirun is installed")
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
            // Each host has its own CPU (host i: cpu (i − 1) mod cores): ranks on the first
            // two hosts are not bound to the same one.
            let cpus: Vec<&str> = doc["system"]["bindings"].as_array().unwrap().iter().map(|b| b["cpus"].as_str().unwrap()).collect();
            if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
                assert_ne!(cpus[0], cpus[1], "{name}: {cpus:?}");
            }
            assert_eq!(across.len(), here.len());
            for (a, h) in across.iter().zip(&here) {
                assert_eq!(a["valid"], true, "{name}: {a}");
                assert_eq!(answer(a), answer(h), "{name} on {ranks} ranks: across hosts, then on one host");
            }
        }
    }
}

/// Processes still running in a host's namespaces.
fn pids(host: usize) -> String {
    text(&Command::new("ip").args(["netns", "pids", &format!("effh{host}")]).output().expect("ip runs").stdout)
}

/// The number of records in a calibration file, where it holds a whole one.
fn written(path: &Path) -> usize {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()).and_then(|d| d["records"].as_array().map(Vec::len)).unwrap_or(0)
}

#[test]
fn a_host_lost_mid_run_ends_the_job_and_resume_finishes_it_elsewhere() {
    let Some(bed) = Testbed::up(3) else { return };
    // A quick GEMM written first, then a kernel long enough to lose a host in.
    let head = "[run]\nreps = 3\nwarmup = 0\n[peak]\nfma_seconds = 0.05\ntriad_elements = 100000\n[gemm]\nn = 128\nprecisions = [\"f64\"]\n";
    let long = [
        ("hpl-mxp", "[hpl_mxp]\nn = 4096\nprecisions = [\"f64\"]\n"),
        ("stencil-7pt", "[stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nsize = [200, 200, 200]\niters = 200\n"),
    ];
    for (kernel, section) in long {
        let plan = tmp(&format!("fault-{kernel}.toml"));
        std::fs::write(&plan, format!("{head}{section}")).unwrap();
        let json = tmp(&format!("fault-{kernel}.json"));
        let (out, err) = (tmp(&format!("fault-{kernel}.out")), tmp(&format!("fault-{kernel}.err")));
        let args = ["--threads", "1", "run", "--config", plan.to_str().unwrap(), "--out", json.to_str().unwrap()];
        let mut job = Command::new("mpirun")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .args(bed.options_on(&[1, 2]))
            .args(["-n", "2", BIN])
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("mpirun starts");
        // The GEMM's record is written: the long kernel runs. Host 2 dies (every process).
        let start = std::time::Instant::now();
        while written(&json) < 1 {
            assert!(job.try_wait().unwrap().is_none(), "{kernel}: the job ended before the fault:\n{}", std::fs::read_to_string(&err).unwrap());
            assert!(start.elapsed().as_secs() < 120, "{kernel}: no record after 120 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let killed = std::time::Instant::now();
        let _ = Command::new("sh").args(["-c", "ip netns pids effh2 | xargs -r kill -9"]).status();
        let status = loop {
            if let Some(status) = job.try_wait().unwrap() {
                break status;
            }
            if killed.elapsed().as_secs() > 60 {
                let _ = job.kill();
                panic!("{kernel}: the job still runs 60 s after host 2 died");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let took = killed.elapsed().as_secs_f64();
        let stderr = std::fs::read_to_string(&err).unwrap();
        assert!(!status.success(), "{kernel}: exit {status:?} after the fault");
        // Open MPI names the lost host (its address: effh2 is 10.77.0.2).
        assert!(stderr.contains("10.77.0.2"), "{kernel}: the message names no host:\n{stderr}");
        eprintln!("{kernel}: host 2 killed; the job ended in {took:.1} s with {status:?}");
        // What was written is whole and as it was; no rank is left running anywhere.
        let doc = calibration(&json);
        let records = doc["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{kernel}: {records:?}");
        assert_eq!((records[0]["kernel"].as_str(), records[0]["valid"].as_bool()), (Some("gemm"), Some(true)));
        std::thread::sleep(std::time::Duration::from_millis(500));
        for h in 1..=3 {
            assert_eq!(pids(h), "", "{kernel}: processes left on effh{h}");
        }
        // --resume on the healthy host and a spare: only what is missing is measured.
        let mut again = args.to_vec();
        again.push("--resume");
        let stdout = ok(&launch(&bed.options_on(&[1, 3]), 2, &again));
        assert!(stdout.contains("gemm f64: already in the calibration (resumed), skipped") && stdout.contains("Result: PASSED"), "{stdout}");
        let doc = calibration(&json);
        let kernels: Vec<&str> = doc["records"].as_array().unwrap().iter().map(|r| r["kernel"].as_str().unwrap()).collect();
        assert_eq!(kernels, ["gemm", kernel]);
        assert_eq!(doc["system"]["hosts"], serde_json::json!(["effh1", "effh3"]));
    }
}

#[test]
fn a_link_dropped_for_ten_seconds_delays_the_run_and_changes_nothing() {
    let Some(bed) = Testbed::up(2) else { return };
    let plan = tmp("link.toml");
    std::fs::write(
        &plan,
        "[run]\nreps = 3\nwarmup = 0\n[peak]\nfma_seconds = 0.05\ntriad_elements = 100000\n[gemm]\nn = 128\nprecisions = [\"f64\"]\n\
         [stencil]\nkinds = [\"7pt\"]\nprecisions = [\"f64\"]\nsize = [200, 200, 200]\niters = 200\n",
    )
    .unwrap();
    let json = tmp("link.json");
    let args = ["--threads", "1", "run", "--config", plan.to_str().unwrap(), "--out", json.to_str().unwrap()];
    let job = {
        let mut c = Command::new("timeout");
        c.arg("300").arg("mpirun").env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1").args(&bed.options).args(["-n", "2", BIN]).args(args);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("mpirun starts")
    };
    let start = std::time::Instant::now();
    while written(&json) < 1 {
        assert!(start.elapsed().as_secs() < 120, "no record after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Host 2's link goes down mid-stencil for 10 s (TCP retransmits; no MPI timeout).
    let link = |state: &str| assert!(Command::new("ip").args(["link", "set", "effv2", state]).status().unwrap().success());
    link("down");
    std::thread::sleep(std::time::Duration::from_secs(10));
    link("up");
    let up = std::time::Instant::now();
    let out = job.wait_with_output().unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("Result: PASSED"), "{stdout}");
    eprintln!("link down 10 s: the run finished {:.1} s after it came back", up.elapsed().as_secs_f64());
    // The field is the one the same ranks compute on one host.
    let (_, records) = records(&json);
    let here = tmp("link-one-host.json");
    ok(&one_host(2, &["--threads", "1", "stencil", "--kind", "7pt", "--size", "200", "200", "200", "--iters", "200", "--reps", "1", "--warmup", "0", "--triad-elements", "100000", "--json", here.to_str().unwrap()]));
    let (_, mine) = self::records(&here);
    assert_eq!(records[1]["checksum"], mine[0]["checksum"]);
}

#[test]
fn a_full_disk_keeps_the_calibration_written_and_says_so() {
    let dir = tmp("small-disk");
    let _ = Command::new("umount").arg(&dir).stderr(std::process::Stdio::null()).status();
    std::fs::create_dir_all(&dir).unwrap();
    // 32 KiB (8 pages) fill about half way through the 18 records below (a 5-7 KiB header,
    // about 1 KiB a record, and the file and its temporary side by side while writing): how
    // many fit varies with the header's text, which depends on the CPU and on what the peaks
    // measured, so the plan has room on both sides.
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=32k", "tmpfs", dir.to_str().unwrap()]).status().is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: mounting a 32 KiB tmpfs needs root");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&dir);
    let plan = tmp("disk.toml");
    std::fs::write(&plan, "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.02\ntriad_elements = 100000\n[gemm]\nn = 64\nprecisions = [\"f64\", \"f32\", \"bf16\", \"f16\", \"e4m3\", \"e5m2\"]\n\
[stencil]\nkinds = [\"7pt\", \"himeno\", \"27pt\"]\nprecisions = [\"f64\", \"f32\", \"bf16\", \"f16\"]\nsize = [16, 16, 16]\niters = 1\n").unwrap();
    let json = dir.join("cal.json");
    let out = common::effcal(&["--threads", "1", "run", "--config", plan.to_str().unwrap(), "--out", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let want = format!("effcal: error: writing {} (the file is left as it was last written): No space left on device", json.display());
    assert!(err.contains(&want), "{err}");
    // The file holds every record written before the disk filled, whole; no temporary is left.
    let doc = calibration(&json);
    let n = doc["records"].as_array().unwrap().len();
    assert!((1..18).contains(&n), "{n} records");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("cal.json")]);
}

#[test]
fn the_network_is_measured_across_hosts_and_models_the_halo() {
    let Some(bed) = Testbed::up(2) else { return };
    let json = tmp("net.json");
    let stdout = ok(&bed.mpirun(2, &["--threads", "1", "net", "--iters", "50", "--reps", "2", "--json", json.to_str().unwrap()]));
    assert!(stdout.contains("# ping-pong rank 0 (effh1) <-> rank 1 (effh2), across hosts"), "{stdout}");
    let doc = calibration(&json);
    let net = &doc["network"];
    let pair = &net["pingpong"][0];
    assert_eq!((&pair["hosts"], &pair["same_host"]), (&serde_json::json!(["effh1", "effh2"]), &Value::Bool(false)));
    let points = pair["points"].as_array().unwrap();
    let bytes: Vec<u64> = points.iter().map(|p| p["bytes"].as_u64().unwrap()).collect();
    assert_eq!((bytes.len(), bytes[0], bytes[1], *bytes.last().unwrap()), (24, 0, 1, 4 << 20));
    let at = |b: u64, k: &str| points.iter().find(|p| p["bytes"] == b).unwrap()[k]["median"].as_f64().unwrap();
    // Latency is positive; a 4 MiB message moves far more bytes per second than 1 KiB.
    assert!(at(0, "latency_us") > 0.0 && at(4 << 20, "bandwidth_gbs") > 2.0 * at(1024, "bandwidth_gbs"), "{pair}");
    assert_eq!(net["allreduce"][0]["bytes"], 8);
    assert_eq!(net["bcast"].as_array().unwrap().len(), 24);
    // A stencil measured with the network carries its halo model beside its halo time.
    let json = tmp("net-stencil.json");
    let stdout = ok(&bed.mpirun(2, &["--threads", "1", "stencil", "--kind", "7pt", "--size", "66", "64", "64", "--iters", "3", "--net", "--reps", "1", "--triad-elements", "100000", "--json", json.to_str().unwrap()]));
    assert!(stdout.contains("Halo model (7pt f64 66x64x64):"), "{stdout}");
    let (_, records) = records(&json);
    let r = &records[0]["results"];
    assert!(r["halo_model_s"].as_f64().unwrap() > 0.0 && r["halo_s"].as_f64().unwrap() > 0.0, "{r}");
}
