//! GEMM on the GPU through cuBLASLt (cuBLAS's matrix-multiply layer; one call for every
//! arithmetic): FP64 and FP32 as IEEE FMAs, TF32, BF16 and FP16 on the tensor cores with
//! FP32 accumulation, FP8 E4M3/E5M2 with per-tensor dequantisation scales, INT8 into INT32.
//!
//! The matrices are effcal's own (row-major, generated on the host from the same seeds as
//! the CPU runs) and C comes back to the host for the same sampled check against a
//! twice-f64 reference; only the products themselves are timed.

use crate::{Gpu, GpuError, Result};
use cudarc::cublaslt::result as lt;
use cudarc::cublaslt::sys;
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use std::ffi::c_void;

/// cuBLASLt's workspace, bytes (NVIDIA recommends 32 MiB on Hopper).
pub const WORKSPACE_BYTES: usize = 32 << 20;

/// The arithmetic of a GPU GEMM: what the inputs are stored in and how they are multiplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arith {
    /// FP64 in, FP64 out (tensor-core DMMA or FMA: IEEE either way).
    F64,
    /// FP32 on the CUDA cores (IEEE FMA).
    F32,
    /// FP32 stored, multiplied on the tensor cores as TF32 (10-bit mantissa), FP32 sums.
    Tf32,
    /// BF16 in, FP32 accumulation and out.
    Bf16,
    /// FP16 in, FP32 accumulation and out.
    F16,
    /// FP8 E4M3 in, with a per-tensor scale each; FP32 out.
    E4m3,
    /// FP8 E5M2 in (both operands); FP32 out.
    E5m2,
    /// INT8 in, INT32 sums and out: exact.
    Int8,
}

impl Arith {
    pub const ALL: [Arith; 8] = [Self::F64, Self::F32, Self::Tf32, Self::Bf16, Self::F16, Self::E4m3, Self::E5m2, Self::Int8];

