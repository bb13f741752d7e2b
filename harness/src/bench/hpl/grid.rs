//! The P×Q process grid and the 2D block-cyclic distribution of an n×n matrix over it.
//!
//! Block (I, J) of size NB×NB lives on process (I mod P, J mod Q), as local block
//! (I div P, J div Q): ScaLAPACK's and HPL's layout. Ranks map to the grid row-major
//! (rank = row·Q + col, HPL's PMAP 0) or column-major (rank = col·P + row).

use mpi::topology::{Color, Communicator, SimpleCommunicator};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pmap {
    Row,
    Col,
}

impl Pmap {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Row => "row",
            Self::Col => "col",
        }
    }
}

/// The most square grid P×Q = ranks with P ≤ Q (HPL's advice: P ≤ Q, close to square).
pub fn default_grid(ranks: usize) -> (usize, usize) {
    let mut p = (ranks as f64).sqrt() as usize;
    while p > 1 && !ranks.is_multiple_of(p) {
        p -= 1;
    }
    let p = p.max(1);
    (p, ranks / p)
}

/// One dimension of the block-cyclic distribution: `n` indices in blocks of `nb` over
/// `procs` processes, seen from process `me`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub n: usize,
    pub nb: usize,
    pub procs: usize,
    pub me: usize,
}

impl Axis {
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(self.nb)
    }

    /// Size of global block `b`.
    pub fn block_len(&self, b: usize) -> usize {
        self.nb.min(self.n - b * self.nb)
    }

    pub fn owner(&self, b: usize) -> usize {
        b % self.procs
    }

    pub fn mine(&self, b: usize) -> bool {
        self.owner(b) == self.me
    }

    /// Local indices held in global blocks `0..b` (ScaLAPACK's NUMROC for a prefix).
    pub fn local_before(&self, b: usize) -> usize {
        let b = b.min(self.blocks());
        if b <= self.me {
            return 0;
        }
        let count = (b - self.me - 1) / self.procs + 1;
        let mut len = count * self.nb;
        let last = self.blocks() - 1;
        if b > last && self.mine(last) {
            len -= self.nb - self.block_len(last);
        }
        len
    }

    /// Local indices held in all.
    pub fn local_len(&self) -> usize {
        self.local_before(self.blocks())
    }

    /// Local index of the first entry of global block `b` (which must be mine).
    pub fn local_start(&self, b: usize) -> usize {
        debug_assert!(self.mine(b));
        (b / self.procs) * self.nb
    }

    /// My blocks in order: (global block, local start, length).
    pub fn my_blocks(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (self.me..self.blocks()).step_by(self.procs).map(|b| (b, self.local_start(b), self.block_len(b)))
    }
}

/// This rank's place in the grid and the communicators of its process row and column.
pub struct Grid {
    pub p: usize,
    pub q: usize,
    pub pmap: Pmap,
    pub row: usize,
    pub col: usize,
    /// The ranks of my process row, ranked by column.
    pub row_comm: SimpleCommunicator,
    /// The ranks of my process column, ranked by row.
    pub col_comm: SimpleCommunicator,
}

impl Grid {
    /// Splits `world` (of exactly p·q ranks) into the grid.
    pub fn new(world: &SimpleCommunicator, p: usize, q: usize, pmap: Pmap) -> Self {
        let rank = world.rank() as usize;
        assert_eq!(world.size() as usize, p * q, "the grid must use every rank");
        let (row, col) = match pmap {
            Pmap::Row => (rank / q, rank % q),
            Pmap::Col => (rank % p, rank / p),
        };
        let row_comm = world.split_by_color_with_key(Color::with_value(row as i32), col as i32).expect("in the row");
        let col_comm = world.split_by_color_with_key(Color::with_value(col as i32), row as i32).expect("in the column");
        Self { p, q, pmap, row, col, row_comm, col_comm }
    }

    /// The world rank of grid position (row, col).
    pub fn rank_of(&self, row: usize, col: usize) -> usize {
        match self.pmap {
            Pmap::Row => row * self.q + col,
            Pmap::Col => col * self.p + row,
        }
    }

    pub fn rows(&self, n: usize, nb: usize) -> Axis {
        Axis { n, nb, procs: self.p, me: self.row }
    }

    pub fn cols(&self, n: usize, nb: usize) -> Axis {
        Axis { n, nb, procs: self.q, me: self.col }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counts_add_up_and_match_my_blocks() {
        for (n, nb, procs) in [(10, 3, 2), (1000, 64, 3), (7, 8, 4), (64, 16, 4), (65, 16, 4), (5, 1, 5)] {
            let mut total = 0;
            for me in 0..procs {
                let a = Axis { n, nb, procs, me };
                let from_blocks: usize = a.my_blocks().map(|(_, _, len)| len).sum();
                assert_eq!(a.local_len(), from_blocks, "n={n} nb={nb} procs={procs} me={me}");
                for (b, start, _) in a.my_blocks() {
                    assert_eq!(a.local_before(b), start);
                }
                total += a.local_len();
            }
            assert_eq!(total, n);
        }
    }

    #[test]
    fn default_grids_are_square_with_p_at_most_q() {
        assert_eq!(default_grid(1), (1, 1));
        assert_eq!(default_grid(2), (1, 2));
        assert_eq!(default_grid(4), (2, 2));
        assert_eq!(default_grid(6), (2, 3));
        assert_eq!(default_grid(7), (1, 7));
        assert_eq!(default_grid(12), (3, 4));
    }
}
