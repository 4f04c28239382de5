//! ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (scikit-learn trees and forests,
//! XGBoost, LightGBM exports), compiled with the `ml` module's tree program
//! ([`crate::hummingbird`]).
//!
//! The trees are parsed into a [`TreeModel`] (float thresholds, see [`crate::float_tree`]
//! for how they are quantized); base values and the post-transform are applied by the client.

use super::super::attrs::{post_transform, Attrs};
use super::super::error::OnnxResult;
use super::super::graph::{Binary, FNode, FOp, FTensor};
use super::arg;
use crate::model::CompiledModel;
use crate::quantize::{FeatureBins, UniformQuantizer};
use std::collections::HashMap;

pub use crate::float_tree::{Cmp, ONode, OTree, TreeModel};

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

/// Compiles the trees for inputs quantized by `input` (per feature, unsigned), or for
/// features sent as their ranks among `bins` (the trees then compare ranks; with
/// `comparison_inputs`, the client sends the comparisons' bits instead:
/// [`TreeModel::compile_ranked`]); the program's output decodes to the raw target sums.
pub fn compile(
    n: &FNode,
    m: &TreeModel,
    input: Result<&UniformQuantizer, (FeatureBins, bool)>,
    d: usize,
    leaf_bits: Option<u8>,
    batch: usize,
) -> OnnxResult<CompiledModel> {
    if m.trees.is_empty() {
        return Err(n.err("no trees"));
    }
    let cfg = crate::CompileConfig {
        batch,
        tree_comparison_inputs: matches!(input, Err((_, true))),
        ..crate::CompileConfig::default()
    };
    Ok(match input {
        Ok(q) => m.compile(q, d, leaf_bits, &cfg)?,
        Err((bins, _)) => m.compile_ranked(bins, d, leaf_bits, &cfg)?,
    })
}
