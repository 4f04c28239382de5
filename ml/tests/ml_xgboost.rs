//! The built-in XGBoost models: the committed booster (scripts/export_onnx_fixtures.py, 20
//! trees of depth 3 on breast cancer, the Concrete ML benchmark's model) predicts exactly like
//! XGBoost in float, and its quantized program run by the interpreter (Clear mode) is within
//! one accuracy point of float.

use serde::Deserialize;
use std::path::PathBuf;
use veil_ml::dataset;
use veil_ml::{
    accuracy, CompileConfig, FheClassifier, Matrix, NBits, XgbBooster, XgbClassifier, XgbRegressor,
};

#[derive(Deserialize)]
struct Reference {
    test_size: f64,
    random_state: u32,
    inputs: Vec<Vec<f64>>,
    targets: Vec<usize>,
    labels: Vec<usize>,
    margins: Vec<f32>,
    probabilities: Vec<f64>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost")
}

fn load() -> (XgbClassifier, Reference) {
    let m = XgbClassifier::from_file(dir().join("breast_cancer.model.json")).expect("loads");
    let text = std::fs::read_to_string(dir().join("breast_cancer.reference.json")).unwrap();
    (m, serde_json::from_str(&text).expect("reference parses"))
}

#[test]
fn float_predictions_match_xgboost() {
    let (m, r) = load();
    let b = m.booster();
    assert_eq!((b.trees.len(), b.n_features, m.n_classes()), (20, 30, 2));
    let x = Matrix::from_rows(&r.inputs).unwrap();
    assert_eq!(m.predict(&x).unwrap(), r.labels, "labels vs xgboost");
    let margins = b.predict_margin(&x).unwrap();
    for (i, (got, want)) in margins.iter().zip(&r.margins).enumerate() {
        assert!(
            (got[0] - want).abs() <= 1e-5 * want.abs().max(1.0),
            "margin {i}: {} vs xgboost {want}",
            got[0]
        );
    }
    let p = m.predict_proba(&x).unwrap();
    for (i, (got, want)) in p.iter().zip(&r.probabilities).enumerate() {
        assert!(
            (got[1] - want).abs() <= 1e-6,
            "probability {i}: {} vs xgboost {want}",
            got[1]
        );
    }
    let acc = accuracy(&r.labels, &r.targets);
    assert!(acc > 0.96, "xgboost's own accuracy {acc}");
}

#[test]
fn the_reference_inputs_are_veils_split() {
    // The fixture's test set is scikit-learn's 75/25 split with random_state 0; veil's split
    // of its bundled copy of the dataset selects the same samples.
    let (_, r) = load();
    let d = dataset::breast_cancer().unwrap();
    let s = dataset::train_test_split(&d, r.test_size, r.random_state).unwrap();
    assert_eq!(s.test.classes().unwrap(), r.targets);
    for (i, row) in r.inputs.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(
                s.test.x.get(i, j) as f32,
                v as f32,
                "sample {i}, feature {j}"
            );
        }
    }
}

#[test]
fn quantized_clear_is_within_one_point_of_float() {
    let (mut m, r) = load();
    let d = dataset::breast_cancer().unwrap();
    let s = dataset::train_test_split(&d, 0.25, 0).unwrap();
    let x = Matrix::from_rows(&r.inputs).unwrap();
    let c = m.compile_default(&s.train.x).unwrap().clone();
    veil_ir::verify::verify(&c.graph).unwrap();
    let float = m.predict(&x).unwrap();
    let clear = m.predict_clear(&x).unwrap();
    let (af, ac) = (accuracy(&float, &r.targets), accuracy(&clear, &r.targets));
    eprintln!(
        "xgb: float {af:.4} clear {ac:.4} agreement {:.4} stats {:?}",
        accuracy(&float, &clear),
        c.stats
    );
    assert!(ac >= af - 0.01, "clear accuracy {ac} vs float {af}");
    // Features go as their ranks among the split points (exact comparisons, at most 6
    // bits); ranks wider than 4 bits go as two digits: at most two bootstraps per internal
    // node (fewer when comparisons share a digit test) and one per leaf, all narrow.
    let bins = c.client.bins.as_ref().expect("rank-encoded features");
    assert!(bins.bits() <= 6, "{} rank bits", bins.bits());
    eprintln!("xgb rank bits {}", bins.bits());
    let internal: usize = m
        .booster()
        .trees
        .iter()
        .map(|t| t.left_children.iter().filter(|&&c| c >= 0).count())
        .sum();
    let nodes: usize = m
        .booster()
        .trees
        .iter()
        .map(|t| t.left_children.len())
        .sum();
    assert!(
        c.stats.pbs_per_sample <= (nodes + internal) as u64,
        "{:?}",
        c.stats
    );
    // 2h + e is typed 5 bits by interval arithmetic (4 after calibration).
    assert!(c.stats.max_pbs_bits <= 5, "{:?}", c.stats);
    // Probabilities stay close to XGBoost's.
    let p = m.predict_proba_clear(&x).unwrap();
    let err = p
        .iter()
        .zip(&r.probabilities)
        .map(|(a, b)| (a[1] - b).abs())
        .sum::<f64>()
        / p.len() as f64;
    assert!(err < 0.05, "mean probability error {err}");
    // Summing in FHE (all trees on one leaf range, so coarser than the client's per-tree
    // ranges) stays close to XGBoost's probabilities too.
    let cfg = CompileConfig {
        sum_in_fhe: true,
        input_margin: 0.0,
        ..CompileConfig::default()
    };
    let c2 = m.compile(&s.train.x, &cfg).unwrap().clone();
    assert_eq!(c2.stats.outputs_per_sample, 1);
    let p2 = m.predict_proba_clear(&x).unwrap();
    let err2 = p2
        .iter()
        .zip(&r.probabilities)
        .map(|(a, b)| (a[1] - b).abs())
        .sum::<f64>()
        / p2.len() as f64;
    assert!(err2 < 0.05, "mean probability error summed in FHE {err2}");
    assert!(
        err <= err2 + 1e-9,
        "per-tree ranges {err} vs one range {err2}"
    );
    // More bits, closer to float.
    let cfg = CompileConfig {
        n_bits: NBits {
            inputs: Some(10),
            outputs: Some(10),
            ..NBits::default()
        },
        input_margin: 0.0,
        ..CompileConfig::default()
    };
    m.compile(&s.train.x, &cfg).unwrap();
    let agree = accuracy(&m.predict_clear(&x).unwrap(), &float);
    assert!(agree >= 0.99, "10-bit agreement with float {agree}");
}

