//! Exact reference codec for binary floating-point formats of up to 32 bits: the 8- and
//! 16-bit storage formats, and f32 itself (its layout is checked against the hardware).
//!
//! A format is `1` sign bit, `E` exponent bits, `M` mantissa bits, exponent bias `B`.
//! With exponent field `e` and mantissa field `f`:
//! - `e = 0`: subnormal, value `(-1)^s · f · 2^(1 - B - M)` (zero when `f = 0`);
//! - otherwise: normal, value `(-1)^s · (2^M + f) · 2^(e - B - M)`.
//!
//! The all-ones exponent is reserved for Inf/NaN in IEEE-like formats (f16, bf16, OCP E5M2).
//! OCP E4M3 ("FN": finite, NaN only) reserves only `S.1111.111` for NaN, so its largest
//! exponent field holds normal numbers up to `1.110b · 2^8 = 448`.
//!
//! [`encode`] rounds an `f64` to nearest, ties to even, in one step (no double rounding: an
//! `f32` input is widened exactly first). It is slow and simple; the vectorised slice
//! converters of each format are tested against it.

/// What the all-ones exponent field means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// IEEE 754: all-ones exponent with zero mantissa is ±Inf, any other mantissa is NaN.
    Ieee,
    /// OCP E4M3 ("FN"): no Inf; only the all-ones exponent *and* all-ones mantissa is NaN.
    FiniteNanOnly,
}

/// What happens to finite values that round beyond the largest finite value, and to ±Inf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Clamp to ±max (the default for GEMM inputs, as in the OCP spec's SAT mode).
    #[default]
    Saturate,
    /// IEEE behaviour: ±Inf where the format has it, NaN otherwise (E4M3).
    NonSaturating,
}

/// The bit layout of a small binary floating-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub exp_bits: u32,
    pub man_bits: u32,
    pub bias: i32,
    pub special: Special,
}

impl Layout {
    pub const fn bits(&self) -> u32 {
        1 + self.exp_bits + self.man_bits
    }
    const fn exp_all_ones(&self) -> u32 {
        (1 << self.exp_bits) - 1
    }
    const fn sign_bit(&self) -> u32 {
        1 << (self.exp_bits + self.man_bits)
    }
    /// Largest finite magnitude as a code (sign clear).
    pub const fn max_code(&self) -> u32 {
        let man_ones = (1 << self.man_bits) - 1;
        match self.special {
            Special::Ieee => ((self.exp_all_ones() - 1) << self.man_bits) | man_ones,
            Special::FiniteNanOnly => (self.exp_all_ones() << self.man_bits) | (man_ones - 1),
        }
    }
    /// The canonical quiet NaN code for a sign.
    pub const fn nan_code(&self, negative: bool) -> u32 {
        let s = if negative { self.sign_bit() } else { 0 };
        match self.special {
            Special::Ieee => {
                s | (self.exp_all_ones() << self.man_bits) | (1 << (self.man_bits - 1))
            }
            Special::FiniteNanOnly => s | (self.exp_all_ones() << self.man_bits) | ((1 << self.man_bits) - 1),
        }
    }
    /// ±Inf code, where the format has one.
    pub const fn inf_code(&self, negative: bool) -> Option<u32> {
        match self.special {
            Special::Ieee => {
                let s = if negative { self.sign_bit() } else { 0 };
                Some(s | (self.exp_all_ones() << self.man_bits))
            }
            Special::FiniteNanOnly => None,
        }
    }
    /// Unbiased exponent of the smallest normal number.
    pub const fn emin(&self) -> i32 {
        1 - self.bias
    }
    /// Unbiased exponent of the largest normal binade.
    pub const fn emax(&self) -> i32 {
        match self.special {
            Special::Ieee => self.exp_all_ones() as i32 - 1 - self.bias,
            Special::FiniteNanOnly => self.exp_all_ones() as i32 - self.bias,
        }
    }
    pub fn max(&self) -> f64 {
        decode(self, self.max_code())
    }
    pub fn min_normal(&self) -> f64 {
        pow2(self.emin())
    }
    pub fn min_subnormal(&self) -> f64 {
        pow2(self.emin() - self.man_bits as i32)
    }
    /// Machine epsilon: the distance from 1 to the next representable number, `2^-M`.
    pub fn epsilon(&self) -> f64 {
        pow2(-(self.man_bits as i32))
    }
}

