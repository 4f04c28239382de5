//! Noise, cost and a small parameter search for WoP-PBS lookups of up to 16-bit inputs
//! (`veil_runtime::wopbs`): bit extraction, circuit bootstrap, vertical packing (Carpov,
//! Izabachène and Mollimard; Bergerat et al., "Parameter Optimization and Larger Precision for
//! (T)FHE", J. Cryptology 2023; the construction Concrete and tfhe-rs use above 8 bits).
//!
//! Noise (torus-normalised variances, key noise at the 128-bit floor of its dimension, the
//! building blocks of [`super::noise`]), for a `w`-bit lookup on a set `(n, k, N)`:
//!
//! - one-bit bootstrap output: `V_PBS = n * CMUX(k, N, pbs, s2_GLWE)`;
//! - bit `j` (0 = least significant) enters its bootstraps after `w - j` doublings of the
//!   input (its lower bits subtracted), a big-to-small keyswitch and the modulus switch:
//!   `V_j = 4^(w-j) (V_in + j V_PBS) + V_KS(kN -> n) + V_MS(n, N)`, and decodes wrongly when
//!   its error exceeds a quarter torus: `p_j = erfc(1/4 / sqrt(2 V_j))`. Each bit feeds one
//!   extraction bootstrap (all but the most significant) and `l_cbs` circuit-bootstrap
//!   bootstraps, all of one ciphertext; the union bound gives
//!   `p_error = sum_j (l_cbs + [j < w-1]) p_j`;
//! - circuit bootstrap: a GGSW row is a one-bit bootstrap followed by a PFPKS (a keyswitch
//!   from the big LWE key to the GLWE key): `V_GGSW = V_PBS + V_KS(kN, pfks, s2_GLWE)`;
//! - vertical packing: `2^w / N - 1` CMuxes (tree depth `w - log2 N`) then a blind rotation on
//!   `min(w, log2 N)` bits, every path through `w` external products with the GGSWs:
//!   `V_out = w * CMUX(k, N, cbs, V_GGSW)` (the table is a trivial, noiseless GLWE);
//! - the output carries `out_bits` bits when `V_out <= V_safe(out_bits, p_error)`.
//!
//! The input may use a quarter of `V_safe(w)` (`V_in = V_safe(w) / 4`, see
//! `WopParams::input_variance_fraction`); the rest is left to the keyswitch and modulus switch.
//!
//! Cost (Concrete's units, [`super::cost`]): `(w-1)(KS + PBS) + KS + w l_cbs (PBS + (k+1)
//! PFPKS) + (2^w/N - 1 + min(w, log2 N)) CMUX(l_cbs)`, with `PFPKS = (kN+1) l_pfks (k+1) N`
//! multiply-adds.
//!
//! The search ([`search`]) runs over `(k, N) in {(1, 2048), (2, 1024)}` (GLWE dimension 2048;
//! larger `k` is as cheap in this model but makes the PFPKS keys larger), `n` from 450 by 10,
//! the cheapest keyswitch level meeting the extraction error, and for each PBS, PFPKS and
//! circuit-bootstrap level the base that minimises its noise.

use super::cost::{cmux_cost, ks_cost, pbs_cost};
use super::error::{erfc, safe_variance};
use super::noise::{
    blind_rotation_variance, cmux_variance, keyswitch_variance, modulus_switch_variance,
};
use super::security::min_secure_variance;
use veil_ir::{ModulusSwitch, NoiseDistribution, ParamSet};
use veil_runtime::wopbs::{WopParams, MAX_WOP_BITS};

/// Target error probability of one lookup of the tabulated sets.
pub const WOP_P_ERROR: f64 = 9.094_947_017_729_282e-13; // 2^-40

/// Seconds of one model cost unit on one core, calibrated on the `wop_lookup` bench
/// (`benches/benches/wop_lookup.rs`, release build): the 16-bit lookup took 3.88 s for a model
/// cost of 7.96e9 on one thread of a shared 2-core x86-64 machine (4 bits: 0.71 s for 1.03e9).
/// An order of magnitude, not a promise.
pub const SECONDS_PER_COST_UNIT: f64 = 4.9e-10;

