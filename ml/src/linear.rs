//! Linear models: [`LinearRegression`], [`LogisticRegression`], [`LinearSvc`].
//!
//! Training: features are standardized, the model is fitted (smartcore's QR least squares and
//! L-BFGS logistic regression; an exact dual coordinate descent for the SVM), and the
//! standardization is folded back into weights on raw features.
//!
//! Compilation needs **no bootstrap**: the server computes the encrypted integer accumulator
//! `x_q @ w_q + offset` (zero points and bias folded into the offset, see
//! [`QuantizedGemm`]) and returns it; the client dequantizes it and applies the sigmoid,
//! softmax or argmax in the clear. The accumulator is as wide as the weights and the inputs
//! make it (about `n_bits(inputs) + n_bits(weights) + log2(n_features)` bits);
//! [`CircuitStats::output_bits`] reports it.

use super::error::{MlError, MlResult};
use super::matrix::Matrix;
use super::model::{
    CircuitStats, ClientSpec, CompileConfig, CompiledModel, FheClassifier, FheModel, FheRegressor,
    OutputDecoder, PostProcess,
};
use super::quantize::{Granularity, QuantOptions, QuantizedGemm, UniformQuantizer};
use super::rng::Mt19937;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use veil_ir::builder::Builder;

/// Default width of inputs and weights of linear models.
pub const DEFAULT_LINEAR_BITS: u8 = 8;

/// Fitted weights on raw features: `y = x @ w + b` with `w` `[d, o]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearWeights {
    /// Features.
    pub d: usize,
    /// Outputs.
    pub o: usize,
    /// `[d, o]` row-major.
    pub w: Vec<f64>,
    /// `[o]`.
    pub b: Vec<f64>,
}

impl LinearWeights {
    /// `x @ w + b` for every row.
    pub fn decision(&self, x: &Matrix) -> Vec<Vec<f64>> {
        x.iter_rows()
            .map(|r| {
                (0..self.o)
                    .map(|j| {
                        self.b[j]
                            + (0..self.d)
                                .map(|k| r[k] * self.w[k * self.o + j])
                                .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    }

    /// Compiles the weights: input quantized per feature (calibrated on `inputset`), weights
    /// symmetric per output, the accumulator returned encrypted and decoded with `post`.
    pub fn compile(
        &self,
        inputset: &Matrix,
        cfg: &CompileConfig,
        post: PostProcess,
    ) -> MlResult<CompiledModel> {
        cfg.check()?;
        inputset.expect_cols(self.d, "compile inputset")?;
        let in_bits = cfg.n_bits.inputs.unwrap_or(DEFAULT_LINEAR_BITS);
        let w_bits = cfg.n_bits.weights.unwrap_or(DEFAULT_LINEAR_BITS);
        let inq = UniformQuantizer::calibrate_with_margin(
            inputset.data(),
            self.d,
            QuantOptions::unsigned(in_bits, Granularity::PerChannel),
            cfg.input_margin,
        )?;
        let gemm = QuantizedGemm::new(
            &inq,
            &self.w,
            self.d,
            self.o,
            Some(&self.b),
            w_bits,
            Granularity::PerChannel,
        )?;
        let b = Builder::new();
        let x = b.input_encrypted("x", &[cfg.batch, self.d], inq.int_type())?;
        let acc = gemm.emit(&b, x)?;
        b.output("y", acc)?;
        let graph = b.finish()?;
        let client = ClientSpec {
            n_features: self.d,
            batch: cfg.batch,
            input: inq,
            digit_bits: None,
            bins: None,
            comparisons: None,
            output: OutputDecoder {
                values: self.o,
                groups: 1,
                columns: Vec::new(),
                column_weight: Vec::new(),
                scale: gemm.scales.clone(),
                zero: vec![0; self.o],
                offset: Vec::new(),
                post,
            },
        };
        Ok(CompiledModel::new(graph, client))
    }
}

/// Per-feature mean and standard deviation (1 for constant features).
fn standardization(x: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.rows() as f64, x.cols());
    let mut mu = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for r in x.iter_rows() {
        for j in 0..d {
            mu[j] += r[j] / n;
        }
    }
    for r in x.iter_rows() {
        for j in 0..d {
            sd[j] += (r[j] - mu[j]).powi(2) / n;
        }
    }
    for s in &mut sd {
        *s = if *s > 0.0 { s.sqrt() } else { 1.0 };
    }
    (mu, sd)
}

fn standardize(x: &Matrix, mu: &[f64], sd: &[f64]) -> Vec<Vec<f64>> {
    x.iter_rows()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, v)| (v - mu[j]) / sd[j])
                .collect()
        })
        .collect()
}

