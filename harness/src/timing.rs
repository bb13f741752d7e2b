//! The one timing routine ([`repetitions`], with [`time_reps`] for a single timed region):
//! warm-up repetitions discarded, a barrier before each timed region, time = maximum over
//! ranks, statistics over repetitions.

use crate::world::World;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Minimum, median and maximum of a series.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    /// Statistics of a non-empty series (NaN-free).
    pub fn of(xs: &[f64]) -> Self {
        assert!(!xs.is_empty(), "statistics of an empty series");
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
        Self { min: v[0], median, max: v[n - 1] }
    }

    /// `work / t` for each of min, median, max of times t (so min time gives max rate).
    pub fn rate(work: f64, times: &Stats) -> Self {
        Self { min: work / times.max, median: work / times.median, max: work / times.min }
    }
}

/// Runs `f` `warmup + reps` times on every rank; returns the `reps` kept times in seconds,
/// each the maximum over ranks. `f` runs after a barrier; `tick` runs after each
/// repetition, outside the timed region (progress display).
pub fn time_reps(world: &World, warmup: usize, reps: usize, f: impl FnMut(), tick: impl FnMut()) -> Vec<f64> {
    time_reps_after(world, warmup, reps, || {}, f, tick)
}

/// [`time_reps`] with `setup` run before each repetition, outside the timed region (a
/// stencil's initial field).
pub fn time_reps_after(world: &World, warmup: usize, reps: usize, mut setup: impl FnMut(), mut f: impl FnMut(), mut tick: impl FnMut()) -> Vec<f64> {
    let timed = repetitions(world, warmup, reps, |_, start| {
        setup();
        let t = start();
        f();
        let dt = t.elapsed().as_secs_f64();
        tick();
        Ok::<f64, std::convert::Infallible>(dt)
    });
    timed.unwrap_or_else(|never| match never {})
}

/// What one repetition measured on this rank, reduced to the slowest rank.
pub trait Slowest {
    /// The maximum over ranks of every time in it (a collective: every rank calls it).
    fn slowest(self, world: &World) -> Self;
    /// True when the run cannot go on after this repetition (a failed solve fails again):
    /// it is kept, even in warm-up, and the loop ends.
    fn stops(&self) -> bool {
        false
    }
}

impl Slowest for f64 {
    fn slowest(self, world: &World) -> f64 {
        world.max(self)
    }
}

/// The loop every measurement runs: `warmup + reps` repetitions of `rep(r, start)`, which
/// prepares its repetition outside the timed region, then calls `start` (a barrier, then
/// the instant every part of the repetition is timed from) and returns what it measured on
/// this rank. Each repetition's times are reduced to the slowest rank's; warm-up
/// repetitions are discarded.
pub fn repetitions<R: Slowest, E>(world: &World, warmup: usize, reps: usize, mut rep: impl FnMut(usize, &dyn Fn() -> Instant) -> Result<R, E>) -> Result<Vec<R>, E> {
    let start = || {
        world.barrier();
        Instant::now()
    };
    let mut kept = Vec::with_capacity(reps);
    for r in 0..warmup + reps {
        let measured = rep(r, &start)?.slowest(world);
        let stop = measured.stops();
        if r >= warmup || stop {
            kept.push(measured);
        }
        if stop {
            break;
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn stats_and_rates() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s, Stats { min: 1.0, median: 2.5, max: 10.0 });
        assert_eq!(Stats::rate(10.0, &s), Stats { min: 1.0, median: 4.0, max: 10.0 });
        assert_eq!(Stats::of(&[5.0]).median, 5.0);
    }
}
