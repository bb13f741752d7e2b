//! General matrix multiply `C = A·B` with A (m×k) and B (k×n) stored in any precision.
//!
//! FLOPs are counted as `2·m·n·k` (one multiply and one add per term), the HPL/BLAS
//! convention, whatever the path does internally.
//!
//! Accumulation is in f32, or f64 for f64 inputs; C is returned in that type, row-major.
//! Paths ([`GemmPath`]):
//! - f64 on a CPU with AVX-512F: effcal's packed micro-kernel ([`f64_avx512`]), measured
//!   a little faster than faer's on Zen 4; faer's matmul elsewhere or with
//!   [`Backend::Portable`];
//! - f32: faer's matmul on the data as stored;
//! - bf16 on a CPU with AVX512_BF16: a packed micro-kernel built on `vdpbf16ps`, whose
//!   bf16×bf16 products are exact in f32 (see [`bf16_avx512`]);
//! - everything else (f16, e4m3, e5m2, bf16 without the instruction): blocks of K columns
//!   of A and K rows of B are converted to f32 once (O(n²) work against O(n³)), then faer's
//!   f32 matmul accumulates them into C.
//!
//! A per-tensor scale stays out of the inner products: C is divided by `s_A·s_B` at the
//! end. MX block scales (powers of two) are applied exactly while converting.

pub mod accuracy;
#[cfg(target_arch = "x86_64")]
pub mod bf16_avx512;
#[cfg(target_arch = "x86_64")]
mod blocked;
mod convert;
#[cfg(target_arch = "x86_64")]
pub mod f64_avx512;

use crate::KernelError;
use crate::precision::scaling::{KAxis, Quantized, Scaling};
use crate::precision::{E4M3, E5M2, Element, bf16, f16};
use faer::{Accum, MatMut, MatRef, Par};
use std::str::FromStr;

/// Which implementation to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// The fastest path this CPU supports.
    #[default]
    Auto,
    /// faer (f64, f32) or the convert-to-f32 path (the others), even where effcal's
    /// own kernel for the CPU exists.
    Portable,
}

impl FromStr for Backend {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, KernelError> {
        match s {
            "auto" => Ok(Self::Auto),
            "portable" => Ok(Self::Portable),
            _ => Err(KernelError::InvalidParameter { name: "backend", given: s.into(), allowed: "auto, portable".into() }),
        }
    }
}

/// Parameters of a GEMM. The thread count is that of the rayon pool the call runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmParams {
    pub backend: Backend,
    /// K-block of the convert-to-f32 path: columns of A / rows of B converted at a time.
    pub convert_kc: usize,
}

impl Default for GemmParams {
    fn default() -> Self {
        Self { backend: Backend::Auto, convert_kc: 512 }
    }
}

/// The implementation a GEMM ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmPath {
    Faer,
    ConvertToF32,
    Avx512Bf16,
    Avx512F64,
}

impl GemmPath {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Faer => "faer",
            Self::ConvertToF32 => "convert-f32+faer",
            Self::Avx512Bf16 => "avx512-bf16",
            Self::Avx512F64 => "avx512-f64",
        }
    }
}

/// What a GEMM did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmInfo {
    pub path: GemmPath,
}

/// Element types with a GEMM. Sealed through [`Element`].
pub trait GemmElement: Element {
    #[doc(hidden)]
    fn gemm_impl(c: &mut [Self::Acc], a: &Quantized<Self>, b: &Quantized<Self>, p: &GemmParams) -> GemmInfo;
}

/// `C = A·B`. `a` must be m×k with [`KAxis::Cols`], `b` k×n with [`KAxis::Rows`], `c` m·n.
pub fn gemm<T: GemmElement>(c: &mut [T::Acc], a: &Quantized<T>, b: &Quantized<T>, params: &GemmParams) -> Result<GemmInfo, KernelError> {
    if a.cols != b.rows || c.len() != a.rows * b.cols {
        return Err(KernelError::Dimensions(format!(
            "A is {}×{}, B is {}×{}, C has {} elements",
            a.rows, a.cols, b.rows, b.cols, c.len()
        )));
    }
    if a.k_axis != KAxis::Cols || b.k_axis != KAxis::Rows {
        return Err(KernelError::Dimensions("A must be quantised with k along columns, B with k along rows".into()));
    }
    let wide = T::PRECISION.bytes() >= 4;
    if wide && (a.scaling != Scaling::None || b.scaling != Scaling::None) {
        return Err(KernelError::InvalidParameter {
            name: "scaling",
            given: format!("scaled {} operands", T::PRECISION),
            allowed: "scaling only for bf16, f16, e4m3, e5m2; none for f32 and f64".into(),
        });
    }
    Ok(T::gemm_impl(c, a, b, params))
}

fn par() -> Par {
    match rayon::current_num_threads() {
        1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// faer on row-major slices: `C (+)= A·B`.
fn faer_matmul<T: faer::traits::ComplexField + Copy>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, k: usize, beta: Accum, one: T) {
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, k, n);
    faer::linalg::matmul::matmul(cm, beta, am, bm, one, par());
}

impl GemmElement for f64 {
    fn gemm_impl(c: &mut [f64], a: &Quantized<f64>, b: &Quantized<f64>, p: &GemmParams) -> GemmInfo {
        #[cfg(target_arch = "x86_64")]
        if p.backend == Backend::Auto && f64_avx512::available() {
            f64_avx512::gemm(c, &a.data, &b.data, a.rows, b.cols, a.cols);
            return GemmInfo { path: GemmPath::Avx512F64 };
        }
        let _ = p;
        faer_matmul(c, &a.data, &b.data, a.rows, b.cols, a.cols, Accum::Replace, 1.0);
        GemmInfo { path: GemmPath::Faer }
    }
}

impl GemmElement for f32 {
    fn gemm_impl(c: &mut [f32], a: &Quantized<f32>, b: &Quantized<f32>, _: &GemmParams) -> GemmInfo {
        faer_matmul(c, &a.data, &b.data, a.rows, b.cols, a.cols, Accum::Replace, 1.0);
        GemmInfo { path: GemmPath::Faer }
    }
}

impl GemmElement for bf16 {
    fn gemm_impl(c: &mut [f32], a: &Quantized<bf16>, b: &Quantized<bf16>, p: &GemmParams) -> GemmInfo {
        #[cfg(target_arch = "x86_64")]
        {
            let mx = matches!(a.scaling, Scaling::Mx { .. }) || matches!(b.scaling, Scaling::Mx { .. });
            if p.backend == Backend::Auto && !mx && bf16_avx512::available() {
                bf16_avx512::gemm(c, &a.data, &b.data, a.rows, b.cols, a.cols);
                convert::unscale(c, a, b);
                return GemmInfo { path: GemmPath::Avx512Bf16 };
            }
        }
        convert::gemm(c, a, b, p)
    }
}

macro_rules! convert_path {
    ($($t:ty),*) => {$(
        impl GemmElement for $t {
            fn gemm_impl(c: &mut [f32], a: &Quantized<$t>, b: &Quantized<$t>, p: &GemmParams) -> GemmInfo {
                convert::gemm(c, a, b, p)
            }
        }
    )*};
}
convert_path!(f16, E4M3, E5M2);

#[cfg(test)]
mod tests;
