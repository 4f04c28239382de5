//! Tree ensembles trained elsewhere, with float thresholds and float leaf weights (XGBoost
//! boosters, ONNX-ML `TreeEnsemble*` nodes), compiled with the tree program of
//! [`super::hummingbird`].
//!
//! Float thresholds become integer thresholds on the quantized features
//! (`x <= t`  ->  `q <= round(t / s + z - 1/2)`, the nearest quantization boundary), and the
//! leaf weights — any sign, one or several targets — are normalized per target to `[0, 1]`
//! so that they quantize like class fractions; the client decoder undoes the normalization
//! (`sum_trees w = (hi - lo) * sum_trees w' + T * lo`). Base values and the link function
//! (sigmoid, softmax) are the caller's, applied by the client.

use super::cart::{Tree, TreeNode};
use super::error::{MlError, MlResult};
use super::hummingbird::{TreeEnsemble, TreeKind};
use super::model::{CompileConfig, CompiledModel, NBits, PostProcess};
use super::quantize::{BinEdge, FeatureBins, UniformQuantizer};

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

/// A tree ensemble with float thresholds: the raw (summed or averaged) leaf weights per
/// target.
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

    /// The same trees with every split's threshold and comparison replaced by `f(threshold,
    /// cmp)`; `None` when `f` gives `None` for some split.
    pub fn with_thresholds(&self, f: impl Fn(f64, Cmp) -> Option<(f64, Cmp)>) -> Option<TreeModel> {
        let mut m = self.clone();
        for t in &mut m.trees {
            for nd in &mut t.nodes {
                if let ONode::Branch { threshold, cmp, .. } = nd {
                    (*threshold, *cmp) = f(*threshold, *cmp)?;
                }
            }
        }
        Some(m)
    }

    /// The same trees on raw features when the model's trees read `a[f] * x[f] + b[f]` (an
    /// exported pipeline's scaler): every threshold moves into the raw feature's units, and a
    /// negative scale flips its comparison. Errors on a zero scale.
    pub fn unscaled(&self, a: &[f64], b: &[f64]) -> MlResult<TreeModel> {
        let mut m = self.clone();
        for t in &mut m.trees {
            for nd in &mut t.nodes {
                if let ONode::Branch {
                    feature,
                    threshold,
                    cmp,
                    ..
                } = nd
                {
                    let (Some(&s), Some(&o)) = (a.get(*feature), b.get(*feature)) else {
                        return Err(MlError::Invalid(format!(
                            "the trees read feature {feature}, beyond the {} features of the preprocessing",
                            a.len()
                        )));
                    };
                    if s == 0.0 || !s.is_finite() || !o.is_finite() {
                        return Err(MlError::Invalid(format!(
                            "the preprocessing scales feature {feature} by {s} (offset {o}): a tree cannot compare it"
                        )));
                    }
                    *threshold = (*threshold - o) / s;
                    if s < 0.0 {
                        *cmp = match cmp {
                            Cmp::Leq => Cmp::Gte,
                            Cmp::Lt => Cmp::Gt,
                            Cmp::Gte => Cmp::Leq,
                            Cmp::Gt => Cmp::Lt,
                        };
                    }
                }
            }
        }
        Ok(m)
    }

    /// Rank encoding ([`FeatureBins`]) of `d` features: the bins of the trees' split points,
    /// and the same trees on the ranks (each threshold becomes `j + 1/2` for the split's index
    /// `j`, so that [`TreeModel::compile`] with an identity quantizer compares `rank <= j`).
    /// `None` when a threshold is not finite.
    pub fn rank_encoded(&self, d: usize) -> Option<(TreeModel, FeatureBins)> {
        let edge = |threshold: f64, cmp: Cmp| BinEdge {
            value: threshold,
            strict: matches!(cmp, Cmp::Lt | Cmp::Gte),
        };
        let splits = self
            .trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter_map(|nd| match nd {
                ONode::Branch {
                    feature,
                    threshold,
                    cmp,
                    ..
                } => Some((*feature, edge(*threshold, *cmp))),
                ONode::Leaf { .. } => None,
            });
        let bins = FeatureBins::new(d, splits)?;
        let mut m = self.clone();
        for t in &mut m.trees {
            for nd in &mut t.nodes {
                if let ONode::Branch {
                    feature,
                    threshold,
                    cmp,
                    ..
                } = nd
                {
                    let j = bins.index(*feature, edge(*threshold, *cmp))?;
                    *threshold = j as f64 + 0.5;
                    // `x <= t` and `x < t` hold when not past the edge: `rank <= j`; `x > t`
                    // and `x >= t` when past it: `rank > j`.
                    *cmp = match cmp {
                        Cmp::Leq | Cmp::Lt => Cmp::Leq,
                        Cmp::Gt | Cmp::Gte => Cmp::Gt,
                    };
                }
            }
        }
        Some((m, bins))
    }

    /// Compiles the trees for `d` features quantized by `input` (per feature, unsigned), with
    /// `leaf_bits`-bit leaf values (`None`: the tree program's default) and `cfg`'s batch,
    /// `sum_in_fhe` and `tree_digit_bits`. The program's output decodes to the raw target values of
    /// [`TreeModel::predict_row`] (post-processing [`PostProcess::Identity`], no offset): the
    /// caller adds base values and a link function to the decoder.
    pub fn compile(
        &self,
        input: &UniformQuantizer,
        d: usize,
        leaf_bits: Option<u8>,
        cfg: &CompileConfig,
    ) -> MlResult<CompiledModel> {
        self.compile_with(input, d, leaf_bits, cfg, None)
    }

    /// [`TreeModel::compile`] for trees that compare ranks ([`TreeModel::rank_encoded`]):
    /// the client sends features as their ranks among `bins`, or with
    /// `cfg.tree_comparison_inputs` the bits of the trees' comparisons
    /// ([`TreeEnsemble::compile_ranked`]).
    pub fn compile_ranked(
        &self,
        bins: FeatureBins,
        d: usize,
        leaf_bits: Option<u8>,
        cfg: &CompileConfig,
    ) -> MlResult<CompiledModel> {
        let input = bins.rank_quantizer(d);
        self.compile_with(&input, d, leaf_bits, cfg, Some(bins))
    }

    fn compile_with(
        &self,
        input: &UniformQuantizer,
        d: usize,
        leaf_bits: Option<u8>,
        cfg: &CompileConfig,
        bins: Option<FeatureBins>,
    ) -> MlResult<CompiledModel> {
        if self.trees.is_empty() || self.n_targets == 0 {
            return Err(MlError::Invalid(
                "a tree ensemble needs at least one tree and one target".into(),
            ));
        }
        if self.n_features() > d {
            return Err(MlError::Invalid(format!(
                "the trees use feature {} but the model has {d} features",
                self.n_features() - 1
            )));
        }
        let t = self.n_targets;
        let leaf_vec = |weights: &[(usize, f64)]| -> Vec<f64> {
            let mut v = vec![0.0; t];
            for &(k, w) in weights {
                v[k] += w;
            }
            v
        };
        // Leaf range per tree and target: summed by the client, every tree quantizes its
        // leaves on its own range (later boosting rounds have much smaller leaves), and the
        // client weighs each tree's output by its span. Summed in FHE, all trees share one
        // range (including 0) per target.
        let n = self.trees.len();
        let mut lo = vec![vec![f64::INFINITY; t]; n];
        let mut hi = vec![vec![f64::NEG_INFINITY; t]; n];
        for (ti, tr) in self.trees.iter().enumerate() {
            for nd in &tr.nodes {
                if let ONode::Leaf { weights } = nd {
                    for (k, v) in leaf_vec(weights).into_iter().enumerate() {
                        lo[ti][k] = lo[ti][k].min(v);
                        hi[ti][k] = hi[ti][k].max(v);
                    }
                }
            }
        }
        if cfg.sum_in_fhe {
            for k in 0..t {
                let l = lo.iter().map(|r| r[k]).fold(0.0f64, f64::min);
                let h = hi.iter().map(|r| r[k]).fold(0.0f64, f64::max);
                lo.iter_mut().for_each(|r| r[k] = l);
                hi.iter_mut().for_each(|r| r[k] = h);
            }
        }
        // span 0: the tree's output is the constant `lo` (its leaves normalize to 0)
        let span: Vec<Vec<f64>> = (0..n)
            .map(|ti| (0..t).map(|k| (hi[ti][k] - lo[ti][k]).max(0.0)).collect())
            .collect();
        let widest: Vec<f64> = (0..t)
            .map(|k| span.iter().map(|r| r[k]).fold(0.0f64, f64::max))
            .map(|s| if s > 0.0 { s } else { 1.0 })
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
        let trees = self
            .trees
            .iter()
            .enumerate()
            .map(|(ti, tr)| Tree {
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
                            let mut norm: Vec<f64> = (0..t)
                                .map(|k| {
                                    if span[ti][k] > 0.0 {
                                        (v[k] - lo[ti][k]) / span[ti][k]
                                    } else {
                                        0.0
                                    }
                                })
                                .collect();
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
                outputs: leaf_bits,
            },
            ..*cfg
        };
        let weights: Vec<Vec<f64>> = span
            .iter()
            .map(|r| {
                let mut w: Vec<f64> = (0..t).map(|k| r[k] / widest[k]).collect();
                w.resize(width, 0.0);
                w
            })
            .collect();
        let weights = (!cfg.sum_in_fhe).then_some(&weights[..]);
        let mut cm = match bins {
            Some(bins) => ens.compile_ranked(&cfg, weights, bins)?,
            None => ens.compile_weighted(&cfg, weights)?,
        };
        let out = &mut cm.client.output;
        if out.values != width || out.post != PostProcess::Identity {
            return Err(MlError::Build(format!(
                "unexpected tree program decoder ({} values, {:?})",
                out.values, out.post
            )));
        }
        // Undo the normalization: value_k = sum_t (lo_tk + span_tk * q_tk / levels)
        // = widest_k * (sum_t w_tk q_tk) / levels + sum_t lo_tk (averaged if needed); the
        // weights are in the decoder, the second term exactly as its offset.
        let n_trees = n as f64;
        // The program's leaf step (`1 / (2^leaf_bits - 1)`), averaged over the trees.
        let unit = out.scale[0] * n_trees;
        let div = if self.average { n_trees } else { 1.0 };
        out.offset = vec![0.0; width];
        for k in 0..width {
            let (s, l) = if k < t {
                (widest[k], lo.iter().map(|r| r[k]).sum::<f64>())
            } else {
                (0.0, 0.0)
            };
            // `zero` stays: the tree program moves constant per-tree columns into it
            out.scale[k] = s * unit / div;
            out.offset[k] = l / div;
        }
        Ok(cm)
    }
}
