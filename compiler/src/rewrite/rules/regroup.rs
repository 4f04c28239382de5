//! Regrouping of add/sub chains: in a signed sum of a few terms, two terms that are functions
//! of the same encrypted value (two lookups of `x`, a lookup of `x` and `x` itself, a lookup of
//! `x` and a clear scalar) become one lookup, and the other terms are added back:
//! `(tlu(s, x) + y) + tlu(t, x)  ->  tlu(s + t, x) + y`.
//!
//! The rule is directional: it only fires when a merge exists, so every alternative it adds
//! has one lookup (or one levelled op) fewer than the chain it replaces, and it never adds
//! plain re-associations. It is bounded: a sum is flattened through at most
//! [`MAX_DEPTH`] nested add/sub nodes into at most [`MAX_TERMS`] terms, each class offering
//! at most [`MAX_SPLITS`] flattenings, and one match adds at most [`MAX_MERGES`] alternatives.

use super::{add_tlu, splat_value, var, Rule, ScalarFn};
use crate::rewrite::analysis::{table_of, value, VeilAnalysis, VeilEGraph};
use crate::rewrite::lang::VeilLang;
use crate::rewrite::table::FnTable;
use crate::rewrite::RewriteConfig;
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol};

/// Largest number of terms of a flattened sum.
pub const MAX_TERMS: usize = 4;
/// Deepest nesting of add/sub nodes followed below the matched node.
pub const MAX_DEPTH: usize = 2;
/// Most flattenings of one operand class.
pub const MAX_SPLITS: usize = 8;
/// Most alternatives added per match.
pub const MAX_MERGES: usize = 4;

/// A signed term of a sum: `(negated, class)`.
type Term = (bool, Id);

/// The flattenings of `id` (negated when `neg`) through its add/sub nodes, itself first.
fn flattenings(eg: &VeilEGraph, id: Id, neg: bool, depth: usize) -> Vec<Vec<Term>> {
    let id = eg.find(id);
    let mut out = vec![vec![(neg, id)]];
    if depth == 0 {
        return out;
    }
    for n in &eg[id].nodes {
        let (a, b, sub) = match n {
            VeilLang::Add([a, b]) => (*a, *b, false),
            VeilLang::Sub([a, b]) => (*a, *b, true),
            _ => continue,
        };
        for fa in flattenings(eg, a, neg, depth - 1) {
            for fb in flattenings(eg, b, neg ^ sub, depth - 1) {
                if fa.len() + fb.len() > MAX_TERMS - 1 {
                    continue;
                }
                let mut f = fa.clone();
                f.extend(fb);
                if !out.contains(&f) {
                    out.push(f);
                }
                if out.len() >= MAX_SPLITS {
                    return out;
                }
            }
        }
    }
    out
}

/// What a term is as a function of an encrypted value.
#[derive(Clone)]
enum View {
    /// `tlu(t, x)`.
    Lookup(FnTable, Id),
    /// The value itself (a function of itself).
    Itself(Id),
    /// A clear scalar constant.
    Scalar(i128),
}

fn views(eg: &VeilEGraph, id: Id) -> Vec<View> {
    let mut v = Vec::new();
    let Some(d) = value(eg, id) else {
        return v;
    };
    if d.encrypted {
        v.push(View::Itself(eg.find(id)));
        for n in &eg[id].nodes {
            if let VeilLang::Tlu([t, x]) = n {
                let tab = table_of(eg, *t).map(|t| eg.analysis.tables[t.0 as usize].clone());
                if let (Some(tab), true) = (tab, value(eg, *x).is_some_and(|d| d.encrypted)) {
                    v.push(View::Lookup(tab, eg.find(*x)));
                }
            }
        }
    } else if let Some(c) = splat_value(d) {
        v.push(View::Scalar(c));
    }
    v
}

/// The function of `x` two views compute together (with their signs), if they are functions
/// of one value and at least one is a lookup.
fn merge(a: &View, na: bool, b: &View, nb: bool) -> Option<(Id, ScalarFn)> {
    let sign = |n: bool| if n { -1i128 } else { 1 };
    let (sa, sb) = (sign(na), sign(nb));
    match (a, b) {
        (View::Lookup(s, x), View::Lookup(t, y)) if x == y => {
            let (s, t) = (s.clone(), t.clone());
            Some((*x, Box::new(move |v| sa * s.eval(v) + sb * t.eval(v))))
        }
        (View::Lookup(s, x), View::Itself(y)) if x == y => {
            let s = s.clone();
            Some((*x, Box::new(move |v| sa * s.eval(v) + sb * v)))
        }
        (View::Lookup(s, x), View::Scalar(c)) => {
            let (s, c) = (s.clone(), *c);
            Some((*x, Box::new(move |v| sa * s.eval(v) + sb * c)))
        }
        (View::Itself(_) | View::Scalar(_), View::Lookup(..)) => merge(b, nb, a, na),
        _ => None,
    }
}

