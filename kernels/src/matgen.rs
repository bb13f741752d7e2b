//! The HPL-MxP reference matrix, generated so that any element can be computed on its own.
//!
//! A 64-bit linear congruential generator `x ← a·x + c (mod 2^64)` with a =
//! 6364136223846793005, c = 1 (HPL's constants). The stream starts at `x₀ = a·seed + c`;
//! element (i, j) of the n×n matrix is the value of the state after `i + j·n` further steps
//! (column-major order), reached by jump-ahead: k steps of an affine map are one affine map,
//! computed by repeated squaring in O(log k). A state x stands for `(x as i64)·2^-64`,
//! uniform in [-0.5, 0.5). The diagonal is replaced by the sum of the absolute values of the
//! off-diagonal entries of its row, so the matrix is (weakly) diagonally dominant by rows and
//! factors stably without pivoting. This is the generator of the ICL/ROCm HPL-MxP codes
//! (rocHPL-MxP's `RandStat`/`RandCoeff`, seed 42 by default).
//!
//! The right-hand side: element i of the stream of `seed + 1` (rocHPL-MxP continues the
//! matrix's stream instead, at index n² + i; the matrices are the same).

/// The LCG's multiplier and increment (HPL's).
pub const LCG_A: u64 = 6364136223846793005;
pub const LCG_C: u64 = 1;

/// An affine map `x ↦ a·x + c (mod 2^64)`: k steps of the generator are one such map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jump {
    a: u64,
    c: u64,
}

impl Jump {
    /// One step of the generator.
    pub const STEP: Jump = Jump { a: LCG_A, c: LCG_C };
    pub const IDENTITY: Jump = Jump { a: 1, c: 0 };

    pub fn apply(self, x: u64) -> u64 {
        self.a.wrapping_mul(x).wrapping_add(self.c)
    }

    /// `self` after `first`: x ↦ self(first(x)).
    pub fn after(self, first: Jump) -> Jump {
        Jump { a: self.a.wrapping_mul(first.a), c: self.a.wrapping_mul(first.c).wrapping_add(self.c) }
    }

    /// The map applied `k` times, by repeated squaring.
    pub fn pow(self, mut k: u64) -> Jump {
        let (mut result, mut base) = (Jump::IDENTITY, self);
        while k != 0 {
            if k & 1 == 1 {
                result = base.after(result);
            }
            base = base.after(base);
            k >>= 1;
        }
        result
    }
}

/// The value a state stands for: `(x as i64)·2^-64`, in [-0.5, 0.5).
pub fn value(x: u64) -> f64 {
    (x as i64) as f64 * 2f64.powi(-64)
}

/// The HPL-MxP reference system `A x = b` of order n.
#[derive(Clone, Copy, Debug)]
pub struct Reference {
    n: usize,
    /// State of element (0, 0).
    start: u64,
    /// State of b[0].
    rhs_start: u64,
    /// n steps: from (i, j) to (i, j + 1).
    next_col: Jump,
}

impl Reference {
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            start: Jump::STEP.apply(seed),
            rhs_start: Jump::STEP.apply(seed.wrapping_add(1)),
            next_col: Jump::STEP.pow(n as u64),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// State of element (i, j) before the diagonal is replaced.
    fn state(&self, i: usize, j: usize) -> u64 {
        Jump::STEP.pow(i as u64).after(self.next_col.pow(j as u64)).apply(self.start)
    }

    /// Element (i, j) of A (the diagonal included).
    pub fn element(&self, i: usize, j: usize) -> f64 {
        if i == j { self.diagonal(i) } else { value(self.state(i, j)) }
    }

    /// Σ_{j in cols, j ≠ i} |a_ij|: a part of row i's diagonal (ranks holding different
    /// columns add their parts).
    pub fn row_abs_sum(&self, i: usize, cols: std::ops::Range<usize>) -> f64 {
        let mut x = self.state(i, cols.start);
        let mut sum = 0.0;
        for j in cols {
            if j != i {
                sum += value(x).abs();
            }
            x = self.next_col.apply(x);
        }
        sum
    }

    /// A(i, i) = Σ_{j ≠ i} |a_ij|.
    pub fn diagonal(&self, i: usize) -> f64 {
        self.row_abs_sum(i, 0..self.n)
    }

