//! The portable low-precision path: convert K-blocks of A and B to f32, accumulate with
//! faer's f32 matmul. Every element is converted exactly once. Also the exact widening of
//! FP8 operands to bf16 that lets them take the bf16 kernel.

use super::{GemmInfo, GemmParams, GemmPath, Update, beta, faer_matmul, zero_window};
use crate::precision::Element;
use crate::precision::scaling::Quantized;
use half::bf16;
use rayon::prelude::*;

pub(super) fn gemm<T: Element>(c: &mut [f32], ldc: usize, a: &Quantized<T>, b: &Quantized<T>, up: Update<f32>, p: &GemmParams) -> GemmInfo {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let info = GemmInfo { path: GemmPath::ConvertToF32 };
    if m == 0 || n == 0 {
        return info;
    }
    if k == 0 {
        if !up.accumulate {
            zero_window(c, ldc, m, n);
        }
        return info;
    }
    let kc = p.convert_kc.max(1).min(k);
    let mut abuf = vec![0f32; m * kc];
    let mut bbuf = vec![0f32; kc * n];
    tensor_scaled(c, ldc, a, b, up, |c, ldc, up| {
        for k0 in (0..k).step_by(kc) {
            let kb = kc.min(k - k0);
            let (ab, bb) = (&mut abuf[..m * kb], &mut bbuf[..kb * n]);
            let rows_per_task = 64;
            ab.par_chunks_mut(rows_per_task * kb).enumerate().for_each(|(t, out)| {
                let r0 = t * rows_per_task;
                a.block_to_f32(r0, out.len() / kb, k0, kb, out);
            });
            bb.par_chunks_mut(n).enumerate().for_each(|(r, out)| b.block_to_f32(k0 + r, 1, 0, n, out));
            faer_matmul(c, ldc, ab, bb, (m, n, kb), beta(k0 > 0 || up.accumulate), up.alpha);
        }
        info
    })
}

/// `C (+)= α·A·B` for operands stored with per-tensor scales (real = stored / scale), by
/// `product`, which computes `C (+)= α'·A_stored·B_stored` on a window: α' = α/(s_A·s_B) when
/// that is a normal f32 (or zero). Otherwise (the scales of very small or very large inputs:
/// α' would underflow to a subnormal or overflow) `product` runs with α' = 1 into a
/// scratch window, and α/(s_A·s_B) is applied in f64 as each entry lands in C.
pub(super) fn tensor_scaled<T: Element>(
    c: &mut [f32],
    ldc: usize,
    a: &Quantized<T>,
    b: &Quantized<T>,
    up: Update<f32>,
    product: impl FnOnce(&mut [f32], usize, Update<f32>) -> GemmInfo,
) -> GemmInfo {
    let alpha = up.alpha as f64 / (a.tensor_scale() as f64 * b.tensor_scale() as f64);
    if (alpha as f32).is_normal() || alpha == 0.0 {
        return product(c, ldc, Update { alpha: alpha as f32, ..up });
    }
    let (m, n) = (a.rows, b.cols);
    let mut scratch = vec![0f32; m * n];
    let info = product(&mut scratch, n, Update { alpha: 1.0, accumulate: false });
    c.par_chunks_mut(ldc).zip(scratch.par_chunks(n.max(1))).take(m).for_each(|(row, t)| {
        for (x, &v) in row[..n].iter_mut().zip(t) {
            let old = if up.accumulate { *x as f64 } else { 0.0 };
            *x = (old + alpha * v as f64) as f32;
        }
    });
    info
}

/// The smallest nonzero magnitude [`to_bf16_exact`] takes: FP8 values carry at most 4
/// significant bits, so values of at least 2⁻⁵⁶ lie on a grid of 2⁻⁵⁹ or coarser, their
/// products on one of 2⁻¹¹⁸ and every f32 sum of them is zero or at least 2⁻¹¹⁸: normal,
/// so `vdpbf16ps`, which treats subnormal inputs as zero and flushes subnormal results,
/// computes what an f32 FMA computes on the same products.
const BF16_EXACT_MIN: f32 = 1.0 / (1u64 << 56) as f32;

/// The values of `x` (MX block scales applied; a per-tensor scale stays out, as in
/// [`gemm`]) as bf16, when every one is exactly a bf16 that is zero or of magnitude at least
/// [`BF16_EXACT_MIN`] and finite; None otherwise (the caller takes the f32 path). Every FP8
/// value is a bf16 (4 or 3 significant bits, exponents within bf16's); MX scales far below
/// one can push values out of range.
pub(super) fn to_bf16_exact<T: Element>(x: &Quantized<T>) -> Option<Vec<bf16>> {
    let cols = x.cols;
    let mut out = vec![bf16::ZERO; x.rows * cols];
    if cols == 0 {
        return Some(out);
    }
    let fits = out.par_chunks_mut(cols).enumerate().map_init(
        || vec![0f32; cols],
        |buf, (i, row)| {
            x.block_to_f32(i, 1, 0, cols, buf);
            // No early exit: the loop vectorises, and a row that does not fit is rare.
            let mut fits = true;
            for (o, &v) in row.iter_mut().zip(buf.iter()) {
                let bits = v.to_bits();
                let magnitude = bits & 0x7fff_ffff;
                fits &= bits & 0xffff == 0 && magnitude < 0x7f80_0000 && (magnitude == 0 || magnitude >= BF16_EXACT_MIN.to_bits());
                *o = bf16::from_bits((bits >> 16) as u16);
            }
            fits
        },
    );
    fits.all(|f| f).then_some(out)
}
