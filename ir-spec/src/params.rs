//! TFHE parameter sets as plain, serializable data.
//!
//! A TFHE-level graph names its parameter sets `@p0, @p1, ...`; each encrypted value is encoded
//! under the big or small key of one of them (see [`crate::types::Encoding`]). The compiler's
//! optimizer chooses them; the runtime generates keys from them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The distribution of the noise of every encryption under a parameter set's keys (fresh
/// inputs, keyswitch and bootstrap keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoiseDistribution {
    /// Rounded Gaussian; the set's `*_noise_log2` is `log2` of the torus-normalised standard
    /// deviation.
    #[default]
    Gaussian,
    /// TUniform(b) (tfhe-rs): uniform on the integers of `[-2^b, 2^b]` with half weight at both
    /// ends, variance `(2^(2b+1) + 1) / 6` on the 64-bit modulus. The set's `*_noise_log2` is
    /// `b - 64`, the torus-normalised `log2` of the bound (an integer).
    TUniform,
}

/// How a bootstrap switches its input from `q = 2^64` to `2N` before the blind rotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModulusSwitch {
    /// Coefficient-wise rounding: variance `(1/12 + n/24) / (2N)^2`.
    #[default]
    Standard,
    /// Mean-compensated rounding (tfhe-rs `CenteredMeanNoiseReduction`): the body is shifted
    /// by the expected key-dependent rounding error `sum(e_i) / 2` (binary key) and by half a
    /// step, halving the key part: variance `(1/12 + n/48) / (2N)^2`.
    Centered,
}

/// The modulus of the keyswitch keys into a set's small key, hence of the keyswitch's output
/// and of the bootstrap's input: tfhe-rs's standard atomic pattern (`2^64`, `u64` keys) or its
/// KS32 atomic pattern (`2^32`, `u32` keys: the 64-bit input is keyswitched with a scalar change,
/// `keyswitch_lwe_ciphertext_with_scalar_change`, then modulus-switched to `2N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KsModulus {
    /// `q = 2^64`, the modulus of every other key and ciphertext.
    #[default]
    Q64,
    /// `q = 2^32`: half the keyswitch key, `u32` multiply-adds; the decomposition keeps
    /// `base_log * levels <= 32` and the key noise must meet the floor in `2^32` units.
    Q32,
}

impl KsModulus {
    /// `log2 q`: 64 or 32.
    pub fn log2(self) -> u32 {
        match self {
            KsModulus::Q64 => 64,
            KsModulus::Q32 => 32,
        }
    }
}

impl NoiseDistribution {
    /// Torus-normalised variance of one sample when the set stores `noise_log2`.
    pub fn variance(self, noise_log2: f64) -> f64 {
        match self {
            NoiseDistribution::Gaussian => (2.0 * noise_log2).exp2(),
            // (2^(2b+1) + 1) / 6 / q^2 with b = noise_log2 + 64.
            NoiseDistribution::TUniform => {
                ((2.0 * noise_log2 + 1.0).exp2() + (-128f64).exp2()) / 6.0
            }
        }
    }

    /// The smallest `noise_log2` that keeps an LWE instance of dimension `dim` 128-bit secure.
    pub fn min_secure_noise_log2(self, dim: usize) -> f64 {
        match self {
            NoiseDistribution::Gaussian => min_secure_noise_log2(dim),
            NoiseDistribution::TUniform => min_secure_tuniform_log2(dim),
        }
    }

    /// [`NoiseDistribution::min_secure_noise_log2`] of an LWE instance modulo `2^modulus_log2`
    /// (64, or 32 for a KS32 keyswitch key): the lattice-estimator fits give the same
    /// torus-normalised floor at both moduli, but the noise must also stay above a few units
    /// of the modulus, a clamp that binds much earlier at `2^32` (see
    /// [`min_secure_noise_log2_mod`], [`min_secure_tuniform_log2_mod`]).
    pub fn min_secure_noise_log2_mod(self, dim: usize, modulus_log2: u32) -> f64 {
        match self {
            NoiseDistribution::Gaussian => min_secure_noise_log2_mod(dim, modulus_log2),
            NoiseDistribution::TUniform => min_secure_tuniform_log2_mod(dim, modulus_log2),
        }
    }
}

