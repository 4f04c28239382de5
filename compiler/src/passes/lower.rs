//! The `lower` pass: a tensor-level program to the TFHE level ([`crate::lower::lower`]) with
//! the parameter sets the optimizer chooses for the context's error target
//! ([`crate::lower::OptimizerChooser`], as `program::compile` lowers). It ends a pipeline:
//! after it the graph is at the TFHE level and no tensor-level pass applies.

use super::{Pass, PassContext, PassError, PassStats};
use crate::lower::{lower, OptimizerChooser};
use veil_ir::{Graph, Level};

/// The `lower` pass.
pub struct LowerPass;

impl Pass for LowerPass {
    fn name(&self) -> &'static str {
        "lower"
    }

    fn doc(&self) -> &'static str {
        "Lowers the tensor-level program to the TFHE level (keyswitches and bootstraps, regions \
         and partitions, multi-parameter key assignment) with the parameter sets the optimizer \
         chooses for `cx.error`, as `veil compile` does. Counters: `pbs`, `keyswitches`, \
         `param_sets`; metric `cost` (the optimizer's cost of one run). Leaves no ranges \
         (`cx.ranges` is cleared): tensor-level passes cannot follow it."
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassStats, PassError> {
        if graph.level != Level::Tensor {
            return Err(PassError::failed(
                "lower",
                "the program is at the TFHE level already".to_string(),
            ));
        }
        let chooser = OptimizerChooser::new(cx.error, false, Default::default());
        let lowered =
            lower(graph, &chooser).map_err(|e| PassError::failed("lower", e.to_string()))?;
        let mut s = PassStats::default();
        s.count("pbs", lowered.stats.pbs as i64)
            .count("keyswitches", lowered.stats.keyswitches as i64)
            .count("param_sets", lowered.program.params.len() as i64)
            .metric("cost", chooser.into_solution().map_or(0.0, |sol| sol.cost));
        *graph = lowered.program;
        cx.ranges = None;
        Ok(s)
    }
}
