//! The micro-kernel's assembly, run by a small interpreter of the instructions it uses (on
//! any CPU: each `vfmadd231ph` lane is [`f16acc::fma_f16`], a correctly rounded FMA), must
//! give exactly the portable arithmetic: per tile entry, the f16 chain of each block of
//! `block` terms, widened and summed in f32. On a CPU with AVX512_FP16 the real kernel is
//! checked against the same reference (and the whole GEMM in `gemm::tests`).

use super::super::f16acc;
use super::{KERNEL_ASM, MR, NR};
use half::f16;
use std::collections::HashMap;

/// Machine state: named general registers (the asm operands, by name), 32 zmm registers of
/// 64 bytes, the zero flag and the carry flag of the last compare or arithmetic.
struct Machine {
    gpr: HashMap<String, u64>,
    zmm: [[u8; 64]; 32],
    zf: bool,
    cf: bool,
}

fn lanes16(v: &[u8]) -> Vec<u16> {
    v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
}

fn lanes32(v: &[u8]) -> Vec<f32> {
    v.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn reg_index(r: &str) -> Option<usize> {
    r.strip_prefix("zmm").or_else(|| r.strip_prefix("ymm")).and_then(|n| n.parse().ok())
}

impl Machine {
    /// The address of a memory operand `… ptr [{reg} + off]`.
    fn address(&self, op: &str) -> u64 {
        let inner = op.split('[').nth(1).and_then(|s| s.strip_suffix(']')).unwrap_or_else(|| panic!("memory operand {op}"));
        let mut parts = inner.split(" + ");
        let base = self.gpr[parts.next().unwrap()];
        base + parts.next().map_or(0, |off| off.parse::<u64>().unwrap())
    }

    /// Reads `len` bytes at a memory operand.
    fn load(&self, op: &str, len: usize) -> Vec<u8> {
        let p = self.address(op) as *const u8;
        // SAFETY: the test points every base register at a live buffer large enough for
        // the kernel's accesses (as the real kernel's contract requires).
        (0..len).map(|i| unsafe { *p.add(i) }).collect()
    }

    fn store(&self, op: &str, bytes: &[u8]) {
        let p = self.address(op) as *mut u8;
        for (i, &x) in bytes.iter().enumerate() {
            // SAFETY: as in `load`.
            unsafe { *p.add(i) = x };
        }
    }

    fn value(&self, op: &str) -> u64 {
        self.gpr.get(op).copied().unwrap_or_else(|| op.parse().unwrap_or_else(|_| panic!("operand {op}")))
    }

    fn set_flags(&mut self, result: u64, carry: bool) {
        self.zf = result == 0;
        self.cf = carry;
    }

    /// Runs the text until it falls off its end.
    fn run(&mut self, text: &str) {
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let label = |name: &str| lines.iter().position(|l| *l == format!("{name}:")).unwrap_or_else(|| panic!("label {name}"));
        let mut pc = 0;
        let mut steps = 0u64;
        while pc < lines.len() {
            steps += 1;
            assert!(steps < 50_000_000, "the kernel does not terminate");
            let line = lines[pc];
            pc += 1;
            if line.ends_with(':') {
                continue;
            }
            let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
            let args: Vec<&str> = rest.split(", ").collect();
            match op {
                "vpxord" => {
                    let (d, s1, s2) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap(), reg_index(args[2]).unwrap());
                    let v: Vec<u8> = self.zmm[s1].iter().zip(self.zmm[s2]).map(|(x, y)| x ^ y).collect();
                    self.zmm[d].copy_from_slice(&v);
                }
                "mov" => {
                    let v = self.value(args[1]);
                    self.gpr.insert(args[0].into(), v);
                }
                "cmp" => {
                    let (x, y) = (self.value(args[0]), self.value(args[1]));
                    self.set_flags(x.wrapping_sub(y), x < y);
                }
                "cmova" => {
                    if !self.cf && !self.zf {
                        let v = self.value(args[1]);
                        self.gpr.insert(args[0].into(), v);
                    }
                }
                "sub" | "add" => {
                    let (x, y) = (self.value(args[0]), self.value(args[1]));
                    let (r, carry) = if op == "sub" { x.overflowing_sub(y) } else { x.overflowing_add(y) };
                    self.gpr.insert(args[0].into(), r);
                    self.set_flags(r, carry);
                }
                "dec" => {
                    let r = self.value(args[0]).wrapping_sub(1);
                    self.gpr.insert(args[0].into(), r);
                    self.zf = r == 0; // dec leaves CF alone
                }
                "test" => {
                    let r = self.value(args[0]) & self.value(args[1]);
                    self.set_flags(r, false);
                }
                "jnz" => {
                    if !self.zf {
                        pc = label(args[0].trim_end_matches(['b', 'f']));
                    }
                }
                "vmovdqu16" => {
                    let d = reg_index(args[0]).unwrap();
                    let v = self.load(args[1], 64);
                    self.zmm[d].copy_from_slice(&v);
                }
                "vpbroadcastw" => {
                    let d = reg_index(args[0]).unwrap();
                    let w = self.load(args[1], 2);
                    for l in 0..32 {
                        self.zmm[d][2 * l..2 * l + 2].copy_from_slice(&w);
                    }
                }
                "vfmadd231ph" => {
                    // zmm1 = zmm2 · zmm3 + zmm1, per f16 lane, one rounding.
                    let (d, s1, s2) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap(), reg_index(args[2]).unwrap());
                    let (x, y, z) = (lanes16(&self.zmm[s1]), lanes16(&self.zmm[s2]), lanes16(&self.zmm[d]));
                    for l in 0..32 {
                        let f = |bits: u16| f16::from_bits(bits).to_f64();
                        let r = f16::from_f64(f16acc::fma_f16(f(x[l]), f(y[l]), f(z[l])));
                        self.zmm[d][2 * l..2 * l + 2].copy_from_slice(&r.to_bits().to_le_bytes());
                    }
                }
                "vcvtph2ps" => {
                    // zmm (16 f32) from the low 256 bits (16 f16), exactly.
                    let (d, s) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap());
                    let h = lanes16(&self.zmm[s][..32]);
                    let v: Vec<u8> = h.iter().flat_map(|&b| f16::from_bits(b).to_f32().to_le_bytes()).collect();
                    self.zmm[d].copy_from_slice(&v);
                }
                "vextracti64x4" => {
                    // ymm ← the upper (imm = 1) or lower 256 bits of zmm; the upper half cleared.
                    let (d, s, hi) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap(), args[2] == "1");
                    let mut v = [0u8; 64];
                    v[..32].copy_from_slice(&self.zmm[s][if hi { 32 } else { 0 }..][..32]);
                    self.zmm[d] = v;
                }
                "vaddps" => {
                    let (d, s) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap());
                    let m = self.load(args[2], 64);
                    let v: Vec<u8> = lanes32(&self.zmm[s]).iter().zip(lanes32(&m)).flat_map(|(x, y)| (x + y).to_le_bytes()).collect();
                    self.zmm[d].copy_from_slice(&v);
                }
                "vmovups" => {
                    let s = reg_index(args[1]).unwrap();
                    let v = self.zmm[s];
                    self.store(args[0], &v);
                }
                _ => panic!("the interpreter does not know `{line}`"),
            }
        }
    }
}

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
        let mut m = Machine { gpr: HashMap::new(), zmm: [[0xa5; 64]; 32], zf: false, cf: false };
        for (name, v) in [("a", a.as_ptr() as u64), ("b", b.as_ptr() as u64), ("t", tile.as_mut_ptr() as u64), ("kp", kp as u64), ("blk", block as u64), ("cnt", 0xdead)] {
            m.gpr.insert(format!("{{{name}}}"), v);
        }
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
