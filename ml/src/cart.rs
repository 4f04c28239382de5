//! CART decision trees grown on quantized (integer) features, so that every threshold is an
//! integer and the FHE comparison `x[f] <= t` is exact.
//!
//! Growth follows scikit-learn 1.5's best splitter exactly, so that a tree with
//! `random_state = s` is the tree scikit-learn grows with `random_state=s` on the same integer
//! data (the test `tests/ml_sklearn_trees.rs` checks it against trees exported by
//! `scripts/export_sklearn_trees.py`). Splits minimize the Gini impurity (classification) or
//! the squared error (regression) by an exhaustive search over the `2^n_bits` feature levels,
//! by histogram. Features are tried in scikit-learn's random order (it matters when several
//! features give the same split, as correlated features often do once quantized); among equal
//! scores the first tried wins, and within a feature the lowest cut. The threshold is the
//! midpoint `floor((a + b) / 2)` between the largest level `a` going left and the smallest
//! level `b` going right (scikit-learn's midpoint rule on integers).

use super::rng::Mt19937;
use serde::{Deserialize, Serialize};

/// One node of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TreeNode {
    /// Internal node: go to `left` if `x[feature] <= threshold`, else to `right`.
    Split {
        /// Feature index.
        feature: usize,
        /// Integer threshold on the quantized feature.
        threshold: i64,
        /// Index of the left child.
        left: usize,
        /// Index of the right child.
        right: usize,
    },
    /// Leaf: class fractions (classification) or `[mean]` (regression).
    Leaf {
        /// The leaf's output.
        value: Vec<f64>,
    },
}

/// A binary decision tree on quantized features; node 0 is the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; children always come after their parent.
    pub nodes: Vec<TreeNode>,
}

impl Tree {
    /// The leaf value reached by the quantized sample `xq`.
    pub fn leaf_value(&self, xq: &[i64]) -> &[f64] {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                TreeNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if xq[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
                TreeNode::Leaf { value } => return value,
            }
        }
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, TreeNode::Leaf { .. }))
            .count()
    }

    /// Depth (a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        fn go(t: &Tree, i: usize) -> usize {
            match &t.nodes[i] {
                TreeNode::Split { left, right, .. } => 1 + go(t, *left).max(go(t, *right)),
                TreeNode::Leaf { .. } => 0,
            }
        }
        go(self, 0)
    }

    /// Every leaf with the conditions on its path, leaves in depth-first order (left first).
    pub fn paths(&self) -> Vec<LeafPath> {
        let mut out = Vec::new();
        let mut stack = vec![(0usize, Vec::new())];
        while let Some((i, path)) = stack.pop() {
            match &self.nodes[i] {
                TreeNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    let cond = |went_left| Condition {
                        feature: *feature,
                        threshold: *threshold,
                        went_left,
                    };
                    let mut r = path.clone();
                    r.push(cond(false));
                    stack.push((*right, r));
                    let mut l = path;
                    l.push(cond(true));
                    stack.push((*left, l));
                }
                TreeNode::Leaf { .. } => out.push(LeafPath {
                    node: i,
                    conditions: path,
                }),
            }
        }
        out
    }
}

/// One test on the path to a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Feature index.
    pub feature: usize,
    /// Threshold: the test is `x[feature] <= threshold`.
    pub threshold: i64,
    /// Whether the path takes the left branch (the test holds).
    pub went_left: bool,
}

/// A leaf and the tests leading to it, root first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafPath {
    /// Node index of the leaf.
    pub node: usize,
    /// Tests from the root.
    pub conditions: Vec<Condition>,
}

/// Growth limits of a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Maximum depth (`None`: grow until pure or too small).
    pub max_depth: Option<usize>,
    /// Minimum samples to split a node (>= 2). On a bootstrap sample veil counts repeats and
    /// scikit-learn counts distinct rows; at the defaults (2 and 1) the trees are the same.
    pub min_samples_split: usize,
    /// Minimum samples in each leaf (>= 1), counted as `min_samples_split`.
    pub min_samples_leaf: usize,
    /// Features drawn at random per node, as scikit-learn's `max_features` (`None`: all, in
    /// scikit-learn's random order).
    pub max_features: Option<usize>,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: None,
        }
    }
}

