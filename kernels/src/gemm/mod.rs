//! General matrix multiply `C = A·B` with A (m×k) and B (k×n) stored in any precision.
//!
//! FLOPs are counted as `2·m·n·k` (one multiply and one add per term), the HPL/BLAS
//! convention, whatever the path does internally.
//!
//! Accumulation is in f32, or f64 for f64 inputs; C is returned in that type, row-major.
//! Paths ([`GemmPath`]):
//! - f64 on a CPU with AVX-512F: effcal's packed micro-kernel ([`f64_avx512`]), measured
//!   a little faster than faer's on Zen 4; on a CPU with AVX2 and FMA but no AVX-512F, its
//!   256-bit counterpart ([`f64_avx2`]); faer's matmul elsewhere or with
//!   [`Backend::Portable`];
//! - f32: faer's matmul on the data as stored;
//! - bf16 on a CPU with AVX512_BF16: a packed micro-kernel built on `vdpbf16ps`, whose
//!   bf16×bf16 products are exact in f32 (see [`bf16_avx512`]); e4m3 and e5m2 too, widened
//!   to bf16 first (exactly: every FP8 value is a bf16);
//! - everything else (f16, and bf16 and FP8 without the instruction): blocks of K columns
//!   of A and K rows of B are converted to f32 once (O(n²) work against O(n³)), then faer's
//!   f32 matmul accumulates them into C.
//!
//! A per-tensor scale stays out of the inner products: the product is multiplied by
//! `α/(s_A·s_B)` as it lands in C. MX block scales (powers of two) are applied exactly while
//! converting.
//!
//! [`gemm_update`] computes `C = α·A·B` or `C += α·A·B` on a strided C (row stride `ldc`):
//! the trailing update of a blocked LU is `C += (−1)·L·U` on a submatrix.

pub mod accuracy;
pub mod f16acc;
#[cfg(target_arch = "x86_64")]
pub mod bf16_avx512;
#[cfg(target_arch = "x86_64")]
mod blocked;
mod convert;
#[cfg(target_arch = "x86_64")]
pub mod f16_avx512fp16;
#[cfg(target_arch = "x86_64")]
pub mod f64_avx2;
#[cfg(target_arch = "x86_64")]
pub mod f64_avx512;

use crate::KernelError;
use crate::precision::scaling::{KAxis, Quantized, Scaling};
use crate::Precision;
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

impl Backend {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Portable => "portable",
        }
    }
}

/// The backends whose paths for inputs stored in `p`, summed as `acc` says, compete on
/// this CPU (`--backend fastest` times them): effcal's own kernel where the CPU has one (f64
/// with AVX-512F or AVX2+FMA, bf16 and FP8 with AVX512_BF16), then the portable path; just
/// [`Backend::Auto`] where the two are the same path. The paths give the same products
/// (exact in the accumulation format), summed in another order. f16 accumulated in f16 has
/// one: where AVX512_FP16 runs it natively, the portable path is scalar code (one rounded
/// FMA at a time, about 0.1 GFLOP/s a core, three orders of magnitude below), never the
/// faster and minutes long to time at benchmark sizes; `--backend portable` still runs it.
pub fn backends(p: Precision, acc: Accumulate) -> &'static [Backend] {
    #[cfg(target_arch = "x86_64")]
    let own = match (p, acc) {
        (Precision::F64, _) => f64_avx512::available() || f64_avx2::available(),
        (Precision::Bf16 | Precision::E4m3 | Precision::E5m2, _) => bf16_avx512::available(),
        _ => false,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let own = {
        let _ = (p, acc);
        false
    };
    if own { &[Backend::Auto, Backend::Portable] } else { &[Backend::Auto] }
}

/// How the products are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Accumulate {
    /// In f32 (f64 for f64 inputs).
    #[default]
    Wide,
    /// f16 inputs only: in f16 over blocks of `block` terms of k, one rounding per step as
    /// an FP16 FMA unit does, each block's sum then added in f32 ([`f16acc`]).
    F16 { block: usize },
}

impl Accumulate {
    /// The accumulation format's name for inputs stored in `p`.
    pub fn name(self, p: Precision) -> &'static str {
        match self {
            Self::Wide => p.compute().name(),
            Self::F16 { .. } => "f16",
        }
    }

    /// The terms summed in f16 before each f32 addition; None for wide accumulation.
    pub const fn block(self) -> Option<usize> {
        match self {
            Self::Wide => None,
            Self::F16 { block } => Some(block),
        }
    }
}

/// The cache blocking of effcal's packed micro-kernels (Goto/BLIS; see `blocked.rs`): `kc`
/// terms of k per packed panel, row blocks of about `mc` rows of A, B panels of `nc`
/// columns. Each kernel rounds a request to what it can run (`kc` to its k step, `mc` to
/// whole MR-row tiles); [`blocking`] says what ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
}

