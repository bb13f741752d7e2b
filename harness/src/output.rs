//! What a person reads on stdout: fixed-width tables in the spirit of HPL's output, with the
//! counting conventions stated, and a PASSED/FAILED word per result.

use crate::calibration::{Calibration, Peaks, Record};
use effcal_kernels::Precision;
use std::fmt::Write;

/// `effcal formats`: one row per format.
pub fn formats_table() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<6} {:>4} {:>3} {:>3} {:>5}  {:<24} {:<10} {:<13} {:<8} Inf/NaN",
        "format", "bits", "exp", "man", "bias", "max", "min normal", "min subnormal", "epsilon"
    );
    for p in Precision::ALL {
        let i = p.info();
        let _ = writeln!(
            s,
            "{:<6} {:>4} {:>3} {:>3} {:>5}  {:<24} {:<10} {:<13} {:<8} {}",
            p.name(),
            i.bits,
            i.exp_bits,
            i.man_bits,
            i.bias,
            exact(i.max),
            pow2(i.min_normal),
            pow2(i.min_subnormal),
            pow2(i.epsilon),
            i.special
        );
    }
    s.push_str("epsilon = 2^-man (gap from 1 to the next value); rounding is to nearest, ties to even.\n");
    s.push_str("Overflow: saturate to ±max by default (effcal's GEMM inputs), ±Inf included, in every format; IEEE mode gives ±Inf, or NaN for e4m3.\n");
    s
}

/// A value written exactly: the shortest decimal that reads back as the same f64, in
/// scientific notation outside [1e-4, 1e16) ("448", "0.1015625", "5.960464477539063e-8").
pub fn exact(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || !a.is_finite() || (1e-4..1e16).contains(&a) { format!("{x}") } else { format!("{x:e}") }
}

/// "2^-6" for an exact power of two.
fn pow2(x: f64) -> String {
    format!("2^{}", x.log2().round() as i64)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{:.1}", 100.0 * v))
}

/// The peak table (int8 in GOP/s), the clock readings, the CPU's table entry, a warning
/// per suspect peak, and the triad line when measured.
pub fn peaks_table(p: &Peaks) -> String {
    let mut s = String::new();
    let clock = p.clock_ghz.map_or_else(|| "unknown".into(), |c| format!("{c:.3} GHz ({})", p.clock_source));
    let _ = writeln!(s, "Peaks for {} cores, clock {clock}. Theoretical = cores × clock × FLOP/cycle/core.", p.cores);
    if let Some(c) = &p.clock {
        let g = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "Clock readings (GHz): imul chain {}, under {} FMA load {}; stated maximum {}{}; cpufreq max {} cur {}; CPUID 0x16 base {} max {}; /proc/cpuinfo {}",
            g(c.measured_scalar_ghz),
            c.fma_load_isa,
            g(c.measured_fma_ghz),
            g(c.stated_max_ghz),
            c.stated_max_source.as_ref().map_or(String::new(), |s| format!(" ({s})")),
            g(c.cpufreq_max_ghz),
            g(c.cpufreq_cur_ghz),
            g(c.cpuid_base_ghz),
            g(c.cpuid_max_ghz),
            g(c.proc_cpuinfo_ghz)
        );
        if let Some(why) = &c.refused {
            let _ = writeln!(s, "WARNING: the measured clock was refused: {why}.");
        }
    }
    if let Some(m) = &p.microarch {
        let _ = writeln!(s, "CPU {}: {}", m.cpu, m.entry.as_ref().map_or("not in configs/microarch.toml".into(), |e| format!("table entry {e}")));
    }
    let _ = writeln!(
        s,
        "{:<6} {:<8} {:>9} {:>12} {:>11} {:>11} {:>11} {:>9}  FMA kernel",
        "prec", "compute", "FLOP/cyc", "theor GF/s", "emp min", "emp median", "emp max", "emp/theor"
    );
    let names = Precision::ALL.map(Precision::name);
    for name in names.iter().copied().chain(["int8"]) {
        let Some(e) = p.per_precision.get(name) else { continue };
        let per_cycle = e.flop_per_cycle_per_core.map_or("-".into(), |f| format!("{f}"));
        let _ = writeln!(s, "{name:<6} {:<8} {per_cycle:>9} {}", e.compute_precision, peak_figures(name, e));
    }
    s + &peak_warnings_and_memory(p)
}