/// The applier: flattens the matched sum, merges one pair of terms, adds the rest back.
struct Regroup {
    cfg: RewriteConfig,
    sub: bool,
}

impl Regroup {
    /// Candidate terms lists of the matched node.
    fn sums(&self, eg: &VeilEGraph, a: Id, b: Id) -> Vec<Vec<Term>> {
        let mut out = Vec::new();
        for fa in flattenings(eg, a, false, MAX_DEPTH) {
            for fb in flattenings(eg, b, self.sub, MAX_DEPTH) {
                if fa.len() + fb.len() >= 3 && fa.len() + fb.len() <= MAX_TERMS {
                    let mut f = fa.clone();
                    f.extend(fb);
                    out.push(f);
                }
            }
        }
        out
    }
}

impl Applier<VeilLang, VeilAnalysis> for Regroup {
    fn apply_one(
        &self,
        eg: &mut VeilEGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<VeilLang>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let (Some(a), Some(b)) = (subst.get(var("?a")), subst.get(var("?b"))) else {
            return vec![];
        };
        let shape = match value(eg, eclass) {
            Some(d) if d.encrypted => d.shape.clone(),
            _ => return vec![],
        };
        let mut merges = 0;
        let mut changed = false;
        for terms in self.sums(eg, *a, *b) {
            for i in 0..terms.len() {
                for j in i + 1..terms.len() {
                    if merges >= MAX_MERGES {
                        return if changed { vec![eclass] } else { vec![] };
                    }
                    let (ti, tj) = (terms[i], terms[j]);
                    let vi = views(eg, ti.1);
                    let vj = views(eg, tj.1);
                    let found = vi
                        .iter()
                        .find_map(|x| vj.iter().find_map(|y| merge(x, ti.0, y, tj.0)));
                    let Some((x, f)) = found else { continue };
                    // the merged pair and the remaining terms, with signs, as the dedup key
                    let mut key: Vec<Id> = vec![eg.find(eclass), x, ti.1, tj.1];
                    key.extend(
                        terms
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k != i && *k != j)
                            .map(|(_, t)| t.1),
                    );
                    let signs: String = terms.iter().map(|t| if t.0 { '-' } else { '+' }).collect();
                    let tag = Symbol::from(format!("{rule}{signs}{i}{j}"));
                    if !eg.analysis.applied.insert((tag, key)) {
                        continue;
                    }
                    let Some(xd) = value(eg, x) else { continue };
                    let xshape = xd.shape.clone();
                    let Some(mut acc) = add_tlu(eg, &self.cfg, x, &xshape, f) else {
                        continue;
                    };
                    merges += 1;
                    for (k, (neg, id)) in terms.iter().enumerate() {
                        if k != i && k != j {
                            acc = eg.add(if *neg {
                                VeilLang::Sub([acc, *id])
                            } else {
                                VeilLang::Add([acc, *id])
                            });
                        }
                    }
                    // the regrouped sum must keep the class's shape (broadcasts included)
                    if value(eg, acc).map(|d| d.shape == shape) == Some(true) {
                        changed |= eg.union(eclass, acc);
                    }
                }
            }
        }
        if changed {
            vec![eclass]
        } else {
            vec![]
        }
    }
}

fn regroup(name: &str, pattern: &str, cfg: &RewriteConfig, sub: bool) -> Rule {
    let p: Pattern<VeilLang> = pattern
        .parse()
        .unwrap_or_else(|e| panic!("rule {name}: bad pattern {pattern}: {e}"));
    Rewrite::new(
        name,
        p,
        Regroup {
            cfg: cfg.clone(),
            sub,
        },
    )
    .unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// The regrouping rules (one per root op).
pub fn rules(cfg: &RewriteConfig) -> Vec<Rule> {
    vec![
        regroup("regroup-add", "(add ?a ?b)", cfg, false),
        regroup("regroup-sub", "(sub ?a ?b)", cfg, true),
    ]
}
