//! Correcting a calibration afterwards: `effcal estimate --system FILE` and `effcal report
//! --system FILE` recompute the theoretical peaks from a system description's clock,
//! FLOP/cycle and memory bandwidth, and every efficiency from the records' raw rates (which
//! a calibration always keeps), then run the guard again. The file on disk is not changed;
//! the peaks say what was done (`peaks.corrected`).

use crate::config::Checked;
use crate::error::{Error, Result};
use crate::calibration::{Calibration, Efficiency};
use effcal_kernels::Precision;

/// Recomputes `cal`'s peaks with the `[system]` of `described` and every efficiency with
/// them; returns the sentence that says what changed (also kept in `peaks.corrected`).
pub fn with_system(cal: &mut Calibration, described: &Checked) -> Result<String> {
    let sys = &described.plan.system;
    let Some(peaks) = cal.peaks.as_mut() else {
        return Err(Error::invalid("--system", &described.file, "a calibration with peaks to correct (this one has none)"));
    };
    let cite = |key: &str| match sys.sources.get(key) {
        Some(s) => format!("config: {s} (--system {})", described.file),
        None => format!("config (--system {})", described.file),
    };
    let mut changed = Vec::new();
    if let Some(c) = sys.clock_ghz {
        changed.push(format!("clock {c} GHz (was {}, {})", peaks.clock_ghz.map_or("unknown".into(), |o| format!("{o:.3}")), peaks.clock_source));
        peaks.clock_ghz = Some(c);
        peaks.clock_source = cite("clock_ghz");
    }
    for (name, pk) in peaks.per_precision.iter_mut() {
        let figure = crate::bench::peak::configured_figure(&described.flop_per_cycle, name, &pk.compute_precision);
        if let Some(f) = figure {
            changed.push(format!("{name} {f} FLOP/cycle/core (was {})", pk.flop_per_cycle_per_core.map_or("unknown".into(), |o| o.to_string())));
            pk.flop_per_cycle_per_core = Some(f);
            pk.flop_per_cycle_source = cite("flop_per_cycle");
        }
        pk.theoretical_gflops = pk.flop_per_cycle_per_core.zip(peaks.clock_ghz).map(|(f, c)| peaks.cores as f64 * c * f);
    }
    if let Some(b) = sys.memory_bandwidth_gbs {
        let nodes = cal.system.hosts.len().max(1);
        changed.push(format!("memory bandwidth {b} GB/s per node × {nodes} node(s)"));
        peaks.memory_bandwidth_gbs = Some(b * nodes as f64);
        peaks.memory_bandwidth_source = Some(format!("{b} GB/s per node × {nodes} node(s); {}", cite("memory_bandwidth_gbs")));
    }
    if changed.is_empty() {
        return Err(Error::invalid("--system", &described.file, "a [system] with clock_ghz, flop_per_cycle or memory_bandwidth_gbs to correct the peaks with"));
    }
    peaks.guard();
    for r in cal.records.iter_mut() {
        if let Some(bw) = &r.bandwidth_gbs {
            // Stencils: against memory bandwidth (the triad part does not change).
            r.efficiency.vs_theoretical = peaks.memory_bandwidth_gbs.map(|b| bw.median / b);
            continue;
        }
        let Ok(p) = r.precision.parse::<Precision>() else { continue };
        r.efficiency = Efficiency::of(r.gflops.median, Some(peaks), p);
        let lu = r.results.get("lu_gflops").and_then(|v| v.get("median")).and_then(serde_json::Value::as_f64);
        if let Some(lu) = lu {
            r.results.insert("lu_efficiency".into(), serde_json::to_value(Efficiency::of(lu, Some(peaks), p))?);
        }
    }
    let note = format!("peaks recomputed after the run from {}: {}; every efficiency recomputed from the records' rates", described.file, changed.join(", "));
    peaks.corrected = Some(note.clone());
    Ok(note)
}