    pub const fn name(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32",
            Self::Tf32 => "tf32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::E4m3 => "e4m3",
            Self::E5m2 => "e5m2",
            Self::Int8 => "int8",
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| format!("unknown GPU GEMM precision '{s}' (allowed: {})", Self::ALL.map(Self::name).join(", ")))
    }

    /// Bytes of one stored input element.
    pub const fn input_bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 | Self::Tf32 => 4,
            Self::Bf16 | Self::F16 => 2,
            Self::E4m3 | Self::E5m2 | Self::Int8 => 1,
        }
    }

    /// Bytes of one element of C: f64, i32 for INT8, f32 otherwise.
    pub const fn output_bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            _ => 4,
        }
    }

    /// Per-tensor dequantisation scales ride along (FP8 only: cuBLASLt's A/B_SCALE_POINTER).
    pub const fn scaled(self) -> bool {
        matches!(self, Self::E4m3 | Self::E5m2)
    }

    /// The arithmetic as the record names it.
    pub const fn arithmetic(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32 (CUDA cores)",
            Self::Tf32 => "tf32 tensor cores, f32 accumulation",
            Self::Bf16 | Self::F16 => "tensor cores, f32 accumulation",
            Self::E4m3 | Self::E5m2 => "fp8 tensor cores, f32 accumulation (promoted: FAST_ACCUM off)",
            Self::Int8 => "int8 tensor cores, i32 accumulation",
        }
    }

    /// (storage, output, compute, scale) types of the cuBLASLt call.
    fn types(self) -> (sys::cudaDataType, sys::cudaDataType, sys::cublasComputeType_t, sys::cudaDataType) {
        use sys::cublasComputeType_t as C;
        use sys::cudaDataType as D;
        match self {
            Self::F64 => (D::CUDA_R_64F, D::CUDA_R_64F, C::CUBLAS_COMPUTE_64F, D::CUDA_R_64F),
            Self::F32 => (D::CUDA_R_32F, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, D::CUDA_R_32F),
            Self::Tf32 => (D::CUDA_R_32F, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F_FAST_TF32, D::CUDA_R_32F),
            Self::Bf16 => (D::CUDA_R_16BF, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, D::CUDA_R_32F),
            Self::F16 => (D::CUDA_R_16F, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, D::CUDA_R_32F),
            Self::E4m3 => (D::CUDA_R_8F_E4M3, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, D::CUDA_R_32F),
            Self::E5m2 => (D::CUDA_R_8F_E5M2, D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, D::CUDA_R_32F),
            Self::Int8 => (D::CUDA_R_8I, D::CUDA_R_32I, C::CUBLAS_COMPUTE_32I, D::CUDA_R_32I),
        }
    }

    /// The bound the arithmetic error (against the stored inputs, relative to Σ|a||b|) must
    /// meet for a k-term product, and the model it comes from.
    ///
    /// Tensor cores do not round as an FMA does: products of BF16/FP16/FP8 are exact in
    /// FP32, but the adds of a block are aligned to its largest exponent and truncated
    /// (Fasi, Higham, Mikaitis, Pranesh, "Numerical behavior of NVIDIA tensor cores",
    /// PeerJ CS 2021). Hopper's FP8 path keeps about 14 bits in the accumulator between
    /// promotions to FP32 (DeepSeek-V3 technical report, §3.3.2); cuBLASLt promotes
    /// periodically unless FAST_ACCUM is set, which effcal leaves off.
    pub fn arithmetic_bound(self, k: usize) -> (f64, &'static str) {
        let k4 = k as f64 + 4.0;
        let tensor = k4 * 2f64.powi(-22);
        match self {
            Self::F64 => (k4 * 2f64.powi(-53), "(k+4)·2⁻⁵³: IEEE f64 FMAs"),
            Self::F32 => (k4 * 2f64.powi(-24), "(k+4)·2⁻²⁴: IEEE f32 FMAs"),
            // TF32 rounds each f32 input to a 10-bit mantissa (truncation assumed: 2⁻¹⁰ each).
            Self::Tf32 => (2.0 * 2f64.powi(-10) + 2f64.powi(-20) + tensor, "2·2⁻¹⁰ + 2⁻²⁰ + (k+4)·2⁻²²: inputs cut to TF32, then tensor-core f32 sums"),
            Self::Bf16 | Self::F16 => (tensor, "(k+4)·2⁻²²: tensor-core f32 sums, truncating adds (u = 2⁻²³), doubled for the block alignment"),
            Self::E4m3 | Self::E5m2 => (tensor + 2f64.powi(-8), "(k+4)·2⁻²² + 2⁻⁸: tensor-core f32 sums, plus a 14-bit accumulator over one 32-term FP8 MMA between promotions"),
            Self::Int8 => (0.0, "0: integer sums are exact (|Σ| < 2³¹ for k ≤ 2¹⁷)"),
        }
    }
}

/// How a row-major `C = A·B` (A m×k, B k×n) is posed to cuBLASLt, which is column-major,
/// in the "TN" form Hopper's FP8 and INT8 kernels require (used for every arithmetic, one
/// path): a row-major matrix read column-major is its transpose, so row-major C is the
/// column-major `Cᵀ = Bᵀ·Aᵀ` (n×m, ld n). Its first operand, taken transposed, must hold
/// B column-major (k×n, ld k), which is `Bᵀ` row-major: the host uploads B transposed
/// ([`first_operand`]); the second is `Aᵀ` (k×m, ld k): A's row-major buffer as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Rows and columns of the column-major result D (= Cᵀ): n and m.
    pub rows: u64,
    pub cols: u64,
    pub k: u64,
    /// The stored first operand: k × rows, column-major, ld k (op T).
    pub ld_first: i64,
    /// The stored second operand: k × cols, column-major, ld k (op N).
    pub ld_second: i64,
    pub ld_c: i64,
}

