//! Format tables and rounding, checked exhaustively where the format is small enough.

use super::codec::{decode, encode};
use super::*;

const SMALL: [Precision; 5] = [Precision::F32, Precision::Bf16, Precision::F16, Precision::E4m3, Precision::E5m2];

/// The value of a code from the spec's formula, written independently of `codec::decode`.
fn spec_value(l: &Layout, code: u32) -> f64 {
    let m = l.man_bits;
    let s = if code >> (l.exp_bits + m) & 1 == 1 { -1.0 } else { 1.0 };
    let e = (code >> m) & ((1 << l.exp_bits) - 1);
    let f = (code & ((1 << m) - 1)) as f64 / (1u64 << m) as f64;
    let all_ones = (1 << l.exp_bits) - 1;
    match l.special {
        Special::Ieee if e == all_ones => {
            if f == 0.0 {
                s * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        Special::FiniteNanOnly if e == all_ones && f == 1.0 - 1.0 / (1u64 << m) as f64 => f64::NAN,
        _ if e == 0 => s * f * 2f64.powi(1 - l.bias),
        _ => s * (1.0 + f) * 2f64.powi(e as i32 - l.bias),
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn every_fp8_code_decodes_to_the_spec_value() {
    for p in [Precision::E4m3, Precision::E5m2] {
        let l = p.layout().unwrap();
        for code in 0..256u32 {
            let (got, want) = (decode(&l, code), spec_value(&l, code));
            assert!(same(got, want), "{p} code {code:#04x}: decoded {got}, spec {want}");
        }
    }
}

/// The slice widening of the 8-bit formats (branch-free, vectorised) gives the spec's value
/// of every code, bit for bit (the sign of zero included), in slices of every length up to
/// past two vectors.
#[test]
fn every_fp8_code_widens_to_the_spec_value_in_slices() {
    fn check<T: Element>(l: &Layout, of: impl Fn(u8) -> T) {
        let codes: Vec<u8> = (0..=255).collect();
        for len in (0..=40).chain([256]) {
            let src: Vec<T> = codes.iter().cycle().skip(97).take(len).map(|&c| of(c)).collect();
            let mut dst = vec![0f32; len];
            T::to_f32_slice(&src, &mut dst);
            for (n, &got) in dst.iter().enumerate() {
                let code = codes[(97 + n) % 256] as u32;
                let want = spec_value(l, code);
                assert!(same(got as f64, want), "{} code {code:#04x}: widened {got}, spec {want}", T::PRECISION);
            }
        }
    }
    check(&e4m3::LAYOUT, E4M3);
    check(&e5m2::LAYOUT, E5M2);
}

#[test]
fn fp8_landmarks() {
    let e4 = e4m3::LAYOUT;
    assert_eq!(decode(&e4, 0x7e), 448.0);
    assert!(decode(&e4, 0x7f).is_nan() && decode(&e4, 0xff).is_nan());
    assert_eq!(decode(&e4, 0x78), 256.0); // exponent 1111 holds normals in E4M3
    assert_eq!(decode(&e4, 0x38), 1.0);
    assert_eq!(decode(&e4, 0x08), 2f64.powi(-6));
    assert_eq!(decode(&e4, 0x01), 2f64.powi(-9));
    assert_eq!((0..256).filter(|&c| decode(&e4, c).is_nan()).count(), 2);
    assert_eq!((0..256).filter(|&c| decode(&e4, c).is_infinite()).count(), 0);

    let e5 = e5m2::LAYOUT;
    assert_eq!(decode(&e5, 0x7b), 57344.0);
    assert_eq!(decode(&e5, 0x7c), f64::INFINITY);
    assert_eq!(decode(&e5, 0xfc), f64::NEG_INFINITY);
    assert_eq!(decode(&e5, 0x3c), 1.0);
    assert_eq!(decode(&e5, 0x04), 2f64.powi(-14));
    assert_eq!(decode(&e5, 0x01), 2f64.powi(-16));
    assert_eq!((0..256).filter(|&c| decode(&e5, c).is_nan()).count(), 6);
}

#[test]
fn format_table_values() {
    let row = |p: Precision| {
        let i = p.info();
        (i.bits, i.exp_bits, i.man_bits, i.bias, i.max, i.min_normal, i.min_subnormal, i.epsilon)
    };
    // 2^-1074 written as its bits: powi(-1074) underflows to 0 where it is not folded at compile time.
    assert_eq!(row(Precision::F64), (64, 11, 52, 1023, f64::MAX, f64::MIN_POSITIVE, f64::from_bits(1), 2f64.powi(-52)));
    assert_eq!(row(Precision::F32), (32, 8, 23, 127, f32::MAX as f64, 2f64.powi(-126), 2f64.powi(-149), 2f64.powi(-23)));
    assert_eq!(row(Precision::Bf16), (16, 8, 7, 127, 3.3895313892515355e38, 2f64.powi(-126), 2f64.powi(-133), 2f64.powi(-7)));
    assert_eq!(row(Precision::F16), (16, 5, 10, 15, 65504.0, 2f64.powi(-14), 2f64.powi(-24), 2f64.powi(-10)));
    assert_eq!(row(Precision::E4m3), (8, 4, 3, 7, 448.0, 2f64.powi(-6), 2f64.powi(-9), 2f64.powi(-3)));
    assert_eq!(row(Precision::E5m2), (8, 5, 2, 15, 57344.0, 2f64.powi(-14), 2f64.powi(-16), 2f64.powi(-2)));
}

#[test]
fn every_code_round_trips() {
    for p in [Precision::Bf16, Precision::F16, Precision::E4m3, Precision::E5m2] {
        let l = p.layout().unwrap();
        for code in 0..1u32 << l.bits() {
            let v = decode(&l, code);
            if v.is_nan() || v.is_infinite() {
                continue;
            }
            assert_eq!(encode(&l, v, Overflow::NonSaturating), code, "{p} code {code:#x} value {v}");
        }
    }
}

/// Positive finite values of a format in increasing order (code order is value order).
fn positive_finite(l: &Layout) -> Vec<(u32, f64)> {
    (0..=l.max_code()).map(|c| (c, decode(l, c))).collect()
}

#[test]
fn ties_round_to_even_and_neighbours_round_to_nearest() {
    for p in [Precision::Bf16, Precision::F16, Precision::E4m3, Precision::E5m2] {
        let l = p.layout().unwrap();
        for w in positive_finite(&l).windows(2) {
            let ((ca, a), (cb, b)) = (w[0], w[1]);
            let mid = (a + b) / 2.0; // exact in f64 for these formats
            let even = if ca % 2 == 0 { ca } else { cb };
            for sign in [1.0, -1.0] {
                let s = if sign < 0.0 { 1 << (l.bits() - 1) } else { 0 };
                let enc = |x: f64| encode(&l, sign * x, Overflow::NonSaturating);
                assert_eq!(enc(mid), s | even, "{p}: tie {mid} between {a} and {b}");
                assert_eq!(enc(mid.next_down()), s | ca, "{p}: just below {mid}");
                assert_eq!(enc(mid.next_up()), s | cb, "{p}: just above {mid}");
            }
        }
    }
}

#[test]
fn subnormals_and_zero() {
    for p in [Precision::Bf16, Precision::F16, Precision::E4m3, Precision::E5m2] {
        let l = p.layout().unwrap();
        let tiny = l.min_subnormal();
        assert_eq!(p.quantize(tiny, Overflow::Saturate), tiny);
        assert_eq!(p.quantize(tiny / 2.0, Overflow::Saturate), 0.0, "{p}: half the min subnormal ties to 0");
        assert_eq!(p.quantize((tiny / 2.0).next_up(), Overflow::Saturate), tiny);
        assert_eq!(p.quantize(1.5 * tiny, Overflow::Saturate), 2.0 * tiny, "{p}: 1.5 ulp ties to even (2)");
        assert_eq!(p.quantize(-tiny / 4.0, Overflow::Saturate).to_bits(), (-0.0f64).to_bits(), "{p}: sign of zero");
        let below_normal = l.min_normal() - tiny;
        assert_eq!(p.quantize(below_normal, Overflow::Saturate), below_normal, "{p}: largest subnormal");
    }
}

#[test]
fn overflow_saturates_or_follows_ieee() {
    for p in SMALL {
        let l = p.layout().unwrap();
        let max = l.max();
        let ulp_top = max - decode(&l, l.max_code() - 1);
        let over = max + ulp_top; // rounds beyond max in every mode
        for x in [over, f64::INFINITY, 1e300] {
            for sign in [1.0, -1.0] {
                assert_eq!(p.quantize(sign * x, Overflow::Saturate), sign * max, "{p}: saturate {x}");
                let ns = p.quantize(sign * x, Overflow::NonSaturating);
                match l.special {
                    Special::Ieee => assert_eq!(ns, sign * f64::INFINITY, "{p}: {x} -> Inf"),
                    Special::FiniteNanOnly => assert!(ns.is_nan(), "{p}: {x} -> NaN"),
                }
            }
        }
        // Within half an ulp above max still rounds to max.
        assert_eq!(p.quantize(max + ulp_top * 0.25, Overflow::NonSaturating), max, "{p}");
    }
}

#[test]
fn nan_stays_nan() {
    for p in SMALL {
        for o in [Overflow::Saturate, Overflow::NonSaturating] {
            assert!(p.quantize(f64::NAN, o).is_nan(), "{p}");
            assert!(p.quantize(-f64::NAN, o).is_nan(), "{p}");
        }
    }
}

#[test]
fn f32_codec_agrees_with_the_hardware() {
    let mut s = 1u64;
    for _ in 0..200_000 {
        s = crate::rng::mix(s, 7);
        let x = f64::from_bits(s) ;
        if !x.is_finite() {
            continue;
        }
        let x = x.clamp(-1e39, 1e39);
        let want = x as f32;
        let got = Precision::F32.quantize(x, Overflow::NonSaturating);
        assert!(same(got, want as f64), "{x}: codec {got}, hardware {want}");
    }
}

/// f32 inputs that stress the fast converters: a sweep of bit patterns plus every
/// midpoint of the target format and its neighbours.
fn stress_inputs(l: &Layout) -> Vec<f32> {
    let mut v: Vec<f32> = (0..u32::MAX / 7919).map(|i| f32::from_bits(i.wrapping_mul(7919))).collect();
    for w in positive_finite(l).windows(2) {
        let mid = ((w[0].1 + w[1].1) / 2.0) as f32;
        for x in [mid, mid.next_up(), mid.next_down(), w[0].1 as f32] {
            v.extend([x, -x]);
        }
    }
    v.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN_POSITIVE, 0.0, -0.0]);
    v
}

fn check_slice_conversion<T: Element>(code_of: impl Fn(T) -> u32) {
    let p = T::PRECISION;
    let l = p.layout().unwrap();
    let src = stress_inputs(&l);
    for overflow in [Overflow::Saturate, Overflow::NonSaturating] {
        let mut dst = vec![T::default(); src.len()];
        T::from_f32_slice(&src, &mut dst, overflow);
        for (&x, &y) in src.iter().zip(&dst) {
            let want = encode(&l, x as f64, overflow);
            let got = code_of(y);
            if x.is_nan() {
                assert!(decode(&l, got).is_nan(), "{p}: NaN input gave {got:#x}");
            } else {
                assert_eq!(got, want, "{p} {overflow:?}: {x:e} ({:#010x}) gave {got:#x}, exact {want:#x}", x.to_bits());
            }
        }
    }
    // Decoding: every code, the slice widening and the scalar one against the exact decoder.
    let codes: Vec<T> = (0..1u32 << l.bits()).map(|c| T::from_f64(decode(&l, c), Overflow::NonSaturating)).collect();
    let mut wide = vec![0f32; codes.len()];
    T::to_f32_slice(&codes, &mut wide);
    for (&c, &w) in codes.iter().zip(&wide) {
        let exact = decode(&l, code_of(c));
        assert!(same(w as f64, exact) && same(c.to_f64(), exact), "{p}: code {:#x} widened to {w} and {}, exactly {exact}", code_of(c), c.to_f64());
    }
}

#[test]
fn slice_conversions_match_the_exact_codec() {
    check_slice_conversion::<bf16>(|x| x.to_bits() as u32);
    check_slice_conversion::<f16>(|x| x.to_bits() as u32);
    check_slice_conversion::<E4M3>(|x| x.0 as u32);
    check_slice_conversion::<E5M2>(|x| x.0 as u32);
}

#[test]
fn half_crate_agrees_from_f32() {
    for i in (0..u32::MAX).step_by(4099) {
        let x = f32::from_bits(i);
        if x.is_nan() {
            continue;
        }
        assert_eq!(f16::from_f32(x).to_bits() as u32, encode(&binary16::LAYOUT, x as f64, Overflow::NonSaturating), "{x:e}");
        assert_eq!(bf16::from_f32(x).to_bits() as u32, encode(&bfloat16::LAYOUT, x as f64, Overflow::NonSaturating), "{x:e}");
    }
}

#[test]
fn names_parse_and_unknown_names_list_the_allowed_ones() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>(), Ok(p));
    }
    let err = "fp4".parse::<Precision>().unwrap_err().to_string();
    assert_eq!(err, "unknown precision 'fp4' (allowed: f64, f32, bf16, f16, e4m3, e5m2)");
}

