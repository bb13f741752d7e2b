//! What every sweep shares: the rolling window of three widened planes of the old field,
//! the walk over planes and rows of a region (parallel over blocks of planes, each block
//! swept in slabs of rows), the fixed 16-point chunks a row is computed in, and cache
//! prefetch hints.

use super::{Block, Region, Stores};
use crate::precision::{Element, Overflow};
use rayon::prelude::*;
use std::ops::Range;

/// The rows `rows` (ghost-inclusive j) of the old field's planes i−1, i, i+1 around the
/// plane being computed, as the accumulation type: borrowed where the storage is that type
/// (f64, f32), widened once per plane into a rolling window of three buffers otherwise.
pub(super) struct Window<'a, T: Element> {
    src: &'a Block<T>,
    direct: Option<&'a [T::Acc]>,
    bufs: [Vec<T::Acc>; 3],
    /// The plane in bufs[1].
    centre: usize,
    /// The rows held, ghost-inclusive j.
    rows: Range<usize>,
}

impl<'a, T: Element> Window<'a, T> {
    pub(super) fn new(src: &'a Block<T>, i: usize, rows: Range<usize>) -> Self {
        let direct = T::as_acc_slice(&src.data);
        let len = if direct.is_some() { 0 } else { rows.len() * src.row() };
        let mut w = Self { src, direct, bufs: std::array::from_fn(|_| vec![T::Acc::default(); len]), centre: i, rows };
        if w.direct.is_none() {
            for (b, p) in [i - 1, i, i + 1].into_iter().enumerate() {
                w.widen(b, p);
            }
        }
        w
    }

    pub(super) fn widen(&mut self, b: usize, plane: usize) {
        let at = plane * self.src.plane() + self.rows.start * self.src.row();
        T::to_acc_slice(&self.src.data[at..at + self.bufs[b].len()], &mut self.bufs[b]);
    }

    /// Moves the window one plane on.
    pub(super) fn advance(&mut self) {
        self.centre += 1;
        if self.direct.is_none() {
            self.bufs.rotate_left(1);
            self.widen(2, self.centre + 1);
        }
    }

    /// Row j of plane centre + d − 1 (d in 0..3), ghosts included; j among the rows held.
    pub(super) fn row(&self, d: usize, j: usize) -> &[T::Acc] {
        debug_assert!(self.rows.contains(&j), "window: row {j} outside {:?}", self.rows);
        let n = self.src.row();
        match self.direct {
            Some(all) => {
                let at = (self.centre + d - 1) * self.src.plane() + j * n;
                &all[at..at + n]
            }
            None => {
                let at = (j - self.rows.start) * n;
                &self.bufs[d][at..at + n]
            }
        }
    }
}

/// Bytes of the old field's three planes a slab of rows may take, in the accumulation type:
/// a quarter of the smallest L2 cache of today's server cores (512 KiB, AMD Zen 2 and 3), so
/// that the rows a sweep reads three times (as plane i+1, i, i−1) are read from memory once
/// and from L2 after, with room left for the new rows and the next plane's prefetch.
const SLAB_BYTES: usize = 128 << 10;

/// The slabs of rows (each a range of j) a region's planes are swept in: as many rows as
/// keep three planes of them, ghost rows included, within [`SLAB_BYTES`] (at least
/// [`MIN_SLAB_ROWS`]); the region's rows cut into equal slabs.
pub(super) fn slabs(js: &Range<usize>, row: usize, acc_bytes: usize) -> Vec<Range<usize>> {
    let fit = (SLAB_BYTES / (3 * row * acc_bytes)).saturating_sub(2).max(MIN_SLAB_ROWS);
    let count = js.len().div_ceil(fit).max(1);
    let per = js.len().div_ceil(count);
    (0..count).map(|s| js.start + s * per..(js.start + (s + 1) * per).min(js.end)).filter(|s| !s.is_empty()).collect()
}

/// The fewest rows a slab has: below that the two ghost rows a slab also reads cost more
/// than the cache they save.
const MIN_SLAB_ROWS: usize = 4;

