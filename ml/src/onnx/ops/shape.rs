//! `Flatten`, `Reshape`, `Transpose`, `Concat` and `Split`: free (levelled) data movement.
//! A reshape needs a per-tensor encoding; a concatenation requantizes its encrypted parts to
//! one common quantizer (calibrated on the result).

use super::super::error::OnnxResult;
use super::super::graph::{FNode, FOp, FTensor};
use super::super::qval::{Ctx, QVal, Val};
use super::{arg, norm_axis, shape_err};

/// Target shape of `Reshape`/`Flatten` for an input of shape `s`.
pub fn target_shape(n: &FNode, s: &[usize], shape_arg: Option<&FTensor>) -> OnnxResult<Vec<usize>> {
    let total: usize = s.iter().product();
    match &n.op {
        FOp::Flatten { axis } => {
            let a = if *axis < 0 {
                axis + s.len() as i64
            } else {
                *axis
            };
            if a < 0 || a > s.len() as i64 {
                return Err(n.err(format!("axis {axis} is out of range for rank {}", s.len())));
            }
            let lead: usize = s[..a as usize].iter().product();
            Ok(vec![lead, total / lead.max(1)])
        }
        FOp::Reshape { allowzero } => {
            let t = shape_arg.ok_or_else(|| {
                n.unsupported(
                    "the target shape must be a constant (an initializer or a Constant node)",
                )
            })?;
            let mut out = Vec::with_capacity(t.data.len());
            let mut infer = None;
            for (i, &d) in t.data.iter().enumerate() {
                let d = d as i64;
                if d == -1 {
                    if infer.is_some() {
                        return Err(n.err("more than one -1 in the target shape"));
                    }
                    infer = Some(i);
                    out.push(1);
                } else if d == 0 && !allowzero {
                    out.push(*s.get(i).ok_or_else(|| n.err(format!("0 at position {i} copies a dimension the input (rank {}) does not have", s.len())))?);
                } else if d <= 0 {
                    return Err(n.err(format!("invalid target dimension {d}")));
                } else {
                    out.push(d as usize);
                }
            }
            let known: usize = out.iter().product();
            if let Some(i) = infer {
                if known == 0 || !total.is_multiple_of(known) {
                    return Err(n.err(format!("cannot reshape {s:?} to {:?}", t.data)));
                }
                out[i] = total / known;
            }
            if out.iter().product::<usize>() != total {
                return Err(n.err(format!(
                    "cannot reshape {s:?} ({total} elements) to {out:?}"
                )));
            }
            Ok(out)
        }
        _ => unreachable!("not a reshape"),
    }
}

fn perm_of(n: &FNode, perm: &Option<Vec<usize>>, r: usize) -> OnnxResult<Vec<usize>> {
    let p = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
    let mut seen = vec![false; r];
    if p.len() != r
        || p.iter()
            .any(|&a| a >= r || std::mem::replace(&mut seen[a], true))
    {
        return Err(n.err(format!("perm {p:?} is not a permutation of the {r} axes")));
    }
    Ok(p)
}

fn split_sizes(
    n: &FNode,
    sizes: &Option<Vec<usize>>,
    arg1: Option<&FTensor>,
    dim: usize,
) -> OnnxResult<Vec<usize>> {
    let k = n.outputs.len();
    let s = match (sizes, arg1) {
        (Some(s), _) => s.clone(),
        (None, Some(t)) => t.data.iter().map(|&v| v.max(0.0) as usize).collect(),
        (None, None) => {
            if !dim.is_multiple_of(k) {
                return Err(n.err(format!(
                    "an axis of {dim} cannot be split into {k} equal parts"
                )));
            }
            vec![dim / k; k]
        }
    };
    if s.len() != k || s.iter().sum::<usize>() != dim || s.contains(&0) {
        return Err(n.err(format!(
            "split sizes {s:?} do not cover the axis of {dim} with {k} positive parts"
        )));
    }
    Ok(s)
}

