//! The harness's one error type. Each variant says what was wrong and what is allowed.

use effcal_kernels::KernelError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad value on the command line or in a config: names the field and allowed values.
    #[error("invalid {field} '{given}': {allowed}")]
    InvalidInput { field: String, given: String, allowed: String },
    #[error("config {file}: {message}")]
    Config { file: String, message: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("MPI: {0}")]
    Mpi(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The report's picture could not be drawn (an internal error).
    #[error("report: {0}")]
    Report(String),
    /// The GPU, its driver or a CUDA library failed (not bad input: the run found a GPU).
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
    pub fn invalid(field: impl Into<String>, given: impl ToString, allowed: impl Into<String>) -> Self {
        Self::InvalidInput { field: field.into(), given: given.to_string(), allowed: allowed.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
