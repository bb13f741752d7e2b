//! f32 → bf16 and f32 → f16 rounding of slices with x86-64 vector instructions, chosen at
//! run time (512-bit where the CPU has AVX-512F, else 256-bit): integer arithmetic for
//! bf16 (the same round-to-nearest-even sum as the scalar
//! [`super::bfloat16::encode_f32`]), F16C `vcvtps2ph` for f16 (the hardware rounds
//! to nearest even; saturation is a clamp to ±65504 before it, which rounds the same as
//! rounding first and clamping ±Inf after). NaN becomes the scalar path's quiet NaN
//! (sign kept, payload dropped), so the result is the same bits on every CPU. The scalar
//! converters round what is left (the last < 16 values, and CPUs without the features).
//!
//! The compiler vectorises the scalar loops too, but as a 32-bit-to-16-bit select chain
//! three to four times longer; in a 16-bit stencil sweep that rounding was a third of the
//! time (AMD Zen 3, `perf`).

use super::Overflow;
use std::arch::x86_64::*;

/// The slice roundings take whole multiples of this many values (one 512-bit or two
/// 256-bit registers of f32); the scalar loop rounds the rest.
const STEP: usize = 16;

/// The vector widths the roundings come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 256-bit: AVX2 (and F16C for f16).
    Avx2,
    /// 512-bit: AVX-512F (and AVX2, F16C for the 16-bit NaN fix-up).
    Avx512,
}

impl Width {
    /// The widest this CPU runs, if any.
    pub(crate) fn best() -> Option<Width> {
        Width::available().last()
    }

    /// Every width this CPU runs, narrowest first.
    pub(crate) fn available() -> impl DoubleEndedIterator<Item = Width> {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c");
        let avx512 = avx2 && is_x86_feature_detected!("avx512f");
        [avx2.then_some(Width::Avx2), avx512.then_some(Width::Avx512)].into_iter().flatten()
    }
}

/// Rounds `src` into `dst` as bf16 bit patterns with the widest vectors the CPU has;
/// returns how many leading values it rounded (a multiple of 16; 0 without AVX2).
pub(crate) fn bf16_from_f32(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    Width::best().map_or(0, |w| bf16_from_f32_as(w, src, dst, overflow))
}

/// [`bf16_from_f32`] with vectors of width `w`, which the CPU must have ([`Width::available`]).
pub(crate) fn bf16_from_f32_as(w: Width, src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    round_as(w, [bf16_avx2, bf16_avx512], src, dst, overflow)
}

/// Rounds `src` into `dst` as binary16 bit patterns with F16C and the widest vectors the
/// CPU has; returns how many leading values it rounded (a multiple of 16; 0 without F16C).
pub(crate) fn f16_from_f32(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    Width::best().map_or(0, |w| f16_from_f32_as(w, src, dst, overflow))
}

/// [`f16_from_f32`] with vectors of width `w`, which the CPU must have ([`Width::available`]).
pub(crate) fn f16_from_f32_as(w: Width, src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    round_as(w, [f16_f16c, f16_avx512], src, dst, overflow)
}

/// A slice rounding: the 256-bit and the 512-bit form of one format's.
type Rounding = unsafe fn(&[f32], &mut [u16], Overflow) -> usize;

/// Runs the form of `forms` (256-bit, 512-bit) for width `w`, after checking that the CPU
/// has `w`.
fn round_as(w: Width, forms: [Rounding; 2], src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    assert!(Width::available().any(|a| a == w), "rounding: no {w:?} on this CPU");
    let form = match w {
        Width::Avx2 => forms[0],
        Width::Avx512 => forms[1],
    };
    // SAFETY: the CPU has the features of `w` (asserted above), which are those `form` is
    // compiled for.
    unsafe { form(src, dst, overflow) }
}

/// 16 f32 lanes rounded to bf16 codes ([`bf16_round8`]'s rounding, 512 bits wide).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn bf16_round16(x: __m512, saturate: bool) -> __m256i {
    let bits = _mm512_castps_si512(x);
    let high = _mm512_srli_epi32::<16>(bits);
    let lsb = _mm512_and_si512(high, _mm512_set1_epi32(1));
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))));
    let abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    let is_nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f80_0000));
    let mut code = _mm512_mask_mov_epi32(rounded, is_nan, _mm512_or_si512(high, _mm512_set1_epi32(0x0040)));
    if saturate {
        // ±Inf (0x7f80 with either sign) becomes ±max (0x7f7f).
        let is_inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(code, _mm512_set1_epi32(0x7fff)), _mm512_set1_epi32(0x7f80));
        code = _mm512_mask_sub_epi32(code, is_inf, code, _mm512_set1_epi32(1));
    }
    _mm512_cvtepi32_epi16(code)
}

