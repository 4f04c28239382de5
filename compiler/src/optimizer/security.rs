//! The 128-bit security floor as noise variances.
//!
//! The floor itself lives in the IR ([`veil_ir::params::min_secure_noise_log2`]); this module only
//! turns it into the torus-normalised *variances* the noise formulas consume.

use veil_ir::params::{min_secure_noise_log2, MIN_SECURE_DIMENSION};

/// Smallest torus-normalised noise variance that keeps an LWE instance of dimension `dim` (for a
/// GLWE use `k * N`) 128-bit secure with a binary key: `(2^min_secure_noise_log2(dim))^2`.
pub fn min_secure_variance(dim: usize) -> f64 {
    (2.0 * min_secure_noise_log2(dim)).exp2()
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
        let v = min_secure_variance(742);
        assert!((v.log2() - 2.0 * -16.391_274).abs() < 1e-3, "{}", v.log2());
        // Large dimensions hit the 2^-62 clamp.
        assert_eq!(min_secure_variance(1 << 14), (-124f64).exp2());
        assert!(!dimension_is_securable(449) && dimension_is_securable(450));
    }
}
