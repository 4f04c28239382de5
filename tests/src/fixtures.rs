//! The ONNX model fixtures of `ml/tests/fixtures/onnx/` (written by
//! `scripts/export_onnx_fixtures.py` and `scripts/export_torch_fixtures.py`): each `NAME.onnx`
//! has a `NAME.json` beside it with the rows to calibrate on, test inputs and the float model's
//! outputs.

use std::path::PathBuf;
use veil_ml::Matrix;

/// Fixtures veil refuses by design, with the reason in their import error (k-NN: an encrypted
/// top-k over the training set).
pub const REFUSED: &[&str] = &["knn_iris"];

/// The ONNX fixtures' directory.
pub fn onnx_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/tests/fixtures/onnx")
}

/// Names (file stems) of every ONNX fixture veil compiles, sorted (the [`REFUSED`] ones left
/// out).
pub fn onnx_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(onnx_dir())
        .expect("the ONNX fixtures' directory")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "onnx").then_some(stem)
        })
        .filter(|n| !REFUSED.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Rows `key` (`"calibration"`, `"inputs"`) of fixture `name`'s JSON file, each sample
/// flattened in row-major order.
pub fn rows(name: &str, key: &str) -> Matrix {
    let path = onnx_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    fn flat(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            v => out.push(v.as_f64().expect("a number")),
        }
    }
    let rows: Vec<Vec<f64>> = f[key]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no {key:?} rows"))
        .iter()
        .map(|r| {
            let mut row = Vec::new();
            flat(r, &mut row);
            row
        })
        .collect();
    Matrix::from_rows(&rows).expect("rows of one length")
}
