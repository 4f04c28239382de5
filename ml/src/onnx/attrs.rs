//! Attribute and tensor access for ONNX nodes, shared by the decoder ([`super::load`]) and the
//! op parsers ([`super::ops`]): both use this module, neither uses the other's internals, so
//! the decoder and the ops do not import each other.

use super::error::{OnnxError, OnnxResult};
use super::graph::{FNode, FOp, FTensor};
use super::proto::{tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};

/// Attribute access for one node, with errors naming it.
pub struct Attrs<'a> {
    /// The node.
    pub n: &'a NodeProto,
    /// Its display name.
    pub name: &'a str,
}

impl<'a> Attrs<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&'a AttributeProto> {
        self.n.attribute.iter().find(|a| a.name() == key)
    }

    /// An error about this node.
    pub fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            op: self.n.op_type().to_string(),
            node: self.name.to_string(),
            msg: msg.into(),
        }
    }

    /// An "unsupported" error about this node.
    pub fn unsupported(&self, hint: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            op: self.n.op_type().to_string(),
            node: self.name.to_string(),
            hint: hint.into(),
        }
    }

    /// Integer attribute.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|a| a.i)
    }

    /// Integer attribute with a default.
    pub fn int_or(&self, key: &str, d: i64) -> i64 {
        self.int(key).unwrap_or(d)
    }

    /// Float attribute with a default.
    pub fn float_or(&self, key: &str, d: f64) -> f64 {
        self.get(key).and_then(|a| a.f).map_or(d, |v| v as f64)
    }

    /// Integer list attribute (empty if absent).
    pub fn ints(&self, key: &str) -> Vec<i64> {
        self.get(key).map(|a| a.ints.clone()).unwrap_or_default()
    }

    /// Whether an attribute is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Float list attribute (empty if absent); also reads a `<key>_as_tensor` variant.
    pub fn floats(&self, key: &str) -> OnnxResult<Vec<f64>> {
        if let Some(a) = self.get(key) {
            return Ok(a.floats.iter().map(|&v| v as f64).collect());
        }
        if let Some(t) = self
            .get(&format!("{key}_as_tensor"))
            .and_then(|a| a.t.as_ref())
        {
            return Ok(tensor(t, &format!("attribute `{key}_as_tensor`"))?.data);
        }
        Ok(Vec::new())
    }

    /// String attribute.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// String list attribute.
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Output `i`.
    pub fn output(&self, i: usize) -> OnnxResult<&'a str> {
        self.n
            .output
            .get(i)
            .map(|s| s.as_str())
            .ok_or_else(|| self.err(format!("output {i} is missing")))
    }

    /// A node of this ONNX node's name and operands with `op`.
    pub fn node(&self, op: FOp) -> FNode {
        FNode {
            name: self.name.to_string(),
            op_type: self.n.op_type().to_string(),
            op,
            inputs: self
                .n
                .input
                .iter()
                .map(|s| (!s.is_empty()).then(|| s.clone()))
                .collect(),
            outputs: self.n.output.clone(),
        }
    }

    pub(super) fn pair(&self, key: &str, d: usize) -> OnnxResult<[usize; 2]> {
        let v = self.ints(key);
        match v.as_slice() {
            [] => Ok([d, d]),
            [a, b] if *a >= 0 && *b >= 0 => Ok([*a as usize, *b as usize]),
            _ => Err(self.unsupported(format!(
                "`{key}` = {v:?}: only 2-D operations (two non-negative values) are supported"
            ))),
        }
    }

    pub(super) fn pads(&self) -> OnnxResult<[usize; 4]> {
        if let Some(p) = self.string("auto_pad") {
            if p != "NOTSET" && p != "VALID" {
                return Err(self.unsupported(format!(
                    "auto_pad = {p} is not supported: export with explicit `pads`"
                )));
            }
        }
        let v = self.ints("pads");
        match v.as_slice() {
            [] => Ok([0; 4]),
            // ONNX order: [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right].
            [t, l, b, r] if v.iter().all(|&x| x >= 0) => {
                Ok([*t as usize, *l as usize, *b as usize, *r as usize])
            }
            _ => Err(self.unsupported(format!(
                "`pads` = {v:?}: only 2-D operations with non-negative pads are supported"
            ))),
        }
    }
}

