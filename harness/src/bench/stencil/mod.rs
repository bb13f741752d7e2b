//! Stencils across ranks: a global grid (boundary planes included, which stay fixed) cut
//! into blocks by a 3D Cartesian decomposition, one ghost layer exchanged before every
//! sweep, plainly (exchange, then compute) or overlapped (the deep interior computed while
//! the three halo phases travel, then the shell).
//!
//! Counting ([`effcal_kernels::cost::stencil`]): FLOPs per updated point; bytes per updated point
//! by the STREAM convention, the traffic a sweep must make with perfect cache reuse and no
//! write-allocate: read the old field and write the new one (2 elements) for the 7- and
//! 27-point stencils; Himeno also reads its 12 coefficient arrays (14 elements; effcal
//! swaps p and wrk2 where the original copies wrk2 back, which it would count as 2 more).

pub mod decomp;
pub mod gpu;
pub mod halo;

use super::wire::Pod;
use super::{Ctx, with_element};
use crate::error::{Error, Result};
use crate::calibration::{Accuracy, Efficiency, Peaks, Record};
use crate::timing::{self, Slowest, Stats};
use crate::world::World;
use effcal_kernels::precision::Real;
use effcal_kernels::precision::{Element, Overflow, f16};
use effcal_kernels::stencil::{self, Block, HimenoCoefficients, Kind, Region, Stores};
use effcal_kernels::{Precision, cost, rng};
use halo::{Halo, Neighbours};
use mpi::topology::{CartesianCommunicator, Communicator};
use serde_json::json;
use std::time::Instant;

/// Himeno's grid sizes (points i × j × k, k fastest, boundary planes included): XS, S, M, L as
/// the original's `set_param` (mimax, mjmax, mkmax).
pub const HIMENO_CLASSES: [(&str, [usize; 3]); 4] = [("XS", [32, 32, 64]), ("S", [64, 64, 128]), ("M", [128, 128, 256]), ("L", [256, 256, 512])];

/// One stencil measurement.
#[derive(Clone, Copy, Debug)]
pub struct StencilSettings {
    pub kind: Kind,
    pub precision: Precision,
    /// Points in i, j, k (k contiguous), boundary planes included.
    pub global: [usize; 3],
    pub iters: usize,
    /// Ranks per dimension; None: balanced.
    pub dims: Option<[usize; 3]>,
    pub overlap: bool,
    pub stores: StoresSetting,
    pub arithmetic: Arithmetic,
}

/// What a stencil computes in: `wide`, the storage widened (f32; f64 for f64), or `f16`,
/// every operation rounded to f16 (f16 fields, 7- and 27-point; see
/// [`effcal_kernels::stencil::sweep7_f16`]): native on AVX512_FP16, emulated elsewhere (its
/// rate then the emulation's; its error is f16 arithmetic's either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    Wide,
    F16,
}

impl Arithmetic {
    /// The values of `--arithmetic` and the plan's `stencil.arithmetic`.
    pub const ALLOWED: &str = "wide, f16, both";

    /// The arithmetics a setting asks for `precision`: f16 only applies to f16 fields.
    /// None for a value not in [`Self::ALLOWED`].
    pub fn for_setting(setting: &str, precision: Precision) -> Option<Vec<Arithmetic>> {
        let f16 = precision == Precision::F16;
        match setting {
            "wide" => Some(vec![Self::Wide]),
            "f16" if f16 => Some(vec![Self::F16]),
            "both" if f16 => Some(vec![Self::Wide, Self::F16]),
            "f16" | "both" => Some(vec![Self::Wide]),
            _ => None,
        }
    }
}

/// How the sweeps write the new field: `auto` times both (see [`probe_stores`]) where the
/// fields exceed the last-level cache on x86-64 and takes the faster, and stores normally
/// otherwise. Which wins is the CPU's: streaming (non-temporal) stores save the
/// write-allocate read, but measured on Zen 4 they are slower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoresSetting {
    Auto,
    Normal,
    Streaming,
}

