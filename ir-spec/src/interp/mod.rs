//! The reference interpreter: the exact integer semantics of every op, the oracle of all later
//! tests.
//!
//! Values are computed in `i128` with the shared kernels of [`crate::tensor`] (the same code
//! the runtime runs on ciphertexts for levelled ops). Inputs are checked against their declared
//! types and every result against its declared element type: a value that does not fit is an
//! overflow error naming the value (`%N`), the op, the element and the type; nothing wraps.
//!
//! At the TFHE level encrypted values are their plain messages: `keyswitch` is the identity and
//! `pbs` requires every message `m` to satisfy `0 <= m < 2^w` (`w` the operand encoding's
//! width; otherwise the padding bit would be set and a real bootstrap would compute garbage)
//! and returns `table[m]`.

use crate::graph::{Graph, ValueId};
use crate::infer::round_value;
use crate::ops::{Op, TableId};
use crate::tensor::{
    matmul_dims, try_zip_broadcast, zip_broadcast, ShapeError, SparseWeights, Tensor,
};
use crate::types::{numel, IntType, TensorType};
use crate::verify::{verify, VerifyError};
use std::borrow::Cow;
use std::collections::HashMap;

#[cfg(test)]
mod tests;

/// Why one op could not be evaluated (bad operands or attributes, a table index out of range,
/// a message with its padding bit set, `i128` overflow).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl From<ShapeError> for EvalError {
    fn from(e: ShapeError) -> Self {
        EvalError(e.0)
    }
}

/// Why a program could not be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// The graph does not verify.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// Wrong number of inputs.
    #[error("the program takes {expected} input(s), got {got}")]
    InputCount {
        /// Inputs the graph declares.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An input tensor has the wrong shape.
    #[error("input \"{name}\" has shape {got:?}, expected {expected:?}")]
    InputShape {
        /// Input name.
        name: String,
        /// Shape given.
        got: Vec<usize>,
        /// Declared shape.
        expected: Vec<usize>,
    },
    /// An input element is outside the declared element type.
    #[error("input \"{name}\" element {index} = {value} does not fit {int}")]
    InputRange {
        /// Input name.
        name: String,
        /// Multi-index of the element, e.g. `[1, 2]`.
        index: String,
        /// The element.
        value: i64,
        /// Declared element type.
        int: IntType,
    },
    /// A result element does not fit the value's declared element type.
    #[error("%{num} = {op}: element {index} = {value} overflows the declared {int}")]
    Overflow {
        /// The value.
        value_id: ValueId,
        /// Its printed number.
        num: usize,
        /// Op mnemonic.
        op: &'static str,
        /// Multi-index of the element.
        index: String,
        /// The exact result.
        value: i128,
        /// Declared element type.
        int: IntType,
    },
    /// An op failed to evaluate.
    #[error("%{num} = {op}: {error}")]
    Eval {
        /// The value.
        value_id: ValueId,
        /// Its printed number.
        num: usize,
        /// Op mnemonic.
        op: &'static str,
        /// What went wrong.
        error: EvalError,
    },
    /// An output element does not fit the `i64` elements of the returned tensors (a `u64`
    /// value above `i64::MAX`).
    #[error("output \"{name}\" element {index} = {value} does not fit i64")]
    OutputRange {
        /// Output name.
        name: String,
        /// Multi-index of the element.
        index: String,
        /// The element.
        value: i128,
    },
}

/// Multi-index of flat element `flat` of `shape`, formatted `[i, j]` (`[]` for a scalar).
pub fn format_index(shape: &[usize], flat: usize) -> String {
    let mut idx = vec![0; shape.len()];
    let mut rest = flat;
    for a in (0..shape.len()).rev() {
        if shape[a] > 0 {
            idx[a] = rest % shape[a];
            rest /= shape[a];
        }
    }
    format!("{idx:?}")
}

