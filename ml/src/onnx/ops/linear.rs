//! `Gemm`, `MatMul` and the scores of ONNX-ML `LinearClassifier` / `LinearRegressor`: quantized
//! with the `ml` module's [`QuantizedGemm`] (integer matmul with clear weights, zero points and
//! bias folded into one offset per output).

use super::super::attrs::{post_transform, Attrs};
use super::super::error::OnnxResult;
use super::super::graph::{Binary, FNode, FOp, FTensor};
use super::super::qval::{Ctx, QVal, Val};
use super::{arg, shape_err};
use crate::quantize::{QuantizedGemm, UniformQuantizer};
use crate::Granularity;

/// `a @ b` for 2-D float tensors.
pub fn matmul(a: &FTensor, b: &FTensor) -> Result<FTensor, String> {
    let (m, k) = match a.shape.as_slice() {
        [m, k] => (*m, *k),
        [k] => (1, *k),
        s => {
            return Err(format!(
                "MatMul operand of rank {} is not supported (ranks 1 and 2)",
                s.len()
            ))
        }
    };
    let (k2, n) = match b.shape.as_slice() {
        [k2, n] => (*k2, *n),
        s => {
            return Err(format!(
                "MatMul right operand of shape {s:?}: only 2-D right operands are supported"
            ))
        }
    };
    if k != k2 {
        return Err(format!(
            "MatMul shapes {:?} and {:?} do not match",
            a.shape, b.shape
        ));
    }
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for kk in 0..k {
            let x = a.data[i * k + kk];
            if x != 0.0 {
                for j in 0..n {
                    out[i * n + j] += x * b.data[kk * n + j];
                }
            }
        }
    }
    let shape = if a.shape.len() == 1 {
        vec![n]
    } else {
        vec![m, n]
    };
    Ok(FTensor::new(shape, out).expect("consistent"))
}

fn transpose2(n: &FNode, t: &FTensor) -> OnnxResult<FTensor> {
    if t.shape.len() != 2 {
        return Err(n.err(format!("expected a 2-D operand, got shape {:?}", t.shape)));
    }
    t.transpose(&[1, 0]).map_err(|e| shape_err(n, e))
}

/// `(weights [k, o], bias [o])` of a Gemm-like node whose right operand is constant.
fn weights(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<(FTensor, Vec<f64>)> {
    match &n.op {
        FOp::Gemm {
            alpha,
            beta,
            trans_b,
            ..
        } => {
            let mut w = arg(n, ins, 1)?.clone();
            if *trans_b {
                w = transpose2(n, &w)?;
            }
            if w.shape.len() != 2 {
                return Err(n.err(format!("B must be 2-D, got shape {:?}", w.shape)));
            }
            let o = w.shape[1];
            w.data.iter_mut().for_each(|v| *v *= alpha);
            let bias = match ins.get(2).copied().flatten() {
                None => vec![0.0; o],
                Some(c) => {
                    let ok = c.data.len() == 1 || (c.data.len() == o && c.shape.last() == Some(&o));
                    if !ok {
                        return Err(n.err(format!("C of shape {:?} is not supported: give a scalar or one value per output ({o})", c.shape)));
                    }
                    (0..o).map(|j| beta * c.data[j % c.data.len()]).collect()
                }
            };
            Ok((w, bias))
        }
        FOp::MatMul => {
            let w = arg(n, ins, 1)?.clone();
            if w.shape.len() != 2 {
                return Err(n.unsupported(format!(
                    "a right operand of shape {:?}: only 2-D weights are supported",
                    w.shape
                )));
            }
            let o = w.shape[1];
            Ok((w, vec![0.0; o]))
        }
        FOp::Linear { w, b } => Ok((w.clone(), b.clone())),
        _ => unreachable!("not a linear op"),
    }
}

/// Float evaluation of `Gemm`, `MatMul` and `Linear`.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let mut a = arg(n, ins, 0)?.clone();
    if let FOp::Gemm { trans_a: true, .. } = n.op {
        a = transpose2(n, &a)?;
    }
    if let FOp::MatMul = n.op {
        let b = arg(n, ins, 1)?;
        return Ok(vec![matmul(&a, b).map_err(|e| n.err(e))?]);
    }
    let (w, bias) = weights(n, ins)?;
    let mut y = matmul(&a, &w).map_err(|e| n.err(e))?;
    let o = w.shape[1];
    for (i, v) in y.data.iter_mut().enumerate() {
        *v += bias[i % o];
    }
    Ok(vec![y])
}

