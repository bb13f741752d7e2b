//! The device side of HPL-MxP on a GPU: one rank's blocks of the matrix in device memory
//! (row-major, in the accumulation type f32, or f64 for the FP64 baseline) and the
//! operations the harness's distributed LU and refinement call on them, each a thin call:
//! cuBLAS TRSM for the L and U panels, rounding to the storage format by an NVRTC kernel,
//! the trailing update by cuBLAS's GemmEx (BF16/FP16 on the tensor cores with FP32
//! accumulation, FP32 and FP64 as IEEE FMAs) or, for the FP8 what-if (E4M3 panels with a
//! per-panel scale), by cuBLASLt, which alone has FP8 kernels; the preconditioner's products by a kernel
//! (f32 or f64 factors times an f64 vector, f64 sums), and the residual's f64 product by
//! DGEMV on a kept f64 copy. The diagonal blocks go to the host and back: factored there
//! by the harness with the CPU's code (the same bits), or on the device on their way
//! ([`DeviceLu::download_factored_block`]: the CPU's recursion, its leaves by a kernel
//! with the CPU's arithmetic, the rest by cuBLAS TRSM and GEMM).
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

// f32 -> OCP E4M3 (bias 7, largest 448, NaN S.1111.111, no infinities), nearest even,
// saturating at 448: effcal-kernels' encode_f32 for this layout, step for step (the normal
// range rounded in the integers, the subnormal one by an f32 add whose ulp is E4M3's
// subnormal quantum).
__device__ unsigned char e4m3_rn(float x) {
    unsigned int bits = __float_as_uint(x);
    unsigned int sign = (bits >> 31) << 7, abs = bits & 0x7fffffffu;
    unsigned int normal = (abs - (120u << 23) + 0x7ffffu + ((abs >> 20) & 1u)) >> 20;
    float magic = __uint_as_float(141u << 23);
    unsigned int sub = __float_as_uint(__fadd_rn(__uint_as_float(abs), magic)) - __float_as_uint(magic);
    unsigned int mag = abs < (121u << 23) ? sub : normal;
    if (mag > 0x7eu || abs >= 0x7f800000u) mag = 0x7eu;
    if (abs > 0x7f800000u) mag = 0x7fu;
    return (unsigned char)(sign | mag);
}

// *amax = max(*amax, |x|) over a rows × cols block (row stride lds), NaN skipped (as the
// CPU's f32::max), as f32 bits (non-negative floats order as their bits); *amax is zeroed
// before. A thread stores only when it beats what is there.
extern "C" __global__ void amax_f32(const float *src, long long lds, long long rows,
                                    long long cols, unsigned int *amax) {
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float m = 0.0f;
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
        float v = fabsf(src[r * lds + c]);
        if (v > m) m = v;
    }
    if (m > __uint_as_float(*(volatile unsigned int *)amax)) atomicMax(amax, __float_as_uint(m));
}

// The per-tensor scale of a block whose largest magnitude is *amax: fmt_max / amax,
// divided in f64 and rounded to f32 (effcal-kernels' tensor_scale), 1 when amax is 0 or
// not finite; scales[0] = it (stored = real · scale), scales[1] = 1 / it (what cuBLASLt
// multiplies the products by).
extern "C" __global__ void tensor_scale(const unsigned int *amax, double fmt_max, float *scales) {
    float a = __uint_as_float(*amax);
    float s = (a > 0.0f && a <= __uint_as_float(0x7f7fffffu)) ? (float)(fmt_max / (double)a) : 1.0f;
    scales[0] = s;
    scales[1] = 1.0f / s;
}

// dst = E4M3(src · scales[0]) for a rows × cols block (row stride lds): row-major, or
// transposed (cols × rows, row-major: the block's rows made contiguous, the layout
// cuBLASLt's FP8 kernels take for the U panel).
extern "C" __global__ void round_e4m3(const float *src, long long lds, unsigned char *dst,
                                      long long rows, long long cols, const float *scales,
                                      int transposed) {
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = scales[0];
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
        unsigned char q = e4m3_rn(__fmul_rn(src[r * lds + c], s));
        if (transposed) dst[c * rows + r] = q; else dst[r * cols + c] = q;
    }
}

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

// The unblocked LU without pivoting of the n x n tile at a (row stride ld), n <= 32: the
// leaves of a diagonal block's factorisation on the device (DiagStep::Leaf). Thread i
// owns row i; at step j every row below j takes l = a[i][j] / a[j][j] and subtracts l times
// row j from its columns after j, rounded as effcal-kernels' factor_unblocked does (no
// contraction: the same bits). Row j is final once step j - 1 is done (the barrier), so
// the threads run in turn give the same answer too (the host tests run it so). A zero or
// non-finite pivot is left where it is, for the host to find in the factors.
#define LU_LEAF(NAME, T, DIV, SUB, MUL)                                                 \
extern "C" __global__ void NAME(T *a, long long ld, int n) {                            \
    int i = threadIdx.x;                                                                \
    for (int j = 0; j < n; ++j) {                                                       \
        if (i > j && i < n) {                                                           \
            T l = DIV(a[i * ld + j], a[j * ld + j]);                                    \
            a[i * ld + j] = l;                                                          \
            for (int c = j + 1; c < n; ++c)                                             \
                a[i * ld + c] = SUB(a[i * ld + c], MUL(l, a[j * ld + c]));               \
        }                                                                               \
        __syncthreads();                                                                \
    }                                                                                   \
}
LU_LEAF(lu_leaf_f32, float, __fdiv_rn, __fsub_rn, __fmul_rn)
LU_LEAF(lu_leaf_f64, double, __ddiv_rn, __dsub_rn, __dmul_rn)
"#;

/// The whole CUDA C of the LU: the conversions and [`SOURCE`].
pub fn source() -> String {
    format!("{}{SOURCE}", crate::kernels::SHARED)
}

/// The kernels of [`SOURCE`] and their names.
pub const ENTRIES: [&str; 11] = ["pack_f32", "pack_f64", "round_bf16", "round_f16", "amax_f32", "tensor_scale", "round_e4m3", "products_f32", "products_f64", "lu_leaf_f32", "lu_leaf_f64"];

