//! The portable low-precision path: convert K-blocks of A and B to f32, accumulate with
//! faer's f32 matmul. Every element is converted exactly once.

use super::{GemmInfo, GemmParams, GemmPath, faer_matmul};
use crate::precision::Element;
use crate::precision::scaling::Quantized;
use faer::Accum;
use rayon::prelude::*;

pub(super) fn gemm<T: Element>(c: &mut [f32], a: &Quantized<T>, b: &Quantized<T>, p: &GemmParams) -> GemmInfo {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return GemmInfo { path: GemmPath::ConvertToF32 };
    }
    let kc = p.convert_kc.max(1).min(k.max(1));
    let mut abuf = vec![0f32; m * kc];
    let mut bbuf = vec![0f32; kc * n];
    if k == 0 {
        c.fill(0.0);
    }
    for k0 in (0..k).step_by(kc) {
        let kb = kc.min(k - k0);
        let (ab, bb) = (&mut abuf[..m * kb], &mut bbuf[..kb * n]);
        let rows_per_task = 64;
        ab.par_chunks_mut(rows_per_task * kb).enumerate().for_each(|(t, out)| {
            let r0 = t * rows_per_task;
            a.block_to_f32(r0, out.len() / kb, k0, kb, out);
        });
        bb.par_chunks_mut(n).enumerate().for_each(|(r, out)| b.block_to_f32(k0 + r, 1, 0, n, out));
        let beta = if k0 == 0 { Accum::Replace } else { Accum::Add };
        faer_matmul(c, ab, bb, m, n, kb, beta, 1.0);
    }
    unscale(c, a, b);
    GemmInfo { path: GemmPath::ConvertToF32 }
}

/// Divides C by the per-tensor scales of A and B (a no-op when neither is scaled).
pub(super) fn unscale<T: Element>(c: &mut [f32], a: &Quantized<T>, b: &Quantized<T>) {
    let s = a.tensor_scale() as f64 * b.tensor_scale() as f64;
    if s != 1.0 {
        let inv = (1.0 / s) as f32;
        c.par_chunks_mut(1 << 14).for_each(|ch| ch.iter_mut().for_each(|x| *x *= inv));
    }
}