/// Folds a standardization into weights fitted on standardized features.
fn unstandardize(ws: LinearWeights, mu: &[f64], sd: &[f64]) -> LinearWeights {
    let (d, o) = (ws.d, ws.o);
    let mut w = ws.w;
    let mut b = ws.b;
    for j in 0..o {
        for k in 0..d {
            w[k * o + j] /= sd[k];
            b[j] -= w[k * o + j] * mu[k];
        }
    }
    LinearWeights { d, o, w, b }
}

fn dense(rows: &[Vec<f64>]) -> MlResult<DenseMatrix<f64>> {
    DenseMatrix::from_2d_vec(&rows.to_vec()).map_err(|e| MlError::Invalid(e.to_string()))
}

fn check_xy(x: &Matrix, n: usize, who: &str) -> MlResult<()> {
    if x.rows() != n {
        return Err(MlError::Invalid(format!(
            "{who}: x has {} rows but y has {n} targets",
            x.rows()
        )));
    }
    x.expect_cols(x.cols(), who)
}

/// Checks class labels `0..C` (each present, `C >= 2`) and returns `C`.
pub(crate) fn check_classes(x: &Matrix, y: &[usize], who: &str) -> MlResult<usize> {
    check_xy(x, y.len(), who)?;
    let c = y.iter().max().map_or(0, |m| m + 1);
    let mut seen = vec![false; c];
    for &v in y {
        seen[v] = true;
    }
    if c < 2 || seen.iter().any(|s| !s) {
        return Err(MlError::Invalid(format!(
            "{who}: labels must be the class indices 0..C with every class present and C >= 2; got classes {:?}",
            seen.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect::<Vec<_>>()
        )));
    }
    Ok(c)
}

fn not_fitted(model: &'static str) -> MlError {
    MlError::NotReady {
        model,
        state: "fitted",
        call: "fit",
    }
}

fn not_compiled(model: &'static str) -> MlError {
    MlError::NotReady {
        model,
        state: "compiled",
        call: "compile",
    }
}

macro_rules! fhe_model {
    ($t:ident, $name:literal) => {
        impl FheModel for $t {
            fn compiled(&self) -> MlResult<&CompiledModel> {
                self.compiled.as_ref().ok_or_else(|| not_compiled($name))
            }
        }

        impl $t {
            /// Size of the compiled program, if compiled.
            pub fn stats(&self) -> Option<&CircuitStats> {
                self.compiled.as_ref().map(|c| &c.stats)
            }

            /// The fitted weights on raw features, if fitted.
            pub fn weights(&self) -> Option<&LinearWeights> {
                self.weights.as_ref()
            }

            fn fitted(&self) -> MlResult<&LinearWeights> {
                self.weights.as_ref().ok_or_else(|| not_fitted($name))
            }
        }
    };
}

/// The scores, `predict` and `compile` of a linear classifier: `$binary` post-processing for
/// two classes (one output), `$multi` for more.
macro_rules! linear_classifier {
    ($t:ident, $name:literal, $scores:ident, #[doc = $doc:literal] $binary:ident, $multi:ident) => {
        impl $t {
            fn post(&self) -> MlResult<PostProcess> {
                Ok(if self.fitted()?.o == 1 {
                    PostProcess::$binary
                } else {
                    PostProcess::$multi
                })
            }

            #[doc = $doc]
            pub fn $scores(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
                let w = self.fitted()?;
                x.expect_cols(w.d, concat!($name, "::", stringify!($scores)))?;
                let post = self.post()?;
                Ok(w.decision(x).iter().map(|z| post.apply(z)).collect())
            }

            /// Float classes.
            pub fn predict(&self, x: &Matrix) -> MlResult<Vec<usize>> {
                Ok(self
                    .$scores(x)?
                    .iter()
                    .map(|p| super::model::argmax(p))
                    .collect())
            }

            /// Compiles (inputs quantized per feature, calibrated on `inputset`).
            pub fn compile(
                &mut self,
                inputset: &Matrix,
                cfg: &CompileConfig,
            ) -> MlResult<&CompiledModel> {
                let post = self.post()?;
                let c = self.fitted()?.compile(inputset, cfg, post)?;
                Ok(self.compiled.insert(c))
            }
        }
    };
}