/// Parameters of a GEMM. The thread count is that of the rayon pool the call runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmParams {
    pub backend: Backend,
    /// K-block of the convert-to-f32 path: columns of A / rows of B converted at a time.
    pub convert_kc: usize,
    pub accumulate: Accumulate,
    /// The blocking of effcal's own packed kernels (f64, bf16, native f16); None: each
    /// kernel's default. faer and the convert-to-f32 path block themselves.
    pub blocking: Option<Blocking>,
}

impl Default for GemmParams {
    fn default() -> Self {
        Self { backend: Backend::Auto, convert_kc: 512, accumulate: Accumulate::Wide, blocking: None }
    }
}

/// The blocking a GEMM on `path` runs with `params`: Some for effcal's packed kernels, None
/// for faer and the paths built on it (they choose their own) and the scalar f16 path.
pub fn blocking(path: GemmPath, params: &GemmParams) -> Option<Blocking> {
    let requested = params.blocking;
    #[cfg(target_arch = "x86_64")]
    match path {
        GemmPath::Avx512F64 => return Some(f64_avx512::blocking(requested)),
        GemmPath::Avx2F64 => return Some(f64_avx2::blocking(requested)),
        GemmPath::Avx512Bf16 => return Some(bf16_avx512::blocking(requested)),
        GemmPath::Avx512Fp16 => return params.accumulate.block().map(|b| f16_avx512fp16::blocking(requested, b)),
        _ => {}
    }
    let _ = (path, requested);
    None
}

/// The implementation a GEMM ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmPath {
    Faer,
    ConvertToF32,
    Avx512Bf16,
    Avx512F64,
    Avx2F64,
    /// f16 accumulation in scalar code ([`f16acc`]).
    F16Accumulate,
    /// f16 accumulation on AVX512_FP16 ([`f16_avx512fp16`]).
    Avx512Fp16,
}

impl GemmPath {
    pub const ALL: [GemmPath; 7] = [Self::Faer, Self::ConvertToF32, Self::Avx512Bf16, Self::Avx512F64, Self::Avx2F64, Self::F16Accumulate, Self::Avx512Fp16];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Faer => "faer",
            Self::ConvertToF32 => "convert-f32+faer",
            Self::Avx512Bf16 => "avx512-bf16",
            Self::Avx512F64 => "avx512-f64",
            Self::Avx2F64 => "avx2-f64",
            Self::F16Accumulate => "f16acc-portable",
            Self::Avx512Fp16 => "avx512fp16-f16acc",
        }
    }

    /// The arithmetic the path multiplies in, for inputs stored in `storage`.
    pub const fn arithmetic(self, storage: Precision) -> Precision {
        match self {
            Self::Faer => storage.compute(),
            Self::ConvertToF32 => Precision::F32,
            Self::Avx512Bf16 => Precision::Bf16,
            Self::Avx512F64 | Self::Avx2F64 => Precision::F64,
            Self::F16Accumulate | Self::Avx512Fp16 => Precision::F16,
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
    fn gemm_impl(c: &mut [Self::Acc], ldc: usize, a: &Quantized<Self>, b: &Quantized<Self>, up: Update<Self::Acc>, p: &GemmParams) -> GemmInfo;
}

/// How the product lands in C.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update<A> {
    /// The factor α of `α·A·B`.
    pub alpha: A,
    /// `C += α·A·B` when true, `C = α·A·B` when false.
    pub accumulate: bool,
}

/// `C = A·B`. `a` must be m×k with [`KAxis::Cols`], `b` k×n with [`KAxis::Rows`], `c` m·n.
pub fn gemm<T: GemmElement>(c: &mut [T::Acc], a: &Quantized<T>, b: &Quantized<T>, params: &GemmParams) -> Result<GemmInfo, KernelError> {
    if c.len() != a.rows * b.cols {
        return Err(KernelError::Dimensions(format!(
            "A is {}×{}, B is {}×{}, C has {} elements",
            a.rows, a.cols, b.rows, b.cols, c.len()
        )));
    }
    gemm_update(c, b.cols, a, b, Update { alpha: T::Acc::from(1.0), accumulate: false }, params)
}