    /// Fills the block of rows `i0..i0+rows`, columns `j0..j0+cols` of A into `out`,
    /// column-major with leading dimension `ld`, the diagonal included. Each column costs
    /// one jump and then one step per element.
    pub fn fill_block(&self, i0: usize, j0: usize, rows: usize, cols: usize, out: &mut [f64], ld: usize) {
        assert!(i0 + rows <= self.n && j0 + cols <= self.n, "block outside the matrix");
        assert!(ld >= rows && (cols == 0 || out.len() >= (cols - 1) * ld + rows), "block does not fit `out`");
        let mut col_state = self.state(i0, j0);
        for c in 0..cols {
            let mut x = col_state;
            for r in 0..rows {
                out[c * ld + r] = value(x);
                x = Jump::STEP.apply(x);
            }
            let j = j0 + c;
            if (i0..i0 + rows).contains(&j) {
                out[c * ld + (j - i0)] = self.diagonal(j);
            }
            col_state = self.next_col.apply(col_state);
        }
    }

    /// b[i].
    pub fn rhs(&self, i: usize) -> f64 {
        value(Jump::STEP.pow(i as u64).apply(self.rhs_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed independently (Python, arbitrary-precision integers) for seed 42.
    const SEED42_STREAM: [f64; 4] = [0.4900216717656138, 0.46876518464537764, -0.4397758052143747, 0.024927116063841192];

    #[test]
    fn the_stream_of_seed_42_is_hpls_lcg() {
        let r = Reference::new(4, 42);
        for (k, &want) in SEED42_STREAM.iter().enumerate() {
            // Column-major: index k is element (k, 0) for k < n.
            assert_eq!(value(r.state(k, 0)), want, "index {k}");
        }
        assert_eq!(Reference::new(3, 42).rhs(0), -0.16497781223996683);
    }

    #[test]
    fn elements_are_column_major_and_the_diagonal_dominates() {
        let r = Reference::new(3, 42);
        // Off-diagonal entries (i, j) = stream index i + 3j (Python, as above).
        assert_eq!(r.element(1, 0), 0.46876518464537764);
        assert_eq!(r.element(0, 1), 0.024927116063841192);
        assert_eq!(r.element(2, 1), -0.34541631326759864);
        assert_eq!(r.element(0, 2), 0.071516511606279);
        assert_eq!(r.element(1, 2), 0.400166695956738);
        assert_eq!(r.element(2, 0), -0.4397758052143747);
        assert_eq!(r.element(0, 0), 0.024927116063841192 + 0.071516511606279);
        assert_eq!(r.element(2, 2), 0.4397758052143747 + 0.34541631326759864);
    }

    #[test]
    fn jump_ahead_equals_stepping() {
        let mut x = 12345u64;
        for k in 0..300u64 {
            assert_eq!(Jump::STEP.pow(k).apply(12345), x, "k = {k}");
            x = Jump::STEP.apply(x);
        }
        let j = Jump::STEP.pow(1_000_003);
        assert_eq!(j.after(Jump::STEP.pow(7)), Jump::STEP.pow(1_000_010));
    }

    #[test]
    fn blocks_match_elements_and_stay_in_range() {
        let r = Reference::new(37, 7);
        let (i0, j0, rows, cols, ld) = (5, 3, 20, 17, 23);
        let mut out = vec![f64::NAN; ld * cols];
        r.fill_block(i0, j0, rows, cols, &mut out, ld);
        for c in 0..cols {
            for rr in 0..rows {
                let (i, j) = (i0 + rr, j0 + c);
                assert_eq!(out[c * ld + rr], r.element(i, j), "({i}, {j})");
                if i != j {
                    assert!((-0.5..0.5).contains(&out[c * ld + rr]));
                }
            }
        }
        // Partial row sums add up to the diagonal.
        for i in 0..37 {
            let parts = r.row_abs_sum(i, 0..11) + r.row_abs_sum(i, 11..30) + r.row_abs_sum(i, 30..37);
            assert!((parts - r.diagonal(i)).abs() <= 1e-15 * r.diagonal(i), "row {i}");
        }
    }
}
