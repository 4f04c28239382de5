//! The search space (Concrete's) and its precomputed Pareto fronts of decompositions.
//!
//! For a bootstrap on GLWE `(k, N)` the cost of a CMUX depends only on the level count `l`, so
//! for each `l` only the base minimising the noise matters, and a level is kept only when it
//! lowers the noise of every cheaper level: the front is short (a few points) and sorted by
//! increasing cost, decreasing noise. The same holds for keyswitches into a small key of
//! dimension `n`, whose noise is proportional to the input dimension, so one front per `n` serves
//! every `(k, N)`. The fronts do not depend on the problem and are built once per process and
//! noise distribution (the key noise at the security floor differs between Gaussian and TUniform).
//! Keyswitch fronts exist for both keyswitch moduli: a KS32 key (modulo `2^32`) keeps
//! `base_log * level <= 32` and its noise floor in `2^32` units (see [`ks_front_mod`]).

use super::cost::{cmux_cost, cmux_latency_ns};
use super::noise::{cmux_variance, keyswitch_variance};
use super::security::{dimension_is_securable, min_secure_variance, min_secure_variance_mod};
use std::sync::OnceLock;
use veil_ir::{KsModulus, NoiseDistribution};

/// GLWE dimensions searched: `k` in `1..=6`.
pub const GLWE_DIMENSIONS: std::ops::RangeInclusive<usize> = 1..=6;
/// `log2 N` searched: `8..=17`.
pub const LOG2_POLY_SIZES: std::ops::RangeInclusive<u32> = 8..=17;
/// Small LWE dimensions searched: `n` in `512..2048`, every integer.
pub const LWE_DIMENSIONS: std::ops::Range<usize> = 512..2048;
/// Decompositions satisfy `base_log * level <= MAX_DECOMPOSITION_BITS` (the torus has 64 bits).
pub const MAX_DECOMPOSITION_BITS: usize = 64;

/// One point of a bootstrap-key decomposition front.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PbsPoint {
    /// Decomposition levels.
    pub level: usize,
    /// Decomposition base log.
    pub base_log: usize,
    /// Noise added by one CMUX.
    pub cmux_variance: f64,
    /// Cost of one CMUX (Concrete's model).
    pub cmux_cost: f64,
    /// Calibrated single-thread latency of one CMUX, in nanoseconds.
    pub cmux_latency_ns: f64,
    /// Bytes of one GGSW of the bootstrap key (`(k+1)^2 l N` `u64`).
    pub ggsw_bytes: f64,
}

/// One point of a keyswitch-key decomposition front.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsPoint {
    /// Decomposition levels.
    pub level: usize,
    /// Decomposition base log.
    pub base_log: usize,
    /// Keyswitch noise per input dimension (multiply by `n_in`).
    pub unit_variance: f64,
}

/// The bootstrap fronts of one `(k, N)`.
#[derive(Clone, Debug)]
pub struct GlweChoice {
    /// GLWE dimension `k`.
    pub k: usize,
    /// Polynomial size `N`.
    pub poly_size: usize,
    /// Pareto front of decompositions (increasing level and cost, decreasing noise).
    pub pbs_front: Vec<PbsPoint>,
}

/// The precomputed search space of one noise distribution.
#[derive(Debug)]
pub struct Space {
    /// The distribution of every key's noise (at its security floor).
    pub distribution: NoiseDistribution,
    /// Every secure `(k, N)` (`k N >= 450`), ordered by `k` then `N`.
    pub glwe: Vec<GlweChoice>,
    /// Keyswitch fronts, indexed by `n - LWE_DIMENSIONS.start`.
    pub ks_fronts: Vec<Vec<KsPoint>>,
    /// Keyswitch fronts of KS32 keys (modulo `2^32`), indexed like `ks_fronts`.
    pub ks32_fronts: Vec<Vec<KsPoint>>,
}

/// Pareto front over `level = 1, 2, ...` of `min over base_log of noise(base_log, level)`.
fn front<T>(
    max_bits: usize,
    mut noise: impl FnMut(usize, usize) -> f64,
    mut point: impl FnMut(usize, usize, f64) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut best = f64::INFINITY;
    for level in 1..=max_bits {
        let mut arg = None;
        let mut min = f64::INFINITY;
        for base_log in 1..=max_bits / level {
            let v = noise(base_log, level);
            if v < min {
                min = v;
                arg = Some(base_log);
            }
        }
        if let Some(b) = arg {
            // Keep only strict improvements (with a relative margin against float ties).
            if min < best * (1.0 - 1e-12) {
                best = min;
                out.push(point(level, b, min));
            }
        }
    }
    out
}

/// The bootstrap front of GLWE `(k, N)` with the key noise (of distribution `dist`) at the
/// security floor for `k N`.
pub fn pbs_front(dist: NoiseDistribution, k: usize, poly_size: usize) -> Vec<PbsPoint> {
    let s2 = min_secure_variance(dist, k * poly_size);
    front(
        MAX_DECOMPOSITION_BITS,
        |b, l| cmux_variance(k, poly_size, b, l, s2),
        |level, base_log, v| PbsPoint {
            level,
            base_log,
            cmux_variance: v,
            cmux_cost: cmux_cost(k, poly_size, level),
            cmux_latency_ns: cmux_latency_ns(k, poly_size, level),
            ggsw_bytes: (8 * (k + 1) * (k + 1) * level * poly_size) as f64,
        },
    )
}

