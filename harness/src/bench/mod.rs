//! Drivers: each turns a kernel of effcal-kernels into a timed, validated measurement
//! across the ranks of the run.

pub mod gemm;
pub mod gpu;
pub mod hpl;
pub mod net;
pub mod peak;
pub mod raw;
pub mod stencil;
pub mod wire;

use crate::timing;

/// `$f::<T>(args)` for the element type T of the run-time precision `$p`: drivers match
/// the precision once, here, and are generic below it.
macro_rules! with_element {
    ($p:expr, $f:ident($($arg:expr),*)) => {{
        use effcal_kernels::Precision;
        use effcal_kernels::precision::{E4M3, E5M2, bf16, f16};
        match $p {
            Precision::F64 => $f::<f64>($($arg),*),
            Precision::F32 => $f::<f32>($($arg),*),
            Precision::Bf16 => $f::<bf16>($($arg),*),
            Precision::F16 => $f::<f16>($($arg),*),
            Precision::E4m3 => $f::<E4M3>($($arg),*),
            Precision::E5m2 => $f::<E5M2>($($arg),*),
        }
    }};
}
pub(crate) use with_element;
use crate::topology::Node;
use crate::world::World;
use indicatif::{ProgressBar, ProgressStyle};

/// What every driver needs: the MPI world, this rank's node and threads, the settings.
pub struct Ctx {
    pub world: World,
    pub node: Node,
    /// Every rank's host, in rank order.
    pub hosts: Vec<String>,
    /// "launcher" or "divided" (see `calibration::Binding::placement`).
    pub placement: &'static str,
    /// rayon threads per rank (the global pool).
    pub threads: usize,
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Rank 0's progress display on stderr (hidden elsewhere and when stderr is no terminal).
    pub progress: ProgressBar,
}

impl Ctx {
    pub fn new(world: World, node: Node, hosts: Vec<String>, placement: &'static str, threads: usize) -> Self {
        let progress = if world.is_root() { ProgressBar::new(0) } else { ProgressBar::hidden() };
        progress.set_style(ProgressStyle::with_template("{msg:24} {bar:30} {pos}/{len} reps [{elapsed}]").expect("valid template"));
        Self { world, node, hosts, placement, threads, reps: 1, warmup: 0, seed: 42, progress }
    }

    /// Distinct hosts of the run, in rank order of first appearance.
    pub fn distinct_hosts(&self) -> Vec<String> {
        let mut distinct: Vec<String> = Vec::new();
        for h in &self.hosts {
            if !distinct.contains(h) {
                distinct.push(h.clone());
            }
        }
        distinct
    }

    /// Nodes of the run.
    pub fn nodes(&self) -> usize {
        self.distinct_hosts().len()
    }

    /// Ranks on this rank's node.
    pub fn local_ranks(&self) -> usize {
        self.hosts.iter().filter(|h| **h == self.node.host).count()
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
