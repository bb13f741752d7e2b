//! Storage precisions: what each format is, and conversions in and out of it.
//!
//! Every format is binary floating point with a sign bit, `E` exponent bits and `M`
//! mantissa bits (see [`codec`] for the value formula). Conversions *into* a format round
//! to nearest, ties to even; values beyond the largest finite value saturate to ±max by
//! default ([`Overflow::Saturate`]) or follow IEEE rules ([`Overflow::NonSaturating`]:
//! ±Inf, or NaN for E4M3 which has no Inf). effcal's kernels compute the low formats in
//! f32 ([`Real`]; f64 data in f64), apart from the GEMM's `vdpbf16ps` path; CPUs have no FP8
//! arithmetic, and the native bf16 dot and f16 FMA some have are measured as peaks
//! (`peak::fma`).
//!
//! Where the rounding is:
//! - one value, exactly, any format: [`codec::encode`] and [`codec::decode`] (the reference);
//! - slices, vectorised: [`bfloat16`] (bf16), [`binary16`] (f16, widened through `half`),
//!   both rounded with AVX2 / F16C where the CPU has them (`x86`), and `minifloat` for both
//!   FP8 formats ([`e4m3`] and [`e5m2`] only give their layouts);
//! - per-tensor and MX block scales for f16 and FP8: [`scaling`].
//!
//! The formats' names (`f64 f32 bf16 f16 e4m3 e5m2`) are the ones used on the command
//! line, in configs and in the JSON.

pub mod bfloat16;
pub mod binary16;
pub mod codec;
pub mod e4m3;
pub mod e5m2;
pub mod ieee;
pub(crate) mod minifloat;
pub mod real;
pub mod scaling;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

pub use bfloat16::bf16;
pub use binary16::f16;
pub use codec::{Layout, Overflow, Special};
pub use e4m3::E4M3;
pub use e5m2::E5M2;
pub use real::Real;

use crate::KernelError;
use std::fmt;
use std::str::FromStr;

pub(crate) mod private {
    pub trait Sealed {}
}

/// A storage format, as a run-time value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    F64,
    F32,
    Bf16,
    F16,
    E4m3,
    E5m2,
}

impl Precision {
    /// Every format, widest first.
    pub const ALL: [Precision; 6] = [Self::F64, Self::F32, Self::Bf16, Self::F16, Self::E4m3, Self::E5m2];

