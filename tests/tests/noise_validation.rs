//! Validates the optimizer's noise model against tfhe-rs (core_crypto, tfhe 1.8.2).
//!
//! For parameters the optimizer chooses, encrypt, keyswitch and bootstrap many samples with
//! fixed seeds (reproducible) and compare measured noise with the model:
//! - `noise_variance_matches_model`: for 1..=4 bits at p_error 2^-13.9 (the optimizer's own
//!   pattern choice), and at 4 bits under every noise pattern forced (Gaussian or TUniform noise,
//!   standard or centered modulus switch, and the KS32 atomic pattern: keyswitch keys modulo
//!   2^32, Gaussian and TUniform), the measured variances of the keyswitch output, of
//!   the modulus-switched bootstrap input (KS + MS) and of the bootstrap output each lie within
//!   1.5x of the prediction;
//! - `failure_rate_matches_model`: at a loose p_error (1e-2), the rate at which the atomic
//!   pattern PBS -> KS -> MS -> PBS decodes wrongly lies within 2x of the prediction, with the
//!   optimizer's choice, with TUniform noise forced and with KS32 forced.
//!
//! Every sample is a real encryption and a real keyswitch / bootstrap; only the modulus-switched
//! phase (the exact value the blind rotation consumes) is recomputed here to measure it.

use tfhe::core_crypto::commons::generators::DeterministicSeeder;
use tfhe::core_crypto::commons::math::random::Seed;
use tfhe::core_crypto::prelude::*;
use veil_compiler::optimizer::error::p_error_of_variance;
use veil_compiler::optimizer::{optimize, ChosenSet, ErrorTarget, NoiseOptions, Problem, Solution};
use veil_ir::{KsModulus, ModulusSwitch, NoiseDistribution};

/// Samples per precision in the variance experiment: the relative standard error of a sample
/// variance is `sqrt(2 / S)`, 8% at 300.
const VARIANCE_SAMPLES: usize = 300;

/// Samples in the failure-rate experiment (about 30 expected failures at 1e-2).
const FAILURE_SAMPLES: usize = 3000;

/// Everything needed to run the atomic pattern under one parameter set.
struct Keys {
    bits: u32,
    small: LweSecretKeyOwned<u64>,
    big: LweSecretKeyOwned<u64>,
    ksk: LweKeyswitchKeyOwned<u64>,
    /// The KS32 keyswitch key (modulo 2^32) of a KS32 set, used instead of `ksk`.
    ksk32: Option<LweKeyswitchKeyOwned<u32>>,
    bsk: FourierLweBootstrapKeyOwned,
    lut: GlweCiphertextOwned<u64>,
    glwe_noise: DynamicDistribution<u64>,
    ms: ModulusSwitch,
    enc: EncryptionRandomGenerator<DefaultRandomGenerator>,
    log_2n: usize,
}

