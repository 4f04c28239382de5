//! Choosing which partitions share a parameter set, and the top-level [`optimize`].
//!
//! Partitions are ordered by `(precision, norm2)` and every split of that order into contiguous
//! groups is tried (all `2^(m-1)` of them up to [`MAX_ENUMERATED_PARTITIONS`] partitions; beyond
//! that: one set, one set per precision, one set per partition). Each group gets the cheapest
//! set meeting all its members' constraints ([`search`]). A crossing between two groups is a
//! keyswitch from the producer set's big key straight into the consumer set's small key (with
//! the consumer's decomposition): its noise and cost scale with the producer's dimension `k N`,
//! and the producer's output noise feeds the consumer's bootstrap. When that exceeds what the
//! consumer tolerates, the producer's output noise is capped (halved budget) and its group
//! re-searched, a few rounds at most. Outputs decoded under a partition's big key cap its
//! output noise from the start. The cheapest grouping wins, each set beyond the first
//! counting [`EXTRA_SET_MARGIN`] dearer (it costs a bootstrap key, keygen time and key bytes,
//! which the objective does not price); the one-set grouping is tried first and wins ties,
//! so sets split only when that much cheaper.

use super::cost::{ks_cost, ks_latency_ns_mod};
use super::error::{p_error_of_variance, safe_variance};
use super::search::{
    executions, ks_weight, max_norm2, min_input_variance, search, Choice, Constraint, SetQuery,
};
use super::{ChosenSet, Conversion, OptimizeError, Problem, Solution, MAX_PRECISION};
use std::collections::HashMap;
use veil_ir::ParamSet;

/// How much cheaper (relative objective) a grouping must be per set beyond the first to be
/// chosen: an extra set brings its own bootstrap key (keygen time, key bytes) for a gain
/// the objective alone would take however small.
pub const EXTRA_SET_MARGIN: f64 = 0.02;

/// Up to this many partitions every contiguous grouping is tried.
pub const MAX_ENUMERATED_PARTITIONS: usize = 10;

/// Rounds of output-noise capping per grouping before it is declared infeasible.
const CAP_ROUNDS: usize = 12;

/// Validates `problem` and returns the per-TLU error target.
fn validate(problem: &Problem) -> Result<f64, OptimizeError> {
    let bad = |s: String| Err(OptimizeError::InvalidInput(s));
    if problem.partitions.is_empty() {
        return bad("no partitions: give at least one (precision, norm2, tlus)".into());
    }
    for (i, p) in problem.partitions.iter().enumerate() {
        if p.precision == 0 || p.precision > MAX_PRECISION {
            return bad(format!(
                "partition {i}: precision {} bits is outside 1..={MAX_PRECISION}",
                p.precision
            ));
        }
        if !p.norm2.is_finite() || p.norm2 < 0.0 {
            return bad(format!(
                "partition {i}: norm2 {} must be a finite number >= 0 (sum of squared weights)",
                p.norm2
            ));
        }
    }
    let n = problem.partitions.len();
    for (i, c) in problem.crossings.iter().enumerate() {
        if c.from >= n || c.to >= n {
            return bad(format!(
                "crossing {i}: partition index {}->{} out of range (there are {n} partitions)",
                c.from, c.to
            ));
        }
    }
    let tlus: u64 = problem.partitions.iter().map(|p| p.tlus).sum();
    problem.target.per_bootstrap(tlus)
}

/// Rounds `x` up to 3 significant digits (so a printed bound is on the feasible side).
fn ceil_3(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let e = x.log10().floor() - 2.0;
    let s = 10f64.powf(e);
    (x / s * (1.0 + 1e-12)).ceil() * s
}

