//! Uniform affine quantization (Jacob et al. 2018, arXiv 1712.05877) and the quantized
//! building blocks the models compile to.
//!
//! A [`UniformQuantizer`] maps a float `x` of channel `c` to the integer
//! `q = clip(round(x / S_c) + Z_c, qmin, qmax)` and back with `x ~ S_c * (q - Z_c)`. Channels
//! run along the **last axis** of the quantized tensor (features of an input `[n, d]`, output
//! channels of a weight `[k, o]`); a per-tensor quantizer has one channel. Quantizers are
//! serializable: the client receives the input quantizer (to quantize before encrypting) and
//! the output dequantization (to decode after decrypting).
//!
//! [`QuantizedGemm`] turns a float `y = x @ W + b` on quantized `x` into an integer matmul with
//! clear weights plus one constant offset per output channel (zero points and bias folded):
//! `acc_o = sum_k xq_k * wq_ko + off_o`, `y_o ~ S_o * acc_o`. The input scales are folded into
//! the weights before weight quantization (`W'_ko = W_ko * Sx_k`), so a per-feature input
//! quantizer costs nothing extra. [`emit_activation`] fuses the rescale, the activation and the
//! requantization that follow into ONE table lookup on the accumulator, optionally after a
//! `round` that drops low accumulator bits ([`Rounding`]).

use super::error::{MlError, MlResult};
use serde::{Deserialize, Serialize};
use veil_ir::builder::{Builder, MAX_TLU_DOMAIN_BITS};
use veil_ir::{IntType, ValueId};

/// Largest supported quantization width.
pub const MAX_QUANT_BITS: u8 = 24;

/// Whether one scale serves the whole tensor or each channel (last axis) has its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// One scale and zero point for the whole tensor.
    PerTensor,
    /// One scale and zero point per index of the last axis.
    PerChannel,
}

/// How to calibrate a quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantOptions {
    /// Width of the integers, 1..=[`MAX_QUANT_BITS`].
    pub n_bits: u8,
    /// Signed (`-2^(n-1) .. 2^(n-1)-1`) or unsigned (`0 .. 2^n - 1`) integers.
    pub signed: bool,
    /// Symmetric (zero point 0, narrow range `-(2^(n-1)-1) ..= 2^(n-1)-1`, requires `signed`)
    /// or affine (min and max of the data map to the ends of the range).
    pub symmetric: bool,
    /// Per tensor or per channel.
    pub granularity: Granularity,
}

impl QuantOptions {
    /// Unsigned affine (activations, inputs).
    pub fn unsigned(n_bits: u8, granularity: Granularity) -> Self {
        QuantOptions {
            n_bits,
            signed: false,
            symmetric: false,
            granularity,
        }
    }

    /// Signed symmetric (weights).
    pub fn symmetric(n_bits: u8, granularity: Granularity) -> Self {
        QuantOptions {
            n_bits,
            signed: true,
            symmetric: true,
            granularity,
        }
    }

    fn check(&self) -> MlResult<()> {
        let min = if self.symmetric { 2 } else { 1 };
        if self.n_bits < min || self.n_bits > MAX_QUANT_BITS {
            return Err(MlError::Invalid(format!(
                "n_bits = {} is out of range: use {min}..={MAX_QUANT_BITS}{}",
                self.n_bits,
                if self.symmetric {
                    " for a symmetric quantizer"
                } else {
                    ""
                }
            )));
        }
        if self.symmetric && !self.signed {
            return Err(MlError::Invalid(
                "a symmetric quantizer must be signed; set `signed: true`".into(),
            ));
        }
        Ok(())
    }
}

