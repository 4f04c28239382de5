//! The 128-bit security floor as noise variances.
//!
//! The floor itself lives in the IR ([`veil_ir::params::min_secure_noise_log2`]); this module only
//! turns it into the torus-normalised *variances* the noise formulas consume.

use veil_ir::params::MIN_SECURE_DIMENSION;
use veil_ir::NoiseDistribution;

/// Smallest torus-normalised noise variance of distribution `dist` that keeps an LWE instance of
/// dimension `dim` (for a GLWE use `k * N`) 128-bit secure with a binary key: for Gaussian noise
/// `(2^min_secure_noise_log2(dim))^2` (Concrete's fit), for TUniform the variance of the
/// smallest secure bound (tfhe-rs's fit, [`veil_ir::params::min_secure_tuniform_log2`]).
pub fn min_secure_variance(dist: NoiseDistribution, dim: usize) -> f64 {
    dist.variance(dist.min_secure_noise_log2(dim))
}

/// [`min_secure_variance`] of a key modulo `2^modulus_log2` (32 for a KS32 keyswitch key):
/// the torus-normalised variance of the smallest noise that meets the floor in that modulus's
/// units ([`NoiseDistribution::min_secure_noise_log2_mod`]). The variance of TUniform(b) on
/// `2^m` torus-normalised is `(2^(2b+1) + 1) / 6 / 2^(2m)`; [`NoiseDistribution::variance`]
/// assumes `m = 64`, so the `+1` term is rescaled here.
pub fn min_secure_variance_mod(dist: NoiseDistribution, dim: usize, modulus_log2: u32) -> f64 {
    let log2 = dist.min_secure_noise_log2_mod(dim, modulus_log2);
    match dist {
        NoiseDistribution::Gaussian => dist.variance(log2),
        NoiseDistribution::TUniform => {
            ((2.0 * log2 + 1.0).exp2() + (-2.0 * modulus_log2 as f64).exp2()) / 6.0
        }
    }
}

/// Whether `dim` is large enough to be secure at all (see [`MIN_SECURE_DIMENSION`]).
pub fn dimension_is_securable(dim: usize) -> bool {
    dim >= MIN_SECURE_DIMENSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_variance() {
        // 742: log2 sigma = -16.3913, variance 2^-32.78.
        use NoiseDistribution::*;
        let v = min_secure_variance(Gaussian, 742);
        assert!((v.log2() - 2.0 * -16.391_274).abs() < 1e-3, "{}", v.log2());
        // Large dimensions hit the 2^-62 clamp.
        assert_eq!(min_secure_variance(Gaussian, 1 << 14), (-124f64).exp2());
        // TUniform needs more noise than the Gaussian floor at the same dimension.
        for d in [512, 918, 2048] {
            assert!(min_secure_variance(TUniform, d) > min_secure_variance(Gaussian, d));
        }
        assert!(!dimension_is_securable(449) && dimension_is_securable(450));
    }
}
