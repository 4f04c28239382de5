//! Gradient-boosted trees imported from XGBoost: [`XgbClassifier`], [`XgbRegressor`].
//!
//! XGBoost trains in Python; veil reads the booster in XGBoost's own JSON model format
//! (`booster.save_model("model.json")`, XGBoost 1.6 or newer): for every tree the arrays
//! `split_indices`, `split_conditions` (thresholds of internal nodes, values of leaves),
//! `left_children` / `right_children` (`-1` at leaves) and `default_left`, the per-tree class
//! `tree_info`, the objective and `base_score`. [`XgbBooster`] predicts exactly like XGBoost
//! (single precision: features are rounded to `f32`, a sample goes left when
//! `x < threshold`, and the margin is accumulated in `f32` from the base margin, tree by tree).
//!
//! `compile` sends each feature as its rank among the trees' split points
//! ([`super::FeatureBins`]: exact comparisons, in `log2(splits + 1)` bits) when the ranks fit
//! in `n_bits.inputs` bits (default 6) and `CompileConfig::tree_ranks` is on (the default);
//! otherwise it quantizes each feature to `n_bits.inputs`
//! bits (unsigned, per feature, calibrated on the inputset) and maps every float threshold to
//! the nearest quantization boundary (see [`super::float_tree`]). The leaf values are quantized to `n_bits.outputs`
//! bits (default: the tree program's, 4 bits when 6-bit features are sent as two digits, see
//! [`CompileConfig::tree_digit_bits`]). The program is the tree program of
//! [`super::hummingbird`] (one bootstrap per distinct comparison and per leaf), per-tree
//! outputs summed in FHE or by the client (`CompileConfig::sum_in_fhe`); the client adds the
//! base margin and applies the sigmoid (binary) or softmax (multi-class).
//!
//! Supported objectives: `binary:logistic`, `multi:softprob`, `multi:softmax`
//! ([`XgbClassifier`]); `reg:squarederror`, `reg:squaredlogerror`, `reg:absoluteerror`,
//! `reg:pseudohubererror` ([`XgbRegressor`]). Categorical splits and multi-target trees are
//! refused with an error.

use super::error::{MlError, MlResult};
use super::float_tree::{Cmp, ONode, OTree, TreeModel};
use super::hummingbird::MAX_UNSPLIT_BITS;
use super::matrix::Matrix;
use super::model::{
    argmax, CircuitStats, CompileConfig, CompiledModel, FheClassifier, FheModel, FheRegressor,
    PostProcess,
};
use super::quantize::{last_float_where, Granularity, QuantOptions, UniformQuantizer};
use super::tree::DEFAULT_TREE_BITS;
use serde::Deserialize;
use std::path::Path;

/// The link between the summed margin and the prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XgbObjective {
    /// `binary:logistic`: one margin, probability `sigmoid(margin)`.
    BinaryLogistic,
    /// `multi:softprob` / `multi:softmax`: one margin per class, softmax.
    Softmax {
        /// Number of classes.
        n_classes: usize,
    },
    /// Regression with the identity link (`reg:squarederror` and friends).
    Regression,
}

/// One tree as XGBoost stores it (node 0 is the root).
#[derive(Clone, Debug, PartialEq)]
pub struct XgbTree {
    /// Feature of each internal node.
    pub split_indices: Vec<usize>,
    /// Threshold of each internal node, value of each leaf.
    pub split_conditions: Vec<f32>,
    /// Left child (`-1` at a leaf).
    pub left_children: Vec<i64>,
    /// Right child (`-1` at a leaf).
    pub right_children: Vec<i64>,
    /// Where a missing (NaN) feature goes.
    pub default_left: Vec<bool>,
    /// Output group (class) of the tree.
    pub group: usize,
}

impl XgbTree {
    /// The leaf value reached by `x` (single precision, as XGBoost).
    pub fn leaf(&self, x: &[f32]) -> f32 {
        let mut i = 0usize;
        while self.left_children[i] >= 0 {
            let v = x[self.split_indices[i]];
            let left = if v.is_nan() {
                self.default_left[i]
            } else {
                v < self.split_conditions[i]
            };
            i = if left {
                self.left_children[i]
            } else {
                self.right_children[i]
            } as usize;
        }
        self.split_conditions[i]
    }
}

