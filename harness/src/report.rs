//! `effcal report`: a calibration as a Markdown page (provenance, peaks, every record with
//! its efficiency and accuracy) beside its roofline picture (SVG and PNG).

use crate::error::{Error, Result};
use crate::calibration::Calibration;
use crate::roofline::{self, Roofline};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Writes report.md, roofline.svg and roofline.png under `dir`; returns their paths.
pub fn write(cal: &Calibration, cal_path: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let picture = Roofline::from_calibration(cal);
    let svg = picture.svg()?;
    let (md, svg_path, png_path) = (dir.join("report.md"), dir.join("roofline.svg"), dir.join("roofline.png"));
    std::fs::write(&svg_path, &svg).map_err(|e| Error::io(format!("writing {}", svg_path.display()), e))?;
    roofline::write_png(&svg, &png_path)?;
    std::fs::write(&md, markdown(cal, cal_path)).map_err(|e| Error::io(format!("writing {}", md.display()), e))?;
    Ok(vec![md, svg_path, png_path])
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), crate::estimate::pct)
}

/// The Markdown page.
pub fn markdown(cal: &Calibration, cal_path: &str) -> String {
    let sys = &cal.system;
    let mut s = String::new();
    let _ = writeln!(s, "# effcal report: {} ({})\n", sys.cpu_model, cal.created);
    let _ = writeln!(s, "Calibration `{cal_path}`, effcal {}, schema {}.\n", cal.effcal_version, cal.schema_version);
    let _ = writeln!(s, "- command: `{}`", cal.command);
    let _ = writeln!(s, "- {} rank(s) × {} thread(s) on {} ({} cores per node, {} NUMA node(s)); {}", sys.ranks, sys.threads_per_rank, sys.hosts.join(", "), sys.cores_per_node, sys.numa_nodes, sys.mpi_library);
    let binds: Vec<String> = sys.bindings.iter().map(|b| format!("rank {} on {} cpus {}", b.rank, b.host, b.cpus)).collect();
    let _ = writeln!(s, "- binding: {}", binds.join("; "));
    if let Some(d) = &sys.description {
        let _ = writeln!(s, "- system description: {}", d.name.as_deref().unwrap_or("(unnamed)"));
    }
    if let Some(p) = &cal.peaks {
        let _ = writeln!(s, "\n## Peaks ({} cores, clock {})\n", p.cores, p.clock_ghz.map_or("unknown".into(), |c| format!("{c:.3} GHz, {}", p.clock_source)));
        if let Some(note) = &p.corrected {
            let _ = writeln!(s, "**Corrected:** {note}.\n");
        }
        if let Some(m) = &p.microarch {
            let _ = writeln!(s, "CPU {}: {}.\n", m.cpu, m.entry.as_ref().map_or("not in the microarchitecture table".into(), |e| format!("table entry {e}")));
        }
        let _ = writeln!(s, "| precision | computed in | theoretical GFLOP/s | measured GFLOP/s (FMA kernel, best) | measured / theoretical | guard | FLOP/cycle/core source |\n|---|---|---|---|---|---|---|");
        for (name, pk) in &p.per_precision {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {:.1} | {} | {} | {} |",
                pk.compute_precision,
                pk.theoretical_gflops.map_or("–".into(), |t| format!("{t:.1}")),
                pk.empirical_gflops,
                pk.empirical_over_theoretical.map_or("–".into(), |r| format!("{r:.3}")),
                match (&pk.suspect, pk.empirical_over_theoretical) {
                    (Some(_), _) => "SUSPECT",
                    (None, Some(_)) => "passed",
                    (None, None) => "–",
                },
                pk.flop_per_cycle_source
            );
        }
        for (name, why) in p.suspects() {
            let _ = writeln!(s, "\n**Warning:** the {name} theoretical peak is suspect: {why}. Efficiencies against it are not to be trusted; correct it with `--system FILE`.");
        }
        if let Some(t) = &p.stream_triad {
            let _ = writeln!(s, "\nSTREAM triad: {:.1} / {:.1} / {:.1} GB/s (min / median / max), {} f64 per array per rank.", t.gbs.min, t.gbs.median, t.gbs.max, t.elements_per_rank);
        }
        if let Some(b) = p.memory_bandwidth_gbs {
            let _ = writeln!(s, "Memory bandwidth, theoretical: {b:.1} GB/s ({}).", p.memory_bandwidth_source.as_deref().unwrap_or("config"));
        }
    }
    let _ = writeln!(s, "\n## Results\n");
    let _ = writeln!(s, "| kernel | precision | problem | GFLOP/s median (min–max) | vs theoretical | vs measured peak | GB/s | accuracy | result |\n|---|---|---|---|---|---|---|---|---|");
    for r in &cal.records {
        let num = |k: &str| r.params.get(k).map(|v| v.to_string()).unwrap_or_default();
        let problem = match r.kernel.as_str() {
            "gemm" => format!("n={}", num("n")),
            "hpl-mxp" => format!("n={} nb={} {}×{}", num("n"), num("nb"), num("p"), num("q")),
            _ => num("size").replace(',', "×").trim_matches(|c| c == '[' || c == ']').to_string(),
        };
        let a = &r.accuracy;
        let accuracy = if let Some(res) = a.scaled_residual {
            format!("residual {res:.2e}, {} iterations", a.iterations.unwrap_or(0))
        } else if let Some(e) = a.rel_error_vs_f64 {
            format!("error vs f64 {e:.1e}")
        } else if let Some(e) = r.results.get("rel_error_max_vs_f64").and_then(|v| v.as_f64()) {
            format!("max error vs f64 {e:.1e}")
        } else {
            "–".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {problem} | {:.2} ({:.2}–{:.2}) | {} | {} | {} | {accuracy} | {} |",
            r.kernel,
            r.precision,
            r.gflops.median,
            r.gflops.min,
            r.gflops.max,
            pct(r.efficiency.vs_theoretical),
            pct(r.efficiency.vs_empirical),
            r.bandwidth_gbs.as_ref().map_or("–".into(), |b| format!("{:.1}", b.median)),
            if r.valid { "PASSED" } else { "FAILED" }
        );
    }
    let _ = writeln!(s, "\n## Roofline\n\n![Roofline](roofline.svg)\n\n(PNG: [roofline.png](roofline.png).)\n");
    let _ = writeln!(
        s,
        "Conventions. FLOPs: GEMM 2mnk per rank; HPL-MxP 2/3·n³ + 3/2·n²; stencils per updated point (7-point 8, Himeno 34, 27-point 2 per neighbour). Rates are aggregates over ranks, \
         the time of a repetition the slowest rank's. Stencil GB/s follow the STREAM convention (the bytes a sweep must move with perfect reuse). Arithmetic intensity in the picture \
         is FLOPs over minimal traffic: GEMM reads A and B in storage and writes C in the accumulation format once; HPL-MxP reads and writes its working matrix once; stencils use \
         their GB/s. Efficiencies are against the peaks above (vs theoretical; vs measured: the FMA kernel's best rate, or the triad for stencils)."
    );
    s
}