impl Layout {
    pub fn row_major(m: usize, n: usize, k: usize) -> Self {
        Layout { rows: n as u64, cols: m as u64, k: k as u64, ld_first: k as i64, ld_second: k as i64, ld_c: n as i64 }
    }
}

/// The first operand of [`Layout`]: row-major B (k×n) transposed to row-major n×k.
pub fn first_operand<T: Copy + Send + Sync>(b: &[T], k: usize, n: usize) -> Vec<T> {
    use rayon::prelude::*;
    assert_eq!(b.len(), k * n, "first_operand: B is not k × n");
    let mut t = Vec::with_capacity(k * n);
    t.par_extend((0..n).into_par_iter().flat_map_iter(|j| (0..k).map(move |l| b[l * n + j])));
    t
}

/// A GEMM set up on the device: operands uploaded, descriptors made, the algorithm chosen
/// by cuBLASLt's heuristic (its first choice), C allocated.
pub struct DeviceGemm<'g> {
    gpu: &'g Gpu,
    pub arith: Arith,
    pub layout: Layout,
    first: CudaSlice<u8>,
    second: CudaSlice<u8>,
    c: CudaSlice<u8>,
    /// FP8: the dequantisation factors of the first and second operand (real = stored × factor).
    _scales: Option<CudaSlice<f32>>,
    desc: sys::cublasLtMatmulDesc_t,
    layouts: [sys::cublasLtMatrixLayout_t; 3],
    algo: sys::cublasLtMatmulAlgo_t,
    /// Which cuBLASLt algorithm ran (its id and the workspace it asked for).
    pub algo_id: i32,
    pub algo_workspace: usize,
}

/// A cuBLASLt error as effcal's, naming the call.
pub(crate) fn blas(what: &'static str) -> impl Fn(lt::CublasError) -> GpuError {
    move |err| GpuError::Blas(format!("{what}: {err}"))
}

/// A matmul descriptor for the "TN" form ([`Layout`]): op(first) = T, op(second) = N, with
/// `compute` and `scale` types; for FP8, FAST_ACCUM off (partial sums promoted to FP32).
/// The caller destroys it (`lt::destroy_matmul_desc`).
pub(crate) fn tn_desc(compute: sys::cublasComputeType_t, scale: sys::cudaDataType, fp8: bool) -> Result<sys::cublasLtMatmulDesc_t> {
    use cudarc::cublas::sys::cublasOperation_t as Op;
    use sys::cublasLtMatmulDescAttributes_t as A;
    let desc = lt::create_matmul_desc(compute, scale).map_err(blas("cublasLtMatmulDescCreate"))?;
    let (t, n) = (Op::CUBLAS_OP_T, Op::CUBLAS_OP_N);
    let fast: i8 = 0;
    // SAFETY: each attribute is given a value of its documented type and size.
    let set = unsafe {
        lt::set_matmul_desc_attribute(desc, A::CUBLASLT_MATMUL_DESC_TRANSA, &t as *const _ as *const c_void, size_of::<Op>())
            .and_then(|()| lt::set_matmul_desc_attribute(desc, A::CUBLASLT_MATMUL_DESC_TRANSB, &n as *const _ as *const c_void, size_of::<Op>()))
            .and_then(|()| if fp8 { lt::set_matmul_desc_attribute(desc, A::CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast as *const _ as *const c_void, 1) } else { Ok(()) })
    };
    if let Err(e) = set {
        // SAFETY: created above, not used after.
        let _ = unsafe { lt::destroy_matmul_desc(desc) };
        return Err(blas("cublasLtMatmulDescSetAttribute")(e));
    }
    Ok(desc)
}

