//! Exhaustive search with pruning for the cheapest parameter set meeting noise constraints.
//!
//! A set `(k, N, n, PBS decomposition, KS decomposition)` serves a list of [`Constraint`]s (one
//! per partition it carries): each needs `norm2 * s2_BR + s2_KS + s2_MS <= V_safe`, the atomic
//! pattern Dot -> KS -> MS -> PBS of Concrete's optimizer (Bergerat et al., ePrint 2022/704), with the KS from the big key `k N` to the small
//! key `n`. Key noise always sits at the 128-bit floor of its dimension, so the search is over
//! dimensions and decompositions under the noise pattern [`NoiseOptions`] resolves to: the noise
//! distribution (Gaussian or TUniform, each at its own floor) and the modulus switch (standard
//! or centered); a free choice resolves by dominance (see [`NoiseOptions`]). The keyswitch
//! modulus (64-bit or KS32) is searched as its own pattern when the objective can tell them
//! apart ([`NoiseOptions::ks_moduli`]): KS32 keys sit at their floor in `2^32` units, its
//! keyswitch adds the body rounding of the scalar change, and its latency and key bytes are
//! those of `u32` words.
//!
//! Pruning, all exact (never discards a cheaper feasible point):
//! - decompositions come from Pareto fronts ([`super::space`]);
//! - for each `(k, N)`, `s2_MS` grows with `n`: the `n` loop stops at the first `n` where it
//!   alone exceeds the tightest `V_safe` (and `N` is skipped when `n = 512` already does);
//! - the cost lower bound `n * CMUX(l_min) + KS(l = 1)` grows with `n`: the loop stops once it
//!   reaches the best cost found; the PBS front is cut the same way;
//! - for each PBS point the cheapest KS level meeting the remaining budget is taken directly.
//!
//! Ties are broken by the fixed iteration order (`k`, `N`, `n`, levels ascending): the result is
//! deterministic.

use super::cost::{ks_cost, ks_latency_ns_mod, levelled_cost, levelled_latency_ns};
use super::keys::ksk_bytes_mod;
use super::noise::{blind_rotation_variance, ks_constant_variance, ms_variance, ms_variance_mod};
use super::space::{PbsPoint, Space, LWE_DIMENSIONS};
use super::{NoiseOptions, Objective};
use veil_ir::{KsModulus, ModulusSwitch, NoiseDistribution};

/// One noise constraint on a bootstrap input: `norm2 * s2_in + s2_KS + s2_MS <= v_safe` where
/// `s2_in` is the variance of the inputs of the dot product feeding it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constraint {
    /// The largest variance the bootstrap input may have ([`super::error::safe_variance`]).
    pub v_safe: f64,
    /// Squared 2-norm of the levelled dot product before the bootstrap.
    pub norm2: f64,
    /// Largest big-key dimension its keyswitches start from when that exceeds the set's own
    /// `k N` (inputs produced under another set's key); 0 for none.
    pub ks_input_dim: usize,
    /// Variance of the dot product's inputs when they come from another set (the set's own
    /// bootstrap output variance counts when larger); 0 for none.
    pub input_variance: f64,
}

/// What one parameter set must satisfy and how its cost is counted.
#[derive(Clone, Debug, PartialEq)]
pub struct SetQuery {
    /// Constraints of every partition the set serves.
    pub constraints: Vec<Constraint>,
    /// Upper bound on the PBS output variance (`f64::INFINITY` for none): used when another
    /// partition consumes this set's outputs.
    pub max_output_variance: f64,
    /// Bootstraps (each with its keyswitch) executed under the set.
    pub tlus: u64,
    /// Levelled size executed on the set's big key (cost `size * k N`).
    pub levelled: u64,
    /// Noise patterns the set may use.
    pub noise: NoiseOptions,
    /// What the search minimises.
    pub objective: Objective,
}

