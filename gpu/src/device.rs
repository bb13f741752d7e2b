//! Finding the CUDA device and saying what it is. Every library is probed before its first
//! call (cudarc loads them when first used, and panics where one is missing): a machine
//! without a driver, without a device or without CUDA 13's cuBLAS gets
//! [`GpuError::Unavailable`] naming what is missing, before anything is measured.

use crate::{GpuError, Result, spec};
use cudarc::cublas::sys as blas_sys;
use cudarc::cublaslt::sys as lt_sys;
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use std::sync::Arc;

/// What a GPU is, as the calibration records it.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuInfo {
    /// The CUDA ordinal this process uses (after CUDA_VISIBLE_DEVICES).
    pub ordinal: usize,
    /// Devices this process sees.
    pub visible: usize,
    /// cuDeviceGetName, e.g. "NVIDIA H200".
    pub name: String,
    pub compute_capability: (i32, i32),
    pub memory_bytes: u64,
    pub multiprocessors: u32,
    pub l2_bytes: u64,
    /// PCI domain:bus:device.function, as lspci and NVML name the board.
    pub pci_bus_id: String,
    /// The CUDA version the driver supports (cuDriverGetVersion), e.g. "13.0".
    pub cuda_driver_api: String,
    /// The NVIDIA driver (NVML), e.g. "580.65.06"; None where NVML is missing.
    pub driver_version: Option<String>,
    /// cuBLAS's version (cublasGetVersion), e.g. "13.0.0".
    pub cublas_version: String,
    /// The GPU table's entry for this device; None where the table has none.
    pub spec: Option<&'static spec::Spec>,
}

/// One device with a stream and the cuBLAS and cuBLASLt handles effcal uses on it.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub info: GpuInfo,
    pub(crate) blas: blas_sys::cublasHandle_t,
    pub(crate) lt: lt_sys::cublasLtHandle_t,
    /// cuBLASLt's workspace (32 MiB, what NVIDIA recommends for Hopper).
    pub(crate) workspace: CudaSlice<u8>,
}

/// The libraries a GPU run loads, each with what is missing when it cannot be found.
fn check_libraries() -> Result<()> {
    // SAFETY: each probe only tries to dlopen the library's candidate names.
    let present = unsafe {
        [
            (cudarc::driver::sys::is_culib_present(), "the NVIDIA driver's libcuda.so.1 was not found: this machine has no NVIDIA driver (or it is not on the loader's path)"),
            (blas_sys::is_culib_present(), "CUDA 13's cuBLAS (libcublas.so.13) was not found: install the CUDA 13 libraries or put them on LD_LIBRARY_PATH"),
            (lt_sys::is_culib_present(), "CUDA 13's cuBLASLt (libcublasLt.so.13) was not found: install the CUDA 13 libraries or put them on LD_LIBRARY_PATH"),
        ]
    };
    match present.iter().find(|p| !p.0) {
        Some((_, missing)) => Err(GpuError::Unavailable(missing.to_string())),
        None => Ok(()),
    }
}

/// Devices this process sees; an error naming the reason where it sees none.
pub fn count() -> Result<usize> {
    // SAFETY: a dlopen probe.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(GpuError::Unavailable("the NVIDIA driver's libcuda.so.1 was not found: this machine has no NVIDIA driver (or it is not on the loader's path)".into()));
    }
    cudarc::driver::result::init().map_err(|e| GpuError::Unavailable(format!("the CUDA driver found no usable GPU ({e}; CUDA_VISIBLE_DEVICES={})", std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into()))))?;
    let n = cudarc::driver::result::device::get_count()?;
    if n < 1 {
        return Err(GpuError::Unavailable("the CUDA driver sees no GPU".into()));
    }
    Ok(n as usize)
}

impl Gpu {
    /// Opens device `ordinal % count` (one process per GPU: the harness passes the local rank).
    pub fn open(ordinal: usize) -> Result<Self> {
        check_libraries()?;
        let visible = count()?;
        let ordinal = ordinal % visible;
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.new_stream()?;
        let attr = |a: Attr| ctx.attribute(a);
        let (major, minor) = ctx.compute_capability()?;
        let blas = cudarc::cublas::result::create_handle().map_err(|e| GpuError::Blas(format!("creating a handle: {e}")))?;
        // SAFETY: the handle was just created; the stream outlives it (both live in `Gpu`).
        unsafe { cudarc::cublas::result::set_stream(blas, stream.cu_stream() as _) }.map_err(|e| GpuError::Blas(format!("setting the stream: {e}")))?;
        let mut version = 0;
        // SAFETY: a valid handle and a place for the answer.
        unsafe { blas_sys::cublasGetVersion_v2(blas, &mut version) }.result().map_err(|e| GpuError::Blas(format!("cublasGetVersion: {e}")))?;
        let lt = cudarc::cublaslt::result::create_handle().map_err(|e| GpuError::Blas(format!("creating a cuBLASLt handle: {e}")))?;
        let mut driver_api = 0;
        // SAFETY: a place for the answer.
        unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver_api) }.result()?;
        let name = ctx.name()?;
        let info = GpuInfo {
            ordinal,
            visible,
            spec: spec::find(spec::table(), &name),
            name,
            compute_capability: (major, minor),
            memory_bytes: ctx.total_mem()? as u64,
            multiprocessors: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
            l2_bytes: attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)? as u64,
            pci_bus_id: format!(
                "{:04x}:{:02x}:{:02x}.0",
                attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)?,
                attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)?,
                attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)?
            ),
            cuda_driver_api: format!("{}.{}", driver_api / 1000, driver_api % 1000 / 10),
            driver_version: crate::power::driver_version(),
            // cuBLAS encodes major·10000 + minor·100 + patch (since CUDA 12: major·10000).
            cublas_version: format!("{}.{}.{}", version / 10000, version % 10000 / 100, version % 100),
        };
        let workspace = stream.alloc_zeros::<u8>(crate::gemm::WORKSPACE_BYTES)?;
        Ok(Gpu { ctx, stream, info, blas, lt, workspace })
    }

    /// Free and total device memory, bytes.
    pub fn memory(&self) -> Result<(u64, u64)> {
        let (free, total) = self.ctx.mem_get_info()?;
        Ok((free as u64, total as u64))
    }

    /// Waits for the work queued on the stream.
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: both handles were created in `open` and are destroyed once, here.
        unsafe {
            let _ = cudarc::cublas::result::destroy_handle(self.blas);
            let _ = cudarc::cublaslt::result::destroy_handle(self.lt);
        }
    }
}