/// A calibrated uniform quantizer (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UniformQuantizer {
    /// Width of the integers.
    pub n_bits: u8,
    /// Signed or unsigned integers.
    pub signed: bool,
    /// Whether the quantizer is symmetric (narrow signed range, zero point 0).
    pub symmetric: bool,
    /// Scale per channel (one entry for a per-tensor quantizer); all positive.
    pub scale: Vec<f64>,
    /// Zero point per channel (the integer that represents 0.0; may lie outside the range).
    pub zero_point: Vec<i64>,
}

impl UniformQuantizer {
    /// Calibrates on `values`, a row-major tensor whose last axis has `channels` entries (the
    /// channel of `values[i]` is `i % channels`; ignored for a per-tensor quantizer).
    pub fn calibrate(values: &[f64], channels: usize, opts: QuantOptions) -> MlResult<Self> {
        Self::calibrate_with_margin(values, channels, opts, 0.0)
    }

    /// Like [`UniformQuantizer::calibrate`], with each channel's range widened by `margin`
    /// times its width on both sides, so that values slightly outside the calibration data are
    /// not clipped (at the cost of `log2(1 + 2 * margin)` bits of resolution).
    pub fn calibrate_with_margin(
        values: &[f64],
        channels: usize,
        opts: QuantOptions,
        margin: f64,
    ) -> MlResult<Self> {
        opts.check()?;
        if !(margin >= 0.0 && margin.is_finite()) {
            return Err(MlError::Invalid(format!(
                "calibration margin {margin} must be a non-negative number"
            )));
        }
        if channels == 0 || values.is_empty() || !values.len().is_multiple_of(channels) {
            return Err(MlError::Invalid(format!(
                "cannot calibrate on {} values with {channels} channels: need a non-empty tensor whose last axis has {channels} entries",
                values.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(MlError::Invalid(format!(
                "calibration value {i} = {} is not finite",
                values[i]
            )));
        }
        let nch = match opts.granularity {
            Granularity::PerTensor => 1,
            Granularity::PerChannel => channels,
        };
        let mut lo = vec![f64::INFINITY; nch];
        let mut hi = vec![f64::NEG_INFINITY; nch];
        for (i, &v) in values.iter().enumerate() {
            let c = (i % channels) % nch;
            lo[c] = lo[c].min(v);
            hi[c] = hi[c].max(v);
        }
        for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
            let w = (*h - *l) * margin;
            *l -= w;
            *h += w;
        }
        Self::from_ranges(&lo, &hi, opts)
    }

    /// A quantizer covering `lo[c] ..= hi[c]` for each channel `c`.
    pub fn from_ranges(lo: &[f64], hi: &[f64], opts: QuantOptions) -> MlResult<Self> {
        opts.check()?;
        if lo.len() != hi.len() || lo.is_empty() {
            return Err(MlError::Invalid(format!(
                "need as many lower as upper bounds (at least one), got {} and {}",
                lo.len(),
                hi.len()
            )));
        }
        let n = opts.n_bits as u32;
        let (qmin, qmax) = range_of(opts.n_bits, opts.signed, opts.symmetric);
        let mut scale = Vec::with_capacity(lo.len());
        let mut zero_point = Vec::with_capacity(lo.len());
        for (c, (&l, &h)) in lo.iter().zip(hi).enumerate() {
            if !(l.is_finite() && h.is_finite()) || l > h {
                return Err(MlError::Invalid(format!(
                    "channel {c}: range [{l}, {h}] is not a finite interval"
                )));
            }
            if opts.symmetric {
                let m = l.abs().max(h.abs());
                let s = if m > 0.0 { m / qmax as f64 } else { 1.0 };
                scale.push(s);
                zero_point.push(0);
            } else {
                let span = h - l;
                let s = if span > 0.0 {
                    span / ((1u64 << n) - 1) as f64
                } else if l != 0.0 {
                    l.abs()
                } else {
                    1.0
                };
                scale.push(s);
                zero_point.push(qmin - (l / s).round() as i64);
            }
        }
        Ok(UniformQuantizer {
            n_bits: opts.n_bits,
            signed: opts.signed,
            symmetric: opts.symmetric,
            scale,
            zero_point,
        })
    }

    /// Number of channels (1 for a per-tensor quantizer).
    pub fn channels(&self) -> usize {
        self.scale.len()
    }

    /// Smallest and largest integer.
    pub fn qrange(&self) -> (i64, i64) {
        range_of(self.n_bits, self.signed, self.symmetric)
    }

    /// The IR element type of the quantized integers.
    pub fn int_type(&self) -> IntType {
        if self.signed {
            IntType::signed(self.n_bits)
        } else {
            IntType::unsigned(self.n_bits)
        }
    }

    fn ch(&self, c: usize) -> usize {
        c % self.scale.len()
    }

    /// Quantizes `x` of channel `c` (clipped to the integer range).
    pub fn quantize(&self, x: f64, c: usize) -> i64 {
        let c = self.ch(c);
        let (lo, hi) = self.qrange();
        let q = (x / self.scale[c]).round() + self.zero_point[c] as f64;
        if q.is_nan() {
            return self.zero_point[c].clamp(lo, hi);
        }
        q.clamp(lo as f64, hi as f64) as i64
    }

    /// The floats of channel `c` that quantize without clipping: from half a step below the
    /// smallest integer's value to half a step above the largest's.
    pub fn float_range(&self, c: usize) -> (f64, f64) {
        let (lo, hi) = self.qrange();
        let half = self.scale[self.ch(c)] / 2.0;
        (self.dequantize(lo, c) - half, self.dequantize(hi, c) + half)
    }

    /// Dequantizes `q` of channel `c`.
    pub fn dequantize(&self, q: i64, c: usize) -> f64 {
        let c = self.ch(c);
        self.scale[c] * (q - self.zero_point[c]) as f64
    }

    /// Quantizes a row-major tensor whose last axis has `channels` entries.
    pub fn quantize_all(&self, values: &[f64], channels: usize) -> Vec<i64> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| self.quantize(v, i % channels.max(1)))
            .collect()
    }

