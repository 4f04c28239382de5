//! Equality saturation on tensor-level programs with egg, minimizing the cost of bootstraps.
//!
//! [`rewrite_graph`] loads a [`Graph`] into an e-graph ([`convert`]), saturates it with the
//! rules of [`rules`] under node, iteration and table-work limits that grow with the program
//! (deterministic: no wall clock by default), extracts the cheapest program with
//! shared sub-graphs counted once ([`extract::dag_extract`], costs from [`cost`]) and emits it
//! as a graph again. The result is never more expensive than the input: if extraction does not
//! improve the cost, the input is returned unchanged.
//!
//! Module map: [`lang`] (the e-graph language), [`analysis`] (per-class facts, constant
//! folding, pools), [`table`] (tables as functions), [`cost`], [`extract`], [`convert`],
//! [`rules`].

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod extract;
pub mod lang;
pub mod rules;
pub mod table;

use serde::Serialize;
use std::time::{Duration, Instant};
use veil_ir::infer::ValueRanges;
use veil_ir::Graph;

/// The automatic node limit of saturation is at least this (see [`RewriteConfig::node_limit`]).
pub const MIN_NODE_LIMIT: usize = 20_000;

/// The automatic table work limit of saturation is at least this (see
/// [`RewriteConfig::table_work_limit`]; the corpus's programs need at most about 27,000).
pub const MIN_TABLE_WORK: usize = 100_000;

/// Options of the rewrite engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RewriteConfig {
    /// Stop saturating after this many iterations.
    pub iter_limit: usize,
    /// Stop saturating when the e-graph has more than this many nodes. `0` (the default):
    /// [`MIN_NODE_LIMIT`] or `node_limit_per_node` times the nodes of the loaded program,
    /// whichever is larger (so that long programs are rewritten too, within a budget
    /// proportional to their size).
    pub node_limit: usize,
    /// The node budget per node of the loaded program when `node_limit` is `0`.
    pub node_limit_per_node: usize,
    /// Stop saturating once the rules have tabulated this many table entries in all (the
    /// rules' own work, which node counts do not see: one application may tabulate a function
    /// on `2^max_table_bits` values). `0` (the default): [`MIN_TABLE_WORK`] or
    /// `table_work_per_node` per node of the loaded program, whichever is larger.
    pub table_work_limit: usize,
    /// The table work budget per node of the loaded program when `table_work_limit` is `0`.
    pub table_work_per_node: usize,
    /// egg's backoff scheduler bans a rule for a few iterations when it matches more than
    /// this many times in one iteration, or more than the loaded program has nodes if that is
    /// larger (matches grow with the program).
    pub match_limit: usize,
    /// Stop saturating after this long (milliseconds); `0` (the default): no wall-clock
    /// limit, so that the result does not depend on the machine (the node and iteration
    /// limits bound the work).
    pub time_limit_ms: u64,
    /// Rules only build tables on operands whose range spans at most `2^max_table_bits`
    /// values (TLU inputs are capped at 16 bits).
    pub max_table_bits: u8,
    /// Approximate rounding: when set to `p`, a lookup on more than `p` bits may read its
    /// operand rounded to its `p` high bits (inexact; only where the cost model says it is
    /// cheaper, see [`rules::rounding`]). `None` (default): exact.
    pub approx_round_bits: Option<u8>,
    /// Per-bootstrap error probability of the program: bootstraps are priced with the
    /// parameters the optimizer picks for it ([`cost::CostModel`]). Default `2^-40`.
    pub p_error: f64,
    /// The rule domains to saturate with, by name ([`rules::DOMAINS`]: `fusion`,
    /// `arithmetic`, ...). Empty (the default): every domain. `veil opt --rules` and the rule
    /// file tests (`compiler/tests/rules/<domain>/`) restrict the rewrite with it.
    pub rule_domains: Vec<String>,
}

impl RewriteConfig {
    /// The cost model of this configuration.
    pub fn cost_model(&self) -> cost::CostModel {
        cost::CostModel::new(self.p_error)
    }
}

