//! The parameter chooser the compiler lowers with: the optimizer ([`crate::optimizer`]) for
//! programs with bootstraps, the smallest secure set that holds a fresh encryption for
//! levelled-only ones. `program::compile` and the registered `lower` pass both use it, so a
//! program lowered by `veil opt --passes ...,lower` gets the parameters `veil compile` gives.

use super::{ChooseError, LowerRequest, ParamChoice, ParamChooser, PartitionRequest};
use crate::optimizer::{self, Crossing, ErrorTarget, OutputNoise, Partition, Problem, Solution};
use std::cell::RefCell;
use veil_ir::ParamSet;

/// Chooses parameter sets with the optimizer at `target`, remembering its last solution (for
/// the per-partition error probabilities in the statistics).
#[derive(Debug)]
pub struct OptimizerChooser {
    /// The program's error target.
    pub target: ErrorTarget,
    /// One set for every bootstrap (Concrete's mono-parameter strategy).
    pub single_set: bool,
    /// What the optimizer minimises.
    pub objective: optimizer::Objective,
    solution: RefCell<Option<Solution>>,
}

impl OptimizerChooser {
    /// A chooser for `target` minimising `objective`.
    pub fn new(target: ErrorTarget, single_set: bool, objective: optimizer::Objective) -> Self {
        OptimizerChooser {
            target,
            single_set,
            objective,
            solution: RefCell::new(None),
        }
    }

    /// The optimizer's solution of the last choice (`None` for a program without bootstraps).
    pub fn into_solution(self) -> Option<Solution> {
        self.solution.into_inner()
    }
}

impl ParamChooser for OptimizerChooser {
    fn choose(&self, req: &LowerRequest) -> Result<ParamChoice, ChooseError> {
        let target = req.classic_target(self.target)?;
        if req.partitions.is_empty() {
            let p = target.per_bootstrap(0)?;
            let set = levelled_params(&req.merged(), p)?;
            return Ok(ParamChoice {
                sets: vec![set],
                partition_sets: Vec::new(),
            });
        }
        let problem = Problem {
            partitions: req
                .partitions
                .iter()
                .map(|p| Partition {
                    precision: p.precision,
                    norm2: p.norm2.max(1.0),
                    tlus: p.tlus,
                    levelled: 0,
                    outputs: p
                        .outputs
                        .iter()
                        .map(|&(precision, norm2)| OutputNoise { precision, norm2 })
                        .collect(),
                })
                .collect(),
            crossings: req
                .crossings
                .iter()
                .map(|&(from, to, count)| Crossing { from, to, count })
                .collect(),
            target,
            single_set: self.single_set,
            noise: Default::default(),
            objective: self.objective,
        };
        let sol = optimizer::optimize_cached(&problem)?;
        let choice = ParamChoice {
            sets: sol.sets.iter().map(|s| s.params.clone()).collect(),
            partition_sets: sol.partition_sets.clone(),
        };
        *self.solution.borrow_mut() = Some((*sol).clone());
        Ok(choice)
    }

    /// The tabulated set when the per-lookup target is `2^-40` or looser (its prediction
    /// meets it), else the WoP search's cheapest set for the target.
    fn wop(&self, bits: u8, lookups: u64) -> Result<(veil_runtime::wopbs::WopParams, f64), String> {
        let p = self
            .target
            .per_bootstrap(lookups)
            .map_err(|e| e.to_string())?;
        if p >= optimizer::wop::WOP_P_ERROR {
            let w = veil_runtime::wopbs::WopParams::for_bits(bits).map_err(|e| e.to_string())?;
            return Ok((w, optimizer::wop::WOP_P_ERROR));
        }
        optimizer::wop::search(bits, p)
            .map(|(w, _)| (w, p))
            .ok_or_else(|| {
                format!("no WoP-PBS parameters for {bits}-bit lookups at p_error {p:.3e}")
            })
    }
}

/// A parameter set for a program without bootstraps: only fresh encryptions under the big key
/// and levelled ops. The smallest secure GLWE (k = 1) whose fresh noise, grown by `norm2`,
/// still decodes `precision` bits within the error target.
pub fn levelled_params(req: &PartitionRequest, p_error: f64) -> Result<ParamSet, ChooseError> {
    use veil_ir::params::min_secure_noise_log2;
    let safe = optimizer::error::safe_variance(req.precision, p_error);
    for log_n in 10..=14 {
        let n = 1usize << log_n;
        let noise = min_secure_noise_log2(n);
        if (2.0 * noise).exp2() * req.norm2 <= safe {
            return Ok(ParamSet {
                lwe_dimension: n,
                glwe_dimension: 1,
                polynomial_size: n,
                lwe_noise_log2: noise,
                glwe_noise_log2: noise,
                pbs_base_log: 1,
                pbs_level: 1,
                ks_base_log: 1,
                ks_level: 1,
                message_bits: req.precision,
                p_error: optimizer::error::p_error_of_variance(
                    req.precision,
                    (2.0 * noise).exp2() * req.norm2,
                ),
                noise_distribution: Default::default(),
                modulus_switch: Default::default(),
                ks_modulus: Default::default(),
            });
        }
    }
    Err(ChooseError::FreshEncryptionTooNarrow {
        precision: req.precision,
        norm2: req.norm2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::PartitionInfo;

    fn request(reserved: f64, partitions: usize) -> LowerRequest {
        LowerRequest {
            partitions: (0..partitions)
                .map(|_| PartitionInfo {
                    precision: 3,
                    norm2: 1.0,
                    tlus: 10,
                    outputs: Vec::new(),
                })
                .collect(),
            crossings: Vec::new(),
            levelled_outputs: Vec::new(),
            reserved_p_error: reserved,
        }
    }

    /// The classic bootstraps get the rest of a global target: with the reserved failures,
    /// the program fails with probability exactly the target; a per-bootstrap target, no
    /// reservation or no bootstraps leave it as it is, and a reservation that uses up the
    /// whole target is an error.
    #[test]
    fn classic_target_is_what_the_wop_lookups_leave() {
        let g = 1e-5;
        let t = request(4e-6, 1)
            .classic_target(ErrorTarget::global(g))
            .unwrap();
        let rest = t.global_p_error.unwrap();
        assert!(rest < g - 3.9e-6 && rest > g - 4.1e-6, "{rest:e}");
        let total = 1.0 - (1.0 - rest) * (1.0 - 4e-6);
        assert!((total - g).abs() <= g * 1e-9, "{total:e}");
        for (req, target) in [
            (request(4e-6, 1), ErrorTarget::p_error(1e-9)),
            (request(0.0, 1), ErrorTarget::global(g)),
            (request(4e-6, 0), ErrorTarget::global(g)),
        ] {
            assert_eq!(req.classic_target(target).unwrap(), target);
        }
        let both = ErrorTarget {
            p_error: Some(1e-9),
            global_p_error: Some(g),
        };
        assert_eq!(
            request(4e-6, 1).classic_target(both).unwrap().p_error,
            Some(1e-9)
        );
        let e = request(g, 1)
            .classic_target(ErrorTarget::global(g))
            .unwrap_err();
        assert!(e.to_string().contains("WoP-PBS"), "{e}");
    }
}
