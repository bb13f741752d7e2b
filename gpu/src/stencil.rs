//! The 7- and 27-point Jacobi sweeps on the device, for fields stored in f64, f32, bf16 or
//! f16 and computed in f32 (f64 for f64): effcal-kernels' sweeps, the same expression in the
//! same order, compiled without FMA contraction (`--fmad=false`), so a GPU sweep gives the
//! CPU's bits and the harness checks the GPU's field against the CPU's exactly.
//!
//! Layout (effcal-kernels' `Block`): (i, j, k), k fastest, each extent padded by one ghost
//! point on both sides. One thread per updated point: x over k, the grid's y over j, z over i.

use crate::lu::Storage;
use crate::{Gpu, GpuError, Result};
use cudarc::driver::{CudaFunction, CudaSlice, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};
use std::ops::Range;

/// effcal's CUDA C of the sweeps, after [`crate::kernels::SHARED`]: [`source`].
pub const SOURCE: &str = r#"
#define AT(i, j, k) (((long long)(i) * n1 + (j)) * n2 + (k))
#define LD_F64(x) (x)
#define LD_F32(x) (x)
#define LD_BF16(x) bf16_f32(x)
#define LD_F16(x) f16_f32(x)
#define ST_F64(x) (x)
#define ST_F32(x) (x)
#define ST_BF16(x) bf16_rn(x)
#define ST_F16(x) f16_rn(x)

// The sweeps' common head (one thread per point of the region: k from x, j from the
// grid's y, i from its z) and tail (dst = c0*u + c1*s, two roundings and a sum, as the CPU).
#define SWEEP_HEAD(NAME, T, A)                                                          \
extern "C" __global__ void NAME(const T *u, T *v, long long n1, long long n2,          \
                                long long i0, long long j0, long long k0, long long nk, \
                                A c0, A c1) {                                          \
    long long k = k0 + (long long)blockIdx.x * blockDim.x + threadIdx.x;               \
    long long j = j0 + blockIdx.y, i = i0 + blockIdx.z;                                 \
    if (k >= k0 + nk) return;
#define SWEEP_TAIL(A, LD, ST)                                                           \
    A p = c0 * LD(u[AT(i, j, k)]);                                                      \
    A q = c1 * s;                                                                       \
    v[AT(i, j, k)] = ST(p + q);                                                         \
}

// s = ((u[k-1] + u[k+1]) + (u[i-1] + u[i+1])) + (u[j-1] + u[j+1]), as effcal-kernels'
// sweep7; n1, n2: the padded extents of j and k.
#define SEVEN(NAME, T, A, LD, ST)                                                       \
SWEEP_HEAD(NAME, T, A)                                                                  \
    A s = ((LD(u[AT(i, j, k - 1)]) + LD(u[AT(i, j, k + 1)]))                            \
           + (LD(u[AT(i - 1, j, k)]) + LD(u[AT(i + 1, j, k)])))                         \
          + (LD(u[AT(i, j - 1, k)]) + LD(u[AT(i, j + 1, k)]));                          \
SWEEP_TAIL(A, LD, ST)
SEVEN(seven_f64, double, double, LD_F64, ST_F64)
SEVEN(seven_f32, float, float, LD_F32, ST_F32)
SEVEN(seven_bf16, unsigned short, float, LD_BF16, ST_BF16)
SEVEN(seven_f16, unsigned short, float, LD_F16, ST_F16)

// s summed as effcal-kernels' sweep27: each row (i+di, j+dj) (u[k-1] + u[k]) + u[k+1]
// (the centre row u[k-1] + u[k+1]), each plane di (row -1 + row 0) + row +1, then
// (plane -1 + plane 0) + plane +1.
#define TWENTY_SEVEN(NAME, T, A, LD, ST)                                                \
SWEEP_HEAD(NAME, T, A)                                                                  \
    A pl[3];                                                                            \
    for (int di = -1; di <= 1; ++di) {                                                  \
        A q[3];                                                                         \
        for (int dj = -1; dj <= 1; ++dj) {                                              \
            const T *r = u + AT(i + di, j + dj, k);                                     \
            q[dj + 1] = (di == 0 && dj == 0) ? LD(r[-1]) + LD(r[1])                     \
                                             : (LD(r[-1]) + LD(r[0])) + LD(r[1]);       \
        }                                                                               \
        pl[di + 1] = (q[0] + q[1]) + q[2];                                              \
    }                                                                                   \
    A s = (pl[0] + pl[1]) + pl[2];                                                      \
