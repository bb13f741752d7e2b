//! The device side of HPL-MxP on a GPU: one rank's blocks of the matrix in device memory
//! (row-major, in the accumulation type f32, or f64 for the FP64 baseline) and the
//! operations the harness's distributed LU and refinement call on them, each a thin call:
//! cuBLAS TRSM for the L and U panels, rounding to the storage format by an NVRTC kernel,
//! the trailing update by cuBLAS's GemmEx (BF16/FP16 on the tensor cores with FP32
//! accumulation, FP32 and FP64 as IEEE FMAs), the preconditioner's products by a kernel
//! (f32 or f64 factors times an f64 vector, f64 sums), and the residual's f64 product by
//! DGEMV on a kept f64 copy. The diagonal blocks go to the host and back (the harness
//! factors them there with the CPU's code, so the factors are the same bits).
//!
//! cuBLAS is column-major: a row-major matrix read column-major is its transpose, so each
//! call below solves or multiplies the transposed problem (said at each call).

use crate::{Gpu, GpuError, Result};
use cudarc::cublas::sys::{self as blas, cublasDiagType_t as Diag, cublasFillMode_t as Fill, cublasOperation_t as Op, cublasSideMode_t as Side, cudaDataType as Dt};
use cudarc::driver::{CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};
use std::sync::Arc;
use crate::kernels::{BLOCK_2D, copy_2d, grid_2d};
use std::ffi::c_void;

/// effcal's CUDA C for the LU (no headers: NVRTC alone compiles it), after
/// [`crate::kernels::SHARED`]: [`source`].
pub const SOURCE: &str = r#"
PACK(pack_f32, float)
PACK(pack_f64, double)

#define ROUND(NAME, F)                                                                  \
extern "C" __global__ void NAME(const float *src, long long lds, unsigned short *dst,   \
                                long long rows, long long cols) {                      \
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;                     \
    if (c >= cols) return;                                                              \
    for (long long r = blockIdx.y; r < rows; r += gridDim.y)                            \
        dst[r * cols + c] = F(src[r * lds + c]);                                        \
}
ROUND(round_bf16, bf16_rn)
ROUND(round_f16, f16_rn)

// out[i] = sum_c a[i, c] * piece[c] in f64, i < rows, c < kb: one warp per row (the
// lanes read the row together), the lanes' sums added by shuffles.
#define PRODUCTS(NAME, T)                                                               \
extern "C" __global__ void NAME(const T *a, long long ld, long long rows, long long kb, \
                                const double *piece, double *out) {                    \
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;       \
    int lane = threadIdx.x & 31;                                                        \
    if (row >= rows) return;                                                            \
    const T *r = a + row * ld;                                                          \
    double s = 0.0;                                                                     \
    for (long long c = lane; c < kb; c += 32) s += (double)r[c] * piece[c];             \
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);          \
    if (lane == 0) out[row] = s;                                                        \
}
PRODUCTS(products_f32, float)
PRODUCTS(products_f64, double)
"#;

/// The whole CUDA C of the LU: the conversions and [`SOURCE`].
pub fn source() -> String {
    format!("{}{SOURCE}", crate::kernels::SHARED)
}

/// The kernels of [`SOURCE`] and their names.
pub const ENTRIES: [&str; 6] = ["pack_f32", "pack_f64", "round_bf16", "round_f16", "products_f32", "products_f64"];

/// What a panel is stored in on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    F64,
    F32,
    Bf16,
    F16,
}

impl Storage {
    /// The storage of a precision's fields and panels on the device: f64, f32, bf16, f16
    /// (None for the formats effcal's GPU LU and stencils do not hold).
    pub fn of(p: effcal_kernels::Precision) -> Option<Self> {
        use effcal_kernels::Precision as P;
        match p {
            P::F64 => Some(Self::F64),
            P::F32 => Some(Self::F32),
            P::Bf16 => Some(Self::Bf16),
            P::F16 => Some(Self::F16),
            _ => None,
        }
    }

    pub const fn bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
        }
    }

    fn data_type(self) -> Dt {
        match self {
            Self::F64 => Dt::CUDA_R_64F,
            Self::F32 => Dt::CUDA_R_32F,
            Self::Bf16 => Dt::CUDA_R_16BF,
            Self::F16 => Dt::CUDA_R_16F,
        }
    }

    /// The arithmetic of the trailing update, as the record names it.
    pub const fn arithmetic(self) -> &'static str {
        match self {
            Self::F64 => "f64 (cuBLAS GemmEx, FP64)",
            Self::F32 => "f32 (cuBLAS GemmEx, FP32 FMAs)",
            Self::Bf16 | Self::F16 => "tensor cores, f32 accumulation (cuBLAS GemmEx)",
        }
    }
}

