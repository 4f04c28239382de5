//! The public face of the importer: [`OnnxImport`] (a parsed float model) and
//! [`OnnxModel`] (its compiled FHE program plus client-side pre- and post-processing).

use super::compile::{self, batch_tensor, LookupKeep, RoundingPlan, Split};
use super::error::{OnnxError, OnnxResult};
use super::eval::{run_graph, run_nodes};
use super::graph::{FTensor, FloatGraph};
use super::load::{decode_model, load_model};
use crate::model::{Backend, ClientSpec, CompiledModel, Interpreter};
use crate::quantize::RoundingMethod;
use crate::{Matrix, NBits};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Compilation options of an imported model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportConfig {
    /// Quantization widths. Defaults: 8-bit inputs, 8-bit weights (lowered per layer until the
    /// accumulator fits the 16-bit table-lookup limit), 7-bit activations, 8-bit outputs; tree
    /// ensembles: 6-bit inputs and leaves (as the built-in tree models).
    pub n_bits: NBits,
    /// Samples per program run (`0` means 1).
    pub batch: usize,
    /// Concrete ML's `rounding_threshold_bits`: keep at most this many high bits of every
    /// accumulator that a table lookup reads, dropping the rest with a `round` (see
    /// `rounding_method`), so the lookup is as narrow as the kept bits. Widths are the
    /// accumulators' calibrated ones. `None` (default): lookups read whole accumulators while
    /// they are at most [`DEFAULT_MAX_LOOKUP_BITS`] wide; else the model is a network and gets
    /// the cheapest of [`AUTO_ROUNDINGS`] that keeps its predictions on the inputset with the
    /// float model's (see [`OnnxImport::compile`]).
    pub rounding_bits: Option<u8>,
    /// How the `round` drops bits: approximately (default, as Concrete ML: no bootstrap of its
    /// own, the result may be one step off near a tie) or exactly (one 1-bit bootstrap per
    /// dropped bit).
    #[serde(default)]
    pub rounding_method: RoundingMethod,
    /// Tree ensembles whose features go as ranks: the program compares the ranks (one
    /// bootstrap per distinct comparison) instead of reading the comparisons' bits from the
    /// client (the default, `false`: `veil_ml::CompileConfig::tree_comparison_inputs`).
    #[serde(default)]
    pub trees_compare_ranks: bool,
}

/// Widest accumulator a lookup reads unrounded when no `rounding_bits` is given.
pub const DEFAULT_MAX_LOOKUP_BITS: u8 = 8;

/// The roundings tried for a network when none is given, cheapest first: `(kept bits,
/// rounded-network default widths)`.
pub const AUTO_ROUNDINGS: &[(u8, bool)] = &[(6, true), (7, true), (7, false), (8, false)];

/// Inputset rows on which [`OnnxImport::compile`] measures a rounding.
pub const AUTO_ROUNDING_ROWS: usize = 256;

/// How much less agreement with the float model than the best candidate's a cheaper rounding
/// may have on the inputset and still be chosen: five points of label agreement, a stricter
/// measure than accuracy (it also counts samples both models get wrong). Measured on the
/// PyTorch MLP and CNN fixtures, 6 kept bits agree on 98% and 95% of the inputset against
/// 100% and 99% for 8, for test accuracy within one sample of float, at a fifth of the
/// latency and a sixth of the keygen time of 7 kept bits (`--bench onnx_networks`).
pub const AUTO_ROUNDING_TOLERANCE: f64 = 0.05;

/// How much less inputset agreement with the float model than the calibrated plan's the plan
/// whose lookups read exactly the kept bits may have and still be taken (it is the cheaper:
/// a calibrated lookup may read one bit more, which costs 2-4x at 6 bits). One point: on the
/// PyTorch CNN fixture the two differ by one sample of 200 (0.985 against 0.99) for the same
/// test accuracy, while the calibrated plan's 7-bit lookups cost 1.5x the latency.
pub const EXACT_WIDTH_TOLERANCE: f64 = 0.01;