/// The objective's value of one CMUX of PBS point `p`.
fn cmux_weight(o: Objective, p: &PbsPoint) -> f64 {
    match o {
        Objective::Model => p.cmux_cost,
        Objective::Latency => p.cmux_latency_ns,
        Objective::Keys => p.ggsw_bytes,
    }
}

/// The objective's value of one keyswitch (or, for [`Objective::Keys`], of its key) from
/// dimension `n_in` to `n_out` with `level` levels into a key modulo `2^ks_modulus`.
pub fn ks_weight(
    o: Objective,
    ks_modulus: KsModulus,
    n_in: usize,
    n_out: usize,
    level: usize,
) -> f64 {
    match o {
        Objective::Model => ks_cost(n_in, n_out, level),
        Objective::Latency => ks_latency_ns_mod(ks_modulus, n_in, n_out, level),
        Objective::Keys => ksk_bytes_mod(ks_modulus, n_in, n_out, level) as f64,
    }
}

/// The objective's value of levelled work of `size` on ciphertexts of dimension `dim`.
fn levelled_weight(o: Objective, size: u64, dim: usize) -> f64 {
    match o {
        Objective::Model => levelled_cost(size, dim),
        Objective::Latency => levelled_latency_ns(size, dim),
        Objective::Keys => 0.0,
    }
}

/// How many times one bootstrap's (keyswitch's) weight counts for `count` executions: every
/// execution for work objectives, once (the key) for [`Objective::Keys`].
pub fn executions(o: Objective, count: u64) -> f64 {
    match o {
        Objective::Keys => 1.0,
        Objective::Model | Objective::Latency => count as f64,
    }
}

/// A chosen point of the space and its noise and cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    /// GLWE dimension.
    pub k: usize,
    /// Polynomial size.
    pub poly_size: usize,
    /// Small LWE dimension.
    pub n: usize,
    /// PBS decomposition `(base_log, level)`.
    pub pbs: (usize, usize),
    /// KS decomposition `(base_log, level)`.
    pub ks: (usize, usize),
    /// Noise distribution of every key and encryption.
    pub distribution: NoiseDistribution,
    /// Modulus switch of the bootstraps.
    pub modulus_switch: ModulusSwitch,
    /// Modulus of the keyswitch keys (KS32 or 64-bit).
    pub ks_modulus: KsModulus,
    /// PBS output variance.
    pub br_variance: f64,
    /// Keyswitch variance (from the set's own big key).
    pub ks_variance: f64,
    /// Modulus switch variance.
    pub ms_variance: f64,
    /// Cost of one KS + PBS.
    pub tlu_cost: f64,
    /// Total cost under the query's counts (Concrete's model).
    pub cost: f64,
    /// The query's objective of the set's work under its counts (see [`Objective`]).
    pub rank: f64,
    /// Calibrated single-thread latency of the set's bootstraps and keyswitches, in ns.
    pub latency_ns: f64,
}

impl Choice {
    /// Variance at the bootstrap input of a partition with dot product `norm2` whose inputs
    /// have variance `input_variance`.
    pub fn input_variance(&self, norm2: f64, input_variance: f64) -> f64 {
        norm2 * input_variance + self.ks_variance + self.ms_variance
    }

    /// The variance of this set's keyswitch when it starts from a big key of dimension `n_in`
    /// instead of its own `k N` (a crossing): the per-dimension part scales, the KS32 body
    /// rounding does not.
    pub fn ks_variance_from(&self, n_in: usize) -> f64 {
        let c = ks_constant_variance(self.ks_modulus);
        (self.ks_variance - c) * n_in as f64 / (self.k * self.poly_size) as f64 + c
    }
}

