//! The pass manager and the compiler passes over tensor-level graphs.
//!
//! A pass is one [`Pass`] implementation in its own file, registered by one line in
//! [`REGISTRY`]; a pipeline is then a list of pass names run by [`PassManager`], which times
//! every pass, collects its [`PassStats`], runs the veil-ir verifier after each pass (an invalid
//! graph is reported with the pass that produced it) and can dump the graph after every pass or
//! after named ones.
//!
//! Module map:
//! - [`manager`]: [`PassManager`], the pipeline report and the print/verify hooks.
//! - [`bitwidth`]: calibration (inputset or declared input ranges) and type narrowing; its
//!   interval propagation, like the e-graph analysis and [`deviation`], states no op
//!   semantics of its own: it calls veil-ir's one transfer function
//!   ([`veil_ir::infer::transfer`]).
//! - [`deviation`]: how far approximate rounds can move every value downstream.
//! - [`dce`]: dead-code elimination.
//! - [`desugar`]: the numpy integer ops (`floordiv` ... `where`) into table lookups.
//! - [`rewrite`]: equality saturation with egg (see [`crate::rewrite`]).
//! - [`lower`]: to the TFHE level with the optimizer's parameters (see [`crate::lower`]).

pub mod bitwidth;
pub mod dce;
pub mod desugar;
pub mod deviation;
pub mod lower;
pub mod manager;
pub mod rewrite;

pub use bitwidth::{check_ranges, BitwidthConfig, RangeViolation, ValueRanges};
pub use manager::{PassManager, PassRecord, PipelineReport};

use crate::optimizer::ErrorTarget;
use crate::rewrite::RewriteConfig;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use veil_ir::{Graph, Tensor, ValueId};

/// A transformation or analysis of a graph, run by the [`PassManager`].
pub trait Pass {
    /// Registered name, as written in a pipeline (e.g. `"bitwidth"`).
    fn name(&self) -> &'static str;
    /// One paragraph: what the pass does and what it needs in the [`PassContext`].
    fn doc(&self) -> &'static str;
    /// Runs the pass on `graph`, reading options from and leaving results in `cx`.
    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassStats, PassError>;
}

/// How to construct a registered pass.
pub struct PassInfo {
    /// The pass name used in pipelines.
    pub name: &'static str,
    /// One line: what the pass does (`veil opt --list`); [`Pass::doc`] has the details.
    pub summary: &'static str,
    /// Creates a fresh instance.
    pub make: fn() -> Box<dyn Pass>,
}

/// Every pass known to the manager. Adding a pass: one file in `passes/` and one entry here.
/// All but `lower` take and give tensor-level programs; `lower` ends a pipeline.
pub const REGISTRY: &[PassInfo] = &[
    PassInfo {
        name: "bitwidth",
        summary: "calibrate value ranges (inputset or declared types) and narrow every type to them",
        make: || Box::new(bitwidth::BitwidthPass),
    },
    PassInfo {
        name: "desugar",
        summary: "turn the numpy integer ops (floordiv, mod, bitwise, shifts, where, ...) into table lookups",
        make: || Box::new(desugar::DesugarPass),
    },
    PassInfo {
        name: "dce",
        summary: "remove nodes no output depends on, and unused tables and constants",
        make: || Box::new(dce::DcePass),
    },
    PassInfo {
        name: "rewrite",
        summary: "equality saturation with egg: fewer and narrower bootstraps (rule domains: see --list)",
        make: || Box::new(rewrite::RewritePass),
    },
    PassInfo {
        name: "lower",
        summary: "lower to the TFHE level (keyswitch, pbs) with the optimizer's parameters, as `veil compile` does; last",
        make: || Box::new(lower::LowerPass),
    },
];

/// Creates the registered pass called `name`.
pub fn make_pass(name: &str) -> Result<Box<dyn Pass>, PassError> {
    REGISTRY
        .iter()
        .find(|p| p.name == name)
        .map(|p| (p.make)())
        .ok_or_else(|| PassError::UnknownPass {
            name: name.to_string(),
            available: pass_names().join(", "),
        })
}

/// Names of all registered passes, in registry order.
pub fn pass_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|p| p.name).collect()
}

/// The default tensor-level pipeline: calibrate and narrow, desugar the numpy integer ops into
/// lookups, rewrite to fewer/cheaper bootstraps, re-narrow the new values, drop dead nodes.
pub const DEFAULT_PIPELINE: &[&str] = &["bitwidth", "desugar", "rewrite", "bitwidth", "dce"];

/// Statistics one pass reports: named counters and named measurements.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PassStats {
    /// Integer counters (e.g. `"pbs_before"`, `"nodes_removed"`).
    pub counters: BTreeMap<String, i64>,
    /// Real-valued measurements (e.g. `"cost_before"`).
    pub metrics: BTreeMap<String, f64>,
}

impl PassStats {
    /// Sets counter `name`.
    pub fn count(&mut self, name: &str, v: i64) -> &mut Self {
        self.counters.insert(name.to_string(), v);
        self
    }

    /// Sets measurement `name`.
    pub fn metric(&mut self, name: &str, v: f64) -> &mut Self {
        self.metrics.insert(name.to_string(), v);
        self
    }
}

