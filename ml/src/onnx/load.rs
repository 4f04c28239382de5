//! Decoding: protobuf bytes -> [`ModelProto`] -> [`FloatGraph`], with clear errors for
//! malformed files and unsupported ops.

use super::attrs::{tensor, Attrs};
use super::error::{OnnxError, OnnxResult};
use super::graph::{Act, BinOp, FNode, FOp, FTensor, FloatGraph, Norm, Pool};
use super::ops;
use super::proto::{tensor_proto::DataType, type_proto, ModelProto};
use prost::Message;
use std::collections::{HashMap, HashSet};

/// Decodes an ONNX file's bytes.
pub fn decode_model(bytes: &[u8]) -> OnnxResult<ModelProto> {
    if bytes.is_empty() {
        return Err(OnnxError::Decode("the file is empty".into()));
    }
    ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))
}

/// Parses a decoded model into a [`FloatGraph`].
pub fn load_model(m: &ModelProto) -> OnnxResult<FloatGraph> {
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Malformed("the model has no graph".into()))?;
    if g.node.is_empty() {
        return Err(OnnxError::Malformed("the graph has no nodes".into()));
    }
    let mut consts: HashMap<String, FTensor> = HashMap::new();
    for t in &g.initializer {
        let name = t.name.clone().unwrap_or_default();
        consts.insert(name.clone(), tensor(t, &format!("initializer `{name}`"))?);
    }
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|i| !consts.contains_key(i.name()))
        .collect();
    if inputs.len() != 1 {
        return Err(OnnxError::Unsupported {
            op: "graph".into(),
            node: g.name().to_string(),
            hint: format!(
                "the model has {} non-constant inputs ({}); veil compiles models with exactly one input tensor: concatenate the features into one input before exporting",
                inputs.len(),
                inputs.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let input = inputs[0].name().to_string();
    let input_dims = match inputs[0].r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            let dt = t.elem_type.unwrap_or(0);
            if !matches!(
                DataType::try_from(dt),
                Ok(DataType::Float | DataType::Double | DataType::Float16)
            ) {
                return Err(OnnxError::Unsupported {
                    op: "graph input".into(),
                    node: input.clone(),
                    hint: format!("input element type {dt} is not a float type; veil quantizes float inputs: export with a float32 input"),
                });
            }
            t.shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match d.value {
                            Some(super::proto::tensor_shape_proto::dimension::Value::DimValue(
                                v,
                            )) if v > 0 => Some(v as usize),
                            _ => None,
                        })
                        .collect()
                })
                .ok_or_else(|| {
                    OnnxError::Malformed(format!("input `{input}` has no declared shape"))
                })?
        }
        _ => {
            return Err(OnnxError::Malformed(format!(
                "input `{input}` is not declared as a tensor"
            )))
        }
    };
    let mut defined: HashSet<String> = consts.keys().cloned().collect();
    defined.insert(input.clone());
    let mut nodes = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let name = if n.name().is_empty() {
            n.output.first().cloned().unwrap_or_else(|| format!("#{i}"))
        } else {
            n.name().to_string()
        };
        for inp in n.input.iter().filter(|s| !s.is_empty()) {
            if !defined.contains(inp) {
                return Err(OnnxError::Malformed(format!(
                    "node `{name}` ({}) reads `{inp}`, which no earlier node, input or initializer defines (nodes must be in topological order)",
                    n.op_type()
                )));
            }
        }
        defined.extend(n.output.iter().cloned());
        let a = Attrs { n, name: &name };
        if n.op_type() == "Constant" && is_default(n.domain()) {
            let t = constant(&a)?;
            consts.insert(a.output(0)?.to_string(), t);
            continue;
        }
        nodes.extend(parse_node(&a)?);
    }
    let outputs: Vec<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    for o in &outputs {
        if !defined.contains(o) {
            return Err(OnnxError::Malformed(format!(
                "graph output `{o}` is not produced by any node"
            )));
        }
    }
    Ok(FloatGraph {
        input,
        input_dims,
        consts,
        nodes,
        outputs,
    })
}