/// Float evaluation of the ops of this family.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let x = arg(n, ins, 0)?;
    match &n.op {
        FOp::Flatten { .. } | FOp::Reshape { .. } => {
            let s = target_shape(n, &x.shape, ins.get(1).copied().flatten())?;
            Ok(vec![x.reshape(&s).map_err(|e| shape_err(n, e))?])
        }
        FOp::Transpose { perm } => {
            let p = perm_of(n, perm, x.shape.len())?;
            Ok(vec![x.transpose(&p).map_err(|e| shape_err(n, e))?])
        }
        FOp::Concat { axis } => {
            let a = norm_axis(n, *axis, x.shape.len())?;
            let parts: Vec<&FTensor> = (0..ins.len())
                .map(|i| arg(n, ins, i))
                .collect::<OnnxResult<_>>()?;
            Ok(vec![
                FTensor::concat(&parts, a).map_err(|e| shape_err(n, e))?
            ])
        }
        FOp::Split { axis, sizes } => {
            let a = norm_axis(n, *axis, x.shape.len())?;
            let s = split_sizes(n, sizes, ins.get(1).copied().flatten(), x.shape[a])?;
            let mut start = 0;
            let mut outs = Vec::new();
            for len in s {
                let mut starts = vec![0; x.shape.len()];
                let mut stops = x.shape.clone();
                starts[a] = start;
                stops[a] = start + len;
                outs.push(
                    x.slice(&starts, &stops, &vec![1; x.shape.len()])
                        .map_err(|e| shape_err(n, e))?,
                );
                start += len;
            }
            Ok(outs)
        }
        _ => unreachable!("not a shape op"),
    }
}

/// Emits the ops of this family with at least one encrypted operand.
pub fn emit(ctx: &Ctx, n: &FNode, ins: &[Option<Val>]) -> OnnxResult<Vec<Val>> {
    let name = n.input(0)?;
    let cst = |i: usize| match ins.get(i) {
        Some(Some(Val::Const(t))) => Some(t),
        _ => None,
    };
    match &n.op {
        FOp::Flatten { .. } | FOp::Reshape { .. } => {
            let Some(Some(Val::Enc(x))) = ins.first() else {
                return Err(n.unsupported("an encrypted target shape is not supported"));
            };
            let s = target_shape(n, &x.shape, cst(1))?;
            let x = ctx.per_tensor(x.clone(), name)?;
            let id = ctx.b.reshape(x.id, &s)?;
            Ok(vec![Val::Enc(QVal { id, shape: s, ..x })])
        }
        FOp::Transpose { perm } => {
            let Some(Some(Val::Enc(x))) = ins.first() else {
                unreachable!("encrypted operand")
            };
            let p = perm_of(n, perm, x.shape.len())?;
            let id = ctx.b.transpose(x.id, &p)?;
            let axis = x
                .axis
                .map(|a| p.iter().position(|&v| v == a).expect("permutation"));
            let shape = p.iter().map(|&a| x.shape[a]).collect();
            Ok(vec![Val::Enc(QVal {
                id,
                shape,
                axis,
                ..x.clone()
            })])
        }
        FOp::Concat { axis } => {
            let first = ins.iter().flatten().find_map(|v| match v {
                Val::Enc(q) => Some(q.shape.len()),
                Val::Const(_) => None,
            });
            let a = norm_axis(n, *axis, first.unwrap_or(1))?;
            let q = ctx.quantizer(&n.outputs[0], ctx.n_bits.activations)?;
            let mut parts = Vec::new();
            for (i, v) in ins.iter().enumerate() {
                let part = match v {
                    Some(Val::Enc(x)) => ctx.materialize_with(x, &q, n.input(i)?)?.id,
                    Some(Val::Const(t)) => ctx.b.constant(&t.shape, &q.quantize_all(&t.data, 1))?,
                    None => return Err(n.err(format!("operand {i} is missing"))),
                };
                parts.push(part);
            }
            let id = ctx.b.concat(&parts, a)?;
            let shape = ctx.b.shape(id)?;
            Ok(vec![Val::Enc(QVal::new(
                id,
                shape,
                None,
                vec![q.scale[0]],
                vec![q.zero_point[0] as f64],
            ))])
        }
        FOp::Split { axis, sizes } => {
            let Some(Some(Val::Enc(x))) = ins.first() else {
                unreachable!("encrypted operand")
            };
            let r = x.shape.len();
            let a = norm_axis(n, *axis, r)?;
            let s = split_sizes(n, sizes, cst(1), x.shape[a])?;
            let mut start = 0;
            let mut outs = Vec::new();
            for len in s {
                let mut starts = vec![0; r];
                let mut stops = x.shape.clone();
                starts[a] = start;
                stops[a] = start + len;
                let id = ctx.b.slice(x.id, &starts, &stops, &vec![1; r])?;
                let mut q = QVal {
                    id,
                    shape: ctx.b.shape(id)?,
                    ..x.clone()
                };
                if x.axis == Some(a) {
                    q.select_channels(&(start..start + len).collect::<Vec<_>>());
                }
                outs.push(Val::Enc(q));
                start += len;
            }
            Ok(outs)
        }
        _ => unreachable!("not a shape op"),
    }
}
