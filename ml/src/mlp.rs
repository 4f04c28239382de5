//! A multi-layer perceptron classifier trained for FHE: [`MlpClassifier`].
//!
//! Every hidden neuron costs one bootstrap (its ReLU and requantization fused into one table
//! lookup on the integer accumulator), and that bootstrap is as wide as the accumulator, so
//! the network is trained *quantization-aware* (straight-through estimator): inputs are
//! quantized per feature to `input_bits` (default 2), weights symmetrically per neuron to
//! `weight_bits` (default 2: `{-s, 0, s}`), hidden activations to `activation_bits` (default
//! 3) and biases to the accumulator's step, exactly as the compiled program computes them,
//! with an L1 penalty that zeroes weights. `compile` then shifts every hidden accumulator by
//! the center of its calibrated range (a free constant; the table undoes it), so that a
//! lookup is as wide as the accumulator's spread, not its bias. On breast cancer (hidden
//! layers 16 and 8) every bootstrap has 5 bits (24 per sample); post-training quantization of
//! a float network (the ONNX import) needs 15-16-bit accumulators at useful accuracy.
//!
//! The model ([`MlpClassifier::predict`]) is the trained network in float arithmetic, with
//! its quantized inputs, weights and activations (as the tree models' float model runs on
//! quantized features); the program computes exactly that in integers: `x_q @ W1_q + off1`
//! -> one lookup per hidden neuron -> ... -> the last layer's integer accumulator, returned
//! encrypted; the client dequantizes it and applies the sigmoid (two classes) or softmax.

use super::error::{MlError, MlResult};
use super::linear::check_classes;
use super::matrix::Matrix;
use super::model::{
    argmax, CircuitStats, ClientSpec, CompileConfig, CompiledModel, FheClassifier, FheModel,
    OutputDecoder, PostProcess,
};
use super::quantize::{
    emit_channel_activation, Granularity, LookupRounding, QuantOptions, QuantizedGemm, Rounding,
    UniformQuantizer,
};
use super::rng::Mt19937;
use veil_ir::builder::Builder;
use veil_ir::infer::round_value;
use veil_ir::IntType;

/// One dense layer `y = x @ w + b`, `w` `[inputs, outputs]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Weights, row-major `[inputs, outputs]`.
    pub w: Vec<f64>,
    /// Biases.
    pub b: Vec<f64>,
}

/// Symmetric per-output quantization of `w` (`[k, o]`) to `bits`: the fake-quantized weights.
fn fake_quant_weights(w: &[f64], k: usize, o: usize, bits: u8) -> (Vec<f64>, Vec<f64>) {
    let qmax = ((1i64 << (bits - 1)) - 1) as f64;
    let scales: Vec<f64> = (0..o)
        .map(|j| {
            let m = (0..k).map(|i| w[i * o + j].abs()).fold(0.0, f64::max);
            if m > 0.0 {
                m / qmax
            } else {
                1.0
            }
        })
        .collect();
    let q = (0..k * o)
        .map(|i| {
            let s = scales[i % o];
            (w[i] / s).round().clamp(-qmax, qmax) * s
        })
        .collect();
    (q, scales)
}

/// Biases rounded to the accumulator's step (`weight scale * input step`), as the program's
/// integer offsets round them.
fn fake_quant_bias(b: &[f64], wscales: &[f64], in_step: f64) -> Vec<f64> {
    b.iter()
        .zip(wscales)
        .map(|(&v, &s)| {
            let step = s * in_step;
            (v / step).round() * step
        })
        .collect()
}

/// `x @ w + b` for a row-major batch `x` `[n, k]`.
fn affine(x: &[f64], n: usize, w: &[f64], b: &[f64], k: usize, o: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * o];
    for r in 0..n {
        let yr = &mut y[r * o..(r + 1) * o];
        yr.copy_from_slice(b);
        for i in 0..k {
            let v = x[r * k + i];
            if v != 0.0 {
                for (yj, wj) in yr.iter_mut().zip(&w[i * o..(i + 1) * o]) {
                    *yj += v * wj;
                }
            }
        }
    }
    y
}

/// Unsigned quantization of an activation to `levels` steps of `s` (fake-quantized).
fn fake_quant_act(a: f64, s: f64, levels: f64) -> f64 {
    (a / s).round().clamp(0.0, levels) * s
}