    /// Checks that the quantizer fits a last axis of `channels` entries.
    pub fn expect_channels(&self, channels: usize, what: &str) -> MlResult<()> {
        if self.channels() != 1 && self.channels() != channels {
            return Err(MlError::Invalid(format!(
                "{what}: the quantizer has {} channels but the tensor's last axis has {channels}",
                self.channels()
            )));
        }
        Ok(())
    }
}

fn range_of(n_bits: u8, signed: bool, symmetric: bool) -> (i64, i64) {
    let n = n_bits as u32;
    match (signed, symmetric) {
        (true, true) => (-((1i64 << (n - 1)) - 1), (1i64 << (n - 1)) - 1),
        (true, false) => (-(1i64 << (n - 1)), (1i64 << (n - 1)) - 1),
        (false, _) => (0, (1i64 << n) - 1),
    }
}

/// How a `round` drops an accumulator's low bits (Concrete ML's
/// `rounding_threshold_bits={"method": ...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoundingMethod {
    /// Exact rounding: one 1-bit bootstrap per dropped bit, then the lookup of the kept bits.
    Exact,
    /// Approximate rounding: the lookup reads the kept bits directly (no extra bootstrap);
    /// near a tie the result may be the other neighbour, one step of the kept bits off.
    #[default]
    Approximate,
}

impl RoundingMethod {
    /// The name used by the CLI and reports (`exact`, `approximate`).
    pub fn name(self) -> &'static str {
        match self {
            RoundingMethod::Exact => "exact",
            RoundingMethod::Approximate => "approximate",
        }
    }
}

impl std::str::FromStr for RoundingMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(RoundingMethod::Exact),
            "approximate" | "approx" => Ok(RoundingMethod::Approximate),
            other => Err(format!(
                "unknown rounding method `{other}`; use `exact` or `approximate`"
            )),
        }
    }
}