/// Runs `task(i0, planes)` on blocks of consecutive i-planes of `dst` within `r` (the
/// planes i0, i0 + 1, … of the new field, whole), four blocks per thread of the pool, in
/// parallel; returns the sum of what the tasks return. With streaming stores each task ends
/// with a store fence, so the new field is in memory when this returns.
pub(super) fn plane_blocks<T: Copy + Default + Send>(dst: &mut Block<T>, r: &Region, stores: Stores, task: impl Fn(usize, &mut [T]) -> f64 + Sync) -> f64 {
    if r.is_empty() {
        return 0.0;
    }
    let plane = dst.plane();
    let planes = &mut dst.data[r.i.start * plane..r.i.end * plane];
    let tasks = (4 * rayon::current_num_threads()).min(r.i.len()).max(1);
    let per = r.i.len().div_ceil(tasks);
    planes
        .par_chunks_mut(per * plane)
        .enumerate()
        .map(|(t, block)| {
            let sum = task(r.i.start + t * per, block);
            if stores == Stores::Streaming {
                store_fence();
            }
            sum
        })
        .sum()
}

/// Runs `plane_fn(window, i, js, out_plane)` for every i-plane of `r` and every slab `js`
/// of `slabs` (ranges of j that cover `r.j`), over [`plane_blocks`]: a task sweeps its
/// block slab by slab, and the window of each slab rolls along i (so every row of the old
/// field is widened once per task and slab, not three times). Returns the sum of what
/// `plane_fn` returns (Himeno's gosa; 0 for the others).
pub(super) fn each_plane<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, slabs: &[Range<usize>], stores: Stores, plane_fn: impl Fn(&Window<'_, T>, usize, Range<usize>, &mut [T]) -> f64 + Sync) -> f64 {
    assert_eq!(src.n, dst.n, "sweep: blocks of different shapes");
    let plane = dst.plane();
    plane_blocks(dst, r, stores, |i0, block| {
        let mut sum = 0.0;
        for js in slabs {
            let mut w = Window::new(src, i0, js.start - 1..js.end + 1);
            for (n, out) in block.chunks_mut(plane).enumerate() {
                if n > 0 {
                    w.advance();
                }
                sum += plane_fn(&w, i0 + n, js.clone(), out);
            }
        }
        sum
    })
}

/// Where a sweep computes a row and how it lands in the new field: computed straight into
/// the field where the storage is the accumulation type and stores are ordinary; else
/// computed into a buffer, rounded to the storage format (a second buffer when streaming)
/// and copied (streamed) into the field.
pub(super) struct RowOut<T: Element> {
    res: Vec<T::Acc>,
    rounded: Vec<T>,
    stores: Stores,
}

impl<T: Element> RowOut<T> {
    pub(super) fn new(len: usize, stores: Stores) -> Self {
        let rounded = if stores == Stores::Streaming && T::as_acc_slice(&[]).is_none() { vec![T::default(); len] } else { Vec::new() };
        Self { res: vec![T::Acc::default(); len], rounded, stores }
    }

    pub(super) fn store(&mut self, out: &mut [T], f: impl FnOnce(&mut [T::Acc])) {
        let streaming = self.stores == Stores::Streaming;
        match T::as_acc_slice_mut(out) {
            Some(direct) if !streaming => f(direct),
            Some(direct) => {
                f(&mut self.res);
                stream_copy(&self.res, direct);
            }
            None if !streaming => {
                f(&mut self.res);
                T::from_acc_slice(&self.res, out, Overflow::Saturate);
            }
            None => {
                f(&mut self.res);
                T::from_acc_slice(&self.res, &mut self.rounded, Overflow::Saturate);
                stream_copy(&self.rounded, out);
            }
        }
    }
}

