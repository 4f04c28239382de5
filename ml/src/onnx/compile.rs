//! The compilation driver: calibration, the server/client split, quantized emission.

use super::error::{OnnxError, OnnxResult};
use super::eval::run_graph;
use super::graph::{FNode, FOp, FTensor, FloatGraph};
use super::model::DEFAULT_MAX_LOOKUP_BITS;
use super::ops;
use super::qval::{Ctx, PlannedRound, QVal, Resolved, Val};
use super::qval::{MAX_ACC, MAX_ROUNDED_ACC};
use crate::model::{ClientSpec, CompiledModel, OutputDecoder, PostProcess};
use crate::quantize::{
    widened_lookup_widths, QuantOptions, Rounding, RoundingMethod, UniformQuantizer,
};
use crate::{Granularity, Matrix, NBits};
use std::collections::{HashMap, HashSet};
use veil_ir::builder::Builder;
use veil_ir::{Graph, Interval, Op, Tensor};

/// How the server part and the client part of a model divide.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Indices of the nodes computed on encrypted data, in order.
    pub server: Vec<usize>,
    /// Indices of the nodes computed by the client in the clear, in order.
    pub client: Vec<usize>,
    /// The one value that crosses from the server to the client.
    pub cut: String,
}

/// Splits the graph: client-side ops (and the data movement that follows them) run on the
/// client; the rest on the server. Exactly one value may cross.
pub fn split(g: &FloatGraph) -> OnnxResult<Split> {
    let mut on_client: HashSet<&str> = HashSet::new();
    let (mut server, mut client) = (Vec::new(), Vec::new());
    for (i, n) in g.nodes.iter().enumerate() {
        let reads_client = n
            .inputs
            .iter()
            .flatten()
            .find(|v| on_client.contains(v.as_str()));
        // Elementwise arithmetic between a client value and constants (e.g. LightGBM's
        // `probabilities * 1` after its classifier head) runs on the client too.
        let constant_arith = matches!(n.op, FOp::Binary(_))
            && n.inputs
                .iter()
                .flatten()
                .all(|v| on_client.contains(v.as_str()) || g.consts.contains_key(v.as_str()));
        let is_client = n.op.is_client_side()
            || ((n.op.is_movable() || constant_arith) && reads_client.is_some());
        if is_client {
            on_client.extend(n.outputs.iter().map(|s| s.as_str()));
            client.push(i);
        } else if let Some(v) = reads_client {
            return Err(n.unsupported(format!(
                "it reads `{v}`, which is computed by client-side post-processing (Softmax, ArgMax, Normalizer, classifier heads, integer Casts run in the clear after decryption): such ops must come last in the model"
            )));
        } else {
            server.push(i);
        }
    }
    let server_values: HashSet<&str> = server
        .iter()
        .flat_map(|&i| g.nodes[i].outputs.iter().map(|s| s.as_str()))
        .chain(std::iter::once(g.input.as_str()))
        .collect();
    let mut cut: Vec<&str> = client
        .iter()
        .flat_map(|&i| g.nodes[i].inputs.iter().flatten())
        .map(|s| s.as_str())
        .chain(g.outputs.iter().map(|s| s.as_str()))
        .filter(|v| server_values.contains(v))
        .collect();
    cut.sort_unstable();
    cut.dedup();
    match cut.as_slice() {
        [c] if *c == g.input => Err(OnnxError::Unsupported {
            op: "graph".into(),
            node: g.input.clone(),
            hint: "the model computes nothing on the input before its post-processing; there is nothing to run encrypted".into(),
        }),
        [c] => Ok(Split { server, client, cut: c.to_string() }),
        [] => Err(OnnxError::Malformed("no model output depends on the input".into())),
        many => Err(OnnxError::Unsupported {
            op: "graph".into(),
            node: many.join(", "),
            hint: "the client needs several encrypted values; veil compiles models whose encrypted part ends in one tensor (e.g. the logits or scores): make the other outputs depend on it".into(),
        }),
    }
}

/// Calibrated `(min, max)` of every value computed on the inputset.
pub fn calibrate(g: &FloatGraph, x: FTensor) -> OnnxResult<HashMap<String, (f64, f64)>> {
    let env = run_graph(g, x)?;
    Ok(env
        .into_iter()
        .filter(|(k, _)| !g.consts.contains_key(k))
        .map(|(k, t)| {
            let (lo, hi) = t
                .data
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            (k, if lo <= hi { (lo, hi) } else { (0.0, 0.0) })
        })
        .collect())
}

/// Reshapes rows of `x` into a batch tensor `[rows, sample...]`.
pub fn batch_tensor(x: &Matrix, sample: &[usize]) -> OnnxResult<FTensor> {
    let f: usize = sample.iter().product();
    if x.cols() != f {
        return Err(OnnxError::Shape(format!(
            "the model takes samples of shape {sample:?} ({f} values per row), got rows of {} values",
            x.cols()
        )));
    }
    let mut shape = vec![x.rows()];
    shape.extend_from_slice(sample);
    FTensor::new(shape, x.data().to_vec()).map_err(|e| OnnxError::Shape(e.0))
}