/// A peak row's columns from the theoretical figure on: theoretical, empirical min/median/
/// max, their ratio, how it was measured, and SUSPECT (or the GOP/s of int8).
fn peak_figures(name: &str, e: &crate::calibration::PrecisionPeak) -> String {
    format!(
        "{:>12} {:>11.1} {:>11.1} {:>11.1} {:>9}  {}{}",
        e.theoretical_gflops.map_or("-".into(), |t| format!("{t:.1}")),
        e.empirical.min,
        e.empirical.median,
        e.empirical.max,
        e.empirical_over_theoretical.map_or("-".into(), |r| format!("{r:.3}")),
        e.isa,
        match (name, &e.suspect) {
            (_, Some(_)) => "  SUSPECT",
            ("int8", None) => "  (GOP/s)",
            _ => "",
        }
    )
}

/// The GPU peak table: per arithmetic the vendor's dense figure × GPUs against the measured
/// rate (effcal's FMA kernel for f64_fma and f32, cuBLASLt GEMMs for the rest; int8 in
/// GOP/s), a warning per suspect peak, the triad on device memory.
pub fn gpu_peaks_table(p: &Peaks) -> String {
    let mut s = String::new();
    let gpus = p.gpus.unwrap_or(0);
    let _ = writeln!(s, "Peaks for {gpus} GPU(s). Theoretical = the vendor's dense figure × GPUs (configs/gpus.toml); {}.", p.clock_source);
    let _ = writeln!(s, "{:<8} {:<8} {:>12} {:>11} {:>11} {:>11} {:>9}  measured by", "prec", "compute", "theor GF/s", "emp min", "emp median", "emp max", "emp/theor");
    for name in GPU_PEAK_ORDER {
        let Some(e) = p.per_precision.get(name) else { continue };
        let _ = writeln!(s, "{name:<8} {:<8} {}", e.compute_precision, peak_figures(name, e));
    }
    s + &peak_warnings_and_memory(p)
}

/// The order of the GPU peak table's rows.
const GPU_PEAK_ORDER: [&str; 9] = ["f64_fma", "f64", "f32", "tf32", "bf16", "f16", "e4m3", "e5m2", "int8"];

/// What both peak tables end with: the suspect warnings, the triad, the memory bandwidth.
fn peak_warnings_and_memory(p: &Peaks) -> String {
    let mut s = String::new();
    for (name, why) in p.suspects() {
        let _ = writeln!(s, "WARNING: the {name} theoretical peak is suspect: {why}.");
    }
    if let Some(t) = &p.stream_triad {
        let _ = writeln!(
            s,
            "STREAM triad a = b + s·c, {} f64/array/rank, 24 B/element: {:.1} / {:.1} / {:.1} GB/s (min/median/max) {}",
            t.elements_per_rank,
            t.gbs.min,
            t.gbs.median,
            t.gbs.max,
            if t.valid { "PASSED" } else { "FAILED" }
        );
    }
    if let Some(b) = p.memory_bandwidth_gbs {
        let vs = p.stream_triad_gbs.map_or(String::new(), |t| format!("; the triad reaches {:.0}% of it", 100.0 * t / b));
        let _ = writeln!(s, "Memory bandwidth, theoretical: {b:.1} GB/s ({}){vs}", p.memory_bandwidth_source.as_deref().unwrap_or("config"));
    }
    s
}