/// The cheapest point satisfying `q`, or `None` when no point of the space does.
pub fn search(q: &SetQuery) -> Option<Choice> {
    let v_min = q
        .constraints
        .iter()
        .map(|c| c.v_safe)
        .fold(f64::INFINITY, f64::min);
    if q.constraints.is_empty() || v_min.is_nan() || v_min <= 0.0 {
        return None;
    }
    let space = Space::get(q.noise.distribution());
    let mut best: Option<Choice> = None;
    for &ksm in q.noise.ks_moduli(q.objective) {
        if let Some(c) = search_pattern(q, v_min, space, q.noise.modulus_switch(), ksm) {
            if best.is_none_or(|b| c.rank < b.rank) {
                best = Some(c);
            }
        }
    }
    best
}

/// [`search`] under one noise distribution (`space`), modulus switch and keyswitch modulus.
fn search_pattern(
    q: &SetQuery,
    v_min: f64,
    space: &Space,
    ms_kind: ModulusSwitch,
    ksm: KsModulus,
) -> Option<Choice> {
    let ks_const = ks_constant_variance(ksm);
    let ms_variance = |kind, n, poly| ms_variance_mod(kind, ksm, n, poly);
    let mut best = None;
    // The search ranks by the objective of the query; with zero TLUs it still ranks by one TLU.
    let o = q.objective;
    let count = executions(o, q.tlus.max(1));
    let rank = |tlu: f64, lev: f64| count * tlu + lev;
    let mut best_rank = f64::INFINITY;
    for g in &space.glwe {
        let kn = g.k * g.poly_size;
        let lev = levelled_weight(o, q.levelled, kn + 1);
        let n0 = LWE_DIMENSIONS.start;
        if ms_variance(ms_kind, n0, g.poly_size) >= v_min {
            continue;
        }
        let cheapest = cmux_weight(o, &g.pbs_front[0]);
        for n in LWE_DIMENSIONS {
            let ms = ms_variance(ms_kind, n, g.poly_size);
            if ms >= v_min {
                break;
            }
            let ks_min = ks_weight(o, ksm, kn, n, 1);
            if rank(n as f64 * cheapest + ks_min, lev) >= best_rank {
                break;
            }
            let ks_front = space.ks_front_mod(n, ksm);
            for p in &g.pbs_front {
                let pbs = n as f64 * cmux_weight(o, p);
                if rank(pbs + ks_min, lev) >= best_rank {
                    break;
                }
                let br = blind_rotation_variance(n, p.cmux_variance);
                if br > q.max_output_variance {
                    continue;
                }
                // Keyswitch variance is `n_in * unit`: each constraint bounds the unit.
                let unit_budget = q
                    .constraints
                    .iter()
                    .map(|c| {
                        (c.v_safe - c.norm2 * br.max(c.input_variance) - ms - ks_const)
                            / kn.max(c.ks_input_dim) as f64
                    })
                    .fold(f64::INFINITY, f64::min);
                if unit_budget <= 0.0 {
                    continue;
                }
                let Some(ks) = ks_front.iter().find(|s| s.unit_variance <= unit_budget) else {
                    continue;
                };
                let tlu = pbs + ks_weight(o, ksm, kn, n, ks.level);
                let r = rank(tlu, lev);
                if r < best_rank {
                    best_rank = r;
                    let tlu_cost = n as f64 * p.cmux_cost + ks_cost(kn, n, ks.level);
                    let tlu_latency =
                        n as f64 * p.cmux_latency_ns + ks_latency_ns_mod(ksm, kn, n, ks.level);
                    best = Some(Choice {
                        k: g.k,
                        poly_size: g.poly_size,
                        n,
                        pbs: (p.base_log, p.level),
                        ks: (ks.base_log, ks.level),
                        distribution: space.distribution,
                        modulus_switch: ms_kind,
                        ks_modulus: ksm,
                        br_variance: br,
                        ks_variance: ks.unit_variance * kn as f64 + ks_const,
                        ms_variance: ms,
                        tlu_cost,
                        cost: q.tlus as f64 * tlu_cost + levelled_cost(q.levelled, kn + 1),
                        rank: executions(o, q.tlus) * tlu + lev,
                        latency_ns: q.tlus as f64 * tlu_latency
                            + levelled_latency_ns(q.levelled, kn + 1),
                    });
                }
            }
        }
    }
    best
}

