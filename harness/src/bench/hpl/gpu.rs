//! HPL-MxP with one GPU per rank (`effcal hpl-mxp --device gpu`): the CPU's driver
//! ([`super::solve`]: grid, look-ahead, broadcasts staged through the host, refinement,
//! checks, record) on a backend whose matrix lives in device memory ([`DeviceLu`]).
//!
//! - The matrix: generated on the host by the CPU's generator, a few row blocks at a time,
//!   rounded to f32 (f64 for the FP64 baseline) and uploaded (untimed, as in HPL); its f64
//!   copy for the residual is uploaded once and kept on the device (8 bytes an element).
//! - The diagonal blocks: downloaded, factored on the host by the CPU's code (the same
//!   bits, the same breakdown check), uploaded; or (`--diagonal gpu`) factored on the GPU
//!   on their way down by the same recursion (cuBLAS TRSM and GEMM, a kernel for the
//!   leaves), the first zero or non-finite pivot found in the factors; the L and U panels
//!   by cuBLAS TRSM on the device; rounding to BF16/FP16 by a kernel (nearest even, saturating, as the CPU's).
//! - The trailing update: cuBLAS GemmEx, BF16/FP16 on the tensor cores with FP32
//!   accumulation into the f32 matrix (FP32 and FP64 runs: IEEE FMAs). The FP8 what-if
//!   (`--precision e4m3`): panels rounded to E4M3 with a scale each (per tensor, the CPU's
//!   scale and bits), the update by cuBLASLt's FP8 kernels, f32 accumulation.
//! - Refinement in f64 as on the CPU: the residual's A·x by DGEMV on the f64 copy, the
//!   preconditioner's products with the factors by a kernel (f64 sums), its diagonal
//!   solves on the host.
//! - Energy: the board's counter over the timed repetitions (NVML), summed over the GPUs.

use super::backend::{Backend, Breakdown, factor_on_host};
use super::grid::{Axis, Grid};
use super::operators::{self, F64Matrix, Generated};
use super::{HplSettings, solve};
use crate::bench::Ctx;
use crate::bench::gpu::{Device, agreed, error};
use crate::bench::wire::Pod;
use crate::calibration::{Peaks, Record};
use crate::error::{Error, Result};
use effcal_gpu::lu::{Acc, DeviceLu, Operand, Panel, Storage, first_breakdown};
use effcal_kernels::gemm::{Accumulate, GemmElement, GemmParams, GemmPath};
use effcal_kernels::hpl_mxp::matgen::Matrix;
use effcal_kernels::precision::scaling::{KAxis, ScaleMode};
use effcal_kernels::precision::{E4M3, Precision, Real, bf16, f16};
use mpi::topology::SimpleCommunicator;
use serde_json::json;

/// Host memory one upload of generated rows uses (whole row blocks, at least one).
const UPLOAD_BYTES: usize = 256 << 20;

/// Block size of GPU runs when none is given: the update's k (tensor cores want it long),
/// against the host's factorisation of each diagonal block (NB³ work a step).
pub const GPU_NB: usize = 1024;


/// Bytes a GPU holds per matrix element of a solve in `p`: the matrix in the accumulation
/// type (f32; f64 for the FP64 LU) and its f64 copy for the residual.
pub fn bytes_per_element(p: Precision) -> usize {
    if p == Precision::F64 { 16 } else { 12 }
}

/// The largest N, a multiple of every run's NB, whose matrix takes at most `fraction` of
/// each of `gpus` GPUs' `memory` bytes ([`bytes_per_element`] of the most demanding of the
/// runs' precisions, so that every precision solves the same system): a plan's
/// `hpl_mxp.memory_fraction` on GPUs.
pub fn n_for_memory(fraction: f64, memory: u64, gpus: usize, runs: &[HplSettings]) -> usize {
    let bpe = runs.iter().map(|h| bytes_per_element(h.precision)).max().unwrap_or(12) as f64;
    let nb = runs.iter().map(|h| h.nb).fold(1, crate::config::lcm);
    ((fraction * memory as f64 * gpus as f64 / bpe).sqrt() as usize / nb * nb).max(nb)
}