/// Training targets.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Class indices `0..n_classes`.
    Classes(&'a [usize], usize),
    /// Real values.
    Values(&'a [f64]),
}

/// Training data: quantized features `xq` (`n x d` row-major, values in `0..levels`).
pub struct Data<'a> {
    /// Row-major quantized features.
    pub xq: &'a [i64],
    /// Features per row.
    pub d: usize,
    /// Number of levels of every feature (`2^n_bits`).
    pub levels: usize,
    /// Targets.
    pub target: Target<'a>,
}

/// Sufficient statistics of a set of samples: class counts, or `[count, sum, sum of squares]`.
fn stats_len(t: &Target) -> usize {
    match t {
        Target::Classes(_, c) => *c,
        Target::Values(_) => 3,
    }
}

fn add_sample(acc: &mut [f64], t: &Target, i: usize) {
    match t {
        Target::Classes(y, _) => acc[y[i]] += 1.0,
        Target::Values(y) => {
            acc[0] += 1.0;
            acc[1] += y[i];
            acc[2] += y[i] * y[i];
        }
    }
}

fn count(s: &[f64], t: &Target) -> f64 {
    match t {
        Target::Classes(..) => s.iter().sum(),
        Target::Values(_) => s[0],
    }
}

fn is_pure(s: &[f64], t: &Target) -> bool {
    match t {
        Target::Classes(..) => s.iter().filter(|&&c| c > 0.0).count() <= 1,
        Target::Values(_) => {
            let n = s[0];
            n == 0.0 || (s[2] - s[1] * s[1] / n).abs() <= 1e-12 * s[2].abs().max(1.0)
        }
    }
}

fn leaf_value(s: &[f64], t: &Target) -> Vec<f64> {
    let n = count(s, t).max(1.0);
    match t {
        Target::Classes(..) => s.iter().map(|c| c / n).collect(),
        Target::Values(_) => vec![s[1] / n],
    }
}

/// `RAND_R_MAX` of scikit-learn's tree module (`2^31 - 1`).
const RAND_R_MAX: u64 = (1 << 31) - 1;

/// The feature-drawing state of scikit-learn's best splitter for one tree
/// (`sklearn.tree._splitter`): the feature permutation it keeps across nodes, the constant
/// features found on the path from the root, and its 32-bit XorShift generator.
struct Splitter {
    features: Vec<usize>,
    constant: Vec<usize>,
    state: u32,
}

impl Splitter {
    /// The state of a tree built with `random_state = seed`: the XorShift seed is
    /// `RandomState(seed).randint(0, RAND_R_MAX)`.
    fn new(d: usize, seed: u32) -> Self {
        Splitter {
            features: (0..d).collect(),
            constant: vec![0; d],
            state: Mt19937::new(seed).interval(RAND_R_MAX - 1) as u32,
        }
    }

    /// A uniform integer in `lo..hi` (scikit-learn's `rand_int`, `our_rand_r`).
    fn rand_int(&mut self, lo: usize, hi: usize) -> usize {
        if self.state == 0 {
            self.state = 1;
        }
        let mut s = self.state;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        self.state = s;
        lo + (s % (1u32 << 31)) as usize % (hi - lo)
    }
}

/// scikit-learn's split score (`proxy_impurity_improvement`), computed as it does so that
/// exact ties resolve the same way: `-(n_r * gini_r) - n_l * gini_l` for classes,
/// `sum_l^2 / n_l + sum_r^2 / n_r` for values.
fn proxy(left: &[f64], right: &[f64], t: &Target) -> f64 {
    match t {
        Target::Classes(..) => {
            let gini = |s: &[f64]| {
                let n = count(s, t);
                let sq: f64 = s.iter().map(|c| c * c).sum();
                1.0 - sq / (n * n)
            };
            -count(right, t) * gini(right) - count(left, t) * gini(left)
        }
        Target::Values(_) => left[1] * left[1] / left[0] + right[1] * right[1] / right[0],
    }
}

