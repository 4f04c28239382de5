//! `Add`, `Sub`, `Mul`, `Div`, the activations (`Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`,
//! `Softplus`, `Clip`, `Identity`) and ONNX-ML `Scaler`.
//!
//! With a constant operand, the affine ops fold into the value's encoding (no bootstrap);
//! activations are queued and fused into the next table lookup. Sums and products of two
//! encrypted values first requantize both operands to a common scale (one lookup each).

use super::super::error::OnnxResult;
use super::super::graph::{Act, BinOp, FNode, FOp, FTensor};
use super::super::qval::{channel_params, Ctx, Func, QVal, Val};
use super::{arg, shape_err};
use veil_ir::tensor::zip_broadcast;

/// The bounds of a `Clip` node (attributes, or the optional constant operands).
fn clip_bounds(
    n: &FNode,
    lo: f64,
    hi: f64,
    min: Option<&FTensor>,
    max: Option<&FTensor>,
) -> OnnxResult<Act> {
    let scalar = |t: Option<&FTensor>, d: f64| -> OnnxResult<f64> {
        match t {
            None => Ok(d),
            Some(t) if t.data.len() == 1 => Ok(t.data[0]),
            Some(t) => Err(n.err(format!(
                "Clip bound of shape {:?} must be a scalar",
                t.shape
            ))),
        }
    };
    Ok(Act::Clip(scalar(min, lo)?, scalar(max, hi)?))
}

fn act_of(n: &FNode, mins: Option<&FTensor>, maxs: Option<&FTensor>) -> OnnxResult<Act> {
    match n.op {
        FOp::Act(Act::Clip(lo, hi)) => clip_bounds(n, lo, hi, mins, maxs),
        FOp::Act(a) => Ok(a),
        _ => unreachable!("not an activation"),
    }
}

/// Float evaluation of the ops of this family.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let x = arg(n, ins, 0)?;
    Ok(vec![match &n.op {
        FOp::Binary(op) => {
            let y = arg(n, ins, 1)?;
            zip_broadcast(x, y, |a, b| op.apply(*a, *b)).map_err(|e| shape_err(n, e))?
        }
        FOp::Act(_) => {
            let act = act_of(
                n,
                ins.get(1).copied().flatten(),
                ins.get(2).copied().flatten(),
            )?;
            x.map(|v| act.apply(*v))
        }
        FOp::Scaler { offset, scale } => {
            let d = *x.shape.last().unwrap_or(&1);
            for (what, v) in [("offset", offset), ("scale", scale)] {
                if v.len() != 1 && v.len() != d {
                    return Err(n.err(format!("{} {what} values for {d} features", v.len())));
                }
            }
            let mut y = x.clone();
            for (i, v) in y.data.iter_mut().enumerate() {
                let c = i % d;
                *v = (*v - offset[c % offset.len()]) * scale[c % scale.len()];
            }
            y
        }
        _ => unreachable!("not an elementwise op"),
    }])
}

/// Emits the ops of this family on at least one encrypted operand.
pub fn emit(ctx: &Ctx, n: &FNode, ins: &[Option<Val>]) -> OnnxResult<Vec<Val>> {
    let name = n.input(0)?;
    let c = |i: usize| match ins.get(i) {
        Some(Some(Val::Const(t))) => Some(t),
        _ => None,
    };
    let out = match &n.op {
        FOp::Act(Act::Identity) => return Ok(vec![ins[0].clone().expect("operand 0")]),
        FOp::Act(_) => {
            let Some(Some(Val::Enc(x))) = ins.first() else {
                return Err(n.unsupported("encrypted Clip bounds are not supported; use constants"));
            };
            let act = act_of(n, c(1), c(2))?;
            let mut x = x.clone();
            x.funcs.push(Func::Act(act));
            x
        }
        FOp::Scaler { offset, scale } => {
            let Some(Some(Val::Enc(x))) = ins.first() else {
                unreachable!("encrypted operand")
            };
            let r = x.shape.len();
            let d = x.shape[r - 1];
            let axis = (offset.len() > 1 || scale.len() > 1).then_some(r - 1);
            let k = if axis.is_some() { d } else { 1 };
            let mul: Vec<f64> = (0..k).map(|i| scale[i % scale.len()]).collect();
            let add: Vec<f64> = (0..k)
                .map(|i| -offset[i % offset.len()] * scale[i % scale.len()])
                .collect();
            ctx.affine(x.clone(), name, axis, mul, add)?
        }
        FOp::Binary(op) => binary(ctx, n, *op, ins)?,
        _ => unreachable!("not an elementwise op"),
    };
    Ok(vec![Val::Enc(out)])
}

