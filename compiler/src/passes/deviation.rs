//! How far approximate rounding can move every value: calibrated ranges widened so that the
//! types chosen from them hold what the encrypted program computes.
//!
//! Calibration runs the reference interpreter, which rounds exactly; an approximate `round`
//! ([`veil_ir::Op::Round`] with `approx`) may give the other neighbouring multiple, and every
//! value computed from it may differ from the calibrated run. This module bounds that
//! difference, the *deviation* `d(v) >= 0` (`|encrypted - reference| <= d(v)` elementwise for
//! every sample whose reference values lie in the calibrated ranges), in one pass in
//! topological order:
//!
//! - inputs and constants: `0`;
//! - approximate `round k`: `ceil(d(a) / 2^k) * 2^k + 2^k` (one step, plus the operand's
//!   deviation rounded up to steps); exact `round k`: the same when `d(a) > 0`, else `0`;
//! - linear ops (add, sub, neg, sum, clear-weight mul/matmul/conv2d, shape ops): the op applied
//!   to the deviation intervals `[-d, d]` (the interval transfer function of
//!   [`veil_ir::infer::transfer`]), since `f(x + e) - f(x) = f(e)` for them (biases dropped);
//! - `relu`, `abs`, `clip`: `d(a)` (they are 1-Lipschitz); `min`/`max`: the larger deviation;
//!   comparisons: `1` when an operand deviates;
//! - `tlu`: the largest change of the table between two arguments `d(a)` apart, over the
//!   calibrated range (a sliding-window maximum); `tlu.multi`: the largest such change of
//!   the tables its elements read;
//! - anything else reached by a deviation: the interval transfer function on the widened
//!   operand ranges.
//!
//! The widened range of `v` is `[lo - d, hi + d]`, intersected with the transfer function on
//! the widened operand ranges when that is known (both are sound). The client's domain check
//! keeps the calibrated (exact) ranges: a sample inside them stays inside the widened types.
//!
//! The deviation carried to `v`'s users is the per-element bound `d`, not how far the range
//! grew: a transfer function that clips (`relu`, `clip`, a saturating table) can keep the range
//! where calibration left it while an element still moves by `d` inside it (`15 -> 14` under
//! `clip(x, 0, 15)`), and a user that subtracts two such values needs that movement. The only
//! other bound is the range itself: an element of the calibrated range `[lo, hi]` that moves
//! inside the widened range `[wlo, whi]` moves by at most `max(whi - lo, hi - wlo)`.

use super::bitwidth::ValueRanges;
use std::collections::{HashMap, VecDeque};
use veil_ir::infer::{transfer, OperandFacts};
use veil_ir::Interval;
use veil_ir::{Graph, Op, ValueId};

/// Whether `g` has an approximate `round` (else calibrated ranges are exact and need no
/// widening).
pub fn has_approx_rounds(g: &Graph) -> bool {
    g.values()
        .iter()
        .any(|&v| matches!(g.op(v), Op::Round { approx: true, .. }))
}

/// `ranges` (calibrated by the reference interpreter) widened by the deviation every value
/// may have under approximate rounding; the same ranges when `g` has no approximate round.
/// Values without a calibrated range keep none.
pub fn widen_for_approx_rounds(g: &Graph, ranges: &ValueRanges) -> ValueRanges {
    if !has_approx_rounds(g) {
        return ranges.clone();
    }
    approx_deviations(g, ranges).widened
}

/// What approximate rounding may do to every value of a program (see the module doc).
#[derive(Clone, Debug)]
pub struct Deviations {
    /// The reference ranges widened to hold every value an encrypted run may compute.
    pub widened: ValueRanges,
    /// Per value, the largest `|encrypted - reference|` of one element on a sample whose
    /// reference values lie in the reference ranges; values not listed never deviate.
    pub per_element: HashMap<ValueId, i128>,
}

impl Deviations {
    /// The per-element deviation bound of `v` (0 when it cannot deviate).
    pub fn of(&self, v: ValueId) -> i128 {
        self.per_element.get(&v).copied().unwrap_or(0)
    }
}