/// How much less inputset agreement with the float model than the automatic plan's a
/// per-lookup refinement (fewer kept bits, factors) may have and still be taken: one point,
/// against the plan's agreement (so refinements never add up past it).
pub const LOOKUP_REFINE_TOLERANCE: f64 = 0.01;

/// How much cheaper (estimated latency, default compile options) a per-lookup refinement must
/// make the program to be taken: 5%.
pub const LOOKUP_REFINE_GAIN: f64 = 0.05;

/// The optimizer's latency estimate of `m` compiled with default options and calibrated on
/// `inputset` (`None` when it does not compile).
fn estimated_latency(m: &OnnxModel, inputset: &Matrix) -> Option<f64> {
    let c = m.compiled();
    let rows: Vec<Vec<veil_ir::Tensor<i64>>> = c
        .client
        .calibration_inputs(inputset)
        .ok()?
        .into_iter()
        .map(|t| vec![t])
        .collect();
    let p = veil_compiler::program::compile(
        &c.graph,
        &rows,
        &veil_compiler::program::CompileConfig::default(),
    )
    .ok()?;
    Some(p.stats.estimated_latency_ms)
}

/// Whether the value `name` of `g` is a class label: the output of a classifier head or an
/// `ArgMax` (or the class it indexes), possibly through casts and reshapes.
pub fn is_label(g: &FloatGraph, name: &str) -> bool {
    use super::graph::FOp;
    let Some(node) = g.nodes.iter().find(|n| n.outputs.iter().any(|o| o == name)) else {
        return false;
    };
    match &node.op {
        FOp::ArgMax { .. } => true,
        FOp::ClassifierPost { .. } => node.outputs.first().is_some_and(|o| o == name),
        // the classes at a label's index (scikit-learn's MLPClassifier: ArgMax, then
        // ArrayFeatureExtractor(classes, index))
        FOp::ArrayFeatureExtractor => node
            .inputs
            .get(1)
            .and_then(|i| i.as_deref())
            .is_some_and(|i| is_label(g, i)),
        _ if matches!(
            node.op_type.as_str(),
            "Cast" | "Identity" | "Reshape" | "Flatten" | "Squeeze"
        ) =>
        {
            node.inputs
                .first()
                .and_then(|i| i.as_deref())
                .is_some_and(|i| is_label(g, i))
        }
        _ => false,
    }
}

/// One prediction per row of `t`: its value when rows hold one value, else the index of the
/// largest (scores or logits).
pub fn per_row(t: &FTensor, rows: usize) -> Vec<f64> {
    let w = t.data.len() / rows.max(1);
    t.data
        .chunks(w.max(1))
        .take(rows)
        .map(|r| {
            if r.len() == 1 {
                r[0]
            } else {
                crate::model::argmax(r) as f64
            }
        })
        .collect()
}

/// How well `quant` (first output) agrees with `float` over `rows` rows: the share of equal
/// labels for a classifier, `1 - SSE / SST` against the float values for a regressor.
fn agreement(m: &OnnxImport, float: &[FTensor], quant: &[FTensor], rows: usize) -> f64 {
    let (Some(f), Some(q)) = (float.first(), quant.first()) else {
        return 0.0;
    };
    let (pf, pq) = (per_row(f, rows), per_row(q, rows));
    if m.first_output_is_label() || f.data.len() > rows {
        pf.iter().zip(&pq).filter(|(a, b)| a == b).count() as f64 / rows.max(1) as f64
    } else {
        let mean = pf.iter().sum::<f64>() / rows.max(1) as f64;
        let sst: f64 = pf.iter().map(|v| (v - mean).powi(2)).sum();
        let sse: f64 = pf.iter().zip(&pq).map(|(a, b)| (a - b).powi(2)).sum();
        if sst == 0.0 {
            f64::from(sse == 0.0)
        } else {
            1.0 - sse / sst
        }
    }
}

