//! Result-type inference: the single source of the typing rules of every [`Op`].
//!
//! [`infer`] computes the type an op produces from its operands: visibility (encrypted iff any
//! operand is), shape (numpy broadcasting, matmul/conv2d rules, movement ops) and a *sound*
//! element type obtained by interval arithmetic on the operands' value ranges ([`value_range`]):
//! every value the op can produce on in-range operands fits the inferred [`IntType`].
//! Constant operands contribute their actual values, so `matmul`/`conv2d` with constant weights
//! get tight bounds (per output: the sum over the weights of `w * [lo, hi]`, plus the bias).
//!
//! The pieces are public separately so analyses can reuse them: [`infer_shape`] validates
//! attributes and computes the result shape, [`infer_range`] maps operand intervals (for
//! example calibrated ranges, narrower than the types) to the result interval.
//!
//! Encodings are not inferred for `keyswitch` and `pbs` (the lowering chooses them); a levelled
//! op's result gets the encoding of its first encrypted operand (see the verifier's level
//! rules).

use crate::graph::{Graph, ValueId};
use crate::ops::{BinOp, Constant, Op, Table, TableId, UnOp};
use crate::tensor::{conv2d_shape, matmul_dims};
use crate::types::{broadcast_shapes, numel, IntType, Shape, TensorType, Visibility};
use std::collections::BTreeMap;
use std::fmt;

/// Largest number of elements of one tensor veil accepts: `2^24` (16 777 216).
///
/// Every type the builder, type inference and the verifier accept stays within it (checked with
/// [`checked_numel`], which also catches products of dimensions that overflow), so no later
/// stage (interpreter, compiler passes, lowering, runtime) is asked to allocate more than this
/// many elements for one value. `SPEC.md` states the rule.
pub const MAX_ELEMENTS: usize = 1 << 24;

/// The number of elements of `shape` (1 for a scalar, 0 with a zero-sized axis), or a message
/// naming the shape and [`MAX_ELEMENTS`] when the product of its dimensions exceeds the limit
/// (or overflows).
pub fn checked_numel(shape: &[usize]) -> Result<usize, String> {
    if shape.contains(&0) {
        return Ok(0);
    }
    let n = shape
        .iter()
        .try_fold(1u128, |a, &d| a.checked_mul(d as u128));
    match n {
        Some(n) if n <= MAX_ELEMENTS as u128 => Ok(n as usize),
        n => Err(format!(
            "tensor of shape {shape:?} has {} elements, over veil's limit of {MAX_ELEMENTS} (2^24) elements per tensor; split the computation into smaller tensors",
            n.map_or_else(|| "more than 2^128".to_string(), |n| n.to_string())
        )),
    }
}

/// Why an op cannot be typed: the op's mnemonic and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {msg}")]
pub struct TypeError {
    /// Mnemonic of the op ([`Op::name`]).
    pub op: &'static str,
    /// What is wrong, naming the offending shapes, types or attributes.
    pub msg: String,
}

impl TypeError {
    fn new(op: &Op, msg: impl Into<String>) -> Self {
        TypeError {
            op: op.name(),
            msg: msg.into(),
        }
    }
}

/// A closed integer interval `lo ..= hi` (`lo <= hi`): the one interval type of veil's range
/// analyses (type inference, the compiler's bit-width pass and e-graph analysis, domains).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Smallest value.
    pub lo: i128,
    /// Largest value.
    pub hi: i128,
}

impl Interval {
    /// The interval `lo ..= hi`, endpoints swapped if needed.
    pub fn new(lo: i128, hi: i128) -> Self {
        Interval {
            lo: lo.min(hi),
            hi: lo.max(hi),
        }
    }

    /// The single value `v`.
    pub fn point(v: i128) -> Self {
        Interval { lo: v, hi: v }
    }

    /// Every value of an element type.
    pub fn of_type(t: IntType) -> Self {
        Interval {
            lo: t.min(),
            hi: t.max(),
        }
    }

    /// The smallest interval holding all `values`, `None` if there are none.
    pub fn of_values(values: impl IntoIterator<Item = i128>) -> Option<Self> {
        values.into_iter().fold(None, |acc, v| {
            Some(match acc {
                None => Interval::point(v),
                Some(i) => i.union(Interval::point(v)),
            })
        })
    }

    /// Smallest interval containing both.
    pub fn union(self, o: Interval) -> Self {
        Interval {
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }

    /// The values in both, `None` when they do not meet.
    pub fn intersect(self, o: Interval) -> Option<Self> {
        let (lo, hi) = (self.lo.max(o.lo), self.hi.min(o.hi));
        (lo <= hi).then_some(Interval { lo, hi })
    }

    /// Bits of the narrowest element type holding the interval; 128 when no type of at most
    /// 64 bits does.
    pub fn bits(self) -> u32 {
        self.int_type().map_or(128, |t| t.bits as u32)
    }

    /// Whether `v` lies in the interval.
    pub fn contains(self, v: i128) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// `self + o`; `None` on `i128` overflow.
    pub fn checked_add(self, o: Interval) -> Option<Self> {
        Some(Interval {
            lo: self.lo.checked_add(o.lo)?,
            hi: self.hi.checked_add(o.hi)?,
        })
    }

    /// `self - o`; `None` on `i128` overflow.
    pub fn checked_sub(self, o: Interval) -> Option<Self> {
        Some(Interval {
            lo: self.lo.checked_sub(o.hi)?,
            hi: self.hi.checked_sub(o.lo)?,
        })
    }

    /// `-self`; `None` on `i128` overflow.
    pub fn checked_neg(self) -> Option<Self> {
        Some(Interval {
            lo: self.hi.checked_neg()?,
            hi: self.lo.checked_neg()?,
        })
    }

    /// `{a * b | a in self, b in o}`'s hull; `None` on `i128` overflow.
    pub fn checked_mul(self, o: Interval) -> Option<Self> {
        let p = [
            self.lo.checked_mul(o.lo)?,
            self.lo.checked_mul(o.hi)?,
            self.hi.checked_mul(o.lo)?,
            self.hi.checked_mul(o.hi)?,
        ];
        Some(Interval {
            lo: *p.iter().min().expect("4 products"),
            hi: *p.iter().max().expect("4 products"),
        })
    }

    /// The range of a sum of `n >= 1` values of `self`; `None` on `i128` overflow.
    pub fn checked_repeat(self, n: usize) -> Option<Self> {
        let n = i128::try_from(n).ok()?;
        Some(Interval {
            lo: self.lo.checked_mul(n)?,
            hi: self.hi.checked_mul(n)?,
        })
    }

    /// The narrowest element type holding the interval (see [`IntType::fitting`]).
    pub fn int_type(self) -> Option<IntType> {
        IntType::fitting(self.lo, self.hi)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.lo, self.hi)
    }
}

/// The interval of every value of a graph (from calibration or from [`transfer`] on
/// declared input ranges): what the compiler's bit-width pass computes and its e-graph
/// analysis starts from.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ValueRanges {
    map: BTreeMap<ValueId, Interval>,
}

impl ValueRanges {
    /// Range of `v`, if known.
    pub fn get(&self, v: ValueId) -> Option<Interval> {
        self.map.get(&v).copied()
    }