fn binary(ctx: &Ctx, n: &FNode, op: BinOp, ins: &[Option<Val>]) -> OnnxResult<QVal> {
    let (a, b) = match (ins.first(), ins.get(1)) {
        (Some(Some(a)), Some(Some(b))) => (a, b),
        _ => return Err(n.err("needs two operands")),
    };
    match (a, b) {
        (Val::Enc(x), Val::Const(k)) => {
            let (axis, v) = channel_params(k, &x.shape).ok_or_else(|| {
                n.unsupported(format!("a constant of shape {:?} against an encrypted value of shape {:?}: constants must be scalars or vary along one axis of the encrypted operand (and not change its shape)", k.shape, x.shape))
            })?;
            let name = n.input(0)?;
            let (mul, add): (Vec<f64>, Vec<f64>) = match op {
                BinOp::Add => (vec![1.0], v),
                BinOp::Sub => (vec![1.0], v.iter().map(|t| -t).collect()),
                BinOp::Mul => (v, vec![0.0]),
                BinOp::Div => {
                    if v.contains(&0.0) {
                        return Err(n.err("division by a constant zero"));
                    }
                    (v.iter().map(|t| 1.0 / t).collect(), vec![0.0])
                }
            };
            ctx.affine(x.clone(), name, axis, mul, add)
        }
        (Val::Const(k), Val::Enc(x)) => {
            let (axis, v) = channel_params(k, &x.shape).ok_or_else(|| {
                n.unsupported(format!("a constant of shape {:?} against an encrypted value of shape {:?}: constants must be scalars or vary along one axis of the encrypted operand", k.shape, x.shape))
            })?;
            let name = n.input(1)?;
            match op {
                BinOp::Add => ctx.affine(x.clone(), name, axis, vec![1.0], v),
                BinOp::Mul => ctx.affine(x.clone(), name, axis, v, vec![0.0]),
                BinOp::Sub => ctx.affine(x.clone(), name, axis, vec![-1.0], v),
                BinOp::Div => Err(n.unsupported("dividing a constant by an encrypted value is not supported; only division by a constant is")),
            }
        }
        (Val::Enc(x), Val::Enc(y)) => {
            if x.shape != y.shape {
                return Err(n.unsupported(format!("{op:?} of encrypted values of shapes {:?} and {:?}: both operands must have the same shape", x.shape, y.shape)));
            }
            let out = &n.outputs[0];
            let (lo, hi) = ctx.range(out)?;
            match op {
                BinOp::Add | BinOp::Sub => {
                    // Requantize both operands to integers of the output's scale, then add.
                    let levels = ((1u64 << ctx.n_bits.activations) - 1) as f64;
                    let s = if hi > lo { (hi - lo) / levels } else { lo.abs().max(1e-9) };
                    let qa = ctx.lookup(x, n.input(0)?, &|_, v| (v / s).round() as i64)?;
                    let qb = ctx.lookup(y, n.input(1)?, &|_, v| (v / s).round() as i64)?;
                    let id = if op == BinOp::Add { ctx.b.add(qa, qb)? } else { ctx.b.sub(qa, qb)? };
                    Ok(QVal::new(id, x.shape.clone(), None, vec![s], vec![0.0]))
                }
                BinOp::Mul => {
                    // Symmetric requantization of both operands, then an encrypted product.
                    let half = ((1u64 << (ctx.n_bits.activations - 1)) - 1) as f64;
                    let sym = |name: &str| -> OnnxResult<f64> {
                        let (l, h) = ctx.range(name)?;
                        let m = l.abs().max(h.abs());
                        Ok(if m > 0.0 { m / half } else { 1.0 })
                    };
                    let (sa, sb) = (sym(n.input(0)?)?, sym(n.input(1)?)?);
                    let qa = ctx.lookup(x, n.input(0)?, &|_, v| (v / sa).round() as i64)?;
                    let qb = ctx.lookup(y, n.input(1)?, &|_, v| (v / sb).round() as i64)?;
                    Ok(QVal::new(ctx.b.mul(qa, qb)?, x.shape.clone(), None, vec![sa * sb], vec![0.0]))
                }
                BinOp::Div => Err(n.unsupported("division by an encrypted value is not supported; only division by a constant is")),
            }
        }
        (Val::Const(_), Val::Const(_)) => unreachable!("constants are folded"),
    }
}