/// Points an FP8 descriptor's dequantisation factors at device floats `first` and `second`
/// (cuBLASLt's A/B_SCALE_POINTER: D = α·first·second·op(A)·op(B) + β·C).
///
/// # Safety
/// `desc` is a live descriptor; the pointers stay valid until the products that use them
/// have run.
pub(crate) unsafe fn set_scale_pointers(desc: sys::cublasLtMatmulDesc_t, first: u64, second: u64) -> Result<()> {
    use sys::cublasLtMatmulDescAttributes_t as A;
    unsafe {
        lt::set_matmul_desc_attribute(desc, A::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &first as *const _ as *const c_void, size_of::<u64>())
            .and_then(|()| lt::set_matmul_desc_attribute(desc, A::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &second as *const _ as *const c_void, size_of::<u64>()))
    }
    .map_err(blas("cublasLtMatmulDescSetAttribute"))
}

/// The three layouts of `l`'s TN product (the operands in `storage`, C = D in `output`),
/// made together: where one cannot be made, none is left behind.
pub(crate) fn tn_layouts(storage: sys::cudaDataType, output: sys::cudaDataType, l: &Layout) -> Result<[sys::cublasLtMatrixLayout_t; 3]> {
    let specs = [(storage, l.k, l.rows, l.ld_first), (storage, l.k, l.cols, l.ld_second), (output, l.rows, l.cols, l.ld_c)];
    let mut made = Vec::with_capacity(3);
    for (t, rows, cols, ld) in specs {
        match lt::create_matrix_layout(t, rows, cols, ld) {
            Ok(x) => made.push(x),
            Err(e) => {
                destroy_layouts(&made);
                return Err(blas("cublasLtMatrixLayoutCreate")(e));
            }
        }
    }
    Ok(made.try_into().expect("three layouts"))
}

/// Destroys layouts made by [`tn_layouts`] (null ones skipped), once each.
pub(crate) fn destroy_layouts(layouts: &[sys::cublasLtMatrixLayout_t]) {
    for &l in layouts.iter().filter(|l| !l.is_null()) {
        // SAFETY: a live layout, not used after (the callers' contract).
        let _ = unsafe { lt::destroy_matrix_layout(l) };
    }
}

/// cuBLASLt's first choice of algorithm for `desc` on the layouts (first, second, C = D),
/// within effcal's workspace.
pub(crate) fn first_algo(gpu: &Gpu, desc: sys::cublasLtMatmulDesc_t, layouts: &[sys::cublasLtMatrixLayout_t; 3]) -> std::result::Result<sys::cublasLtMatmulHeuristicResult_t, lt::CublasError> {
    let pref = lt::create_matmul_pref()?;
    let ws = WORKSPACE_BYTES as u64;
    // SAFETY: the preference is live until destroyed below; the descriptor and layouts are
    // the caller's live objects.
    let chosen = unsafe {
        lt::set_matmul_pref_attribute(pref, sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws as *const _ as *const c_void, size_of::<u64>())
            .and_then(|()| lt::get_matmul_algo_heuristic(gpu.lt, desc, layouts[0], layouts[1], layouts[2], layouts[2], pref))
    };
    // SAFETY: created above, not used after.
    let _ = unsafe { lt::destroy_matmul_pref(pref) };
    chosen
}

/// Queues `D = α·op(first)·op(second) + β·C` (C = D, in place) on the GPU's stream.
///
/// # Safety
/// The operands and C are live device buffers of the sizes the layouts describe; α and β
/// point to host values of the descriptor's scale type.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(gpu: &Gpu, desc: sys::cublasLtMatmulDesc_t, alpha: *const c_void, beta: *const c_void, first: u64, second: u64, c: u64, layouts: &[sys::cublasLtMatrixLayout_t; 3], algo: &sys::cublasLtMatmulAlgo_t) -> std::result::Result<(), lt::CublasError> {
    let (ws, _rw) = gpu.workspace_ptr();
    unsafe {
        lt::matmul(
            gpu.lt,
            desc,
            alpha,
            beta,
            first as *const c_void,
            layouts[0],
            second as *const c_void,
            layouts[1],
            c as *const c_void,
            layouts[2],
            c as *mut c_void,
            layouts[2],
            algo,
            ws as *mut c_void,
            WORKSPACE_BYTES,
            gpu.stream.cu_stream() as _,
        )
    }
}

