//! Tree ensembles as tensor programs (Hummingbird's GEMM strategy), with as few and as narrow
//! bootstraps as possible.
//!
//! For an input `x` `[b, d]` of `n`-bit quantized features:
//!
//! 1. `sel = x @ S`: a clear one-hot matrix `S` `[d, K]` picks the feature of each of the `K`
//!    *distinct* `(feature, threshold)` comparisons of the whole ensemble (levelled, free);
//! 2. `c = tlu.multi(sel)`: `c_k = [sel_k <= t_k]`, one `n`-bit PBS per comparison (one table
//!    per distinct threshold);
//! 3. `cnt = D - c @ P`: `P` `[K, L]` has `+1` where leaf `l` needs comparison `k` true, `-1`
//!    where it needs it false (levelled, as a 1x1 convolution with bias `D`); `(c @ P)_l`
//!    reaches its maximum `D_l` (the number of "true" conditions on the path) exactly for the
//!    leaf the sample falls in, so `cnt_l` lies in `[0, depth_l]` and is 0 there;
//! 4. `e = tlu.multi(cnt)`: `e_l = [cnt_l == 0]`, one PBS per leaf on a narrow unsigned value
//!    (`log2(depth + 1)` bits, rounded up: 3 bits up to depth 7);
//! 5. `out = e @ V`: quantized leaf values (levelled). `V` is stacked (the sum over trees is
//!    computed in FHE) or block-diagonal (per-tree outputs, summed by the client).
//!
//! **Comparison bits.** When features go as their ranks among the split points
//! ([`TreeEnsemble::compile_ranked`]: the client holds the split points), the client sends the
//! bit `[rank_f <= j]` of every distinct comparison instead ([`ClientSpec::comparisons`]):
//! steps 1 and 2 happen on the client, and the program bootstraps the leaf indicators only,
//! on levelled sums of the fresh inputs.
//!
//! **References.** Exactly one leaf per tree is on, so in a tree whose leaves are all kept
//! (outputs summed by the client, the default) one leaf (its reference) gets no lookup: its values go into the bias of step 5 (a 1x1
//! convolution then) and the other leaves' values become differences to them. A tree costs
//! one lookup per leaf less one.
//!
//! Leaves whose quantized value is zero contribute nothing to `out`, so they get no column,
//! and comparisons that no remaining leaf needs are dropped: the program costs
//! `K_used + L_nonzero <= internal nodes + leaves` PBS per sample.
//!
//! **Digits.** A comparison bootstraps a value as wide as the features (6 bits by default),
//! and a 6-bit bootstrap costs several times a 4-bit one. Features wider than
//! [`MAX_UNSPLIT_BITS`] are therefore sent by the client as two digits `x = h * 2^db + l`
//! (see [`CompileConfig::tree_digit_bits`], [`ClientSpec::digit_bits`]), and step 2 becomes
//! two narrow lookups: `e = tlu(l <= t_l)` (one per distinct feature and low threshold) and
//! `c = tlu(2 h + e)` (`h < t_h`, or `h == t_h` and `e`; one per comparison, `db + 1` bits).
//! Leaf values then default to 4 bits, so that the whole program runs at 4 bits.

use super::cart::{Condition, LeafPath, Tree, TreeNode};
use super::error::{MlError, MlResult};
use super::model::{ClientSpec, CompileConfig, CompiledModel, OutputDecoder, PostProcess};
use super::quantize::{last_float_where, BinEdge, FeatureBins, UniformQuantizer};
use std::collections::BTreeMap;
use veil_ir::builder::Builder;

/// A leaf kept in the program: its tree, quantized values and path.
struct Kept<'a> {
    tree: usize,
    q: Vec<i64>,
    path: &'a [Condition],
}

/// What the trees predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TreeKind {
    /// Classification; leaves hold class fractions.
    Classifier {
        /// Number of classes.
        n_classes: usize,
    },
    /// Regression; leaves hold `[mean]`.
    Regressor,
}

