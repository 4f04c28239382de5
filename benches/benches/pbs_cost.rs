//! Measured time of the bootstrap's building block (one CMUX of the blind rotation) and of the
//! keyswitch per parameter shape, next to Concrete's cost model: the data behind the optimizer's
//! calibrated latency model (`veil_compiler::optimizer::cost::cmux_latency_ns`).
//!
//! For each GLWE `(k, N)` and decomposition level `l` (the shapes the optimizer's search space
//! reaches at 1..8 bits), a blind rotation over a random modulus-switched input runs through a
//! Fourier bootstrap key of the real size (its values do not change the time, so the key is not
//! encrypted, but filled with random values so that it really streams from memory). The time per
//! CMUX is the blind rotation's thread CPU time over the CMUXes it ran (so that other processes
//! on a shared machine do not count). Then the keyswitch per `(n_in, n_out, l)`, 64-bit
//! (`keyswitch_lwe_ciphertext`) and KS32 (`u32` key, `keyswitch_lwe_ciphertext_with_scalar_change`)
//! back to back on the same shapes. One thread;
//! prints a table, the ratio measured / model
//! (a model that ranks sets as the machine does keeps this ratio flat) and the calibrated
//! model's prediction, then the model's constants refitted to this machine's measurements
//! (`CMUX_FFT_NS`, `CMUX_MUL_NS`, `KS_MAC_NS`, `KS32_MAC_NS` of `optimizer/cost.rs`, least squares on the
//! relative error): the constants behind every latency estimate veil prints
//! (`CompileStats::estimated_latency_ms`, `Solution::estimated_latency_s`).
//!
//! `VEIL_BENCH_ROUNDS` sets the timed runs per shape (default 5, best taken);
//! `VEIL_BENCH_ONLY=ks` measures the keyswitches alone.
//! Run: `cargo bench -p veil-benches --bench pbs_cost --profile release`.

use std::time::Instant;
use tfhe::core_crypto::prelude::*;
use veil_benches::{Rng, RotationProbe};
use veil_compiler::optimizer::cost::{
    cmux_cost, cmux_latency_ns, fft_cost, ks_cost, ks_latency_ns, ks_latency_ns_mod,
};
use veil_ir::KsModulus;