/// `C = α·A·B` or `C += α·A·B` (see [`Update`]) on the m×n matrix C of row stride `ldc`
/// held in `c` (which may be a submatrix: only its m rows of n entries are touched).
pub fn gemm_update<T: GemmElement>(
    c: &mut [T::Acc],
    ldc: usize,
    a: &Quantized<T>,
    b: &Quantized<T>,
    update: Update<T::Acc>,
    params: &GemmParams,
) -> Result<GemmInfo, KernelError> {
    let (m, n) = (a.rows, b.cols);
    let fits = ldc >= n && (m == 0 || c.len() >= (m - 1) * ldc + n);
    if a.cols != b.rows || !fits {
        return Err(KernelError::Dimensions(format!(
            "A is {}×{}, B is {}×{}, C has {} elements with row stride {ldc}",
            a.rows, a.cols, b.rows, b.cols, c.len()
        )));
    }
    if a.k_axis != KAxis::Cols || b.k_axis != KAxis::Rows {
        return Err(KernelError::Dimensions("A must be quantised with k along columns, B with k along rows".into()));
    }
    if !T::PRECISION.scalable() && (a.scaling != Scaling::None || b.scaling != Scaling::None) {
        return Err(KernelError::InvalidParameter {
            name: "scaling",
            given: format!("scaled {} operands", T::PRECISION),
            allowed: "scaling only for f16, e4m3, e5m2; none for f64, f32 and bf16 (f32's range or more)".into(),
        });
    }
    if let Accumulate::F16 { block } = params.accumulate {
        let refuse = |given: String, allowed: &str| Err(KernelError::InvalidParameter { name: "accumulate", given, allowed: allowed.into() });
        if T::PRECISION != Precision::F16 {
            return refuse(format!("f16 accumulation of {} inputs", T::PRECISION), "f16 accumulation for f16 inputs only");
        }
        if block == 0 {
            return refuse("f16 accumulation over blocks of 0 terms".into(), "a block of at least 1 term of k");
        }
        if a.scaling != Scaling::None || b.scaling != Scaling::None {
            return refuse("f16 accumulation of scaled operands".into(), "unscaled f16 operands (scaled to f16's max, their products overflow an f16 accumulator)");
        }
    }
    Ok(T::gemm_impl(c, ldc, a, b, update, params))
}

fn par() -> Par {
    match rayon::current_num_threads() {
        1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// faer on row-major slices: `C = α·A·B` (`Accum::Replace`) or `C += α·A·B` (`Accum::Add`),
/// C with row stride `ldc`.
#[allow(clippy::too_many_arguments)]
fn faer_matmul<T: faer::traits::ComplexField + Copy>(c: &mut [T], ldc: usize, a: &[T], b: &[T], (m, n, k): (usize, usize, usize), beta: Accum, alpha: T) {
    let rows = if m == 0 { 0 } else { (m - 1) * ldc + n };
    // The transpose of a column-major view: faer 0.24.4's `from_row_major_slice_with_stride_mut`
    // checks row-major bounds but builds the view with row stride 1 and column stride
    // `row_stride` (a column-major view), so it writes past the slice.
    let cm = MatMut::from_column_major_slice_with_stride_mut(&mut c[..rows], n, m, ldc).transpose_mut();
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, k, n);
    faer::linalg::matmul::matmul(cm, beta, am, bm, alpha, par());
}

/// Zeroes the m×n window of C (row stride `ldc`): the result of `C = α·A·B` when k = 0.
fn zero_window<A: Copy + Default>(c: &mut [A], ldc: usize, m: usize, n: usize) {
    c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(A::default()));
}

fn beta(accumulate: bool) -> Accum {
    if accumulate { Accum::Add } else { Accum::Replace }
}

impl GemmElement for f64 {
    fn gemm_impl(c: &mut [f64], ldc: usize, a: &Quantized<f64>, b: &Quantized<f64>, up: Update<f64>, p: &GemmParams) -> GemmInfo {
        let mnk = (a.rows, b.cols, a.cols);
        #[cfg(target_arch = "x86_64")]
        if p.backend == Backend::Auto && f64_avx512::available() {
            f64_avx512::gemm(c, ldc, &a.data, &b.data, mnk, up.alpha, up.accumulate, p.blocking);
            return GemmInfo { path: GemmPath::Avx512F64 };
        }
        #[cfg(target_arch = "x86_64")]
        if p.backend == Backend::Auto && f64_avx2::available() {
            f64_avx2::gemm(c, ldc, &a.data, &b.data, mnk, up.alpha, up.accumulate, p.blocking);
            return GemmInfo { path: GemmPath::Avx2F64 };
        }
        let _ = p;
        faer_matmul(c, ldc, &a.data, &b.data, mnk, beta(up.accumulate), up.alpha);
        GemmInfo { path: GemmPath::Faer }
    }
}

impl GemmElement for f32 {
    fn gemm_impl(c: &mut [f32], ldc: usize, a: &Quantized<f32>, b: &Quantized<f32>, up: Update<f32>, _: &GemmParams) -> GemmInfo {
        faer_matmul(c, ldc, &a.data, &b.data, (a.rows, b.cols, a.cols), beta(up.accumulate), up.alpha);
        GemmInfo { path: GemmPath::Faer }
    }
}