/// Fitted trees on features quantized by `input`; the prediction is the average of the trees.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TreeEnsemble {
    /// Per-feature unsigned input quantizer (fixed at fit: thresholds are in its units).
    pub input: UniformQuantizer,
    /// The trees.
    pub trees: Vec<Tree>,
    /// Features per sample.
    pub n_features: usize,
    /// Classification or regression.
    pub kind: TreeKind,
}

impl TreeEnsemble {
    /// Average leaf value of the trees for each row of `x` (class fractions or `[value]`).
    pub fn predict_raw(&self, x: &super::Matrix) -> MlResult<Vec<Vec<f64>>> {
        x.expect_cols(self.n_features, "predict")?;
        let t = self.trees.len() as f64;
        Ok(x.iter_rows()
            .map(|r| {
                let xq = self.input.quantize_all(r, self.n_features);
                let mut acc: Vec<f64> = Vec::new();
                for tree in &self.trees {
                    let v = tree.leaf_value(&xq);
                    if acc.is_empty() {
                        acc = vec![0.0; v.len()];
                    }
                    for (a, b) in acc.iter_mut().zip(v) {
                        *a += b / t;
                    }
                }
                acc
            })
            .collect())
    }

    /// Values per leaf kept in the program: `p(class 1)` for binary classification, all class
    /// fractions otherwise, `[value]` for regression.
    fn outputs(&self) -> usize {
        match self.kind {
            TreeKind::Classifier { n_classes: 2 } | TreeKind::Regressor => 1,
            TreeKind::Classifier { n_classes } => n_classes,
        }
    }

    fn leaf_outputs(&self, v: &[f64]) -> Vec<f64> {
        match self.kind {
            TreeKind::Classifier { n_classes: 2 } => vec![v[1]],
            _ => v.to_vec(),
        }
    }

    /// Rank encoding ([`FeatureBins`]) of the quantized features: each split `q(x_f) <= t` on
    /// the quantized feature becomes the float edge `x_f <= e`, `e` the largest float that
    /// [`UniformQuantizer::quantize`] maps to at most `t` (found by bisection over the
    /// ordered floats, so the rank of `x` is the number of thresholds `q(x)` lies past,
    /// exactly, at any float); the returned ensemble compares ranks (`rank <= j` for the
    /// split's index `j`) through the identity quantizer [`FeatureBins::rank_quantizer`].
    /// Ranks never need more bits than the quantized features. `None` when some threshold
    /// holds for every float or for none (no such edge).
    pub fn rank_encoded(&self) -> Option<(TreeEnsemble, FeatureBins)> {
        let edge = |f: usize, t: i64| {
            last_float_where(|x| self.input.quantize(x, f) <= t).map(|value| BinEdge {
                value,
                strict: false,
            })
        };
        let mut splits = Vec::new();
        for tree in &self.trees {
            for node in &tree.nodes {
                if let TreeNode::Split {
                    feature, threshold, ..
                } = node
                {
                    splits.push((*feature, edge(*feature, *threshold)?));
                }
            }
        }
        let bins = FeatureBins::new(self.n_features, splits)?;
        let mut ranked = self.clone();
        for tree in &mut ranked.trees {
            for node in &mut tree.nodes {
                if let TreeNode::Split {
                    feature, threshold, ..
                } = node
                {
                    *threshold = bins.index(*feature, edge(*feature, *threshold)?)? as i64;
                }
            }
        }
        ranked.input = bins.rank_quantizer(self.n_features);
        Some((ranked, bins))
    }

