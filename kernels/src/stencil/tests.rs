use super::*;
use crate::precision::{E4M3, Element, Overflow, Real, bf16, f16};

/// A block with reproducible values in [-1, 1) everywhere, ghosts included.
fn field<T: Element>(n: [usize; 3], seed: u64) -> Block<T> {
    let mut b = Block::<T>::zeros(n);
    for (x, v) in b.data.iter_mut().enumerate() {
        *v = T::from_f64(crate::rng::uniform_f32(seed, x as u64) as f64, Overflow::Saturate);
    }
    b
}

fn whole<T: Copy + Default>(b: &Block<T>) -> Region {
    Region { i: 1..b.n[0] + 1, j: 1..b.n[1] + 1, k: 1..b.n[2] + 1 }
}

fn w<T: Element>(b: &Block<T>, x: usize) -> T::Acc {
    let mut o = [T::Acc::default()];
    T::to_acc_slice(&b.data[x..x + 1], &mut o);
    o[0]
}

/// The 7- and 27-point sweeps written point by point, single-threaded, same order of sums.
fn naive<T: Element>(kind: Kind, src: &Block<T>, dst: &mut Block<T>, c0: T::Acc, c1: T::Acc)
where
    T::Acc: Real,
{
    let n = src.n;
    for i in 1..=n[0] {
        for j in 1..=n[1] {
            for k in 1..=n[2] {
                let v = |di: isize, dj: isize, dk: isize| {
                    w(src, src.at((i as isize + di) as usize, (j as isize + dj) as usize, (k as isize + dk) as usize))
                };
                let r = match kind {
                    Kind::Seven => c0 * v(0, 0, 0) + c1 * (((v(0, 0, -1) + v(0, 0, 1)) + (v(-1, 0, 0) + v(1, 0, 0))) + (v(0, -1, 0) + v(0, 1, 0))),
                    _ => {
                        // Rows, then planes, then the point, as twenty_seven.rs documents.
                        let row = |di, dj| if (di, dj) == (0, 0) { v(0, 0, -1) + v(0, 0, 1) } else { (v(di, dj, -1) + v(di, dj, 0)) + v(di, dj, 1) };
                        let plane = |di| (row(di, -1) + row(di, 0)) + row(di, 1);
                        c0 * v(0, 0, 0) + c1 * ((plane(-1) + plane(0)) + plane(1))
                    }
                };
                let at = dst.at(i, j, k);
                T::from_acc_slice(&[r], &mut dst.data[at..at + 1], Overflow::Saturate);
            }
        }
    }
}

fn sweeps_match_the_naive_reference<T: Element + Send + PartialEq + std::fmt::Debug>()
where
    T::Acc: Real,
{
    // Rows shorter than the 16-point chunks, one chunk exactly, chunks plus an overlapping
    // last one; rows long enough that a plane is swept in slabs (4, 4 and 3 rows).
    for n in [[1, 1, 1], [3, 4, 5], [2, 3, 16], [7, 2, 19], [2, 2, 32], [5, 6, 40], [3, 11, 2000]] {
        for kind in [Kind::Seven, Kind::TwentySeven] {
            let src = field::<T>(n, 7);
            let (c0, c1) = (T::Acc::from_f64(0.5), T::Acc::from_f64(1.0 / 12.0));
            let mut want = src.clone();
            naive(kind, &src, &mut want, c0, c1);
            // Streamed rows are the same bits as ordinary ones.
            for stores in [Stores::Normal, Stores::Streaming] {
                let mut got = src.clone();
                match kind {
                    Kind::Seven => sweep7(&src, &mut got, &whole(&src), c0, c1, stores),
                    _ => sweep27(&src, &mut got, &whole(&src), c0, c1, stores),
                }
                assert_eq!(got, want, "{} {} {n:?} {stores:?}", T::PRECISION, kind.name());
                // The window path too, which the dispatch passes by for bf16 and f16 on AVX-512.
                if kind == Kind::Seven {
                    let mut got = src.clone();
                    super::seven::sweep7_window(&src, &mut got, &whole(&src), c0, c1, stores);
                    assert_eq!(got, want, "{} window {n:?} {stores:?}", T::PRECISION);
                }
            }
        }
    }
}

