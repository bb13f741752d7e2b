//! Halo exchange of a block with one ghost layer, in three phases (i, then j, then k): each
//! phase sends the faces including the ghosts that earlier phases filled, so edges and
//! corners (which the 19- and 27-point stencils read) arrive without messages of their own.
//! Each phase is nonblocking (raw MPI requests, `bench::raw`, on buffers this type owns, so
//! they cannot outlive them; dropping waits); `start` posts a
//! phase, `finish` waits for it and unpacks, so computation can run in between.

use crate::bench::raw;
use crate::bench::wire::{self, Pod};
use effcal_kernels::stencil::Block;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::CartesianCommunicator;
use std::marker::PhantomData;
use std::ops::Range;

/// Neighbours of this rank: `[dim][0 = minus, 1 = plus]`, None at the global boundary.
pub type Neighbours = [[Option<i32>; 2]; 3];

/// The exchange of one block over a Cartesian communicator it borrows (its raw handle is
/// used for as long as the borrow lasts).
pub struct Halo<'c> {
    comm: ffi::MPI_Comm,
    _comm: PhantomData<&'c CartesianCommunicator>,
    neighbours: Neighbours,
    send: [Vec<u8>; 2],
    recv: [Vec<u8>; 2],
    requests: Vec<ffi::MPI_Request>,
    phase: Option<usize>,
}

/// The box of block points a phase moves for direction `side` of dimension `d`: the plane
/// sent (`ghost = false`) or received (`ghost = true`); dims before `d` include their
/// ghosts, dims after it do not.
pub(crate) fn face(n: [usize; 3], d: usize, side: usize, ghost: bool) -> [Range<usize>; 3] {
    std::array::from_fn(|e| {
        if e == d {
            let at = match (side, ghost) {
                (0, false) => 1,
                (1, false) => n[d],
                (0, true) => 0,
                _ => n[d] + 1,
            };
            at..at + 1
        } else if e < d {
            0..n[e] + 2
        } else {
            1..n[e] + 1
        }
    })
}

pub(crate) fn pack<T: Pod>(b: &Block<T>, r: &[Range<usize>; 3], out: &mut Vec<u8>) {
    out.clear();
    for i in r[0].clone() {
        for j in r[1].clone() {
            let at = b.at(i, j, r[2].start);
            out.extend_from_slice(wire::bytes_of(&b.data[at..at + r[2].len()]));
        }
    }
}

pub(crate) fn unpack<T: Pod>(b: &mut Block<T>, r: &[Range<usize>; 3], bytes: &[u8]) {
    let mut rest = bytes;
    for i in r[0].clone() {
        for j in r[1].clone() {
            let (row, more) = wire::read::<T>(rest, r[2].len());
            let at = b.at(i, j, r[2].start);
            b.data[at..at + row.len()].copy_from_slice(&row);
            rest = more;
        }
    }
}

/// Bytes of the largest plane a block of `n` points exchanges (a face with the ghosts of
/// earlier phases), for elements of `elem` bytes: what must fit an MPI message.
pub fn largest_message(n: [usize; 3], elem: usize) -> usize {
    (0..3).map(|d| face(n, d, 0, true).iter().map(|r| r.len()).product::<usize>() * elem).max().unwrap_or(0)
}

/// Bytes of the message each exchange phase sends one way, for the phases that have
/// neighbours (`dims[d]` > 1), for a block of `n` points of `elem` bytes.
pub fn phase_messages(n: [usize; 3], dims: [usize; 3], elem: usize) -> Vec<usize> {
    (0..3).filter(|&d| dims[d] > 1).map(|d| face(n, d, 0, false).iter().map(|r| r.len()).product::<usize>() * elem).collect()
}

impl<'c> Halo<'c> {
    pub fn new(comm: &'c CartesianCommunicator, neighbours: Neighbours) -> Self {
        Self { comm: comm.as_raw(), _comm: PhantomData, neighbours, send: [Vec::new(), Vec::new()], recv: [Vec::new(), Vec::new()], requests: Vec::new(), phase: None }
    }

    /// Which neighbours this rank has.
    pub fn neighbours(&self) -> Neighbours {
        self.neighbours
    }

    /// Posts phase `d`: packs both faces of dimension d and starts their sends and receives.
    pub fn start<T: Pod>(&mut self, b: &Block<T>, d: usize) {
        assert!(self.phase.is_none(), "a halo phase is already in flight");
        self.phase = Some(d);
        let elem = std::mem::size_of::<T>();
        for side in 0..2 {
            let Some(peer) = self.neighbours[d][side] else { continue };
            let r = face(b.n, d, side, true);
            let len = r.iter().map(|x| x.len()).product::<usize>() * elem;
            self.recv[side].resize(len, 0);
            pack(b, &face(b.n, d, side, false), &mut self.send[side]);
            // Tag: the side the message arrives on at the receiver.
            let rq = raw::irecv(&mut self.recv[side], peer, (2 * d + side) as i32, self.comm);
            let sq = raw::isend(&self.send[side], peer, (2 * d + 1 - side) as i32, self.comm);
            self.requests.push(rq);
            self.requests.push(sq);
        }
    }

    /// Waits for the phase in flight and writes the received planes into the ghosts.
    pub fn finish<T: Pod>(&mut self, b: &mut Block<T>) {
        let Some(d) = self.phase.take() else { return };
        self.wait();
        for side in 0..2 {
            if self.neighbours[d][side].is_some() {
                unpack(b, &face(b.n, d, side, true), &self.recv[side]);
            }
        }
    }

    /// Lets MPI move the phase in flight (receivers copy what has arrived), so a phase
    /// progresses while the rank computes.
    pub fn progress(&mut self) {
        if !self.requests.is_empty() {
            raw::test_all(&mut self.requests);
        }
    }

    /// The whole exchange, phase after phase.
    pub fn exchange<T: Pod>(&mut self, b: &mut Block<T>) {
        for d in 0..3 {
            self.start(b, d);
            self.finish(b);
        }
    }

    fn wait(&mut self) {
        raw::wait_all(&mut self.requests);
    }
}

impl Drop for Halo<'_> {
    fn drop(&mut self) {
        self.wait();
    }
}