/// The error for a partition that no set can serve, with the nearest feasible relaxations.
fn infeasible(problem: &Problem, i: usize, p_target: f64) -> OptimizeError {
    let part = &problem.partitions[i];
    let v_min = min_input_variance(part.norm2);
    let mut options = Vec::new();
    let min_pe = p_error_of_variance(part.precision, v_min);
    if min_pe < 0.5 {
        options.push(format!("feasible at p_error >= {:.3e}", ceil_3(min_pe)));
    }
    let m = max_norm2(safe_variance(part.precision, p_target));
    if m >= 1.0 {
        options.push(format!("at norm2 <= {}", m.floor()));
    }
    if let Some(p) = (1..part.precision)
        .rev()
        .find(|&p| min_input_variance(part.norm2) <= safe_variance(p, p_target))
    {
        options.push(format!("at precision <= {p} bits"));
    }
    let relaxation = if options.is_empty() {
        "nothing in the search space (k <= 6, N <= 2^17, n < 2048) comes close: lower the \
         precision (round the TLU input) or the norm2"
            .to_string()
    } else {
        options.join(", or ")
    };
    OptimizeError::Infeasible {
        partition: i,
        precision: part.precision,
        norm2: part.norm2,
        p_error: p_target,
        relaxation,
    }
}

/// A fully evaluated grouping.
struct Evaluated {
    groups: Vec<Vec<usize>>,
    choices: Vec<Choice>,
    conversions: Vec<Conversion>,
    cost: f64,
    /// The objective's value (what groupings are ranked by).
    rank: f64,
    /// Calibrated single-thread latency, ns.
    latency_ns: f64,
}

/// Members, output cap, keyswitch input dimensions and absorbed variances of a group search.
type MemoKey = (Vec<usize>, u64, Vec<usize>, Vec<u64>);

/// Problem data shared by every grouping evaluation, with memoised group searches.
struct Ctx<'a> {
    problem: &'a Problem,
    constraints: Vec<Constraint>,
    /// Per partition: the largest bootstrap output variance its outputs tolerate.
    out_caps: Vec<f64>,
    memo: HashMap<MemoKey, Option<Choice>>,
}