    /// [`TreeEnsemble::compile`] with the features sent as their ranks
    /// ([`TreeEnsemble::rank_encoded`], [`ClientSpec::bins`]): the same decisions and leaf
    /// values (leaves keep the width [`TreeEnsemble::compile`] gives them), with comparisons on
    /// `log2(splits + 1)`-bit ranks instead of `n_bits`-bit features. Falls back to
    /// [`TreeEnsemble::compile`] when no rank encoding exists or `cfg.tree_ranks` is off.
    pub fn compile_rank_encoded(&self, cfg: &CompileConfig) -> MlResult<CompiledModel> {
        let ranked = self.rank_encoded().filter(|_| cfg.tree_ranks);
        let Some((ranked, bins)) = ranked else {
            return self.compile(cfg);
        };
        let n = self.input.n_bits;
        let split = digit_bits(n, cfg.tree_digit_bits)?.is_some();
        let leaves = cfg
            .n_bits
            .outputs
            .unwrap_or(if split { n.min(MAX_UNSPLIT_BITS) } else { n });
        let cfg = CompileConfig {
            n_bits: super::NBits {
                outputs: Some(leaves),
                ..cfg.n_bits
            },
            ..*cfg
        };
        ranked.compile_ranked(&cfg, None, bins)
    }

    /// Compiles the ensemble (see the module docs). `cfg.n_bits.outputs` is the leaf value
    /// width (default: the input width, at most 4 bits when features are sent as digits, see
    /// [`CompileConfig::tree_digit_bits`]).
    pub fn compile(&self, cfg: &CompileConfig) -> MlResult<CompiledModel> {
        self.compile_weighted(cfg, None)
    }

    /// [`TreeEnsemble::compile`], with the output of tree `t` for value `j` multiplied by
    /// `weights[t][j]` on the client (outputs summed by the client only: with
    /// `cfg.sum_in_fhe` the weights are refused). Lets each tree quantize its leaves on its
    /// own range.
    pub fn compile_weighted(
        &self,
        cfg: &CompileConfig,
        weights: Option<&[Vec<f64>]>,
    ) -> MlResult<CompiledModel> {
        self.compile_program(cfg, weights, false)
    }

    /// [`TreeEnsemble::compile_weighted`] for an ensemble that compares ranks
    /// ([`TreeEnsemble::rank_encoded`], [`FeatureBins::rank_quantizer`]), the client sending
    /// features as their ranks among `bins` ([`ClientSpec::bins`]). With
    /// `cfg.tree_comparison_inputs` (the default) the client sends instead the bit
    /// `[rank <= j]` of each of the trees' distinct comparisons ([`ClientSpec::comparisons`]:
    /// it holds the split points already, so it learns nothing new), and the program
    /// bootstraps no comparison, only the leaf indicators.
    pub fn compile_ranked(
        &self,
        cfg: &CompileConfig,
        weights: Option<&[Vec<f64>]>,
        bins: FeatureBins,
    ) -> MlResult<CompiledModel> {
        let mut model = self.compile_program(cfg, weights, cfg.tree_comparison_inputs)?;
        model.client.bins = Some(bins);
        Ok(model)
    }