impl Keys {
    fn new(set: &ChosenSet, bits: u32, seed: u128) -> Keys {
        let p = &set.params;
        let mut seeder = DeterministicSeeder::<DefaultRandomGenerator>::new(Seed(seed));
        let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        let mut enc =
            EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), &mut seeder);
        let modulus = CiphertextModulus::new_native();
        let dist = |log2: f64| match p.noise_distribution {
            NoiseDistribution::Gaussian => {
                DynamicDistribution::new_gaussian_from_std_dev(StandardDev(log2.exp2()))
            }
            NoiseDistribution::TUniform => DynamicDistribution::new_t_uniform((64.0 + log2) as u32),
        };
        let lwe_noise = dist(p.lwe_noise_log2);
        let glwe_noise = dist(p.glwe_noise_log2);
        let small = LweSecretKey::generate_new_binary(LweDimension(p.lwe_dimension), &mut secret);
        let glwe = GlweSecretKey::generate_new_binary(
            GlweDimension(p.glwe_dimension),
            PolynomialSize(p.polynomial_size),
            &mut secret,
        );
        let big = glwe.clone().into_lwe_secret_key();
        let ksk = allocate_and_generate_new_lwe_keyswitch_key(
            &big,
            &small,
            DecompositionBaseLog(p.ks_base_log),
            DecompositionLevelCount(p.ks_level),
            lwe_noise,
            modulus,
            &mut enc,
        );
        // KS32: the same key modulo 2^32, its noise on the 32-bit modulus (what the runtime
        // generates, runtime/src/keys.rs).
        let ksk32 = (p.ks_modulus == KsModulus::Q32).then(|| {
            let small32 = LweSecretKey::from_container(
                small
                    .as_ref()
                    .iter()
                    .map(|&x| x as u32)
                    .collect::<Vec<u32>>(),
            );
            let noise32 = match p.noise_distribution {
                NoiseDistribution::Gaussian => {
                    DynamicDistribution::<u32>::new_gaussian_from_std_dev(StandardDev(
                        p.lwe_noise_log2.exp2(),
                    ))
                }
                NoiseDistribution::TUniform => {
                    DynamicDistribution::new_t_uniform((32.0 + p.lwe_noise_log2) as u32)
                }
            };
            allocate_and_generate_new_lwe_keyswitch_key(
                &big,
                &small32,
                DecompositionBaseLog(p.ks_base_log),
                DecompositionLevelCount(p.ks_level),
                noise32,
                CiphertextModulus::<u32>::new_native(),
                &mut enc,
            )
        });
        let std_bsk = par_allocate_and_generate_new_lwe_bootstrap_key(
            &small,
            &glwe,
            DecompositionBaseLog(p.pbs_base_log),
            DecompositionLevelCount(p.pbs_level),
            glwe_noise,
            modulus,
            &mut enc,
        );
        let mut bsk = FourierLweBootstrapKey::new(
            std_bsk.input_lwe_dimension(),
            std_bsk.glwe_size(),
            std_bsk.polynomial_size(),
            std_bsk.decomposition_base_log(),
            std_bsk.decomposition_level_count(),
        );
        convert_standard_lwe_bootstrap_key_to_fourier(&std_bsk, &mut bsk);
        let lut = generate_programmable_bootstrap_glwe_lut(
            PolynomialSize(p.polynomial_size),
            GlweDimension(p.glwe_dimension).to_glwe_size(),
            1usize << bits,
            modulus,
            Self::delta_of(bits),
            |x: u64| x,
        );
        Keys {
            bits,
            small,
            big,
            ksk,
            ksk32,
            bsk,
            lut,
            glwe_noise,
            ms: p.modulus_switch,
            enc,
            log_2n: p.polynomial_size.trailing_zeros() as usize + 1,
        }
    }

    fn delta_of(bits: u32) -> u64 {
        1u64 << (63 - bits)
    }

    fn delta(&self) -> u64 {
        Self::delta_of(self.bits)
    }

    /// A fresh encryption of `m` under the big key (as a TLU output or a client input is).
    fn encrypt_big(&mut self, m: u64) -> LweCiphertextOwned<u64> {
        allocate_and_encrypt_new_lwe_ciphertext(
            &self.big,
            Plaintext(m * self.delta()),
            self.glwe_noise,
            CiphertextModulus::new_native(),
            &mut self.enc,
        )
    }

    fn keyswitch(&self, ct: &LweCiphertextOwned<u64>) -> LweCiphertextOwned<u64> {
        if let Some(ksk32) = &self.ksk32 {
            // KS32 as the runtime runs it: scalar change into u32, then back on the 64-bit
            // torus (top half).
            let mut out = LweCiphertext::new(
                0u32,
                self.small.lwe_dimension().to_lwe_size(),
                CiphertextModulus::<u32>::new_native(),
            );
            keyswitch_lwe_ciphertext_with_scalar_change(ksk32, ct, &mut out);
            let data: Vec<u64> = out.as_ref().iter().map(|&x| (x as u64) << 32).collect();
            return LweCiphertext::from_container(data, CiphertextModulus::new_native());
        }
        let mut out = LweCiphertext::new(
            0u64,
            self.small.lwe_dimension().to_lwe_size(),
            CiphertextModulus::new_native(),
        );
        keyswitch_lwe_ciphertext(&self.ksk, ct, &mut out);
        out
    }

    fn bootstrap(&self, ct: &LweCiphertextOwned<u64>) -> LweCiphertextOwned<u64> {
        let mut out = LweCiphertext::new(
            0u64,
            self.big.lwe_dimension().to_lwe_size(),
            CiphertextModulus::new_native(),
        );
        match self.ms {
            ModulusSwitch::Standard => {
                programmable_bootstrap_lwe_ciphertext(ct, &mut out, &self.lut, &self.bsk)
            }
            ModulusSwitch::Centered => {
                // What the runtime does (runtime/src/pbs.rs): centered switch, blind rotation,
                // sample extraction.
                let log = CiphertextModulusLog(self.log_2n);
                let ms = lwe_ciphertext_centered_binary_modulus_switch(ct.as_view(), log);
                let mut glwe = self.lut.clone();
                blind_rotate_assign(&ms, &mut glwe, &self.bsk);
                extract_lwe_sample_from_glwe_ciphertext(&glwe, &mut out, MonomialDegree(0));
            }
        }
        out
    }

    /// Torus error of `ct` (decrypted under `key`) against message `m`.
    fn error(&self, key: &LweSecretKeyOwned<u64>, ct: &LweCiphertextOwned<u64>, m: u64) -> f64 {
        let phase = decrypt_lwe_ciphertext(key, ct).0;
        torus(phase.wrapping_sub(m * self.delta()))
    }

    /// Decoded message of a big-key ciphertext (rounding to the nearest multiple of delta).
    fn decode(&self, ct: &LweCiphertextOwned<u64>) -> u64 {
        let phase = decrypt_lwe_ciphertext(&self.big, ct).0;
        let d = SignedDecomposer::<u64>::new(
            DecompositionBaseLog(self.bits as usize + 1),
            DecompositionLevelCount(1),
        );
        (d.closest_representable(phase) >> (63 - self.bits)) % (1 << self.bits)
    }

    /// Torus error of the phase the blind rotation sees: the small-key ciphertext switched to
    /// `Z_2N` by tfhe's own modulus switch of the set's kind, decrypted there. The centered
    /// switch also moves the phase down by half a step of `2N` (to centre it in the test
    /// polynomial's boxes), which is added back.
    fn switched_error(&self, ct: &LweCiphertextOwned<u64>, m: u64) -> f64 {
        let log = self.log_2n;
        let modlog = CiphertextModulusLog(log);
        let (body, mask): (u64, Vec<u64>) = match self.ms {
            ModulusSwitch::Standard => {
                let s = lwe_ciphertext_modulus_switch::<u64, u64, _>(ct.as_view(), modlog);
                (s.body(), s.mask().collect())
            }
            ModulusSwitch::Centered => {
                let s = lwe_ciphertext_centered_binary_modulus_switch::<u64, u64, _>(
                    ct.as_view(),
                    modlog,
                );
                (s.body(), s.mask().collect())
            }
        };
        let mut phase = body;
        for (a, s) in mask.iter().zip(self.small.as_ref()) {
            phase = phase.wrapping_sub(a.wrapping_mul(*s));
        }
        let want = (m * self.delta()) >> (64 - log);
        let shift = match self.ms {
            ModulusSwitch::Standard => 0.0,
            ModulusSwitch::Centered => 0.5 / (1u64 << log) as f64,
        };
        torus(phase.wrapping_sub(want) << (64 - log)) + shift
    }
}