impl<'g> DeviceGemm<'g> {
    /// Uploads `first` (row-major n×k: [`first_operand`] of B) and `second` (row-major A,
    /// m×k), each as its raw storage bytes, with the FP8 dequantisation factors `scales`
    /// (first, second), for the product `layout` ([`Layout::row_major`]); finds an algorithm.
    pub fn new(gpu: &'g Gpu, arith: Arith, layout: Layout, first: &[u8], second: &[u8], scales: [f32; 2]) -> Result<Self> {
        let (m, n, k) = (layout.cols as usize, layout.rows as usize, layout.k as usize);
        let e = arith.input_bytes();
        assert!(first.len() == n * k * e && second.len() == m * k * e, "DeviceGemm: operand sizes do not match the layout");
        let stream = &gpu.stream;
        let first_d = stream.clone_htod(first)?;
        let second_d = stream.clone_htod(second)?;
        let c = stream.alloc_zeros::<u8>(m * n * arith.output_bytes())?;
        let scales_d = if arith.scaled() { Some(stream.clone_htod(&scales)?) } else { None };
        let (storage, output, compute, scale) = arith.types();
        let desc = tn_desc(compute, scale, arith.scaled())?;
        let mut this = DeviceGemm {
            gpu,
            arith,
            layout,
            first: first_d,
            second: second_d,
            c,
            _scales: None,
            desc,
            layouts: [std::ptr::null_mut(); 3],
            algo: unsafe { std::mem::zeroed() },
            algo_id: -1,
            algo_workspace: 0,
        };
        // SAFETY: the scale pointers are this GEMM's own device floats, kept as long as the
        // descriptor; the layouts are destroyed in Drop, after the last use.
        unsafe {
            if let Some(s) = &scales_d {
                let (ptr, _sync) = s.device_ptr(stream);
                set_scale_pointers(this.desc, ptr, ptr + size_of::<f32>() as u64)?;
            }
            this.layouts = tn_layouts(storage, output, &layout)?;
            let heuristic = first_algo(gpu, this.desc, &this.layouts).map_err(|e| {
                if e.0 == sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED {
                    GpuError::Unsupported(format!(
                        "cuBLASLt {} on {} has no {} GEMM kernel (storage {storage:?}, compute {compute:?}){}",
                        gpu.info.cublas_version,
                        gpu.info.name,
                        arith.name(),
                        if arith == Arith::E5m2 { ": Hopper's FP8 GEMMs take E4M3 × E4M3 and mixtures with one E5M2 operand, not E5M2 × E5M2" } else { "" }
                    ))
                } else {
                    GpuError::Blas(format!("cublasLtMatmulAlgoGetHeuristic: {e}"))
                }
            })?;
            this.algo = heuristic.algo;
            this.algo_workspace = heuristic.workspaceSize;
            // The algorithm id is the first attribute word of the opaque algo (CUBLASLT_ALGO_CONFIG_ID).
            let mut id: i32 = -1;
            let mut written = 0usize;
            if sys::cublasLtMatmulAlgoConfigGetAttribute(&this.algo, sys::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_ID, &mut id as *mut _ as *mut c_void, size_of::<i32>(), &mut written).result().is_ok() {
                this.algo_id = id;
            }
        }
        this._scales = scales_d;
        Ok(this)
    }

    /// Queues one product `C = A·B` on the GPU's stream (returns before it has run).
    pub fn launch(&mut self) -> Result<()> {
        let stream = &self.gpu.stream;
        let (one_f64, zero_f64, one_f32, zero_f32, one_i32, zero_i32) = (1f64, 0f64, 1f32, 0f32, 1i32, 0i32);
        let (alpha, beta): (*const c_void, *const c_void) = match self.arith {
            Arith::F64 => (&one_f64 as *const _ as _, &zero_f64 as *const _ as _),
            Arith::Int8 => (&one_i32 as *const _ as _, &zero_i32 as *const _ as _),
            _ => (&one_f32 as *const _ as _, &zero_f32 as *const _ as _),
        };
        let (a, _ra) = self.first.device_ptr(stream);
        let (b, _rb) = self.second.device_ptr(stream);
        let (c, _rc) = self.c.device_ptr_mut(stream);
        // SAFETY: the operands and C are live device buffers of the sizes the layouts
        // describe; alpha and beta point to host values of the scale type.
        unsafe { matmul(self.gpu, self.desc, alpha, beta, a, b, c, &self.layouts, &self.algo) }.map_err(|e| GpuError::Blas(format!("cublasLtMatmul ({}): {e}", self.arith.name())))
    }

