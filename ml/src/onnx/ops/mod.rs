//! Op importers, one file per family: each parses its ONNX nodes, evaluates them in float
//! (calibration, reference and client-side post-processing) and emits their quantized form.

pub mod conv;
pub mod elementwise;
pub mod linear;
pub mod post;
pub mod shape;
pub mod tree;

use super::error::OnnxResult;
use super::graph::{FNode, FTensor};

/// Operand `i` of a float evaluation, or an error naming the node.
pub(crate) fn arg<'a>(n: &FNode, ins: &[Option<&'a FTensor>], i: usize) -> OnnxResult<&'a FTensor> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| n.err(format!("operand {i} is missing")))
}

/// Normalizes a possibly negative axis for a rank-`r` tensor.
pub(crate) fn norm_axis(n: &FNode, axis: i64, r: usize) -> OnnxResult<usize> {
    let a = if axis < 0 { axis + r as i64 } else { axis };
    if a < 0 || a >= r as i64 {
        return Err(n.err(format!("axis {axis} is out of range for rank {r}")));
    }
    Ok(a as usize)
}

/// Wraps a kernel shape error.
pub(crate) fn shape_err(n: &FNode, e: veil_ir::tensor::ShapeError) -> super::OnnxError {
    n.err(e.0)
}
