//! The runtime's error type.

use veil_ir::serial::SerialError;
use veil_ir::tensor::ShapeError;

/// Everything that can go wrong in the runtime. Messages say what failed, where, and how to
/// fix it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A parameter set misses the 128-bit security floor and insecure sets were not allowed.
    #[error("parameter set @p{index} is not 128-bit secure: {why}; use secure parameters (or set `allow_insecure_for_tests` in tests only)")]
    Insecure {
        /// Index of the set in the program.
        index: usize,
        /// Why it is insecure.
        why: String,
    },
    /// A parameter set cannot be used by the runtime (bad dimension, width, decomposition).
    #[error("parameter set @p{index} is unusable: {why}")]
    BadParams {
        /// Index of the set.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A key needed by the program is not in the given keys.
    #[error("missing key: {0}; generate keys for this program (`KeyRequirements::of(program)`)")]
    MissingKey(String),
    /// Ciphertexts, keys or programs belong to different key generations or parameter sets.
    #[error("key mismatch: {0}")]
    KeyMismatch(String),
    /// A clear value does not fit its declared type or encoding.
    #[error("value out of range: {0}")]
    OutOfRange(String),
    /// Inputs do not match the program's declared inputs.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The program cannot be executed (not at the TFHE level, unsupported op, malformed node).
    #[error("cannot execute program: {0}")]
    Program(String),
    /// A shape error of a levelled kernel, with the value it happened at.
    #[error("shape error at {at}: {msg}")]
    Shape {
        /// Where (value and op).
        at: String,
        /// Kernel message.
        msg: String,
    },
    /// Serialized data is malformed, truncated, corrupted or of another kind.
    #[error("cannot load veil data: {0}")]
    Serial(#[from] SerialError),
    /// Decoded data is well-formed but inconsistent with what it claims to be.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The artifact.
        what: &'static str,
        /// What is inconsistent.
        why: String,
    },
    /// A file system error (key cache, files).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The thread pool could not be built.
    #[error("cannot build a thread pool of {threads} threads: {msg}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// The pool builder's message.
        msg: String,
    },
}

impl RuntimeError {
    /// A shape error raised by a kernel at `at`.
    pub fn shape(at: impl Into<String>, e: ShapeError) -> Self {
        RuntimeError::Shape {
            at: at.into(),
            msg: e.0,
        }
    }
}

/// Result alias of the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
