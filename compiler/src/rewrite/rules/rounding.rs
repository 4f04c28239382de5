//! Rounding before a lookup: a lookup on `x` becomes `round(k, x)` and a lookup of the
//! rounded value. Exactly when the table does not depend on the dropped low bits (always on);
//! as an approximation within the accuracy contract when `RewriteConfig::approx_round_bits` is
//! set (off by default, so that compilation is exact).
//!
//! Both rules insert the alternative only when the cost model ([`crate::rewrite::cost`]) says
//! the pair is cheaper than the single lookup ([`worth_rounding`]). The lowering bootstraps
//! `round` over the full width of its operand and the rounded value keeps its scale (its type
//! is as wide or wider), so under the current lowering the pair never is: the rules stay idle
//! rather than adding alternatives extraction cannot use (or, for the approximate one,
//! inexact programs that gain nothing). They turn on by themselves if the lowering and the
//! cost model learn to bootstrap only the kept high bits.

use super::{data, rule, table, tabulable, var, Rule};
use crate::passes::range::{bits_of, round_value, Interval};
use crate::rewrite::analysis::VeilEGraph;
use crate::rewrite::cost::{pbs_bits, CostModel, Fact};
use crate::rewrite::lang::VeilLang;
use crate::rewrite::table::FnTable;
use crate::rewrite::RewriteConfig;
use egg::Id;
use veil_ir::{IntType, Op, TableId};

/// The range of `round(k, x)` for `x` in `r` (rounding is monotone).
fn rounded_range(r: Interval, k: u8) -> Interval {
    (round_value(r.0, k), round_value(r.1, k))
}

/// Whether `tlu(t', round(k, x))` is cheaper than `tlu(t, x)` for `x` of type `int` and range
/// `r`, with both forms priced by `model` exactly as the lowering executes them.
pub fn worth_rounding(model: &CostModel, int: IntType, r: Interval, k: u8) -> bool {
    let Some(rint) = IntType::fitting(rounded_range(r, k).0, rounded_range(r, k).1) else {
        return false;
    };
    let shape: &[usize] = &[];
    let fact = |int| Fact {
        encrypted: true,
        int,
        shape,
    };
    let tlu = Op::Tlu { table: TableId(0) };
    let direct = model.op_cost(&tlu, &[fact(int)], &fact(int)).cost;
    let rounded = model
        .op_cost(&Op::Round { lsbs: k }, &[fact(int)], &fact(rint))
        .plus(model.op_cost(&tlu, &[fact(rint)], &fact(rint)));
    rounded.cost < direct
}

/// Adds `(tlu T' (round k x))` with `T'(u) = t(clamp(u, range(x)))`.
fn round_then_tlu(eg: &mut VeilEGraph, x: Id, k: u8, t: &FnTable, r: Interval) -> Option<Id> {
    let kk = eg.add(VeilLang::Num(k as i64));
    let rounded = eg.add(VeilLang::Round([kk, x]));
    let rr = eg[rounded].data.as_ref()?.range;
    let t2 = FnTable::tabulate(rr, |u| t.eval(u.clamp(r.0, r.1)))?;
    let tr = eg.analysis.add_table(t2);
    let tl = eg.add(VeilLang::Table(tr));
    Some(eg.add(VeilLang::Tlu([tl, rounded])))
}

/// The rounding rules.
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    let (t, x) = (var("?t"), var("?x"));
    let c1 = cfg.clone();
    let model = cfg.cost_model();
    let mut rules = vec![
        // tlu(t, x) -> tlu(t', round(k, x)) when t(v) == t(round_k(v)) on range(x) and the
        // pair is cheaper
        rule("round-before-tlu-exact", "(tlu ?t ?x)", move |eg, _, m| {
            let (tab, d) = (table(eg, m, t)?, data(eg, m, x)?);
            if !d.encrypted || !tabulable(d.range, &c1) {
                return None;
            }
            let bits = d.int.bits.min(bits_of(d.range) as u8);
            let r = d.range;
            // only drop bits beyond those already known to be zero
            let k = (d.align.saturating_add(1)..bits).rev().find(|&k| {
                worth_rounding(&model, d.int, r, k)
                    && (r.0..=r.1)
                        .all(|v| tab.eval(round_value(v, k).clamp(r.0, r.1)) == tab.eval(v))
            })?;
            round_then_tlu(eg, *m.get(x)?, k, &tab, r)
        }),
    ];
    if let Some(target) = cfg.approx_round_bits {
        let c2 = cfg.clone();
        // tlu(t, x) -> tlu(t', round(k, x)) keeping `target` high bits (approximate), when
        // the pair is cheaper
        rules.push(rule(
            "round-before-tlu-approx",
            "(tlu ?t ?x)",
            move |eg, _, m| {
                let (tab, d) = (table(eg, m, t)?, data(eg, m, x)?);
                let prec = pbs_bits(d.int) as u8;
                let k = prec.saturating_sub(target.max(1));
                let bits = d.int.bits.min(bits_of(d.range) as u8);
                if !d.encrypted
                    || !tabulable(d.range, &c2)
                    || k <= d.align
                    || k >= bits
                    || !worth_rounding(&model, d.int, d.range, k)
                {
                    return None;
                }
                round_then_tlu(eg, *m.get(x)?, k, &tab, d.range)
            },
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under the lowering's full-width `round`, rounding never makes a lookup cheaper: the
    /// round is itself a lookup at the operand's width, and the rounded value is no narrower.
    #[test]
    fn rounding_is_never_worth_it_under_full_width_lowering() {
        let model = CostModel::default();
        for bits in 2..=12u8 {
            for int in [IntType::unsigned(bits), IntType::signed(bits)] {
                for k in 1..bits {
                    let r = (int.min(), int.max());
                    assert!(!worth_rounding(&model, int, r, k), "{int} k={k}");
                    assert!(bits_of(rounded_range(r, k)) >= bits as u32);
                }
            }
        }
    }
}