/// Accumulator rounding before a table lookup (Concrete's `rounding_threshold_bits`): keep the
/// `keep_bits` most significant bits of the accumulator, dropping the rest with a `round` op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rounding {
    /// Bits kept (the table lookup then only depends on these).
    pub keep_bits: u8,
}

impl Rounding {
    /// `lsbs` for a `round` on a `bits`-bit accumulator, or 0 if nothing needs dropping.
    pub fn lsbs(&self, bits: u8) -> u8 {
        bits.saturating_sub(self.keep_bits.max(1))
    }
}

/// Per table lookup of `graph` (emission order): whether it reads a `round`, and the width the
/// compiled lookup reads, from its operand's range calibrated on `rows` and widened by
/// approximate rounding's deviation (`veil_compiler::passes::deviation`), as the compiler
/// types it. A rounded lookup wider than the bits its plan keeps needs one more bit dropped.
pub fn widened_lookup_widths(
    graph: &veil_ir::Graph,
    rows: &[Vec<veil_ir::Tensor<i64>>],
) -> MlResult<Vec<(bool, u8)>> {
    use veil_ir::Op;
    let ranges = veil_compiler::passes::bitwidth::calibrate(graph, rows)
        .map_err(|e| MlError::Build(format!("calibrating the quantized program: {e}")))?;
    let wide = veil_compiler::passes::deviation::widen_for_approx_rounds(graph, &ranges);
    Ok(graph
        .values()
        .into_iter()
        .filter(|&v| matches!(graph.op(v), Op::Tlu { .. } | Op::TluMulti { .. }))
        .map(|v| {
            let x = graph.operands(v)[0];
            let bits = wide
                .get(x)
                .map_or(64, |r| r.int_type().map_or(64, |t| t.bits));
            (matches!(graph.op(x), Op::Round { .. }), bits)
        })
        .collect())
}

/// The rounding step of one fused lookup: how many low bits of the accumulator go before the
/// table reads it, and how. The one rounding plan of veil's networks: the ONNX import
/// (`onnx::compile`, one entry per lookup) and the built-in MLP ([`crate::MlpClassifier`],
/// one per hidden layer) both keep [`Rounding::lsbs`] of the accumulator's *calibrated* width
/// and emit it with [`round_for_lookup`], then tabulate with [`tabulate_lookup`]. With
/// approximate rounding the ONNX import then drops one more bit wherever the compiler's
/// widened range (calibrated plus the deviation of earlier approximate rounds) would make the
/// lookup read more than the kept bits ([`widened_lookup_widths`]): `--rounding-bits 6` gives
/// 6-bit lookups, as Concrete ML's `rounding_threshold_bits` does. The built-in MLP keeps its
/// calibrated plan: on the iris network the extra bit cost 8 points of encrypted accuracy and
/// saved no time (its 5-bit set is as fast as the 4-bit one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupRounding {
    /// Low bits dropped (0: the lookup reads the whole accumulator).
    pub lsbs: u8,
    /// How they go.
    pub method: RoundingMethod,
}

impl LookupRounding {
    /// No rounding.
    pub const NONE: LookupRounding = LookupRounding {
        lsbs: 0,
        method: RoundingMethod::Exact,
    };
}

/// Emits the rounding step `r` of a fused lookup on `acc`: nothing (`lsbs = 0`), an exact
/// `round` (the result keeps the accumulator's scale) or an approximate rounded quotient (the
/// table then has one entry per kept value, however wide the accumulator). Returns the value
/// the table reads and the shift back to the accumulator's scale: table entry `q` stands for
/// the accumulator value `q << shift`.
pub fn round_for_lookup(
    b: &Builder,
    acc: ValueId,
    r: LookupRounding,
) -> Result<(ValueId, u8), veil_ir::BuildError> {
    Ok(match (r.lsbs, r.method) {
        (0, _) => (acc, 0),
        (k, RoundingMethod::Exact) => (b.round(acc, k)?, 0),
        (k, RoundingMethod::Approximate) => (b.round_approx_quotient(acc, k)?, k),
    })
}