/// Grows a tree on the samples `rows` (repeats allowed: a bootstrap sample) exactly as
/// scikit-learn 1.5's `DecisionTreeClassifier`/`DecisionTreeRegressor` with
/// `random_state = seed` (best splitter, depth first) grows it on the same integer data.
pub fn grow(data: &Data, rows: Vec<usize>, params: &TreeParams, seed: u32) -> Tree {
    let mut tree = Tree { nodes: Vec::new() };
    let mut splitter = Splitter::new(data.d, seed);
    build(data, rows, params, &mut splitter, 0, 0, &mut tree);
    tree
}

fn build(
    data: &Data,
    rows: Vec<usize>,
    params: &TreeParams,
    splitter: &mut Splitter,
    depth: usize,
    n_constant: usize,
    tree: &mut Tree,
) -> usize {
    let t = &data.target;
    let m = stats_len(t);
    let mut total = vec![0.0; m];
    for &i in &rows {
        add_sample(&mut total, t, i);
    }
    let me = tree.nodes.len();
    tree.nodes.push(TreeNode::Leaf {
        value: leaf_value(&total, t),
    });
    let stop = params.max_depth.is_some_and(|md| depth >= md)
        || rows.len() < params.min_samples_split.max(2)
        || rows.len() < 2 * params.min_samples_leaf.max(1)
        || is_pure(&total, t);
    if stop {
        return me;
    }
    let (best, n_constant) = best_split(data, &rows, &total, params, splitter, n_constant);
    let Some((feature, threshold)) = best else {
        return me;
    };
    let (l, r): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&i| data.xq[i * data.d + feature] <= threshold);
    let left = build(data, l, params, splitter, depth + 1, n_constant, tree);
    let right = build(data, r, params, splitter, depth + 1, n_constant, tree);
    tree.nodes[me] = TreeNode::Split {
        feature,
        threshold,
        left,
        right,
    };
    me
}

