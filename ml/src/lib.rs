//! # veil-ml: private ML inference on top of the compiler
//!
//! Quantization, datasets, built-in models, ONNX import, the `Simulate`/`Execute` backends and
//! the client's deployment artifact. Models compile to tensor-level veil programs through
//! `veil-compiler`; nothing here is needed to compile a plain integer program.
//!
//!
//! - [`quantize`]: uniform affine quantizers, the quantized Gemm and fused activation TLUs.
//! - [`dataset`]: bundled datasets and scikit-learn's train/test split.
//! - [`model`]: modes, backends, the client spec and the compiled model.
//! - [`linear`]: linear and logistic regression, linear SVM (no bootstrap).
//! - [`mlp`]: a ReLU multi-layer perceptron trained quantization-aware for narrow bootstraps.
//! - [`cart`]: decision trees grown on quantized features; [`tree`] and [`ensemble`]: the
//!   tree models; [`hummingbird`]: trees as tensor programs.
//! - [`xgboost`]: gradient-boosted trees imported from XGBoost's JSON models;
//!   [`float_tree`]: tree ensembles with float thresholds (XGBoost, ONNX) quantized to the
//!   tree program.
//! - [`matrix`], [`rng`], [`error`]: support.
//! - [`onnx`]: ONNX import (scikit-learn, XGBoost/LightGBM through onnxmltools, PyTorch MLPs
//!   and CNNs): the float graph, calibration, the server/client split, quantized emission.
//! - [`backend`]: the `Simulate` and `Execute` backends of [`Mode`].
//! - [`artifact`]: the client's deployment artifact ([`artifact::ClientArtifact`]: encodings,
//!   key requirements, quantizers and post-processing); the server's is in the runtime.
//!
//! Models follow scikit-learn: `fit`, `predict`, `predict_proba`, then `compile(inputset,
//! config)` to a tensor-level veil program plus a client spec, and `predict_clear` (the
//! quantized integer program run by the interpreter) or `predict_with(x, backend)`.

pub mod artifact;
pub mod backend;
pub mod cart;
pub mod dataset;
pub mod ensemble;
pub mod error;
pub mod float_tree;
pub mod hummingbird;
pub mod linear;
pub mod matrix;
pub mod mlp;
pub mod model;
pub mod onnx;
pub mod quantize;
pub mod rng;
pub mod tree;
pub mod xgboost;

pub use cart::TreeParams;
pub use dataset::{train_test_split, Dataset, Split};
pub use ensemble::{RandomForestClassifier, RandomForestRegressor};
pub use error::{MlError, MlResult};
pub use hummingbird::{TreeEnsemble, TreeKind};
pub use linear::{LinearRegression, LinearSvc, LinearWeights, LogisticRegression};
pub use matrix::Matrix;
pub use mlp::MlpClassifier;
pub use model::{
    accuracy, r2_score, Backend, BackendError, CircuitStats, ClientSpec, CompileConfig,
    CompiledModel, FheClassifier, FheModel, FheRegressor, Interpreter, Mode, NBits, OutputDecoder,
    PostProcess,
};
pub use quantize::{
    emit_activation, emit_channel_activation, last_float_where, round_for_lookup, tabulate_lookup,
    BinEdge, FeatureBins, Granularity, LookupRounding, QuantOptions, QuantizedGemm, Rounding,
    RoundingMethod, UniformQuantizer,
};
pub use tree::{DecisionTreeClassifier, DecisionTreeRegressor};
pub use xgboost::{XgbBooster, XgbClassifier, XgbRegressor};
