//! Rounding before a lookup: a lookup on `x` becomes `round(k, x)` and a lookup of the
//! rounded value. Exactly when the table does not depend on the dropped low bits (always on);
//! as an approximation within the accuracy contract when `RewriteConfig::approx_round_bits` is
//! set (off by default, so that compilation is exact).
//!
//! Both rules insert the alternative only when the cost model ([`crate::rewrite::cost`]) says
//! the pair is cheaper than the single lookup ([`worth_rounding`]). The lowering rounds
//! exactly with one 1-bit bootstrap per dropped bit and the lookup of the rounded value reads
//! only its kept high bits, so the pair pays for wide lookups (a lookup's price grows about
//! 4x per bit) and not for narrow ones.

use super::{data, rule, table, tabulable, var, Rule};
use crate::rewrite::analysis::VeilEGraph;
use crate::rewrite::cost::{pbs_bits, CostModel, Fact};
use crate::rewrite::lang::VeilLang;
use crate::rewrite::table::FnTable;
use crate::rewrite::RewriteConfig;
use egg::Id;
use veil_ir::infer::round_value;
use veil_ir::Interval;
use veil_ir::{IntType, Op, TableId};

/// The range of `round(k, x)` for `x` in `r` (rounding is monotone).
fn rounded_range(r: Interval, k: u8) -> Option<Interval> {
    Some(Interval::new(round_value(r.lo, k)?, round_value(r.hi, k)?))
}

/// Whether `tlu(t', round(k, x))` is cheaper than `tlu(t, x)` for `x` of type `int` and range
/// `r`, with both forms priced by `model` exactly as the lowering executes them.
pub fn worth_rounding(model: &CostModel, int: IntType, r: Interval, k: u8) -> bool {
    let Some(rint) = rounded_range(r, k).and_then(Interval::int_type) else {
        return false;
    };
    let shape: &[usize] = &[];
    let fact = |int, align| Fact {
        encrypted: true,
        int,
        shape,
        align,
    };
    let tlu = Op::Tlu { table: TableId(0) };
    let direct = model.op_cost(&tlu, &[fact(int, 0)], &fact(int, 0)).cost;
    let rounded = model
        .op_cost(
            &Op::Round {
                lsbs: k,
                approx: false,
                rescale: false,
            },
            &[fact(int, 0)],
            &fact(rint, k),
        )
        .plus(model.op_cost(&tlu, &[fact(rint, k)], &fact(rint, 0)));
    // with a 2x margin: the bit extractions land in their operand's partition, whose other
    // bootstraps may get dearer (a cross-partition effect this local price cannot see)
    2.0 * rounded.cost < direct
}

/// Adds `(tlu T' (round k x))` with `T'(u) = t(clamp(u, range(x)))`.
fn round_then_tlu(eg: &mut VeilEGraph, x: Id, k: u8, t: &FnTable, r: Interval) -> Option<Id> {
    let kk = eg.add(VeilLang::Num(k as i64));
    let rounded = eg.add(VeilLang::Round([kk, x]));
    let rr = eg[rounded].data.as_ref()?.range;
    let t2 = FnTable::tabulate(rr, |u| t.eval(u.clamp(r.lo, r.hi)))?;
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
            let bits = d.int.bits.min(d.range.bits() as u8);
            let r = d.range;
            // only drop bits beyond those already known to be zero
            let k = (d.align.saturating_add(1)..bits).rev().find(|&k| {
                worth_rounding(&model, d.int, r, k)
                    && (r.lo..=r.hi).all(|v| {
                        round_value(v, k)
                            .is_some_and(|u| tab.eval(u.clamp(r.lo, r.hi)) == tab.eval(v))
                    })
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
                let bits = d.int.bits.min(d.range.bits() as u8);
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

    /// Under exact rounding by bit extraction, dropping bits pays for wide lookups (the
    /// lookup's price grows ~4x a bit, each extraction is a 1-bit bootstrap) and not for
    /// narrow ones.
    #[test]
    fn rounding_pays_for_wide_lookups_only() {
        let model = CostModel::default();
        let worth = |bits: u8, k: u8| {
            let int = IntType::unsigned(bits);
            worth_rounding(&model, int, Interval::of_type(int), k)
        };
        assert!(worth(10, 4), "u10 -> 6 bits");
        assert!(worth(12, 6), "u12 -> 6 bits");
        assert!(!worth(3, 1), "u3 -> 2 bits");
        assert!(!worth(2, 1), "u2 -> 1 bit");
    }
}