/// One TFHE parameter set: LWE/GLWE dimensions, noise, decompositions, message width.
///
/// Noise is *torus-normalised* (divided by `q = 2^64`) and stored as `log2` for exactness in
/// text form; what it measures depends on [`ParamSet::noise_distribution`]: for Gaussian noise
/// `lwe_noise_log2 = -17.0` means `sigma = 2^-17`, for TUniform it is the bound `2^(64-17)`.
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
    /// Distribution of all encryption noise under this set (Gaussian in files written before
    /// it was recorded).
    #[serde(default)]
    pub noise_distribution: NoiseDistribution,
    /// The modulus switch of its bootstraps (standard in files written before it was recorded).
    #[serde(default)]
    pub modulus_switch: ModulusSwitch,
    /// The modulus of its keyswitch keys (`2^64` in files written before it was recorded).
    #[serde(default)]
    pub ks_modulus: KsModulus,
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
    min_secure_noise_log2_mod(dim, 64)
}

/// [`min_secure_noise_log2`] modulo `2^modulus_log2`: `max(-0.025697 * dim + 2.6759, 2 -
/// modulus_log2)`. The fit is in torus units (the estimator's security depends on `sigma / q`);
/// the clamp keeps the std-dev at 4 units of the modulus or more (tfhe-rs's Gaussian fit has the
/// same `2^4 / q^2` variance floor). At `2^32` the clamp binds from `dim = 1272` on.
pub fn min_secure_noise_log2_mod(dim: usize, modulus_log2: u32) -> f64 {
    (-0.025697 * dim as f64 + 2.6759).max(2.0 - modulus_log2 as f64)
}

/// Minimal torus-normalised `log2` of a TUniform bound for security of an LWE instance of
/// dimension `dim` with a binary secret: tfhe-rs's lattice-estimator fit for TUniform noise
/// (`core_crypto::commons::noise_formulas::secure_noise`, stated for 132 bits and used here as a
/// conservative 128-bit floor): `ceil(-0.025167785 * dim + 64 + 4.100671) - 64`, never below
/// `4 - 64` (bound 2^4, variance 2^6.4 on the 64-bit modulus: above tfhe-rs's variance floor
/// 2^4.44 and the Gaussian clamp's 2^4). At every dimension this floor's variance exceeds the
/// Gaussian floor's ([`min_secure_noise_log2`]).
pub fn min_secure_tuniform_log2(dim: usize) -> f64 {
    min_secure_tuniform_log2_mod(dim, 64)
}

/// [`min_secure_tuniform_log2`] modulo `2^modulus_log2`: tfhe-rs's fit
/// (`minimal_lwe_bound_for_132_bits_security_tuniform(dim, q)`, the bound in units of `q`)
/// `ceil(-0.025167785 * dim + log2 q + 4.100671) - log2 q`, never below `4 - log2 q` (a bound of
/// 16 units). At `2^32` the clamp binds from `dim = 1316` on.
pub fn min_secure_tuniform_log2_mod(dim: usize, modulus_log2: u32) -> f64 {
    let q = modulus_log2 as f64;
    ((-0.025167785 * dim as f64 + q + 4.100671).ceil() - q).max(4.0 - q)
}

/// Smallest LWE dimension accepted as 128-bit secure.
pub const MIN_SECURE_DIMENSION: usize = 450;

impl ParamSet {
    /// Whether both the small LWE key (dimension `n`, noise `lwe_noise_log2`) and the GLWE key
    /// (dimension `k * N`, noise `glwe_noise_log2`) meet the 128-bit floor. The small key's
    /// keyswitch keys live modulo `2^ks_modulus`: their noise must meet the floor in those units
    /// ([`NoiseDistribution::min_secure_noise_log2_mod`]).
    pub fn is_secure(&self) -> bool {
        self.insecurity().is_none()
    }

