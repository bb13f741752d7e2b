//! The f16-arithmetic 7- and 27-point rows on AVX512_FP16 (`vaddph`, `vmulph` on 32 f16
//! lanes; no FMA): the same operations in the same order as [`super::f16_arith`]'s
//! emulation, so the same bits, read from and written to the f16 fields in place (nothing
//! widened). The instructions are written out in `asm!` (their intrinsics are not stable in
//! Rust); the text comes from [`row7_asm`] and [`row27_asm`], which the tests also run
//! through [`crate::asm_interp`] on any CPU (and, on AVX-512 CPUs without FP16, as compiled
//! code with the FP16 instructions emulated: [`crate::avx512fp16`]).

use super::window::each_row_in_place;
use super::{Block, Region, Stores};
use crate::precision::f16;

/// f16 lanes per vector.
const LANES: usize = 32;

/// True where the CPU has AVX512F, AVX512BW and AVX512_FP16.
pub(super) fn available() -> bool {
    crate::avx512fp16::available()
}

/// The 7-point row's loop. Operands: `{c}` the centre row at k − 1, `{im}` `{ip}` `{jm}`
/// `{jp}` the neighbour rows at k, `{o}` the new row at k, `{w}` the weights (c0, c1),
/// `{n}` the count of 32-point chunks (> 0). Per chunk: s = ((u_k−1 + u_k+1) + (u_i−1 +
/// u_i+1)) + (u_j−1 + u_j+1); new = c0·u + c1·s, each operation rounded to f16.
macro_rules! row7_asm {
    () => {
        concat!(
            "vpbroadcastw zmm30, word ptr [{w}]\n",
            "vpbroadcastw zmm31, word ptr [{w} + 2]\n",
            "2:\n",
            "vmovdqu16 zmm0, zmmword ptr [{c}]\n",
            "vaddph zmm0, zmm0, zmmword ptr [{c} + 4]\n",
            "vmovdqu16 zmm1, zmmword ptr [{im}]\n",
            "vaddph zmm1, zmm1, zmmword ptr [{ip}]\n",
            "vaddph zmm0, zmm0, zmm1\n",
            "vmovdqu16 zmm1, zmmword ptr [{jm}]\n",
            "vaddph zmm1, zmm1, zmmword ptr [{jp}]\n",
            "vaddph zmm0, zmm0, zmm1\n",
            "vmulph zmm0, zmm0, zmm31\n",
            "vmulph zmm1, zmm30, zmmword ptr [{c} + 2]\n",
            "vaddph zmm0, zmm1, zmm0\n",
            "vmovdqu16 zmmword ptr [{o}], zmm0\n",
            "add {c}, 64\n",
            "add {im}, 64\n",
            "add {ip}, 64\n",
            "add {jm}, 64\n",
            "add {jp}, 64\n",
            "add {o}, 64\n",
            "dec {n}\n",
            "jnz 2b\n",
        )
    };
}

/// Row `$r`'s sum into `$x`: its values at k − 1, k and k + 1, `(a + b) + c` (or,
/// `centre`, those at k − 1 and k + 1).
macro_rules! row_sum {
    ($x:literal, $r:literal) => {
        concat!(
            "vmovdqu16 zmm", $x, ", zmmword ptr [{r", $r, "}]\n",
            "vaddph zmm", $x, ", zmm", $x, ", zmmword ptr [{r", $r, "} + 2]\n",
            "vaddph zmm", $x, ", zmm", $x, ", zmmword ptr [{r", $r, "} + 4]\n",
        )
    };
    ($x:literal, $r:literal, centre) => {
        concat!("vmovdqu16 zmm", $x, ", zmmword ptr [{r", $r, "}]\n", "vaddph zmm", $x, ", zmm", $x, ", zmmword ptr [{r", $r, "} + 4]\n",)
    };
}

/// The sum of plane `$d`'s three rows into `$p` (`$t` a scratch register):
/// `(row 3d + row 3d+1) + row 3d+2`.
macro_rules! plane_sum {
    ($p:literal, $t:literal, $r0:literal, $r1:literal, $r2:literal $(, $centre:ident)?) => {
        concat!(
            row_sum!($p, $r0),
            row_sum!($t, $r1 $(, $centre)?),
            "vaddph zmm", $p, ", zmm", $p, ", zmm", $t, "\n",
            row_sum!($t, $r2),
            "vaddph zmm", $p, ", zmm", $p, ", zmm", $t, "\n",
        )
    };
}

/// The 27-point row's loop. Operands: `{r0}` … `{r8}` the nine rows (i + di, j + dj) at
/// k − 1 (di, then dj, in −1..=1; r4 the centre), `{o}`, `{w}` and `{n}` as for
/// [`row7_asm`]. Per chunk: s = the 26 neighbours summed as `super::twenty_seven`'s tree
/// (rows, planes, point; the three planes in zmm0, zmm2, zmm3); new = c0·u + c1·s, each
/// operation rounded to f16.
macro_rules! row27_asm {
    () => {
        concat!(
            "vpbroadcastw zmm30, word ptr [{w}]\n",
            "vpbroadcastw zmm31, word ptr [{w} + 2]\n",
            "2:\n",
            plane_sum!("0", "1", "0", "1", "2"),
            plane_sum!("2", "4", "3", "4", "5", centre),
            plane_sum!("3", "5", "6", "7", "8"),
            "vaddph zmm0, zmm0, zmm2\n",
            "vaddph zmm0, zmm0, zmm3\n",
            "vmulph zmm0, zmm0, zmm31\n",
            "vmulph zmm1, zmm30, zmmword ptr [{r4} + 2]\n",
            "vaddph zmm0, zmm1, zmm0\n",
            "vmovdqu16 zmmword ptr [{o}], zmm0\n",
            "add {r0}, 64\n", "add {r1}, 64\n", "add {r2}, 64\n", "add {r3}, 64\n", "add {r4}, 64\n",
            "add {r5}, 64\n", "add {r6}, 64\n", "add {r7}, 64\n", "add {r8}, 64\n",
            "add {o}, 64\n",
            "dec {n}\n",
            "jnz 2b\n",
        )
    };
}