impl StoresSetting {
    pub const ALLOWED: &str = "auto, normal, streaming";

    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Normal => "normal",
            Self::Streaming => "streaming",
        }
    }

    /// True when the stores are chosen by a probe: `auto`, for fields known to be larger
    /// than the last-level cache, on x86-64 (in the cache, where the cache's size is
    /// unknown, and on CPUs where streaming is an ordinary copy, normal stores are used).
    fn probes(self, exceeds_cache: bool) -> bool {
        self == Self::Auto && cfg!(target_arch = "x86_64") && exceeds_cache
    }
}

impl std::str::FromStr for StoresSetting {
    type Err = ();
    /// Refused with `()`: callers name their field and [`Self::ALLOWED`].
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        [Self::Auto, Self::Normal, Self::Streaming].into_iter().find(|x| x.name() == s).ok_or(())
    }
}

/// Refuses settings that cannot run, the same way on every rank, before any MPI work.
pub fn check(s: &StencilSettings, ranks: usize) -> Result<[usize; 3]> {
    if s.global.iter().any(|&g| g < 3) {
        return Err(Error::invalid("--size", format!("{:?}", s.global), "at least 3 points per dimension (two fixed boundary planes and one updated)"));
    }
    if s.iters == 0 {
        return Err(Error::invalid("--iters", 0, "at least 1 sweep"));
    }
    if s.arithmetic == Arithmetic::F16 && (s.precision != Precision::F16 || s.kind == Kind::Himeno) {
        return Err(Error::invalid(
            "--arithmetic",
            format!("f16 for {} {}", s.kind.name(), s.precision),
            "f16 arithmetic for f16 fields of the 7pt and 27pt stencils (Himeno computes in f32, f64 for f64); wide for the rest",
        ));
    }
    let dims = s.dims.unwrap_or_else(|| decomp::balanced_dims(ranks, s.global));
    if dims.iter().product::<usize>() != ranks {
        return Err(Error::invalid("--dims", format!("{} {} {}", dims[0], dims[1], dims[2]), format!("three counts whose product is the number of ranks, {ranks}")));
    }
    if let Some(d) = (0..3).find(|&d| dims[d] > s.global[d]) {
        return Err(Error::invalid(
            "--dims",
            format!("{} {} {}", dims[0], dims[1], dims[2]),
            format!("at most as many ranks as points in each dimension (dimension {d} has {} points); uneven blocks are fine", s.global[d]),
        ));
    }
    // Each halo plane travels as one MPI message.
    let block: [usize; 3] = std::array::from_fn(|d| s.global[d].div_ceil(dims[d]));
    let plane = halo::largest_message(block, s.precision.bytes());
    if plane > crate::bench::raw::MAX_MESSAGE {
        return Err(Error::invalid("--size", format!("{:?}", s.global), format!("blocks whose halo planes fit one MPI message (2 GiB; this one's are {plane} bytes): more ranks, or a smaller grid")));
    }
    Ok(dims)
}

/// The `kernel` of a stencil's records.
pub fn record_kernel(kind: Kind) -> &'static str {
    match kind {
        Kind::Seven => "stencil-7pt",
        Kind::Himeno => "himeno",
        Kind::TwentySeven => "stencil-27pt",
    }
}


/// This rank's block in the global grid.
struct Place {
    cart: CartesianCommunicator,
    neighbours: Neighbours,
    /// Global index of local point 1 in each dimension, and the local extents.
    origin: [usize; 3],
    n: [usize; 3],
    /// The points this rank updates (global interior), block coordinates.
    region: Region,
}