/// The accumulation types the device matrix is held in.
pub trait Acc: DeviceRepr + ValidAsZeroBits + Copy + Default + Send + Sync + 'static {
    const STORAGE: Storage;
    /// The trailing update's α = −1, β = 1 in this type, as cuBLAS reads them.
    fn minus_one_one() -> [Self; 2];
}

impl Acc for f32 {
    const STORAGE: Storage = Storage::F32;
    fn minus_one_one() -> [Self; 2] {
        [-1.0, 1.0]
    }
}

impl Acc for f64 {
    const STORAGE: Storage = Storage::F64;
    fn minus_one_one() -> [Self; 2] {
        [-1.0, 1.0]
    }
}

/// A panel on the device: rows × cols, row-major and contiguous, in `storage`'s bits.
pub struct Panel {
    pub bytes: CudaSlice<u8>,
    pub rows: usize,
    pub cols: usize,
    pub storage: Storage,
}

fn blas_err(what: &'static str) -> impl Fn(blas::cublasStatus_t) -> GpuError {
    move |s| GpuError::Blas(format!("{what}: {s:?}"))
}

fn check(status: blas::cublasStatus_t, what: &'static str) -> Result<()> {
    match status {
        blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS => Ok(()),
        s => Err(blas_err(what)(s)),
    }
}

/// A cuBLAS TRSM on column-major views, op N: `side` (the factors on the left or right of
/// B), which triangle of the factors' buffer (kb × kb, ld kb) is read, unit diagonal or
/// not, B's m × n, its first element's offset in the matrix and its ld (the matrix's row
/// stride).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrsmCall {
    pub side: Side,
    pub uplo: Fill,
    pub diag: Diag,
    pub m: usize,
    pub n: usize,
    pub b_offset: usize,
    pub ldb: usize,
}

impl TrsmCall {
    /// The L panel: rows lr1.. (`rows`) of columns lc..lc + kb ← A·U⁻¹. Row-major X·U = A
    /// is column-major Uᵀ·Xᵀ = Aᵀ, and the factors' buffer read column-major holds Uᵀ in
    /// its lower triangle: a left solve, lower, non-unit.
    pub fn l_panel(ld: usize, lr1: usize, lc: usize, rows: usize, kb: usize) -> Self {
        TrsmCall { side: Side::CUBLAS_SIDE_LEFT, uplo: Fill::CUBLAS_FILL_MODE_LOWER, diag: Diag::CUBLAS_DIAG_NON_UNIT, m: kb, n: rows, b_offset: lr1 * ld + lc, ldb: ld }
    }

    /// The U panel: rows lr..lr + kb of columns lc1.. (`cols`) ← L⁻¹·A. Row-major L·Y = A
    /// is column-major Yᵀ·Lᵀ = Aᵀ, Lᵀ the unit upper triangle of the factors read
    /// column-major: a right solve, upper, unit.
    pub fn u_panel(ld: usize, lr: usize, lc1: usize, kb: usize, cols: usize) -> Self {
        TrsmCall { side: Side::CUBLAS_SIDE_RIGHT, uplo: Fill::CUBLAS_FILL_MODE_UPPER, diag: Diag::CUBLAS_DIAG_UNIT, m: cols, n: kb, b_offset: lr * ld + lc1, ldb: ld }
    }

    /// The order of the triangular factor.
    pub fn k(&self) -> usize {
        if self.side == Side::CUBLAS_SIDE_LEFT { self.m } else { self.n }
    }
}

/// A cuBLAS GEMM `C = α·A·B + β·C` on column-major views, op N on both: the trailing
/// update. Offsets are in elements: A's into the U panel, C's into the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmCall {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_offset: usize,
    pub lda: usize,
    pub ldb: usize,
    pub c_offset: usize,
    pub ldc: usize,
}

impl GemmCall {
    /// A(r0.., c0 + uc0..c0 + uc1) −= L·U(:, uc0..uc1), L rows × kb (contiguous), U kb ×
    /// u_cols (contiguous). Row-major C = C − L·U is column-major Cᵀ = Cᵀ − Uᵀ·Lᵀ: the U
    /// panel read column-major is Uᵀ (ld u_cols; its rows uc0.. start uc0 elements in), the
    /// L panel is Lᵀ (ld kb).
    pub fn update(ld: usize, (r0, c0): (usize, usize), rows: usize, kb: usize, u_cols: usize, (uc0, uc1): (usize, usize)) -> Self {
        GemmCall { m: uc1 - uc0, n: rows, k: kb, a_offset: uc0, lda: u_cols, ldb: kb, c_offset: r0 * ld + c0 + uc0, ldc: ld }
    }
}

