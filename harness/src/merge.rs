//! `effcal merge`: many calibrations (jobs of different node or rank counts, precisions)
//! into one document, with the parallel efficiency of every series a kernel forms across
//! them.
//!
//! A series is the records of one kernel and precision whose problem is the same apart from
//! the resources (ranks × threads per rank): the same global problem (strong scaling:
//! HPL-MxP's n, a stencil's grid) or the same problem per rank (weak scaling: GEMM, which
//! every rank runs on its own matrices, and stencils whose grid per rank is the same).
//! Rates are aggregate, so in both cases the parallel efficiency at resources c is
//! (R_c / R_b) / (c / b), b the smallest resources of the series and R the median rate
//! (the median over records where several share the same resources).

use crate::error::{Error, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Parameters that change with the resources, not the problem.
const RESOURCE_PARAMS: [&str; 6] = ["ranks", "threads_per_rank", "dims", "p", "q", "pmap"];

/// One point of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub ranks: u64,
    pub threads_per_rank: u64,
    pub gflops: f64,
    /// Indices of the source documents the rate comes from.
    pub sources: Vec<usize>,
}

impl Point {
    pub fn resources(&self) -> u64 {
        self.ranks * self.threads_per_rank
    }
}

/// A scaling series and its efficiencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub kernel: String,
    pub precision: String,
    /// "strong" or "weak".
    pub kind: &'static str,
    /// The problem: the record's parameters without those of the resources.
    pub problem: Map<String, Value>,
    pub points: Vec<Point>,
}

impl Series {
    /// (speed-up over the smallest resources, parallel efficiency) of each point.
    pub fn efficiencies(&self) -> Vec<(f64, f64)> {
        let base = &self.points[0];
        self.points
            .iter()
            .map(|p| {
                let speedup = p.gflops / base.gflops;
                (speedup, speedup / (p.resources() as f64 / base.resources() as f64))
            })
            .collect()
    }
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config { file: path.display().to_string(), message: format!("not a calibration JSON: {e}") })
}

/// What makes two documents the same system: CPU model and cores per node.
fn system_of(doc: &Value) -> String {
    format!("{} with {} cores per node", doc["system"]["cpu_model"].as_str().unwrap_or("?"), doc["system"]["cores_per_node"])
}

/// The series keys a record belongs to: (kind, problem).
fn series_keys(record: &Value) -> Vec<(&'static str, Map<String, Value>)> {
    let kernel = record["kernel"].as_str().unwrap_or("");
    let Some(params) = record["params"].as_object() else { return Vec::new() };
    let mut problem = params.clone();
    for p in RESOURCE_PARAMS {
        problem.remove(p);
    }
    // How the run went about it, not the problem: the path (and its arithmetic) a probe or
    // the CPU chose, the blocking that path ran with, the stores auto chose.
    for how in ["path", "arithmetic", "blocking", "stores"] {
        problem.remove(how);
    }
    if kernel == "gemm" {
        // Every rank multiplies its own matrices: the problem per rank is fixed.
        return vec![("weak", problem)];
    }
    let mut keys = vec![("strong", problem.clone())];
    if kernel.starts_with("stencil") || kernel == "himeno" {
        // The same block per rank is a weak-scaling series.
        let (size, dims) = (params.get("size").and_then(Value::as_array), params.get("dims").and_then(Value::as_array));
        if let (Some(size), Some(dims)) = (size, dims) {
            let per: Option<Vec<u64>> = size
                .iter()
                .zip(dims)
                .map(|(s, d)| {
                    let (s, d) = (s.as_u64()?, d.as_u64()?);
                    (d > 0 && s % d == 0).then(|| s / d)
                })
                .collect();
            if let Some(per) = per {
                let mut weak = problem;
                weak.remove("size");
                weak.insert("size_per_rank".into(), json!(per));
                keys.push(("weak", weak));
            }
        }
    }
    keys
}

