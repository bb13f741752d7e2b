//! effcal-harness: MPI world, timing, topology, run plans, drivers, calibration JSON, CLI.
//!
//! [`main`] is the whole program: it parses the command line, runs the command on every
//! rank, prints the human tables on rank 0's stdout, writes the calibration JSON from
//! rank 0, and returns the exit code: 0 all results PASSED, 1 a result FAILED its
//! validation (everything measured is still written), 2 bad input (reported by rank 0, once;
//! the other ranks of a launched job end quietly with 0), 3 another error (on each rank
//! that meets it).

// Built without the `mpi` feature, the single-process stand-in takes rsmpi's name, so every
// `use mpi::…` reads the same.
#[cfg(not(feature = "mpi"))]
extern crate effcal_mpi_serial as mpi;

pub mod bench;
pub mod calibration;
pub mod cli;
pub mod commands;
pub mod config;
pub mod correct;
pub mod error;
pub mod estimate;
pub mod machine;
pub mod merge;
pub mod output;
pub mod report;
pub mod roofline;
mod session;
pub mod slurm;
pub mod timing;
pub mod topology;
pub mod uarch;
pub mod world;

use clap::Parser;
use cli::{Cli, Command, FormatsAction};
use error::{Error, Result};
use std::io::Write;

/// Did every result pass its validation?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
}

/// Runs effcal and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A bad command line (or --help, --version) is the same on every rank: rank 0 says
        // so, once, and its exit code is the job's; the other ranks end quietly.
        Err(_) if launcher_rank().unwrap_or(0) != 0 => return 0,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(Outcome::Passed) => 0,
        Ok(Outcome::Failed) => 1,
        Err(e) => {
            // Bad input is refused alike by every rank (checked the same way everywhere, or
            // agreed on): rank 0 says so, once, and exits 2. Other errors may be one rank's
            // own: each rank that meets one says so, naming itself when launched as one of
            // several, and exits 3.
            let bad_input = matches!(e, Error::InvalidInput { .. } | Error::Config { .. } | Error::Kernel(_));
            let rank = launcher_rank();
            let line = match rank {
                Some(r) if !bad_input => format!("effcal: error on rank {r}: {e}\n"),
                _ => format!("effcal: error: {e}\n"),
            };
            if bad_input && rank.unwrap_or(0) != 0 {
                // Rank 0 reports the refusal and its exit code is the job's; this rank ends
                // quietly and cleanly, so the launcher does not kill rank 0 (as it does once
                // a rank fails) before its message is out.
                return 0;
            }
            // One write, so the lines of ranks that fail together do not interleave.
            let _ = std::io::stderr().write_all(line.as_bytes());
            if bad_input { 2 } else { 3 }
        }
    }
}

/// This process's rank as the launcher set it (Open MPI, PMIx, MPICH's PMI, Slurm), read
/// without MPI (an error may come before MPI starts); None when started plainly.
fn launcher_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"].iter().find_map(|v| std::env::var(v).ok()?.parse().ok())
}

fn run(cli: Cli) -> Result<Outcome> {
    let threads = cli.threads.map(|t| t as usize);
    // --system: a TOML whose [system] section describes the machine (read before MPI starts).
    let described = cli.system.as_deref().map(config::Plan::load).transpose()?;
    // --peaks: peaks measured before, used instead of measuring them again.
    let peaks = cli.peaks.as_deref().map(commands::load_peaks).transpose()?;
    let given = commands::Given { described: described.as_ref(), peaks: peaks.as_ref() };
    let given = &given;
    match cli.command {
        Command::Formats { action: None } => commands::formats(),
        Command::Formats { action: Some(FormatsAction::Quantize { to, overflow, values }) } => commands::quantize_args(to, &overflow, values),
        Command::Merge(a) => commands::merge(&a),
        Command::Slurm(a) => commands::slurm(&a),
        Command::Schema { estimate } => commands::schema(estimate),
        Command::Report(a) => commands::report(&a, given),
        Command::Estimate(a) => commands::estimate(&a, given),
        Command::Gemm(a) => commands::gemm(&a, threads, given),
        Command::HplMxp(a) => commands::hpl_mxp(&a, threads, given),
        Command::Stencil(a) => commands::stencil(&a, threads, given),
        Command::Peak(a) => commands::peak(&a, threads, given),
        Command::Net(a) => commands::net(&a, threads),
        Command::Run(a) => commands::run(&a, threads, given),
    }
}