SWEEP_TAIL(A, LD, ST)
TWENTY_SEVEN(twentyseven_f64, double, double, LD_F64, ST_F64)
TWENTY_SEVEN(twentyseven_f32, float, float, LD_F32, ST_F32)
TWENTY_SEVEN(twentyseven_bf16, unsigned short, float, LD_BF16, ST_BF16)
TWENTY_SEVEN(twentyseven_f16, unsigned short, float, LD_F16, ST_F16)

// The halo's boxes on their way to and from the host, as bytes.
PACK(copy_bytes, unsigned char)
"#;

/// The whole CUDA C of the sweeps: the conversions and [`SOURCE`].
pub fn source() -> String {
    format!("{}{SOURCE}", crate::kernels::SHARED)
}

/// NVRTC options of the sweeps: no FMA contraction (the CPU's sweeps round each product).
pub const OPTIONS: [&str; 1] = ["--fmad=false"];

/// The sweeps the device runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    Seven,
    TwentySeven,
}

impl Sweep {
    /// The kernel's name for fields of `storage` (None: FP8, which fields are not held in).
    pub fn kernel(self, storage: Storage) -> Option<&'static str> {
        use Storage::*;
        Some(match (self, storage) {
            (Sweep::Seven, F64) => "seven_f64",
            (Sweep::Seven, F32) => "seven_f32",
            (Sweep::Seven, Bf16) => "seven_bf16",
            (Sweep::Seven, F16) => "seven_f16",
            (Sweep::TwentySeven, F64) => "twentyseven_f64",
            (Sweep::TwentySeven, F32) => "twentyseven_f32",
            (Sweep::TwentySeven, Bf16) => "twentyseven_bf16",
            (Sweep::TwentySeven, F16) => "twentyseven_f16",
            (_, E4m3) => return None,
        })
    }
}

/// Threads per block (along k).
const BLOCK: u32 = 256;

