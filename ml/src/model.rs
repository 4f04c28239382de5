//! What every compiled model shares: execution [`Mode`]s and the [`Backend`] hook, the
//! client-side [`ClientSpec`] (input quantization, output decoding), the [`CompiledModel`]
//! and its [`CircuitStats`], and the scikit-learn-like traits [`FheClassifier`] and
//! [`FheRegressor`].
//!
//! Flow: the client quantizes a batch of feature rows with [`ClientSpec::encode`] (and, in
//! `Execute` mode, encrypts it), the server runs the tensor-level [`Graph`] through a
//! [`Backend`], and the client decodes the integer outputs with [`ClientSpec::decode`]
//! (dequantize, sum per-tree outputs if the server did not, apply sigmoid/softmax).

use super::error::{MlError, MlResult};
use super::matrix::Matrix;
use super::quantize::{FeatureBins, RoundingMethod, UniformQuantizer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use veil_ir::types::numel;
use veil_ir::{Graph, Op, Tensor};

/// How a compiled model is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// The quantized integer program through the reference interpreter: exact, no crypto.
    Clear,
    /// The lowered TFHE program with simulated noise (no keys), to predict FHE accuracy.
    Simulate,
    /// Real encryption, evaluation on ciphertexts and decryption.
    Execute,
}

/// Why a backend could not run a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Something that runs a tensor-level program on quantized integer inputs and returns its
/// integer outputs (in [`Graph::inputs`] / [`Graph::outputs`] order). [`Interpreter`] is the
/// `Clear` backend; the lowering provides the `Simulate` and `Execute` ones.
pub trait Backend {
    /// The mode this backend implements.
    fn mode(&self) -> Mode;
    /// A short name for messages.
    fn name(&self) -> &str;
    /// Runs `graph` on `inputs`.
    fn run(&self, graph: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, BackendError>;
}

/// The `Clear` backend: the veil-ir reference interpreter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interpreter;

impl Backend for Interpreter {
    fn mode(&self) -> Mode {
        Mode::Clear
    }

    fn name(&self) -> &str {
        "interpreter"
    }

    fn run(&self, graph: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, BackendError> {
        veil_ir::interp::run(graph, inputs).map_err(|e| BackendError(e.to_string()))
    }
}

/// Client-side post-processing of the dequantized outputs of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostProcess {
    /// Values as they are (regression, decision functions).
    Identity,
    /// One logit `z` -> probabilities `[1 - sigmoid(z), sigmoid(z)]`.
    Sigmoid,
    /// Logits -> softmax probabilities.
    Softmax,
    /// One probability `p` of class 1 -> `[1 - p, p]`.
    BinaryProbability,
    /// One decision value `d` -> scores `[-d, d]` (argmax is the sign).
    BinaryDecision,
}

impl PostProcess {
    /// Applies the post-processing to one sample's values.
    pub fn apply(self, v: &[f64]) -> Vec<f64> {
        match self {
            PostProcess::Identity => v.to_vec(),
            PostProcess::Sigmoid => {
                let p = 1.0 / (1.0 + (-v[0]).exp());
                vec![1.0 - p, p]
            }
            PostProcess::Softmax => softmax(v),
            PostProcess::BinaryProbability => vec![1.0 - v[0], v[0]],
            PostProcess::BinaryDecision => vec![-v[0], v[0]],
        }
    }
}

/// Numerically stable softmax.
pub fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// How the client turns the integers of one sample into floats.
///
/// The program returns `groups * values` integers per sample; the client sums the `groups`
/// blocks (per-tree outputs of an ensemble summed on the client; 1 otherwise), dequantizes
/// value `j` as `scale[j] * (sum_j - zero[j]) + offset[j]`, then applies [`PostProcess`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputDecoder {
    /// Values per sample after summing groups.
    pub values: usize,
    /// Blocks summed on the client.
    pub groups: usize,
    /// Dequantization scale per value.
    pub scale: Vec<f64>,
    /// Integer zero per value (after summing).
    pub zero: Vec<i64>,
    /// Float added per value after dequantization (base scores of boosted trees); empty
    /// means none.
    #[serde(default)]
    pub offset: Vec<f64>,
    /// Post-processing.
    pub post: PostProcess,
    /// The value each raw integer of a sample adds to, when the program returns only some of
    /// the `groups * values` columns (a boosted tree scores one class: its other columns
    /// would always be zero). Empty: all `groups * values` columns, group-major.
    #[serde(default)]
    pub columns: Vec<u32>,
    /// A weight per raw column, applied before summing (trees quantized each on its own
    /// leaf range). Empty: every weight is 1.
    #[serde(default)]
    pub column_weight: Vec<f64>,
}

