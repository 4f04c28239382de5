//! Bit-width analysis: the range of every value, from a calibration inputset or by interval
//! propagation from declared input ranges; every value then gets the narrowest type holding its
//! range (tables are re-indexed for their operands' new types), and values too wide to
//! bootstrap are reported.

use super::{Diagnostic, Pass, PassContext, PassError, PassStats};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
pub use veil_ir::infer::ValueRanges;
use veil_ir::infer::{transfer, OperandFacts};
use veil_ir::{interp, Graph, IntType, Interval, Op, Table, Tensor, ValueId};

/// Options of the bit-width pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BitwidthConfig {
    /// Widest input (bits) a bootstrap may see (Concrete caps TLU inputs at 16 bits).
    pub max_pbs_bits: u32,
    /// Whether a value too wide for the bootstrap it feeds fails the pass (else: diagnostic).
    pub error_on_wide_pbs: bool,
    /// Whether input types are narrowed too (they are the program's interface).
    pub narrow_inputs: bool,
}

impl Default for BitwidthConfig {
    fn default() -> Self {
        BitwidthConfig {
            max_pbs_bits: 16,
            error_on_wide_pbs: true,
            narrow_inputs: true,
        }
    }
}

fn label(g: &Graph, numbers: &HashMap<ValueId, usize>, v: ValueId) -> String {
    match (g.op(v), numbers.get(&v)) {
        (Op::Output { name }, _) => format!("output \"{name}\""),
        (op, Some(n)) => format!("%{n} = {}", op.name()),
        (op, None) => format!("{v} = {}", op.name()),
    }
}

/// Why value ranges could not be computed ([`propagate_ranges`], [`calibrate`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RangeError {
    /// The graph is not acyclic.
    #[error("the graph has a cycle through {nodes} nodes")]
    Cycle {
        /// Nodes on the cycle.
        nodes: usize,
    },
    /// A declared input range with `lo > hi`.
    #[error("input \"{name}\": declared range {lo}..={hi} is empty; give lo <= hi")]
    EmptyInputRange {
        /// The input.
        name: String,
        /// Declared lower bound.
        lo: i64,
        /// Declared upper bound.
        hi: i64,
    },
    /// A `const` naming no pool entry.
    #[error("{value}: constant id out of the pool")]
    MissingConstant {
        /// The node, e.g. `%3 = const`.
        value: String,
    },
    /// A `tlu` naming no table of the pool.
    #[error("{value}: table id out of the pool")]
    MissingTable {
        /// The node, e.g. `%3 = tlu`.
        value: String,
    },
    /// A range no 64-bit integer type holds.
    #[error("{value}: range {range} needs more than 64 bits; reduce the input ranges or weights")]
    TooWide {
        /// The node.
        value: String,
        /// Its range.
        range: Interval,
    },
    /// Calibration without samples.
    #[error("the calibration inputset is empty; give at least one sample")]
    EmptyInputset,
    /// The graph cannot be interpreted (it does not verify).
    #[error("calibration: {0}")]
    Prepare(#[source] interp::InterpError),
    /// A calibration sample does not run (wrong shape, a value outside its type).
    #[error("calibration sample {index}: {source}")]
    Sample {
        /// The sample's index in the inputset.
        index: usize,
        /// Why it failed.
        #[source]
        source: interp::InterpError,
    },
}