/// The deviations of every value of `g` under approximate rounding, from reference ranges
/// `ranges` (calibrated by the interpreter, or propagated from the input types): what a test
/// or a user compares an encrypted run against, output by output.
pub fn approx_deviations(g: &Graph, ranges: &ValueRanges) -> Deviations {
    let order = g.topo_order().unwrap_or_else(|_| g.values());
    let mut dev: HashMap<ValueId, i128> = HashMap::new();
    let mut out = ranges.clone();
    for v in order {
        let ops = g.operands(v);
        let d_of = |o: &ValueId| dev.get(o).copied().unwrap_or(0);
        if ops.iter().all(|o| d_of(o) == 0) && !matches!(g.op(v), Op::Round { approx: true, .. }) {
            continue;
        }
        let Some(exact) = ranges.get(v) else {
            continue;
        };
        let widened =
            |o: &ValueId| -> Interval { out.get(*o).unwrap_or(Interval::of_type(g.ty(*o).int)) };
        let d = deviation(g, v, &ops, &dev, ranges);
        // the transfer function on the widened operands bounds the value too
        let infos: Vec<OperandFacts> = ops
            .iter()
            .map(|o| OperandFacts {
                range: widened(o),
                int: g.ty(*o).int,
                shape: &g.ty(*o).shape,
                constant: match g.op(*o) {
                    Op::Const { value } => g.constant(*value),
                    _ => None,
                },
            })
            .collect();
        let by_transfer = transfer(g.op(v), &infos, &g.tables).ok();
        // no deviation rule: the value may be anywhere the transfer function (else its
        // type) allows
        let bound = by_transfer.unwrap_or_else(|| Interval::of_type(g.ty(v).int));
        let d = d.unwrap_or_else(|| span_deviation(exact, bound));
        let mut w = Interval {
            lo: exact.lo.saturating_sub(d),
            hi: exact.hi.saturating_add(d),
        };
        if let Some(t) = by_transfer {
            w = w.intersect(t).unwrap_or(w);
        }
        // the widened range holds the calibrated one
        w = w.union(exact);
        // per element: the rule's bound, or how far apart two values of the ranges can be
        dev.insert(v, d.min(span_deviation(exact, w)));
        out.set(v, w);
    }
    dev.retain(|_, d| *d > 0);
    Deviations {
        widened: out,
        per_element: dev,
    }
}

/// The largest `|u' - u|` for `u` in the calibrated range `exact` and `u'` in `widened`.
fn span_deviation(exact: Interval, widened: Interval) -> i128 {
    widened
        .hi
        .saturating_sub(exact.lo)
        .max(exact.hi.saturating_sub(widened.lo))
        .max(0)
}