/// Quantized `x @ W + b` for an encrypted `x` `[n, k]` that stands for value `name`: picks the
/// widest weight width (at most `n_bits.weights`) whose accumulator stays within 16 bits.
pub fn gemm(
    ctx: &Ctx,
    n: &FNode,
    x: QVal,
    name: &str,
    w: &FTensor,
    bias: &[f64],
) -> OnnxResult<QVal> {
    if x.shape.len() != 2 || x.shape[1] != w.shape[0] {
        return Err(n.err(format!(
            "input of shape {:?} does not match weights {:?} (veil needs [batch, features])",
            x.shape, w.shape
        )));
    }
    let (k, o) = (w.shape[0], w.shape[1]);
    let mut x = ctx.narrow(x, name)?;
    if x.axis == Some(0) {
        x = ctx.materialize(&x, name)?;
    }
    // Integer zero points for QuantizedGemm; the fractional residue moves into the bias.
    let zr: Vec<i64> = x.zero.iter().map(|z| z.round() as i64).collect();
    let mut bias = bias.to_vec();
    for kk in 0..k {
        let c = if x.scale.len() > 1 { kk } else { 0 };
        let resid = x.scale[c] * (x.zero[c] - zr[c] as f64);
        if resid != 0.0 {
            for (j, b) in bias.iter_mut().enumerate() {
                *b -= resid * w.data[kk * o + j];
            }
        }
    }
    // Integer range of the input type (the program types the accumulator from it).
    let (qmin, qmax) = ctx.int_range(x.id)?;
    let quant = UniformQuantizer {
        n_bits: 1,
        signed: true,
        symmetric: false,
        scale: x.scale.clone(),
        zero_point: zr.clone(),
    };
    let mut chosen = None;
    for bits in (2..=ctx.n_bits.weights.max(2)).rev() {
        let g = QuantizedGemm::new(
            &quant,
            &w.data,
            k,
            o,
            Some(&bias),
            bits,
            Granularity::PerChannel,
        )?;
        // The program types `x @ W` from the input type: the union of the columns' ranges.
        let (mut lo, mut hi) = (i128::MAX, i128::MIN);
        for j in 0..o {
            let (mut l, mut h) = (0i128, 0i128);
            for kk in 0..k {
                let wv = g.weights[kk * o + j] as i128;
                let (a, b) = (wv * qmin, wv * qmax);
                l += a.min(b);
                h += a.max(b);
            }
            lo = lo.min(l);
            hi = hi.max(h);
        }
        let fits = lo >= -ctx.max_acc - 1 && hi <= ctx.max_acc;
        chosen = Some(g);
        if fits {
            break;
        }
    }
    let g = chosen.expect("at least one width tried");
    // The offsets are not added in the program: they become the (integer) zero points of the
    // accumulator's decoding, absorbed by the next table lookup or by the client's decoder.
    let acc = ctx.b.matmul(x.id, ctx.b.constant(&[k, o], &g.weights)?)?;
    let zero = g.offsets.iter().map(|&v| -(v as f64)).collect();
    Ok(QVal::new(
        acc,
        vec![x.shape[0], o],
        Some(1),
        g.scales.clone(),
        zero,
    ))
}