/// Input dimension of the probe's bootstrap key: the real range (`n` ~ 600-1000) so that the
/// key streams from memory as in a real bootstrap, capped at 256 MB of key.
fn probe_dimension(k: usize, poly: usize, level: usize) -> usize {
    let ggsw_bytes = (k + 1) * (k + 1) * level * poly / 2 * 16;
    (256usize << 20).div_euclid(ggsw_bytes).clamp(16, 700)
}

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`): on a shared
/// machine it leaves out the time other processes hold the core. `None` off Linux.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Best-of-`rounds` seconds of `f`: thread CPU time where the system reports it, else wall
/// time.
fn best(rounds: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..rounds)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu_s());
            f();
            match (c, thread_cpu_s()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => t.elapsed().as_secs_f64(),
            }
        })
        .fold(f64::INFINITY, f64::min)
}

fn cmux_ns(k: usize, poly: usize, level: usize, rounds: usize, rng: &mut Rng) -> f64 {
    let mut probe = RotationProbe::new(probe_dimension(k, poly, level), k, poly, level, rng);
    let secs = best(rounds, || probe.rotate());
    secs * 1e9 / probe.cmuxes() as f64
}

fn ks_ns(n_in: usize, n_out: usize, level: usize, rounds: usize, rng: &mut Rng) -> f64 {
    let modulus = CiphertextModulus::<u64>::new_native();
    let mut ksk = LweKeyswitchKey::new(
        0u64,
        DecompositionBaseLog(3),
        DecompositionLevelCount(level),
        LweDimension(n_in),
        LweDimension(n_out),
        modulus,
    );
    ksk.as_mut().iter_mut().for_each(|x| *x = rng.next_u64());
    let data: Vec<u64> = (0..=n_in).map(|_| rng.next_u64()).collect();
    let input = LweCiphertext::from_container(data, modulus);
    let mut out = LweCiphertext::new(0u64, LweSize(n_out + 1), modulus);
    best(rounds, || {
        keyswitch_lwe_ciphertext(&ksk, &input, &mut out);
        std::hint::black_box(&out);
    }) * 1e9
}

/// KS32: the same shape with a `u32` key, the 64-bit input keyswitched with a scalar change.
fn ks32_ns(n_in: usize, n_out: usize, level: usize, rounds: usize, rng: &mut Rng) -> f64 {
    let modulus = CiphertextModulus::<u32>::new_native();
    let mut ksk = LweKeyswitchKey::new(
        0u32,
        DecompositionBaseLog(3),
        DecompositionLevelCount(level),
        LweDimension(n_in),
        LweDimension(n_out),
        modulus,
    );
    ksk.as_mut()
        .iter_mut()
        .for_each(|x| *x = rng.next_u64() as u32);
    let data: Vec<u64> = (0..=n_in).map(|_| rng.next_u64()).collect();
    let input = LweCiphertext::from_container(data, CiphertextModulus::<u64>::new_native());
    let mut out = LweCiphertext::new(0u32, LweSize(n_out + 1), modulus);
    best(rounds, || {
        keyswitch_lwe_ciphertext_with_scalar_change(&ksk, &input, &mut out);
        std::hint::black_box(&out);
    }) * 1e9
}

fn main() {
    let rounds: usize = std::env::var("VEIL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!("veil CMUX/keyswitch latency probe, one thread, best of {rounds}");
    println!("| k | N | l | ns/CMUX measured | calibrated model | measured/model | ns per Concrete cost unit |");
    println!("|---|---|---|---|---|---|---|");
    let ks_only = std::env::var("VEIL_BENCH_ONLY").is_ok_and(|v| v == "ks");
    let all_shapes: &[(usize, usize, usize)] = &[
        (6, 256, 1),
        (5, 256, 1),
        (4, 256, 1),
        (4, 512, 1),
        (3, 512, 1),
        (2, 512, 1),
        (3, 1024, 1),
        (2, 1024, 1),
        (2, 1024, 2),
        (1, 1024, 1),
        (1, 2048, 1),
        (1, 2048, 2),
        (2, 2048, 1),
        (1, 4096, 1),
        (1, 4096, 2),
        (1, 8192, 1),
        (1, 8192, 2),
        (1, 16384, 1),
        (1, 16384, 2),
    ];
    let shapes = if ks_only { &[][..] } else { all_shapes };
    // least squares on the relative error: a u + b v ~ 1 with u = X / t, v = Y / t
    let (mut suu, mut suv, mut svv, mut su, mut sv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(k, poly, l) in shapes {
        let t = cmux_ns(k, poly, l, rounds, &mut rng);
        let k1 = k as f64 + 1.0;
        let u = k1 * (l as f64 + 1.0) * fft_cost(poly) / t;
        let v = k1 * k1 * l as f64 * poly as f64 / t;
        (suu, suv, svv, su, sv) = (suu + u * u, suv + u * v, svv + v * v, su + u, sv + v);
        let model = cmux_latency_ns(k, poly, l);
        println!(
            "| {k} | {poly} | {l} | {t:.0} | {model:.0} | {:.2} | {:.4} |",
            t / model,
            t / cmux_cost(k, poly, l)
        );
    }
    println!();
    println!("| n_in | n_out | l | ns/KS measured | calibrated model | measured/model | ns per Concrete cost unit | KS32 ns | KS32 model | KS32 measured/model | KS32 / KS64 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let (mut sww, mut sw) = (0.0, 0.0);
    let (mut s32ww, mut s32w) = (0.0, 0.0);
    for &(n_in, n_out, l) in &[
        (1024, 700, 3),
        (1536, 750, 3),
        (2048, 800, 4),
        (2048, 800, 6),
        (4096, 880, 4),
        (8192, 915, 6),
        (16384, 1006, 5),
    ] {
        let t = ks_ns(n_in, n_out, l, rounds, &mut rng);
        let w = n_in as f64 * l as f64 * (n_out as f64 + 1.0) / t;
        (sww, sw) = (sww + w * w, sw + w);
        let model = ks_latency_ns(n_in, n_out, l);
        // KS32 right after, on the same shape (the machine's load drifts less between them).
        let t32 = ks32_ns(n_in, n_out, l, rounds, &mut rng);
        let w32 = n_in as f64 * l as f64 * (n_out as f64 + 1.0) / t32;
        (s32ww, s32w) = (s32ww + w32 * w32, s32w + w32);
        let model32 = ks_latency_ns_mod(KsModulus::Q32, n_in, n_out, l);
        println!(
            "| {n_in} | {n_out} | {l} | {t:.0} | {model:.0} | {:.2} | {:.4} | {t32:.0} | {model32:.0} | {:.2} | {:.2} |",
            t / model,
            t / ks_cost(n_in, n_out, l),
            t32 / model32,
            t32 / t
        );
    }
    let det = suu * svv - suv * suv;
    println!();
    println!(
        "Refitted constants of the calibrated latency model (compiler/src/optimizer/cost.rs):"
    );
    if !ks_only {
        println!(
            "const CMUX_FFT_NS: f64 = {:.3};",
            (su * svv - sv * suv) / det
        );
        println!(
            "const CMUX_MUL_NS: f64 = {:.3};",
            (sv * suu - su * suv) / det
        );
    }
    println!("const KS_MAC_NS: f64 = {:.3};", sw / sww);
    println!("const KS32_MAC_NS: f64 = {:.3};", s32w / s32ww);
}
