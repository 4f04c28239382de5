//! Rewrite rules, grouped by domain. Every rule is *directional*: it adds to a class an
//! alternative that can only help extraction (fewer or lower-precision bootstraps, or a form
//! that enables such a rule); there is no blanket commutativity (rules list the operand orders
//! they accept).
//!
//! Rules are egg [`Pattern`] searchers with a computed right-hand side (an [`FnApplier`]):
//! tables are built by tabulating the composed function on the operand's range, so a rule
//! applies only to encrypted operands whose range has at most `max_table_bits` bits.
//!
//! - [`fusion`]: univariate chains into one table lookup.
//! - [`arithmetic`]: linear combinations of lookups of one value, products of two functions
//!   of one value, quarter-square products and packed-operand products.
//! - [`comparisons`]: comparisons, min/max, relu/abs as lookups of a difference; a max from
//!   the min of the same pair (and the converse), a comparison from its complement.
//! - [`regroup`]: add/sub chains whose terms include two functions of one value.
//! - [`rounding`]: rounding low bits away before a lookup (only where the cost model says it
//!   pays).

pub mod arithmetic;
pub mod comparisons;
pub mod fusion;
pub mod regroup;
pub mod rounding;

use super::analysis::{table_of, value, ValueData, VeilAnalysis, VeilEGraph};
use super::lang::VeilLang;
use super::table::FnTable;
use super::RewriteConfig;
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};
use veil_ir::Interval;

/// A rewrite rule of the engine.
pub type Rule = Rewrite<VeilLang, VeilAnalysis>;

type ApplyFn = dyn Fn(&mut VeilEGraph, Id, &Subst) -> Option<Id> + Send + Sync;

/// An applier computing the new term in Rust; `f` returns the class to union with the match.
pub struct FnApplier {
    vars: Vec<Var>,
    f: Box<ApplyFn>,
}

impl Applier<VeilLang, VeilAnalysis> for FnApplier {
    fn apply_one(
        &self,
        eg: &mut VeilEGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<VeilLang>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let mut key: Vec<Id> = vec![eg.find(eclass)];
        key.extend(
            self.vars
                .iter()
                .filter_map(|v| subst.get(*v))
                .map(|i| eg.find(*i)),
        );
        if !eg.analysis.applied.insert((rule, key)) {
            return vec![];
        }
        match (self.f)(eg, eclass, subst) {
            Some(new) if eg.union(eclass, new) => vec![eclass],
            _ => vec![],
        }
    }
}