/// The table part of a fused lookup on `x` (what [`round_for_lookup`] returned, with its
/// `shift`): ONE lookup per element, entry `q` of channel `c` being `entry(c, q << shift)`
/// (the accumulator value it stands for). `map: None` is one table (channel 0); `Some(map)`
/// is one table per channel `0..channels`, element `j` reading table `map[j]`.
pub fn tabulate_lookup(
    b: &Builder,
    x: ValueId,
    shift: u8,
    channels: usize,
    map: Option<Vec<u32>>,
    entry: &dyn Fn(usize, i64) -> i64,
) -> Result<ValueId, veil_ir::BuildError> {
    let int = b.ty(x)?.int;
    let table = |c: usize| -> Vec<i64> {
        (int.min()..=int.max())
            .map(|q| entry(c, (q << shift) as i64))
            .collect()
    };
    match map {
        None => b.tlu_table(x, table(0)),
        Some(map) => b.tlu_multi(x, (0..channels).map(table).collect(), map),
    }
}

/// A quantized `y = x @ W + b` (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedGemm {
    /// Input features `k`.
    pub k: usize,
    /// Output channels `o`.
    pub o: usize,
    /// Quantized weights `[k, o]`, row-major, symmetric signed.
    pub weights: Vec<i64>,
    /// Offset per output channel: `round(b_o / S_o) - sum_k Zx_k * wq_ko`.
    pub offsets: Vec<i64>,
    /// Dequantization scale per output channel: `y_o ~ scales[o] * acc_o`.
    pub scales: Vec<f64>,
}

impl QuantizedGemm {
    /// Quantizes `W` (`[k, o]` row-major) and `b` (`[o]`, optional) for inputs quantized by
    /// `input` (per tensor or per feature), with `weight_bits`-bit symmetric weights per output
    /// channel or per tensor.
    pub fn new(
        input: &UniformQuantizer,
        w: &[f64],
        k: usize,
        o: usize,
        bias: Option<&[f64]>,
        weight_bits: u8,
        weights: Granularity,
    ) -> MlResult<Self> {
        if k == 0 || o == 0 || w.len() != k * o {
            return Err(MlError::Invalid(format!(
                "weights must be a non-empty [k={k}, o={o}] matrix, got {} values",
                w.len()
            )));
        }
        if let Some(b) = bias {
            if b.len() != o {
                return Err(MlError::Invalid(format!(
                    "bias has {} values, expected one per output ({o})",
                    b.len()
                )));
            }
        }
        if let Some(i) = w
            .iter()
            .chain(bias.unwrap_or(&[]))
            .position(|v| !v.is_finite())
        {
            return Err(MlError::Invalid(format!(
                "weight/bias value {i} is not finite"
            )));
        }
        input.expect_channels(k, "gemm input")?;
        // Fold the input scales into the weights.
        let folded: Vec<f64> = (0..k * o)
            .map(|i| w[i] * input.scale[(i / o) % input.channels()])
            .collect();
        let wq =
            UniformQuantizer::calibrate(&folded, o, QuantOptions::symmetric(weight_bits, weights))?;
        let weights_q = wq.quantize_all(&folded, o);
        let scales: Vec<f64> = (0..o).map(|j| wq.scale[j % wq.channels()]).collect();
        let offsets = (0..o)
            .map(|j| {
                let b = bias.map_or(0.0, |b| b[j]);
                let zp: i64 = (0..k)
                    .map(|kk| input.zero_point[kk % input.channels()] * weights_q[kk * o + j])
                    .sum();
                (b / scales[j]).round() as i64 - zp
            })
            .collect();
        Ok(QuantizedGemm {
            k,
            o,
            weights: weights_q,
            offsets,
            scales,
        })
    }