#[cfg(test)]
pub(super) const ROW7_ASM: &str = row7_asm!();
#[cfg(test)]
pub(super) const ROW27_ASM: &str = row27_asm!();

/// `n` chunks of the 7-point row.
///
/// # Safety
/// The CPU has AVX512F, AVX512BW and AVX512_FP16 ([`available`]); `n > 0`; `c` holds 32·n
/// + 2 f16, `im`, `ip`, `jm`, `jp` and `o` 32·n; `w` 2.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn row7(c: *const f16, [im, ip, jm, jp]: [*const f16; 4], o: *mut f16, w: &[f16; 2], n: usize) {
    // SAFETY: per the contract; the zmm registers written are declared clobbered, memory is
    // read from the rows and written in `o` only.
    unsafe {
        std::arch::asm!(
            row7_asm!(),
            c = inout(reg) c => _, im = inout(reg) im => _, ip = inout(reg) ip => _,
            jm = inout(reg) jm => _, jp = inout(reg) jp => _, o = inout(reg) o => _,
            w = in(reg) w.as_ptr(), n = inout(reg) n => _,
            out("zmm0") _, out("zmm1") _, out("zmm30") _, out("zmm31") _,
            options(nostack),
        );
    }
}

/// `n` chunks of the 27-point row.
///
/// # Safety
/// As [`row7`], with the nine rows `r` of 32·n + 2 f16 each.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn row27(r: [*const f16; 9], o: *mut f16, w: &[f16; 2], n: usize) {
    // SAFETY: as in `row7`.
    unsafe {
        std::arch::asm!(
            row27_asm!(),
            r0 = inout(reg) r[0] => _, r1 = inout(reg) r[1] => _, r2 = inout(reg) r[2] => _,
            r3 = inout(reg) r[3] => _, r4 = inout(reg) r[4] => _, r5 = inout(reg) r[5] => _,
            r6 = inout(reg) r[6] => _, r7 = inout(reg) r[7] => _, r8 = inout(reg) r[8] => _,
            o = inout(reg) o => _, w = in(reg) w.as_ptr(), n = inout(reg) n => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
            out("zmm30") _, out("zmm31") _,
            options(nostack),
        );
    }
}

/// [`each_row_in_place`] in 32-point chunks; panics where the CPU lacks AVX512_FP16.
fn each_row(
    src: &Block<f16>,
    dst: &mut Block<f16>,
    r: &Region,
    stores: Stores,
    chunks: impl Fn(usize, usize, usize, *mut f16, usize) + Sync,
    point: impl Fn(usize, usize, usize) -> f16 + Sync,
) {
    assert!(available(), "f16_native: the CPU has no AVX512_FP16");
    each_row_in_place(src, dst, r, stores, LANES, chunks, point);
}

/// The 7-point sweep of `r` in f16 arithmetic, natively (panics without AVX512_FP16).
pub(super) fn sweep7(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    let v = |i: usize, j: usize, k: usize| src.data[src.at(i, j, k)];
    let w = [c0, c1];
    let point = |i: usize, j: usize, k: usize| super::seven::update7(c0, c1, v(i, j, k), [v(i, j, k - 1), v(i, j, k + 1), v(i - 1, j, k), v(i + 1, j, k), v(i, j - 1, k), v(i, j + 1, k)]);
    let chunks = |i: usize, j: usize, k: usize, o: *mut f16, n: usize| {
        // Every row read spans k − 1 .. k + 32·n + 1 within the block (ghosts included).
        assert!(src.at(i + 1, j + 1, k + LANES * n) < src.data.len() && k >= 1);
        let p = |i: usize, j: usize, k: usize| src.data[src.at(i, j, k)..].as_ptr();
        // SAFETY: available() was asserted; the rows hold the points read (asserted above),
        // `o` holds 32·n points (each_row's contract).
        unsafe { row7(p(i, j, k - 1), [p(i - 1, j, k), p(i + 1, j, k), p(i, j - 1, k), p(i, j + 1, k)], o, &w, n) }
    };
    each_row(src, dst, r, stores, chunks, point);
}

/// The 27-point sweep of `r` in f16 arithmetic, natively (panics without AVX512_FP16).
pub(super) fn sweep27(src: &Block<f16>, dst: &mut Block<f16>, r: &Region, c0: f16, c1: f16, stores: Stores) {
    let at = |i: usize, j: usize, k: usize| src.at(i, j, k);
    let w = [c0, c1];
    let point = |i: usize, j: usize, k: usize| {
        let s = super::twenty_seven::neighbours27(|n, d| src.data[at(i + n / 3 - 1, j + n % 3 - 1, k + d - 1)]);
        c0 * src.data[at(i, j, k)] + c1 * s
    };
    let chunks = |i: usize, j: usize, k: usize, o: *mut f16, n: usize| {
        assert!(at(i + 1, j + 1, k + LANES * n) < src.data.len() && k >= 1);
        let rows: [*const f16; 9] = std::array::from_fn(|m| src.data[at(i + m / 3 - 1, j + m % 3 - 1, k - 1)..].as_ptr());
        // SAFETY: as in sweep7.
        unsafe { row27(rows, o, &w, n) }
    };
    each_row(src, dst, r, stores, chunks, point);
}
