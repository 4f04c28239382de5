//! The `rewrite` pass: equality saturation to fewer and cheaper bootstraps.

use super::{Diagnostic, Pass, PassContext, PassError, PassStats};
use crate::rewrite::rewrite_graph;
use veil_ir::Graph;

/// Runs [`crate::rewrite::rewrite_graph`] with the context's [`crate::rewrite::RewriteConfig`].
pub struct RewritePass;

impl Pass for RewritePass {
    fn name(&self) -> &'static str {
        "rewrite"
    }

    fn doc(&self) -> &'static str {
        "Equality saturation with egg: loads the tensor-level graph into an e-graph, applies the \
         fusion, arithmetic, comparison, regrouping and rounding rules under the node, iteration and table-work limits \
         of `cx.rewrite`, and extracts the program of least bootstrap cost with shared \
         sub-graphs counted once. Uses `cx.ranges` (from `bitwidth`) to tighten value ranges; \
         since values change, it clears them: run `bitwidth` again afterwards. The result is \
         never costlier than the input. Bootstraps are priced at the width the lowering gives \
         them, with the optimizer's parameters at `cx.rewrite.p_error`; precisions the \
         optimizer cannot serve are priced by a fallback table and reported (counter \
         `cost_fallback_precisions` and a diagnostic)."
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassStats, PassError> {
        let (out, r) = rewrite_graph(graph, cx.ranges.as_ref(), &cx.rewrite)
            .map_err(|e| PassError::failed("rewrite", e.to_string()))?;
        if r.changed {
            *graph = out;
            cx.ranges = None;
        }
        let mut s = PassStats::default();
        s.count("pbs_before", r.pbs_before as i64)
            .count("pbs_after", r.pbs_after as i64)
            .count("iterations", r.iterations as i64)
            .count("egraph_nodes", r.egraph_nodes as i64)
            .count("egraph_classes", r.egraph_classes as i64)
            .count("changed", r.changed as i64)
            .count("pbs_extracted", r.pbs_extracted as i64)
            .count(
                "cost_fallback_precisions",
                r.cost_fallback_bits.len() as i64,
            )
            .metric("cost_before", r.cost_before)
            .metric("cost_after", r.cost_after)
            .metric("cost_extracted", r.cost_extracted);
        if !r.cost_fallback_bits.is_empty() {
            let bits: Vec<String> = r.cost_fallback_bits.iter().map(|b| b.to_string()).collect();
            cx.diagnostics.push(Diagnostic {
                pass: "rewrite".into(),
                message: format!(
                    "the parameter optimizer finds no parameters for bootstraps on {} bits at \
                     p_error {:e}; they were costed with a fallback table. Narrow those values \
                     (bitwidth calibration) or relax the error target",
                    bits.join(", "),
                    cx.rewrite.p_error
                ),
            });
        }
        s.counters.insert(format!("stop_{}", r.stop_reason), 1);
        Ok(s)
    }
}