/// A parsed ONNX model, evaluated in float; [`OnnxImport::compile`] quantizes it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxImport {
    graph: FloatGraph,
    sample: Vec<usize>,
}

impl OnnxImport {
    /// Parses the bytes of an `.onnx` file.
    pub fn from_bytes(bytes: &[u8]) -> OnnxResult<Self> {
        let graph = load_model(&decode_model(bytes)?)?;
        let sample = graph.sample_shape()?;
        Ok(OnnxImport { graph, sample })
    }

    /// Reads and parses an `.onnx` file.
    pub fn from_file(path: impl AsRef<Path>) -> OnnxResult<Self> {
        let p = path.as_ref();
        let bytes = std::fs::read(p)
            .map_err(|e| OnnxError::Decode(format!("cannot read {}: {e}", p.display())))?;
        Self::from_bytes(&bytes)
    }

    /// The float graph.
    pub fn graph(&self) -> &FloatGraph {
        &self.graph
    }

    /// Shape of one sample (the input without its batch axis).
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample
    }

    /// Values per sample (rows of the inputs given to `predict_float` and `compile`).
    pub fn n_features(&self) -> usize {
        self.sample.iter().product()
    }

    /// Names of the model outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.graph.outputs
    }

    /// Float reference predictions: every model output for the rows of `x` (one flattened
    /// sample per row).
    pub fn predict_float(&self, x: &Matrix) -> OnnxResult<Vec<FTensor>> {
        let mut env = run_graph(&self.graph, batch_tensor(x, &self.sample)?)?;
        self.graph
            .outputs
            .iter()
            .map(|o| {
                env.remove(o)
                    .ok_or_else(|| OnnxError::Malformed(format!("output `{o}` was not computed")))
            })
            .collect()
    }

    /// Quantizes the model with quantizers calibrated on `inputset` (representative rows) and
    /// compiles its encrypted part to a tensor-level veil program.
    ///
    /// Without `rounding_bits`, a network whose accumulators are too wide for a practical
    /// lookup gets the cheapest rounding of [`AUTO_ROUNDINGS`] (in order) whose predictions on
    /// the inputset (up to [`AUTO_ROUNDING_ROWS`] rows, run in the clear) agree with the float
    /// model's within [`AUTO_ROUNDING_TOLERANCE`] of the best of them (classifiers: the share
    /// of equal labels; regressors: `1 - SSE / SST` against the float predictions). With
    /// approximate rounding, each candidate is the calibrated plan or, where it agrees as well
    /// within [`EXACT_WIDTH_TOLERANCE`], the plan whose lookups read exactly the kept bits (as
    /// an explicit `rounding_bits` gives).
    pub fn compile(&self, inputset: &Matrix, cfg: &ImportConfig) -> OnnxResult<OnnxModel> {
        let build =
            |plan: RoundingPlan, keeps: &[Option<LookupKeep>]| -> OnnxResult<Option<OnnxModel>> {
                Ok(compile::compile(
                    &self.graph,
                    &self.sample,
                    inputset,
                    &cfg.n_bits,
                    cfg.batch.max(1),
                    !cfg.trees_compare_ranks,
                    plan,
                    keeps,
                )?
                .map(|c| OnnxModel {
                    compiled: c.model,
                    graph: self.graph.clone(),
                    sample: self.sample.clone(),
                    split: c.split,
                }))
            };
        if let Some(keep) = cfg.rounding_bits {
            let plan = RoundingPlan::Keep {
                keep,
                method: cfg.rounding_method,
                network: false,
                exact_width: true,
            };
            return build(plan, &[])?.ok_or_else(|| OnnxError::Malformed("no program".into()));
        }
        if let Some(m) = build(RoundingPlan::Off, &[])? {
            return Ok(m);
        }
        // a network: measure what each rounding costs in agreement with the float model
        let rows = inputset.rows().min(AUTO_ROUNDING_ROWS);
        let probe = Matrix::new(
            rows,
            inputset.cols(),
            inputset.data()[..rows * inputset.cols()].to_vec(),
        )?;
        let float = self.predict_float(&probe)?;
        let score = |m: &OnnxModel| {
            OnnxResult::Ok(agreement(self, &float, &m.predict_clear(&probe)?, rows))
        };
        let mut tried: Vec<(f64, OnnxModel, RoundingPlan)> = Vec::new();
        for &(keep, network) in AUTO_ROUNDINGS {
            let plan = |exact_width| RoundingPlan::Keep {
                keep,
                method: cfg.rounding_method,
                network,
                exact_width,
            };
            let Some(m) = build(plan(false), &[])? else {
                continue;
            };
            let mut chosen = (score(&m)?, m, plan(false));
            // Approximate rounds widen later lookups by their deviation; the variant that
            // drops those extra bits reads `keep` bits everywhere (cheaper) and replaces the
            // calibrated plan when it agrees with float as well on the inputset, within
            // `EXACT_WIDTH_TOLERANCE`.
            if cfg.rounding_method == RoundingMethod::Approximate {
                if let Some(m) = build(plan(true), &[])? {
                    let s = score(&m)?;
                    if s >= chosen.0 - EXACT_WIDTH_TOLERANCE {
                        chosen = (s, m, plan(true));
                    }
                }
            }
            tried.push(chosen);
        }
        let best = tried.iter().map(|(s, ..)| *s).fold(f64::MIN, f64::max);
        // the cheapest within the tolerance of the best
        let (base, mut model, plan) = tried
            .into_iter()
            .find(|(s, ..)| *s >= best - AUTO_ROUNDING_TOLERANCE)
            .ok_or_else(|| OnnxError::Malformed("no rounding compiles the model".into()))?;
        let RoundingPlan::Keep { keep, .. } = plan else {
            return Ok(model);
        };
        if cfg.rounding_method != RoundingMethod::Approximate {
            return Ok(model);
        }
        // Then lookup by lookup, in order: one bit fewer, with or without factors, or the
        // same bits with factors, where the inputset agreement stays within
        // `LOOKUP_REFINE_TOLERANCE` of the plan's and the optimizer estimates the program
        // cheaper (`LOOKUP_REFINE_GAIN`).
        let Some(mut cost) = estimated_latency(&model, inputset) else {
            return Ok(model);
        };
        let lookups = model
            .graph()
            .values()
            .into_iter()
            .filter(|&v| {
                matches!(
                    model.graph().op(v),
                    veil_ir::Op::Tlu { .. } | veil_ir::Op::TluMulti { .. }
                )
            })
            .count();
        let mut keeps: Vec<Option<LookupKeep>> = vec![None; lookups];
        for i in 0..lookups {
            // (estimated latency, agreement, keep, model) of the candidates that qualify
            let mut found: Vec<(f64, f64, LookupKeep, OnnxModel)> = Vec::new();
            let candidates = [
                (keep.saturating_sub(1), true),
                (keep.saturating_sub(1), false),
                (keep, true),
            ];
            for (bits, factors) in candidates {
                if bits < 2 {
                    continue;
                }
                let k = LookupKeep { bits, factors };
                let mut t = keeps.clone();
                t[i] = Some(k);
                let Some(m) = build(plan, &t)? else { continue };
                let s = score(&m)?;
                if s < base - LOOKUP_REFINE_TOLERANCE {
                    continue;
                }
                match estimated_latency(&m, inputset) {
                    Some(c) if c < cost * (1.0 - LOOKUP_REFINE_GAIN) => found.push((c, s, k, m)),
                    _ => {}
                }
            }
            // the best agreement among those within the gain of the cheapest
            let cheapest = found.iter().map(|f| f.0).fold(f64::INFINITY, f64::min);
            let pick = found
                .into_iter()
                .filter(|f| f.0 <= cheapest * (1.0 + LOOKUP_REFINE_GAIN))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.total_cmp(&a.0)));
            if let Some((c, _, k, m)) = pick {
                cost = c;
                keeps[i] = Some(k);
                model = m;
            }
        }
        Ok(model)
    }

    /// Whether the model's first output is a class label (a classifier head or an `ArgMax`,
    /// possibly through casts and reshapes) or, for a `[rows, k]` output with `k > 1`, scores
    /// whose largest entry is the prediction.
    pub fn first_output_is_label(&self) -> bool {
        self.graph
            .outputs
            .first()
            .is_some_and(|o| is_label(&self.graph, o))
    }
}

