//! Ten-class tree ensembles imported from standard exports, encrypted, next to the peer
//! (Concrete ML on the same models: `benches/peer/concrete_ml_ensembles.py`, run on this
//! project's 2-core machine in the same hour).
//!
//! Models (fixtures of `scripts/export_onnx_fixtures.py`, digits 8x8, 10 classes, 70/30 split):
//! - `xgb`: an XGBoost classifier, 10 rounds of depth 3 (softmax trees: 100 trees), through
//!   onnxmltools;
//! - `forest`: a scikit-learn random forest, 20 trees of depth 4, through skl2onnx.
//!
//! Prints per model: float and quantized-clear accuracy on the fixture's test samples, compile
//! time (import, quantization, emission and `program::compile`), bootstraps per sample, key
//! sizes, keygen time, and `VEIL_BENCH_SAMPLES` (default 2) test samples run encrypted one at a
//! time on all threads (latency per sample, labels equal to clear), each next to the peer's
//! figure and the latency ratio. `VEIL_BENCH_MODELS=xgb,forest` selects models.
//! `VEIL_BENCH_TREE_INPUTS=ranks` sends the features' ranks and compares them in the program
//! (`ImportConfig::trees_compare_ranks`) instead of the default, the comparisons' bits
//! computed by the client.
//!
//! Run with `cargo bench -p veil-benches --bench onnx_ensembles --profile release`.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;
use veil_compiler::program::{self, CompileConfig};
use veil_ir::Tensor;
use veil_ml::onnx::model::per_row;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::Matrix;

#[derive(Deserialize)]
struct Fixture {
    model: String,
    calibration: Vec<Vec<f64>>,
    inputs: Vec<Vec<f64>>,
    targets: Vec<f64>,
}

/// The peer's figures (Concrete ML 1.9.0, default tree settings), from
/// `benches/peer/concrete_ml_ensembles.py --samples 1` on the quiet 2-core machine, 2026-12-02.
/// Its accuracies are on the whole test split (540 samples) with its own xgboost 1.6.2; veil's
/// on the fixture's first 100 test samples.
struct Peer {
    float_acc: f64,
    clear_acc: f64,
    compile_s: f64,
    keygen_s: f64,
    pbs: f64,
    latency_s: f64,
}

const MODELS: &[(&str, &str, Peer)] = &[
    (
        "xgb",
        "xgb_digits",
        Peer {
            float_acc: 0.922,
            clear_acc: 0.924,
            compile_s: 2.25,
            keygen_s: 3.47,
            pbs: 6400.0,
            latency_s: 39.9,
        },
    ),
    (
        "forest",
        "forest_digits",
        Peer {
            float_acc: 0.865,
            clear_acc: 0.863,
            compile_s: 1.5,
            keygen_s: 3.05,
            pbs: 2720.0,
            latency_s: 16.1,
        },
    ),
];

fn accuracy(pred: &[f64], labels: &[f64]) -> f64 {
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/tests/fixtures/onnx");
    let samples: usize = std::env::var("VEIL_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let models: Vec<String> = match std::env::var("VEIL_BENCH_MODELS") {
        Ok(v) => v.split(',').map(|m| m.trim().to_string()).collect(),
        Err(_) => MODELS.iter().map(|m| m.0.to_string()).collect(),
    };
    println!(
        "{:<6} {:>6} {:>6} {:>8} {:>6} {:>10} {:>8} {:>9} {:>6} | peer: {:>6} {:>6} {:>8} {:>6} {:>8} {:>9} {:>7}",
        "model", "float", "clear", "compile", "PBS", "keys MB", "keygen", "latency", "=clr",
        "float", "clear", "compile", "PBS", "keygen", "latency", "ratio"
    );
    for (key, file, peer) in MODELS.iter().filter(|m| models.iter().any(|k| k == m.0)) {
        let text = std::fs::read_to_string(dir.join(format!("{file}.json"))).expect("fixture");
        let fx: Fixture = serde_json::from_str(&text).expect("fixture json");
        let cal = Matrix::from_rows(&fx.calibration).expect("calibration rows");
        let x = Matrix::from_rows(&fx.inputs).expect("test rows");
        let rows = x.rows();
        let t = Instant::now();
        let imp = OnnxImport::from_file(dir.join(&fx.model)).expect("imports");
        let cfg = ImportConfig {
            trees_compare_ranks: std::env::var("VEIL_BENCH_TREE_INPUTS")
                .is_ok_and(|v| v == "ranks"),
            ..ImportConfig::default()
        };
        let m = imp.compile(&cal, &cfg).expect("compiles");
        let c = m.compiled();
        let set: Vec<Vec<Tensor<i64>>> = c
            .client
            .calibration_inputs(&cal)
            .expect("encodes")
            .into_iter()
            .map(|t| vec![t])
            .collect();
        let p = program::compile(&c.graph, &set, &CompileConfig::default()).expect("compiles");
        let compile_s = t.elapsed().as_secs_f64();
        let float = per_row(&imp.predict_float(&x).expect("float run")[0], rows);
        let clear = per_row(&m.predict_clear(&x).expect("clear run")[0], rows);
        let r = veil_benches::onnx_encrypted(&m, p, &x, &clear, samples);
        let latency = r.latency_s;
        println!(
            "{:<6} {:>6.3} {:>6.3} {:>7.2}s {:>6} {:>10.1} {:>7.1}s {:>8.2}s {:>3}/{:<2} | peer: {:>6.3} {:>6.3} {:>7.2}s {:>6} {:>7.1}s {:>8.2}s {:>6.2}x",
            key,
            accuracy(&float, &fx.targets),
            accuracy(&clear, &fx.targets),
            compile_s,
            r.pbs,
            r.keys_mb,
            r.keygen_s,
            latency,
            r.same,
            r.runs,
            peer.float_acc,
            peer.clear_acc,
            peer.compile_s,
            peer.pbs,
            peer.keygen_s,
            peer.latency_s,
            latency / peer.latency_s,
        );
    }
}