/// The deviation of `v` from its operands' deviations, when a rule applies (`None`: use the
/// transfer function on widened ranges).
fn deviation(
    g: &Graph,
    v: ValueId,
    ops: &[ValueId],
    dev: &HashMap<ValueId, i128>,
    ranges: &ValueRanges,
) -> Option<i128> {
    let d = |i: usize| ops.get(i).map_or(0, |o| dev.get(o).copied().unwrap_or(0));
    let steps = |dx: i128, k: u8| {
        let step = 1i128 << k.min(120);
        if dx == 0 {
            0
        } else {
            (dx + step - 1) / step * step + step
        }
    };
    let op = g.op(v);
    Some(match op {
        // one step, plus the operand's deviation in steps (a quotient counts steps)
        Op::Round {
            lsbs,
            approx: true,
            rescale,
        } => {
            let step = 1i128 << (*lsbs).min(120);
            let s = (d(0) + step - 1) / step + 1;
            if *rescale {
                s
            } else {
                s * step
            }
        }
        Op::Round {
            lsbs,
            approx: false,
            ..
        } => steps(d(0), *lsbs),
        Op::Relu | Op::Abs | Op::Clip { .. } => d(0),
        Op::Min | Op::Max => d(0).max(d(1)),
        Op::Cmp(_) => i128::from(d(0) > 0 || d(1) > 0),
        Op::Tlu { table } => {
            let x = ops[0];
            let t = g.table(*table)?;
            let r = ranges.get(x)?;
            table_deviation(&t.entries, g.ty(x).int.min(), r, d(0))
        }
        // per-element tables: the largest change of any table that an element reads
        Op::TluMulti { tables, map } => {
            let x = ops[0];
            let r = ranges.get(x)?;
            let used: std::collections::BTreeSet<u32> = map.iter().copied().collect();
            let mut worst = 0;
            for i in used {
                let t = g.table(*tables.get(i as usize)?)?;
                worst = worst.max(table_deviation(&t.entries, g.ty(x).int.min(), r, d(0)));
            }
            worst
        }
        Op::Add
        | Op::Sub
        | Op::Neg
        | Op::Sum { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Broadcast
        | Op::Slice { .. }
        | Op::Concat { .. }
        | Op::Output { .. }
        | Op::MatMul
        | Op::Conv2d(_)
        | Op::Mul => {
            let deviates = |i: usize| d(i) > 0;
            // products of two deviating values are not linear in the deviation
            if matches!(op, Op::Mul | Op::MatMul) && deviates(0) && deviates(1) {
                return None;
            }
            let infos: Vec<OperandFacts> = ops
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let ty = g.ty(*o);
                    let constant = match g.op(*o) {
                        Op::Const { value } => g.constant(*value),
                        _ => None,
                    };
                    let linear_in = match op {
                        Op::Mul | Op::MatMul | Op::Conv2d(_) => deviates(i),
                        _ => true,
                    };
                    let is_bias = matches!(op, Op::Conv2d(_)) && i == 2;
                    if is_bias {
                        // f(x + e) - f(x) drops the bias
                        OperandFacts {
                            range: Interval::point(0),
                            int: ty.int,
                            shape: &ty.shape,
                            constant: None,
                        }
                    } else if linear_in {
                        OperandFacts {
                            range: Interval::new(-d(i), d(i)),
                            int: ty.int,
                            shape: &ty.shape,
                            constant: None,
                        }
                    } else {
                        // the other factor: its values (a clear weight) or its range
                        OperandFacts {
                            range: ranges.get(*o).unwrap_or(Interval::of_type(ty.int)),
                            int: ty.int,
                            shape: &ty.shape,
                            constant,
                        }
                    }
                })
                .collect();
            let r = transfer(op, &infos, &[]).ok()?;
            r.lo.saturating_neg().max(r.hi).max(0)
        }
        // no rule: the transfer function on the widened operand ranges bounds it
        Op::Input { .. }
        | Op::Const { .. }
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Where
        | Op::KeySwitch
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. }
        | Op::Pbs { .. }
        | Op::WopPbs { .. } => return None,
    })
}

