//! 3D stencil sweeps (Jacobi: every point of the new field from the old one) on a block of
//! a grid with one ghost layer, stored in any format and computed in f32 (f64 for f64).
//!
//! - [`Kind::Seven`]: `u' = c0·u + c1·(u_i−1 + u_i+1 + u_j−1 + u_j+1 + u_k−1 + u_k+1)`,
//!   8 FLOPs per point (5 + 1 additions, 2 multiplications), the heat equation's explicit step.
//! - [`Kind::Himeno`]: RIKEN's Himeno benchmark (v3.0), the 19-point Jacobi sweep of a
//!   pressure Poisson equation with coefficient arrays a (4), b (3), c (3), wrk1, bnd and
//!   omega = 0.8, its expression evaluated in the original's order; 34 FLOPs per point (the
//!   original's count); returns gosa, Σ ss² (accumulated in f64).
//! - [`Kind::TwentySeven`]: `u' = c0·u + c1·Σ(26 neighbours)`, HPCG's 27-point operator
//!   counted as HPCG counts it, 2 FLOPs per matrix entry: 54 per point (the sweep itself
//!   does 25 additions, summed as a tree, and 3 operations more).
//!
//! Layout: index (i, j, k), k fastest, each of the three extents padded by one ghost point
//! on both sides, so block point (i, j, k) for i in 1..=ni is local, 0 and ni+1 are
//! ghosts. The sums are evaluated in a fixed order, so a point's new value depends only on
//! the old values around it: the result is the same bits whatever the decomposition.
//!
//! One file per sweep ([`seven`], [`twenty_seven`], [`himeno`]) over what they share
//! ([`window`]: the rolling plane window, rows in fixed chunks, prefetch); [`f16_arith`]
//! has the 7- and 27-point sweeps of f16 fields computed in f16 (every operation rounded to
//! f16) instead of f32, emulated, or native on AVX512_FP16 (`f16_native`). The 7-point sweep of bf16
//! and f16 fields has rows with AVX-512F that read the field in place (`seven_x86`). FLOP and byte
//! weights are in [`crate::cost::stencil`].

mod f16_arith;
#[cfg(target_arch = "x86_64")]
mod f16_native;
mod himeno;
mod seven;
#[cfg(target_arch = "x86_64")]
mod seven_x86;
mod twenty_seven;
mod window;

pub use f16_arith::{f16_arith_native, sweep7_f16, sweep27_f16};
pub use himeno::{HimenoCoefficients, OMEGA, himeno, himeno_init};
pub use seven::sweep7;
pub use twenty_seven::sweep27;


use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Seven,
    Himeno,
    TwentySeven,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Self::Seven, Self::Himeno, Self::TwentySeven];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Seven => "7pt",
            Self::Himeno => "himeno",
            Self::TwentySeven => "27pt",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = crate::KernelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| crate::KernelError::InvalidParameter {
            name: "kind",
            given: s.into(),
            allowed: "7pt, himeno, 27pt".into(),
        })
    }
}

/// How a sweep writes the new field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stores {
    /// Ordinary stores: each line of the new field is read into the cache before it is
    /// written (write-allocate), 8 bytes of traffic per f64 point more than the STREAM count.
    Normal,
    /// Non-temporal (streaming) stores past the caches for each row's 16-byte-aligned
    /// middle (x86-64 `movntdq`; ordinary stores at the rows' ends and on other CPUs):
    /// no write-allocate read, for fields larger than the cache.
    Streaming,
}

impl Stores {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Streaming => "streaming",
        }
    }
}

/// A block of ni×nj×nk points with one ghost layer, k fastest.
#[derive(Clone, Debug, PartialEq)]
pub struct Block<T> {
    pub data: Vec<T>,
    /// Local extents without ghosts.
    pub n: [usize; 3],
}

impl<T: Copy + Default> Block<T> {
    pub fn zeros(n: [usize; 3]) -> Self {
        Self { data: vec![T::default(); (n[0] + 2) * (n[1] + 2) * (n[2] + 2)], n }
    }

    /// Points per i-plane, ghosts included.
    pub fn plane(&self) -> usize {
        (self.n[1] + 2) * (self.n[2] + 2)
    }

    /// Points per row (k), ghosts included.
    pub fn row(&self) -> usize {
        self.n[2] + 2
    }

    /// Index of (i, j, k), ghost-inclusive coordinates (0..=n+1).
    pub fn at(&self, i: usize, j: usize, k: usize) -> usize {
        (i * (self.n[1] + 2) + j) * (self.n[2] + 2) + k
    }
}

/// The points a sweep updates, in ghost-inclusive coordinates (each range within 1..=n).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub i: Range<usize>,
    pub j: Range<usize>,
    pub k: Range<usize>,
}

impl Region {
    pub fn points(&self) -> usize {
        self.i.len() * self.j.len() * self.k.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points() == 0
    }
}

#[cfg(test)]
mod tests;
