//! The per-sample cost of the client's domain check next to encryption, on the ML bench
//! models (breast cancer: a decision tree, XGBoost, an MLP), and the price of
//! `--domain types` against `--domain calibrated` for the same models.
//!
//! Per model: the compiled program under both policies (PBS, widest bootstrap in bits,
//! estimated latency), then over the test samples the median time of
//! - `check`: [`Program::check_domain`] on one sample, as `Program::encrypt` and the ML
//!   `ExecuteBackend` run it (the graph is prepared on the program's first check and reused;
//!   quantized models are checked on their optimized program's types, as
//!   `ClientArtifact::check_domain` does);
//! - `encrypt`: [`Program::encrypt_unchecked`] of the same sample (client keys only);
//!
//! and the check's share of encryption (the issue expects well under 5%), plus the one-time
//! preparation of the first check ([`Program::domain_checker`] prepares anew). Then, over the whole
//! test set, how many samples leave the calibrated domain of the source program and how many
//! the lowered program (simulated) computes differently from the source model.
//!
//! Run with `cargo bench -p veil-benches --bench domain_check` (add `--profile dev` to skip the
//! bench profile's fat LTO); `VEIL_BENCH_SAMPLES=N` sets the test samples per model (default
//! 20).

use std::time::{Duration, Instant};
use veil_compiler::program::{compile, CompileConfig, DomainCheck, DomainPolicy, Program};
use veil_ir::Tensor;
use veil_ml::{
    dataset, CompiledModel, DecisionTreeClassifier, FheModel, Matrix, MlpClassifier, XgbClassifier,
};
use veil_runtime::{ClientKeys, KeygenOptions};

const XGB_MODEL: &str = include_str!("../../ml/tests/fixtures/xgboost/breast_cancer.model.json");

/// The model called `name`, trained (or loaded) on `train`.
fn model(name: &str, train: &Matrix, y: &[usize]) -> (&'static str, CompiledModel) {
    let cfg = veil_ml::CompileConfig::default();
    match name {
        "tree" => {
            let mut m = DecisionTreeClassifier::new()
                .with_max_depth(5)
                .with_n_bits(6);
            m.fit(train, y).unwrap();
            m.compile(train, &cfg).unwrap();
            ("DecisionTree depth 5, 6-bit", m.compiled().unwrap().clone())
        }
        "xgb" => {
            let mut m = XgbClassifier::from_json(XGB_MODEL).unwrap();
            m.compile_default(train).unwrap();
            ("XGBoost 20 trees depth 3", m.compiled().unwrap().clone())
        }
        "mlp" => {
            let mut m = MlpClassifier::new();
            m.fit(train, y).unwrap();
            m.compile(train, &cfg).unwrap();
            ("MLP 16-8, 2/2/3-bit QAT", m.compiled().unwrap().clone())
        }
        other => panic!("unknown model {other}"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn max_bits(p: &Program) -> u8 {
    p.stats.pbs_by_precision.keys().copied().max().unwrap_or(0)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let samples: usize = std::env::var("VEIL_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let data = dataset::breast_cancer().unwrap();
    let split = dataset::train_test_split(&data, 0.25, 0).unwrap();
    let ytr = split.train.classes().unwrap();
    let mut costs = Vec::new();
    let mut agreement = Vec::new();
    println!("| model | check | encrypt | check / encrypt | prepare (once per program) |");
    println!("|---|---:|---:|---:|---:|");
    for name in ["tree", "xgb", "mlp"] {
        let (description, m) = model(name, &split.train.x, &ytr);
        let inputset: Vec<Vec<Tensor<i64>>> = m
            .client
            .encode(&split.train.x)
            .unwrap()
            .into_iter()
            .map(|t| vec![t])
            .collect();
        let compiled = |domain| {
            let cfg = CompileConfig {
                domain,
                ..CompileConfig::default()
            };
            compile(&m.graph, &inputset, &cfg).unwrap()
        };
        let (p, t) = (
            compiled(DomainPolicy::Calibrated),
            compiled(DomainPolicy::Types),
        );
        costs.push((
            description,
            p.stats.clone(),
            max_bits(&p),
            t.stats.clone(),
            max_bits(&t),
        ));
        let keys = ClientKeys::generate(&p.tfhe.params, &KeygenOptions::default()).unwrap();
        // what `ClientArtifact::check_domain` runs for a quantized model (the optimized
        // program's types); the first call prepares the graph, the others reuse it
        let s = Instant::now();
        std::hint::black_box(p.domain_checker(DomainCheck::Types).unwrap());
        let prepare = s.elapsed();
        let (mut one, mut enc) = (Vec::new(), Vec::new());
        for i in 0..samples.min(split.test.len()) {
            let x = m.client.encode(&split.test.x.select_rows(&[i])).unwrap();
            let s = Instant::now();
            p.check_domain(&x, DomainCheck::Types).unwrap();
            one.push(s.elapsed());
            let s = Instant::now();
            std::hint::black_box(p.encrypt_unchecked(&keys, &x).unwrap());
            enc.push(s.elapsed());
        }
        // Every test sample: inside the calibrated domain of the source program? Does the
        // lowered program (simulation) compute what the source model computes?
        let (mut outside, mut differ) = (0, 0);
        for i in 0..split.test.len() {
            let x = m.client.encode(&split.test.x.select_rows(&[i])).unwrap();
            outside += usize::from(p.check_domain(&x, DomainCheck::Calibrated).is_err());
            let want = veil_ir::interp::run(&m.graph, &x).unwrap();
            differ += usize::from(p.simulate(&x, i as u64).unwrap() != want);
        }
        agreement.push((description, split.test.len(), outside, differ));
        let (a, e) = (median(one), median(enc));
        println!(
            "| {description} | {:.1} µs | {:.1} µs | {:.2}% | {:.1} µs |",
            us(a),
            us(e),
            100.0 * a.as_secs_f64() / e.as_secs_f64(),
            us(prepare)
        );
    }
    println!();
    println!("| model | test samples | outside the calibrated source domain | simulated != source model |");
    println!("|---|---:|---:|---:|");
    for (d, n, outside, differ) in agreement {
        println!("| {d} | {n} | {outside} | {differ} |");
    }
    println!();
    println!("| model | PBS calibrated | PBS types | bits calibrated | bits types | ms calibrated | ms types |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (d, c, cb, t, tb) in costs {
        println!(
            "| {d} | {} | {} | {cb} | {tb} | {:.0} | {:.0} |",
            c.pbs, t.pbs, c.estimated_latency_ms, t.estimated_latency_ms
        );
    }
}