/// The result of compiling the server part.
pub struct Compiled {
    /// Program, client spec, stats.
    pub model: CompiledModel,
    /// How the graph divides.
    pub split: Split,
}

/// How the lookups of a compiled network round their accumulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundingPlan {
    /// Lookups read whole accumulators, which must fit a practical bootstrap
    /// ([`DEFAULT_MAX_LOOKUP_BITS`]); `None` from [`compile`] when one does not.
    Off,
    /// Keep `keep` bits of every wider lookup operand, rounding with `method`; `network`
    /// applies the rounded-network default widths ([`Resolved::of_rounded_network`]) to the
    /// widths the user left unset.
    Keep {
        /// Bits kept.
        keep: u8,
        /// How the dropped bits go.
        method: RoundingMethod,
        /// Rounded-network default widths.
        network: bool,
        /// Lookups read at most `keep` bits (an explicit `rounding_bits`, as Concrete ML's
        /// `rounding_threshold_bits`): with approximate rounding, drop one more bit wherever
        /// the deviation of earlier rounds widens a lookup past `keep`. `false` (veil's
        /// automatic choice, which measures accuracy): keep `keep` bits of the calibrated
        /// spread; such a lookup may read one bit more.
        exact_width: bool,
    },
}

/// How one lookup of a rounded network departs from its plan's `keep` (the automatic choice
/// refines a plan lookup by lookup, see `OnnxImport::compile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupKeep {
    /// Bits the lookup keeps.
    pub bits: u8,
    /// Whether its round may multiply each channel's accumulator by a clear factor (at most
    /// [`MAX_ROUND_FACTOR`]) so that the channel fills the kept window
    /// ([`PlannedRound::factors`]). The factor multiplies the noise the lookup reads, so the
    /// automatic choice takes it only where the optimizer prices it cheaper.
    pub factors: bool,
}

/// Largest factor of [`LookupKeep::factors`]: a step of `2^k / 7` comes within 15% of any
/// finer step, for at most 49 times the variance.
pub const MAX_ROUND_FACTOR: i64 = 7;