/// A series being gathered: (kernel, precision, kind, problem as text) → the problem, and
/// for each (resources, ranks) the (rate, source document) of every record.
type Groups = BTreeMap<(String, String, &'static str, String), (Map<String, Value>, BTreeMap<(u64, u64), Vec<(f64, usize)>>)>;

/// The scaling series the records form: those with at least two different resources.
pub fn series(docs: &[Value]) -> Vec<Series> {
    let mut groups = Groups::new();
    for (d, doc) in docs.iter().enumerate() {
        for r in doc["records"].as_array().into_iter().flatten() {
            if r["valid"] != Value::Bool(true) {
                continue;
            }
            let (Some(rate), Some(ranks)) = (r["gflops"]["median"].as_f64(), r["params"]["ranks"].as_u64()) else { continue };
            let threads = r["params"]["threads_per_rank"].as_u64().unwrap_or(1);
            for (kind, problem) in series_keys(r) {
                let key = (r["kernel"].as_str().unwrap_or("").to_string(), r["precision"].as_str().unwrap_or("").to_string(), kind, Value::Object(problem.clone()).to_string());
                let entry = groups.entry(key).or_insert_with(|| (problem, BTreeMap::new()));
                entry.1.entry((ranks * threads, ranks)).or_default().push((rate, d));
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, (_, points))| points.keys().map(|k| k.0).collect::<std::collections::BTreeSet<_>>().len() >= 2)
        .map(|((kernel, precision, kind, _), (problem, points))| Series {
            kernel,
            precision,
            kind,
            problem,
            points: points
                .into_iter()
                .map(|((res, ranks), rates)| {
                    let v: Vec<f64> = rates.iter().map(|x| x.0).collect();
                    let mut sources: Vec<usize> = rates.iter().map(|x| x.1).collect();
                    sources.dedup();
                    Point { ranks, threads_per_rank: res / ranks, gflops: crate::timing::Stats::of(&v).median, sources }
                })
                .collect(),
        })
        .collect()
}

/// Merges `files` into `out`; returns the table printed for them. Refuses documents of
/// different schema versions or systems unless `force`.
pub fn merge(files: &[PathBuf], out: &Path, force: bool) -> Result<String> {
    if files.len() < 2 {
        return Err(Error::invalid("FILES", files.len(), "at least two calibration files"));
    }
    let docs: Vec<Value> = files.iter().map(|f| read(f)).collect::<Result<_>>()?;
    // One run in twice would count its records twice: a run is its creation time and command.
    let run = |d: &Value| (d["created"].clone(), d["command"].clone());
    for (b, (fb, db)) in files.iter().zip(&docs).enumerate() {
        if let Some(fa) = files.iter().zip(&docs).take(b).find(|(_, da)| run(da) == run(db)).map(|(f, _)| f) {
            return Err(Error::invalid("FILES", fb.display(), format!("calibrations of different runs: {} is the same run as {} (created {}, command {})", fb.display(), fa.display(), db["created"], db["command"])));
        }
    }
    let (v0, s0) = (&docs[0]["schema_version"], system_of(&docs[0]));
    for (f, d) in files.iter().zip(&docs).skip(1) {
        if &d["schema_version"] != v0 && !force {
            return Err(Error::invalid("FILES", f.display(), format!("documents of one schema version: {} has {}, {} has {} (--force merges them anyway)", files[0].display(), v0, f.display(), d["schema_version"])));
        }
        if system_of(d) != s0 && !force {
            return Err(Error::invalid("FILES", f.display(), format!("documents of one system: {} is {s0}, {} is {} (--force merges them anyway)", files[0].display(), f.display(), system_of(d))));
        }
    }
    let series = series(&docs);
    let sources: Vec<Value> = files
        .iter()
        .zip(&docs)
        .map(|(f, d)| {
            json!({
                "file": f.display().to_string(),
                "schema_version": d["schema_version"],
                "created": d["created"],
                "command": d["command"],
                "hosts": d["system"]["hosts"],
                "ranks": d["system"]["ranks"],
                "threads_per_rank": d["system"]["threads_per_rank"],
                "system": system_of(d),
            })
        })
        .collect();
    let records: Vec<Value> = docs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| d["records"].as_array().cloned().unwrap_or_default().into_iter().map(move |r| json!({ "source": i, "record": r })))
        .collect();
    let scaling: Vec<Value> = series
        .iter()
        .map(|s| {
            let points: Vec<Value> = s
                .points
                .iter()
                .zip(s.efficiencies())
                .map(|(p, (speedup, eff))| json!({ "ranks": p.ranks, "threads_per_rank": p.threads_per_rank, "gflops": p.gflops, "speedup": speedup, "parallel_efficiency": eff, "sources": p.sources }))
                .collect();
            json!({ "kernel": s.kernel, "precision": s.precision, "series": s.kind, "problem": s.problem, "points": points })
        })
        .collect();
    let doc = json!({
        "merged": true,
        // The version this effcal writes, whatever the inputs' (--force may mix them).
        "schema_version": crate::calibration::SCHEMA_VERSION,
        "created": crate::calibration::now_rfc3339(),
        "efficiency_convention": "parallel efficiency = (R_c / R_b) / (c / b): R the median aggregate GFLOP/s, c the resources (ranks × threads per rank), b the smallest resources of the series",
        "sources": sources,
        "records": records,
        "scaling": scaling,
    });
    crate::calibration::write_atomic(out, &doc)?;
    let mut t = format!("Merged {} calibrations ({} records) into {}\n", files.len(), doc["records"].as_array().map_or(0, Vec::len), out.display());
    t += "Parallel efficiency = (R_c / R_b) / (c / b), c = ranks × threads, b the smallest of the series\n";
    t += &format!("{:<14} {:<6} {:<7} {:>6} {:>8} {:>10} {:>8} {:>7}  problem\n", "kernel", "prec", "series", "ranks", "threads", "GF/s", "speedup", "eff %");
    for s in &series {
        let problem: Vec<String> = s.problem.iter().filter(|(k, _)| ["n", "size", "size_per_rank", "m", "k", "nb", "iters"].contains(&k.as_str())).map(|(k, v)| format!("{k}={v}")).collect();
        for (p, (speedup, eff)) in s.points.iter().zip(s.efficiencies()) {
            t += &format!("{:<14} {:<6} {:<7} {:>6} {:>8} {:>10.2} {:>8.2} {:>7.1}  {}\n", s.kernel, s.precision, s.kind, p.ranks, p.threads_per_rank, p.gflops, speedup, 100.0 * eff, problem.join(" "));
        }
    }
    if series.is_empty() {
        t += "(no series: no kernel ran with the same problem on different resources)\n";
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ranks: u64, records: Vec<Value>) -> Value {
        json!({ "schema_version": 2, "system": { "cpu_model": "X", "cores_per_node": 2, "ranks": ranks }, "records": records })
    }

    fn rec(kernel: &str, ranks: u64, gflops: f64, extra: Value) -> Value {
        let mut params = json!({ "ranks": ranks, "threads_per_rank": 1 });
        params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "kernel": kernel, "precision": "f64", "params": params, "gflops": { "min": gflops, "median": gflops, "max": gflops }, "valid": true })
    }

    #[test]
    fn series_and_efficiencies_by_hand() {
        let one = doc(1, vec![rec("gemm", 1, 50.0, json!({"n": 512})), rec("hpl-mxp", 1, 40.0, json!({"n": 1000, "p": 1, "q": 1, "path": "faer", "blocking": null})), rec("stencil-7pt", 1, 10.0, json!({"size": [64, 32, 32], "dims": [1, 1, 1]}))]);
        let two = doc(2, vec![rec("gemm", 2, 90.0, json!({"n": 512})), rec("hpl-mxp", 2, 70.0, json!({"n": 1000, "p": 1, "q": 2, "path": "avx512-f64", "blocking": {"kc": 1024, "mc": 144, "nc": 4096}})), rec("stencil-7pt", 2, 19.0, json!({"size": [128, 32, 32], "dims": [2, 1, 1]}))]);
        let s = series(&[one, two]);
        let find = |k: &str, kind: &str| s.iter().find(|x| x.kernel == k && x.kind == kind).unwrap_or_else(|| panic!("no {kind} {k} in {s:?}"));
        // GEMM: weak, 90 / (2 × 50) = 0.9.
        assert_eq!(find("gemm", "weak").efficiencies()[1], (1.8, 0.9));
        // HPL-MxP: strong, same n, grids differ (and the probe's path with its blocking, an
        // outcome, not the problem): 70 / 40 / 2 = 0.875.
        assert_eq!(find("hpl-mxp", "strong").efficiencies()[1], (1.75, 0.875));
        // The stencil's block per rank is 64×32×32 in both: weak, 19 / 20 = 0.95; no strong series.
        assert_eq!(find("stencil-7pt", "weak").efficiencies()[1], (1.9, 0.95));
        assert!(!s.iter().any(|x| x.kernel == "stencil-7pt" && x.kind == "strong"));
    }
}