impl OutputDecoder {
    /// Raw integers per sample in the program's output.
    pub fn raw_len(&self) -> usize {
        if self.columns.is_empty() {
            self.values * self.groups
        } else {
            self.columns.len()
        }
    }

    /// Decodes one sample's raw integers ([`OutputDecoder::raw_len`] of them).
    pub fn decode_sample(&self, raw: &[i64]) -> Vec<f64> {
        let mut sums = vec![0f64; self.values];
        let weight = |i: usize| self.column_weight.get(i).copied().unwrap_or(1.0);
        if self.columns.is_empty() {
            for (i, &r) in raw.iter().enumerate().take(self.values * self.groups) {
                sums[i % self.values] += r as f64 * weight(i);
            }
        } else {
            for (i, (&c, &r)) in self.columns.iter().zip(raw).enumerate() {
                if let Some(s) = sums.get_mut(c as usize) {
                    *s += r as f64 * weight(i);
                }
            }
        }
        let v: Vec<f64> = sums
            .iter()
            .enumerate()
            .map(|(j, &s)| {
                self.scale[j] * (s - self.zero[j] as f64)
                    + self.offset.get(j).copied().unwrap_or(0.0)
            })
            .collect();
        self.post.apply(&v)
    }
}

/// Everything the client needs: the shape of the program's input, the input quantizer and the
/// output decoder. Serializable, so it can be shipped with the program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// Features per sample.
    pub n_features: usize,
    /// Samples per program run (the input is `[batch, n_features]`).
    pub batch: usize,
    /// Input quantizer (per feature or per tensor).
    pub input: UniformQuantizer,
    /// Tree models: each quantized feature is sent as two digits of this many bits (the
    /// program's input is `[batch, 2 * n_features]`: the high digits, then the low digits),
    /// so that comparisons bootstrap narrow values. `None`: one integer per feature.
    #[serde(default)]
    pub digit_bits: Option<u8>,
    /// Tree models: when set, features are sent as their ranks among the trees' split points
    /// ([`FeatureBins`]) instead of through `input` (which then only gives the ranks' width).
    #[serde(default)]
    pub bins: Option<FeatureBins>,
    /// Tree models on rank-encoded features ([`ClientSpec::bins`]): when set, the program's
    /// input is one bit per listed `(feature, j)`, `[rank of the feature <= j]` (the trees'
    /// distinct comparisons, in this order), computed by the client instead of sending the
    /// ranks, so that the program bootstraps no comparison. The client holds the split points
    /// already, so the list tells it nothing new.
    #[serde(default)]
    pub comparisons: Option<Vec<(usize, i64)>>,
    /// Output decoder.
    pub output: OutputDecoder,
}

impl ClientSpec {
    /// Quantizes `x` into program inputs of `[batch, n_features]` each; the last batch is
    /// padded by repeating its first row (the padding outputs are dropped by
    /// [`ClientSpec::decode`]).
    pub fn encode(&self, x: &Matrix) -> MlResult<Vec<Tensor<i64>>> {
        x.expect_cols(self.n_features, "encode")?;
        let mut out = Vec::new();
        for start in (0..x.rows()).step_by(self.batch) {
            let cols = self.input_columns();
            let mut data = Vec::with_capacity(self.batch * cols);
            for i in 0..self.batch {
                let r = if start + i < x.rows() {
                    start + i
                } else {
                    start
                };
                let q = match &self.bins {
                    Some(b) => b.rank_all(x.row(r)),
                    None => self.input.quantize_all(x.row(r), self.n_features),
                };
                match (&self.comparisons, self.digit_bits) {
                    (Some(cmps), _) => data.extend(
                        cmps.iter()
                            .map(|&(f, j)| q.get(f).map_or(0, |&r| i64::from(r <= j))),
                    ),
                    (None, None) => data.extend(q),
                    (None, Some(db)) => {
                        data.extend(q.iter().map(|v| v >> db));
                        data.extend(q.iter().map(|v| v & ((1i64 << db) - 1)));
                    }
                }
            }
            out.push(Tensor::new(vec![self.batch, cols], data).map_err(|e| MlError::Invalid(e.0))?);
        }
        Ok(out)
    }

