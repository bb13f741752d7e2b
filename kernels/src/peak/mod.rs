//! Peak micro-kernels: what one thread can execute when nothing but registers is involved.
//!
//! - [`fma`]: chains of fused multiply-adds on independent registers (f64, f32) and of
//!   `vdpbf16ps` (bf16 pairs into f32). FLOPs: 2 per FMA lane (multiply + add); 4 per
//!   `vdpbf16ps` lane (two products, two additions).
//! - [`clock`]: the core clock under load, from a chain of dependent integer additions
//!   (one per cycle on every x86-64 core of the last twenty years).
//! - [`triad`]: STREAM triad `a = b + s·c`, counted as 24 bytes per element in f64 (two
//!   reads, one write, no write-allocate traffic: the STREAM convention).

pub mod clock;
pub mod fma;
pub mod triad;