impl Ctx<'_> {
    /// The cheapest set for `members` with output variance at most `cap`, whose keyswitches
    /// into partition `i` may start from big dimension `ks_dims[i]`.
    fn group_search(
        &mut self,
        members: &[usize],
        cap: f64,
        ks_dims: &[usize],
        ext_var: &[f64],
    ) -> Option<Choice> {
        let dims: Vec<usize> = members.iter().map(|&i| ks_dims[i]).collect();
        let ext: Vec<u64> = members.iter().map(|&i| ext_var[i].to_bits()).collect();
        let key = (members.to_vec(), cap.to_bits(), dims, ext);
        if let Some(c) = self.memo.get(&key) {
            return *c;
        }
        let q = SetQuery {
            constraints: members
                .iter()
                .map(|&i| Constraint {
                    ks_input_dim: ks_dims[i],
                    input_variance: ext_var[i],
                    ..self.constraints[i]
                })
                .collect(),
            max_output_variance: cap,
            tlus: members
                .iter()
                .map(|&i| self.problem.partitions[i].tlus)
                .sum(),
            levelled: members
                .iter()
                .map(|&i| self.problem.partitions[i].levelled)
                .sum(),
            noise: self.problem.noise,
            objective: self.problem.objective,
        };
        let r = search(&q);
        self.memo.insert(key, r);
        r
    }

    /// Most variance a TLU input of partition `i` may receive from its dot product's inputs
    /// under `choice` when its keyswitch has variance `ks_variance`.
    fn allowance(&self, i: usize, choice: &Choice, ks_variance: f64) -> f64 {
        let c = self.constraints[i];
        let rest = c.v_safe - ks_variance - choice.ms_variance;
        if c.norm2 == 0.0 {
            if rest >= 0.0 {
                f64::INFINITY
            } else {
                -1.0
            }
        } else {
            rest / c.norm2
        }
    }

    fn evaluate(&mut self, groups: Vec<Vec<usize>>) -> Result<Evaluated, String> {
        let n = self.problem.partitions.len();
        let mut group_of = vec![0; n];
        for (g, members) in groups.iter().enumerate() {
            for &i in members {
                group_of[i] = g;
            }
        }
        let mut caps: Vec<f64> = groups
            .iter()
            .map(|m| {
                m.iter()
                    .map(|&i| self.out_caps[i])
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        // Per consumer partition: the widest big key its keyswitches start from, the producer
        // variance its dot products must absorb, and whether absorbing is still worth trying
        // (otherwise the producer's output noise is capped).
        let mut ks_dims = vec![0usize; n];
        let mut ext_var = vec![0.0f64; n];
        let mut absorb = vec![true; n];
        'rounds: for _ in 0..CAP_ROUNDS {
            let mut choices = Vec::with_capacity(groups.len());
            for (g, members) in groups.iter().enumerate() {
                match self.group_search(members, caps[g], &ks_dims, &ext_var) {
                    Some(c) => choices.push(c),
                    None => {
                        let absorbing: Vec<usize> = members
                            .iter()
                            .copied()
                            .filter(|&i| ext_var[i] > 0.0)
                            .collect();
                        if absorbing.is_empty() {
                            return Err(format!(
                                "group {members:?} infeasible under cap {:e}",
                                caps[g]
                            ));
                        }
                        for i in absorbing {
                            ext_var[i] = 0.0;
                            absorb[i] = false;
                        }
                        continue 'rounds;
                    }
                }
            }
            let mut conversions = Vec::new();
            let (mut conv_rank, mut conv_latency) = (0.0, 0.0);
            let mut changed = false;
            for (ci, c) in self.problem.crossings.iter().enumerate() {
                let (ga, gb) = (group_of[c.from], group_of[c.to]);
                if ga == gb {
                    continue;
                }
                let (a, b) = (&choices[ga], &choices[gb]);
                let (kn_a, kn_b) = (a.k * a.poly_size, b.k * b.poly_size);
                // Keyswitch variance is linear in the input dimension (KS32's body rounding
                // apart).
                let ks_var = b.ks_variance_from(kn_a);
                let allowance = self.allowance(c.to, b, ks_var);
                if allowance > 0.0 && a.br_variance <= allowance {
                    let extra = ks_cost(kn_a, b.n, b.ks.1) - ks_cost(kn_b, b.n, b.ks.1);
                    let o = self.problem.objective;
                    conv_rank += executions(o, c.count)
                        * (ks_weight(o, b.ks_modulus, kn_a, b.n, b.ks.1)
                            - ks_weight(o, b.ks_modulus, kn_b, b.n, b.ks.1));
                    conv_latency += c.count as f64
                        * (ks_latency_ns_mod(b.ks_modulus, kn_a, b.n, b.ks.1)
                            - ks_latency_ns_mod(b.ks_modulus, kn_b, b.n, b.ks.1));
                    conversions.push(Conversion {
                        crossing: ci,
                        from_set: ga,
                        to_set: gb,
                        base_log: b.ks.0,
                        level: b.ks.1,
                        variance: ks_var,
                        cost: c.count as f64 * extra,
                    });
                    continue;
                }
                changed = true;
                if ks_dims[c.to] < kn_a {
                    // The consumer's keyswitch must account for the producer's wider key.
                    ks_dims[c.to] = kn_a;
                } else if allowance <= 0.0 {
                    return Err(format!(
                        "a keyswitch from dimension {kn_a} into partition {} is too noisy",
                        c.to
                    ));
                } else if absorb[c.to] && ext_var[c.to] < a.br_variance {
                    // Let the consumer leave room for the producer's output noise.
                    ext_var[c.to] = a.br_variance;
                } else {
                    caps[ga] = caps[ga].min(allowance / 2.0).min(a.br_variance / 2.0);
                }
            }
            if !changed {
                let cost = choices.iter().map(|c| c.cost).sum::<f64>()
                    + conversions.iter().map(|c| c.cost).sum::<f64>();
                let rank = choices.iter().map(|c| c.rank).sum::<f64>() + conv_rank;
                let latency_ns = choices.iter().map(|c| c.latency_ns).sum::<f64>() + conv_latency;
                return Ok(Evaluated {
                    groups,
                    choices,
                    conversions,
                    cost,
                    rank,
                    latency_ns,
                });
            }
        }
        Err("crossing noise could not be absorbed".into())
    }
}

/// Contiguous groupings of `order` to try, the one-set grouping first.
fn groupings(order: &[usize], precision: impl Fn(usize) -> u8) -> Vec<Vec<Vec<usize>>> {
    let m = order.len();
    let split = |cuts: &dyn Fn(usize) -> bool| -> Vec<Vec<usize>> {
        let mut out = vec![vec![order[0]]];
        for (j, &p) in order.iter().enumerate().skip(1) {
            if cuts(j) {
                out.push(Vec::new());
            }
            out.last_mut().expect("non-empty").push(p);
        }
        out
    };
    if m <= MAX_ENUMERATED_PARTITIONS {
        (0..1u32 << (m - 1))
            .map(|mask| split(&|j| mask >> (j - 1) & 1 == 1))
            .collect()
    } else {
        vec![
            split(&|_| false),
            split(&|j| precision(order[j]) != precision(order[j - 1])),
            split(&|_| true),
        ]
    }
}

