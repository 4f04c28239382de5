//! Key sizes of a parameter set, computed from its dimensions.
//!
//! - Bootstrap key: `n` GGSW ciphertexts of `(k+1)^2 l` polynomials of `N` coefficients:
//!   `n (k+1)^2 l N` `u64` in standard form. The Fourier form the PBS uses stores `N/2` complex
//!   `f64` per polynomial, i.e. the same number of bytes.
//! - Keyswitch key: `n_in l` LWE ciphertexts of dimension `n_out`: `n_in l (n_out + 1)` `u64`,
//!   or `u32` for a KS32 set (keys modulo `2^32`): half the bytes.

use veil_ir::{KsModulus, ParamSet};

/// Sizes of the evaluation keys of one parameter set, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeySizes {
    /// Bootstrap key in standard form (`u64` coefficients).
    pub bsk_bytes: u64,
    /// Bootstrap key in Fourier form (`N/2` complex `f64` per polynomial).
    pub fourier_bsk_bytes: u64,
    /// Keyswitch key from the big key `k N` to the small key `n` (`u64` coefficients, `u32`
    /// for KS32).
    pub ksk_bytes: u64,
}

/// Bytes of a keyswitch key from dimension `n_in` to `n_out` with `level` levels.
pub fn ksk_bytes(n_in: usize, n_out: usize, level: usize) -> u64 {
    8 * n_in as u64 * level as u64 * (n_out as u64 + 1)
}

/// [`ksk_bytes`] of a key modulo `2^ks_modulus`: 4-byte words for KS32.
pub fn ksk_bytes_mod(ks_modulus: KsModulus, n_in: usize, n_out: usize, level: usize) -> u64 {
    match ks_modulus {
        KsModulus::Q64 => ksk_bytes(n_in, n_out, level),
        KsModulus::Q32 => ksk_bytes(n_in, n_out, level) / 2,
    }
}

/// Key sizes of `p`.
pub fn key_sizes(p: &ParamSet) -> KeySizes {
    let k1 = p.glwe_dimension as u64 + 1;
    let polys = p.lwe_dimension as u64 * k1 * k1 * p.pbs_level as u64;
    KeySizes {
        bsk_bytes: 8 * polys * p.polynomial_size as u64,
        fourier_bsk_bytes: 16 * polys * (p.polynomial_size as u64 / 2),
        ksk_bytes: ksk_bytes_mod(
            p.ks_modulus,
            p.big_lwe_dimension(),
            p.lwe_dimension,
            p.ks_level,
        ),
    }
}

pub use veil_runtime::keys::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    /// Concrete's 1-bit reference set: n = 742, k = 1, N = 2048, l = 1 gives a 48.6 MB BSK.
    #[test]
    fn measured_bsk_size() {
        let p = ParamSet {
            lwe_dimension: 742,
            glwe_dimension: 1,
            polynomial_size: 2048,
            lwe_noise_log2: -16.0,
            glwe_noise_log2: -51.0,
            pbs_base_log: 23,
            pbs_level: 1,
            ks_base_log: 4,
            ks_level: 4,
            message_bits: 4,
            p_error: 1e-5,
            noise_distribution: Default::default(),
            modulus_switch: Default::default(),
            ks_modulus: Default::default(),
        };
        let s = key_sizes(&p);
        assert_eq!(s.bsk_bytes, 742 * 4 * 2048 * 8);
        assert_eq!(human_bytes(s.bsk_bytes), "48.6 MB");
        assert_eq!(s.fourier_bsk_bytes, s.bsk_bytes);
        assert_eq!(s.ksk_bytes, 8 * 2048 * 4 * 743);
        let ks32 = ParamSet {
            ks_modulus: KsModulus::Q32,
            ..p
        };
        assert_eq!(key_sizes(&ks32).ksk_bytes, 4 * 2048 * 4 * 743);
        assert_eq!(key_sizes(&ks32).bsk_bytes, s.bsk_bytes);
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(2_100_000_000), "2.10 GB");
    }
}
