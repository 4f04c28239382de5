//! Noise variances of TFHE's building blocks (Concrete's optimizer, Bergerat et al., J. Cryptology
//! 2023, ePrint 2022/704).
//!
//! Every variance is torus-normalised (modular variance divided by `q^2`, `q = 2^64`) and assumes
//! binary secret keys. Decompositions are given as `base_log` (`B = 2^base_log`) and `level`.
//!
//! Two terms follow tfhe-rs (`core_crypto::commons::noise_formulas`) instead: the FFT rounding
//! noise of the external product ([`fft_variance`], tfhe-rs's fit for the `f64` FFT veil runs
//! on) and the centered modulus switch ([`centered_modulus_switch_variance`]); the keyswitch into
//! a key modulo `2^32` (tfhe-rs's KS32 atomic pattern, [`ks32_body_rounding_variance`]) follows
//! tfhe-rs's keyswitch formula with distinct input and output moduli.

use veil_ir::{KsModulus, ModulusSwitch};

/// `q^2` for the 64-bit torus, as `f64`.
const Q2: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0; // 2^128

/// Precision of the `f64` FFT mantissa used by the bootstrap's polynomial products.
pub const FFT_MANTISSA_BITS: i32 = 53;

/// Concrete's fitted constant of the FFT rounding noise (log2), kept for
/// [`concrete_fft_variance`].
pub const FFT_SCALE_LOG2: f64 = -2.577_224_94;

/// Keyswitch from an LWE of dimension `n_in` with a key whose encryptions have variance
/// `ksk_variance`, decomposition base `2^base_log`, `level` levels:
///
/// `n_in * [ (1/(12 B^(2l)) - 1/(12 q^2)) / 2 + 1/(16 q^2) + l * s2_ksk * (B^2 + 2) / 12 ]`.
///
/// The first two terms are the rounding of the decomposition, the last the key noise amplified by
/// the decomposed digits. The input noise is *added* to this (not included).
pub fn keyswitch_variance(n_in: usize, base_log: usize, level: usize, ksk_variance: f64) -> f64 {
    let n = n_in as f64;
    let l = level as f64;
    let b2 = (2.0 * base_log as f64).exp2();
    let b2l = (2.0 * (base_log * level) as f64).exp2();
    n * ((1.0 / (12.0 * b2l) - 1.0 / (12.0 * Q2)) / 2.0
        + 1.0 / (16.0 * Q2)
        + l * ksk_variance * (b2 + 2.0) / 12.0)
}

/// Extra noise of a keyswitch whose output lives modulo `2^32` (KS32) instead of `q = 2^64`: the
/// input body is rounded to the nearest multiple of `2^32` (the scalar change of tfhe's
/// `keyswitch_lwe_ciphertext_with_scalar_change`), uniform rounding of variance
/// `1/(12 q_out^2) - 1/(12 q^2)` (tfhe-rs's keyswitch formula with input modulus `q` and output
/// modulus `q_out`: `+ 1/(12 q_out^2) - 1/(12 q_in^2)`; 0 when both are `2^64`).
///
/// Everything else of [`keyswitch_variance`] is unchanged: the mask digits are rounded at
/// `B^l <= 2^32` in both patterns, and the key noise enters torus-normalised (the key noise
/// at the security floor in `2^32` units, [`veil_ir::params::min_secure_noise_log2_mod`]).
pub fn ks32_body_rounding_variance() -> f64 {
    1.0 / (12.0 * 18_446_744_073_709_551_616.0/* 2^64 = (2^32)^2 */) - 1.0 / (12.0 * Q2)
}

/// [`keyswitch_variance`] into a key modulo `2^ks_modulus`: the KS32 body rounding
/// ([`ks32_body_rounding_variance`]) on top for [`KsModulus::Q32`]. `ksk_variance` is the key's
/// torus-normalised variance (its floor in the key's own modulus).
pub fn keyswitch_variance_mod(
    ks_modulus: KsModulus,
    n_in: usize,
    base_log: usize,
    level: usize,
    ksk_variance: f64,
) -> f64 {
    keyswitch_variance(n_in, base_log, level, ksk_variance) + ks_constant_variance(ks_modulus)
}

/// The part of a keyswitch's variance that does not scale with the input dimension: the body
/// rounding of KS32, 0 for a 64-bit keyswitch.
pub fn ks_constant_variance(ks_modulus: KsModulus) -> f64 {
    match ks_modulus {
        KsModulus::Q64 => 0.0,
        KsModulus::Q32 => ks32_body_rounding_variance(),
    }
}

