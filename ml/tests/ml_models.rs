//! Built-in models on the bundled datasets: the quantized integer program run by the
//! interpreter (Clear mode) must match the float model's accuracy, and the program's size
//! must stay within the bounds the designs promise.

use veil_ml::dataset::{self, Split};
use veil_ml::{
    accuracy, r2_score, CompileConfig, CompiledModel, DecisionTreeClassifier,
    DecisionTreeRegressor, FheClassifier, FheRegressor, LinearRegression, LinearSvc,
    LogisticRegression, Matrix, MlpClassifier, RandomForestClassifier, RandomForestRegressor,
};

fn split(d: dataset::Dataset) -> (Split, Vec<usize>, Vec<usize>) {
    let s = dataset::train_test_split(&d, 0.25, 0).unwrap();
    let (ytr, yte) = match (s.train.classes(), s.test.classes()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => (vec![], vec![]),
    };
    (s, ytr, yte)
}

fn breast_cancer() -> (Split, Vec<usize>, Vec<usize>) {
    split(dataset::breast_cancer().unwrap())
}

/// Checks that the program verifies and reports float vs clear accuracy; returns them.
fn check_classifier(
    name: &str,
    float_pred: Vec<usize>,
    clear_pred: Vec<usize>,
    y: &[usize],
    compiled: &CompiledModel,
) -> (f64, f64) {
    veil_ir::verify::verify(&compiled.graph).unwrap();
    let (af, ac) = (accuracy(&float_pred, y), accuracy(&clear_pred, y));
    eprintln!(
        "{name}: float {af:.4} clear {ac:.4} agree {:.4} stats {:?}",
        accuracy(&float_pred, &clear_pred),
        compiled.stats
    );
    assert!(
        (af - ac).abs() <= 0.01,
        "{name}: clear accuracy {ac} is more than 1 point from float {af}"
    );
    (af, ac)
}

#[test]
fn split_matches_sklearn_sizes() {
    let (s, ytr, yte) = breast_cancer();
    assert_eq!((s.train.len(), s.test.len()), (426, 143));
    assert_eq!(ytr.len() + yte.len(), 569);
    // Deterministic.
    let (s2, _, _) = breast_cancer();
    assert_eq!(s.test.y, s2.test.y);
}

#[test]
fn logistic_regression_breast_cancer() {
    let (s, ytr, yte) = breast_cancer();
    let mut m = LogisticRegression::new();
    m.fit(&s.train.x, &ytr).unwrap();
    let c = m
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "logreg",
        m.predict(&s.test.x).unwrap(),
        m.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.93, "float accuracy {af}");
    assert_eq!(c.stats.pbs_per_sample, 0);
    assert!(
        c.stats.output_bits <= 24,
        "accumulator {} bits",
        c.stats.output_bits
    );
    // Probabilities agree closely too.
    let pf = m.predict_proba(&s.test.x).unwrap();
    let pc = m.predict_proba_clear(&s.test.x).unwrap();
    // Mean error (the max is dominated by a test sample outside the training range, clipped).
    let err = pf
        .iter()
        .zip(&pc)
        .map(|(a, b)| (a[1] - b[1]).abs())
        .sum::<f64>()
        / pf.len() as f64;
    assert!(err < 0.01, "mean probability error {err}");
}

#[test]
fn linear_svc_breast_cancer() {
    let (s, ytr, yte) = breast_cancer();
    let mut m = LinearSvc::new();
    m.fit(&s.train.x, &ytr).unwrap();
    let c = m
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "svc",
        m.predict(&s.test.x).unwrap(),
        m.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.93, "float accuracy {af}");
}