/// A ReLU MLP classifier with quantization-aware training (see the module docs).
#[derive(Clone, Debug)]
pub struct MlpClassifier {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Input width (per feature, unsigned).
    pub input_bits: u8,
    /// Weight width (symmetric, per neuron; 2 means `{-s, 0, s}`).
    pub weight_bits: u8,
    /// Hidden activation width (unsigned).
    pub activation_bits: u8,
    /// Training epochs (mini-batches of 32, Adam).
    pub epochs: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// L1 penalty on the weights (zeroes weights: narrower accumulators).
    pub l1: f64,
    /// Seed of the initialization and the batch order of the first training.
    pub seed: u32,
    /// Trainings from successive seeds; the best on the training set is kept.
    pub restarts: usize,
    fitted: Option<Fitted>,
    compiled: Option<CompiledModel>,
}

/// What `fit` learns.
#[derive(Clone, Debug, PartialEq)]
struct Fitted {
    /// Per-feature unsigned input quantizer.
    input: UniformQuantizer,
    /// Layers; the last one produces the logits.
    layers: Vec<Dense>,
    /// Upper end of each hidden layer's activation range (the requantization range).
    act_max: Vec<f64>,
    classes: usize,
}

impl Default for MlpClassifier {
    fn default() -> Self {
        MlpClassifier {
            hidden: vec![16, 8],
            input_bits: 2,
            weight_bits: 2,
            activation_bits: 3,
            epochs: 150,
            learning_rate: 0.01,
            l1: 1e-3,
            seed: 0,
            restarts: 5,
            fitted: None,
            compiled: None,
        }
    }
}

impl FheModel for MlpClassifier {
    fn compiled(&self) -> MlResult<&CompiledModel> {
        self.compiled.as_ref().ok_or(MlError::NotReady {
            model: "MlpClassifier",
            state: "compiled",
            call: "compile",
        })
    }
}

impl FheClassifier for MlpClassifier {}

