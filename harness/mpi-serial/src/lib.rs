//! A single-process stand-in for the part of rsmpi's API effcal uses, so effcal builds and
//! runs without an MPI library (`cargo build --no-default-features`): one rank, rank 0 of
//! 1, on a GPU workstation or in the bare GPU bundle (scripts/gpu-bundle.sh).
//!
//! The harness names it `mpi` when its `mpi` feature is off (`extern crate … as mpi` in
//! harness/src/lib.rs), so the drivers read the same either way. With one rank every
//! collective is a copy, every broadcast a no-op, every split and Cartesian grid the rank
//! itself with no neighbours; point-to-point messages cannot happen (there is no peer), and
//! the raw calls that would post one panic, naming the call.
//!
//! [`initialize`] refuses to start under a launcher that asked for more than one process
//! (mpirun, srun): every copy would think it is rank 0 of 1 and write the same files.

use std::marker::PhantomData;

/// The launchers' variables that give a job's process count.
const SIZE_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"];

/// The process count a launcher asked for, where one did: (variable, value).
pub fn launched_size() -> Option<(&'static str, usize)> {
    SIZE_VARIABLES.iter().find_map(|&v| std::env::var(v).ok().and_then(|s| s.trim().parse().ok()).map(|n| (v, n)))
}

/// The one process's world. `None` never: it always starts; a launch of several
/// processes is refused by the panic below (the harness checks [`launched_size`] first
/// and reports it as bad input).
pub fn initialize() -> Option<environment::Universe> {
    Some(environment::Universe { _private: () })
}

pub mod environment {
    use super::topology::SimpleCommunicator;

    pub struct Universe {
        pub(crate) _private: (),
    }

    impl Universe {
        pub fn world(&self) -> SimpleCommunicator {
            SimpleCommunicator { _private: () }
        }
    }

    /// What effcal reports as its MPI library.
    pub fn library_version() -> Option<String> {
        Some("none (effcal built without MPI: one process)".into())
    }
}

/// Element types that travel in collectives.
pub trait Scalar: Copy {}
macro_rules! scalars {
    ($($t:ty)*) => { $(impl Scalar for $t {})* };
}
scalars!(u8 i8 u16 i16 u32 i32 u64 i64 u128 usize f32 f64);

/// A buffer read by a collective: one scalar or a slice of them.
pub trait Buffer {
    type Item: Copy;
    fn items(&self) -> &[Self::Item];
}

/// A buffer written by a collective.
pub trait BufferMut {
    type Item: Copy;
    fn items_mut(&mut self) -> &mut [Self::Item];
}

impl<T: Scalar> Buffer for T {
    type Item = T;
    fn items(&self) -> &[T] {
        std::slice::from_ref(self)
    }
}

impl<T: Scalar> Buffer for [T] {
    type Item = T;
    fn items(&self) -> &[T] {
        self
    }
}

impl<T: Scalar> BufferMut for T {
    type Item = T;
    fn items_mut(&mut self) -> &mut [T] {
        std::slice::from_mut(self)
    }
}

impl<T: Scalar> BufferMut for [T] {
    type Item = T;
    fn items_mut(&mut self) -> &mut [T] {
        self
    }
}

/// With one rank a reduction or gather of `send` is `send` itself.
fn copy<T: Copy>(send: &[T], recv: &mut [T], what: &str) {
    assert_eq!(send.len(), recv.len(), "{what}: with one rank the receive buffer holds exactly what is sent");
    recv.copy_from_slice(send);
}

pub mod collective {
    /// The reduction operations effcal uses; with one rank each is the identity.
    #[derive(Clone, Copy, Debug)]
    pub struct SystemOperation(());

    impl SystemOperation {
        pub fn sum() -> Self {
            Self(())
        }
        pub fn max() -> Self {
            Self(())
        }
        pub fn min() -> Self {
            Self(())
        }
    }
}

pub mod datatype {
    /// A receive buffer cut into one piece per rank (rsmpi's PartitionMut).
    pub struct PartitionMut<'b, T> {
        pub(crate) buf: &'b mut [T],
    }

    impl<'b, T> PartitionMut<'b, T> {
        pub fn new(buf: &'b mut [T], counts: &[i32], displs: &[i32]) -> Self {
            assert!(counts.len() == 1 && displs == [0], "one rank: one piece at offset 0");
            Self { buf }
        }
    }
}

pub mod topology {
    use super::*;

    pub type Rank = i32;

    /// A split's colour.
    #[derive(Clone, Copy, Debug)]
    pub struct Color(());