/// A rule named `name` matching `pattern`, whose right-hand side `f` computes.
///
/// # Panics
/// If `pattern` does not parse: rule patterns are fixed strings checked by the tests.
pub fn rule(
    name: &str,
    pattern: &str,
    f: impl Fn(&mut VeilEGraph, Id, &Subst) -> Option<Id> + Send + Sync + 'static,
) -> Rule {
    let p: Pattern<VeilLang> = pattern
        .parse()
        .unwrap_or_else(|e| panic!("rule {name}: bad pattern {pattern}: {e}"));
    let vars = p.vars();
    Rewrite::new(
        name,
        p,
        FnApplier {
            vars,
            f: Box::new(f),
        },
    )
    .unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// Parses a pattern variable (`"?x"`).
pub fn var(s: &str) -> Var {
    s.parse()
        .unwrap_or_else(|e| panic!("bad variable {s}: {e}"))
}

/// Facts of the value bound to `v`.
pub fn data(eg: &VeilEGraph, s: &Subst, v: Var) -> Option<ValueData> {
    value(eg, *s.get(v)?).cloned()
}

/// The table bound to `v` (a table leaf).
pub fn table(eg: &VeilEGraph, s: &Subst, v: Var) -> Option<FnTable> {
    let t = table_of(eg, *s.get(v)?)?;
    eg.analysis.tables.get(t.0 as usize).cloned()
}

/// The splat value of the clear constant bound to `v`, if the constant does not broadcast the
/// other operand (`shape` is the shape the result must keep).
pub fn splat(eg: &VeilEGraph, s: &Subst, v: Var, shape: &[usize]) -> Option<i128> {
    let d = data(eg, s, v)?;
    if d.encrypted || d.shape.len() > shape.len() || d.shape.iter().product::<usize>() > 1 {
        return None;
    }
    d.splat.map(|c| c as i128)
}

/// The value of a clear constant with one element (a scalar that broadcasts anywhere its rank
/// allows).
pub fn splat_value(d: &ValueData) -> Option<i128> {
    (!d.encrypted && d.konst.is_some() && d.shape.iter().product::<usize>() == 1)
        .then_some(d.splat? as i128)
}

/// Whether a range is small enough to tabulate under `cfg`.
pub fn tabulable(r: Interval, cfg: &RewriteConfig) -> bool {
    r.lo <= r.hi && r.hi - r.lo < (1i128 << cfg.max_table_bits)
}

/// Tabulates `f` on the range of the encrypted value `x` (whose shape must be `shape`, the
/// shape of the class being rewritten) and adds `(tlu table x)`.
pub fn add_tlu(
    eg: &mut VeilEGraph,
    cfg: &RewriteConfig,
    x: Id,
    shape: &[usize],
    f: impl Fn(i128) -> i128,
) -> Option<Id> {
    let d = value(eg, x)?.clone();
    if !d.encrypted || d.shape != shape || !tabulable(d.range, cfg) {
        return None;
    }
    let t = FnTable::tabulate(d.range, f)?;
    let tr = eg.analysis.add_table(t);
    let tl = eg.add(VeilLang::Table(tr));
    Some(eg.add(VeilLang::Tlu([tl, x])))
}

/// Shape of class `id` (empty for attribute leaves).
pub fn shape_of(eg: &VeilEGraph, id: Id) -> Vec<usize> {
    value(eg, id).map(|d| d.shape.clone()).unwrap_or_default()
}

/// A named group of rules: one module of `rules/`.
pub struct RuleDomain {
    /// The name `RewriteConfig::rule_domains`, `veil opt --rules` and the rule file tests use.
    pub name: &'static str,
    /// One line: what the domain's rules do.
    pub doc: &'static str,
    /// The domain's rules under a configuration.
    pub rules: fn(&RewriteConfig) -> Vec<Rule>,
}

/// Every rule domain, in the order the rules are given to egg. Adding a domain: one module
/// here, one line in this table and one directory of file tests in `compiler/tests/rules/`.
pub const DOMAINS: &[RuleDomain] = &[
    RuleDomain {
        name: "fusion",
        doc: "univariate chains into one table lookup",
        rules: fusion::rules,
    },
    RuleDomain {
        name: "arithmetic",
        doc: "linear combinations and products of lookups of one value, quarter squares, packed products",
        rules: arithmetic::rules,
    },
    RuleDomain {
        name: "comparisons",
        doc: "comparisons, min/max, relu/abs as lookups of a difference; complements",
        rules: comparisons::rules,
    },
    RuleDomain {
        name: "regroup",
        doc: "add/sub chains whose terms include two functions of one value",
        rules: regroup::rules,
    },
    RuleDomain {
        name: "rounding",
        doc: "rounding low bits away before a lookup where the cost model says it pays",
        rules: rounding::rules,
    },
];

/// Names of every rule domain, in order.
pub fn domain_names() -> Vec<&'static str> {
    DOMAINS.iter().map(|d| d.name).collect()
}

/// All rules enabled by `cfg`, whatever `cfg.rule_domains` says.
pub fn all_rules(cfg: &RewriteConfig) -> Vec<Rule> {
    DOMAINS.iter().flat_map(|d| (d.rules)(cfg)).collect()
}

/// The rules of the domains `cfg.rule_domains` names (every domain when it is empty), in
/// [`DOMAINS`] order; an unknown name is an error listing the domains.
pub fn rules_of(cfg: &RewriteConfig) -> Result<Vec<Rule>, super::RewriteError> {
    if let Some(bad) = cfg
        .rule_domains
        .iter()
        .find(|n| !DOMAINS.iter().any(|d| d.name == n.as_str()))
    {
        return Err(super::RewriteError::UnknownRuleDomain {
            name: bad.clone(),
            available: domain_names().join(", "),
        });
    }
    Ok(DOMAINS
        .iter()
        .filter(|d| cfg.rule_domains.is_empty() || cfg.rule_domains.iter().any(|n| n == d.name))
        .flat_map(|d| (d.rules)(cfg))
        .collect())
}

/// The scalar function a univariate rule computes on its operand.
pub type ScalarFn = Box<dyn Fn(i128) -> i128>;

/// A rule whose right-hand side is one lookup `(tlu T ?x)`, with `T` the function `mk`
/// derives from the match (or `None` when the rule does not apply).
pub fn univariate(
    name: &str,
    pattern: &str,
    cfg: &RewriteConfig,
    mk: impl Fn(&VeilEGraph, &Subst, &[usize]) -> Option<ScalarFn> + Send + Sync + 'static,
) -> Rule {
    let cfg = cfg.clone();
    let x = var("?x");
    rule(name, pattern, move |eg, class, s| {
        let shape = shape_of(eg, class);
        let f = mk(eg, s, &shape)?;
        let xid = *s.get(x)?;
        add_tlu(eg, &cfg, xid, &shape, f)
    })
}
