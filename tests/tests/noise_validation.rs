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
//! Two ignored tests check the bootstrap at N = 2^14 (bootstrap keys of about 0.5 GB):
//! `fft_noise_at_polynomial_size_2_14` (veil's 8-bit set) and `concrete_live_choices_measured`
//! (Concrete 2.10's cheaper 8-bit and 7-bit sets, measured term by term against `V_safe`).
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
        let bsk = fourier(&std_bsk);
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

    /// Torus error of the phase the blind rotation sees ([`switched_phase_error`] under this
    /// set's small key and modulus switch) against message `m`.
    fn switched_error(&self, ct: &LweCiphertextOwned<u64>, m: u64) -> f64 {
        switched_phase_error(&self.small, ct, self.ms, self.log_2n, m * self.delta())
    }
}

/// Torus error of the phase the blind rotation sees: the ciphertext `ct` under `small` switched
/// to `Z_2N` (`log = log2(2N)`) by tfhe's own modulus switch of kind `ms`, decrypted there,
/// against the 64-bit phase `want`. The centered switch also moves the phase down by half a
/// step of `2N` (to centre it in the test polynomial's boxes), which is added back.
fn switched_phase_error(
    small: &LweSecretKeyOwned<u64>,
    ct: &LweCiphertextOwned<u64>,
    ms: ModulusSwitch,
    log: usize,
    want: u64,
) -> f64 {
    let modlog = CiphertextModulusLog(log);
    let (body, mask): (u64, Vec<u64>) = match ms {
        ModulusSwitch::Standard => {
            let s = lwe_ciphertext_modulus_switch::<u64, u64, _>(ct.as_view(), modlog);
            (s.body(), s.mask().collect())
        }
        ModulusSwitch::Centered => {
            let s =
                lwe_ciphertext_centered_binary_modulus_switch::<u64, u64, _>(ct.as_view(), modlog);
            (s.body(), s.mask().collect())
        }
    };
    let mut phase = body;
    for (a, s) in mask.iter().zip(small.as_ref()) {
        phase = phase.wrapping_sub(a.wrapping_mul(*s));
    }
    let want = want >> (64 - log);
    let shift = match ms {
        ModulusSwitch::Standard => 0.0,
        ModulusSwitch::Centered => 0.5 / (1u64 << log) as f64,
    };
    torus(phase.wrapping_sub(want) << (64 - log)) + shift
}

/// A 64-bit torus value as a signed fraction in `[-1/2, 1/2)`.
/// A bootstrap key in the Fourier domain, as the blind rotation reads it.
fn fourier(std_bsk: &LweBootstrapKeyOwned<u64>) -> FourierLweBootstrapKeyOwned {
    let mut bsk = FourierLweBootstrapKey::new(
        std_bsk.input_lwe_dimension(),
        std_bsk.glwe_size(),
        std_bsk.polynomial_size(),
        std_bsk.decomposition_base_log(),
        std_bsk.decomposition_level_count(),
    );
    convert_standard_lwe_bootstrap_key_to_fourier(std_bsk, &mut bsk);
    bsk
}

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

/// Mean square of `xs` and its relative standard error, from the spread of the mean squares of
/// consecutive groups of `group` samples: samples within a group may be correlated (the
/// coefficients of one blind rotation are: the key's mean turns each CMUX's rounding into a
/// nearly constant polynomial), groups are independent. `group = 1` for independent samples.
fn mean_square_se(xs: &[f64], group: usize) -> (f64, f64) {
    let m = mean_square(xs);
    let means: Vec<f64> = xs.chunks(group).map(mean_square).collect();
    let g = means.len() as f64;
    let var = means.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (g - 1.0);
    (m, (var / g).sqrt() / m)
}

fn gaussian(variance: f64) -> DynamicDistribution<u64> {
    DynamicDistribution::new_gaussian_from_std_dev(StandardDev(variance.sqrt()))
}

fn hamming_weight(key: &[u64]) -> usize {
    key.iter().filter(|&&b| b == 1).count()
}

const MS_KINDS: [ModulusSwitch; 2] = [ModulusSwitch::Centered, ModulusSwitch::Standard];