/// The settings a GPU run refuses, each by its field (checked before the device is opened).
pub fn check(s: &HplSettings) -> Result<()> {
    let Some(storage) = Storage::of_panels(s.precision) else {
        return Err(Error::invalid("--precision", s.precision.name(), "f64, f32, bf16, f16 or e4m3 with --device gpu (Hopper's FP8 GEMMs take E4M3 × E4M3, not E5M2 × E5M2)"));
    };
    if storage == Storage::E4m3 {
        if s.scaling == ScaleMode::Mx {
            return Err(Error::invalid("--scaling", s.scaling.name(), "tensor (the default for FP8) or none with --device gpu"));
        }
        for (field, v) in [("--n", s.n), ("--nb", s.nb), ("--chunk", s.chunk)] {
            if !v.is_multiple_of(16) {
                return Err(Error::invalid(field, v, "a multiple of 16 for e4m3 with --device gpu (cuBLASLt's FP8 kernels take 16-byte aligned operands)"));
            }
        }
    } else if s.scaling != ScaleMode::None {
        return Err(Error::invalid("--scaling", s.scaling.name(), "none with --device gpu for f64, f32, bf16 and f16 (their panels are rounded without scales)"));
    }
    if !matches!(s.gemm.accumulate, Accumulate::Wide) && s.precision == Precision::F16 {
        return Err(Error::invalid("--accumulate", "f16", "wide (the default) with --device gpu: the tensor cores accumulate in f32"));
    }
    if s.path != crate::bench::gemm::PathChoice::Fastest {
        return Err(Error::invalid("--backend", s.path.name(), "fastest (the default) with --device gpu: the update is cuBLAS's"));
    }
    Ok(())
}

/// This rank's blocks on its GPU.
struct GpuBlocks<'g, A: Acc> {
    lu: DeviceLu<'g, A>,
    dev: &'g Device,
    rows: Axis,
    cols: Axis,
    storage: Storage,
    /// FP8 panels scaled per tensor (their scale rides on the wire).
    tensor_scaled: bool,
    /// The diagonal blocks factored on the GPU (else on the host).
    diagonal_on_gpu: bool,
    /// My rows' diagonal and ‖A‖∞: the matrix is the same every repetition.
    generated: Option<Generated>,
    /// The diagonal block whose factors the device holds for the panel solves (factored
    /// here, or uploaded once for the L and the U panel of its step).
    factors: Option<usize>,
    f64_loaded: bool,
    /// Energy over the timed repetitions: (joules, seconds), and the open window.
    energy: Option<(f64, f64)>,
    window: Option<effcal_gpu::power::Window>,
    /// Why there is no energy reading.
    no_energy: Option<String>,
}

fn gpu<T>(r: effcal_gpu::Result<T>) -> Result<T> {
    r.map_err(error)
}

/// The update's operand a panel with k along `k_axis` is.
fn operand(k_axis: KAxis) -> Operand {
    match k_axis {
        KAxis::Cols => Operand::L,
        KAxis::Rows => Operand::U,
    }
}

impl<'g, A: Acc + Real + Pod> GpuBlocks<'g, A> {
    /// Puts the factors of diagonal block `k` where the panel solves read them, unless
    /// they are there.
    fn factors_of(&mut self, k: usize, diag: &[A]) -> Result<()> {
        if self.factors != Some(k) {
            gpu(self.lu.upload_factors(diag))?;
            self.factors = Some(k);
        }
        Ok(())
    }