/// Compiles `g` with samples of shape `sample`, calibrated on `inputset`; `Ok(None)` when
/// `rounding` is [`RoundingPlan::Off`] and a lookup operand is wider than
/// [`DEFAULT_MAX_LOOKUP_BITS`] (the caller picks a rounding). `lookup_keeps[n]`, where given,
/// replaces the plan's `keep` at the `n`-th lookup.
#[allow(clippy::too_many_arguments)]
pub fn compile(
    g: &FloatGraph,
    sample: &[usize],
    inputset: &Matrix,
    n_bits: &NBits,
    batch: usize,
    comparison_inputs: bool,
    rounding: RoundingPlan,
    lookup_keeps: &[Option<LookupKeep>],
) -> OnnxResult<Option<Compiled>> {
    if batch == 0 {
        return Err(OnnxError::Shape("batch must be at least 1".into()));
    }
    if inputset.rows() == 0 {
        return Err(OnnxError::Shape(
            "the inputset is empty; give representative samples to calibrate the quantizers".into(),
        ));
    }
    let bits = Resolved::of(n_bits);
    let sp = split(g)?;
    let ranges = calibrate(g, batch_tensor(inputset, sample)?)?;
    let f: usize = sample.iter().product();
    // Tree ensembles: the ml tree program, on the raw input.
    if let Some(&ti) = sp
        .server
        .iter()
        .find(|&&i| matches!(g.nodes[i].op, FOp::Trees(_)))
    {
        let n = &g.nodes[ti];
        let FOp::Trees(m) = &n.op else {
            unreachable!("checked")
        };
        if sample.len() != 1 {
            return Err(n.unsupported("a tree ensemble must read a [batch, features] input"));
        }
        // A pipeline's per-feature scaling (Scaler, or Mul/Add/Sub/Div by constants) folds
        // into the thresholds: the trees then read the raw input.
        let (a, b) = tree_input_affine(g, &sp, ti, f)?;
        let m = m.unscaled(&a, &b).map_err(|e| n.err(e.to_string()))?;
        // Features go as their ranks among the split points when those fit in
        // `MAX_RANK_BITS` (or the bits asked for): every comparison is then exactly the float
        // model's, in fewer bits than a uniform quantizer needs.
        let rank_cap = n_bits.inputs.unwrap_or(MAX_RANK_BITS);
        if let Some((ranked, bins)) = m.rank_encoded(f).filter(|(_, b)| b.bits() <= rank_cap) {
            // Leaves keep the width they have under the default 6-bit features (4 bits: the
            // comparisons' digits then set the precision), unless asked otherwise.
            let leaves = n_bits
                .outputs
                .or(Some(crate::hummingbird::MAX_UNSPLIT_BITS));
            let model =
                ops::tree::compile(n, &ranked, Err((bins, comparison_inputs)), f, leaves, batch)?;
            return Ok(Some(Compiled { model, split: sp }));
        }
        // Trees default to the built-in tree models' width (6 bits) for features and leaves:
        // the comparisons are bootstraps at the input width, and 8-bit ones need 4 GB keys.
        let in_bits = n_bits.inputs.unwrap_or(crate::tree::DEFAULT_TREE_BITS);
        let q = input_quantizer(inputset, f, in_bits, true)?;
        let model = ops::tree::compile(n, &m, Ok(&q), f, n_bits.outputs, batch)?;
        return Ok(Some(Compiled { model, split: sp }));
    }
    let per_feature = sample.len() == 1;
    let quantizer = |bits: Resolved| input_quantizer(inputset, f, bits.inputs, per_feature);
    let emit = |bits: Resolved,
                q: &UniformQuantizer,
                rounding: Option<(u8, RoundingMethod)>,
                plan: &[PlannedRound]| {
        emit_program(g, &sp, sample, &ranges, q, bits, batch, rounding, plan)
    };
    let client = |q: UniformQuantizer, output: OutputDecoder| ClientSpec {
        n_features: f,
        batch,
        input: q,
        digit_bits: None,
        bins: None,
        comparisons: None,
        output,
    };
    // The inputset quantized as the program reads it.
    let rows_of = |q: &UniformQuantizer, dec: &OutputDecoder| {
        OnnxResult::Ok(
            client(q.clone(), dec.clone())
                .encode(inputset)
                .map_err(|e| OnnxError::Malformed(format!("quantizing the inputset: {e}")))?
                .into_iter()
                .map(|t| vec![t])
                .collect::<Vec<Vec<Tensor<i64>>>>(),
        )
    };
    // Calibrates an emitted integer program and gives the calibrated range of every lookup's
    // accumulator, per table (the n-th lookup emitted is the n-th table lookup node: one
    // emission order).
    let lookup_ranges = |graph: &Graph, q: &UniformQuantizer, dec: &OutputDecoder| {
        lookup_table_ranges(graph, &rows_of(q, dec)?)
    };
    let (bits, rounding, exact_width) = match rounding {
        RoundingPlan::Off => {
            let q = quantizer(bits)?;
            let (graph, dec) = emit(bits, &q, None, &[])?;
            let widths = lookup_ranges(&graph, &q, &dec)?;
            if widths
                .iter()
                .any(|r| width(&hull(r)) > DEFAULT_MAX_LOOKUP_BITS)
            {
                return Ok(None);
            }
            return Ok(Some(Compiled {
                model: CompiledModel::new(graph, client(q, dec)),
                split: sp,
            }));
        }
        RoundingPlan::Keep {
            keep,
            method,
            network,
            exact_width,
        } => {
            let b = if network {
                Resolved::of_rounded_network(n_bits)
            } else {
                bits
            };
            (b, Some((keep, method)), exact_width)
        }
    };
    let q = quantizer(bits)?;
    let (mut graph, mut dec) = emit(bits, &q, rounding, &[])?;
    if let Some((keep, method)) = rounding {
        // the bits the `i`-th lookup keeps
        let keep_at = |i: usize| {
            lookup_keeps
                .get(i)
                .copied()
                .flatten()
                .map_or(keep, |t| t.bits)
        };
        // round every lookup operand wider than `keep` bits; approximate rounds first center
        // each table's calibrated range on zero (see `PlannedRound::offsets`)
        let mut plan: Vec<PlannedRound> = lookup_ranges(&graph, &q, &dec)?
            .into_iter()
            .enumerate()
            .map(|(i, per_table)| {
                let factors = lookup_keeps
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|t| t.factors);
                let factor = if factors { MAX_ROUND_FACTOR } else { 1 };
                plan_round(&per_table, keep_at(i), method, factor)
            })
            .collect();
        if plan.iter().any(|p| p.lsbs > 0) {
            (graph, dec) = emit(bits, &q, rounding, &plan)?;
            // Approximate rounding moves later accumulators (the compiler widens their types
            // by that deviation, `passes::deviation`): drop one more bit wherever the widened
            // quotient needs more than `keep` bits, so that each lookup reads `keep` bits as
            // asked. Each pass only grows the plan, and earlier lookups first.
            if exact_width && method == RoundingMethod::Approximate {
                for _ in 0..plan.len() {
                    let wide = widened_lookup_widths(&graph, &rows_of(&q, &dec)?)?;
                    let mut grown = false;
                    for (i, (p, (rounded, w))) in plan.iter_mut().zip(wide).enumerate() {
                        let keep = keep_at(i);
                        if rounded && p.lsbs > 0 && w > keep {
                            p.lsbs += w - keep;
                            grown = true;
                            break;
                        }
                    }
                    if !grown {
                        break;
                    }
                    (graph, dec) = emit(bits, &q, rounding, &plan)?;
                }
            }
        }
    }
    Ok(Some(Compiled {
        model: CompiledModel::new(graph, client(q, dec)),
        split: sp,
    }))
}