/// What a panel is stored in on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    F64,
    F32,
    Bf16,
    F16,
    /// OCP FP8 E4M3 (LU panels only: the FP8 what-if), with a scale per panel.
    E4m3,
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

    /// The storage of a precision's LU panels: [`Self::of`], and E4M3 (Hopper's FP8 GEMMs
    /// take E4M3 × E4M3, not E5M2 × E5M2).
    pub fn of_panels(p: effcal_kernels::Precision) -> Option<Self> {
        if p == effcal_kernels::Precision::E4m3 { Some(Self::E4m3) } else { Self::of(p) }
    }

    pub const fn bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
            Self::E4m3 => 1,
        }
    }

    fn data_type(self) -> Dt {
        match self {
            Self::F64 => Dt::CUDA_R_64F,
            Self::F32 => Dt::CUDA_R_32F,
            Self::Bf16 => Dt::CUDA_R_16BF,
            Self::F16 => Dt::CUDA_R_16F,
            Self::E4m3 => Dt::CUDA_R_8F_E4M3,
        }
    }

    /// The arithmetic of the trailing update, as the record names it.
    pub const fn arithmetic(self) -> &'static str {
        match self {
            Self::F64 => "f64 (cuBLAS GemmEx, FP64)",
            Self::F32 => "f32 (cuBLAS GemmEx, FP32 FMAs)",
            Self::Bf16 | Self::F16 => "tensor cores, f32 accumulation (cuBLAS GemmEx)",
            Self::E4m3 => "fp8 tensor cores, E4M3 panels with a scale each, f32 accumulation (cuBLASLt, FAST_ACCUM off)",
        }
    }
}

/// The accumulation types the device matrix is held in.
pub trait Acc: DeviceRepr + ValidAsZeroBits + Copy + Default + Into<f64> + Send + Sync + 'static {
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

/// Which operand of the trailing update a panel is: L (rows × kb, k along its columns) or
/// U (kb × cols, k along its rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    L,
    U,
}

/// A panel on the device: rows × cols in `storage`'s bits, contiguous; row-major, except
/// an FP8 U panel, held transposed (cols × rows row-major: k contiguous, as cuBLASLt's FP8
/// kernels take their operands).
pub struct Panel {
    pub bytes: CudaSlice<u8>,
    pub rows: usize,
    pub cols: usize,
    pub storage: Storage,
    pub transposed: bool,
    /// FP8: [scale, 1 / scale] on the device (stored = real · scale; 1 and 1 unscaled).
    pub scales: Option<CudaSlice<f32>>,
}

/// The row-major rows × cols matrix `src` transposed (cols × rows, row-major).
pub fn transpose<T: Copy + Default>(src: &[T], rows: usize, cols: usize) -> Vec<T> {
    assert_eq!(src.len(), rows * cols, "transpose: not rows × cols");
    let mut out = vec![T::default(); src.len()];
    for (r, row) in src.chunks_exact(cols.max(1)).enumerate() {
        for (c, &b) in row.iter().enumerate() {
            out[c * rows + r] = b;
        }
    }
    out
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

/// Queues `call` on `handle`'s stream: the factors at device address `factors` (ld
/// call.lda), B at `base` + call.b_offset elements.
fn trsm<A: Acc>(handle: blas::cublasHandle_t, factors: u64, base: u64, c: &TrsmCall) -> Result<()> {
    if c.m == 0 || c.n == 0 {
        return Ok(());
    }
    let b = base + (c.b_offset * size_of::<A>()) as u64;
    let (m, n, lda, ldb) = (c.m as i64, c.n as i64, c.lda as i64, c.ldb as i64);
    // SAFETY: the factors (k × k at lda) and B (m × n column-major at ldb) are live device
    // memory on the handle's stream (the callers' ranges); α is a host scalar.
    let status = unsafe {
        if A::STORAGE == Storage::F64 {
            let one = 1f64;
            blas::cublasDtrsm_v2_64(handle, c.side, c.uplo, Op::CUBLAS_OP_N, c.diag, m, n, &one, factors as *const f64, lda, b as *mut f64, ldb)
        } else {
            let one = 1f32;
            blas::cublasStrsm_v2_64(handle, c.side, c.uplo, Op::CUBLAS_OP_N, c.diag, m, n, &one, factors as *const f32, lda, b as *mut f32, ldb)
        }
    };
    check(status, "cublasXtrsm")
}

/// A cuBLAS TRSM on column-major views, op N: `side` (the factors on the left or right of
/// B), which triangle of the factors' buffer (kb × kb, ld `lda`: kb for the factors'
/// block) is read, unit diagonal or not, B's m × n, its first element's offset in the
/// matrix and its ld (the matrix's row stride).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrsmCall {
    pub side: Side,
    pub uplo: Fill,
    pub diag: Diag,
    pub m: usize,
    pub n: usize,
    pub lda: usize,
    pub b_offset: usize,
    pub ldb: usize,
}

impl TrsmCall {
    /// The L panel: rows lr1.. (`rows`) of columns lc..lc + kb ← A·U⁻¹. Row-major X·U = A
    /// is column-major Uᵀ·Xᵀ = Aᵀ, and the factors' buffer read column-major holds Uᵀ in
    /// its lower triangle: a left solve, lower, non-unit.
    pub fn l_panel(ld: usize, lr1: usize, lc: usize, rows: usize, kb: usize) -> Self {
        TrsmCall { side: Side::CUBLAS_SIDE_LEFT, uplo: Fill::CUBLAS_FILL_MODE_LOWER, diag: Diag::CUBLAS_DIAG_NON_UNIT, m: kb, n: rows, lda: kb, b_offset: lr1 * ld + lc, ldb: ld }
    }

    /// The U panel: rows lr..lr + kb of columns lc1.. (`cols`) ← L⁻¹·A. Row-major L·Y = A
    /// is column-major Yᵀ·Lᵀ = Aᵀ, Lᵀ the unit upper triangle of the factors read
    /// column-major: a right solve, upper, unit.
    pub fn u_panel(ld: usize, lr: usize, lc1: usize, kb: usize, cols: usize) -> Self {
        TrsmCall { side: Side::CUBLAS_SIDE_RIGHT, uplo: Fill::CUBLAS_FILL_MODE_UPPER, diag: Diag::CUBLAS_DIAG_UNIT, m: cols, n: kb, lda: kb, b_offset: lr * ld + lc1, ldb: ld }
    }

    /// The order of the triangular factor.
    pub fn k(&self) -> usize {
        if self.side == Side::CUBLAS_SIDE_LEFT { self.m } else { self.n }
    }
}

/// The largest tile [`DiagStep::Leaf`] factors (effcal-kernels' factor_block too goes
/// unblocked at 32 columns and fewer).
pub const LEAF: usize = 32;

/// One step of a diagonal block's factorisation on the device, in the block (row-major
/// kb × kb, row stride kb; offsets in elements): effcal-kernels' `factor_block`
/// recursion, halving down to [`LEAF`] columns, each half's solves and Schur update by
/// cuBLAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagStep {
    /// The n × n tile at offset `at`, unblocked (the lu_leaf kernel).
    Leaf { at: usize, n: usize },
    /// A triangular solve with the factored tile at offset `factors`.
    Solve { factors: usize, call: TrsmCall },
    /// A22 −= A21·A12: `call` with A = A12 (its a_offset), B = A21 at `b_offset`.
    Update { b_offset: usize, call: GemmCall },
}

