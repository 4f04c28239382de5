//! Criterion benches of the runtime per precision (Concrete's reference sets): encryption,
//! levelled ops, keyswitch, bootstrap, and 64 independent bootstraps on 1 and 2 threads.
//! Keygen time and key sizes (before/after compression) are measured once per precision and
//! printed. `VEIL_BENCH_BITS` picks precisions (default 1-6; 7-8 take minutes of keygen).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::{Duration, Instant};
use veil_benches::{bench_bits, one_set_requirements};
use veil_ir::{Element, Encoding, IntType, KeyId, Tensor};
use veil_runtime::{reference_params, ClientKeys, Executor, KeygenOptions};

fn benches(c: &mut Criterion) {
    for bits in bench_bits(&[1, 2, 3, 4, 5, 6]) {
        let p = reference_params(bits).expect("1..=8");
        let t = Instant::now();
        let ck = ClientKeys::generate(
            &[p],
            &KeygenOptions {
                seed: bits as u128,
                allow_insecure_for_tests: false,
            },
        )
        .expect("secure");
        let csk = ck.server_keys(&one_set_requirements(), None).expect("keys");
        let keygen = t.elapsed();
        let t = Instant::now();
        let sk = csk.decompress();
        println!(
            "{bits}-bit keygen {:.2} s, decompress {:.2} s; {}",
            keygen.as_secs_f64(),
            t.elapsed().as_secs_f64(),
            csk.sizes()
        );

        let int = IntType::unsigned(bits);
        let big = Encoding {
            key: KeyId::Big(0),
            width: bits,
        };
        let small = Encoding {
            key: KeyId::Small(0),
            width: bits,
        };
        let ct = ck.encrypt(&Tensor::scalar(1), int, big).expect("encrypt");
        let lwe = ct.tensor().data[0].clone();
        let table: Vec<i64> = (0..1i64 << bits).rev().collect();
        let acc = sk.accumulator(0, bits, &[&table], bits).expect("acc");
        let ks = sk
            .keyswitch(&lwe, KeyId::Big(0), KeyId::Small(0), bits)
            .expect("ks");
        let heavy = bits >= 6;

        let mut g = c.benchmark_group(format!("{bits}-bit"));
        g.sample_size(10);
        if heavy {
            g.measurement_time(Duration::from_secs(3));
            g.warm_up_time(Duration::from_millis(500));
        }
        g.bench_function("encrypt", |b| {
            b.iter(|| ck.encrypt(&Tensor::scalar(1), int, big).unwrap())
        });
        g.bench_function("add", |b| b.iter(|| lwe.add(&lwe)));
        g.bench_function("mul_int", |b| b.iter(|| lwe.mul_int(3)));
        let row = Tensor::new(vec![1, 64], vec![lwe.clone(); 64]).unwrap();
        let w = Tensor::new(vec![64, 8], (0..512).map(|i| i % 3 - 1).collect()).unwrap();
        g.bench_function("matmul_1x64_64x8", |b| {
            b.iter(|| row.matmul_clear_rhs(&w).unwrap())
        });
        g.bench_function("keyswitch", |b| {
            b.iter(|| {
                sk.keyswitch(&lwe, KeyId::Big(0), KeyId::Small(0), bits)
                    .unwrap()
            })
        });
        g.bench_function("pbs", |b| b.iter(|| sk.bootstrap(&ks, &acc).unwrap()));
        if bits <= 6 {
            let xs = Tensor::new(vec![64], (0..64).map(|i| i % (1 << bits)).collect()).unwrap();
            let cts = ck.encrypt(&xs, int, small).expect("encrypt");
            for threads in [1, 2] {
                let ex = Executor::new(threads).expect("pool");
                g.bench_with_input(
                    BenchmarkId::new("pbs_x64_threads", threads),
                    &threads,
                    |b, _| {
                        b.iter(|| ex.install(|| sk.pbs_tensor(&cts, &[&table], &[], big).unwrap()))
                    },
                );
            }
        }
        g.finish();
    }
}

criterion_group!(runtime, benches);
criterion_main!(runtime);
