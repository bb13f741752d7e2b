//! What each kernel family counts, in one table: FLOPs, bytes moved (the STREAM convention:
//! each array element read or written once, no write-allocate traffic) and bytes held in
//! memory. The drivers turn times into rates with it, plan sizing turns memory into problem
//! sizes, the roofline turns records into arithmetic intensity.
//!
//! | family | FLOPs | bytes moved | bytes held |
//! |---|---|---|---|
//! | GEMM (m×k · k×n) | 2mnk | A, B in storage, C in the accumulation format, once each | A, B in storage, C in accumulation, per element |
//! | HPL-MxP (order n) | 2/3·n³ + 3/2·n² (LU alone: 2/3·n³) | the working matrix read and written once, in accumulation | the factors in accumulation, per element |
//! | stencils | 8 (7-point), 34 (Himeno), 54 (27-point) per updated point | old and new field (Himeno also its 12 coefficient arrays) | the fields, the f64 result and below f64 the f64 reference's |
//! | STREAM triad | – | 24 per f64 element (2 loads, 1 store) | – |

use crate::Precision;

/// GEMM `C = A·B` of m×k by k×n, A and B stored in `p`, C in `p`'s accumulation format.
pub mod gemm {
    use super::Precision;

    /// How the records state it.
    pub const FLOP_CONVENTION: &str = "2mnk per rank";

    pub fn flops(m: usize, n: usize, k: usize) -> f64 {
        2.0 * m as f64 * n as f64 * k as f64
    }

    /// The minimal traffic: A and B read once in storage, C written once in accumulation.
    pub fn bytes_moved(p: Precision, m: usize, n: usize, k: usize) -> f64 {
        let (m, n, k) = (m as f64, n as f64, k as f64);
        (m * k + k * n) * p.bytes() as f64 + m * n * p.compute().bytes() as f64
    }

    /// Bytes a rank holds per matrix element: A and B in storage, C in accumulation.
    pub fn bytes_held_per_element(p: Precision) -> usize {
        2 * p.bytes() + p.compute().bytes()
    }
}

/// HPL-MxP's solve of order n.
pub mod hpl {
    use super::Precision;

    /// How the records state it.
    pub const FLOP_CONVENTION: &str = "2/3 n^3 + 3/2 n^2 per solve (HPL)";

    /// HPL's count for a solve: 2/3·n³ + 3/2·n².
    pub fn flops(n: usize) -> f64 {
        let n = n as f64;
        2.0 / 3.0 * n * n * n + 1.5 * n * n
    }

    /// The factorisation alone: 2/3·n³.
    pub fn lu_flops(n: usize) -> f64 {
        2.0 / 3.0 * (n as f64).powi(3)
    }

    /// The minimal traffic: the working matrix (accumulation format) read and written once.
    pub fn bytes_moved(p: Precision, n: usize) -> f64 {
        2.0 * (n as f64).powi(2) * p.compute().bytes() as f64
    }

    /// Bytes per matrix element: the factors are held in the accumulation format (f32, f64
    /// for f64); the f64 matrix of the residuals is regenerated, not kept.
    pub fn bytes_held_per_element(p: Precision) -> usize {
        p.compute().bytes()
    }
}

/// The stencil sweeps, per updated point.
pub mod stencil {
    use super::Precision;
    use crate::stencil::Kind;

    /// 7-point: 6 additions and 2 multiplications; Himeno: the original's 34; 27-point:
    /// HPCG's 2 per matrix entry.
    pub const fn flops_per_point(kind: Kind) -> u64 {
        match kind {
            Kind::Seven => 8,
            Kind::Himeno => 34,
            Kind::TwentySeven => 54,
        }
    }

    /// How the records state it.
    pub fn flop_convention(kind: Kind) -> String {
        format!("{} per updated point", flops_per_point(kind))
    }

    /// Arrays a sweep must move per updated point: the old field read and the new one
    /// written; Himeno also reads its 12 coefficient arrays.
    pub const fn arrays_moved(kind: Kind) -> usize {
        match kind {
            Kind::Himeno => 14,
            _ => 2,
        }
    }

    /// Bytes moved per updated point, the STREAM convention.
    pub fn bytes_per_point(kind: Kind, p: Precision) -> usize {
        arrays_moved(kind) * p.bytes()
    }

    /// Bytes a rank holds per grid point while it runs and validates: its fields in
    /// storage, the final field widened to f64, and (below f64) the f64 reference run's.
    pub fn bytes_held_per_point(kind: Kind, p: Precision) -> usize {
        let reference = if p == Precision::F64 { 0 } else { bytes_per_point(kind, Precision::F64) + 8 };
        bytes_per_point(kind, p) + 8 + reference
    }
}

/// STREAM triad `a = b + s·c` in f64.
pub mod triad {
    /// 2 loads and 1 store of 8 bytes, no write-allocate traffic.
    pub const BYTES_PER_ELEMENT: usize = 24;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stencil::Kind;

    #[test]
    fn the_conventions_by_hand() {
        assert_eq!(gemm::flops(2, 3, 4), 48.0);
        // bf16 inputs (2 bytes), f32 output: (2·4 + 4·3)·2 + 2·3·4 = 64.
        assert_eq!(gemm::bytes_moved(Precision::Bf16, 2, 3, 4), 64.0);
        assert_eq!(gemm::bytes_held_per_element(Precision::E4m3), 6);
        assert_eq!(hpl::flops(6), 2.0 / 3.0 * 216.0 + 1.5 * 36.0);
        assert_eq!(hpl::lu_flops(3), 18.0);
        assert_eq!(hpl::bytes_moved(Precision::F16, 10), 800.0);
        assert_eq!(hpl::bytes_held_per_element(Precision::F64), 8);
        assert_eq!(Kind::ALL.map(stencil::flops_per_point), [8, 34, 54]);
        assert_eq!(stencil::bytes_per_point(Kind::Himeno, Precision::Bf16), 28);
        // f32 7-point: 2·4 stored, 8 widened, and the f64 reference's 2·8 + 8.
        assert_eq!(stencil::bytes_held_per_point(Kind::Seven, Precision::F32), 40);
        assert_eq!(stencil::flop_convention(Kind::Himeno), "34 per updated point");
    }
}