/// The keyswitch front into a key of dimension `n_out` whose encryptions (of distribution
/// `dist`) sit at the security floor (noise per input dimension).
pub fn ks_front(dist: NoiseDistribution, n_out: usize) -> Vec<KsPoint> {
    ks_front_mod(dist, n_out, KsModulus::Q64)
}

/// [`ks_front`] of keys modulo `2^ks_modulus`: for KS32 the decomposition keeps
/// `base_log * level <= 32` and the key noise sits at the floor in `2^32` units
/// ([`min_secure_variance_mod`]). The KS32 body rounding does not scale with the input
/// dimension and is not part of the per-dimension variance
/// ([`super::noise::ks_constant_variance`]).
pub fn ks_front_mod(dist: NoiseDistribution, n_out: usize, ks_modulus: KsModulus) -> Vec<KsPoint> {
    let q = ks_modulus.log2();
    let s2 = match ks_modulus {
        KsModulus::Q64 => min_secure_variance(dist, n_out),
        KsModulus::Q32 => min_secure_variance_mod(dist, n_out, q),
    };
    front(
        (q as usize).min(MAX_DECOMPOSITION_BITS),
        |b, l| keyswitch_variance(1, b, l, s2),
        |level, base_log, v| KsPoint {
            level,
            base_log,
            unit_variance: v,
        },
    )
}

impl Space {
    fn build(distribution: NoiseDistribution) -> Space {
        let mut glwe = Vec::new();
        for k in GLWE_DIMENSIONS {
            for log_n in LOG2_POLY_SIZES {
                let poly_size = 1usize << log_n;
                if !dimension_is_securable(k * poly_size) {
                    continue;
                }
                glwe.push(GlweChoice {
                    k,
                    poly_size,
                    pbs_front: pbs_front(distribution, k, poly_size),
                });
            }
        }
        let ks_fronts = LWE_DIMENSIONS.map(|n| ks_front(distribution, n)).collect();
        let ks32_fronts = LWE_DIMENSIONS
            .map(|n| ks_front_mod(distribution, n, KsModulus::Q32))
            .collect();
        Space {
            distribution,
            glwe,
            ks_fronts,
            ks32_fronts,
        }
    }

    /// The process-wide space of `dist`, built on first use (a few milliseconds).
    pub fn get(dist: NoiseDistribution) -> &'static Space {
        static GAUSSIAN: OnceLock<Space> = OnceLock::new();
        static TUNIFORM: OnceLock<Space> = OnceLock::new();
        match dist {
            NoiseDistribution::Gaussian => GAUSSIAN.get_or_init(|| Space::build(dist)),
            NoiseDistribution::TUniform => TUNIFORM.get_or_init(|| Space::build(dist)),
        }
    }

    /// The keyswitch front into small dimension `n` (which must lie in [`LWE_DIMENSIONS`]).
    pub fn ks_front(&self, n: usize) -> &[KsPoint] {
        &self.ks_fronts[n - LWE_DIMENSIONS.start]
    }

    /// The keyswitch front into small dimension `n` of keys modulo `2^ks_modulus`.
    pub fn ks_front_mod(&self, n: usize, ks_modulus: KsModulus) -> &[KsPoint] {
        match ks_modulus {
            KsModulus::Q64 => self.ks_front(n),
            KsModulus::Q32 => &self.ks32_fronts[n - LWE_DIMENSIONS.start],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_are_pareto() {
        let s = Space::get(NoiseDistribution::Gaussian);
        assert!(s.glwe.iter().all(|g| g.k * g.poly_size >= 450));
        for g in &s.glwe {
            assert!(!g.pbs_front.is_empty());
            for w in g.pbs_front.windows(2) {
                assert!(w[0].cmux_cost < w[1].cmux_cost);
                assert!(w[0].cmux_latency_ns < w[1].cmux_latency_ns);
                assert!(w[0].ggsw_bytes < w[1].ggsw_bytes);
                assert!(w[0].cmux_variance > w[1].cmux_variance);
            }
        }
        for n in [512, 801, 2047] {
            let f = s.ks_front(n);
            assert!(f.len() >= 3, "{n}: {f:?}");
            for w in f.windows(2) {
                assert!(w[0].level < w[1].level && w[0].unit_variance > w[1].unit_variance);
            }
        }
        // KS32 fronts: never below the 64-bit ones (same or noisier keys, fewer bases), equal
        // where the floor does not clamp and the best decomposition fits 32 bits.
        for n in [512, 918, 1271, 1500, 2047] {
            let (f64_, f32_) = (s.ks_front(n), s.ks_front_mod(n, KsModulus::Q32));
            assert!(f32_.iter().all(|p| p.base_log * p.level <= 32));
            for p in f32_ {
                let q = f64_.iter().find(|q| q.level == p.level);
                assert!(
                    q.is_none_or(|q| q.unit_variance <= p.unit_variance),
                    "{n} {p:?}"
                );
            }
        }
        assert_eq!(
            s.ks_front(918)[..3],
            s.ks_front_mod(918, KsModulus::Q32)[..3]
        );
        // The best one-level bootstrap decomposition for k = 2, N = 1024 has base 2^22-2^24
        // (Concrete picks 23).
        let g = s
            .glwe
            .iter()
            .find(|g| g.k == 2 && g.poly_size == 1024)
            .unwrap();
        assert_eq!(g.pbs_front[0].level, 1);
        assert!(
            (22..=24).contains(&g.pbs_front[0].base_log),
            "{:?}",
            g.pbs_front[0]
        );
    }
}
