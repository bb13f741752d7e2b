//! The HPL-MxP matrices, generated so that any element can be computed on its own.
//!
//! A 64-bit linear congruential generator `x ← a·x + c (mod 2^64)` with a =
//! 6364136223846793005, c = 1 (HPL's constants). The stream starts at `x₀ = a·seed + c`;
//! off-diagonal element (i, j) of the n×n matrix is the value of the state after `i + j·n`
//! further steps (column-major order), reached by jump-ahead: k steps of an affine map are
//! one affine map, computed by repeated squaring in O(log k). A state x stands for
//! `(x as i64)·2^-64` rounded to f64, uniform in [-0.5, 0.5). The right-hand side: element
//! i of the stream of `seed + 1` (rocHPL-MxP continues the matrix's stream instead, at index
//! n² + i; the matrices are the same).
//!
//! The diagonal ([`Generator`]):
//! - `reference`: the sum of the absolute values of the off-diagonal entries of its row, so
//!   the matrix is (weakly) diagonally dominant by rows and factors stably without
//!   pivoting. The generator of the ICL/ROCm HPL-MxP codes (rocHPL-MxP's `RandStat`/
//!   `RandCoeff`, seed 42 by default); the list's rules keep it "for testing purposes".
//!   The sum is exact (integers in units of 2^-64, rounded to f64 once), so every rank
//!   layout and order of summation gives the same diagonal bit for bit.
//! - `shifted`: the same non-symmetric random entries R with the diagonal `√n` — "mild
//!   scaling of the diagonal", one of the generators the list's rules name since 2025.
//!   R's entries are independent with variance σ² = 1/12, so ‖R‖₂ → 2σ√n ≈ 0.577√n
//!   (Geman 1980; Bai & Yin 1988) and every leading block of `√n·I + R` has
//!   σ_min ≥ √n − ‖R‖₂ ≈ 0.42√n: LU without pivoting exists and is stable, with a diagonal
//!   of about 4/√n of the row sums (3% at n = 16384) instead of 100%.

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

/// How the diagonal is made (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Generator {
    #[default]
    Reference,
    Shifted,
}

impl Generator {
    pub const ALL: [Generator; 2] = [Self::Reference, Self::Shifted];
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Shifted => "shifted",
        }
    }
}

impl std::str::FromStr for Generator {
    type Err = crate::KernelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.name() == s).ok_or_else(|| crate::KernelError::InvalidParameter {
            name: "generator",
            given: s.into(),
            allowed: "reference, shifted".into(),
        })
    }
}

/// |v| in units of 2^-64, exactly, for a generated value v (an integer below 2^63).
pub fn abs_units(v: f64) -> u128 {
    (v.abs() * 2f64.powi(64)) as u64 as u128
}

/// A state's value from [`abs_units`] sums: the exact sum rounded to f64 once.
pub fn units_to_f64(units: u128) -> f64 {
    units as f64 * 2f64.powi(-64)
}

/// The HPL-MxP system `A x = b` of order n.
#[derive(Clone, Copy, Debug)]
pub struct Matrix {
    n: usize,
    generator: Generator,
    /// State of element (0, 0).
    start: u64,
    /// State of b[0].
    rhs_start: u64,
    /// n steps: from (i, j) to (i, j + 1).
    next_col: Jump,
}

/// Lanes of the segment generator: 8 independent streams hide the multiply's latency.
const LANES: usize = 8;

impl Matrix {
    pub fn new(n: usize, seed: u64, generator: Generator) -> Self {
        Self {
            n,
            generator,
            start: Jump::STEP.apply(seed),
            rhs_start: Jump::STEP.apply(seed.wrapping_add(1)),
            next_col: Jump::STEP.pow(n as u64),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// State of element (i, j) before the diagonal is replaced.
    pub fn state(&self, i: usize, j: usize) -> u64 {
        Jump::STEP.pow(i as u64).after(self.next_col.pow(j as u64)).apply(self.start)
    }

    /// The states of elements (i0.., j) for `len` rows, in order: `f(r, state of (i0 + r, j))`.
    /// Eight interleaved streams, so the generator runs at throughput, not latency.
    pub fn column_states(&self, i0: usize, j: usize, len: usize, mut f: impl FnMut(usize, u64)) {
        let mut lanes = [0u64; LANES];
        let mut x = self.state(i0, j);
        for l in lanes.iter_mut() {
            *l = x;
            x = Jump::STEP.apply(x);
        }
        let jump = Jump::STEP.pow(LANES as u64);
        let mut r = 0;
        while r + LANES <= len {
            for (k, l) in lanes.iter_mut().enumerate() {
                f(r + k, *l);
                *l = jump.apply(*l);
            }
            r += LANES;
        }
        for (k, &l) in lanes.iter().enumerate().take(len - r) {
            f(r + k, l);
        }
    }

    /// The values of elements (i0.., j) for `out.len()` rows, before the diagonal is
    /// replaced: eight interleaved streams in a loop the compiler vectorises.
    pub fn column_values(&self, i0: usize, j: usize, out: &mut [f64]) {
        let mut lanes = [0u64; LANES];
        let mut x = self.state(i0, j);
        for l in lanes.iter_mut() {
            *l = x;
            x = Jump::STEP.apply(x);
        }
        let jump = Jump::STEP.pow(LANES as u64);
        let mut chunks = out.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (o, l) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *o = value(*l);
                *l = jump.apply(*l);
            }
        }
        for (o, &l) in chunks.into_remainder().iter_mut().zip(&lanes) {
            *o = value(l);
        }
    }

