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
//! `VEIL_BENCH_BITS` picks precisions (default 2,4,6); `VEIL_BENCH_ROUNDS` the rounds.

use std::time::{Duration, Instant};
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;
use veil_benches::{bench_bits, keys};
use veil_ir::{Encoding, IntType, KeyId, Tensor};
use veil_runtime::{reference_params, Executor};

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
        "{:>4} {:>12} {:>12} {:>8} {:>16}",
        "bits", "bare (ms)", "veil (ms)", "ratio", "veil tensor (ms)"
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
        let (mut tb, mut tv, mut tt) = (Vec::new(), Vec::new(), Vec::new());
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
        }
        let (b, v, t) = (median(tb), median(tv), median(tt));
        println!(
            "{bits:>4} {:>12.3} {:>12.3} {:>8.3} {:>16.3}",
            ms(b),
            ms(v),
            v.as_secs_f64() / b.as_secs_f64(),
            ms(t)
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