impl GemmElement for bf16 {
    fn gemm_impl(c: &mut [f32], ldc: usize, a: &Quantized<bf16>, b: &Quantized<bf16>, up: Update<f32>, p: &GemmParams) -> GemmInfo {
        #[cfg(target_arch = "x86_64")]
        {
            // bf16 operands are never scaled (see `gemm_update`).
            if p.backend == Backend::Auto && bf16_avx512::available() {
                bf16_avx512::gemm(c, ldc, &a.data, &b.data, (a.rows, b.cols, a.cols), up.alpha, up.accumulate, p.blocking);
                return GemmInfo { path: GemmPath::Avx512Bf16 };
            }
        }
        convert::gemm(c, ldc, a, b, up, p)
    }
}

/// Element types whose every value is a bf16: the bf16 kernel packs their bf16 bit
/// patterns (bf16 itself; e4m3 and e5m2, widened exactly while packing).
pub trait Bf16Bits: Copy + Sync {
    fn bf16_bits(self) -> u16;
}

impl Bf16Bits for bf16 {
    fn bf16_bits(self) -> u16 {
        self.to_bits()
    }
}

macro_rules! fp8_path {
    ($($t:ident),*) => {$(
        impl Bf16Bits for $t {
            fn bf16_bits(self) -> u16 {
                // Exact: a unit test checks every code.
                static TABLE: std::sync::LazyLock<[u16; 256]> =
                    std::sync::LazyLock::new(|| std::array::from_fn(|code| bf16::from_f64($t(code as u8).to_f64()).to_bits()));
                TABLE[self.0 as usize]
            }
        }

        impl GemmElement for $t {
            fn gemm_impl(c: &mut [f32], ldc: usize, a: &Quantized<$t>, b: &Quantized<$t>, up: Update<f32>, p: &GemmParams) -> GemmInfo {
                fp8_gemm(c, ldc, a, b, up, p)
            }
        }
    )*};
}
fp8_path!(E4M3, E5M2);

/// FP8 operands: every FP8 value is a bf16, so on a CPU with AVX512_BF16 they take the bf16
/// kernel, whose products are exact in f32 like the f32 path's: widened while packed
/// (unscaled or scaled per tensor: the stored values, at least 2⁻¹⁶ in magnitude) or first,
/// MX block scales applied, where every value is exact there (see
/// [`convert::to_bf16_exact`]). The rest, and other CPUs, take the f32 path.
fn fp8_gemm<T: Element + Bf16Bits>(c: &mut [f32], ldc: usize, a: &Quantized<T>, b: &Quantized<T>, up: Update<f32>, p: &GemmParams) -> GemmInfo {
    #[cfg(target_arch = "x86_64")]
    if p.backend == Backend::Auto && bf16_avx512::available() {
        fn kernel<E: Bf16Bits>(c: &mut [f32], ldc: usize, up: Update<f32>, a: &[E], b: &[E], mnk: (usize, usize, usize), p: &GemmParams) -> GemmInfo {
            bf16_avx512::gemm(c, ldc, a, b, mnk, up.alpha, up.accumulate, p.blocking);
            GemmInfo { path: GemmPath::Avx512Bf16 }
        }
        let mnk = (a.rows, b.cols, a.cols);
        let mx = |x: &Quantized<T>| matches!(x.scaling, Scaling::Mx { .. });
        if !mx(a) && !mx(b) {
            return convert::tensor_scaled(c, ldc, a, b, up, |c, ldc, up| kernel(c, ldc, up, &a.data, &b.data, mnk, p));
        }
        if let Some((ab, bb)) = convert::to_bf16_exact(a).zip(convert::to_bf16_exact(b)) {
            return convert::tensor_scaled(c, ldc, a, b, up, |c, ldc, up| kernel(c, ldc, up, &ab, &bb, mnk, p));
        }
    }
    convert::gemm(c, ldc, a, b, up, p)
}

impl GemmElement for f16 {
    fn gemm_impl(c: &mut [f32], ldc: usize, a: &Quantized<f16>, b: &Quantized<f16>, up: Update<f32>, p: &GemmParams) -> GemmInfo {
        match p.accumulate {
            Accumulate::F16 { block } => {
                #[cfg(target_arch = "x86_64")]
                if p.backend == Backend::Auto && f16_avx512fp16::available() {
                    // f16 accumulation takes unscaled operands only (see `gemm_update`).
                    f16_avx512fp16::gemm(c, ldc, &a.data, &b.data, (a.rows, b.cols, a.cols), up.alpha, up.accumulate, block, p.blocking);
                    return GemmInfo { path: GemmPath::Avx512Fp16 };
                }
                f16acc::gemm(c, ldc, a, b, up, block)
            }
            Accumulate::Wide => convert::gemm(c, ldc, a, b, up, p),
        }
    }
}

#[cfg(test)]
mod tests;