/// The steps that factor a kb × kb block in place: the order the host's factor_block
/// takes (A11, A12 ← L11⁻¹·A12, A21 ← A21·U11⁻¹, A22 −= A21·A12, A22).
pub fn diag_steps(kb: usize) -> Vec<DiagStep> {
    fn rec(kb: usize, o: usize, n: usize, steps: &mut Vec<DiagStep>) {
        let at = o * kb + o;
        if n <= LEAF {
            if n > 0 {
                steps.push(DiagStep::Leaf { at, n });
            }
            return;
        }
        let (n1, n2) = (n / 2, n - n / 2);
        rec(kb, o, n1, steps);
        // The solves take the factors at `at` with the block's row stride, B in the block.
        let lda = kb;
        steps.push(DiagStep::Solve { factors: at, call: TrsmCall { lda, ..TrsmCall::u_panel(kb, o, o + n1, n1, n2) } });
        steps.push(DiagStep::Solve { factors: at, call: TrsmCall { lda, ..TrsmCall::l_panel(kb, o + n1, o, n2, n1) } });
        // Row-major A22 −= A21·A12 is column-major A22ᵀ −= A12ᵀ·A21ᵀ.
        let a12 = o * kb + o + n1;
        let a21 = (o + n1) * kb + o;
        let a22 = (o + n1) * kb + o + n1;
        steps.push(DiagStep::Update { b_offset: a21, call: GemmCall { m: n2, n: n2, k: n1, a_offset: a12, lda: kb, ldb: kb, c_offset: a22, ldc: kb } });
        rec(kb, o + n1, n2, steps);
    }
    let mut steps = Vec::new();
    rec(kb, 0, kb, &mut steps);
    steps
}

/// The first zero or non-finite pivot in U's diagonal of factors (row-major kb × kb) and
/// the pivot: where a factorisation that goes on past a breakdown (the device's) had the
/// one the CPU's stops at.
pub fn first_breakdown<A: Acc>(factors: &[A], kb: usize) -> Option<(usize, f64)> {
    (0..kb).map(|j| (j, factors[j * kb + j].into())).find(|&(_, p): &(usize, f64)| p == 0.0 || !p.is_finite())
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

/// A cuBLASLt GEMM `D = α·sa·sb·op(A)·op(B) + β·C` in the "TN" form FP8 requires (op(A) =
/// T, op(B) = N), column-major, C = D: the FP8 trailing update. Offsets in elements: A's
/// into the transposed U panel, C's into the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LtCall {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_offset: usize,
    pub lda: usize,
    pub ldb: usize,
    pub c_offset: usize,
    pub ldc: usize,
}

impl LtCall {
    /// A(r0.., c0 + uc0..c0 + uc1) −= L·U(:, uc0..uc1), L rows × kb (contiguous), U held
    /// transposed (u_cols × kb). Row-major C −= L·U is column-major Cᵀ −= Uᵀ·Lᵀ: the first
    /// operand, read column-major, is U itself (kb × u_cols, ld kb; its columns uc0..
    /// start uc0·kb elements in), taken transposed; the second is Lᵀ (kb × rows, ld kb).
    pub fn update(ld: usize, (r0, c0): (usize, usize), rows: usize, kb: usize, (uc0, uc1): (usize, usize)) -> Self {
        LtCall { m: uc1 - uc0, n: rows, k: kb, a_offset: uc0 * kb, lda: kb, ldb: kb, c_offset: r0 * ld + c0 + uc0, ldc: ld }
    }

    /// cuBLASLt's FP8 kernels want 16-byte aligned operands: dimensions, leading
    /// dimensions and offsets in multiples of 16 elements (FP8 bytes; f32 C in 4s).
    pub fn aligned(&self) -> bool {
        [self.m, self.n, self.k, self.lda, self.ldb, self.a_offset].iter().all(|v| v.is_multiple_of(16)) && self.ldc.is_multiple_of(4) && self.c_offset.is_multiple_of(4)
    }

    /// The call as the [`crate::gemm::Layout`] of a TN product (its operands' and C's shapes).
    fn layout(&self) -> crate::gemm::Layout {
        crate::gemm::Layout { rows: self.m as u64, cols: self.n as u64, k: self.k as u64, ld_first: self.lda as i64, ld_second: self.ldb as i64, ld_c: self.ldc as i64 }
    }

    /// The call with its offsets cleared: what its layouts and algorithm depend on.
    fn shape(&self) -> Self {
        LtCall { a_offset: 0, c_offset: 0, ..*self }
    }
}

/// The FP8 update's cuBLASLt objects: one descriptor (scale pointers set per call), the
/// layouts and the algorithm per shape (a factorisation repeats a few shapes).
struct LtUpdate {
    desc: cudarc::cublaslt::sys::cublasLtMatmulDesc_t,
    plans: std::collections::HashMap<LtCall, ([cudarc::cublaslt::sys::cublasLtMatrixLayout_t; 3], cudarc::cublaslt::sys::cublasLtMatmulAlgo_t)>,
}

impl LtUpdate {
    fn new() -> Result<Self> {
        use cudarc::cublaslt::sys as lts;
        Ok(LtUpdate { desc: crate::gemm::tn_desc(lts::cublasComputeType_t::CUBLAS_COMPUTE_32F, lts::cudaDataType::CUDA_R_32F, true)?, plans: Default::default() })
    }

    /// The layouts and algorithm of `call`'s shape, made on first use.
    fn plan(&mut self, gpu: &Gpu, call: &LtCall) -> Result<&([cudarc::cublaslt::sys::cublasLtMatrixLayout_t; 3], cudarc::cublaslt::sys::cublasLtMatmulAlgo_t)> {
        use cudarc::cublaslt::sys::{cublasStatus_t, cudaDataType as LtDt};
        let shape = call.shape();
        if !self.plans.contains_key(&shape) {
            let layouts = crate::gemm::tn_layouts(LtDt::CUDA_R_8F_E4M3, LtDt::CUDA_R_32F, &call.layout())?;
            let heuristic = crate::gemm::first_algo(gpu, self.desc, &layouts).map_err(|e| {
                crate::gemm::destroy_layouts(&layouts);
                if e.0 == cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED {
                    GpuError::Unsupported(format!("cuBLASLt {} on {} has no E4M3 GEMM kernel for the update {call:?}", gpu.info.cublas_version, gpu.info.name))
                } else {
                    crate::gemm::blas("cublasLtMatmulAlgoGetHeuristic (FP8 update)")(e)
                }
            })?;
            self.plans.insert(shape, (layouts, heuristic.algo));
        }
        Ok(&self.plans[&shape])
    }
}

