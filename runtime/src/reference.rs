//! Reference parameter sets for tests and benchmarks: Concrete's published 128-bit choices for
//! one table lookup of 1..=8 bits (p_error 6.3e-5, norm2 = 1; see
//! Concrete's optimizer's reference table) with noise set at the 128-bit floor
//! ([`veil_ir::params::min_secure_noise_log2`]). Programs compiled by veil carry the
//! optimizer's own sets; these exist so that the runtime can be tested and measured alone.

use veil_ir::params::min_secure_noise_log2;
use veil_ir::ParamSet;

/// `(k, log2 N, n, PBS levels, PBS base log, KS levels, KS base log)` per precision 1..=8.
const TABLE: [(usize, u32, usize, usize, usize, usize, usize); 8] = [
    (5, 8, 592, 1, 15, 3, 3),
    (5, 8, 700, 1, 15, 3, 4),
    (3, 9, 722, 1, 18, 3, 4),
    (2, 10, 801, 1, 23, 3, 4),
    (1, 11, 783, 1, 23, 5, 3),
    (1, 12, 880, 1, 22, 4, 4),
    (1, 13, 915, 1, 22, 6, 3),
    (1, 14, 1006, 2, 15, 5, 4),
];

/// Concrete's reference parameter set for `bits`-bit table lookups (1..=8), or `None`
/// outside that range. Always 128-bit secure ([`ParamSet::is_secure`]).
pub fn reference_params(bits: u8) -> Option<ParamSet> {
    let &(k, log_n, n, pbs_level, pbs_base_log, ks_level, ks_base_log) =
        TABLE.get((bits as usize).checked_sub(1)?)?;
    let poly = 1usize << log_n;
    Some(ParamSet {
        lwe_dimension: n,
        glwe_dimension: k,
        polynomial_size: poly,
        lwe_noise_log2: min_secure_noise_log2(n),
        glwe_noise_log2: min_secure_noise_log2(k * poly),
        pbs_base_log,
        pbs_level,
        ks_base_log,
        ks_level,
        message_bits: bits,
        p_error: 6.3e-5,
        noise_distribution: Default::default(),
        modulus_switch: Default::default(),
        ks_modulus: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reference_sets_are_secure() {
        for b in 1..=8 {
            let p = reference_params(b).unwrap();
            assert!(p.is_secure(), "{b} bits: {:?}", p.insecurity());
            assert_eq!(p.message_bits, b);
        }
        assert!(reference_params(0).is_none());
        assert!(reference_params(9).is_none());
    }
}