/// Runs `g` on `inputs` (in [`Graph::inputs`] order); returns the outputs in [`Graph::outputs`]
/// order. Verifies the graph first.
pub fn run(g: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, InterpError> {
    run_traced(g, inputs, &mut |_, _| {})
}

/// Like [`run`], and calls `on_value` with every value (inputs included, outputs excluded) as
/// soon as it is computed, *before* it is checked against its declared type, so a calibration
/// sees the exact value even when it then overflows.
pub fn run_traced(
    g: &Graph,
    inputs: &[Tensor<i64>],
    on_value: &mut dyn FnMut(ValueId, &Tensor<i128>),
) -> Result<Vec<Tensor<i64>>, InterpError> {
    Prepared::new(g)?.run_traced(inputs, on_value)
}

/// A graph verified once and ready to run on many samples (calibration over an inputset, the
/// client's domain check, scoring a test set): the verifier, the evaluation order, the use
/// counts and the constants' tensors are computed in [`Prepared::new`], not per sample.
pub struct Prepared<'g> {
    /// The graph, borrowed ([`Prepared::new`]) or owned ([`Prepared::owned`]).
    g: std::borrow::Cow<'g, Graph>,
    order: Vec<ValueId>,
    nums: HashMap<ValueId, usize>,
    uses: HashMap<ValueId, usize>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    /// Every constant, widened once.
    consts: HashMap<ValueId, Tensor<i128>>,
    /// Matmuls with a constant operand: the weights by nonzero entries, prepared once.
    matmuls: HashMap<ValueId, ConstMatmul>,
}

/// A matmul whose clear operand is a constant of the program.
struct ConstMatmul {
    weights: SparseWeights,
    /// Whether the constant is the right-hand side.
    rhs: bool,
    /// `max |w|`, for the accumulation check.
    max_abs: i128,
}

