//! Fusion: a chain of univariate ops on one encrypted value becomes one table lookup. A lookup
//! absorbs the univariate op that produces its operand (levelled ones included), and PBS ops
//! are lifted to lookups so that chains of them compose.

use super::{splat, table, univariate, var, Rule, ScalarFn};
use crate::rewrite::analysis::num_of;
use crate::rewrite::RewriteConfig;
use veil_ir::infer::round_value;

/// The fusion rules.
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    let (t, s, c, k) = (var("?t"), var("?s"), var("?c"), var("?k"));
    vec![
        // tlu(t, tlu(s, x)) -> tlu(t . s, x)
        univariate(
            "tlu-of-tlu",
            "(tlu ?t (tlu ?s ?x))",
            cfg,
            move |eg, m, _| {
                let (t, s) = (table(eg, m, t)?, table(eg, m, s)?);
                Some(Box::new(move |v: i128| t.eval(s.eval(v))) as ScalarFn)
            },
        ),
        // tlu(t, -x) -> tlu(t . neg, x)
        univariate("tlu-of-neg", "(tlu ?t (neg ?x))", cfg, move |eg, m, _| {
            let t = table(eg, m, t)?;
            Some(Box::new(move |v: i128| t.eval(-v)) as ScalarFn)
        }),
        // tlu(t, x + c) -> tlu(t . (+c), x)
        univariate(
            "tlu-of-add-const",
            "(tlu ?t (add ?x ?c))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v + c)) as ScalarFn)
            },
        ),
        // tlu(t, c + x) -> tlu(t . (+c), x)
        univariate(
            "tlu-of-const-add",
            "(tlu ?t (add ?c ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v + c)) as ScalarFn)
            },
        ),
        // tlu(t, x - c) -> tlu(t . (-c), x)
        univariate(
            "tlu-of-sub-const",
            "(tlu ?t (sub ?x ?c))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v - c)) as ScalarFn)
            },
        ),
        // tlu(t, c - x) -> tlu(t . (c-), x)
        univariate(
            "tlu-of-const-sub",
            "(tlu ?t (sub ?c ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(c - v)) as ScalarFn)
            },
        ),
        // tlu(t, x * c) -> tlu(t . (*c), x)
        univariate(
            "tlu-of-mul-const",
            "(tlu ?t (mul ?x ?c))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v * c)) as ScalarFn)
            },
        ),
        // tlu(t, c * x) -> tlu(t . (*c), x)
        univariate(
            "tlu-of-const-mul",
            "(tlu ?t (mul ?c ?x))",
            cfg,
            move |eg, m, sh| {
                let (t, c) = (table(eg, m, t)?, splat(eg, m, c, sh)?);
                Some(Box::new(move |v: i128| t.eval(v * c)) as ScalarFn)
            },
        ),
        // tlu(t, round(k, x)) -> tlu(t . round_k, x)
        univariate(
            "tlu-of-round",
            "(tlu ?t (round ?k ?x))",
            cfg,
            move |eg, m, _| {
                let t = table(eg, m, t)?;
                let k = u8::try_from(num_of(eg, *m.get(k)?)?).ok()?;
                // `None` only past `i128` (rounding attributes are below 64 bits)
                Some(Box::new(move |v: i128| t.eval(round_value(v, k).unwrap_or(v))) as ScalarFn)
            },
        ),
        // round(k, x) -> tlu(round_k, x) (the same full-width lookup once lowered; lets a
        // following lookup absorb it)
        univariate("round-as-tlu", "(round ?k ?x)", cfg, move |eg, m, _| {
            let k = u8::try_from(num_of(eg, *m.get(k)?)?).ok()?;
            Some(Box::new(move |v: i128| round_value(v, k).unwrap_or(v)) as ScalarFn)
        }),
        // clip(lo, hi, x) -> tlu(clip, x)
        univariate("clip-as-tlu", "(clip ?lo ?hi ?x)", cfg, move |eg, m, _| {
            let lo = num_of(eg, *m.get(var("?lo"))?)? as i128;
            let hi = num_of(eg, *m.get(var("?hi"))?)? as i128;
            Some(Box::new(move |v: i128| v.clamp(lo, hi.max(lo))) as ScalarFn)
        }),
    ]
}