/// Modulus switch of an LWE of dimension `n` from `q` to `2N` (the rounding before a blind
/// rotation on polynomials of size `polynomial_size`):
///
/// `(1/12 + n/24) / (2N)^2 + (n/48 - 1/12) / q^2`.
pub fn modulus_switch_variance(n: usize, polynomial_size: usize) -> f64 {
    let n = n as f64;
    let two_n = 2.0 * polynomial_size as f64;
    (1.0 / 12.0 + n / 24.0) / (two_n * two_n) + (n / 48.0 - 1.0 / 12.0) / Q2
}

/// Modulus switch with mean compensation (tfhe-rs `CenteredMeanNoiseReduction`): the body is
/// corrected by the expected key-dependent error `sum(e_i) / 2` of a binary key, which leaves
/// `sum((s_i - 1/2) e_i)`, half the key term of [`modulus_switch_variance`]:
///
/// `(1/12 + n/48) / (2N)^2 + n/(24 q^2)`.
///
/// tfhe-rs's formula (`centered_binary_shifted_modulus_switch_additive_variance`) omits the body's
/// own rounding `1/12 / (2N)^2`; it is kept here (conservative, under 1% for `n >= 512`).
pub fn centered_modulus_switch_variance(n: usize, polynomial_size: usize) -> f64 {
    let n = n as f64;
    let two_n = 2.0 * polynomial_size as f64;
    (1.0 / 12.0 + n / 48.0) / (two_n * two_n) + n / 24.0 / Q2
}

/// The modulus switch variance of kind `ms` from `q = 2^64`.
pub fn ms_variance(ms: ModulusSwitch, n: usize, polynomial_size: usize) -> f64 {
    match ms {
        ModulusSwitch::Standard => modulus_switch_variance(n, polynomial_size),
        ModulusSwitch::Centered => centered_modulus_switch_variance(n, polynomial_size),
    }
}

/// [`ms_variance`] from the keyswitch's output modulus `2^ks_modulus`: the formulas' `1/q^2`
/// terms (the rounding already present in the input) move to `q = 2^32` for KS32 (below
/// `2^-60` of the total at every `N` of the search).
pub fn ms_variance_mod(
    ms: ModulusSwitch,
    ks_modulus: KsModulus,
    n: usize,
    polynomial_size: usize,
) -> f64 {
    let base = ms_variance(ms, n, polynomial_size);
    let tail = match ms {
        ModulusSwitch::Standard => n as f64 / 48.0 - 1.0 / 12.0,
        ModulusSwitch::Centered => n as f64 / 24.0,
    };
    match ks_modulus {
        KsModulus::Q64 => base,
        // Replace tail / 2^128 by tail / 2^64.
        KsModulus::Q32 => base - tail / Q2 + tail / 18_446_744_073_709_551_616.0,
    }
}

/// FFT rounding noise of one external product on GLWE `(k, N)` with `level` levels of base
/// `2^base_log`, tfhe-rs's fit for its `f64` FFT (`pbs_variance_132_bits_security_*_fft_mul`):
///
/// `0.00705 * 2^(2 (64 - 53)) * B^2 / q^2 * l^1.01827 * k^1.22003 * N^2.22003 * (k+1)^1.01827`.
///
/// veil bootstraps with that FFT (tfhe-fft through core_crypto). Concrete's fit
/// ([`concrete_fft_variance`]) is 2.8x (`N = 2^14`) to 4.4x (`N = 2^11`) larger at `k = 1`; the
/// noise validation test measures the bootstrap output against this one.
pub fn fft_variance(
    glwe_dimension: usize,
    polynomial_size: usize,
    base_log: usize,
    level: usize,
) -> f64 {
    let lost = 2.0 * (64 - FFT_MANTISSA_BITS) as f64;
    let b2 = (2.0 * base_log as f64).exp2();
    let k = glwe_dimension as f64;
    0.00705 * lost.exp2() * b2 / Q2
        * (level as f64).powf(1.01827)
        * k.powf(1.22003)
        * (polynomial_size as f64).powf(2.22003)
        * (k + 1.0).powf(1.01827)
}