    /// C's raw bytes (row-major m×n of f64, f32 or i32), after the queued work.
    pub fn result_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.gpu.stream.clone_dtoh(&self.c)?)
    }
}

impl Drop for DeviceGemm<'_> {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once; the stream is synchronised first so no
        // queued product still reads them.
        let _ = self.gpu.stream.synchronize();
        destroy_layouts(&self.layouts);
        unsafe {
            let _ = lt::destroy_matmul_desc(self.desc);
        }
    }
}

impl Gpu {
    pub(crate) fn workspace_ptr(&self) -> (cudarc::driver::sys::CUdeviceptr, cudarc::driver::SyncOnDrop<'_>) {
        self.workspace.device_ptr(&self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cuBLASLt's semantics, on the host: D = op(first)·op(second), column-major, op(first)
    /// = Transpose, op(second) = None, with the layout's leading dimensions.
    fn lt_tn_on_host(l: &Layout, first: &[f64], second: &[f64]) -> Vec<f64> {
        let (rows, cols, k) = (l.rows as usize, l.cols as usize, l.k as usize);
        let mut d = vec![0.0; l.ld_c as usize * cols];
        for j in 0..cols {
            for i in 0..rows {
                d[i + j * l.ld_c as usize] = (0..k).map(|p| first[p + i * l.ld_first as usize] * second[p + j * l.ld_second as usize]).sum();
            }
        }
        d
    }

    #[test]
    fn the_tn_layout_gives_row_major_c_equal_a_times_b() {
        for (m, n, k) in [(3, 5, 7), (1, 4, 2), (6, 1, 3), (4, 4, 1)] {
            let a: Vec<f64> = (0..m * k).map(|x| (x as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..k * n).map(|x| (x as f64 * 0.73).cos()).collect();
            let l = Layout::row_major(m, n, k);
            let c = lt_tn_on_host(&l, &first_operand(&b, k, n), &a);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    assert!((c[i * n + j] - want).abs() < 1e-12, "m={m} n={n} k={k}: C[{i}][{j}] = {} want {want}", c[i * n + j]);
                }
            }
        }
    }

    #[test]
    fn names_parse_and_bounds_grow_with_k() {
        for a in Arith::ALL {
            assert_eq!(Arith::parse(a.name()), Ok(a));
            assert!(a.arithmetic_bound(8192).0 >= a.arithmetic_bound(1024).0);
        }
        assert_eq!(Arith::parse("fp8").unwrap_err(), "unknown GPU GEMM precision 'fp8' (allowed: f64, f32, tf32, bf16, f16, e4m3, e5m2, int8)");
        // A wrong layout (A·Bᵀ for A·B) on uniform [-1, 1) inputs errs by about 1.9/√k of
        // Σ|a||b| on a typical entry (4√2/(3√k): the difference of two independent sums of
        // k products), and the check takes the largest over its samples: each bound stays
        // below the typical entry's error at the sizes the GPU check runs, so a wrong
        // product cannot pass.
        for k in [8192usize, 16384] {
            let wrong = 4.0 * 2f64.sqrt() / (3.0 * (k as f64).sqrt());
            for a in Arith::ALL {
                assert!(a.arithmetic_bound(k).0 < wrong, "{}: bound {} vs a layout error {wrong}", a.name(), a.arithmetic_bound(k).0);
            }
        }
    }
}
