//! ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (scikit-learn trees and forests,
//! XGBoost, LightGBM exports), compiled with the `ml` module's tree program
//! ([`crate::ml::hummingbird`]).
//!
//! Float thresholds become integer thresholds on the quantized features
//! (`x <= t`  ->  `q <= round(t / s + z - 1/2)`, the nearest quantization boundary), and the
//! leaf weights — any sign, one or several targets — are normalized per target to `[0, 1]`
//! so that they quantize like class fractions; the client decoder undoes the normalization
//! (`sum_trees w = (hi - lo) * sum_trees w' + T * lo`). Base values and the post-transform are
//! applied by the client.

use super::super::error::{OnnxError, OnnxResult};
use super::super::graph::{Binary, FNode, FOp, FTensor};
use super::super::load::{post_transform, Attrs};
use super::arg;
use crate::ml::cart::{Tree, TreeNode};
use crate::ml::hummingbird::{TreeEnsemble, TreeKind};
use crate::ml::model::{CompileConfig, CompiledModel, NBits, PostProcess};
use crate::ml::quantize::UniformQuantizer;
use std::collections::HashMap;

/// Branch comparison of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `x <= t` goes to the true child.
    Leq,
    /// `x < t`.
    Lt,
    /// `x >= t`.
    Gte,
    /// `x > t`.
    Gt,
}

/// A node of an [`OTree`].
#[derive(Clone, Debug, PartialEq)]
pub enum ONode {
    /// Goes to `yes` when `x[feature] cmp threshold`, else to `no`.
    Branch {
        /// Feature index.
        feature: usize,
        /// Float threshold.
        threshold: f64,
        /// Comparison.
        cmp: Cmp,
        /// Child when true.
        yes: usize,
        /// Child when false.
        no: usize,
    },
    /// Adds `weight` to each `target`.
    Leaf {
        /// `(target, weight)` pairs.
        weights: Vec<(usize, f64)>,
    },
}

/// One tree, root first, children after their parent.
#[derive(Clone, Debug, PartialEq)]
pub struct OTree {
    /// Nodes.
    pub nodes: Vec<ONode>,
}

/// A tree ensemble as read from ONNX: the raw (summed or averaged) leaf weights per target.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeModel {
    /// Trees.
    pub trees: Vec<OTree>,
    /// Number of targets (classes or regression targets).
    pub n_targets: usize,
    /// `AVERAGE` aggregation (else `SUM`).
    pub average: bool,
}