    /// The tree program (module docs); `compare_inputs`: the input is one bit per distinct
    /// comparison, computed by the client ([`ClientSpec::comparisons`]).
    fn compile_program(
        &self,
        cfg: &CompileConfig,
        weights: Option<&[Vec<f64>]>,
        compare_inputs: bool,
    ) -> MlResult<CompiledModel> {
        cfg.check()?;
        if weights.is_some() && cfg.sum_in_fhe {
            return Err(MlError::Invalid(
                "per-tree output weights need the trees' outputs summed by the client (sum_in_fhe = false)".into(),
            ));
        }
        let n_trees = self.trees.len();
        let o = self.outputs();
        // Default leaf width: the input width, or at most MAX_UNSPLIT_BITS when features are
        // sent as digits (the outputs then set the program's precision).
        let split = digit_bits(self.input.n_bits, cfg.tree_digit_bits)?.is_some();
        let leaf_bits = cfg.n_bits.outputs.unwrap_or(if split {
            self.input.n_bits.min(MAX_UNSPLIT_BITS)
        } else {
            self.input.n_bits
        });
        if !(1..=16).contains(&leaf_bits) {
            return Err(MlError::Invalid(format!(
                "leaf value width n_bits.outputs = {leaf_bits} must be in 1..=16"
            )));
        }
        // Leaf value quantization.
        let all_leaves: Vec<(usize, LeafPath)> = self
            .trees
            .iter()
            .enumerate()
            .flat_map(|(ti, t)| t.paths().into_iter().map(move |p| (ti, p)))
            .collect();
        let leaf_float = |ti: usize, n: usize| -> Vec<f64> {
            match &self.trees[ti].nodes[n] {
                super::cart::TreeNode::Leaf { value } => self.leaf_outputs(value),
                _ => unreachable!("paths() only returns leaves"),
            }
        };
        let levels = ((1u64 << leaf_bits) - 1) as f64;
        let (scale, zero): (f64, i64) = match self.kind {
            TreeKind::Classifier { .. } => (1.0 / levels, 0),
            TreeKind::Regressor => {
                let vals: Vec<f64> = all_leaves
                    .iter()
                    .map(|(t, p)| leaf_float(*t, p.node)[0])
                    .collect();
                let q = UniformQuantizer::calibrate(
                    &vals,
                    1,
                    super::quantize::QuantOptions::unsigned(
                        leaf_bits,
                        super::Granularity::PerTensor,
                    ),
                )?;
                (q.scale[0], q.zero_point[0])
            }
        };
        let quant = |v: f64| -> i64 { ((v / scale).round() as i64 + zero).clamp(0, levels as i64) };
        // Keep leaves with a nonzero quantized value.
        let mut leaves: Vec<Kept> = all_leaves
            .iter()
            .map(|(t, p)| Kept {
                tree: *t,
                q: leaf_float(*t, p.node).into_iter().map(quant).collect(),
                path: &p.conditions,
            })
            .filter(|k| k.q.iter().any(|&v| v != 0))
            .collect();
        if leaves.is_empty() {
            // Every leaf is zero: keep one so the program has an encrypted output.
            let (t, p) = &all_leaves[0];
            leaves.push(Kept {
                tree: *t,
                q: vec![0; o],
                path: &p.conditions,
            });
        }
        // Exactly one leaf of a tree is on, so in a tree whose leaves are all kept one of them
        // (its reference) needs no lookup: its indicator is 1 minus the others', so its values
        // go into the output's bias and the others' values become differences to them (the
        // smallest value for one value per leaf, so that the tables stay non-negative; the
        // leaf nearest the others otherwise, for the least output noise).
        let mut refs: Vec<Option<usize>> = vec![None; n_trees];
        if !cfg.sum_in_fhe {
            let mut per_tree: Vec<Vec<usize>> = vec![Vec::new(); n_trees];
            leaves
                .iter()
                .enumerate()
                .for_each(|(i, k)| per_tree[k.tree].push(i));
            let mut all_per_tree = vec![0usize; n_trees];
            all_leaves.iter().for_each(|(t, _)| all_per_tree[*t] += 1);
            for (t, ids) in per_tree.iter().enumerate() {
                if ids.len() < 2 || ids.len() < all_per_tree[t] {
                    continue;
                }
                let spread = |r: usize| -> i64 {
                    ids.iter()
                        .flat_map(|&i| leaves[i].q.iter().zip(&leaves[r].q))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                };
                refs[t] = if o == 1 {
                    ids.iter().copied().min_by_key(|&i| leaves[i].q[0])
                } else {
                    ids.iter().copied().min_by_key(|&i| spread(i))
                };
            }
        }
        let active: Vec<&Kept> = leaves
            .iter()
            .enumerate()
            .filter(|&(i, k)| refs[k.tree] != Some(i))
            .map(|(_, k)| k)
            .collect();
        let ref_q = |t: usize, j: usize| refs[t].map_or(0, |r| leaves[r].q[j]);
        // Distinct comparisons used by the leaves that get a lookup.
        let mut cmp_index: BTreeMap<(usize, i64), usize> = BTreeMap::new();
        for k in &active {
            for c in k.path {
                let next = cmp_index.len();
                cmp_index.entry((c.feature, c.threshold)).or_insert(next);
            }
        }
        let (k, l, d) = (cmp_index.len(), active.len(), self.n_features);
        // Without comparisons (single-leaf trees) the features go as they are.
        let compare_inputs = compare_inputs && k > 0;
        let n_bits = self.input.n_bits;
        let digits = match compare_inputs {
            true => None,
            false => digit_bits(n_bits, cfg.tree_digit_bits)?,
        };
        let b = Builder::new();
        let (cols, in_ty) = match digits {
            _ if compare_inputs => (k, veil_ir::IntType::unsigned(1)),
            Some(db) => (2 * d, veil_ir::IntType::unsigned(db)),
            None => (d, self.input.int_type()),
        };
        let x = b.input_encrypted("x", &[cfg.batch, cols], in_ty)?;
        let cnt = if k == 0 {
            None
        } else {
            let c = match digits {
                // 1-2. the client's comparison bits, in `cmp_index` order
                _ if compare_inputs => x,
                None => {
                    // 1. selector
                    let mut sel = vec![0i64; d * k];
                    for (&(f, _), &j) in &cmp_index {
                        sel[f * k + j] = 1;
                    }
                    let s = b.matmul(x, b.constant(&[d, k], &sel)?)?;
                    // 2. comparisons: one table per distinct threshold
                    let int = self.input.int_type();
                    let mut thr_tables: BTreeMap<i64, u32> = BTreeMap::new();
                    let mut per_cmp = vec![0u32; k];
                    for (&(_, thr), &j) in &cmp_index {
                        let n = thr_tables.len() as u32;
                        per_cmp[j] = *thr_tables.entry(thr).or_insert(n);
                    }
                    let mut tables = vec![Vec::new(); thr_tables.len()];
                    for (&thr, &ti) in &thr_tables {
                        tables[ti as usize] = (int.min()..=int.max())
                            .map(|v| (v as i64 <= thr) as i64)
                            .collect();
                    }
                    let map = (0..cfg.batch * k).map(|e| per_cmp[e % k]).collect();
                    b.tlu_multi(s, tables, map)?
                }
                Some(db) => digit_comparisons(&b, x, d, db, &cmp_index, cfg.batch)?,
            };
            // 3. path matrix
            let mut p = vec![0i64; k * l];
            let mut expected = vec![0i64; l];
            for (li, kept) in active.iter().enumerate() {
                for &Condition {
                    feature,
                    threshold,
                    went_left,
                } in kept.path
                {
                    let j = cmp_index[&(feature, threshold)];
                    p[j * l + li] += if went_left { 1 } else { -1 };
                    expected[li] += went_left as i64;
                }
            }
            // As a 1x1 convolution of weights `-P` and bias `D_l` (`c` as `[batch, k, 1, 1]`,
            // the path matrix as `[l, k, 1, 1]`): `D_l - (c @ P)_l` lies in `[0, depth_l]` and
            // is 0 exactly for the sample's leaf, and the convolution's per-output bounds keep
            // the whole tensor unsigned and as narrow as the deepest path (3 bits up to depth
            // 7; a matmul then an add would be typed `[-2 depth, depth]`).
            let w: Vec<i64> = (0..l)
                .flat_map(|li| (0..k).map(move |j| (j, li)))
                .map(|(j, li)| -p[j * l + li])
                .collect();
            let bias = expected;
            let conv = b.conv2d(
                b.reshape(c, &[cfg.batch, k, 1, 1])?,
                b.constant(&[l, k, 1, 1], &w)?,
                Some(b.constant(&[l], &bias)?),
                veil_ir::Conv2dAttrs::default(),
            )?;
            Some(b.reshape(conv, &[cfg.batch, l])?)
        };
        // 4. leaf indicators. With one value per leaf, the lookup returns the leaf's value
        // instead of 1 (`tlu(cnt) = q_l * [cnt == D_l]`), and step 5 only adds: the output's
        // noise then grows with the number of leaves, not with the sum of their squared
        // values (cheaper parameters).
        let values_in_tables = o == 1 && cnt.is_some();
        let ind = match cnt {
            Some(cnt) => {
                let int = b.ty(cnt)?.int;
                let mut ids: BTreeMap<i64, u32> = BTreeMap::new();
                let per_leaf: Vec<u32> = active
                    .iter()
                    .map(|kept| {
                        let n = ids.len() as u32;
                        let value = if values_in_tables {
                            kept.q[0] - ref_q(kept.tree, 0)
                        } else {
                            1
                        };
                        *ids.entry(value).or_insert(n)
                    })
                    .collect();
                let mut tables = vec![Vec::new(); ids.len()];
                for (&value, &ti) in &ids {
                    tables[ti as usize] = (int.min()..=int.max())
                        .map(|v| if v == 0 { value } else { 0 })
                        .collect();
                }
                let map = (0..cfg.batch * l).map(|e| per_leaf[e % l]).collect();
                b.tlu_multi(cnt, tables, map)?
            }
            None => {
                // Single-leaf trees only: the indicator is the constant 1, made encrypted by
                // a zero-weight matmul of the input.
                let z = b.matmul(x, b.constant(&[cols, l], &vec![0; cols * l])?)?;
                b.add(z, b.constant(&[l], &vec![1; l])?)?
            }
        };
        // 5. leaf values. Summed by the client, the program returns one column per (tree,
        // value) that some kept leaf scores: a boosted tree scores one class, so a 10-class
        // ensemble returns one column per tree, not ten.
        // A column whose tree gives the same value `z` on every leaf (a dropped leaf gives 0)
        // is left out, and `z` moves into the decoder's zero point.
        let mut column_of: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut zero_shift = vec![0i64; o];
        if !cfg.sum_in_fhe {
            let mut kept_per_tree = vec![0usize; n_trees];
            leaves.iter().for_each(|k| kept_per_tree[k.tree] += 1);
            let mut all_per_tree = vec![0usize; n_trees];
            all_leaves.iter().for_each(|(t, _)| all_per_tree[*t] += 1);
            // (tree, value) -> Some(z) while every leaf seen gives z, None once two differ
            let mut constant: BTreeMap<(usize, usize), Option<i64>> = BTreeMap::new();
            let mut see = |t: usize, j: usize, q: i64| {
                constant
                    .entry((t, j))
                    .and_modify(|c| {
                        if *c != Some(q) {
                            *c = None
                        }
                    })
                    .or_insert(Some(q));
            };
            for kept in &leaves {
                for (j, &qv) in kept.q.iter().enumerate() {
                    see(kept.tree, j, qv);
                }
            }
            for t in 0..n_trees {
                if kept_per_tree[t] < all_per_tree[t] {
                    (0..o).for_each(|j| see(t, j, 0));
                }
            }
            for (&(t, j), c) in &constant {
                match c {
                    Some(z) => zero_shift[j] += z,
                    None => {
                        column_of.insert((t, j), 0);
                    }
                }
            }
            if column_of.is_empty() {
                column_of.insert((leaves[0].tree, 0), 0);
            }
            for (i, c) in column_of.values_mut().enumerate() {
                *c = i;
            }
        }
        let cols = if cfg.sum_in_fhe { o } else { column_of.len() };
        let mut v = vec![0i64; l * cols];
        for (li, kept) in active.iter().enumerate() {
            for (j, &qv) in kept.q.iter().enumerate() {
                let c = if cfg.sum_in_fhe {
                    Some(j)
                } else {
                    column_of.get(&(kept.tree, j)).copied()
                };
                if let Some(c) = c {
                    v[li * cols + c] = if values_in_tables {
                        1
                    } else {
                        qv - ref_q(kept.tree, j)
                    };
                }
            }
        }
        // The references' values, per column.
        let mut bias = vec![0i64; cols];
        for (&(t, j), &c) in &column_of {
            bias[c] = ref_q(t, j);
        }
        let (out, sum) = if bias.iter().all(|&z| z == 0) {
            let out = b.matmul(ind, b.constant(&[l, cols], &v)?)?;
            (out, out)
        } else {
            // `ind @ v + bias` as a 1x1 convolution (one node, bounds per column)
            let w: Vec<i64> = (0..cols)
                .flat_map(|c| (0..l).map(move |li| (li, c)))
                .map(|(li, c)| v[li * cols + c])
                .collect();
            let conv = b.conv2d(
                b.reshape(ind, &[cfg.batch, l, 1, 1])?,
                b.constant(&[cols, l, 1, 1], &w)?,
                Some(b.constant(&[cols], &bias)?),
                veil_ir::Conv2dAttrs::default(),
            )?;
            (b.reshape(conv, &[cfg.batch, cols])?, conv)
        };
        let y = b.output("y", out)?;
        let mut graph = b.finish()?;
        // Interval arithmetic sees `l` independent indicators; in fact at most one leaf per
        // tree is on, so each tree adds one of its leaf values (or 0). Declare that range.
        let mut per_tree = vec![(0i128, 0i128); n_trees];
        for kept in &leaves {
            for &qv in &kept.q {
                let r = &mut per_tree[kept.tree];
                *r = (r.0.min(qv as i128), r.1.max(qv as i128));
            }
        }
        let (lo, hi) = if cfg.sum_in_fhe {
            per_tree.iter().fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1))
        } else {
            per_tree
                .iter()
                .fold((0, 0), |a, r| (a.0.min(r.0), a.1.max(r.1)))
        };
        if let Some(int) = veil_ir::IntType::fitting(lo, hi) {
            if int.bits < graph.ty(out).int.bits {
                graph.node_mut(out).ty.int = int;
                graph.node_mut(sum).ty.int = int;
                graph.node_mut(y).ty.int = int;
                veil_ir::verify::verify(&graph).map_err(|e| MlError::Build(e.to_string()))?;
            }
        }
        // Every tree outputs the (quantized) value of exactly one leaf: sum over trees, remove
        // the zero points, average.
        let t = n_trees as f64;
        let post = match self.kind {
            TreeKind::Classifier { n_classes: 2 } => PostProcess::BinaryProbability,
            _ => PostProcess::Identity,
        };
        let client = ClientSpec {
            n_features: d,
            batch: cfg.batch,
            input: self.input.clone(),
            digit_bits: digits,
            bins: None,
            comparisons: compare_inputs.then(|| {
                let mut list = vec![(0, 0); k];
                for (&fc, &j) in &cmp_index {
                    list[j] = fc;
                }
                list
            }),
            output: OutputDecoder {
                values: o,
                groups: if cfg.sum_in_fhe { 1 } else { n_trees },
                columns: column_of.keys().map(|&(_, j)| j as u32).collect(),
                column_weight: match weights {
                    Some(w) => column_of
                        .keys()
                        .map(|&(t, j)| w.get(t).and_then(|r| r.get(j)).copied().unwrap_or(1.0))
                        .collect(),
                    None => Vec::new(),
                },
                scale: vec![scale / t; o],
                zero: zero_shift
                    .iter()
                    .map(|z| zero * n_trees as i64 - z)
                    .collect(),
                offset: Vec::new(),
                post,
            },
        };
        Ok(CompiledModel::new(graph, client))
    }
}