/// A parsed XGBoost booster (`gbtree`).
#[derive(Clone, Debug, PartialEq)]
pub struct XgbBooster {
    /// The trees, in boosting order.
    pub trees: Vec<XgbTree>,
    /// Features per sample.
    pub n_features: usize,
    /// The objective.
    pub objective: XgbObjective,
    /// XGBoost's `base_score` (a probability for `binary:logistic`).
    pub base_score: f32,
    /// The base margin every group starts from (`logit(base_score)` for `binary:logistic`,
    /// `base_score` otherwise).
    pub base_margin: f32,
}

#[derive(Deserialize)]
struct JFile {
    learner: JLearner,
}

#[derive(Deserialize)]
struct JLearner {
    gradient_booster: JBooster,
    learner_model_param: JModelParam,
    objective: JObjective,
}

#[derive(Deserialize)]
struct JBooster {
    name: String,
    model: Option<JModel>,
}

#[derive(Deserialize)]
struct JModel {
    trees: Vec<JTree>,
    tree_info: Vec<usize>,
}

#[derive(Deserialize)]
struct JTree {
    split_indices: Vec<i64>,
    split_conditions: Vec<f32>,
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    #[serde(default)]
    default_left: Vec<serde_json::Value>,
    #[serde(default)]
    split_type: Vec<i64>,
    tree_param: JTreeParam,
}

#[derive(Deserialize)]
struct JTreeParam {
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

#[derive(Deserialize)]
struct JModelParam {
    base_score: String,
    num_class: String,
    num_feature: String,
}

#[derive(Deserialize)]
struct JObjective {
    name: String,
}

fn bad(msg: impl Into<String>) -> MlError {
    MlError::Invalid(format!("XGBoost model: {}", msg.into()))
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> MlResult<T> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad(format!("{what} = {s:?} is not a number")))
}