    /// Sets the range of `v`.
    pub fn set(&mut self, v: ValueId, r: Interval) {
        self.map.insert(v, r);
    }

    /// Widens the range of `v` to include `r`.
    pub fn include(&mut self, v: ValueId, r: Interval) {
        let e = self.map.entry(v).or_insert(r);
        *e = e.union(r);
    }

    /// All known ranges.
    pub fn iter(&self) -> impl Iterator<Item = (ValueId, Interval)> + '_ {
        self.map.iter().map(|(v, r)| (*v, *r))
    }

    /// Number of values with a range.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no range is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The values `v` can take: the actual values of a constant, else its type's range.
///
/// # Panics
/// If `v` is not a live node of `g`.
pub fn value_range(g: &Graph, v: ValueId) -> Interval {
    if let Op::Const { value } = g.op(v) {
        if let Some(r) = g
            .constant(*value)
            .and_then(|c| Interval::of_values(c.values.iter().map(|&x| x as i128)))
        {
            return r;
        }
    }
    Interval::of_type(g.ty(v).int)
}

/// The type of the result of `op` applied to `operands` (nodes of `g`).
///
/// `target_shape` is the result shape of `reshape` and `broadcast` (ignored by other ops).
/// Fails when the operand count, shapes, visibilities or attributes are invalid, when a table or
/// constant id is out of range, or when the result needs more than 64 bits. `input` has no
/// inferable type (inputs declare theirs).
///
/// # Panics
/// If an operand is not a live node of `g`.
pub fn infer(
    g: &Graph,
    op: &Op,
    operands: &[ValueId],
    target_shape: Option<&[usize]>,
) -> Result<TensorType, TypeError> {
    if let Op::Output { .. } = op {
        check_arity(op, operands.len())?;
        return Ok(g.ty(operands[0]).clone());
    }
    let shape = infer_shape(g, op, operands, target_shape)?;
    let ranges: Vec<Interval> = operands.iter().map(|&o| value_range(g, o)).collect();
    let range = infer_range(g, op, operands, &ranges)?;
    let int = range.int_type().ok_or_else(|| {
        TypeError::new(
            op,
            format!("result range {range} needs more than 64 bits; narrow the operands first"),
        )
    })?;
    let (vis, encoding) = match op {
        Op::Const { .. } => (Visibility::Clear, None),
        // the lowering chooses the encodings of keyswitches and bootstraps
        Op::KeySwitch
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. }
        | Op::Pbs { .. }
        | Op::WopPbs { .. } => (Visibility::Encrypted, None),
        // encrypted iff an operand is, with the encoding of the first encrypted one
        Op::Input { .. }
        | Op::Output { .. }
        | Op::Add
        | Op::Sub
        | Op::Neg
        | Op::Mul
        | Op::MatMul
        | Op::Conv2d(_)
        | Op::Sum { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Broadcast
        | Op::Concat { .. }
        | Op::Slice { .. }
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
        | Op::Where => {
            let enc = operands.iter().map(|&o| g.ty(o)).find(|t| t.is_encrypted());
            match enc {
                Some(t) => (Visibility::Encrypted, t.encoding),
                None => (Visibility::Clear, None),
            }
        }
    };
    Ok(TensorType {
        vis,
        int,
        shape,
        encoding,
    })
}

fn check_arity(op: &Op, n: usize) -> Result<(), TypeError> {
    let (lo, hi) = op.arity();
    if n < lo || n > hi {
        let want = if lo == hi {
            format!("{lo}")
        } else if hi == usize::MAX {
            format!("at least {lo}")
        } else {
            format!("{lo} to {hi}")
        };
        return Err(TypeError::new(
            op,
            format!("takes {want} operand(s), got {n}"),
        ));
    }
    Ok(())
}

fn constant_of<'g>(
    g: &'g Graph,
    op: &Op,
    id: crate::ops::ConstId,
) -> Result<&'g Constant, TypeError> {
    g.constant(id).ok_or_else(|| {
        TypeError::new(
            op,
            format!(
                "constant #{} does not exist (the pool has {})",
                id.0,
                g.consts.len()
            ),
        )
    })
}

fn table_entries<'g>(g: &'g Graph, op: &Op, id: TableId) -> Result<&'g [i64], TypeError> {
    g.table(id).map(|t| t.entries.as_slice()).ok_or_else(|| {
        TypeError::new(
            op,
            format!(
                "table #{} does not exist (the pool has {})",
                id.0,
                g.tables.len()
            ),
        )
    })
}

/// Checks the tables and per-element map of `tlu`, `tlu.multi` and `pbs`: ids in range, every
/// table of `len` entries, map of `numel` entries indexing `tables` (an empty map is allowed
/// when `map_optional` and there is exactly one table).
fn check_tables(
    g: &Graph,
    op: &Op,
    (tables, map, map_optional): (&[TableId], &[u32], bool),
    len: u128,
    numel: usize,
    domain: &str,
) -> Result<(), TypeError> {
    if tables.is_empty() {
        return Err(TypeError::new(op, "needs at least one table"));
    }
    for &t in tables {
        let e = table_entries(g, op, t)?;
        if e.len() as u128 != len {
            return Err(TypeError::new(
                op,
                format!(
                    "table #{} has {} entries, but {domain} needs exactly {len}",
                    t.0,
                    e.len()
                ),
            ));
        }
    }
    if map.is_empty() && map_optional && tables.len() == 1 {
        return Ok(());
    }
    if map.len() != numel {
        return Err(TypeError::new(
            op,
            format!(
                "map has {} entries, but the operand has {numel} elements",
                map.len()
            ),
        ));
    }
    if let Some((j, &m)) = map
        .iter()
        .enumerate()
        .find(|(_, &m)| m as usize >= tables.len())
    {
        return Err(TypeError::new(
            op,
            format!(
                "map[{j}] = {m} is out of range for {} table(s)",
                tables.len()
            ),
        ));
    }
    Ok(())
}

