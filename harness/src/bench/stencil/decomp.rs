//! The 3D Cartesian decomposition of a global grid of points (boundary planes included)
//! over px×py×pz ranks: each dimension split into contiguous blocks whose sizes differ by at
//! most one (the first `G mod P` blocks one larger).

/// px·py·pz = ranks, as equal as possible, the largest factor on the largest dimension
/// (what MPI_Dims_create does, plus the grid's shape).
pub fn balanced_dims(ranks: usize, global: [usize; 3]) -> [usize; 3] {
    // Prime factors, largest first, each given to the dimension with the most points per rank.
    let mut factors = Vec::new();
    let mut r = ranks;
    let mut f = 2;
    while r > 1 {
        while r.is_multiple_of(f) {
            factors.push(f);
            r /= f;
        }
        f += 1;
    }
    factors.reverse();
    let mut dims = [1usize; 3];
    for f in factors {
        let d = (0..3).max_by(|&a, &b| (global[a] as f64 / dims[a] as f64).total_cmp(&(global[b] as f64 / dims[b] as f64)).then(b.cmp(&a))).expect("three dims");
        dims[d] *= f;
    }
    dims
}

/// The first global index and the count of block `c` of `procs` over `g` points.
pub fn span(g: usize, procs: usize, c: usize) -> (usize, usize) {
    let (base, extra) = (g / procs, g % procs);
    (c * base + c.min(extra), base + usize::from(c < extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_are_balanced_and_follow_the_grid() {
        assert_eq!(balanced_dims(1, [10, 10, 10]), [1, 1, 1]);
        assert_eq!(balanced_dims(2, [64, 32, 32]), [2, 1, 1]);
        assert_eq!(balanced_dims(4, [64, 64, 64]), [2, 2, 1]);
        assert_eq!(balanced_dims(8, [64, 64, 64]), [2, 2, 2]);
        assert_eq!(balanced_dims(6, [100, 50, 50]), [3, 2, 1]);
        assert_eq!(balanced_dims(3, [10, 40, 10]), [1, 3, 1]);
    }

    #[test]
    fn spans_cover_the_dimension_once() {
        for (g, p) in [(10, 3), (64, 4), (7, 7), (5, 2)] {
            let mut next = 0;
            for c in 0..p {
                let (s, n) = span(g, p, c);
                assert_eq!(s, next);
                assert!(n == g / p || n == g / p + 1);
                next = s + n;
            }
            assert_eq!(next, g);
        }
    }
}
