//! Noise growth through levelled operations: the squared "minimal arithmetic noise padding"
//! (MANP, Concrete's name) of every element of every encrypted value of a TFHE-level graph.
//!
//! A fresh input and a bootstrap output have norm2 = 1 (one unit of bootstrap-output variance).
//! Adding or subtracting encrypted values adds their norm2; multiplying by a clear integer `c`
//! multiplies it by `c^2`; a dot product with clear weights `w` gives `sum(w_i^2 * nu_i^2)`.
//! This is computed *per element* by running the shared levelled kernels of
//! [`veil_ir::tensor`] on the [`Norm2`] element type, so it is exact for every levelled op
//! (matmul, conv2d, sum, movement) without a second implementation. Keyswitches keep norm2
//! (their noise is accounted separately by the parameter optimizer).

use std::collections::HashMap;
use veil_ir::tensor::{zip_broadcast, Element};
use veil_ir::{Graph, Op, Tensor, ValueId};

/// Variance multiplier of one ciphertext, in units of bootstrap-output variance.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Norm2(pub f64);

impl Element for Norm2 {
    fn add(&self, o: &Self) -> Self {
        Norm2(self.0 + o.0)
    }
    fn sub(&self, o: &Self) -> Self {
        Norm2(self.0 + o.0)
    }
    fn neg(&self) -> Self {
        *self
    }
    fn mul_int(&self, k: i64) -> Self {
        Norm2(self.0 * (k as f64).powi(2))
    }
    fn add_int(&self, _k: i64) -> Self {
        *self
    }
    fn zero_like(&self) -> Self {
        Norm2(0.0)
    }
}

/// The clear values of a clear operand: its constant, or (clear runtime input) the worst case
/// of its type broadcast to its shape.
fn clear_values(g: &Graph, v: ValueId) -> Tensor<i64> {
    let t = g.ty(v);
    if let Op::Const { value } = g.op(v) {
        if let Some(c) = g.constant(*value) {
            if let Ok(t) = Tensor::new(c.shape.clone(), c.values.clone()) {
                return t;
            }
        }
    }
    let worst = t.int.min().unsigned_abs().max(t.int.max().unsigned_abs());
    let worst = i64::try_from(worst).unwrap_or(i64::MAX);
    Tensor {
        shape: t.shape.clone(),
        data: vec![worst; t.numel()],
    }
}

/// Per-element norm2 of every encrypted value (clear values are absent from the map).
pub fn norm2(g: &Graph) -> HashMap<ValueId, Tensor<Norm2>> {
    let mut nu: HashMap<ValueId, Tensor<Norm2>> = HashMap::new();
    let order = g.topo_order().unwrap_or_else(|_| g.values());
    for v in order {
        let ty = g.ty(v);
        if !ty.is_encrypted() {
            continue;
        }
        let ones = || Tensor {
            shape: ty.shape.clone(),
            data: vec![Norm2(1.0); ty.numel()],
        };
        let ops = g.operands(v);
        let get = |i: usize| ops.get(i).and_then(|o| nu.get(o));
        let clear = |i: usize| clear_values(g, ops[i]);
        let zero_like = |i: usize| {
            let s = &g.ty(ops[i]).shape;
            Tensor {
                shape: s.clone(),
                data: vec![Norm2(0.0); veil_ir::types::numel(s)],
            }
        };
        let enc_or_zero = |i: usize| get(i).cloned().unwrap_or_else(|| zero_like(i));
        let r: Option<Tensor<Norm2>> = match g.op(v) {
            Op::Input { .. } | Op::Pbs { .. } | Op::WopPbs { .. } => Some(ones()),
            Op::Add | Op::Sub => {
                zip_broadcast(&enc_or_zero(0), &enc_or_zero(1), |a, b| a.add(b)).ok()
            }
            Op::Mul => match (get(0), get(1)) {
                (Some(a), None) => zip_broadcast(a, &clear(1), |n, c| n.mul_int(*c)).ok(),
                (None, Some(b)) => zip_broadcast(&clear(0), b, |c, n| n.mul_int(*c)).ok(),
                _ => None,
            },
            Op::MatMul => match (get(0), get(1)) {
                (Some(a), None) => a.matmul_clear_rhs(&clear(1)).ok(),
                (None, Some(b)) => Tensor::matmul_clear_lhs(&clear(0), b).ok(),
                _ => None,
            },
            Op::Conv2d(at) => get(0).and_then(|x| {
                let bias = (ops.len() > 2).then(|| clear(2));
                x.conv2d_clear(&clear(1), bias.as_ref(), at).ok()
            }),
            Op::Sum { axes, keepdims } => get(0).and_then(|x| x.sum(axes, *keepdims).ok()),
            Op::Reshape => get(0).and_then(|x| x.reshape(&ty.shape).ok()),
            Op::Broadcast => get(0).and_then(|x| x.broadcast_to(&ty.shape).ok()),
            Op::Transpose { perm } => get(0).and_then(|x| x.transpose(perm).ok()),
            Op::Slice {
                starts,
                stops,
                steps,
            } => get(0).and_then(|x| x.slice(starts, stops, steps).ok()),
            Op::Concat { axis } => {
                let parts: Vec<Tensor<Norm2>> = (0..ops.len()).map(enc_or_zero).collect();
                let refs: Vec<&Tensor<Norm2>> = parts.iter().collect();
                Tensor::concat(&refs, *axis).ok()
            }
            // Negation, keyswitch and output keep the noise of their operand.
            Op::Neg
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. } => get(0).cloned(),
            // Not in a lowered graph (constants are clear; the others became bootstraps):
            // the operand's noise, as if levelled.
            Op::Const { .. }
            | Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Relu
            | Op::Abs
            | Op::Round { .. }
            | Op::Clip { .. }
            | Op::Binary(_)
            | Op::Unary(_)
            | Op::Where => get(0).cloned(),
        };
        // Shapes were checked by the verifier; fall back to the worst operand if not.
        let r = r.unwrap_or_else(|| {
            let worst = ops
                .iter()
                .filter_map(|o| nu.get(o))
                .flat_map(|t| t.data.iter().copied())
                .fold(Norm2(1.0), |a, b| if b.0 > a.0 { b } else { a });
            Tensor {
                shape: ty.shape.clone(),
                data: vec![worst; ty.numel()],
            }
        });
        nu.insert(v, r);
    }
    nu
}

/// The largest norm2 of any element of `v` (1 when `v` is clear or unknown).
pub fn max_norm2(nu: &HashMap<ValueId, Tensor<Norm2>>, v: ValueId) -> f64 {
    nu.get(&v)
        .map(|t| t.data.iter().map(|n| n.0).fold(0.0, f64::max))
        .unwrap_or(1.0)
}