/// The best split of `rows` among the features scikit-learn's splitter draws (all of them, or
/// `max_features` at random, in its order; features constant on the node are skipped and
/// remembered for the subtree), and the number of constant features known below.
///
/// The first strictly best score wins, scanning features in draw order and cuts from low to
/// high. As in scikit-learn, a split is made whenever one exists, even if it does not improve
/// the criterion (it then changes no prediction).
fn best_split(
    data: &Data,
    rows: &[usize],
    total: &[f64],
    params: &TreeParams,
    sp: &mut Splitter,
    n_known: usize,
) -> (Option<(usize, i64)>, usize) {
    let t = &data.target;
    let m = stats_len(t);
    let max_features = params
        .max_features
        .unwrap_or(data.d)
        .clamp(1, data.d.max(1));
    let min_leaf = params.min_samples_leaf.max(1) as f64;
    let mut best: Option<(f64, usize, i64)> = None;
    let mut hist = vec![0.0; data.levels * m];
    // Invariant of scikit-learn's draw (positions in `sp.features`): [..n_drawn) known constant
    // and drawn, [n_drawn..n_known) known constant, [n_known..n_total) newly found constant,
    // [n_total..f_i) not drawn yet, [f_i..) drawn and evaluated.
    let (mut f_i, mut n_visited, mut n_found, mut n_drawn) = (data.d, 0, 0, 0);
    let mut n_total = n_known;
    while f_i > n_total && (n_visited < max_features || n_visited <= n_found + n_drawn) {
        n_visited += 1;
        let mut f_j = sp.rand_int(n_drawn, f_i - n_found);
        if f_j < n_known {
            sp.features.swap(n_drawn, f_j);
            n_drawn += 1;
            continue;
        }
        f_j += n_found;
        let f = sp.features[f_j];
        hist.iter_mut().for_each(|v| *v = 0.0);
        for &i in rows {
            let level = data.xq[i * data.d + f].clamp(0, data.levels as i64 - 1) as usize;
            add_sample(&mut hist[level * m..(level + 1) * m], t, i);
        }
        let occupied: Vec<usize> = (0..data.levels)
            .filter(|&l| count(&hist[l * m..(l + 1) * m], t) > 0.0)
            .collect();
        if occupied.len() < 2 {
            sp.features.swap(f_j, n_total);
            n_found += 1;
            n_total += 1;
            continue;
        }
        f_i -= 1;
        sp.features.swap(f_i, f_j);
        let mut left = vec![0.0; m];
        for w in occupied.windows(2) {
            let (a, b) = (w[0], w[1]);
            for (x, h) in left.iter_mut().zip(&hist[a * m..(a + 1) * m]) {
                *x += h;
            }
            let right: Vec<f64> = total.iter().zip(&left).map(|(p, l)| p - l).collect();
            if count(&left, t) < min_leaf || count(&right, t) < min_leaf {
                continue;
            }
            let score = proxy(&left, &right, t);
            if best.is_none_or(|(s, _, _)| score > s) {
                best = Some((score, f, ((a + b) / 2) as i64));
            }
        }
    }
    // Siblings and descendants see the known constants in their original order, plus the
    // ones found here.
    sp.features[..n_known].copy_from_slice(&sp.constant[..n_known]);
    sp.constant[n_known..n_total].copy_from_slice(&sp.features[n_known..n_total]);
    (best.map(|(_, f, thr)| (f, thr)), n_total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data<'a>(xq: &'a [i64], d: usize, target: Target<'a>) -> Data<'a> {
        Data {
            xq,
            d,
            levels: 8,
            target,
        }
    }

    #[test]
    fn finds_the_separating_feature_and_midpoint() {
        // Feature 1 separates the classes between levels 2 and 6 (midpoint 4); feature 0 is
        // noise.
        let xq = [0, 1, 3, 2, 1, 6, 2, 7, 0, 0, 3, 7];
        let y = [0, 0, 1, 1, 0, 1];
        let d = data(&xq, 2, Target::Classes(&y, 2));
        let t = grow(&d, (0..6).collect(), &TreeParams::default(), 0);
        assert_eq!(
            t.nodes[0],
            TreeNode::Split {
                feature: 1,
                threshold: 4,
                left: 1,
                right: 2
            }
        );
        assert_eq!((t.n_leaves(), t.depth()), (2, 1));
        assert_eq!(t.leaf_value(&[0, 4]), &[1.0, 0.0]);
        assert_eq!(t.leaf_value(&[0, 5]), &[0.0, 1.0]);
        let paths = t.paths();
        assert_eq!(paths.len(), 2);
        assert!(paths[0].conditions[0].went_left && !paths[1].conditions[0].went_left);
    }

    #[test]
    fn regression_splits_and_limits() {
        let xq = [0, 1, 2, 3, 4, 5, 6, 7];
        let y = [1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 9.0, 9.0];
        let d = data(&xq, 1, Target::Values(&y));
        let full = grow(&d, (0..8).collect(), &TreeParams::default(), 0);
        assert_eq!(full.n_leaves(), 3);
        for (x, want) in [(2, 1.0), (4, 5.0), (7, 9.0)] {
            assert_eq!(full.leaf_value(&[x]), &[want]);
        }
        let stump = TreeParams {
            max_depth: Some(1),
            ..TreeParams::default()
        };
        let t = grow(&d, (0..8).collect(), &stump, 0);
        assert_eq!((t.n_leaves(), t.depth()), (2, 1));
        let leafy = TreeParams {
            min_samples_leaf: 3,
            ..TreeParams::default()
        };
        let t = grow(&d, (0..8).collect(), &leafy, 0);
        assert!(t.n_leaves() <= 2);
    }
}