impl Default for RewriteConfig {
    fn default() -> Self {
        RewriteConfig {
            iter_limit: 30,
            node_limit: 0,
            node_limit_per_node: 8,
            match_limit: 1_000,
            table_work_limit: 0,
            table_work_per_node: 256,
            time_limit_ms: 0,
            max_table_bits: 16,
            approx_round_bits: None,
            p_error: cost::DEFAULT_P_ERROR,
            rule_domains: Vec::new(),
        }
    }
}

/// Errors of the rewrite engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RewriteError {
    /// Only tensor-level graphs are rewritten.
    #[error("rewriting needs a tensor-level graph; run it before lowering to the TFHE level")]
    NotTensorLevel,
    /// The input graph has a cycle.
    #[error("the graph has a cycle through {0} nodes; run the verifier for details")]
    Cyclic(usize),
    /// A node of the input graph is malformed.
    #[error("value {value}: {what}; run the verifier for details")]
    BadNode {
        /// The printed value number.
        value: String,
        /// What is wrong.
        what: String,
    },
    /// A lookup would need a table too large to emit.
    #[error("a lookup on a {0}-bit operand needs a table of 2^{0} entries; narrow the operand with the bitwidth pass or round it first")]
    TableTooLarge(u8),
    /// The configuration's error target is not a probability.
    #[error("rewrite p_error {0} is not a probability in (0, 1); set RewriteConfig::p_error to the program's per-bootstrap error target, e.g. 2^-40")]
    BadErrorTarget(f64),
    /// The configuration names a rule domain that does not exist.
    #[error("unknown rule domain `{name}`; rule domains: {available}")]
    UnknownRuleDomain {
        /// The name asked for.
        name: String,
        /// Comma-separated domain names.
        available: String,
    },
    /// Extraction produced an inconsistent choice (a bug).
    #[error("internal extraction error: {0}")]
    Extraction(&'static str),
}

/// What a rewrite did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RewriteReport {
    /// Bootstraps of the input graph.
    pub pbs_before: u64,
    /// Bootstraps of the result.
    pub pbs_after: u64,
    /// Cost of the input graph.
    pub cost_before: f64,
    /// Cost of the result.
    pub cost_after: f64,
    /// Bootstraps of the extracted program as predicted from the e-graph (before emission;
    /// equal to `pbs_after` when the result replaced the input).
    pub pbs_extracted: u64,
    /// Cost of the extracted program as predicted from the e-graph.
    pub cost_extracted: f64,
    /// Precisions (bits) of bootstraps of the input or the result that the optimizer found no
    /// parameters for at `p_error`, priced by [`cost::fallback_pbs_cost`] instead (empty
    /// normally).
    pub cost_fallback_bits: Vec<u32>,
    /// Saturation iterations run.
    pub iterations: usize,
    /// Why saturation stopped (`Saturated`, `IterationLimit`, `NodeLimit`,
    /// `TableWorkLimit`, `TimeLimit`).
    pub stop_reason: String,
    /// E-nodes at the end of saturation.
    pub egraph_nodes: usize,
    /// E-classes at the end of saturation.
    pub egraph_classes: usize,
    /// Whether the result replaced the input (false when it was not cheaper).
    pub changed: bool,
    /// Wall time, milliseconds.
    pub time_ms: f64,
}

/// The saturated e-graph of a graph, ready for extraction.
pub struct Saturated {
    /// The loaded graph and its e-graph.
    pub loaded: convert::Loaded,
    /// Iterations run.
    pub iterations: usize,
    /// Why saturation stopped.
    pub stop_reason: String,
}

