//! A minimal dense row-major `f64` matrix: the feature matrices the models take.

use super::error::{MlError, MlResult};
use serde::{Deserialize, Serialize};

/// A dense row-major matrix of `rows x cols` floats (samples x features).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major data; fails if `data.len() != rows * cols` or a dimension is 0.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> MlResult<Self> {
        if rows == 0 || cols == 0 {
            return Err(MlError::Invalid(format!(
                "a matrix needs at least one row and one column, got {rows}x{cols}"
            )));
        }
        if data.len() != rows * cols {
            return Err(MlError::Invalid(format!(
                "a {rows}x{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A matrix from rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> MlResult<Self> {
        let cols = rows.first().map_or(0, |r| r.len());
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(MlError::Invalid(format!(
                "row {i} has {} values but row 0 has {cols}; all rows must have the same length",
                r.len()
            )));
        }
        Matrix::new(rows.len(), cols, rows.concat())
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major data.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= rows`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If out of range.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// Iterator over rows.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f64]> {
        self.data.chunks(self.cols)
    }

    /// The rows at `idx`, in that order (an index may repeat: bootstrap samples).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }

    /// Rows as vectors (for libraries that take `Vec<Vec<f64>>`).
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        self.iter_rows().map(|r| r.to_vec()).collect()
    }

    /// Checks that the matrix has `cols` columns; `who` names the caller in the error.
    pub fn expect_cols(&self, cols: usize, who: &str) -> MlResult<()> {
        if self.cols != cols {
            return Err(MlError::Invalid(format!(
                "{who}: x has {} features but the model was fitted on {cols}",
                self.cols
            )));
        }
        if let Some(k) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(MlError::Invalid(format!(
                "{who}: x[{}][{}] = {} is not finite; clean the data first",
                k / self.cols,
                k % self.cols,
                self.data[k]
            )));
        }
        Ok(())
    }
}