/// One rank's blocks on its GPU, with the scratch the operations need.
pub struct DeviceLu<'g, A: Acc> {
    gpu: &'g Gpu,
    pack: CudaFunction,
    round_bf16: CudaFunction,
    round_f16: CudaFunction,
    products: CudaFunction,
    /// The local matrix, rows × ld, row-major.
    pub a: CudaSlice<A>,
    pub rows: usize,
    pub ld: usize,
    /// A diagonal block (nb × nb) on its way to or from the host, and the factors the
    /// panel solves read.
    block: CudaSlice<A>,
    /// An f64 copy of the matrix for the residual's product (kept: 8 bytes an element).
    a64: Option<CudaSlice<f64>>,
    /// The diagonal block's way to the host while the stream runs the trailing update: a
    /// second stream, its own staging block (raw address: no cudarc event tracking, the
    /// order is the mark's), and the mark: an event on the main stream after which the
    /// block is final ([`Self::mark`]).
    side: Arc<CudaStream>,
    _staging: CudaSlice<A>,
    staging_ptr: u64,
    mark: Option<CudaEvent>,
}

impl<'g, A: Acc> DeviceLu<'g, A> {
    /// Allocates the rows × cols local matrix (zeros) and an nb × nb block; compiles the
    /// kernels. `keep_f64`: room for an f64 copy of the matrix too.
    pub fn new(gpu: &'g Gpu, rows: usize, cols: usize, nb: usize, keep_f64: bool) -> Result<Self> {
        let module = gpu.ctx.load_module(crate::kernels::compile_source(&source(), gpu.info.compute_capability, &[])?)?;
        let f64 = A::STORAGE == Storage::F64;
        let s = &gpu.stream;
        let staging = s.alloc_zeros::<A>((nb * nb).max(1))?;
        let (staging_ptr, sync) = staging.device_ptr(s);
        drop(sync);
        Ok(DeviceLu {
            gpu,
            pack: module.load_function(if f64 { "pack_f64" } else { "pack_f32" })?,
            round_bf16: module.load_function("round_bf16")?,
            round_f16: module.load_function("round_f16")?,
            products: module.load_function(if f64 { "products_f64" } else { "products_f32" })?,
            a: s.alloc_zeros::<A>((rows * cols).max(1))?,
            rows,
            ld: cols,
            block: s.alloc_zeros::<A>((nb * nb).max(1))?,
            a64: if keep_f64 { Some(s.alloc_zeros::<f64>((rows * cols).max(1))?) } else { None },
            side: gpu.ctx.new_stream()?,
            _staging: staging,
            staging_ptr,
            mark: None,
        })
    }

    /// Bytes [`DeviceLu::new`] allocates for a rows × cols matrix (and the f64 copy), so a
    /// caller can size N to the memory: the matrix, the factors' block and the staging
    /// block (the panels a step rounds come on top: rows + cols by nb elements of storage).
    pub fn bytes_needed(rows: usize, cols: usize, nb: usize, keep_f64: bool) -> u64 {
        let elems = (rows * cols) as u64;
        elems * size_of::<A>() as u64 + (2 * nb * nb * size_of::<A>()) as u64 + if keep_f64 { elems * 8 } else { 0 }
    }

    /// Rows r0.. of the matrix (whole rows of `ld`) from `host`.
    pub fn upload_rows(&mut self, r0: usize, host: &[A]) -> Result<()> {
        if host.is_empty() {
            return Ok(());
        }
        let mut dst = self.a.slice_mut(r0 * self.ld..r0 * self.ld + host.len());
        Ok(self.gpu.stream.memcpy_htod(host, &mut dst)?)
    }

    /// Rows r0.. of the f64 copy from `host`.
    pub fn upload_f64_rows(&mut self, r0: usize, host: &[f64]) -> Result<()> {
        let ld = self.ld;
        let a64 = self.a64.as_mut().ok_or_else(|| GpuError::Unsupported("no f64 copy was allocated".into()))?;
        if host.is_empty() {
            return Ok(());
        }
        let mut dst = a64.slice_mut(r0 * ld..r0 * ld + host.len());
        Ok(self.gpu.stream.memcpy_htod(host, &mut dst)?)
    }

    /// Queues dst ← src for a rows × cols block (row strides given), by the pack kernel, on
    /// the main stream.
    fn pack_launch(&self, src: u64, lds: usize, dst: u64, ldd: usize, rows: usize, cols: usize) -> Result<()> {
        copy_2d(&self.gpu.stream, &self.pack, src, lds, dst, ldd, rows, cols)
    }