fn place(ctx: &Ctx, global: [usize; 3], dims: [usize; 3]) -> Place {
    let cart = ctx
        .world
        .comm()
        .create_cartesian_communicator(&dims.map(|d| d as i32), &[false; 3], false)
        .expect("every rank is in the grid (dims checked)");
    let coords = cart.get_layout().coords;
    let neighbours: Neighbours = std::array::from_fn(|d| {
        let (minus, plus) = cart.shift(d as i32, 1);
        [minus, plus]
    });
    let spans: [(usize, usize); 3] = std::array::from_fn(|d| decomp::span(global[d], dims[d], coords[d] as usize));
    let range = |d: usize| {
        let (s, n) = spans[d];
        let lo = s.max(1);
        let hi = (s + n).min(global[d] - 1);
        if lo >= hi { 1..1 } else { lo - s + 1..hi - s + 1 }
    };
    Place { cart, neighbours, origin: spans.map(|x| x.0), n: spans.map(|x| x.1), region: Region { i: range(0), j: range(1), k: range(2) } }
}

/// The initial field of the 7- and 27-point problems: uniform in [−1, 1) from the global
/// index (so every decomposition starts from the same bits), set wherever a block point lies
/// in the grid; planes filled in parallel (first touch by the threads that sweep them).
fn initial_field<T: Element + Send>(pl: &Place, global: [usize; 3], seed: u64) -> Block<T> {
    use rayon::prelude::*;
    let mut b = Block::<T>::zeros(pl.n);
    let (plane, row) = (b.plane(), b.row());
    let (n, origin) = (pl.n, pl.origin);
    b.data.par_chunks_mut(plane).enumerate().for_each(|(i, p)| {
        let gi = origin[0] as i64 + i as i64 - 1;
        if gi < 0 || gi >= global[0] as i64 {
            return;
        }
        let mut vals = vec![0f32; n[2] + 2];
        for j in 0..n[1] + 2 {
            let gj = origin[1] as i64 + j as i64 - 1;
            if gj < 0 || gj >= global[1] as i64 {
                continue;
            }
            for (k, v) in vals.iter_mut().enumerate() {
                let gk = origin[2] as i64 + k as i64 - 1;
                *v = if gk < 0 || gk >= global[2] as i64 {
                    0.0
                } else {
                    rng::uniform_f32(seed, ((gi as u64 * global[1] as u64) + gj as u64) * global[2] as u64 + gk as u64)
                };
            }
            T::from_f32_slice(&vals, &mut p[j * row..(j + 1) * row], Overflow::Saturate);
        }
    });
    b
}

/// The gold check of the averaging stencils (7- and 27-point: weights summing to one): a
/// field linear in the global i, j and k, u = 1 + (i + 2j + 3k) / (6·max extent), must come
/// back from one exchange-and-sweep (on this record's decomposition and halo variant)
/// unchanged to rounding. Returns the largest change of a point, relative to the field's
/// largest magnitude (2), max over ranks, and the bound rounding allows: 3 unit roundoffs of
/// the storage format (the inputs, the output) and 32 of the arithmetic (the sums).
/// None for Himeno, whose weights are not an average.
fn gold_check<T: Element + Send + Pod>(ctx: &Ctx, s: &StencilSettings, pl: &Place, halo: &mut Halo, stores: Stores) -> Option<(f64, f64)>
where
    T::Acc: Real,
{
    if s.kind == Kind::Himeno {
        return None;
    }
    let g = s.global;
    let scale = 6.0 * *g.iter().max().expect("three extents") as f64;
    let mut u = Block::<T>::zeros(pl.n);
    for i in 0..pl.n[0] + 2 {
        for j in 0..pl.n[1] + 2 {
            for k in 0..pl.n[2] + 2 {
                let gi = [i, j, k].map(|x| x as i64 - 1);
                let global: [i64; 3] = std::array::from_fn(|d| pl.origin[d] as i64 + gi[d]);
                if (0..3).all(|d| global[d] >= 0 && global[d] < g[d] as i64) {
                    let at = u.at(i, j, k);
                    u.data[at] = T::from_f64(1.0 + (global[0] + 2 * global[1] + 3 * global[2]) as f64 / scale, Overflow::Saturate);
                }
            }
        }
    }
    let before = owned(&u);
    let mut st = State::<T> { v: u.clone(), u, coefficients: None, stores, arithmetic: s.arithmetic, gosa: 0.0, halo_s: 0.0 };
    st.step(s.kind, halo, &pl.region, s.overlap);
    let after = owned(&st.u);
    let change = before.iter().zip(&after).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / 2.0;
    let unit = |p: Precision| p.info().epsilon / 2.0;
    let arithmetic = if s.arithmetic == Arithmetic::F16 { Precision::F16 } else { s.precision.compute() };
    let bound = 3.0 * unit(s.precision) + 32.0 * unit(arithmetic);
    Some((ctx.world.max(change), bound))
}