    /// Emits `acc = x @ wq + offsets` for an `[n, k]` (or `[k]`) quantized input `x`.
    pub fn emit(&self, b: &Builder, x: ValueId) -> MlResult<ValueId> {
        let w = b.constant(&[self.k, self.o], &self.weights)?;
        let acc = b.matmul(x, w)?;
        if self.offsets.iter().all(|&v| v == 0) {
            return Ok(acc);
        }
        let off = b.constant(&[self.o], &self.offsets)?;
        Ok(b.add(acc, off)?)
    }

    /// The accumulator of one quantized input row, computed directly (reference for tests).
    pub fn accumulate(&self, xq: &[i64]) -> Vec<i128> {
        (0..self.o)
            .map(|j| {
                self.offsets[j] as i128
                    + (0..self.k)
                        .map(|kk| xq[kk] as i128 * self.weights[kk * self.o + j] as i128)
                        .sum::<i128>()
            })
            .collect()
    }
}

/// Emits the fused `requantize(act(scale_c * acc))` as ONE table lookup per element, channel
/// `c` being the index along the last axis of `acc` (`scales` has one entry, or one per
/// channel). With `rounding`, a `round` first drops the accumulator's low bits beyond
/// `keep_bits` of its *type* (exactly). The result is quantized by `out` (per tensor, or per
/// channel).
///
/// Fails with advice if the (rounded) accumulator has more than 16 bits.
pub fn emit_activation(
    b: &Builder,
    acc: ValueId,
    scales: &[f64],
    act: &dyn Fn(f64) -> f64,
    out: &UniformQuantizer,
    rounding: Option<Rounding>,
) -> MlResult<ValueId> {
    let round = match rounding {
        Some(r) => LookupRounding {
            lsbs: r.lsbs(b.ty(acc)?.int.bits),
            method: RoundingMethod::Exact,
        },
        None => LookupRounding::NONE,
    };
    emit_channel_activation(b, acc, scales, &|_, v| act(v), false, out, round)
}

/// [`emit_activation`] with a different activation per output channel: element `j` of
/// channel `c` maps to `requantize(act(c, scale_c * acc_j))` (per-channel tables whenever
/// `per_channel_act` is set, e.g. a PReLU or a per-neuron offset), after the rounding step
/// `round` ([`round_for_lookup`]; [`LookupRounding::NONE`] for none).
pub fn emit_channel_activation(
    b: &Builder,
    acc: ValueId,
    scales: &[f64],
    act: &dyn Fn(usize, f64) -> f64,
    per_channel_act: bool,
    out: &UniformQuantizer,
    round: LookupRounding,
) -> MlResult<ValueId> {
    let ty = b.ty(acc)?;
    let channels = *ty.shape.last().unwrap_or(&1);
    if scales.len() != 1 && scales.len() != channels {
        return Err(MlError::Invalid(format!(
            "{} scales for an accumulator with {channels} channels: give one, or one per channel",
            scales.len()
        )));
    }
    out.expect_channels(channels, "activation output")?;
    let (x, shift) = round_for_lookup(b, acc, round)?;
    let int = b.ty(x)?.int;
    if int.bits > MAX_TLU_DOMAIN_BITS {
        return Err(MlError::Build(format!(
            "the accumulator type {int} is too wide for a table lookup (at most {MAX_TLU_DOMAIN_BITS} bits): lower n_bits or set a rounding threshold"
        )));
    }
    let per_channel = per_channel_act || scales.len() > 1 || out.channels() > 1;
    let map = per_channel.then(|| {
        let numel: usize = ty.shape.iter().product();
        (0..numel).map(|j| (j % channels) as u32).collect()
    });
    let entry = |c: usize, v: i64| out.quantize(act(c, scales[c % scales.len()] * v as f64), c);
    Ok(tabulate_lookup(b, x, shift, channels, map, &entry)?)
}