mod scaling_tests {
    use super::super::scaling::*;
    use super::*;

    fn data(rows: usize, cols: usize, amp: f32) -> Vec<f32> {
        (0..rows * cols).map(|i| amp * crate::rng::uniform_f32(3, i as u64)).collect()
    }

    #[test]
    fn tensor_scaling_puts_amax_on_the_format_max() {
        let x = data(37, 53, 1e-3);
        let q = Quantized::<E4M3>::from_f32(&x, 37, 53, KAxis::Cols, ScaleMode::Tensor, Overflow::Saturate);
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(q.tensor_scale(), (448.0 / amax as f64) as f32);
        let stored_max = q.data.iter().map(|c| c.to_f64().abs()).fold(0.0, f64::max);
        assert_eq!(stored_max, 448.0);
        let u = Precision::E4m3.info().unit_roundoff();
        for (i, &v) in x.iter().enumerate() {
            let r = q.value(i / 53, i % 53);
            let sub = 2f64.powi(-10) / q.tensor_scale() as f64; // half the min subnormal, unscaled
            assert!((r - v as f64).abs() <= u * (v as f64).abs() * 1.0001 + sub, "{v} -> {r}");
        }
    }

    #[test]
    fn mx_blocks_run_along_k_with_power_of_two_scales() {
        for (k_axis, rows, cols) in [(KAxis::Cols, 5, 70), (KAxis::Rows, 70, 5)] {
            let x = data(rows, cols, 1000.0);
            let q = Quantized::<E5M2>::from_f32(&x, rows, cols, k_axis, ScaleMode::Mx, Overflow::Saturate);
            let Scaling::Mx { exps } = &q.scaling else { panic!("not MX") };
            assert_eq!(exps.len(), 5 * 3, "{k_axis:?}: one scale per 32 elements along k");
            let u = Precision::E5m2.info().unit_roundoff();
            for i in 0..rows {
                for j in 0..cols {
                    let (v, r) = (x[i * cols + j] as f64, q.value(i, j));
                    // Block max has exponent emax_elem after scaling; small elements may be subnormal.
                    let quantum = 2f64.powi(-17) * 1000.0 * 2f64.powi(-15); // half the E5M2 subnormal quantum, unscaled
                    assert!((r - v).abs() <= u * v.abs() + quantum, "{k_axis:?} ({i},{j}): {v} -> {r}");
                }
            }
        }
        assert_eq!(mx_exponent(Precision::E4m3, 448.0), 0);
        assert_eq!(mx_exponent(Precision::E4m3, 1.0), -8);
        assert_eq!(mx_exponent(Precision::E5m2, 0.0), 0);
    }
}

