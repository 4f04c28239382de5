//! Execute == Clear: every built-in model and every ONNX fixture, compiled at its default
//! widths (the neural networks at narrower ones, see below), runs a few test samples on real
//! ciphertexts (`Mode::Execute`: compile to TFHE,
//! keygen, encrypt, run with the server keys only, decrypt) and must predict exactly what the
//! quantized program predicts through the interpreter (`Mode::Clear`). Keys are generated once
//! per model. Heavy models run one encrypted sample and more samples in `Mode::Simulate`
//! (the same lowered program on clear values with bootstrap errors injected at their
//! predicted rate), which must agree with Clear too.
//!
//! Each test prints the compiled program's statistics (bootstraps, precision, parameters, key
//! sizes) and its timings to stderr (`--nocapture`).

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;
use veil_compiler::program::{self, Program};
use veil_ir::Tensor;
use veil_ml::backend::{ExecuteBackend, SimulateBackend};
use veil_ml::dataset::{self, Split};
use veil_ml::onnx::{ImportConfig, OnnxImport, OnnxModel};
use veil_ml::quantize::RoundingMethod;
use veil_ml::{
    Backend, CompileConfig, CompiledModel, DecisionTreeClassifier, DecisionTreeRegressor, FheModel,
    Interpreter, LinearRegression, LinearSvc, LogisticRegression, Matrix, MlpClassifier, NBits,
    RandomForestClassifier, RandomForestRegressor, XgbClassifier,
};

/// Key seed of every test.
const SEED: u128 = 7;

fn split(d: dataset::Dataset) -> Split {
    dataset::train_test_split(&d, 0.25, 0).unwrap()
}

fn breast_cancer() -> (Split, Vec<usize>) {
    let s = split(dataset::breast_cancer().unwrap());
    let y = s.train.classes().unwrap();
    (s, y)
}

/// The model's program inputs that calibrate it on the rows of `x` (one tensor per sample at
/// batch 1; rank-encoded trees add their extreme ranks).
fn inputset(c: &CompiledModel, x: &Matrix) -> Vec<Vec<Tensor<i64>>> {
    c.client
        .calibration_inputs(x)
        .unwrap()
        .into_iter()
        .map(|t| vec![t])
        .collect()
}

/// Prints what compilation chose (stable `CompileStats` fields; `params` by `Debug`).
fn report(name: &str, p: &Program) {
    let s = &p.stats;
    eprintln!(
        "{name}: {} PBS/run {:?}, params {:?}, p_error {:.2e}, global {:.2e}, bsk {} MB, ksk {} MB, compiled in {:.0} ms",
        s.pbs,
        s.pbs_by_precision,
        s.params,
        s.p_error,
        s.global_p_error,
        s.bsk_bytes / 1_000_000,
        s.ksk_bytes / 1_000_000,
        s.compile_ms
    );
}