impl TreeModel {
    /// Largest feature index used, plus one.
    pub fn n_features(&self) -> usize {
        self.trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter_map(|n| match n {
                ONode::Branch { feature, .. } => Some(feature + 1),
                ONode::Leaf { .. } => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Raw target values of one sample.
    pub fn predict_row(&self, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n_targets];
        for t in &self.trees {
            let mut i = 0;
            loop {
                match &t.nodes[i] {
                    ONode::Branch {
                        feature,
                        threshold,
                        cmp,
                        yes,
                        no,
                    } => {
                        let v = x[*feature];
                        let go = match cmp {
                            Cmp::Leq => v <= *threshold,
                            Cmp::Lt => v < *threshold,
                            Cmp::Gte => v >= *threshold,
                            Cmp::Gt => v > *threshold,
                        };
                        i = if go { *yes } else { *no };
                    }
                    ONode::Leaf { weights } => {
                        for &(k, w) in weights {
                            out[k] += w;
                        }
                        break;
                    }
                }
            }
        }
        if self.average {
            let n = self.trees.len().max(1) as f64;
            out.iter_mut().for_each(|v| *v /= n);
        }
        out
    }
}

fn parse_trees(a: &Attrs, prefix: &str, n_targets: usize) -> OnnxResult<TreeModel> {
    let tree_ids = a.ints("nodes_treeids");
    let node_ids = a.ints("nodes_nodeids");
    let features = a.ints("nodes_featureids");
    let values = a.floats("nodes_values")?;
    let modes = a.strings("nodes_modes");
    let yes = a.ints("nodes_truenodeids");
    let no = a.ints("nodes_falsenodeids");
    let n = tree_ids.len();
    if n == 0 {
        return Err(a.err("no tree nodes (nodes_treeids is empty)"));
    }
    for (what, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_values", values.len()),
        ("nodes_modes", modes.len()),
        ("nodes_truenodeids", yes.len()),
        ("nodes_falsenodeids", no.len()),
    ] {
        if len != n {
            return Err(a.err(format!("{what} has {len} entries, nodes_treeids has {n}")));
        }
    }
    let l_tree = a.ints(&format!("{prefix}_treeids"));
    let l_node = a.ints(&format!("{prefix}_nodeids"));
    let l_id = a.ints(&format!("{prefix}_ids"));
    let l_w = a.floats(&format!("{prefix}_weights"))?;
    if l_node.len() != l_tree.len() || l_id.len() != l_tree.len() || l_w.len() != l_tree.len() {
        return Err(a.err(format!("the {prefix}_* attributes have different lengths")));
    }
    let mut leaf_w: HashMap<(i64, i64), Vec<(usize, f64)>> = HashMap::new();
    for i in 0..l_tree.len() {
        let t = l_id[i];
        if t < 0 || t as usize >= n_targets {
            return Err(a.err(format!(
                "{prefix}_ids entry {t} is out of range for {n_targets} targets"
            )));
        }
        leaf_w
            .entry((l_tree[i], l_node[i]))
            .or_default()
            .push((t as usize, l_w[i]));
    }
    // Index every (tree, node).
    let mut index: HashMap<(i64, i64), usize> = HashMap::new();
    for i in 0..n {
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return Err(a.err(format!(
                "node {} of tree {} is defined twice",
                node_ids[i], tree_ids[i]
            )));
        }
    }
    let mut order: Vec<i64> = tree_ids.clone();
    order.sort_unstable();
    order.dedup();
    let mut trees = Vec::with_capacity(order.len());
    for &tid in &order {
        let members: Vec<usize> = (0..n).filter(|&i| tree_ids[i] == tid).collect();
        let children: std::collections::HashSet<i64> = members
            .iter()
            .filter(|&&i| modes[i] != "LEAF")
            .flat_map(|&i| [yes[i], no[i]])
            .collect();
        let roots: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| !children.contains(&node_ids[i]))
            .collect();
        if roots.len() != 1 {
            return Err(a.err(format!(
                "tree {tid} has {} roots; expected exactly one",
                roots.len()
            )));
        }
        let mut nodes: Vec<ONode> = Vec::new();
        // Depth-first preorder: (onnx index, slot to patch in the parent).
        let mut stack = vec![(roots[0], None::<(usize, bool)>)];
        while let Some((i, parent)) = stack.pop() {
            if nodes.len() > members.len() {
                return Err(a.err(format!("tree {tid} has a cycle")));
            }
            let me = nodes.len();
            if let Some((p, is_yes)) = parent {
                if let ONode::Branch { yes, no, .. } = &mut nodes[p] {
                    *(if is_yes { yes } else { no }) = me;
                }
            }
            let cmp = match modes[i].as_str() {
                "LEAF" => {
                    nodes.push(ONode::Leaf { weights: leaf_w.remove(&(tid, node_ids[i])).unwrap_or_default() });
                    continue;
                }
                "BRANCH_LEQ" => Cmp::Leq,
                "BRANCH_LT" => Cmp::Lt,
                "BRANCH_GTE" => Cmp::Gte,
                "BRANCH_GT" => Cmp::Gt,
                m => return Err(a.unsupported(format!("node mode {m} is not supported (BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT and LEAF are)"))),
            };
            if features[i] < 0 {
                return Err(a.err(format!("negative feature index {}", features[i])));
            }
            nodes.push(ONode::Branch {
                feature: features[i] as usize,
                threshold: values[i],
                cmp,
                yes: 0,
                no: 0,
            });
            let child = |id: i64| {
                index
                    .get(&(tid, id))
                    .copied()
                    .ok_or_else(|| a.err(format!("tree {tid}: child node {id} does not exist")))
            };
            stack.push((child(no[i])?, Some((me, false))));
            stack.push((child(yes[i])?, Some((me, true))));
        }
        trees.push(OTree { nodes });
    }
    let average = match a.string("aggregate_function").as_deref().unwrap_or("SUM") {
        "SUM" => false,
        "AVERAGE" => true,
        f => {
            return Err(a.unsupported(format!(
                "aggregate_function = {f} is not supported (SUM and AVERAGE are)"
            )))
        }
    };
    Ok(TreeModel {
        trees,
        n_targets,
        average,
    })
}