impl Drop for LtUpdate {
    fn drop(&mut self) {
        // The descriptor and layouts are host objects cuBLASLt reads when a product is
        // queued, not while it runs.
        for (layouts, _) in self.plans.values() {
            crate::gemm::destroy_layouts(layouts);
        }
        // SAFETY: made in new, destroyed once.
        let _ = unsafe { cudarc::cublaslt::result::destroy_matmul_desc(self.desc) };
    }
}

/// One rank's blocks on its GPU, with the scratch the operations need.
pub struct DeviceLu<'g, A: Acc> {
    gpu: &'g Gpu,
    pack: CudaFunction,
    round_bf16: CudaFunction,
    round_f16: CudaFunction,
    amax_f32: CudaFunction,
    tensor_scale: CudaFunction,
    round_e4m3: CudaFunction,
    /// A panel's largest magnitude, as f32 bits (FP8 scaling).
    amax: CudaSlice<u32>,
    /// The FP8 update's cuBLASLt objects, made on its first call.
    lt: Option<LtUpdate>,
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
    /// A cuBLAS handle on the second stream (a diagonal block factored there while the
    /// main one updates: one handle per stream, so their workspaces are their own).
    side_blas: cudarc::cublas::CudaBlas,
    lu_leaf: CudaFunction,
    _staging: CudaSlice<A>,
    staging_ptr: u64,
    mark: Option<CudaEvent>,
}

