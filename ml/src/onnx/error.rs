//! The error type of the ONNX importer.

use crate::MlError;
use veil_ir::builder::BuildError;

/// Why importing, compiling or running an ONNX model failed. Every message says what is wrong,
/// where (node and op), and what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not a protobuf-encoded ONNX `ModelProto`.
    #[error("not a valid ONNX model: {0}; pass the bytes of a `.onnx` file (a protobuf ModelProto), e.g. from `torch.onnx.export`, skl2onnx or onnxmltools")]
    Decode(String),
    /// The protobuf decodes but the model is structurally broken (missing graph, dangling
    /// names, tensor data that does not match its shape, ...).
    #[error("malformed ONNX model: {0}")]
    Malformed(String),
    /// An op (or an attribute value of a supported op) that veil cannot compile.
    #[error("unsupported ONNX op `{op}` (node `{node}`): {hint}")]
    Unsupported {
        /// The op type (`domain::OpType` for non-default domains).
        op: String,
        /// The node name (or its first output when unnamed).
        node: String,
        /// Why, and what to do instead.
        hint: String,
    },
    /// A bad attribute or operand of a node.
    #[error("node `{node}` ({op}): {msg}")]
    Node {
        /// The op type.
        op: String,
        /// The node name.
        node: String,
        /// What is wrong.
        msg: String,
    },
    /// Data of the wrong shape (inputs, inputset).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Quantization or model-level failure reported by the ML module.
    #[error(transparent)]
    Ml(#[from] MlError),
    /// Building the veil program failed.
    #[error("building the veil program failed: {0}")]
    Build(#[from] BuildError),
}

/// Result alias of the importer.
pub type OnnxResult<T> = Result<T, OnnxError>;