fn base_values(a: &Attrs, n: usize) -> OnnxResult<Vec<f64>> {
    let b = a.floats("base_values")?;
    match b.len() {
        0 => Ok(vec![0.0; n]),
        l if l == n => Ok(b),
        l => Err(a.err(format!("{l} base values for {n} targets"))),
    }
}

/// `TreeEnsembleClassifier`: server-side raw scores, client-side head.
pub fn parse_classifier(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let mut labels = a.ints("classlabels_int64s");
    if labels.is_empty() {
        labels = a.ints("classlabels_ints");
    }
    if labels.is_empty() {
        return Err(if a.strings("classlabels_strings").is_empty() {
            a.err("no class labels (classlabels_int64s)")
        } else {
            a.unsupported("string class labels are not supported: train (or export) the classifier with integer labels")
        });
    }
    let ids = a.ints("class_ids");
    let distinct: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    let binary_single = labels.len() == 2 && distinct.len() == 1;
    let n_targets = if binary_single { 1 } else { labels.len() };
    let mut model = parse_trees(a, "class", if binary_single { 2 } else { n_targets })?;
    if binary_single {
        // The single target may be labelled 0 or 1: map it to target 0.
        for t in &mut model.trees {
            for nd in &mut t.nodes {
                if let ONode::Leaf { weights } = nd {
                    weights.iter_mut().for_each(|w| w.0 = 0);
                }
            }
        }
        model.n_targets = 1;
    }
    let binary = if !binary_single {
        Binary::No
    } else if a.floats("class_weights")?.iter().all(|&w| w >= 0.0) {
        Binary::Probability
    } else {
        Binary::Margin
    };
    let scores = format!("{}/scores", a.name);
    let mut trees = a.node(FOp::Trees(Box::new(model)));
    trees.inputs.truncate(1);
    trees.outputs = vec![scores.clone()];
    let mut head = a.node(FOp::ClassifierPost {
        base: base_values(a, n_targets)?,
        binary,
        post: post_transform(a)?,
        labels,
    });
    head.inputs = vec![Some(scores)];
    Ok(vec![trees, head])
}

/// `TreeEnsembleRegressor`: server-side raw sums, client-side base values and post-transform.
pub fn parse_regressor(a: &Attrs) -> OnnxResult<Vec<FNode>> {
    let n_targets = a.int_or("n_targets", 1).max(1) as usize;
    let model = parse_trees(a, "target", n_targets)?;
    let scores = format!("{}/scores", a.name);
    let mut trees = a.node(FOp::Trees(Box::new(model)));
    trees.inputs.truncate(1);
    trees.outputs = vec![scores.clone()];
    let mut head = a.node(FOp::RegressorPost {
        base: base_values(a, n_targets)?,
        post: post_transform(a)?,
    });
    head.inputs = vec![Some(scores)];
    Ok(vec![trees, head])
}

/// Float evaluation of the raw tree sums.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let x = arg(n, ins, 0)?;
    let FOp::Trees(m) = &n.op else {
        unreachable!("not a tree op")
    };
    let (r, d) = match x.shape.as_slice() {
        [r, d] => (*r, *d),
        s => {
            return Err(n.err(format!(
                "input of shape {s:?}: tree ensembles need [batch, features]"
            )))
        }
    };
    if m.n_features() > d {
        return Err(n.err(format!(
            "the trees use feature {} but the input has {d} features",
            m.n_features() - 1
        )));
    }
    let mut out = Vec::with_capacity(r * m.n_targets);
    for i in 0..r {
        out.extend(m.predict_row(&x.data[i * d..(i + 1) * d]));
    }
    Ok(vec![FTensor::new(vec![r, m.n_targets], out).expect("2-D")])
}

