//! effcal's own CUDA kernels, compiled by NVRTC at run time for the device's architecture:
//! - `fma_f64`, `fma_f32`: the register-only FMA peak (8 independent chains per thread,
//!   `2 · 8 · iters` FLOP per thread, one store per thread at the end);
//! - `triad_init`, `triad`: BabelStream's triad `a[i] = b[i] + scalar·c[i]` on f64, one
//!   element per thread (bytes counted: 24 per element, STREAM's convention).

use crate::{Gpu, GpuError, Result};
use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

/// The CUDA C source.
pub const SOURCE: &str = r#"
#define FMA_KERNEL(NAME, T)                                                         \
extern "C" __global__ void NAME(T *out, long long iters, T x, T y) {                \
    T a0 = (T)threadIdx.x * (T)1e-7, a1 = a0 + (T)1, a2 = a0 + (T)2, a3 = a0 + (T)3, \
      a4 = a0 + (T)4, a5 = a0 + (T)5, a6 = a0 + (T)6, a7 = a0 + (T)7;                \
    _Pragma("unroll 4")                                                             \
    for (long long i = 0; i < iters; ++i) {                                         \
        a0 = fma(a0, x, y); a1 = fma(a1, x, y); a2 = fma(a2, x, y); a3 = fma(a3, x, y); \
        a4 = fma(a4, x, y); a5 = fma(a5, x, y); a6 = fma(a6, x, y); a7 = fma(a7, x, y); \
    }                                                                               \
    out[blockIdx.x * blockDim.x + threadIdx.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7; \
}
FMA_KERNEL(fma_f64, double)
FMA_KERNEL(fma_f32, float)

extern "C" __global__ void triad_init(double *a, double *b, double *c, long long n,
                                      double va, double vb, double vc) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { a[i] = va; b[i] = vb; c[i] = vc; }
}

extern "C" __global__ void triad(double *a, const double *b, const double *c, double scalar,
                                 long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) a[i] = b[i] + scalar * c[i];
}
"#;

/// FMA chains per thread in [`SOURCE`].
pub const CHAINS: u64 = 8;
/// The start values of a, b, c (BabelStream's a and b; c nonzero so the check sees that it
/// was read, a changed so it sees that the triad ran) and BabelStream's scalar.
pub const TRIAD_START: [f64; 3] = [0.1, 0.2, 0.3];
pub const TRIAD_SCALAR: f64 = 0.4;
/// Threads per block of every kernel.
const BLOCK: u32 = 1024;

/// Device code the LU and stencil kernels share: conversions from f32 to bf16 and f16,
/// nearest even, saturating at the format's largest finite value (effcal-kernels'
/// `Overflow::Saturate`), NaN kept; bf16 and f16 widened to f32 (exact); and `PACK`, the 2D
/// copy kernel ([`copy_2d`] launches it).
pub const SHARED: &str = r#"
// dst (rows × cols, row stride ldd) = src (row stride lds): one thread per column, rows
// strided over the grid's y.
#define PACK(NAME, T)                                                                   \
extern "C" __global__ void NAME(const T *src, long long lds, T *dst, long long ldd,     \
                                long long rows, long long cols) {                      \
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;                     \
    if (c >= cols) return;                                                              \
    for (long long r = blockIdx.y; r < rows; r += gridDim.y)                            \
        dst[r * ldd + c] = src[r * lds + c];                                            \
}

// f32 -> bf16, nearest even, saturating at bf16's largest finite value (as the CPU's
// rounding: effcal-kernels' Overflow::Saturate); NaN stays NaN.
__device__ unsigned short bf16_rn(float x) {
    const float big = __uint_as_float(0x7f7f0000u);
    if (x == x) x = fminf(fmaxf(x, -big), big);  // (fmaxf would turn NaN into -big)
    unsigned int b = __float_as_uint(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b >> 16) | 0x40u);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (unsigned short)(b >> 16);
}

// f32 -> f16, nearest even (the PTX conversion), saturating at 65504.
__device__ unsigned short f16_rn(float x) {
    if (x == x) x = fminf(fmaxf(x, -65504.0f), 65504.0f);
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}

__device__ float bf16_f32(unsigned short h) { return __uint_as_float(((unsigned int)h) << 16); }

__device__ float f16_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
"#;

/// Threads per block of the 2D kernels (a multiple of 32: the LU's products use warps).
pub(crate) const BLOCK_2D: u32 = 256;

