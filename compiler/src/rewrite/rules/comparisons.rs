//! Comparisons, min/max, relu and abs as one lookup: of the operand, or of the difference of
//! two encrypted operands when its range is small enough to tabulate; the max of a pair whose
//! min is computed anyway (or the converse) from that min, and a comparison whose complement is
//! computed anyway from that complement, by levelled ops.

use super::{add_tlu, data, rule, shape_of, splat, tabulable, univariate, var, Rule, ScalarFn};
use crate::rewrite::analysis::pred_of;
use crate::rewrite::lang::{Pred, VeilLang};
use crate::rewrite::RewriteConfig;
use egg::{Id, Subst};
use veil_ir::{CmpOp, Constant};

/// The predicate that holds exactly when `p` does not.
fn complement(p: CmpOp) -> CmpOp {
    match p {
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Ge => CmpOp::Lt,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
    }
}

/// The predicate `q` with `a p b == b q a`.
fn swapped(p: CmpOp) -> CmpOp {
    match p {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Ge => CmpOp::Le,
        CmpOp::Eq | CmpOp::Ne => p,
    }
}

fn both_encrypted_diff(
    eg: &crate::rewrite::analysis::VeilEGraph,
    m: &Subst,
    cfg: &RewriteConfig,
) -> Option<(Id, Id)> {
    let (da, db) = (data(eg, m, var("?a"))?, data(eg, m, var("?b"))?);
    let diff = da.range.checked_sub(db.range)?;
    (da.encrypted && db.encrypted && tabulable(diff, cfg))
        .then_some((*m.get(var("?a"))?, *m.get(var("?b"))?))
}

