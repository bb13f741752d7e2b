//! The 7-point sweep of bf16 and f16 fields with AVX-512F (and F16C for f16): the f32
//! arithmetic of [`super::seven`], reading the 16-bit field where it lies (each value
//! widened in a register: a shift for bf16, `vcvtph2ps` for f16) and rounding each chunk of
//! results into the new field (`precision::x86`'s 16-lane rounding), instead of widening
//! planes into a window and rounding rows from a buffer. The same operations in the same
//! order and the same rounding, so the same bits; a third fewer bytes through the caches.

use super::seven::update7;
use super::window::each_row_in_place;
use super::{Block, Region, Stores};
use crate::precision::x86::{Width, bf16_round16, f16_round16};
use crate::precision::{Element, Overflow, bf16, f16};
use std::any::TypeId;
use std::arch::x86_64::*;

/// f32 lanes per chunk.
const LANES: usize = 16;

/// Sweeps `r` as [`super::seven::sweep7`] does and returns true where `T` is bf16 or f16
/// and the CPU has what the rows need; returns false (nothing done) otherwise.
pub(super) fn sweep7<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, c0: T::Acc, c1: T::Acc, stores: Stores) -> bool {
    let bf = TypeId::of::<T>() == TypeId::of::<bf16>();
    // The 512-bit width: AVX-512F with AVX2 and F16C, what the rows are compiled for.
    if !(bf || TypeId::of::<T>() == TypeId::of::<f16>()) || Width::best() != Some(Width::Avx512) {
        return false;
    }
    // T::Acc is f32 for both formats: the conversion is exact.
    let (c0, c1) = (c0.into() as f32, c1.into() as f32);
    let v = |i: usize, j: usize, k: usize| src.data[src.at(i, j, k)].to_f64() as f32;
    let point = |i: usize, j: usize, k: usize| {
        let x = update7(c0, c1, v(i, j, k), [v(i, j, k - 1), v(i, j, k + 1), v(i - 1, j, k), v(i + 1, j, k), v(i, j - 1, k), v(i, j + 1, k)]);
        let mut out = [T::default()];
        T::from_f32_slice(&[x], &mut out, Overflow::Saturate);
        out[0]
    };
    let chunks = |i: usize, j: usize, k: usize, o: *mut T, n: usize| {
        // Every row read spans k − 1 .. k + 16·n + 1 within the block (ghosts included).
        assert!(src.at(i + 1, j + 1, k + LANES * n) < src.data.len() && k >= 1);
        let p = |i: usize, j: usize, k: usize| src.data[src.at(i, j, k)..].as_ptr().cast::<u16>();
        let rows = (p(i, j, k - 1), [p(i - 1, j, k), p(i + 1, j, k), p(i, j - 1, k), p(i, j + 1, k)]);
        // SAFETY: the CPU has the 512-bit width (checked above); the rows hold the points read (asserted above), `o`
        // holds 16·n points (each_row_in_place's contract); T is bf16 or f16, 16-bit codes.
        unsafe {
            if bf {
                row7::<true>(rows.0, rows.1, o.cast(), [c0, c1], n)
            } else {
                row7::<false>(rows.0, rows.1, o.cast(), [c0, c1], n)
            }
        }
    };
    each_row_in_place(src, dst, r, stores, LANES, chunks, point);
    true
}

/// 16 values of a bf16 (`BF16`) or f16 field from `p`, as f32.
#[inline]
#[target_feature(enable = "avx512f,avx2,f16c")]
unsafe fn load<const BF16: bool>(p: *const u16) -> __m512 {
    // SAFETY: the caller's: 16 values at p.
    let codes = unsafe { _mm256_loadu_si256(p.cast()) };
    if BF16 { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(codes))) } else { _mm512_cvtph_ps(codes) }
}

/// `n` chunks of the 7-point row: `c` the centre row at k − 1, `im`, `ip`, `jm`, `jp` the
/// neighbour rows at k, `o` the new row at k; per chunk s = ((u_k−1 + u_k+1) + (u_i−1 +
/// u_i+1)) + (u_j−1 + u_j+1), new = c0·u + c1·s rounded (saturating) to the format.
///
/// # Safety
/// The CPU has AVX-512F, AVX2 and F16C; `c` holds 16·n + 2 values, the others 16·n.
#[target_feature(enable = "avx512f,avx2,f16c")]
unsafe fn row7<const BF16: bool>(c: *const u16, [im, ip, jm, jp]: [*const u16; 4], o: *mut u16, w: [f32; 2], n: usize) {
    let (c0, c1) = (_mm512_set1_ps(w[0]), _mm512_set1_ps(w[1]));
    for ch in 0..n {
        let at = ch * LANES;
        // SAFETY: per the contract, chunk `ch` reads and writes within the rows.
        unsafe {
            let ld = |p: *const u16, d: usize| load::<BF16>(p.add(at + d));
            let s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(ld(c, 0), ld(c, 2)), _mm512_add_ps(ld(im, 0), ld(ip, 0))), _mm512_add_ps(ld(jm, 0), ld(jp, 0)));
            let x = _mm512_add_ps(_mm512_mul_ps(c0, ld(c, 1)), _mm512_mul_ps(c1, s));
            let code = if BF16 { bf16_round16(x, true) } else { f16_round16(x, true) };
            _mm256_storeu_si256(o.add(at).cast(), code);
        }
    }
}
