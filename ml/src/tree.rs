//! Decision trees: [`DecisionTreeClassifier`], [`DecisionTreeRegressor`].
//!
//! As in Concrete ML, `fit` first quantizes every feature to `n_bits` (default 6) with a
//! per-feature unsigned quantizer calibrated on the training data, then grows the tree on the
//! integers ([`super::cart`], which grows the tree scikit-learn grows with the same
//! `random_state`): thresholds are integers, so the compiled program computes
//! exactly the tree's decisions, and only the leaf values are rounded (to
//! `n_bits.outputs` bits). `predict` / `predict_proba` are the float model (the same tree on
//! quantized inputs, float leaves); `compile` builds the GEMM-form program of
//! [`super::hummingbird`] with every feature sent as its rank among the trees' thresholds
//! ([`TreeEnsemble::compile_rank_encoded`]: the same decisions on fewer bits than the
//! quantized feature).

use super::cart::{grow, Data, Target, TreeParams};
use super::error::{MlError, MlResult};
use super::hummingbird::{TreeEnsemble, TreeKind};
use super::linear::check_classes;
use super::matrix::Matrix;
use super::model::{argmax, CircuitStats, CompileConfig, CompiledModel};
use super::quantize::{Granularity, QuantOptions, UniformQuantizer};
use super::rng::Mt19937;

/// Default feature width of tree models.
pub const DEFAULT_TREE_BITS: u8 = 6;

/// Fits `n_trees` trees on `x` quantized to `n_bits`, as scikit-learn does with
/// `random_state = seed`: a single tree without bootstrap is grown with `seed` itself; a forest
/// draws one seed per tree from `Mt19937::new(seed)` (`randint(2^31 - 1)`), and tree `i`
/// draws its bootstrap sample (`randint(0, n, n)`) and its splitter's state from a fresh
/// generator with its own seed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_ensemble(
    x: &Matrix,
    target: Target,
    kind: TreeKind,
    n_bits: u8,
    params: &TreeParams,
    n_trees: usize,
    bootstrap: bool,
    seed: u32,
) -> MlResult<TreeEnsemble> {
    if !(1..=16).contains(&n_bits) {
        return Err(MlError::Invalid(format!(
            "n_bits = {n_bits} must be in 1..=16 for tree models"
        )));
    }
    if n_trees == 0 {
        return Err(MlError::Invalid("n_estimators must be at least 1".into()));
    }
    if params.max_features == Some(0) {
        return Err(MlError::Invalid("max_features must be at least 1".into()));
    }
    let input = UniformQuantizer::calibrate(
        x.data(),
        x.cols(),
        QuantOptions::unsigned(n_bits, Granularity::PerChannel),
    )?;
    let xq = input.quantize_all(x.data(), x.cols());
    let data = Data {
        xq: &xq,
        d: x.cols(),
        levels: 1usize << n_bits,
        target,
    };
    let seeds: Vec<u32> = if n_trees == 1 && !bootstrap {
        vec![seed]
    } else {
        let mut rng = Mt19937::new(seed);
        (0..n_trees)
            .map(|_| rng.interval((i32::MAX - 1) as u64) as u32)
            .collect()
    };
    let trees = seeds
        .into_iter()
        .map(|s| {
            let rows = if bootstrap {
                Mt19937::new(s).integers(x.rows(), x.rows())
            } else {
                (0..x.rows()).collect()
            };
            grow(&data, rows, params, s)
        })
        .collect();
    Ok(TreeEnsemble {
        input,
        trees,
        n_features: x.cols(),
        kind,
    })
}

pub(crate) fn check_values(x: &Matrix, y: &[f64], who: &str) -> MlResult<()> {
    if x.rows() != y.len() {
        return Err(MlError::Invalid(format!(
            "{who}: x has {} rows but y has {} targets",
            x.rows(),
            y.len()
        )));
    }
    x.expect_cols(x.cols(), who)?;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(MlError::Invalid(format!("{who}: target {i} is not finite")));
    }
    Ok(())
}

