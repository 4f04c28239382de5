//! ONNX import: every committed fixture (exported by scripts/export_onnx_fixtures.py) imports,
//! its float evaluation matches onnxruntime's reference predictions, it compiles to a
//! verified veil program, and the quantized program run by the interpreter (Clear mode) is
//! within one accuracy point (classification) or 0.01 R^2 (regression) of the float model.

use serde::Deserialize;
use std::path::PathBuf;
use veil_ml::onnx::{FTensor, ImportConfig, OnnxImport};
use veil_ml::quantize::RoundingMethod;
use veil_ml::{r2_score, Matrix};

#[derive(Deserialize)]
struct Reference {
    labels: Option<Vec<i64>>,
    scores: Option<Vec<Vec<f64>>>,
    values: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct Fixture {
    model: String,
    task: String,
    sample_shape: Vec<usize>,
    calibration: Vec<Vec<f64>>,
    inputs: Vec<Vec<f64>>,
    targets: Vec<f64>,
    reference: Reference,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn fixture(name: &str) -> Fixture {
    let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect("fixture json");
    serde_json::from_str(&text).expect("fixture parses")
}

/// Per lookup of `q`: whether a round feeds it, and the bits it reads over the fixture's
/// calibration rows once the compiler widens types by approximate rounds' deviation.
fn lookup_widths(q: &veil_ml::onnx::OnnxModel, fx: &Fixture) -> Vec<(bool, u8)> {
    let rows: Vec<Vec<veil_ir::Tensor<i64>>> = q
        .client()
        .calibration_inputs(&matrix(&fx.calibration))
        .unwrap()
        .into_iter()
        .map(|t| vec![t])
        .collect();
    veil_ml::quantize::widened_lookup_widths(q.graph(), &rows).unwrap()
}

fn matrix(rows: &[Vec<f64>]) -> Matrix {
    Matrix::from_rows(rows).expect("rectangular")
}

fn accuracy(pred: &[i64], truth: &[f64]) -> f64 {
    pred.iter()
        .zip(truth)
        .filter(|(p, t)| **p as f64 == **t)
        .count() as f64
        / pred.len() as f64
}

fn labels(t: &FTensor) -> Vec<i64> {
    t.data.iter().map(|&v| v as i64).collect()
}

/// Row-wise argmax of a `[rows, k]` score tensor.
fn argmax_rows(t: &FTensor, k: usize) -> Vec<i64> {
    t.data
        .chunks(k)
        .map(|r| {
            let best = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            r.iter().position(|&v| v == best).unwrap_or(0) as i64
        })
        .collect()
}

/// `(labels, scores)` of a classifier's outputs: a label and a score output
/// (scikit-learn), or one logits output (PyTorch) whose argmax is the label.
fn label_scores(out: &[FTensor], k: usize) -> (Vec<i64>, &FTensor) {
    match out {
        [l, s, ..] => (labels(l), s),
        [s] => (argmax_rows(s, k), s),
        [] => panic!("a classifier has at least one output"),
    }
}

/// Imports, checks the float reference, compiles and checks the quantized accuracy (within a
/// point of float).
fn check(name: &str, batch: usize) {
    check_with(name, batch, None, RoundingMethod::Approximate, 0.01);
}

/// [`check`] with accumulators rounded to `rounding_bits` with `method` before their lookups,
/// and quantized accuracy within `points` of float (R² within `points` for regressors).
fn check_with(
    name: &str,
    batch: usize,
    rounding_bits: Option<u8>,
    method: RoundingMethod,
    points: f64,
) {
    let fx = fixture(name);
    let m = OnnxImport::from_file(dir().join(&fx.model)).expect("imports");
    assert_eq!(
        m.sample_shape(),
        fx.sample_shape.as_slice(),
        "{name}: sample shape"
    );
    let x = matrix(&fx.inputs);
    let float = m.predict_float(&x).expect("float run");
    let cfg = ImportConfig {
        batch,
        rounding_bits,
        rounding_method: method,
        ..ImportConfig::default()
    };
    let q = m.compile(&matrix(&fx.calibration), &cfg).expect("compiles");
    veil_ir::verify(q.graph()).expect("verifies");
    let clear = q.predict_clear(&x).expect("clear run");
    let stats = &q.compiled().stats;
    if fx.task == "classification" {
        // Float evaluation reproduces onnxruntime.
        let ref_labels = fx.reference.labels.as_ref().expect("labels");
        let ref_scores = fx.reference.scores.as_ref().expect("scores");
        let k = ref_scores[0].len();
        let (float_labels, float_scores) = label_scores(&float, k);
        assert_eq!(
            float_labels, *ref_labels,
            "{name}: float labels vs onnxruntime"
        );
        assert_eq!(
            float_scores.data.len(),
            ref_scores.len() * k,
            "{name}: score shape"
        );
        for (i, row) in ref_scores.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let got = float_scores.data[i * k + j];
                assert!(
                    (got - v).abs() < 1e-3,
                    "{name}: score [{i}][{j}] = {got}, onnxruntime {v}"
                );
            }
        }
        let acc_f = accuracy(ref_labels, &fx.targets);
        let clear_labels = label_scores(&clear, k).0;
        let acc_q = accuracy(&clear_labels, &fx.targets);
        let agree = accuracy(
            &clear_labels,
            &ref_labels.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        eprintln!(
            "{name}: float acc {acc_f:.3}, quantized clear acc {acc_q:.3}, agreement {agree:.3}, {} PBS/sample, max PBS width {}, max encrypted width {}",
            stats.pbs_per_sample, stats.max_pbs_bits, stats.max_encrypted_bits
        );
        assert!(
            acc_q >= acc_f - points - 1e-9,
            "{name}: quantized accuracy {acc_q} is more than {points} below float {acc_f}"
        );
    } else {
        let ref_values = fx.reference.values.as_ref().expect("values");
        for (i, (&got, &v)) in float[0].data.iter().zip(ref_values).enumerate() {
            assert!(
                (got - v).abs() < 1e-3 * v.abs().max(1.0),
                "{name}: value {i} = {got}, onnxruntime {v}"
            );
        }
        let r2_f = r2_score(&fx.targets, ref_values);
        let r2_q = r2_score(&fx.targets, &clear[0].data);
        eprintln!(
            "{name}: float R2 {r2_f:.4}, quantized clear R2 {r2_q:.4}, {} PBS/sample, max encrypted width {}",
            stats.pbs_per_sample, stats.max_encrypted_bits
        );
        assert!(
            r2_q >= r2_f - points - 1e-9,
            "{name}: quantized R2 {r2_q} is more than {points} below float {r2_f}"
        );
    }
}

#[test]
fn logreg_breast_cancer() {
    check("logreg_breast_cancer", 10);
}

#[test]
fn logreg_iris() {
    check("logreg_iris", 10);
}

#[test]
fn linreg_diabetes() {
    check("linreg_diabetes", 10);
}

#[test]
fn tree_iris() {
    check("tree_iris", 10);
}

#[test]
fn forest_breast_cancer() {
    check("forest_breast_cancer", 10);
}

#[test]
fn forest_diabetes() {
    check("forest_diabetes", 10);
}

#[test]
fn xgb_iris() {
    check("xgb_iris", 10);
}

#[test]
fn mlp_digits() {
    check("mlp_digits", 10);
}

#[test]
fn cnn_digits() {
    check("cnn_digits", 10);
}

#[test]
fn ops_iris() {
    check("ops_iris", 10);
}

#[test]
fn xgb_breast_cancer() {
    check("xgb_breast_cancer", 10);
}

// More families exported the usual way (scripts/export_onnx_fixtures.py): tree features go
// as their ranks among the split points, so the trees' comparisons are exactly float's.

#[test]
fn extra_trees_iris() {
    check("extra_trees_iris", 10);
}

#[test]
fn extra_trees_diabetes() {
    check("extra_trees_diabetes", 10);
}

#[test]
fn gradient_boosting_breast_cancer() {
    check("gb_breast_cancer", 10);
}

#[test]
fn gradient_boosting_iris() {
    check("gb_iris", 10);
}

#[test]
fn gradient_boosting_diabetes() {
    check("gb_diabetes", 10);
}

#[test]
fn xgboost_regressor_diabetes() {
    check("xgb_regressor_diabetes", 10);
}

#[test]
fn xgboost_ten_classes() {
    check("xgb_digits", 10);
}

#[test]
fn random_forest_ten_classes() {
    check("forest_digits", 10);
}

#[test]
fn lightgbm_iris() {
    check("lgbm_iris", 10);
}

#[test]
fn lightgbm_breast_cancer() {
    check("lgbm_breast_cancer", 10);
}

#[test]
fn lightgbm_diabetes() {
    check("lgbm_diabetes", 10);
}

#[test]
fn classifiers_with_zipmap() {
    check("tree_iris_zipmap", 10);
    check("logreg_iris_zipmap", 10);
}

#[test]
fn pipeline_min_max_scaler_then_tree() {
    check("pipeline_minmax_tree_breast_cancer", 10);
}

#[test]
fn linear_svms() {
    check("linear_svc_iris", 10);
    check("svc_linear_breast_cancer", 10);
}

#[test]
fn pipelines_with_standard_scaler() {
    check("ridge_diabetes", 10);
    check("mlp_regressor_diabetes", 10);
}

#[test]
fn k_nearest_neighbours_are_refused_with_a_reason() {
    let fx = fixture("knn_iris");
    let Err(e) = OnnxImport::from_file(dir().join(&fx.model)) else {
        panic!("a k-NN export is refused")
    };
    let e = e.to_string();
    assert!(e.contains("k-nearest-neighbours"), "{e}");
}

/// Rank-encoded tree features: every sample, however far outside the inputset, takes the
/// float model's path (only the leaves are quantized), and few bits carry the ranks.
#[test]
fn tree_features_go_as_ranks_and_keep_every_path() {
    let fx = fixture("tree_iris");
    let m = OnnxImport::from_file(dir().join(&fx.model)).expect("imports");
    let q = m
        .compile(&matrix(&fx.calibration), &ImportConfig::default())
        .expect("compiles");
    let bins = q.compiled().client.bins.as_ref().expect("ranks");
    assert!(bins.bits() <= 4, "{} bits", bins.bits());
    // far outside the calibration range on every feature, both ways
    let x = matrix(&[
        vec![100.0, -100.0, 100.0, -100.0],
        vec![-100.0, 100.0, -100.0, 100.0],
        vec![0.0, 0.0, 0.0, 0.0],
    ]);
    let float = m.predict_float(&x).expect("float");
    let clear = q.predict_clear(&x).expect("clear");
    assert_eq!(float[0].data, clear[0].data, "labels");
}

#[test]
fn torch_mlp_iris() {
    // the default: 6-bit widths, every lookup reading 5 kept bits, as accurate as float
    check_with(
        "torch_mlp_iris",
        10,
        None,
        RoundingMethod::Approximate,
        0.01,
    );
}

/// At the default (no rounding given) the CNN gets the cheapest rounding whose inputset
/// predictions agree with float within 5 points of the best (6 kept bits of 6-bit widths),
/// then 5 kept bits where the optimizer prices that cheaper and agreement holds: 0.97
/// against 0.98 on the 100 test samples.
#[test]
fn torch_cnn_digits() {
    check_with(
        "torch_cnn_digits",
        10,
        None,
        RoundingMethod::Approximate,
        0.01,
    );
}

// Default widths with accumulators rounded exactly to 6 (8) bits before their lookups
// (Concrete ML's `rounding_threshold_bits`): what the encrypted tests of ml_execute.rs compile.

fn exact(name: &str, keep: u8) {
    check_with(name, 10, Some(keep), RoundingMethod::Exact, 0.01);
}

#[test]
fn mlp_digits_rounded() {
    exact("mlp_digits", 6);
}

#[test]
fn cnn_digits_rounded() {
    exact("cnn_digits", 8);
}

#[test]
fn torch_mlp_iris_rounded() {
    exact("torch_mlp_iris", 6);
}

#[test]
fn torch_cnn_digits_rounded() {
    exact("torch_cnn_digits", 8);
}

/// Concrete ML's network setting: 6-bit widths, approximate rounding to 6 bits.
#[test]
fn torch_networks_at_concrete_ml_settings() {
    // within one point of float: the rounds center each channel's accumulator range in the
    // kept window (the MLP lost 2.2 points, one sample of 45, when they did not)
    for (name, points) in [("torch_mlp_iris", 0.01), ("torch_cnn_digits", 0.01)] {
        let fx = fixture(name);
        let m = OnnxImport::from_file(dir().join(&fx.model)).expect("imports");
        let cfg = ImportConfig {
            n_bits: veil_ml::NBits::all(6),
            rounding_bits: Some(6),
            ..ImportConfig::default()
        };
        let q = m.compile(&matrix(&fx.calibration), &cfg).expect("compiles");
        let x = matrix(&fx.inputs);
        let k = fx.reference.scores.as_ref().expect("scores")[0].len();
        let acc_q = accuracy(
            &label_scores(&q.predict_clear(&x).unwrap(), k).0,
            &fx.targets,
        );
        let acc_f = accuracy(fx.reference.labels.as_ref().unwrap(), &fx.targets);
        eprintln!("{name} at 6/6 approximate: float {acc_f:.3}, clear {acc_q:.3}");
        assert!(acc_q >= acc_f - points - 1e-9, "{name}: {acc_q} vs {acc_f}");
        // Every lookup reads 6 bits, even where the deviation of an earlier approximate round
        // widens the accumulator it reads (the import drops one more bit there).
        let widths = lookup_widths(&q, &fx);
        assert!(
            widths.iter().all(|&(rounded, w)| rounded && w <= 6),
            "{name}: {widths:?}"
        );
    }
}

/// veil's automatic rounding takes the plan whose lookups read exactly the kept bits where
/// it agrees with float as well, within one point: with centered rounding windows every
/// network fixture then reads at most 6 bits at every lookup (the torch CNN's calibrated plan
/// read 7 bits in its second convolution's ReLUs for one more inputset sample of 200 in
/// agreement). Their accuracy is checked by the tests above.
#[test]
fn automatic_rounding_takes_exact_widths_where_they_agree_as_well() {
    for name in [
        "torch_mlp_iris",
        "torch_cnn_digits",
        "mlp_digits",
        "cnn_digits",
    ] {
        let (fx, q) = compiled(name, &ImportConfig::default());
        let widths = lookup_widths(&q, &fx);
        assert!(
            widths.iter().all(|&(rounded, w)| rounded && w <= 6),
            "{name}: {widths:?}"
        );
    }
}

/// Fixture `name`, imported and compiled with `cfg` on its calibration rows.
fn compiled(name: &str, cfg: &ImportConfig) -> (Fixture, veil_ml::onnx::OnnxModel) {
    let fx = fixture(name);
    let m = OnnxImport::from_file(dir().join(&fx.model)).expect("imports");
    let q = m.compile(&matrix(&fx.calibration), cfg).expect("compiles");
    (fx, q)
}

/// Then lookup by lookup, the automatic choice keeps one bit fewer where the optimizer
/// prices it cheaper and inputset agreement holds (a 5-bit bootstrap costs a fourth of a
/// 6-bit one here): the torch MLP reads 5 bits everywhere; the CNN's first convolution reads
/// 5 bits through factors (its accumulator multiplied by a clear per-channel factor, so
/// each channel fills the window), which keeps it within a point of float where 5 bits
/// without factors lost two. An explicit `rounding_bits` is left as asked.
#[test]
fn automatic_rounding_refines_each_lookup_by_cost() {
    let reads = |name: &str, cfg: &ImportConfig| {
        let (fx, q) = compiled(name, cfg);
        let widths: Vec<u8> = lookup_widths(&q, &fx).into_iter().map(|(_, w)| w).collect();
        // the first lookup's round reads the accumulator times a clear constant
        let g = q.graph();
        let first = g
            .values()
            .into_iter()
            .find(|&v| matches!(g.op(v), veil_ir::Op::Round { .. }))
            .expect("a round");
        let mut x = g.operands(first)[0];
        if matches!(g.op(x), veil_ir::Op::Add) {
            // the offsets
            x = g.operands(x)[0];
        }
        let factored = matches!(g.op(x), veil_ir::Op::Mul);
        (widths, factored)
    };
    let (mlp, _) = reads("torch_mlp_iris", &ImportConfig::default());
    assert!(mlp.iter().all(|&w| w == 5), "{mlp:?}");
    let (cnn, factored) = reads("torch_cnn_digits", &ImportConfig::default());
    assert_eq!(cnn.first(), Some(&5), "{cnn:?}");
    assert!(
        factored,
        "the CNN's first round reads a multiplied accumulator"
    );
    let six = ImportConfig {
        n_bits: veil_ml::NBits::all(6),
        rounding_bits: Some(6),
        ..ImportConfig::default()
    };
    let (cnn6, factored6) = reads("torch_cnn_digits", &six);
    assert!(cnn6.iter().all(|&w| w == 6), "{cnn6:?}");
    assert!(!factored6);
}

/// A 10-class boosted ensemble of 300 trees (synthetic, shaped like an onnxmltools XGBoost
/// export) compiles; the program returns one column per tree (a tree scores one class, the
/// other nine columns are constants folded into the decoder), no constant comes near the
/// tensor size limit, and the quantized program's labels and probabilities are the float
/// model's.
#[test]
fn a_large_boosted_ensemble_compiles_to_one_column_per_tree() {
    use veil_ml::onnx::synth::SynthEnsemble;
    let e = SynthEnsemble {
        rounds: 30,
        classes: 10,
        depth: 3,
        features: 64,
        levels: 17,
        seed: 3,
    };
    let m = OnnxImport::from_bytes(&e.onnx()).expect("imports");
    let x = Matrix::new(60, 64, e.rows(60, 5)).expect("rows");
    let q = m.compile(&x, &ImportConfig::default()).expect("compiles");
    let g = q.graph();
    let out = g.outputs()[0];
    assert_eq!(g.ty(out).shape, vec![1, 300], "one output column per tree");
    let largest = g.consts.iter().map(|c| c.values.len()).max().unwrap();
    assert!(largest < 1 << 22, "largest constant {largest}");
    let test = Matrix::new(40, 64, e.rows(40, 6)).expect("rows");
    let f = m.predict_float(&test).expect("float");
    let c = q.predict_clear(&test).expect("clear");
    let (fl, cl) = (&f[0].data, &c[0].data);
    let same = fl.iter().zip(cl).filter(|(a, b)| a == b).count();
    // every tree quantizes its leaves on its own range: 4-bit leaves keep 300 trees exact
    let err = f[1]
        .data
        .iter()
        .zip(&c[1].data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    assert!(err < 0.05, "probabilities differ by up to {err}");
    assert!(same >= 38, "{same}/40 labels equal the float model's");
}

/// Which fixtures' first output is a class label (how `veil eval` scores them, and how the
/// automatic rounding measures agreement: equal labels, not R² on class numbers).
/// scikit-learn's MLPClassifier gives its label as `ArrayFeatureExtractor(classes,
/// ArgMax(probabilities))`.
#[test]
fn first_outputs_that_are_labels() {
    for (name, label) in [
        ("mlp_digits", true),
        ("logreg_iris", true),
        ("tree_iris_zipmap", true),
        ("xgb_iris", true),
        ("linreg_diabetes", false),
        ("mlp_regressor_diabetes", false),
    ] {
        let fx = fixture(name);
        let m = OnnxImport::from_file(dir().join(&fx.model)).expect("imports");
        assert_eq!(m.first_output_is_label(), label, "{name}");
    }
}
