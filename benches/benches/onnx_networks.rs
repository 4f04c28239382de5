//! Neural networks imported from PyTorch ONNX exports, encrypted, next to the peer (Concrete ML
//! 1.9.0's `compile_torch_model`, measured on this project's 2-core machine).
//!
//! Models: the iris MLP (4-16-16-3) and the digits CNN (Conv-ReLU-AvgPool-Conv-ReLU-Linear) of
//! `scripts/export_torch_fixtures.py`, from `ml/tests/fixtures/onnx/torch_*.onnx`, on their
//! fixture's test samples. The peer's CNN has the same layers but was trained on pixels scaled
//! to 0..1, so accuracies compare each network with its own float model.
//!
//! Settings per model (`VEIL_BENCH_SETTINGS`, comma-separated, default all):
//! - `auto`: veil's default (no flags): the cheapest rounding whose inputset predictions stay
//!   close to the float model's, then refined lookup by lookup (one bit fewer, per-channel
//!   factors) where the optimizer prices it cheaper and agreement stays within a point;
//! - `cml6`: Concrete ML's setting, 6-bit weights and activations, accumulators rounded
//!   approximately to 6 bits (`--n-bits 6 --rounding-bits 6`);
//! - `cml6-exact`: the same with exact rounding (one 1-bit bootstrap per dropped bit).
//!
//! Prints per row: float and quantized-clear accuracy on the whole test set, compile time,
//! bootstraps and their widths, key sizes, keygen time, and `VEIL_BENCH_SAMPLES` (default 2)
//! test samples run encrypted one at a time on all threads (latency per sample, labels equal
//! to clear), each next to the peer's figure. `VEIL_BENCH_MODELS=mlp,cnn` selects models;
//! `VEIL_BENCH_DUMP=1` prints each optimized program to stderr.
//!
//! Run with `cargo bench -p veil-benches --bench onnx_networks` (`--profile release` skips
//! the bench profile's fat LTO).

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;
use veil_compiler::program::{self, CompileConfig};
use veil_ir::Tensor;
use veil_ml::onnx::model::per_row;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::quantize::RoundingMethod;
use veil_ml::{Matrix, NBits};

#[derive(Deserialize)]
struct Fixture {
    model: String,
    calibration: Vec<Vec<f64>>,
    inputs: Vec<Vec<f64>>,
    targets: Vec<f64>,
}

/// The peer's `compile_torch_model` figures at 6 bits (approximate, exact rounding).
struct Peer {
    float_acc: f64,
    acc: [f64; 2],
    pbs: [f64; 2],
    latency_s: [f64; 2],
    keygen_s: [f64; 2],
}

const MODELS: &[(&str, &str, Peer)] = &[
    (
        "mlp",
        "torch_mlp_iris",
        Peer {
            float_acc: 1.0,
            acc: [1.0, 0.974],
            pbs: [32.0, 272.0],
            latency_s: [6.1, 11.1],
            keygen_s: [22.8, 26.7],
        },
    ),
    (
        "cnn",
        "torch_cnn_digits",
        Peer {
            float_acc: 0.94,
            acc: [0.94, 0.95],
            pbs: [352.0, 2752.0],
            latency_s: [49.6, 87.6],
            keygen_s: [26.5, 28.3],
        },
    ),
];

const SETTINGS: &[&str] = &["auto", "cml6", "cml6-exact"];

fn config(setting: &str) -> ImportConfig {
    match setting {
        "auto" => ImportConfig::default(),
        "cml6" | "cml6-exact" => ImportConfig {
            n_bits: NBits {
                inputs: Some(6),
                weights: Some(6),
                activations: Some(6),
                outputs: Some(8),
            },
            rounding_bits: Some(6),
            rounding_method: if setting == "cml6" {
                RoundingMethod::Approximate
            } else {
                RoundingMethod::Exact
            },
            ..ImportConfig::default()
        },
        other => panic!("unknown setting {other:?}: choose from {SETTINGS:?}"),
    }
}

fn accuracy(pred: &[f64], labels: &[f64]) -> f64 {
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

fn selected(var: &str, all: Vec<&'static str>) -> Vec<&'static str> {
    match std::env::var(var) {
        Ok(v) => all
            .into_iter()
            .filter(|m| v.split(',').any(|w| w.trim() == *m))
            .collect(),
        Err(_) => all,
    }
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/tests/fixtures/onnx");
    let samples: usize = std::env::var("VEIL_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let models = selected("VEIL_BENCH_MODELS", MODELS.iter().map(|m| m.0).collect());
    let settings = selected("VEIL_BENCH_SETTINGS", SETTINGS.to_vec());
    println!(
        "{:<5} {:<11} {:>6} {:>6} {:>9} {:>6} {:>10} {:>12} {:>9} {:>11} {:>6} | peer: {:>6} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "model", "setting", "float", "clear", "compile", "PBS", "widths", "keys MB", "keygen", "latency", "=clr",
        "float", "acc", "PBS", "keygen", "latency", "ratio"
    );
    for (key, file, peer) in MODELS.iter().filter(|m| models.contains(&m.0)) {
        let text = std::fs::read_to_string(dir.join(format!("{file}.json"))).expect("fixture");
        let fx: Fixture = serde_json::from_str(&text).expect("fixture json");
        let imp = OnnxImport::from_file(dir.join(&fx.model)).expect("imports");
        let cal = Matrix::from_rows(&fx.calibration).expect("calibration rows");
        let x = Matrix::from_rows(&fx.inputs).expect("test rows");
        let rows = x.rows();
        let float = per_row(&imp.predict_float(&x).expect("float run")[0], rows);
        for setting in settings.iter().copied() {
            let t = Instant::now();
            let m = imp.compile(&cal, &config(setting)).expect("compiles");
            let c = m.compiled();
            let set: Vec<Vec<Tensor<i64>>> = c
                .client
                .encode(&cal)
                .expect("encodes")
                .into_iter()
                .map(|t| vec![t])
                .collect();
            let p = program::compile(&c.graph, &set, &CompileConfig::default()).expect("compiles");
            if std::env::var("VEIL_BENCH_DUMP").is_ok() {
                eprintln!("{}", veil_ir::text::print(&p.optimized));
            }
            let compile_s = t.elapsed().as_secs_f64();
            let clear = per_row(&m.predict_clear(&x).expect("clear run")[0], rows);
            let widths = p
                .stats
                .pbs_by_precision
                .iter()
                .map(|(b, n)| format!("{n}x{b}"))
                .collect::<Vec<_>>()
                .join("+");
            let r = veil_benches::onnx_encrypted(&m, p, &x, &clear, samples);
            let latency = r.latency_s;
            let pi = usize::from(setting == "cml6-exact");
            println!(
                "{:<5} {:<11} {:>6.3} {:>6.3} {:>8.2}s {:>6} {:>10} {:>12.1} {:>8.1}s {:>10.2}s {:>3}/{:<2} | peer: {:>6.3} {:>6.3} {:>6} {:>7.1}s {:>7.1}s {:>7.2}x",
                key,
                setting,
                accuracy(&float, &fx.targets),
                accuracy(&clear, &fx.targets),
                compile_s,
                r.pbs,
                widths,
                r.keys_mb,
                r.keygen_s,
                latency,
                r.same,
                r.runs,
                peer.float_acc,
                peer.acc[pi],
                peer.pbs[pi],
                peer.keygen_s[pi],
                peer.latency_s[pi],
                latency / peer.latency_s[pi],
            );
        }
    }
}