    /// The program inputs that calibrate the compilation for samples like `x`: [`ClientSpec::encode`]
    /// of `x`, and for rank-encoded features ([`FeatureBins`]) also a sample at the lowest
    /// and one at the highest rank of every feature, since any float value has a rank and
    /// the program must be exact on all of them.
    pub fn calibration_inputs(&self, x: &Matrix) -> MlResult<Vec<Tensor<i64>>> {
        match &self.bins {
            None => self.encode(x),
            Some(b) => {
                x.expect_cols(self.n_features, "encode")?;
                let mut rows: Vec<Vec<f64>> = x.iter_rows().map(<[f64]>::to_vec).collect();
                rows.extend(b.extreme_rows());
                self.encode(&Matrix::from_rows(&rows)?)
            }
        }
    }

    /// Integers per sample in the program's input (`n_features`, twice that with digits, one
    /// per comparison with [`ClientSpec::comparisons`]).
    pub fn input_columns(&self) -> usize {
        if let Some(c) = &self.comparisons {
            c.len()
        } else if self.digit_bits.is_some() {
            2 * self.n_features
        } else {
            self.n_features
        }
    }

    /// Decodes the outputs of the runs of [`ClientSpec::encode`]'s batches (one output tensor
    /// per run) into one float vector per sample, keeping the first `rows` samples.
    pub fn decode(&self, outputs: &[Tensor<i64>], rows: usize) -> MlResult<Vec<Vec<f64>>> {
        let per = self.output.raw_len();
        let mut res = Vec::with_capacity(rows);
        for (b, t) in outputs.iter().enumerate() {
            if t.data.len() != self.batch * per {
                return Err(MlError::Invalid(format!(
                    "output of batch {b} has {} integers (shape {:?}), expected {} x {per}",
                    t.data.len(),
                    t.shape,
                    self.batch
                )));
            }
            for s in t.data.chunks(per) {
                if res.len() < rows {
                    res.push(self.output.decode_sample(s));
                }
            }
        }
        if res.len() != rows {
            return Err(MlError::Invalid(format!(
                "decoded {} samples, expected {rows}",
                res.len()
            )));
        }
        Ok(res)
    }
}

/// Size of the FHE program (per sample: divided by the batch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitStats {
    /// Programmable bootstraps per sample.
    pub pbs_per_sample: u64,
    /// Bootstraps per sample by input width in bits.
    pub pbs_by_width: BTreeMap<u8, u64>,
    /// Widest bootstrap input (0 when there is none).
    pub max_pbs_bits: u8,
    /// Widest encrypted value of the program (accumulators included).
    pub max_encrypted_bits: u8,
    /// Width of the encrypted input integers.
    pub input_bits: u8,
    /// Width of the encrypted output integers.
    pub output_bits: u8,
    /// Encrypted output integers per sample.
    pub outputs_per_sample: u64,
}

impl CircuitStats {
    /// Measures `g`, which processes `batch` samples per run.
    pub fn of(g: &Graph, batch: usize) -> Self {
        let mut s = CircuitStats::default();
        let batch = batch.max(1) as u64;
        let mut by_width: BTreeMap<u8, u64> = BTreeMap::new();
        for v in g.values() {
            let ty = g.ty(v);
            let operands = g.operands(v);
            let enc = operands.iter().filter(|o| g.ty(**o).is_encrypted()).count();
            let op = g.op(v);
            match op {
                Op::Input { .. } if ty.is_encrypted() => {
                    s.input_bits = s.input_bits.max(ty.int.bits)
                }
                Op::Output { .. } if ty.is_encrypted() => {
                    s.output_bits = s.output_bits.max(ty.int.bits);
                    s.outputs_per_sample += ty.numel() as u64 / batch;
                }
                _ => {}
            }
            if ty.is_encrypted() && !matches!(op, Op::Output { .. }) {
                s.max_encrypted_bits = s.max_encrypted_bits.max(ty.int.bits);
            }
            if !op.needs_pbs(enc) {
                continue;
            }
            let bits = |i: usize| g.ty(operands[i]).int.bits;
            let (count, width) = match op {
                Op::Mul => (2 * ty.numel() as u64, bits(0).max(bits(1)) + 1),
                Op::MatMul | Op::Conv2d(_) => {
                    let k = g.ty(operands[0]).shape.last().copied().unwrap_or(1) as u64;
                    (2 * k * ty.numel() as u64, bits(0).max(bits(1)) + 1)
                }
                Op::Cmp(_) | Op::Min | Op::Max => (ty.numel() as u64, bits(0).max(bits(1)) + 1),
                // one lookup per element of the (first) operand
                Op::Tlu { .. }
                | Op::TluMulti { .. }
                | Op::Relu
                | Op::Abs
                | Op::Round { .. }
                | Op::Clip { .. }
                | Op::Binary(_)
                | Op::Unary(_)
                | Op::Where
                | Op::Pbs { .. }
                | Op::WopPbs { .. } => (numel(&g.ty(operands[0]).shape) as u64, bits(0)),
                // levelled (`needs_pbs` is false)
                Op::Input { .. }
                | Op::Const { .. }
                | Op::Add
                | Op::Sub
                | Op::Neg
                | Op::Sum { .. }
                | Op::Reshape
                | Op::Transpose { .. }
                | Op::Broadcast
                | Op::Concat { .. }
                | Op::Slice { .. }
                | Op::Output { .. }
                | Op::KeySwitch
                | Op::KeySwitchShr { .. }
                | Op::KeySwitchBit { .. }
                | Op::KeySwitchRound { .. } => continue,
            };
            *by_width.entry(width).or_default() += count;
        }
        for (w, c) in by_width {
            let c = c.div_ceil(batch);
            s.pbs_per_sample += c;
            s.max_pbs_bits = s.max_pbs_bits.max(w);
            s.pbs_by_width.insert(w, c);
        }
        s
    }
}

