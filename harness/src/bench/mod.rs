//! Drivers: each turns a kernel of effcal-kernels into a timed, validated measurement
//! across the ranks of the run.

pub mod gemm;
pub mod hpl;
pub mod peak;

use crate::timing;
use crate::topology::Node;
use crate::world::World;
use indicatif::{ProgressBar, ProgressStyle};

/// What every driver needs: the MPI world, this rank's node and threads, the settings.
pub struct Ctx {
    pub world: World,
    pub node: Node,
    /// rayon threads per rank (the global pool).
    pub threads: usize,
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Rank 0's progress display on stderr (hidden elsewhere and when stderr is no terminal).
    pub progress: ProgressBar,
}

impl Ctx {
    pub fn new(world: World, node: Node, threads: usize, reps: usize, warmup: usize, seed: u64) -> Self {
        let progress = if world.is_root() { ProgressBar::new(0) } else { ProgressBar::hidden() };
        progress.set_style(ProgressStyle::with_template("{msg:24} {bar:30} {pos}/{len} reps [{elapsed}]").expect("valid template"));
        Self { world, node, threads, reps, warmup, seed, progress }
    }

    /// [`timing::time_reps`] with this run's repetitions, showing `what` in the progress bar.
    pub fn time(&self, what: &str, f: impl FnMut()) -> Vec<f64> {
        self.progress.set_message(what.to_string());
        self.progress.set_length((self.warmup + self.reps) as u64);
        self.progress.reset();
        let times = timing::time_reps(&self.world, self.warmup, self.reps, f, || self.progress.inc(1));
        self.progress.finish_and_clear();
        times
    }
}
