//! ML models through the real `veil` binary as a data scientist uses them: CSV files with a
//! header row and a label column, `veil compile` options for models (`--label-column`,
//! `--n-bits`, `--rounding-bits`, `--global-p-error`), and `veil eval` scoring a model on a
//! labelled test set in clear, simulate and execute modes next to the float model.

use std::path::{Path, PathBuf};
mod common;
use common::{s, veil, workdir};

fn fixture(name: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../ml/tests/fixtures/onnx/{name}.{ext}"))
}

fn flat(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        v => out.push(v.as_f64().unwrap()),
    }
}

/// The fixture's calibration rows and test rows as CSV files with a header, the label in the
/// last column (`label`); calibration rows get label 0 (their labels are not in the fixture).
fn labelled_csvs(name: &str, dir: &Path) -> (PathBuf, PathBuf, Vec<f64>) {
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name, "json")).unwrap()).unwrap();
    let rows = |k: &str| -> Vec<Vec<f64>> {
        f[k].as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                flat(r, &mut v);
                v
            })
            .collect()
    };
    let (cal, test) = (rows("calibration"), rows("inputs"));
    let targets: Vec<f64> = f["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let header = (0..cal[0].len())
        .map(|i| format!("feature_{i}"))
        .chain(std::iter::once("label".to_string()))
        .collect::<Vec<_>>()
        .join(",");
    let write = |path: &Path, rows: &[Vec<f64>], labels: &[f64]| {
        let mut text = header.clone() + "\n";
        for (r, l) in rows.iter().zip(labels) {
            let cells: Vec<String> = r.iter().map(|v| format!("{v:?}")).collect();
            text += &format!("{},{l}\n", cells.join(","));
        }
        std::fs::write(path, text).unwrap();
    };
    let (train, test_csv) = (dir.join("train.csv"), dir.join("test.csv"));
    write(&train, &cal, &vec![0.0; cal.len()]);
    write(&test_csv, &test, &targets);
    (train, test_csv, targets)
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

fn fails(args: &[&str], needle: &str) {
    let (code, out, err) = veil(args);
    assert_eq!(code, 1, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

fn eval_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&ok(&all)).unwrap()
}

#[test]
fn csv_with_header_and_label_column_compiles_and_encrypts() {
    let dir = workdir("label");
    let (train, test, _) = labelled_csvs("tree_iris", &dir);
    let model = s(&fixture("tree_iris", "onnx"));
    let build = dir.join("build");
    // One column too many and no --label-column: a hint, not a silent misread.
    fails(
        &[
            "compile",
            &model,
            "--inputset",
            &s(&train),
            "--out",
            &s(&build),
        ],
        "--label-column",
    );
    fails(
        &[
            "compile",
            &model,
            "--inputset",
            &s(&train),
            "--label-column",
            "species",
        ],
        "no label column \"species\"",
    );
    ok(&[
        "compile",
        &model,
        "--inputset",
        &s(&train),
        "--label-column",
        "label",
        "--out",
        &s(&build),
    ]);
    let client = s(&build.join("client.veil-artifact"));
    let keys = dir.join("keys");
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &s(&keys),
        "--seed",
        "3",
    ]);
    let secret = s(&keys.join("secret.veil-keys"));
    let x = s(&dir.join("x.veil-ct"));
    let y = s(&dir.join("y.veil-ct"));
    // The test file keeps its label column: encrypt leaves it out.
    let two = dir.join("two.csv");
    let text = std::fs::read_to_string(&test).unwrap();
    std::fs::write(&two, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &secret,
        "--input",
        &s(&two),
        "--label-column",
        "last",
        "--out",
        &x,
    ]);
    ok(&[
        "run",
        "--server",
        &s(&build.join("server.veil-artifact")),
        "--eval-keys",
        &s(&keys.join("eval.veil-keys")),
        "--input",
        &x,
        "--out",
        &y,
    ]);
    let out = ok(&[
        "decrypt", "--client", &client, "--keys", &secret, "--input", &y, "--format", "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got.as_array().unwrap().len(), 2, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_scores_models_next_to_float() {
    let dir = workdir("eval");
    // (model, extra options, whether clear accuracy stays within 1 point of float)
    for (name, extra, close) in [
        ("tree_iris", &[][..], true),
        ("xgb_iris", &[][..], true),
        ("forest_breast_cancer", &[][..], true),
        ("logreg_breast_cancer", &[][..], true),
        // scikit-learn's MLPClassifier: its label is the class at the ArgMax's index, a
        // network (rounded automatically)
        ("mlp_digits", &[][..], true),
        // A PyTorch MLP at 4-bit widths, accumulators rounded exactly to 5 bits: it runs,
        // and the report shows what the narrow widths cost (0.91 against 0.98 in float).
        (
            "torch_mlp_iris",
            &["--n-bits", "4", "--rounding-bits", "5"][..],
            false,
        ),
    ] {
        let (train, test, targets) = labelled_csvs(name, &dir);
        let model = s(&fixture(name, "onnx"));
        let mut args = vec![
            model.as_str(),
            "--inputset",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--label-column",
            "last",
        ];
        args.extend_from_slice(extra);
        let v = eval_json(&args);
        assert_eq!(v["task"], "classification", "{name}: {v}");
        assert_eq!(v["samples"].as_u64().unwrap() as usize, targets.len());
        let (float, quant) = (v["float"].as_f64().unwrap(), v["veil"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&quant), "{name}: {v}");
        if close {
            // Clear quantized accuracy within 1 point of the float model.
            assert!(
                quant >= float - 0.01 - 1e-9,
                "{name}: float {float}, veil {quant}"
            );
        }
    }
    // A regressor reports R²; simulation injects bootstrap errors at their predicted rate.
    let (train, test, _) = labelled_csvs("forest_diabetes", &dir);
    let model = s(&fixture("forest_diabetes", "onnx"));
    let v = eval_json(&[
        &model,
        "--inputset",
        &s(&train),
        "--test",
        &s(&test),
        "--label-column",
        "label",
        "--mode",
        "simulate",
    ]);
    assert_eq!(v["task"], "regression", "{v}");
    assert_eq!(v["metric"], "r2");
    // Execute: keys, encryption, the encrypted run, decryption, in process.
    let (train, test, _) = labelled_csvs("tree_iris", &dir);
    let model = s(&fixture("tree_iris", "onnx"));
    let v = eval_json(&[
        &model,
        "--inputset",
        &s(&train),
        "--test",
        &s(&test),
        "--label-column",
        "last",
        "--mode",
        "execute",
        "--samples",
        "2",
    ]);
    assert_eq!(v["samples"], 2, "{v}");
    assert_eq!(v["same_as_float"], 2, "{v}");
    // Mistakes get one line.
    fails(
        &[
            "eval",
            &model,
            "--inputset",
            &s(&train),
            "--test",
            &s(&test),
        ],
        "--label-column",
    );
    let prog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/tlu.veil");
    fails(
        &[
            "eval",
            &s(&prog),
            "--inputset",
            &s(&train),
            "--test",
            &s(&test),
            "--label-column",
            "last",
        ],
        "give an .onnx model",
    );
    fails(
        &[
            "compile",
            &s(&prog),
            "--inputset",
            &s(&train),
            "--n-bits",
            "4",
        ],
        "--n-bits applies to .onnx models",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn networks_compile_by_default_with_approximate_rounding() {
    let dir = workdir("wide");
    let (train, test, _) = labelled_csvs("torch_mlp_iris", &dir);
    let model = s(&fixture("torch_mlp_iris", "onnx"));
    let build = s(&dir.join("build"));
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "compile".to_string(),
            model.clone(),
            "--inputset".into(),
            s(&train),
            "--label-column".into(),
            "last".into(),
            "--out".into(),
            build.clone(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let server = s(&dir.join("build/server.veil-artifact"));
    let client = s(&dir.join("build/client.veil-artifact"));
    let pbs_of = |stats: &str| -> u64 {
        let line = stats
            .lines()
            .find(|l| l.contains("bootstraps (PBS)"))
            .unwrap_or_else(|| panic!("no PBS line in {stats}"));
        line.split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line}"))
    };
    // Default: the accumulators (14-16 bits) are rounded approximately; one 6- or 7-bit lookup
    // per neuron (16 + 16), no bit extraction.
    ok(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    let stats = ok(&["inspect", &server, "--stats"]);
    assert_eq!(pbs_of(&stats), 32, "{stats}");
    let optimized = ok(&["inspect", &client, "--stage", "optimized"]);
    assert!(optimized.contains("approx=true"), "{optimized}");
    // The user is told the outputs may move, and by how much (a proven bound per output).
    assert!(stats.contains("approximate rounding"), "{stats}");
    let bound = |artifact: &str| -> Vec<i64> {
        let v: serde_json::Value =
            serde_json::from_str(&ok(&["inspect", artifact, "--stats", "--json"])).unwrap();
        v["approx_deviation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_i64().unwrap())
            .collect()
    };
    let b = bound(&client);
    assert!(b.len() == 1 && b[0] > 0, "{b:?}");
    // Concrete ML's setting, approximate: as cheap; exact: one more bootstrap per dropped bit.
    ok(&args(&["--n-bits", "6", "--rounding-bits", "6"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(pbs_of(&ok(&["inspect", &server, "--stats"])), 32);
    ok(&args(&[
        "--n-bits",
        "6",
        "--rounding-bits",
        "6",
        "--rounding-method",
        "exact",
    ])
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>());
    let exact = pbs_of(&ok(&["inspect", &server, "--stats"]));
    assert!(exact > 32 * 4, "exact rounding extracts bits: {exact} PBS");
    assert_eq!(bound(&server), Vec::<i64>::new(), "exact rounding is exact");
    // Keeping 16 bits is too wide for any secure bootstrap: the error says what to do.
    fails(
        &args(&["--rounding-bits", "16"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "--rounding-bits 6",
    );
    // The default (6 kept bits of 6-bit widths here) keeps clear accuracy near float: within
    // one of the 45 test samples for the MLP, two points of 100 for the CNN (the choice is
    // made on agreement over the inputset, not on test labels).
    for (name, points) in [("torch_mlp_iris", 0.023), ("torch_cnn_digits", 0.02)] {
        let (train, test) = if name == "torch_mlp_iris" {
            (train.clone(), test.clone())
        } else {
            let (a, b, _) = labelled_csvs(name, &dir);
            (a, b)
        };
        let v = eval_json(&[
            &s(&fixture(name, "onnx")),
            "--inputset",
            &s(&train),
            "--test",
            &s(&test),
            "--label-column",
            "last",
        ]);
        let (float, quant) = (v["float"].as_f64().unwrap(), v["veil"].as_f64().unwrap());
        assert!(quant >= float - points - 1e-9, "{name}: {v}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