/// Concrete's FFT rounding noise of one external product (Bergerat et al., ePrint 2022/704):
/// `2^-2.577 * 2^(2 (64 - 53)) * l * B^2 * N^2 * (k + 1) / q^2`.
pub fn concrete_fft_variance(
    glwe_dimension: usize,
    polynomial_size: usize,
    base_log: usize,
    level: usize,
) -> f64 {
    let lost = 2.0 * (64 - FFT_MANTISSA_BITS) as f64;
    let b2 = (2.0 * base_log as f64).exp2();
    let big_n = polynomial_size as f64;
    (FFT_SCALE_LOG2 + lost).exp2()
        * level as f64
        * b2
        * big_n
        * big_n
        * (glwe_dimension as f64 + 1.0)
        / Q2
}

/// Noise added by one CMUX / external product on GLWE `(k, N)` with a bootstrap key of variance
/// `bsk_variance`, decomposition base `2^base_log`, `level` levels, FFT rounding included:
///
/// `l (k+1) N (B^2+2)/12 * s2_bsk + (q^2 - B^(2l)) / (24 B^(2l)) * (1 + kN/2) / q^2
///  + kN/(32 q^2) + (1 - kN)^2 / (64 q^2) + fft_variance`.
pub fn cmux_variance(
    glwe_dimension: usize,
    polynomial_size: usize,
    base_log: usize,
    level: usize,
    bsk_variance: f64,
) -> f64 {
    let k = glwe_dimension as f64;
    let big_n = polynomial_size as f64;
    let kn = k * big_n;
    let l = level as f64;
    let b2 = (2.0 * base_log as f64).exp2();
    let b2l = (2.0 * (base_log * level) as f64).exp2();
    let key = l * (k + 1.0) * big_n * (b2 + 2.0) / 12.0 * bsk_variance;
    let rounding = (Q2 - b2l) / (24.0 * b2l) * (1.0 + kn / 2.0) / Q2;
    let tail = kn / (32.0 * Q2) + (1.0 - kn) * (1.0 - kn) / (64.0 * Q2);
    key + rounding + tail + fft_variance(glwe_dimension, polynomial_size, base_log, level)
}

/// Output noise of a blind rotation (and hence of a PBS) over an LWE of dimension `n`: `n` CMUXes.
/// It does not depend on the input noise.
pub fn blind_rotation_variance(n: usize, cmux_variance: f64) -> f64 {
    n as f64 * cmux_variance
}

/// Noise after a levelled dot product with clear integer weights whose squared 2-norm is `norm2`
/// (`sum w_i^2`, Concrete's MANP) applied to inputs each of variance at most `input_variance`.
pub fn dot_variance(norm2: f64, input_variance: f64) -> f64 {
    norm2 * input_variance
}