/// Decodes a tensor to floats.
pub fn tensor(t: &TensorProto, what: &str) -> OnnxResult<FTensor> {
    if t.dims.iter().any(|&d| d < 0) {
        return Err(OnnxError::Malformed(format!(
            "{what}: negative dimension in {:?}",
            t.dims
        )));
    }
    if t.data_location == Some(1) {
        return Err(OnnxError::Malformed(format!(
            "{what}: stored in an external data file; save the model with all tensors inside the .onnx file"
        )));
    }
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let n: usize = shape.iter().product();
    let dt = DataType::try_from(t.data_type.unwrap_or(0)).map_err(|_| {
        OnnxError::Malformed(format!("{what}: unknown data type {:?}", t.data_type))
    })?;
    let data: Vec<f64> = match &t.raw_data {
        Some(raw) if !raw.is_empty() || n == 0 => {
            let (width, conv): (usize, fn(&[u8]) -> f64) = match dt {
                DataType::Float => (4, |b| f32::from_le_bytes(b.try_into().unwrap()) as f64),
                DataType::Double => (8, |b| f64::from_le_bytes(b.try_into().unwrap())),
                DataType::Int64 => (8, |b| i64::from_le_bytes(b.try_into().unwrap()) as f64),
                DataType::Int32 => (4, |b| i32::from_le_bytes(b.try_into().unwrap()) as f64),
                DataType::Int8 => (1, |b| b[0] as i8 as f64),
                DataType::Uint8 | DataType::Bool => (1, |b| b[0] as f64),
                _ => {
                    return Err(OnnxError::Unsupported {
                        op: "tensor".into(),
                        node: what.into(),
                        hint: format!("element type {dt:?} is not supported; use float32, float64 or an integer type"),
                    })
                }
            };
            if raw.len() != n * width {
                return Err(OnnxError::Malformed(format!(
                    "{what}: raw data has {} bytes, shape {shape:?} of {dt:?} needs {}",
                    raw.len(),
                    n * width
                )));
            }
            raw.chunks(width).map(conv).collect()
        }
        _ => match dt {
            DataType::Float => t.float_data.iter().map(|&v| v as f64).collect(),
            DataType::Double => t.double_data.clone(),
            DataType::Int64 => t.int64_data.iter().map(|&v| v as f64).collect(),
            DataType::Int32
            | DataType::Int8
            | DataType::Uint8
            | DataType::Bool
            | DataType::Int16
            | DataType::Uint16 => t.int32_data.iter().map(|&v| v as f64).collect(),
            _ => {
                return Err(OnnxError::Unsupported {
                    op: "tensor".into(),
                    node: what.into(),
                    hint: format!(
                    "element type {dt:?} is not supported; use float32, float64 or an integer type"
                ),
                })
            }
        },
    };
    if data.len() != n {
        return Err(OnnxError::Malformed(format!(
            "{what}: {} values for shape {shape:?} ({n} expected)",
            data.len()
        )));
    }
    FTensor::new(shape, data).map_err(|e| OnnxError::Malformed(format!("{what}: {}", e.0)))
}

/// The `post_transform` attribute of an ONNX-ML linear or tree node.
pub(super) fn post_transform(a: &Attrs) -> OnnxResult<super::graph::PostTransform> {
    use super::graph::PostTransform as P;
    match a.string("post_transform").as_deref().unwrap_or("NONE") {
        "NONE" => Ok(P::None),
        "LOGISTIC" => Ok(P::Logistic),
        "SOFTMAX" => Ok(P::Softmax),
        "SOFTMAX_ZERO" => Ok(P::SoftmaxZero),
        other => Err(a.unsupported(format!(
            "post_transform = {other} is not supported (use NONE, LOGISTIC, SOFTMAX or SOFTMAX_ZERO)"
        ))),
    }
}