#[test]
fn every_precision_matches_the_naive_sweeps_bit_for_bit() {
    sweeps_match_the_naive_reference::<f64>();
    sweeps_match_the_naive_reference::<f32>();
    sweeps_match_the_naive_reference::<bf16>();
    sweeps_match_the_naive_reference::<f16>();
    sweeps_match_the_naive_reference::<E4M3>();
}

/// The 7- and 27-point sweeps in f16 arithmetic written point by point with half's f16
/// operators (each one the f32 result rounded to f16), single-threaded, same order.
fn naive_f16(kind: Kind, src: &Block<f16>, dst: &mut Block<f16>, c0: f16, c1: f16) {
    let n = src.n;
    for i in 1..=n[0] {
        for j in 1..=n[1] {
            for k in 1..=n[2] {
                let v = |di: isize, dj: isize, dk: isize| src.data[src.at((i as isize + di) as usize, (j as isize + dj) as usize, (k as isize + dk) as usize)];
                let r = match kind {
                    Kind::Seven => c0 * v(0, 0, 0) + c1 * (((v(0, 0, -1) + v(0, 0, 1)) + (v(-1, 0, 0) + v(1, 0, 0))) + (v(0, -1, 0) + v(0, 1, 0))),
                    _ => {
                        let row = |di, dj| if (di, dj) == (0, 0) { v(0, 0, -1) + v(0, 0, 1) } else { (v(di, dj, -1) + v(di, dj, 0)) + v(di, dj, 1) };
                        let plane = |di| (row(di, -1) + row(di, 0)) + row(di, 1);
                        c0 * v(0, 0, 0) + c1 * ((plane(-1) + plane(0)) + plane(1))
                    }
                };
                let at = dst.at(i, j, k);
                dst.data[at] = r;
            }
        }
    }
}

/// The f16-arithmetic sweeps give the point-by-point f16 operations' bits (rows in chunks,
/// in slabs, streamed), and differ from the f32-arithmetic sweep of the same field: the
/// error against f64 grows, within the bound of their roundings.
#[test]
fn f16_arithmetic_sweeps_round_every_operation_to_f16() {
    let (c0, c1) = (f16::from_f32(0.5), f16::from_f32(1.0 / 12.0));
    for n in [[1, 1, 1], [3, 4, 5], [2, 3, 16], [7, 2, 19], [5, 6, 40], [3, 11, 2000]] {
        for kind in [Kind::Seven, Kind::TwentySeven] {
            let src = field::<f16>(n, 9);
            let mut want = src.clone();
            naive_f16(kind, &src, &mut want, c0, c1);
            // The dispatched sweep (native on AVX512_FP16) and the emulation, each way of storing.
            type Sweep = fn(&Block<f16>, &mut Block<f16>, &Region, f16, f16, Stores);
            let sweeps: [(&str, Sweep); 2] = match kind {
                Kind::Seven => [("dispatched", sweep7_f16), ("emulated", f16_arith::sweep7_emulated)],
                _ => [("dispatched", sweep27_f16), ("emulated", f16_arith::sweep27_emulated)],
            };
            for (how, sweep) in sweeps {
                for stores in [Stores::Normal, Stores::Streaming] {
                    let mut got = src.clone();
                    sweep(&src, &mut got, &whole(&src), c0, c1, stores);
                    assert!(got.data.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits()), "{} {how} {n:?} {stores:?}", kind.name());
                }
            }
            // Against the same sweep in f64 of the same (f16) field. |values| < 1, so a
            // partial sum of m terms is below m and its rounding costs at most u·m (u =
            // 2^-11; 2^-25 more where a result is subnormal). f16 arithmetic: the sums'
            // roundings (7-point tree: 2, 2, 4, 2, 6; 27-point tree: rows 2 + 3 each, the
            // centre row 2, planes 6 + 9 each, the centre plane 5 + 8, the point 17 + 26:
            // 128), scaled by c1, and the three roundings of c1·s, c0·u and their sum. f32 arithmetic: the output's rounding alone (and f32's own, far below).
            let f64s = Block { data: src.data.iter().map(|&v| Element::to_f64(v)).collect::<Vec<f64>>(), n };
            let mut exact = f64s.clone();
            let mut f32arith = src.clone();
            match kind {
                Kind::Seven => {
                    sweep7(&f64s, &mut exact, &whole(&f64s), 0.5, c1.to_f64(), Stores::Normal);
                    sweep7(&src, &mut f32arith, &whole(&src), 0.5, c1.to_f32(), Stores::Normal);
                }
                _ => {
                    sweep27(&f64s, &mut exact, &whole(&f64s), 0.5, c1.to_f64(), Stores::Normal);
                    sweep27(&src, &mut f32arith, &whole(&src), 0.5, c1.to_f32(), Stores::Normal);
                }
            }
            let err = |b: &Block<f16>| b.data.iter().zip(&exact.data).map(|(a, e)| (a.to_f64() - e).abs()).fold(0.0, f64::max);
            let (e16, e32) = (err(&want), err(&f32arith));
            let (u, tiny) = (2f64.powi(-11), 2f64.powi(-25));
            let (terms, sums, ops) = if kind == Kind::Seven { (6.0, 16.0, 8.0) } else { (26.0, 128.0, 28.0) };
            let (c0, c1) = (0.5, c1.to_f64());
            let result = c0 + c1 * terms;
            let bound16 = u * (c1 * sums + c1 * terms + c0 + result) + ops * tiny;
            assert!(e32 <= u * result + 1e-6, "{} {n:?}: f32 arithmetic off by {e32:e}", kind.name());
            assert!(e16 <= bound16, "{} {n:?}: f16 arithmetic off by {e16:e}, bound {bound16:e}", kind.name());
            if n[2] >= 40 {
                assert!(e16 > e32, "{} {n:?}: f16 arithmetic {e16:e} not above f32's {e32:e}", kind.name());
            }
        }
    }
}