/// Interval propagation: inputs range over `input_ranges[name]` (or their declared type),
/// constants over their values, every other value over the transfer function of its op,
/// intersected with its declared type (a result outside it is an overflow error, so runs that
/// produce outputs never see it; this keeps the tight types a rewrite gives values whose new
/// expression is loose under intervals, e.g. `max(a, b)` as `(a + b) - min(a, b)`).
pub fn propagate_ranges(
    g: &Graph,
    input_ranges: &HashMap<String, (i64, i64)>,
) -> Result<ValueRanges, RangeError> {
    let order = g
        .topo_order()
        .map_err(|c| RangeError::Cycle { nodes: c.len() })?;
    let numbers = g.value_numbers();
    let mut out = ValueRanges::default();
    for v in order {
        let node = g.node(v);
        let r = match &node.op {
            Op::Input { name } => match input_ranges.get(name) {
                Some(&(lo, hi)) if lo <= hi => Interval::new(lo as i128, hi as i128),
                Some(&(lo, hi)) => {
                    return Err(RangeError::EmptyInputRange {
                        name: name.clone(),
                        lo,
                        hi,
                    })
                }
                None => Interval::of_type(node.ty.int),
            },
            Op::Const { value } => {
                let c = g
                    .constant(*value)
                    .ok_or_else(|| RangeError::MissingConstant {
                        value: label(g, &numbers, v),
                    })?;
                Interval::of_values(c.values.iter().map(|&x| x as i128))
                    .unwrap_or(Interval::point(0))
            }
            op => {
                let operands = g.operands(v);
                let infos: Vec<OperandFacts> = operands
                    .iter()
                    .map(|&o| OperandFacts {
                        range: out.get(o).unwrap_or(Interval::of_type(g.ty(o).int)),
                        int: g.ty(o).int,
                        shape: &g.ty(o).shape,
                        constant: match g.op(o) {
                            Op::Const { value } => g.constant(*value),
                            _ => None,
                        },
                    })
                    .collect();
                // a value outside its declared type is an overflow error, so every run that
                // produces a result keeps it inside: intersect (when they overlap); without a
                // computed interval (a result too wide for `i128`; an op the verifier refuses)
                // the declared type alone bounds it
                let declared = Interval::of_type(node.ty.int);
                transfer(op, &infos, &g.tables)
                    .map_or(declared, |r| r.intersect(declared).unwrap_or(r))
            }
        };
        out.set(v, r);
    }
    Ok(out)
}

/// Calibration: runs every sample through the traced interpreter and records, per value, the
/// hull of the elements it took.
pub fn calibrate(g: &Graph, inputset: &[Vec<Tensor<i64>>]) -> Result<ValueRanges, RangeError> {
    if inputset.is_empty() {
        return Err(RangeError::EmptyInputset);
    }
    let mut out = ValueRanges::default();
    let prepared = interp::Prepared::new(g).map_err(RangeError::Prepare)?;
    for (i, sample) in inputset.iter().enumerate() {
        prepared
            .run_traced(sample, &mut |v, t| {
                // constants take the same values in every sample: range them once
                if i > 0 && matches!(g.op(v), Op::Const { .. }) {
                    return;
                }
                if let Some(r) = tensor_range(t) {
                    out.include(v, r);
                }
            })
            .map_err(|source| RangeError::Sample { index: i, source })?;
    }
    // outputs are not traced: they equal their operand
    for o in g.outputs() {
        if let Some(r) = g.operands(o).first().and_then(|x| out.get(*x)) {
            out.set(o, r);
        }
    }
    Ok(out)
}

/// The interval of every input of `g` in `ranges`, by input name (clamped to `i64`).
fn input_intervals(g: &Graph, ranges: &ValueRanges) -> HashMap<String, (i64, i64)> {
    let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    g.inputs()
        .into_iter()
        .filter_map(|v| match g.op(v) {
            Op::Input { name } => {
                let r = ranges.get(v)?;
                Some((name.clone(), (clamp(r.lo), clamp(r.hi))))
            }
            _ => None,
        })
        .collect()
}

/// Smallest and largest element of a tensor.
pub fn tensor_range(t: &Tensor<i128>) -> Option<Interval> {
    Some(Interval::new(*t.data.iter().min()?, *t.data.iter().max()?))
}

/// A graph table indexed for operand type `old` re-indexed for `new`: unreachable entries
/// (outside `old`) take the nearest reachable one, all clamped into `out`.
pub fn reindex_table(t: &Table, old: IntType, new: IntType, out: IntType) -> Table {
    let last = t.entries.len() as i128 - 1;
    Table {
        entries: (0..(1i128 << new.bits))
            .map(|i| {
                let idx = (new.min() + i - old.min()).clamp(0, last.max(0));
                let e = t.entries.get(idx as usize).copied().unwrap_or(0) as i128;
                e.clamp(out.min(), out.max()) as i64
            })
            .collect(),
    }
}