/// Header of the GPU GEMM table (rows are [`gemm_row`]s, each followed by [`gpu_power_line`]).
pub fn gpu_gemm_header(ranks: usize, gpu: &str) -> String {
    format!(
        "GEMM C = A·B on every rank's GPU (cuBLASLt, A and B stored in the precision); FLOPs = 2mnk per GPU; {ranks} rank(s) × 1 {gpu}\n\
         {:<5} {:>6} {:<17} {:>9} {:>9} {:>9} {:>6} {:>6} {:>10} {:>9}  {}\n",
        "prec", "n", "path", "GF/s min", "median", "max", "%theo", "%emp", "err vs f64", "expected", "status"
    )
}

/// What a GPU record says of power: energy over its timed repetitions, the rate per watt,
/// the SM clock and any throttling, or why there was no reading.
pub fn gpu_power_line(r: &Record) -> String {
    if let Some(p) = r.results.get("power") {
        let f = |k: &str| p.get(k).and_then(serde_json::Value::as_f64);
        let per_w = f("gflops_per_w").map(|x| format!("{x:.2} GFLOP/s per W")).or_else(|| f("gbs_per_w").map(|x| format!("{x:.3} GB/s per W"))).unwrap_or_default();
        let throttle: Vec<&str> = p.get("throttle").and_then(|t| t.as_array()).map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
        let limit = f("limit_w_per_gpu").map_or("unknown".into(), |w| format!("{w:.0} W"));
        format!(
            "  power: {:.1} W mean ({:.1} J over {:.3} s, all GPUs), {per_w}; SM clock {}; throttled: {}; limit {limit} per GPU\n",
            f("mean_w").unwrap_or(f64::NAN),
            f("joules").unwrap_or(f64::NAN),
            f("seconds").unwrap_or(f64::NAN),
            f("sm_clock_mhz").map_or("not read".into(), |c| format!("{c:.0} MHz")),
            if p.get("throttle").is_none() { "not read".into() } else if throttle.is_empty() { "no".into() } else { throttle.join(", ") },
        )
    } else if let Some(why) = r.results.get("power_unavailable").and_then(|v| v.as_str()) {
        format!("  power: not measured: {why}\n")
    } else {
        String::new()
    }
}

/// Header of the GEMM table.
pub fn gemm_header(ranks: usize, threads: usize) -> String {
    format!(
        "GEMM C = A·B on every rank (HPCC StarDGEMM style); FLOPs = 2mnk per rank; {ranks} rank(s) × {threads} thread(s)\n\
         {:<5} {:>6} {:<17} {:>9} {:>9} {:>9} {:>6} {:>6} {:>10} {:>9}  {}\n",
        "prec", "n", "path", "GF/s min", "median", "max", "%theo", "%emp", "err vs f64", "expected", "status"
    )
}

/// A short time with four significant digits in a readable unit.
fn seconds(t: f64) -> String {
    match t {
        t if t < 1e-3 => format!("{:.4} ms", t * 1e3),
        t if t < 1.0 => format!("{:.2} ms", t * 1e3),
        t => format!("{t:.3} s"),
    }
}

/// The line that says how a GEMM path was chosen, where a probe chose it.
fn path_probe_line(r: &Record) -> String {
    let Some(serde_json::Value::Object(times)) = r.results.get("path_probe_s") else { return String::new() };
    let path = r.params.get("path").and_then(|v| v.as_str()).unwrap_or("-");
    let each: Vec<String> = times.iter().map(|(name, t)| format!("{name} {}", seconds(t.as_f64().unwrap_or(f64::NAN)))).collect();
    format!("  path: {path}, the faster in this run's probe ({})\n", each.join(", "))
}