#[test]
fn regression_and_multiclass_boosters() {
    // A hand-written regression booster: one stump on feature 1, base score 0.5.
    let json = |objective: &str, num_class: usize, tree_info: &str, trees: &str| {
        format!(
            r#"{{"learner":{{"attributes":{{}},"feature_names":[],"feature_types":[],
            "gradient_booster":{{"model":{{"gbtree_model_param":{{"num_parallel_tree":"1","num_trees":"1"}},
            "iteration_indptr":[0,1],"tree_info":{tree_info},"trees":[{trees}]}},"name":"gbtree"}},
            "learner_model_param":{{"base_score":"5E-1","boost_from_average":"1","num_class":"{num_class}","num_feature":"2","num_target":"1"}},
            "objective":{{"name":"{objective}"}}}},"version":[2,1,1]}}"#
        )
    };
    let stump = |thr: f64, l: f64, r: f64| {
        format!(
            r#"{{"base_weights":[0,0,0],"categories":[],"categories_nodes":[],"categories_segments":[],
            "categories_sizes":[],"default_left":[0,0,0],"id":0,"left_children":[1,-1,-1],
            "loss_changes":[0,0,0],"parents":[2147483647,0,0],"right_children":[2,-1,-1],
            "split_conditions":[{thr},{l},{r}],"split_indices":[1,0,0],"split_type":[0,0,0],
            "sum_hessian":[1,1,1],"tree_param":{{"num_deleted":"0","num_feature":"2","num_nodes":"3","size_leaf_vector":"1"}}}}"#
        )
    };
    let reg = XgbRegressor::from_json(&json("reg:squarederror", 0, "[0]", &stump(0.5, -1.0, 2.0)))
        .unwrap();
    let x = Matrix::from_rows(&[vec![0.0, 0.25], vec![0.0, 0.5], vec![1.0, 0.75]]).unwrap();
    assert_eq!(reg.predict(&x).unwrap(), vec![-0.5, 2.5, 2.5]);
    let mut reg = reg;
    let cal = Matrix::from_rows(&[vec![0.0, 0.0], vec![1.0, 1.0]]).unwrap();
    reg.compile_default(&cal).unwrap();
    use veil_ml::FheRegressor;
    let clear = reg.predict_clear(&x).unwrap();
    for (a, b) in clear.iter().zip([-0.5, 2.5, 2.5]) {
        assert!((a - b).abs() < 0.05, "{clear:?}");
    }
    assert!(
        XgbClassifier::from_json(&json("reg:squarederror", 0, "[0]", &stump(0.5, 1.0, 2.0)))
            .unwrap_err()
            .to_string()
            .contains("XgbRegressor")
    );
    // Three classes, one stump per class.
    let trees = [
        stump(0.5, 1.0, -1.0),
        stump(0.5, -1.0, 1.0),
        stump(0.3, -1.0, -1.0),
    ]
    .join(",");
    let mut mc = XgbClassifier::from_json(
        &json("multi:softprob", 3, "[0,1,2]", &trees)
            .replace(r#""num_trees":"1""#, r#""num_trees":"3""#),
    )
    .unwrap();
    assert_eq!(mc.n_classes(), 3);
    assert_eq!(mc.predict(&x).unwrap(), vec![0, 1, 1]);
    mc.compile_default(&cal).unwrap();
    assert_eq!(mc.predict_clear(&x).unwrap(), vec![0, 1, 1]);
    let p = mc.predict_proba(&x).unwrap();
    assert!((p[0].iter().sum::<f64>() - 1.0).abs() < 1e-6);
}

#[test]
fn bad_models_are_refused_with_a_reason() {
    let e = XgbBooster::from_json("{}").unwrap_err().to_string();
    assert!(e.contains("save_model"), "{e}");
    let text = std::fs::read_to_string(dir().join("breast_cancer.model.json")).unwrap();
    let e = XgbBooster::from_json(&text.replace("binary:logistic", "rank:pairwise"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rank:pairwise") && e.contains("binary:logistic"),
        "{e}"
    );
    let e = XgbBooster::from_json(&text.replace(r#""name":"gbtree""#, r#""name":"dart""#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("dart"), "{e}");
    let m = XgbClassifier::from_json(&text).unwrap();
    let e = m
        .predict_clear(&Matrix::new(1, 30, vec![0.0; 30]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("call `compile` first"), "{e}");
}
