//! The internal float graph: an ONNX graph after decoding, with every supported op parsed into
//! an [`FOp`] (attributes checked, defaults applied) and every initializer and `Constant`
//! decoded into a float tensor. Nodes are in topological order.

use super::ops::tree::TreeModel;
use std::collections::HashMap;
use veil_ir::Tensor;

/// A float tensor (row-major `f64`, integers such as labels and shapes included).
pub type FTensor = Tensor<f64>;

/// Elementwise binary arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `Add`.
    Add,
    /// `Sub`.
    Sub,
    /// `Mul`.
    Mul,
    /// `Div`.
    Div,
}

impl BinOp {
    /// Applies the op.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
        }
    }
}

/// A univariate elementwise function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `max(x, 0)`.
    Relu,
    /// `x` if `x >= 0` else `alpha * x`.
    LeakyRelu(f64),
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `min(max(x, lo), hi)`.
    Clip(f64, f64),
    /// `x`.
    Identity,
}

impl Act {
    /// Applies the function.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::Softplus => {
                if x > 30.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
            Act::Clip(lo, hi) => x.max(lo).min(hi),
            Act::Identity => x,
        }
    }
}

/// Attributes of a 2-D pooling op (`AveragePool`, `MaxPool`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// `AveragePool`: padded cells count in the divisor.
    pub count_include_pad: bool,
}

/// Classifier post-transform (ONNX-ML `post_transform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    /// Scores as they are.
    None,
    /// Elementwise sigmoid.
    Logistic,
    /// Softmax over the classes.
    Softmax,
    /// Softmax over the nonzero scores (zeros stay zero).
    SoftmaxZero,
}

/// How a classifier turns its targets into one score per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// One score per class.
    No,
    /// Two classes, one target `s` that is a probability: scores `[1 - s, s]`.
    Probability,
    /// Two classes, one target `s` that is a margin: scores `[-s, s]`.
    Margin,
    /// Two classes, the decision value `d` of an ONNX-ML `SVMClassifier`: scores `[-d, d]`
    /// as onnxruntime gives them, and the first class when `d > 0` (libsvm's convention).
    SvmDecision,
}

/// Normalizer norms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Divide by the max.
    Max,
    /// Divide by the sum of absolute values.
    L1,
    /// Divide by the Euclidean norm.
    L2,
}

/// A parsed op with its attributes (constant operands stay graph inputs).
#[derive(Clone, Debug, PartialEq)]
pub enum FOp {
    /// `Gemm`: `alpha * op(A) @ op(B) + beta * C`.
    Gemm {
        /// Scale of the product.
        alpha: f64,
        /// Scale of `C`.
        beta: f64,
        /// Transpose `A`.
        trans_a: bool,
        /// Transpose `B`.
        trans_b: bool,
    },
    /// `MatMul` (ranks 1 and 2).
    MatMul,
    /// `Add`, `Sub`, `Mul`, `Div` with broadcasting.
    Binary(BinOp),
    /// Univariate activations, `Clip` and `Identity`.
    Act(Act),
    /// `Conv` (2-D, NCHW).
    Conv {
        /// Kernel `[kh, kw]` (checked against the weight).
        kernel: Option<[usize; 2]>,
        /// Strides, pads, dilations, group.
        attrs: veil_ir::Conv2dAttrs,
    },
    /// `AveragePool` (2-D).
    AvgPool(Pool),
    /// `MaxPool` (2-D).
    MaxPool(Pool),
    /// `BatchNormalization` (inference mode).
    BatchNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// `Flatten`.
    Flatten {
        /// First axis of the second output dimension.
        axis: i64,
    },
    /// `Reshape` (target shape from the constant second operand).
    Reshape {
        /// `0` in the shape means a zero-sized axis rather than "copy".
        allowzero: bool,
    },
    /// `Transpose`.
    Transpose {
        /// Permutation (reversed axes when absent).
        perm: Option<Vec<usize>>,
    },
    /// `Concat`.
    Concat {
        /// Axis (may be negative).
        axis: i64,
    },
    /// `Split`.
    Split {
        /// Axis (may be negative).
        axis: i64,
        /// Part sizes from the attribute (opset < 13); else the optional second operand, else
        /// equal parts.
        sizes: Option<Vec<usize>>,
    },
    /// `Softmax` (client side).
    Softmax {
        /// Axis (may be negative).
        axis: i64,
    },
    /// `ArgMax` (client side).
    ArgMax {
        /// Axis (may be negative).
        axis: i64,
        /// Keep the reduced axis.
        keepdims: bool,
        /// Last index on ties.
        select_last: bool,
    },
    /// ONNX-ML `Normalizer` (client side).
    Normalizer(Norm),
    /// `Cast`: to an integer type (truncates) or to a float type (no-op).
    Cast {
        /// Target is an integer type.
        to_int: bool,
    },
    /// ONNX-ML `ArrayFeatureExtractor`: elements of the last axis of operand 0 at the indices
    /// of operand 1 (client side).
    ArrayFeatureExtractor,
    /// ONNX-ML `ZipMap` (client side): the per-class probabilities as one `{class:
    /// probability}` map per sample. veil keeps them as the `[batch, classes]` tensor, classes
    /// in the order of the map's keys (the classifier's label order).
    ZipMap,
    /// ONNX-ML `Scaler`: `(x - offset) * scale` per feature.
    Scaler {
        /// Offsets (one, or one per feature).
        offset: Vec<f64>,
        /// Scales (one, or one per feature).
        scale: Vec<f64>,
    },
    /// Scores of ONNX-ML `LinearClassifier` / `LinearRegressor`: `x @ w + b`.
    Linear {
        /// Weights `[features, targets]`.
        w: FTensor,
        /// Intercepts, one per target.
        b: Vec<f64>,
    },
    /// Raw sums of leaf weights of ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor`.
    Trees(Box<TreeModel>),
    /// Classifier head of the ONNX-ML classifiers (client side): base values, binary
    /// expansion, post-transform, then `label = labels[argmax]`. Outputs `(label, scores)`.
    ClassifierPost {
        /// Added to the targets.
        base: Vec<f64>,
        /// Binary expansion of a single target.
        binary: Binary,
        /// The post-transform.
        post: PostTransform,
        /// Class labels.
        labels: Vec<i64>,
    },
    /// Regressor head of the ONNX-ML regressors (client side): base values and
    /// post-transform.
    RegressorPost {
        /// Added to the targets.
        base: Vec<f64>,
        /// The post-transform.
        post: PostTransform,
    },
}