/// The launch of one sweep over the region (i, j, k ranges in padded coordinates).
pub fn launch_config(region: &[Range<usize>; 3]) -> LaunchConfig {
    let [i, j, k] = region;
    LaunchConfig { grid_dim: (k.len().div_ceil(BLOCK as usize) as u32, j.len() as u32, i.len() as u32), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// A box of a padded block (ranges of i, j, k) as the rows of a 2D copy: its first
/// element, rows, elements per row and the elements between rows' starts. None where its
/// rows are not evenly spaced (several i and a part of the j range). The halo's faces are
/// all even: one i plane's rows, one j row per plane, or one k element per row of whole
/// planes.
pub fn box_rows(padded: [usize; 3], b: &[Range<usize>; 3]) -> Option<(usize, usize, usize, usize)> {
    let [n0, n1, n2] = padded;
    let [i, j, k] = b;
    debug_assert!(i.end <= n0 && j.end <= n1 && k.end <= n2);
    let first = (i.start * n1 + j.start) * n2 + k.start;
    let (plane, row) = (n1 * n2, n2);
    if i.len() <= 1 {
        Some((first, j.len(), k.len(), row))
    } else if j.len() == 1 {
        Some((first, i.len(), k.len(), plane))
    } else if *j == (0..n1) {
        Some((first, i.len() * n1, k.len(), row))
    } else {
        None
    }
}

/// Two fields on the device (the old and the new), swept in turn.
pub struct DeviceStencil<'g> {
    gpu: &'g Gpu,
    f: CudaFunction,
    copy: CudaFunction,
    u: CudaSlice<u8>,
    v: CudaSlice<u8>,
    /// Padded extents.
    n: [usize; 3],
    storage: Storage,
    weights: (f64, f64),
}

impl<'g> DeviceStencil<'g> {
    /// Compiles the sweeps and uploads `field` (the padded block's bits) as both fields.
    pub fn new(gpu: &'g Gpu, sweep: Sweep, storage: Storage, padded: [usize; 3], field: &[u8], weights: (f64, f64)) -> Result<Self> {
        if padded.iter().any(|&x| x > 65535 + 2) {
            return Err(GpuError::Unsupported(format!("a block of {padded:?} points: at most 65535 updated points per dimension on the device")));
        }
        let module = gpu.ctx.load_module(crate::kernels::device_image(&source(), gpu.info.compute_capability, &OPTIONS)?)?;
        let f = module.load_function(sweep.kernel(storage).ok_or_else(|| GpuError::Unsupported(format!("stencil fields of {storage:?}")))?)?;
        let copy = module.load_function("copy_bytes")?;
        let s = &gpu.stream;
        let (u, v) = (s.clone_htod(field)?, s.clone_htod(field)?);
        Ok(DeviceStencil { gpu, f, copy, u, v, n: padded, storage, weights })
    }

    /// Both fields back to `field`.
    pub fn load(&mut self, field: &[u8]) -> Result<()> {
        let s = &self.gpu.stream;
        s.memcpy_htod(field, &mut self.u)?;
        s.memcpy_htod(field, &mut self.v)?;
        Ok(())
    }

    /// Queues one sweep of `region` (padded coordinates) from the old field into the new,
    /// then makes the new one the old.
    pub fn sweep(&mut self, region: &[Range<usize>; 3]) -> Result<()> {
        if region.iter().any(|r| r.is_empty()) {
            return Ok(());
        }
        let (n1, n2) = (self.n[1] as i64, self.n[2] as i64);
        let (i0, j0, k0, nk) = (region[0].start as i64, region[1].start as i64, region[2].start as i64, region[2].len() as i64);
        let cfg = launch_config(region);
        let s = &self.gpu.stream;
        let mut b = s.launch_builder(&self.f);
        b.arg(&self.u).arg(&mut self.v).arg(&n1).arg(&n2).arg(&i0).arg(&j0).arg(&k0).arg(&nk);
        let (c0d, c1d) = self.weights;
        let (c0f, c1f) = (c0d as f32, c1d as f32);
        if self.storage == Storage::F64 {
            b.arg(&c0d).arg(&c1d);
        } else {
            b.arg(&c0f).arg(&c1f);
        }
        // SAFETY: sweep kernels (const T*, T*, long long ×6, A, A): both fields hold the
        // padded block; the region is inside it with its ghost layer (the caller's).
        unsafe { b.launch(cfg)? };
        std::mem::swap(&mut self.u, &mut self.v);
        Ok(())
    }

    fn rows_of(&self, b: &[Range<usize>; 3]) -> Result<(usize, usize, usize, usize)> {
        box_rows(self.n, b).ok_or_else(|| GpuError::Unsupported(format!("a halo box {b:?} whose rows are not evenly spaced")))
    }

    /// The present field's points in box `b`, row after row (i, then j), as bytes (after
    /// the queued work).
    pub fn download_box(&mut self, b: &[Range<usize>; 3]) -> Result<Vec<u8>> {
        let (first, rows, cols, stride) = self.rows_of(b)?;
        let e = self.storage.bytes();
        let gpu = self.gpu;
        let s = &gpu.stream;
        let mut staging = s.alloc_zeros::<u8>((rows * cols * e).max(1))?;
        let src = self.u.device_ptr(s).0;
        let dst = staging.device_ptr_mut(s).0;
        crate::kernels::copy_2d(&self.gpu.stream, &self.copy, src + (first * e) as u64, stride * e, dst, cols * e, rows, cols * e)?;
        let mut host = s.clone_dtoh(&staging)?;
        host.truncate(rows * cols * e);
        Ok(host)
    }

    /// Writes `bytes` (the box's points, row after row) into the present field's box `b`.
    pub fn upload_box(&mut self, b: &[Range<usize>; 3], bytes: &[u8]) -> Result<()> {
        let (first, rows, cols, stride) = self.rows_of(b)?;
        let e = self.storage.bytes();
        assert_eq!(bytes.len(), rows * cols * e, "upload_box: the bytes do not fill the box");
        if bytes.is_empty() {
            return Ok(());
        }
        let gpu = self.gpu;
        let s = &gpu.stream;
        let staging = s.clone_htod(bytes)?;
        let src = staging.device_ptr(s).0;
        let dst = self.u.device_ptr_mut(s).0;
        crate::kernels::copy_2d(&self.gpu.stream, &self.copy, src, cols * e, dst + (first * e) as u64, stride * e, rows, cols * e)?;
        // The staging buffer is freed in stream order, after the copy.
        drop(staging);
        Ok(())
    }

    /// The old field's bits (the last sweep's result), after the queued work.
    pub fn field(&self) -> Result<Vec<u8>> {
        Ok(self.gpu.stream.clone_dtoh(&self.u)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use effcal_kernels::precision::{Element, Real, bf16, f16};
    use effcal_kernels::stencil::{Block, Region, Stores, sweep7, sweep27};
    use std::io::Write;

    const HOST_MAIN: &str = r#"
/* stdin: n0, n1, n2 (padded), kind (7 or 27), storage (0 f64, 1 f32, 2 bf16, 3 f16), sweeps,
   then the field's bits; stdout: the field after the sweeps (interior i, j, k 1..n-2). */
int main(void) {
    long long h[6];
    if (fread(h, sizeof h, 1, stdin) != 1) return 2;
    long long n0 = h[0], n1 = h[1], n2 = h[2], kind = h[3], st = h[4], sweeps = h[5];
    long long size = st == 0 ? 8 : st == 1 ? 4 : 2, len = n0 * n1 * n2;
    char *u = malloc(len * size), *v = malloc(len * size);
    if (fread(u, size, len, stdin) != (size_t)len) return 3;
    memcpy(v, u, len * size);
    double c0 = kind == 7 ? 0.25 : 0.59375, c1 = kind == 7 ? 0.125 : 1.0 / 64.0;
    blockDim.x = 256; gridDim.x = (n2 - 2 + 255) / 256; gridDim.y = n1 - 2; gridDim.z = n0 - 2;
    for (long long t = 0; t < sweeps; ++t) {
        for (blockIdx.z = 0; blockIdx.z < gridDim.z; ++blockIdx.z)
        for (blockIdx.y = 0; blockIdx.y < gridDim.y; ++blockIdx.y)
        for (blockIdx.x = 0; blockIdx.x < gridDim.x; ++blockIdx.x)
        for (threadIdx.x = 0; threadIdx.x < blockDim.x; ++threadIdx.x) {
#define ARGS(T) (const T *)u, (T *)v, n1, n2, 1, 1, 1, n2 - 2
            if (kind == 7) {
                if (st == 0) seven_f64(ARGS(double), c0, c1);
                if (st == 1) seven_f32(ARGS(float), (float)c0, (float)c1);
                if (st == 2) seven_bf16(ARGS(unsigned short), (float)c0, (float)c1);
                if (st == 3) seven_f16(ARGS(unsigned short), (float)c0, (float)c1);
            } else {
                if (st == 0) twentyseven_f64(ARGS(double), c0, c1);
                if (st == 1) twentyseven_f32(ARGS(float), (float)c0, (float)c1);
                if (st == 2) twentyseven_bf16(ARGS(unsigned short), (float)c0, (float)c1);
                if (st == 3) twentyseven_f16(ARGS(unsigned short), (float)c0, (float)c1);
            }
        }
        char *w = u; u = v; v = w;
    }
    fwrite(u, size, len, stdout);
    return 0;
}
"#;

    fn bits<T: Copy>(v: &[T]) -> Vec<u8> {
        // SAFETY: the element types here are plain bits (f64, f32, bf16, f16).
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }.to_vec()
    }

    /// `sweeps` sweeps of `kind` on the CPU (effcal-kernels) and by the CUDA C run on the
    /// host; the fields' bits.
    fn both<T: Element + Send>(exe: &std::path::Path, kind: usize, storage: i64, n: [usize; 3], sweeps: usize) -> (Vec<u8>, Vec<u8>)
    where
        T::Acc: Real,
    {
        let mut u = Block::<T>::zeros(n);
        for (x, v) in u.data.iter_mut().enumerate() {
            *v = T::from_f64(((x as f64) * 0.618).sin(), effcal_kernels::precision::Overflow::Saturate);
        }
        let start = bits(&u.data);
        let mut v = u.clone();
        let r = Region { i: 1..n[0] + 1, j: 1..n[1] + 1, k: 1..n[2] + 1 };
        let (c0, c1) = if kind == 7 { (0.25, 0.125) } else { (0.59375, 1.0 / 64.0) };
        let (c0, c1) = (T::Acc::from_f64(c0), T::Acc::from_f64(c1));
        for _ in 0..sweeps {
            if kind == 7 { sweep7(&u, &mut v, &r, c0, c1, Stores::Normal) } else { sweep27(&u, &mut v, &r, c0, c1, Stores::Normal) }
            std::mem::swap(&mut u, &mut v);
        }
        let padded = n.map(|x| x + 2);
        let mut input: Vec<u8> = [padded[0] as i64, padded[1] as i64, padded[2] as i64, kind as i64, storage, sweeps as i64].iter().flat_map(|v| v.to_ne_bytes()).collect();
        input.extend(&start);
        let mut child = std::process::Command::new(exe).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "the host run of the sweeps");
        (bits(&u.data), out.stdout)
    }

    /// The sweeps' CUDA C, run as C on the host, gives effcal-kernels' fields bit for bit:
    /// both kinds, every storage, a grid with a k extent that is not a multiple of the
    /// block, three sweeps (so a wrong neighbour or order shows).
    #[test]
    fn the_sweep_kernels_give_the_cpus_bits() {
        let dir = std::env::temp_dir().join(format!("effcal-stencil-kernels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, exe) = (dir.join("stencil.c"), dir.join("stencil"));
        std::fs::write(&c, format!("{}{HOST_MAIN}", crate::kernels::as_host_c(&source()))).unwrap();
        if !crate::kernels::build_host_c(&c, &exe) {
            return;
        }
        let n = [5, 7, 300];
        for kind in [7, 27] {
            let cases = [both::<f64>(&exe, kind, 0, n, 3), both::<f32>(&exe, kind, 1, n, 3), both::<bf16>(&exe, kind, 2, n, 3), both::<f16>(&exe, kind, 3, n, 3)];
            for (s, (cpu, gpu)) in cases.iter().enumerate() {
                assert_eq!(cpu.len(), gpu.len());
                let differ = cpu.iter().zip(gpu).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{kind}-point, storage {s}: {differ} bytes differ");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The halo's boxes as 2D copies cover exactly their points, in the halo's order (i,
    /// then j, then k).
    #[test]
    fn halo_boxes_are_even_rows() {
        let padded = [6, 5, 7];
        let n = padded.map(|x| x - 2);
        let at = |i: usize, j: usize, k: usize| (i * padded[1] + j) * padded[2] + k;
        for d in 0..3 {
            for side in 0..2 {
                for ghost in [false, true] {
                    // The halo's face (harness/src/bench/stencil/halo.rs): dims before d whole,
                    // after d the interior.
                    let b: [Range<usize>; 3] = std::array::from_fn(|e| {
                        if e == d {
                            let x = match (side, ghost) {
                                (0, false) => 1,
                                (1, false) => n[d],
                                (0, true) => 0,
                                _ => n[d] + 1,
                            };
                            x..x + 1
                        } else if e < d {
                            0..padded[e]
                        } else {
                            1..n[e] + 1
                        }
                    });
                    let (first, rows, cols, stride) = box_rows(padded, &b).expect("faces are even");
                    let got: Vec<usize> = (0..rows).flat_map(|r| (0..cols).map(move |c| first + r * stride + c)).collect();
                    let mut want = Vec::new();
                    for i in b[0].clone() {
                        for j in b[1].clone() {
                            want.extend(b[2].clone().map(|k| at(i, j, k)));
                        }
                    }
                    assert_eq!(got, want, "face d={d} side={side} ghost={ghost}");
                }
            }
        }
        assert_eq!(box_rows(padded, &[1..3, 1..4, 0..7]), None, "uneven rows are refused");
    }

    /// Where NVRTC is at hand, the sweeps compile for Hopper without FMA contraction.
    #[test]
    fn the_stencil_source_compiles_where_nvrtc_is_present() {
        if std::env::var_os("EFFCAL_NVRTC_TEST").is_none() {
            eprintln!("skipped: set EFFCAL_NVRTC_TEST=1 with libnvrtc.so.13 on LD_LIBRARY_PATH to compile the CUDA source");
            return;
        }
        let ptx = crate::kernels::compile_source(&source(), (9, 0), &OPTIONS).expect("the sweeps' CUDA source compiles");
        let text = ptx.to_src();
        for sweep in [Sweep::Seven, Sweep::TwentySeven] {
            for st in [Storage::F64, Storage::F32, Storage::Bf16, Storage::F16] {
                let k = sweep.kernel(st).expect("a field storage");
                assert!(text.contains(&format!(".entry {k}(")), "{k} is in the PTX");
            }
        }
        assert!(text.contains(".entry copy_bytes("), "copy_bytes is in the PTX");
        assert!(!text.contains("fma.rn.f32") && !text.contains("fma.rn.f64"), "no FMA contraction");
    }
}
