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
        self.glwe_dimension * self.polynomial_size
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
