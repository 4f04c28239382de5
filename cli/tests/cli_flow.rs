//! The client/server flow through the real `veil` binary, one process per step: compile,
//! keygen, encrypt, run, decrypt; the decrypted results must equal Clear mode (the reference
//! interpreter for `.veil` programs, the quantized model run by the interpreter for ONNX).

use std::path::Path;
use veil_cli::io::npy;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::{Matrix, RoundingMethod};
mod common;
use common::{interpret, ints, repo, s, veil, workdir};

/// Runs `veil args`, which must succeed; returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    // Quiet on success when stderr is not a terminal: no progress bar, no logs.
    assert!(err.is_empty(), "veil {args:?} wrote to stderr:\n{err}");
    out
}

/// compile -> keygen -> encrypt -> run -> decrypt (JSON); returns the decrypted samples.
fn flow(dir: &Path, program: &str, inputset: &Path, input: &Path) -> Vec<serde_json::Value> {
    flow_with(dir, program, inputset, input, &[])
}

/// [`flow`] with more `veil compile` arguments.
fn flow_with(
    dir: &Path,
    program: &str,
    inputset: &Path,
    input: &Path,
    compile_args: &[&str],
) -> Vec<serde_json::Value> {
    let build = dir.join("build");
    let keys = dir.join("keys");
    let (inputset, out) = (s(inputset), s(&build));
    let mut args = vec!["compile", program, "--inputset", &inputset, "--out", &out];
    args.extend_from_slice(compile_args);
    ok(&args);
    let client = s(&build.join("client.veil-artifact"));
    let server = s(&build.join("server.veil-artifact"));
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &s(&keys),
        "--seed",
        "5",
    ]);
    let secret = s(&keys.join("secret.veil-keys"));
    let eval = s(&keys.join("eval.veil-keys"));
    let (x, y) = (s(&dir.join("x.veil-ct")), s(&dir.join("y.veil-ct")));
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &secret,
        "--input",
        &s(input),
        "--out",
        &x,
    ]);
    // The server step reads the server artifact, the evaluation keys and ciphertexts only.
    ok(&[
        "run",
        "--server",
        &server,
        "--eval-keys",
        &eval,
        "--input",
        &x,
        "--out",
        &y,
        "--threads",
        "2",
    ]);
    let out = ok(&[
        "decrypt", "--client", &client, "--keys", &secret, "--input", &y, "--format", "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array().unwrap().clone()
}

fn check_against_interpreter(src: &str, rows: &[Vec<i64>], got: &[serde_json::Value]) {
    assert_eq!(got.len(), rows.len());
    for (row, sample) in rows.iter().zip(got) {
        for (name, want) in interpret(&std::fs::read_to_string(src).unwrap(), row) {
            assert_eq!(ints(&sample[&name]), want, "output {name} of {row:?}");
        }
    }
}

fn csv(rows: &[Vec<i64>]) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn veil_program_with_a_clear_input_matches_the_interpreter() {
    let dir = workdir("levelled");
    let src = repo("tests/golden/add_enc_clear.veil");
    // Columns: x (3 values, enc<u3>) then k (1 value, clear<u2>).
    let rows: Vec<Vec<i64>> = (0..6).map(|i| vec![i, 7 - i, (i * 3) % 8, i % 4]).collect();
    let inputset = dir.join("inputset.csv");
    std::fs::write(&inputset, format!("x0,x1,x2,k\n{}\n", csv(&rows))).unwrap();
    // Encrypt from NPY this time.
    let input = dir.join("input.npy");
    let flat: Vec<i64> = rows[..4].iter().flatten().copied().collect();
    std::fs::write(&input, npy::write_2d(4, 4, Some(&flat), None)).unwrap();
    let got = flow(&dir, &src, &inputset, &input);
    check_against_interpreter(&src, &rows[..4], &got);
    // CSV output: a header naming every element, one row per sample.
    let out = ok(&[
        "decrypt",
        "--client",
        &s(&dir.join("build/client.veil-artifact")),
        "--keys",
        &s(&dir.join("keys/secret.veil-keys")),
        "--input",
        &s(&dir.join("y.veil-ct")),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "y[0],y[1],y[2],z[0],z[1],z[2]");
    assert_eq!(lines.len(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn veil_program_with_bootstraps_matches_the_interpreter_and_keeps_secrets() {
    let dir = workdir("pbs");
    let src = repo("tests/golden/tlu.veil");
    // x: enc<u2>[4], s: enc<i2>[4]: 8 bootstraps at 2 bits.
    let rows = vec![
        vec![0, 1, 2, 3, -2, -1, 0, 1],
        vec![3, 2, 1, 0, 1, 0, -1, -2],
        vec![1, 1, 3, 0, -2, -2, 1, 0],
    ];
    let samples = dir.join("samples.csv");
    std::fs::write(&samples, csv(&rows)).unwrap();
    let got = flow(&dir, &src, &samples, &samples);
    check_against_interpreter(&src, &rows, &got);

    // No file that leaves the client holds the secret small key. Locate it in the secret
    // key file: 64 consecutive stored words that are all 0 or 1 with enough ones.
    let secret = std::fs::read(dir.join("keys/secret.veil-keys")).unwrap();
    let window = 512;
    let start = (0..secret.len() - window)
        .find(|&i| {
            let w = &secret[i..i + window];
            w.chunks_exact(8)
                .all(|c| u64::from_le_bytes(c.try_into().unwrap()) <= 1)
                && w.chunks_exact(8).filter(|c| c[0] == 1).count() > 16
        })
        .expect("the secret key file holds the small key");
    let probe = &secret[start..start + window];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("keys/secret.veil-keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the secret key file is readable by others"
        );
    }
    for f in [
        "keys/eval.veil-keys",
        "build/server.veil-artifact",
        "build/client.veil-artifact",
        "x.veil-ct",
        "y.veil-ct",
    ] {
        let data = std::fs::read(dir.join(f)).unwrap();
        assert!(
            !data.windows(window).any(|w| w == probe),
            "{f} holds secret key material"
        );
    }

    // Inspect every stage.
    let server = s(&dir.join("build/server.veil-artifact"));
    let client = s(&dir.join("build/client.veil-artifact"));
    let tfhe = ok(&["inspect", &server, "--stage", "tfhe"]);
    assert!(
        tfhe.starts_with("veil 1\nlevel tfhe\n") && tfhe.contains(" = pbs "),
        "{tfhe}"
    );
    assert!(ok(&["inspect", &client, "--stage", "tensor"]).contains("tlu %0"));
    assert!(ok(&["inspect", &client, "--stage", "optimized"]).starts_with("veil 1\n"));
    assert!(ok(&["inspect", &server, "--dot"]).starts_with("digraph veil {"));
    let summary = ok(&["inspect", &server]);
    assert!(
        summary.contains("bootstraps (PBS)       8 (8 x 2-bit)"),
        "{summary}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", &client, "--stats", "--json"])).unwrap();
    assert_eq!(stats["pbs"], 8);
    assert!(ok(&["inspect", &s(&dir.join("keys/eval.veil-keys"))]).contains("evaluation keys"));
    assert!(ok(&["inspect", &s(&dir.join("y.veil-ct"))]).contains("3 sample(s) in 3 run(s)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An ONNX fixture through the CLI flow (calibration rows as a float NPY array, `n` test
/// samples as CSV): every decrypted output equals Clear mode (the same import and quantization
/// run by the interpreter), and for classifiers the labels are the fixture's float labels where
/// `labels_match` says the quantized model agrees with the float one on these samples.
fn onnx_flow_matches_clear_mode(name: &str, n: usize, labels_match: bool) {
    let dir = workdir(name);
    let model = repo(&format!("ml/tests/fixtures/onnx/{name}.onnx"));
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo(&format!("ml/tests/fixtures/onnx/{name}.json"))).unwrap(),
    )
    .unwrap();
    let rows = |k: &str| -> Vec<Vec<f64>> {
        fixture[k]
            .as_array()
            .unwrap()
            .iter()
            .map(ints_or_floats)
            .collect()
    };
    let (cal, x) = (rows("calibration"), rows("inputs")[..n].to_vec());
    let cols = cal[0].len();
    let text = |m: &[Vec<f64>]| {
        m.iter()
            .map(|r| {
                r.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let inputset = dir.join("calibration.npy");
    let flat: Vec<f64> = cal.iter().flatten().copied().collect();
    std::fs::write(&inputset, npy::write_2d(cal.len(), cols, None, Some(&flat))).unwrap();
    let input = dir.join("x.csv");
    std::fs::write(&input, text(&x)).unwrap();
    // Networks round approximately by default: near a tie the encrypted run may keep the
    // other neighbour (the artifact states the bound, see cli_models). Here they round
    // exactly, so every output must equal Clear mode.
    let exact = name.starts_with("mlp");
    let compile_args: &[&str] = if exact {
        &["--rounding-method", "exact"]
    } else {
        &[]
    };
    let got = flow_with(&dir, &model, &inputset, &input, compile_args);

    // Clear mode: the same import and quantization, run by the interpreter.
    let config = ImportConfig {
        rounding_method: if exact {
            RoundingMethod::Exact
        } else {
            RoundingMethod::Approximate
        },
        ..ImportConfig::default()
    };
    let clear = OnnxImport::from_file(&model)
        .unwrap()
        .compile(&Matrix::from_rows(&cal).unwrap(), &config)
        .unwrap()
        .predict_clear(&Matrix::from_rows(&x).unwrap())
        .unwrap();
    let names = OnnxImport::from_file(&model)
        .unwrap()
        .output_names()
        .to_vec();
    assert_eq!(got.len(), x.len());
    for (name, t) in names.iter().zip(&clear) {
        let per = t.data.len() / x.len();
        for (i, sample) in got.iter().enumerate() {
            let fhe = ints_or_floats(&sample[name]);
            let want = &t.data[i * per..(i + 1) * per];
            assert_eq!(fhe.len(), want.len(), "{name}");
            for (a, b) in fhe.iter().zip(want) {
                assert!(
                    (a - b).abs() <= 1e-9,
                    "{name} of sample {i}: FHE {a}, clear {b}"
                );
            }
        }
    }
    if labels_match {
        let labels: Vec<i64> = fixture["reference"]["labels"].as_array().unwrap()[..n]
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let fhe_labels: Vec<i64> = got
            .iter()
            .map(|g| g[names[0].as_str()].as_f64().unwrap() as i64)
            .collect();
        assert_eq!(fhe_labels, labels);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A number or a (nested) array of numbers, flattened to floats.
fn ints_or_floats(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(ints_or_floats).collect(),
        v => vec![v.as_f64().unwrap()],
    }
}

#[test]
fn onnx_logistic_regression_matches_clear_mode() {
    onnx_flow_matches_clear_mode("logreg_iris", 6, true);
}

#[test]
fn onnx_decision_tree_matches_clear_mode() {
    // A scikit-learn DecisionTreeClassifier (skl2onnx, label + probabilities).
    onnx_flow_matches_clear_mode("tree_iris", 3, true);
}

#[test]
fn onnx_random_forest_classifier_matches_clear_mode() {
    onnx_flow_matches_clear_mode("forest_breast_cancer", 2, true);
}

#[test]
fn onnx_random_forest_regressor_matches_clear_mode() {
    onnx_flow_matches_clear_mode("forest_diabetes", 2, false);
}

#[test]
fn onnx_xgboost_classifier_matches_clear_mode() {
    // An XGBoost multi-class model converted by onnxmltools.
    onnx_flow_matches_clear_mode("xgb_iris", 2, true);
}

// The other standard exports (scripts/export_onnx_fixtures.py), each compiled, encrypted, run
// and decrypted by separate `veil` processes: FHE equals clear mode, and labels equal
// onnxruntime's float labels.

#[test]
fn onnx_extra_trees_match_clear_mode() {
    onnx_flow_matches_clear_mode("extra_trees_iris", 2, true);
    onnx_flow_matches_clear_mode("extra_trees_diabetes", 1, false);
}

#[test]
fn onnx_gradient_boosting_matches_clear_mode() {
    onnx_flow_matches_clear_mode("gb_iris", 2, true);
    onnx_flow_matches_clear_mode("gb_diabetes", 1, false);
}

#[test]
fn onnx_lightgbm_matches_clear_mode() {
    // onnxmltools' LightGBM classifier ends in `probabilities * 1`, run by the client
    onnx_flow_matches_clear_mode("lgbm_breast_cancer", 2, true);
    onnx_flow_matches_clear_mode("lgbm_diabetes", 1, false);
}

#[test]
fn onnx_xgboost_regressor_matches_clear_mode() {
    onnx_flow_matches_clear_mode("xgb_regressor_diabetes", 1, false);
}

#[test]
fn onnx_zipmap_and_pipelines_match_clear_mode() {
    // ZipMap outputs, a MinMaxScaler folded into a tree's thresholds, StandardScaler pipelines
    onnx_flow_matches_clear_mode("tree_iris_zipmap", 2, true);
    onnx_flow_matches_clear_mode("logreg_iris_zipmap", 2, true);
    onnx_flow_matches_clear_mode("pipeline_minmax_tree_breast_cancer", 2, true);
    onnx_flow_matches_clear_mode("ridge_diabetes", 2, false);
    onnx_flow_matches_clear_mode("mlp_regressor_diabetes", 1, false);
}

#[test]
fn onnx_linear_svms_match_clear_mode() {
    onnx_flow_matches_clear_mode("linear_svc_iris", 2, true);
    onnx_flow_matches_clear_mode("svc_linear_breast_cancer", 2, true);
}

/// A tree ensemble calibrated on a handful of rows still classifies samples far outside them
/// exactly as the float model does: its features go as ranks among the split points, and the
/// program is compiled for the lowest and highest rank of every feature.
#[test]
fn onnx_trees_are_exact_far_outside_the_inputset() {
    let dir = workdir("ranks");
    let model = repo("ml/tests/fixtures/onnx/extra_trees_iris.onnx");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("ml/tests/fixtures/onnx/extra_trees_iris.json")).unwrap(),
    )
    .unwrap();
    let cal: Vec<Vec<f64>> = fixture["calibration"].as_array().unwrap()[..4]
        .iter()
        .map(ints_or_floats)
        .collect();
    let far = vec![
        vec![100.0, -100.0, 100.0, -100.0],
        vec![-100.0, 100.0, -100.0, 100.0],
        vec![0.0, 0.0, 0.0, 0.0],
        vec![7.9, 4.4, 6.9, 2.5],
    ];
    let csv = |rows: &[Vec<f64>]| {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (inputset, input) = (dir.join("cal.csv"), dir.join("far.csv"));
    std::fs::write(&inputset, csv(&cal)).unwrap();
    std::fs::write(&input, csv(&far)).unwrap();
    let got = flow(&dir, &model, &inputset, &input);
    let import = OnnxImport::from_file(&model).unwrap();
    let float = import
        .predict_float(&Matrix::from_rows(&far).unwrap())
        .unwrap();
    let label = &import.output_names()[0];
    for (i, sample) in got.iter().enumerate() {
        assert_eq!(
            sample[label.as_str()].as_f64().unwrap(),
            float[0].data[i],
            "sample {i}: {sample}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compile_emits_stages_and_statistics() {
    let dir = workdir("emit");
    let src = repo("tests/golden/relu.veil");
    let inputset = dir.join("i.csv");
    std::fs::write(&inputset, "-8,-1,0,1,7\n3,2,1,0,-3\n").unwrap();
    let out = s(&dir.join("build"));
    let base = ["compile", &src, "--inputset", &s(&inputset), "--out", &out];
    let emit = |stage: &str| {
        let mut a = base.to_vec();
        a.extend(["--emit", stage]);
        ok(&a)
    };
    assert!(emit("tensor").contains("relu"));
    assert!(emit("optimized").starts_with("veil 1\n"));
    assert!(emit("tfhe").starts_with("veil 1\nlevel tfhe\n"));
    let stats: serde_json::Value = serde_json::from_str(&emit("stats")).unwrap();
    assert_eq!(stats["pbs"], 5);
    // --emit prints and writes nothing
    assert!(!dir.join("build").exists(), "--emit wrote artifacts");
    let mut a = base.to_vec();
    a.push("--json");
    let j: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
    assert_eq!(j["stats"]["pbs"], 5);
    assert_eq!(j["program_id"].as_str().unwrap().len(), 16);
    let mut a = base.to_vec();
    a.push("--stats");
    let table = ok(&a);
    assert!(
        table.contains("bootstraps (PBS)       5 (5 x 4-bit)"),
        "{table}"
    );
    assert!(table.contains("parameters @p0"), "{table}");
    // A looser error target, and logs with -v.
    let mut a = base.to_vec();
    a.extend(["--json", "--p-error", "0.01"]);
    let j: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
    let p = j["stats"]["p_error"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 0.01, "{p}");
    let mut a = vec!["-v"];
    a.extend(base);
    let (code, _, err) = veil(&a);
    assert_eq!(code, 0);
    assert!(err.contains("DEBUG"), "{err}");
    // Every subcommand has help with an example.
    for cmd in ["compile", "inspect", "keygen", "encrypt", "run", "decrypt"] {
        let h = ok(&[cmd, "--help"]);
        assert!(
            h.contains("Examples:") && h.contains(&format!("veil {cmd} ")),
            "{cmd}:\n{h}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