/// The error each modulus switch of [`MS_KINDS`] adds, over `samples` fresh encryptions of 0
/// under `small` (a keyswitch output's mask is as uniform as theirs): the switched phase's error
/// minus the phase error before the switch.
fn measure_modulus_switch(
    small: &LweSecretKeyOwned<u64>,
    noise: DynamicDistribution<u64>,
    log_2n: usize,
    samples: usize,
    enc: &mut EncryptionRandomGenerator<DefaultRandomGenerator>,
) -> [Vec<f64>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for _ in 0..samples {
        let ct = allocate_and_encrypt_new_lwe_ciphertext(
            small,
            Plaintext(0),
            noise,
            CiphertextModulus::new_native(),
            enc,
        );
        let before = torus(decrypt_lwe_ciphertext(small, &ct).0);
        for (errs, ms) in out.iter_mut().zip(MS_KINDS) {
            errs.push(switched_phase_error(small, &ct, ms, log_2n, 0) - before);
        }
    }
    out
}

/// What [`measure_keyswitch`] measured.
struct KsMeasure {
    /// Error each keyswitch added (output phase error minus input phase error).
    added: Vec<f64>,
    /// Error of the modulus-switched output under each switch of [`MS_KINDS`]: everything the
    /// next blind rotation sees.
    total: [Vec<f64>; 2],
    /// The variance this key's keyswitch has on average over inputs: its realized noise
    /// `sum e^2` times the digits' variance `(B^2 + 2) / 12`, plus the rounding of the input
    /// mask to `B^l` on the big key's ones, `|s| / (12 B^(2l))`.
    key_expected: f64,
}

/// Keyswitches every ciphertext of `inputs` (encryptions of 0 under `big`) to `small` with a
/// fresh key of base `2^base_log`, `level` levels and noise variance `variance`.
fn measure_keyswitch(
    big: &LweSecretKeyOwned<u64>,
    small: &LweSecretKeyOwned<u64>,
    (base_log, level, variance): (usize, usize, f64),
    inputs: &[LweCiphertextOwned<u64>],
    log_2n: usize,
    enc: &mut EncryptionRandomGenerator<DefaultRandomGenerator>,
) -> KsMeasure {
    let modulus = CiphertextModulus::new_native();
    let ksk = allocate_and_generate_new_lwe_keyswitch_key(
        big,
        small,
        DecompositionBaseLog(base_log),
        DecompositionLevelCount(level),
        gaussian(variance),
        modulus,
        enc,
    );
    // Row i of block j encrypts s_j at decomposition level `level - i` (tfhe's layout).
    let mut noise2 = 0.0;
    for (block, &s) in ksk.iter().zip(big.as_ref()) {
        for (i, row) in block.iter().enumerate() {
            let message = s << (64 - base_log * (level - i));
            noise2 += torus(decrypt_lwe_ciphertext(small, &row).0.wrapping_sub(message)).powi(2);
        }
    }
    let b2 = (2.0 * base_log as f64).exp2();
    let rounding = hamming_weight(big.as_ref()) as f64 / (12.0 * b2.powi(level as i32));
    let key_expected = noise2 * (b2 + 2.0) / 12.0 + rounding;
    let (mut added, mut total) = (Vec::new(), [Vec::new(), Vec::new()]);
    let mut out = LweCiphertext::new(0u64, small.lwe_dimension().to_lwe_size(), modulus);
    for ct in inputs {
        let before = torus(decrypt_lwe_ciphertext(big, ct).0);
        par_keyswitch_lwe_ciphertext(&ksk, ct, &mut out);
        added.push(torus(decrypt_lwe_ciphertext(small, &out).0) - before);
        for (errs, ms) in total.iter_mut().zip(MS_KINDS) {
            errs.push(switched_phase_error(small, &out, ms, log_2n, 0));
        }
    }
    KsMeasure {
        added,
        total,
        key_expected,
    }
}