/// `sum w_i^2` of a weight vector, the factor [`dot_variance`] multiplies by.
pub fn norm2(weights: &[i64]) -> f64 {
    weights.iter().map(|&w| (w as f64) * (w as f64)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::security::{min_secure_variance, min_secure_variance_mod};
    use veil_ir::NoiseDistribution::Gaussian;

    #[test]
    fn keyswitch_grows_with_dimension_and_levels_trade_off() {
        let s2 = min_secure_variance(Gaussian, 742);
        let a = keyswitch_variance(2048, 4, 3, s2);
        assert!((keyswitch_variance(4096, 4, 3, s2) / a - 2.0).abs() < 1e-12);
        // More levels at fixed base: less rounding noise, more key noise.
        assert!(keyswitch_variance(2048, 4, 4, 0.0) < keyswitch_variance(2048, 4, 3, 0.0));
        assert!(keyswitch_variance(2048, 4, 4, s2) > a);
        // Hand-computed: 2048 * (2^-24/24 + 3 * s2 * (2^8 + 2) / 12) (q terms negligible).
        let want = 2048.0 * ((-24f64).exp2() / 24.0 + 3.0 * s2 * 258.0 / 12.0);
        assert!((a / want - 1.0).abs() < 1e-9);
    }

    /// KS32 against a hand computation: tfhe-rs's keyswitch formula
    /// `l n s2 (B^2/12 + 1/6) + n (1/(48 q_in^2) + 1/(24 B^(2l))) - 1/(12 q_in^2) + 1/(12 q_out^2)`
    /// with `q_in = 2^64`, `q_out = 2^32`, for tfhe-rs's default KS32 set (`n_in = 2048`,
    /// `n = 918`, base 2^4, 4 levels, TUniform key bound 2^13 modulo 2^32).
    #[test]
    fn ks32_hand_value() {
        use veil_ir::NoiseDistribution::TUniform;
        let s2 = min_secure_variance_mod(TUniform, 918, 32);
        // TUniform(13) on 2^32: (2^27 + 1) / 6 / 2^64.
        let want_s2 = ((27f64).exp2() + 1.0) / 6.0 / (64f64).exp2();
        assert!((s2 / want_s2 - 1.0).abs() < 1e-12, "{s2:e} {want_s2:e}");
        let (n, b, l) = (2048.0, 16.0f64, 4.0);
        let q_in2 = (128f64).exp2();
        let q_out2 = (64f64).exp2();
        let want = l * n * s2 * (b * b / 12.0 + 1.0 / 6.0)
            + n * (1.0 / (48.0 * q_in2) + 1.0 / (24.0 * b.powf(2.0 * l)))
            - 1.0 / (12.0 * q_in2)
            + 1.0 / (12.0 * q_out2);
        let got = keyswitch_variance_mod(KsModulus::Q32, 2048, 4, 4, s2);
        assert!((got / want - 1.0).abs() < 1e-12, "{got:e} vs {want:e}");
        // The body rounding alone: 1/(12 * 2^64) (minus the negligible 2^-128 part).
        let body = ks32_body_rounding_variance();
        assert!((body * 12.0 * q_out2 - 1.0).abs() < 1e-9);
        assert_eq!(ks_constant_variance(KsModulus::Q32), body);
        assert_eq!(
            keyswitch_variance_mod(KsModulus::Q64, 2048, 4, 4, s2),
            keyswitch_variance(2048, 4, 4, s2)
        );
        // Modulus switch from 2^32: (1/12 + n/48) / (2N)^2 + n / (24 * 2^64), centered.
        let ms = ms_variance_mod(ModulusSwitch::Centered, KsModulus::Q32, 918, 2048);
        let want = (1.0 / 12.0 + 918.0 / 48.0) / (4096.0 * 4096.0) + 918.0 / 24.0 / q_out2;
        assert!((ms / want - 1.0).abs() < 1e-12);
    }

    #[test]
    fn modulus_switch_hand_value() {
        // n = 742, N = 2048: (1/12 + 742/24) / 4096^2.
        let want = (1.0 / 12.0 + 742.0 / 24.0) / (4096.0 * 4096.0);
        assert!((modulus_switch_variance(742, 2048) / want - 1.0).abs() < 1e-12);
        // Centered: half the key term, no -1/12 q^-2.
        let want = (1.0 / 12.0 + 742.0 / 48.0) / (4096.0 * 4096.0);
        let got = ms_variance(ModulusSwitch::Centered, 742, 2048);
        assert!((got / want - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cmux_terms() {
        let s2 = min_secure_variance(Gaussian, 2048);
        let v = cmux_variance(2, 1024, 23, 1, s2);
        let key = 3.0 * 1024.0 * ((46f64).exp2() + 2.0) / 12.0 * s2;
        let rounding = (1.0 / (24.0 * (46f64).exp2())) * (1.0 + 1024.0);
        // tfhe-rs's fit: 0.00705 * 2^22 * 2^46 * 2^1.22003 * 1024^2.22003 * 3^1.01827 / q^2.
        let fft = 0.00705
            * (68f64).exp2()
            * 2f64.powf(1.22003)
            * 1024f64.powf(2.22003)
            * 3f64.powf(1.01827)
            / Q2;
        let concrete = (FFT_SCALE_LOG2 + 22.0).exp2() * (46f64).exp2() * 1024.0 * 1024.0 * 3.0 / Q2;
        assert!((concrete_fft_variance(2, 1024, 23, 1) / concrete - 1.0).abs() < 1e-12);
        assert!(concrete > 2.0 * fft);
        assert!((v / (key + rounding + fft) - 1.0).abs() < 1e-6, "{v:e}");
        assert!(fft_variance(2, 1024, 23, 2) > fft_variance(2, 1024, 23, 1));
        assert_eq!(blind_rotation_variance(801, v), 801.0 * v);
    }

    #[test]
    fn dot() {
        assert_eq!(norm2(&[1, -2, 3]), 14.0);
        assert_eq!(dot_variance(14.0, 0.5), 7.0);
    }
}