/// Emits `Gemm`, `MatMul` and `Linear` on an encrypted left operand.
pub fn emit(ctx: &Ctx, n: &FNode, ins: &[Option<Val>]) -> OnnxResult<Vec<Val>> {
    let name = n.input(0)?;
    let x = match ins.first() {
        Some(Some(Val::Enc(q))) => q.clone(),
        _ => return Err(n.unsupported("an encrypted right operand (weights computed from encrypted data) is not supported; the weights must be initializers or constants")),
    };
    let consts: Vec<Option<&FTensor>> = ins
        .iter()
        .map(|v| match v {
            Some(Val::Const(t)) => Some(t),
            _ => None,
        })
        .collect();
    if matches!(n.op, FOp::Gemm { .. } | FOp::MatMul) && consts.get(1).copied().flatten().is_none()
    {
        return Err(n.unsupported("a product of two encrypted tensors is not supported; the right operand must be an initializer or a constant"));
    }
    if matches!(n.op, FOp::Gemm { .. })
        && ins.get(2).is_some_and(|v| matches!(v, Some(Val::Enc(_))))
    {
        return Err(n.unsupported(
            "an encrypted C operand is not supported: add it with a separate Add node",
        ));
    }
    let mut x = x;
    if let FOp::Gemm { trans_a: true, .. } = n.op {
        x = ctx.per_tensor(x, name)?;
        let id = ctx.b.transpose(x.id, &[1, 0])?;
        x = QVal {
            id,
            shape: vec![x.shape[1], x.shape[0]],
            ..x
        };
    }
    let (w, bias) = weights(n, &consts)?;
    Ok(vec![Val::Enc(gemm(ctx, n, x, name, &w, &bias)?)])
}

fn labels(a: &Attrs) -> OnnxResult<Vec<i64>> {
    let ints = a.ints("classlabels_ints");
    if !ints.is_empty() {
        return Ok(ints);
    }
    let i64s = a.ints("classlabels_int64s");
    if !i64s.is_empty() {
        return Ok(i64s);
    }
    if !a.strings("classlabels_strings").is_empty() {
        return Err(a.unsupported("string class labels are not supported: train (or export) the classifier with integer labels"));
    }
    Err(a.err("no class labels (classlabels_ints / classlabels_int64s)"))
}

/// Scores node `x @ W + b` named `<node>/scores` from coefficients `[targets, features]`.
fn linear_node(a: &Attrs, targets: usize, out: String) -> OnnxResult<FNode> {
    let coefs = a.floats("coefficients")?;
    if targets == 0 || coefs.is_empty() || coefs.len() % targets != 0 {
        return Err(a.err(format!(
            "{} coefficients cannot be split into {targets} targets",
            coefs.len()
        )));
    }
    let f = coefs.len() / targets;
    let mut intercepts = a.floats("intercepts")?;
    if intercepts.is_empty() {
        intercepts = vec![0.0; targets];
    }
    if intercepts.len() != targets {
        return Err(a.err(format!(
            "{} intercepts for {targets} targets",
            intercepts.len()
        )));
    }
    let w = FTensor::new(vec![targets, f], coefs)
        .expect("checked")
        .transpose(&[1, 0])
        .expect("2-D");
    let mut node = a.node(FOp::Linear { w, b: intercepts });
    node.inputs.truncate(1);
    node.outputs = vec![out];
    Ok(node)
}

/// ONNX-ML `LinearClassifier`: server-side scores, client-side head.
pub fn parse_linear_classifier(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let labels = labels(a)?;
    let nt = a.floats("intercepts")?.len();
    let targets = if nt > 0 {
        nt
    } else if labels.len() == 2 && a.floats("coefficients")?.len() % 2 == 1 {
        1
    } else {
        labels.len()
    };
    let scores = format!("{}/scores", a.name);
    let lin = linear_node(a, targets, scores.clone())?;
    let binary = if targets == 1 && labels.len() == 2 {
        Binary::Margin
    } else {
        Binary::No
    };
    if binary == Binary::No && targets != labels.len() {
        return Err(a.err(format!("{targets} score rows for {} classes", labels.len())));
    }
    let mut head = a.node(FOp::ClassifierPost {
        base: vec![0.0; targets],
        binary,
        post: post_transform(a)?,
        labels,
    });
    head.inputs = vec![Some(scores)];
    Ok(vec![lin, head])
}