/// One split point of a tree feature: samples are *past* it when `x > value`, or
/// `x >= value` for a `strict` split (`x < value` goes left).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinEdge {
    /// The threshold, in the feature's float units.
    pub value: f64,
    /// The split is `x < value` (else `x <= value`).
    pub strict: bool,
}

impl BinEdge {
    /// Whether `x` lies past the edge (takes the split's `false` side).
    pub fn past(&self, x: f64) -> bool {
        x > self.value || (self.strict && x == self.value)
    }
}

/// The largest finite float `x` for which `holds(x)`, given that `holds` is monotone (true up
/// to some float, false above it), found by bisection over the ordered floats; `None` when
/// `holds` is true at `f64::MAX` or false at `f64::MIN`. Turns a split on a transformed
/// feature (quantized, or rounded to `f32`) into an exact [`BinEdge`] on the float itself.
pub fn last_float_where(holds: impl Fn(f64) -> bool) -> Option<f64> {
    // Floats in increasing order as unsigned keys (NaNs lie outside MIN..=MAX).
    let key = |x: f64| {
        let b = x.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | 1 << 63
        }
    };
    let float = |k: u64| f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k });
    let (mut lo, mut hi) = (key(f64::MIN), key(f64::MAX));
    if !holds(f64::MIN) || holds(f64::MAX) {
        return None;
    }
    // invariant: holds at lo, not at hi
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if holds(float(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(float(lo))
}

/// Rank encoding of tree features: every feature is sent as the number of its split points
/// that the value lies past. A tree only compares features with its thresholds, so this
/// encoding keeps every comparison exactly as in float (no threshold moves to a quantization
/// boundary), needs only `log2(splits + 1)` bits, and has no calibrated range: every float
/// value has a rank.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    /// Per feature, the distinct split points in the order samples pass them (ascending value,
    /// a strict split before a non-strict one at the same value).
    pub edges: Vec<Vec<BinEdge>>,
}

impl FeatureBins {
    /// Bins from the split points of each of `features` features (any order, duplicates
    /// allowed); `None` when a threshold is not finite.
    pub fn new(
        features: usize,
        splits: impl IntoIterator<Item = (usize, BinEdge)>,
    ) -> Option<Self> {
        let mut edges = vec![Vec::new(); features];
        for (f, e) in splits {
            if !e.value.is_finite() || f >= features {
                return None;
            }
            edges[f].push(e);
        }
        for e in &mut edges {
            // ascending value; at one value `x < v` is passed (at x == v) before `x <= v`
            e.sort_by(|a, b| a.value.total_cmp(&b.value).then(b.strict.cmp(&a.strict)));
            e.dedup();
        }
        Some(FeatureBins { edges })
    }

    /// The rank of `x` for feature `f`: how many of its split points it lies past.
    pub fn rank(&self, f: usize, x: f64) -> i64 {
        self.edges
            .get(f)
            .map_or(0, |e| e.partition_point(|edge| edge.past(x)) as i64)
    }

    /// The index of split point `e` of feature `f` (`rank <= index` exactly when `x` is not
    /// past it), if it is one of the bins' edges.
    pub fn index(&self, f: usize, e: BinEdge) -> Option<usize> {
        self.edges.get(f)?.iter().position(|x| *x == e)
    }

    /// Width of the ranks: enough bits for `0..=splits` of the feature with the most splits
    /// (at least 1).
    pub fn bits(&self) -> u8 {
        let most = self.edges.iter().map(Vec::len).max().unwrap_or(0) as u64;
        (64 - most.leading_zeros()).max(1) as u8
    }

    /// Two feature rows: one at rank 0 of every feature, one past all of its split points.
    pub fn extreme_rows(&self) -> [Vec<f64>; 2] {
        let lo = self
            .edges
            .iter()
            .map(|e| e.first().map_or(0.0, |e| e.value - e.value.abs().max(1.0)))
            .collect();
        let hi = self
            .edges
            .iter()
            .map(|e| e.last().map_or(0.0, |e| e.value + e.value.abs().max(1.0)))
            .collect();
        [lo, hi]
    }