impl<'g> Prepared<'g> {
    /// Verifies `g` and prepares it for [`Prepared::run`].
    pub fn new(g: &'g Graph) -> Result<Self, InterpError> {
        verify(g)?;
        let order = g.topo_order().map_err(|_| InterpError::Invalid(cyclic()))?;
        let nums = g.value_numbers();
        let failed = |v: ValueId, error: EvalError| InterpError::Eval {
            value_id: v,
            num: nums.get(&v).copied().unwrap_or(0),
            op: g.op(v).name(),
            error,
        };
        // How many times each value is read, to free intermediate tensors early.
        let mut uses: HashMap<ValueId, usize> = HashMap::new();
        let mut consts = HashMap::new();
        let mut matmuls = HashMap::new();
        for &v in &order {
            let ops = g.operands(v);
            for &o in &ops {
                *uses.entry(o).or_default() += 1;
            }
            match g.op(v) {
                op @ Op::Const { .. } => {
                    let t = eval_op(g, op, &[], g.ty(v), &[]).map_err(|e| failed(v, e))?;
                    consts.insert(v, t);
                }
                Op::MatMul => {
                    // operands come first in topological order: their constants are ready
                    let pick = [(1, true), (0, false)].into_iter().find_map(|(i, rhs)| {
                        ops.get(i).and_then(|o| consts.get(o)).map(|c| (c, rhs))
                    });
                    if let Some((c, rhs)) = pick {
                        let w = to_i64(c, "matmul weight").map_err(|e| failed(v, e))?;
                        let weights = if rhs {
                            SparseWeights::rhs(&w)
                        } else {
                            SparseWeights::lhs(&w)
                        }
                        .map_err(|e| failed(v, e.into()))?;
                        let max_abs = max_abs(c);
                        matmuls.insert(
                            v,
                            ConstMatmul {
                                weights,
                                rhs,
                                max_abs,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(Prepared {
            g: std::borrow::Cow::Borrowed(g),
            matmuls,
            order,
            nums,
            uses,
            inputs: g.inputs(),
            outputs: g.outputs(),
            consts,
        })
    }

    /// [`Prepared::new`] of a graph it keeps: a prepared graph that can be stored next to
    /// (or instead of) the graph it was made from.
    pub fn owned(g: Graph) -> Result<Prepared<'static>, InterpError> {
        let p = Prepared::new(&g)?;
        let Prepared {
            g: borrowed,
            order,
            nums,
            uses,
            inputs,
            outputs,
            consts,
            matmuls,
        } = p;
        drop(borrowed);
        Ok(Prepared {
            g: std::borrow::Cow::Owned(g),
            order,
            nums,
            uses,
            inputs,
            outputs,
            consts,
            matmuls,
        })
    }

    /// The graph this runs.
    pub fn graph(&self) -> &Graph {
        &self.g
    }

    /// [`run`] on the prepared graph.
    pub fn run(&self, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, InterpError> {
        self.run_traced(inputs, &mut |_, _| {})
    }

    /// [`run_traced`] on the prepared graph.
    pub fn run_traced(
        &self,
        inputs: &[Tensor<i64>],
        on_value: &mut dyn FnMut(ValueId, &Tensor<i128>),
    ) -> Result<Vec<Tensor<i64>>, InterpError> {
        let g: &Graph = &self.g;
        if self.inputs.len() != inputs.len() {
            return Err(InterpError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        let mut given: HashMap<ValueId, &Tensor<i64>> = HashMap::new();
        for (&v, t) in self.inputs.iter().zip(inputs) {
            check_input(g, v, t)?;
            given.insert(v, t);
        }
        let mut uses = self.uses.clone();
        let mut values: HashMap<ValueId, Cow<'_, Tensor<i128>>> = HashMap::new();
        for &v in &self.order {
            let node = g.node(v);
            let num = self.nums.get(&v).copied().unwrap_or(0);
            let result = match &node.op {
                Op::Input { .. } => Cow::Owned(given[&v].map(|&x| x as i128)),
                Op::Const { .. } => Cow::Borrowed(&self.consts[&v]),
                op => {
                    let operands = g.operands(v);
                    let args: Vec<&Tensor<i128>> =
                        operands.iter().map(|o| values[o].as_ref()).collect();
                    let tys: Vec<&TensorType> = operands.iter().map(|&o| g.ty(o)).collect();
                    let r = match self.matmuls.get(&v) {
                        Some(m) => m.eval(&args),
                        None => eval_op(g, op, &tys, &node.ty, &args),
                    }
                    .map_err(|error| InterpError::Eval {
                        value_id: v,
                        num,
                        op: op.name(),
                        error,
                    })?;
                    for o in operands {
                        let n = uses.get_mut(&o).expect("counted above");
                        *n -= 1;
                        if *n == 0 {
                            values.remove(&o);
                        }
                    }
                    Cow::Owned(r)
                }
            };
            if matches!(node.op, Op::Output { .. }) {
                values.insert(v, result);
                continue;
            }
            on_value(v, &result);
            if matches!(node.op, Op::Const { .. }) {
                // the verifier checked the constant against its declared type
                values.insert(v, result);
                continue;
            }
            if result.shape != node.ty.shape {
                return Err(InterpError::Eval {
                    value_id: v,
                    num,
                    op: node.op.name(),
                    error: EvalError(format!(
                        "computed shape {:?} differs from the declared {:?}",
                        result.shape, node.ty.shape
                    )),
                });
            }
            let int = node.ty.int;
            if let Some((j, &x)) = result
                .data
                .iter()
                .enumerate()
                .find(|(_, &x)| !int.contains(x))
            {
                return Err(InterpError::Overflow {
                    value_id: v,
                    num,
                    op: node.op.name(),
                    index: format_index(&result.shape, j),
                    value: x,
                    int,
                });
            }
            values.insert(v, result);
        }
        self.outputs
            .iter()
            .map(|o| {
                let t = &values[o];
                t.try_map(|&x| i64::try_from(x).map_err(|_| x))
                    .map_err(|value| {
                        let j = t.data.iter().position(|&x| x == value).unwrap_or(0);
                        InterpError::OutputRange {
                            name: match g.op(*o) {
                                Op::Output { name } => name.clone(),
                                _ => String::new(),
                            },
                            index: format_index(&t.shape, j),
                            value,
                        }
                    })
            })
            .collect()
    }
}

impl ConstMatmul {
    /// The matmul on its two operands (the constant one among them).
    fn eval(&self, args: &[&Tensor<i128>]) -> Result<Tensor<i128>, EvalError> {
        let (x, w_shape) = if self.rhs {
            (args[0], (args[0].shape.as_slice(), self.weights.shape()))
        } else {
            (args[1], (self.weights.shape(), args[1].shape.as_slice()))
        };
        let (_, k, _, _) = matmul_dims(w_shape.0, w_shape.1)?;
        check_accumulation(k, max_abs(x), self.max_abs, 0, "matmul")?;
        Ok(if self.rhs {
            x.matmul_sparse_rhs(&self.weights)?
        } else {
            Tensor::matmul_sparse_lhs(&self.weights, x)?
        })
    }
}

fn cyclic() -> VerifyError {
    VerifyError {
        problems: vec![crate::verify::Problem {
            value: None,
            message: "the graph has a cycle".into(),
        }],
    }
}

fn check_input(g: &Graph, v: ValueId, t: &Tensor<i64>) -> Result<(), InterpError> {
    let ty = g.ty(v);
    let name = match g.op(v) {
        Op::Input { name } => name.clone(),
        _ => String::new(),
    };
    if t.shape != ty.shape || t.data.len() != numel(&t.shape) {
        return Err(InterpError::InputShape {
            name,
            got: t.shape.clone(),
            expected: ty.shape.clone(),
        });
    }
    if let Some((j, &x)) = t
        .data
        .iter()
        .enumerate()
        .find(|(_, &x)| !ty.int.contains(x as i128))
    {
        return Err(InterpError::InputRange {
            name,
            index: format_index(&t.shape, j),
            value: x,
            int: ty.int,
        });
    }
    Ok(())
}

/// Evaluates node `v` of `g` on operand values `args` (in operand order), with the node's own
/// operand and result types. See [`eval_op`].
pub fn eval_node(g: &Graph, v: ValueId, args: &[&Tensor<i128>]) -> Result<Tensor<i128>, EvalError> {
    let operands = g.operands(v);
    let tys: Vec<&TensorType> = operands.iter().map(|&o| g.ty(o)).collect();
    let node = g.node(v);
    eval_op(g, &node.op, &tys, &node.ty, args)
}

fn fail<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}

fn overflow(what: &str) -> EvalError {
    EvalError(format!("{what} overflows 128-bit arithmetic"))
}

/// Exact elementwise binary op with broadcasting; `None` from `f` is an `i128` overflow.
fn binary(
    a: &Tensor<i128>,
    b: &Tensor<i128>,
    what: &str,
    f: impl Fn(i128, i128) -> Option<i128>,
) -> Result<Tensor<i128>, EvalError> {
    try_zip_broadcast(a, b, |&x, &y| f(x, y).ok_or_else(|| overflow(what)))
}

fn to_i64(t: &Tensor<i128>, what: &str) -> Result<Tensor<i64>, EvalError> {
    t.try_map(|&x| {
        i64::try_from(x).map_err(|_| EvalError(format!("{what} value {x} does not fit i64")))
    })
}

fn max_abs(t: &Tensor<i128>) -> i128 {
    t.data
        .iter()
        .map(|x| x.unsigned_abs().min(i128::MAX as u128) as i128)
        .max()
        .unwrap_or(0)
}

/// Fails unless `terms * max|x| * max|w| + extra` fits `i128` (so the accumulating kernels
/// cannot overflow).
fn check_accumulation(
    terms: usize,
    x: i128,
    w: i128,
    extra: i128,
    what: &str,
) -> Result<(), EvalError> {
    i128::try_from(terms)
        .ok()
        .and_then(|n| n.checked_mul(x))
        .and_then(|p| p.checked_mul(w))
        .and_then(|p| p.checked_add(extra))
        .map(|_| ())
        .ok_or_else(|| overflow(what))
}

fn table(g: &Graph, id: TableId) -> Result<&[i64], EvalError> {
    g.table(id)
        .map(|t| t.entries.as_slice())
        .ok_or_else(|| EvalError(format!("table #{} does not exist", id.0)))
}

/// Looks up element `j` (value `x`) at index `x - offset` of `tables[map[j]]` (`tables[0]` when
/// `map` is empty).
fn lookup(
    g: &Graph,
    a: &Tensor<i128>,
    tables: &[TableId],
    map: &[u32],
    offset: i128,
    check: impl Fn(usize, i128) -> Result<(), EvalError>,
) -> Result<Tensor<i128>, EvalError> {
    let tabs: Vec<&[i64]> = tables
        .iter()
        .map(|&t| table(g, t))
        .collect::<Result<_, _>>()?;
    if tabs.is_empty() {
        return fail("no table");
    }
    if !map.is_empty() && map.len() != a.data.len() {
        return fail(format!(
            "map has {} entries for {} elements",
            map.len(),
            a.data.len()
        ));
    }
    let data = a
        .data
        .iter()
        .enumerate()
        .map(|(j, &x)| {
            check(j, x)?;
            let t = match map.get(j) {
                Some(&m) => *tabs.get(m as usize).ok_or_else(|| {
                    EvalError(format!(
                        "map[{j}] = {m} is out of range for {} tables",
                        tabs.len()
                    ))
                })?,
                None => tabs[0],
            };
            let i = x - offset;
            if i < 0 || i >= t.len() as i128 {
                return fail(format!(
                    "element {} = {x} is outside the table's domain (index {i}, {} entries)",
                    format_index(&a.shape, j),
                    t.len()
                ));
            }
            Ok(t[i as usize] as i128)
        })
        .collect::<Result<_, _>>()?;
    Ok(Tensor {
        shape: a.shape.clone(),
        data,
    })
}

/// `keyswitch.shr` and `keyswitch.bit` read bits at and above `lsb`: the bits below must be
/// zero (the exact `round` lowering clears them first).
fn low_bits_zero(x: i128, lsb: u8, what: &str) -> Result<(), EvalError> {
    if lsb >= 127 || x & ((1i128 << lsb) - 1) != 0 {
        return fail(format!(
            "{what}: value {x} has nonzero bits below bit {lsb}; they must be cleared first"
        ));
    }
    Ok(())
}

/// Evaluates one op on concrete operand values: the exact semantics of [`Op`], without
/// checking the result against `result`'s element type (callers such as constant folding check
/// what they need). `operand_types` and `result` supply what the semantics read from types:
/// the offset of `tlu` tables (the operand type's minimum), the width of `pbs` operands, and
/// the result shape of `reshape`/`broadcast`.
///
/// `input` cannot be evaluated (its value comes from the caller); `output`, `keyswitch` are the
/// identity.
pub fn eval_op(
    g: &Graph,
    op: &Op,
    operand_types: &[&TensorType],
    result: &TensorType,
    args: &[&Tensor<i128>],
) -> Result<Tensor<i128>, EvalError> {
    let (lo, hi) = op.arity();
    if args.len() < lo || args.len() > hi || operand_types.len() != args.len() {
        return fail(format!(
            "{} takes {lo}..={hi} operands, got {} values and {} types",
            op.name(),
            args.len(),
            operand_types.len()
        ));
    }
    for (i, a) in args.iter().enumerate() {
        if a.data.is_empty() || a.data.len() != numel(&a.shape) {
            return fail(format!(
                "operand {i} has {} elements for shape {:?}; tensors must be non-empty",
                a.data.len(),
                a.shape
            ));
        }
    }
    let a = |i: usize| args[i];
    Ok(match op {
        Op::Input { name } => {
            return fail(format!(
                "input \"{name}\" has no operands to evaluate; its value is given to `run`"
            ))
        }
        Op::Const { value } => {
            let c = g
                .constant(*value)
                .ok_or_else(|| EvalError(format!("constant #{} does not exist", value.0)))?;
            Tensor::new(
                c.shape.clone(),
                c.values.iter().map(|&x| x as i128).collect(),
            )?
        }
        Op::Output { .. } | Op::KeySwitch => a(0).clone(),
        Op::KeySwitchShr { shift } => a(0).try_map(|&x| {
            low_bits_zero(x, *shift, "keyswitch.shr")?;
            Ok::<_, EvalError>(x >> *shift)
        })?,
        // the bootstrap reads the nearest (approximately); the reference takes ties upward
        Op::KeySwitchRound { shift } => a(0).try_map(|&x| {
            let k = (*shift).min(120);
            let half = if k == 0 { 0 } else { 1i128 << (k - 1) };
            x.checked_add(half)
                .map(|y| y >> k)
                .ok_or_else(|| overflow("keyswitch.round"))
        })?,
        Op::KeySwitchBit { bit } => a(0).try_map(|&x| {
            low_bits_zero(x, *bit, "keyswitch.bit")?;
            Ok::<_, EvalError>((x >> *bit) & 1)
        })?,
        Op::Add => binary(a(0), a(1), "add", i128::checked_add)?,
        Op::Sub => binary(a(0), a(1), "sub", i128::checked_sub)?,
        Op::Mul => binary(a(0), a(1), "mul", i128::checked_mul)?,
        Op::Min => binary(a(0), a(1), "min", |x, y| Some(x.min(y)))?,
        Op::Max => binary(a(0), a(1), "max", |x, y| Some(x.max(y)))?,
        Op::Cmp(c) => binary(a(0), a(1), "cmp", |x, y| Some(c.eval(x, y) as i128))?,
        Op::Binary(b) => try_zip_broadcast(a(0), a(1), |&x, &y| b.eval(x, y).map_err(EvalError))?,
        Op::Unary(u) => a(0).map(|&x| u.eval(x)),
        Op::Where => {
            let ab = zip_broadcast(a(1), a(2), |&x, &y| (x, y))?;
            zip_broadcast(a(0), &ab, |&c, &(x, y)| if c != 0 { x } else { y })?
        }
        Op::Neg => a(0).try_map(|x| x.checked_neg().ok_or_else(|| overflow("neg")))?,
        Op::Abs => a(0).try_map(|x| x.checked_abs().ok_or_else(|| overflow("abs")))?,
        Op::Relu => a(0).map(|&x| x.max(0)),
        // approximate rounding: the exact result is one of the values it may take
        Op::Round { lsbs, rescale, .. } => a(0).try_map(|&x| {
            let r = round_value(x, *lsbs).ok_or_else(|| overflow("round"))?;
            Ok::<_, EvalError>(if *rescale { r >> *lsbs } else { r })
        })?,
        Op::Clip { lo, hi } => {
            if lo > hi {
                return fail(format!("clip lo={lo} is above hi={hi}"));
            }
            a(0).map(|&x| x.clamp(*lo as i128, *hi as i128))
        }
        Op::MatMul => {
            let (_, k, _, _) = matmul_dims(&a(0).shape, &a(1).shape)?;
            check_accumulation(k, max_abs(a(0)), max_abs(a(1)), 0, "matmul")?;
            // The kernels multiply by clear i64 weights; either side will do here.
            match to_i64(a(1), "matmul rhs") {
                Ok(w) => a(0).matmul_clear_rhs(&w)?,
                Err(_) => Tensor::matmul_clear_lhs(&to_i64(a(0), "matmul operand")?, a(1))?,
            }
        }
        Op::Conv2d(at) => {
            let w = to_i64(a(1), "conv2d weight")?;
            let b = if args.len() == 3 {
                Some(to_i64(a(2), "conv2d bias")?)
            } else {
                None
            };
            let per_out = w.shape.iter().skip(1).product::<usize>();
            let extra = if args.len() == 3 { max_abs(a(2)) } else { 0 };
            check_accumulation(per_out, max_abs(a(0)), max_abs(a(1)), extra, "conv2d")?;
            a(0).conv2d_clear(&w, b.as_ref(), at)?
        }
        Op::Sum { axes, keepdims } => {
            let n = a(0).data.len();
            check_accumulation(n, max_abs(a(0)), 1, 0, "sum")?;
            a(0).sum(axes, *keepdims)?
        }
        Op::Reshape => a(0).reshape(&result.shape)?,
        Op::Broadcast => a(0).broadcast_to(&result.shape)?,
        Op::Transpose { perm } => a(0).transpose(perm)?,
        Op::Concat { axis } => Tensor::concat(args, *axis)?,
        Op::Slice {
            starts,
            stops,
            steps,
        } => a(0).slice(starts, stops, steps)?,
        Op::Tlu { table } => {
            let t = operand_types[0].int;
            lookup(g, a(0), &[*table], &[], t.min(), |_, _| Ok(()))?
        }
        Op::TluMulti { tables, map } => {
            if map.len() != a(0).data.len() {
                return fail(format!(
                    "map has {} entries for {} elements",
                    map.len(),
                    a(0).data.len()
                ));
            }
            let t = operand_types[0].int;
            lookup(g, a(0), tables, map, t.min(), |_, _| Ok(()))?
        }
        Op::Pbs { tables, map } | Op::WopPbs { tables, map, .. } => {
            let Some(enc) = operand_types[0].encoding else {
                return fail("pbs operand has no encoding");
            };
            if !(1..=62).contains(&enc.width) {
                return fail(format!("pbs operand width {} is outside 1..=62", enc.width));
            }
            let limit = 1i128 << enc.width;
            let shape = a(0).shape.clone();
            lookup(g, a(0), tables, map, 0, |j, m| {
                if (0..limit).contains(&m) {
                    Ok(())
                } else {
                    fail(format!(
                        "element {} = {m} is outside 0..2^{} (the {}-bit message space of {enc}): the padding bit would be set",
                        format_index(&shape, j),
                        enc.width,
                        enc.width
                    ))
                }
            })?
        }
    })
}