/// Widest rank encoding of tree features used by default (two 4-bit digits per feature);
/// ensembles with more split points on one feature quantize it uniformly instead.
pub const MAX_RANK_BITS: u8 = 8;

/// The per-feature affine map `a * x + b` from the model input to the input of the tree
/// ensemble node `ti`: the server part may hold only a pipeline's scaling before the trees
/// (ONNX-ML `Scaler`, `Add`/`Sub`/`Mul`/`Div` by constants of one value or one per feature,
/// float `Cast`, `Identity`).
fn tree_input_affine(
    g: &FloatGraph,
    sp: &Split,
    ti: usize,
    f: usize,
) -> OnnxResult<(Vec<f64>, Vec<f64>)> {
    type Affine = (Vec<f64>, Vec<f64>);
    let tree = &g.nodes[ti];
    let refuse = |n: &FNode, why: &str| {
        Err(n.unsupported(format!(
            "a tree ensemble may be preceded only by per-feature scaling (Scaler, or Add/Sub/Mul/Div by constants) on the model's [batch, features] input: {why}"
        )))
    };
    let mut aff: HashMap<&str, Affine> = HashMap::new();
    aff.insert(g.input.as_str(), (vec![1.0; f], vec![0.0; f]));
    let per_feature = |n: &FNode, v: &[f64]| -> OnnxResult<Vec<f64>> {
        match v.len() {
            1 => Ok(vec![v[0]; f]),
            l if l == f => Ok(v.to_vec()),
            l => Err(n.err(format!("{l} values for {f} features"))),
        }
    };
    for &i in &sp.server {
        if i == ti {
            continue;
        }
        let n = &g.nodes[i];
        let operand = |k: usize| n.inputs.get(k).cloned().flatten();
        let (Some(x), Some(out)) = (operand(0), n.outputs.first()) else {
            return refuse(n, "an operand is missing");
        };
        let y: Affine = match &n.op {
            FOp::Scaler { offset, scale } => {
                let Some((a, b)) = aff.get(x.as_str()) else {
                    return refuse(n, "it does not read the input");
                };
                let (off, sc) = (per_feature(n, offset)?, per_feature(n, scale)?);
                (
                    (0..f).map(|c| a[c] * sc[c]).collect(),
                    (0..f).map(|c| (b[c] - off[c]) * sc[c]).collect(),
                )
            }
            FOp::Cast { to_int: false } | FOp::Act(super::graph::Act::Identity) => {
                let Some(v) = aff.get(x.as_str()) else {
                    return refuse(n, "it does not read the input");
                };
                v.clone()
            }
            FOp::Binary(op) => {
                let Some(y) = operand(1) else {
                    return refuse(n, "an operand is missing");
                };
                let (lin, c, lin_first) = match (aff.get(x.as_str()), g.consts.get(y.as_str())) {
                    (Some(l), Some(c)) => (l, c, true),
                    _ => match (g.consts.get(x.as_str()), aff.get(y.as_str())) {
                        (Some(c), Some(l)) => (l, c, false),
                        _ => return refuse(n, "it is not scaling by a constant"),
                    },
                };
                let c = per_feature(n, &c.data)?;
                let (a, b) = lin;
                use super::graph::BinOp;
                match (op, lin_first) {
                    (BinOp::Add, _) => (a.clone(), (0..f).map(|k| b[k] + c[k]).collect()),
                    (BinOp::Sub, true) => (a.clone(), (0..f).map(|k| b[k] - c[k]).collect()),
                    (BinOp::Sub, false) => (
                        a.iter().map(|v| -v).collect(),
                        (0..f).map(|k| c[k] - b[k]).collect(),
                    ),
                    (BinOp::Mul, _) => (
                        (0..f).map(|k| a[k] * c[k]).collect(),
                        (0..f).map(|k| b[k] * c[k]).collect(),
                    ),
                    (BinOp::Div, true) => (
                        (0..f).map(|k| a[k] / c[k]).collect(),
                        (0..f).map(|k| b[k] / c[k]).collect(),
                    ),
                    (BinOp::Div, false) => return refuse(n, "it divides by a feature"),
                }
            }
            _ => return refuse(n, &format!("`{}` is not per-feature scaling", n.op_type)),
        };
        aff.insert(out.as_str(), y);
    }
    let x = tree.inputs.first().cloned().flatten().unwrap_or_default();
    match aff.remove(x.as_str()) {
        Some(v) => Ok(v),
        None => refuse(tree, "it does not read the model input"),
    }
}

