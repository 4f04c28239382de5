//! One encrypted table lookup per input width by WoP-PBS (`veil_runtime::wopbs`: bit
//! extraction, circuit bootstrap, vertical packing), 4 to 16 bits, on one thread: keygen time
//! and key sizes per parameter set, time per lookup, the time per input bit and the growth from
//! the previous width, the model's predicted error and cost, and the classic KS + PBS of
//! Concrete's reference set at the same width where one exists (up to 8 bits).
//!
//! Widths whose tabulated sets differ only in `message_bits` share one key generation (the
//! widest one's keys serve narrower lookups). `VEIL_BENCH_WOP_BITS` picks widths (`"4-16"`,
//! `"8,16"`); `VEIL_BENCH_ROUNDS` the lookups per width (default 3 up to 8 bits, 2 up to 12,
//! then 1; the minimum is printed).

use std::time::{Duration, Instant};
use veil_benches::keys;
use veil_compiler::optimizer::wop::{estimate, WOP_P_ERROR};
use veil_ir::{Encoding, IntType, KeyId, Tensor};
use veil_runtime::keys::human_bytes;
use veil_runtime::wopbs::{WopKeys, WopParams};
use veil_runtime::{ClientKeys, KeygenOptions};

fn widths() -> Vec<u8> {
    let Ok(s) = std::env::var("VEIL_BENCH_WOP_BITS") else {
        return (4..=16).collect();
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let r: Vec<u8> = part
            .split('-')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        match r.as_slice() {
            [a] => out.push(*a),
            [a, b] => out.extend(*a..=*b),
            _ => eprintln!("ignoring VEIL_BENCH_WOP_BITS part {part:?}"),
        }
    }
    out.retain(|b| (1..=16).contains(b));
    out
}

fn rounds(bits: u8) -> usize {
    if let Some(r) = std::env::var("VEIL_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return r;
    }
    match bits {
        0..=8 => 3,
        9..=12 => 2,
        _ => 1,
    }
}

/// The parameters without the width-specific fields (which key generations may be shared).
fn key_shape(p: &WopParams) -> WopParams {
    let mut q = p.clone();
    q.set.message_bits = 0;
    q.set.p_error = 0.0;
    q.out_bits = 0;
    q
}

/// Classic KS + PBS latency of Concrete's reference set at `bits` (1 to 8).
fn classic_pbs(bits: u8) -> Duration {
    let (ck, sk) = keys(bits, 7);
    let acc = sk
        .accumulator(0, bits, &[&(0..1i64 << bits).collect::<Vec<_>>()], bits)
        .unwrap();
    let enc = Encoding {
        key: KeyId::Big(0),
        width: bits,
    };
    let ct = ck.encrypt_scalar(1, IntType::unsigned(bits), enc).unwrap();
    let c = &ct.tensor().data[0];
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let s = sk
                .keyswitch(c, KeyId::Big(0), KeyId::Small(0), bits)
                .unwrap();
            std::hint::black_box(sk.bootstrap(&s, &acc).unwrap());
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(run);
}

fn run() {
    let widths = widths();
    println!("WoP-PBS lookups, one thread, target p_error {WOP_P_ERROR:.2e} (2^-40) per lookup");
    let mut generated: Vec<(WopParams, ClientKeys, WopKeys)> = Vec::new();
    let mut prev: Option<(u8, Duration)> = None;
    println!(
        "{:>4} {:>10} {:>9} {:>8} {:>9} {:>9} {:>10} {:>8} {:>11}",
        "bits", "lookup", "per bit", "growth", "p_error", "out bits", "model", "classic", "params"
    );
    for &bits in &widths {
        let p = WopParams::for_bits(bits).unwrap();
        let shape = key_shape(&p);
        if !generated.iter().any(|(q, _, _)| key_shape(q) == shape) {
            // The widest requested width with this shape generates the keys.
            let widest = widths
                .iter()
                .map(|&b| WopParams::for_bits(b).unwrap())
                .filter(|q| key_shape(q) == shape)
                .max_by_key(|q| q.set.message_bits)
                .unwrap();
            let t = Instant::now();
            let ck = ClientKeys::generate(
                std::slice::from_ref(&widest.set),
                &KeygenOptions {
                    seed: 42,
                    ..Default::default()
                },
            )
            .unwrap();
            let cwk = ck.wop_keys(0, &widest, None).unwrap();
            let keygen = t.elapsed();
            let s = cwk.sizes();
            let t = Instant::now();
            let wk = cwk.decompress();
            println!(
                "  keys for {widest}: keygen {keygen:.2?} (1 thread), expansion {:.2?}; BSK {} seeded, KSK {} seeded, PFPKS {}; total {} sent, {} expanded",
                t.elapsed(),
                human_bytes(s.bsk_compressed),
                human_bytes(s.ksk_compressed),
                human_bytes(s.pfpksk),
                human_bytes(s.compressed()),
                human_bytes(s.expanded())
            );
            generated.push((widest, ck, wk));
        }
        let (_, ck, wk) = generated
            .iter()
            .find(|(q, _, _)| key_shape(q) == shape)
            .unwrap();
        let out = wk.params().out_bits.min(bits);
        let table: Vec<i64> = (0..1i64 << bits)
            .map(|i| (i * 7 + 3) % (1 << out))
            .collect();
        let x = (1i64 << bits) - 2;
        let ct = ck
            .encrypt(
                &Tensor::new(vec![1], vec![x]).unwrap(),
                IntType::unsigned(bits),
                Encoding {
                    key: KeyId::Big(0),
                    width: bits,
                },
            )
            .unwrap();
        let mut best = Duration::MAX;
        for _ in 0..rounds(bits) {
            let t = Instant::now();
            let r = wk.lookup_tensor(&ct, &table, out).unwrap();
            best = best.min(t.elapsed());
            let got = ck.decrypt(&r, IntType::unsigned(out)).unwrap().data[0];
            assert_eq!(got, table[x as usize], "{bits}-bit lookup");
        }
        let e = estimate(&p, bits, WOP_P_ERROR);
        let growth = prev.map_or("-".to_string(), |(b, d)| {
            format!("x{:.2}/{}b", best.as_secs_f64() / d.as_secs_f64(), bits - b)
        });
        let classic = if bits <= 8 {
            format!("{:.1?}", classic_pbs(bits))
        } else {
            "none".into()
        };
        println!(
            "{bits:>4} {:>10} {:>9} {growth:>8} {:>9} {:>9} {:>10} {classic:>8} n={} k={} N={} pbs={}x{} ks={}x{} pfks={}x{} cbs={}x{}",
            format!("{best:.2?}"),
            format!("{:.0?}", best / bits as u32),
            format!("2^{:.1}", e.p_error.log2()),
            e.out_bits,
            format!("{:.2e}", e.cost),
            p.set.lwe_dimension,
            p.set.glwe_dimension,
            p.set.polynomial_size,
            p.set.pbs_base_log,
            p.set.pbs_level,
            p.set.ks_base_log,
            p.set.ks_level,
            p.pfks_base_log,
            p.pfks_level,
            p.cbs_base_log,
            p.cbs_level,
        );
        prev = Some((bits, best));
    }
}
