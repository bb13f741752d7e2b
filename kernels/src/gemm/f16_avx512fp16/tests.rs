//! The micro-kernel's assembly, run by a small interpreter of the instructions it uses (on
//! any CPU: each `vfmadd231ph` lane is [`f16acc::fma_f16`], a correctly rounded FMA), must
//! give exactly the portable arithmetic: per tile entry, the f16 chain of each block of
//! `block` terms, widened and summed in f32. On a CPU with AVX512_FP16 the real kernel is
//! checked against the same reference (and the whole GEMM in `gemm::tests`).

use super::super::f16acc;
use super::{KERNEL_ASM, MR, NR};
use crate::asm_interp::Machine;
use half::f16;

/// Deterministic f16 inputs in [-2, 2), with some subnormals and zeros mixed in.
fn inputs(n: usize, seed: u64) -> Vec<u16> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0;
            let x = match i % 37 {
                0 => 0.0,
                1 => x * 1e-6, // f16 subnormal range
                _ => x,
            };
            f16::from_f64(x).to_bits()
        })
        .collect()
}

/// tile[r][j] = Σ over blocks of f32(the block's f16 FMA chain), as `f16acc` computes it.
fn reference(kp: usize, block: usize, a: &[u16], b: &[u16]) -> Vec<f32> {
    let f = |bits: u16| f16::from_bits(bits).to_f64();
    let mut t = vec![0f32; MR * NR];
    for r in 0..MR {
        for j in 0..NR {
            let x: Vec<f64> = (0..kp).map(|p| f(a[p * MR + r])).collect();
            let y: Vec<f64> = (0..kp).map(|p| f(b[p * NR + j])).collect();
            t[r * NR + j] = f16acc::dot(&x, &y, block);
        }
    }
    t
}

#[test]
fn the_assembly_computes_the_portable_f16_arithmetic() {
    // k counts that are and are not multiples of the block; a block longer than k; block 1.
    for (kp, block) in [(1, 1), (5, 1), (7, 3), (64, 32), (70, 32), (33, 64), (100, 7), (2, 2048)] {
        let (a, b) = (inputs(kp * MR, kp as u64), inputs(kp * NR, 1000 + block as u64));
        let mut tile = vec![0f32; MR * NR];
        let mut m = Machine::new(&[("a", a.as_ptr() as u64), ("b", b.as_ptr() as u64), ("t", tile.as_mut_ptr() as u64), ("kp", kp as u64), ("blk", block as u64), ("cnt", 0xdead)]);
        m.run(KERNEL_ASM);
        let want = reference(kp, block, &a, &b);
        for (i, (x, y)) in tile.iter().zip(&want).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "k = {kp}, block = {block}: tile ({}, {}) is {x:e}, the portable arithmetic {y:e}", i / NR, i % NR);
        }
        // The pointers moved past the panels; the k count ran out.
        assert_eq!((m.gpr["{a}"], m.gpr["{b}"], m.gpr["{kp}"]), (a.as_ptr() as u64 + 2 * (kp * MR) as u64, b.as_ptr() as u64 + 2 * (kp * NR) as u64, 0));
    }
}

#[test]
fn the_native_tile_matches_the_portable_arithmetic() {
    if !super::available() {
        eprintln!("skipped: this CPU has no AVX512_FP16");
        return;
    }
    for (kp, block) in [(1, 1), (7, 3), (70, 32), (33, 64), (100, 7)] {
        let (a, b) = (inputs(kp * MR, kp as u64), inputs(kp * NR, 1000 + block as u64));
        let mut tile = vec![0f32; MR * NR];
        // SAFETY: the CPU has the features (checked); the buffers hold what the kernel reads.
        unsafe { super::tile_product(kp, block, a.as_ptr(), b.as_ptr(), tile.as_mut_ptr()) };
        let want = reference(kp, block, &a, &b);
        for (i, (x, y)) in tile.iter().zip(&want).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "k = {kp}, block = {block}: tile ({}, {}) is {x:e}, the portable arithmetic {y:e}", i / NR, i % NR);
        }
    }
}