/// Concrete 2.10's live optimizer at the two points where it reports a cheaper set than veil
/// (norm2 1), checked by measured noise instead of either model:
/// - 8 bits at p_error 2^-13.9: k = 1, N = 2^14, n = 1006, one PBS level, keyswitch 5 levels of
///   base 2^4 (cost 1163 x 2^20), which veil's model puts at 1.11 `V_safe` (centered modulus
///   switch) and 1.44 `V_safe` (standard);
/// - 7 bits at 2^-40: cost 1144 x 2^20, which only k = 1, N = 2^14 with one PBS level reaches,
///   with n = 1017, 990 or 964 at 4, 5 or 6 keyswitch levels (bases: veil's best at each count).
///
/// Real tfhe-rs keys at veil's Gaussian 128-bit floor, one PBS level of the base veil's model
/// finds best. Measured: the blind rotation's output (GLWE encryptions of zero blind-rotated
/// and decrypted whole, `N` noise samples per rotation; extracted LWE samples decrypt to the
/// same phases), the keyswitch of extracted samples, the modulus switch of each kind, and the
/// whole bootstrap input (blind rotation -> keyswitch -> modulus switch) against `V_safe`. At 7
/// bits the blind rotation is the measured variance per CMUX times `n`; the keyswitch and the
/// modulus switch are measured with keys of each `n`. Each measured term must lie within 1.5x
/// of veil's model, and at 8 bits the measured bootstrap input must exceed `V_safe` with either
/// switch. The keys and inputs are seeded, but the figures move by a few percent between runs
/// (within their standard errors): tfhe-fft picks its FFT algorithm by timing, which changes the
/// realization of the FFT noise. Ignored by default (about 2 GB of keys, 8 minutes on 2 cores):
/// `cargo test -p veil-tests --test noise_validation -- --ignored --nocapture concrete_live`.
#[test]
#[ignore]
fn concrete_live_choices_measured() {
    use std::time::Instant;
    use veil_compiler::optimizer::error::safe_variance;
    use veil_compiler::optimizer::noise::{
        blind_rotation_variance, cmux_variance, concrete_fft_variance, fft_variance,
        keyswitch_variance, ms_variance,
    };
    use veil_compiler::optimizer::security::min_secure_variance;
    const BIG_N: usize = 1 << 14;
    const LOG_2N: usize = 15;
    const N: usize = 1006;
    const ROTATIONS: usize = 200;
    /// Blind-rotation outputs extracted (and keyswitched at 8 bits) per rotation.
    const PER_ROTATION: usize = 8;
    const MS_SAMPLES: usize = 50_000;
    let start = Instant::now();
    let secs = || start.elapsed().as_secs_f64();
    let gauss = NoiseDistribution::Gaussian;
    let modulus = CiphertextModulus::<u64>::new_native();
    let bsk_var = min_secure_variance(gauss, BIG_N);
    let best = |f: &dyn Fn(usize) -> f64| {
        (1..=63usize)
            .min_by(|&a, &b| f(a).total_cmp(&f(b)))
            .unwrap()
    };
    let pbs_base = best(&|b| cmux_variance(1, BIG_N, b, 1, bsk_var));
    let mut seeder = DeterministicSeeder::<DefaultRandomGenerator>::new(Seed(0xc0c0_2010));
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let mut enc =
        EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), &mut seeder);
    let glwe =
        GlweSecretKey::generate_new_binary(GlweDimension(1), PolynomialSize(BIG_N), &mut secret);
    let big = glwe.clone().into_lwe_secret_key();
    let small = LweSecretKey::generate_new_binary(LweDimension(N), &mut secret);
    let ksk_var = min_secure_variance(gauss, N);
    let bsk = {
        let std_bsk = par_allocate_and_generate_new_lwe_bootstrap_key(
            &small,
            &glwe,
            DecompositionBaseLog(pbs_base),
            DecompositionLevelCount(1),
            gaussian(bsk_var),
            modulus,
            &mut enc,
        );
        fourier(&std_bsk)
    };
    println!(
        "[{:.0} s] bootstrap key: n = {N}, k = 1, N = 2^14, 1 level of base 2^{pbs_base}",
        secs()
    );

    // Blind rotations of a GLWE encryption of zero (its mask uniform, as an accumulator's is
    // after the first CMUX; its own noise, 2^-124, is negligible).
    let mut br_glwe = Vec::with_capacity(ROTATIONS * BIG_N);
    let mut extracted = Vec::with_capacity(ROTATIONS * PER_ROTATION);
    let mut phase = PlaintextList::new(0u64, PlaintextCount(BIG_N));
    for r in 0..ROTATIONS {
        let input = allocate_and_encrypt_new_lwe_ciphertext(
            &small,
            Plaintext((r as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            gaussian(ksk_var),
            modulus,
            &mut enc,
        );
        let switched = lwe_ciphertext_centered_binary_modulus_switch(
            input.as_view(),
            CiphertextModulusLog(LOG_2N),
        );
        let mut acc = GlweCiphertext::new(0u64, GlweSize(2), PolynomialSize(BIG_N), modulus);
        encrypt_glwe_ciphertext(
            &glwe,
            &mut acc,
            &PlaintextList::new(0u64, PlaintextCount(BIG_N)),
            gaussian(bsk_var),
            &mut enc,
        );
        blind_rotate_assign(&switched, &mut acc, &bsk);
        decrypt_glwe_ciphertext(&glwe, &acc, &mut phase);
        br_glwe.extend(phase.as_ref().iter().map(|&p| torus(p)));
        for j in 0..PER_ROTATION {
            let degree = (j * (BIG_N / PER_ROTATION) + 7 * r) % BIG_N;
            let mut lwe = LweCiphertext::new(0u64, big.lwe_dimension().to_lwe_size(), modulus);
            extract_lwe_sample_from_glwe_ciphertext(&acc, &mut lwe, MonomialDegree(degree));
            assert_eq!(
                decrypt_lwe_ciphertext(&big, &lwe).0,
                phase.as_ref()[degree],
                "an extracted sample decrypts to its GLWE coefficient"
            );
            extracted.push(lwe);
        }
    }
    drop(bsk);
    let (br, br_se) = mean_square_se(&br_glwe, BIG_N);
    drop(br_glwe);
    let br_lwe: Vec<f64> = extracted
        .iter()
        .map(|ct| torus(decrypt_lwe_ciphertext(&big, ct).0))
        .collect();
    println!(
        "[{:.0} s] {ROTATIONS} blind rotations ({} coefficients)",
        secs(),
        ROTATIONS * BIG_N
    );

    // Keyswitch of the extracted blind-rotation outputs: KS 5 x 2^4 (Concrete's choice).
    let ks = measure_keyswitch(&big, &small, (4, 5, ksk_var), &extracted, LOG_2N, &mut enc);
    let ms = measure_modulus_switch(&small, gaussian(ksk_var), LOG_2N, MS_SAMPLES, &mut enc);
    println!("[{:.0} s] {} keyswitches", secs(), extracted.len());

    let mut failures = Vec::new();
    let mut check = |what: &str, (got, se): (f64, f64), model: f64| {
        let ratio = got / model;
        println!(
            "  {what:<30} measured {got:.4e} (2^{:.3} +-{:.1}%)  veil {model:.4e} (2^{:.3})  ratio {ratio:.3}",
            got.log2(),
            100.0 * se,
            model.log2()
        );
        if !(1.0 / 1.5..=1.5).contains(&ratio) {
            failures.push(format!("{what}: ratio {ratio:.3}"));
        }
    };
    let cmux = cmux_variance(1, BIG_N, pbs_base, 1, bsk_var);
    let (fft_veil, fft_concrete) = (
        fft_variance(1, BIG_N, pbs_base, 1),
        concrete_fft_variance(1, BIG_N, pbs_base, 1),
    );
    let model_br = blind_rotation_variance(N, cmux);
    let model_ks = keyswitch_variance(BIG_N, 4, 5, ksk_var);
    let target8 = (-13.9f64).exp2();
    let safe8 = safe_variance(8, target8);
    let (hw_small, hw_glwe) = (hamming_weight(small.as_ref()), hamming_weight(big.as_ref()));
    println!(
        "8 bits at 2^-13.9, Concrete 2.10's set: n = {N}, k = 1, N = 2^14, PBS 1 x 2^{pbs_base}, \
         KS 5 x 2^4 (key weights {hw_small}/{N}, {hw_glwe}/{BIG_N}); V_safe = {safe8:.4e}"
    );
    check("blind rotation (GLWE)", (br, br_se), model_br);
    check(
        "blind rotation (extracted LWE)",
        mean_square_se(&br_lwe, PER_ROTATION),
        model_br,
    );
    // The blind rotation's parts: the decomposition rounding is exact for these keys
    // (`(1 + |s_glwe|) / (12 B^2)` in each CMUX whose key bit is 1), the rest is FFT noise.
    let rounding =
        hw_small as f64 * (1.0 + hw_glwe as f64) / (12.0 * (2.0 * pbs_base as f64).exp2());
    let fft = (br - rounding) / N as f64;
    let fft_se = br * br_se / N as f64 / fft;
    println!(
        "  FFT noise per CMUX: measured {fft:.3e} +-{:.0}% (blind rotation minus its exact \
         rounding {rounding:.3e}), tfhe-rs's fit {fft_veil:.3e} (ratio {:.3}), Concrete's fit \
         {fft_concrete:.3e} (ratio {:.3})",
        100.0 * fft_se,
        fft / fft_veil,
        fft / fft_concrete,
    );
    // The same at the average key weights (n/2, N/2): the model with the measured FFT noise.
    let br_avg = |n: usize| blind_rotation_variance(n, cmux) + n as f64 * (fft - fft_veil);
    check(
        "blind rotation, average keys",
        (br_avg(N), br * br_se / br_avg(N)),
        model_br,
    );
    let (ks_v, ks_se) = mean_square_se(&ks.added, 1);
    check("keyswitch", (ks_v, ks_se), model_ks);
    println!(
        "  keyswitch expected from this key's realized noise: {:.4e} (ratio to veil {:.3})",
        ks.key_expected,
        ks.key_expected / model_ks
    );
    for (errs, kind) in ms.iter().zip(MS_KINDS) {
        check(
            &format!("modulus switch {kind:?}"),
            mean_square_se(errs, 1),
            ms_variance(kind, N, BIG_N),
        );
    }
    let mut verdicts = Vec::new();
    for (i, kind) in MS_KINDS.into_iter().enumerate() {
        let (ms_v, ms_se) = mean_square_se(&ms[i], 1);
        let sum = br + ks_v + ms_v;
        let sum_se =
            ((br * br_se).powi(2) + (ks_v * ks_se).powi(2) + (ms_v * ms_se).powi(2)).sqrt();
        let (whole, whole_se) = mean_square_se(&ks.total[i], PER_ROTATION);
        let model = model_br + model_ks + ms_variance(kind, N, BIG_N);
        println!(
            "  bootstrap input, {kind:?} switch: measured terms {sum:.4e} = {:.3} +-{:.3} V_safe \
             (p_error {:.2e} = {:.2}x the target); measured whole {whole:.4e} = {:.3} +-{:.3} \
             V_safe; veil's model {model:.4e} = {:.3} V_safe (p_error {:.2e}) -> {}",
            sum / safe8,
            sum_se / safe8,
            p_error_of_variance(8, sum),
            p_error_of_variance(8, sum) / target8,
            whole / safe8,
            whole * whole_se / safe8,
            model / safe8,
            p_error_of_variance(8, model),
            if sum > safe8 {
                "misses the bound"
            } else {
                "meets the bound"
            }
        );
        verdicts.push((kind, sum / safe8));
    }

    // 7 bits at 2^-40: the blind rotation scales with n (the measured variance per CMUX).
    let target7 = (-40f64).exp2();
    let safe7 = safe_variance(7, target7);
    println!(
        "7 bits at 2^-40, k = 1, N = 2^14, PBS 1 x 2^{pbs_base}, centered switch; V_safe = {safe7:.4e}"
    );
    let per_cmux = br / N as f64;
    for (n, level, samples) in [
        (1017usize, 4usize, 400usize),
        (990, 5, 1200),
        (964, 6, 1000),
    ] {
        let var = min_secure_variance(gauss, n);
        let base = best(&|b| keyswitch_variance(BIG_N, b, level, var));
        let small7 = LweSecretKey::generate_new_binary(LweDimension(n), &mut secret);
        let ks7 = measure_keyswitch(
            &big,
            &small7,
            (base, level, var),
            &extracted[..samples],
            LOG_2N,
            &mut enc,
        );
        let ms7 = measure_modulus_switch(&small7, gaussian(var), LOG_2N, MS_SAMPLES / 5, &mut enc);
        println!("  [{:.0} s] n = {n}, KS {level} x 2^{base}:", secs());
        let model_br7 = blind_rotation_variance(n, cmux);
        let model_ks7 = keyswitch_variance(BIG_N, base, level, var);
        let model_ms7 = ms_variance(ModulusSwitch::Centered, n, BIG_N);
        let (ks7_v, ks7_se) = mean_square_se(&ks7.added, 1);
        let (ms7_v, ms7_se) = mean_square_se(&ms7[0], 1);
        check(
            "  blind rotation (n x CMUX)",
            (per_cmux * n as f64, br_se),
            model_br7,
        );
        check("  keyswitch", (ks7_v, ks7_se), model_ks7);
        check("  modulus switch Centered", (ms7_v, ms7_se), model_ms7);
        let sum = per_cmux * n as f64 + ks7_v + ms7_v;
        let sum_se = ((per_cmux * n as f64 * br_se).powi(2)
            + (ks7_v * ks7_se).powi(2)
            + (ms7_v * ms7_se).powi(2))
        .sqrt();
        // With the blind rotation at the average key weights and this keyswitch key's expected
        // variance (no sampling error in the keyswitch).
        let sum_avg = br_avg(n) + ks7.key_expected + ms7_v;
        let model = model_br7 + model_ks7 + model_ms7;
        println!(
            "    keyswitch expected from this key's realized noise: {:.4e} (ratio to veil {:.3})",
            ks7.key_expected,
            ks7.key_expected / model_ks7
        );
        println!(
            "    bootstrap input: measured {sum:.4e} = {:.3} +-{:.3} V_safe (p_error {:.2e} = \
             2^{:.1}); average keys and this key's keyswitch: {:.3} V_safe (p_error 2^{:.1}); \
             veil's model {:.3} V_safe (p_error 2^{:.1}) -> {}",
            sum / safe7,
            sum_se / safe7,
            p_error_of_variance(7, sum),
            p_error_of_variance(7, sum).log2(),
            sum_avg / safe7,
            p_error_of_variance(7, sum_avg).log2(),
            model / safe7,
            p_error_of_variance(7, model).log2(),
            if sum > safe7 {
                "misses the bound"
            } else {
                "meets the bound"
            }
        );
    }
    // The smallest n meeting V_safe with the centered switch at a keyswitch level count (best
    // base), in veil's model and with the measured FFT noise in place of tfhe-rs's fit (the
    // keyswitch and modulus-switch formulas as measured above).
    let smallest = |bits: u8, target: f64, level: usize, measured_fft: bool| {
        (800..1400usize)
            .find(|&n| {
                let var = min_secure_variance(gauss, n);
                let base = best(&|b| keyswitch_variance(BIG_N, b, level, var));
                let br_n = if measured_fft {
                    br_avg(n)
                } else {
                    blind_rotation_variance(n, cmux)
                };
                br_n + keyswitch_variance(BIG_N, base, level, var)
                    + ms_variance(ModulusSwitch::Centered, n, BIG_N)
                    <= safe_variance(bits, target)
            })
            .unwrap()
    };
    for (bits, target, concrete) in [
        (8u8, target8, "5: 1006"),
        (7, target7, "4, 5, 6: 1017, 990, 964"),
    ] {
        let line = |measured| {
            [4, 5, 6]
                .map(|l| smallest(bits, target, l, measured).to_string())
                .join(", ")
        };
        println!(
            "{bits} bits, smallest n meeting V_safe at KS 4, 5, 6 levels: {} in veil's model, {} \
             with the measured FFT noise (Concrete at KS {concrete})",
            line(false),
            line(true)
        );
    }
    println!("[{:.0} s] done", secs());
    assert!(
        failures.is_empty(),
        "outside 1.5x of veil's model:\n{}",
        failures.join("\n")
    );
    for (kind, v) in verdicts {
        assert!(
            v > 1.0,
            "{kind:?} switch: Concrete's 8-bit set measured at {v:.3} V_safe"
        );
    }
}