/// Gives every value the narrowest type holding its range (comparisons stay `u1`, outputs take
/// their operand's type, inputs only if `narrow_inputs`), re-indexing lookup tables. Returns
/// how many types changed.
pub fn narrow_types(
    g: &mut Graph,
    ranges: &ValueRanges,
    narrow_inputs: bool,
) -> Result<usize, RangeError> {
    let order = g
        .topo_order()
        .map_err(|c| RangeError::Cycle { nodes: c.len() })?;
    let numbers = g.value_numbers();
    // a rounded value keeps more bits than the round drops, whatever its range (a value
    // calibrated to one point narrows to a bit or two)
    let mut min_bits: HashMap<ValueId, u8> = HashMap::new();
    for &v in &order {
        if let Op::Round { lsbs, .. } = g.op(v) {
            let e = min_bits.entry(g.operands(v)[0]).or_insert(0);
            *e = (*e).max(lsbs.saturating_add(1));
        }
    }
    let mut new_int: HashMap<ValueId, IntType> = HashMap::new();
    for &v in &order {
        let old = g.ty(v).int;
        let t = match g.op(v) {
            Op::Cmp(_) => IntType::unsigned(1),
            Op::Output { .. } => {
                let o = g.operands(v)[0];
                new_int.get(&o).copied().unwrap_or(g.ty(o).int)
            }
            Op::Input { .. } if !narrow_inputs => old,
            _ => match ranges.get(v) {
                Some(r) => r.int_type().ok_or_else(|| RangeError::TooWide {
                    value: label(g, &numbers, v),
                    range: r,
                })?,
                None => old,
            },
        };
        let t = match min_bits.get(&v) {
            Some(&bits) if t.bits < bits => IntType { bits, ..t },
            _ => t,
        };
        new_int.insert(v, t);
    }
    let old_int: HashMap<ValueId, IntType> = order.iter().map(|v| (*v, g.ty(*v).int)).collect();
    let mut pool = TablePool::new(g);
    let mut changed = 0;
    for &v in &order {
        let operand_types: Vec<(IntType, IntType)> = g
            .operands(v)
            .iter()
            .map(|o| (old_int[o], new_int[o]))
            .collect();
        let out = new_int[&v];
        let retable = |g: &mut Graph,
                       pool: &mut TablePool,
                       t: veil_ir::TableId|
         -> Result<veil_ir::TableId, RangeError> {
            let (old, new) = operand_types[0];
            let tab = g.table(t).ok_or_else(|| RangeError::MissingTable {
                value: label(g, &numbers, v),
            })?;
            let re = reindex_table(tab, old, new, out);
            Ok(pool.add(g, re))
        };
        let op = g.op(v).clone();
        match op {
            Op::Tlu { table } => {
                let nt = retable(g, &mut pool, table)?;
                g.node_mut(v).op = Op::Tlu { table: nt };
            }
            Op::TluMulti { tables, map } => {
                let nts = tables
                    .iter()
                    .map(|t| retable(g, &mut pool, *t))
                    .collect::<Result<Vec<_>, _>>()?;
                g.node_mut(v).op = Op::TluMulti { tables: nts, map };
            }
            _ => {}
        }
        if g.ty(v).int != out {
            g.node_mut(v).ty.int = out;
            changed += 1;
        }
    }
    g.compact_pools();
    Ok(changed)
}

/// An index of a graph's table pool: [`Graph::add_table`] (the first equal table, else a new
/// one) without scanning the pool, so that re-indexing every lookup stays linear.
struct TablePool(HashMap<Table, veil_ir::TableId>);

impl TablePool {
    fn new(g: &Graph) -> Self {
        let mut m = HashMap::new();
        for (i, t) in g.tables.iter().enumerate() {
            m.entry(t.clone()).or_insert(veil_ir::TableId(i as u32));
        }
        TablePool(m)
    }

    fn add(&mut self, g: &mut Graph, t: Table) -> veil_ir::TableId {
        if let Some(&id) = self.0.get(&t) {
            return id;
        }
        let id = veil_ir::TableId(g.tables.len() as u32);
        g.tables.push(t.clone());
        self.0.insert(t, id);
        id
    }
}

