//! Bundled datasets (from smartcore: breast cancer, iris, digits) and a deterministic
//! train/test split.
//!
//! [`train_test_split`] reproduces scikit-learn's `train_test_split(x, y, test_size=f,
//! random_state=seed)` (with `shuffle=True`, no stratification): `n_test = ceil(f * n)`, the
//! permutation is numpy's legacy `RandomState(seed).permutation(n)`, the first `n_test`
//! permuted indices form the test set and the rest the train set, both in permutation order. So
//! a 75/25 split with seed 0 selects the same samples as scikit-learn's `random_state=0` (given
//! the same sample order, which smartcore's copies of the datasets keep).

use super::error::{MlError, MlResult};
use super::matrix::Matrix;
use super::rng::Mt19937;

/// A dataset: features, targets (class index for classification), names.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Dataset name.
    pub name: String,
    /// Features, one row per sample.
    pub x: Matrix,
    /// Targets: class index (as `f64`) for classification, value for regression.
    pub y: Vec<f64>,
    /// Feature names (may be empty).
    pub feature_names: Vec<String>,
    /// Class names for classification (may be empty).
    pub target_names: Vec<String>,
}

impl Dataset {
    /// Targets as class indices; fails if a target is not a non-negative integer.
    pub fn classes(&self) -> MlResult<Vec<usize>> {
        labels_to_classes(&self.y)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the dataset has no sample.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The samples at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.x.select_rows(idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            feature_names: self.feature_names.clone(),
            target_names: self.target_names.clone(),
        }
    }
}

/// Converts float labels to class indices (`0.0, 1.0, ...`).
pub fn labels_to_classes(y: &[f64]) -> MlResult<Vec<usize>> {
    y.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f64 {
                Ok(v as usize)
            } else {
                Err(MlError::Invalid(format!(
                    "target {i} = {v} is not a class index (a non-negative integer)"
                )))
            }
        })
        .collect()
}

fn convert<Y: Copy + Into<f64>>(
    name: &str,
    d: smartcore::dataset::Dataset<f32, Y>,
) -> MlResult<Dataset> {
    let x = Matrix::new(
        d.num_samples,
        d.num_features,
        d.data.iter().map(|&v| v as f64).collect(),
    )?;
    Ok(Dataset {
        name: name.into(),
        x,
        y: d.target.iter().map(|&v| v.into()).collect(),
        feature_names: d.feature_names,
        target_names: d.target_names,
    })
}

/// Wisconsin breast cancer: 569 samples, 30 features, 2 classes (0 malignant, 1 benign).
pub fn breast_cancer() -> MlResult<Dataset> {
    convert(
        "breast_cancer",
        smartcore::dataset::breast_cancer::load_dataset(),
    )
}

/// Iris: 150 samples, 4 features, 3 classes.
pub fn iris() -> MlResult<Dataset> {
    convert("iris", smartcore::dataset::iris::load_dataset())
}

/// Digits: 1797 8x8 images (64 features, 0..16), 10 classes.
pub fn digits() -> MlResult<Dataset> {
    convert("digits", smartcore::dataset::digits::load_dataset())
}

/// Diabetes: 442 samples, 10 features, a regression target.
pub fn diabetes() -> MlResult<Dataset> {
    convert("diabetes", smartcore::dataset::diabetes::load_dataset())
}

/// A train/test split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Training samples.
    pub train: Dataset,
    /// Test samples.
    pub test: Dataset,
}

/// The indices `(train, test)` of scikit-learn's shuffled split (see the module docs).
pub fn split_indices(
    n: usize,
    test_fraction: f64,
    seed: u32,
) -> MlResult<(Vec<usize>, Vec<usize>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(MlError::Invalid(format!(
            "test fraction {test_fraction} must be strictly between 0 and 1"
        )));
    }
    let n_test = (test_fraction * n as f64).ceil() as usize;
    if n_test == 0 || n_test >= n {
        return Err(MlError::Invalid(format!(
            "a test fraction of {test_fraction} leaves {n_test} of {n} samples for testing; both sets must be non-empty"
        )));
    }
    let perm = Mt19937::new(seed).permutation(n);
    Ok((perm[n_test..].to_vec(), perm[..n_test].to_vec()))
}

/// Splits `data` like scikit-learn's `train_test_split(test_size=test_fraction,
/// random_state=seed)`; `train_test_split(&d, 0.25, 0)` is the usual 75/25 split.
pub fn train_test_split(data: &Dataset, test_fraction: f64, seed: u32) -> MlResult<Split> {
    let (train, test) = split_indices(data.len(), test_fraction, seed)?;
    Ok(Split {
        train: data.subset(&train),
        test: data.subset(&test),
    })
}
