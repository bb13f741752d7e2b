//! Nonblocking broadcasts of a byte buffer within a row or column of the process grid, in
//! the three variants HPL users know:
//! - [`Algorithm::Ring`]: increasing ring (HPL's `1ring`): the root sends to the next rank,
//!   every rank forwards what it received;
//! - [`Algorithm::Binomial`]: a binomial tree (log₂ size rounds);
//! - [`Algorithm::Mpi`]: the MPI library's own `MPI_Ibcast`.
//!
//! A broadcast is started, then [`Bcast::progress`] is called between pieces of other work
//! (the trailing update), so the data moves while the rank computes — forwarding in the
//! ring and the tree happens there — and [`Bcast::wait`] completes it. Requests are raw
//! MPI requests on buffers this type owns, so they cannot outlive the data; dropping an
//! unfinished broadcast waits for it.

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use std::os::raw::c_int;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Ring,
    Binomial,
    Mpi,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Self::Ring, Self::Binomial, Self::Mpi];
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::Binomial => "binomial",
            Self::Mpi => "mpi",
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| format!("unknown broadcast '{s}' (allowed: ring, binomial, mpi)"))
    }
}

/// A broadcast in flight. The root's buffer is sent; a receiver's is filled.
pub struct Bcast {
    buf: Vec<u8>,
    comm: ffi::MPI_Comm,
    tag: c_int,
    /// The receive (null for the root, or once complete).
    recv: ffi::MPI_Request,
    /// Sends (and MPI_Ibcast's one request).
    sends: Vec<ffi::MPI_Request>,
    /// Ranks to forward to once the receive completes.
    children: Vec<c_int>,
}

fn check(code: c_int, what: &str) {
    assert_eq!(code, ffi::MPI_SUCCESS as c_int, "{what} failed with MPI error {code}");
}

fn count(len: usize) -> c_int {
    c_int::try_from(len).expect("a broadcast message of 2 GiB or more: use a smaller NB or more ranks")
}

impl Bcast {
    /// Starts broadcasting `buf` from `root` (its rank in `comm`) to every rank of `comm`.
    /// On the root `buf` holds the message; elsewhere it must have the message's length.
    /// `tag` tells consecutive broadcasts apart.
    pub fn start(comm: &SimpleCommunicator, root: usize, buf: Vec<u8>, algorithm: Algorithm, tag: u32) -> Self {
        let (size, me) = (comm.size() as usize, comm.rank() as usize);
        let mut b = Bcast {
            buf,
            comm: comm.as_raw(),
            tag: (tag % 32_000) as c_int,
            recv: unsafe { ffi::RSMPI_REQUEST_NULL },
            sends: Vec::new(),
            children: Vec::new(),
        };
        // Lengths agree across the communicator, so an empty message is skipped by all
        // (MPI_Ibcast rejects some zero-length calls).
        if size == 1 || b.buf.is_empty() {
            return b;
        }
        // Rank relative to the root.
        let rel = (me + size - root) % size;
        let abs = |r: usize| ((r + root) % size) as c_int;
        let parent = match algorithm {
            Algorithm::Mpi => {
                let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
                let code = unsafe {
                    ffi::MPI_Ibcast(b.buf.as_mut_ptr().cast(), count(b.buf.len()), ffi::RSMPI_UINT8_T, root as c_int, b.comm, &mut req)
                };
                check(code, "MPI_Ibcast");
                b.sends.push(req);
                return b;
            }
            Algorithm::Ring => {
                if rel + 1 < size {
                    b.children.push(abs(rel + 1));
                }
                (rel > 0).then(|| abs(rel - 1))
            }
            Algorithm::Binomial => {
                // Parent: rel without its highest set bit; children: rel + m for every power
                // of two m above rel's highest bit, largest subtree first.
                let high = if rel == 0 { 0 } else { 1usize << (usize::BITS - 1 - rel.leading_zeros()) };
                let mut m = 1;
                while m < size {
                    if m > high && rel + m < size {
                        b.children.push(abs(rel + m));
                    }
                    m <<= 1;
                }
                b.children.reverse();
                (rel > 0).then(|| abs(rel - high))
            }
        };
        match parent {
            None => b.forward(),
            Some(p) => {
                let code = unsafe { ffi::MPI_Irecv(b.buf.as_mut_ptr().cast(), count(b.buf.len()), ffi::RSMPI_UINT8_T, p, b.tag, b.comm, &mut b.recv) };
                check(code, "MPI_Irecv");
            }
        }
        b
    }

    fn forward(&mut self) {
        for &c in &self.children {
            let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
            let code = unsafe { ffi::MPI_Isend(self.buf.as_ptr().cast(), count(self.buf.len()), ffi::RSMPI_UINT8_T, c, self.tag, self.comm, &mut req) };
            check(code, "MPI_Isend");
            self.sends.push(req);
        }
        self.children.clear();
    }

    fn receiving(&self) -> bool {
        self.recv != unsafe { ffi::RSMPI_REQUEST_NULL }
    }

    /// Lets MPI move data; forwards the message once it has arrived.
    pub fn progress(&mut self) {
        if self.receiving() {
            let mut flag: c_int = 0;
            check(unsafe { ffi::MPI_Test(&mut self.recv, &mut flag, ffi::RSMPI_STATUS_IGNORE) }, "MPI_Test");
            if flag != 0 {
                self.forward();
            }
        }
        if !self.sends.is_empty() {
            let mut flag: c_int = 0;
            let code = unsafe { ffi::MPI_Testall(count(self.sends.len()), self.sends.as_mut_ptr(), &mut flag, ffi::RSMPI_STATUSES_IGNORE) };
            check(code, "MPI_Testall");
            if flag != 0 {
                self.sends.clear();
            }
        }
    }

    /// Completes the broadcast and returns the message.
    pub fn wait(mut self) -> Vec<u8> {
        self.complete();
        std::mem::take(&mut self.buf)
    }

    fn complete(&mut self) {
        if self.receiving() {
            check(unsafe { ffi::MPI_Wait(&mut self.recv, ffi::RSMPI_STATUS_IGNORE) }, "MPI_Wait");
            self.forward();
        }
        if !self.sends.is_empty() {
            let code = unsafe { ffi::MPI_Waitall(count(self.sends.len()), self.sends.as_mut_ptr(), ffi::RSMPI_STATUSES_IGNORE) };
            check(code, "MPI_Waitall");
            self.sends.clear();
        }
    }
}

impl Drop for Bcast {
    fn drop(&mut self) {
        self.complete();
    }
}
