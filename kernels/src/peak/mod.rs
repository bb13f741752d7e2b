//! Peak micro-kernels: what one thread can execute when nothing but registers is involved.
//!
//! - [`fma`]: independent accumulator chains of every arithmetic a CPU may have ([`fma::Arith`]):
//!   f64 and f32 FMA, `vdpbf16ps` (bf16 pairs into f32), `vfmadd231ph` (f16 FMA) and
//!   `vpdpbusd` (u8 × i8 dot into i32). Counting: 2 per FMA lane (multiply + add), 4 per
//!   `vdpbf16ps` lane, 8 operations per `vpdpbusd` lane.
//! - [`clock`]: the core clock, from a chain of dependent `imul` (latency 3 on every x86-64
//!   core since Nehalem and Zen), alone and with FMAs in flight beside it.
//! - [`triad`]: STREAM triad `a = b + s·c`, counted as 24 bytes per element in f64 (two
//!   reads, one write, no write-allocate traffic: the STREAM convention).

pub mod clock;
pub mod fma;
pub mod triad;