/// A value too wide for the bootstrap it feeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidePbs {
    /// The value (the first operand of the bootstrapping op).
    pub value: ValueId,
    /// Its label, e.g. `%4 = add`.
    pub producer: String,
    /// The bootstrapping op's label.
    pub user: String,
    /// The range the bootstrap sees (a difference for comparisons, a sum for products).
    pub range: Interval,
    /// Bits of that range.
    pub bits: u32,
}

/// Values feeding a bootstrap whose input would exceed `max_bits`.
pub fn wide_pbs_inputs(g: &Graph, ranges: &ValueRanges, max_bits: u32) -> Vec<WidePbs> {
    let numbers = g.value_numbers();
    let order = g.topo_order().unwrap_or_else(|_| g.values());
    let mut out = Vec::new();
    for u in order {
        let operands = g.operands(u);
        let enc = operands.iter().filter(|o| g.ty(**o).is_encrypted()).count();
        let op = g.op(u);
        if !op.needs_pbs(enc) || operands.is_empty() {
            continue;
        }
        let r = |i: usize| {
            let o = operands[i];
            ranges.get(o).unwrap_or(Interval::of_type(g.ty(o).int))
        };
        let seen = match op {
            Op::Round { lsbs, approx, .. } => {
                let a = r(0);
                let up = if *approx { (1i128 << lsbs) - 1 } else { 0 };
                Interval::new(a.lo >> lsbs, (a.hi + up) >> lsbs)
            }
            Op::Cmp(_) | Op::Min | Op::Max if operands.len() == 2 => {
                let (a, b) = (r(0), r(1));
                Interval::new(a.lo - b.hi, a.hi - b.lo)
            }
            Op::Mul | Op::MatMul | Op::Conv2d(_) if operands.len() >= 2 => {
                let (a, b) = (r(0), r(1));
                Interval::new(
                    (a.lo + b.lo).min(a.lo - b.hi),
                    (a.hi + b.hi).max(a.hi - b.lo),
                )
            }
            // a lookup of the (first) operand
            Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Mul
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Relu
            | Op::Abs
            | Op::Clip { .. }
            | Op::Binary(_)
            | Op::Unary(_)
            | Op::Where
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => r(0),
            // never bootstrap (`needs_pbs` is false)
            Op::Input { .. }
            | Op::Const { .. }
            | Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. } => continue,
        };
        let bits = seen.bits();
        if bits > max_bits {
            out.push(WidePbs {
                value: operands[0],
                producer: label(g, &numbers, operands[0]),
                user: label(g, &numbers, u),
                range: seen,
                bits,
            });
        }
    }
    out
}

/// A value observed outside its calibrated range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RangeViolation {
    /// The value.
    pub value: ValueId,
    /// Its label, e.g. `%4 = add`.
    pub label: String,
    /// The calibrated range.
    pub range: Interval,
    /// Smallest and largest observed element.
    pub observed: Interval,
}

/// Overflow check of a simulation: every observed value range (value, smallest and largest
/// element) that leaves the calibrated range of that value (values without a calibrated range
/// are not checked).
pub fn check_ranges(
    g: &Graph,
    ranges: &ValueRanges,
    observed: impl IntoIterator<Item = (ValueId, Interval)>,
) -> Vec<RangeViolation> {
    let numbers = g.value_numbers();
    let mut out = Vec::new();
    for (v, obs) in observed {
        let Some(r) = ranges.get(v) else {
            continue;
        };
        if obs.lo < r.lo || obs.hi > r.hi {
            out.push(RangeViolation {
                value: v,
                label: if g.contains(v) {
                    label(g, &numbers, v)
                } else {
                    v.to_string()
                },
                range: r,
                observed: obs,
            });
        }
    }
    out.sort_by_key(|x| x.value);
    out
}

/// Runs `inputs` through the traced interpreter and returns the outputs and every value that
/// left its calibrated range (see [`check_ranges`]).
pub fn simulate_checked(
    g: &Graph,
    ranges: &ValueRanges,
    inputs: &[Tensor<i64>],
) -> Result<(Vec<Tensor<i64>>, Vec<RangeViolation>), interp::InterpError> {
    let mut seen: BTreeMap<ValueId, Interval> = BTreeMap::new();
    let outs = interp::run_traced(g, inputs, &mut |v, t| {
        if let Some(r) = tensor_range(t) {
            seen.insert(v, r);
        }
    })?;
    Ok((outs, check_ranges(g, ranges, seen)))
}

