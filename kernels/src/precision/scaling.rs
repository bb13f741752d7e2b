//! Quantised matrices: data in a storage format plus the scaling that maps stored values
//! back to real ones.
//!
//! - [`ScaleMode::None`]: real = stored.
//! - [`ScaleMode::Tensor`]: one f32 factor `s = max_fmt / amax` for the whole matrix, so the
//!   largest magnitude lands on the format's max; stored = round(x·s), real = stored / s.
//!   The GEMM keeps `s` out of the inner products and divides C by `s_A·s_B` once.
//! - [`ScaleMode::Mx`]: OCP Microscaling. Blocks of 32 consecutive elements along the
//!   reduction dimension k share an E8M0 (power of two) scale
//!   `X = 2^(floor(log2 amax_block) - emax_elem)`; stored = round(x / X) with saturation,
//!   real = stored · X (exact: X is a power of two).
//!
//! Matrices are row-major. For `A` (m×k) the reduction index is the column, for `B` (k×n)
//! it is the row; [`KAxis`] says which, so MX blocks always run along k.

use super::{Element, Overflow, Precision};
use crate::KernelError;
use rayon::prelude::*;
use std::str::FromStr;

/// Elements per MX block (OCP MX v1.0).
pub const MX_BLOCK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScaleMode {
    #[default]
    None,
    Tensor,
    Mx,
}

impl ScaleMode {
    pub const ALL: [ScaleMode; 3] = [Self::None, Self::Tensor, Self::Mx];
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Tensor => "tensor",
            Self::Mx => "mx",
        }
    }
    /// The default for a format: per-tensor for FP8 (which needs it to use its range),
    /// none for the others.
    pub const fn default_for(p: Precision) -> Self {
        if p.is_fp8() { Self::Tensor } else { Self::None }
    }
}

impl FromStr for ScaleMode {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, KernelError> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| KernelError::InvalidParameter {
            name: "scaling",
            given: s.to_string(),
            allowed: "none, tensor, mx".to_string(),
        })
    }
}

/// Which index of a row-major matrix is the GEMM reduction index k.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KAxis {
    /// k is the column index (the A operand, m×k).
    Cols,
    /// k is the row index (the B operand, k×n).
    Rows,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scaling {
    None,
    /// real = stored / scale.
    Tensor { scale: f32 },
    /// real = stored · 2^exps[block]; block = (row, col / 32) for [`KAxis::Cols`],
    /// (row / 32, col) for [`KAxis::Rows`].
    Mx { exps: Vec<i8> },
}

/// A row-major `rows × cols` matrix in format `T`.
#[derive(Clone, Debug)]
pub struct Quantized<T> {
    pub data: Vec<T>,
    pub rows: usize,
    pub cols: usize,
    pub k_axis: KAxis,
    pub scaling: Scaling,
}

