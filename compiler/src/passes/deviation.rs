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
//!   calibrated range (a sliding-window maximum);
//! - anything else reached by a deviation: the interval transfer function on the widened
//!   operand ranges.
//!
//! The widened range of `v` is `[lo - d, hi + d]`, intersected with the transfer function on
//! the widened operand ranges when that is known (both are sound). The client's domain check
//! keeps the calibrated (exact) ranges: a sample inside them stays inside the widened types.

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
        let d = match (d, by_transfer) {
            (Some(d), _) => d,
            // no deviation rule: the transfer function alone
            (None, Some(t)) => (exact.lo - t.lo).max(t.hi - exact.hi).max(0),
            (None, None) => {
                let t = g.ty(v).int;
                (exact.lo - t.min()).max(t.max() - exact.hi).max(0)
            }
        };
        let mut w = Interval {
            lo: exact.lo.saturating_sub(d),
            hi: exact.hi.saturating_add(d),
        };
        if let Some(t) = by_transfer {
            w = w.intersect(t).unwrap_or(w);
        }
        // the widened range holds the calibrated one
        w = w.union(exact);
        dev.insert(v, (exact.lo - w.lo).max(w.hi - exact.hi));
        out.set(v, w);
    }
    out
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
        | Op::TluMulti { .. }
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