    impl Color {
        pub fn with_value(_: i32) -> Self {
            Self(())
        }
    }

    /// The world, or any communicator made from it: always this one rank.
    pub struct SimpleCommunicator {
        pub(crate) _private: (),
    }

    /// A Cartesian grid of one rank: every dimension of size 1, no neighbours.
    pub struct CartesianCommunicator {
        dims: usize,
    }

    pub struct CartesianLayout {
        pub dims: Vec<i32>,
        pub periods: Vec<bool>,
        pub coords: Vec<i32>,
    }

    impl CartesianCommunicator {
        pub fn get_layout(&self) -> CartesianLayout {
            CartesianLayout { dims: vec![1; self.dims], periods: vec![false; self.dims], coords: vec![0; self.dims] }
        }

        /// The ranks before and after this one along `dim`: none (non-periodic, size 1).
        pub fn shift(&self, dim: i32, _displacement: i32) -> (Option<Rank>, Option<Rank>) {
            assert!((dim as usize) < self.dims, "dimension {dim} of a {}-dimensional grid", self.dims);
            (None, None)
        }
    }

    /// One rank of a communicator, as a root or a peer.
    pub struct Process<'c> {
        pub(crate) _comm: PhantomData<&'c ()>,
    }

    pub trait Communicator {
        fn rank(&self) -> Rank {
            0
        }

        fn size(&self) -> Rank {
            1
        }

        fn process_at_rank(&self, rank: Rank) -> Process<'_> {
            assert_eq!(rank, 0, "rank {rank} of a communicator of one rank");
            Process { _comm: PhantomData }
        }

        fn split_by_color_with_key(&self, _color: Color, _key: i32) -> Option<SimpleCommunicator> {
            Some(SimpleCommunicator { _private: () })
        }

        /// A grid of `dims` (each 1: the product must be the one rank).
        fn create_cartesian_communicator(&self, dims: &[i32], periods: &[bool], _reorder: bool) -> Option<CartesianCommunicator> {
            assert_eq!(dims.len(), periods.len(), "one period per dimension");
            (dims.iter().product::<i32>() == 1).then_some(CartesianCommunicator { dims: dims.len() })
        }
    }

    impl Communicator for SimpleCommunicator {}
    impl Communicator for CartesianCommunicator {}
}

pub mod traits {
    use super::datatype::PartitionMut;
    use super::*;
    pub use super::raw::AsRaw;
    pub use super::topology::Communicator;

    /// Collectives over a communicator of one rank.
    pub trait CommunicatorCollectives: Communicator {
        fn barrier(&self) {}

        fn all_reduce_into<S, R>(&self, send: &S, recv: &mut R, _op: collective::SystemOperation)
        where
            S: Buffer + ?Sized,
            R: BufferMut<Item = S::Item> + ?Sized,
        {
            copy(send.items(), recv.items_mut(), "all_reduce_into");
        }

        fn all_gather_into<S, R>(&self, send: &S, recv: &mut R)
        where
            S: Buffer + ?Sized,
            R: BufferMut<Item = S::Item> + ?Sized,
        {
            copy(send.items(), recv.items_mut(), "all_gather_into");
        }

        fn all_gather_varcount_into<S>(&self, send: &S, recv: &mut PartitionMut<'_, S::Item>)
        where
            S: Buffer + ?Sized,
        {
            copy(send.items(), recv.buf, "all_gather_varcount_into");
        }
    }

    impl<C: Communicator> CommunicatorCollectives for C {}

    /// Rooted collectives and point-to-point calls on one rank of a communicator.
    pub trait Root {
        fn broadcast_into<B: BufferMut + ?Sized>(&self, _buf: &mut B) {}

        fn reduce_into_root<S, R>(&self, send: &S, recv: &mut R, _op: collective::SystemOperation)
        where
            S: Buffer + ?Sized,
            R: BufferMut<Item = S::Item> + ?Sized,
        {
            copy(send.items(), recv.items_mut(), "reduce_into_root");
        }

        fn reduce_into<S: Buffer + ?Sized>(&self, _send: &S, _op: collective::SystemOperation) {
            unreachable!("reduce_into from a non-root rank: there is only the root");
        }

        /// A message to another rank: there is none.
        fn send<B: Buffer + ?Sized>(&self, _buf: &B) {
            unreachable!("send: a single-process effcal has no peer");
        }

        fn receive_into<B: BufferMut + ?Sized>(&self, _buf: &mut B) {
            unreachable!("receive_into: a single-process effcal has no peer");
        }
    }