/// Compiles `c` to TFHE (calibrated on the training rows) and generates keys once.
fn execute_backend(name: &str, c: &CompiledModel, train: &Matrix) -> ExecuteBackend {
    let t = Instant::now();
    let p = program::compile(
        &c.graph,
        &inputset(c, train),
        &program::CompileConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: compiling to TFHE failed: {e}"));
    report(name, &p);
    let (client, server) = p.keygen(SEED).unwrap();
    eprintln!("{name}: compile + keygen {:.1?}", t.elapsed());
    ExecuteBackend {
        program: p,
        client,
        server,
    }
}

/// Rows `from..from + n` of `x`.
fn rows(x: &Matrix, from: usize, n: usize) -> Matrix {
    x.select_rows(&(from..from + n).collect::<Vec<_>>())
}

/// Runs `f` (one prediction per sample) with `backend` and checks it against Clear.
fn same_as_clear<T: PartialEq + std::fmt::Debug>(
    name: &str,
    x: &Matrix,
    backend: &dyn Backend,
    f: &dyn Fn(&Matrix, &dyn Backend) -> Vec<T>,
) {
    let clear = f(x, &Interpreter);
    let t = Instant::now();
    let got = f(x, backend);
    eprintln!(
        "{name}: {} x {} sample(s) in {:.2?} ({:.2?}/sample)",
        backend.name(),
        x.rows(),
        t.elapsed(),
        t.elapsed() / x.rows() as u32
    );
    assert_eq!(got, clear, "{name}: {} differs from Clear", backend.name());
}

/// Execute on `n_exec` test samples and Simulate on `n_sim` more, both against Clear.
fn check_model<T: PartialEq + std::fmt::Debug>(
    name: &str,
    c: &CompiledModel,
    train: &Matrix,
    test: &Matrix,
    n_exec: usize,
    n_sim: usize,
    f: &dyn Fn(&Matrix, &dyn Backend) -> Vec<T>,
) {
    let exec = execute_backend(name, c, train);
    same_as_clear(name, &rows(test, 0, n_exec), &exec, f);
    if n_sim > 0 {
        let sim = SimulateBackend {
            program: exec.program,
            seed: 0,
        };
        same_as_clear(name, &rows(test, n_exec, n_sim), &sim, f);
    }
}

/// Classes from a compiled classifier.
fn classes(c: &CompiledModel) -> impl Fn(&Matrix, &dyn Backend) -> Vec<usize> + '_ {
    move |x, b| {
        c.run(x, b)
            .unwrap()
            .iter()
            .map(|p| veil_ml::model::argmax(p))
            .collect()
    }
}

/// Values from a compiled regressor, compared exactly (the decoded integers are).
fn values(c: &CompiledModel) -> impl Fn(&Matrix, &dyn Backend) -> Vec<u64> + '_ {
    move |x, b| {
        c.run(x, b)
            .unwrap()
            .iter()
            .map(|v| v[0].to_bits())
            .collect()
    }
}

