//! Core clock from a dependent chain of integer additions: each `add` needs the previous
//! result, so the chain retires one addition per cycle and `cycles = additions`.
//! Interruptions (preemption, interrupts) can only make a trial look slower, never faster,
//! so the estimate is the best of several short trials.

use std::time::{Duration, Instant};

/// Additions in the chain per loop iteration (the loop counter runs beside it).
const CHAIN: u64 = 100;

/// Trials per measurement; the fastest one counts.
const TRIALS: u32 = 8;

/// Runs the chain for about `duration` in [`TRIALS`] trials and returns the clock in GHz
/// of the fastest; `None` where the architecture has no implementation (then a config
/// must give the clock).
pub fn measure_ghz(duration: Duration) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        chain(5_000_000); // wake the core up to its running clock
        let trial = duration / TRIALS;
        let mut iters = 10_000u64;
        let mut best = 0f64;
        let mut done = 0;
        while done < TRIALS {
            let t = Instant::now();
            chain(iters);
            let dt = t.elapsed();
            if dt < trial {
                iters *= 2; // still calibrating the trial length
                continue;
            }
            best = best.max((iters * CHAIN) as f64 / dt.as_nanos() as f64);
            done += 1;
        }
        return Some(best);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = duration;
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn chain(iters: u64) {
    let mut x = 0u64;
    // SAFETY: register-only arithmetic; no memory is touched.
    unsafe {
        std::arch::asm!(
            "2:",
            ".rept 100",
            "add {x}, 1",
            ".endr",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) x,
            n = inout(reg) iters.max(1) => _,
            options(nomem, nostack),
        );
    }
    std::hint::black_box(x);
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_is_plausible() {
        if let Some(ghz) = super::measure_ghz(std::time::Duration::from_millis(50)) {
            assert!((0.2..10.0).contains(&ghz), "{ghz} GHz");
        }
    }
}