/// The calibrated range, over `rows`, of every table lookup's accumulator in `graph` (emission
/// order): one interval per table of the lookup (a `tlu.multi` has one per channel). The
/// accumulator is the lookup's operand, or the operand of the `round` it reads.
fn lookup_table_ranges(graph: &Graph, rows: &[Vec<Tensor<i64>>]) -> OnnxResult<Vec<Vec<Interval>>> {
    let err = |e: String| OnnxError::Malformed(format!("calibrating the quantized program: {e}"));
    let lookups: Vec<veil_ir::ValueId> = graph
        .values()
        .into_iter()
        .filter(|&v| matches!(graph.op(v), Op::Tlu { .. } | Op::TluMulti { .. }))
        .collect();
    // accumulator -> its lookups: (lookup index, table of each element)
    type Readers<'a> = Vec<(usize, Option<&'a [u32]>)>;
    let mut watch: HashMap<veil_ir::ValueId, Readers> = HashMap::new();
    let mut out: Vec<Vec<Interval>> = Vec::with_capacity(lookups.len());
    for (i, &v) in lookups.iter().enumerate() {
        let mut x = graph.operands(v)[0];
        if matches!(graph.op(x), Op::Round { .. }) {
            x = graph.operands(x)[0];
        }
        let (map, tables) = match graph.op(v) {
            Op::TluMulti { tables, map } => (Some(map.as_slice()), tables.len()),
            _ => (None, 1),
        };
        watch.entry(x).or_default().push((i, map));
        out.push(vec![
            Interval {
                lo: i128::MAX,
                hi: i128::MIN
            };
            tables.max(1)
        ]);
    }
    let prepared = veil_ir::Prepared::new(graph).map_err(|e| err(e.to_string()))?;
    for row in rows {
        prepared
            .run_traced(row, &mut |v, t| {
                if let Some(ws) = watch.get(&v) {
                    for &(i, map) in ws {
                        for (j, &x) in t.data.iter().enumerate() {
                            let k = map.map_or(0, |m| m.get(j).copied().unwrap_or(0) as usize);
                            if let Some(r) = out[i].get_mut(k) {
                                r.lo = r.lo.min(x);
                                r.hi = r.hi.max(x);
                            }
                        }
                    }
                }
            })
            .map_err(|e| err(e.to_string()))?;
    }
    // a table no element reads (or no row reached) ranges over nothing: count it as 0
    for r in out.iter_mut().flatten() {
        if r.lo > r.hi {
            *r = Interval { lo: 0, hi: 0 };
        }
    }
    Ok(out)
}

/// The hull of `ranges` (`[0, 0]` when empty).
fn hull(ranges: &[Interval]) -> Interval {
    ranges
        .iter()
        .copied()
        .reduce(Interval::union)
        .unwrap_or(Interval { lo: 0, hi: 0 })
}

/// Bits of the narrowest element type holding `r` (64 when none does).
fn width(r: &Interval) -> u8 {
    r.int_type().map_or(64, |t| t.bits)
}

