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
//! MPI requests (`bench::raw`) on buffers this type owns, so they cannot outlive the data;
//! dropping an unfinished broadcast waits for it.

use crate::bench::raw;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use std::marker::PhantomData;
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

/// A broadcast in flight over a communicator it borrows. The root's buffer is sent; a
/// receiver's is filled.
pub struct Bcast<'c> {
    buf: Vec<u8>,
    comm: ffi::MPI_Comm,
    _comm: PhantomData<&'c SimpleCommunicator>,
    tag: c_int,
    /// The receive (null for the root, or once complete).
    recv: ffi::MPI_Request,
    /// Sends (and MPI_Ibcast's one request).
    sends: Vec<ffi::MPI_Request>,
    /// Ranks to forward to once the receive completes.
    children: Vec<c_int>,
}

impl<'c> Bcast<'c> {
    /// Starts broadcasting `buf` from `root` (its rank in `comm`) to every rank of `comm`.
    /// On the root `buf` holds the message; elsewhere it must have the message's length.
    /// `tag` tells consecutive broadcasts apart.
    pub fn start(comm: &'c SimpleCommunicator, root: usize, buf: Vec<u8>, algorithm: Algorithm, tag: u32) -> Self {
        let (size, me) = (comm.size() as usize, comm.rank() as usize);
        let mut b = Bcast {
            buf,
            comm: comm.as_raw(),
            _comm: PhantomData,
            tag: (tag % 32_000) as c_int,
            recv: raw::null_request(),
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
                let req = raw::ibcast(&mut b.buf, root as c_int, b.comm);
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
            Some(p) => b.recv = raw::irecv(&mut b.buf, p, b.tag, b.comm),
        }
        b
    }

    fn forward(&mut self) {
        for &c in &self.children {
            let req = raw::isend(&self.buf, c, self.tag, self.comm);
            self.sends.push(req);
        }
        self.children.clear();
    }

    fn receiving(&self) -> bool {
        self.recv != raw::null_request()
    }

    /// Lets MPI move data; forwards the message once it has arrived.
    pub fn progress(&mut self) {
        if self.receiving() && raw::test(&mut self.recv) {
            self.forward();
        }
        if !self.sends.is_empty() && raw::test_all(&mut self.sends) {
            self.sends.clear();
        }
    }

    /// Completes the broadcast and returns the message.
    pub fn wait(mut self) -> Vec<u8> {
        self.complete();
        std::mem::take(&mut self.buf)
    }

    fn complete(&mut self) {
        if self.receiving() {
            raw::wait(&mut self.recv);
            self.forward();
        }
        raw::wait_all(&mut self.sends);
    }
}

impl Drop for Bcast<'_> {
    fn drop(&mut self) {
        self.complete();
    }
}