#[test]
fn decision_tree_breast_cancer() {
    let (s, ytr, yte) = breast_cancer();
    let mut m = DecisionTreeClassifier::new().with_max_depth(5);
    m.fit(&s.train.x, &ytr).unwrap();
    let c = m
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "tree",
        m.predict(&s.test.x).unwrap(),
        m.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.88, "float accuracy {af}");
    let ens = m.ensemble().unwrap();
    let t = &ens.trees[0];
    let nodes = t.nodes.len() as u64;
    assert!(t.depth() <= 5);
    // Features go as their ranks among the tree's thresholds (at most 15 per feature in a
    // depth-5 tree, so at most 4 bits, sent whole): at most one bootstrap per node.
    let bins = c.client.bins.as_ref().expect("rank-encoded features");
    assert!(bins.bits() <= 4, "{} rank bits", bins.bits());
    assert_eq!(c.client.digit_bits, None);
    assert!(
        c.stats.pbs_per_sample <= nodes,
        "{} PBS for a tree of {nodes} nodes",
        c.stats.pbs_per_sample
    );
    assert!(c.stats.max_pbs_bits <= 4, "{:?}", c.stats);
    // The 6-bit features as two 3-bit digits (no ranks): more bootstraps, the same outputs.
    let digits = ens.compile(&CompileConfig::default()).unwrap();
    assert_eq!(digits.client.digit_bits, Some(3));
    assert!(digits.stats.pbs_per_sample > c.stats.pbs_per_sample);
    same_outputs("tree", &c, &digits, &probes(&s.test.x, &c));
    // By default the client sends the bit of each distinct comparison (it holds the split
    // points): the program bootstraps one leaf indicator per leaf and no comparison. Compared
    // in the program instead, the ranks cost one more bootstrap per comparison, with the same
    // outputs at every split point.
    let cmps = c.client.comparisons.as_ref().expect("comparison bits");
    assert_eq!(c.client.input_columns(), cmps.len());
    let leaves = t
        .nodes
        .iter()
        .filter(|n| matches!(n, veil_ml::cart::TreeNode::Leaf { .. }))
        .count() as u64;
    assert!(c.stats.pbs_per_sample <= leaves, "{:?}", c.stats);
    assert!(c.stats.max_pbs_bits <= 3, "{:?}", c.stats);
    let ranks = m
        .compile(
            &s.train.x,
            &CompileConfig {
                tree_comparison_inputs: false,
                ..CompileConfig::default()
            },
        )
        .unwrap()
        .clone();
    assert!(ranks.client.comparisons.is_none());
    assert_eq!(ranks.client.input_columns(), c.client.n_features);
    assert_eq!(
        ranks.stats.pbs_per_sample,
        c.stats.pbs_per_sample + cmps.len() as u64
    );
    same_outputs("tree", &c, &ranks, &probes(&s.test.x, &c));
}

/// `x` and, for every split point of the rank encoding, a copy of each row with the feature
/// exactly at, just below and just above it.
fn probes(x: &Matrix, c: &CompiledModel) -> Matrix {
    let bins = c.client.bins.as_ref().expect("rank-encoded features");
    let mut rows: Vec<Vec<f64>> = x.iter_rows().map(<[f64]>::to_vec).collect();
    for (f, edges) in bins.edges.iter().enumerate() {
        for (i, e) in edges.iter().enumerate() {
            for v in [e.value.next_down(), e.value, e.value.next_up()] {
                let mut r = x.row(i % x.rows()).to_vec();
                r[f] = v;
                rows.push(r);
            }
        }
    }
    Matrix::from_rows(&rows).unwrap()
}

/// The two programs decode to the same outputs on every row of `x` (interpreter).
fn same_outputs(name: &str, a: &CompiledModel, b: &CompiledModel, x: &Matrix) {
    let (ra, rb) = (
        a.run(x, &veil_ml::Interpreter).unwrap(),
        b.run(x, &veil_ml::Interpreter).unwrap(),
    );
    for (i, (p, q)) in ra.iter().zip(&rb).enumerate() {
        for (u, v) in p.iter().zip(q) {
            assert!((u - v).abs() < 1e-9, "{name}: row {i}: {p:?} vs {q:?}");
        }
    }
}

#[test]
fn random_forest_breast_cancer() {
    let (s, ytr, yte) = breast_cancer();
    let mut m = RandomForestClassifier::new();
    m.fit(&s.train.x, &ytr).unwrap();
    let c = m
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "forest",
        m.predict(&s.test.x).unwrap(),
        m.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.93, "float accuracy {af}");
    let nodes: usize = m
        .ensemble()
        .unwrap()
        .trees
        .iter()
        .map(|t| t.nodes.len())
        .sum();
    assert!(c.stats.pbs_per_sample <= nodes as u64, "{:?}", c.stats);
    // One lookup per leaf at most, less one per tree: a tree either drops a leaf whose value
    // quantizes to zero or computes one leaf's indicator from the others'.
    let leaves_less_one: usize = m
        .ensemble()
        .unwrap()
        .trees
        .iter()
        .map(|t| {
            t.nodes
                .iter()
                .filter(|n| matches!(n, veil_ml::cart::TreeNode::Leaf { .. }))
                .count()
                - 1
        })
        .sum();
    assert!(
        c.stats.pbs_per_sample <= leaves_less_one as u64,
        "{} PBS, {leaves_less_one} leaves less one per tree",
        c.stats.pbs_per_sample
    );
    let bins = c.client.bins.as_ref().expect("rank-encoded features");
    assert!(bins.bits() <= 6, "{} rank bits", bins.bits());
    // The same outputs as the 6-bit features sent as digits, at edges too.
    let ens = m.ensemble().unwrap();
    let digits = ens.compile(&CompileConfig::default()).unwrap();
    assert!(digits.stats.pbs_per_sample >= c.stats.pbs_per_sample);
    same_outputs("forest", &c, &digits, &probes(&s.test.x, &c));
    // Summing in FHE gives the same probabilities, in one output.
    let p_client = m.predict_proba_clear(&s.test.x).unwrap();
    let cfg = CompileConfig {
        sum_in_fhe: true,
        batch: 4,
        ..CompileConfig::default()
    };
    let c2 = m.compile(&s.train.x, &cfg).unwrap().clone();
    eprintln!("forest sum_in_fhe stats {:?}", c2.stats);
    assert_eq!(c2.stats.outputs_per_sample, 1);
    assert_eq!(c2.stats.pbs_per_sample, c.stats.pbs_per_sample);
    let p_fhe = m.predict_proba_clear(&s.test.x).unwrap();
    for (a, b) in p_client.iter().zip(&p_fhe) {
        assert!((a[1] - b[1]).abs() < 1e-12);
    }
}