/// Chooses the stores of `auto` for this CPU and problem: exchange-and-sweeps of the
/// record's problem, alternating normal and streaming stores, two of each (time = max over
/// ranks, the least of each kind). Returns the faster and the two times (seconds, normal
/// then streaming); every rank gets the same.
fn probe_stores<T: Element + Send + Pod>(ctx: &Ctx, s: &StencilSettings, pl: &Place, halo: &mut Halo) -> (Stores, [f64; 2])
where
    T::Acc: Real,
{
    let mut st = State::<T>::new(s.kind, pl, s.global, ctx.seed, Stores::Normal, s.arithmetic);
    let mut best = [f64::INFINITY; 2];
    for _ in 0..2 {
        for (m, stores) in [Stores::Normal, Stores::Streaming].into_iter().enumerate() {
            st.stores = stores;
            let t = timing::time_reps(&ctx.world, 0, 1, || st.step(s.kind, halo, &pl.region, s.overlap), || {});
            best[m] = best[m].min(t[0]);
        }
    }
    (if best[1] < best[0] { Stores::Streaming } else { Stores::Normal }, best)
}

/// The 7-point step of the heat equation (α = 1/8) and the 27-point averaging weights.
fn weights<A: Real>(kind: Kind) -> (A, A) {
    match kind {
        Kind::Seven => (A::from_f64(0.25), A::from_f64(0.125)),
        _ => (A::from_f64(0.59375), A::from_f64(1.0 / 64.0)),
    }
}

/// The regions of an overlapped sweep: three interior slabs (computed while halo phases
/// 0, 1, 2 travel) and the shell around them (computed after). Only the faces with a
/// neighbour read ghosts, so only those are peeled off the interior; and only phases that
/// move something get a share of the interior (a phase without neighbours gets an empty
/// slab), so on a 2×1×1 grid the whole interior is computed while the one phase travels.
fn split(r: &Region, neighbours: &Neighbours) -> ([Region; 3], Vec<Region>) {
    let peel = |x: &std::ops::Range<usize>, d: usize| {
        let lo = (x.start + usize::from(neighbours[d][0].is_some())).min(x.end);
        let hi = (x.end - usize::from(neighbours[d][1].is_some())).max(lo);
        lo..hi
    };
    let inner = Region { i: peel(&r.i, 0), j: peel(&r.j, 1), k: peel(&r.k, 2) };
    let (a, b) = (inner.i.start, inner.i.end);
    let active: Vec<bool> = neighbours.iter().map(|d| d.iter().any(Option::is_some)).collect();
    let shares = active.iter().filter(|&&x| x).count().max(1);
    let part = (b - a).div_ceil(shares);
    let slab = |s: usize| {
        // The interior's part of the s-th active phase (all of it to phase 0 when none is).
        let nth = if active.iter().any(|&x| x) { active[..s].iter().filter(|&&x| x).count() } else { 0 };
        let lo = (a + nth * part).min(b);
        let hi = if active[s] || (shares == 1 && s == 0 && !active.iter().any(|&x| x)) { (lo + part).min(b) } else { lo };
        Region { i: lo..hi, j: inner.j.clone(), k: inner.k.clone() }
    };
    let mut shell = vec![
        Region { i: r.i.start..inner.i.start, j: r.j.clone(), k: r.k.clone() },
        Region { i: inner.i.end..r.i.end, j: r.j.clone(), k: r.k.clone() },
        Region { i: inner.i.clone(), j: r.j.start..inner.j.start, k: r.k.clone() },
        Region { i: inner.i.clone(), j: inner.j.end..r.j.end, k: r.k.clone() },
        Region { i: inner.i.clone(), j: inner.j.clone(), k: r.k.start..inner.k.start },
        Region { i: inner.i.clone(), j: inner.j.clone(), k: inner.k.end..r.k.end },
    ];
    shell.retain(|x| !x.is_empty());
    ([slab(0), slab(1), slab(2)], shell)
}