/// Runs `row_fn(window, j, results)` for every row of `r` (plane by plane, see
/// [`each_plane`]), `results` being the row's k range `r.k` of the new field. A widened
/// window is swept in [`slabs`] (its buffers are to stay in L2); f64 and f32, read in
/// place, sweep whole planes: there the hardware prefetcher streams each plane's rows
/// straight through, and slabs measured 0.9× on f32 (Zen 3, one rank).
pub(super) fn each_row<T: Element + Send>(src: &Block<T>, dst: &mut Block<T>, r: &Region, stores: Stores, row_fn: impl Fn(&Window<'_, T>, usize, &mut [T::Acc]) + Sync) {
    let (row, len) = (src.row(), r.k.len());
    let (k0, k1) = (r.k.start, r.k.end);
    let plane = src.plane();
    let slabs = match T::as_acc_slice(&src.data) {
        Some(_) => vec![r.j.clone()],
        None => slabs(&r.j, row, std::mem::size_of::<T::Acc>()),
    };
    let _ = each_plane(src, dst, r, &slabs, stores, |w, i, js, out| {
        let mut row_out = RowOut::<T>::new(len, stores);
        for j in js {
            // The new rows are prefetched for writing where they are rounded storage rows
            // (written whole); on the direct f64/f32 path that costs more than it saves,
            // measured.
            prefetch_ahead(&src.data, [plane, row], i, j, out, w.direct.is_none() && stores == Stores::Normal);
            row_out.store(&mut out[j * row + k0..j * row + k1], |dst| row_fn(w, j, dst));
        }
        0.0
    });
}

/// Computes every new row (i, j) of `r` straight from the old field, where it lies (no
/// window): `chunks(i, j, k_at, out, n)` writes n chunks of `lanes` points from k = `k_at`
/// at `out` (they cover r.k, the last one overlapping the one before where r.k is not a
/// multiple of `lanes`); a row shorter than `lanes` is done point by point with
/// `point(i, j, k)`. Parallel over blocks of planes ([`plane_blocks`]); streamed through a
/// row buffer with `Stores::Streaming`. Panics where `src` and `dst` differ in shape.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // its callers are x86-64 rows
pub(super) fn each_row_in_place<T: Copy + Default + Send + Sync>(
    src: &Block<T>,
    dst: &mut Block<T>,
    r: &Region,
    stores: Stores,
    lanes: usize,
    chunks: impl Fn(usize, usize, usize, *mut T, usize) + Sync,
    point: impl Fn(usize, usize, usize) -> T + Sync,
) {
    assert_eq!(src.n, dst.n, "sweep: blocks of different shapes");
    let (plane, row, len) = (dst.plane(), dst.row(), r.k.len());
    plane_blocks(dst, r, stores, |i0, block| {
        let mut buf = vec![T::default(); if stores == Stores::Streaming { len } else { 0 }];
        for (n, p) in block.chunks_mut(plane).enumerate() {
            let i = i0 + n;
            for j in r.j.clone() {
                prefetch_ahead(&src.data, [plane, row], i, j, p, stores == Stores::Normal);
                let out = &mut p[j * row + r.k.start..j * row + r.k.end];
                let target: &mut [T] = if stores == Stores::Streaming { &mut buf } else { out };
                if len < lanes {
                    for (k, x) in target.iter_mut().enumerate() {
                        *x = point(i, j, r.k.start + k);
                    }
                } else {
                    let o = target.as_mut_ptr();
                    chunks(i, j, r.k.start, o, len / lanes);
                    if len % lanes != 0 {
                        // SAFETY: len − lanes + lanes points lie inside `target`.
                        chunks(i, j, r.k.start + len - lanes, unsafe { o.add(len - lanes) }, 1);
                    }
                }
                if stores == Stores::Streaming {
                    stream_copy(&buf, &mut p[j * row + r.k.start..j * row + r.k.end]);
                }
            }
        }
        0.0
    });
}

/// Prefetches, while row j of plane i is swept: row j of the old field's plane i + 2 into
/// L2 (the sweep reads it first one plane on: the window widens it, a direct sweep reads
/// it; 1.1–1.2× for direct f64 and f32 on one Zen 4 core at 256³), and, with `write`, row
/// j + 4 of the new plane `out` for writing (not for streamed rows, which are not read).
/// `src` is the old field, of `plane` points a plane and `row` a row; `out` holds whole rows.
#[inline(always)]
fn prefetch_ahead<A, B>(src: &[A], [plane, row]: [usize; 2], i: usize, j: usize, out: &[B], write: bool) {
    let ahead = (i + 2) * plane + j * row;
    if ahead + row <= src.len() {
        prefetch::<INTO_L2, _>(&src[ahead..ahead + row]);
    }
    if write && (j + 5) * row <= out.len() {
        prefetch::<FOR_WRITE, _>(&out[(j + 4) * row..(j + 5) * row]);
    }
}

/// Copies `src` into `dst`, with non-temporal stores for the whole cache lines of `dst` on
/// x86-64, and ordinary stores for the partial lines at its ends (which the neighbouring
/// rows share: a line is never written both ways) and everywhere on other CPUs.
pub(super) fn stream_copy<A: Copy>(src: &[A], dst: &mut [A]) {
    assert_eq!(src.len(), dst.len(), "stream_copy: lengths differ");
    let size = std::mem::size_of::<A>();
    #[cfg(target_arch = "x86_64")]
    if size > 0 && 64 % size == 0 {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let addr = dst.as_ptr() as usize;
        // Elements are aligned to their size, which divides 64.
        let head = ((addr.next_multiple_of(64) - addr) / size).min(dst.len());
        let lines = (dst.len() - head) * size / 64;
        let tail = head + lines * 64 / size;
        dst[..head].copy_from_slice(&src[..head]);
        // SAFETY: `lines` 64-byte lines from element `head` lie inside both slices (tail ≤
        // len); the stores are to 16-byte-aligned addresses, the loads are unaligned; SSE2
        // is part of x86-64.
        #[allow(unused_unsafe)]
        unsafe {
            let (s, d) = (src.as_ptr().add(head).cast::<u8>(), dst.as_mut_ptr().add(head).cast::<u8>());
            for b in 0..4 * lines {
                _mm_stream_si128(d.add(16 * b).cast::<__m128i>(), _mm_loadu_si128(s.add(16 * b).cast::<__m128i>()));
            }
        }
        dst[tail..].copy_from_slice(&src[tail..]);
        return;
    }
    let _ = size;
    dst.copy_from_slice(src);
}

/// Orders the streaming stores before whatever follows (x86-64 `sfence`; nothing elsewhere).
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no operands and no preconditions (SSE, part of x86-64).
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

/// Prefetches the cache lines of `xs` with `_mm_prefetch`'s hint `HINT` (a hint only:
/// nothing on other CPUs).
#[inline(always)]
pub(super) fn prefetch<const HINT: i32, A>(xs: &[A]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(xs);
        let p = xs.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch of an address inside `xs` reads nothing and cannot fault.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<HINT>(p.add(off));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = xs;
}

#[cfg(target_arch = "x86_64")]
pub(super) use std::arch::x86_64::{_MM_HINT_ET0 as FOR_WRITE, _MM_HINT_T1 as INTO_L2};
#[cfg(not(target_arch = "x86_64"))]
pub(super) const INTO_L2: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
pub(super) const FOR_WRITE: i32 = 0;

/// Points per chunk of a row: one AVX-512 register of f32 (two of f64).
pub(super) const LANES: usize = 16;

/// Runs `chunk(k0, out)` over `dst` in chunks of [`LANES`] points with no scalar remainder:
/// the last chunk overlaps the one before it where the row is not a multiple of LANES (those
/// points are computed twice from the same inputs, to the same bits). Fixed-length chunks
/// let the compiler drop bounds checks and keep the whole row in vector registers; a row
/// shorter than LANES goes point by point through `point`.
#[inline(always)]
pub(super) fn chunked<A: Copy>(dst: &mut [A], chunk: impl Fn(usize, &mut [A; LANES]), point: impl Fn(usize) -> A) {
    let n = dst.len();
    if n < LANES {
        for (k, out) in dst.iter_mut().enumerate() {
            *out = point(k);
        }
        return;
    }
    for k0 in chunk_starts(n) {
        chunk(k0, (&mut dst[k0..k0 + LANES]).try_into().expect("LANES points"));
    }
}

/// Starts of the [`LANES`]-point chunks that cover 0..n (n ≥ LANES): every multiple of
/// LANES that fits, then n − LANES where n is not a multiple (overlapping the one before).
pub(super) fn chunk_starts(n: usize) -> impl Iterator<Item = usize> {
    (0..n / LANES).map(|c| c * LANES).chain((!n.is_multiple_of(LANES)).then(|| n - LANES))
}

/// `LANES + extra` values of `row` from `at`, as an array reference (no bounds checks after).
#[inline(always)]
pub(super) fn window<A, const N: usize>(row: &[A], at: usize) -> &[A; N] {
    row[at..at + N].try_into().expect("N values")
}