/// The round before a lookup whose accumulator takes the calibrated ranges `per_table` (one
/// per table), keeping `keep` bits. Approximate rounds first add to each table's accumulator
/// the multiple of `2^lsbs` nearest to centering its range on zero, so that the kept bits
/// span the values seen rather than a signed window they half fill (see
/// [`PlannedRound::offsets`]); being multiples of the dropped step, the offsets leave every
/// rounding decision as it was, only the window narrows. With `max_factor > 1` each table's
/// accumulator may also be multiplied by a factor up to it ([`PlannedRound::factors`]): the
/// plan then takes the finest step `2^lsbs / factor` that keeps every channel, with one step
/// of margin each side for approximate rounding's deviation, within the kept bits.
fn plan_round(
    per_table: &[Interval],
    keep: u8,
    method: RoundingMethod,
    max_factor: i64,
) -> PlannedRound {
    let rounding = Rounding { keep_bits: keep };
    let unshifted = rounding.lsbs(width(&hull(per_table)));
    if method == RoundingMethod::Exact || unshifted == 0 {
        return PlannedRound {
            lsbs: unshifted,
            ..PlannedRound::default()
        };
    }
    // the multiple of `step` nearest to centering `[m lo, m hi]`
    let centering = |r: &Interval, m: i128, step: i128| {
        let mid = (m * r.lo + m * r.hi).div_euclid(2);
        -(mid + step / 2).div_euclid(step) * step
    };
    let to_i64 = |v: Vec<i128>| -> Vec<i64> {
        v.into_iter()
            .map(|o| i64::try_from(o).unwrap_or(0))
            .collect()
    };
    if max_factor > 1 {
        let half = 1i128 << (keep.max(1) - 1);
        // (resolution m / 2^lsbs as m * 2^(64 - lsbs), lsbs, factors, offsets)
        let mut best: Option<(i128, u8, Vec<i128>, Vec<i128>)> = None;
        for lsbs in 1..=unshifted.saturating_add(3).min(40) {
            let step = 1i128 << lsbs;
            let mut factors = Vec::with_capacity(per_table.len());
            let mut offsets = Vec::with_capacity(per_table.len());
            for r in per_table {
                // the largest factor whose centered quotient, one step of margin each side,
                // stays within the kept bits
                let found = (1..=i128::from(max_factor)).rev().find_map(|m| {
                    let o = centering(r, m, step);
                    let lo = (m * r.lo + o).div_euclid(step) - 1;
                    let hi = (m * r.hi + o + step - 1).div_euclid(step) + 1;
                    (lo >= -half && hi < half).then_some((m, o))
                });
                let Some((m, o)) = found else { break };
                factors.push(m);
                offsets.push(o);
            }
            if factors.len() < per_table.len() {
                continue;
            }
            let resolution = factors.iter().min().copied().unwrap_or(1) << (64 - lsbs);
            if best.as_ref().is_none_or(|b| resolution > b.0) {
                best = Some((resolution, lsbs, factors, offsets));
            }
        }
        if let Some((_, lsbs, factors, offsets)) = best {
            return PlannedRound {
                lsbs,
                offsets: to_i64(offsets),
                factors: to_i64(factors),
            };
        }
    }
    // the fewest dropped bits whose offsets keep the shifted ranges within `keep` bits
    for lsbs in 1..=unshifted {
        let step = 1i128 << lsbs;
        let offsets: Vec<i128> = per_table.iter().map(|r| centering(r, 1, step)).collect();
        let ranges: Vec<Interval> = per_table
            .iter()
            .zip(&offsets)
            .map(|(r, &o)| Interval {
                lo: r.lo + o,
                hi: r.hi + o,
            })
            .collect();
        if rounding.lsbs(width(&hull(&ranges))) <= lsbs {
            return PlannedRound {
                lsbs,
                offsets: to_i64(offsets),
                factors: Vec::new(),
            };
        }
    }
    PlannedRound {
        lsbs: unshifted,
        ..PlannedRound::default()
    }
}

/// The client's input quantizer: unsigned, per feature or per tensor, covering the inputset's
/// range widened by the `ml` module's default margin on each side (test samples often fall a
/// little outside the calibration range).
fn input_quantizer(
    x: &Matrix,
    f: usize,
    bits: u8,
    per_feature: bool,
) -> OnnxResult<UniformQuantizer> {
    let nch = if per_feature { f } else { 1 };
    let mut lo = vec![f64::INFINITY; nch];
    let mut hi = vec![f64::NEG_INFINITY; nch];
    for (i, &v) in x.data().iter().enumerate() {
        if !v.is_finite() {
            return Err(OnnxError::Shape(format!(
                "inputset value {i} = {v} is not finite"
            )));
        }
        let c = (i % f) % nch;
        lo[c] = lo[c].min(v);
        hi[c] = hi[c].max(v);
    }
    let m = crate::model::DEFAULT_INPUT_MARGIN;
    // A feature that is constant on the inputset gets the median width of the others: a
    // degenerate scale would dominate the weights it is folded into.
    let mut widths: Vec<f64> = (0..nch)
        .map(|c| hi[c] - lo[c])
        .filter(|&w| w > 0.0)
        .collect();
    widths.sort_by(f64::total_cmp);
    let reference = widths.get(widths.len() / 2).copied().unwrap_or(1.0);
    for c in 0..nch {
        let w = hi[c] - lo[c];
        if w > 0.0 {
            // Non-negative images keep 0 as their lower end (zero point 0: no padding
            // correction before a convolution).
            lo[c] = if lo[c] >= 0.0 && !per_feature {
                (lo[c] - m * w).max(0.0)
            } else {
                lo[c] - m * w
            };
            hi[c] += m * w;
        } else {
            lo[c] -= reference / 2.0;
            hi[c] += reference / 2.0;
        }
    }
    let g = if per_feature {
        Granularity::PerChannel
    } else {
        Granularity::PerTensor
    };
    Ok(UniformQuantizer::from_ranges(
        &lo,
        &hi,
        QuantOptions::unsigned(bits, g),
    )?)
}