#[test]
fn multiclass_on_iris() {
    let (s, ytr, yte) = split(dataset::iris().unwrap());
    let mut lr = LogisticRegression::new();
    lr.fit(&s.train.x, &ytr).unwrap();
    let c = lr
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    check_classifier(
        "iris logreg",
        lr.predict(&s.test.x).unwrap(),
        lr.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    let mut t = DecisionTreeClassifier::new().with_max_depth(4);
    t.fit(&s.train.x, &ytr).unwrap();
    let c = t
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "iris tree",
        t.predict(&s.test.x).unwrap(),
        t.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.9);
}

fn check_regressor(
    name: &str,
    pf: Vec<f64>,
    pc: Vec<f64>,
    y: &[f64],
    c: &CompiledModel,
) -> (f64, f64) {
    veil_ir::verify::verify(&c.graph).unwrap();
    let (rf, rc) = (r2_score(y, &pf), r2_score(y, &pc));
    eprintln!(
        "{name}: float R2 {rf:.4} clear R2 {rc:.4} stats {:?}",
        c.stats
    );
    assert!(
        (rf - rc).abs() <= 0.02,
        "{name}: clear R2 {rc} vs float {rf}"
    );
    (rf, rc)
}

#[test]
fn regressors_on_diabetes() {
    let (s, _, _) = split(dataset::diabetes().unwrap());
    let (x, y, xt, yt) = (&s.train.x, &s.train.y, &s.test.x, &s.test.y);
    let cfg = CompileConfig::default();
    let mut lr = LinearRegression::new();
    lr.fit(x, y).unwrap();
    let c = lr.compile(x, &cfg).unwrap().clone();
    let (r, _) = check_regressor(
        "linreg",
        lr.predict(xt).unwrap(),
        lr.predict_clear(xt).unwrap(),
        yt,
        &c,
    );
    assert!(r > 0.25);
    let mut t = DecisionTreeRegressor::new().with_max_depth(4);
    t.fit(x, y).unwrap();
    let c = t.compile(x, &cfg).unwrap().clone();
    check_regressor(
        "tree reg",
        t.predict(xt).unwrap(),
        t.predict_clear(xt).unwrap(),
        yt,
        &c,
    );
    let mut f = RandomForestRegressor::new().with_n_estimators(10);
    f.fit(x, y).unwrap();
    let c = f.compile(x, &cfg).unwrap().clone();
    let (r, _) = check_regressor(
        "forest reg",
        f.predict(xt).unwrap(),
        f.predict_clear(xt).unwrap(),
        yt,
        &c,
    );
    assert!(r > 0.25);
}

#[test]
fn errors_are_reported() {
    let (s, ytr, _) = breast_cancer();
    let m = LogisticRegression::new();
    let e = m.predict(&s.test.x).unwrap_err().to_string();
    assert!(e.contains("call `fit` first"), "{e}");
    let e = m.predict_clear(&s.test.x).unwrap_err().to_string();
    assert!(e.contains("call `compile` first"), "{e}");
    let mut m = DecisionTreeClassifier::new();
    let e = m.fit(&s.train.x, &ytr[1..]).unwrap_err().to_string();
    assert!(e.contains("426 rows but y has 425"), "{e}");
    m.fit(&s.train.x, &ytr).unwrap();
    let narrow = Matrix::new(1, 3, vec![0.0; 3]).unwrap();
    let e = m.predict(&narrow).unwrap_err().to_string();
    assert!(
        e.contains("3 features but the model was fitted on 30"),
        "{e}"
    );
    let zero = CompileConfig {
        rounding_bits: Some(0),
        ..CompileConfig::default()
    };
    let e = m.compile(&s.train.x, &zero).unwrap_err().to_string();
    assert!(e.contains("rounding_bits must be at least 1"), "{e}");
}