/// Operation counts of one lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WopCounts {
    /// Big-to-small keyswitches (one per bit).
    pub keyswitches: u64,
    /// One-bit bootstraps extracting bits (`w - 1`).
    pub extraction_pbs: u64,
    /// Bootstraps of the circuit bootstraps (`w * l_cbs`).
    pub cbs_pbs: u64,
    /// Private functional packing keyswitches (`w * l_cbs * (k+1)`).
    pub pfpks: u64,
    /// Polynomials of the table (`max(1, 2^w / N)`).
    pub table_polys: u64,
    /// CMuxes of the vertical packing's tree (`table_polys - 1`).
    pub cmux_tree: u64,
    /// External products of its blind rotation (`min(w, log2 N)`).
    pub blind_rotation: u64,
}

/// Predicted noise, error and cost of one lookup.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct WopEstimate {
    /// Input width.
    pub bits: u8,
    /// Probability that the lookup fails (bit extraction and circuit bootstraps).
    pub p_error: f64,
    /// Variance of a one-bit bootstrap's output.
    pub pbs_variance: f64,
    /// Variance of a GGSW row made by the circuit bootstrap.
    pub ggsw_variance: f64,
    /// Variance of the output.
    pub out_variance: f64,
    /// Widest output message at `p_target`.
    pub out_bits: u8,
    /// Cost in Concrete's units (the sum of the four parts below).
    pub cost: f64,
    /// Keyswitches of the bit extraction.
    pub cost_ks: f64,
    /// One-bit bootstraps (extraction and circuit bootstrap).
    pub cost_pbs: f64,
    /// PFPKS of the circuit bootstraps.
    pub cost_pfpks: f64,
    /// Vertical packing (CMux tree and blind rotation).
    pub cost_packing: f64,
    /// Operation counts.
    pub counts: WopCounts,
}

/// Cost of one PFPKS from the big LWE key to the GLWE key: `(kN+1) l (k+1) N`.
pub fn pfpks_cost(glwe_dimension: usize, polynomial_size: usize, level: usize) -> f64 {
    let kn = (glwe_dimension * polynomial_size) as f64;
    (kn + 1.0) * level as f64 * (glwe_dimension as f64 + 1.0) * polynomial_size as f64
}

/// Predicts a `bits`-bit lookup under `p` (the set's `message_bits` is ignored), the output
/// width judged at `p_target`.
pub fn estimate(p: &WopParams, bits: u8, p_target: f64) -> WopEstimate {
    let s = &p.set;
    let (n, k, big_n) = (s.lwe_dimension, s.glwe_dimension, s.polynomial_size);
    let kn = k * big_n;
    let dist = s.noise_distribution;
    let s2_lwe = dist.variance(s.lwe_noise_log2);
    let s2_glwe = dist.variance(s.glwe_noise_log2);
    let v_pbs = blind_rotation_variance(
        n,
        cmux_variance(k, big_n, s.pbs_base_log, s.pbs_level, s2_glwe),
    );
    let v_ks = keyswitch_variance(kn, s.ks_base_log, s.ks_level, s2_lwe);
    let v_ms = modulus_switch_variance(n, big_n);
    let v_in = safe_variance(bits, p_target) * WopParams::input_variance_fraction();
    let w = bits as i32;
    let mut p_error = 0.0;
    for j in 0..w {
        let v = 4f64.powi(w - j) * (v_in + j as f64 * v_pbs) + v_ks + v_ms;
        let pj = erfc(0.25 / (2.0 * v).sqrt());
        let uses = p.cbs_level as f64 + if j < w - 1 { 1.0 } else { 0.0 };
        p_error += uses * pj;
    }
    let v_pfks = keyswitch_variance(kn, p.pfks_base_log, p.pfks_level, s2_glwe);
    let ggsw_variance = v_pbs + v_pfks;
    let out_variance =
        bits as f64 * cmux_variance(k, big_n, p.cbs_base_log, p.cbs_level, ggsw_variance);
    let out_bits = (1..=62u8)
        .take_while(|&o| out_variance <= safe_variance(o, p_target))
        .last()
        .unwrap_or(0);
    let log_n = big_n.trailing_zeros() as u64;
    let table_polys = (1u64 << bits).div_ceil(big_n as u64);
    let counts = WopCounts {
        keyswitches: bits as u64,
        extraction_pbs: bits as u64 - 1,
        cbs_pbs: bits as u64 * p.cbs_level as u64,
        pfpks: bits as u64 * p.cbs_level as u64 * (k as u64 + 1),
        table_polys,
        cmux_tree: table_polys - 1,
        blind_rotation: (bits as u64).min(log_n),
    };
    let pbs = pbs_cost(n, k, big_n, s.pbs_level);
    let cost_ks = counts.keyswitches as f64 * ks_cost(kn, n, s.ks_level);
    let cost_pbs = (counts.extraction_pbs + counts.cbs_pbs) as f64 * pbs;
    let cost_pfpks = counts.pfpks as f64 * pfpks_cost(k, big_n, p.pfks_level);
    let cost_packing =
        (counts.cmux_tree + counts.blind_rotation) as f64 * cmux_cost(k, big_n, p.cbs_level);
    let cost = cost_ks + cost_pbs + cost_pfpks + cost_packing;
    WopEstimate {
        bits,
        p_error,
        pbs_variance: v_pbs,
        ggsw_variance,
        out_variance,
        out_bits,
        cost,
        cost_ks,
        cost_pbs,
        cost_pfpks,
        cost_packing,
        counts,
    }
}