/// The digit width for comparisons on `n_bits`-bit features: `Some(0)` never splits, `Some(k)`
/// splits into a high and a low digit of at most `k` bits, `None` splits features wider than
/// [`MAX_UNSPLIT_BITS`] into two halves.
fn digit_bits(n_bits: u8, requested: Option<u8>) -> MlResult<Option<u8>> {
    let db = match requested {
        Some(0) => return Ok(None),
        Some(k) => k,
        None if n_bits > MAX_UNSPLIT_BITS => n_bits.div_ceil(2),
        None => return Ok(None),
    };
    if db >= n_bits {
        return Ok(None);
    }
    if 2 * db < n_bits {
        return Err(MlError::Invalid(format!(
            "tree_digit_bits = {db} cannot split {n_bits}-bit features into two digits: use at least {}",
            n_bits.div_ceil(2)
        )));
    }
    Ok(Some(db))
}

/// Features up to this width are compared whole (one bootstrap per comparison); wider ones are
/// split into two digits by default.
pub const MAX_UNSPLIT_BITS: u8 = 4;

/// The comparisons `x_f <= t` on features sent as two digits, `x = h * 2^db + l`
/// (`x` is `[batch, 2d]`: the high digits of the `d` features, then the low digits):
///
/// - `e = tlu(l)`: `[l <= t_l]`, one per distinct `(feature, t_l)`;
/// - `c = tlu(2 h + e)`: `[h < t_h or (h == t_h and e == 1)]`, one per comparison, on a
///   `db + 1`-bit value.
///
/// Two narrow bootstraps per comparison at most, instead of one `2 db`-bit one.
fn digit_comparisons(
    b: &Builder,
    x: veil_ir::ValueId,
    d: usize,
    db: u8,
    cmp_index: &BTreeMap<(usize, i64), usize>,
    batch: usize,
) -> MlResult<veil_ir::ValueId> {
    let k = cmp_index.len();
    let base = 1i64 << db;
    // Distinct low-digit tests (feature, low threshold).
    let mut lo_idx: BTreeMap<(usize, i64), usize> = BTreeMap::new();
    for &(f, t) in cmp_index.keys() {
        let n = lo_idx.len();
        lo_idx.entry((f, t.rem_euclid(base))).or_insert(n);
    }
    let kb = lo_idx.len();
    let mut sel = vec![0i64; 2 * d * kb];
    for (&(f, _), &j) in &lo_idx {
        sel[(d + f) * kb + j] = 1;
    }
    let lsel = b.matmul(x, b.constant(&[2 * d, kb], &sel)?)?;
    let int = b.ty(x)?.int;
    let mut ids: BTreeMap<i64, u32> = BTreeMap::new();
    let mut per = vec![0u32; kb];
    for (&(_, t), &j) in &lo_idx {
        let n = ids.len() as u32;
        per[j] = *ids.entry(t).or_insert(n);
    }
    let mut tables = vec![Vec::new(); ids.len()];
    for (&t, &ti) in &ids {
        tables[ti as usize] = (int.min()..=int.max())
            .map(|v| (v as i64 <= t) as i64)
            .collect();
    }
    let map = (0..batch * kb).map(|e| per[e % kb]).collect();
    let e = b.tlu_multi(lsel, tables, map)?;
    // v_k = 2 h_f + e_{(f, t_l)}.
    let mut hm = vec![0i64; 2 * d * k];
    let mut em = vec![0i64; kb * k];
    for (&(f, t), &j) in cmp_index {
        hm[f * k + j] = 2;
        em[lo_idx[&(f, t.rem_euclid(base))] * k + j] = 1;
    }
    let v = b.add(
        b.matmul(x, b.constant(&[2 * d, k], &hm)?)?,
        b.matmul(e, b.constant(&[kb, k], &em)?)?,
    )?;
    let vint = b.ty(v)?.int;
    let mut ids: BTreeMap<i64, u32> = BTreeMap::new();
    let mut per = vec![0u32; k];
    for (&(_, t), &j) in cmp_index {
        let n = ids.len() as u32;
        per[j] = *ids.entry(t.div_euclid(base)).or_insert(n);
    }
    let mut tables = vec![Vec::new(); ids.len()];
    for (&th, &ti) in &ids {
        tables[ti as usize] = (vint.min()..=vint.max())
            .map(|v| {
                let (h, e) = ((v as i64).div_euclid(2), (v as i64).rem_euclid(2));
                (h < th || (h == th && e == 1)) as i64
            })
            .collect();
    }
    let map = (0..batch * k).map(|e| per[e % k]).collect();
    Ok(b.tlu_multi(v, tables, map)?)
}