/// Validates the op's operand count, operand shapes/visibilities, attributes and pool ids, and
/// returns the result shape. `target_shape` is required by `reshape` and `broadcast`.
///
/// # Panics
/// If an operand is not a live node of `g`.
pub fn infer_shape(
    g: &Graph,
    op: &Op,
    operands: &[ValueId],
    target_shape: Option<&[usize]>,
) -> Result<Shape, TypeError> {
    check_arity(op, operands.len())?;
    let ty = |i: usize| g.ty(operands[i]);
    let sh = |i: usize| g.ty(operands[i]).shape.as_slice();
    let e = |m: String| TypeError::new(op, m);
    let target = || -> Result<&[usize], TypeError> {
        target_shape.ok_or_else(|| TypeError::new(op, "needs the result shape"))
    };
    // Sizes first: every product of dimensions below is then far from overflowing.
    for i in 0..operands.len() {
        checked_numel(sh(i)).map_err(|m| e(format!("operand {}: {m}", i + 1)))?;
    }
    if let (Op::Reshape | Op::Broadcast, Some(t)) = (op, target_shape) {
        checked_numel(t).map_err(|m| e(format!("result {m}")))?;
    }
    let shape = match op {
        Op::Input { .. } => {
            return Err(e(
                "the type of an input is declared, not inferred".to_string()
            ))
        }
        Op::Const { value } => constant_of(g, op, *value)?.shape.clone(),
        Op::Output { .. } => sh(0).to_vec(),
        Op::Where => {
            let ab = broadcast_shapes(sh(1), sh(2));
            ab.and_then(|ab| broadcast_shapes(sh(0), &ab))
                .ok_or_else(|| {
                    e(format!(
                        "operand shapes {:?}, {:?} and {:?} do not broadcast",
                        sh(0),
                        sh(1),
                        sh(2)
                    ))
                })?
        }
        Op::Add | Op::Sub | Op::Mul | Op::Cmp(_) | Op::Min | Op::Max | Op::Binary(_) => {
            broadcast_shapes(sh(0), sh(1)).ok_or_else(|| {
                e(format!(
                    "operand shapes {:?} and {:?} do not broadcast",
                    sh(0),
                    sh(1)
                ))
            })?
        }
        Op::Neg | Op::Relu | Op::Abs | Op::Unary(_) => sh(0).to_vec(),
        Op::MatMul => matmul_dims(sh(0), sh(1)).map_err(|x| e(x.0))?.3,
        Op::Conv2d(at) => {
            let attrs = at.strides.iter().chain(&at.pads).chain(&at.dilations);
            if attrs.chain([&at.group]).any(|&a| a > MAX_ELEMENTS) {
                return Err(e(format!(
                    "strides {:?}, pads {:?}, dilations {:?} and group {} must each be at most {MAX_ELEMENTS}",
                    at.strides, at.pads, at.dilations, at.group
                )));
            }
            let out = conv2d_shape(sh(0), sh(1), at).map_err(|x| e(x.0))?;
            if operands.len() == 3 && sh(2) != [sh(1)[0]] {
                return Err(e(format!(
                    "bias shape {:?}, expected [{}] (one per output channel)",
                    sh(2),
                    sh(1)[0]
                )));
            }
            out
        }
        Op::Sum { axes, keepdims } => {
            let r = sh(0).len();
            if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= r) {
                return Err(e(format!(
                    "axes {axes:?} must be ascending, distinct and below the operand rank {r} (shape {:?})",
                    sh(0)
                )));
            }
            let reduced = |a: usize| axes.is_empty() || axes.contains(&a);
            (0..r)
                .filter_map(|a| match (reduced(a), keepdims) {
                    (false, _) => Some(sh(0)[a]),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect()
        }
        Op::Reshape => {
            let t = target()?;
            if numel(t) != numel(sh(0)) {
                return Err(e(format!(
                    "cannot reshape {:?} ({} elements) to {:?} ({} elements)",
                    sh(0),
                    numel(sh(0)),
                    t,
                    numel(t)
                )));
            }
            t.to_vec()
        }
        Op::Broadcast => {
            let t = target()?;
            if broadcast_shapes(sh(0), t).as_deref() != Some(t) {
                return Err(e(format!("cannot broadcast {:?} to {:?}", sh(0), t)));
            }
            t.to_vec()
        }
        Op::Transpose { perm } => {
            let r = sh(0).len();
            let mut seen = vec![false; r];
            if perm.len() != r
                || perm
                    .iter()
                    .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
            {
                return Err(e(format!(
                    "perm {perm:?} is not a permutation of 0..{r} (operand shape {:?})",
                    sh(0)
                )));
            }
            perm.iter().map(|&p| sh(0)[p]).collect()
        }
        Op::Concat { axis } => {
            let first = sh(0);
            let r = first.len();
            if *axis >= r {
                return Err(e(format!(
                    "axis {axis} is out of range for operand shape {first:?}"
                )));
            }
            let mut out = first.to_vec();
            for i in 1..operands.len() {
                let s = sh(i);
                if s.len() != r || (0..r).any(|a| a != *axis && s[a] != first[a]) {
                    return Err(e(format!(
                        "operand shapes {first:?} and {s:?} differ off axis {axis}"
                    )));
                }
                out[*axis] = out[*axis].saturating_add(s[*axis]);
            }
            out
        }
        Op::Slice {
            starts,
            stops,
            steps,
        } => {
            let s = sh(0);
            let r = s.len();
            if starts.len() != r || stops.len() != r || steps.len() != r {
                return Err(e(format!(
                    "needs {r} starts, stops and steps for operand shape {s:?}, got {}, {} and {}",
                    starts.len(),
                    stops.len(),
                    steps.len()
                )));
            }
            let mut out = Vec::with_capacity(r);
            for a in 0..r {
                if steps[a] == 0 || starts[a] >= stops[a] || stops[a] > s[a] {
                    return Err(e(format!(
                        "axis {a}: {}:{}:{} is empty or out of bounds for size {} (need start < stop <= size, step >= 1)",
                        starts[a], stops[a], steps[a], s[a]
                    )));
                }
                out.push((stops[a] - starts[a]).div_ceil(steps[a]));
            }
            out
        }
        Op::Tlu { table } => {
            let bits = ty(0).int;
            check_tables(
                g,
                op,
                (&[*table], &[], true),
                bits.domain_size(),
                0,
                &format!("an operand of type {bits}"),
            )?;
            sh(0).to_vec()
        }
        Op::TluMulti { tables, map } => {
            let bits = ty(0).int;
            check_tables(
                g,
                op,
                (tables, map, false),
                bits.domain_size(),
                numel(sh(0)),
                &format!("an operand of type {bits}"),
            )?;
            sh(0).to_vec()
        }
        Op::Round {
            lsbs,
            approx,
            rescale,
        } => {
            let bits = ty(0).int.bits;
            if *lsbs == 0 || *lsbs >= bits {
                return Err(e(format!(
                    "lsbs={lsbs} must be at least 1 and below the operand width {}",
                    ty(0).int
                )));
            }
            if *rescale && !*approx {
                return Err(e(
                    "rescale=true needs approx=true (an exact rescaled round is not supported)"
                        .to_string(),
                ));
            }
            sh(0).to_vec()
        }
        Op::Clip { lo, hi } => {
            if lo > hi {
                return Err(e(format!("lo={lo} is above hi={hi}")));
            }
            sh(0).to_vec()
        }
        Op::KeySwitch
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. } => {
            if !ty(0).is_encrypted() {
                return Err(e(format!("operand {} is not encrypted", ty(0))));
            }
            if let Op::KeySwitchShr { shift } = op {
                if *shift == 0 || *shift >= ty(0).int.bits {
                    return Err(e(format!(
                        "shift={shift} must be at least 1 and below the operand width {}",
                        ty(0).int
                    )));
                }
            }
            if let Op::KeySwitchRound { shift } = op {
                if *shift == 0 || *shift > ty(0).int.bits || ty(0).int.signed {
                    return Err(e(format!(
                        "shift={shift} must be at least 1 and at most the width of an unsigned operand, got {}",
                        ty(0).int
                    )));
                }
            }
            sh(0).to_vec()
        }
        Op::Pbs { tables, map } | Op::WopPbs { tables, map, .. } => {
            let t = ty(0);
            let enc = match (t.is_encrypted(), t.encoding) {
                (true, Some(enc)) => enc,
                _ => return Err(e(format!("operand {t} must be encrypted with an encoding"))),
            };
            if !(1..=62).contains(&enc.width) {
                return Err(e(format!(
                    "operand encoding width {} is outside 1..=62",
                    enc.width
                )));
            }
            check_tables(
                g,
                op,
                (tables, map, true),
                1u128 << enc.width,
                numel(sh(0)),
                &format!("an operand of width {}", enc.width),
            )?;
            sh(0).to_vec()
        }
    };
    checked_numel(&shape).map_err(|m| e(format!("result {m}")))?;
    Ok(shape)
}