    impl Root for topology::Process<'_> {}
}

pub mod raw {
    use super::ffi::MPI_Comm;
    use super::topology::{CartesianCommunicator, SimpleCommunicator};

    /// The handle the raw calls take.
    pub trait AsRaw {
        fn as_raw(&self) -> MPI_Comm {
            0
        }
    }

    impl AsRaw for SimpleCommunicator {}
    impl AsRaw for CartesianCommunicator {}
}

/// The raw C API effcal calls (bench/raw.rs), on handles that name nothing. Completion of
/// the null request succeeds at once; posting a message panics: with one rank there is no
/// peer, and the drivers never post one (they skip sizes of one and absent neighbours).
#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, clippy::missing_safety_doc)]
pub mod ffi {
    use std::os::raw::{c_int, c_void};

    pub type MPI_Comm = usize;
    pub type MPI_Request = usize;
    pub type MPI_Datatype = usize;
    pub struct MPI_Status(());

    pub const MPI_SUCCESS: u32 = 0;
    pub static mut RSMPI_REQUEST_NULL: MPI_Request = 0;
    pub static mut RSMPI_UINT8_T: MPI_Datatype = 0;
    pub static mut RSMPI_COMM_WORLD: MPI_Comm = 0;
    pub static mut RSMPI_STATUS_IGNORE: *mut MPI_Status = std::ptr::null_mut();
    pub static mut RSMPI_STATUSES_IGNORE: *mut MPI_Status = std::ptr::null_mut();

    fn no_peer(call: &str) -> ! {
        panic!("{call}: a single-process effcal has no peer to message")
    }

    pub unsafe fn MPI_Irecv(_buf: *mut c_void, _count: c_int, _t: MPI_Datatype, _peer: c_int, _tag: c_int, _comm: MPI_Comm, _req: *mut MPI_Request) -> c_int {
        no_peer("MPI_Irecv")
    }

    pub unsafe fn MPI_Isend(_buf: *const c_void, _count: c_int, _t: MPI_Datatype, _peer: c_int, _tag: c_int, _comm: MPI_Comm, _req: *mut MPI_Request) -> c_int {
        no_peer("MPI_Isend")
    }

    pub unsafe fn MPI_Ibcast(_buf: *mut c_void, _count: c_int, _t: MPI_Datatype, _root: c_int, _comm: MPI_Comm, _req: *mut MPI_Request) -> c_int {
        no_peer("MPI_Ibcast")
    }

    pub unsafe fn MPI_Test(_req: *mut MPI_Request, flag: *mut c_int, _status: *mut MPI_Status) -> c_int {
        // SAFETY: the caller passes a valid flag (bench/raw.rs: a local).
        unsafe { *flag = 1 };
        0
    }

    pub unsafe fn MPI_Wait(_req: *mut MPI_Request, _status: *mut MPI_Status) -> c_int {
        0
    }

    pub unsafe fn MPI_Testall(_n: c_int, _reqs: *mut MPI_Request, flag: *mut c_int, _statuses: *mut MPI_Status) -> c_int {
        // SAFETY: as for MPI_Test.
        unsafe { *flag = 1 };
        0
    }

    pub unsafe fn MPI_Waitall(_n: c_int, _reqs: *mut MPI_Request, _statuses: *mut MPI_Status) -> c_int {
        0
    }

    /// A single process ends itself.
    pub unsafe fn MPI_Abort(_comm: MPI_Comm, code: c_int) -> c_int {
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::traits::*;
    use super::*;

    #[test]
    fn one_rank_collectives_copy() {
        let world = initialize().unwrap().world();
        assert_eq!((world.rank(), world.size()), (0, 1));
        let mut out = 0.0;
        world.all_reduce_into(&2.5f64, &mut out, collective::SystemOperation::max());
        assert_eq!(out, 2.5);
        let mut v = [0u64; 3];
        world.all_reduce_into(&[1u64, 2, 3][..], &mut v[..], collective::SystemOperation::sum());
        assert_eq!(v, [1, 2, 3]);
        let mut buf = [0u8; 2];
        let mut part = datatype::PartitionMut::new(&mut buf[..], &[2], &[0]);
        world.all_gather_varcount_into(&[7u8, 9][..], &mut part);
        assert_eq!(buf, [7, 9]);
        let cart = world.create_cartesian_communicator(&[1, 1, 1], &[false; 3], false).unwrap();
        assert_eq!(cart.shift(2, 1), (None, None));
        assert!(world.create_cartesian_communicator(&[2, 1, 1], &[false; 3], false).is_none());
    }
}