/// The largest `|t(u') - t(u)|` over `u` in `r` and `u'` within `dx` of `u` (both indexing
/// `entries` from `base`; arguments beyond the table are ignored).
fn table_deviation(entries: &[i64], base: i128, r: Interval, dx: i128) -> i128 {
    if dx == 0 || entries.is_empty() {
        return 0;
    }
    let last = entries.len() as i128 - 1;
    let idx = |u: i128| (u - base).clamp(0, last) as usize;
    let (lo, hi) = (idx(r.lo), idx(r.hi));
    let (wlo, whi) = (idx(r.lo - dx), idx(r.hi + dx));
    let dx = dx.min(entries.len() as i128) as usize;
    // sliding-window max and min over [u - dx, u + dx]
    let mut maxq: VecDeque<usize> = VecDeque::new();
    let mut minq: VecDeque<usize> = VecDeque::new();
    let mut next = wlo;
    let mut worst = 0i128;
    for u in lo..=hi {
        let top = (u + dx).min(whi);
        while next <= top {
            while maxq.back().is_some_and(|&b| entries[b] <= entries[next]) {
                maxq.pop_back();
            }
            maxq.push_back(next);
            while minq.back().is_some_and(|&b| entries[b] >= entries[next]) {
                minq.pop_back();
            }
            minq.push_back(next);
            next += 1;
        }
        let bottom = u.saturating_sub(dx).max(wlo);
        while maxq.front().is_some_and(|&f| f < bottom) {
            maxq.pop_front();
        }
        while minq.front().is_some_and(|&f| f < bottom) {
            minq.pop_front();
        }
        let here = entries[u] as i128;
        if let (Some(&mx), Some(&mn)) = (maxq.front(), minq.front()) {
            worst = worst
                .max(entries[mx] as i128 - here)
                .max(here - entries[mn] as i128);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::bitwidth::calibrate;
    use proptest::prelude::*;
    use veil_ir::interp::eval_node;
    use veil_ir::{Builder, IntType, Tensor};

    /// Every value of `g` on `inputs`, each approximate `round` taking, per element, the lower
    /// or upper neighbouring multiple as `up` says (an exact multiple stays itself): what an
    /// encrypted run may compute.
    fn run_rounding(
        g: &Graph,
        inputs: &[Tensor<i64>],
        up: &mut impl FnMut() -> bool,
    ) -> HashMap<ValueId, Tensor<i128>> {
        let mut vals: HashMap<ValueId, Tensor<i128>> = HashMap::new();
        let ins = g.inputs();
        for v in g.topo_order().unwrap() {
            let t = match g.op(v) {
                Op::Input { .. } => {
                    let k = ins.iter().position(|&i| i == v).unwrap();
                    inputs[k].map(|&x| x as i128)
                }
                Op::Round {
                    lsbs,
                    approx: true,
                    rescale,
                } => {
                    let step = 1i128 << lsbs;
                    let a = &vals[&g.operands(v)[0]];
                    let data = a
                        .data
                        .iter()
                        .map(|&x| {
                            let lower = x.div_euclid(step);
                            let q = if x.rem_euclid(step) != 0 && up() {
                                lower + 1
                            } else {
                                lower
                            };
                            if *rescale {
                                q
                            } else {
                                q * step
                            }
                        })
                        .collect();
                    Tensor::new(a.shape.clone(), data).unwrap()
                }
                _ => {
                    let args: Vec<&Tensor<i128>> = g.operands(v).iter().map(|o| &vals[o]).collect();
                    eval_node(g, v, &args).unwrap()
                }
            };
            vals.insert(v, t);
        }
        vals
    }

    /// Calibrates `g` on every value of its single `u{bits}` input of shape `[n]` (one element
    /// varying, the others 0 and max), widens, and checks that `tries` runs with random
    /// roundings stay inside the widened ranges.
    fn check_widening_sound(g: &Graph, samples: &[Vec<Tensor<i64>>], seed: u64) {
        let exact = calibrate(g, samples).unwrap();
        let widened = widen_for_approx_rounds(g, &exact);
        let mut state = seed | 1;
        let mut up = move || {
            // xorshift
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state & 1 == 1
        };
        for sample in samples {
            for _ in 0..8 {
                let vals = run_rounding(g, sample, &mut up);
                for (v, t) in &vals {
                    let Some(w) = widened.get(*v) else { continue };
                    for x in &t.data {
                        assert!(
                            w.lo <= *x && *x <= w.hi,
                            "{v:?} ({:?}) = {x} outside its widened range {w:?} (calibrated {:?}) \
                             on {sample:?}",
                            g.op(*v),
                            exact.get(*v)
                        );
                    }
                }
            }
        }
    }

    fn u(bits: u8) -> IntType {
        IntType {
            signed: false,
            bits,
        }
    }

    fn scalar_samples(bits: u8) -> Vec<Vec<Tensor<i64>>> {
        (0..1i64 << bits)
            .map(|x| vec![Tensor::new(vec![1], vec![x]).unwrap()])
            .collect()
    }

    /// A clipped value keeps its calibrated range but still moves by a step inside it: the
    /// difference with the unrounded input must widen. (Before the deviation was carried per
    /// element, `clip` recorded 0 and `y` kept the calibrated `[-3, 2]`, while `x = 5` rounded
    /// up gives `8 - 5 = 3`.)
    #[test]
    fn a_clipped_deviation_still_reaches_a_difference() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[1], u(4)).unwrap();
        let r = b.round_approx(x, 2).unwrap();
        let c = b.clip(r, 0, 12).unwrap();
        let y = b.sub(c, x).unwrap();
        b.output("y", y).unwrap();
        let g = b.finish().unwrap();
        let samples = scalar_samples(4);
        let exact = calibrate(&g, &samples).unwrap();
        assert_eq!(exact.get(c), Some(Interval::new(0, 12)));
        assert_eq!(exact.get(y), Some(Interval::new(-3, 2)));
        let widened = widen_for_approx_rounds(&g, &exact);
        assert_eq!(
            widened.get(c),
            Some(Interval::new(0, 12)),
            "clip bounds the range"
        );
        let wy = widened.get(y).unwrap();
        assert!(wy.contains(3) && wy.contains(-4), "{wy:?}");
        check_widening_sound(&g, &samples, 7);
    }

    /// The same through a saturating table instead of `clip`, and the difference of two
    /// clipped values.
    #[test]
    fn a_saturating_table_keeps_its_deviation() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[1], u(5)).unwrap();
        let r = b.round_approx_quotient(x, 2).unwrap();
        let t1 = b.tlu(r, |v| v.min(5)).unwrap();
        let r2 = b.round_approx_quotient(x, 3).unwrap();
        let t2 = b.tlu(r2, |v| (2 * v).min(5)).unwrap();
        let y = b.sub(t1, t2).unwrap();
        let z = b.tlu(y, |v| v * v).unwrap();
        b.output("z", z).unwrap();
        let g = b.finish().unwrap();
        check_widening_sound(&g, &scalar_samples(5), 11);
    }

    /// A per-element table moves its elements by at most the largest jump of the tables they
    /// read, not over the whole output range (before, `tlu.multi` had no rule and a layer of
    /// 3-bit activations counted as moving by 7, which widened the next layer's lookups of a
    /// small network from 4 to 6 bits).
    #[test]
    fn a_per_element_table_moves_by_its_largest_jump() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], u(6)).unwrap();
        let r = b.round_approx_quotient(x, 2).unwrap();
        // the quotient of a u6 rounded by 2 bits is a u5 (up to 16)
        let ramp: Vec<i64> = (0..32).map(|v| (v / 2).min(7)).collect();
        let dead = vec![0; 32];
        let t = b.tlu_multi(r, vec![ramp, dead], vec![0, 1]).unwrap();
        let w = b.constant(&[2], &[3, -2]).unwrap();
        let y = b.mul(t, w).unwrap();
        let s = b.sum(y, &[0], false).unwrap();
        b.output("s", s).unwrap();
        let g = b.finish().unwrap();
        let samples: Vec<Vec<Tensor<i64>>> = (0..64i64)
            .map(|v| vec![Tensor::new(vec![2], vec![v, 63 - v]).unwrap()])
            .collect();
        let exact = calibrate(&g, &samples).unwrap();
        let d = approx_deviations(&g, &exact);
        assert_eq!(d.of(t), 1, "one step of the ramp");
        // per tensor: each element may move by 1, so each product by up to 3 and their sum
        // by 6 (by 42 without the rule)
        assert_eq!(d.of(s), 6);
        check_widening_sound(&g, &samples, 5);
    }

    /// One op of a random straight-line program: `(kind, operand, operand, parameter)`.
    type RandomOp = (u8, usize, usize, i64);

    /// Builds a program over one `u5` input of shape `[2]` from `ops` (operands index earlier
    /// values, modulo their count).
    fn random_program(ops: &[RandomOp]) -> Graph {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], u(5)).unwrap();
        let mut vals = vec![x];
        for &(kind, i, j, p) in ops {
            let a = vals[i % vals.len()];
            let c = vals[j % vals.len()];
            let bits = |v: ValueId| b.ty(v).unwrap().int.bits;
            let v = match kind % 13 {
                0 if bits(a) > 2 => b.round_approx(a, (p.rem_euclid(2) + 1) as u8),
                1 if bits(a) > 2 => b.round_approx_quotient(a, (p.rem_euclid(2) + 1) as u8),
                2 if bits(a) > 2 => b.round(a, 1),
                3 => b.relu(a),
                4 => b.clip(a, -p.rem_euclid(4), p.rem_euclid(8) + 2),
                5 => b.add(a, c),
                6 => b.sub(a, c),
                7 => {
                    let k = b.constant_scalar(p.rem_euclid(5) - 2).unwrap();
                    b.mul(a, k)
                }
                8 if bits(a) <= 7 => b.tlu(a, move |v| (v * (p % 3 + 1)).clamp(-9, 9)),
                9 => b.max(a, c),
                10 => b.lt(a, c),
                11 if bits(a) <= 7 => {
                    // two per-element tables, one steep and one flat
                    let t = b.ty(a).unwrap();
                    let (lo, n) = (t.int.min() as i64, 1usize << t.int.bits);
                    let steep = (0..n as i64).map(|i| ((i + lo) * (p % 3 + 2)).clamp(-20, 20));
                    let flat = (0..n as i64).map(|i| (i + lo).clamp(0, 2));
                    let map = (0..t.shape.iter().product::<usize>() as u32)
                        .map(|j| j % 2)
                        .collect();
                    b.tlu_multi(a, vec![steep.collect(), flat.collect()], map)
                }
                _ => b.abs(a),
            };
            if let Ok(v) = v {
                if b.ty(v).unwrap().int.bits <= 10 {
                    vals.push(v);
                }
            }
        }
        b.output("y", *vals.last().unwrap()).unwrap();
        b.finish().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Soundness: on random programs with approximate rounds, every value an encrypted run
        /// may compute (each round taking either neighbour) lies in its widened range.
        #[test]
        fn widening_holds_every_rounding(
            ops in proptest::collection::vec((0u8..13, 0usize..8, 0usize..8, -4i64..8), 1..10),
            seed in 1u64..u64::MAX,
        ) {
            let g = random_program(&ops);
            let samples: Vec<Vec<Tensor<i64>>> = (0..32i64)
                .step_by(3)
                .flat_map(|a| [0i64, 17, 31].map(|c| vec![Tensor::new(vec![2], vec![a, c]).unwrap()]))
                .collect();
            check_widening_sound(&g, &samples, seed);
        }
    }

    /// The definition: every pair of arguments within `dx`, the first in `r`.
    fn brute(t: &[i64], r: Interval, dx: i128) -> i128 {
        let last = t.len() as i128 - 1;
        let mut worst = 0;
        for u in r.lo..=r.hi {
            for w in (u - dx).max(0)..=(u + dx).min(last) {
                worst = worst.max((t[w as usize] - t[u as usize]).abs() as i128);
            }
        }
        worst
    }

    #[test]
    fn table_deviation_is_the_largest_jump_within_reach() {
        let steps: Vec<i64> = (0..16).map(|u| (u / 4) as i64).collect();
        assert_eq!(table_deviation(&steps, 0, Interval::new(0, 15), 0), 0);
        assert_eq!(table_deviation(&steps, 0, Interval::new(0, 15), 1), 1);
        assert_eq!(table_deviation(&steps, 0, Interval::new(0, 15), 4), 1);
        assert_eq!(table_deviation(&steps, 0, Interval::new(0, 15), 5), 2);
        // reaching outside the calibrated range, not outside the table
        assert_eq!(table_deviation(&steps, 0, Interval::point(4), 1), 1);
        let wiggly: Vec<i64> = (0..16).map(|u| ((u * 7) % 5) as i64).collect();
        for t in [&steps, &wiggly] {
            for dx in 0..6 {
                for lo in 0..16 {
                    for hi in lo..16 {
                        let r = Interval::new(lo, hi);
                        assert_eq!(table_deviation(t, 0, r, dx), brute(t, r, dx), "{r:?} {dx}");
                    }
                }
            }
        }
    }
}
