//! `effcal slurm`: batch scripts rendered from a plan's `[job]` section, one per node count,
//! each running the plan on its allocation. They are the hand-written slurm/effcal.sbatch
//! and slurm/fugaku.pjm with the allocation filled in, submitted from the project's root as
//! they are. Each writes results/<name>-<N>n.json and runs with --resume, so a job killed at
//! its time limit and submitted again measures only what the first one did not finish.

use crate::config::{Checked, JobSection};
use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Writes the scripts of `plan` (read from `plan_path`) under `dir`; returns their paths.
pub fn render(plan: &Checked, plan_path: &Path, dir: &Path, pjm: bool) -> Result<Vec<PathBuf>> {
    let err = |message: String| Error::Config { file: plan.file.clone(), message };
    let job = plan.plan.job.as_ref().ok_or_else(|| err("no [job] section: effcal slurm needs one (keys: name, nodes, ranks_per_node, gpus_per_node, time, partition, account, mpi, rscgrp)".into()))?;
    let threads = plan.plan.run.threads.ok_or_else(|| err("run.threads is missing: effcal slurm needs the threads per rank (allowed: 1..=4096)".into()))?;
    let gpus = job.gpus(plan.plan.run.gpu());
    if pjm && gpus.is_some() {
        return Err(err("run.device = \"gpu\" with --pjm: allowed: sbatch scripts (effcal slurm without --pjm) for GPU plans".into()));
    }
    if pjm && job.rscgrp.is_none() {
        return Err(err("job.rscgrp is missing: a PJM script needs the resource group (e.g. \"small\")".into()));
    }
    let plan_arg = plan_path.display().to_string();
    if plan_arg.chars().any(|c| c.is_whitespace() || "'\"$`\\".contains(c)) {
        return Err(Error::invalid("--config", plan_arg, "a path without spaces, quotes, '$', '`' or '\\' (the scripts name it)"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut written = Vec::new();
    for &nodes in &job.nodes {
        let (text, ext) = if pjm { (pjm_script(job, nodes, threads, &plan_arg), "pjm") } else { (sbatch_script(job, nodes, threads, gpus, &plan_arg), "sbatch") };
        let path = dir.join(format!("{}-{nodes}n.{ext}", job.name));
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

/// The part of a script that finds the binary and the plan and names the output.
fn body(job: &JobSection, nodes: usize, threads: usize, plan: &str, launcher: &str, job_id: &str) -> String {
    let stem = format!("{}-{nodes}n", job.name);
    let mut s = String::new();
    let _ = writeln!(s, "bin=${{EFFCAL_BIN:-target/release/effcal}}");
    let _ = writeln!(s, "plan={plan}");
    let _ = writeln!(s, "out=${{EFFCAL_OUT:-results/{stem}.json}}");
    let _ = writeln!(s, "[ -x \"$bin\" ] || {{ echo \"{stem}: no binary at $bin: build it on a compute node (bash scripts/build.sh) or set EFFCAL_BIN\" >&2; exit 2; }}");
    let _ = writeln!(s, "[ -f \"$plan\" ] || {{ echo \"{stem}: no run plan at $plan: submit from the project's root\" >&2; exit 2; }}");
    let _ = writeln!(s, "mkdir -p \"$(dirname \"$out\")\"");
    let _ = writeln!(s, "echo \"{stem}: job {job_id}, $(date -u +%FT%TZ), writing $out\"");
    let _ = writeln!(s);
    let _ = writeln!(s, "export OMP_NUM_THREADS={threads}");
    let _ = writeln!(s, "# --resume: records already in $out (a job killed at its limit) are kept, not re-measured.");
    let _ = writeln!(s, "{launcher} \\\n    \"$bin\" --threads {threads} run --config \"$plan\" --out \"$out\" --resume");
    s
}

fn header_comment(job: &JobSection, nodes: usize, threads: usize, gpus: Option<usize>, plan: &str, submit: &str) -> String {
    format!(
        "#!/bin/bash\n\
         # Rendered by `effcal slurm` from {plan} ([job] and run.threads): {name} on {nodes} node(s),\n\
         # {r} rank(s) per node{each} × {threads} thread(s). Submit from the project's root, as it is:\n\
         #     {submit}\n\
         # Environment (optional): EFFCAL_BIN (default target/release/effcal), EFFCAL_OUT.\n\
         # Merge the node counts afterwards: effcal merge results/{name}-*n.json --out results/{name}.json\n",
        name = job.name,
        r = job.ranks_per_node,
        each = if gpus.is_some() { " (one GPU each)" } else { "" }
    )
}

/// `gpus`: a GPU plan's GPUs per node (one per rank), asked for with --gpus-per-node; srun
/// hands every task the node's GPUs and effcal gives each rank its own (its place on the
/// node), or the one a site's binding leaves it.
fn sbatch_script(job: &JobSection, nodes: usize, threads: usize, gpus: Option<usize>, plan: &str) -> String {
    let stem = format!("{}-{nodes}n", job.name);
    let mut s = header_comment(job, nodes, threads, gpus, plan, &format!("sbatch <this file>   (e.g. sbatch slurm/generated/{stem}.sbatch)"));
    let _ = writeln!(s, "#SBATCH --job-name={stem}");
    let _ = writeln!(s, "#SBATCH --nodes={nodes}");
    let _ = writeln!(s, "#SBATCH --ntasks-per-node={}", job.ranks_per_node);
    if let Some(g) = gpus {
        let _ = writeln!(s, "#SBATCH --gpus-per-node={g}");
    }
    let _ = writeln!(s, "#SBATCH --cpus-per-task={threads}");
    let _ = writeln!(s, "#SBATCH --hint=nomultithread");
    let _ = writeln!(s, "#SBATCH --exclusive");
    let _ = writeln!(s, "#SBATCH --time={}", job.time);
    if let Some(p) = &job.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(a) = &job.account {
        let _ = writeln!(s, "#SBATCH --account={a}");
    }
    let _ = writeln!(s, "#SBATCH --output={stem}-%j.out");
    let _ = writeln!(s, "set -euo pipefail\ncd \"${{SLURM_SUBMIT_DIR:-.}}\"\n");
    // Slurm >= 22.05 does not pass --cpus-per-task from sbatch to srun: given explicitly.
    let launcher = format!("srun --cpus-per-task={threads} --hint=nomultithread --mpi={}", job.mpi);
    s + &body(job, nodes, threads, plan, &launcher, "${SLURM_JOB_ID:-local}")
}

fn pjm_script(job: &JobSection, nodes: usize, threads: usize, plan: &str) -> String {
    let stem = format!("{}-{nodes}n", job.name);
    let mut s = header_comment(job, nodes, threads, None, plan, &format!("pjsub <this file>   (e.g. pjsub slurm/generated/{stem}.pjm)"));
    let _ = writeln!(s, "#PJM -N {stem}");
    let _ = writeln!(s, "#PJM -L \"node={nodes}\"");
    let _ = writeln!(s, "#PJM -L \"rscgrp={}\"", job.rscgrp.as_deref().expect("checked by render"));
    let _ = writeln!(s, "#PJM -L \"elapse={}\"", job.time);
    let _ = writeln!(s, "#PJM --mpi \"proc={}\"", nodes * job.ranks_per_node);
    let _ = writeln!(s, "#PJM --mpi \"max-proc-per-node={}\"", job.ranks_per_node);
    if let Some(a) = &job.account {
        let _ = writeln!(s, "#PJM -g {a}");
    }
    let _ = writeln!(s, "#PJM -x PJM_LLIO_GFSCACHE=/vol0004");
    let _ = writeln!(s, "#PJM -s");
    let _ = writeln!(s, "set -euo pipefail\ncd \"${{PJM_O_WORKDIR:-.}}\"\nmkdir -p \"results/pjm-${{PJM_JOBID:-local}}\"\n");
    // Each rank's stdout and stderr in its own file (rank 0's holds the tables).
    let launcher = "mpiexec -of-proc \"results/pjm-${PJM_JOBID:-local}/rank\"".to_string();
    s + &body(job, nodes, threads, plan, &launcher, "${PJM_JOBID:-local}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Plan;

    const PLAN: &str = "[run]\nthreads = 12\n[job]\nname = \"sweep\"\nnodes = [1, 4]\nranks_per_node = 4\ntime = \"01:00:00\"\npartition = \"batch\"\nrscgrp = \"small\"\n";

    #[test]
    fn one_script_per_node_count_with_the_allocation_filled_in() {
        let dir = std::env::temp_dir().join(format!("effcal-slurm-{}", std::process::id()));
        let plan = Plan::parse(PLAN, "p.toml").unwrap();
        let paths = render(&plan, Path::new("configs/p.toml"), &dir, false).unwrap();
        assert_eq!(paths, vec![dir.join("sweep-1n.sbatch"), dir.join("sweep-4n.sbatch")]);
        let s = std::fs::read_to_string(&paths[1]).unwrap();
        for line in ["#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=12", "#SBATCH --time=01:00:00", "#SBATCH --partition=batch", "#SBATCH --hint=nomultithread"] {
            assert!(s.lines().any(|l| l == line), "no '{line}' in\n{s}");
        }
        assert!(s.contains("srun --cpus-per-task=12 --hint=nomultithread --mpi=pmix"), "{s}");
        assert!(s.contains("--threads 12 run --config \"$plan\" --out \"$out\" --resume") && s.contains("plan=configs/p.toml"), "{s}");
        assert!(!s.contains("--account"), "{s}");
        let p = render(&plan, Path::new("configs/p.toml"), &dir, true).unwrap();
        let s = std::fs::read_to_string(&p[1]).unwrap();
        for line in ["#PJM -L \"node=4\"", "#PJM -L \"rscgrp=small\"", "#PJM -L \"elapse=01:00:00\"", "#PJM --mpi \"proc=16\"", "#PJM --mpi \"max-proc-per-node=4\""] {
            assert!(s.lines().any(|l| l == line), "no '{line}' in\n{s}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_gpu_plan_asks_for_one_gpu_per_rank() {
        let dir = std::env::temp_dir().join(format!("effcal-slurm-gpu-{}", std::process::id()));
        let gpu = "[run]\nthreads = 8\ndevice = \"gpu\"\n[job]\nname = \"g\"\nnodes = [2]\nranks_per_node = 4\n";
        let plan = Plan::parse(gpu, "g.toml").unwrap();
        let paths = render(&plan, Path::new("configs/g.toml"), &dir, false).unwrap();
        let s = std::fs::read_to_string(&paths[0]).unwrap();
        for line in ["#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=8"] {
            assert!(s.lines().any(|l| l == line), "no '{line}' in\n{s}");
        }
        assert!(s.contains("4 rank(s) per node (one GPU each) × 8 thread(s)"), "{s}");
        // A CPU plan asks for none.
        let cpu = Plan::parse(PLAN, "p.toml").unwrap();
        let s = std::fs::read_to_string(&render(&cpu, Path::new("configs/p.toml"), &dir, false).unwrap()[0]).unwrap();
        assert!(!s.contains("gpus"), "{s}");
        let e = render(&Plan::parse(&format!("{gpu}rscgrp = \"small\"\n"), "g.toml").unwrap(), Path::new("g.toml"), &dir, true).unwrap_err().to_string();
        assert_eq!(e, "config g.toml: run.device = \"gpu\" with --pjm: allowed: sbatch scripts (effcal slurm without --pjm) for GPU plans");
        let e = Plan::parse(&format!("{gpu}gpus_per_node = 8\n"), "g.toml").unwrap_err().to_string();
        assert_eq!(e, "config g.toml: job.gpus_per_node = 8 with job.ranks_per_node = 4: a GPU plan runs one rank per GPU; allowed: the same number for both");
        let e = Plan::parse(&format!("{PLAN}gpus_per_node = 4\n"), "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: job.gpus_per_node = 4 with run.device = \"cpu\": allowed only in a GPU plan (run.device = \"gpu\")");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_missing_is_named() {
        let dir = std::env::temp_dir();
        let no_job = Plan::parse("[run]\nthreads = 1\n", "p.toml").unwrap();
        let e = render(&no_job, Path::new("p.toml"), &dir, false).unwrap_err().to_string();
        assert!(e.starts_with("config p.toml: no [job] section"), "{e}");
        let no_threads = Plan::parse("[job]\nnodes = [1]\nranks_per_node = 2\n", "p.toml").unwrap();
        let e = render(&no_threads, Path::new("p.toml"), &dir, false).unwrap_err().to_string();
        assert!(e.contains("run.threads is missing"), "{e}");
        let e = Plan::parse("[job]\nnodes = [1]\nranks_per_node = 2\ntime = \"1h\"\n", "p.toml").unwrap_err().to_string();
        assert_eq!(e, "config p.toml: job.time = \"1h\": allowed: HH:MM:SS, e.g. \"01:30:00\"");
        let e = Plan::parse("[job]\nnodes = []\nranks_per_node = 2\n", "p.toml").unwrap_err().to_string();
        assert!(e.contains("job.nodes = []"), "{e}");
    }
}
