//! A small interpreter of the x86-64 assembly effcal's AVX512_FP16 kernels are written in
//! (the kernels' text, Intel syntax, one instruction a line), so the tests check their logic
//! on CPUs that lack the instructions: each f16 lane operation is the correctly rounded one
//! of [`crate::avx512fp16::lane`], the emulation's too.
//! Operands in braces (`{a}`) are general registers, set by the test by name.

use crate::avx512fp16::{Op, lane};
use half::f16;
use std::collections::HashMap;

/// Machine state: named general registers (the asm operands, by name), 32 zmm registers of
/// 64 bytes, the zero flag and the carry flag of the last compare or arithmetic.
pub(crate) struct Machine {
    pub(crate) gpr: HashMap<String, u64>,
    pub(crate) zmm: [[u8; 64]; 32],
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
    /// A machine with the named registers set and every vector register filled with 0xa5.
    pub(crate) fn new(gpr: &[(&str, u64)]) -> Self {
        Self { gpr: gpr.iter().map(|&(n, v)| (format!("{{{n}}}"), v)).collect(), zmm: [[0xa5; 64]; 32], zf: false, cf: false }
    }

    /// The 32 f16 lanes of the third operand: a register or a memory operand.
    fn lanes16_of(&self, op: &str) -> Vec<u16> {
        match reg_index(op) {
            Some(r) => lanes16(&self.zmm[r]),
            None => lanes16(&self.load(op, 64)),
        }
    }

    /// zmm d = op(s1, s2, d) per f16 lane, each result rounded to f16.
    fn f16_lanes(&mut self, args: &[&str], op: Op) {
        let (d, s1) = (reg_index(args[0]).unwrap(), reg_index(args[1]).unwrap());
        let (x, y, z) = (lanes16(&self.zmm[s1]), self.lanes16_of(args[2]), lanes16(&self.zmm[d]));
        for l in 0..32 {
            let r = lane(op, f16::from_bits(x[l]), f16::from_bits(y[l]), f16::from_bits(z[l]));
            self.zmm[d][2 * l..2 * l + 2].copy_from_slice(&r.to_bits().to_le_bytes());
        }
    }

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
    pub(crate) fn run(&mut self, text: &str) {
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
                "vmovdqu16" => match reg_index(args[0]) {
                    Some(d) => {
                        let v = self.load(args[1], 64);
                        self.zmm[d].copy_from_slice(&v);
                    }
                    None => {
                        let v = self.zmm[reg_index(args[1]).unwrap()];
                        self.store(args[0], &v);
                    }
                },
                "vaddph" => self.f16_lanes(&args, Op::Add),
                "vmulph" => self.f16_lanes(&args, Op::Mul),
                "vfmadd231ph" => self.f16_lanes(&args, Op::Fma231),
                "vpbroadcastw" => {
                    let d = reg_index(args[0]).unwrap();
                    let w = self.load(args[1], 2);
                    for l in 0..32 {
                        self.zmm[d][2 * l..2 * l + 2].copy_from_slice(&w);
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
