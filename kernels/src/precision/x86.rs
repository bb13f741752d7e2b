//! f32 → bf16 and f32 → f16 rounding of slices with x86-64 vector instructions, chosen at
//! run time: AVX2 integer arithmetic for bf16 (the same round-to-nearest-even sum as the
//! scalar [`super::bfloat16::encode_f32`]), F16C `vcvtps2ph` for f16 (the hardware rounds
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

/// Values per step: two 256-bit registers of f32.
const STEP: usize = 16;

/// Rounds `src` into `dst` as bf16 bit patterns with AVX2 where the CPU has it; returns
/// how many leading values it rounded (a multiple of 16; 0 without AVX2).
pub(crate) fn bf16_from_f32(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    if !is_x86_feature_detected!("avx2") {
        return 0;
    }
    // SAFETY: AVX2 is present (checked above).
    unsafe { bf16_avx2(src, dst, overflow) }
}

/// Rounds `src` into `dst` as binary16 bit patterns with F16C (and AVX) where the CPU has
/// them; returns how many leading values it rounded (a multiple of 16; 0 without F16C).
pub(crate) fn f16_from_f32(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    if !(is_x86_feature_detected!("f16c") && is_x86_feature_detected!("avx2")) {
        return 0;
    }
    // SAFETY: F16C and AVX2 are present (checked above).
    unsafe { f16_f16c(src, dst, overflow) }
}

#[target_feature(enable = "avx2")]
unsafe fn bf16_avx2(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    let saturate = overflow == Overflow::Saturate;
    // Eight f32 bit patterns → eight codes in the low halves of 32-bit lanes.
    let round = |bits: __m256i| {
        let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(1));
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))));
        let nan = _mm256_or_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(0x0040));
        let abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
        let is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f80_0000));
        let code = _mm256_blendv_epi8(rounded, nan, is_nan);
        if saturate {
            // ±Inf (0x7f80 with either sign) becomes ±max (0x7f7f): subtract 1 there.
            let is_inf = _mm256_cmpeq_epi32(_mm256_and_si256(code, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7f80));
            _mm256_add_epi32(code, is_inf)
        } else {
            code
        }
    };
    for at in (0..n).step_by(STEP) {
        // SAFETY: at + 16 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe {
            let s = src.as_ptr().add(at);
            let lo = round(_mm256_castps_si256(_mm256_loadu_ps(s)));
            let hi = round(_mm256_castps_si256(_mm256_loadu_ps(s.add(8))));
            // packus works within 128-bit halves: lo0-3 hi0-3 lo4-7 hi4-7, put back in order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(lo, hi));
            _mm256_storeu_si256(dst.as_mut_ptr().add(at).cast(), packed);
        }
    }
    n
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_f16c(src: &[f32], dst: &mut [u16], overflow: Overflow) -> usize {
    let n = src.len().min(dst.len()) / STEP * STEP;
    let saturate = overflow == Overflow::Saturate;
    let (max, low) = (_mm256_set1_ps(65504.0), _mm256_set1_ps(-65504.0));
    let round = |x: __m256| {
        // max/min return their second operand where either is NaN: NaN passes through.
        let x = if saturate { _mm256_min_ps(max, _mm256_max_ps(low, x)) } else { x };
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
        // NaN (exponent all ones, mantissa not 0) → sign | 0x7e00, as the scalar path.
        let is_nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
        let quiet = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(i16::MIN)), _mm_set1_epi16(0x7e00));
        _mm_blendv_epi8(h, quiet, is_nan)
    };
    for at in (0..n).step_by(STEP) {
        // SAFETY: at + 16 ≤ n ≤ both lengths; unaligned loads and stores.
        unsafe {
            let s = src.as_ptr().add(at);
            let d = dst.as_mut_ptr().add(at);
            _mm_storeu_si128(d.cast(), round(_mm256_loadu_ps(s)));
            _mm_storeu_si128(d.add(8).cast(), round(_mm256_loadu_ps(s.add(8))));
        }
    }
    n
}
