//! A counter-based generator: element `i` of stream `seed` is `mix(seed, i)`, so ranks and
//! threads fill their own parts of a matrix, and any element can be regenerated on its own
//! (the accuracy check regenerates the rows and columns it samples).

/// SplitMix64's finaliser applied to `seed ⊕ i·φ`: a well-mixed 64-bit value.
#[inline]
pub fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in [-1, 1) with 24 random bits: exactly representable in f32 (and f64), so the
/// f32 and f64 GEMMs see their inputs unrounded.
#[inline]
pub fn uniform_f32(seed: u64, i: u64) -> f32 {
    ((mix(seed, i) >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
}

/// A stream seed derived from a base seed and a label (e.g. rank and operand).
pub fn stream(base: u64, label: u64) -> u64 {
    mix(base ^ 0x5eed_5eed_5eed_5eed, label)
}

/// Fills `dst` with `uniform_f32(seed, offset + index)` in parallel.
pub fn fill_uniform(dst: &mut [f32], seed: u64, offset: u64) {
    use rayon::prelude::*;
    dst.par_chunks_mut(1 << 16).enumerate().for_each(|(c, chunk)| {
        let base = offset + (c << 16) as u64;
        for (i, x) in chunk.iter_mut().enumerate() {
            *x = uniform_f32(seed, base + i as u64);
        }
    });
}
