//! Client-side post-processing, evaluated in the clear after decryption: `Softmax`, `ArgMax`,
//! `Cast`, ONNX-ML `Normalizer`, `ArrayFeatureExtractor` and `ZipMap`, and the heads of the ONNX-ML
//! classifiers and regressors (base values, binary expansion, post-transform, labels).

use super::super::error::OnnxResult;
use super::super::graph::{Binary, FNode, FOp, FTensor, Norm, PostTransform};
use super::{arg, norm_axis};

/// Applies `f` to every lane along `axis` (a lane is the vector of elements that differ only
/// in their index on `axis`); `f` returns the new lane (same length) in place.
fn lanes(x: &FTensor, axis: usize, f: &dyn Fn(&[f64]) -> Vec<f64>) -> FTensor {
    let d = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let outer: usize = x.shape[..axis].iter().product();
    let mut y = x.clone();
    for o in 0..outer {
        for i in 0..inner {
            let idx: Vec<usize> = (0..d).map(|k| (o * d + k) * inner + i).collect();
            let lane: Vec<f64> = idx.iter().map(|&j| x.data[j]).collect();
            for (j, v) in idx.into_iter().zip(f(&lane)) {
                y.data[j] = v;
            }
        }
    }
    y
}

fn softmax(v: &[f64]) -> Vec<f64> {
    crate::model::softmax(v)
}

fn argmax(v: &[f64], last: bool) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || (last && x == v[best]) {
            best = i;
        }
    }
    best
}

fn post(p: PostTransform, v: &[f64]) -> Vec<f64> {
    match p {
        PostTransform::None => v.to_vec(),
        PostTransform::Logistic => v.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect(),
        PostTransform::Softmax => softmax(v),
        PostTransform::SoftmaxZero => {
            let nz: Vec<f64> = v.iter().cloned().filter(|&x| x != 0.0).collect();
            if nz.is_empty() {
                return v.to_vec();
            }
            let s = softmax(&nz);
            let mut k = 0;
            v.iter()
                .map(|&x| {
                    if x == 0.0 {
                        0.0
                    } else {
                        k += 1;
                        s[k - 1]
                    }
                })
                .collect()
        }
    }
}

fn rows(n: &FNode, x: &FTensor) -> OnnxResult<(usize, usize)> {
    match x.shape.as_slice() {
        [r, c] => Ok((*r, *c)),
        [r] => Ok((*r, 1)),
        s => Err(n.err(format!(
            "expected a [batch, targets] tensor, got shape {s:?}"
        ))),
    }
}

/// Float evaluation of the ops of this family.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let x = arg(n, ins, 0)?;
    Ok(match &n.op {
        FOp::Softmax { axis } => {
            let a = norm_axis(n, *axis, x.shape.len())?;
            vec![lanes(x, a, &softmax)]
        }
        FOp::ArgMax {
            axis,
            keepdims,
            select_last,
        } => {
            let a = norm_axis(n, *axis, x.shape.len())?;
            let marked = lanes(x, a, &|v| {
                let m = argmax(v, *select_last) as f64;
                vec![m; v.len()]
            });
            let mut starts = vec![0; x.shape.len()];
            let mut stops = x.shape.clone();
            starts[a] = 0;
            stops[a] = 1;
            let mut y = marked
                .slice(&starts, &stops, &vec![1; x.shape.len()])
                .map_err(|e| n.err(e.0))?;
            if !keepdims {
                y.shape.remove(a);
            }
            vec![y]
        }
        FOp::Cast { to_int } => vec![if *to_int {
            x.map(|v| v.trunc())
        } else {
            x.clone()
        }],
        FOp::Normalizer(norm) => {
            let a = x.shape.len() - 1;
            vec![lanes(x, a, &|v| {
                let d = match norm {
                    Norm::Max => v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    Norm::L1 => v.iter().map(|x| x.abs()).sum(),
                    Norm::L2 => v.iter().map(|x| x * x).sum::<f64>().sqrt(),
                };
                v.iter()
                    .map(|x| if d == 0.0 { *x } else { x / d })
                    .collect()
            })]
        }
        FOp::ArrayFeatureExtractor => {
            let idx = arg(n, ins, 1)?;
            let d = *x.shape.last().ok_or_else(|| n.err("data is a scalar"))?;
            let outer = x.data.len() / d;
            let mut data = Vec::with_capacity(outer * idx.data.len());
            for o in 0..outer {
                for &i in &idx.data {
                    let i = i as usize;
                    if i >= d {
                        return Err(
                            n.err(format!("index {i} is out of range for a last axis of {d}"))
                        );
                    }
                    data.push(x.data[o * d + i]);
                }
            }
            let mut shape = x.shape.clone();
            *shape.last_mut().expect("rank >= 1") = idx.data.len();
            vec![FTensor::new(shape, data).expect("consistent")]
        }
        FOp::ZipMap => vec![x.clone()],
        FOp::ClassifierPost {
            base,
            binary,
            post: p,
            labels,
        } => {
            let (r, t) = rows(n, x)?;
            if base.len() != t {
                return Err(n.err(format!("{t} scores for {} targets", base.len())));
            }
            let mut lab = Vec::with_capacity(r);
            let mut scores = Vec::new();
            for i in 0..r {
                let v: Vec<f64> = (0..t).map(|j| x.data[i * t + j] + base[j]).collect();
                let first = *binary == Binary::SvmDecision && v[0] > 0.0;
                let v = match binary {
                    Binary::No => post(*p, &v),
                    Binary::Probability => post(*p, &[1.0 - v[0], v[0]]),
                    Binary::Margin | Binary::SvmDecision => post(*p, &[-v[0], v[0]]),
                };
                let best = match binary {
                    Binary::SvmDecision => usize::from(!first),
                    _ => argmax(&v, false),
                };
                lab.push(labels[best.min(labels.len() - 1)] as f64);
                scores.extend(v);
            }
            let k = scores.len() / r.max(1);
            vec![
                FTensor::new(vec![r], lab).expect("1-D"),
                FTensor::new(vec![r, k], scores).expect("2-D"),
            ]
        }
        FOp::RegressorPost { base, post: p } => {
            let (r, t) = rows(n, x)?;
            if base.len() != t {
                return Err(n.err(format!("{t} values for {} targets", base.len())));
            }
            let mut out = Vec::with_capacity(r * t);
            for i in 0..r {
                let v: Vec<f64> = (0..t).map(|j| x.data[i * t + j] + base[j]).collect();
                out.extend(post(*p, &v));
            }
            vec![FTensor::new(vec![r, t], out).expect("2-D")]
        }
        _ => unreachable!("not a post-processing op"),
    })
}