/// Range of a sum of products `sum_i w_i * x_i` with `x_i` in `x`, over the given weights.
fn dot_range(weights: impl Iterator<Item = i64>, x: Interval) -> Option<Interval> {
    let mut acc = Interval::point(0);
    for w in weights {
        acc = acc.checked_add(Interval::point(w as i128).checked_mul(x)?)?;
    }
    Some(acc)
}

/// What the interval transfer function ([`transfer`]) knows about one operand of an op.
///
/// Type inference fills it from a [`Graph`] ([`infer_range`]); the compiler's analyses fill it
/// from their own facts (calibrated ranges, e-graph classes), so every client of op semantics
/// on intervals goes through the one [`transfer`].
#[derive(Clone, Copy, Debug)]
pub struct OperandFacts<'a> {
    /// Every value the operand's elements can take.
    pub range: Interval,
    /// Its declared element type (table lookups index tables from `int.min()`).
    pub int: IntType,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its values when it is a clear constant; used only when its shape is `shape` and it has
    /// `numel(shape)` values (else the transfer falls back to `range`).
    pub constant: Option<&'a Constant>,
}

impl OperandFacts<'_> {
    /// The constant, when it is consistent with the operand's shape.
    fn weights(&self) -> Option<&Constant> {
        self.constant
            .filter(|c| c.shape == self.shape && c.values.len() == numel(&c.shape))
    }
}