/// The comparison rules.
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    let (p, a, b) = (var("?p"), var("?a"), var("?b"));
    let (c1, c2, c3) = (cfg.clone(), cfg.clone(), cfg.clone());
    vec![
        // relu(x) -> tlu(relu, x)
        univariate("relu-as-tlu", "(relu ?x)", cfg, |_, _, _| {
            Some(Box::new(|v: i128| v.max(0)) as ScalarFn)
        }),
        // abs(x) -> tlu(abs, x)
        univariate("abs-as-tlu", "(abs ?x)", cfg, |_, _, _| {
            Some(Box::new(|v: i128| v.abs()) as ScalarFn)
        }),
        // cmp(p, x, c) -> tlu(v p c, x)
        univariate(
            "cmp-const-as-tlu",
            "(cmp ?p ?x ?c)",
            cfg,
            move |eg, m, sh| {
                let (p, c) = (pred_of(eg, *m.get(p)?)?, splat(eg, m, var("?c"), sh)?);
                Some(Box::new(move |v: i128| p.eval(v, c) as i128) as ScalarFn)
            },
        ),
        // cmp(p, c, x) -> tlu(c p v, x)
        univariate(
            "const-cmp-as-tlu",
            "(cmp ?p ?c ?x)",
            cfg,
            move |eg, m, sh| {
                let (p, c) = (pred_of(eg, *m.get(p)?)?, splat(eg, m, var("?c"), sh)?);
                Some(Box::new(move |v: i128| p.eval(c, v) as i128) as ScalarFn)
            },
        ),
        // min(x, c) / min(c, x) -> tlu(min c, x); max likewise
        univariate("min-const-as-tlu", "(min ?x ?c)", cfg, move |eg, m, sh| {
            let c = splat(eg, m, var("?c"), sh)?;
            Some(Box::new(move |v: i128| v.min(c)) as ScalarFn)
        }),
        univariate("const-min-as-tlu", "(min ?c ?x)", cfg, move |eg, m, sh| {
            let c = splat(eg, m, var("?c"), sh)?;
            Some(Box::new(move |v: i128| v.min(c)) as ScalarFn)
        }),
        univariate("max-const-as-tlu", "(max ?x ?c)", cfg, move |eg, m, sh| {
            let c = splat(eg, m, var("?c"), sh)?;
            Some(Box::new(move |v: i128| v.max(c)) as ScalarFn)
        }),
        univariate("const-max-as-tlu", "(max ?c ?x)", cfg, move |eg, m, sh| {
            let c = splat(eg, m, var("?c"), sh)?;
            Some(Box::new(move |v: i128| v.max(c)) as ScalarFn)
        }),
        // cmp(p, a, b) (both encrypted) -> tlu((d p 0), a - b)
        rule(
            "cmp-as-tlu-of-diff",
            "(cmp ?p ?a ?b)",
            move |eg, class, m| {
                let (x, y) = both_encrypted_diff(eg, m, &c1)?;
                let p = pred_of(eg, *m.get(p)?)?;
                let shape = shape_of(eg, class);
                let d = eg.add(VeilLang::Sub([x, y]));
                add_tlu(eg, &c1, d, &shape, move |v| p.eval(v, 0) as i128)
            },
        ),
        // max(a, b) (both encrypted) -> b + tlu(relu, a - b)
        rule("max-as-relu-of-diff", "(max ?a ?b)", move |eg, class, m| {
            let (x, y) = both_encrypted_diff(eg, m, &c2)?;
            let shape = shape_of(eg, class);
            let d = eg.add(VeilLang::Sub([x, y]));
            let r = add_tlu(eg, &c2, d, &shape, |v| v.max(0))?;
            Some(eg.add(VeilLang::Add([y, r])))
        }),
        // max(a, b) -> (a + b) - min(a, b) when the program computes min(a, b) (or min(b, a))
        // anyway: a compare-exchange bootstraps once
        rule("max-from-min", "(max ?a ?b)", move |eg, _, m| {
            let (x, y) = (*m.get(a)?, *m.get(b)?);
            let other = eg
                .lookup(VeilLang::Min([x, y]))
                .or_else(|| eg.lookup(VeilLang::Min([y, x])))?;
            let s = eg.add(VeilLang::Add([x, y]));
            Some(eg.add(VeilLang::Sub([s, other])))
        }),
        // min(a, b) -> (a + b) - max(a, b) when the program computes max(a, b) (or max(b, a))
        rule("min-from-max", "(min ?a ?b)", move |eg, _, m| {
            let (x, y) = (*m.get(a)?, *m.get(b)?);
            let other = eg
                .lookup(VeilLang::Max([x, y]))
                .or_else(|| eg.lookup(VeilLang::Max([y, x])))?;
            let s = eg.add(VeilLang::Add([x, y]));
            Some(eg.add(VeilLang::Sub([s, other])))
        }),
        // cmp(p, a, b) -> 1 - cmp(!p, a, b) when the program computes the complement (in
        // either operand order) anyway: a predicate and its negation bootstrap once
        rule("cmp-from-complement", "(cmp ?p ?a ?b)", move |eg, _, m| {
            let (x, y) = (*m.get(a)?, *m.get(b)?);
            let q = complement(pred_of(eg, *m.get(p)?)?);
            let find = |eg: &crate::rewrite::analysis::VeilEGraph, q: CmpOp, x: Id, y: Id| {
                let leaf = eg.lookup(VeilLang::Pred(Pred(q)))?;
                eg.lookup(VeilLang::Cmp([leaf, x, y]))
            };
            let other = find(eg, q, x, y).or_else(|| find(eg, swapped(q), y, x))?;
            let c = eg.analysis.add_const(Constant {
                shape: vec![],
                values: vec![1],
            });
            let one = eg.add(VeilLang::Const(c));
            Some(eg.add(VeilLang::Sub([one, other])))
        }),
        // min(a, b) (both encrypted) -> a - tlu(relu, a - b)
        rule("min-as-relu-of-diff", "(min ?a ?b)", move |eg, class, m| {
            let (x, y) = both_encrypted_diff(eg, m, &c3)?;
            let shape = shape_of(eg, class);
            let d = eg.add(VeilLang::Sub([x, y]));
            let r = add_tlu(eg, &c3, d, &shape, |v| v.max(0))?;
            Some(eg.add(VeilLang::Sub([x, r])))
        }),
    ]
}