#[test]
fn logistic_regression() {
    let (s, y) = breast_cancer();
    let mut m = LogisticRegression::new();
    m.fit(&s.train.x, &y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("logreg", c, &s.train.x, &s.test.x, 3, 0, &classes(c));
}

#[test]
fn linear_svc() {
    let (s, y) = breast_cancer();
    let mut m = LinearSvc::new();
    m.fit(&s.train.x, &y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("svc", c, &s.train.x, &s.test.x, 3, 0, &classes(c));
}

#[test]
fn linear_regression() {
    let s = split(dataset::diabetes().unwrap());
    let mut m = LinearRegression::new();
    m.fit(&s.train.x, &s.train.y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("linreg", c, &s.train.x, &s.test.x, 3, 0, &values(c));
}

#[test]
fn decision_tree_classifier() {
    let (s, y) = breast_cancer();
    let mut m = DecisionTreeClassifier::new().with_max_depth(5);
    m.fit(&s.train.x, &y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("tree", c, &s.train.x, &s.test.x, 3, 40, &classes(c));
}

#[test]
fn decision_tree_regressor() {
    let s = split(dataset::diabetes().unwrap());
    let mut m = DecisionTreeRegressor::new().with_max_depth(3);
    m.fit(&s.train.x, &s.train.y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("tree reg", c, &s.train.x, &s.test.x, 2, 40, &values(c));
}

#[test]
fn random_forest_classifier() {
    let (s, y) = breast_cancer();
    let mut m = RandomForestClassifier::new();
    m.fit(&s.train.x, &y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("forest", c, &s.train.x, &s.test.x, 2, 40, &classes(c));
}

#[test]
fn random_forest_regressor() {
    let s = split(dataset::diabetes().unwrap());
    let mut m = RandomForestRegressor::new()
        .with_n_estimators(5)
        .with_max_depth(3);
    m.fit(&s.train.x, &s.train.y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("forest reg", c, &s.train.x, &s.test.x, 2, 40, &values(c));
}

#[test]
fn mlp_classifier() {
    let (s, y) = breast_cancer();
    let mut m = MlpClassifier::new();
    m.fit(&s.train.x, &y).unwrap();
    m.compile(&s.train.x, &CompileConfig::default()).unwrap();
    let c = m.compiled().unwrap();
    check_model("mlp", c, &s.train.x, &s.test.x, 2, 20, &classes(c));
}

/// The bench's iris network (hidden 16 and 16, 3-bit QAT) with its 6-bit accumulators rounded
/// exactly to 4 bits: 64 one-bit extractions and 32 four-bit lookups.
#[test]
fn mlp_classifier_rounded() {
    let s = split(dataset::iris().unwrap());
    let y = s.train.classes().unwrap();
    let mut m = MlpClassifier::new()
        .with_hidden(&[16, 16])
        .with_bits(3, 3, 3);
    m.fit(&s.train.x, &y).unwrap();
    let cfg = CompileConfig {
        rounding_bits: Some(4),
        ..CompileConfig::default()
    };
    m.compile(&s.train.x, &cfg).unwrap();
    let c = m.compiled().unwrap();
    check_model("mlp_rounded", c, &s.train.x, &s.test.x, 1, 20, &classes(c));
}

#[test]
fn xgboost_classifier() {
    let (s, _) = breast_cancer();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost");
    let mut m = XgbClassifier::from_file(dir.join("breast_cancer.model.json")).unwrap();
    m.compile_default(&s.train.x).unwrap();
    let c = m.compiled().unwrap();
    check_model("xgb", c, &s.train.x, &s.test.x, 2, 40, &classes(c));
}

// ------------------------------------------------------------------ ONNX fixtures

#[derive(Deserialize)]
struct Fixture {
    model: String,
    calibration: Vec<Vec<f64>>,
    inputs: Vec<Vec<f64>>,
}

/// Imports and compiles fixture `name` with `cfg`.
fn onnx(name: &str, cfg: &ImportConfig) -> (OnnxModel, Matrix, Matrix) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let fx: Fixture = serde_json::from_str(&text).unwrap();
    let imp = OnnxImport::from_file(dir.join(&fx.model)).unwrap();
    let cal = Matrix::from_rows(&fx.calibration).unwrap();
    let m = imp.compile(&cal, cfg).unwrap();
    (m, cal, Matrix::from_rows(&fx.inputs).unwrap())
}

/// Every output of the model (labels and scores) as bits, compared exactly.
fn onnx_outputs(m: &OnnxModel) -> impl Fn(&Matrix, &dyn Backend) -> Vec<Vec<u64>> + '_ {
    move |x, b| {
        m.run(x, b)
            .unwrap()
            .iter()
            .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
            .collect()
    }
}

fn check_onnx_with(name: &str, cfg: &ImportConfig, n_exec: usize, n_sim: usize) {
    let (m, cal, x) = onnx(name, cfg);
    check_model(
        name,
        m.compiled(),
        &cal,
        &x,
        n_exec,
        n_sim,
        &onnx_outputs(&m),
    );
}

fn check_onnx(name: &str, n_exec: usize, n_sim: usize) {
    check_onnx_with(name, &ImportConfig::default(), n_exec, n_sim);
}

#[test]
fn onnx_logreg_breast_cancer() {
    check_onnx("logreg_breast_cancer", 2, 0);
}

#[test]
fn onnx_logreg_iris() {
    check_onnx("logreg_iris", 2, 0);
}

#[test]
fn onnx_linreg_diabetes() {
    check_onnx("linreg_diabetes", 2, 0);
}

#[test]
fn onnx_tree_iris() {
    check_onnx("tree_iris", 2, 20);
}

#[test]
fn onnx_forest_breast_cancer() {
    check_onnx("forest_breast_cancer", 1, 20);
}

#[test]
fn onnx_forest_diabetes() {
    check_onnx("forest_diabetes", 1, 20);
}

#[test]
fn onnx_xgb_iris() {
    check_onnx("xgb_iris", 1, 20);
}

#[test]
fn onnx_xgb_breast_cancer() {
    check_onnx("xgb_breast_cancer", 1, 20);
}

// Neural networks. At the default widths (8-bit inputs and weights, 7-bit activations) their
// table lookups read the calibrated accumulators of the linear layers: 15-16 bits for the MLP,
// the CNN and the ops network, for which no secure TFHE parameters exist (the optimizer stops
// at 10 bits). `ImportConfig::rounding_bits` rounds them exactly before their lookups, one
// 1-bit bootstrap per dropped bit, but from 15 bits those extractions need w-bit noise and
// cost about 100 s a sample (see `rounded` below). These tests check the encrypted path of
// the network ops (Gemm, Conv, pooling, fused activation lookups, per-channel tables) at 2-bit
// widths, and of rounding at 4-bit widths, where Execute is affordable.

/// 2-bit inputs, weights and activations, 4-bit outputs: 6-bit bootstraps at most.
fn narrow() -> ImportConfig {
    ImportConfig {
        n_bits: NBits {
            inputs: Some(2),
            weights: Some(2),
            activations: Some(2),
            outputs: Some(4),
        },
        batch: 1,
        rounding_bits: None,
        rounding_method: RoundingMethod::Exact,
        ..ImportConfig::default()
    }
}

#[test]
fn onnx_mlp_digits() {
    check_onnx_with("mlp_digits", &narrow(), 1, 10);
}

#[test]
fn onnx_ops_iris() {
    check_onnx_with("ops_iris", &narrow(), 1, 10);
}

/// 4-bit inputs, weights and activations with accumulators rounded exactly to 5 bits before
/// their lookups (`ImportConfig::rounding_bits`, `RoundingMethod::Exact`): 1-bit bootstraps,
/// then 5-bit lookups; Execute equals Clear exactly. (At the default 8/8/7 bits rounded to 6, the torch MLP also runs encrypted with
/// Execute == Clear, but its 272 extractions need a 3 GB bootstrap key and 100 s a sample.)
fn rounded() -> ImportConfig {
    ImportConfig {
        n_bits: NBits {
            inputs: Some(4),
            weights: Some(4),
            activations: Some(4),
            outputs: Some(8),
        },
        batch: 1,
        rounding_bits: Some(5),
        rounding_method: RoundingMethod::Exact,
        ..ImportConfig::default()
    }
}

/// A PyTorch MLP (iris, two hidden ReLU layers of 16), rounded.
#[test]
fn onnx_torch_mlp_iris_rounded() {
    check_onnx_with("torch_mlp_iris", &rounded(), 1, 10);
}

/// The CNN in Simulate mode (CI): 1216 bootstraps per sample at 5 bits.
#[test]
fn onnx_cnn_digits_simulate() {
    let (m, cal, x) = onnx("cnn_digits", &narrow());
    let c = m.compiled();
    let p = program::compile(
        &c.graph,
        &inputset(c, &cal),
        &program::CompileConfig::default(),
    )
    .unwrap();
    report("cnn_digits", &p);
    let sim = SimulateBackend {
        program: p,
        seed: 0,
    };
    same_as_clear("cnn_digits", &rows(&x, 0, 5), &sim, &onnx_outputs(&m));
}

/// The CNN encrypted: 1216 bootstraps at 5 bits (about 45 s for one sample on 2 cores).
#[test]
fn onnx_cnn_digits_execute() {
    check_onnx_with("cnn_digits", &narrow(), 1, 0);
}

/// The PyTorch CNN (Conv-ReLU-AvgPool-Conv-ReLU-Gemm on digits 8x8) encrypted at 2-bit
/// inputs, weights and activations: 352 bootstraps at 4 and 5 bits, about 6 s a sample.
#[test]
fn onnx_torch_cnn_digits_execute() {
    check_onnx_with("torch_cnn_digits", &narrow(), 1, 5);
}
