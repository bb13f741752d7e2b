//! f16 GEMM with f16 accumulation on AVX512_FP16 (Sapphire, Emerald and Granite Rapids):
//! `vfmadd231ph` computes `s ← round_f16(a·b + s)` in 32 f16 lanes, the arithmetic of
//! [`super::f16acc`] (Fugaku's FP16 GEMM did the same on A64FX). Over each block of `block`
//! terms of k the partial sums stay in f16 registers; at the block's end they are widened
//! to f32 (exactly) and added to an f32 tile; the tile lands in C as `C = α·tile` or
//! `C += α·tile`.
//!
//! The micro-kernel keeps a 12×64 f16 tile of C in 24 zmm registers (row r in zmm 2r and
//! 2r+1); per k it loads 2 zmm of B, broadcasts 12 f16 of A (`vpbroadcastw`) and issues 24
//! `vfmadd231ph`. The AVX512_FP16 intrinsics are not stable in Rust, so the loop is written
//! out in `asm!`; its text comes from [`kernel_asm`], which the tests also run through a
//! small interpreter (`tests`) with the portable FMA on any CPU, so the assembly's logic is
//! checked where the instructions do not exist; on AVX-512 CPUs without FP16 the tests also
//! run the compiled kernel with its FP16 instructions emulated (`avx512fp16/emulation.rs`).
//!
//! Blocking: [`super::blocked`], one k value per packed word; the k block (KC) is a multiple
//! of `block`, so the f16 blocks start where the portable reference's do.

use super::Blocking;
use super::blocked::{self, MicroKernel, prefetch_tile};
use half::f16;

/// True when this CPU runs the kernel (checked at run time).
pub fn available() -> bool {
    crate::avx512fp16::available()
}

/// `C = α·A·B`, or `C += α·A·B` when `accumulate`, for row-major f16 A (m×k), B (k×n) and
/// f32 C (m×n, row stride `ldc`), products summed in f16 over blocks of `block` terms,
/// blocked as `blocking` asks (None: this kernel's own; the k block is made a multiple of
/// `block`).
///
/// # Panics
/// If the CPU lacks AVX512_FP16 (check [`available`]), `block` is 0, or the slice lengths
/// do not match.
#[allow(clippy::too_many_arguments)]
pub fn gemm(c: &mut [f32], ldc: usize, a: &[f16], b: &[f16], mnk: (usize, usize, usize), alpha: f32, accumulate: bool, block: usize, blocking: Option<Blocking>) {
    assert!(available(), "f16_avx512fp16::gemm needs AVX512F, AVX512BW and AVX512_FP16");
    assert!(block > 0, "f16_avx512fp16::gemm: a block of at least one term");
    blocked::gemm(&F16Kernel { block }, blocking, c, ldc, a, b, mnk, alpha, accumulate);
}

pub(crate) const MR: usize = 12;
pub(crate) const NR: usize = 64;

/// The blocking [`gemm`] runs for `requested` with f16 blocks of `block` terms (None: this
/// kernel's own).
pub fn blocking(requested: Option<Blocking>, block: usize) -> Blocking {
    blocked::resolve(&F16Kernel { block }, requested)
}

struct F16Kernel {
    block: usize,
}

impl MicroKernel for F16Kernel {
    type In = f16;
    type Word = u16;
    type Out = f32;
    const MR: usize = MR;
    const NR: usize = NR;
    // An A micro-panel 12·2048·2 B = 48 KiB, a B micro-panel 2048·64·2 B = 256 KiB (L2), an
    // A block 144·2048·2 B = 576 KiB, a B panel 2048·2048·2 B = 8 MiB: the bf16 kernel's
    // shape in bytes. Not yet tuned on hardware.
    const KC: usize = 2048;
    const MC: usize = 144;
    const NC: usize = 2048;
    const KSTEP: usize = 1;

    fn word([x, _]: [Option<f16>; 2]) -> u16 {
        x.map_or(0, f16::to_bits)
    }

