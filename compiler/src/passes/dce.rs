//! Dead-code elimination.

use super::{Pass, PassContext, PassError, PassStats};
use veil_ir::Graph;

/// Removes nodes no output depends on (inputs are kept: they are the program's interface) and
/// unreferenced tables and constants.
pub struct DcePass;

impl Pass for DcePass {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn doc(&self) -> &'static str {
        "Dead-code elimination: removes every node that no output depends on (inputs are kept, \
         they are the program's interface), then drops tables and constants that no node \
         references and renumbers the pools. Needs nothing in the context; calibrated ranges \
         stay valid (handles of the surviving nodes do not change)."
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassStats, PassError> {
        let tables = graph.tables.len() as i64;
        let consts = graph.consts.len() as i64;
        let removed = graph.dce();
        let mut s = PassStats::default();
        s.count("nodes_removed", removed as i64)
            .count("tables_removed", tables - graph.tables.len() as i64)
            .count("consts_removed", consts - graph.consts.len() as i64);
        Ok(s)
    }
}