/// One row of the GEMM table (and how its path was chosen, where a probe chose it).
pub fn gemm_row(r: &Record) -> String {
    let p = |k: &str| r.params.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default();
    let row = format!(
        "{:<5} {:>6} {:<17} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>6} {:>10.2e} {:>9.2e}  {}\n",
        r.precision,
        p("n"),
        p("path"),
        r.gflops.min,
        r.gflops.median,
        r.gflops.max,
        opt_pct(r.efficiency.vs_theoretical),
        opt_pct(r.efficiency.vs_empirical),
        r.accuracy.rel_error_vs_f64.unwrap_or(f64::NAN),
        r.accuracy.expected_error.unwrap_or(f64::NAN),
        if r.valid { "PASSED" } else { "FAILED" }
    );
    row + &path_probe_line(r)
}

/// The closing line: the binding of every rank, as a person checks it.
pub fn bindings_line(c: &Calibration) -> String {
    let b: Vec<String> = c.system.bindings.iter().map(|b| format!("rank {} on {} cpus {}", b.rank, b.host, b.cpus)).collect();
    format!("Binding: {}\n", b.join("; "))
}

/// The head of HPL's result table.
pub fn hpl_header() -> String {
    let rule = "=".repeat(108);
    format!(
        "{rule}\n{:<16} {:>8} {:>5} {:>4} {:>4} {:>10} {:>11} {:>11} {:>8} {:>5}  {}\n{}\n",
        "T/V", "N", "NB", "P", "Q", "Time(s)", "Gflops", "LU Gflops", "LU %pk", "Iter", "Result", "-".repeat(108)
    )
}

/// One HPL-MxP run: HPL's row, its residual check, the phases, and why it failed.
pub fn hpl_block(r: &Record) -> String {
    let p = |k: &str| r.params.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default();
    let res = |k: &str| r.results.get(k).cloned().unwrap_or_default();
    let tv = format!("MxP-{}-{}", r.precision, p("refine"));
    let lu = res("lu_gflops")["median"].as_f64().unwrap_or(f64::NAN);
    let lu_pk = res("lu_efficiency")["vs_empirical"].as_f64();
    let word = if r.valid { "PASSED" } else { "FAILED" };
    // A factorisation that broke down solved nothing: no rate.
    let rate = |x: f64| if r.accuracy.iterations.is_some() { format!("{x:.4e}") } else { "-".into() };
    let mut out = format!(
        "{tv:<16} {:>8} {:>5} {:>4} {:>4} {:>10.3} {:>11} {:>11} {:>8} {:>5}  {word}\n",
        p("n"),
        p("nb"),
        p("p"),
        p("q"),
        r.time_s.median,
        rate(r.gflops.median),
        rate(lu),
        if r.accuracy.iterations.is_some() { opt_pct(lu_pk) } else { "-".into() },
        r.accuracy.iterations.map_or("-".into(), |i| i.to_string()),
    );
    if let Some(s) = r.accuracy.scaled_residual {
        let verdict = if s <= r.accuracy.residual_threshold.unwrap_or(16.0) { "PASSED" } else { "FAILED" };
        out += &format!("||Ax-b||_oo/(eps*(||A||_oo*||x||_oo+||b||_oo)*N)= {s:>14.7e} ...... {verdict}\n");
    }
    let ph = res("phases_s");
    let f = |k: &str| ph[k].as_f64().unwrap_or(0.0);
    out += &format!(
        "  phases (s, median rep, slowest rank): diagonal {:.3}  panel {:.3}  convert {:.3}  bcast wait {:.3}  update {:.3}  refine {:.3}; \
         {} refinement, {} bcast, look-ahead {}, generator {}, f64 A {}, path {}\n",
        f("diagonal"),
        f("panel_solve"),
        f("convert"),
        f("bcast_wait"),
        f("trailing_update"),
        f("refine"),
        p("refine"),
        p("bcast"),
        p("lookahead"),
        p("generator"),
        p("f64_matrix"),
        // No trailing update ran on rank 0 (one block column, or none of its columns).
        if r.params.get("path").is_none_or(serde_json::Value::is_null) { "none (no trailing update on any rank)".to_string() } else { p("path") },
    );
    out += &path_probe_line(r);
    if r.params.get("what_if").and_then(|v| v.as_bool()) == Some(true) {
        out += &format!(
            "  what-if: {} factorisations (scaling {}) stopped qualifying for the HPL-MxP list in June 2025 (lowest allowed: 16 bits)\n",
            r.precision,
            p("scaling")
        );
    }
    if let Some(why) = &r.failure {
        out += &format!("  FAILED: {why}\n");
    }
    out
}

