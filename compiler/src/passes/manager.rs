//! Runs a pipeline of registered passes: timing, statistics, verification and dumps.

use super::{make_pass, Pass, PassContext, PassError, PassStats};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Instant;
use veil_ir::verify::VerifyError;
use veil_ir::Graph;

/// A graph printer (e.g. the veil-ir text printer), used for dumps.
pub type Printer = fn(&Graph) -> String;

/// A graph verifier; `Err` lists every problem, each naming the offending value.
pub type Verifier = fn(&Graph) -> Result<(), VerifyError>;

/// What one pass did.
#[derive(Clone, Debug, Serialize)]
pub struct PassRecord {
    /// Pass name.
    pub pass: String,
    /// Wall time of the pass itself (verification and printing excluded), milliseconds.
    pub time_ms: f64,
    /// Number of nodes before the pass.
    pub nodes_before: usize,
    /// Number of nodes after the pass.
    pub nodes_after: usize,
    /// The pass's own statistics.
    pub stats: PassStats,
}

/// The report of a pipeline run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PipelineReport {
    /// One record per pass run, in order.
    pub passes: Vec<PassRecord>,
    /// Total wall time including verification and dumps, milliseconds.
    pub total_ms: f64,
    /// Graph dumps requested by the print hooks: `(pass name, printed graph)`.
    pub dumps: Vec<(String, String)>,
}

/// A pipeline of passes with its hooks.
///
/// ```
/// use veil_compiler::passes::{PassContext, PassManager};
/// let src = "veil 1\n%0 = input \"x\" : enc<u2>\n%1 = relu %0 : enc<u2>\noutput \"y\", %1\n";
/// let mut g = veil_ir::text::parse(src).unwrap();
/// let mut pm = PassManager::from_names(&["bitwidth", "rewrite", "dce"]).unwrap();
/// let report = pm.run(&mut g, &mut PassContext::default()).unwrap();
/// assert_eq!(report.passes[2].pass, "dce");
/// ```
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    printer: Printer,
    print_after_all: bool,
    print_after: BTreeSet<String>,
    verifier: Option<Verifier>,
}

impl PassManager {
    /// An empty pipeline with the veil-ir text printer and verifier.
    pub fn new() -> Self {
        PassManager {
            passes: Vec::new(),
            printer: veil_ir::text::print,
            print_after_all: false,
            print_after: BTreeSet::new(),
            verifier: Some(default_verifier),
        }
    }

    /// A pipeline of registered passes, by name; fails on the first unknown name.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, PassError> {
        let mut pm = PassManager::new();
        for n in names {
            pm.passes.push(make_pass(n.as_ref())?);
        }
        Ok(pm)
    }

    /// Appends a pass instance (registered or not).
    pub fn add(&mut self, pass: Box<dyn Pass>) -> &mut Self {
        self.passes.push(pass);
        self
    }

    /// Names of the passes in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Sets the printer used by the dump hooks.
    pub fn printer(&mut self, p: Printer) -> &mut Self {
        self.printer = p;
        self
    }

    /// Dumps the graph after every pass.
    pub fn print_after_all(&mut self, on: bool) -> &mut Self {
        self.print_after_all = on;
        self
    }

    /// Dumps the graph after every run of pass `name`.
    pub fn print_after(&mut self, name: &str) -> &mut Self {
        self.print_after.insert(name.to_string());
        self
    }

    /// Replaces the verifier run after every pass (`None` disables verification).
    pub fn verifier(&mut self, v: Option<Verifier>) -> &mut Self {
        self.verifier = v;
        self
    }

    /// Runs every pass in order on `graph`. Stops at the first failing pass, or the first pass
    /// after which the graph does not verify (the error names that pass).
    pub fn run(
        &mut self,
        graph: &mut Graph,
        cx: &mut PassContext,
    ) -> Result<PipelineReport, PassError> {
        let start = Instant::now();
        let mut report = PipelineReport::default();
        for pass in self.passes.iter_mut() {
            let name = pass.name();
            let nodes_before = graph.len();
            let t = Instant::now();
            let stats = pass.run(graph, cx)?;
            let time_ms = t.elapsed().as_secs_f64() * 1e3;
            if let Some(verify) = self.verifier {
                verify(graph).map_err(|error| PassError::Verify {
                    pass: name.to_string(),
                    error,
                })?;
            }
            if self.print_after_all || self.print_after.contains(name) {
                report.dumps.push((name.to_string(), (self.printer)(graph)));
            }
            report.passes.push(PassRecord {
                pass: name.to_string(),
                time_ms,
                nodes_before,
                nodes_after: graph.len(),
                stats,
            });
        }
        report.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }
}

impl Default for PassManager {
    fn default() -> Self {
        PassManager::new()
    }
}

/// A printer that needs no text module: one line per node in topological order.
pub fn debug_printer(g: &Graph) -> String {
    let order = g.topo_order().unwrap_or_else(|_| g.values());
    let mut s = String::new();
    for v in order {
        let ops: Vec<String> = g.operands(v).iter().map(|o| o.to_string()).collect();
        s.push_str(&format!(
            "{v} = {} ({}) : {}\n",
            g.op(v).name(),
            ops.join(", "),
            g.ty(v)
        ));
    }
    s
}

/// The veil-ir verifier.
pub fn default_verifier(g: &Graph) -> Result<(), VerifyError> {
    veil_ir::verify::verify(g)
}