/// A non-fatal finding of a pass (fatal ones are [`PassError`]s).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// The pass that found it.
    pub pass: String,
    /// What was found, where, and how to fix it.
    pub message: String,
}

/// Options and results shared by the passes of one pipeline run.
#[derive(Clone, Debug)]
pub struct PassContext {
    /// Calibration samples: each sample is one tensor per program input, in input order.
    pub inputset: Option<Vec<Vec<Tensor<i64>>>>,
    /// Declared value ranges of inputs by input name (`lo..=hi`), used by interval
    /// propagation when there is no inputset; inputs not listed use their declared type.
    pub input_ranges: HashMap<String, (i64, i64)>,
    /// Options of the bit-width pass.
    pub bitwidth: BitwidthConfig,
    /// Options of the rewrite pass (its cost model prices bootstraps at `rewrite.p_error`,
    /// which `program::compile` derives from the program's [`ErrorTarget`]).
    pub rewrite: RewriteConfig,
    /// The program's error target: the parameters the `lower` pass chooses meet it
    /// (default: [`crate::optimizer::DEFAULT_P_ERROR`] per bootstrap).
    pub error: ErrorTarget,
    /// Value ranges of the current graph, left by the last `bitwidth` run (passes that
    /// change the graph clear or update them).
    pub ranges: Option<ValueRanges>,
    /// Value ranges left by the first `bitwidth` run, on the graph as given (before any
    /// rewrite): the program's domain ([`veil_ir::Domain`]).
    pub source_ranges: Option<ValueRanges>,
    /// The input intervals (by input name) the first `bitwidth` run calibrated: later runs
    /// on a rewritten graph propagate from them instead of calibrating again (see
    /// [`bitwidth`]), so that every value of the rewritten graph holds whatever a sample
    /// inside the domain makes it take.
    pub calibrated_inputs: Option<HashMap<String, (i64, i64)>>,
    /// Non-fatal findings, in order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Default for PassContext {
    fn default() -> Self {
        PassContext {
            inputset: None,
            input_ranges: HashMap::new(),
            bitwidth: BitwidthConfig::default(),
            rewrite: RewriteConfig::default(),
            error: ErrorTarget::p_error(crate::optimizer::DEFAULT_P_ERROR),
            ranges: None,
            source_ranges: None,
            calibrated_inputs: None,
            diagnostics: Vec::new(),
        }
    }
}

impl PassContext {
    /// Range of value `v` if the last calibration covered it.
    pub fn range_of(&self, v: ValueId) -> Option<veil_ir::Interval> {
        self.ranges.as_ref().and_then(|r| r.get(v))
    }
}

/// Errors of the pass manager and of passes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PassError {
    /// A pipeline names a pass that is not registered.
    #[error("unknown pass `{name}`; registered passes: {available}")]
    UnknownPass {
        /// The name asked for.
        name: String,
        /// Comma-separated registered names.
        available: String,
    },
    /// A pass could not do its work.
    #[error("pass `{pass}` failed: {message}")]
    Failed {
        /// The pass.
        pass: String,
        /// What went wrong, where, and how to fix it.
        message: String,
    },
    /// The graph no longer verifies after a pass.
    #[error("the graph is invalid after pass `{pass}`: {error}")]
    Verify {
        /// The pass after which verification failed.
        pass: String,
        /// What the verifier found.
        #[source]
        error: veil_ir::verify::VerifyError,
    },
}

impl PassError {
    /// A [`PassError::Failed`] of pass `pass`.
    pub fn failed(pass: &str, message: impl Into<String>) -> Self {
        PassError::Failed {
            pass: pass.to_string(),
            message: message.into(),
        }
    }
}

/// The compiler's modules form layers along the pipeline, each using only those below it:
/// `program` (the driver) over `passes` over `rewrite` over `lower` over `optimizer`. These
/// tests read the sources and fail on a reference that points up (an import circle).
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// The layers, top first.
    const LAYERS: [&str; 5] = ["program", "passes", "rewrite", "lower", "optimizer"];

    /// Every `crate::<module>` named in code (comments skipped) under `path`.
    fn uses(path: &Path, out: &mut Vec<(String, String)>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .expect("readable source folder")
                .map(|e| e.expect("readable entry").path())
                .collect();
            entries.sort();
            for e in entries {
                uses(&e, out);
            }
            return;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            return;
        }
        let text = std::fs::read_to_string(path).expect("readable source file");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // (`crate::` alone: this test's own pattern)
                if !name.is_empty() {
                    out.push((path.display().to_string(), name));
                }
            }
        }
    }

    #[test]
    fn modules_only_use_the_layers_below() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for (level, layer) in LAYERS.iter().enumerate() {
            let mut found = Vec::new();
            let dir = src.join(layer);
            if dir.is_dir() {
                uses(&dir, &mut found);
            } else {
                uses(&src.join(format!("{layer}.rs")), &mut found);
            }
            for (file, used) in found {
                match LAYERS.iter().position(|l| *l == used) {
                    Some(u) if u < level => bad.push(format!("{file} uses crate::{used}")),
                    Some(_) => {}
                    None => bad.push(format!("{file} uses crate::{used}, not a known layer")),
                }
            }
        }
        assert!(
            bad.is_empty(),
            "references up the layers:\n{}",
            bad.join("\n")
        );
    }
}