impl XgbBooster {
    /// Parses XGBoost's JSON model format (the text of `booster.save_model("m.json")`).
    pub fn from_json(text: &str) -> MlResult<Self> {
        let f: JFile = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not an XGBoost JSON model ({e}); save it with booster.save_model(\"model.json\")"
            ))
        })?;
        let l = f.learner;
        if l.gradient_booster.name != "gbtree" {
            return Err(bad(format!(
                "booster `{}` is not supported: veil imports `gbtree` boosters (dart and gblinear are not)",
                l.gradient_booster.name
            )));
        }
        let model = l
            .gradient_booster
            .model
            .ok_or_else(|| bad("the gbtree booster has no `model`"))?;
        let n_features: usize = parse_num(&l.learner_model_param.num_feature, "num_feature")?;
        let num_class: usize = parse_num(&l.learner_model_param.num_class, "num_class")?;
        let base_score: f32 = parse_num(&l.learner_model_param.base_score, "base_score")?;
        let objective = match l.objective.name.as_str() {
            "binary:logistic" => XgbObjective::BinaryLogistic,
            "multi:softprob" | "multi:softmax" => {
                if num_class < 2 {
                    return Err(bad(format!("{} with num_class = {num_class}", l.objective.name)));
                }
                XgbObjective::Softmax {
                    n_classes: num_class,
                }
            }
            "reg:squarederror" | "reg:squaredlogerror" | "reg:absoluteerror"
            | "reg:pseudohubererror" => XgbObjective::Regression,
            other => {
                return Err(bad(format!(
                    "objective `{other}` is not supported: use binary:logistic, multi:softprob, multi:softmax, reg:squarederror, reg:squaredlogerror, reg:absoluteerror or reg:pseudohubererror"
                )))
            }
        };
        let groups = match objective {
            XgbObjective::Softmax { n_classes } => n_classes,
            _ => 1,
        };
        if model.tree_info.len() != model.trees.len() {
            return Err(bad(format!(
                "{} trees but {} tree_info entries",
                model.trees.len(),
                model.tree_info.len()
            )));
        }
        if model.trees.is_empty() {
            return Err(bad("the booster has no trees"));
        }
        let mut trees = Vec::with_capacity(model.trees.len());
        for (ti, (t, &group)) in model.trees.into_iter().zip(&model.tree_info).enumerate() {
            let n = t.left_children.len();
            if n == 0
                || t.right_children.len() != n
                || t.split_indices.len() != n
                || t.split_conditions.len() != n
                || (!t.default_left.is_empty() && t.default_left.len() != n)
            {
                return Err(bad(format!(
                    "tree {ti}: its node arrays have different lengths"
                )));
            }
            if t.split_type.iter().any(|&s| s != 0) {
                return Err(bad(format!(
                    "tree {ti} has categorical splits, which veil does not support: train with numerical features"
                )));
            }
            if let Some(s) = &t.tree_param.size_leaf_vector {
                if parse_num::<usize>(s, "size_leaf_vector")? > 1 {
                    return Err(bad(format!(
                        "tree {ti} has vector leaves (multi_strategy=multi_output_tree), which veil does not support"
                    )));
                }
            }
            if group >= groups {
                return Err(bad(format!(
                    "tree {ti} belongs to output group {group}, but the objective has {groups}"
                )));
            }
            for i in 0..n {
                let (l, r) = (t.left_children[i], t.right_children[i]);
                let internal = l >= 0;
                // Children come after their parent in XGBoost's layout: that rules out cycles.
                let ok = if internal {
                    (l as usize) < n
                        && (r as usize) < n
                        && r >= 0
                        && l as usize > i
                        && r as usize > i
                } else {
                    r < 0
                };
                if !ok {
                    return Err(bad(format!(
                        "tree {ti}, node {i}: invalid children ({l}, {r})"
                    )));
                }
                if internal && !(0..n_features as i64).contains(&t.split_indices[i]) {
                    return Err(bad(format!(
                        "tree {ti}, node {i}: feature {} is out of range for {n_features} features",
                        t.split_indices[i]
                    )));
                }
            }
            let default_left = if t.default_left.is_empty() {
                vec![true; n]
            } else {
                t.default_left
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::Bool(b) => Ok(*b),
                        serde_json::Value::Number(x) => Ok(x.as_i64() != Some(0)),
                        _ => Err(bad(format!("tree {ti}: default_left holds {v}"))),
                    })
                    .collect::<MlResult<_>>()?
            };
            trees.push(XgbTree {
                split_indices: t.split_indices.iter().map(|&f| f.max(0) as usize).collect(),
                split_conditions: t.split_conditions,
                left_children: t.left_children,
                right_children: t.right_children,
                default_left,
                group,
            });
        }
        let base_margin = match objective {
            XgbObjective::BinaryLogistic => {
                if !(base_score > 0.0 && base_score < 1.0) {
                    return Err(bad(format!(
                        "base_score = {base_score} must be a probability for binary:logistic"
                    )));
                }
                -(1.0 / base_score - 1.0).ln()
            }
            _ => base_score,
        };
        Ok(XgbBooster {
            trees,
            n_features,
            objective,
            base_score,
            base_margin,
        })
    }

    /// Reads a JSON model file.
    pub fn from_file(path: impl AsRef<Path>) -> MlResult<Self> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p)
            .map_err(|e| MlError::Invalid(format!("cannot read {}: {e}", p.display())))?;
        Self::from_json(&text)
    }

    /// Output groups (classes for softmax, else 1).
    pub fn n_groups(&self) -> usize {
        match self.objective {
            XgbObjective::Softmax { n_classes } => n_classes,
            _ => 1,
        }
    }

    /// XGBoost's margins (`output_margin=True`) for every row of `x`: one per group.
    pub fn predict_margin(&self, x: &Matrix) -> MlResult<Vec<Vec<f32>>> {
        x.expect_cols(self.n_features, "XGBoost predict")?;
        Ok(x.iter_rows()
            .map(|r| {
                let xf: Vec<f32> = r.iter().map(|&v| v as f32).collect();
                let mut m = vec![self.base_margin; self.n_groups()];
                for t in &self.trees {
                    m[t.group] += t.leaf(&xf);
                }
                m
            })
            .collect())
    }

    /// The link function applied to one sample's margins, as the client's [`PostProcess`].
    pub fn post(&self) -> PostProcess {
        match self.objective {
            XgbObjective::BinaryLogistic => PostProcess::Sigmoid,
            XgbObjective::Softmax { .. } => PostProcess::Softmax,
            XgbObjective::Regression => PostProcess::Identity,
        }
    }

    /// The trees with float thresholds (`x < t` goes left), leaves adding to their group.
    pub fn tree_model(&self) -> TreeModel {
        let trees = self
            .trees
            .iter()
            .map(|t| OTree {
                nodes: (0..t.left_children.len())
                    .map(|i| {
                        if t.left_children[i] >= 0 {
                            ONode::Branch {
                                feature: t.split_indices[i],
                                threshold: t.split_conditions[i] as f64,
                                cmp: Cmp::Lt,
                                yes: t.left_children[i] as usize,
                                no: t.right_children[i] as usize,
                            }
                        } else {
                            ONode::Leaf {
                                weights: vec![(t.group, t.split_conditions[i] as f64)],
                            }
                        }
                    })
                    .collect(),
            })
            .collect();
        TreeModel {
            trees,
            n_targets: self.n_groups(),
            average: false,
        }
    }

    /// Compiles the booster (see the module docs).
    pub fn compile(&self, inputset: &Matrix, cfg: &CompileConfig) -> MlResult<CompiledModel> {
        cfg.check()?;
        inputset.expect_cols(self.n_features, "XGBoost compile inputset")?;
        if self.n_groups() == 2 {
            // The tree program pads two-target models with a third column, which would change
            // the softmax.
            return Err(bad(
                "two-class softmax boosters are not supported; train with binary:logistic",
            ));
        }
        let in_bits = cfg.n_bits.inputs.unwrap_or(DEFAULT_TREE_BITS);
        // Features as their ranks among the split points when those fit in the quantized
        // width: every comparison is then exactly XGBoost's (`f32(x) < t` is `x <= e` for the
        // largest `e` below the `f32` rounding boundary), in fewer bits.
        let exact = self.tree_model().with_thresholds(|t, cmp| match cmp {
            Cmp::Lt => last_float_where(|x| (x as f32) < t as f32).map(|e| (e, Cmp::Leq)),
            _ => None,
        });
        let ranked = exact
            .filter(|_| cfg.tree_ranks)
            .and_then(|m| m.rank_encoded(self.n_features))
            .filter(|(_, b)| b.bits() <= in_bits);
        if let Some((ranked, bins)) = ranked {
            let leaves = cfg.n_bits.outputs.unwrap_or(in_bits.min(MAX_UNSPLIT_BITS));
            let mut cm = ranked.compile_ranked(bins, self.n_features, Some(leaves), cfg)?;
            let out = &mut cm.client.output;
            for o in &mut out.offset {
                *o += self.base_margin as f64;
            }
            out.post = self.post();
            return Ok(cm);
        }
        let input = UniformQuantizer::calibrate_with_margin(
            inputset.data(),
            self.n_features,
            QuantOptions::unsigned(in_bits, Granularity::PerChannel),
            cfg.input_margin,
        )?;
        let mut cm = self
            .tree_model()
            .compile(&input, self.n_features, cfg.n_bits.outputs, cfg)?;
        let out = &mut cm.client.output;
        for o in &mut out.offset {
            *o += self.base_margin as f64;
        }
        out.post = self.post();
        Ok(cm)
    }
}

