//! Arithmetic: levelled combinations of lookups of one value become one lookup, squares become
//! one lookup, and encrypted products become two quarter-square lookups.

use super::{
    add_tlu, data, rule, shape_of, splat, table, tabulable, univariate, var, Rule, ScalarFn,
};
use crate::rewrite::lang::VeilLang;
use crate::rewrite::table::Unary;
use crate::rewrite::RewriteConfig;

/// The arithmetic rules.
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    let (t, s, c) = (var("?t"), var("?s"), var("?c"));
    let cfg2 = cfg.clone();
    vec![
        // -tlu(t, x) -> tlu(-t, x)
        univariate("neg-of-tlu", "(neg (tlu ?t ?x))", cfg, move |eg, m, _| {
            let t = table(eg, m, t)?;
            Some(Box::new(move |v: i128| -t.eval(v)) as ScalarFn)
        }),
        // tlu(t, x) + c -> tlu(t + c, x)
        univariate(
            "tlu-add-const",
            "(add (tlu ?t ?x) ?c)",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v) + c) as ScalarFn)
            },
        ),
        // c + tlu(t, x) -> tlu(t + c, x)
        univariate(
            "const-add-tlu",
            "(add ?c (tlu ?t ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v) + c) as ScalarFn)
            },
        ),
        // tlu(t, x) - c -> tlu(t - c, x)
        univariate(
            "tlu-sub-const",
            "(sub (tlu ?t ?x) ?c)",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v) - c) as ScalarFn)
            },
        ),
        // c - tlu(t, x) -> tlu(c - t, x)
        univariate(
            "const-sub-tlu",
            "(sub ?c (tlu ?t ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| c - t.eval(v)) as ScalarFn)
            },
        ),
        // tlu(t, x) * c -> tlu(t * c, x)
        univariate(
            "tlu-mul-const",
            "(mul (tlu ?t ?x) ?c)",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v) * c) as ScalarFn)
            },
        ),
        // c * tlu(t, x) -> tlu(t * c, x)
        univariate(
            "const-mul-tlu",
            "(mul ?c (tlu ?t ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v) * c) as ScalarFn)
            },
        ),
        // tlu(s, x) + tlu(t, x) -> tlu(s + t, x)
        univariate(
            "add-tlus",
            "(add (tlu ?s ?x) (tlu ?t ?x))",
            cfg,
            move |eg, m, _| {
                let (s, t) = (table(eg, m, s)?, table(eg, m, t)?);
                Some(Box::new(move |v: i128| s.eval(v) + t.eval(v)) as ScalarFn)
            },
        ),
        // tlu(s, x) - tlu(t, x) -> tlu(s - t, x)
        univariate(
            "sub-tlus",
            "(sub (tlu ?s ?x) (tlu ?t ?x))",
            cfg,
            move |eg, m, _| {
                let (s, t) = (table(eg, m, s)?, table(eg, m, t)?);
                Some(Box::new(move |v: i128| s.eval(v) - t.eval(v)) as ScalarFn)
            },
        ),
        // x + tlu(t, x) -> tlu(id + t, x)
        univariate(
            "add-self-tlu",
            "(add ?x (tlu ?t ?x))",
            cfg,
            move |eg, m, _| {
                let t = table(eg, m, t)?;
                Some(Box::new(move |v: i128| v + t.eval(v)) as ScalarFn)
            },
        ),
        // tlu(t, x) + x -> tlu(t + id, x)
        univariate(
            "add-tlu-self",
            "(add (tlu ?t ?x) ?x)",
            cfg,
            move |eg, m, _| {
                let t = table(eg, m, t)?;
                Some(Box::new(move |v: i128| t.eval(v) + v) as ScalarFn)
            },
        ),
        // x - tlu(t, x) -> tlu(id - t, x)
        univariate(
            "sub-self-tlu",
            "(sub ?x (tlu ?t ?x))",
            cfg,
            move |eg, m, _| {
                let t = table(eg, m, t)?;
                Some(Box::new(move |v: i128| v - t.eval(v)) as ScalarFn)
            },
        ),
        // tlu(t, x) - x -> tlu(t - id, x)
        univariate(
            "sub-tlu-self",
            "(sub (tlu ?t ?x) ?x)",
            cfg,
            move |eg, m, _| {
                let t = table(eg, m, t)?;
                Some(Box::new(move |v: i128| t.eval(v) - v) as ScalarFn)
            },
        ),
        // x * x -> tlu(square, x)
        univariate("mul-self-as-square", "(mul ?x ?x)", cfg, move |_, _, _| {
            Some(Box::new(|v: i128| Unary::Square.eval(v)) as ScalarFn)
        }),
        // a * b (both encrypted) -> tlu(q, a + b) - tlu(q, a - b), q(v) = floor(v^2 / 4)
        rule(
            "mul-as-quarter-squares",
            "(mul ?a ?b)",
            move |eg, class, m| {
                let (a, b) = (*m.get(var("?a"))?, *m.get(var("?b"))?);
                let (da, db) = (data(eg, m, var("?a"))?, data(eg, m, var("?b"))?);
                if !(da.encrypted && db.encrypted) || eg.find(a) == eg.find(b) {
                    return None;
                }
                let sum = (da.range.0 + db.range.0, da.range.1 + db.range.1);
                let dif = (da.range.0 - db.range.1, da.range.1 - db.range.0);
                if !tabulable(sum, &cfg2) || !tabulable(dif, &cfg2) {
                    return None;
                }
                let shape = shape_of(eg, class);
                let s = eg.add(VeilLang::Add([a, b]));
                let d = eg.add(VeilLang::Sub([a, b]));
                let q = |v| Unary::QuarterSquare.eval(v);
                let ts = add_tlu(eg, &cfg2, s, &shape, q)?;
                let td = add_tlu(eg, &cfg2, d, &shape, q)?;
                Some(eg.add(VeilLang::Sub([ts, td])))
            },
        ),
    ]
}
