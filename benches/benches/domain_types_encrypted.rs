//! `--domain types` on the ONNX fixtures, encrypted: every fixture whose estimated latency fits
//! a budget is compiled under `DomainPolicy::Types`, gets real keys, and runs random samples
//! drawn over the full declared input types (not the data's range) through encryption, the
//! server's run and decryption, against the reference interpreter of the imported model.
//!
//! `tests/tests/domain_ml.rs` simulates every fixture under `types` and encrypts those that fit
//! the CI budget; this bench runs the rest (the networks and the largest ensembles) by hand.
//!
//! - A program without approximate rounds must equal the interpreter exactly.
//! - A network rounds its accumulators approximately by default (one bootstrap reads the kept
//!   high bits and may give the other neighbour near a tie, as Concrete ML's approximate
//!   rounding does, `compiler/tests/approx_round.rs` checks that contract): every output
//!   element must lie within its proven per-element bound of the interpreter
//!   (`CompileStats::approx_deviation`: `approx_deviations` on the ranges the types allow), and
//!   the bench reports how many elements equal the interpreter, the largest difference against
//!   the largest bound, and how many samples keep the interpreter's argmax (the label of a
//!   classifier). `VEIL_BENCH_ROUNDING=exact` compiles the networks with exact rounding, which
//!   must equal the interpreter.
//!
//! Run with `cargo bench -p veil-benches --bench domain_types_encrypted --profile release`.
//! `VEIL_BENCH_FIXTURES=a,b` picks fixtures (default: all), `VEIL_BENCH_SAMPLES=N` samples per
//! fixture (default 1), `VEIL_BENCH_MAX_S=S` skips fixtures whose estimated latency per
//! sample exceeds `S` seconds (default 600), saying so. Keys are generated once per parameter
//! set and shared ("shared" in the keygen column). Exits non-zero when a program without
//! approximate rounds differs from the interpreter, or a network leaves its bound.

use std::time::Instant;
use veil_compiler::passes::deviation::has_approx_rounds;
use veil_compiler::program::{compile, CompileConfig, DomainPolicy};
use veil_ir::Tensor;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_tests::keys::KeyCache;
use veil_tests::{corpus, fixtures};

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let samples: usize = env("VEIL_BENCH_SAMPLES", 1);
    let max_s: f64 = env("VEIL_BENCH_MAX_S", 600.0);
    let only: Option<Vec<String>> = std::env::var("VEIL_BENCH_FIXTURES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    let mut import_config = ImportConfig::default();
    if std::env::var("VEIL_BENCH_ROUNDING").as_deref() == Ok("exact") {
        import_config.rounding_method = veil_ml::quantize::RoundingMethod::Exact;
    }
    let types = CompileConfig {
        domain: DomainPolicy::Types,
        ..CompileConfig::default()
    };
    println!(
        "| fixture | PBS | estimated | keys | keygen | latency | check | elements equal | max difference | argmax equal |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    let mut broken = Vec::new();
    // keys shared between fixtures of equal parameters (most trees use one set)
    let mut keys = KeyCache::new(13);
    for name in fixtures::onnx_names() {
        if only.as_ref().is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let import = OnnxImport::from_file(fixtures::onnx_dir().join(format!("{name}.onnx")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let cal = fixtures::rows(&name, "calibration");
        let model = import
            .compile(&cal, &import_config)
            .unwrap_or_else(|e| panic!("{name}: import: {e}"));
        let g = model.graph();
        let inputset: Vec<Vec<Tensor<i64>>> = model
            .client()
            .encode(&cal)
            .unwrap()
            .into_iter()
            .map(|t| vec![t])
            .collect();
        let p = compile(g, &inputset, &types).unwrap_or_else(|e| panic!("{name}: {e}"));
        let est_s = p.stats.estimated_latency_ms / 1e3;
        // approximate rounds (networks by default) may give the other neighbour near a tie
        let approx = has_approx_rounds(&p.optimized);
        if p.stats.pbs == 0 {
            continue; // levelled only: no bootstrap to check (the test encrypts these)
        }
        if est_s > max_s {
            println!(
                "| {name} | {} | {est_s:.0} s | | | | skipped (over VEIL_BENCH_MAX_S={max_s}) | | |",
                p.stats.pbs
            );
            continue;
        }
        let (t, before) = (Instant::now(), keys.generated());
        keys.get(&p)
            .unwrap_or_else(|e| panic!("{name}: keygen: {e}"));
        let keygen = if keys.generated() > before {
            format!("{:.1} s", t.elapsed().as_secs_f64())
        } else {
            "shared".to_string()
        };
        let (client, server) = keys.get(&p).expect("generated above");
        let keys_mb = (p.stats.bsk_bytes + p.stats.ksk_bytes) as f64 / 1e6;
        // per output, how far an element may move under approximate rounding, over every
        // value the declared input types allow (the bound the artifact states)
        let bounds: Vec<i128> = if approx {
            assert_eq!(p.stats.approx_deviation.len(), g.outputs().len(), "{name}");
            p.stats
                .approx_deviation
                .iter()
                .map(|b| *b as i128)
                .collect()
        } else {
            vec![0; g.outputs().len()]
        };
        let bound = bounds.iter().copied().max().unwrap_or(0);
        let (mut equal, mut total, mut worst, mut ok, mut labels) =
            (0usize, 0usize, 0i128, true, 0usize);
        let t = Instant::now();
        for x in corpus::random_inputs(g, samples, 0x13) {
            p.check_domain(&x, veil_compiler::program::DomainCheck::Calibrated)
                .unwrap_or_else(|e| panic!("{name}: refused under types: {e}"));
            let want = veil_ir::interp::run(g, &x).unwrap();
            let ct = p.encrypt(client, &x).unwrap();
            let out = p.run(server, ct).unwrap();
            let got = p.decrypt(client, &out).unwrap();
            for ((w, gt), b) in want.iter().zip(&got).zip(&bounds) {
                for (x, y) in w.data.iter().zip(&gt.data) {
                    let d = (*x as i128 - *y as i128).abs();
                    worst = worst.max(d);
                    equal += usize::from(d == 0);
                    total += 1;
                    ok &= d <= *b;
                }
            }
            if argmax(&got) == argmax(&want) {
                labels += 1;
            }
        }
        let latency_s = t.elapsed().as_secs_f64() / samples.max(1) as f64;
        println!(
            "| {name} | {} | {est_s:.1} s | {keys_mb:.0} MB | {keygen} | {latency_s:.2} s | {} | {equal}/{total} | {worst} (bound {bound}) | {labels}/{samples} |",
            p.stats.pbs,
            match (approx, ok) {
                (false, true) => "exact",
                (true, true) => "within the approximate-rounding bound",
                (false, false) => "WRONG",
                (true, false) => "WRONG: outside the bound",
            },
        );
        if !ok {
            broken.push(name);
        }
    }
    if !broken.is_empty() {
        eprintln!("contract broken on: {broken:?}");
        std::process::exit(1);
    }
}

/// Index of the largest element of the first output (a classifier's label).
fn argmax(outs: &[Tensor<i64>]) -> Option<usize> {
    let d = &outs.first()?.data;
    (0..d.len()).max_by_key(|&i| (d[i], std::cmp::Reverse(i)))
}