/// Sets `results.speedup_vs_f64` on every HPL-MxP record that has a valid f64 record of the
/// same n, P and Q among `records`; returns the lines that report them (empty if none).
pub fn apply_speedups(records: &mut [Record]) -> String {
    let key = |r: &Record| (r.params.get("n").cloned(), r.params.get("p").cloned(), r.params.get("q").cloned());
    let baselines: Vec<_> = records.iter().filter(|r| r.kernel == "hpl-mxp" && r.precision == "f64" && r.valid).map(|r| (key(r), r.gflops.median)).collect();
    let mut out = String::new();
    for r in records.iter_mut().filter(|r| r.kernel == "hpl-mxp" && r.precision != "f64" && r.valid) {
        if let Some((_, base)) = baselines.iter().find(|(k, _)| *k == key(r)) {
            let speedup = r.gflops.median / base;
            r.results.insert("speedup_vs_f64".into(), serde_json::json!(speedup));
            out += &format!("Speed-up over f64 (same N, grid; median rates): {} {:.2}x\n", r.precision, speedup);
        }
    }
    out
}

/// The head of the stencil table.
pub fn stencil_header(ranks: usize, threads: usize) -> String {
    format!(
        "Stencils (Jacobi sweeps, fixed boundary planes); {ranks} rank(s) × {threads} thread(s); GB/s by the STREAM convention (docs/methodology.md)\n\
         {:<7} {:<5} {:>15} {:>8} {:>4} {:>9} {:>9} {:>7} {:>7} {:>9} {:>6} {:>9} {:>9} {:>16}  {}\n",
        "kernel", "prec", "grid", "dims", "ovl", "GF/s", "GB/s", "%triad", "%theor", "Mpt/s", "halo%", "maxerr", "rmserr", "checksum", "status"
    )
}

/// One stencil record.
pub fn stencil_row(r: &Record) -> String {
    let res = |k: &str| r.results.get(k).and_then(|v| v.as_f64());
    let arr = |k: &str| r.params.get(k).and_then(|v| v.as_array()).map(|a| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("x")).unwrap_or_default();
    let mut out = format!(
        "{:<7} {:<5} {:>15} {:>8} {:>4} {:>9.2} {:>9.2} {:>7} {:>7} {:>9.1} {:>6.1} {:>9.2e} {:>9.2e} {:>16}  {}\n",
        r.kernel.trim_start_matches("stencil-"),
        r.precision,
        arr("size"),
        arr("dims"),
        if r.params.get("overlap").and_then(|v| v.as_bool()) == Some(true) { "on" } else { "off" },
        r.gflops.median,
        r.bandwidth_gbs.map_or(f64::NAN, |b| b.median),
        opt_pct(r.efficiency.vs_empirical),
        opt_pct(r.efficiency.vs_theoretical),
        r.results.get("mpoints_per_s").and_then(|v| v["median"].as_f64()).unwrap_or(f64::NAN),
        100.0 * res("halo_fraction").unwrap_or(0.0),
        res("rel_error_max_vs_f64").unwrap_or(f64::NAN),
        res("rel_error_rms_vs_f64").unwrap_or(f64::NAN),
        r.checksum.as_deref().unwrap_or("-"),
        if r.valid { "PASSED" } else { "FAILED" }
    );
    if let Some(g) = res("gosa") {
        out += &format!("  gosa after the last sweep: {}\n", exact(g));
    }
    match r.params.get("arithmetic_impl").and_then(|v| v.as_str()) {
        Some("emulated") => out += "  arithmetic: f16, every operation rounded to f16, emulated (f32 operations, rows rounded): the error is f16 arithmetic's, the rate the emulation's\n",
        Some(native) => out += &format!("  arithmetic: f16, every operation rounded to f16 ({native}: vaddph, vmulph)\n"),
        None => {}
    }
    let stores = r.params.get("stores").and_then(|v| v.as_str()).unwrap_or("normal");
    if let Some(probe) = r.results.get("stores_probe_s").filter(|p| !p.is_null()) {
        let t = |k: &str| probe[k].as_f64().unwrap_or(f64::NAN);
        out += &format!("  stores: {stores}, the faster in this run's probe (one exchange-and-sweep: normal {}, streaming {})\n", seconds(t("normal")), seconds(t("streaming")));
    } else if stores != "normal" {
        out += &format!("  stores: {stores}\n");
    }
    if r.results.get("in_cache").and_then(|v| v.as_bool()) == Some(true) {
        out += &format!(
            "  note: the arrays a sweep moves ({:.1} MB per node) fit in the last-level cache ({:.1} MB): this measures the cache, not memory\n",
            res("working_set_bytes_per_node").unwrap_or(0.0) / 1e6,
            res("llc_bytes").unwrap_or(0.0) / 1e6
        );
    }
    out
}