/// Default calibration margin of XGBoost models: none. A tree only compares a feature with
/// its thresholds, so clipping a value beyond the calibrated range changes no decision
/// whose threshold lies inside it, and the full resolution goes to the range that matters.
pub const XGB_INPUT_MARGIN: f64 = 0.0;

macro_rules! xgb_common {
    ($t:ident, $name:literal) => {
        impl FheModel for $t {
            fn compiled(&self) -> MlResult<&CompiledModel> {
                self.compiled.as_ref().ok_or(MlError::NotReady {
                    model: $name,
                    state: "compiled",
                    call: "compile",
                })
            }
        }

        impl $t {
            /// The parsed booster.
            pub fn booster(&self) -> &XgbBooster {
                &self.booster
            }

            /// Size of the compiled program, if compiled.
            pub fn stats(&self) -> Option<&CircuitStats> {
                self.compiled.as_ref().map(|c| &c.stats)
            }

            /// Reads a JSON model file (`booster.save_model("model.json")`).
            pub fn from_file(path: impl AsRef<Path>) -> MlResult<Self> {
                Self::from_booster(XgbBooster::from_file(path)?)
            }

            /// Parses the text of a JSON model file.
            pub fn from_json(text: &str) -> MlResult<Self> {
                Self::from_booster(XgbBooster::from_json(text)?)
            }

            /// Compiles the booster; the input quantizer is calibrated on `inputset`
            /// (representative rows, e.g. the training set). `cfg.input_margin` is usually
            /// [`XGB_INPUT_MARGIN`] (see there); [`Self::compile_default`] uses it.
            pub fn compile(
                &mut self,
                inputset: &Matrix,
                cfg: &CompileConfig,
            ) -> MlResult<&CompiledModel> {
                let c = self.booster.compile(inputset, cfg)?;
                Ok(self.compiled.insert(c))
            }

            /// Compiles with the default widths (6-bit features and leaves), one sample per
            /// run, per-tree outputs summed by the client, no calibration margin.
            pub fn compile_default(&mut self, inputset: &Matrix) -> MlResult<&CompiledModel> {
                let cfg = CompileConfig {
                    input_margin: XGB_INPUT_MARGIN,
                    ..CompileConfig::default()
                };
                self.compile(inputset, &cfg)
            }
        }
    };
}