/// 2^e, exactly, from its bits (`powi` is a library call, and these run for every point of
/// a field); e from f64's least subnormal exponent to its largest.
#[inline]
fn pow2(e: i32) -> f64 {
    debug_assert!((-1074..=1023).contains(&e), "pow2({e})");
    if e >= -1022 { f64::from_bits(((e + 1023) as u64) << 52) } else { f64::from_bits(1u64 << (e + 1074)) }
}

/// The value a code stands for, exactly.
pub fn decode(l: &Layout, code: u32) -> f64 {
    let negative = code & l.sign_bit() != 0;
    let mag = code & (l.sign_bit() - 1);
    let e = mag >> l.man_bits;
    let f = mag & ((1 << l.man_bits) - 1);
    let sign = if negative { -1.0 } else { 1.0 };
    if e == l.exp_all_ones() {
        match l.special {
            Special::Ieee if f == 0 => return sign * f64::INFINITY,
            Special::Ieee => return f64::NAN,
            Special::FiniteNanOnly if f == (1 << l.man_bits) - 1 => return f64::NAN,
            Special::FiniteNanOnly => {}
        }
    }
    let m = l.man_bits as i32;
    let v = if e == 0 {
        f as f64 * pow2(l.emin() - m)
    } else {
        ((1u64 << m) + f as u64) as f64 * pow2(e as i32 - l.bias - m)
    };
    sign * v
}

/// Round `x` to the nearest representable value, ties to even, and return its code.
pub fn encode(l: &Layout, x: f64, overflow: Overflow) -> u32 {
    let negative = x.is_sign_negative();
    let sign = if negative { l.sign_bit() } else { 0 };
    if x.is_nan() {
        return l.nan_code(negative);
    }
    let overflowed = || match (overflow, l.inf_code(negative)) {
        (Overflow::Saturate, _) => sign | l.max_code(),
        (Overflow::NonSaturating, Some(inf)) => inf,
        (Overflow::NonSaturating, None) => l.nan_code(negative),
    };
    let a = x.abs();
    if a.is_infinite() {
        return overflowed();
    }
    if a == 0.0 {
        return sign;
    }
    // Far outside the range: decide before scaling so that nothing overflows in f64.
    if a >= pow2(l.emax() + 2) {
        return overflowed();
    }
    if a < l.min_subnormal() / 4.0 {
        return sign;
    }
    let m = l.man_bits as i32;
    let e = exponent_of(a).max(l.emin());
    // `a / 2^(e - m)` is exact (power-of-two scaling inside f64's normal range).
    let r = (a * pow2(m - e)).round_ties_even() as u64;
    // r in [0, 2^(m+1)]; r = 2^(m+1) means the mantissa carried into the next binade.
    let (e, r) = if r >= 1 << (m + 1) { (e + 1, r >> 1) } else { (e, r) };
    let mag = if r < 1 << m {
        r as u32 // subnormal (only reachable when e == emin)
    } else {
        (((e + l.bias) as u32) << l.man_bits) | (r as u32 - (1 << l.man_bits))
    };
    if mag > l.max_code() {
        return overflowed();
    }
    sign | mag
}

/// floor(log2(a)) for a finite positive f64, exactly (subnormal f64 inputs included).
fn exponent_of(a: f64) -> i32 {
    let bits = a.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        // f64 subnormal: scale up exactly by 2^64.
        exponent_of(a * pow2(64)) - 64
    } else {
        e - 1023
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E4M3: Layout = Layout { exp_bits: 4, man_bits: 3, bias: 7, special: Special::FiniteNanOnly };

    #[test]
    fn exponent_of_is_floor_log2() {
        for (a, e) in [(1.0, 0), (1.5, 0), (2.0, 1), (0.75, -1), (f64::MIN_POSITIVE, -1022), (5e-324, -1074)] {
            assert_eq!(exponent_of(a), e, "a = {a}");
        }
    }

    #[test]
    fn ties_at_the_top_of_e4m3() {
        // 464 is halfway between 448 (mantissa 110, even) and 480 (not representable).
        assert_eq!(decode(&E4M3, encode(&E4M3, 464.0, Overflow::NonSaturating)), 448.0);
        assert!(decode(&E4M3, encode(&E4M3, 464.0001, Overflow::NonSaturating)).is_nan());
        assert_eq!(decode(&E4M3, encode(&E4M3, 464.0001, Overflow::Saturate)), 448.0);
    }
}