/// The AVX2 / F16C rounding gives the same bits as the portable loop (NaN included), for
/// every stress input, both overflow modes, and slice lengths that leave tails for the
/// portable loop. Where the CPU lacks the features both sides are the portable loop.
#[test]
fn vector_rounding_is_the_portable_rounding_bit_for_bit() {
    fn check<T: Element + Copy + Default + PartialEq + std::fmt::Debug>(portable: fn(&[f32], &mut [T], Overflow), bits: fn(T) -> u16) {
        let mut src = stress_inputs(&T::PRECISION.layout().unwrap());
        src.extend([f32::from_bits(0x7fa0_1234), f32::from_bits(0xffc0_0001), f32::from_bits(0x7f80_0001), 65519.99, 65520.0, -65520.0, 3.4e38, -3.4e38]);
        for overflow in [Overflow::Saturate, Overflow::NonSaturating] {
            for len in [src.len(), src.len() - 5, 15, 16, 17, 0] {
                let (mut fast, mut slow) = (vec![T::default(); len], vec![T::default(); len]);
                T::from_f32_slice(&src[..len], &mut fast, overflow);
                portable(&src[..len], &mut slow, overflow);
                for (x, (f, s)) in src.iter().zip(fast.iter().zip(&slow)) {
                    assert_eq!(bits(*f), bits(*s), "{}: {x:e} ({:#010x}), {overflow:?}", T::PRECISION, x.to_bits());
                }
            }
        }
    }
    check::<bf16>(bfloat16::from_f32_scalar, |x| x.to_bits());
    check::<f16>(binary16::from_f32_scalar, |x| x.to_bits());
    // Each vector width the CPU has, not only the widest that from_f32_slice takes.
    #[cfg(target_arch = "x86_64")]
    for w in super::x86::Width::available() {
        type Round = fn(super::x86::Width, &[f32], &mut [u16], Overflow) -> usize;
        type Portable = fn(&[f32], Overflow) -> Vec<u16>;
        let each: [(Precision, Round, Portable); 2] = [
            (Precision::Bf16, super::x86::bf16_from_f32_as, |x, o| {
                let mut d = vec![bf16::ZERO; x.len()];
                bfloat16::from_f32_scalar(x, &mut d, o);
                d.iter().map(|v| v.to_bits()).collect()
            }),
            (Precision::F16, super::x86::f16_from_f32_as, |x, o| {
                let mut d = vec![f16::ZERO; x.len()];
                binary16::from_f32_scalar(x, &mut d, o);
                d.iter().map(|v| v.to_bits()).collect()
            }),
        ];
        for (p, round, portable) in each {
            let mut src = stress_inputs(&p.layout().unwrap());
            src.extend([f32::from_bits(0x7fa0_1234), f32::from_bits(0xffc0_0001), f32::from_bits(0x7f80_0001), 65519.99, 65520.0, -65520.0, 3.4e38, -3.4e38]);
            for overflow in [Overflow::Saturate, Overflow::NonSaturating] {
                let mut fast = vec![0u16; src.len()];
                let done = round(w, &src, &mut fast, overflow);
                assert_eq!(done, src.len() / 16 * 16, "{p} {w:?}");
                let want = portable(&src, overflow);
                for (x, (f, s)) in src.iter().zip(fast.iter().zip(&want)).take(done) {
                    assert_eq!(f, s, "{p} {w:?}: {x:e} ({:#010x}), {overflow:?}", x.to_bits());
                }
            }
        }
    }
}
