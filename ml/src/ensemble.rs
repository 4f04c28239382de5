//! Random forests: [`RandomForestClassifier`], [`RandomForestRegressor`].
//!
//! Trees are grown as in [`super::tree`] on bootstrap samples, considering a random subset of
//! features at each node (`sqrt(d)` for classification, all for regression, as scikit-learn).
//! The trees are scikit-learn's for the same `random_state`: the forest draws one seed per
//! tree, and each tree draws its bootstrap sample and feature subsets from its own seed (see
//! [`super::tree`]).
//! Predictions average the trees (probabilities or values). The compiled program evaluates
//! all trees at once, sharing equal comparisons; `CompileConfig::sum_in_fhe` chooses whether
//! the per-tree outputs are summed in FHE or by the client.
//!
//! FHE-friendly defaults: 20 trees of depth at most 4 (scikit-learn: 100 unlimited trees).

use super::cart::{Target, TreeParams};
use super::error::{MlError, MlResult};
use super::hummingbird::{TreeEnsemble, TreeKind};
use super::linear::check_classes;
use super::matrix::Matrix;
use super::model::{argmax, CircuitStats, CompileConfig, CompiledModel};
use super::tree::{
    check_values, classifier_predict, fit_ensemble, regressor_predict, tree_model,
    DEFAULT_TREE_BITS,
};

/// Default number of trees.
pub const DEFAULT_N_ESTIMATORS: usize = 20;
/// Default maximum depth of forest trees.
pub const DEFAULT_FOREST_DEPTH: usize = 4;

fn forest_params(max_features: Option<usize>) -> TreeParams {
    TreeParams {
        max_depth: Some(DEFAULT_FOREST_DEPTH),
        max_features,
        ..TreeParams::default()
    }
}

/// A random forest of classification trees.
#[derive(Clone, Debug)]
pub struct RandomForestClassifier {
    /// Number of trees.
    pub n_estimators: usize,
    /// Growth limits (`max_features: None` means `sqrt(d)` here).
    pub params: TreeParams,
    /// Feature width.
    pub n_bits: u8,
    /// Bootstrap samples (else every tree sees all rows).
    pub bootstrap: bool,
    /// scikit-learn's `random_state` (default 0).
    pub random_state: u32,
    model: Option<TreeEnsemble>,
    compiled: Option<CompiledModel>,
}

impl Default for RandomForestClassifier {
    fn default() -> Self {
        RandomForestClassifier {
            n_estimators: DEFAULT_N_ESTIMATORS,
            params: forest_params(None),
            n_bits: DEFAULT_TREE_BITS,
            bootstrap: true,
            random_state: 0,
            model: None,
            compiled: None,
        }
    }
}

tree_model!(RandomForestClassifier, "RandomForestClassifier");
classifier_predict!(RandomForestClassifier);

impl RandomForestClassifier {
    /// An unfitted forest (20 trees, depth 4, 6-bit features).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of trees.
    pub fn with_n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// Fits on `x` and class indices `y` (`0..C`).
    pub fn fit(&mut self, x: &Matrix, y: &[usize]) -> MlResult<()> {
        let c = check_classes(x, y, "RandomForestClassifier::fit")?;
        let mut params = self.params;
        if params.max_features.is_none() {
            params.max_features = Some(((x.cols() as f64).sqrt() as usize).max(1));
        }
        self.model = Some(fit_ensemble(
            x,
            Target::Classes(y, c),
            TreeKind::Classifier { n_classes: c },
            self.n_bits,
            &params,
            self.n_estimators,
            self.bootstrap,
            self.random_state,
        )?);
        self.compiled = None;
        Ok(())
    }
}

/// A random forest of regression trees.
#[derive(Clone, Debug)]
pub struct RandomForestRegressor {
    /// Number of trees.
    pub n_estimators: usize,
    /// Growth limits (`max_features: None` means all features).
    pub params: TreeParams,
    /// Feature width.
    pub n_bits: u8,
    /// Bootstrap samples (else every tree sees all rows).
    pub bootstrap: bool,
    /// scikit-learn's `random_state` (default 0).
    pub random_state: u32,
    model: Option<TreeEnsemble>,
    compiled: Option<CompiledModel>,
}

impl Default for RandomForestRegressor {
    fn default() -> Self {
        RandomForestRegressor {
            n_estimators: DEFAULT_N_ESTIMATORS,
            params: forest_params(None),
            n_bits: DEFAULT_TREE_BITS,
            bootstrap: true,
            random_state: 0,
            model: None,
            compiled: None,
        }
    }
}

tree_model!(RandomForestRegressor, "RandomForestRegressor");
regressor_predict!(RandomForestRegressor);

impl RandomForestRegressor {
    /// An unfitted forest (20 trees, depth 4, 6-bit features).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of trees.
    pub fn with_n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// Fits on `x` and targets `y`.
    pub fn fit(&mut self, x: &Matrix, y: &[f64]) -> MlResult<()> {
        check_values(x, y, "RandomForestRegressor::fit")?;
        self.model = Some(fit_ensemble(
            x,
            Target::Values(y),
            TreeKind::Regressor,
            self.n_bits,
            &self.params,
            self.n_estimators,
            self.bootstrap,
            self.random_state,
        )?);
        self.compiled = None;
        Ok(())
    }
}