/// The interval transfer function: the interval of the result of `op` when its operands are
/// described by `operands` (one [`OperandFacts`] each). It is the only statement of op
/// semantics on intervals; [`infer_range`] (and through it type inference), the compiler's
/// bit-width and deviation passes and its e-graph analysis all call it.
///
/// Constant weights of `matmul` and `conv2d` give per-output bounds (the sum over the weights
/// of `w * [lo, hi]`, plus the bias); table lookups (`tlu`, `tlu.multi`, `pbs`) read `tables`
/// and only consider the entries the operand range can reach (all entries when it reaches
/// none). `input` and `const` have no operands: their ranges come from their declared types
/// and values, so asking for them is an error.
///
/// Fails on `i128` overflow (reported as a too-wide result), on an operand count the op does
/// not take, on a table id missing from `tables` and on operand shapes the op does not accept
/// (a caller that has run [`infer_shape`] never sees the last two).
pub fn transfer(
    op: &Op,
    operands: &[OperandFacts<'_>],
    tables: &[Table],
) -> Result<Interval, TypeError> {
    check_arity(op, operands.len())?;
    let wide = || {
        TypeError::new(
            op,
            "result range exceeds 128 bits; narrow the operands first",
        )
    };
    let r = |i: usize| operands[i].range;
    let shape = |i: usize| operands[i].shape;
    let out = match op {
        Op::Input { .. } => {
            return Err(TypeError::new(
                op,
                "the range of an input comes from its declared type, not from operands",
            ))
        }
        Op::Const { .. } => {
            return Err(TypeError::new(
                op,
                "the range of a constant comes from its values, not from operands",
            ))
        }
        Op::Output { .. }
        | Op::Reshape
        | Op::Broadcast
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::KeySwitch => r(0),
        // the operand's low bits are zero: an exact shift of its range
        Op::KeySwitchShr { shift } => Interval::new(r(0).lo >> *shift, r(0).hi >> *shift),
        Op::KeySwitchBit { .. } => Interval::new(0, 1),
        // approximate: floor or ceil of `a / 2^K`
        Op::KeySwitchRound { shift } => {
            if *shift >= 127 {
                return Err(wide());
            }
            let up = (1i128 << *shift) - 1;
            Interval::new(
                r(0).lo >> *shift,
                r(0).hi.checked_add(up).ok_or_else(wide)? >> *shift,
            )
        }
        Op::Concat { .. } => operands[1..].iter().fold(r(0), |a, b| a.union(b.range)),
        Op::Add => r(0).checked_add(r(1)).ok_or_else(wide)?,
        Op::Sub => r(0).checked_sub(r(1)).ok_or_else(wide)?,
        Op::Neg => r(0).checked_neg().ok_or_else(wide)?,
        Op::Mul => r(0).checked_mul(r(1)).ok_or_else(wide)?,
        Op::MatMul => {
            let (m, k, n, _) =
                matmul_dims(shape(0), shape(1)).map_err(|x| TypeError::new(op, x.0))?;
            let res = if let Some(w) = operands[1].weights() {
                // Column j of w: w[kk * n + j].
                (0..n).try_fold(None::<Interval>, |acc, j| {
                    let c = dot_range((0..k).map(|kk| w.values[kk * n + j]), r(0))?;
                    Some(Some(acc.map_or(c, |a| a.union(c))))
                })
            } else if let Some(w) = operands[0].weights() {
                // Row i of w: w[i * k + kk].
                (0..m).try_fold(None::<Interval>, |acc, i| {
                    let c = dot_range((0..k).map(|kk| w.values[i * k + kk]), r(1))?;
                    Some(Some(acc.map_or(c, |a| a.union(c))))
                })
            } else {
                r(0).checked_mul(r(1))
                    .and_then(|p| p.checked_repeat(k))
                    .map(Some)
            };
            // an empty weight matrix sums nothing
            res.ok_or_else(wide)?.unwrap_or(Interval::point(0))
        }
        Op::Conv2d(at) => {
            let (o, per_out) = match shape(1) {
                [o, c, kh, kw] => (*o, c * kh * kw),
                s => {
                    return Err(TypeError::new(
                        op,
                        format!("weights of shape {s:?}, expected [O, C, KH, KW]"),
                    ))
                }
            };
            // Padded positions read zeros.
            let x = if at.pads.iter().any(|&p| p > 0) {
                r(0).union(Interval::point(0))
            } else {
                r(0)
            };
            let bias = operands.get(2);
            let bias_of = |oc: usize| -> Interval {
                match bias {
                    Some(b) => match b.weights() {
                        Some(c) if oc < c.values.len() => Interval::point(c.values[oc] as i128),
                        _ => b.range,
                    },
                    None => Interval::point(0),
                }
            };
            let res = match operands[1].weights() {
                Some(w) if per_out > 0 => (0..o).try_fold(None::<Interval>, |acc, oc| {
                    let c = dot_range(
                        w.values[oc * per_out..(oc + 1) * per_out].iter().copied(),
                        x,
                    )?
                    .checked_add(bias_of(oc))?;
                    Some(Some(acc.map_or(c, |a| a.union(c))))
                }),
                // every output channel: any bias value (the whole bias range)
                _ => x
                    .checked_mul(r(1))
                    .and_then(|p| p.checked_repeat(per_out))
                    .and_then(|s| s.checked_add(bias.map_or(Interval::point(0), |b| b.range)))
                    .map(Some),
            };
            res.ok_or_else(wide)?.unwrap_or(Interval::point(0))
        }
        Op::Sum { axes, .. } => {
            let s = shape(0);
            let count: usize = if axes.is_empty() {
                numel(s)
            } else {
                axes.iter().filter_map(|&a| s.get(a)).product()
            };
            r(0).checked_repeat(count.max(1)).ok_or_else(wide)?
        }
        Op::Tlu { table } => reachable_entries(op, tables, &[*table], r(0), operands[0].int.min())?,
        Op::TluMulti { tables: ts, .. } => {
            reachable_entries(op, tables, ts, r(0), operands[0].int.min())?
        }
        Op::Pbs { tables: ts, .. } | Op::WopPbs { tables: ts, .. } => {
            reachable_entries(op, tables, ts, r(0), 0)?
        }
        Op::Cmp(_) => Interval { lo: 0, hi: 1 },
        Op::Binary(b) => binary_range(*b, r(0), r(1)).ok_or_else(wide)?,
        Op::Unary(u) => unary_range(*u, r(0)),
        Op::Where => {
            let c = r(0);
            if c.lo == 0 && c.hi == 0 {
                r(2)
            } else if !c.contains(0) {
                r(1)
            } else {
                r(1).union(r(2))
            }
        }
        Op::Min => Interval {
            lo: r(0).lo.min(r(1).lo),
            hi: r(0).hi.min(r(1).hi),
        },
        Op::Max => Interval {
            lo: r(0).lo.max(r(1).lo),
            hi: r(0).hi.max(r(1).hi),
        },
        Op::Relu => Interval {
            lo: r(0).lo.max(0),
            hi: r(0).hi.max(0),
        },
        Op::Abs => {
            let a = r(0);
            if a.lo >= 0 {
                a
            } else if a.hi <= 0 {
                a.checked_neg().ok_or_else(wide)?
            } else {
                Interval {
                    lo: 0,
                    hi: a.hi.max(a.lo.checked_neg().ok_or_else(wide)?),
                }
            }
        }
        Op::Round {
            lsbs,
            approx: false,
            ..
        } => {
            let a = r(0);
            // Monotone, so the image of the endpoints bounds the image.
            Interval {
                lo: round_value(a.lo, *lsbs).ok_or_else(wide)?,
                hi: round_value(a.hi, *lsbs).ok_or_else(wide)?,
            }
        }
        // floor or ceil of `a / 2^k` (times `2^k` unless rescaled)
        Op::Round {
            lsbs,
            approx: true,
            rescale,
        } => {
            let (lo, hi) = round_approx_range(r(0).lo, r(0).hi, *lsbs).ok_or_else(wide)?;
            if *rescale {
                Interval {
                    lo: lo >> *lsbs,
                    hi: hi >> *lsbs,
                }
            } else {
                Interval { lo, hi }
            }
        }
        Op::Clip { lo, hi } => {
            let (l, h) = (*lo as i128, *hi as i128);
            let a = r(0);
            Interval {
                lo: a.lo.clamp(l, h.max(l)),
                hi: a.hi.clamp(l, h.max(l)),
            }
        }
    };
    Ok(out)
}

/// The interval of the result of `op` when its operands (nodes of `g`) take values in `ranges`
/// (one per operand, e.g. from [`value_range`] or from calibration): [`transfer`] with the
/// operands' types, shapes and constant values read from `g`, and the range of a `const` node
/// from its values.
///
/// Expects an op that [`infer_shape`] accepts (it reads attributes and operand shapes without
/// re-validating them); reports `i128` overflow as a too-wide result.
///
/// # Panics
/// If an operand is not a live node of `g`.
pub fn infer_range(
    g: &Graph,
    op: &Op,
    operands: &[ValueId],
    ranges: &[Interval],
) -> Result<Interval, TypeError> {
    check_arity(op, operands.len())?;
    if ranges.len() != operands.len() {
        return Err(TypeError::new(
            op,
            format!(
                "{} operand ranges given for {} operands",
                ranges.len(),
                operands.len()
            ),
        ));
    }
    if let Op::Const { value } = op {
        let c = constant_of(g, op, *value)?;
        return Interval::of_values(c.values.iter().map(|&v| v as i128))
            .ok_or_else(|| TypeError::new(op, format!("constant #{} is empty", value.0)));
    }
    let facts: Vec<OperandFacts<'_>> = operands
        .iter()
        .zip(ranges)
        .map(|(&o, &range)| {
            let ty = g.ty(o);
            OperandFacts {
                range,
                int: ty.int,
                shape: &ty.shape,
                constant: match g.op(o) {
                    Op::Const { value } => g.constant(*value),
                    _ => None,
                },
            }
        })
        .collect();
    transfer(op, &facts, &g.tables)
}

/// The interval of `op(a)` for `a` in `a` (exact: every [`UnOp`] is monotone or has a
/// two-valued image).
pub fn unary_range(op: UnOp, a: Interval) -> Interval {
    match op {
        UnOp::Sign => Interval::new(a.lo.signum(), a.hi.signum()),
        UnOp::Not => Interval::new((a.lo == 0 && a.hi == 0) as i128, a.contains(0) as i128),
        UnOp::BitNot => Interval::new(!a.hi, !a.lo),
    }
}

/// Operand pairs up to which [`binary_range`] enumerates instead of bounding.
const EXACT_PAIRS: i128 = 1 << 12;

/// The number of bits of `v >= 0` (`0` for `0`).
fn bit_len(v: i128) -> u32 {
    128 - v.leading_zeros()
}

/// The interval of `a op b` for `a`, `b` in the given intervals: exact (by enumeration, pairs
/// where the op is undefined skipped) when there are at most `2^12` pairs, else a sound
/// bound; `None` on `i128` overflow.
pub fn binary_range(op: BinOp, a: Interval, b: Interval) -> Option<Interval> {
    if op.is_logical() {
        return Some(Interval::new(0, 1));
    }
    let size = |i: Interval| i.hi.checked_sub(i.lo).and_then(|d| d.checked_add(1));
    if let Some(pairs) = size(a).zip(size(b)).and_then(|(x, y)| x.checked_mul(y)) {
        if pairs <= EXACT_PAIRS {
            let vals = (a.lo..=a.hi)
                .flat_map(|x| (b.lo..=b.hi).map(move |y| op.eval(x, y)))
                .filter_map(Result::ok);
            return Some(Interval::of_values(vals).unwrap_or(Interval::point(0)));
        }
    }
    let mag = |i: Interval| {
        i.lo.unsigned_abs()
            .max(i.hi.unsigned_abs())
            .min(i128::MAX as u128) as i128
    };
    Some(match op {
        BinOp::FloorDiv => {
            if a.lo >= 0 && b.lo >= 1 {
                Interval::new(a.lo / b.hi, a.hi / b.lo)
            } else {
                // |a // b| <= |a| for b != 0, and -1 // 2 = -1.
                let m = mag(a).max(1);
                Interval::new(-m, m)
            }
        }
        BinOp::Mod => {
            let m = mag(b).max(1) - 1;
            if b.lo >= 1 {
                Interval::new(0, if a.lo >= 0 { a.hi.min(m) } else { m })
            } else if b.hi <= -1 {
                Interval::new(-m, 0)
            } else {
                Interval::new(-m, m)
            }
        }
        BinOp::Pow => {
            let e = u32::try_from(b.hi.max(0)).ok()?;
            let top = mag(a).checked_pow(e)?.max(1);
            if a.lo >= 0 {
                Interval::new(0, top)
            } else {
                Interval::new(-top, top)
            }
        }
        BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
            if a.lo >= 0 && b.lo >= 0 {
                if op == BinOp::BitAnd {
                    Interval::new(0, a.hi.min(b.hi))
                } else {
                    Interval::new(0, (1i128 << bit_len(a.hi.max(b.hi))) - 1)
                }
            } else {
                // Two's complement: the result needs no more bits than the wider operand.
                let w = |i: Interval| bit_len(i.hi.max(0)).max(bit_len(!i.lo.min(0))) + 1;
                let bits = w(a).max(w(b)).min(127);
                Interval::new(-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            }
        }
        BinOp::Shl | BinOp::Shr => {
            let (s0, s1) = (b.lo.max(0), b.hi.max(0));
            let ends = [a.lo, a.hi]
                .into_iter()
                .flat_map(|x| [s0, s1].map(move |s| op.eval(x, s)))
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Interval::of_values(ends)?
        }
        BinOp::And | BinOp::Or | BinOp::Xor => Interval::new(0, 1),
    })
}

/// `round(a, k)`: `((a + 2^(k-1)) >> k) << k` (arithmetic shift), identity for `k = 0`;
/// `None` on `i128` overflow.
pub fn round_value(a: i128, lsbs: u8) -> Option<i128> {
    if lsbs == 0 {
        return Some(a);
    }
    if lsbs >= 126 {
        return None;
    }
    let half = 1i128 << (lsbs - 1);
    let q = a.checked_add(half)? >> lsbs;
    q.checked_mul(1i128 << lsbs)
}

/// The values approximate `round(a) lsbs=k` can take for `a` in `lo..=hi`:
/// `floor(lo / 2^k) * 2^k ..= ceil(hi / 2^k) * 2^k` (each operand value rounds to one of its two
/// neighbouring multiples). `None` on overflow.
pub fn round_approx_range(lo: i128, hi: i128, lsbs: u8) -> Option<(i128, i128)> {
    if lsbs >= 126 {
        return None;
    }
    let step = 1i128 << lsbs;
    let down = lo.div_euclid(step).checked_mul(step)?;
    let up = hi
        .checked_add(step - 1)?
        .div_euclid(step)
        .checked_mul(step)?;
    Some((down, up))
}

/// Range of the entries of `tables` that inputs in `r` can reach; entry `i` is the image of
/// input `offset + i`. Falls back to all entries if `r` reaches none.
fn reachable_entries(
    op: &Op,
    pool: &[Table],
    tables: &[TableId],
    r: Interval,
    offset: i128,
) -> Result<Interval, TypeError> {
    let mut all: Option<Interval> = None;
    let mut reach: Option<Interval> = None;
    for &t in tables {
        let e = pool
            .get(t.0 as usize)
            .map(|t| t.entries.as_slice())
            .ok_or_else(|| {
                TypeError::new(
                    op,
                    format!(
                        "table #{} does not exist (the pool has {})",
                        t.0,
                        pool.len()
                    ),
                )
            })?;
        let len = e.len() as i128;
        let lo = r.lo.saturating_sub(offset).clamp(0, len);
        let hi = r.hi.saturating_sub(offset).clamp(-1, len - 1);
        let part = |s: &[i64]| Interval::of_values(s.iter().map(|&v| v as i128));
        if let Some(a) = part(e) {
            all = Some(all.map_or(a, |x| x.union(a)));
        }
        if lo <= hi {
            if let Some(a) = part(&e[lo as usize..=hi as usize]) {
                reach = Some(reach.map_or(a, |x| x.union(a)));
            }
        }
    }
    reach
        .or(all)
        .ok_or_else(|| TypeError::new(op, "tables are empty"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{CmpOp, Conv2dAttrs, Table};
    use crate::types::{Encoding, KeyId};

    fn u(b: u8) -> IntType {
        IntType::unsigned(b)
    }
    fn i(b: u8) -> IntType {
        IntType::signed(b)
    }

    fn input(g: &mut Graph, t: IntType, shape: &[usize]) -> ValueId {
        let n = g.len();
        g.add_node(
            Op::Input {
                name: format!("x{n}"),
            },
            TensorType::encrypted(t, shape.to_vec()),
            &[],
        )
    }

    fn constant(g: &mut Graph, shape: &[usize], values: &[i64]) -> ValueId {
        let c = g.add_const(Constant {
            shape: shape.to_vec(),
            values: values.to_vec(),
        });
        let int = IntType::fitting(
            *values.iter().min().unwrap() as i128,
            *values.iter().max().unwrap() as i128,
        )
        .unwrap();
        g.add_node(
            Op::Const { value: c },
            TensorType::clear(int, shape.to_vec()),
            &[],
        )
    }

    /// Infers a binary/unary op on fresh encrypted inputs of the given types and shapes.
    fn check(op: Op, args: &[(IntType, &[usize])], expect: &str) {
        let mut g = Graph::new();
        let ops: Vec<ValueId> = args.iter().map(|(t, s)| input(&mut g, *t, s)).collect();
        let got = match infer(&g, &op, &ops, None) {
            Ok(t) => t.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "{op:?} on {args:?}");
    }

    #[test]
    fn elementwise_types() {
        check(Op::Add, &[(u(6), &[4]), (u(6), &[4])], "enc<u7>[4]");
        check(Op::Mul, &[(u(6), &[4]), (u(6), &[])], "enc<u12>[4]");
        check(Op::Neg, &[(u(3), &[2])], "enc<i4>[2]");
        check(Op::Sub, &[(u(4), &[2, 1]), (u(4), &[3])], "enc<i5>[2,3]");
        check(Op::Mul, &[(i(3), &[]), (i(3), &[])], "enc<i6>"); // [-12, 16]
        check(Op::Mul, &[(i(3), &[]), (u(2), &[])], "enc<i5>"); // [-12, 9]
        check(
            Op::Cmp(CmpOp::Lt),
            &[(i(8), &[3]), (u(8), &[3])],
            "enc<u1>[3]",
        );
        check(Op::Min, &[(i(4), &[]), (u(6), &[])], "enc<i4>"); // [-8, 7]
        check(Op::Max, &[(i(4), &[]), (u(6), &[])], "enc<u6>"); // [0, 63]
        check(Op::Relu, &[(i(5), &[])], "enc<u4>");
        check(Op::Abs, &[(i(5), &[])], "enc<u5>"); // |-16| = 16
        check(Op::Abs, &[(u(5), &[])], "enc<u5>");
        let exact = Op::Round {
            lsbs: 2,
            approx: false,
            rescale: false,
        };
        let approx = Op::Round {
            lsbs: 2,
            approx: true,
            rescale: false,
        };
        let quotient = Op::Round {
            lsbs: 2,
            approx: true,
            rescale: true,
        };
        check(quotient, &[(u(5), &[])], "enc<u4>"); // 31 -> 7 or 8
        check(exact.clone(), &[(u(4), &[])], "enc<u5>"); // 15 -> 16
        check(exact, &[(i(4), &[])], "enc<i5>"); // [-8, 8]: 7 -> 8
        check(approx.clone(), &[(u(4), &[])], "enc<u5>"); // 13 -> 12 or 16
        check(approx, &[(u(3), &[])], "enc<u4>"); // 5 -> 4 or 8
        check(
            Op::Clip { lo: -3, hi: 5 },
            &[(u(4), &[])],
            "enc<u3>", // [0, 5]
        );
        check(Op::Clip { lo: -3, hi: 5 }, &[(i(8), &[])], "enc<i4>");
        check(
            Op::Add,
            &[(u(4), &[2]), (u(4), &[3])],
            "error: add: operand shapes [2] and [3] do not broadcast",
        );
        check(
            Op::Mul,
            &[(u(64), &[]), (u(64), &[])],
            "error: mul: result range exceeds 128 bits; narrow the operands first",
        );
        check(
            Op::Mul,
            &[(u(40), &[]), (u(40), &[])],
            "error: mul: result range [0, 1208925819612430151450625] needs more than 64 bits; narrow the operands first",
        );
        check(
            Op::Add,
            &[(u(4), &[])],
            "error: add: takes 2 operand(s), got 1",
        );
    }

    fn facts(lo: i128, hi: i128) -> OperandFacts<'static> {
        OperandFacts {
            range: Interval::new(lo, hi),
            int: IntType::signed(16),
            shape: &[],
            constant: None,
        }
    }

    #[test]
    fn transfer_on_intervals() {
        let iv = Interval::new;
        let (a, b) = (facts(-2, 3), facts(1, 5));
        let t = |op: Op, xs: &[OperandFacts<'_>]| transfer(&op, xs, &[]).unwrap();
        assert_eq!(t(Op::Add, &[a, b]), iv(-1, 8));
        assert_eq!(t(Op::Sub, &[a, b]), iv(-7, 2));
        assert_eq!(t(Op::Mul, &[a, b]), iv(-10, 15));
        assert_eq!(t(Op::Abs, &[a]), iv(0, 3));
        assert_eq!(t(Op::Relu, &[a]), iv(0, 3));
        assert_eq!(t(Op::Clip { lo: 0, hi: 2 }, &[a]), iv(0, 2));
        let x5 = facts(0, 31);
        assert_eq!(
            t(Op::Binary(BinOp::FloorDiv), &[x5, facts(2, 2)]),
            iv(0, 15)
        );
        assert_eq!(t(Op::Binary(BinOp::Mod), &[a, facts(17, 17)]), iv(0, 16));
        assert_eq!(t(Op::Unary(UnOp::Sign), &[a]), iv(-1, 1));
        assert_eq!(t(Op::Where, &[facts(0, 1), a, x5]), iv(-2, 31));
        assert_eq!(t(Op::Where, &[facts(1, 4), a, x5]), iv(-2, 3));
        // no operands, or the wrong number: an error, not a panic
        assert!(transfer(&Op::Input { name: "x".into() }, &[], &[]).is_err());
        assert!(transfer(&Op::Add, &[a], &[]).is_err());
        // a table id beyond the pool is an error
        let tlu = Op::Tlu { table: TableId(3) };
        assert!(transfer(&tlu, &[a], &[]).is_err());
        // overflow of i128 is a too-wide result
        let big = facts(0, i128::MAX);
        assert!(transfer(&Op::Add, &[big, big], &[]).is_err());
    }

    #[test]
    fn transfer_with_clear_weights_is_per_column() {
        let w = Constant {
            shape: vec![2, 2],
            values: vec![1, -1, 1, 2],
        };
        let x = OperandFacts {
            range: Interval::new(0, 3),
            int: IntType::unsigned(2),
            shape: &[1, 2],
            constant: None,
        };
        let wi = OperandFacts {
            range: Interval::new(-1, 2),
            int: IntType::signed(3),
            shape: &[2, 2],
            constant: Some(&w),
        };
        // column 0: x0 + x1 in 0..=6; column 1: -x0 + 2 x1 in -3..=6
        assert_eq!(
            transfer(&Op::MatMul, &[x, wi], &[]),
            Ok(Interval::new(-3, 6))
        );
        // a constant that does not match its operand's shape is not read
        let odd = OperandFacts {
            shape: &[2, 1],
            ..wi
        };
        let xs = OperandFacts {
            shape: &[1, 2],
            ..x
        };
        assert_eq!(
            transfer(&Op::MatMul, &[xs, odd], &[]),
            Ok(Interval::new(-6, 12))
        );
    }

    /// Conv2d with clear weights and a clear bias: each output channel adds its own bias; with
    /// encrypted weights, any bias value may be added (the whole bias range, not only the first
    /// and last channels').
    #[test]
    fn conv2d_bias_range() {
        let w = Constant {
            shape: vec![3, 1, 1, 1],
            values: vec![1, 1, 1],
        };
        let b = Constant {
            shape: vec![3],
            values: vec![5, -10, 3],
        };
        let attrs = Conv2dAttrs {
            strides: [1, 1],
            pads: [0, 0, 0, 0],
            dilations: [1, 1],
            group: 1,
        };
        let x = OperandFacts {
            range: Interval::new(0, 1),
            int: IntType::unsigned(1),
            shape: &[1, 1, 2, 2],
            constant: None,
        };
        let bias = OperandFacts {
            range: Interval::new(-10, 5),
            int: IntType::signed(5),
            shape: &[3],
            constant: Some(&b),
        };
        let clear = OperandFacts {
            range: Interval::new(1, 1),
            int: IntType::unsigned(1),
            shape: &[3, 1, 1, 1],
            constant: Some(&w),
        };
        let op = Op::Conv2d(attrs);
        assert_eq!(
            transfer(&op, &[x, clear, bias], &[]),
            Ok(Interval::new(-10, 6))
        );
        let enc = OperandFacts {
            constant: None,
            ..clear
        };
        assert_eq!(
            transfer(&op, &[x, enc, bias], &[]),
            Ok(Interval::new(-10, 6))
        );
    }

    #[test]
    fn round_values() {
        // Ties go upward; arithmetic shift floors negative values.
        assert_eq!(round_value(6, 2), Some(8));
        assert_eq!(round_value(5, 2), Some(4));
        assert_eq!(round_value(-6, 2), Some(-4));
        assert_eq!(round_value(-7, 2), Some(-8));
        assert_eq!(round_value(9, 0), Some(9));
    }

    #[test]
    fn approximate_rounding_ranges_hold_both_neighbours() {
        // 5..=13 by 4: 5 -> 4 or 8, 13 -> 12 or 16
        assert_eq!(round_approx_range(5, 13, 2), Some((4, 16)));
        // multiples stay put
        assert_eq!(round_approx_range(-8, 8, 2), Some((-8, 8)));
        assert_eq!(round_approx_range(-7, -1, 2), Some((-8, 0)));
        assert_eq!(round_approx_range(0, i128::MAX, 2), None);
    }

    #[test]
    fn reductions_and_linear_with_constant_weights() {
        let mut g = Graph::new();
        let x = input(&mut g, u(4), &[2, 3]);
        let s = infer(
            &g,
            &Op::Sum {
                axes: vec![1],
                keepdims: true,
            },
            &[x],
            None,
        )
        .unwrap();
        assert_eq!(s.to_string(), "enc<u6>[2,1]"); // 3 * 15 = 45
        let all = infer(
            &g,
            &Op::Sum {
                axes: vec![],
                keepdims: false,
            },
            &[x],
            None,
        )
        .unwrap();
        assert_eq!(all.to_string(), "enc<u7>"); // 6 * 15 = 90
                                                // x [2,3] (u4, 0..15) @ w [3,2]: columns (1,-2,3) and (0,0,1).
        let w = constant(&mut g, &[3, 2], &[1, 0, -2, 0, 3, 1]);
        let m = infer(&g, &Op::MatMul, &[x, w], None).unwrap();
        // column 0: [-30, 60]; column 1: [0, 15].
        assert_eq!(m.to_string(), "enc<i7>[2,2]");
        // w' [2] @ x [2,3]: rows of w' weigh rows of x.
        let w2 = constant(&mut g, &[2], &[2, 3]);
        let m2 = infer(&g, &Op::MatMul, &[w2, x], None).unwrap();
        assert_eq!(m2.to_string(), "enc<u7>[3]"); // 5 * 15 = 75
                                                  // Type-bound path: two inputs.
        let y = input(&mut g, i(3), &[3]);
        let m3 = infer(&g, &Op::MatMul, &[x, y], None).unwrap();
        assert_eq!(m3.to_string(), "enc<i9>[2]"); // 3 * [-60, 45]
        let bad = infer(&g, &Op::MatMul, &[x, x], None).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "matmul: matmul inner dimensions differ: [2, 3] x [2, 3] (3 != 2)"
        );
    }

    fn pad_attrs() -> Conv2dAttrs {
        Conv2dAttrs {
            pads: [1, 1, 1, 1],
            ..Default::default()
        }
    }

    #[test]
    fn conv_ranges() {
        let mut g = Graph::new();
        let x = input(&mut g, u(3), &[1, 1, 3, 3]);
        let w = constant(&mut g, &[2, 1, 2, 2], &[1, 1, 1, 1, -1, 2, 0, 0]);
        let b = constant(&mut g, &[2], &[5, -3]);
        let at = Conv2dAttrs::default();
        let t = infer(&g, &Op::Conv2d(at.clone()), &[x, w, b], None).unwrap();
        // oc0: [0, 28] + 5; oc1: [-7, 14] - 3 => [-10, 33].
        assert_eq!(t.to_string(), "enc<i7>[1,2,2,2]");
        let t = infer(&g, &Op::Conv2d(at), &[x, w], None).unwrap();
        assert_eq!(t.to_string(), "enc<i6>[1,2,2,2]"); // [-7, 28]
                                                       // A range without 0 gains 0 with padding (padded positions read zeros).
        let w1 = constant(&mut g, &[1, 1, 1, 1], &[2]);
        let pad = Conv2dAttrs {
            pads: [1, 1, 1, 1],
            ..Default::default()
        };
        let rg = [Interval::new(3, 5), Interval::point(2)];
        let padded = infer_range(&g, &Op::Conv2d(pad), &[x, w1], &rg).unwrap();
        assert_eq!(padded, Interval::new(0, 10));
        let plain = infer_range(&g, &Op::Conv2d(Conv2dAttrs::default()), &[x, w1], &rg);
        assert_eq!(plain.unwrap(), Interval::new(6, 10));
        let t = infer(&g, &Op::Conv2d(pad_attrs()), &[x, w1], None).unwrap();
        assert_eq!(t.to_string(), "enc<u4>[1,1,5,5]");
        let bad_bias = constant(&mut g, &[3], &[1, 2, 3]);
        let e = infer(
            &g,
            &Op::Conv2d(Conv2dAttrs::default()),
            &[x, w, bad_bias],
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: bias shape [3], expected [2] (one per output channel)"
        );
    }

    #[test]
    fn tables_and_movement() {
        let mut g = Graph::new();
        let x = input(&mut g, i(2), &[2, 3]);
        let t = g.add_table(Table {
            entries: vec![9, -1, 0, 200],
        });
        let r = infer(&g, &Op::Tlu { table: t }, &[x], None).unwrap();
        assert_eq!(r.to_string(), "enc<i9>[2,3]"); // [-1, 200]
                                                   // A narrower operand range reaches fewer entries (-2 -> entry 0, -1 -> entry 1).
        let narrow =
            infer_range(&g, &Op::Tlu { table: t }, &[x], &[Interval::new(-2, -1)]).unwrap();
        assert_eq!(narrow, Interval::new(-1, 9));
        let short = g.add_table(Table {
            entries: vec![1, 2],
        });
        let e = infer(&g, &Op::Tlu { table: short }, &[x], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tlu: table #1 has 2 entries, but an operand of type i2 needs exactly 4"
        );
        let e = infer(&g, &Op::Tlu { table: TableId(7) }, &[x], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tlu: table #7 does not exist (the pool has 2)"
        );
        let multi = Op::TluMulti {
            tables: vec![t],
            map: vec![0; 5],
        };
        assert_eq!(
            infer(&g, &multi, &[x], None).unwrap_err().to_string(),
            "tlu.multi: map has 5 entries, but the operand has 6 elements"
        );
        let tr = infer(&g, &Op::Transpose { perm: vec![1, 0] }, &[x], None).unwrap();
        assert_eq!(tr.to_string(), "enc<i2>[3,2]");
        let rs = infer(&g, &Op::Reshape, &[x], Some(&[6])).unwrap();
        assert_eq!(rs.to_string(), "enc<i2>[6]");
        assert_eq!(
            infer(&g, &Op::Reshape, &[x], Some(&[4]))
                .unwrap_err()
                .to_string(),
            "reshape: cannot reshape [2, 3] (6 elements) to [4] (4 elements)"
        );
        let bc = infer(&g, &Op::Broadcast, &[x], Some(&[4, 2, 3])).unwrap();
        assert_eq!(bc.to_string(), "enc<i2>[4,2,3]");
        let sl = Op::Slice {
            starts: vec![0, 1],
            stops: vec![2, 3],
            steps: vec![1, 2],
        };
        assert_eq!(
            infer(&g, &sl, &[x], None).unwrap().to_string(),
            "enc<i2>[2,1]"
        );
        let c = constant(&mut g, &[1, 3], &[100, 0, 1]);
        let cat = infer(&g, &Op::Concat { axis: 0 }, &[x, c], None).unwrap();
        assert_eq!(cat.to_string(), "enc<i8>[3,3]"); // [-2, 100]
    }

    #[test]
    fn tfhe_level_encodings() {
        let mut g = Graph::new();
        let mut t = TensorType::encrypted(u(3), vec![2]);
        t.encoding = Some(Encoding {
            key: KeyId::Small(0),
            width: 3,
        });
        let x = g.add_node(Op::Input { name: "x".into() }, t.clone(), &[]);
        let c = constant(&mut g, &[2], &[1, 2]);
        let s = infer(&g, &Op::Add, &[c, x], None).unwrap();
        assert_eq!(s.encoding, t.encoding);
        let tab = g.add_table(Table {
            entries: (0..8).map(|v| v - 4).collect(),
        });
        let p = infer(
            &g,
            &Op::Pbs {
                tables: vec![tab],
                map: vec![],
            },
            &[x],
            None,
        )
        .unwrap();
        assert_eq!(p.to_string(), "enc<i3>[2]");
    }
}