/// 16 f32 lanes rounded to binary16 codes ([`f16_round8`]'s rounding, one 512-bit `vcvtps2ph`).
#[inline]
#[target_feature(enable = "avx512f,avx2,f16c")]
pub(crate) fn f16_round16(x: __m512, saturate: bool) -> __m256i {
    // max/min return their second operand where either is NaN: NaN passes through.
    let x = if saturate { _mm512_min_ps(_mm512_set1_ps(65504.0), _mm512_max_ps(_mm512_set1_ps(-65504.0), x)) } else { x };
    let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
    // NaN → sign | 0x7e00, as the scalar path.
    let is_nan = _mm256_cmpgt_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)), _mm256_set1_epi16(0x7c00));
    let quiet = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(i16::MIN)), _mm256_set1_epi16(0x7e00));
    _mm256_blendv_epi8(h, quiet, is_nan)
}

#[target_feature(enable = "avx512f")]
unsafe fn bf16_avx512(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    for at in (0..n).step_by(STEP) {
        // SAFETY: at + 16 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(at).cast(), bf16_round16(_mm512_loadu_ps(src.as_ptr().add(at)), overflow == Overflow::Saturate)) };
    }
    n
}

#[target_feature(enable = "avx512f,avx2,f16c")]
unsafe fn f16_avx512(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    for at in (0..n).step_by(STEP) {
        // SAFETY: at + 16 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(at).cast(), f16_round16(_mm512_loadu_ps(src.as_ptr().add(at)), overflow == Overflow::Saturate)) };
    }
    n
}

/// 8 f32 lanes rounded to bf16 codes: the scalar [`super::bfloat16::encode_f32`]'s
/// round-to-nearest-even sum in 32-bit lanes, NaN quieted, ±Inf to ±max when saturating.
#[inline]
#[target_feature(enable = "avx2")]
fn bf16_round8(x: __m256, saturate: bool) -> __m128i {
    let bits = _mm256_castps_si256(x);
    let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(1));
    let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))));
    let nan = _mm256_or_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(0x0040));
    let abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
    let is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f80_0000));
    let mut code = _mm256_blendv_epi8(rounded, nan, is_nan);
    if saturate {
        // ±Inf (0x7f80 with either sign) becomes ±max (0x7f7f): subtract 1 there.
        let is_inf = _mm256_cmpeq_epi32(_mm256_and_si256(code, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7f80));
        code = _mm256_add_epi32(code, is_inf);
    }
    // Codes fit 16 bits: the unsigned saturating pack keeps them.
    _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256::<1>(code))
}

/// 8 f32 lanes rounded to binary16 codes: F16C's `vcvtps2ph` (nearest even), clamped to
/// ±65504 first when saturating, NaN as the scalar path's.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16_round8(x: __m256, saturate: bool) -> __m128i {
    // max/min return their second operand where either is NaN: NaN passes through.
    let x = if saturate { _mm256_min_ps(_mm256_set1_ps(65504.0), _mm256_max_ps(_mm256_set1_ps(-65504.0), x)) } else { x };
    let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
    // NaN (exponent all ones, mantissa not 0) → sign | 0x7e00, as the scalar path.
    let is_nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
    let quiet = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(i16::MIN)), _mm_set1_epi16(0x7e00));
    _mm_blendv_epi8(h, quiet, is_nan)
}

#[target_feature(enable = "avx2")]
unsafe fn bf16_avx2(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    for at in (0..n).step_by(8) {
        // SAFETY: at + 8 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(at).cast(), bf16_round8(_mm256_loadu_ps(src.as_ptr().add(at)), overflow == Overflow::Saturate)) };
    }
    n
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_f16c(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    for at in (0..n).step_by(8) {
        // SAFETY: at + 8 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(at).cast(), f16_round8(_mm256_loadu_ps(src.as_ptr().add(at)), overflow == Overflow::Saturate)) };
    }
    n
}
