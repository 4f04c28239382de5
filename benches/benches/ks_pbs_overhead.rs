//! veil's keyswitch + bootstrap against a bare tfhe core_crypto keyswitch + bootstrap with
//! identical parameters, in one run, interleaved; prints both latencies and their ratio
//! (target <= 1.05). Then 64 independent bootstraps of one tensor on 1 and 2 threads (target
//! speedup >= 1.8).
//!
//! The bare baseline is the best a direct core_crypto user gets: keys generated with
//! core_crypto, the accumulator built once, FFT plan and scratch memory allocated once, then
//! `keyswitch_lwe_ciphertext` + `programmable_bootstrap_lwe_ciphertext_mem_optimized`.
//! veil's side is `ServerKeys::keyswitch` + `ServerKeys::bootstrap` (what the executor runs per
//! element) and, for information, the whole tensor path on one element.
//!
//! The same set with KS32 keyswitch keys (`ks_modulus=2^32`, the small key's noise at its floor
//! in `2^32` units) runs next to it: veil's KS32 keyswitch alone and KS32 keyswitch + bootstrap,
//! against veil's 64-bit keyswitch alone, interleaved in the same rounds.
//!
//! `VEIL_BENCH_BITS` picks precisions (default 2,4,6); `VEIL_BENCH_ROUNDS` the rounds.

use std::time::{Duration, Instant};
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;
use veil_benches::{bench_bits, keys};
use veil_ir::{Encoding, IntType, KeyId, KsModulus, Tensor};
use veil_runtime::{reference_params, ClientKeys, Executor, KeyRequirements, KeygenOptions};

struct Bare {
    ksk: LweKeyswitchKeyOwned<u64>,
    bsk: FourierLweBootstrapKeyOwned,
    acc: GlweCiphertextOwned<u64>,
    input: LweCiphertextOwned<u64>,
    fft: Fft,
    buf: ComputationBuffers,
}

fn bare_setup(bits: u8) -> Bare {
    let p = reference_params(bits).unwrap();
    let n = LweDimension(p.lwe_dimension);
    let k = GlweDimension(p.glwe_dimension);
    let poly = PolynomialSize(p.polynomial_size);
    let lwe_noise = Gaussian::from_dispersion_parameter(StandardDev(p.lwe_noise_log2.exp2()), 0.0);
    let glwe_noise =
        Gaussian::from_dispersion_parameter(StandardDev(p.glwe_noise_log2.exp2()), 0.0);
    let modulus = CiphertextModulus::new_native();
    let mut seeder = new_seeder();
    let seeder = seeder.as_mut();
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let mut enc = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
    let small = LweSecretKey::generate_new_binary(n, &mut secret);
    let glwe = GlweSecretKey::generate_new_binary(k, poly, &mut secret);
    let big = glwe.clone().into_lwe_secret_key();
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
        n,
        k.to_glwe_size(),
        poly,
        DecompositionBaseLog(p.pbs_base_log),
        DecompositionLevelCount(p.pbs_level),
    );
    par_convert_standard_lwe_bootstrap_key_to_fourier(&std_bsk, &mut bsk);
    let ksk = allocate_and_generate_new_lwe_keyswitch_key(
        &big,
        &small,
        DecompositionBaseLog(p.ks_base_log),
        DecompositionLevelCount(p.ks_level),
        lwe_noise,
        modulus,
        &mut enc,
    );
    let delta = 1u64 << (63 - bits);
    let acc = generate_programmable_bootstrap_glwe_lut(
        poly,
        k.to_glwe_size(),
        1 << bits,
        modulus,
        delta,
        |x: u64| (x + 1) % (1 << bits),
    );
    let input = allocate_and_encrypt_new_lwe_ciphertext(
        &big,
        Plaintext(delta),
        glwe_noise,
        modulus,
        &mut enc,
    );
    let fft = Fft::new(poly);
    let mut buf = ComputationBuffers::new();
    buf.resize(
        programmable_bootstrap_lwe_ciphertext_mem_optimized_requirement::<u64>(
            k.to_glwe_size(),
            poly,
            fft.as_view(),
        )
        .unaligned_bytes_required(),
    );
    Bare {
        ksk,
        bsk,
        acc,
        input,
        fft,
        buf,
    }
}