/// Pieces each overlapped interior slab is swept in, with the halo progressing between.
const PROGRESS_PIECES: usize = 4;

/// A problem's state on this rank.
struct State<T: Element> {
    u: Block<T>,
    v: Block<T>,
    coefficients: Option<HimenoCoefficients<T>>,
    stores: Stores,
    arithmetic: Arithmetic,
    /// gosa of the last Himeno sweep (this rank's part).
    gosa: f64,
    /// Seconds this rank spent on the halo (packing, posting, progressing, waiting,
    /// unpacking): the halo time a sweep does not hide.
    halo_s: f64,
}

impl<T: Element + Send + Pod> State<T>
where
    T::Acc: Real,
{
    fn new(kind: Kind, pl: &Place, global: [usize; 3], seed: u64, stores: Stores, arithmetic: Arithmetic) -> Self {
        let (u, coefficients) = match kind {
            Kind::Himeno => {
                let (p, co) = stencil::himeno_init::<T>(pl.n, pl.origin, global);
                (p, Some(co))
            }
            _ => (initial_field::<T>(pl, global, seed), None),
        };
        let v = u.clone();
        Self { u, v, coefficients, stores, arithmetic, gosa: 0.0, halo_s: 0.0 }
    }

    fn sweep_region(&mut self, kind: Kind, r: &Region) -> f64 {
        if self.arithmetic == Arithmetic::F16 {
            let (u, v) = as_f16(&self.u, &mut self.v).expect("checked: f16 arithmetic for f16 fields only");
            let (c0, c1) = weights::<f32>(kind);
            let (c0, c1) = (f16::from_f32(c0), f16::from_f32(c1));
            match kind {
                Kind::Seven => stencil::sweep7_f16(u, v, r, c0, c1, self.stores),
                _ => stencil::sweep27_f16(u, v, r, c0, c1, self.stores),
            }
            return 0.0;
        }
        let (c0, c1) = weights::<T::Acc>(kind);
        match kind {
            Kind::Seven => {
                stencil::sweep7(&self.u, &mut self.v, r, c0, c1, self.stores);
                0.0
            }
            Kind::TwentySeven => {
                stencil::sweep27(&self.u, &mut self.v, r, c0, c1, self.stores);
                0.0
            }
            Kind::Himeno => stencil::himeno(&self.u, &mut self.v, self.coefficients.as_ref().expect("himeno has coefficients"), r, self.stores),
        }
    }

    /// One exchange-and-sweep; the new field ends in `u`.
    fn step(&mut self, kind: Kind, halo: &mut Halo, region: &Region, overlap: bool) {
        let mut gosa = 0.0;
        if overlap {
            let (slabs, shell) = split(region, &halo.neighbours());
            for (d, slab) in slabs.iter().enumerate() {
                let t = Instant::now();
                halo.start(&self.u, d);
                self.halo_s += t.elapsed().as_secs_f64();
                // The slab in pieces, letting the phase progress between them (a rank with
                // one thread has no one else to drive MPI).
                let per = slab.i.len().div_ceil(PROGRESS_PIECES).max(1);
                for i0 in slab.i.clone().step_by(per) {
                    let piece = Region { i: i0..(i0 + per).min(slab.i.end), j: slab.j.clone(), k: slab.k.clone() };
                    gosa += self.sweep_region(kind, &piece);
                    // Counted as halo time: on shared memory MPI copies the planes here.
                    let t = Instant::now();
                    halo.progress();
                    self.halo_s += t.elapsed().as_secs_f64();
                }
                let t = Instant::now();
                halo.finish(&mut self.u);
                self.halo_s += t.elapsed().as_secs_f64();
            }
            for r in &shell {
                gosa += self.sweep_region(kind, r);
            }
        } else {
            let t = Instant::now();
            halo.exchange(&mut self.u);
            self.halo_s += t.elapsed().as_secs_f64();
            gosa = self.sweep_region(kind, region);
        }
        self.gosa = gosa;
        std::mem::swap(&mut self.u, &mut self.v);
    }
}