fn emit_node(ctx: &Ctx, n: &FNode, ins: &[Option<Val>]) -> OnnxResult<Vec<Val>> {
    if ins.iter().flatten().all(|v| matches!(v, Val::Const(_))) {
        let ts: Vec<Option<&FTensor>> = ins
            .iter()
            .map(|v| {
                v.as_ref().map(|v| match v {
                    Val::Const(t) => t,
                    Val::Enc(_) => unreachable!("all constant"),
                })
            })
            .collect();
        return Ok(super::eval::eval_node(n, &ts)?
            .into_iter()
            .map(Val::Const)
            .collect());
    }
    match &n.op {
        FOp::Gemm { .. } | FOp::MatMul | FOp::Linear { .. } => ops::linear::emit(ctx, n, ins),
        FOp::Binary(_) | FOp::Act(_) | FOp::Scaler { .. } => ops::elementwise::emit(ctx, n, ins),
        FOp::Conv { .. } | FOp::AvgPool(_) | FOp::MaxPool(_) | FOp::BatchNorm { .. } => {
            ops::conv::emit(ctx, n, ins)
        }
        FOp::Flatten { .. }
        | FOp::Reshape { .. }
        | FOp::Transpose { .. }
        | FOp::Concat { .. }
        | FOp::Split { .. } => ops::shape::emit(ctx, n, ins),
        FOp::Cast { to_int: false } => Ok(vec![ins[0].clone().expect("operand")]),
        FOp::Trees(_) => Err(n.unsupported("a tree ensemble must read the model input directly")),
        _ => Err(n.unsupported("client-side post-processing cannot run on encrypted data")),
    }
}

/// The program output `[batch, values]` and its decoder.
fn output(ctx: &Ctx, cut: QVal, name: &str) -> OnnxResult<(veil_ir::ValueId, OutputDecoder)> {
    let mut q = cut;
    let r = q.shape.len();
    let last_ok = q.axis.is_none() || q.axis == Some(r - 1);
    if !q.is_plain() || !q.integral_zero() || !last_ok || (r != 2 && q.axis.is_some()) {
        let oq = ctx.quantizer(name, ctx.n_bits.outputs)?;
        q = ctx.materialize_with(&q, &oq, name)?;
    }
    let batch = q.shape[0];
    let w: usize = q.shape[1..].iter().product();
    let id = if r == 2 {
        q.id
    } else {
        ctx.b.reshape(q.id, &[batch, w])?
    };
    let dec = OutputDecoder {
        values: w,
        groups: 1,
        columns: Vec::new(),
        column_weight: Vec::new(),
        scale: (0..w).map(|j| q.scale[j % q.scale.len()]).collect(),
        zero: (0..w)
            .map(|j| q.zero[j % q.zero.len()].round() as i64)
            .collect(),
        offset: Vec::new(),
        post: PostProcess::Identity,
    };
    Ok((id, dec))
}