/// The linear function of a linear-kernel ONNX-ML SVM with one decision value:
/// `sum_j coef_j <x, sv_j> + rho = <x, w> + rho` with `w = sum_j coef_j sv_j`, as a `Linear`
/// node named `out`. Other kernels, several decision values (one-vs-one multi-class SVMs) and
/// Platt-scaled probabilities are refused.
fn svm_linear_node(a: &Attrs, out: String) -> OnnxResult<FNode> {
    let kernel = a.string("kernel_type").unwrap_or_else(|| "LINEAR".into());
    if kernel != "LINEAR" {
        return Err(a.unsupported(format!(
            "kernel_type {kernel} is not supported: veil compiles linear-kernel SVMs (SVC(kernel=\"linear\"), LinearSVC, LinearSVR), whose decision is a dot product"
        )));
    }
    if !a.floats("prob_a")?.is_empty() {
        return Err(a.unsupported(
            "Platt-scaled probabilities (SVC(probability=True)) are not supported: train with probability=False",
        ));
    }
    let coefs = a.floats("coefficients")?;
    let rho = a.floats("rho")?;
    let svs = a.floats("support_vectors")?;
    if rho.len() != 1 {
        return Err(a.unsupported(format!(
            "{} decision values (a one-vs-one multi-class SVM) are not supported: use a linear SVM with one-vs-rest classes (LinearSVC) or a binary one",
            rho.len()
        )));
    }
    let w = if svs.is_empty() {
        coefs
    } else {
        if coefs.is_empty() || svs.len() % coefs.len() != 0 {
            return Err(a.err(format!(
                "{} support vector values for {} coefficients",
                svs.len(),
                coefs.len()
            )));
        }
        let f = svs.len() / coefs.len();
        let mut w = vec![0.0; f];
        for (j, c) in coefs.iter().enumerate() {
            for (k, wk) in w.iter_mut().enumerate() {
                *wk += c * svs[j * f + k];
            }
        }
        w
    };
    let f = w.len();
    let w = FTensor::new(vec![f, 1], w).expect("one column");
    let mut node = a.node(FOp::Linear { w, b: rho });
    node.inputs.truncate(1);
    node.outputs = vec![out];
    Ok(node)
}

/// ONNX-ML `SVMClassifier` with a linear kernel and two classes: server-side decision value,
/// client-side head.
pub fn parse_svm_classifier(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let labels = labels(a)?;
    if labels.len() != 2 {
        return Err(a.unsupported(format!(
            "an SVMClassifier with {} classes (one-vs-one voting) is not supported: use LinearSVC (one-vs-rest) or a binary SVC",
            labels.len()
        )));
    }
    let scores = format!("{}/scores", a.name);
    let lin = svm_linear_node(a, scores.clone())?;
    let mut head = a.node(FOp::ClassifierPost {
        base: vec![0.0],
        binary: Binary::SvmDecision,
        post: post_transform(a)?,
        labels,
    });
    head.inputs = vec![Some(scores)];
    Ok(vec![lin, head])
}

/// ONNX-ML `SVMRegressor` with a linear kernel (LinearSVR, SVR(kernel="linear")).
pub fn parse_svm_regressor(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    if a.int_or("one_class", 0) != 0 {
        return Err(a.unsupported("one-class SVMs are not supported"));
    }
    Ok(vec![svm_linear_node(a, a.output(0)?.to_string())?])
}

/// ONNX-ML `LinearRegressor`: server-side values, client-side post-transform.
pub fn parse_linear_regressor(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let targets = a.int_or("targets", 1).max(1) as usize;
    let post = post_transform(a)?;
    if post == super::super::graph::PostTransform::None {
        return Ok(vec![linear_node(a, targets, a.output(0)?.to_string())?]);
    }
    let scores = format!("{}/scores", a.name);
    let lin = linear_node(a, targets, scores.clone())?;
    let mut head = a.node(FOp::RegressorPost {
        base: vec![0.0; targets],
        post,
    });
    head.inputs = vec![Some(scores)];
    Ok(vec![lin, head])
}