/// Rows × cols launch of a 2D kernel: threads over columns, the grid's y over rows (at most
/// 65535, the kernels stride over the rest).
pub(crate) fn grid_2d(rows: usize, cols: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (cols.div_ceil(BLOCK_2D as usize).max(1) as u32, rows.clamp(1, 65535) as u32, 1), block_dim: (BLOCK_2D, 1, 1), shared_mem_bytes: 0 }
}

/// Queues `f`, a `PACK` kernel, on `stream`: dst (rows × cols, row stride ldd) ← src (row
/// stride lds), in `f`'s elements; nothing for an empty block.
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_2d(stream: &std::sync::Arc<cudarc::driver::CudaStream>, f: &CudaFunction, src: u64, lds: usize, dst: u64, ldd: usize, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let (lds, ldd, r, c) = (lds as i64, ldd as i64, rows as i64, cols as i64);
    // SAFETY: PACK kernels take (const T*, long long, T*, long long, long long, long long);
    // src and dst hold rows × cols elements at their strides (the callers' ranges).
    unsafe { stream.launch_builder(f).arg(&src).arg(&lds).arg(&dst).arg(&ldd).arg(&r).arg(&c).launch(grid_2d(rows, cols))? };
    Ok(())
}

fn nvrtc_present() -> Result<()> {
    // SAFETY: a dlopen probe.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(GpuError::Unavailable("CUDA 13's NVRTC (libnvrtc.so.13) was not found: effcal compiles its own kernels with it; install it or put it on LD_LIBRARY_PATH".into()));
    }
    Ok(())
}

/// Compiles CUDA C `source` to PTX for compute capability `cc`, with NVRTC `options`
/// besides the architecture (the tests read it; the device loads [`device_image`]'s).
pub fn compile_source(source: &str, cc: (i32, i32), options: &[&str]) -> Result<cudarc::nvrtc::Ptx> {
    nvrtc_present()?;
    let mut all = vec![format!("--gpu-architecture=compute_{}{}", cc.0, cc.1)];
    all.extend(options.iter().map(|o| o.to_string()));
    let opts = cudarc::nvrtc::CompileOptions { options: all, ..Default::default() };
    cudarc::nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| GpuError::Nvrtc(e.to_string()))
}

/// Compiles CUDA C `source` to machine code (a CUBIN) for the device of compute capability
/// `cc`, with NVRTC `options` besides the architecture: what the device loads. Machine
/// code, not PTX, because the driver cannot compile PTX from an NVRTC newer than itself
/// (CUDA's minor-version compatibility: a 13.x NVRTC on a 13.0 driver), and loads
/// machine code for its architecture from any 13.x.
pub fn device_image(source: &str, cc: (i32, i32), options: &[&str]) -> Result<cudarc::nvrtc::Ptx> {
    cubin(source, cc, options).map(cudarc::nvrtc::Ptx::from_binary)
}

/// The CUBIN of [`device_image`], as bytes.
pub fn cubin(source: &str, cc: (i32, i32), options: &[&str]) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    nvrtc_present()?;
    let mut all = vec![format!("--gpu-architecture=sm_{}{}", cc.0, cc.1)];
    all.extend(options.iter().map(|o| o.to_string()));
    let src = std::ffi::CString::new(source).map_err(|_| GpuError::Nvrtc("the source has a NUL byte".into()))?;
    let prog = result::create_program(&src, None).map_err(|e| GpuError::Nvrtc(e.to_string()))?;
    // SAFETY: `prog` was created above from `src` (alive until the end of this function) and
    // is destroyed once, below; the sizes NVRTC reports are the buffers' sizes.
    unsafe {
        let compiled = result::compile_program(prog, &all).map_err(|e| {
            let log = result::get_program_log(prog).map(|l| std::ffi::CStr::from_ptr(l.as_ptr()).to_string_lossy().into_owned()).unwrap_or_default();
            GpuError::Nvrtc(format!("{e}: {log}"))
        });
        let image = compiled.and_then(|()| {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size).result().map_err(|e| GpuError::Nvrtc(e.to_string()))?;
            let mut image = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog, image.as_mut_ptr().cast()).result().map_err(|e| GpuError::Nvrtc(e.to_string()))?;
            Ok(image)
        });
        let _ = result::destroy_program(prog);
        image
    }
}

/// The kernels, loaded on a device.
pub struct Kernels {
    fma_f64: CudaFunction,
    fma_f32: CudaFunction,
    triad_init: CudaFunction,
    triad: CudaFunction,
}