/// Ordinary least squares.
#[derive(Clone, Debug, Default)]
pub struct LinearRegression {
    weights: Option<LinearWeights>,
    compiled: Option<CompiledModel>,
}

fhe_model!(LinearRegression, "LinearRegression");
impl FheRegressor for LinearRegression {}

impl LinearRegression {
    /// An unfitted model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fits on `x` (`n x d`) and targets `y` (`n`).
    pub fn fit(&mut self, x: &Matrix, y: &[f64]) -> MlResult<()> {
        check_xy(x, y.len(), "LinearRegression::fit")?;
        let (mu, sd) = standardization(x);
        let xs = dense(&standardize(x, &mu, &sd))?;
        let ymean = y.iter().sum::<f64>() / y.len() as f64;
        let yc: Vec<f64> = y.iter().map(|v| v - ymean).collect();
        let m = smartcore::linear::linear_regression::LinearRegression::fit(
            &xs,
            &yc,
            Default::default(),
        )
        .map_err(|e| MlError::Training(e.to_string()))?;
        let d = x.cols();
        let w = (0..d).map(|j| *m.coefficients().get((j, 0))).collect();
        let b = vec![*m.intercept() + ymean];
        self.weights = Some(unstandardize(LinearWeights { d, o: 1, w, b }, &mu, &sd));
        self.compiled = None;
        Ok(())
    }

    /// Float predictions.
    pub fn predict(&self, x: &Matrix) -> MlResult<Vec<f64>> {
        let w = self.fitted()?;
        x.expect_cols(w.d, "LinearRegression::predict")?;
        Ok(w.decision(x).into_iter().map(|v| v[0]).collect())
    }

    /// Compiles (inputs quantized per feature, calibrated on `inputset`).
    pub fn compile(&mut self, inputset: &Matrix, cfg: &CompileConfig) -> MlResult<&CompiledModel> {
        let c = self
            .fitted()?
            .compile(inputset, cfg, PostProcess::Identity)?;
        Ok(self.compiled.insert(c))
    }
}

/// L2-regularized logistic regression (binary, or multinomial for more classes).
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    /// Inverse regularization strength (scikit-learn's `C`, on standardized features).
    pub c: f64,
    weights: Option<LinearWeights>,
    compiled: Option<CompiledModel>,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression {
            c: 1.0,
            weights: None,
            compiled: None,
        }
    }
}

fhe_model!(LogisticRegression, "LogisticRegression");
impl FheClassifier for LogisticRegression {}

impl LogisticRegression {
    /// An unfitted model with `C = 1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `C`.
    pub fn with_c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }

    /// Fits on `x` and class indices `y` (`0..C`).
    pub fn fit(&mut self, x: &Matrix, y: &[usize]) -> MlResult<()> {
        let classes = check_classes(x, y, "LogisticRegression::fit")?;
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(MlError::Invalid(format!("C = {} must be positive", self.c)));
        }
        let (mu, sd) = standardization(x);
        let xs = dense(&standardize(x, &mu, &sd))?;
        let yi: Vec<i32> = y.iter().map(|&v| v as i32).collect();
        let params =
            smartcore::linear::logistic_regression::LogisticRegressionParameters::default()
                .with_alpha(1.0 / self.c);
        let m = smartcore::linear::logistic_regression::LogisticRegression::fit(&xs, &yi, params)
            .map_err(|e| MlError::Training(e.to_string()))?;
        let d = x.cols();
        let o = if classes == 2 { 1 } else { classes };
        let coef = m.coefficients();
        let icpt = m.intercept();
        let mut w = vec![0.0; d * o];
        for j in 0..o {
            for k in 0..d {
                w[k * o + j] = *coef.get((j, k));
            }
        }
        let b = (0..o).map(|j| *icpt.get((j, 0))).collect();
        self.weights = Some(unstandardize(LinearWeights { d, o, w, b }, &mu, &sd));
        self.compiled = None;
        Ok(())
    }
}

