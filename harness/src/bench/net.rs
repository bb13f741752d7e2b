//! The network between ranks, as the OSU micro-benchmarks and IMB measure it: ping-pong
//! latency and bandwidth between rank 0 and every other rank over message sizes from 0 B to
//! 4 MiB, and MPI_Allreduce (f64 sum) and MPI_Bcast times over the same sizes.
//!
//! Conventions (IMB PingPong, OSU latency): a repetition times `iters` round trips after a
//! tenth as many untimed ones (through `timing`, as every measurement); the one-way time is half the mean round trip, reported in µs;
//! the bandwidth is the message's bytes over the one-way time, in GB/s (1e9 bytes/s). Each
//! pair is measured alone (every other rank waits at a barrier). A collective's time is the
//! mean per operation over `iters` operations, the slowest rank's. Each figure is min /
//! median / max over the repetitions.

use super::Ctx;
use crate::calibration::{CollectivePoint, Network, PingPong, PingPongPoint};
use crate::timing::{self, Stats};
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::cell::RefCell;

/// Message sizes: 0, then every power of two from 1 B to `max` bytes.
pub fn sizes(max: usize) -> Vec<usize> {
    std::iter::once(0).chain(std::iter::successors(Some(1usize), |s| s.checked_mul(2)).take_while(|&s| s <= max)).collect()
}

/// Round trips (or operations) per repetition for a message of `bytes`: as OSU, many for
/// small messages and fewer for large ones (`scale` for small ones, a tenth beyond 64 KiB,
/// at least 5).
fn iterations(bytes: usize, scale: usize) -> usize {
    if bytes <= 65536 { scale } else { (scale / 10).max(5) }
}

/// What `effcal net` measures.
#[derive(Clone, Copy, Debug)]
pub struct NetSettings {
    /// The largest message, bytes.
    pub max_bytes: usize,
    /// Round trips per repetition for messages up to 64 KiB (a tenth beyond).
    pub iters: usize,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings { max_bytes: 4 << 20, iters: 200 }
    }
}

pub fn measure(ctx: &Ctx, s: &NetSettings) -> Network {
    let w = &ctx.world;
    let sizes = sizes(s.max_bytes);
    let mut buf = vec![0u8; s.max_bytes.max(8)];
    let mut pingpong = Vec::new();
    for peer in 1..w.size() {
        let mut points = Vec::new();
        for &bytes in &sizes {
            let trip = per_op(ctx, iterations(bytes, s.iters), || round_trip(ctx, peer, &mut buf[..bytes]));
            let one_way = scaled(trip, 0.5);
            points.push(PingPongPoint { bytes, latency_us: scaled(one_way, 1e6), bandwidth_gbs: Stats::rate(bytes as f64 / 1e9, &one_way) });
        }
        let hosts = [ctx.hosts[0].clone(), ctx.hosts[peer].clone()];
        pingpong.push(PingPong { ranks: [0, peer], same_host: hosts[0] == hosts[1], hosts, points });
    }
    let comm = w.comm();
    let (send, mut recv) = (vec![1f64; s.max_bytes / 8], vec![0f64; s.max_bytes / 8]);
    // Allreduce sums f64: whole f64s, from 8 bytes.
    let f64_sizes: Vec<usize> = sizes.iter().copied().filter(|&b| b >= 8).collect();
    let allreduce = time_collective(ctx, &f64_sizes, s.iters, |bytes| comm.all_reduce_into(&send[..bytes / 8], &mut recv[..bytes / 8], SystemOperation::sum()));
    let bcast = time_collective(ctx, &sizes, s.iters, |bytes| comm.process_at_rank(0).broadcast_into(&mut buf[..bytes]));
    Network { convention: CONVENTION.into(), iters_small: s.iters, pingpong, allreduce, bcast }
}

/// Times `op(bytes)` for each size (see [`per_op`]): µs per operation, slowest rank.
fn time_collective(ctx: &Ctx, sizes: &[usize], scale: usize, mut op: impl FnMut(usize)) -> Vec<CollectivePoint> {
    sizes.iter().map(|&bytes| CollectivePoint { bytes, time_us: scaled(per_op(ctx, iterations(bytes, scale), || op(bytes)), 1e6) }).collect()
}

/// Seconds per operation of `op` (a round trip, a collective): each repetition runs it
/// `iters` / 10 + 1 times untimed, then `iters` times timed ([`timing::time_reps_after`]:
/// barrier, slowest rank, warm-up repetitions discarded); min / median / max over the
/// repetitions.
fn per_op(ctx: &Ctx, iters: usize, op: impl FnMut()) -> Stats {
    let op = RefCell::new(op);
    let run = |n: usize| {
        for _ in 0..n {
            (op.borrow_mut())();
        }
    };
    let times = timing::time_reps_after(&ctx.world, ctx.warmup, ctx.reps, || run(iters / 10 + 1), || run(iters), || {});
    Stats::of(&times.iter().map(|t| t / iters as f64).collect::<Vec<_>>())
}

