//! Private ML inference: quantization, datasets and built-in models compiled to FHE.
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
//!
//! Models follow scikit-learn: `fit`, `predict`, `predict_proba`, then `compile(inputset,
//! config)` to a tensor-level veil program plus a client spec, and `predict_clear` (the
//! quantized integer program run by the interpreter) or `predict_with(x, backend)`.

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
    emit_activation, emit_channel_activation, Granularity, QuantOptions, QuantizedGemm, Rounding,
    UniformQuantizer,
};
pub use tree::{DecisionTreeClassifier, DecisionTreeRegressor};
pub use xgboost::{XgbBooster, XgbClassifier, XgbRegressor};