/// Emits the quantized program of the server part `sp` of `g` (`plan`: the `round` before each
/// lookup, see [`Ctx::round_plan`]); returns it with the decoder of its output.
#[allow(clippy::too_many_arguments)]
fn emit_program(
    g: &FloatGraph,
    sp: &Split,
    sample: &[usize],
    ranges: &HashMap<String, (f64, f64)>,
    q: &UniformQuantizer,
    bits: Resolved,
    batch: usize,
    rounding: Option<(u8, RoundingMethod)>,
    plan: &[PlannedRound],
) -> OnnxResult<(Graph, OutputDecoder)> {
    let b = Builder::new();
    let f: usize = sample.iter().product();
    let per_feature = sample.len() == 1;
    let xin = b.input_encrypted("x", &[batch, f], q.int_type())?;
    let mut shape = vec![batch];
    shape.extend_from_slice(sample);
    let xid = if per_feature {
        xin
    } else {
        b.reshape(xin, &shape)?
    };
    let zero: Vec<f64> = q.zero_point.iter().map(|&z| z as f64).collect();
    let xq = QVal::new(xid, shape, per_feature.then_some(1), q.scale.clone(), zero);
    let ctx = Ctx {
        b: &b,
        n_bits: bits,
        ranges,
        // approximate rounds give quotients, so lookups never see the accumulator's width;
        // an exact round keeps the scale and may need one more bit
        max_acc: match rounding {
            Some((_, RoundingMethod::Approximate)) => MAX_ROUNDED_ACC,
            Some((_, RoundingMethod::Exact)) => MAX_ACC / 2,
            None => MAX_ACC,
        },
        round_plan: plan,
        round_approx: matches!(rounding, Some((_, RoundingMethod::Approximate))),
        lookups: Default::default(),
    };
    let mut vals: HashMap<String, Val> = g
        .consts
        .iter()
        .map(|(k, v)| (k.clone(), Val::Const(v.clone())))
        .collect();
    vals.insert(g.input.clone(), Val::Enc(xq));
    for &i in &sp.server {
        let n = &g.nodes[i];
        let ins: Vec<Option<Val>> = n
            .inputs
            .iter()
            .map(|v| {
                v.as_ref()
                    .map(|name| {
                        vals.get(name).cloned().ok_or_else(|| {
                            n.err(format!("`{name}` is not computed before this node"))
                        })
                    })
                    .transpose()
            })
            .collect::<OnnxResult<_>>()?;
        let outs = emit_node(&ctx, n, &ins)?;
        for (name, v) in n.outputs.iter().zip(outs) {
            vals.insert(name.clone(), v);
        }
    }
    let cut = match vals.get(&sp.cut) {
        Some(Val::Enc(q)) => q.clone(),
        _ => {
            return Err(OnnxError::Malformed(format!(
                "the encrypted result `{}` does not depend on the input",
                sp.cut
            )))
        }
    };
    if cut.shape.first() != Some(&batch) {
        return Err(OnnxError::Unsupported {
            op: "graph".into(),
            node: sp.cut.clone(),
            hint: format!(
                "the encrypted result has shape {:?}; its first axis must be the batch",
                cut.shape
            ),
        });
    }
    let (id, dec) = output(&ctx, cut, &sp.cut)?;
    b.output("y", id)?;
    Ok((b.finish()?, dec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: i128, hi: i128) -> Interval {
        Interval { lo, hi }
    }

    /// The torch CNN's first accumulator, `[-4700, 8280]`: a signed 15-bit window, so 6 kept
    /// bits drop 9 and the quotient spans 26 of 64 levels. Centered, the range fits 14 bits:
    /// 8 bits go and it spans 51.
    #[test]
    fn centering_keeps_one_bit_more_of_a_lopsided_range() {
        let p = plan_round(&[iv(-4700, 8280)], 6, RoundingMethod::Approximate, 1);
        assert_eq!(p.lsbs, 8);
        assert_eq!(p.offsets.len(), 1);
        let o = i128::from(p.offsets[0]);
        assert_eq!(o % 256, 0, "a multiple of the dropped step: {o}");
        assert!(width(&iv(-4700 + o, 8280 + o)) <= 14);
        // exact rounds and ranges already centered keep their plan
        let exact = plan_round(&[iv(-4700, 8280)], 6, RoundingMethod::Exact, 1);
        assert_eq!((exact.lsbs, exact.offsets.len()), (9, 0));
        assert_eq!(
            plan_round(&[iv(-4000, 4000)], 6, RoundingMethod::Approximate, 1).lsbs,
            7
        );
    }

    /// Per table: each channel's range is centered on its own, so the window is as wide as
    /// the widest channel's range, not their hull.
    #[test]
    fn each_table_is_centered_on_its_own_range() {
        let ranges = [iv(-3000, -1000), iv(5000, 7000)];
        let p = plan_round(&ranges, 6, RoundingMethod::Approximate, 1);
        // the hull [-3000, 7000] needs 14 signed bits; each range alone, centered, 11
        assert_eq!(p.lsbs, 5);
        for (r, &o) in ranges.iter().zip(&p.offsets) {
            let o = i128::from(o);
            assert_eq!(o % 32, 0);
            assert!(width(&iv(r.lo + o, r.hi + o)) <= 11, "{o}");
        }
    }

    /// Factors: the torch CNN's first accumulator at 5 kept bits. Without them the step is
    /// 512 (the range fills 20 of 32 levels); a factor of 5 over 2^11 makes it 410, and every
    /// channel's quotient, one step of margin each side, stays within 5 signed bits.
    #[test]
    fn factors_make_each_channel_fill_the_kept_window() {
        let ranges = [iv(-4752, 5208), iv(-3000, 1000)];
        let plain = plan_round(&ranges, 5, RoundingMethod::Approximate, 1);
        assert_eq!((plain.lsbs, plain.factors.len()), (9, 0));
        let p = plan_round(&ranges, 5, RoundingMethod::Approximate, MAX_ROUND_FACTOR);
        assert_eq!(p.factors.len(), 2);
        let step = |m: i64| (1i64 << p.lsbs) as f64 / m as f64;
        assert!(step(p.factors[0]) < 512.0, "{p:?}");
        // the narrower channel gets the larger factor: a finer step
        assert!(p.factors[1] >= p.factors[0], "{p:?}");
        for ((r, &m), &o) in ranges.iter().zip(&p.factors).zip(&p.offsets) {
            let (m, o, d) = (i128::from(m), i128::from(o), 1i128 << p.lsbs);
            let lo = (m * r.lo + o).div_euclid(d) - 1;
            let hi = (m * r.hi + o + d - 1).div_euclid(d) + 1;
            assert!(lo >= -16 && hi <= 15, "{p:?}: [{lo}, {hi}]");
        }
    }

    /// Nothing to drop: no round, no offsets.
    #[test]
    fn a_narrow_accumulator_is_left_alone() {
        let p = plan_round(&[iv(-20, 20)], 6, RoundingMethod::Approximate, 1);
        assert_eq!(p, PlannedRound::default());
    }
}
