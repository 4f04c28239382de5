//! Translation of veil [`ParamSet`]s into tfhe core_crypto parameters, and the checks that a set
//! is usable by the runtime (and, unless explicitly allowed, 128-bit secure).

use crate::error::{Result, RuntimeError};
use tfhe::core_crypto::prelude::*;
use veil_ir::{KsModulus, NoiseDistribution, ParamSet};

/// tfhe-typed view of one parameter set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tfhe {
    pub n: LweDimension,
    pub k: GlweDimension,
    pub poly: PolynomialSize,
    pub lwe_noise: DynamicDistribution<u64>,
    pub glwe_noise: DynamicDistribution<u64>,
    pub pbs_base_log: DecompositionBaseLog,
    pub pbs_level: DecompositionLevelCount,
    pub ks_base_log: DecompositionBaseLog,
    pub ks_level: DecompositionLevelCount,
    /// Noise of a KS32 keyswitch key (the small key's noise on the 32-bit modulus); `None` for
    /// 64-bit keyswitch keys.
    pub ks32_noise: Option<DynamicDistribution<u32>>,
}

impl Tfhe {
    /// Dimension of the big LWE key (`k * N`).
    pub fn big_dim(&self) -> LweDimension {
        self.k.to_equivalent_lwe_dimension(self.poly)
    }
}

/// The native 64-bit ciphertext modulus used everywhere.
pub(crate) fn modulus() -> CiphertextModulus<u64> {
    CiphertextModulus::new_native()
}

/// The noise of a set's encryptions: a Gaussian of std-dev `2^log2` (torus-normalised) or
/// TUniform with bound `2^(64 + log2)` on the 64-bit modulus.
fn distribution(dist: NoiseDistribution, log2: f64) -> DynamicDistribution<u64> {
    match dist {
        NoiseDistribution::Gaussian => {
            DynamicDistribution::new_gaussian_from_std_dev(StandardDev(log2.exp2()))
        }
        NoiseDistribution::TUniform => DynamicDistribution::new_t_uniform((64.0 + log2) as u32),
    }
}

/// [`distribution`] on the 32-bit modulus of a KS32 keyswitch key: the same torus-normalised
/// Gaussian std-dev, or TUniform with bound `2^(32 + log2)` (an integer exponent in 0..=30).
fn distribution32(dist: NoiseDistribution, log2: f64) -> Option<DynamicDistribution<u32>> {
    match dist {
        NoiseDistribution::Gaussian => Some(DynamicDistribution::new_gaussian_from_std_dev(
            StandardDev(log2.exp2()),
        )),
        NoiseDistribution::TUniform => {
            let b = 32.0 + log2;
            (b.fract() == 0.0 && (0.0..=30.0).contains(&b))
                .then(|| DynamicDistribution::new_t_uniform(b as u32))
        }
    }
}

/// Converts a parameter set, checking that the runtime can use it. `index` names it in errors.
pub(crate) fn tfhe(index: usize, p: &ParamSet) -> Result<Tfhe> {
    let bad = |why: String| RuntimeError::BadParams { index, why };
    if p.lwe_dimension == 0 || p.glwe_dimension == 0 {
        return Err(bad("LWE and GLWE dimensions must be positive".into()));
    }
    if !p.polynomial_size.is_power_of_two() || p.polynomial_size < 2 {
        return Err(bad(format!(
            "polynomial size {} is not a power of two >= 2",
            p.polynomial_size
        )));
    }
    // Bootstraps additionally need `2^w_in <= N` (checked where their tables are built);
    // levelled-only programs may carry wide accumulators.
    if !(1..=62).contains(&p.message_bits) {
        return Err(bad(format!(
            "message bits {} must be in 1..=62",
            p.message_bits
        )));
    }
    for (what, b, l) in [
        ("PBS", p.pbs_base_log, p.pbs_level),
        ("KS", p.ks_base_log, p.ks_level),
    ] {
        if b == 0 || l == 0 || b * l > 64 {
            return Err(bad(format!(
                "{what} decomposition {b}x{l} needs base_log >= 1, levels >= 1 and base_log * levels <= 64"
            )));
        }
    }
    for (what, v) in [("LWE", p.lwe_noise_log2), ("GLWE", p.glwe_noise_log2)] {
        if !v.is_finite() || v >= 0.0 {
            return Err(bad(format!(
                "{what} noise log2 {v} must be finite and negative"
            )));
        }
    }
    if p.noise_distribution == NoiseDistribution::TUniform {
        for (what, v) in [("LWE", p.lwe_noise_log2), ("GLWE", p.glwe_noise_log2)] {
            if v.fract() != 0.0 || v <= -64.0 || v >= -2.0 {
                return Err(bad(format!(
                    "{what} TUniform bound 2^{v} (torus) must be 2^-63..2^-3 with an integer exponent"
                )));
            }
        }
    }
    let ks32_noise = match p.ks_modulus {
        KsModulus::Q64 => None,
        KsModulus::Q32 => {
            if p.ks_base_log * p.ks_level > 32 {
                return Err(bad(format!(
                    "KS32 keyswitch decomposition {}x{} needs base_log * levels <= 32",
                    p.ks_base_log, p.ks_level
                )));
            }
            Some(
                distribution32(p.noise_distribution, p.lwe_noise_log2).ok_or_else(|| {
                    bad(format!(
                        "LWE TUniform bound 2^{} (torus) is not a bound 2^0..2^30 on the 32-bit keyswitch modulus",
                        p.lwe_noise_log2
                    ))
                })?,
            )
        }
    };
    if !(p.p_error.is_finite() && (0.0..=1.0).contains(&p.p_error)) {
        return Err(bad(format!("p_error {} is not a probability", p.p_error)));
    }
    Ok(Tfhe {
        n: LweDimension(p.lwe_dimension),
        k: GlweDimension(p.glwe_dimension),
        poly: PolynomialSize(p.polynomial_size),
        lwe_noise: distribution(p.noise_distribution, p.lwe_noise_log2),
        glwe_noise: distribution(p.noise_distribution, p.glwe_noise_log2),
        pbs_base_log: DecompositionBaseLog(p.pbs_base_log),
        pbs_level: DecompositionLevelCount(p.pbs_level),
        ks_base_log: DecompositionBaseLog(p.ks_base_log),
        ks_level: DecompositionLevelCount(p.ks_level),
        ks32_noise,
    })
}

/// Checks usability and (unless `allow_insecure`) the 128-bit floor of every set.
pub(crate) fn check_all(params: &[ParamSet], allow_insecure: bool) -> Result<Vec<Tfhe>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if !allow_insecure {
                if let Some(why) = p.insecurity() {
                    return Err(RuntimeError::Insecure { index: i, why });
                }
            }
            tfhe(i, p)
        })
        .collect()
}

/// A combined fingerprint of a list of parameter sets (order matters).
pub fn fingerprint_all(params: &[ParamSet]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in params {
        h.update(p.fingerprint().to_le_bytes());
    }
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}
