//! The error type of the ML frontend.

use thiserror::Error;

/// Why an ML operation (training, quantization, compilation, inference) failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MlError {
    /// Bad user data: shapes, labels, parameters. The message says what, where and how to fix.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A method that needs a fitted (or compiled) model was called too early.
    #[error("{model} is not {state}: call `{call}` first")]
    NotReady {
        /// Model name.
        model: &'static str,
        /// `"fitted"` or `"compiled"`.
        state: &'static str,
        /// The method to call first.
        call: &'static str,
    },
    /// Training failed (solver error, degenerate data).
    #[error("training failed: {0}")]
    Training(String),
    /// The quantized program could not be built (a width or shape problem).
    #[error("building the FHE program failed: {0}")]
    Build(String),
    /// The backend could not run the program.
    #[error("running the program failed ({backend}): {msg}")]
    Backend {
        /// Backend name.
        backend: String,
        /// What went wrong.
        msg: String,
    },
}

impl From<veil_ir::builder::BuildError> for MlError {
    fn from(e: veil_ir::builder::BuildError) -> Self {
        MlError::Build(e.to_string())
    }
}

/// Result alias of the ML frontend.
pub type MlResult<T> = Result<T, MlError>;