fn is_default(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn constant(a: &Attrs) -> OnnxResult<FTensor> {
    if let Some(t) = a.get("value").and_then(|x| x.t.as_ref()) {
        return tensor(t, &format!("Constant `{}`", a.name));
    }
    if let Some(f) = a.get("value_float").and_then(|x| x.f) {
        return Ok(FTensor::scalar(f as f64));
    }
    if let Some(i) = a.get("value_int").and_then(|x| x.i) {
        return Ok(FTensor::scalar(i as f64));
    }
    if let Some(x) = a.get("value_floats") {
        let v: Vec<f64> = x.floats.iter().map(|&f| f as f64).collect();
        return Ok(FTensor::new(vec![v.len()], v).expect("1-D"));
    }
    if let Some(x) = a.get("value_ints") {
        let v: Vec<f64> = x.ints.iter().map(|&f| f as f64).collect();
        return Ok(FTensor::new(vec![v.len()], v).expect("1-D"));
    }
    Err(a.unsupported("only `value`, `value_float(s)` and `value_int(s)` constants are supported"))
}

fn pool(a: &Attrs, avg: bool) -> OnnxResult<Pool> {
    let kernel = a.pair("kernel_shape", 0)?;
    if kernel.contains(&0) {
        return Err(a.err("`kernel_shape` is required (two positive values)"));
    }
    if a.int_or("ceil_mode", 0) != 0 {
        return Err(a.unsupported("ceil_mode = 1 is not supported: export with ceil_mode = 0"));
    }
    if a.ints("dilations").iter().any(|&d| d != 1) {
        return Err(a.unsupported("dilated pooling is not supported"));
    }
    if !avg && a.n.output.len() > 1 {
        return Err(a.unsupported("the `Indices` output of MaxPool is not supported"));
    }
    Ok(Pool {
        kernel,
        strides: a.pair("strides", 1)?,
        pads: a.pads()?,
        count_include_pad: a.int_or("count_include_pad", 0) != 0,
    })
}

fn parse_node(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let n = a.n;
    let one = |op| Ok(vec![a.node(op)]);
    if n.domain() == "ai.onnx.ml" {
        return match n.op_type() {
            "LinearClassifier" => ops::linear::parse_linear_classifier(a),
            "LinearRegressor" => ops::linear::parse_linear_regressor(a),
            "TreeEnsembleClassifier" => ops::tree::parse_classifier(a),
            "TreeEnsembleRegressor" => ops::tree::parse_regressor(a),
            "SVMClassifier" => ops::linear::parse_svm_classifier(a),
            "SVMRegressor" => ops::linear::parse_svm_regressor(a),
            "Scaler" => one(FOp::Scaler {
                offset: a.floats("offset")?,
                scale: a.floats("scale")?,
            }),
            "Normalizer" => one(FOp::Normalizer(
                match a.string("norm").as_deref().unwrap_or("MAX") {
                    "MAX" => Norm::Max,
                    "L1" => Norm::L1,
                    "L2" => Norm::L2,
                    o => return Err(a.err(format!("unknown norm {o}"))),
                },
            )),
            "ArrayFeatureExtractor" => one(FOp::ArrayFeatureExtractor),
            "ZipMap" => one(FOp::ZipMap),
            other => Err(a.unsupported(format!(
                "ONNX-ML op {other} is not supported; supported: LinearClassifier, LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor, SVMClassifier and SVMRegressor (linear kernel), Scaler, Normalizer, ArrayFeatureExtractor, ZipMap"
            ))),
        };
    }
    if !is_default(n.domain()) {
        return Err(a.unsupported(format!(
            "domain `{}` is not supported; veil reads the default ONNX domain and ai.onnx.ml",
            n.domain()
        )));
    }
    match n.op_type() {
        "Gemm" => one(FOp::Gemm {
            alpha: a.float_or("alpha", 1.0),
            beta: a.float_or("beta", 1.0),
            trans_a: a.int_or("transA", 0) != 0,
            trans_b: a.int_or("transB", 0) != 0,
        }),
        "MatMul" => one(FOp::MatMul),
        "Add" => one(FOp::Binary(BinOp::Add)),
        "Sub" => one(FOp::Binary(BinOp::Sub)),
        "Mul" => one(FOp::Binary(BinOp::Mul)),
        "Div" => one(FOp::Binary(BinOp::Div)),
        "Relu" => one(FOp::Act(Act::Relu)),
        "LeakyRelu" => one(FOp::Act(Act::LeakyRelu(a.float_or("alpha", 0.01)))),
        "Sigmoid" => one(FOp::Act(Act::Sigmoid)),
        "Tanh" => one(FOp::Act(Act::Tanh)),
        "Softplus" => one(FOp::Act(Act::Softplus)),
        "Identity" | "Dropout" => {
            if n.output.len() > 1 {
                return Err(a.unsupported("the mask output of Dropout is not supported"));
            }
            let mut node = a.node(FOp::Act(Act::Identity));
            node.inputs.truncate(1);
            Ok(vec![node])
        }
        "Clip" => {
            // opset < 11: attributes; later: optional operands (resolved when run).
            let lo = a.float_or("min", f64::NEG_INFINITY);
            let hi = a.float_or("max", f64::INFINITY);
            one(FOp::Act(Act::Clip(lo, hi)))
        }
        "Conv" => {
            let k = a.pair("kernel_shape", 0)?;
            one(FOp::Conv {
                kernel: (!k.contains(&0)).then_some(k),
                attrs: veil_ir::Conv2dAttrs {
                    strides: a.pair("strides", 1)?,
                    pads: a.pads()?,
                    dilations: a.pair("dilations", 1)?,
                    group: a.int_or("group", 1).max(1) as usize,
                },
            })
        }
        "AveragePool" => one(FOp::AvgPool(pool(a, true)?)),
        "MaxPool" => one(FOp::MaxPool(pool(a, false)?)),
        "BatchNormalization" => {
            if a.int_or("training_mode", 0) != 0 || n.output.len() > 1 {
                return Err(a.unsupported(
                    "training-mode BatchNormalization is not supported: export the model in eval mode",
                ));
            }
            one(FOp::BatchNorm {
                eps: a.float_or("epsilon", 1e-5),
            })
        }
        "Flatten" => one(FOp::Flatten {
            axis: a.int_or("axis", 1),
        }),
        "Reshape" => one(FOp::Reshape {
            allowzero: a.int_or("allowzero", 0) != 0,
        }),
        "Transpose" => {
            let p = a.ints("perm");
            one(FOp::Transpose {
                perm: (!p.is_empty()).then(|| p.iter().map(|&v| v.max(0) as usize).collect()),
            })
        }
        "Concat" => one(FOp::Concat {
            axis: a.int("axis").ok_or_else(|| a.err("`axis` is required"))?,
        }),
        "Split" => {
            let s = a.ints("split");
            one(FOp::Split {
                axis: a.int_or("axis", 0),
                sizes: (!s.is_empty()).then(|| s.iter().map(|&v| v.max(0) as usize).collect()),
            })
        }
        "Softmax" => one(FOp::Softmax {
            axis: a.int_or("axis", -1),
        }),
        "ArgMax" => one(FOp::ArgMax {
            axis: a.int_or("axis", 0),
            keepdims: a.int_or("keepdims", 1) != 0,
            select_last: a.int_or("select_last_index", 0) != 0,
        }),
        "Cast" => {
            let to = a.int("to").ok_or_else(|| a.err("`to` is required"))?;
            let to_int = match DataType::try_from(to as i32) {
                Ok(DataType::Float | DataType::Double | DataType::Float16) => false,
                Ok(
                    DataType::Int64
                    | DataType::Int32
                    | DataType::Int16
                    | DataType::Int8
                    | DataType::Uint8
                    | DataType::Uint16
                    | DataType::Uint32
                    | DataType::Uint64,
                ) => true,
                _ => return Err(a.unsupported(format!("Cast to type {to} is not supported"))),
            };
            one(FOp::Cast { to_int })
        }
        "Scan" | "TopK" => Err(a.unsupported(format!(
            "{} is not supported: this looks like a k-nearest-neighbours model (skl2onnx exports KNeighbors* as distances to every training sample, then TopK), which veil does not compile: encrypted top-k over the whole training set costs a sorting network of bootstraps per sample; use a tree ensemble or a linear model instead",
            n.op_type()
        ))),
        other => Err(a.unsupported(format!(
            "{other} is not supported. Supported ops: Gemm, MatMul, Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Softplus, Clip, Conv, AveragePool, MaxPool, BatchNormalization, Flatten, Reshape, Transpose, Concat, Split, Identity, Dropout, Constant, Cast, Softmax, ArgMax and the ONNX-ML LinearClassifier, LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor, SVMClassifier and SVMRegressor (linear kernel), Scaler, Normalizer, ArrayFeatureExtractor, ZipMap; rewrite the model with these (e.g. fold it with onnx-simplifier) or replace the op"
        ))),
    }
}