    /// The name used in the CLI, configs and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::E4m3 => "e4m3",
            Self::E5m2 => "e5m2",
        }
    }

    /// The names of all formats, for error messages: `f64, f32, bf16, f16, e4m3, e5m2`.
    pub fn allowed() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Bytes one element occupies in memory.
    pub const fn bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
            Self::E4m3 | Self::E5m2 => 1,
        }
    }

    /// The precision arithmetic on this format is done in (and accumulated in).
    pub const fn compute(self) -> Precision {
        match self {
            Self::F64 => Self::F64,
            _ => Self::F32,
        }
    }

    /// True for the formats input scaling applies to: f16 and the 8-bit formats, whose range
    /// is narrower than f32's. (bf16 has f32's range: scaled to its max, products overflow.)
    pub const fn scalable(self) -> bool {
        matches!(self, Self::F16 | Self::E4m3 | Self::E5m2)
    }

    /// True for the 8-bit formats, which need scaling to use their range.
    pub const fn is_fp8(self) -> bool {
        matches!(self, Self::E4m3 | Self::E5m2)
    }

    /// Bit layout; `None` for f64, whose codes do not fit the 32-bit codec.
    pub const fn layout(self) -> Option<Layout> {
        match self {
            Self::F64 => None,
            Self::F32 => Some(ieee::F32_LAYOUT),
            Self::Bf16 => Some(bfloat16::LAYOUT),
            Self::F16 => Some(binary16::LAYOUT),
            Self::E4m3 => Some(e4m3::LAYOUT),
            Self::E5m2 => Some(e5m2::LAYOUT),
        }
    }

    /// Round `x` to this format (nearest, ties to even) and return the value, exactly.
    pub fn quantize(self, x: f64, overflow: Overflow) -> f64 {
        match self.layout() {
            None => x,
            Some(l) => codec::decode(&l, codec::encode(&l, x, overflow)),
        }
    }

    /// The facts of the format: the rows of `effcal formats`.
    pub fn info(self) -> FormatInfo {
        let Some(l) = self.layout() else {
            return FormatInfo {
                precision: self,
                bits: 64,
                exp_bits: 11,
                man_bits: 52,
                bias: 1023,
                max: f64::MAX,
                min_normal: f64::MIN_POSITIVE,
                min_subnormal: f64::from_bits(1),
                epsilon: f64::EPSILON,
                special: "IEEE: exp all ones = Inf (mantissa 0) or NaN",
            };
        };
        FormatInfo {
            precision: self,
            bits: l.bits(),
            exp_bits: l.exp_bits,
            man_bits: l.man_bits,
            bias: l.bias,
            max: l.max(),
            min_normal: l.min_normal(),
            min_subnormal: l.min_subnormal(),
            epsilon: l.epsilon(),
            special: match l.special {
                Special::Ieee => "IEEE: exp all ones = Inf (mantissa 0) or NaN",
                Special::FiniteNanOnly => "no Inf; NaN only S.1111.111",
            },
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| KernelError::UnknownPrecision { given: s.to_string(), allowed: Self::allowed() })
    }
}

/// The properties of a format that `effcal formats` prints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FormatInfo {
    pub precision: Precision,
    pub bits: u32,
    pub exp_bits: u32,
    pub man_bits: u32,
    pub bias: i32,
    pub max: f64,
    pub min_normal: f64,
    pub min_subnormal: f64,
    /// Machine epsilon, 2^-M: the gap between 1 and the next larger value.
    pub epsilon: f64,
    pub special: &'static str,
}

impl FormatInfo {
    /// Unit roundoff u = epsilon / 2: the largest relative error of rounding to nearest.
    pub fn unit_roundoff(&self) -> f64 {
        self.epsilon / 2.0
    }
}

/// A storage element type. Sealed: implemented for f64, f32, bf16, f16, E4M3, E5M2.
pub trait Element: private::Sealed + Copy + Default + Send + Sync + 'static {
    const PRECISION: Precision;
    /// The type results are accumulated and returned in: f64 for f64, f32 otherwise.
    type Acc: Copy + Default + Send + Sync + Into<f64> + From<f32> + 'static;
    /// Round an f64 to this format (nearest, ties to even), exactly in one step.
    fn from_f64(x: f64, overflow: Overflow) -> Self;
    fn to_f64(self) -> f64;
    /// Vectorised rounding of a slice (nearest, ties to even). Panics if lengths differ.
    fn from_f32_slice(src: &[f32], dst: &mut [Self], overflow: Overflow);
    /// Vectorised exact widening of a slice to f32 (narrowing, rounded, for f64).
    fn to_f32_slice(src: &[Self], dst: &mut [f32]);
    /// Rounds a slice of the accumulation type to this format (a copy for f64 and f32).
    fn from_acc_slice(src: &[Self::Acc], dst: &mut [Self], overflow: Overflow);
    /// Exact widening of a slice to the accumulation type (a copy for f64 and f32).
    fn to_acc_slice(src: &[Self], dst: &mut [Self::Acc]);
    /// The slice as the accumulation type, where the two are the same type (f64, f32).
    fn as_acc_slice(_: &[Self]) -> Option<&[Self::Acc]> {
        None
    }
    /// [`Self::as_acc_slice`], mutable.
    fn as_acc_slice_mut(_: &mut [Self]) -> Option<&mut [Self::Acc]> {
        None
    }
}

#[cfg(test)]
mod tests;
