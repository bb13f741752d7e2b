//! Drivers: each turns a kernel of effcal-kernels into a timed, validated measurement
//! across the ranks of the run.

pub mod gemm;
pub mod peak;

use crate::topology::Node;
use crate::world::World;

/// What every driver needs: the MPI world, this rank's node and threads, the settings.
pub struct Ctx {
    pub world: World,
    pub node: Node,
    /// rayon threads per rank (the global pool).
    pub threads: usize,
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
}