/// Every figure of `s` times `f`.
fn scaled(s: Stats, f: f64) -> Stats {
    Stats { min: s.min * f, median: s.median * f, max: s.max * f }
}

/// The conventions, as the JSON states them.
pub const CONVENTION: &str = "IMB PingPong / OSU: one-way time = half the mean round trip (µs), bandwidth = bytes / one-way time (GB/s, 1e9 B/s), rank 0 with each other rank alone; collectives (allreduce of f64 sums, bcast from rank 0): mean time per operation, slowest rank (µs); min/median/max over repetitions";

/// One round trip of `buf` between rank 0 and `peer` (nothing on the other ranks).
fn round_trip(ctx: &Ctx, peer: usize, buf: &mut [u8]) {
    let comm = ctx.world.comm();
    match ctx.world.rank() {
        0 => {
            let other = comm.process_at_rank(peer as i32);
            other.send(&buf[..]);
            other.receive_into(buf);
        }
        me if me == peer => {
            let other = comm.process_at_rank(0);
            other.receive_into(&mut buf[..]);
            other.send(&buf[..]);
        }
        _ => {}
    }
}

/// The one-way time (seconds) of a message of `bytes` between rank 0 and `peer`, from the
/// ping-pong table: the measured median at the nearest sizes, interpolated linearly in
/// bytes between them (beyond the largest, extrapolated at its bandwidth). None without a
/// table for that pair.
pub fn one_way_s(net: &Network, peer: usize, bytes: usize) -> Option<f64> {
    let pair = net.pingpong.iter().find(|p| p.ranks[1] == peer)?;
    let pts = &pair.points;
    let t = |p: &PingPongPoint| p.latency_us.median * 1e-6;
    let above = pts.iter().position(|p| p.bytes >= bytes);
    Some(match above {
        Some(0) => t(&pts[0]),
        Some(i) => {
            let (a, b) = (&pts[i - 1], &pts[i]);
            let f = (bytes - a.bytes) as f64 / (b.bytes - a.bytes) as f64;
            t(a) + f * (t(b) - t(a))
        }
        None => {
            let last = pts.last()?;
            t(last) * bytes as f64 / last.bytes.max(1) as f64
        }
    })
}

/// The halo model of a stencil record: the seconds its exchanges take by the ping-pong
/// table, `iters` × Σ over phases of the one-way time of the phase's message (both
/// directions of a phase travel at once; the slowest pair's time), for the largest block
/// of `global` over `dims`. None without a table, or for one rank.
pub fn halo_model_s(net: &Network, global: [usize; 3], dims: [usize; 3], elem: usize, iters: usize) -> Option<f64> {
    let block: [usize; 3] = std::array::from_fn(|d| global[d].div_ceil(dims[d].max(1)));
    let messages = super::stencil::halo::phase_messages(block, dims, elem);
    if messages.is_empty() || net.pingpong.is_empty() {
        return None;
    }
    let slowest = |bytes: usize| net.pingpong.iter().filter_map(|p| one_way_s(net, p.ranks[1], bytes)).fold(0.0, f64::max);
    Some(iters as f64 * messages.into_iter().map(slowest).sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_the_halo_model_read_the_table() {
        assert_eq!(sizes(8), [0, 1, 2, 4, 8]);
        assert_eq!(sizes(4 << 20).len(), 24);
        let point = |bytes: usize, us: f64| PingPongPoint { bytes, latency_us: Stats { min: us, median: us, max: us }, bandwidth_gbs: Stats { min: 0.0, median: 0.0, max: 0.0 } };
        let pair = PingPong { ranks: [0, 1], hosts: ["a".into(), "b".into()], same_host: false, points: vec![point(0, 10.0), point(1024, 20.0), point(2048, 40.0)] };
        let net = Network { convention: String::new(), iters_small: 1, pingpong: vec![pair], allreduce: Vec::new(), bcast: Vec::new() };
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(one_way_s(&net, 1, 0), 10e-6));
        assert!(close(one_way_s(&net, 1, 512), 15e-6));
        assert!(close(one_way_s(&net, 1, 1536), 30e-6));
        // Beyond the table: at the largest message's bandwidth.
        assert!(close(one_way_s(&net, 1, 4096), 80e-6));
        assert_eq!(one_way_s(&net, 2, 8), None);
    }
}
