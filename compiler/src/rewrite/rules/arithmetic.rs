//! Arithmetic: levelled combinations of lookups of one value become one lookup, squares become
//! one lookup, products of two functions of one value become one lookup, and other encrypted
//! products become two quarter-square lookups or one lookup of the two operands packed into
//! one value.

use super::{
    add_tlu, data, rule, shape_of, splat, splat_value, table, tabulable, univariate, var, Rule,
    ScalarFn,
};
use crate::rewrite::analysis::{table_of, value, VeilEGraph};
use crate::rewrite::lang::VeilLang;
use crate::rewrite::table::Unary;
use crate::rewrite::RewriteConfig;
use egg::Id;
use std::rc::Rc;
use veil_ir::Constant;
use veil_ir::Interval;

/// A function of one encrypted value, shareable between combinations.
type SharedFn = Rc<dyn Fn(i128) -> i128>;

/// Most `(value, function)` views of one class.
const MAX_VIEWS: usize = 8;

/// The encrypted values `x` that class `id` is a function of, with that function: `id` itself,
/// `tlu(t, x)`, and (through at most `depth` levels) `f + c`, `c + f`, `f - c`, `c - f`,
/// `f * c`, `c * f`, `-f` of such a function `f` with a clear scalar `c` (shape-preserving).
fn functions_of(eg: &VeilEGraph, id: Id, depth: usize) -> Vec<(Id, SharedFn)> {
    let id = eg.find(id);
    let mut out: Vec<(Id, SharedFn)> = Vec::new();
    let Some(d) = value(eg, id) else {
        return out;
    };
    if !d.encrypted {
        return out;
    }
    let shape = d.shape.clone();
    out.push((id, Rc::new(|v| v)));
    let scalar = |c: Id| value(eg, c).and_then(splat_value);
    let same_shape = |p: Id| value(eg, p).is_some_and(|d| d.encrypted && d.shape == shape);
    for n in &eg[id].nodes {
        if out.len() >= MAX_VIEWS {
            break;
        }
        // (inner, outer function of the inner one's value)
        let step: Option<(Id, SharedFn)> = match *n {
            VeilLang::Tlu([t, x]) if same_shape(x) => {
                let tab = table_of(eg, t).map(|t| eg.analysis.tables[t.0 as usize].clone());
                if let Some(tab) = tab {
                    out.push((eg.find(x), Rc::new(move |v| tab.eval(v))));
                }
                None
            }
            _ if depth == 0 => None,
            VeilLang::Add([p, q]) => match (scalar(p), scalar(q)) {
                (None, Some(c)) if same_shape(p) => Some((p, Rc::new(move |v| v + c))),
                (Some(c), None) if same_shape(q) => Some((q, Rc::new(move |v| c + v))),
                _ => None,
            },
            VeilLang::Sub([p, q]) => match (scalar(p), scalar(q)) {
                (None, Some(c)) if same_shape(p) => Some((p, Rc::new(move |v| v - c))),
                (Some(c), None) if same_shape(q) => Some((q, Rc::new(move |v| c - v))),
                _ => None,
            },
            VeilLang::Mul([p, q]) => match (scalar(p), scalar(q)) {
                (None, Some(c)) if same_shape(p) => Some((p, Rc::new(move |v| v * c))),
                (Some(c), None) if same_shape(q) => Some((q, Rc::new(move |v| c * v))),
                _ => None,
            },
            VeilLang::Neg([p]) if same_shape(p) => Some((p, Rc::new(|v| -v))),
            _ => None,
        };
        if let Some((inner, outer)) = step {
            for (x, f) in functions_of(eg, inner, depth - 1) {
                let outer = outer.clone();
                out.push((x, Rc::new(move |v| outer(f(v)))));
                if out.len() >= MAX_VIEWS {
                    break;
                }
            }
        }
    }
    out
}

/// The arithmetic rules.
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    let (t, s, c) = (var("?t"), var("?s"), var("?c"));
    let (cfg2, cfg3, cfg4) = (cfg.clone(), cfg.clone(), cfg.clone());
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
        // f(x) * g(x) (both encrypted, functions of one x) -> tlu(f * g, x)
        rule("mul-of-one-value", "(mul ?a ?b)", move |eg, class, m| {
            let (a, b) = (*m.get(var("?a"))?, *m.get(var("?b"))?);
            if eg.find(a) == eg.find(b) {
                return None;
            }
            let shape = shape_of(eg, class);
            let (fa, fb) = (functions_of(eg, a, 2), functions_of(eg, b, 2));
            let (x, f, g) = fa.iter().find_map(|(x, f)| {
                let (_, g) = fb.iter().find(|(y, _)| y == x)?;
                Some((*x, f.clone(), g.clone()))
            })?;
            add_tlu(eg, &cfg3, x, &shape, move |v| f(v) * g(v))
        }),
        // a * b (both encrypted) -> tlu(p, a * K + b - o) with K the span of b's range and o
        // the offset making the packed value start at 0; only where the packed value is at
        // most one bit wider than the quarter squares' operands (else two lookups are cheaper)
        rule(
            "mul-as-packed-lookup",
            "(mul ?a ?b)",
            move |eg, class, m| {
                let (a, b) = (*m.get(var("?a"))?, *m.get(var("?b"))?);
                let (da, db) = (data(eg, m, var("?a"))?, data(eg, m, var("?b"))?);
                let shape = shape_of(eg, class);
                if !(da.encrypted && db.encrypted)
                    || eg.find(a) == eg.find(b)
                    || da.shape != shape
                    || db.shape != shape
                {
                    return None;
                }
                let (ra, rb) = (da.range, db.range);
                let k = rb.hi - rb.lo + 1;
                let n = (ra.hi - ra.lo + 1).checked_mul(k)?;
                let sum = ra.checked_add(rb)?;
                let dif = ra.checked_sub(rb)?;
                let packed = Interval::new(0, n - 1);
                if !tabulable(packed, &cfg4) || packed.bits() > sum.bits().max(dif.bits()) + 1 {
                    return None;
                }
                let scalar = |eg: &mut VeilEGraph, v: i128| {
                    let c = eg.analysis.add_const(Constant {
                        shape: vec![],
                        values: vec![i64::try_from(v).ok()?],
                    });
                    Some(eg.add(VeilLang::Const(c)))
                };
                let kc = scalar(eg, k)?;
                let hi = eg.add(VeilLang::Mul([a, kc]));
                let mut packed = eg.add(VeilLang::Add([hi, b]));
                let offset = -(ra.lo * k + rb.lo);
                if offset != 0 {
                    let oc = scalar(eg, offset)?;
                    packed = eg.add(VeilLang::Add([packed, oc]));
                }
                add_tlu(eg, &cfg4, packed, &shape, move |u| {
                    let u = u.clamp(0, n - 1);
                    (ra.lo + u / k) * (rb.lo + u % k)
                })
            },
        ),
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
                let sum = da.range.checked_add(db.range)?;
                let dif = da.range.checked_sub(db.range)?;
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