/// The base log in `1..=max` minimising `f` (the first on ties).
fn best_base(max: usize, f: impl Fn(usize) -> f64) -> usize {
    (1..=max)
        .map(|b| (b, f(b)))
        .fold((1, f64::INFINITY), |a, x| if x.1 < a.1 { x } else { a })
        .0
}

/// The cheapest set for `bits`-bit lookups with `p_error <= p_target` whose outputs carry at
/// least `min(bits, 8)` bits (Gaussian noise at the floor, standard modulus switch), with
/// `message_bits = bits` and `p_error` the prediction rounded up to a tenth of a power of two.
/// `None` when no point of the space qualifies.
pub fn search(bits: u8, p_target: f64) -> Option<(WopParams, WopEstimate)> {
    if !(1..=MAX_WOP_BITS).contains(&bits) {
        return None;
    }
    let need_out = bits.min(8);
    let dist = NoiseDistribution::Gaussian;
    let mut best: Option<(WopParams, WopEstimate)> = None;
    for (k, big_n) in [(1usize, 2048usize), (2, 1024)] {
        let kn = k * big_n;
        let s2_glwe = min_secure_variance(dist, kn);
        for n in (450..1000).step_by(10) {
            let mut set = ParamSet {
                lwe_dimension: n,
                glwe_dimension: k,
                polynomial_size: big_n,
                lwe_noise_log2: dist.min_secure_noise_log2(n),
                glwe_noise_log2: dist.min_secure_noise_log2(kn),
                pbs_base_log: 1,
                pbs_level: 1,
                ks_base_log: 1,
                ks_level: 1,
                message_bits: bits,
                p_error: 0.0,
                noise_distribution: dist,
                modulus_switch: ModulusSwitch::Standard,
                ks_modulus: Default::default(),
            };
            // The cheapest keyswitch (fewest levels, then the smallest base) whose extraction
            // error alone, with the most bootstraps per bit searched, meets the target.
            let s2_lwe = min_secure_variance(dist, n);
            let v_in = safe_variance(bits, p_target) * WopParams::input_variance_fraction();
            let v_ms = modulus_switch_variance(n, big_n);
            let ks = (1..=10usize).find_map(|l| {
                (1..=15usize)
                    .filter(|b| b * l <= 64)
                    .find(|&b| {
                        let v_ks = keyswitch_variance(kn, b, l, s2_lwe);
                        let p: f64 = (0..bits as i32)
                            .map(|j| {
                                let v = 4f64.powi(bits as i32 - j) * v_in + v_ks + v_ms;
                                erfc(0.25 / (2.0 * v).sqrt())
                            })
                            .sum();
                        p * 11.0 <= p_target
                    })
                    .map(|b| (b, l))
            });
            let Some((ks_b, ks_l)) = ks else { continue };
            set.ks_base_log = ks_b;
            set.ks_level = ks_l;
            for pbs_l in 1..=4usize {
                let pbs_b = best_base(40 / pbs_l, |b| cmux_variance(k, big_n, b, pbs_l, s2_glwe));
                set.pbs_base_log = pbs_b;
                set.pbs_level = pbs_l;
                let v_pbs =
                    blind_rotation_variance(n, cmux_variance(k, big_n, pbs_b, pbs_l, s2_glwe));
                for pfks_l in 1..=3usize {
                    let pfks_b =
                        best_base(64 / pfks_l, |b| keyswitch_variance(kn, b, pfks_l, s2_glwe));
                    let v_ggsw = v_pbs + keyswitch_variance(kn, pfks_b, pfks_l, s2_glwe);
                    for cbs_l in 1..=10usize {
                        let cbs_b =
                            best_base(64 / cbs_l, |b| cmux_variance(k, big_n, b, cbs_l, v_ggsw));
                        let p = WopParams {
                            set: set.clone(),
                            pfks_base_log: pfks_b,
                            pfks_level: pfks_l,
                            cbs_base_log: cbs_b,
                            cbs_level: cbs_l,
                            out_bits: 0,
                        };
                        let e = estimate(&p, bits, p_target);
                        if e.p_error > p_target || e.out_bits < need_out {
                            continue;
                        }
                        if best.as_ref().is_none_or(|b| e.cost < b.1.cost) {
                            best = Some((p, e));
                        }
                    }
                }
            }
        }
    }
    best.map(|(mut p, e)| {
        p.out_bits = e.out_bits;
        p.set.p_error = ((e.p_error.log2() * 10.0).ceil() / 10.0).exp2();
        (p, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's tabulated sets are what this search finds, meet the 128-bit floor and
    /// their predictions.
    #[test]
    fn runtime_table_is_the_search_result() {
        let mut rows = Vec::new();
        for bits in 1..=MAX_WOP_BITS {
            let (found, e) = search(bits, WOP_P_ERROR).expect("a set for every width");
            let table = WopParams::for_bits(bits).unwrap();
            rows.push(format!(
                "    ({}, {}, {}, ({}, {}), ({}, {}), ({}, {}), ({}, {}), {}, {:.1}),",
                found.set.lwe_dimension,
                found.set.glwe_dimension,
                found.set.polynomial_size,
                found.set.pbs_base_log,
                found.set.pbs_level,
                found.set.ks_base_log,
                found.set.ks_level,
                found.pfks_base_log,
                found.pfks_level,
                found.cbs_base_log,
                found.cbs_level,
                found.out_bits,
                found.set.p_error.log2()
            ));
            assert!(
                table.set.is_secure(),
                "{bits}: {:?}",
                table.set.insecurity()
            );
            let again = estimate(&table, bits, WOP_P_ERROR);
            assert!(again.p_error <= table.set.p_error, "{bits}: {again:?}");
            assert!(again.p_error <= WOP_P_ERROR);
            assert!(again.out_bits >= table.out_bits);
            let _ = e;
            if found != table {
                panic!("table differs from the search; rows:\n{}", rows.join("\n"));
            }
        }
        eprintln!("{}", rows.join("\n"));
    }

    /// Cost grows about linearly in the width (each bit adds a keyswitch, bootstraps and
    /// PFPKS), and every wider width needs at least as much.
    #[test]
    fn cost_is_roughly_linear() {
        let c = |b| search(b, WOP_P_ERROR).unwrap().1.cost;
        let (c8, c12, c16) = (c(8), c(12), c(16));
        assert!(c12 > c8 && c16 > c12);
        assert!(c16 / c8 < 3.0, "{c8:e} {c16:e}");
    }

    #[test]
    fn counts_of_a_sixteen_bit_lookup() {
        let p = WopParams::for_bits(16).unwrap();
        let e = estimate(&p, 16, WOP_P_ERROR);
        let n = p.set.polynomial_size as u64;
        assert_eq!(e.counts.extraction_pbs, 15);
        assert_eq!(e.counts.cbs_pbs, 16 * p.cbs_level as u64);
        assert_eq!(e.counts.table_polys, (1 << 16) / n);
        assert_eq!(e.counts.blind_rotation, n.trailing_zeros() as u64);
        assert!(e.p_error <= WOP_P_ERROR);
    }
}