    /// The diagonal entry of row i from the exact sum of |off-diagonal| of that row, in units
    /// of 2^-64 (the reference generator; the shifted one ignores it).
    pub fn diagonal_from_units(&self, units: u128) -> f64 {
        match self.generator {
            Generator::Reference => units_to_f64(units),
            Generator::Shifted => (self.n as f64).sqrt(),
        }
    }

    /// Σ_{j in cols, j ≠ i} |a_ij| in units of 2^-64: a part of row i's sum (ranks holding
    /// different columns add their parts, exactly).
    pub fn row_abs_units(&self, i: usize, cols: std::ops::Range<usize>) -> u128 {
        let mut x = self.state(i, cols.start);
        let mut sum = 0u128;
        for j in cols {
            if j != i {
                sum += abs_units(value(x));
            }
            x = self.next_col.apply(x);
        }
        sum
    }

    /// A(i, i).
    pub fn diagonal(&self, i: usize) -> f64 {
        match self.generator {
            Generator::Reference => self.diagonal_from_units(self.row_abs_units(i, 0..self.n)),
            Generator::Shifted => self.diagonal_from_units(0),
        }
    }

    /// Element (i, j) of A (the diagonal included).
    pub fn element(&self, i: usize, j: usize) -> f64 {
        if i == j { self.diagonal(i) } else { value(self.state(i, j)) }
    }

    /// Fills the block of rows `i0..i0+rows`, columns `j0..j0+cols` of A into `out`,
    /// column-major with leading dimension `ld`, the diagonal included.
    pub fn fill_block(&self, i0: usize, j0: usize, rows: usize, cols: usize, out: &mut [f64], ld: usize) {
        assert!(i0 + rows <= self.n && j0 + cols <= self.n, "block outside the matrix");
        assert!(ld >= rows && (cols == 0 || out.len() >= (cols - 1) * ld + rows), "block does not fit `out`");
        for c in 0..cols {
            let j = j0 + c;
            self.column_values(i0, j, &mut out[c * ld..c * ld + rows]);
            if (i0..i0 + rows).contains(&j) {
                out[c * ld + (j - i0)] = self.diagonal(j);
            }
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
        let r = Matrix::new(4, 42, Generator::Reference);
        for (k, &want) in SEED42_STREAM.iter().enumerate() {
            // Column-major: index k is element (k, 0) for k < n.
            assert_eq!(value(r.state(k, 0)), want, "index {k}");
        }
        assert_eq!(Matrix::new(3, 42, Generator::Reference).rhs(0), -0.16497781223996683);
    }

    #[test]
    fn elements_are_column_major_and_the_diagonal_dominates() {
        let r = Matrix::new(3, 42, Generator::Reference);
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
        for generator in Generator::ALL {
        let r = Matrix::new(37, 7, generator);
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
        // Partial row sums add up to the diagonal exactly.
        for i in 0..37 {
            let parts = r.row_abs_units(i, 0..11) + r.row_abs_units(i, 11..30) + r.row_abs_units(i, 30..37);
            assert_eq!(r.diagonal_from_units(parts), r.diagonal(i), "row {i}");
        }
        }
        assert_eq!(Matrix::new(37, 7, Generator::Shifted).element(3, 3), 37f64.sqrt());
    }

    #[test]
    fn interleaved_column_states_equal_stepping() {
        let r = Matrix::new(100, 3, Generator::Reference);
        for len in [0, 1, 7, 8, 9, 23] {
            let mut got = Vec::new();
            r.column_states(5, 17, len, |k, x| got.push((k, x)));
            let want: Vec<(usize, u64)> = (0..len).map(|k| (k, r.state(5 + k, 17))).collect();
            assert_eq!(got, want, "len {len}");
            let mut values = vec![0.0; len];
            r.column_values(5, 17, &mut values);
            assert_eq!(values, want.iter().map(|&(_, x)| value(x)).collect::<Vec<_>>());
        }
    }
}