    /// Local row blocks [lb0, lb1) of the matrix, in type X, to `upload`.
    fn each_rows<X: Real>(&mut self, m: &Matrix, scale: f64, diag: &[f64], mut upload: impl FnMut(&mut DeviceLu<'g, A>, usize, &[X]) -> Result<()>) -> Result<()> {
        let (rows, cols) = (self.rows, self.cols);
        let (nb, ld) = (rows.nb, cols.local_len());
        let blocks = rows.local_len().div_ceil(nb);
        let per = (UPLOAD_BYTES / (nb * ld.max(1) * size_of::<X>()).max(1)).max(1);
        let mut buf: Vec<X> = Vec::new();
        for lb0 in (0..blocks).step_by(per) {
            let r0 = lb0 * nb;
            let r1 = ((lb0 + per) * nb).min(rows.local_len());
            buf.clear();
            buf.resize((r1 - r0) * ld, X::default());
            operators::fill_blocks(m, scale, diag, rows, cols, lb0, &mut buf);
            upload(&mut self.lu, r0, &buf)?;
        }
        Ok(())
    }
}

impl<'g, T: GemmElement + Pod> Backend<T> for GpuBlocks<'g, T::Acc>
where
    T::Acc: Acc + Real + Pod,
{
    type Panel = Panel;

    fn rows(&self) -> Axis {
        self.rows
    }

    fn cols(&self) -> Axis {
        self.cols
    }

    fn holds_f64(&self) -> bool {
        true
    }

    fn load(&mut self, m: &Matrix, scale: f64, grid: &Grid, world: &SimpleCommunicator) -> Result<Generated> {
        if self.generated.is_none() {
            self.generated = Some(operators::diagonal(m, scale, grid, world, self.rows, self.cols));
        }
        self.factors = None;
        let g = self.generated.clone().expect("set above");
        self.each_rows::<T::Acc>(m, scale, &g.diag, |lu, r0, rows| gpu(lu.upload_rows(r0, rows)))?;
        if !self.f64_loaded {
            self.each_rows::<f64>(m, scale, &g.diag, |lu, r0, rows| gpu(lu.upload_f64_rows(r0, rows)))?;
            self.f64_loaded = true;
        }
        gpu(self.lu.synchronize())?;
        Ok(g)
    }

    fn factor_diag(&mut self, k: usize, lr: usize, lc: usize, kb: usize) -> Result<(Vec<T::Acc>, Breakdown)> {
        self.factors = None;
        let col0 = k * self.rows.nb;
        let (d, broke) = if self.diagonal_on_gpu {
            let d = gpu(self.lu.download_factored_block(lr, lc, kb))?;
            let broke = first_breakdown(&d, kb).map(|(j, pivot)| (col0 + j, pivot));
            (d, broke)
        } else {
            let mut d = gpu(self.lu.download_block(lr, lc, kb))?;
            let broke = factor_on_host(&mut d, kb, kb, col0)?;
            (d, broke)
        };
        gpu(self.lu.upload_factors(&d))?;
        gpu(self.lu.store_factors(lr, lc, kb))?;
        self.factors = Some(k);
        Ok((d, broke))
    }

    fn solve_l(&mut self, k: usize, diag: &[T::Acc], lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()> {
        self.factors_of(k, diag)?;
        gpu(self.lu.solve_l(lr1, lc, rows, kb))
    }

    fn solve_u(&mut self, k: usize, diag: &[T::Acc], lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()> {
        self.factors_of(k, diag)?;
        gpu(self.lu.solve_u(lr, lc1, kb, cols))
    }

    fn round(&mut self, r0: usize, c0: usize, rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<Panel> {
        debug_assert!(mode != ScaleMode::Mx, "checked before the run");
        gpu(self.lu.round((r0, c0), rows, cols, self.storage, operand(k_axis), mode == ScaleMode::Tensor))
    }

    /// The CPU's wire form ([`crate::bench::wire::write_piece`]): the row-major bits, then
    /// the scale (little-endian f32) when panels are scaled per tensor.
    fn write_panel(&mut self, p: &Panel, msg: &mut Vec<u8>) -> Result<()> {
        let (bits, scale) = gpu(self.lu.panel_to_host(p))?;
        msg.extend_from_slice(&bits);
        if let (Some(scale), true) = (scale, self.tensor_scaled) {
            msg.extend_from_slice(&scale.to_le_bytes());
        }
        Ok(())
    }

    fn read_panel<'m>(&mut self, msg: &'m [u8], rows: usize, cols: usize, k_axis: KAxis, mode: ScaleMode) -> Result<(Panel, &'m [u8])> {
        let len = rows * cols * self.storage.bytes();
        let scaled = mode == ScaleMode::Tensor;
        assert!(msg.len() >= len + if scaled { 4 } else { 0 }, "message shorter than its layout");
        let (bits, rest) = msg.split_at(len);
        let (scale, rest) = if scaled { (Some(f32::from_le_bytes(rest[..4].try_into().expect("4 bytes"))), &rest[4..]) } else { (None, rest) };
        Ok((gpu(self.lu.panel_from_host(bits, rows, cols, self.storage, operand(k_axis), scale))?, rest))
    }

    fn update(&mut self, (r0, c0): (usize, usize), l: &Panel, u: &Panel, (uc0, uc1): (usize, usize), _gemm: &GemmParams) -> Result<Option<GemmPath>> {
        gpu(self.lu.update((r0, c0), l, u, (uc0, uc1)))?;
        Ok(None)
    }

    fn asynchronous(&self) -> bool {
        true
    }

    fn mark(&mut self) -> Result<()> {
        gpu(self.lu.mark())
    }

    fn finish(&mut self) -> Result<()> {
        gpu(self.lu.synchronize())
    }

    fn products(&mut self, r0: usize, lc: usize, piece: &[f64], part: &mut [f64]) -> Result<()> {
        let sums = gpu(self.lu.products(r0, lc, piece, part.len()))?;
        part.iter_mut().zip(sums).for_each(|(p, s)| *p += s);
        Ok(())
    }

    fn f64_product(&mut self, _a: &F64Matrix<'_>, xl: &[f64]) -> Result<Vec<f64>> {
        gpu(self.lu.f64_product(xl))
    }

    fn begin_timed(&mut self) {
        self.window = self.dev.power.as_ref().ok().and_then(|p| p.start());
    }

    fn end_timed(&mut self) {
        let read = match (self.window.take(), &self.dev.power) {
            (Some(w), Ok(p)) => p.finish(w),
            _ => None,
        };
        match read {
            Some(e) => {
                let (j, s) = self.energy.unwrap_or((0.0, 0.0));
                self.energy = Some((j + e.joules, s + e.seconds));
            }
            None => {
                self.no_energy = Some(match &self.dev.power {
                    Err(why) => why.clone(),
                    Ok(_) => "the energy counter could not be read over the repetitions".into(),
                })
            }
        }
    }
}

/// One HPL-MxP solve on the ranks' GPUs: the CPU's record, with the device, the library,
/// the update's arithmetic, and GFLOP/s per watt.
pub fn measure(ctx: &Ctx, dev: &Device, s: &HplSettings, peaks: Option<&Peaks>) -> Result<Record> {
    check(s)?;
    super::check(s, ctx.world.size())?;
    match s.precision {
        Precision::F64 => run::<f64>(ctx, dev, s, peaks),
        Precision::F32 => run::<f32>(ctx, dev, s, peaks),
        Precision::Bf16 => run::<bf16>(ctx, dev, s, peaks),
        Precision::F16 => run::<f16>(ctx, dev, s, peaks),
        Precision::E4m3 => run::<E4M3>(ctx, dev, s, peaks),
        p => unreachable!("{p} refused by check()"),
    }
}

fn run<T: GemmElement + Pod>(ctx: &Ctx, dev: &Device, s: &HplSettings, peaks: Option<&Peaks>) -> Result<Record>
where
    T::Acc: Acc + Real + Pod,
{
    let grid = Grid::new(ctx.world.comm(), s.p, s.q, s.pmap);
    let (rows, cols) = (grid.rows(s.n, s.nb), grid.cols(s.n, s.nb));
    // The matrix, its f64 copy, two blocks, a step's L and U panels (at most all my rows and
    // columns by NB, twice over while one step's are freed and the next's made), and room
    // for cuBLAS's workspace.
    let storage = Storage::of_panels(s.precision).expect("checked");
    let panels = 2 * ((rows.local_len() + cols.local_len()) * s.nb * storage.bytes()) as u64;
    let need = DeviceLu::<T::Acc>::bytes_needed(rows.local_len(), cols.local_len(), s.nb, true) + panels + (256 << 20);
    debug_assert_eq!(DeviceLu::<T::Acc>::bytes_needed(1, 1, 0, true), bytes_per_element(s.precision) as u64);
    let fits = dev.gpu.memory().map_err(error).and_then(|(free, _)| {
        if need > free {
            Err(Error::invalid("--n", s.n, format!("an order whose blocks fit the GPU: N = {} on {}×{} needs {:.1} GiB a GPU (the f32 or f64 matrix, its f64 copy, panels), {:.1} GiB are free", s.n, s.p, s.q, need as f64 / (1u64 << 30) as f64, free as f64 / (1u64 << 30) as f64)))
        } else {
            Ok(())
        }
    });
    agreed(ctx, fits)?;
    let made = DeviceLu::<T::Acc>::new(&dev.gpu, rows.local_len(), cols.local_len(), s.nb, true).map_err(error);
    let lu = agreed(ctx, made)?;
    let mut blocks = GpuBlocks { lu, dev, rows, cols, storage, tensor_scaled: s.scaling == ScaleMode::Tensor, diagonal_on_gpu: s.diagonal_on_gpu, generated: None, factors: None, f64_loaded: false, energy: None, window: None, no_energy: None };
    let mut record = solve::<T, _>(ctx, s, peaks, &grid, &mut blocks, s.gemm, None)?;
    let info = &dev.gpu.info;
    for (k, v) in [
        ("device", json!("gpu")),
        ("gpu", json!(info.name)),
        ("path", json!(if storage == Storage::E4m3 { "cublaslt-fp8" } else { "cublas-gemmex" })),
        ("library", json!(format!("cuBLAS {}", info.cublas_version))),
        ("arithmetic", json!(storage.arithmetic())),
        ("backend", json!("cuda")),
        ("f64_matrix", json!("kept on the device")),
        ("factor_precision", json!(s.precision.compute().name())),
        (
            "diagonal_blocks",
            json!(if s.diagonal_on_gpu {
                "factored on the GPU (the CPU's recursion: cuBLAS TRSM and GEMM, a kernel for the 32-column leaves), panels and updates on the GPU"
            } else {
                "factored on the host (the CPU's code), panels and updates on the GPU"
            }),
        ),
    ] {
        record.params.insert(k.to_string(), v);
    }
    let have = ctx.world.all(blocks.energy.is_some());
    if have {
        let (j, sec) = blocks.energy.expect("every rank has one");
        let joules = ctx.world.sum(j);
        let seconds = ctx.world.max(sec);
        let mean_w = joules / seconds;
        record.results.insert(
            "power".into(),
            json!({
                "joules": joules,
                "seconds": seconds,
                "mean_w": mean_w,
                "gflops_per_w": record.gflops.median / mean_w,
                "limit_w_per_gpu": dev.power.as_ref().ok().and_then(|p| p.limit_w),
                "gpus": ctx.world.size(),
                "over": "the timed repetitions (factorisation and refinement)",
            }),
        );
    } else {
        record.results.insert("power_unavailable".into(), json!(blocks.no_energy.unwrap_or_else(|| "no energy reading on another rank".into())));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_fraction_gives_the_largest_n_of_whole_blocks_that_fits() {
        let run = |p: Precision, nb: usize| HplSettings::new(0, nb, p);
        // 60 % of 80 GiB at 12 bytes an element: N² ≤ 4.29e9, N = 65536 + a part block.
        let gib80 = 80u64 << 30;
        let n = n_for_memory(0.6, gib80, 1, &[run(Precision::Bf16, 1024)]);
        assert_eq!(n, 65536);
        assert!(12.0 * (n as f64).powi(2) <= 0.6 * gib80 as f64 && 12.0 * ((n + 1024) as f64).powi(2) > 0.6 * gib80 as f64);
        // The FP64 LU in the list sizes every run (16 bytes), four GPUs hold four times the matrix.
        let both = [run(Precision::Bf16, 1024), run(Precision::F64, 1024)];
        let n = n_for_memory(0.6, gib80, 4, &both);
        assert_eq!(n % 1024, 0);
        assert!(16.0 * (n as f64).powi(2) <= 0.6 * 4.0 * gib80 as f64 && 16.0 * ((n + 1024) as f64).powi(2) > 0.6 * 4.0 * gib80 as f64);
        // Block sizes that differ: a multiple of each; a tiny memory still gives one block.
        assert_eq!(n_for_memory(0.6, gib80, 1, &[run(Precision::Bf16, 768), run(Precision::F16, 1024)]) % 3072, 0);
        assert_eq!(n_for_memory(0.1, 1 << 20, 1, &[run(Precision::Bf16, 1024)]), 1024);
    }
}