    fn kc(&self, requested: usize) -> usize {
        if self.block >= requested { self.block } else { requested / self.block * self.block }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(&self, kp: usize, a: &[u16], b: &[u16], c: &mut [f32], ldc: usize, rows: usize, cols: usize, alpha: f32, accumulate: bool) {
        assert!(a.len() >= kp * MR && b.len() >= kp * NR && rows <= MR && cols <= NR);
        assert!(rows == 0 || c.len() >= (rows - 1) * ldc + cols);
        prefetch_tile(c.as_ptr().cast(), ldc * 4, rows, NR * 4);
        let mut tile = [0f32; MR * NR];
        // SAFETY: forwarded from the trait's contract (the CPU has AVX512_FP16); the panels
        // hold kp·MR and kp·NR words (asserted), the tile MR·NR f32.
        unsafe { tile_product(kp, self.block, a.as_ptr(), b.as_ptr(), tile.as_mut_ptr()) };
        for (r, t) in tile.chunks_exact(NR).enumerate().take(rows) {
            let row = &mut c[r * ldc..][..cols];
            for (x, &s) in row.iter_mut().zip(t) {
                *x = if accumulate { alpha * s + *x } else { alpha * s };
            }
        }
    }
}

// The assembly, as text, built from these pieces (concat! takes literals only, so each
// piece takes its register numbers and byte offsets written out).

/// Zeroes accumulator `zmm$x`.
macro_rules! zero {
    ($x:literal) => {
        concat!("vpxord zmm", $x, ", zmm", $x, ", zmm", $x, "\n")
    };
}

/// One row of one k step: broadcast A's f16 at byte `$off`, 2 FMAs into `zmm$lo`, `zmm$hi`.
macro_rules! k_row {
    ($lo:literal, $hi:literal, $off:literal) => {
        concat!(
            "vpbroadcastw zmm26, word ptr [{a} + ",
            $off,
            "]\n",
            "vfmadd231ph zmm",
            $lo,
            ", zmm24, zmm26\n",
            "vfmadd231ph zmm",
            $hi,
            ", zmm25, zmm26\n"
        )
    };
}

/// Widens accumulator `zmm$x` (32 f16) to f32 and adds it to the tile at bytes `$lo`
/// (lanes 0-15) and `$hi` (lanes 16-31).
macro_rules! flush {
    ($x:literal, $lo:literal, $hi:literal) => {
        concat!(
            "vcvtph2ps zmm27, ymm",
            $x,
            "\n",
            "vaddps zmm27, zmm27, zmmword ptr [{t} + ",
            $lo,
            "]\n",
            "vmovups zmmword ptr [{t} + ",
            $lo,
            "], zmm27\n",
            "vextracti64x4 ymm28, zmm",
            $x,
            ", 1\n",
            "vcvtph2ps zmm28, ymm28\n",
            "vaddps zmm28, zmm28, zmmword ptr [{t} + ",
            $hi,
            "]\n",
            "vmovups zmmword ptr [{t} + ",
            $hi,
            "], zmm28\n"
        )
    };
}

/// The micro-kernel's loop. Operands: `{a}` the A micro-panel (12 f16 per k), `{b}` the B
/// micro-panel (64 f16 per k), `{t}` the f32 tile (12×64, row-major), `{kp}` the k count
/// (> 0), `{blk}` the block length (> 0), `{cnt}` scratch. Each block: zero the 24
/// accumulators, run min(blk, remaining) k steps, widen and add them to the tile.
macro_rules! kernel_asm {
    () => {
        concat!(
            "2:\n",
            zero!(0), zero!(1), zero!(2), zero!(3), zero!(4), zero!(5), zero!(6), zero!(7),
            zero!(8), zero!(9), zero!(10), zero!(11), zero!(12), zero!(13), zero!(14), zero!(15),
            zero!(16), zero!(17), zero!(18), zero!(19), zero!(20), zero!(21), zero!(22), zero!(23),
            "mov {cnt}, {blk}\n",
            "cmp {cnt}, {kp}\n",
            "cmova {cnt}, {kp}\n",
            "sub {kp}, {cnt}\n",
            "3:\n",
            "vmovdqu16 zmm24, zmmword ptr [{b}]\n",
            "vmovdqu16 zmm25, zmmword ptr [{b} + 64]\n",
            k_row!(0, 1, 0), k_row!(2, 3, 2), k_row!(4, 5, 4), k_row!(6, 7, 6),
            k_row!(8, 9, 8), k_row!(10, 11, 10), k_row!(12, 13, 12), k_row!(14, 15, 14),
            k_row!(16, 17, 16), k_row!(18, 19, 18), k_row!(20, 21, 20), k_row!(22, 23, 22),
            "add {a}, 24\n",
            "add {b}, 128\n",
            "dec {cnt}\n",
            "jnz 3b\n",
            flush!(0, 0, 64), flush!(1, 128, 192), flush!(2, 256, 320), flush!(3, 384, 448),
            flush!(4, 512, 576), flush!(5, 640, 704), flush!(6, 768, 832), flush!(7, 896, 960),
            flush!(8, 1024, 1088), flush!(9, 1152, 1216), flush!(10, 1280, 1344), flush!(11, 1408, 1472),
            flush!(12, 1536, 1600), flush!(13, 1664, 1728), flush!(14, 1792, 1856), flush!(15, 1920, 1984),
            flush!(16, 2048, 2112), flush!(17, 2176, 2240), flush!(18, 2304, 2368), flush!(19, 2432, 2496),
            flush!(20, 2560, 2624), flush!(21, 2688, 2752), flush!(22, 2816, 2880), flush!(23, 2944, 3008),
            "test {kp}, {kp}\n",
            "jnz 2b\n",
        )
    };
}

/// The assembly text of the micro-kernel's loop (see [`kernel_asm`]).
#[cfg(test)]
pub(crate) const KERNEL_ASM: &str = kernel_asm!();

/// tile += Σ over blocks of the f16 block sums of A-panel · B-panel, `kp` k steps.
///
/// # Safety
/// The CPU has AVX512F, AVX512BW and AVX512_FP16; `a` holds kp·MR f16, `b` kp·NR, `tile`
/// MR·NR f32; `kp > 0` and `block > 0`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn tile_product(kp: usize, block: usize, a: *const u16, b: *const u16, tile: *mut f32) {
    if kp == 0 {
        return;
    }
    // SAFETY: per the contract; every zmm register written is declared clobbered, memory is
    // read from the panels and read and written in the tile only.
    unsafe {
        std::arch::asm!(
            kernel_asm!(),
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            t = in(reg) tile,
            kp = inout(reg) kp => _,
            blk = in(reg) block,
            cnt = out(reg) _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
            out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
            out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests;