/// A compiled model: the tensor-level program, the client spec and the program's size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompiledModel {
    /// The tensor-level program (input `[batch, n_features]` quantized, encrypted).
    pub graph: Graph,
    /// Client-side pre- and post-processing.
    pub client: ClientSpec,
    /// Program size.
    pub stats: CircuitStats,
}

impl CompiledModel {
    /// Wraps a finished graph and measures it.
    pub fn new(graph: Graph, client: ClientSpec) -> Self {
        let stats = CircuitStats::of(&graph, client.batch);
        CompiledModel {
            graph,
            client,
            stats,
        }
    }

    /// Encodes `x`, runs every batch through `backend` and decodes: one float vector per
    /// sample (probabilities for classifiers, values for regressors).
    pub fn run(&self, x: &Matrix, backend: &dyn Backend) -> MlResult<Vec<Vec<f64>>> {
        let inputs = self.client.encode(x)?;
        let mut outs = Vec::with_capacity(inputs.len());
        for (b, inp) in inputs.into_iter().enumerate() {
            let mut o = backend
                .run(&self.graph, std::slice::from_ref(&inp))
                .map_err(|e| MlError::Backend {
                    backend: backend.name().into(),
                    msg: format!("batch {b}: {e}"),
                })?;
            if o.len() != 1 {
                return Err(MlError::Backend {
                    backend: backend.name().into(),
                    msg: format!("expected one output tensor, got {}", o.len()),
                });
            }
            outs.push(o.remove(0));
        }
        self.client.decode(&outs, x.rows())
    }
}

/// A model that has been compiled to an FHE program.
pub trait FheModel {
    /// The compiled program, or an error saying to call `compile` first.
    fn compiled(&self) -> MlResult<&CompiledModel>;
}

/// Classifier inference through a compiled program.
pub trait FheClassifier: FheModel {
    /// Class probabilities (or scores) computed by `backend`.
    fn predict_proba_with(&self, x: &Matrix, backend: &dyn Backend) -> MlResult<Vec<Vec<f64>>> {
        self.compiled()?.run(x, backend)
    }

    /// Classes computed by `backend` (argmax of the scores).
    fn predict_with(&self, x: &Matrix, backend: &dyn Backend) -> MlResult<Vec<usize>> {
        Ok(self
            .predict_proba_with(x, backend)?
            .iter()
            .map(|p| argmax(p))
            .collect())
    }

    /// Classes from the quantized program run by the interpreter ([`Mode::Clear`]).
    fn predict_clear(&self, x: &Matrix) -> MlResult<Vec<usize>> {
        self.predict_with(x, &Interpreter)
    }

    /// Probabilities from the quantized program run by the interpreter.
    fn predict_proba_clear(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
        self.predict_proba_with(x, &Interpreter)
    }
}

/// Regressor inference through a compiled program.
pub trait FheRegressor: FheModel {
    /// Predictions computed by `backend`.
    fn predict_with(&self, x: &Matrix, backend: &dyn Backend) -> MlResult<Vec<f64>> {
        Ok(self
            .compiled()?
            .run(x, backend)?
            .into_iter()
            .map(|v| v[0])
            .collect())
    }

    /// Predictions from the quantized program run by the interpreter ([`Mode::Clear`]).
    fn predict_clear(&self, x: &Matrix) -> MlResult<Vec<f64>> {
        self.predict_with(x, &Interpreter)
    }
}