/// The native f16 rows' assembly, run by the interpreter on any CPU, gives the f16
/// operations of the point-by-point sweep bit for bit (1 to 3 chunks of 32 points, values
/// with subnormals and zeros); the pointers move on by the chunks.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_native_f16_rows_assembly_computes_the_f16_operations() {
    use crate::asm_interp::Machine;
    let (c0, c1) = (f16::from_f32(0.5), f16::from_f32(1.0 / 12.0));
    let w = [c0, c1];
    for chunks in 1..=3 {
        let len = 32 * chunks;
        // Three planes of three rows of len + 2 points: row (di, dj) is rows[3·di + dj].
        let mut src = field::<f16>([1, 1, len], 11 + chunks as u64);
        for (x, v) in src.data.iter_mut().enumerate() {
            match x % 29 {
                0 => *v = f16::ZERO,
                1 => *v = f16::from_f32(v.to_f32() * 1e-5), // subnormal f16
                _ => {}
            }
        }
        let at = |di: usize, dj: usize| src.at(di, dj, 0);
        let mut want = src.clone();
        for kind in [Kind::Seven, Kind::TwentySeven] {
            naive_f16(kind, &src, &mut want, c0, c1);
            let mut out = vec![f16::ZERO; len];
            let p = |x: usize| src.data[x..].as_ptr() as u64;
            let (text, mut regs) = match kind {
                Kind::Seven => (f16_native::ROW7_ASM, vec![("c", p(at(1, 1))), ("im", p(at(0, 1) + 1)), ("ip", p(at(2, 1) + 1)), ("jm", p(at(1, 0) + 1)), ("jp", p(at(1, 2) + 1))]),
                _ => (f16_native::ROW27_ASM, ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"].into_iter().enumerate().map(|(m, r)| (r, p(at(m / 3, m % 3)))).collect()),
            };
            regs.extend([("o", out.as_mut_ptr() as u64), ("w", w.as_ptr() as u64), ("n", chunks as u64)]);
            let mut m = Machine::new(&regs);
            m.run(text);
            let row = &want.data[want.at(1, 1, 1)..][..len];
            for (k, (x, y)) in out.iter().zip(row).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "{} {chunks} chunks, k = {k}: {x} against {y}", kind.name());
            }
            assert_eq!((m.gpr["{o}"], m.gpr["{n}"]), (out.as_ptr() as u64 + 2 * len as u64, 0));
        }
    }
}

/// A bf16 or f16 Himeno sweep (its planes widened into the window; bf16 coefficients in the
/// row loop, f16 ones in buffers; rows of 3000 points) is the f32 sweep of the widened values
/// (read in place), rounded.
#[test]
fn a_16_bit_himeno_sweep_is_the_f32_sweep_of_its_widened_values_rounded() {
    himeno_16_bit::<bf16>();
    himeno_16_bit::<f16>();
}