/// The network's input: quantized features, centered and scaled to about `[-1, 1]`.
fn encode(input: &UniformQuantizer, x: &Matrix) -> Vec<f64> {
    let c = input_unit(input);
    x.iter_rows()
        .flat_map(|r| {
            input
                .quantize_all(r, r.len())
                .into_iter()
                .enumerate()
                .map(move |(k, q)| (q - input.zero_point[k % input.channels()]) as f64 * c)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The float step of layer `l`'s input: the input encoding's, or the previous activation
/// quantizer's.
fn in_step(f: &Fitted, l: usize, levels: f64) -> f64 {
    if l == 0 {
        input_unit(&f.input)
    } else {
        f.act_max[l - 1] / levels
    }
}

/// The float step of the network's input encoding.
fn input_unit(input: &UniformQuantizer) -> f64 {
    1.0 / (1u64 << input.n_bits.saturating_sub(1)) as f64
}

impl MlpClassifier {
    /// An unfitted network (hidden layers 16 and 8; 2-bit inputs, 2-bit weights, 3-bit
    /// activations; 150 epochs, 5 restarts).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the hidden layer widths.
    pub fn with_hidden(mut self, hidden: &[usize]) -> Self {
        self.hidden = hidden.to_vec();
        self
    }

    /// Sets the input, weight and activation widths.
    pub fn with_bits(mut self, input: u8, weight: u8, activation: u8) -> Self {
        self.input_bits = input;
        self.weight_bits = weight;
        self.activation_bits = activation;
        self
    }

    /// Sets the L1 penalty.
    pub fn with_l1(mut self, l1: f64) -> Self {
        self.l1 = l1;
        self
    }

    /// Sets the number of training epochs.
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Size of the compiled program, if compiled.
    pub fn stats(&self) -> Option<&CircuitStats> {
        self.compiled.as_ref().map(|c| &c.stats)
    }

    fn fitted(&self) -> MlResult<&Fitted> {
        self.fitted.as_ref().ok_or(MlError::NotReady {
            model: "MlpClassifier",
            state: "fitted",
            call: "fit",
        })
    }

    /// Float logits, and the fake-quantized logits when `quantized`.
    fn forward(&self, f: &Fitted, x: &[f64], n: usize, quantized: bool) -> Vec<f64> {
        let levels = ((1u64 << self.activation_bits) - 1) as f64;
        let mut h = x.to_vec();
        for (l, layer) in f.layers.iter().enumerate() {
            let (w, bias) = if quantized {
                let (w, s) =
                    fake_quant_weights(&layer.w, layer.inputs, layer.outputs, self.weight_bits);
                let step = in_step(f, l, levels);
                (w, fake_quant_bias(&layer.b, &s, step))
            } else {
                (layer.w.clone(), layer.b.clone())
            };
            let mut y = affine(&h, n, &w, &bias, layer.inputs, layer.outputs);
            if l + 1 < f.layers.len() {
                let s = f.act_max[l] / levels;
                for v in &mut y {
                    *v = v.max(0.0);
                    if quantized {
                        *v = fake_quant_act(*v, s, levels);
                    }
                }
            }
            h = y;
        }
        h
    }

    /// Fits on `x` and class indices `y` (`0..C`): `restarts` trainings from seeds `seed,
    /// seed + 1, ...`, keeping the network with the best training accuracy (then the
    /// smallest training loss).
    pub fn fit(&mut self, x: &Matrix, y: &[usize]) -> MlResult<()> {
        let mut best: Option<(usize, f64, Fitted)> = None;
        for r in 0..self.restarts.max(1) {
            self.fit_seed(x, y, self.seed.wrapping_add(r as u32))?;
            let p = self.predict_proba(x)?;
            let correct = p.iter().zip(y).filter(|(p, &c)| argmax(p) == c).count();
            let loss: f64 = p.iter().zip(y).map(|(p, &c)| -(p[c].max(1e-12)).ln()).sum();
            let better = best
                .as_ref()
                .is_none_or(|(bc, bl, _)| correct > *bc || (correct == *bc && loss < *bl));
            if better {
                best = Some((correct, loss, self.fitted.take().expect("fitted")));
            }
        }
        self.fitted = best.map(|b| b.2);
        Ok(())
    }

    fn fit_seed(&mut self, x: &Matrix, y: &[usize], seed: u32) -> MlResult<()> {
        let classes = check_classes(x, y, "MlpClassifier::fit")?;
        for (what, b, min) in [
            ("input_bits", self.input_bits, 1),
            ("weight_bits", self.weight_bits, 2),
            ("activation_bits", self.activation_bits, 1),
        ] {
            if !(min..=8).contains(&b) {
                return Err(MlError::Invalid(format!(
                    "MlpClassifier: {what} = {b} must be in {min}..=8"
                )));
            }
        }
        if self.hidden.contains(&0) || self.epochs == 0 {
            return Err(MlError::Invalid(
                "MlpClassifier: hidden widths and epochs must be at least 1".into(),
            ));
        }
        let input = UniformQuantizer::calibrate(
            x.data(),
            x.cols(),
            QuantOptions::unsigned(self.input_bits, Granularity::PerChannel),
        )?;
        let (n, d) = (x.rows(), x.cols());
        let xs = encode(&input, x);
        let o = if classes == 2 { 1 } else { classes };
        let mut rng = Mt19937::new(seed);
        let mut normal = || {
            let (u1, u2) = (rng.next_f64().max(1e-300), rng.next_f64());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let mut sizes = vec![d];
        sizes.extend(&self.hidden);
        sizes.push(o);
        let mut layers: Vec<Dense> = sizes
            .windows(2)
            .map(|w| {
                let std = (2.0 / w[0] as f64).sqrt();
                Dense {
                    inputs: w[0],
                    outputs: w[1],
                    w: (0..w[0] * w[1]).map(|_| normal() * std).collect(),
                    b: vec![0.0; w[1]],
                }
            })
            .collect();
        let nl = layers.len();
        let levels = ((1u64 << self.activation_bits) - 1) as f64;
        // Adam state.
        let mut m: Vec<(Vec<f64>, Vec<f64>)> = layers
            .iter()
            .map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()]))
            .collect();
        let mut v = m.clone();
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        let mut step = 0i32;
        let mut act_max = vec![1.0; nl - 1];
        let mut order_rng = Mt19937::new(seed.wrapping_add(0x9e37_79b9));
        let batch = 32;
        for epoch in 0..self.epochs {
            // Quantization starts after a float warm-up (a tenth of the epochs).
            let quant = epoch >= self.epochs / 10;
            let perm = order_rng.permutation(n);
            let mut new_max = vec![0.0f64; nl - 1];
            for chunk in perm.chunks(batch) {
                let bn = chunk.len();
                let xb: Vec<f64> = chunk
                    .iter()
                    .flat_map(|&r| xs[r * d..(r + 1) * d].iter().copied())
                    .collect();
                // Forward, keeping what backward needs.
                let mut hs = vec![xb];
                let mut pre = Vec::with_capacity(nl);
                let mut wq = Vec::with_capacity(nl);
                for (l, layer) in layers.iter().enumerate() {
                    let (w, bias) = if quant {
                        let (w, s) = fake_quant_weights(
                            &layer.w,
                            layer.inputs,
                            layer.outputs,
                            self.weight_bits,
                        );
                        let step = if l == 0 {
                            input_unit(&input)
                        } else {
                            act_max[l - 1] / levels
                        };
                        (w, fake_quant_bias(&layer.b, &s, step))
                    } else {
                        (layer.w.clone(), layer.b.clone())
                    };
                    let y = affine(&hs[l], bn, &w, &bias, layer.inputs, layer.outputs);
                    wq.push(w);
                    if l + 1 < nl {
                        let s = act_max[l] / levels;
                        let a: Vec<f64> = y
                            .iter()
                            .map(|&z| {
                                let r = z.max(0.0);
                                new_max[l] = new_max[l].max(r);
                                if quant {
                                    fake_quant_act(r, s, levels)
                                } else {
                                    r
                                }
                            })
                            .collect();
                        pre.push(y);
                        hs.push(a);
                    } else {
                        pre.push(y);
                    }
                }
                // Cross-entropy gradient on the logits.
                let logits = &pre[nl - 1];
                let mut g: Vec<f64> = vec![0.0; bn * o];
                for (i, &r) in chunk.iter().enumerate() {
                    let z = &logits[i * o..(i + 1) * o];
                    if o == 1 {
                        let p = 1.0 / (1.0 + (-z[0]).exp());
                        g[i] = (p - (y[r] == 1) as u8 as f64) / bn as f64;
                    } else {
                        let p = super::model::softmax(z);
                        for j in 0..o {
                            g[i * o + j] = (p[j] - (y[r] == j) as u8 as f64) / bn as f64;
                        }
                    }
                }
                step += 1;
                for l in (0..nl).rev() {
                    let (k, oo) = (layers[l].inputs, layers[l].outputs);
                    let h = &hs[l];
                    let mut gw = vec![0.0; k * oo];
                    let mut gb = vec![0.0; oo];
                    for i in 0..bn {
                        for j in 0..oo {
                            let gj = g[i * oo + j];
                            if gj == 0.0 {
                                continue;
                            }
                            gb[j] += gj;
                            for kk in 0..k {
                                gw[kk * oo + j] += h[i * k + kk] * gj;
                            }
                        }
                    }
                    // Gradient to the previous layer's activations (through the quantized
                    // weights; straight through the rounding; zero where ReLU or the
                    // requantization clips).
                    if l > 0 {
                        let mut gh = vec![0.0; bn * k];
                        for i in 0..bn {
                            for kk in 0..k {
                                let mut s = 0.0;
                                for j in 0..oo {
                                    s += g[i * oo + j] * wq[l][kk * oo + j];
                                }
                                let z = pre[l - 1][i * k + kk];
                                let live = z > 0.0 && (!quant || z < act_max[l - 1]);
                                gh[i * k + kk] = if live { s } else { 0.0 };
                            }
                        }
                        g = gh;
                    }
                    // Cosine decay over the epochs.
                    let lr = self.learning_rate
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * epoch as f64 / self.epochs as f64).cos());
                    let t = step;
                    let layer = &mut layers[l];
                    for (idx, gwi) in gw.iter().enumerate() {
                        let gr = gwi + self.l1 * layer.w[idx].signum();
                        let (mw, vw) = (&mut m[l].0[idx], &mut v[l].0[idx]);
                        *mw = b1 * *mw + (1.0 - b1) * gr;
                        *vw = b2 * *vw + (1.0 - b2) * gr * gr;
                        let mh = *mw / (1.0 - b1.powi(t));
                        let vh = *vw / (1.0 - b2.powi(t));
                        layer.w[idx] -= lr * mh / (vh.sqrt() + eps);
                    }
                    for (j, gbj) in gb.iter().enumerate() {
                        let (mb, vb) = (&mut m[l].1[j], &mut v[l].1[j]);
                        *mb = b1 * *mb + (1.0 - b1) * gbj;
                        *vb = b2 * *vb + (1.0 - b2) * gbj * gbj;
                        let mh = *mb / (1.0 - b1.powi(t));
                        let vh = *vb / (1.0 - b2.powi(t));
                        layer.b[j] -= lr * mh / (vh.sqrt() + eps);
                    }
                }
            }
            // The requantization ranges follow the activations seen in the last epoch.
            for (a, nm) in act_max.iter_mut().zip(new_max) {
                *a = if nm > 0.0 { nm } else { 1.0 };
            }
        }
        let f = Fitted {
            input,
            layers,
            act_max,
            classes,
        };
        // Final requantization ranges: the activations of the quantized network on the
        // training set (ranges computed layer by layer).
        let mut f = f;
        let mut h = xs;
        for l in 0..nl - 1 {
            let layer = &f.layers[l];
            let (w, sc) =
                fake_quant_weights(&layer.w, layer.inputs, layer.outputs, self.weight_bits);
            let bias = fake_quant_bias(&layer.b, &sc, in_step(&f, l, levels));
            let z = affine(&h, n, &w, &bias, layer.inputs, layer.outputs);
            let mx = z.iter().cloned().fold(0.0, f64::max);
            f.act_max[l] = if mx > 0.0 { mx } else { 1.0 };
            let s = f.act_max[l] / levels;
            h = z
                .iter()
                .map(|&v| fake_quant_act(v.max(0.0), s, levels))
                .collect();
        }
        self.fitted = Some(f);
        self.compiled = None;
        Ok(())
    }

    /// Class probabilities of the trained network in float arithmetic: quantized inputs,
    /// weights and activations exactly as trained (quantization-aware), float sums. This is
    /// the model; the compiled program computes it in integers.
    pub fn predict_proba(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
        self.proba(x, true)
    }

    /// Classes of [`MlpClassifier::predict_proba`].
    pub fn predict(&self, x: &Matrix) -> MlResult<Vec<usize>> {
        Ok(self.predict_proba(x)?.iter().map(|p| argmax(p)).collect())
    }

    /// Probabilities of the latent float network (the weights before quantization, float
    /// activations): what quantization-aware training optimizes through, for diagnostics.
    pub fn predict_proba_latent(&self, x: &Matrix) -> MlResult<Vec<Vec<f64>>> {
        self.proba(x, false)
    }

    fn proba(&self, x: &Matrix, quantized: bool) -> MlResult<Vec<Vec<f64>>> {
        let f = self.fitted()?;
        x.expect_cols(f.layers[0].inputs, "MlpClassifier::predict")?;
        let z = self.forward(f, &encode(&f.input, x), x.rows(), quantized);
        let o = f.layers.last().expect("layers").outputs;
        let post = if f.classes == 2 {
            PostProcess::Sigmoid
        } else {
            PostProcess::Softmax
        };
        Ok(z.chunks(o).map(|r| post.apply(r)).collect())
    }

    /// Compiles the fitted network. `inputset` (representative rows, e.g. the training set)
    /// calibrates the integer range of every hidden accumulator: each is shifted by the
    /// center of its range before its table lookup (a free constant in the offset, undone in
    /// the table), so that the lookup is only as wide as the accumulator's spread, not its
    /// bias. `cfg.batch` samples per run.
    pub fn compile(&mut self, inputset: &Matrix, cfg: &CompileConfig) -> MlResult<&CompiledModel> {
        cfg.check()?;
        let f = self.fitted()?;
        let d = f.layers[0].inputs;
        inputset.expect_cols(d, "MlpClassifier::compile inputset")?;
        let b = Builder::new();
        let x = b.input_encrypted("x", &[cfg.batch, d], f.input.int_type())?;
        // The network reads (q - z) * unit: an input "quantizer" of scale `unit`.
        let mut inq = UniformQuantizer {
            scale: vec![input_unit(&f.input); d],
            ..f.input.clone()
        };
        // Integer activations of the inputset, layer by layer (the program's semantics).
        let mut hq: Vec<Vec<i64>> = inputset
            .iter_rows()
            .map(|r| f.input.quantize_all(r, d))
            .collect();
        let mut h = x;
        for (l, layer) in f.layers.iter().enumerate() {
            let mut gemm = QuantizedGemm::new(
                &inq,
                &layer.w,
                layer.inputs,
                layer.outputs,
                Some(&layer.b),
                self.weight_bits,
                Granularity::PerChannel,
            )?;
            if l + 1 == f.layers.len() {
                let acc = gemm.emit(&b, h)?;
                b.output("y", acc)?;
                let graph = b.finish()?;
                let o = gemm.o;
                let client = ClientSpec {
                    n_features: d,
                    batch: cfg.batch,
                    input: f.input.clone(),
                    digit_bits: None,
                    bins: None,
                    comparisons: None,
                    output: OutputDecoder {
                        values: o,
                        groups: 1,
                        columns: Vec::new(),
                        column_weight: Vec::new(),
                        scale: gemm.scales.clone(),
                        zero: vec![0; o],
                        offset: Vec::new(),
                        post: if f.classes == 2 {
                            PostProcess::Sigmoid
                        } else {
                            PostProcess::Softmax
                        },
                    },
                };
                return Ok(self.compiled.insert(CompiledModel::new(graph, client)));
            }
            let out = UniformQuantizer::from_ranges(
                &[0.0],
                &[f.act_max[l]],
                QuantOptions::unsigned(self.activation_bits, Granularity::PerTensor),
            )?;
            let o = gemm.o;
            let accs: Vec<Vec<i128>> = hq.iter().map(|r| gemm.accumulate(r)).collect();
            // Calibrated range of each neuron's accumulator.
            let range: Vec<(i128, i128)> = (0..o)
                .map(|j| {
                    let lo = accs.iter().map(|a| a[j]).min().unwrap_or(0);
                    let hi = accs.iter().map(|a| a[j]).max().unwrap_or(0);
                    (lo, hi)
                })
                .collect();
            let center: Vec<i64> = range
                .iter()
                .map(|&(lo, hi)| ((lo + hi) as f64 / 2.0).round() as i64)
                .collect();
            for (off, c) in gemm.offsets.iter_mut().zip(&center) {
                *off -= c;
            }
            // The networks' rounding plan (as the ONNX import's): drop the low bits of the
            // centered accumulators beyond `rounding_bits` of calibrated spread, with
            // `rounding_method`, in the fused lookup (the table and the next layer's
            // calibration see the rounded value).
            let (lo, hi) = range.iter().zip(&center).fold((0, 0), |(l, h), (r, &c)| {
                (l.min(r.0 - c as i128), h.max(r.1 - c as i128))
            });
            let spread_bits = IntType::fitting(lo, hi).map_or(64, |t| t.bits);
            let lsbs = cfg
                .rounding_bits
                .map_or(0, |keep_bits| Rounding { keep_bits }.lsbs(spread_bits));
            let round = LookupRounding {
                lsbs,
                method: cfg.rounding_method,
            };
            let acc = gemm.emit(&b, h)?;
            let shifted = |a: &[i128], j: usize| {
                round_value(a[j] - center[j] as i128, lsbs).expect("calibrated values are small")
            };
            // Table entry for the shifted accumulator `v` of neuron `j`, scaled: `y = S_j v`.
            let act = |j: usize, y: f64| (y + gemm.scales[j] * center[j] as f64).max(0.0);
            h = emit_channel_activation(&b, acc, &gemm.scales, &act, true, &out, round)?;
            hq = accs
                .iter()
                .map(|a| {
                    (0..o)
                        .map(|j| {
                            let y = gemm.scales[j] * shifted(a, j) as f64;
                            out.quantize(act(j, y), 0)
                        })
                        .collect()
                })
                .collect();
            inq = out;
        }
        unreachable!("the last layer returns")
    }
}
