//! The MPI world, through rsmpi's safe API. Started without `mpirun` it is one rank
//! (MPI singleton); under `mpirun` or `srun` every rank runs its share.
//! Low-precision data never travels here; everything reduced is f64 or bytes.
//! Built without the `mpi` feature, `mpi` is effcal-mpi-serial: one rank, no library.

use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

/// A panic on any thread of any rank prints the rank and the reason, then aborts the whole
/// job (MPI_Abort, exit code 3) instead of leaving the other ranks waiting in a collective.
fn abort_on_panic(rank: i32, size: i32) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let reason = info.payload().downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| info.payload().downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("effcal: rank {rank} of {size} failed: {reason}{at}");
        if size > 1 {
            eprintln!("effcal: aborting all {size} ranks (MPI_Abort)");
            // SAFETY: MPI is initialised (this hook is set after MPI_Init) and MPI_Abort
            // does not return.
            unsafe { mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 3) };
        }
        default(info);
    }));
}

pub struct World {
    _universe: mpi::environment::Universe,
    comm: SimpleCommunicator,
}

impl World {
    pub fn init() -> Result<Self> {
        // Several copies of a single-process build would each be rank 0 of 1.
        #[cfg(not(feature = "mpi"))]
        if let Some((var, n)) = effcal_mpi_serial::launched_size().filter(|&(_, n)| n > 1) {
            return Err(Error::invalid("process count", format!("{n} ({var})"), "1: this effcal was built without MPI (cargo feature `mpi` off); build it with the feature to run several ranks"));
        }
        let universe = mpi::initialize().ok_or_else(|| Error::Mpi("MPI was already initialised".into()))?;
        let comm = universe.world();
        abort_on_panic(comm.rank(), comm.size());
        Ok(Self { _universe: universe, comm })
    }

    /// The world communicator, for drivers that build their own (process grids).
    pub fn comm(&self) -> &SimpleCommunicator {
        &self.comm
    }

    pub fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    pub fn size(&self) -> usize {
        self.comm.size() as usize
    }

    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    pub fn barrier(&self) {
        self.comm.barrier();
    }

    fn reduce(&self, x: f64, op: SystemOperation) -> f64 {
        let mut out = 0.0;
        self.comm.all_reduce_into(&x, &mut out, op);
        out
    }

    /// Maximum over ranks, on every rank.
    pub fn max(&self, x: f64) -> f64 {
        self.reduce(x, SystemOperation::max())
    }

    /// Minimum over ranks, on every rank.
    pub fn min(&self, x: f64) -> f64 {
        self.reduce(x, SystemOperation::min())
    }

    /// Sum over ranks, on every rank.
    pub fn sum(&self, x: f64) -> f64 {
        self.reduce(x, SystemOperation::sum())
    }

    /// True on every rank when `x` is true on all ranks.
    pub fn all(&self, x: bool) -> bool {
        self.min(if x { 1.0 } else { 0.0 }) == 1.0
    }

    /// Every rank's bytes, in rank order, on every rank.
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let n = self.size();
        let mut counts = vec![0i32; n];
        self.comm.all_gather_into(&(bytes.len() as i32), &mut counts[..]);
        let displs: Vec<i32> = counts.iter().scan(0, |acc, &c| Some(std::mem::replace(acc, *acc + c))).collect();
        let mut buf = vec![0u8; counts.iter().sum::<i32>() as usize];
        // Nothing to move: Open MPI refuses an all-empty MPI_Allgatherv (MPI_ERR_ARG).
        if buf.is_empty() {
            return vec![Vec::new(); n];
        }
        {
            let mut partition = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
            self.comm.all_gather_varcount_into(bytes, &mut partition);
        }
        displs.iter().zip(&counts).map(|(&d, &c)| buf[d as usize..(d + c) as usize].to_vec()).collect()
    }

    /// Every rank's string, in rank order, on every rank.
    pub fn all_gather_string(&self, s: &str) -> Vec<String> {
        self.all_gather_bytes(s.as_bytes()).into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
    }
}

/// "Open MPI v4.1.4, ..." shortened to its first line.
pub fn library_version() -> String {
    mpi::environment::library_version().map(|v| v.lines().next().unwrap_or("").trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()).unwrap_or_default()
}

/// The MPI library's own answer to whether it takes CUDA device buffers: Open MPI's
/// `MPIX_Query_cuda_support()` (mpi-ext.h) or MPICH's `MPIX_GPU_query_support(CUDA)`
/// (mpi.h, MPICH ≥ 4), looked up in the process, so any MPI links; None where the
/// library has neither (and in the build without MPI).
pub fn cuda_aware() -> Option<bool> {
    type OmpiQuery = unsafe extern "C" fn() -> libc::c_int;
    type MpichQuery = unsafe extern "C" fn(libc::c_int, *mut libc::c_int) -> libc::c_int;
    const MPIX_GPU_SUPPORT_CUDA: libc::c_int = 0;
    // SAFETY: dlsym on the process's global scope with NUL-terminated names; a symbol found
    // has the C signature its header declares (above), and both may be called at any time
    // (they read what the library was built and started with).
    unsafe {
        let ompi = libc::dlsym(libc::RTLD_DEFAULT, c"MPIX_Query_cuda_support".as_ptr());
        if !ompi.is_null() {
            let query: OmpiQuery = std::mem::transmute::<*mut libc::c_void, OmpiQuery>(ompi);
            return Some(query() == 1);
        }
        let mpich = libc::dlsym(libc::RTLD_DEFAULT, c"MPIX_GPU_query_support".as_ptr());
        if !mpich.is_null() {
            let query: MpichQuery = std::mem::transmute::<*mut libc::c_void, MpichQuery>(mpich);
            let mut supported: libc::c_int = 0;
            return (query(MPIX_GPU_SUPPORT_CUDA, &mut supported) == 0).then_some(supported != 0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_libraries_own_cuda_query_is_found_where_it_has_one() {
        // Open MPI has had MPIX_Query_cuda_support since 2.0 (Debian's builds the cuda
        // extension); the build without MPI has none.
        let library = super::library_version();
        if cfg!(feature = "mpi") && library.starts_with("Open MPI") {
            assert!(super::cuda_aware().is_some(), "{library}");
        }
        if cfg!(not(feature = "mpi")) {
            assert_eq!(super::cuda_aware(), None);
        }
    }
}
