//! STREAM triad `a[i] = b[i] + s·c[i]` over f64 arrays, threads over contiguous chunks.
//! Bytes counted: 24 per element (STREAM convention: 2 loads + 1 store, no write-allocate).

use rayon::prelude::*;

pub use crate::cost::triad::BYTES_PER_ELEMENT;
const SCALAR: f64 = 3.0;
const CHUNK: usize = 1 << 16;

/// The three arrays, first touched in parallel by the threads of the pool that builds them.
pub struct Triad {
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl Triad {
    pub fn new(len: usize) -> Self {
        // vec![0.0; n] maps untouched zero pages; the parallel fill below touches them first.
        let (mut a, mut b, mut c) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks_mut(CHUNK))
            .zip(c.par_chunks_mut(CHUNK))
            .for_each(|((a, b), c)| {
                a.fill(1.0);
                b.fill(2.0);
                c.fill(0.5);
            });
        Self { a, b, c }
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Bytes one sweep moves, STREAM convention.
    pub fn bytes(&self) -> f64 {
        (BYTES_PER_ELEMENT * self.len()) as f64
    }

    /// One sweep of `a = b + s·c`.
    pub fn run(&mut self) {
        self.a
            .par_chunks_mut(CHUNK)
            .zip(self.b.par_chunks(CHUNK))
            .zip(self.c.par_chunks(CHUNK))
            .for_each(|((a, b), c)| {
                for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + SCALAR * c;
                }
            });
    }

    /// True when every element holds the triad's value (exact: 2 + 3·0.5 = 3.5).
    pub fn verify(&self) -> bool {
        self.a.par_iter().all(|&x| x == 2.0 + SCALAR * 0.5)
    }
}