/// The two fields as f16 blocks, where `T` is f16.
fn as_f16<'a, T: 'static>(u: &'a Block<T>, v: &'a mut Block<T>) -> Option<(&'a Block<f16>, &'a mut Block<f16>)> {
    let u = (u as &dyn std::any::Any).downcast_ref::<Block<f16>>()?;
    let v = (v as &mut dyn std::any::Any).downcast_mut::<Block<f16>>()?;
    Some((u, v))
}

pub fn measure(ctx: &Ctx, s: &StencilSettings, peaks: Option<&Peaks>) -> Result<Record> {
    with_element!(s.precision, run(ctx, s, peaks))
}

/// Values of this rank's points (block coordinates 1..=n), widened to f64, in order.
fn owned<T: Element>(b: &Block<T>) -> Vec<f64> {
    let mut out = Vec::with_capacity(b.n.iter().product());
    for i in 1..=b.n[0] {
        for j in 1..=b.n[1] {
            let at = b.at(i, j, 1);
            out.extend(b.data[at..at + b.n[2]].iter().map(|x| x.to_f64()));
        }
    }
    out
}

/// The same problem in f64, untimed: the error this storage precision costs, max and rms
/// relative to the f64 field (all ranks), for this rank's points `mine` after the sweeps.
fn error_vs_f64(ctx: &Ctx, s: &StencilSettings, pl: &Place, halo: &mut Halo, mine: &[f64]) -> (f64, f64) {
    if s.precision == Precision::F64 {
        return (0.0, 0.0);
    }
    let w = &ctx.world;
    let mut reference = State::<f64>::new(s.kind, pl, s.global, ctx.seed, Stores::Normal, Arithmetic::Wide);
    for _ in 0..s.iters {
        reference.step(s.kind, halo, &pl.region, false);
    }
    let r = owned(&reference.u);
    let (mut dmax, mut rmax, mut d2, mut r2) = (0f64, 0f64, 0f64, 0f64);
    for (x, y) in mine.iter().zip(&r) {
        let d = x - y;
        dmax = dmax.max(d.abs());
        rmax = rmax.max(y.abs());
        d2 += d * d;
        r2 += y * y;
    }
    let (dmax, rmax, d2, r2) = (w.max(dmax), w.max(rmax), w.sum(d2), w.sum(r2));
    (dmax / rmax, (d2 / r2).sqrt())
}

/// The exact checksum of a field (a wrapping sum of the bit patterns of every rank's points,
/// widened to f64): equal fields give equal checksums on any decomposition.
fn checksum(ctx: &Ctx, mine: &[f64]) -> u64 {
    let local_sum: u64 = mine.iter().fold(0u64, |a, x| a.wrapping_add(x.to_bits()));
    let sums = ctx.world.all_gather_bytes(&local_sum.to_le_bytes());
    sums.iter().fold(0u64, |a, b| a.wrapping_add(u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))))
}

