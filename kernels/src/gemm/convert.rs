//! The portable low-precision path: convert K-blocks of A and B to f32, accumulate with
//! faer's f32 matmul. Every element is converted exactly once.

use super::{GemmInfo, GemmParams, GemmPath, Update, beta, faer_matmul, zero_window};
use crate::precision::Element;
use crate::precision::scaling::Quantized;
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
    let alpha = unscaled_alpha(up.alpha, a, b);
    let kc = p.convert_kc.max(1).min(k);
    let mut abuf = vec![0f32; m * kc];
    let mut bbuf = vec![0f32; kc * n];
    for k0 in (0..k).step_by(kc) {
        let kb = kc.min(k - k0);
        let (ab, bb) = (&mut abuf[..m * kb], &mut bbuf[..kb * n]);
        let rows_per_task = 64;
        ab.par_chunks_mut(rows_per_task * kb).enumerate().for_each(|(t, out)| {
            let r0 = t * rows_per_task;
            a.block_to_f32(r0, out.len() / kb, k0, kb, out);
        });
        bb.par_chunks_mut(n).enumerate().for_each(|(r, out)| b.block_to_f32(k0 + r, 1, 0, n, out));
        faer_matmul(c, ldc, ab, bb, (m, n, kb), beta(k0 > 0 || up.accumulate), alpha);
    }
    info
}

/// α divided by the per-tensor scales of A and B (α itself when neither is scaled).
fn unscaled_alpha<T: Element>(alpha: f32, a: &Quantized<T>, b: &Quantized<T>) -> f32 {
    let s = a.tensor_scale() as f64 * b.tensor_scale() as f64;
    if s == 1.0 { alpha } else { (alpha as f64 / s) as f32 }
}
