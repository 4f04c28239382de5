//! ONNX import: every committed fixture (exported by scripts/export_onnx_fixtures.py) imports,
//! its float evaluation matches onnxruntime's reference predictions, it compiles to a
//! verified veil program, and the quantized program run by the interpreter (Clear mode) is
//! within one accuracy point (classification) or 0.01 R^2 (regression) of the float model.

use serde::Deserialize;
use std::path::PathBuf;
use veil_compiler::ml::{r2_score, Matrix};
use veil_compiler::onnx::{FTensor, ImportConfig, OnnxImport};

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

/// Imports, checks the float reference, compiles and checks the quantized accuracy.
fn check(name: &str, batch: usize) {
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
        assert_eq!(
            labels(&float[0]),
            *ref_labels,
            "{name}: float labels vs onnxruntime"
        );
        let k = ref_scores[0].len();
        assert_eq!(
            float[1].data.len(),
            ref_scores.len() * k,
            "{name}: score shape"
        );
        for (i, row) in ref_scores.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let got = float[1].data[i * k + j];
                assert!(
                    (got - v).abs() < 1e-3,
                    "{name}: score [{i}][{j}] = {got}, onnxruntime {v}"
                );
            }
        }
        let acc_f = accuracy(ref_labels, &fx.targets);
        let acc_q = accuracy(&labels(&clear[0]), &fx.targets);
        let agree = accuracy(
            &labels(&clear[0]),
            &ref_labels.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        eprintln!(
            "{name}: float acc {acc_f:.3}, quantized clear acc {acc_q:.3}, agreement {agree:.3}, {} PBS/sample, max PBS width {}, max encrypted width {}",
            stats.pbs_per_sample, stats.max_pbs_bits, stats.max_encrypted_bits
        );
        assert!(
            acc_q >= acc_f - 0.01,
            "{name}: quantized accuracy {acc_q} is more than one point below float {acc_f}"
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
            r2_q >= r2_f - 0.01,
            "{name}: quantized R2 {r2_q} is more than 0.01 below float {r2_f}"
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