impl<'g, A: Acc> DeviceLu<'g, A> {
    /// Allocates the rows × cols local matrix (zeros) and an nb × nb block; compiles the
    /// kernels. `keep_f64`: room for an f64 copy of the matrix too.
    pub fn new(gpu: &'g Gpu, rows: usize, cols: usize, nb: usize, keep_f64: bool) -> Result<Self> {
        let module = gpu.ctx.load_module(crate::kernels::device_image(&source(), gpu.info.compute_capability, &[])?)?;
        let f64 = A::STORAGE == Storage::F64;
        let s = &gpu.stream;
        let staging = s.alloc_zeros::<A>((nb * nb).max(1))?;
        let (staging_ptr, sync) = staging.device_ptr(s);
        drop(sync);
        let side = gpu.ctx.new_stream()?;
        let side_blas = cudarc::cublas::CudaBlas::new(side.clone()).map_err(|e| GpuError::Blas(format!("creating the second stream's cuBLAS handle: {e}")))?;
        Ok(DeviceLu {
            gpu,
            pack: module.load_function(if f64 { "pack_f64" } else { "pack_f32" })?,
            round_bf16: module.load_function("round_bf16")?,
            round_f16: module.load_function("round_f16")?,
            amax_f32: module.load_function("amax_f32")?,
            tensor_scale: module.load_function("tensor_scale")?,
            round_e4m3: module.load_function("round_e4m3")?,
            amax: s.alloc_zeros::<u32>(1)?,
            lt: None,
            products: module.load_function(if f64 { "products_f64" } else { "products_f32" })?,
            a: s.alloc_zeros::<A>((rows * cols).max(1))?,
            rows,
            ld: cols,
            block: s.alloc_zeros::<A>((nb * nb).max(1))?,
            a64: if keep_f64 { Some(s.alloc_zeros::<f64>((rows * cols).max(1))?) } else { None },
            side,
            side_blas,
            lu_leaf: module.load_function(if f64 { "lu_leaf_f64" } else { "lu_leaf_f32" })?,
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
        self.fetch_block(r0, c0, kb, false)
    }

    /// [`Self::download_block`], factored on the device on its way ([`diag_steps`]; the
    /// matrix itself is left as it was): unit-lower L and U, a zero or non-finite pivot
    /// left in U's diagonal for the caller to find.
    pub fn download_factored_block(&mut self, r0: usize, c0: usize, kb: usize) -> Result<Vec<A>> {
        self.fetch_block(r0, c0, kb, true)
    }

    fn fetch_block(&mut self, r0: usize, c0: usize, kb: usize, factor: bool) -> Result<Vec<A>> {
        let mut host = vec![A::default(); kb * kb];
        match self.mark.take() {
            Some(event) => {
                self.side.wait(&event)?;
                copy_2d(&self.side, &self.pack, self.ptr_a(r0, c0), self.ld, self.staging_ptr, kb, kb, kb)?;
                if factor {
                    self.factor_block_on(&self.side, *self.side_blas.handle(), self.staging_ptr, kb)?;
                }
                // SAFETY: the staging block holds kb × kb elements, written by the work just
                // queued on the same stream; the host buffer has room for them.
                unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut host[..], self.staging_ptr, self.side.cu_stream())? };
                self.side.synchronize()?;
            }
            None => {
                self.pack_launch(self.ptr_a(r0, c0), self.ld, self.ptr_block(), kb, kb, kb)?;
                if factor {
                    self.factor_block_on(&self.gpu.stream, self.gpu.blas, self.ptr_block(), kb)?;
                }
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

    /// The L panel ([`TrsmCall::l_panel`]) with the uploaded factors.
    pub fn solve_l(&mut self, lr1: usize, lc: usize, rows: usize, kb: usize) -> Result<()> {
        trsm::<A>(self.gpu.blas, self.ptr_block(), self.ptr_a(0, 0), &TrsmCall::l_panel(self.ld, lr1, lc, rows, kb))
    }

    /// The U panel ([`TrsmCall::u_panel`]) with the uploaded factors.
    pub fn solve_u(&mut self, lr: usize, lc1: usize, kb: usize, cols: usize) -> Result<()> {
        trsm::<A>(self.gpu.blas, self.ptr_block(), self.ptr_a(0, 0), &TrsmCall::u_panel(self.ld, lr, lc1, kb, cols))
    }

    /// Queues the factorisation of the kb × kb block at device address `block` (row-major,
    /// row stride kb) in place: [`diag_steps`], on `stream` (`handle` is a cuBLAS handle
    /// on it).
    fn factor_block_on(&self, stream: &Arc<CudaStream>, handle: blas::cublasHandle_t, block: u64, kb: usize) -> Result<()> {
        let e = size_of::<A>() as u64;
        let at = |offset: usize| block + offset as u64 * e;
        for step in diag_steps(kb) {
            match step {
                DiagStep::Leaf { at: o, n } => {
                    let (ptr, ld, n) = (at(o), kb as i64, n as i32);
                    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (LEAF as u32, 1, 1), shared_mem_bytes: 0 };
                    // SAFETY: lu_leaf takes (T*, long long, int); the n × n tile at its row
                    // stride lies inside the block.
                    unsafe { stream.launch_builder(&self.lu_leaf).arg(&ptr).arg(&ld).arg(&n).launch(cfg)? };
                }
                DiagStep::Solve { factors, call } => trsm::<A>(handle, at(factors), block, &call)?,
                DiagStep::Update { b_offset, call } => {
                    let (m, n, k) = (call.m as i64, call.n as i64, call.k as i64);
                    let (a, b, c) = (at(call.a_offset), at(b_offset), at(call.c_offset));
                    let (lda, ldb, ldc) = (call.lda as i64, call.ldb as i64, call.ldc as i64);
                    // SAFETY: A, B and C are tiles of the block (live device memory on the
                    // handle's stream) at its row stride; α and β are host scalars.
                    let status = unsafe {
                        if A::STORAGE == Storage::F64 {
                            let (alpha, beta) = (-1f64, 1f64);
                            blas::cublasDgemm_v2_64(handle, Op::CUBLAS_OP_N, Op::CUBLAS_OP_N, m, n, k, &alpha, a as *const f64, lda, b as *const f64, ldb, &beta, c as *mut f64, ldc)
                        } else {
                            let (alpha, beta) = (-1f32, 1f32);
                            blas::cublasSgemm_v2_64(handle, Op::CUBLAS_OP_N, Op::CUBLAS_OP_N, m, n, k, &alpha, a as *const f32, lda, b as *const f32, ldb, &beta, c as *mut f32, ldc)
                        }
                    };
                    check(status, "cublasXgemm (diagonal block's Schur update)")?;
                }
            }
        }
        Ok(())
    }

    /// The rows × cols block at `(r0, c0)` rounded to `storage` (saturating, nearest even;
    /// the accumulation type itself: a copy) as a contiguous panel, the update's `operand`.
    /// E4M3 panels are scaled by max / amax when `tensor_scaled` (else by 1), and a U panel
    /// is held transposed.
    pub fn round(&mut self, (r0, c0): (usize, usize), rows: usize, cols: usize, storage: Storage, operand: Operand, tensor_scaled: bool) -> Result<Panel> {
        let s = self.gpu.stream.clone();
        let mut bytes = s.alloc_zeros::<u8>((rows * cols * storage.bytes()).max(1))?;
        let transposed = storage == Storage::E4m3 && operand == Operand::U;
        let mut scales = None;
        let src = self.ptr_a(r0, c0);
        let (lds, r, c) = (self.ld as i64, rows as i64, cols as i64);
        match storage {
            Storage::E4m3 if A::STORAGE == Storage::F32 => {
                // The scales from the block's largest magnitude, on the device (no host copy
                // on the stream the update runs on); unscaled, it stays 0, which gives 1.
                let mut sc = s.alloc_zeros::<f32>(2)?;
                s.memset_zeros(&mut self.amax)?;
                let fmt_max = effcal_kernels::Precision::E4m3.info().max;
                // SAFETY: amax_f32(const float*, long long, long long, long long, unsigned*)
                // reads rows × cols at stride lds; tensor_scale(const unsigned*, double,
                // float*) writes two floats.
                unsafe {
                    if tensor_scaled && rows > 0 && cols > 0 {
                        s.launch_builder(&self.amax_f32).arg(&src).arg(&lds).arg(&r).arg(&c).arg(&mut self.amax).launch(grid_2d(rows, cols))?;
                    }
                    s.launch_builder(&self.tensor_scale).arg(&self.amax).arg(&fmt_max).arg(&mut sc).launch(LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 })?;
                }
                if rows > 0 && cols > 0 {
                    let t = transposed as i32;
                    // SAFETY: round_e4m3(const float*, long long, unsigned char*, long long,
                    // long long, const float*, int): rows × cols in, as many bytes out.
                    unsafe { s.launch_builder(&self.round_e4m3).arg(&src).arg(&lds).arg(&mut bytes).arg(&r).arg(&c).arg(&sc).arg(&t).launch(grid_2d(rows, cols))? };
                }
                scales = Some(sc);
            }
            _ if rows == 0 || cols == 0 => {}
            st if st == A::STORAGE => {
                let (dst, _sync) = bytes.device_ptr_mut(&s);
                self.pack_launch(src, self.ld, dst, cols, rows, cols)?
            }
            Storage::Bf16 | Storage::F16 if A::STORAGE == Storage::F32 => {
                let f = if storage == Storage::Bf16 { &self.round_bf16 } else { &self.round_f16 };
                // SAFETY: round_X(const float*, long long, unsigned short*, long long,
                // long long): src rows × cols at stride lds, dst rows × cols contiguous.
                unsafe { s.launch_builder(f).arg(&src).arg(&lds).arg(&mut bytes).arg(&r).arg(&c).launch(grid_2d(rows, cols))? };
            }
            st => return Err(GpuError::Unsupported(format!("panels of {st:?} from a matrix of {:?}", A::STORAGE))),
        }
        Ok(Panel { bytes, rows, cols, storage, transposed, scales })
    }

    /// A panel from its row-major bits on the host (a broadcast's), the update's
    /// `operand`, with its FP8 scale (stored = real · scale; None: 1).
    pub fn panel_from_host(&mut self, bits: &[u8], rows: usize, cols: usize, storage: Storage, operand: Operand, scale: Option<f32>) -> Result<Panel> {
        let s = &self.gpu.stream;
        let fp8 = storage == Storage::E4m3;
        let transposed = fp8 && operand == Operand::U;
        let held = if transposed { std::borrow::Cow::Owned(transpose(bits, rows, cols)) } else { std::borrow::Cow::Borrowed(bits) };
        let mut bytes = s.alloc_zeros::<u8>(held.len().max(1))?;
        if !held.is_empty() {
            let mut dst = bytes.slice_mut(0..held.len());
            s.memcpy_htod(&held[..], &mut dst)?;
        }
        let scales = if fp8 {
            let sc = scale.unwrap_or(1.0);
            Some(s.clone_htod(&[sc, 1.0 / sc])?)
        } else {
            None
        };
        Ok(Panel { bytes, rows, cols, storage, transposed, scales })
    }

    /// A panel's row-major bits on the host and its FP8 scale (for a broadcast; waits for
    /// the queued work).
    pub fn panel_to_host(&mut self, p: &Panel) -> Result<(Vec<u8>, Option<f32>)> {
        let len = p.rows * p.cols * p.storage.bytes();
        let mut host = vec![0u8; len];
        if len > 0 {
            self.gpu.stream.memcpy_dtoh(&p.bytes.slice(0..len), &mut host)?;
        }
        if p.transposed {
            host = transpose(&host, p.cols, p.rows);
        }
        let scale = match &p.scales {
            Some(sc) => Some(self.gpu.stream.clone_dtoh(sc)?[0]),
            None => None,
        };
        Ok((host, scale))
    }

    /// The trailing update of one column chunk ([`GemmCall::update`]).
    pub fn update(&mut self, at: (usize, usize), l: &Panel, u: &Panel, chunk: (usize, usize)) -> Result<()> {
        if l.storage == Storage::E4m3 {
            return self.update_fp8(at, l, u, chunk);
        }
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

    /// The FP8 trailing update of one column chunk ([`LtCall::update`]) by cuBLASLt, the
    /// panels' dequantisation factors applied to the products.
    fn update_fp8(&mut self, at: (usize, usize), l: &Panel, u: &Panel, chunk: (usize, usize)) -> Result<()> {
        let call = LtCall::update(self.ld, at, l.rows, l.cols, chunk);
        if call.m == 0 || call.n == 0 || call.k == 0 {
            return Ok(());
        }
        if !call.aligned() || !u.transposed || A::STORAGE != Storage::F32 {
            return Err(GpuError::Unsupported(format!("an FP8 update needs an f32 matrix, a transposed U panel and 16-element multiples (N, NB, the column chunk): {call:?}")));
        }
        let (Some(ls), Some(us)) = (&l.scales, &u.scales) else {
            return Err(GpuError::Unsupported("an FP8 panel without its scales".into()));
        };
        let gpu = self.gpu;
        let s = &gpu.stream;
        let c = self.ptr_a(0, 0) + (call.c_offset * size_of::<A>()) as u64;
        let lt_update = match &mut self.lt {
            Some(x) => x,
            None => self.lt.insert(LtUpdate::new()?),
        };
        let desc = lt_update.desc;
        let (layouts, algo) = *lt_update.plan(gpu, &call)?;
        let (lp, sync_l) = l.bytes.device_ptr(s);
        let (up, sync_u) = u.bytes.device_ptr(s);
        let (lsp, sync_ls) = ls.device_ptr(s);
        let (usp, sync_us) = us.device_ptr(s);
        let (alpha, beta) = (-1f32, 1f32);
        let f = size_of::<f32>() as u64;
        // SAFETY: the panels, their scales and C are live device memory of the sizes the
        // call describes, on the handle's stream; α and β are host f32 scalars (the scale
        // type); the descriptor's scale pointers are this call's panels' (set before it is
        // queued, read when it is).
        let done = unsafe {
            crate::gemm::set_scale_pointers(desc, usp + f, lsp + f)?;
            crate::gemm::matmul(gpu, desc, &alpha as *const f32 as *const c_void, &beta as *const f32 as *const c_void, up + call.a_offset as u64, lp, c, &layouts, &algo)
        };
        drop((sync_l, sync_u, sync_ls, sync_us));
        done.map_err(crate::gemm::blas("cublasLtMatmul (FP8 trailing update)"))
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

    /// cuBLAS's TRSM on the host (column-major, op N, α = 1): the factors f (k × k, ld
    /// c.lda), B in `b` at the call's offset and ld.
    fn trsm_on_host(c: &TrsmCall, f: &[f64], b: &mut [f64]) {
        let fa = |i: usize, j: usize| f[i + j * c.lda];
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

    /// The 2D launch of the kernels as host C: every block and thread of grid_2d's grid for
    /// a rows × cols block, in turn.
    const HOST_LAUNCH: &str = r#"
#define LAUNCH(CALL, ROWS, COLS) do {                                                   \
    blockDim.x = 256; gridDim.x = ((COLS) + 255) / 256; gridDim.y = (ROWS) < 65535 ? (ROWS) : 65535; \
    if (gridDim.y < 1) gridDim.y = 1;                                                   \
    for (blockIdx.y = 0; blockIdx.y < gridDim.y; ++blockIdx.y)                          \
        for (blockIdx.x = 0; blockIdx.x < gridDim.x; ++blockIdx.x)                      \
            for (threadIdx.x = 0; threadIdx.x < blockDim.x; ++threadIdx.x) CALL;        \
} while (0)
"#;

    /// The LU's CUDA C as host C with a `main`, built in a temporary folder (removed when
    /// this drops).
    struct HostProgram {
        dir: std::path::PathBuf,
        exe: std::path::PathBuf,
    }

    impl HostProgram {
        /// None (said) where there is no C compiler.
        fn build(name: &str, main: &str) -> Option<Self> {
            let dir = std::env::temp_dir().join(format!("effcal-lu-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (c, exe) = (dir.join(format!("{name}.c")), dir.join(name));
            std::fs::write(&c, format!("{}{HOST_LAUNCH}{main}", crate::kernels::as_host_c(&source()))).unwrap();
            let program = HostProgram { dir, exe };
            crate::kernels::build_host_c(&c, &program.exe).then_some(program)
        }

        /// Its stdout, given `header` (long longs) and then `floats` on stdin.
        fn run(&self, header: &[i64], floats: &[f32]) -> Vec<u8> {
            self.run_bytes(header, &floats.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>())
        }

        /// Its stdout, given `header` (long longs) and then `bytes` on stdin.
        fn run_bytes(&self, header: &[i64], bytes: &[u8]) -> Vec<u8> {
            use std::io::Write;
            let mut input: Vec<u8> = header.iter().flat_map(|v| v.to_ne_bytes()).collect();
            input.extend_from_slice(bytes);
            let mut child = std::process::Command::new(&self.exe).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(&input).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "the host run of the kernels");
            out.stdout
        }
    }

    impl Drop for HostProgram {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// f32 bit patterns, a stride through all of them and then `edges`, laid out as a
    /// block of 1000 columns at row stride 1003 (the kernels read strided blocks): rows,
    /// cols, lds and the block.
    fn sweep_of_bit_patterns(edges: impl IntoIterator<Item = u32>) -> (usize, usize, usize, Vec<f32>) {
        let mut bits: Vec<u32> = (0..1u64 << 20).map(|i| (i * 4099 + (i >> 7)) as u32).collect();
        bits.extend(edges);
        let (cols, lds) = (1000usize, 1003usize);
        let rows = bits.len().div_ceil(cols);
        let mut src = vec![0f32; rows * lds];
        for (i, &b) in bits.iter().enumerate() {
            src[(i / cols) * lds + i % cols] = f32::from_bits(b);
        }
        (rows, cols, lds, src)
    }

    /// The rows × cols block of `src` (row stride lds), contiguous.
    fn dense(src: &[f32], rows: usize, cols: usize, lds: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| src[(i / cols) * lds + i % cols]).collect()
    }

    /// stdin: rows, cols, lds (long long), then rows × lds floats; stdout: the bf16 panel,
    /// the f16 panel (rows × cols u16 each), then the packed floats (rows × cols).
    const ROUND_MAIN: &str = r#"
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
        let Some(program) = HostProgram::build("round", ROUND_MAIN) else { return };
        let edges = [0.0f32, -0.0, 1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e5, -1e5, 6.0e-8, 3.0e-5, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let more = [0x7f7f_0000, 0x7f7f_7fff, 0x7f7f_8000, 0x7f7f_8001, 0x7f7f_ffff, 0xff7f_8000, 0x0000_8000, 0x0000_7fff, 0x8000_0001];
        let (rows, cols, lds, src) = sweep_of_bit_patterns(edges.iter().map(|x| x.to_bits()).chain(more));
        let out = program.run(&[rows as i64, cols as i64, lds as i64], &src);
        let n = rows * cols;
        let u16s = |b: &[u8]| b.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect::<Vec<_>>();
        let (gb, gh) = (u16s(&out[..2 * n]), u16s(&out[2 * n..4 * n]));
        let packed: Vec<u32> = out[4 * n..].chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        let dense = dense(&src, rows, cols, lds);
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

    /// cuBLASLt's TN GEMM on the host: D = α·op(A)·op(B) + β·C, op(A) = T (A stored k × m,
    /// column-major at lda), op(B) = N (k × n at ldb), C = D (m × n at ldc), at the call's
    /// offsets (the dequantisation factors are 1 here).
    fn lt_tn_on_host(g: &LtCall, a: &[f64], b: &[f64], c: &mut [f64], alpha: f64, beta: f64) {
        for j in 0..g.n {
            for i in 0..g.m {
                let s: f64 = (0..g.k).map(|p| a[g.a_offset + p + i * g.lda] * b[p + j * g.ldb]).sum();
                let at = g.c_offset + i + j * g.ldc;
                c[at] = alpha * s + beta * c[at];
            }
        }
    }

    #[test]
    fn the_fp8_update_posed_to_cublaslt_is_a_minus_l_times_u() {
        let (ld, kb, rows, u_cols) = (17, 3, 6, 9);
        let l = values(rows * kb, 0.29);
        let u = values(kb * u_cols, 0.83);
        let ut = transpose(&u, kb, u_cols);
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
            lt_tn_on_host(&LtCall::update(ld, at, rows, kb, chunk), &ut, &l, &mut got, -1.0, 1.0);
            assert!(want.iter().zip(&got).all(|(w, g)| (w - g).abs() < 1e-12), "update at {at:?}, chunk {chunk:?}");
        }
        // A step of a run whose N, NB and chunk are multiples of 16 is aligned; an odd
        // leading dimension or chunk is not (the harness refuses those for FP8).
        assert!(LtCall::update(4096, (1024, 1024), 2048, 1024, (2048, 4096)).aligned());
        assert!(!LtCall::update(4090, (1024, 1024), 2048, 1024, (0, 2048)).aligned());
        assert!(!LtCall::update(4096, (1024, 1024), 2048, 1024, (0, 2040)).aligned());
    }

    /// stdin: rows, cols, lds, tensor-scaled (0/1) (long long), then rows × lds floats;
    /// stdout: the scales (2 floats), the panel row-major, the panel transposed (rows × cols
    /// bytes each).
    const FP8_MAIN: &str = r#"
int main(void) {
    long long hd[4];
    if (fread(hd, sizeof hd, 1, stdin) != 1) return 2;
    long long rows = hd[0], cols = hd[1], lds = hd[2];
    float *src = malloc(rows * lds * 4), scales[2] = {0.0f, 0.0f};
    unsigned char *q = malloc(rows * cols), *qt = malloc(rows * cols);
    unsigned int amax = 0;
    if (fread(src, 4, rows * lds, stdin) != (size_t)(rows * lds)) return 3;
    if (hd[3]) LAUNCH(amax_f32(src, lds, rows, cols, &amax), rows, cols);
    tensor_scale(&amax, 448.0, scales);
    LAUNCH(round_e4m3(src, lds, q, rows, cols, scales, 0), rows, cols);
    LAUNCH(round_e4m3(src, lds, qt, rows, cols, scales, 1), rows, cols);
    fwrite(scales, 4, 2, stdout);
    fwrite(q, 1, rows * cols, stdout);
    fwrite(qt, 1, rows * cols, stdout);
    return 0;
}
"#;

    /// The FP8 kernels (largest magnitude, per-tensor scale, rounding to E4M3, plain and
    /// transposed), compiled as C and run on the host, give the CPU's FP8 panels bit for
    /// bit: effcal-kernels' `Quantized::from_f32` with per-tensor scaling (its scale too)
    /// and without (a sweep of f32 bit patterns: normals, subnormals, the range's edges,
    /// ±0, ±∞, NaN).
    #[test]
    fn the_fp8_kernels_give_the_cpus_panels_and_scales() {
        use effcal_kernels::precision::scaling::{KAxis, Quantized, ScaleMode};
        use effcal_kernels::precision::{E4M3, Element, Overflow};
        let Some(program) = HostProgram::build("fp8", FP8_MAIN) else { return };
        let run = |src: &[f32], rows: usize, cols: usize, lds: usize, tensor: bool| -> (f32, Vec<u8>, Vec<u8>) {
            let out = program.run(&[rows as i64, cols as i64, lds as i64, tensor as i64], src);
            let f = |i: usize| f32::from_ne_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
            let (scale, inverse) = (f(0), f(1));
            assert_eq!(inverse, 1.0 / scale, "the dequantisation factor is the scale's inverse");
            let n = rows * cols;
            (scale, out[8..8 + n].to_vec(), out[8 + n..8 + 2 * n].to_vec())
        };

        // Every kind of f32, unscaled: the rounding itself. Besides the sweep, every E4M3
        // value, the midpoints between neighbours (ties: to even) and either side of them,
        // both signs.
        let mut edges: Vec<f32> = vec![0.0, -0.0, 448.0, 464.0, 464.01, 480.0, -480.0, 1e5, 2f32.powi(-6), 2f32.powi(-9), 2f32.powi(-10), 1.5 * 2f32.powi(-10), 1e-40, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let values: Vec<f32> = (0..=0x7eu8).map(|c| E4M3(c).to_f64() as f32).collect();
        for w in values.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            for x in [w[0], mid, f32::from_bits(mid.to_bits() - 1), f32::from_bits(mid.to_bits() + 1)] {
                edges.extend([x, -x]);
            }
        }
        let (rows, cols, lds, src) = sweep_of_bit_patterns(edges.iter().map(|x| x.to_bits()));
        let d = dense(&src, rows, cols, lds);
        let want = Quantized::<E4M3>::from_f32(&d, rows, cols, KAxis::Cols, ScaleMode::None, Overflow::Saturate);
        let (scale, got, got_t) = run(&src, rows, cols, lds, false);
        assert_eq!(scale, 1.0);
        for (i, (w, g)) in want.data.iter().zip(&got).enumerate() {
            assert_eq!(w.0, *g, "E4M3 of {:e} ({:#010x})", d[i], d[i].to_bits());
        }
        assert_eq!(got_t, transpose(&got, rows, cols), "the transposed panel");

        // Panels as the LU makes them, scaled per tensor: small, large and mixed
        // magnitudes (a NaN among them is skipped by both), and an all-zero panel.
        for (rows, cols, lds, mag) in [(37usize, 19usize, 23usize, 1e-3f32), (5, 300, 301, 3e4), (64, 64, 64, 1.0), (3, 4, 4, 0.0)] {
            let mut src: Vec<f32> = (0..rows * lds).map(|i| mag * ((i as f32 * 0.731).sin() * 2f32.powi((i % 23) as i32 - 11))).collect();
            if rows * cols > 40 {
                src[lds + 3] = f32::NAN;
            }
            let d = dense(&src, rows, cols, lds);
            let want = Quantized::<E4M3>::from_f32(&d, rows, cols, KAxis::Rows, ScaleMode::Tensor, Overflow::Saturate);
            let (scale, got, got_t) = run(&src, rows, cols, lds, true);
            assert_eq!(scale, want.tensor_scale(), "the scale of a {rows}×{cols} panel of magnitude {mag}");
            assert_eq!(want.data.iter().map(|q| q.0).collect::<Vec<u8>>(), got, "the {rows}×{cols} panel's bits");
            assert_eq!(got_t, transpose(&got, rows, cols));
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
        assert!(text.contains("atom.global.max.u32"), "the FP8 panels' largest magnitude by atomic max on its bits");
        assert!(text.contains("div.rn.f64") && text.contains("cvt.rn.f32.f64"), "the tensor scale divides in f64, rounds to f32 (as the CPU)");
        assert!(text.contains("div.rn.f32") && text.contains("sub.rn.f32") && text.contains("sub.rn.f64"), "the LU's leaves round each operation (no contraction)");
    }

    /// lu_leaf run as C on the host: the n × n tile at row stride ld, f32 or f64 (the
    /// header's third number), its 32 threads in turn.
    const LEAF_MAIN: &str = r#"
int main(void) {
    long long h[3];
    if (fread(h, sizeof h, 1, stdin) != 1) return 1;
    long long n = h[0], ld = h[1], wide = h[2];
    size_t e = wide ? 8 : 4, len = (size_t)(n > 0 ? (n - 1) * ld + n : 0);
    char *a = malloc(len * e + 8);
    if (fread(a, e, len, stdin) != len) return 1;
    blockDim.x = 32;
    for (threadIdx.x = 0; threadIdx.x < blockDim.x; ++threadIdx.x) {
        if (wide) lu_leaf_f64((double *)a, ld, (int)n); else lu_leaf_f32((float *)a, ld, (int)n);
    }
    fwrite(a, e, len, stdout);
    return 0;
}
"#;

    /// A tile of n × n at row stride ld (ld − n columns of padding a row), diagonally
    /// dominant.
    fn tile(n: usize, ld: usize, seed: f64) -> Vec<f64> {
        let len = if n == 0 { 0 } else { (n - 1) * ld + n };
        let mut a = values(len, seed);
        for i in 0..n {
            a[i * ld + i] += n as f64;
        }
        a
    }

    /// The leaves of the device's factorisation give the CPU's unblocked LU bit for bit in
    /// f32 and f64, whatever the threads' order; a zero pivot stays in U's diagonal where
    /// first_breakdown finds the column and pivot the CPU reports.
    #[test]
    fn the_leaf_kernel_gives_the_cpus_bits_and_leaves_a_breakdown_in_place() {
        let Some(program) = HostProgram::build("leaf", LEAF_MAIN) else { return };
        for n in [1, 2, 7, 31, 32] {
            let ld = n + 3;
            let a = tile(n, ld, 0.43 + n as f64);
            // f64
            let mut want = a.clone();
            factor_block(rm_mut(&mut want, n, n, ld), 0).unwrap();
            let out = program.run_bytes(&[n as i64, ld as i64, 1], &a.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>());
            let got: Vec<f64> = out.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().unwrap())).collect();
            assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "f64, n = {n}");
            // f32
            let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let mut want = a32.clone();
            factor_block(rm_mut(&mut want, n, n, ld), 0).unwrap();
            let got: Vec<f32> = program.run(&[n as i64, ld as i64, 0], &a32).chunks_exact(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect();
            assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "f32, n = {n}");
            assert_eq!(first_breakdown(&got, n), None);
        }
        // A zero pivot at column 3 (the leading 4 × 4 is diag(2, 2, 2, 0)).
        let n = 8;
        let mut a = tile(n, n, 0.29);
        for i in 0..4 {
            for j in 0..4 {
                a[i * n + j] = if i == j && i < 3 { 2.0 } else { 0.0 };
            }
        }
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let mut cpu = a32.clone();
        let e = factor_block(rm_mut(&mut cpu, n, n, n), 100).unwrap_err();
        assert_eq!(e, effcal_kernels::KernelError::Breakdown { column: 103, pivot: 0.0 });
        let got: Vec<f32> = program.run(&[n as i64, n as i64, 0], &a32).chunks_exact(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect();
        assert_eq!(first_breakdown(&got, n), Some((3, 0.0)));
    }

    /// The device's recursion ([`diag_steps`]) run with host models of its calls (the
    /// leaves as the CPU's unblocked LU, cuBLAS's TRSM and GEMM by definition) is the
    /// CPU's factor_block, to rounding, for block sizes that split evenly and unevenly;
    /// its shape for NB = 1024: 32 leaves, 31 halvings.
    #[test]
    fn the_diagonal_factorisation_posed_to_cublas_is_the_cpus() {
        for kb in [1, 32, 33, 100, 257] {
            let a = tile(kb, kb, 0.71);
            let mut want = a.clone();
            factor_block(rm_mut(&mut want, kb, kb, kb), 0).unwrap();
            let mut got = a;
            for step in diag_steps(kb) {
                match step {
                    DiagStep::Leaf { at, n } => factor_block(rm_mut(&mut got[at..], n, n, kb), 0).unwrap(),
                    DiagStep::Solve { factors, call } => {
                        let f = got[factors..].to_vec();
                        trsm_on_host(&call, &f, &mut got);
                    }
                    DiagStep::Update { b_offset, call: g } => {
                        let before = got.clone();
                        for j in 0..g.n {
                            for i in 0..g.m {
                                let s: f64 = (0..g.k).map(|p| before[g.a_offset + i + p * g.lda] * before[b_offset + p + j * g.ldb]).sum();
                                got[g.c_offset + i + j * g.ldc] -= s;
                            }
                        }
                    }
                }
            }
            let worst = want.iter().zip(&got).map(|(w, g)| (w - g).abs() / w.abs().max(1.0)).fold(0f64, f64::max);
            assert!(worst < 1e-12, "kb = {kb}: worst {worst:e}");
        }
        let steps = diag_steps(1024);
        let count = |f: fn(&DiagStep) -> bool| steps.iter().filter(|s| f(s)).count();
        assert_eq!((count(|s| matches!(s, DiagStep::Leaf { .. })), count(|s| matches!(s, DiagStep::Solve { .. })), count(|s| matches!(s, DiagStep::Update { .. }))), (32, 62, 31));
        assert!(diag_steps(0).is_empty());
    }
}
