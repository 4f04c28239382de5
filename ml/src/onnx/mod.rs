//! ONNX import: float models from PyTorch, scikit-learn (skl2onnx), XGBoost (onnxmltools) and
//! friends, quantized and compiled to veil programs.
//!
//! Flow: [`OnnxImport::from_bytes`] decodes the protobuf (the committed [`proto`] messages,
//! no `protoc` needed) into a [`graph::FloatGraph`] of parsed ops with float constants;
//! [`OnnxImport::predict_float`] evaluates it in float (the reference);
//! [`OnnxImport::compile`] runs it on an inputset to calibrate, splits it into an encrypted
//! server part and a client-side tail (Softmax, ArgMax, Normalizer, classifier heads), and
//! quantizes the server part with the `ml` module's quantizers into a tensor-level veil
//! program plus a [`crate::ClientSpec`]. [`OnnxModel::run`] executes the whole pipeline
//! with any [`crate::Backend`] (`predict_clear` uses the interpreter).
//!
//! Supported ops: Gemm, MatMul, Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Softplus,
//! Clip, Conv, AveragePool, MaxPool, BatchNormalization, Flatten, Reshape, Transpose, Concat,
//! Split, Identity, Dropout, Constant, Cast; client-side Softmax, ArgMax; ONNX-ML
//! LinearClassifier, LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor,
//! SVMClassifier and SVMRegressor (linear kernel, one decision value), Scaler,
//! Normalizer, ArrayFeatureExtractor, ZipMap (client side: the probabilities stay a tensor).
//! Anything else is refused with an error naming the op and
//! the node.
//!
//! Module map: [`load`] (decoding), [`graph`] (the float graph), [`eval`] (float semantics),
//! [`ops`] (one file per op family: parse, float, quantized emission), [`qval`] (quantized
//! values and fused table lookups), [`compile`] (driver), [`model`] (public API), [`error`].

pub mod attrs;
pub mod compile;
pub mod error;
pub mod eval;
pub mod graph;
pub mod load;
pub mod model;
pub mod ops;
pub mod proto;
pub mod qval;
pub mod synth;

pub use error::{OnnxError, OnnxResult};
pub use graph::{FTensor, FloatGraph};
pub use model::{ImportConfig, OnnxImport, OnnxModel};