fn bare_ks_pbs(b: &mut Bare) -> LweCiphertextOwned<u64> {
    let mut ks = LweCiphertext::new(0u64, b.ksk.output_lwe_size(), b.ksk.ciphertext_modulus());
    keyswitch_lwe_ciphertext(&b.ksk, &b.input, &mut ks);
    let mut out = LweCiphertext::new(
        0u64,
        b.bsk.output_lwe_dimension().to_lwe_size(),
        CiphertextModulus::new_native(),
    );
    programmable_bootstrap_lwe_ciphertext_mem_optimized(
        &ks,
        &mut out,
        &b.acc,
        &b.bsk,
        b.fft.as_view(),
        b.buf.stack(),
    );
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rounds: usize = std::env::var("VEIL_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let single = Executor::new(1).expect("pool");
    println!("KS+PBS latency, one thread, median of {rounds} interleaved rounds");
    println!(
        "{:>4} {:>12} {:>12} {:>8} {:>16} {:>12} {:>12} {:>14} {:>10}",
        "bits",
        "bare (ms)",
        "veil (ms)",
        "ratio",
        "veil tensor (ms)",
        "KS64 (ms)",
        "KS32 (ms)",
        "KS32+PBS (ms)",
        "KS32/KS64"
    );
    for bits in bench_bits(&[2, 4, 6]) {
        let rounds = if bits >= 7 { rounds.min(5) } else { rounds };
        let mut bare = bare_setup(bits);
        let (ck, sk) = keys(bits, 99);
        let big = Encoding {
            key: KeyId::Big(0),
            width: bits,
        };
        let int = IntType::unsigned(bits);
        let ct = ck.encrypt(&Tensor::scalar(1), int, big).unwrap();
        let lwe = ct.tensor().data[0].clone();
        let table: Vec<i64> = (0..1i64 << bits).map(|x| (x + 1) % (1 << bits)).collect();
        let acc = sk.accumulator(0, bits, &[&table], bits).unwrap();
        let small = KeyId::Small(0);
        // The same set with KS32 keyswitch keys.
        let mut p32 = reference_params(bits).unwrap();
        p32.ks_modulus = KsModulus::Q32;
        p32.lwe_noise_log2 = p32
            .noise_distribution
            .min_secure_noise_log2_mod(p32.lwe_dimension, 32)
            .max(p32.lwe_noise_log2);
        let ck32 = ClientKeys::generate(
            std::slice::from_ref(&p32),
            &KeygenOptions {
                seed: 98,
                allow_insecure_for_tests: false,
            },
        )
        .expect("a secure KS32 set");
        let req = KeyRequirements {
            bsk: [0].into(),
            ksk: [(KeyId::Big(0), small)].into(),
            ..Default::default()
        };
        let sk32 = ck32.server_keys(&req, None).unwrap().decompress();
        let lwe32 = ck32
            .encrypt(&Tensor::scalar(1), int, big)
            .unwrap()
            .tensor()
            .data[0]
            .clone();
        let acc32 = sk32.accumulator(0, bits, &[&table], bits).unwrap();
        let ks64_once = || sk.keyswitch(&lwe, KeyId::Big(0), small, bits).unwrap();
        let ks32_once = || sk32.keyswitch(&lwe32, KeyId::Big(0), small, bits).unwrap();
        let ks32_pbs_once = || sk32.bootstrap(&ks32_once(), &acc32).unwrap();
        let veil_once = || {
            let k = sk.keyswitch(&lwe, KeyId::Big(0), small, bits).unwrap();
            sk.bootstrap(&k, &acc).unwrap()
        };
        let tensor_once = || {
            let k = sk
                .keyswitch_tensor(
                    &ct,
                    Encoding {
                        key: small,
                        width: bits,
                    },
                )
                .unwrap();
            sk.pbs_tensor(&k, &[&table], &[], big).unwrap()
        };
        // Warm up both (FFT plans, scratch, caches) and check correctness.
        let _ = bare_ks_pbs(&mut bare);
        let out = single.install(tensor_once);
        assert_eq!(ck.decrypt(&out, int).unwrap().data, vec![2 % (1 << bits)]);
        let _ = single.install(veil_once);
        let _ = single.install(ks32_pbs_once);
        let (mut tb, mut tv, mut tt) = (Vec::new(), Vec::new(), Vec::new());
        let (mut k64, mut k32, mut kp32) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            std::hint::black_box(bare_ks_pbs(&mut bare));
            tb.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(single.install(veil_once));
            tv.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(single.install(tensor_once));
            tt.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(single.install(ks64_once));
            k64.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(single.install(ks32_once));
            k32.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(single.install(ks32_pbs_once));
            kp32.push(t.elapsed());
        }
        let (b, v, t) = (median(tb), median(tv), median(tt));
        let (a64, a32, ap32) = (median(k64), median(k32), median(kp32));
        println!(
            "{bits:>4} {:>12.3} {:>12.3} {:>8.3} {:>16.3} {:>12.3} {:>12.3} {:>14.3} {:>10.2}",
            ms(b),
            ms(v),
            v.as_secs_f64() / b.as_secs_f64(),
            ms(t),
            ms(a64),
            ms(a32),
            ms(ap32),
            a32.as_secs_f64() / a64.as_secs_f64()
        );
    }

    // 64 independent bootstraps of one tensor, 1 vs 2 threads.
    let bits = bench_bits(&[2, 4, 6])
        .into_iter()
        .find(|&b| b == 4)
        .unwrap_or(2);
    let (ck, sk) = keys(bits, 7);
    let int = IntType::unsigned(bits);
    let xs = Tensor::new(vec![64], (0..64).map(|i| i % (1 << bits)).collect()).unwrap();
    let ct = ck
        .encrypt(
            &xs,
            int,
            Encoding {
                key: KeyId::Small(0),
                width: bits,
            },
        )
        .unwrap();
    let table: Vec<i64> = (0..1i64 << bits).rev().collect();
    let out_enc = Encoding {
        key: KeyId::Big(0),
        width: bits,
    };
    let mut times = Vec::new();
    for threads in [1, 2] {
        let ex = Executor::new(threads).unwrap();
        let _ = ex.install(|| sk.pbs_tensor(&ct, &[&table], &[], out_enc).unwrap());
        let mut ts = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            std::hint::black_box(
                ex.install(|| sk.pbs_tensor(&ct, &[&table], &[], out_enc).unwrap()),
            );
            ts.push(t.elapsed());
        }
        times.push(median(ts));
    }
    println!(
        "64 independent {bits}-bit PBS: 1 thread {:.1} ms, 2 threads {:.1} ms, speedup {:.2}x",
        ms(times[0]),
        ms(times[1]),
        times[0].as_secs_f64() / times[1].as_secs_f64()
    );
}
