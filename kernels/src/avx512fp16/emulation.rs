//! Trap-and-emulate of the AVX512_FP16 instructions of effcal's kernels, for the tests.
//!
//! On a CPU with AVX512F and AVX512BW but no AVX512_FP16, `vaddph`, `vmulph` and
//! `vfmadd231ph` raise #UD; every other instruction of the kernels exists there. The SIGILL
//! handler decodes the instruction at the trapping address (EVEX, 512 bits, a register or a
//! base/index memory operand; no mask, broadcast, embedded rounding or RIP-relative operand:
//! what the kernels use), reads its operands from the signal frame (the general registers,
//! and zmm0-31 in the frame's XSAVE image), computes the 32 f16 lanes, each rounded once to
//! nearest even as the instruction does (AVX512_FP16 ignores MXCSR's DAZ and FTZ), writes
//! the destination into the XSAVE image and moves the instruction pointer past it: the
//! kernel goes on with the result in its register. Anything else aborts the process, naming
//! the instruction's address and bytes.
//!
//! The lanes are [`super::lane`]'s, the arithmetic the tests' interpreter uses too. NaN
//! payloads are not the hardware's; the kernels' tests make no NaN.
//!
//! Active only in a test process started with [`VAR`] set:
//! `the_native_f16_kernels_pass_their_tests_with_the_instructions_emulated` starts one for
//! the tests of the native kernels. It is slow: a signal per instruction, some µs each.

use super::{Op, lane};
use half::f16;
use std::ffi::c_void;
use std::sync::OnceLock;

/// The environment variable that turns the emulation on in a test process.
pub(crate) const VAR: &str = "EFFCAL_TEST_EMULATE_AVX512FP16";

/// True in a test process with [`VAR`] set, on a CPU the emulation serves, once the
/// handler is installed.
pub(crate) fn emulated() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(VAR).is_some() && can_emulate() && install())
}

/// AVX512F and AVX512BW (the kernels' other instructions) without AVX512_FP16.
fn can_emulate() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") && !is_x86_feature_detected!("avx512fp16")
}

/// Byte offsets in the standard-format XSAVE image (CPUID leaf 0xD) of the components that
/// hold zmm0-31 beyond the legacy area's xmm0-15: bits 128-255 of zmm0-15 (component 2),
/// bits 256-511 of zmm0-15 (6), zmm16-31 whole (7).
struct Layout {
    ymm_hi: usize,
    zmm_hi: usize,
    hi16: usize,
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

fn install() -> bool {
    // CPUID leaf 0xD exists where AVX-512 does.
    let offset = |c| std::arch::x86_64::__cpuid_count(0xd, c).ebx as usize;
    LAYOUT.get_or_init(|| Layout { ymm_hi: offset(2), zmm_hi: offset(6), hi16: offset(7) });
    // SAFETY: a zeroed sigaction with a handler, SA_SIGINFO and an empty mask is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigill as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGILL, &sa, std::ptr::null_mut()) == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Operand {
    Zmm(usize),
    /// base + index · scale + disp; registers by number (0 rax … 15 r15).
    Mem { base: Option<usize>, index: Option<(usize, u64)>, disp: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Insn {
    op: Op,
    dst: usize,
    src1: usize,
    src2: Operand,
    len: usize,
}

/// Decodes the instruction at the start of `c` (at least 15 bytes).
fn decode(c: &[u8]) -> Result<Insn, &'static str> {
    let [p, p0, p1, p2, opcode, modrm] = c[..6] else { unreachable!() };
    if p != 0x62 || p0 & 0x08 != 0 || p1 & 0x04 == 0 {
        return Err("not an EVEX instruction");
    }
    let op = match (p0 & 7, p1 & 3, p1 >> 7, opcode) {
        (5, 0, 0, 0x58) => Op::Add,
        (5, 0, 0, 0x59) => Op::Mul,
        (6, 1, 0, 0xb8) => Op::Fma231,
        _ => return Err("not vaddph, vmulph or vfmadd231ph"),
    };
    if p2 & 0x87 != 0 {
        return Err("a masked form");
    }
    if (p2 >> 5) & 3 != 2 {
        return Err("not 512 bits wide");
    }
    if p2 & 0x10 != 0 {
        return Err("broadcast or embedded rounding");
    }
    // The EVEX bits R, X, B, R', V' are stored inverted.
    let bit = |byte: u8, n: u8| usize::from((!byte >> n) & 1);
    let (md, reg, rm) = (modrm >> 6, usize::from((modrm >> 3) & 7), usize::from(modrm & 7));
    let dst = reg | bit(p0, 7) << 3 | bit(p0, 4) << 4;
    let src1 = usize::from((!p1 >> 3) & 15) | bit(p2, 3) << 4;
    if md == 3 {
        let src2 = Operand::Zmm(rm | bit(p0, 5) << 3 | bit(p0, 6) << 4);
        return Ok(Insn { op, dst, src1, src2, len: 6 });
    }
    let mut len = 6;
    let (mut base, mut index) = (Some(rm | bit(p0, 5) << 3), None);
    if rm == 4 {
        let sib = c[len];
        len += 1;
        let i = usize::from((sib >> 3) & 7) | bit(p0, 6) << 3;
        if i != 4 {
            index = Some((i, 1u64 << (sib >> 6)));
        }
        base = (md != 0 || sib & 7 != 5).then_some(usize::from(sib & 7) | bit(p0, 5) << 3);
    } else if md == 0 && rm == 5 {
        return Err("a RIP-relative operand");
    }
    let disp32 = |at: usize| i64::from(i32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]));
    let (disp, size) = match md {
        0 if base.is_none() => (disp32(len), 4),
        0 => (0, 0),
        // disp8·N, N = 64 for a full 512-bit memory operand.
        1 => (i64::from(c[len] as i8) * 64, 1),
        _ => (disp32(len), 4),
    };
    len += size;
    Ok(Insn { op, dst, src1, src2: Operand::Mem { base, index, disp }, len })
}