fn param_set(problem: &Problem, members: &[usize], c: &Choice, p_error: f64) -> ParamSet {
    ParamSet {
        lwe_dimension: c.n,
        glwe_dimension: c.k,
        polynomial_size: c.poly_size,
        lwe_noise_log2: c
            .distribution
            .min_secure_noise_log2_mod(c.n, c.ks_modulus.log2()),
        glwe_noise_log2: c.distribution.min_secure_noise_log2(c.k * c.poly_size),
        pbs_base_log: c.pbs.0,
        pbs_level: c.pbs.1,
        ks_base_log: c.ks.0,
        ks_level: c.ks.1,
        message_bits: members
            .iter()
            .map(|&i| problem.partitions[i].precision)
            .max()
            .unwrap_or(0),
        p_error,
        noise_distribution: c.distribution,
        modulus_switch: c.modulus_switch,
        ks_modulus: c.ks_modulus,
    }
}

/// Chooses parameters for `problem`: the cheapest assignment of secure sets to partitions that
/// meets the error target under the noise model. Deterministic.
pub fn optimize(problem: &Problem) -> Result<Solution, OptimizeError> {
    let p_target = validate(problem)?;
    let constraints: Vec<Constraint> = problem
        .partitions
        .iter()
        .map(|p| Constraint {
            v_safe: safe_variance(p.precision, p_target),
            norm2: p.norm2,
            ks_input_dim: 0,
            input_variance: 0.0,
        })
        .collect();
    let out_caps: Vec<f64> = problem
        .partitions
        .iter()
        .map(|p| {
            p.outputs
                .iter()
                .map(|o| safe_variance(o.precision, p_target) / o.norm2.max(1e-300))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let mut ctx = Ctx {
        problem,
        constraints,
        out_caps,
        memo: HashMap::new(),
    };
    for i in 0..problem.partitions.len() {
        if ctx
            .group_search(
                &[i],
                ctx.out_caps[i],
                &vec![0; problem.partitions.len()],
                &vec![0.0; problem.partitions.len()],
            )
            .is_none()
        {
            return Err(infeasible(problem, i, p_target));
        }
    }
    let mut order: Vec<usize> = (0..problem.partitions.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&problem.partitions[a], &problem.partitions[b]);
        pa.precision
            .cmp(&pb.precision)
            .then(pa.norm2.total_cmp(&pb.norm2))
            .then(a.cmp(&b))
    });
    let mut best: Option<Evaluated> = None;
    let mut single_set_cost = None;
    let mut last_err = String::new();
    let mut candidates = groupings(&order, |i| problem.partitions[i].precision);
    if problem.single_set {
        candidates.truncate(1);
    }
    for (gi, groups) in candidates.into_iter().enumerate() {
        match ctx.evaluate(groups) {
            Ok(e) => {
                if gi == 0 {
                    single_set_cost = Some(e.cost);
                }
                let score = |e: &Evaluated| {
                    e.rank * (1.0 + EXTRA_SET_MARGIN).powi(e.groups.len() as i32 - 1)
                };
                if best.as_ref().is_none_or(|b| score(&e) < score(b)) {
                    best = Some(e);
                }
            }
            Err(e) => last_err = e,
        }
    }
    let best = best.ok_or(OptimizeError::InfeasibleCrossings(last_err))?;
    Ok(solution(problem, &ctx, best, single_set_cost, p_target))
}

