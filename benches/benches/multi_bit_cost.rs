//! Multi-bit blind rotation (tfhe-rs `multi_bit_blind_rotate_assign`, grouping factor g, one
//! producer thread) against the classic one (`blind_rotate_assign_mem_optimized`) on the same
//! shapes: wall and process CPU time per bootstrap, n = 840, keys of the real size filled
//! with random values (the values do not change the time).
//!
//! Why veil bootstraps classically: multi-bit cuts the sequential external products to n/g
//! but adds 2^g GGSW combinations per group; tfhe-rs's figures show it about 2x faster on many
//! cores. On the project's 2-core machine it is slower at every shape measured (N = 1024 to
//! 8192, g = 2 to 4): 1.5-3.7x the classic wall time and 1.3-3x its CPU time, so a
//! program that already bootstraps elements in parallel loses.
//!
//! `VEIL_BENCH_ROUNDS` sets the timed runs (default 5, averaged); `VEIL_BENCH_GROUPS` the
//! grouping factors (default `2,3,4`; empty: the classic rotation alone).
//! Run: `cargo bench -p veil-benches --bench multi_bit_cost --profile release`.

use std::time::Instant;
use tfhe::core_crypto::prelude::*;
use veil_benches::{fill_random, Rng, RotationProbe};

fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    let t: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    t / 100.0
}

fn time(rounds: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let (t, c) = (Instant::now(), cpu_s());
    for _ in 0..rounds {
        f();
    }
    (
        t.elapsed().as_secs_f64() / rounds as f64,
        (cpu_s() - c) / rounds as f64,
    )
}

fn main() {
    let rounds: usize = std::env::var("VEIL_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // grouping factors to measure (`VEIL_BENCH_GROUPS=2,3`; empty: the classic rotation alone)
    let groups: Vec<usize> = std::env::var("VEIL_BENCH_GROUPS")
        .unwrap_or_else(|_| "2,3,4".into())
        .split(',')
        .filter_map(|g| g.trim().parse().ok())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let n = 840;
    println!("n = {n}; per bootstrap: wall ms, cpu ms");
    for &(k, poly, level) in &[
        (1usize, 1024usize, 1usize),
        (1, 2048, 1),
        (1, 4096, 1),
        (1, 8192, 1),
        (1, 8192, 2),
    ] {
        let mut probe = RotationProbe::new(n, k, poly, level, &mut rng);
        let (w, c) = time(rounds, || probe.rotate());
        let mut line = format!("k={k} N={poly:5} l={level}:");
        line += &format!("  classic {:7.1} {:7.1}", w * 1e3, c * 1e3);
        for &g in &groups {
            let mut bsk = FourierLweMultiBitBootstrapKey::new(
                LweDimension(n),
                GlweSize(k + 1),
                PolynomialSize(poly),
                DecompositionBaseLog(64 / (level + 1)),
                DecompositionLevelCount(level),
                LweBskGroupingFactor(g),
            );
            fill_random(bsk.as_mut_view().data(), &mut rng);
            let ms = StandardMultiBitModulusSwitchedCt {
                input: probe.input.as_view(),
                grouping_factor: LweBskGroupingFactor(g),
                log_modulus: probe.log,
            };
            let (w, c) = time(rounds, || {
                let mut glwe = probe.acc.clone();
                multi_bit_blind_rotate_assign(&ms, &mut glwe, &bsk, ThreadCount(1), false);
                std::hint::black_box(&glwe);
            });
            line += &format!("  g{g} {:7.1} {:7.1}", w * 1e3, c * 1e3);
        }
        println!("{line}");
    }
}