/// The `bitwidth` pass.
pub struct BitwidthPass;

impl Pass for BitwidthPass {
    fn name(&self) -> &'static str {
        "bitwidth"
    }

    fn doc(&self) -> &'static str {
        "Bit-width analysis: computes the range of every value, by calibration when \
         `cx.inputset` is set (every sample runs through the traced interpreter; min/max per \
         value; a later run, on a rewritten graph, propagates intervals from the inputs' \
         calibrated intervals instead, so that values the rewrite introduced hold every \
         sample of the calibrated domain) and otherwise by interval propagation from `cx.input_ranges` (inputs not listed \
         range over their declared type; every value's interval is intersected with its \
         declared type). Every value then gets the narrowest integer type and \
         signedness holding its range (lookup tables are re-indexed accordingly) and the ranges \
         are left in `cx.ranges`. A value whose range exceeds `cx.bitwidth.max_pbs_bits` and \
         feeds a bootstrapping op is an error naming both ops (a diagnostic when \
         `error_on_wide_pbs` is off)."
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassStats, PassError> {
        let fail = |e: RangeError| PassError::failed("bitwidth", e.to_string());
        // The first run calibrates the graph as given: those intervals are the program's
        // domain, enforced on every sample before encryption. A later run sees a rewritten
        // graph whose new values (e.g. `a - b` shared by comparisons) the domain check does
        // not see: calibrating them again would narrow them to what the inputset happened to
        // produce, and a sample inside the domain could overflow them. So later runs
        // propagate intervals from the calibrated input intervals instead, intersected with
        // the declared types (the rewrite types every value by its e-class interval, sound on
        // the domain). Calibration is exact; approximate rounds may move what the encrypted
        // program computes, so types come from calibrated ranges widened by that deviation
        // (the domain keeps the calibrated ones).
        let calibrating = cx.inputset.is_some() && cx.calibrated_inputs.is_none();
        let (exact, ranges) = match (&cx.inputset, &cx.calibrated_inputs) {
            (Some(_), Some(inputs)) => {
                let r = propagate_ranges(graph, inputs).map_err(fail)?;
                (r.clone(), r)
            }
            (Some(set), None) => {
                let exact = calibrate(graph, set).map_err(fail)?;
                cx.calibrated_inputs = Some(input_intervals(graph, &exact));
                let widened = super::deviation::widen_for_approx_rounds(graph, &exact);
                (exact, widened)
            }
            (None, _) => {
                let r = propagate_ranges(graph, &cx.input_ranges).map_err(fail)?;
                (r.clone(), r)
            }
        };
        let wide = wide_pbs_inputs(graph, &ranges, cx.bitwidth.max_pbs_bits);
        let messages: Vec<String> = wide
            .iter()
            .map(|w| {
                format!(
                    "{} has range [{}, {}] ({} bits) at the bootstrap of {}, over the {}-bit \
                     limit: reduce the input ranges or insert `round` before it",
                    w.producer, w.range.lo, w.range.hi, w.bits, w.user, cx.bitwidth.max_pbs_bits
                )
            })
            .collect();
        if cx.bitwidth.error_on_wide_pbs && !messages.is_empty() {
            return Err(PassError::failed("bitwidth", messages.join("; ")));
        }
        for m in &messages {
            cx.diagnostics.push(Diagnostic {
                pass: "bitwidth".into(),
                message: m.clone(),
            });
        }
        let changed = narrow_types(graph, &ranges, cx.bitwidth.narrow_inputs).map_err(fail)?;
        let max_bits = graph
            .values()
            .iter()
            .filter(|v| graph.ty(**v).is_encrypted())
            .map(|v| graph.ty(*v).int.bits as i64)
            .max()
            .unwrap_or(0);
        let mut s = PassStats::default();
        s.count("types_changed", changed as i64)
            .count("max_encrypted_bits", max_bits)
            .count("wide_pbs_inputs", wide.len() as i64)
            .count("calibrated", calibrating as i64);
        if cx.source_ranges.is_none() {
            cx.source_ranges = Some(exact);
        }
        cx.ranges = Some(ranges);
        Ok(s)
    }
}
