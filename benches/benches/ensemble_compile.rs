//! Compile time against tree-ensemble size: synthetic XGBoost-like exports
//! (`veil_ml::onnx::synth`: 10 classes, depth-3 trees, 64 integer features in 0..=16 like the
//! digits dataset, a 100-row inputset) with 10 to 1,000 trees, through the path of
//! `veil compile model.onnx`: ONNX import, quantization and emission of the tree program
//! (`OnnxImport::compile`), then `veil_compiler::program::compile` (calibration, rewrites,
//! lowering, parameters). The table gives, per size, the time of each stage, the bootstraps
//! per sample and the largest constant; then the fitted growth exponent of the total (the
//! least-squares slope of log time against log trees).
//!
//! Run with `cargo bench -p veil-benches --bench ensemble_compile`.
//! `VEIL_BENCH_MAX_TREES=N` (default 1000) caps the sizes.

use std::time::Instant;
use veil_compiler::program::{compile, CompileConfig};
use veil_ml::onnx::synth::SynthEnsemble;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::Matrix;

const TREES: &[usize] = &[10, 30, 100, 300, 1000];
const CLASSES: usize = 10;
const ROWS: usize = 100;

fn main() {
    let max: usize = std::env::var("VEIL_BENCH_MAX_TREES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>12}",
        "trees", "import_s", "emit_s", "veil_s", "total_s", "pbs", "max_const"
    );
    let mut points = Vec::new();
    for &trees in TREES.iter().filter(|&&t| t <= max) {
        let e = SynthEnsemble {
            rounds: trees / CLASSES,
            classes: CLASSES,
            depth: 3,
            features: 64,
            levels: 17,
            seed: 7,
        };
        let bytes = e.onnx();
        let x = Matrix::new(ROWS, e.features, e.rows(ROWS, 1)).expect("rows");
        let t0 = Instant::now();
        let import = OnnxImport::from_bytes(&bytes).expect("the synthetic model imports");
        let t1 = Instant::now();
        let model = import
            .compile(&x, &ImportConfig::default())
            .expect("the synthetic model quantizes");
        let inputset: Vec<Vec<veil_ir::Tensor<i64>>> = model
            .client()
            .encode(&x)
            .expect("rows encode")
            .into_iter()
            .map(|t| vec![t])
            .collect();
        let t2 = Instant::now();
        let program =
            compile(model.graph(), &inputset, &CompileConfig::default()).expect("compiles");
        let t3 = Instant::now();
        let max_const = model
            .graph()
            .consts
            .iter()
            .map(|c| c.values.len())
            .max()
            .unwrap_or(0);
        let total = (t3 - t0).as_secs_f64();
        println!(
            "{:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>12}",
            e.trees(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            total,
            program.stats.pbs,
            max_const
        );
        points.push(((e.trees() as f64).ln(), total.ln()));
    }
    if points.len() >= 2 {
        let n = points.len() as f64;
        let (sx, sy) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / n, sy / n);
        let num: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let den: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
        println!("growth exponent (time ~ trees^k): k = {:.2}", num / den);
    }
}
