//! TFHE parameter sets as plain, serializable data.
//!
//! A TFHE-level graph names its parameter sets `@p0, @p1, ...`; each encrypted value is encoded
//! under the big or small key of one of them (see [`crate::types::Encoding`]). The compiler's
//! optimizer chooses them; the runtime generates keys from them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One TFHE parameter set: LWE/GLWE dimensions, noise, decompositions, message width.
///
/// Noise standard deviations are *torus-normalised* (divided by `q = 2^64`), stored as `log2`
/// for exactness in text form: `lwe_noise_log2 = -17.0` means `sigma = 2^-17`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    /// Small LWE dimension `n` (the key a bootstrap consumes).
    pub lwe_dimension: usize,
    /// GLWE dimension `k`.
    pub glwe_dimension: usize,
    /// Polynomial size `N` (a power of two).
    pub polynomial_size: usize,
    /// `log2` of the torus-normalised std-dev of LWE encryptions under the small key (and KSK).
    pub lwe_noise_log2: f64,
    /// `log2` of the torus-normalised std-dev of GLWE encryptions (the BSK, fresh inputs).
    pub glwe_noise_log2: f64,
    /// Bootstrap key decomposition base log.
    pub pbs_base_log: usize,
    /// Bootstrap key decomposition levels.
    pub pbs_level: usize,
    /// Keyswitch key decomposition base log.
    pub ks_base_log: usize,
    /// Keyswitch key decomposition levels.
    pub ks_level: usize,
    /// Message width `p` of bootstrap inputs in bits (padding bit not included).
    pub message_bits: u8,
    /// Predicted probability that one bootstrap under this set decodes wrongly.
    pub p_error: f64,
}

impl ParamSet {
    /// Dimension of the big LWE key (`k * N`).
    pub fn big_lwe_dimension(&self) -> usize {
        // Saturating: decoded parameter sets may be hostile; a saturated dimension is never
        // secure-looking or allocatable, so every caller refuses it.
        self.glwe_dimension.saturating_mul(self.polynomial_size)
    }

    /// A stable 64-bit fingerprint of the parameters (used to key caches and to check that a
    /// ciphertext or key belongs to this set).
    pub fn fingerprint(&self) -> u64 {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.to_string().as_bytes());
        let d = h.finalize();
        u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
    }
}

/// Minimal `log2` of the torus-normalised noise std-dev for 128-bit security of an LWE
/// instance of dimension `dim` with a binary secret (Concrete's lattice-estimator fit):
/// `max(-0.025697 * dim + 2.6759, 2 - 64)`. Dimensions below [`MIN_SECURE_DIMENSION`] are never
/// secure.
pub fn min_secure_noise_log2(dim: usize) -> f64 {
    (-0.025697 * dim as f64 + 2.6759).max(2.0 - 64.0)
}

/// Smallest LWE dimension accepted as 128-bit secure.
pub const MIN_SECURE_DIMENSION: usize = 450;

impl ParamSet {
    /// Whether both the small LWE key (dimension `n`, noise `lwe_noise_log2`) and the GLWE key
    /// (dimension `k * N`, noise `glwe_noise_log2`) meet the 128-bit floor.
    pub fn is_secure(&self) -> bool {
        self.insecurity().is_none()
    }

    /// Why the set misses the 128-bit floor, or `None` when it meets it.
    pub fn insecurity(&self) -> Option<String> {
        let check = |what: &str, dim: usize, log2: f64| -> Option<String> {
            let need = min_secure_noise_log2(dim);
            if dim < MIN_SECURE_DIMENSION {
                Some(format!(
                    "{what} dimension {dim} is below the 128-bit minimum {MIN_SECURE_DIMENSION}"
                ))
            } else if log2 < need - 1e-9 {
                Some(format!(
                    "{what} noise 2^{log2:.3} is below 2^{need:.3}, the 128-bit floor for dimension {dim}"
                ))
            } else {
                None
            }
        };
        check("LWE", self.lwe_dimension, self.lwe_noise_log2)
            .or_else(|| check("GLWE", self.big_lwe_dimension(), self.glwe_noise_log2))
    }
}

/// Text form: `{ n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4,
/// bits=4, p_error=1e-5 }` (decompositions are `base_log x levels`).
impl fmt::Display for ParamSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ n={}, k={}, N={}, lwe_noise=2^{:?}, glwe_noise=2^{:?}, pbs={}x{}, ks={}x{}, bits={}, p_error={:e} }}",
            self.lwe_dimension,
            self.glwe_dimension,
            self.polynomial_size,
            self.lwe_noise_log2,
            self.glwe_noise_log2,
            self.pbs_base_log,
            self.pbs_level,
            self.ks_base_log,
            self.ks_level,
            self.message_bits,
            self.p_error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concrete_4bit() -> ParamSet {
        ParamSet {
            lwe_dimension: 801,
            glwe_dimension: 2,
            polynomial_size: 1024,
            lwe_noise_log2: min_secure_noise_log2(801),
            glwe_noise_log2: min_secure_noise_log2(2048),
            pbs_base_log: 23,
            pbs_level: 1,
            ks_base_log: 4,
            ks_level: 3,
            message_bits: 4,
            p_error: 6.3e-5,
        }
    }

    #[test]
    fn security_floor() {
        let p = concrete_4bit();
        assert!(p.is_secure(), "{:?}", p.insecurity());
        let mut weak = p.clone();
        weak.lwe_noise_log2 -= 1.0;
        assert!(weak.insecurity().unwrap().contains("LWE noise"));
        let mut small = p;
        small.lwe_dimension = 400;
        assert!(small
            .insecurity()
            .unwrap()
            .contains("below the 128-bit minimum"));
        assert!((min_secure_noise_log2(742) - (-16.3913)).abs() < 1e-3);
        assert_eq!(min_secure_noise_log2(4096), -62.0);
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes() {
        let p = concrete_4bit();
        let mut q = p.clone();
        q.ks_level = 4;
        assert_eq!(p.fingerprint(), concrete_4bit().fingerprint());
        assert_ne!(p.fingerprint(), q.fingerprint());
    }
}