/// Width of each quantized role; `None` takes the model's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NBits {
    /// Inputs (features). Tree models fix this at `fit` (their thresholds depend on it).
    pub inputs: Option<u8>,
    /// Weights of linear layers.
    pub weights: Option<u8>,
    /// Intermediate activations.
    pub activations: Option<u8>,
    /// Outputs (leaf values of trees).
    pub outputs: Option<u8>,
}

impl NBits {
    /// The same width for every role.
    pub fn all(n: u8) -> Self {
        NBits {
            inputs: Some(n),
            weights: Some(n),
            activations: Some(n),
            outputs: Some(n),
        }
    }
}

/// Default [`CompileConfig::input_margin`]: 5% of each feature's range on each side (costs
/// 0.13 bits of resolution; test samples of heavy-tailed features often fall a little outside
/// the training range, and clipping them costs far more accuracy).
pub const DEFAULT_INPUT_MARGIN: f64 = 0.05;

/// Compilation options shared by the built-in models.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompileConfig {
    /// Quantization widths per role.
    pub n_bits: NBits,
    /// Samples per program run.
    pub batch: usize,
    /// Ensembles: sum per-tree outputs in FHE (one output, wider) or return them for the
    /// client to sum (more outputs, narrower; no difference in bootstraps).
    pub sum_in_fhe: bool,
    /// Tree models: comparisons on features of more than 4 bits bootstrap `2 db`-bit values
    /// unless the client sends each feature as two `db`-bit digits (`None`: automatic, digits
    /// of `ceil(n_bits / 2)` bits above 4-bit features; `Some(0)`: never; `Some(db)`: digits
    /// of `db` bits). Costs two narrow bootstraps per comparison instead of one wide one
    /// (less when comparisons share a feature's low-digit test).
    pub tree_digit_bits: Option<u8>,
    /// Input calibration margin: each feature's range seen in the inputset is widened by this
    /// fraction of its width on both sides before quantization, so that samples a little
    /// outside the inputset are not clipped (models calibrated at `compile` only).
    pub input_margin: f64,
    /// Networks ([`super::MlpClassifier`]): round each hidden accumulator whose calibrated
    /// spread is wider than this many bits down to it before its table lookup (Concrete ML's
    /// `rounding_threshold_bits`, the same plan as `onnx::ImportConfig::rounding_bits`; the
    /// lookups get narrower and cheaper). `None`: no rounding.
    pub rounding_bits: Option<u8>,
    /// How `rounding_bits` drops bits (the ONNX import's `rounding_method`): exactly by
    /// default for the built-in MLP (one 1-bit bootstrap per dropped bit; its measured
    /// accuracy), or approximately (no bootstrap of its own, one step off near a tie).
    #[serde(default = "exact_rounding")]
    pub rounding_method: RoundingMethod,
    /// Tree models: send each feature as its rank among the trees' split points
    /// ([`super::FeatureBins`]; default), which keeps every decision and needs
    /// `log2(splits + 1)` bits, instead of its `n_bits.inputs`-bit quantized value.
    #[serde(default = "yes")]
    pub tree_ranks: bool,
    /// Tree models whose features go as ranks ([`CompileConfig::tree_ranks`]): the client
    /// sends the bit of each of the trees' distinct comparisons ([`ClientSpec::comparisons`])
    /// instead of the ranks, and the program bootstraps only the leaf indicators (default).
    /// `false`: the program compares the ranks (one bootstrap per distinct comparison).
    #[serde(default = "yes")]
    pub tree_comparison_inputs: bool,
}

fn exact_rounding() -> RoundingMethod {
    RoundingMethod::Exact
}

fn yes() -> bool {
    true
}

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            n_bits: NBits::default(),
            batch: 1,
            sum_in_fhe: false,
            tree_digit_bits: None,
            input_margin: DEFAULT_INPUT_MARGIN,
            rounding_bits: None,
            rounding_method: RoundingMethod::Exact,
            tree_ranks: true,
            tree_comparison_inputs: true,
        }
    }
}

impl CompileConfig {
    pub(crate) fn check(&self) -> MlResult<()> {
        if self.batch == 0 {
            return Err(MlError::Invalid("batch must be at least 1".into()));
        }
        if self.rounding_bits == Some(0) {
            return Err(MlError::Invalid(
                "rounding_bits must be at least 1 (or None for no rounding)".into(),
            ));
        }
        Ok(())
    }
}

/// Fraction of equal entries.
pub fn accuracy(a: &[usize], b: &[usize]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Coefficient of determination `R^2` of predictions `p` for targets `y`.
pub fn r2_score(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}
