//! Data on the wire: the bytes of quantised pieces, factor blocks and halo planes. Low-precision
//! data travels as its raw bits (one byte per FP8 element, two per bf16/f16), so a
//! broadcast moves exactly the storage the format needs.

use effcal_kernels::precision::scaling::{KAxis, MX_BLOCK, Quantized, ScaleMode, Scaling};
use effcal_kernels::precision::{E4M3, E5M2, bf16, f16};

/// Plain bit containers: no padding, every bit pattern valid.
///
/// # Safety
/// Only for types for which that holds.
pub unsafe trait Pod: Copy + Default + 'static {}
unsafe impl Pod for u8 {}
unsafe impl Pod for i8 {}
unsafe impl Pod for i64 {}
unsafe impl Pod for f32 {}
unsafe impl Pod for f64 {}
unsafe impl Pod for bf16 {}
unsafe impl Pod for f16 {}
unsafe impl Pod for E4M3 {}
unsafe impl Pod for E5M2 {}

pub fn bytes_of<X: Pod>(s: &[X]) -> &[u8] {
    // SAFETY: X is Pod (no padding), the length covers exactly the slice.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), std::mem::size_of_val(s)) }
}

/// Reads `len` values of X from the start of `bytes`; returns them and the rest.
pub fn read<X: Pod>(bytes: &[u8], len: usize) -> (Vec<X>, &[u8]) {
    let size = len * std::mem::size_of::<X>();
    assert!(bytes.len() >= size, "message shorter than its layout");
    let mut out = vec![X::default(); len];
    // SAFETY: X is Pod, `out` has room for `size` bytes, the regions do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), size) };
    (out, &bytes[size..])
}

fn scale_len(rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> usize {
    match mode {
        ScaleMode::None => 0,
        ScaleMode::Tensor => 4,
        ScaleMode::Mx => match k_axis {
            KAxis::Cols => rows * cols.div_ceil(MX_BLOCK),
            KAxis::Rows => rows.div_ceil(MX_BLOCK) * cols,
        },
    }
}

/// Bytes of a quantised rows×cols piece on the wire.
pub fn piece_len<T: Pod>(rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> usize {
    rows * cols * std::mem::size_of::<T>() + scale_len(rows, cols, k_axis, mode)
}

pub fn write_piece<T: Pod>(q: &Quantized<T>, out: &mut Vec<u8>) {
    out.extend_from_slice(bytes_of(&q.data));
    match &q.scaling {
        Scaling::None => {}
        Scaling::Tensor { scale } => out.extend_from_slice(&scale.to_le_bytes()),
        Scaling::Mx { exps } => out.extend_from_slice(bytes_of(exps)),
    }
}

/// The inverse of [`write_piece`]; returns the piece and the rest of the message.
pub fn read_piece<T: Pod>(bytes: &[u8], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> (Quantized<T>, &[u8]) {
    let (data, rest) = read::<T>(bytes, rows * cols);
    let (scaling, rest) = match mode {
        ScaleMode::None => (Scaling::None, rest),
        ScaleMode::Tensor => {
            let (s, rest) = read::<f32>(rest, 1);
            (Scaling::Tensor { scale: s[0] }, rest)
        }
        ScaleMode::Mx => {
            let (exps, rest) = read::<i8>(rest, scale_len(rows, cols, k_axis, mode));
            (Scaling::Mx { exps }, rest)
        }
    };
    (Quantized { data, rows, cols, k_axis, scaling }, rest)
}

/// Columns `c0..c1` of a piece quantised with k along rows (a U panel), with their scales.
pub fn columns<T: Pod>(u: &Quantized<T>, c0: usize, c1: usize) -> Quantized<T> {
    let w = c1 - c0;
    let mut data = Vec::with_capacity(u.rows * w);
    for r in 0..u.rows {
        data.extend_from_slice(&u.data[r * u.cols + c0..r * u.cols + c1]);
    }
    let scaling = match &u.scaling {
        Scaling::Mx { exps } => {
            assert_eq!(u.k_axis, KAxis::Rows, "column pieces of U panels only");
            Scaling::Mx { exps: exps.chunks(u.cols.max(1)).flat_map(|row| row[c0..c1].iter().copied()).collect() }
        }
        s => s.clone(),
    };
    Quantized { data, rows: u.rows, cols: w, k_axis: u.k_axis, scaling }
}

#[cfg(test)]
mod tests {
    use super::*;
    use effcal_kernels::Overflow;

    #[test]
    fn pieces_survive_the_wire_and_column_splits_keep_their_scales() {
        for mode in [ScaleMode::None, ScaleMode::Tensor, ScaleMode::Mx] {
            let (rows, cols) = (70, 45);
            let src: Vec<f32> = (0..rows * cols).map(|x| ((x * 31 % 97) as f32 - 48.0) * 0.37).collect();
            let q = Quantized::<E4M3>::from_f32(&src, rows, cols, KAxis::Rows, mode, Overflow::Saturate);
            let mut wire = Vec::new();
            write_piece(&q, &mut wire);
            wire.push(7);
            assert_eq!(wire.len(), piece_len::<E4M3>(rows, cols, KAxis::Rows, mode) + 1);
            let (back, rest) = read_piece::<E4M3>(&wire, rows, cols, KAxis::Rows, mode);
            assert_eq!(rest, &[7]);
            let part = columns(&back, 10, 40);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(back.value(i, j).to_bits(), q.value(i, j).to_bits());
                }
                for j in 10..40 {
                    assert_eq!(part.value(i, j - 10).to_bits(), q.value(i, j).to_bits(), "{mode:?} ({i},{j})");
                }
            }
        }
    }
}