    /// Why the set misses the 128-bit floor, or `None` when it meets it.
    pub fn insecurity(&self) -> Option<String> {
        let dist = self.noise_distribution;
        let check = |what: &str, dim: usize, log2: f64, q: u32| -> Option<String> {
            let need = dist.min_secure_noise_log2_mod(dim, q);
            if dim < MIN_SECURE_DIMENSION {
                Some(format!(
                    "{what} dimension {dim} is below the 128-bit minimum {MIN_SECURE_DIMENSION}"
                ))
            } else if log2 < need - 1e-9 {
                Some(format!(
                    "{what} noise 2^{log2:.3} is below 2^{need:.3}, the 128-bit floor for dimension {dim} ({dist:?}{})",
                    if q == 64 { String::new() } else { format!(", modulus 2^{q}") }
                ))
            } else {
                None
            }
        };
        let ks_q = self.ks_modulus.log2();
        check("LWE", self.lwe_dimension, self.lwe_noise_log2, ks_q)
            .or_else(|| check("GLWE", self.big_lwe_dimension(), self.glwe_noise_log2, 64))
    }
}

/// Text form: `{ n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4,
/// bits=4, p_error=1e-5 }` (decompositions are `base_log x levels`), followed by
/// `, noise=tuniform`, `, ms=centered` and `, ks_modulus=2^32` when they differ from the defaults
/// (Gaussian, standard, `2^64`): older text stays valid and prints the same.
impl fmt::Display for ParamSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ n={}, k={}, N={}, lwe_noise=2^{:?}, glwe_noise=2^{:?}, pbs={}x{}, ks={}x{}, bits={}, p_error={:e}",
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
        )?;
        if self.noise_distribution == NoiseDistribution::TUniform {
            write!(f, ", noise=tuniform")?;
        }
        if self.modulus_switch == ModulusSwitch::Centered {
            write!(f, ", ms=centered")?;
        }
        if self.ks_modulus == KsModulus::Q32 {
            write!(f, ", ks_modulus=2^32")?;
        }
        write!(f, " }}")
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
            noise_distribution: NoiseDistribution::Gaussian,
            modulus_switch: ModulusSwitch::Standard,
            ks_modulus: KsModulus::Q64,
        }
    }

    /// A KS32 key's noise must meet the floor in `2^32` units: the torus floor is the same as at
    /// `2^64` while the clamp (4 units of `q` Gaussian, a bound of 16 units TUniform) allows it,
    /// and the clamp decides past `n` = 1271 (Gaussian) / 1315 (TUniform).
    #[test]
    fn ks32_floor() {
        use NoiseDistribution::*;
        for d in [512, 801, 918, 1271] {
            assert_eq!(min_secure_noise_log2_mod(d, 32), min_secure_noise_log2(d));
        }
        assert_eq!(min_secure_noise_log2_mod(1272, 32), -30.0);
        assert!(min_secure_noise_log2(1272) < -30.0);
        // tfhe-rs's KS32 default: n = 918 needs bound 2^13 modulo 2^32 (2^45 modulo 2^64).
        assert_eq!(min_secure_tuniform_log2_mod(918, 32), 13.0 - 32.0);
        assert_eq!(
            min_secure_tuniform_log2_mod(1315, 32),
            min_secure_tuniform_log2(1315)
        );
        assert_eq!(min_secure_tuniform_log2_mod(1316, 32), 4.0 - 32.0);
        assert_eq!(min_secure_tuniform_log2(1316), -29.0);
        let mut p = concrete_4bit();
        p.ks_modulus = KsModulus::Q32;
        assert!(p.is_secure(), "{:?}", p.insecurity());
        p.lwe_dimension = 1500;
        p.lwe_noise_log2 = min_secure_noise_log2(1500);
        let why = p.insecurity().unwrap();
        assert!(why.contains("modulus 2^32"), "{why}");
        p.lwe_noise_log2 = Gaussian.min_secure_noise_log2_mod(1500, 32);
        assert!(p.is_secure());
        assert_eq!(TUniform.min_secure_noise_log2_mod(1500, 32), -28.0);
        assert!(p.to_string().ends_with("ks_modulus=2^32 }"), "{p}");
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
    fn tuniform_floor_and_variance() {
        // tfhe-rs's default 2_2 set: n = 918 needs bound 2^45 on 2^64; k N = 2048 needs 2^17.
        assert_eq!(min_secure_tuniform_log2(918), 45.0 - 64.0);
        assert_eq!(min_secure_tuniform_log2(2048), 17.0 - 64.0);
        assert_eq!(min_secure_tuniform_log2(1 << 14), 4.0 - 64.0);
        // TUniform at its floor is noisier than Gaussian at its floor, at every dimension.
        for dim in MIN_SECURE_DIMENSION..20_000 {
            let t = NoiseDistribution::TUniform;
            let g = NoiseDistribution::Gaussian;
            assert!(
                t.variance(t.min_secure_noise_log2(dim)) > g.variance(g.min_secure_noise_log2(dim)),
                "{dim}"
            );
        }
        let v = NoiseDistribution::TUniform.variance(45.0 - 64.0);
        assert!((v / ((91f64.exp2() + 1.0) / 6.0 / 128f64.exp2()) - 1.0).abs() < 1e-12);
        let mut p = concrete_4bit();
        p.noise_distribution = NoiseDistribution::TUniform;
        // Gaussian-floor noise is below the TUniform floor.
        assert!(p.insecurity().unwrap().contains("TUniform"));
        p.lwe_noise_log2 = min_secure_tuniform_log2(801);
        p.glwe_noise_log2 = min_secure_tuniform_log2(2048);
        assert!(p.is_secure(), "{:?}", p.insecurity());
        assert!(p.to_string().ends_with("noise=tuniform }"), "{p}");
    }

    /// The text form round-trips with and without the optional fields, and older text (without
    /// them) reads as Gaussian noise and the standard modulus switch.
    #[test]
    fn text_round_trip_of_noise_patterns() {
        use crate::text::{parse_unverified, print};
        let line = |p: &str| format!("veil 1\nlevel tfhe\nparams @p0 = {p}\n");
        let old = "{ n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4, bits=4, p_error=1e-5 }";
        let g = parse_unverified(&line(old)).unwrap();
        assert_eq!(g.params[0].noise_distribution, NoiseDistribution::Gaussian);
        assert_eq!(g.params[0].modulus_switch, ModulusSwitch::Standard);
        assert_eq!(print(&g), line(old));
        assert_eq!(g.params[0].ks_modulus, KsModulus::Q64);
        let new = "{ n=918, k=1, N=2048, lwe_noise=2^-19.0, glwe_noise=2^-47.0, pbs=23x1, ks=4x4, bits=4, p_error=1e-10, noise=tuniform, ms=centered, ks_modulus=2^32 }";
        let g = parse_unverified(&line(new)).unwrap();
        assert_eq!(g.params[0].noise_distribution, NoiseDistribution::TUniform);
        assert_eq!(g.params[0].modulus_switch, ModulusSwitch::Centered);
        assert_eq!(g.params[0].ks_modulus, KsModulus::Q32);
        assert_eq!(print(&g), line(new));
        assert_eq!(g.params[0].to_string(), new);
        let bad = "{ n=1, k=1, N=2, lwe_noise=2^-1, glwe_noise=2^-1, pbs=1x1, ks=1x1, bits=1, p_error=0, noise=uniform }";
        let e = parse_unverified(&line(bad)).unwrap_err().to_string();
        assert!(e.contains("'gaussian' or 'tuniform'"), "{e}");
        let bad = bad.replace("noise=uniform", "ks_modulus=2^16");
        let e = parse_unverified(&line(&bad)).unwrap_err().to_string();
        assert!(e.contains("2^32 or 2^64"), "{e}");
        // JSON of an older set (no pattern fields) still decodes.
        let mut v: serde_json::Value = serde_json::to_value(&g.params[0]).unwrap();
        v.as_object_mut().unwrap().remove("noise_distribution");
        v.as_object_mut().unwrap().remove("modulus_switch");
        v.as_object_mut().unwrap().remove("ks_modulus");
        let p: ParamSet = serde_json::from_value(v).unwrap();
        assert_eq!(p.modulus_switch, ModulusSwitch::Standard);
        assert_eq!(p.ks_modulus, KsModulus::Q64);
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
