//! Float evaluation of a [`FloatGraph`]: the reference semantics used for calibration, for
//! constant folding and for the client-side post-processing.

use super::error::{OnnxError, OnnxResult};
use super::graph::{FNode, FOp, FTensor, FloatGraph};
use super::ops;
use std::collections::HashMap;

/// Evaluates one node on its operands.
pub fn eval_node(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let outs = match &n.op {
        FOp::Gemm { .. } | FOp::MatMul | FOp::Linear { .. } => ops::linear::eval(n, ins)?,
        FOp::Binary(_) | FOp::Act(_) | FOp::Scaler { .. } => ops::elementwise::eval(n, ins)?,
        FOp::Conv { .. } | FOp::AvgPool(_) | FOp::MaxPool(_) | FOp::BatchNorm { .. } => {
            ops::conv::eval(n, ins)?
        }
        FOp::Flatten { .. }
        | FOp::Reshape { .. }
        | FOp::Transpose { .. }
        | FOp::Concat { .. }
        | FOp::Split { .. } => ops::shape::eval(n, ins)?,
        FOp::Trees(_) => ops::tree::eval(n, ins)?,
        FOp::Softmax { .. }
        | FOp::ArgMax { .. }
        | FOp::Normalizer(_)
        | FOp::Cast { .. }
        | FOp::ArrayFeatureExtractor
        | FOp::ZipMap
        | FOp::ClassifierPost { .. }
        | FOp::RegressorPost { .. } => ops::post::eval(n, ins)?,
    };
    if outs.len() < n.outputs.len() {
        return Err(n.err(format!(
            "declares {} outputs but computes {}",
            n.outputs.len(),
            outs.len()
        )));
    }
    Ok(outs)
}

/// Runs `nodes` (in order) with `env` holding the values computed so far (constants and the
/// input included); every result is added to `env`.
pub fn run_nodes<'a>(
    nodes: impl IntoIterator<Item = &'a FNode>,
    env: &mut HashMap<String, FTensor>,
) -> OnnxResult<()> {
    for n in nodes {
        let ins: Vec<Option<FTensor>> = n
            .inputs
            .iter()
            .map(|i| match i {
                None => Ok(None),
                Some(name) => env.get(name).cloned().map(Some).ok_or_else(|| {
                    OnnxError::Malformed(format!(
                        "node `{}` reads `{name}`, which is not computed before it",
                        n.name
                    ))
                }),
            })
            .collect::<OnnxResult<_>>()?;
        let refs: Vec<Option<&FTensor>> = ins.iter().map(|t| t.as_ref()).collect();
        for (name, t) in n.outputs.iter().zip(eval_node(n, &refs)?) {
            env.insert(name.clone(), t);
        }
    }
    Ok(())
}

/// Runs the whole graph on a batch `x` (shape `[batch, sample...]`); returns every value.
pub fn run_graph(g: &FloatGraph, x: FTensor) -> OnnxResult<HashMap<String, FTensor>> {
    let mut env = g.consts.clone();
    env.insert(g.input.clone(), x);
    run_nodes(&g.nodes, &mut env)?;
    Ok(env)
}