fn solution(
    problem: &Problem,
    ctx: &Ctx<'_>,
    e: Evaluated,
    single_set_cost: Option<f64>,
    p_target: f64,
) -> Solution {
    let n = problem.partitions.len();
    let mut partition_sets = vec![0; n];
    for (g, members) in e.groups.iter().enumerate() {
        for &i in members {
            partition_sets[i] = g;
        }
    }
    // Worst variance at each partition's bootstrap inputs: its own keyswitches, and those of
    // crossings from other sets.
    let mut input_var: Vec<f64> = (0..n)
        .map(|i| {
            let c = &e.choices[partition_sets[i]];
            c.input_variance(ctx.constraints[i].norm2, c.br_variance)
        })
        .collect();
    for conv in &e.conversions {
        let c = &problem.crossings[conv.crossing];
        let (a, b) = (&e.choices[conv.from_set], &e.choices[conv.to_set]);
        let v = ctx.constraints[c.to].norm2 * a.br_variance + conv.variance + b.ms_variance;
        input_var[c.to] = input_var[c.to].max(v);
    }
    let partition_p_errors: Vec<f64> = (0..n)
        .map(|i| p_error_of_variance(problem.partitions[i].precision, input_var[i]))
        .collect();
    let log_ok: f64 = (0..n)
        .map(|i| problem.partitions[i].tlus as f64 * (-partition_p_errors[i]).ln_1p())
        .sum();
    let sets = e
        .groups
        .iter()
        .zip(&e.choices)
        .map(|(members, c)| {
            let pe = members
                .iter()
                .map(|&i| partition_p_errors[i])
                .fold(0.0, f64::max);
            ChosenSet {
                params: param_set(problem, members, c, pe),
                partitions: members.clone(),
                br_variance: c.br_variance,
                ks_variance: c.ks_variance,
                ms_variance: c.ms_variance,
                pbs_cost: super::cost::pbs_cost(c.n, c.k, c.poly_size, c.pbs.1),
                ks_cost: ks_cost(c.k * c.poly_size, c.n, c.ks.1),
                cost: c.cost,
            }
        })
        .collect();
    Solution {
        sets,
        partition_sets,
        conversions: e.conversions,
        cost: e.cost,
        objective: problem.objective,
        estimated_latency_s: e.latency_ns * 1e-9,
        single_set_cost,
        p_error_target: p_target,
        p_error: partition_p_errors.iter().copied().fold(0.0, f64::max),
        partition_p_errors,
        global_p_error: -log_ok.exp_m1(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::{Crossing, ErrorTarget, OutputNoise, Partition};

    fn part(precision: u8, norm2: f64, tlus: u64) -> Partition {
        Partition {
            precision,
            norm2,
            tlus,
            levelled: 0,
            outputs: Vec::new(),
        }
    }

    #[test]
    fn single_partition_meets_target_and_floor() {
        let pe = (-13.9f64).exp2();
        for bits in 1..=8 {
            let s = optimize(&Problem::single(bits, 1.0, 1, ErrorTarget::p_error(pe))).unwrap();
            let set = &s.sets[0].params;
            assert!(set.is_secure(), "{bits}: {:?}", set.insecurity());
            assert!(s.p_error <= pe * (1.0 + 1e-9), "{bits}: {}", s.p_error);
            assert_eq!(set.message_bits, bits);
            assert_eq!(s.partition_sets, vec![0]);
        }
    }

    #[test]
    fn cost_grows_with_precision_and_norm2() {
        let t = ErrorTarget::p_error(1e-5);
        let c = |b, n2| optimize(&Problem::single(b, n2, 1, t)).unwrap().cost;
        for b in 1..8 {
            assert!(c(b, 1.0) <= c(b + 1, 1.0));
        }
        assert!(c(4, 1.0) < c(4, 1024.0));
    }

    #[test]
    fn global_target_is_split_over_tlus_and_stricter_wins() {
        let s = optimize(&Problem::single(3, 1.0, 1000, ErrorTarget::global(1e-5))).unwrap();
        assert!(
            (s.p_error_target - super::super::error::p_error_from_global(1e-5, 1000)).abs() < 1e-20
        );
        assert!(s.global_p_error <= 1e-5 * (1.0 + 1e-9));
        let both = ErrorTarget {
            p_error: Some(1e-3),
            global_p_error: Some(1e-5),
        };
        let s2 = optimize(&Problem::single(3, 1.0, 1000, both)).unwrap();
        assert_eq!(s2.p_error_target, s.p_error_target);
    }

    #[test]
    fn errors_are_clear() {
        let t = ErrorTarget::p_error(1e-9);
        let e = optimize(&Problem::single(12, 1.0, 1, t))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("12 bits") && e.contains("feasible at p_error >="),
            "{e}"
        );
        assert!(e.contains("precision <="), "{e}");
        let e = optimize(&Problem::single(0, 1.0, 1, t))
            .unwrap_err()
            .to_string();
        assert!(e.contains("precision 0"), "{e}");
        let e = optimize(&Problem::single(3, f64::NAN, 1, t))
            .unwrap_err()
            .to_string();
        assert!(e.contains("norm2"), "{e}");
        let e = optimize(&Problem::single(3, 1.0, 1, ErrorTarget::default()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no error target"), "{e}");
        let e = optimize(&Problem::single(3, 1.0, 1, ErrorTarget::p_error(1.5)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
        let mut p = Problem::single(3, 1.0, 1, t);
        p.crossings.push(Crossing {
            from: 0,
            to: 3,
            count: 1,
        });
        assert!(optimize(&p)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn the_relaxation_is_actually_feasible() {
        let t = ErrorTarget::p_error(1e-9);
        let Err(OptimizeError::Infeasible { relaxation, .. }) =
            optimize(&Problem::single(12, 1.0, 1, t))
        else {
            panic!("12 bits at 1e-9 should be infeasible");
        };
        let pe: f64 = relaxation
            .split("p_error >= ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{relaxation}"));
        assert!(optimize(&Problem::single(12, 1.0, 1, ErrorTarget::p_error(pe))).is_ok());
        assert!(optimize(&Problem::single(12, 1.0, 1, ErrorTarget::p_error(pe * 0.9))).is_err());
    }

    /// Many cheap 2-bit TLUs and a few 7-bit ones: splitting beats paying 7-bit parameters for
    /// every TLU, and the crossing keyswitches are counted.
    #[test]
    fn splits_when_cheaper() {
        let p = Problem {
            partitions: vec![part(2, 1.0, 1000), part(7, 1.0, 10)],
            crossings: vec![Crossing {
                from: 0,
                to: 1,
                count: 10,
            }],
            target: ErrorTarget::p_error(1e-5),
            single_set: false,
            noise: Default::default(),
            objective: Default::default(),
        };
        let s = optimize(&p).unwrap();
        assert_eq!(s.sets.len(), 2, "{s:#?}");
        assert_ne!(s.partition_sets[0], s.partition_sets[1]);
        assert_eq!(s.conversions.len(), 1);
        let conv: f64 = s.conversions[0].cost;
        // The 2-bit set's big key is smaller than the 7-bit one's: its keyswitches are cheaper.
        assert!(conv < 0.0, "{s:#?}");
        let sets: f64 = s.sets.iter().map(|c| c.cost).sum();
        assert!((s.cost - sets - conv).abs() <= 1e-9 * s.cost);
        assert!(s.cost < s.single_set_cost.unwrap());
        assert!(s.p_error <= 1e-5 * (1.0 + 1e-9));
        for c in &s.sets {
            assert!(c.params.is_secure());
        }
    }

    /// `single_set` forces the one-set grouping even where splitting is cheaper.
    #[test]
    fn single_set_is_honoured() {
        let mut p = Problem {
            partitions: vec![part(2, 1.0, 1000), part(7, 1.0, 10)],
            crossings: vec![Crossing {
                from: 0,
                to: 1,
                count: 10,
            }],
            target: ErrorTarget::p_error(1e-5),
            single_set: true,
            noise: Default::default(),
            objective: Default::default(),
        };
        let s = optimize(&p).unwrap();
        assert_eq!(s.partition_sets, vec![0, 0]);
        assert_eq!(s.single_set_cost, Some(s.cost));
        p.single_set = false;
        assert!(optimize(&p).unwrap().cost < s.cost);
    }

    /// Equal precisions and TLU counts gain nothing from splitting: one shared set.
    #[test]
    fn shares_when_not_cheaper() {
        let p = Problem {
            partitions: vec![part(4, 1.0, 10), part(4, 1.0, 10)],
            crossings: vec![Crossing {
                from: 0,
                to: 1,
                count: 10,
            }],
            target: ErrorTarget::p_error(1e-5),
            single_set: false,
            noise: Default::default(),
            objective: Default::default(),
        };
        let s = optimize(&p).unwrap();
        assert_eq!(s.partition_sets, vec![0, 0]);
        assert_eq!(s.single_set_cost, Some(s.cost));
    }

    #[test]
    fn deterministic() {
        let p = Problem {
            partitions: vec![part(3, 4.0, 50), part(6, 1.0, 5), part(1, 1.0, 500)],
            crossings: vec![Crossing {
                from: 2,
                to: 1,
                count: 5,
            }],
            target: ErrorTarget::global(1e-4),
            single_set: false,
            noise: Default::default(),
            objective: Default::default(),
        };
        assert_eq!(optimize(&p).unwrap(), optimize(&p).unwrap());
    }

    /// Outputs decoded under a partition's key cap its bootstrap output noise.
    #[test]
    fn outputs_cap_output_noise() {
        let t = ErrorTarget::p_error(1e-5);
        let free = optimize(&Problem::single(3, 1.0, 10, t)).unwrap();
        let mut p = Problem::single(3, 1.0, 10, t);
        p.partitions[0].outputs.push(OutputNoise {
            precision: 8,
            norm2: 64.0,
        });
        let s = optimize(&p).unwrap();
        let cap = safe_variance(8, s.p_error_target) / 64.0;
        assert!(s.sets[0].br_variance <= cap, "{s:#?}");
        assert!(
            free.sets[0].br_variance > cap,
            "the test must bind: {free:#?}"
        );
        assert!(s.cost > free.cost);
    }

    /// A crossing from a big producer key into a small consumer: the predicted consumer error
    /// accounts for the wider keyswitch and stays within target.
    #[test]
    fn crossing_from_a_wide_key_stays_within_target() {
        let p = Problem {
            partitions: vec![part(6, 1.0, 10), part(3, 8.0, 200)],
            crossings: vec![Crossing {
                from: 0,
                to: 1,
                count: 200,
            }],
            target: ErrorTarget::p_error(2f64.powi(-40)),
            single_set: false,
            noise: Default::default(),
            objective: Default::default(),
        };
        let s = optimize(&p).unwrap();
        assert!(s.p_error <= 2f64.powi(-40) * (1.0 + 1e-9), "{s:#?}");
        if s.sets.len() == 2 {
            let c = &s.conversions[0];
            let (a, b) = (&s.sets[c.from_set], &s.sets[c.to_set]);
            let ratio = a.params.big_lwe_dimension() as f64 / b.params.big_lwe_dimension() as f64;
            assert!((c.variance / b.ks_variance - ratio).abs() < 1e-9);
        }
    }

    /// Each objective's choice is optimal for what it minimises, and all meet the target.
    #[test]
    fn objectives_minimise_what_they_say() {
        use crate::optimizer::keys::key_sizes;
        use crate::optimizer::Objective;
        let target = 2f64.powi(-40);
        let bytes = |s: &Solution| -> u64 {
            s.sets
                .iter()
                .map(|c| {
                    let z = key_sizes(&c.params);
                    z.bsk_bytes + z.ksk_bytes
                })
                .sum()
        };
        for bits in [1, 3, 4, 6] {
            let solve = |o| {
                let mut p = Problem::single(bits, 4.0, 20, ErrorTarget::p_error(target));
                p.objective = o;
                optimize(&p).unwrap()
            };
            let (m, l, k) = (
                solve(Objective::Model),
                solve(Objective::Latency),
                solve(Objective::Keys),
            );
            let le = |a: f64, b: f64| a <= b * (1.0 + 1e-12);
            assert!(le(m.cost, l.cost) && le(m.cost, k.cost), "{bits}: model");
            assert!(
                le(l.estimated_latency_s, m.estimated_latency_s)
                    && le(l.estimated_latency_s, k.estimated_latency_s),
                "{bits}: latency"
            );
            assert!(
                bytes(&k) <= bytes(&m) && bytes(&k) <= bytes(&l),
                "{bits}: keys"
            );
            for s in [&m, &l, &k] {
                assert!(s.p_error <= target * (1.0 + 1e-9));
                assert!(s.sets.iter().all(|c| c.params.is_secure()));
            }
        }
        for o in [Objective::Model, Objective::Latency, Objective::Keys] {
            assert_eq!(Objective::parse(o.name()), Some(o));
        }
        assert_eq!(Objective::parse("fast"), None);
    }

    #[test]
    fn ceil_3_rounds_up() {
        assert_eq!(ceil_3(1.2341e-5), 1.24e-5);
        assert!(ceil_3(6.5e-5) >= 6.5e-5);
    }
}