impl<T: Element> Quantized<T> {
    /// Quantise row-major f32 data (rounding to nearest even, saturating per `overflow`).
    pub fn from_f32(src: &[f32], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode, overflow: Overflow) -> Self {
        assert_eq!(src.len(), rows * cols, "quantize: data length does not match rows × cols");
        if src.is_empty() {
            let scaling = match mode {
                ScaleMode::None => Scaling::None,
                ScaleMode::Tensor => Scaling::Tensor { scale: 1.0 },
                ScaleMode::Mx => Scaling::Mx { exps: Vec::new() },
            };
            return Quantized { data: Vec::new(), rows, cols, k_axis, scaling };
        }
        let mut data = vec![T::default(); src.len()];
        let chunk = cols.max(1) * rows.div_ceil(4 * rayon::current_num_threads()).max(1);
        let scaling = match mode {
            ScaleMode::None => {
                data.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| T::from_f32_slice(s, d, overflow));
                Scaling::None
            }
            ScaleMode::Tensor => {
                let amax = src.par_iter().map(|x| x.abs()).reduce(|| 0.0, f32::max);
                let scale = tensor_scale(T::PRECISION, amax);
                data.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| {
                    let scaled: Vec<f32> = s.iter().map(|x| x * scale).collect();
                    T::from_f32_slice(&scaled, d, overflow);
                });
                Scaling::Tensor { scale }
            }
            ScaleMode::Mx => {
                let exps = mx_exponents::<T>(src, rows, cols, k_axis);
                let exps_ref = &exps;
                data.par_chunks_mut(cols).zip(src.par_chunks(cols)).enumerate().for_each(|(i, (d, s))| {
                    let scaled: Vec<f32> =
                        s.iter().enumerate().map(|(j, x)| x * pow2(-(exps_ref[mx_index(k_axis, cols, i, j)] as i32))).collect();
                    // MX elements always saturate (OCP MX v1.0 clamps to the element max).
                    T::from_f32_slice(&scaled, d, Overflow::Saturate);
                });
                Scaling::Mx { exps }
            }
        };
        Quantized { data, rows, cols, k_axis, scaling }
    }

    /// Uniform [-1, 1) inputs quantised to `T`: element (i, j) is
    /// `rng::uniform_f32(seed, i·cols + j)` before rounding, so anyone holding the seed can
    /// regenerate the unrounded value (the GEMM accuracy check does).
    pub fn uniform(seed: u64, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Self {
        let mut src = vec![0f32; rows * cols];
        crate::rng::fill_uniform(&mut src, seed, 0);
        Self::from_f32(&src, rows, cols, k_axis, mode, Overflow::Saturate)
    }

    /// The real value element (i, j) stands for, exactly.
    pub fn value(&self, i: usize, j: usize) -> f64 {
        let v = self.data[i * self.cols + j].to_f64();
        match &self.scaling {
            Scaling::None => v,
            Scaling::Tensor { scale } => v / *scale as f64,
            Scaling::Mx { exps } => v * pow2(exps[mx_index(self.k_axis, self.cols, i, j)] as i32) as f64,
        }
    }

    /// Converts rows `r0..r0+nr`, columns `c0..c0+nc` to f32 into `dst` (row-major, `nc`
    /// per row), applying MX scales; a tensor scale is left to the caller (see
    /// [`Self::tensor_scale`]).
    pub fn block_to_f32(&self, r0: usize, nr: usize, c0: usize, nc: usize, dst: &mut [f32]) {
        for (r, out) in dst[..nr * nc].chunks_exact_mut(nc).enumerate() {
            let i = r0 + r;
            let start = i * self.cols + c0;
            T::to_f32_slice(&self.data[start..start + nc], out);
            if let Scaling::Mx { exps } = &self.scaling {
                for (c, x) in out.iter_mut().enumerate() {
                    *x *= pow2(exps[mx_index(self.k_axis, self.cols, i, c0 + c)] as i32);
                }
            }
        }
    }

    /// The per-tensor factor (1 unless scaled per tensor): real = stored / factor.
    pub fn tensor_scale(&self) -> f32 {
        match self.scaling {
            Scaling::Tensor { scale } => scale,
            _ => 1.0,
        }
    }
}

/// `max_fmt / amax`, or 1 when `amax` is zero or not finite.
pub fn tensor_scale(p: Precision, amax: f32) -> f32 {
    if amax > 0.0 && amax.is_finite() { (p.info().max / amax as f64) as f32 } else { 1.0 }
}

/// The E8M0 exponent of an MX block: floor(log2 amax) - emax_elem, clamped to E8M0's
/// range [-127, 127]; 0 for an all-zero block.
pub fn mx_exponent(p: Precision, amax: f32) -> i8 {
    if !(amax > 0.0 && amax.is_finite()) {
        return 0;
    }
    let emax_elem = p.layout().map_or(1023, |l| l.emax());
    let e = (amax as f64).log2().floor() as i32;
    (e - emax_elem).clamp(-127, 127) as i8
}

fn mx_index(k_axis: KAxis, cols: usize, i: usize, j: usize) -> usize {
    match k_axis {
        KAxis::Cols => i * cols.div_ceil(MX_BLOCK) + j / MX_BLOCK,
        KAxis::Rows => (i / MX_BLOCK) * cols + j,
    }
}

fn mx_exponents<T: Element>(src: &[f32], rows: usize, cols: usize, k_axis: KAxis) -> Vec<i8> {
    let p = T::PRECISION;
    match k_axis {
        KAxis::Cols => src
            .par_chunks(cols)
            .flat_map_iter(|row| row.chunks(MX_BLOCK).map(move |b| mx_exponent(p, b.iter().fold(0f32, |m, x| m.max(x.abs())))))
            .collect(),
        KAxis::Rows => {
            let mut exps = vec![0i8; rows.div_ceil(MX_BLOCK) * cols];
            exps.par_chunks_mut(cols).enumerate().for_each(|(bi, out)| {
                let r1 = ((bi + 1) * MX_BLOCK).min(rows);
                for (j, e) in out.iter_mut().enumerate() {
                    let amax = (bi * MX_BLOCK..r1).fold(0f32, |m, i| m.max(src[i * cols + j].abs()));
                    *e = mx_exponent(p, amax);
                }
            });
            exps
        }
    }
}

/// 2^e as f32, exact for e in [-149, 127].
fn pow2(e: i32) -> f32 {
    2f32.powi(e)
}