/// Sets `results.halo_hidden` on every overlapped stencil record that has a plain record of
/// the same kernel, precision, size and dims among `records`: 1 − (halo seconds overlapped)
/// / (halo seconds plain), the share of the plain variant's halo time the overlap hides.
/// Returns the lines that report them (empty if none).
pub fn apply_halo_hidden(records: &mut [Record]) -> String {
    let key = |r: &Record| (r.kernel.clone(), r.precision.clone(), r.params.get("size").cloned(), r.params.get("dims").cloned());
    let overlapped = |r: &Record| r.params.get("overlap").and_then(|v| v.as_bool()) == Some(true);
    let halo = |r: &Record| r.results.get("halo_s").and_then(|v| v.as_f64());
    let plain: Vec<_> = records.iter().filter(|r| r.bandwidth_gbs.is_some() && !overlapped(r)).filter_map(|r| Some((key(r), halo(r)?))).collect();
    let mut out = String::new();
    for r in records.iter_mut().filter(|r| r.bandwidth_gbs.is_some() && overlapped(r)) {
        if let (Some((_, base)), Some(h)) = (plain.iter().find(|(k, _)| *k == key(r)), halo(r))
            && *base > 0.0
        {
            let hidden = 1.0 - h / base;
            r.results.insert("halo_hidden".into(), serde_json::json!(hidden));
            out += &format!("Overlap hides {:.0}% of the plain halo time: {} {} ({:.4} s -> {:.4} s per repetition, slowest rank)\n", 100.0 * hidden, r.kernel, r.precision, base, h);
        }
    }
    out
}

/// The network tables, OSU-style: for each pair, size against one-way latency and bandwidth;
/// then allreduce and bcast times (medians; the JSON has min and max too).
pub fn network_table(n: &crate::calibration::Network) -> String {
    let mut out = format!("Network ({})\n", n.convention);
    for p in &n.pingpong {
        let link = if p.same_host { "same host" } else { "across hosts" };
        out += &format!("# ping-pong rank {} ({}) <-> rank {} ({}), {link}\n", p.ranks[0], p.hosts[0], p.ranks[1], p.hosts[1]);
        out += &format!("{:>10} {:>14} {:>16}\n", "# Size (B)", "Latency (us)", "Bandwidth (GB/s)");
        for pt in &p.points {
            out += &format!("{:>10} {:>14.2} {:>16.3}\n", pt.bytes, pt.latency_us.median, pt.bandwidth_gbs.median);
        }
    }
    out += &format!("{:>10} {:>16} {:>16}\n", "# Size (B)", "Allreduce (us)", "Bcast (us)");
    for b in &n.bcast {
        let all = n.allreduce.iter().find(|a| a.bytes == b.bytes).map_or("-".to_string(), |a| format!("{:.2}", a.time_us.median));
        out += &format!("{:>10} {:>16} {:>16.2}\n", b.bytes, all, b.time_us.median);
    }
    out
}