impl FOp {
    /// Whether the op runs on the client, in the clear, after decryption (post-processing).
    pub fn is_client_side(&self) -> bool {
        matches!(
            self,
            FOp::Softmax { .. }
                | FOp::ArgMax { .. }
                | FOp::Normalizer(_)
                | FOp::Cast { to_int: true }
                | FOp::ArrayFeatureExtractor
                | FOp::ZipMap
                | FOp::ClassifierPost { .. }
                | FOp::RegressorPost { .. }
        )
    }

    /// Whether the op may run on either side (moves data only).
    pub fn is_movable(&self) -> bool {
        matches!(
            self,
            FOp::Act(Act::Identity)
                | FOp::Cast { to_int: false }
                | FOp::Reshape { .. }
                | FOp::Flatten { .. }
        )
    }
}

/// One node of a [`FloatGraph`].
#[derive(Clone, Debug, PartialEq)]
pub struct FNode {
    /// Node name (its first output when the ONNX node is unnamed).
    pub name: String,
    /// ONNX op type, for messages.
    pub op_type: String,
    /// The parsed op.
    pub op: FOp,
    /// Operand value names (`None` for an omitted optional operand).
    pub inputs: Vec<Option<String>>,
    /// Result value names.
    pub outputs: Vec<String>,
}

impl FNode {
    /// Operand `i`, or an error naming the node when it is missing.
    pub fn input(&self, i: usize) -> super::OnnxResult<&str> {
        self.inputs
            .get(i)
            .and_then(|v| v.as_deref())
            .ok_or_else(|| super::OnnxError::Node {
                op: self.op_type.clone(),
                node: self.name.clone(),
                msg: format!("operand {i} is missing"),
            })
    }

    /// An error about this node.
    pub fn err(&self, msg: impl Into<String>) -> super::OnnxError {
        super::OnnxError::Node {
            op: self.op_type.clone(),
            node: self.name.clone(),
            msg: msg.into(),
        }
    }

    /// An "unsupported" error about this node.
    pub fn unsupported(&self, hint: impl Into<String>) -> super::OnnxError {
        super::OnnxError::Unsupported {
            op: self.op_type.clone(),
            node: self.name.clone(),
            hint: hint.into(),
        }
    }
}

/// A decoded model: one float input, constants, nodes in topological order, outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatGraph {
    /// Name of the (single) non-constant graph input.
    pub input: String,
    /// Its declared dimensions (`None`: symbolic, e.g. the batch axis).
    pub input_dims: Vec<Option<usize>>,
    /// Initializers and `Constant` results.
    pub consts: HashMap<String, FTensor>,
    /// Nodes, topologically sorted.
    pub nodes: Vec<FNode>,
    /// Graph output names, in order.
    pub outputs: Vec<String>,
}

impl FloatGraph {
    /// Shape of one sample: the declared input dimensions after the batch axis. Fails when one
    /// of them is symbolic.
    pub fn sample_shape(&self) -> super::OnnxResult<Vec<usize>> {
        if self.input_dims.is_empty() {
            return Err(super::OnnxError::Shape(format!(
                "input `{}` is a scalar; veil needs a batch axis first, e.g. [N, features]",
                self.input
            )));
        }
        self.input_dims[1..]
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.ok_or_else(|| {
                    super::OnnxError::Shape(format!(
                        "dimension {} of input `{}` is symbolic; only the batch axis (0) may be: export the model with fixed feature dimensions",
                        i + 1,
                        self.input
                    ))
                })
            })
            .collect()
    }

    /// The nodes reading value `name`.
    pub fn consumers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FNode> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.inputs.iter().any(|i| i.as_deref() == Some(name)))
    }
}