/// A 64-bit torus value as a signed fraction in `[-1/2, 1/2)`.
fn torus(x: u64) -> f64 {
    x as i64 as f64 / 2f64.powi(64)
}

fn mean_square(xs: &[f64]) -> f64 {
    xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64
}

fn solve(bits: u8, p_error: f64, noise: NoiseOptions) -> Solution {
    let mut p = Problem::single(bits, 1.0, 1, ErrorTarget::p_error(p_error));
    p.noise = noise;
    optimize(&p).unwrap()
}

fn ks32(dist: NoiseDistribution) -> NoiseOptions {
    NoiseOptions {
        distribution: Some(dist),
        modulus_switch: None,
        ks_modulus: Some(KsModulus::Q32),
    }
}

fn forced(dist: NoiseDistribution, ms: Option<ModulusSwitch>) -> NoiseOptions {
    NoiseOptions {
        distribution: Some(dist),
        modulus_switch: ms,
        ks_modulus: None,
    }
}

#[test]
fn noise_variance_matches_model() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut cases: Vec<(u8, NoiseOptions)> =
        (1..=4u8).map(|b| (b, NoiseOptions::default())).collect();
    for dist in [NoiseDistribution::Gaussian, NoiseDistribution::TUniform] {
        for ms in [ModulusSwitch::Standard, ModulusSwitch::Centered] {
            cases.push((4, forced(dist, Some(ms))));
        }
        cases.push((4, ks32(dist)));
    }
    for (bits, noise) in cases {
        let sol = solve(bits, (-13.9f64).exp2(), noise);
        let set = &sol.sets[0];
        let mut keys = Keys::new(set, bits as u32, 0x5eed_0000 + bits as u128);
        let (mut ks, mut ms, mut pbs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..VARIANCE_SAMPLES {
            let m = i as u64 % (1 << bits);
            let fresh = keys.encrypt_big(m);
            let small = keys.keyswitch(&fresh);
            ks.push(keys.error(&keys.small, &small, m));
            ms.push(keys.switched_error(&small, m));
            let out = keys.bootstrap(&small);
            pbs.push(keys.error(&keys.big, &out, m));
        }
        let p = &set.params;
        let fresh = p.noise_distribution.variance(p.glwe_noise_log2);
        let checks = [
            ("KS output", mean_square(&ks), set.ks_variance + fresh),
            (
                "KS + MS (PBS input)",
                mean_square(&ms),
                set.ks_variance + set.ms_variance + fresh,
            ),
            ("PBS output", mean_square(&pbs), set.br_variance),
        ];
        for (what, got, want) in checks {
            let ratio = got / want;
            let line = format!(
                "{bits} bits {}: {what:<20} measured 2^{:.3} predicted 2^{:.3} ratio {ratio:.3}",
                set.params,
                got.log2(),
                want.log2()
            );
            if !(1.0 / 1.5..=1.5).contains(&ratio) {
                failures.push(line.clone());
            }
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "outside 1.5x:\n{}",
        failures.join("\n")
    );
}

#[test]
fn failure_rate_matches_model() {
    failure_rate(NoiseOptions::default(), 0xfa11);
}

#[test]
fn failure_rate_matches_model_tuniform() {
    failure_rate(forced(NoiseDistribution::TUniform, None), 0xfa12);
}

#[test]
fn failure_rate_matches_model_ks32() {
    failure_rate(ks32(NoiseDistribution::Gaussian), 0xfa13);
}

fn failure_rate(noise: NoiseOptions, seed: u128) {
    let bits = 2u8;
    let sol = solve(bits, 1e-2, noise);
    let set = &sol.sets[0];
    let mut keys = Keys::new(set, bits as u32, seed);
    // Stage 1: fresh -> KS -> PBS (input noise: fresh + KS + MS).
    // Stage 2: PBS output -> KS -> PBS (input noise: BR + KS + MS: the optimized pattern).
    let (mut fail1, mut fail2, mut ok1) = (0u32, 0u32, 0u32);
    for i in 0..FAILURE_SAMPLES {
        let m = i as u64 % (1 << bits);
        let fresh = keys.encrypt_big(m);
        let first = keys.bootstrap(&keys.keyswitch(&fresh));
        let m1 = keys.decode(&first);
        if m1 != m {
            fail1 += 1;
            continue;
        }
        ok1 += 1;
        let second = keys.bootstrap(&keys.keyswitch(&first));
        if keys.decode(&second) != m1 {
            fail2 += 1;
        }
    }
    let p = &set.params;
    let fresh = p.noise_distribution.variance(p.glwe_noise_log2);
    let pred1 = p_error_of_variance(bits, set.ks_variance + set.ms_variance + fresh);
    let pred2 = sol.p_error;
    let rate1 = fail1 as f64 / FAILURE_SAMPLES as f64;
    let rate2 = fail2 as f64 / ok1 as f64;
    println!(
        "{bits} bits at p_error 1e-2, {}: stage 1 (fresh input) {fail1}/{FAILURE_SAMPLES} = {rate1:.2e} \
         predicted {pred1:.2e}; stage 2 (PBS output input) {fail2}/{ok1} = {rate2:.2e} predicted {pred2:.2e}",
        set.params
    );
    assert!(
        (pred2 / 2.0..=pred2 * 2.0).contains(&rate2),
        "measured failure rate {rate2:.3e} not within 2x of predicted {pred2:.3e}"
    );
}

/// The FFT noise term where it decides: the 8-bit set at p_error 2^-13.9 (k = 1, N = 2^14, one
/// PBS level of base 2^22), whose one-level choice rests on tfhe-rs's FFT fit (Concrete's fit
/// predicts a 1.47x larger bootstrap output and would need two levels). The measured bootstrap
/// output variance must lie within 1.5x of veil's prediction. Ignored by default (about a
/// 1 GB bootstrap key and a few minutes on 2 cores):
/// `cargo test -p veil-tests --test noise_validation -- --ignored --nocapture`.
#[test]
#[ignore]
fn fft_noise_at_polynomial_size_2_14() {
    use veil_compiler::optimizer::noise::{
        blind_rotation_variance, cmux_variance, concrete_fft_variance, fft_variance,
    };
    use veil_compiler::optimizer::security::min_secure_variance;
    const SAMPLES: usize = 120;
    let bits = 8u8;
    let sol = solve(bits, (-13.9f64).exp2(), NoiseOptions::default());
    let set = &sol.sets[0];
    let p = &set.params;
    assert_eq!((p.polynomial_size, p.pbs_level), (1 << 14, 1), "{p}");
    let mut keys = Keys::new(set, bits as u32, 0xff7);
    let mut errs = Vec::new();
    for i in 0..SAMPLES {
        let m = (i as u64 * 37) % (1 << bits);
        let fresh = keys.encrypt_big(m);
        let out = keys.bootstrap(&keys.keyswitch(&fresh));
        errs.push(keys.error(&keys.big, &out, m));
    }
    let got = mean_square(&errs);
    let (k, big_n, b) = (p.glwe_dimension, p.polynomial_size, p.pbs_base_log);
    let bsk = min_secure_variance(p.noise_distribution, k * big_n);
    let concrete = blind_rotation_variance(
        p.lwe_dimension,
        cmux_variance(k, big_n, b, 1, bsk) - fft_variance(k, big_n, b, 1)
            + concrete_fft_variance(k, big_n, b, 1),
    );
    println!(
        "8 bits {p}: PBS output measured 2^{:.3}, veil (tfhe-rs FFT fit) 2^{:.3} ratio {:.3}, \
         Concrete's FFT fit 2^{:.3} ratio {:.3} ({SAMPLES} samples, standard error {:.0}%)",
        got.log2(),
        set.br_variance.log2(),
        got / set.br_variance,
        concrete.log2(),
        got / concrete,
        100.0 * (2.0 / SAMPLES as f64).sqrt()
    );
    let ratio = got / set.br_variance;
    assert!((1.0 / 1.5..=1.5).contains(&ratio), "ratio {ratio:.3}");
}
