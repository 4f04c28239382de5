//! veil's native trees are scikit-learn's: for the same integer data and `random_state`, the
//! grown trees match node for node those scikit-learn 1.5.2 grows (exported by
//! `scripts/export_sklearn_trees.py` into `fixtures/sklearn/trees_breast_cancer.json`).

use serde::Deserialize;
use veil_ml::cart::{grow, Data, Target, Tree, TreeNode, TreeParams};
use veil_ml::{dataset, DecisionTreeClassifier, RandomForestClassifier};

#[derive(Deserialize)]
struct Fixture {
    n_bits: u8,
    xq: Vec<Vec<i64>>,
    y: Vec<usize>,
    classifiers: Vec<Grown>,
    regressor: Grown,
    forest: Forest,
}

#[derive(Deserialize)]
struct Grown {
    random_state: u32,
    max_depth: usize,
    nodes: Vec<[i64; 2]>,
}

#[derive(Deserialize)]
struct Forest {
    random_state: u32,
    max_depth: usize,
    max_features: usize,
    trees: Vec<Vec<[i64; 2]>>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/sklearn/trees_breast_cancer.json")).unwrap()
}

/// The tree's nodes in preorder as the fixture writes them: `[feature, threshold]` or
/// `[-1, -1]` for a leaf.
fn preorder(t: &Tree) -> Vec<[i64; 2]> {
    t.nodes
        .iter()
        .map(|n| match n {
            TreeNode::Split {
                feature, threshold, ..
            } => [*feature as i64, *threshold],
            TreeNode::Leaf { .. } => [-1, -1],
        })
        .collect()
}

fn check(name: &str, got: &Tree, want: &[[i64; 2]]) {
    let got = preorder(got);
    assert_eq!(
        got, want,
        "{name}: veil's tree differs from scikit-learn's (preorder [feature, threshold])"
    );
}

fn depth(max_depth: usize) -> TreeParams {
    TreeParams {
        max_depth: Some(max_depth),
        ..TreeParams::default()
    }
}

#[test]
fn decision_trees_equal_sklearn_for_each_random_state() {
    let fx = fixture();
    let xq: Vec<i64> = fx.xq.concat();
    let data = Data {
        xq: &xq,
        d: fx.xq[0].len(),
        levels: 1 << fx.n_bits,
        target: Target::Classes(&fx.y, 2),
    };
    assert_eq!(fx.classifiers.len(), 5);
    for c in &fx.classifiers {
        let t = grow(
            &data,
            (0..fx.y.len()).collect(),
            &depth(c.max_depth),
            c.random_state,
        );
        check(
            &format!("classifier random_state={}", c.random_state),
            &t,
            &c.nodes,
        );
    }
    let values: Vec<f64> = fx.y.iter().map(|&v| v as f64).collect();
    let data = Data {
        target: Target::Values(&values),
        ..data
    };
    let r = &fx.regressor;
    let t = grow(
        &data,
        (0..fx.y.len()).collect(),
        &depth(r.max_depth),
        r.random_state,
    );
    check("regressor", &t, &r.nodes);
}

#[test]
fn forest_trees_equal_sklearn() {
    let fx = fixture();
    let x = veil_ml::Matrix::from_rows(
        &fx.xq
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect::<Vec<Vec<f64>>>(),
    )
    .unwrap();
    let f = &fx.forest;
    let mut m = RandomForestClassifier::new()
        .with_n_estimators(f.trees.len())
        .with_max_depth(f.max_depth)
        .with_n_bits(fx.n_bits)
        .with_random_state(f.random_state);
    m.params.max_features = Some(f.max_features);
    // Every feature of the fixture spans 0..=63, so the forest's 6-bit quantizer is the
    // identity on it and the trees grow on the fixture's integers.
    m.fit(&x, &fx.y).unwrap();
    let e = m.ensemble().unwrap();
    assert_eq!(e.input.quantize_all(x.data(), x.cols()), fx.xq.concat());
    for (i, (t, want)) in e.trees.iter().zip(&f.trees).enumerate() {
        check(&format!("forest tree {i}"), t, want);
    }
}

/// The public API on the raw data quantizes as the fixture (Concrete ML's per-feature 6-bit
/// quantizer), and `DecisionTreeClassifier` with `random_state` 0 grows scikit-learn's tree.
#[test]
fn decision_tree_classifier_is_sklearn_tree() {
    let fx = fixture();
    let data = dataset::breast_cancer().unwrap();
    let s = dataset::train_test_split(&data, 0.25, 0).unwrap();
    let y = s.train.classes().unwrap();
    assert_eq!(y, fx.y, "the train split differs from scikit-learn's");
    let mut m = DecisionTreeClassifier::new()
        .with_max_depth(5)
        .with_n_bits(fx.n_bits);
    m.fit(&s.train.x, &y).unwrap();
    let e = m.ensemble().unwrap();
    let xq = e.input.quantize_all(s.train.x.data(), s.train.x.cols());
    // smartcore ships the data as f32, scikit-learn as f64: 2 of the 12780 values sit on a
    // rounding boundary and land one level apart; the tree is the same.
    let want = fx.xq.concat();
    let diff = xq.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert!(
        diff <= 2,
        "{diff} quantized training values differ from the fixture's"
    );
    check(
        "DecisionTreeClassifier",
        &e.trees[0],
        &fx.classifiers[0].nodes,
    );
}