fn himeno_16_bit<T: Element<Acc = f32> + Send + PartialEq + std::fmt::Debug>() {
    let global = [5, 13, 3000];
    let n = [global[0] - 2, global[1] - 2, global[2] - 2];
    let (p32, co32) = himeno_init::<f32>(n, [1, 1, 1], global);
    // Perturb p so that the sweep's results are not all representable in 16 bits.
    let mut p32 = p32;
    for (x, v) in p32.data.iter_mut().enumerate() {
        *v += crate::rng::uniform_f32(5, x as u64) / 64.0;
    }
    let narrow = |b: &Block<f32>| Block { data: b.data.iter().map(|&v| <T as Element>::from_f64(v as f64, Overflow::Saturate)).collect(), n: b.n };
    let widen = |b: &Block<T>| Block { data: b.data.iter().map(|&v| Element::to_f64(v) as f32).collect(), n: b.n };
    let p16 = narrow(&p32);
    let co16 = HimenoCoefficients { a: co32.a.each_ref().map(narrow), b: co32.b.each_ref().map(narrow), c: co32.c.each_ref().map(narrow), wrk1: narrow(&co32.wrk1), bnd: narrow(&co32.bnd) };
    let co32 = HimenoCoefficients { a: co16.a.each_ref().map(widen), b: co16.b.each_ref().map(widen), c: co16.c.each_ref().map(widen), wrk1: widen(&co16.wrk1), bnd: widen(&co16.bnd) };
    let p32 = widen(&p16);
    let r = whole(&p16);
    let (mut out16, mut out32) = (p16.clone(), p32.clone());
    let gosa16 = himeno(&p16, &mut out16, &co16, &r, Stores::Normal);
    let gosa32 = himeno(&p32, &mut out32, &co32, &r, Stores::Normal);
    assert_eq!(out16, narrow(&out32), "{}", T::PRECISION);
    assert!((gosa16 - gosa32).abs() <= 1e-12 * gosa32, "gosa {gosa16} in {} vs {gosa32}", T::PRECISION);
}

#[test]
fn slabs_cover_the_rows_once_in_near_equal_parts() {
    // 258-point rows of f32: 128 KiB hold three planes of 42 rows, 40 of them a slab's own,
    // so 256 rows take 7 slabs: 37 rows each, the last 34.
    assert_eq!(window::slabs(&(1..257), 258, 4), [1..38, 38..75, 75..112, 112..149, 149..186, 186..223, 223..257]);
    // Short rows: one slab; very long rows: at least 4 rows a slab; an empty region: none.
    let one = window::slabs(&(1..65), 34, 8);
    assert_eq!((one.len(), &one[0]), (1, &(1..65)));
    assert_eq!(window::slabs(&(1..12), 2002, 8), [1..5, 5..9, 9..12]);
    assert_eq!(window::slabs(&(3..3), 258, 4), Vec::<std::ops::Range<usize>>::new());
}

#[test]
fn a_sweep_in_pieces_equals_the_whole_sweep() {
    // The overlapped halo exchange updates the interior, then the shell: same bits.
    let src = field::<f64>([6, 7, 8], 3);
    let mut whole_sweep = src.clone();
    sweep7(&src, &mut whole_sweep, &whole(&src), 0.4, 0.1, Stores::Normal);
    let mut pieces = src.clone();
    let inner = Region { i: 2..6, j: 2..7, k: 2..8 };
    sweep7(&src, &mut pieces, &inner, 0.4, 0.1, Stores::Streaming);
    for r in [
        Region { i: 1..2, j: 1..8, k: 1..9 },
        Region { i: 6..7, j: 1..8, k: 1..9 },
        Region { i: 2..6, j: 1..2, k: 1..9 },
        Region { i: 2..6, j: 7..8, k: 1..9 },
        Region { i: 2..6, j: 2..7, k: 1..2 },
        Region { i: 2..6, j: 2..7, k: 8..9 },
    ] {
        sweep7(&src, &mut pieces, &r, 0.4, 0.1, Stores::Streaming);
    }
    assert_eq!(pieces, whole_sweep);
}