/// A compiled ONNX model: the FHE program and the client's pre-processing (input
/// quantization) and post-processing (dequantization, then the model's client-side ops such as
/// Softmax, ArgMax or a classifier head, in float).
#[derive(Clone, Debug)]
pub struct OnnxModel {
    compiled: CompiledModel,
    graph: FloatGraph,
    sample: Vec<usize>,
    split: Split,
}

impl OnnxModel {
    /// The program, its client spec and its size.
    pub fn compiled(&self) -> &CompiledModel {
        &self.compiled
    }

    /// The tensor-level program (input `[batch, n_features]`, quantized and encrypted).
    pub fn graph(&self) -> &veil_ir::Graph {
        &self.compiled.graph
    }

    /// Input quantization and output decoding.
    pub fn client(&self) -> &ClientSpec {
        &self.compiled.client
    }

    /// Names of the model outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.graph.outputs
    }

    /// The value computed on encrypted data and handed to the client.
    pub fn encrypted_output(&self) -> &str {
        &self.split.cut
    }

    /// Names of the ops the client runs in the clear, in order.
    pub fn client_ops(&self) -> Vec<&str> {
        self.split
            .client
            .iter()
            .map(|&i| self.graph.nodes[i].op_type.as_str())
            .collect()
    }

    /// Runs the model on the rows of `x` through `backend`: quantize, run the program, decode,
    /// then the client-side post-processing. Returns every model output.
    pub fn run(&self, x: &Matrix, backend: &dyn Backend) -> OnnxResult<Vec<FTensor>> {
        let f: usize = self.sample.iter().product();
        if x.cols() != f {
            return Err(OnnxError::Shape(format!(
                "the model takes samples of shape {:?} ({f} values per row), got rows of {} values",
                self.sample,
                x.cols()
            )));
        }
        let decoded = self.compiled.run(x, backend)?;
        let cut_shape = self.cut_sample_shape(x)?;
        let w: usize = cut_shape.iter().product();
        let mut shape = vec![x.rows()];
        shape.extend(cut_shape);
        let data: Vec<f64> = decoded
            .iter()
            .flat_map(|r| r[..w].iter().copied())
            .collect();
        let cut = FTensor::new(shape, data).map_err(|e| OnnxError::Shape(e.0))?;
        let mut env = self.graph.consts.clone();
        env.insert(self.split.cut.clone(), cut);
        run_nodes(
            self.split.client.iter().map(|&i| &self.graph.nodes[i]),
            &mut env,
        )?;
        self.graph
            .outputs
            .iter()
            .map(|o| {
                env.remove(o)
                    .ok_or_else(|| OnnxError::Malformed(format!("output `{o}` was not computed")))
            })
            .collect()
    }

    /// [`OnnxModel::run`] with the reference interpreter (`Mode::Clear`).
    pub fn predict_clear(&self, x: &Matrix) -> OnnxResult<Vec<FTensor>> {
        self.run(x, &Interpreter)
    }

    /// Shape of one sample of the encrypted output (found by a float run of one row).
    fn cut_sample_shape(&self, x: &Matrix) -> OnnxResult<Vec<usize>> {
        let one = Matrix::new(1, x.cols(), x.data()[..x.cols()].to_vec())?;
        let env = run_graph(&self.graph, batch_tensor(&one, &self.sample)?)?;
        let t = env.get(&self.split.cut).ok_or_else(|| {
            OnnxError::Malformed(format!("`{}` was not computed", self.split.cut))
        })?;
        Ok(t.shape[1..].to_vec())
    }
}