/// Compiles the trees for inputs quantized by `input` (per feature, unsigned); the program's
/// output decodes to the raw target sums.
pub fn compile(
    n: &FNode,
    m: &TreeModel,
    input: &UniformQuantizer,
    d: usize,
    leaf_bits: u8,
    batch: usize,
) -> OnnxResult<CompiledModel> {
    if m.average && m.n_targets > 0 && m.trees.is_empty() {
        return Err(n.err("no trees"));
    }
    let t = m.n_targets;
    let mut lo = vec![0.0f64; t];
    let mut hi = vec![0.0f64; t];
    let leaf_vec = |weights: &[(usize, f64)]| -> Vec<f64> {
        let mut v = vec![0.0; t];
        for &(k, w) in weights {
            v[k] += w;
        }
        v
    };
    for tr in &m.trees {
        for nd in &tr.nodes {
            if let ONode::Leaf { weights } = nd {
                for (k, v) in leaf_vec(weights).into_iter().enumerate() {
                    lo[k] = lo[k].min(v);
                    hi[k] = hi[k].max(v);
                }
            }
        }
    }
    let span: Vec<f64> = (0..t)
        .map(|k| if hi[k] > lo[k] { hi[k] - lo[k] } else { 1.0 })
        .collect();
    // The ml tree program special-cases two classes; a third, all-zero column avoids it.
    let width = if t == 2 { 3 } else { t };
    let thr = |f: usize, x: f64, strict: bool| -> i64 {
        let c = f % input.channels();
        let u = x / input.scale[c] + input.zero_point[c] as f64;
        let v = (u - 0.5).round();
        // `x < t` at an exact boundary excludes it.
        if strict && (u - 0.5 - v).abs() < 1e-12 {
            v as i64 - 1
        } else {
            v as i64
        }
    };
    let trees = m
        .trees
        .iter()
        .map(|tr| Tree {
            nodes: tr
                .nodes
                .iter()
                .map(|nd| match nd {
                    ONode::Branch {
                        feature,
                        threshold,
                        cmp,
                        yes,
                        no,
                    } => {
                        let (threshold, left, right) = match cmp {
                            Cmp::Leq => (thr(*feature, *threshold, false), *yes, *no),
                            Cmp::Lt => (thr(*feature, *threshold, true), *yes, *no),
                            Cmp::Gt => (thr(*feature, *threshold, false), *no, *yes),
                            Cmp::Gte => (thr(*feature, *threshold, true), *no, *yes),
                        };
                        TreeNode::Split {
                            feature: *feature,
                            threshold,
                            left,
                            right,
                        }
                    }
                    ONode::Leaf { weights } => {
                        let v = leaf_vec(weights);
                        let mut norm: Vec<f64> = (0..t).map(|k| (v[k] - lo[k]) / span[k]).collect();
                        norm.resize(width, 0.0);
                        TreeNode::Leaf { value: norm }
                    }
                })
                .collect(),
        })
        .collect();
    let ens = TreeEnsemble {
        input: input.clone(),
        trees,
        n_features: d,
        kind: TreeKind::Classifier { n_classes: width },
    };
    let cfg = CompileConfig {
        n_bits: NBits {
            inputs: Some(input.n_bits),
            weights: None,
            activations: None,
            outputs: Some(leaf_bits),
        },
        batch,
        sum_in_fhe: false,
        ..CompileConfig::default()
    };
    let mut cm = ens.compile(&cfg)?;
    let out = &mut cm.client.output;
    if out.values != width || out.post != PostProcess::Identity {
        return Err(OnnxError::Malformed(format!(
            "node `{}`: unexpected tree program decoder ({} values, {:?})",
            n.name, out.values, out.post
        )));
    }
    // Undo the normalization: value_k = span_k * sum(q)/levels + T * lo_k (averaged if needed).
    let levels = ((1u64 << leaf_bits) - 1) as f64;
    let n_trees = m.trees.len() as f64;
    let div = if m.average { n_trees } else { 1.0 };
    for k in 0..width {
        let (s, l) = if k < t { (span[k], lo[k]) } else { (0.0, 0.0) };
        let scale = s / levels / div;
        out.scale[k] = scale;
        out.zero[k] = if scale > 0.0 {
            -(n_trees * l / div / scale).round() as i64
        } else {
            0
        };
    }
    Ok(cm)
}