impl Kernels {
    pub fn load(gpu: &Gpu) -> Result<Self> {
        let module = gpu.ctx.load_module(device_image(SOURCE, gpu.info.compute_capability, &[])?)?;
        Ok(Kernels { fma_f64: module.load_function("fma_f64")?, fma_f32: module.load_function("fma_f32")?, triad_init: module.load_function("triad_init")?, triad: module.load_function("triad")? })
    }
}

/// The FMA peak's launch: `blocks_per_sm` blocks of 1024 threads per multiprocessor.
pub struct FmaPeak {
    out: CudaSlice<f64>,
    threads: u64,
    blocks: u32,
    pub iters: u64,
}

impl FmaPeak {
    pub fn new(gpu: &Gpu, blocks_per_sm: u32, iters: u64) -> Result<Self> {
        let blocks = gpu.info.multiprocessors * blocks_per_sm;
        let threads = blocks as u64 * BLOCK as u64;
        Ok(FmaPeak { out: gpu.stream.alloc_zeros::<f64>(threads as usize)?, threads, blocks, iters })
    }

    /// FLOP of one launch.
    pub fn flops(&self) -> f64 {
        (2 * CHAINS * self.iters * self.threads) as f64
    }

    /// Queues one launch in f64 (or f32).
    pub fn launch(&mut self, gpu: &Gpu, k: &Kernels, f64: bool) -> Result<()> {
        let cfg = LaunchConfig { grid_dim: (self.blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let iters = self.iters as i64;
        // SAFETY: the kernels' signatures: (T *out, long long iters, T x, T y); `out` has one
        // element per thread (as f64, so room for f32 too).
        unsafe {
            if f64 {
                let (x, y) = (0.999_999_9f64, 1e-7f64);
                gpu.stream.launch_builder(&k.fma_f64).arg(&mut self.out).arg(&iters).arg(&x).arg(&y).launch(cfg)?;
            } else {
                let (x, y) = (0.999_9f32, 1e-4f32);
                gpu.stream.launch_builder(&k.fma_f32).arg(&mut self.out).arg(&iters).arg(&x).arg(&y).launch(cfg)?;
            }
        }
        Ok(())
    }
}

/// The triad's three arrays of `n` f64 on the device.
pub struct Triad {
    a: CudaSlice<f64>,
    b: CudaSlice<f64>,
    c: CudaSlice<f64>,
    pub n: usize,
}

impl Triad {
    /// Allocates and initialises the arrays (BabelStream's start values).
    pub fn new(gpu: &Gpu, k: &Kernels, n: usize) -> Result<Self> {
        let s = &gpu.stream;
        // SAFETY: every element is written by triad_init before it is read.
        let (mut a, mut b, mut c) = unsafe { (s.alloc::<f64>(n)?, s.alloc::<f64>(n)?, s.alloc::<f64>(n)?) };
        let nn = n as i64;
        let [va, vb, vc] = TRIAD_START;
        // SAFETY: triad_init(double*, double*, double*, long long, double, double, double).
        unsafe { s.launch_builder(&k.triad_init).arg(&mut a).arg(&mut b).arg(&mut c).arg(&nn).arg(&va).arg(&vb).arg(&vc).launch(Self::config(n))? };
        Ok(Triad { a, b, c, n })
    }

    fn config(n: usize) -> LaunchConfig {
        LaunchConfig { grid_dim: (n.div_ceil(BLOCK as usize) as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
    }

    /// Bytes one triad moves (STREAM: 2 loads + 1 store of 8 bytes, no write-allocate).
    pub fn bytes(&self) -> f64 {
        24.0 * self.n as f64
    }

    /// Queues one triad.
    pub fn launch(&mut self, gpu: &Gpu, k: &Kernels) -> Result<()> {
        let nn = self.n as i64;
        // SAFETY: triad(double *a, const double *b, const double *c, double, long long).
        unsafe { gpu.stream.launch_builder(&k.triad).arg(&mut self.a).arg(&self.b).arg(&self.c).arg(&TRIAD_SCALAR).arg(&nn).launch(Self::config(self.n))? };
        Ok(())
    }

    /// Checks every element of `a` against `b + scalar·c` (either rounding of the FMA).
    pub fn check(&self, gpu: &Gpu) -> Result<bool> {
        let a = gpu.stream.clone_dtoh(&self.a)?;
        let [_, b, c] = TRIAD_START;
        let (fused, separate) = (TRIAD_SCALAR.mul_add(c, b), b + TRIAD_SCALAR * c);
        debug_assert!(fused != TRIAD_START[0] && separate != TRIAD_START[0]);
        Ok(a.iter().all(|&x| x == fused || x == separate))
    }
}

/// effcal's CUDA C as plain C for the host (tests): each launch a loop over blocks and
/// threads (for kernels whose threads are independent), the PTX conversions between f32
/// and f16 replaced by GCC's `_Float16` (also nearest even, exact widening), the rounding
/// intrinsics plain C arithmetic (IEEE, contraction off), atomics sequential, the warp
/// shuffle a stub (kernels that use it are not run this way), the barrier nothing (a kernel
/// run so must give its answer with its threads in turn: lu_leaf does).
#[cfg(test)]
pub(crate) fn as_host_c(source: &str) -> String {
    const PRELUDE: &str = r#"
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>
typedef struct { long long x, y, z; } dim_t;
static dim_t blockIdx, blockDim, gridDim, threadIdx;
#define __global__
#define __device__ static
static float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static double __shfl_down_sync(unsigned m, double v, int o) { (void)m; (void)o; return v; }
static float __fadd_rn(float a, float b) { return a + b; }
static float __fmul_rn(float a, float b) { return a * b; }
static float __fsub_rn(float a, float b) { return a - b; }
static float __fdiv_rn(float a, float b) { return a / b; }
static double __dsub_rn(double a, double b) { return a - b; }
static double __dmul_rn(double a, double b) { return a * b; }
static double __ddiv_rn(double a, double b) { return a / b; }
#define __syncthreads()
static unsigned atomicMax(unsigned *a, unsigned v) { unsigned o = *a; if (v > o) *a = v; return o; }
static unsigned short host_f16(float x) { _Float16 h = (_Float16)x; unsigned short u; memcpy(&u, &h, 2); return u; }
static float host_f16_f32(unsigned short u) { _Float16 h; memcpy(&h, &u, 2); return (float)h; }
"#;
    let c = source
        .replace("extern \"C\" ", "")
        .replace(r#"asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));"#, "h = host_f16(x);")
        .replace(r#"asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));"#, "f = host_f16_f32(h);");
    assert!(!c.contains("asm("), "every PTX conversion was replaced");
    format!("{PRELUDE}{c}")
}

/// Compiles C file `c` to `exe` with the host's cc (false, said, where there is none).
#[cfg(test)]
pub(crate) fn build_host_c(c: &std::path::Path, exe: &std::path::Path) -> bool {
    let built = match std::process::Command::new("cc").args(["-O1", "-std=gnu11", "-ffp-contract=off", "-o"]).arg(exe).arg(c).arg("-lm").output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: no C compiler (cc: {e})");
            return false;
        }
    };
    assert!(built.status.success(), "the kernels compile as C: {}", String::from_utf8_lossy(&built.stderr));
    true
}

#[cfg(test)]
mod tests {
    /// Where NVRTC is at hand (EFFCAL_NVRTC_TEST=1 and libnvrtc.so.13 on the loader's
    /// path, e.g. from PyPI's nvidia-cuda-nvrtc), effcal's CUDA C compiles for Hopper.
    #[test]
    fn the_cuda_source_compiles_where_nvrtc_is_present() {
        if std::env::var_os("EFFCAL_NVRTC_TEST").is_none() {
            eprintln!("skipped: set EFFCAL_NVRTC_TEST=1 with libnvrtc.so.13 on LD_LIBRARY_PATH to compile the CUDA source");
            return;
        }
        let ptx = super::compile_source(super::SOURCE, (9, 0), &[]).expect("the CUDA source compiles");
        let text = ptx.to_src();
        for entry in ["fma_f64", "fma_f32", "triad_init", "triad"] {
            assert!(text.contains(&format!(".entry {entry}(")), "{entry} is in the PTX");
        }
        assert!(text.contains("fma.rn.f64") && text.contains("fma.rn.f32"), "the FMA kernels use FMAs");
        // What the device loads: machine code for its architecture, every kernel in it.
        let sources: [(String, &[&str], Vec<&str>); 3] = [
            (super::SOURCE.to_string(), &[], vec!["fma_f64", "fma_f32", "triad_init", "triad"]),
            (crate::lu::source(), &[], crate::lu::ENTRIES.to_vec()),
            (crate::stencil::source(), &crate::stencil::OPTIONS, vec!["copy_bytes"]),
        ];
        for (source, options, names) in sources {
            let bytes = super::cubin(&source, (9, 0), options).expect("a CUBIN for sm_90");
            assert_eq!(&bytes[..4], b"\x7fELF", "a CUBIN is an ELF file");
            for name in names {
                assert!(bytes.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is in the CUBIN");
            }
        }
    }
}