fn run<T: Element + Send + Pod>(ctx: &Ctx, s: &StencilSettings, peaks: Option<&Peaks>) -> Result<Record>
where
    T::Acc: Real,
{
    let dims = check(s, ctx.world.size())?;
    let pl = place(ctx, s.global, dims);
    let mut halo = Halo::new(&pl.cart, pl.neighbours);
    // The arrays a sweep moves, per node: where they fit in the last-level cache, the
    // bandwidth is the cache's, not memory's (and %triad can pass 100 %).
    let points: usize = s.global.iter().map(|g| g - 2).product();
    let working_set = (points * cost::stencil::bytes_per_point(s.kind, s.precision)) as f64 / ctx.nodes() as f64;
    let in_cache = ctx.node.llc_bytes > 0 && working_set <= ctx.node.llc_bytes as f64;
    let (stores, probe) = match s.stores {
        setting if setting.probes(ctx.node.llc_bytes > 0 && !in_cache) => {
            let (stores, times) = probe_stores::<T>(ctx, s, &pl, &mut halo);
            (stores, Some(times))
        }
        StoresSetting::Streaming => (Stores::Streaming, None),
        _ => (Stores::Normal, None),
    };
    let gold = gold_check::<T>(ctx, s, &pl, &mut halo, stores);
    // Made afresh (untimed) before every repetition; the last one's is kept.
    let mut last: Option<State<T>> = None;
    let label = format!("{} {} {}x{}x{}", s.kind.name(), s.precision, s.global[0], s.global[1], s.global[2]);
    ctx.progress.set_message(label);
    ctx.progress.set_length((ctx.warmup + ctx.reps) as u64);
    ctx.progress.reset();
    let reps = timing::repetitions(&ctx.world, ctx.warmup, ctx.reps, |_, start| {
        // Drop the last repetition's fields before allocating the next ones.
        last = None;
        let mut st = State::new(s.kind, &pl, s.global, ctx.seed, stores, s.arithmetic);
        let t = start();
        for _ in 0..s.iters {
            st.step(s.kind, &mut halo, &pl.region, s.overlap);
        }
        let rep = Rep { time: t.elapsed().as_secs_f64(), halo: st.halo_s };
        ctx.progress.inc(1);
        last = Some(st);
        Ok::<Rep, std::convert::Infallible>(rep)
    });
    let reps = reps.unwrap_or_else(|never| match never {});
    ctx.progress.finish_and_clear();
    // The last repetition's state: its field and gosa are reported.
    let st = last.expect("at least one repetition");
    let w = &ctx.world;

    // The answer: every point finite, gosa finite; the checksum is exact (a wrapping sum of
    // bit patterns), so equal fields on any decomposition give equal checksums.
    let mine = owned(&st.u);
    let finite = w.all(mine.iter().all(|x| x.is_finite()) && st.gosa.is_finite());
    let checksum = checksum(ctx, &mine);
    let gosa = w.sum(st.gosa);

    let (max_err, rms_err) = error_vs_f64(ctx, s, &pl, &mut halo, &mine);

    let time_s = Stats::of(&reps.iter().map(|r| r.time).collect::<Vec<_>>());
    let rates = Rates::of(s, &time_s);
    // The median repetition's halo time, against the median repetition's time.
    let halo_s = Stats::of(&reps.iter().map(|r| r.halo).collect::<Vec<_>>()).median;
    let gold_failed = gold.filter(|(change, bound)| change > bound);
    let valid = finite && gold_failed.is_none();
    let failure = if !finite {
        Some("the field holds non-finite values".to_string())
    } else {
        gold_failed.map(|(change, bound)| {
            format!("gold check: a field linear in i, j, k changed by {change:.3e} (relative to its magnitude) in one sweep; rounding allows {bound:.3e}")
        })
    };
    let params = [
        ("size", json!(s.global)),
        ("dims", json!(dims)),
        ("iters", json!(s.iters)),
        ("overlap", json!(s.overlap)),
        ("stores", json!(stores.name())),
        ("stores_setting", json!(s.stores.name())),
        ("ranks", json!(w.size())),
        ("threads_per_rank", json!(ctx.threads)),
        ("bytes_per_point", json!(cost::stencil::bytes_per_point(s.kind, s.precision))),
        ("arithmetic", json!(if s.arithmetic == Arithmetic::F16 { "f16" } else { s.precision.compute().name() })),
        // How f16 arithmetic ran: AVX512_FP16, or emulated (f32 operations rounded to f16).
        ("arithmetic_impl", if s.arithmetic != Arithmetic::F16 { json!(null) } else if stencil::f16_arith_native() { json!("avx512fp16") } else { json!("emulated") }),
    ];
    let results = [
        ("stores_probe_s", probe.map_or(json!(null), |[normal, streaming]| json!({"normal": normal, "streaming": streaming}))),
        ("mpoints_per_s", json!(rates.mpts)),
        ("halo_fraction", json!(halo_s / time_s.median)),
        ("halo_s", json!(halo_s)),
        ("rel_error_max_vs_f64", json!(max_err)),
        ("rel_error_rms_vs_f64", json!(rms_err)),
        ("gosa", if s.kind == Kind::Himeno { json!(gosa) } else { json!(null) }),
        ("checksum_sum", json!(w.sum(mine.iter().sum::<f64>()))),
        ("working_set_bytes_per_node", json!(working_set)),
        ("llc_bytes", json!(ctx.node.llc_bytes)),
        ("in_cache", json!(in_cache)),
        ("gold_change", gold.map_or(json!(null), |g| json!(g.0))),
        ("gold_bound", gold.map_or(json!(null), |g| json!(g.1))),
    ];
    let keep = |v: Vec<(&str, serde_json::Value)>| v.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_string(), v)).collect();
    Ok(rates.record(s, peaks, time_s, (keep(params.to_vec()), keep(results.to_vec())), (valid, failure), checksum))
}