/// The smallest bootstrap-input variance any point of the space reaches for a dot product of
/// `norm2` (cost ignored; Gaussian noise and the centered modulus switch, the least noisy
/// pattern): used to say how far an infeasible request is from feasibility.
pub fn min_input_variance(norm2: f64) -> f64 {
    let mut best = f64::INFINITY;
    let space = Space::get(NoiseDistribution::Gaussian);
    for g in &space.glwe {
        let kn = (g.k * g.poly_size) as f64;
        let pbs = g.pbs_front.last().expect("fronts are never empty");
        for n in LWE_DIMENSIONS {
            let ks = space.ks_front(n).last().expect("fronts are never empty");
            let v = norm2 * blind_rotation_variance(n, pbs.cmux_variance)
                + kn * ks.unit_variance
                + ms_variance(ModulusSwitch::Centered, n, g.poly_size);
            best = best.min(v);
        }
    }
    best
}

/// The largest dot-product `norm2` any point of the space tolerates under `v_safe` (0 when even
/// a zero norm is infeasible).
pub fn max_norm2(v_safe: f64) -> f64 {
    let space = Space::get(NoiseDistribution::Gaussian);
    let mut best: f64 = 0.0;
    for g in &space.glwe {
        let kn = (g.k * g.poly_size) as f64;
        let pbs = g.pbs_front.last().expect("fronts are never empty");
        for n in LWE_DIMENSIONS {
            let ks = space.ks_front(n).last().expect("fronts are never empty");
            let rest = v_safe
                - kn * ks.unit_variance
                - ms_variance(ModulusSwitch::Centered, n, g.poly_size);
            if rest > 0.0 {
                best = best.max(rest / blind_rotation_variance(n, pbs.cmux_variance));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::error::safe_variance;

    fn query(precision: u8, norm2: f64, p_error: f64) -> SetQuery {
        SetQuery {
            constraints: vec![Constraint {
                v_safe: safe_variance(precision, p_error),
                norm2,
                ks_input_dim: 0,
                input_variance: 0.0,
            }],
            max_output_variance: f64::INFINITY,
            tlus: 1,
            levelled: 0,
            noise: NoiseOptions::default(),
            objective: Objective::Model,
        }
    }

    /// Brute force over the whole space (no pruning, full decomposition grid) on a reduced `n`
    /// range must agree with the pruned search on that range.
    #[test]
    fn pruning_is_exact_on_a_slice() {
        use crate::optimizer::cost::{cmux_cost, ks_cost};
        use crate::optimizer::noise::{cmux_variance, keyswitch_variance};
        use crate::optimizer::security::min_secure_variance;
        let q = query(3, 1.0, 1e-3);
        let floor = |d: usize| min_secure_variance(NoiseDistribution::Gaussian, d);
        let v = q.constraints[0].v_safe;
        let got = search(&q).expect("3 bits is feasible");
        assert_eq!(
            (got.distribution, got.modulus_switch),
            (NoiseDistribution::Gaussian, ModulusSwitch::Centered)
        );
        // Brute force at the chosen (k, N) over every n, and every decomposition.
        let (k, big_n) = (got.k, got.poly_size);
        let kn = k * big_n;
        let mut best = f64::INFINITY;
        for n in LWE_DIMENSIONS {
            for lp in 1..=8 {
                for bp in 1..=64 / lp {
                    let br = n as f64 * cmux_variance(k, big_n, bp, lp, floor(kn));
                    for lk in 1..=12 {
                        for bk in 1..=64 / lk {
                            let ks = keyswitch_variance(kn, bk, lk, floor(n));
                            let ms = ms_variance(ModulusSwitch::Centered, n, big_n);
                            if br + ks + ms <= v {
                                let c = n as f64 * cmux_cost(k, big_n, lp) + ks_cost(kn, n, lk);
                                best = best.min(c);
                            }
                        }
                    }
                }
            }
        }
        assert!(
            (got.tlu_cost - best).abs() <= 1e-9 * best,
            "{got:?} vs brute {best}"
        );
        assert!(got.input_variance(1.0, got.br_variance) <= v);
    }

    #[test]
    fn infeasible_and_bounds() {
        assert!(search(&query(20, 1.0, 1e-9)).is_none());
        let m = min_input_variance(1.0);
        assert!(m > 0.0 && m < safe_variance(8, 1e-9));
        assert!(max_norm2(safe_variance(4, 2f64.powi(-14))) > 1e3);
        assert_eq!(max_norm2(0.0), 0.0);
    }

    /// Forcing each pattern never beats the free choice, across precisions and targets.
    #[test]
    fn free_patterns_resolve_by_dominance() {
        for (bits, p_error) in [
            (1, 1e-3),
            (4, 2f64.powi(-14)),
            (6, 2f64.powi(-40)),
            (4, 2f64.powi(-128)),
        ] {
            let free = search(&query(bits, 1.0, p_error)).unwrap();
            for dist in [NoiseDistribution::Gaussian, NoiseDistribution::TUniform] {
                for ms in [ModulusSwitch::Standard, ModulusSwitch::Centered] {
                    let mut q = query(bits, 1.0, p_error);
                    q.noise = NoiseOptions {
                        distribution: Some(dist),
                        modulus_switch: Some(ms),
                        ks_modulus: None,
                    };
                    let forced = search(&q).unwrap();
                    assert!(free.cost <= forced.cost, "{bits} {dist:?} {ms:?}");
                }
            }
        }
    }

    /// Under the latency objective a free keyswitch modulus takes KS32 (strictly better than
    /// forcing 2^64), its noise (KS32 body rounding included) fits the budget, and a crossing
    /// scales only the per-dimension part of its keyswitch variance.
    #[test]
    fn ks32_under_latency() {
        let mut q = query(4, 1.0, 2f64.powi(-40));
        q.objective = Objective::Latency;
        let free = search(&q).unwrap();
        assert_eq!(free.ks_modulus, KsModulus::Q32);
        assert!(free.ks.0 * free.ks.1 <= 32);
        assert!(free.input_variance(1.0, free.br_variance) <= q.constraints[0].v_safe);
        let c = ks_constant_variance(KsModulus::Q32);
        assert!(c > 0.0 && free.ks_variance > c);
        let kn = free.k * free.poly_size;
        let twice = free.ks_variance_from(2 * kn);
        assert!((twice - (2.0 * (free.ks_variance - c) + c)).abs() <= 1e-12 * twice);
        q.noise.ks_modulus = Some(KsModulus::Q64);
        let q64 = search(&q).unwrap();
        assert_eq!(q64.ks_modulus, KsModulus::Q64);
        assert!(free.rank < q64.rank && free.latency_ns < q64.latency_ns);
        // Under Concrete's model a free choice keeps 2^64 and forcing KS32 never helps.
        let m = search(&query(4, 1.0, 2f64.powi(-40))).unwrap();
        let mut q32 = query(4, 1.0, 2f64.powi(-40));
        q32.noise.ks_modulus = Some(KsModulus::Q32);
        assert_eq!(m.ks_modulus, KsModulus::Q64);
        assert!(m.cost <= search(&q32).unwrap().cost);
    }

    #[test]
    fn output_cap_is_honoured() {
        let free = search(&query(2, 1.0, 1e-3)).unwrap();
        let mut q = query(2, 1.0, 1e-3);
        q.max_output_variance = free.br_variance / 100.0;
        let capped = search(&q).unwrap();
        assert!(capped.br_variance <= free.br_variance / 100.0);
        assert!(capped.cost >= free.cost);
    }
}