/// An XGBoost classifier (`binary:logistic`, `multi:softprob`, `multi:softmax`) imported
/// from its JSON model.
#[derive(Clone, Debug)]
pub struct XgbClassifier {
    booster: XgbBooster,
    compiled: Option<CompiledModel>,
}

xgb_common!(XgbClassifier, "XgbClassifier");
impl FheClassifier for XgbClassifier {}

impl XgbClassifier {
    /// Wraps a parsed booster; fails if its objective is not a classification one.
    pub fn from_booster(booster: XgbBooster) -> MlResult<Self> {
        if booster.objective == XgbObjective::Regression {
            return Err(bad(
                "a regression objective: load it as an XgbRegressor".to_string()
            ));
        }
        Ok(XgbClassifier {
            booster,
            compiled: None,
        })
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.booster.n_groups().max(2)
    }

    /// Float class probabilities, as XGBoost's `predict_proba` (single precision).
    pub fn predict_proba(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
        Ok(self
            .booster
            .predict_margin(x)?
            .into_iter()
            .map(|m| match self.booster.objective {
                XgbObjective::BinaryLogistic => {
                    let p = 1.0f32 / (1.0f32 + (-m[0]).exp());
                    vec![1.0 - p as f64, p as f64]
                }
                _ => {
                    let mx = m.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = m.iter().map(|v| (v - mx).exp()).collect();
                    let s: f32 = e.iter().sum();
                    e.iter().map(|v| (v / s) as f64).collect()
                }
            })
            .collect())
    }

    /// Float classes, as XGBoost's `predict` (a margin of exactly 0 is class 0 in binary).
    pub fn predict(&self, x: &Matrix) -> MlResult<Vec<usize>> {
        Ok(self
            .booster
            .predict_margin(x)?
            .into_iter()
            .map(|m| match self.booster.objective {
                XgbObjective::BinaryLogistic => usize::from(m[0] > 0.0),
                _ => argmax(&m.iter().map(|&v| v as f64).collect::<Vec<_>>()),
            })
            .collect())
    }
}

/// An XGBoost regressor (identity-link objectives) imported from its JSON model.
#[derive(Clone, Debug)]
pub struct XgbRegressor {
    booster: XgbBooster,
    compiled: Option<CompiledModel>,
}

xgb_common!(XgbRegressor, "XgbRegressor");
impl FheRegressor for XgbRegressor {}

impl XgbRegressor {
    /// Wraps a parsed booster; fails if its objective is not a regression one.
    pub fn from_booster(booster: XgbBooster) -> MlResult<Self> {
        if booster.objective != XgbObjective::Regression {
            return Err(bad(
                "a classification objective: load it as an XgbClassifier".to_string(),
            ));
        }
        Ok(XgbRegressor {
            booster,
            compiled: None,
        })
    }

    /// Float predictions, as XGBoost's `predict` (single precision).
    pub fn predict(&self, x: &Matrix) -> MlResult<Vec<f64>> {
        Ok(self
            .booster
            .predict_margin(x)?
            .into_iter()
            .map(|m| m[0] as f64)
            .collect())
    }
}