linear_classifier!(
    LogisticRegression,
    "LogisticRegression",
    predict_proba,
    /// Float class probabilities.
    Sigmoid,
    Softmax
);

/// Linear support vector classifier: L2-regularized squared hinge loss (scikit-learn's
/// `LinearSVC` defaults), one-vs-rest for more than two classes, trained by dual coordinate
/// descent (Hsieh et al. 2008) on standardized features with a regularized bias.
#[derive(Clone, Debug)]
pub struct LinearSvc {
    /// Inverse regularization strength.
    pub c: f64,
    /// Maximum passes over the data.
    pub max_iter: usize,
    weights: Option<LinearWeights>,
    compiled: Option<CompiledModel>,
}

impl Default for LinearSvc {
    fn default() -> Self {
        LinearSvc {
            c: 1.0,
            max_iter: 1000,
            weights: None,
            compiled: None,
        }
    }
}

fhe_model!(LinearSvc, "LinearSvc");
impl FheClassifier for LinearSvc {}

/// Dual coordinate descent for the squared-hinge SVM; `y` in {-1, +1}; the last weight is the
/// bias (feature constant 1).
fn svm_dual_cd(x: &[Vec<f64>], y: &[f64], c: f64, max_iter: usize) -> Vec<f64> {
    let d = x[0].len() + 1;
    let n = x.len();
    let dii = 1.0 / (2.0 * c);
    let dot = |w: &[f64], r: &[f64]| r.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + w[d - 1];
    let qii: Vec<f64> = x
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>() + 1.0 + dii)
        .collect();
    let mut alpha = vec![0.0; n];
    let mut w = vec![0.0; d];
    let mut rng = Mt19937::new(0);
    for _ in 0..max_iter {
        let mut max_pg: f64 = 0.0;
        for i in rng.permutation(n) {
            let g = y[i] * dot(&w, &x[i]) - 1.0 + dii * alpha[i];
            let pg = if alpha[i] > 0.0 { g } else { g.min(0.0) };
            max_pg = max_pg.max(pg.abs());
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (alpha[i] - g / qii[i]).max(0.0);
                let delta = (alpha[i] - old) * y[i];
                for (wk, xk) in w.iter_mut().zip(&x[i]) {
                    *wk += delta * xk;
                }
                w[d - 1] += delta;
            }
        }
        if max_pg < 1e-4 {
            break;
        }
    }
    w
}

impl LinearSvc {
    /// An unfitted model with `C = 1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fits on `x` and class indices `y` (`0..C`).
    pub fn fit(&mut self, x: &Matrix, y: &[usize]) -> MlResult<()> {
        let classes = check_classes(x, y, "LinearSvc::fit")?;
        if !(self.c > 0.0 && self.c.is_finite()) || self.max_iter == 0 {
            return Err(MlError::Invalid(format!(
                "C = {} must be positive and max_iter = {} at least 1",
                self.c, self.max_iter
            )));
        }
        let (mu, sd) = standardization(x);
        let xs = standardize(x, &mu, &sd);
        let d = x.cols();
        let o = if classes == 2 { 1 } else { classes };
        let mut w = vec![0.0; d * o];
        let mut b = vec![0.0; o];
        for j in 0..o {
            let pos = if o == 1 { 1 } else { j };
            let yy: Vec<f64> = y
                .iter()
                .map(|&v| if v == pos { 1.0 } else { -1.0 })
                .collect();
            let wj = svm_dual_cd(&xs, &yy, self.c, self.max_iter);
            for k in 0..d {
                w[k * o + j] = wj[k];
            }
            b[j] = wj[d];
        }
        self.weights = Some(unstandardize(LinearWeights { d, o, w, b }, &mu, &sd));
        self.compiled = None;
        Ok(())
    }
}

linear_classifier!(
    LinearSvc,
    "LinearSvc",
    decision_function,
    /// Float decision scores (`[-d, d]` for two classes, one per class otherwise).
    BinaryDecision,
    Identity
);