    /// Marks the main stream's queued work: the next [`Self::download_block`] waits for
    /// that work only, not for what is queued after the mark (the rest of a step's trailing
    /// update), and copies on the second stream while the main one runs.
    pub fn mark(&mut self) -> Result<()> {
        self.mark = Some(self.gpu.stream.record_event(None)?);
        Ok(())
    }

    fn ptr_a(&self, r: usize, c: usize) -> u64 {
        let (p, _sync) = self.a.device_ptr(&self.gpu.stream);
        p + ((r * self.ld + c) * size_of::<A>()) as u64
    }

    fn ptr_block(&self) -> u64 {
        let (p, _sync) = self.block.device_ptr(&self.gpu.stream);
        p
    }

    /// The kb × kb block at (r0, c0), row-major, on the host: after the work queued up to
    /// the mark where there is one (the copy then runs on the second stream), else after
    /// all the queued work.
    pub fn download_block(&mut self, r0: usize, c0: usize, kb: usize) -> Result<Vec<A>> {
        let mut host = vec![A::default(); kb * kb];
        match self.mark.take() {
            Some(event) => {
                self.side.wait(&event)?;
                copy_2d(&self.side, &self.pack, self.ptr_a(r0, c0), self.ld, self.staging_ptr, kb, kb, kb)?;
                // SAFETY: the staging block holds kb × kb elements, written by the pack just
                // queued on the same stream; the host buffer has room for them.
                unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut host[..], self.staging_ptr, self.side.cu_stream())? };
                self.side.synchronize()?;
            }
            None => {
                self.pack_launch(self.ptr_a(r0, c0), self.ld, self.ptr_block(), kb, kb, kb)?;
                self.gpu.stream.memcpy_dtoh(&self.block.slice(0..kb * kb), &mut host)?;
            }
        }
        Ok(host)
    }

    /// The kb × kb block `host` into the scratch block (the panels' triangular factors).
    pub fn upload_factors(&mut self, host: &[A]) -> Result<()> {
        let mut dst = self.block.slice_mut(0..host.len());
        Ok(self.gpu.stream.memcpy_htod(host, &mut dst)?)
    }

    /// The scratch block (uploaded by [`Self::upload_factors`]) into the matrix at (r0, c0).
    pub fn store_factors(&mut self, r0: usize, c0: usize, kb: usize) -> Result<()> {
        self.pack_launch(self.ptr_block(), kb, self.ptr_a(r0, c0), self.ld, kb, kb)
    }

    fn trsm(&self, c: TrsmCall) -> Result<()> {
        if c.m == 0 || c.n == 0 {
            return Ok(());
        }
        let f = self.ptr_block();
        let b = self.ptr_a(0, 0) + (c.b_offset * size_of::<A>()) as u64;
        let (m, n, kb, ldb) = (c.m as i64, c.n as i64, c.k() as i64, c.ldb as i64);
        // SAFETY: the factors (kb × kb, ld kb) and B (m × n column-major at ldb) are live
        // device memory on the handle's stream; α is a host scalar.
        let status = unsafe {
            if A::STORAGE == Storage::F64 {
                let one = 1f64;
                blas::cublasDtrsm_v2_64(self.gpu.blas, c.side, c.uplo, Op::CUBLAS_OP_N, c.diag, m, n, &one, f as *const f64, kb, b as *mut f64, ldb)
            } else {
                let one = 1f32;
                blas::cublasStrsm_v2_64(self.gpu.blas, c.side, c.uplo, Op::CUBLAS_OP_N, c.diag, m, n, &one, f as *const f32, kb, b as *mut f32, ldb)
            }
        };
        check(status, "cublasXtrsm")
    }

    /// The L panel ([`TrsmCall::l_panel`]) with the uploaded factors.
    pub fn solve_l(&mut self, lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()> {
        self.trsm(TrsmCall::l_panel(self.ld, lr1, lc, rows, kb))
    }

    /// The U panel ([`TrsmCall::u_panel`]) with the uploaded factors.
    pub fn solve_u(&mut self, lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()> {
        self.trsm(TrsmCall::u_panel(self.ld, lr, lc1, kb, cols))
    }

    /// The rows × cols block at (r0, c0) rounded to `storage` (saturating, nearest even;
    /// the accumulation type itself: a copy) as a contiguous panel.
    pub fn round(&mut self, r0: usize, c0: usize, rows: usize, cols: usize, storage: Storage) -> Result<Panel> {
        let mut bytes = self.gpu.stream.alloc_zeros::<u8>((rows * cols * storage.bytes()).max(1))?;
        if rows > 0 && cols > 0 {
            let (dst, _sync) = bytes.device_ptr_mut(&self.gpu.stream);
            let src = self.ptr_a(r0, c0);
            match storage {
                s if s == A::STORAGE => self.pack_launch(src, self.ld, dst, cols, rows, cols)?,
                Storage::Bf16 | Storage::F16 if A::STORAGE == Storage::F32 => {
                    let f = if storage == Storage::Bf16 { &self.round_bf16 } else { &self.round_f16 };
                    let (lds, r, c) = (self.ld as i64, rows as i64, cols as i64);
                    // SAFETY: round_X(const float*, long long, unsigned short*, long long,
                    // long long): src rows × cols at stride lds, dst rows × cols contiguous.
                    unsafe { self.gpu.stream.launch_builder(f).arg(&src).arg(&lds).arg(&dst).arg(&r).arg(&c).launch(grid_2d(rows, cols))? };
                }
                s => return Err(GpuError::Unsupported(format!("panels of {s:?} from a matrix of {:?}", A::STORAGE))),
            }
        }
        Ok(Panel { bytes, rows, cols, storage })
    }

    /// A panel from its bits on the host (a broadcast's).
    pub fn panel_from_host(&mut self, bits: &[u8], rows: usize, cols: usize, storage: Storage) -> Result<Panel> {
        let mut bytes = self.gpu.stream.alloc_zeros::<u8>(bits.len().max(1))?;
        if !bits.is_empty() {
            let mut dst = bytes.slice_mut(0..bits.len());
            self.gpu.stream.memcpy_htod(bits, &mut dst)?;
        }
        Ok(Panel { bytes, rows, cols, storage })
    }

    /// A panel's bits on the host (for a broadcast; waits for the queued work).
    pub fn panel_to_host(&mut self, p: &Panel) -> Result<Vec<u8>> {
        let len = p.rows * p.cols * p.storage.bytes();
        let mut host = vec![0u8; len];
        if len > 0 {
            self.gpu.stream.memcpy_dtoh(&p.bytes.slice(0..len), &mut host)?;
        }
        Ok(host)
    }

    /// The trailing update of one column chunk ([`GemmCall::update`]).
    pub fn update(&mut self, at: (usize, usize), l: &Panel, u: &Panel, chunk: (usize, usize)) -> Result<()> {
        let g = GemmCall::update(self.ld, at, l.rows, l.cols, u.cols, chunk);
        if g.m == 0 || g.n == 0 || g.k == 0 {
            return Ok(());
        }
        let s = &self.gpu.stream;
        let (lp, sync_l) = l.bytes.device_ptr(s);
        let (up, sync_u) = u.bytes.device_ptr(s);
        let a = up + (g.a_offset * u.storage.bytes()) as u64;
        let c = self.ptr_a(0, 0) + (g.c_offset * size_of::<A>()) as u64;
        let [alpha, beta] = A::minus_one_one();
        let compute = if A::STORAGE == Storage::F64 { blas::cublasComputeType_t::CUBLAS_COMPUTE_64F } else { blas::cublasComputeType_t::CUBLAS_COMPUTE_32F };
        let (dt, ct) = (l.storage.data_type(), A::STORAGE.data_type());
        // SAFETY: the panels and C are live device memory of the sizes the call describes,
        // on the handle's stream; α and β are host scalars of C's type (the compute type's).
        let status = unsafe {
            blas::cublasGemmEx_64(
                self.gpu.blas,
                Op::CUBLAS_OP_N,
                Op::CUBLAS_OP_N,
                g.m as i64,
                g.n as i64,
                g.k as i64,
                &alpha as *const A as *const c_void,
                a as *const c_void,
                dt,
                g.lda as i64,
                lp as *const c_void,
                dt,
                g.ldb as i64,
                &beta as *const A as *const c_void,
                c as *mut c_void,
                ct,
                g.ldc as i64,
                compute,
                blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        };
        drop((sync_l, sync_u));
        check(status, "cublasGemmEx (trailing update)")
    }

    /// Σ_c A(r0 + i, lc + c)·piece[c] in f64 for `rows` rows (the preconditioner's products).
    pub fn products(&mut self, r0: usize, lc: usize, piece: &[f64], rows: usize) -> Result<Vec<f64>> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let s = &self.gpu.stream;
        let piece_d = s.clone_htod(piece)?;
        let mut out = s.alloc_zeros::<f64>(rows)?;
        let a = self.ptr_a(r0, lc);
        let (ld, n, kb) = (self.ld as i64, rows as i64, piece.len() as i64);
        let warps = BLOCK_2D as usize / 32;
        let cfg = LaunchConfig { grid_dim: (rows.div_ceil(warps) as u32, 1, 1), block_dim: (BLOCK_2D, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: products_T(const T*, long long, long long, long long, const double*,
        // double*): rows × kb of the matrix at stride ld, kb piece values, rows outputs.
        unsafe { s.launch_builder(&self.products).arg(&a).arg(&ld).arg(&n).arg(&kb).arg(&piece_d).arg(&mut out).launch(cfg)? };
        Ok(s.clone_dtoh(&out)?)
    }

    /// The kept f64 copy times `xl` (one value per local column): one f64 sum per local
    /// row, by DGEMV. Row-major A·x is column-major (Aᵀ)ᵀ·x: op T on the cols × rows view.
    pub fn f64_product(&mut self, xl: &[f64]) -> Result<Vec<f64>> {
        let s = &self.gpu.stream;
        let a64 = self.a64.as_ref().ok_or_else(|| GpuError::Unsupported("no f64 copy was allocated".into()))?;
        if self.rows == 0 {
            return Ok(Vec::new());
        }
        if self.ld == 0 {
            return Ok(vec![0.0; self.rows]);
        }
        let x = s.clone_htod(xl)?;
        let mut y = s.alloc_zeros::<f64>(self.rows)?;
        let (ap, sync_a) = a64.device_ptr(s);
        let (xp, sync_x) = x.device_ptr(s);
        let (yp, sync_y) = y.device_ptr_mut(s);
        let (one, zero) = (1f64, 0f64);
        // SAFETY: A (ld × rows column-major), x (ld values) and y (rows values) are live
        // device memory on the handle's stream; α, β host scalars.
        let status = unsafe { blas::cublasDgemv_v2_64(self.gpu.blas, Op::CUBLAS_OP_T, self.ld as i64, self.rows as i64, &one, ap as *const f64, self.ld as i64, xp as *const f64, 1, &zero, yp as *mut f64, 1) };
        drop((sync_a, sync_x, sync_y));
        check(status, "cublasDgemv (residual)")?;
        Ok(s.clone_dtoh(&y)?)
    }

    /// Waits for the queued work.
    pub fn synchronize(&self) -> Result<()> {
        self.gpu.synchronize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use effcal_kernels::hpl_mxp::lu::{factor_block, rm_mut, rm_ref, solve_l_panel, solve_u_panel};

    /// cuBLAS's TRSM on the host (column-major, op N, α = 1): the factors f (k × k, ld k),
    /// B in `b` at the call's offset and ld.
    fn trsm_on_host(c: &TrsmCall, f: &[f64], b: &mut [f64]) {
        let k = c.k();
        let fa = |i: usize, j: usize| f[i + j * k];
        let unit = c.diag == Diag::CUBLAS_DIAG_UNIT;
        let at = |i: usize, j: usize| c.b_offset + i + j * c.ldb;
        let lower = c.uplo == Fill::CUBLAS_FILL_MODE_LOWER;
        if c.side == Side::CUBLAS_SIDE_LEFT {
            // F·X = B, column by column.
            for j in 0..c.n {
                let order: Vec<usize> = if lower { (0..c.m).collect() } else { (0..c.m).rev().collect() };
                for &i in &order {
                    let s: f64 = (0..c.m).filter(|&p| if lower { p < i } else { p > i }).map(|p| fa(i, p) * b[at(p, j)]).sum();
                    b[at(i, j)] = (b[at(i, j)] - s) / if unit { 1.0 } else { fa(i, i) };
                }
            }
        } else {
            // X·F = B, row by row.
            for i in 0..c.m {
                let order: Vec<usize> = if lower { (0..c.n).rev().collect() } else { (0..c.n).collect() };
                for &j in &order {
                    let s: f64 = (0..c.n).filter(|&p| if lower { p > j } else { p < j }).map(|p| b[at(i, p)] * fa(p, j)).sum();
                    b[at(i, j)] = (b[at(i, j)] - s) / if unit { 1.0 } else { fa(j, j) };
                }
            }
        }
    }

    /// cuBLAS's GEMM on the host: C = −A·B + C (op N, N), column-major at the call's offsets.
    fn update_on_host(g: &GemmCall, a: &[f64], b: &[f64], c: &mut [f64]) {
        for j in 0..g.n {
            for i in 0..g.m {
                let s: f64 = (0..g.k).map(|p| a[g.a_offset + i + p * g.lda] * b[p + j * g.ldb]).sum();
                c[g.c_offset + i + j * g.ldc] -= s;
            }
        }
    }

    fn values(len: usize, seed: f64) -> Vec<f64> {
        (0..len).map(|x| ((x as f64 + 1.0) * seed).sin()).collect()
    }

    /// A factored kb × kb block (diagonally dominant, so LU without pivoting is stable).
    fn factors(kb: usize) -> Vec<f64> {
        let mut d = values(kb * kb, 0.61);
        for i in 0..kb {
            d[i * kb + i] += kb as f64;
        }
        factor_block(rm_mut(&mut d, kb, kb, kb), 0).expect("dominant");
        d
    }

    const HOST_MAIN: &str = r#"
#define LAUNCH(CALL, ROWS, COLS) do {                                                   \
    blockDim.x = 256; gridDim.x = ((COLS) + 255) / 256; gridDim.y = (ROWS) < 65535 ? (ROWS) : 65535; \
    if (gridDim.y < 1) gridDim.y = 1;                                                   \
    for (blockIdx.y = 0; blockIdx.y < gridDim.y; ++blockIdx.y)                          \
        for (blockIdx.x = 0; blockIdx.x < gridDim.x; ++blockIdx.x)                      \
            for (threadIdx.x = 0; threadIdx.x < blockDim.x; ++threadIdx.x) CALL;        \
} while (0)
/* stdin: rows, cols, lds (long long), then rows × lds floats; stdout: the bf16 panel, the
   f16 panel (rows × cols u16 each), then the packed floats (rows × cols). */
int main(void) {
    long long hd[3];
    if (fread(hd, sizeof hd, 1, stdin) != 1) return 2;
    long long rows = hd[0], cols = hd[1], lds = hd[2];
    float *src = malloc(rows * lds * 4), *packed = malloc(rows * cols * 4);
    unsigned short *b = malloc(rows * cols * 2), *h = malloc(rows * cols * 2);
    if (fread(src, 4, rows * lds, stdin) != (size_t)(rows * lds)) return 3;
    LAUNCH(round_bf16(src, lds, b, rows, cols), rows, cols);
    LAUNCH(round_f16(src, lds, h, rows, cols), rows, cols);
    LAUNCH(pack_f32(src, lds, packed, cols, rows, cols), rows, cols);
    fwrite(b, 2, rows * cols, stdout);
    fwrite(h, 2, rows * cols, stdout);
    fwrite(packed, 4, rows * cols, stdout);
    return 0;
}
"#;

    /// The rounding and packing kernels, compiled as C and run on the host, give the CPU's
    /// panels bit for bit (effcal-kernels' saturating, nearest-even rounding) over a sweep
    /// of f32 bit patterns: normals, subnormals, the edges of both formats' ranges, ±0, ±∞
    /// and NaN (NaN only as NaN).
    #[test]
    fn the_rounding_kernels_give_the_cpus_bits() {
        use effcal_kernels::precision::{Element, Overflow, bf16, f16};
        use std::io::Write;
        let source = crate::kernels::as_host_c(&source());
        let dir = std::env::temp_dir().join(format!("effcal-lu-kernels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, exe) = (dir.join("lu.c"), dir.join("lu"));
        std::fs::write(&c, format!("{source}{HOST_MAIN}")).unwrap();
        if !crate::kernels::build_host_c(&c, &exe) {
            return;
        }
        // Bit patterns: a stride through all of them, and the edges.
        let mut bits: Vec<u32> = (0..1u64 << 20).map(|i| (i * 4099 + (i >> 7)) as u32).collect();
        for x in [0.0f32, -0.0, 1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e5, -1e5, 6.0e-8, 3.0e-5, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            bits.push(x.to_bits());
        }
        bits.extend([0x7f7f_0000, 0x7f7f_7fff, 0x7f7f_8000, 0x7f7f_8001, 0x7f7f_ffff, 0xff7f_8000, 0x0000_8000, 0x0000_7fff, 0x8000_0001]);
        let (cols, lds) = (1000usize, 1003usize);
        let rows = bits.len().div_ceil(cols);
        let mut src = vec![0f32; rows * lds];
        for (i, &b) in bits.iter().enumerate() {
            src[(i / cols) * lds + i % cols] = f32::from_bits(b);
        }
        let mut input: Vec<u8> = [rows as i64, cols as i64, lds as i64].iter().flat_map(|v| v.to_ne_bytes()).collect();
        input.extend(src.iter().flat_map(|v| v.to_ne_bytes()));
        let mut child = std::process::Command::new(&exe).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "the host run of the kernels");
        let n = rows * cols;
        let u16s = |b: &[u8]| b.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect::<Vec<_>>();
        let (gb, gh) = (u16s(&out.stdout[..2 * n]), u16s(&out.stdout[2 * n..4 * n]));
        let packed: Vec<u32> = out.stdout[4 * n..].chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        let dense: Vec<f32> = (0..n).map(|i| src[(i / cols) * lds + i % cols]).collect();
        let mut wb = vec![bf16::default(); n];
        let mut wh = vec![f16::default(); n];
        bf16::from_acc_slice(&dense, &mut wb, Overflow::Saturate);
        f16::from_acc_slice(&dense, &mut wh, Overflow::Saturate);
        for i in 0..n {
            let x = dense[i];
            assert_eq!(packed[i], x.to_bits(), "pack at {i}");
            if x.is_nan() {
                assert!(bf16::from_bits(gb[i]).is_nan() && f16::from_bits(gh[i]).is_nan(), "NaN stays NaN");
                continue;
            }
            assert_eq!(gb[i], wb[i].to_bits(), "bf16 of {x:e} ({:#010x})", x.to_bits());
            assert_eq!(gh[i], wh[i].to_bits(), "f16 of {x:e} ({:#010x})", x.to_bits());
        }
    }

    #[test]
    fn the_panel_solves_posed_to_cublas_are_the_cpus() {
        let (rows, ld, kb) = (11, 13, 4);
        let f = factors(kb);
        // The L panel: rows 3.. (7 of them) of columns 5..9.
        let mat = values(rows * ld, 0.37);
        let mut want = mat.clone();
        solve_l_panel(rm_ref(&f, kb, kb, kb), rm_mut(&mut want[3 * ld + 5..], 7, kb, ld));
        let mut got = mat.clone();
        trsm_on_host(&TrsmCall::l_panel(ld, 3, 5, 7, kb), &f, &mut got);
        assert!(want.iter().zip(&got).all(|(w, g)| (w - g).abs() < 1e-12), "L panel: {want:?} vs {got:?}");
        // The U panel: rows 2..6 of columns 4..13.
        let mut want = mat.clone();
        solve_u_panel(rm_ref(&f, kb, kb, kb), rm_mut(&mut want[2 * ld + 4..], kb, 9, ld));
        let mut got = mat;
        trsm_on_host(&TrsmCall::u_panel(ld, 2, 4, kb, 9), &f, &mut got);
        assert!(want.iter().zip(&got).all(|(w, g)| (w - g).abs() < 1e-12), "U panel: {want:?} vs {got:?}");
    }

    #[test]
    fn the_update_posed_to_cublas_is_a_minus_l_times_u() {
        let (ld, kb, rows, u_cols) = (17, 3, 6, 9);
        let l = values(rows * kb, 0.29);
        let u = values(kb * u_cols, 0.83);
        let mat = values(10 * ld, 0.41);
        for (at, chunk) in [((2, 5), (0, 9)), ((4, 1), (3, 7)), ((0, 0), (8, 9))] {
            let mut want = mat.clone();
            for i in 0..rows {
                for j in chunk.0..chunk.1 {
                    let s: f64 = (0..kb).map(|p| l[i * kb + p] * u[p * u_cols + j]).sum();
                    want[(at.0 + i) * ld + at.1 + j] -= s;
                }
            }
            let mut got = mat.clone();
            update_on_host(&GemmCall::update(ld, at, rows, kb, u_cols, chunk), &u, &l, &mut got);
            assert!(want.iter().zip(&got).all(|(w, g)| (w - g).abs() < 1e-12), "update at {at:?}, chunk {chunk:?}");
        }
    }

    /// Where NVRTC is at hand (see kernels.rs's test), the LU's CUDA C compiles for Hopper
    /// and every kernel the device code loads is in the PTX.
    #[test]
    fn the_lu_source_compiles_where_nvrtc_is_present() {
        if std::env::var_os("EFFCAL_NVRTC_TEST").is_none() {
            eprintln!("skipped: set EFFCAL_NVRTC_TEST=1 with libnvrtc.so.13 on LD_LIBRARY_PATH to compile the CUDA source");
            return;
        }
        let ptx = crate::kernels::compile_source(&super::source(), (9, 0), &[]).expect("the LU's CUDA source compiles");
        let text = ptx.to_src();
        for entry in super::ENTRIES {
            assert!(text.contains(&format!(".entry {entry}(")), "{entry} is in the PTX");
        }
        assert!(text.contains("cvt.rn.f16.f32"), "f16 rounding is the PTX conversion");
        assert!(text.contains("shfl.sync.down"), "the products add the lanes by shuffles");
    }
}