/// Loads `g` and runs the rules of `cfg` to saturation or a limit.
pub fn saturate(
    g: &Graph,
    ranges: Option<&ValueRanges>,
    cfg: &RewriteConfig,
) -> Result<Saturated, RewriteError> {
    let rules = rules::rules_of(cfg)?;
    let mut loaded = convert::to_egraph(g, ranges)?;
    let eg = std::mem::take(&mut loaded.egraph);
    let node_limit = match cfg.node_limit {
        0 => MIN_NODE_LIMIT.max(cfg.node_limit_per_node.saturating_mul(eg.total_size())),
        n => n,
    };
    let time_limit = match cfg.time_limit_ms {
        0 => Duration::MAX,
        ms => Duration::from_millis(ms),
    };
    // egg bans a rule for a while when it matches more than a limit in one iteration; the
    // matches of a rule grow with the program, so the limit does too
    let match_limit = cfg.match_limit.max(eg.total_size());
    let table_work = match cfg.table_work_limit {
        0 => MIN_TABLE_WORK.max(cfg.table_work_per_node.saturating_mul(eg.total_size())),
        n => n,
    };
    let runner = egg::Runner::default()
        .with_hook(
            move |r: &mut egg::Runner<lang::VeilLang, analysis::VeilAnalysis>| {
                if r.egraph.analysis.table_work > table_work {
                    Err("TableWorkLimit".to_string())
                } else {
                    Ok(())
                }
            },
        )
        .with_scheduler(egg::BackoffScheduler::default().with_initial_match_limit(match_limit))
        .with_egraph(eg)
        .with_iter_limit(cfg.iter_limit)
        .with_node_limit(node_limit)
        .with_time_limit(time_limit)
        .run(&rules);
    let stop_reason = match &runner.stop_reason {
        Some(egg::StopReason::Saturated) => "Saturated".to_string(),
        Some(egg::StopReason::IterationLimit(_)) => "IterationLimit".to_string(),
        Some(egg::StopReason::NodeLimit(_)) => "NodeLimit".to_string(),
        Some(egg::StopReason::TimeLimit(_)) => "TimeLimit".to_string(),
        Some(egg::StopReason::Other(s)) => s.clone(),
        None => "None".to_string(),
    };
    let iterations = runner.iterations.len();
    loaded.egraph = runner.egraph;
    Ok(Saturated {
        loaded,
        iterations,
        stop_reason,
    })
}

/// Rewrites `g` to a cheaper equivalent program (see the module docs).
pub fn rewrite_graph(
    g: &Graph,
    ranges: Option<&ValueRanges>,
    cfg: &RewriteConfig,
) -> Result<(Graph, RewriteReport), RewriteError> {
    let start = Instant::now();
    if !(cfg.p_error > 0.0 && cfg.p_error < 1.0) {
        return Err(RewriteError::BadErrorTarget(cfg.p_error));
    }
    let model = cfg.cost_model();
    let before = model.graph_cost(g);
    let sat = saturate(g, ranges, cfg)?;
    let eg = &sat.loaded.egraph;
    let roots: Vec<_> = sat
        .loaded
        .inputs
        .iter()
        .chain(&sat.loaded.outputs)
        .copied()
        .collect();
    let mut choice = extract::dag_extract(eg, &model, &roots)
        .ok_or(RewriteError::Extraction("no acyclic choice for an output"))?;
    convert::pin_inputs(&sat.loaded, &mut choice);
    let extracted = extract::choice_op_cost(eg, &model, &choice, &roots)
        .ok_or(RewriteError::Extraction("a reachable class has no choice"))?;
    let out = convert::from_choice(&sat.loaded, &choice, g)?;
    let after = model.graph_cost(&out);
    let changed = after.cost < before.cost;
    let report = RewriteReport {
        pbs_before: before.pbs,
        pbs_after: if changed { after.pbs } else { before.pbs },
        cost_before: before.cost,
        cost_after: if changed { after.cost } else { before.cost },
        pbs_extracted: extracted.pbs,
        cost_extracted: extracted.cost,
        cost_fallback_bits: before.plus(after).fallback_bits(),
        iterations: sat.iterations,
        stop_reason: sat.stop_reason,
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        changed,
        time_ms: start.elapsed().as_secs_f64() * 1e3,
    };
    Ok((if changed { out } else { g.clone() }, report))
}