/// A note for a CPU record of FLOPs that ran faster than the measured peak of its arithmetic
/// (the FMA kernel's best rate): that peak was measured on cores that were not all free, so
/// the record's efficiency against it is too high. None otherwise, and for stencils (their
/// efficiency is against the triad, which a sweep in cache may pass) and GPU records.
pub fn above_peak_note(r: &Record, peaks: Option<&Peaks>) -> Option<String> {
    let peaks = peaks.filter(|p| p.gpus.is_none())?;
    let ratio = r.efficiency.vs_empirical.filter(|e| *e > 1.0 && r.bandwidth_gbs.is_none())?;
    let pk = peaks.per_precision.get(&r.precision)?;
    Some(format!(
        "  note: {} {} ran at {ratio:.3} of the measured {} peak ({:.1} GFLOP/s, the FMA kernel's best): the peaks were measured on cores that were not all free, so its efficiency against them is too high; measure them again (`effcal peak --json FILE` on free cores, then --peaks FILE)\n",
        r.kernel, r.precision, pk.compute_precision, pk.empirical_gflops
    ))
}

/// Sets `results.halo_model_s` on every stencil record: its exchanges timed by the network
/// table (`bench::net::halo_model_s`), beside the measured `halo_s`. Returns the lines that
/// report them (empty if none).
pub fn apply_halo_model(records: &mut [Record], net: &crate::calibration::Network) -> String {
    let mut out = String::new();
    for r in records.iter_mut().filter(|r| r.bandwidth_gbs.is_some()) {
        let three = |k: &str| -> Option<[usize; 3]> {
            let v: Vec<usize> = r.params.get(k)?.as_array()?.iter().map(|x| x.as_u64().map(|x| x as usize)).collect::<Option<_>>()?;
            v.try_into().ok()
        };
        let (Some(size), Some(dims)) = (three("size"), three("dims")) else { continue };
        let Some(iters) = r.params.get("iters").and_then(|v| v.as_u64()) else { continue };
        let Ok(precision) = r.precision.parse::<effcal_kernels::Precision>() else { continue };
        // The global grid's interior points move: size includes the two boundary planes.
        let Some(model) = crate::bench::net::halo_model_s(net, size, dims, precision.bytes(), iters as usize) else { continue };
        r.results.insert("halo_model_s".into(), serde_json::json!(model));
        let measured = r.results.get("halo_s").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let overlap = if r.params.get("overlap").and_then(|v| v.as_bool()) == Some(true) { "overlapped: the part not hidden" } else { "plain" };
        out += &format!(
            "Halo model ({} {} {}): {} by the ping-pong table, {} measured ({overlap})\n",
            r.kernel.trim_start_matches("stencil-"),
            r.precision,
            size.map(|x| x.to_string()).join("x"),
            seconds(model),
            seconds(measured)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats(x: f64) -> serde_json::Value {
        json!({ "min": x, "median": x, "max": x })
    }

    fn gpu_record(results: serde_json::Value) -> Record {
        serde_json::from_value(json!({
            "kernel": "gemm", "precision": "f16", "params": { "n": 8192, "path": "cublaslt-21" },
            "flop_convention": "2mnk", "time_s": stats(1e-3), "gflops": stats(1e6),
            "efficiency": { "vs_theoretical": 0.5, "vs_empirical": null }, "accuracy": {}, "valid": true,
            "results": results,
        }))
        .unwrap()
    }

    #[test]
    fn gpu_power_line_says_the_reading_or_why_there_is_none() {
        let r = gpu_record(json!({ "power": {
            "joules": 700.0, "seconds": 1.0, "mean_w": 700.0, "gflops_per_w": 1428.57, "sm_clock_mhz": 1755,
            "throttle": ["sw_power_cap"], "limit_w_per_gpu": 700.0, "gpus": 1 } }));
        assert_eq!(
            gpu_power_line(&r),
            "  power: 700.0 W mean (700.0 J over 1.000 s, all GPUs), 1428.57 GFLOP/s per W; SM clock 1755 MHz; throttled: sw_power_cap; limit 700 W per GPU\n"
        );
        let r = gpu_record(json!({ "power_unavailable": "NVML was not found (on rank 0 or another)" }));
        assert_eq!(gpu_power_line(&r), "  power: not measured: NVML was not found (on rank 0 or another)\n");
        assert_eq!(gpu_power_line(&gpu_record(json!({}))), "");
    }

    #[test]
    fn gpu_peak_table_lists_the_arithmetics_in_order_with_their_source() {
        let peak = |t: Option<f64>, e: f64, isa: &str| {
            json!({ "compute_precision": "x", "theoretical_gflops": t, "flop_per_cycle_per_core": null,
                    "flop_per_cycle_source": "spec", "empirical_gflops": e, "empirical": stats(e), "isa": isa })
        };
        let mut p: Peaks = serde_json::from_value(json!({
            "clock_ghz": null, "clock_source": "spec: the datasheet's boost clock", "cores": 0, "gpus": 1,
            "per_precision": { "int8": peak(Some(1979e3), 1500e3, "gemm"), "f64_fma": peak(Some(33.5e3), 30e3, "fma"),
                               "f16": peak(Some(989e3), 100e3, "gemm") },
            "stream_triad_gbs": null, "stream_triad": null,
        }))
        .unwrap();
        p.guard();
        let t = gpu_peaks_table(&p);
        let rows: Vec<&str> = t.lines().skip(2).map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(rows[..3], ["f64_fma", "f16", "int8"], "{t}");
        assert!(t.starts_with("Peaks for 1 GPU(s). Theoretical = the vendor's dense figure × GPUs"), "{t}");
        assert!(t.contains("(GOP/s)") && t.contains("SUSPECT") && t.contains("WARNING: the f16 theoretical peak is suspect"), "{t}");
    }

    #[test]
    fn a_record_above_the_measured_peak_gets_a_note() {
        let peaks = |gpus: Option<usize>| -> Peaks {
            serde_json::from_value(json!({
                "clock_ghz": 3.5, "clock_source": "measured", "cores": 2, "gpus": gpus,
                "per_precision": { "e4m3": { "compute_precision": "bf16", "theoretical_gflops": 448.0, "flop_per_cycle_per_core": 64.0,
                    "flop_per_cycle_source": "table", "empirical_gflops": 300.0, "empirical": stats(300.0), "isa": "avx512bf16 (bf16)" } },
                "stream_triad_gbs": null, "stream_triad": null,
            }))
            .unwrap()
        };
        let mut r = gpu_record(json!({}));
        r.precision = "e4m3".into();
        r.efficiency.vs_empirical = Some(1.05);
        let note = above_peak_note(&r, Some(&peaks(None))).expect("a note");
        assert!(note.starts_with("  note: gemm e4m3 ran at 1.050 of the measured bf16 peak (300.0 GFLOP/s, the FMA kernel's best): the peaks were measured on cores that were not all free"), "{note}");
        assert_eq!(above_peak_note(&r, Some(&peaks(Some(1)))), None, "GPU records");
        assert_eq!(above_peak_note(&r, None), None, "no peaks");
        r.efficiency.vs_empirical = Some(0.99);
        assert_eq!(above_peak_note(&r, Some(&peaks(None))), None, "below the peak");
        r.efficiency.vs_empirical = Some(1.5);
        r.bandwidth_gbs = Some(r.gflops);
        assert_eq!(above_peak_note(&r, Some(&peaks(None))), None, "stencils: against the triad");
    }
}