/// The signal frame's XSAVE image (standard format, as Linux writes it for a handler).
struct Frame {
    xsave: *mut u8,
    layout: &'static Layout,
}

/// The 16 xmm registers of the legacy area.
const XMM: usize = 160;

impl Frame {
    /// The pieces of zmm `r`, lowest bits first: (XSTATE_BV bit of the component, byte
    /// offset in the image, length); the count used.
    fn pieces(&self, r: usize) -> ([(u32, usize, usize); 3], usize) {
        let l = self.layout;
        if r < 16 {
            ([(1, XMM + 16 * r, 16), (2, l.ymm_hi + 16 * r, 16), (6, l.zmm_hi + 32 * r, 32)], 3)
        } else {
            ([(7, l.hi16 + 64 * (r - 16), 64), (0, 0, 0), (0, 0, 0)], 1)
        }
    }

    /// Start and size in the image of the component of XSTATE_BV bit `b` (1, 2, 6 or 7).
    fn component(&self, b: u32) -> (usize, usize) {
        match b {
            1 => (XMM, 256),
            2 => (self.layout.ymm_hi, 256),
            6 => (self.layout.zmm_hi, 512),
            _ => (self.layout.hi16, 1024),
        }
    }

    /// # Safety
    /// `xsave` points at the frame's XSAVE image.
    unsafe fn xstate_bv(&self) -> *mut u64 {
        // SAFETY: the XSAVE header follows the 512-byte legacy area.
        unsafe { self.xsave.add(512).cast() }
    }

    /// zmm `r` (a component in its initial state reads as zeros).
    unsafe fn read(&self, r: usize) -> [u8; 64] {
        let mut v = [0u8; 64];
        let (pieces, n) = self.pieces(r);
        let mut at = 0;
        // SAFETY: the offsets lie in the image (CPUID's layout, the frame's size checked).
        unsafe {
            let bv = self.xstate_bv().read_unaligned();
            for &(b, off, len) in &pieces[..n] {
                if bv >> b & 1 == 1 {
                    std::ptr::copy_nonoverlapping(self.xsave.add(off), v[at..].as_mut_ptr(), len);
                }
                at += len;
            }
        }
        v
    }