/// One timed repetition: its time and the part of it spent on halo exchanges, each the
/// slowest rank's.
struct Rep {
    time: f64,
    halo: f64,
}

impl Slowest for Rep {
    fn slowest(self, w: &World) -> Self {
        Rep { time: w.max(self.time), halo: w.max(self.halo) }
    }
}

/// A record's params or results.
type Fields = std::collections::BTreeMap<String, serde_json::Value>;

/// A stencil measurement's rates, by the conventions of [`cost::stencil`]: GFLOP/s, GB/s
/// (STREAM) and millions of updated points per second, over all the ranks.
struct Rates {
    gflops: Stats,
    gbs: Stats,
    mpts: Stats,
}

impl Rates {
    fn of(s: &StencilSettings, time_s: &Stats) -> Self {
        let points: usize = s.global.iter().map(|g| g - 2).product();
        let work = points as f64 * s.iters as f64;
        Rates {
            gflops: Stats::rate(work * cost::stencil::flops_per_point(s.kind) as f64 / 1e9, time_s),
            gbs: Stats::rate(work * cost::stencil::bytes_per_point(s.kind, s.precision) as f64 / 1e9, time_s),
            mpts: Stats::rate(work / 1e6, time_s),
        }
    }

    /// The record of a stencil run (CPU or GPU): the efficiency is the bandwidth's, against
    /// the theoretical bandwidth and the run's triad.
    /// `fields`: the record's params and results; `verdict`: valid, and why not.
    fn record(self, s: &StencilSettings, peaks: Option<&Peaks>, time_s: Stats, fields: (Fields, Fields), (valid, failure): (bool, Option<String>), checksum: u64) -> Record {
        let (params, results) = fields;
        let triad = peaks.and_then(|p| p.stream_triad_gbs);
        Record {
            kernel: record_kernel(s.kind).into(),
            precision: s.precision.name().into(),
            params,
            flop_convention: cost::stencil::flop_convention(s.kind),
            time_s,
            gflops: self.gflops,
            efficiency: Efficiency { vs_theoretical: peaks.and_then(|p| p.memory_bandwidth_gbs).map(|b| self.gbs.median / b), vs_empirical: triad.map(|t| self.gbs.median / t) },
            accuracy: Accuracy::default(),
            valid,
            failure,
            results,
            bandwidth_gbs: Some(self.gbs),
            checksum: Some(format!("{checksum:016x}")),
        }
    }
}