/// Shared setters and accessors of the tree-based models.
macro_rules! tree_model {
    ($t:ident, $name:literal) => {
        impl super::model::FheModel for $t {
            fn compiled(&self) -> MlResult<&CompiledModel> {
                self.compiled.as_ref().ok_or(MlError::NotReady {
                    model: $name,
                    state: "compiled",
                    call: "compile",
                })
            }
        }

        impl $t {
            /// Sets the maximum depth.
            pub fn with_max_depth(mut self, depth: usize) -> Self {
                self.params.max_depth = Some(depth);
                self
            }

            /// Sets the feature width.
            pub fn with_n_bits(mut self, n_bits: u8) -> Self {
                self.n_bits = n_bits;
                self
            }

            /// Sets scikit-learn's `random_state`: the trees equal scikit-learn's with the same
            /// seed on the same quantized data.
            pub fn with_random_state(mut self, random_state: u32) -> Self {
                self.random_state = random_state;
                self
            }

            /// The fitted trees and input quantizer, if fitted.
            pub fn ensemble(&self) -> Option<&TreeEnsemble> {
                self.model.as_ref()
            }

            /// Size of the compiled program, if compiled.
            pub fn stats(&self) -> Option<&CircuitStats> {
                self.compiled.as_ref().map(|c| &c.stats)
            }

            fn fitted(&self) -> MlResult<&TreeEnsemble> {
                self.model.as_ref().ok_or(MlError::NotReady {
                    model: $name,
                    state: "fitted",
                    call: "fit",
                })
            }

            /// Compiles the fitted model. `inputset` is checked for shape only: the input
            /// quantizer was calibrated at `fit` (the thresholds are in its units).
            pub fn compile(
                &mut self,
                inputset: &Matrix,
                cfg: &CompileConfig,
            ) -> MlResult<&CompiledModel> {
                let m = self.fitted()?;
                inputset.expect_cols(m.n_features, concat!($name, "::compile inputset"))?;
                let c = m.compile_rank_encoded(cfg)?;
                Ok(self.compiled.insert(c))
            }
        }
    };
}

macro_rules! classifier_predict {
    ($t:ident) => {
        impl super::model::FheClassifier for $t {}

        impl $t {
            /// Float class probabilities (average of the trees' leaf class fractions).
            pub fn predict_proba(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
                self.fitted()?.predict_raw(x)
            }

            /// Float classes.
            pub fn predict(&self, x: &Matrix) -> MlResult<Vec<usize>> {
                Ok(self.predict_proba(x)?.iter().map(|p| argmax(p)).collect())
            }
        }
    };
}

macro_rules! regressor_predict {
    ($t:ident) => {
        impl super::model::FheRegressor for $t {}

        impl $t {
            /// Float predictions (average of the trees' leaf means).
            pub fn predict(&self, x: &Matrix) -> MlResult<Vec<f64>> {
                Ok(self
                    .fitted()?
                    .predict_raw(x)?
                    .into_iter()
                    .map(|v| v[0])
                    .collect())
            }
        }
    };
}

pub(crate) use {classifier_predict, regressor_predict, tree_model};

/// A CART classification tree (Gini) on `n_bits`-quantized features.
#[derive(Clone, Debug)]
pub struct DecisionTreeClassifier {
    /// Growth limits.
    pub params: TreeParams,
    /// Feature width.
    pub n_bits: u8,
    /// scikit-learn's `random_state`: the order in which features are tried (default 0).
    pub random_state: u32,
    model: Option<TreeEnsemble>,
    compiled: Option<CompiledModel>,
}

impl Default for DecisionTreeClassifier {
    fn default() -> Self {
        DecisionTreeClassifier {
            params: TreeParams::default(),
            n_bits: DEFAULT_TREE_BITS,
            random_state: 0,
            model: None,
            compiled: None,
        }
    }
}

tree_model!(DecisionTreeClassifier, "DecisionTreeClassifier");
classifier_predict!(DecisionTreeClassifier);

impl DecisionTreeClassifier {
    /// An unfitted tree (unlimited depth, 6-bit features).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fits on `x` and class indices `y` (`0..C`).
    pub fn fit(&mut self, x: &Matrix, y: &[usize]) -> MlResult<()> {
        let c = check_classes(x, y, "DecisionTreeClassifier::fit")?;
        self.model = Some(fit_ensemble(
            x,
            Target::Classes(y, c),
            TreeKind::Classifier { n_classes: c },
            self.n_bits,
            &self.params,
            1,
            false,
            self.random_state,
        )?);
        self.compiled = None;
        Ok(())
    }
}

/// A CART regression tree (squared error) on `n_bits`-quantized features.
#[derive(Clone, Debug)]
pub struct DecisionTreeRegressor {
    /// Growth limits.
    pub params: TreeParams,
    /// Feature width.
    pub n_bits: u8,
    /// scikit-learn's `random_state`: the order in which features are tried (default 0).
    pub random_state: u32,
    model: Option<TreeEnsemble>,
    compiled: Option<CompiledModel>,
}

impl Default for DecisionTreeRegressor {
    fn default() -> Self {
        DecisionTreeRegressor {
            params: TreeParams::default(),
            n_bits: DEFAULT_TREE_BITS,
            random_state: 0,
            model: None,
            compiled: None,
        }
    }
}

tree_model!(DecisionTreeRegressor, "DecisionTreeRegressor");
regressor_predict!(DecisionTreeRegressor);

impl DecisionTreeRegressor {
    /// An unfitted tree (unlimited depth, 6-bit features).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fits on `x` and targets `y`.
    pub fn fit(&mut self, x: &Matrix, y: &[f64]) -> MlResult<()> {
        check_values(x, y, "DecisionTreeRegressor::fit")?;
        self.model = Some(fit_ensemble(
            x,
            Target::Values(y),
            TreeKind::Regressor,
            self.n_bits,
            &self.params,
            1,
            false,
            self.random_state,
        )?);
        self.compiled = None;
        Ok(())
    }
}