    /// Sets zmm `r`; a component in its initial state is zeroed and marked in use first.
    unsafe fn write(&self, r: usize, v: &[u8; 64]) {
        let (pieces, n) = self.pieces(r);
        let mut at = 0;
        // SAFETY: as in `read`.
        unsafe {
            let bv = self.xstate_bv();
            for &(b, off, len) in &pieces[..n] {
                if bv.read_unaligned() >> b & 1 == 0 {
                    let (start, size) = self.component(b);
                    std::ptr::write_bytes(self.xsave.add(start), 0, size);
                    bv.write_unaligned(bv.read_unaligned() | 1 << b);
                }
                std::ptr::copy_nonoverlapping(v[at..].as_ptr(), self.xsave.add(off), len);
                at += len;
            }
        }
    }
}

/// The general registers by number (0 rax … 15 r15) in the signal context.
const GREGS: [libc::c_int; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

fn lanes(v: &[u8; 64]) -> [f16; 32] {
    std::array::from_fn(|l| f16::from_bits(u16::from_le_bytes([v[2 * l], v[2 * l + 1]])))
}

extern "C" fn on_sigill(_: libc::c_int, _: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel hands the handler the interrupted thread's context, whose fpregs
    // point at the frame's XSAVE image; the trapping instruction is in mapped code.
    unsafe {
        let uc = &mut *ctx.cast::<libc::ucontext_t>();
        let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let code = std::slice::from_raw_parts(rip as *const u8, 15);
        let insn = decode(code).unwrap_or_else(|why| die(rip, code, why));
        let xsave = uc.uc_mcontext.fpregs.cast::<u8>();
        let layout = LAYOUT.get().unwrap_or_else(|| die(rip, code, "no XSAVE layout"));
        // The frame must be an XSAVE image holding the AVX-512 state (sw_reserved's magic,
        // feature mask and size), with rounding to nearest even (MXCSR.RC = 0).
        let word = |off: usize| xsave.add(off).cast::<u32>().read_unaligned();
        let features = xsave.add(472).cast::<u64>().read_unaligned();
        if word(464) != 0x4650_5853 || features & 0xe6 != 0xe6 || (word(480) as usize) < layout.hi16 + 1024 {
            die(rip, code, "the signal frame has no AVX-512 state");
        }
        if (word(24) >> 13) & 3 != 0 {
            die(rip, code, "MXCSR's rounding mode is not to nearest");
        }
        let frame = Frame { xsave, layout };
        let (x, d) = (lanes(&frame.read(insn.src1)), lanes(&frame.read(insn.dst)));
        let y = match insn.src2 {
            Operand::Zmm(r) => lanes(&frame.read(r)),
            Operand::Mem { base, index, disp } => {
                let reg = |r: usize| uc.uc_mcontext.gregs[GREGS[r] as usize] as u64;
                let mut a = base.map_or(0, reg).wrapping_add(disp as u64);
                if let Some((i, scale)) = index {
                    a = a.wrapping_add(reg(i).wrapping_mul(scale));
                }
                lanes(&(a as *const [u8; 64]).read_unaligned())
            }
        };
        let mut out = [0u8; 64];
        for l in 0..32 {
            out[2 * l..2 * l + 2].copy_from_slice(&lane(insn.op, x[l], y[l], d[l]).to_bits().to_le_bytes());
        }
        frame.write(insn.dst, &out);
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] += insn.len as i64;
    }
}

/// Writes why the instruction at `rip` cannot be emulated, with its bytes, and aborts.
fn die(rip: usize, code: &[u8], why: &str) -> ! {
    let mut msg = [0u8; 256];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        let k = s.len().min(msg.len() - n);
        msg[n..n + k].copy_from_slice(&s[..k]);
        n += k;
    };
    let hex = |x: u64, digits: usize| -> [u8; 16] { std::array::from_fn(|i| if i < digits { b"0123456789abcdef"[(x >> (4 * (digits - 1 - i)) & 15) as usize] } else { b' ' }) };
    put(b"effcal tests: AVX512_FP16 emulation cannot run the instruction at 0x");
    put(&hex(rip as u64, 16));
    put(b"(");
    put(why.as_bytes());
    put(b"); bytes");
    for &b in &code[..8] {
        put(b" ");
        put(&hex(u64::from(b), 2)[..2]);
    }
    put(b"\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer holds n bytes.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), n);
        libc::abort()
    }
}

#[cfg(test)]
mod tests;