#[test]
fn datasets_have_their_shapes() {
    for (d, n, f, c) in [
        (dataset::breast_cancer().unwrap(), 569, 30, 2),
        (dataset::iris().unwrap(), 150, 4, 3),
        (dataset::digits().unwrap(), 1797, 64, 10),
    ] {
        assert_eq!((d.len(), d.x.cols()), (n, f), "{}", d.name);
        let classes = d.classes().unwrap();
        assert_eq!(classes.iter().max().unwrap() + 1, c, "{}", d.name);
    }
}

#[test]
fn batches_and_client_spec_round_trip() {
    let (s, ytr, _) = breast_cancer();
    let mut m = LogisticRegression::new();
    m.fit(&s.train.x, &ytr).unwrap();
    let p1 = {
        m.compile(&s.train.x, &CompileConfig::default()).unwrap();
        m.predict_proba_clear(&s.test.x).unwrap()
    };
    // 143 samples in batches of 8 (the last one padded) decode to the same probabilities.
    let cfg = CompileConfig {
        batch: 8,
        ..CompileConfig::default()
    };
    let c = m.compile(&s.train.x, &cfg).unwrap().clone();
    assert_eq!(m.predict_proba_clear(&s.test.x).unwrap(), p1);
    // The client spec and the program serialize.
    // (serde_json may round the last bit of a float: compare scales approximately.)
    let mut spec: veil_ml::ClientSpec =
        serde_json::from_str(&serde_json::to_string(&c.client).unwrap()).unwrap();
    let close = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-15 * x.abs())
    };
    assert!(close(&spec.input.scale, &c.client.input.scale));
    assert!(close(&spec.output.scale, &c.client.output.scale));
    spec.input.scale = c.client.input.scale.clone();
    spec.output.scale = c.client.output.scale.clone();
    assert_eq!(spec, c.client);
    let g: veil_ir::Graph =
        serde_json::from_str(&serde_json::to_string(&c.graph).unwrap()).unwrap();
    veil_ir::verify::verify(&g).unwrap();
}

#[test]
fn degenerate_trees_compile() {
    let (s, ytr, yte) = breast_cancer();
    // A depth-0 tree is a single leaf: no comparison, no leaf test, constant prediction.
    let mut t = DecisionTreeClassifier::new().with_max_depth(0);
    t.fit(&s.train.x, &ytr).unwrap();
    let c = t
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    assert_eq!(c.stats.pbs_per_sample, 0);
    check_classifier(
        "stump",
        t.predict(&s.test.x).unwrap(),
        t.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    // Leaves whose quantized value is 0 are skipped: with 1-bit leaf values a binary tree keeps
    // only its leaves that vote for class 1.
    let mut t = DecisionTreeClassifier::new().with_max_depth(3);
    t.fit(&s.train.x, &ytr).unwrap();
    let cfg = CompileConfig {
        n_bits: veil_ml::NBits {
            outputs: Some(1),
            ..Default::default()
        },
        tree_digit_bits: Some(0),
        ..CompileConfig::default()
    };
    let c = t.compile(&s.train.x, &cfg).unwrap().clone();
    let tree = &t.ensemble().unwrap().trees[0];
    assert!(c.stats.pbs_per_sample < tree.nodes.len() as u64);
    check_classifier(
        "1-bit leaves",
        t.predict(&s.test.x).unwrap(),
        t.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
}

#[test]
fn mlp_breast_cancer() {
    let (s, ytr, yte) = breast_cancer();
    let mut m = MlpClassifier::new();
    m.fit(&s.train.x, &ytr).unwrap();
    let c = m
        .compile(&s.train.x, &CompileConfig::default())
        .unwrap()
        .clone();
    let (af, _) = check_classifier(
        "mlp",
        m.predict(&s.test.x).unwrap(),
        m.predict_clear(&s.test.x).unwrap(),
        &yte,
        &c,
    );
    assert!(af > 0.9, "accuracy {af}");
    // The integer program computes the trained network exactly.
    assert_eq!(
        m.predict_clear(&s.test.x).unwrap(),
        m.predict(&s.test.x).unwrap()
    );
    // One bootstrap per hidden neuron; after calibration every one reads at most 6 bits.
    assert_eq!(c.stats.pbs_per_sample, 24);
    let inputset: Vec<Vec<veil_ir::Tensor<i64>>> = c
        .client
        .encode(&s.train.x)
        .unwrap()
        .into_iter()
        .map(|t| vec![t])
        .collect();
    let p = veil_compiler::program::compile(
        &c.graph,
        &inputset,
        &veil_compiler::program::CompileConfig::default(),
    )
    .unwrap();
    eprintln!(
        "mlp program: {} PBS {:?}",
        p.stats.pbs, p.stats.pbs_by_precision
    );
    assert!(
        p.stats.pbs_by_precision.keys().all(|&b| b <= 6),
        "{:?}",
        p.stats.pbs_by_precision
    );
}