    /// The client-side quantizer that goes with these bins in a [`super::ClientSpec`]: the
    /// identity (scale 1, zero point 0, unsigned) on `features` features, [`FeatureBins::bits`]
    /// wide, so that the program's input type holds every rank.
    pub fn rank_quantizer(&self, features: usize) -> UniformQuantizer {
        UniformQuantizer {
            n_bits: self.bits(),
            signed: false,
            symmetric: false,
            scale: vec![1.0; features],
            zero_point: vec![0; features],
        }
    }

    /// Ranks of a row-major tensor whose last axis has one entry per feature.
    pub fn rank_all(&self, values: &[f64]) -> Vec<i64> {
        let d = self.edges.len().max(1);
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| self.rank(i % d, v))
            .collect()
    }
}

#[cfg(test)]
mod bins_tests {
    use super::*;

    #[test]
    fn last_float_where_finds_exact_edges() {
        // quantized splits: q(x) <= t exactly when x <= the edge, at the neighbouring floats too
        let q = UniformQuantizer {
            n_bits: 6,
            signed: false,
            symmetric: false,
            scale: vec![0.37],
            zero_point: vec![5],
        };
        for t in 0..63 {
            let e = last_float_where(|x| q.quantize(x, 0) <= t).expect("an edge");
            assert!(q.quantize(e, 0) <= t, "t = {t}");
            assert!(q.quantize(e.next_up(), 0) > t, "t = {t}");
        }
        // every float or none: no edge
        assert_eq!(last_float_where(|x| q.quantize(x, 0) <= 63), None);
        assert_eq!(last_float_where(|x| q.quantize(x, 0) < 0), None);
        // f32 rounding: (x as f32) < 0.1f32 up to the float just below the f32 rounding boundary
        let t = 0.1f32;
        let e = last_float_where(|x| (x as f32) < t).unwrap();
        assert!((e as f32) < t && e < t as f64);
        assert!((e.next_up() as f32) >= t);
        // negative edges
        let e = last_float_where(|x| x <= -2.5).unwrap();
        assert_eq!(e, -2.5);
    }

    #[test]
    fn ranks_keep_every_comparison() {
        let e = |value, strict| BinEdge { value, strict };
        // feature 0 splits at x <= 1.5, x < 1.5 and x <= -2; feature 1 never splits
        let b = FeatureBins::new(
            2,
            [
                (0, e(1.5, false)),
                (0, e(1.5, true)),
                (0, e(-2.0, false)),
                (0, e(1.5, false)),
            ],
        )
        .unwrap();
        assert_eq!(
            b.edges[0],
            vec![e(-2.0, false), e(1.5, true), e(1.5, false)]
        );
        assert_eq!(b.bits(), 2);
        for x in [-3.0, -2.0, -1.0, 1.4999, 1.5, 1.5001, 9.0] {
            let r = b.rank(0, x);
            for (j, edge) in b.edges[0].iter().enumerate() {
                // not past edge j exactly when the rank is at most j
                assert_eq!(!edge.past(x), r <= j as i64, "x {x} edge {j}");
            }
        }
        assert_eq!(b.rank(1, 1e9), 0);
        let [lo, hi] = b.extreme_rows();
        assert_eq!((b.rank(0, lo[0]), b.rank(0, hi[0])), (0, 3));
        assert_eq!((b.rank(1, lo[1]), b.rank(1, hi[1])), (0, 0));
        assert_eq!(b.rank_all(&[1.5, 7.0, 2.0, 0.0]), vec![2, 0, 3, 0]);
        assert!(FeatureBins::new(1, [(0, e(f64::NAN, false))]).is_none());
    }
}