/// Himeno v3.0's loop, transcribed as the C program has it (f32, one global grid): the
/// field, gosa summed in f32 as the original sums it, and the same squares summed in f64.
fn himeno_c(size: [usize; 3], sweeps: usize) -> (Vec<f32>, f32, f64) {
    let [imax, jmax, kmax] = size;
    let at = |i: usize, j: usize, k: usize| (i * jmax + j) * kmax + k;
    let mut p = vec![0f32; imax * jmax * kmax];
    for i in 0..imax {
        for j in 0..jmax {
            for k in 0..kmax {
                p[at(i, j, k)] = (i * i) as f32 / ((imax - 1) * (imax - 1)) as f32;
            }
        }
    }
    let (a0, a1, a2, a3, b0, b1, b2, c0, c1, c2, wrk1, bnd) = (1f32, 1f32, 1f32, (1.0f64 / 6.0) as f32, 0f32, 0f32, 0f32, 1f32, 1f32, 1f32, 0f32, 1f32);
    let mut wrk2 = p.clone();
    let (mut gosa, mut gosa_f64) = (0f32, 0f64);
    for _ in 0..sweeps {
        (gosa, gosa_f64) = (0.0, 0.0);
        for i in 1..imax - 1 {
            for j in 1..jmax - 1 {
                for k in 1..kmax - 1 {
                    let s0 = a0 * p[at(i + 1, j, k)]
                        + a1 * p[at(i, j + 1, k)]
                        + a2 * p[at(i, j, k + 1)]
                        + b0 * (p[at(i + 1, j + 1, k)] - p[at(i + 1, j - 1, k)] - p[at(i - 1, j + 1, k)] + p[at(i - 1, j - 1, k)])
                        + b1 * (p[at(i, j + 1, k + 1)] - p[at(i, j - 1, k + 1)] - p[at(i, j + 1, k - 1)] + p[at(i, j - 1, k - 1)])
                        + b2 * (p[at(i + 1, j, k + 1)] - p[at(i - 1, j, k + 1)] - p[at(i + 1, j, k - 1)] + p[at(i - 1, j, k - 1)])
                        + c0 * p[at(i - 1, j, k)]
                        + c1 * p[at(i, j - 1, k)]
                        + c2 * p[at(i, j, k - 1)]
                        + wrk1;
                    let ss = (s0 * a3 - p[at(i, j, k)]) * bnd;
                    gosa += ss * ss;
                    gosa_f64 += (ss * ss) as f64;
                    wrk2[at(i, j, k)] = p[at(i, j, k)] + 0.8 * ss;
                }
            }
        }
        for i in 1..imax - 1 {
            for j in 1..jmax - 1 {
                for k in 1..kmax - 1 {
                    p[at(i, j, k)] = wrk2[at(i, j, k)];
                }
            }
        }
    }
    (p, gosa, gosa_f64)
}

#[test]
fn himeno_matches_the_original_loop() {
    // Small grids (boundary planes included) held as one block whose ghosts are the planes,
    // the second with long rows.
    for global in [[17, 9, 12], [5, 13, 3000]] {
        himeno_matches_the_original_loop_on(global);
    }
}

fn himeno_matches_the_original_loop_on(global: [usize; 3]) {
    let n = [global[0] - 2, global[1] - 2, global[2] - 2];
    let (mut p, co) = himeno_init::<f32>(n, [1, 1, 1], global);
    let mut wrk2 = p.clone();
    let r = whole(&p);
    let mut gosa = 0.0;
    for sweep in 0..3 {
        let stores = if sweep == 1 { Stores::Streaming } else { Stores::Normal };
        gosa = himeno(&p, &mut wrk2, &co, &r, stores);
        std::mem::swap(&mut p, &mut wrk2);
    }
    let (want_p, want_gosa, gosa_f64) = himeno_c(global, 3);
    let differ = p.data.iter().zip(&want_p).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differ, 0, "{global:?}: points of the field that differ from the original's");
    // effcal sums gosa's squares in f64 (in another order): against the same squares summed
    // in f64, and against the original's f32 sum within that sum's error bound (n·2^-24).
    assert!((gosa - gosa_f64).abs() <= 1e-12 * gosa_f64, "{global:?}: gosa {gosa} vs {gosa_f64} summed in f64");
    let bound = r.points() as f64 * f32::EPSILON as f64 / 2.0 * gosa_f64;
    assert!((gosa - want_gosa as f64).abs() <= bound, "{global:?}: gosa {gosa} vs the original's {want_gosa} (f32 sum)");
}
