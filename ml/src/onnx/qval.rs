//! Quantized values during compilation and the one place that emits table lookups.
//!
//! An encrypted ONNX value is held as a [`QVal`]: an integer tensor `q` of the veil program and
//! a lazy decoding `x = f_c(scale_c * (q - zero_c))`, where `c` is the index along the
//! channel axis (or 0 for a per-tensor encoding) and `f_c` a chain of pending univariate
//! functions. Affine ops with constants (`Add`, `Mul`, `Div`, `Scaler`, `BatchNormalization`)
//! fold into `scale`/`zero` for free; activations are queued in `funcs`; the chain is
//! *materialized* — rescale, activation and requantization fused into ONE table lookup per
//! element — only when an op needs a plainly quantized operand (a linear op, pooling, a
//! reshape across channels, the program output). This is the fused-TLU scheme of the `ml`
//! module's [`crate::quantize::emit_activation`], generalized to any channel axis and to
//! per-channel functions.

use super::error::{OnnxError, OnnxResult};
use super::graph::{Act, FTensor};
use crate::quantize::{
    round_for_lookup, tabulate_lookup, LookupRounding, QuantOptions, RoundingMethod,
    UniformQuantizer,
};
use crate::{Granularity, NBits};
use std::collections::HashMap;
use veil_ir::builder::{Builder, MAX_TLU_DOMAIN_BITS};
use veil_ir::types::broadcast_shapes;
use veil_ir::ValueId;

/// A pending univariate function (per channel where it has several parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum Func {
    /// An activation.
    Act(Act),
    /// `x * mul_c + add_c` (one entry, or one per channel).
    Affine {
        /// Factors.
        mul: Vec<f64>,
        /// Offsets.
        add: Vec<f64>,
    },
}

fn at(v: &[f64], c: usize) -> f64 {
    v[c % v.len()]
}

impl Func {
    fn apply(&self, c: usize, x: f64) -> f64 {
        match self {
            Func::Act(a) => a.apply(x),
            Func::Affine { mul, add } => x * at(mul, c) + at(add, c),
        }
    }

    fn expand(&mut self, n: usize) {
        if let Func::Affine { mul, add } = self {
            *mul = (0..n).map(|c| at(mul, c)).collect();
            *add = (0..n).map(|c| at(add, c)).collect();
        }
    }

    fn select(&mut self, idx: &[usize]) {
        if let Func::Affine { mul, add } = self {
            *mul = idx.iter().map(|&c| at(mul, c)).collect();
            *add = idx.iter().map(|&c| at(add, c)).collect();
        }
    }
}

/// An encrypted value (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct QVal {
    /// The integer tensor in the program.
    pub id: ValueId,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Channel axis of the per-channel parameters (`None`: per tensor).
    pub axis: Option<usize>,
    /// Scale per channel (one entry when per tensor).
    pub scale: Vec<f64>,
    /// Zero point per channel (may be fractional after folded offsets).
    pub zero: Vec<f64>,
    /// Pending functions, applied in order after the affine decoding.
    pub funcs: Vec<Func>,
}

impl QVal {
    /// A plainly quantized value (per tensor, or per `axis`).
    pub fn new(
        id: ValueId,
        shape: Vec<usize>,
        axis: Option<usize>,
        scale: Vec<f64>,
        zero: Vec<f64>,
    ) -> Self {
        QVal {
            id,
            shape,
            axis,
            scale,
            zero,
            funcs: Vec::new(),
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.axis.map_or(1, |a| self.shape[a])
    }

    /// The float that integer `q` of channel `c` stands for.
    pub fn decode(&self, c: usize, q: i64) -> f64 {
        self.decode_real(c, q as f64)
    }

    /// [`QVal::decode`] of a fractional integer value (an accumulator read through a factor).
    pub fn decode_real(&self, c: usize, q: f64) -> f64 {
        let mut x = at(&self.scale, c) * (q - at(&self.zero, c));
        for f in &self.funcs {
            x = f.apply(c, x);
        }
        x
    }

    /// Channel of element `j` (row-major).
    pub fn channel_of(&self, j: usize) -> usize {
        match self.axis {
            None => 0,
            Some(a) => {
                let stride: usize = self.shape[a + 1..].iter().product();
                (j / stride) % self.shape[a]
            }
        }
    }

    /// Whether no function is pending.
    pub fn is_plain(&self) -> bool {
        self.funcs.is_empty()
    }

    /// Whether every zero point is an integer (so that `q - zero` is exact in integers).
    pub fn integral_zero(&self) -> bool {
        self.zero.iter().all(|z| (z - z.round()).abs() < 1e-9)
    }

    /// Re-expresses the parameters along `axis` (expanding a per-tensor encoding); `None` when
    /// the value already has another channel axis.
    pub fn with_axis(mut self, axis: Option<usize>) -> Option<QVal> {
        match (self.axis, axis) {
            (_, None) => Some(self),
            (Some(a), Some(b)) => (a == b).then_some(self),
            (None, Some(b)) => {
                let n = self.shape[b];
                self.axis = Some(b);
                self.scale = vec![self.scale[0]; n];
                self.zero = vec![self.zero[0]; n];
                for f in &mut self.funcs {
                    f.expand(n);
                }
                Some(self)
            }
        }
    }

    /// Keeps the channels `idx` (after slicing along the channel axis).
    pub fn select_channels(&mut self, idx: &[usize]) {
        if self.scale.len() > 1 {
            self.scale = idx.iter().map(|&c| self.scale[c]).collect();
            self.zero = idx.iter().map(|&c| self.zero[c]).collect();
        }
        for f in &mut self.funcs {
            f.select(idx);
        }
    }
}

/// A value during compilation: a clear constant or an encrypted tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// Known at compile time.
    Const(FTensor),
    /// Computed on encrypted data.
    Enc(QVal),
}

/// Per-channel parameters of a constant operand broadcast against `shape`: `(axis, values)`
/// with `axis = None` for a scalar-like constant; `None` when the constant varies along more
/// than one axis or does not broadcast.
pub fn channel_params(c: &FTensor, shape: &[usize]) -> Option<(Option<usize>, Vec<f64>)> {
    if c.data.iter().all(|&v| v == c.data[0]) {
        return (broadcast_shapes(&c.shape, shape)? == shape).then(|| (None, vec![c.data[0]]));
    }
    if broadcast_shapes(&c.shape, shape)? != shape {
        return None;
    }
    let off = shape.len() - c.shape.len();
    let axes: Vec<usize> = (0..c.shape.len()).filter(|&i| c.shape[i] > 1).collect();
    match axes.as_slice() {
        [a] => Some((Some(a + off), c.data.clone())),
        _ => None,
    }
}

/// Compilation context shared by the op emitters.
pub struct Ctx<'a> {
    /// The program being built.
    pub b: &'a Builder,
    /// Widths.
    pub n_bits: Resolved,
    /// Calibrated float range `(min, max)` of every value.
    pub ranges: &'a HashMap<String, (f64, f64)>,
    /// Largest accumulator magnitude a layer may produce ([`MAX_ACC`], halved when lookups
    /// round it: `round` may need one more bit).
    pub max_acc: i128,
    /// The `round` before the `n`-th lookup (missing: none).
    pub round_plan: &'a [PlannedRound],
    /// Whether those rounds are approximate (else exact).
    pub round_approx: bool,
    /// Lookups emitted so far.
    pub lookups: std::cell::Cell<usize>,
}

/// How the `n`-th lookup of a network rounds its accumulator (see [`Ctx::round_plan`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlannedRound {
    /// Low bits dropped (0: the lookup reads the whole accumulator).
    pub lsbs: u8,
    /// Clear offsets added to the accumulator before the round, one per table of the lookup
    /// (per channel), or one for all, or none: they center each channel's calibrated range on
    /// zero, so that the bits kept cover the observed values and not the half of a signed
    /// window they never reach (a ReLU's accumulator, mostly negative, would otherwise keep
    /// half its levels for inputs that all map to zero). Free: a levelled addition of a
    /// constant, undone in the table.
    pub offsets: Vec<i64>,
    /// Clear factors the accumulator is multiplied by before the offsets, one per table, or
    /// none: with a factor `m` and `lsbs = k` a table step is `2^k / m` accumulator units, a
    /// finer step than a power of two allows, so each channel fills the kept window. A factor
    /// multiplies the accumulator's noise variance by `m^2`, so the automatic choice plans them
    /// only where the optimizer prices the program cheaper (`compile::LookupKeep`).
    pub factors: Vec<i64>,
}

/// Widths with defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Inputs.
    pub inputs: u8,
    /// Weights (an upper bound: lowered per layer to keep accumulators within 16 bits).
    pub weights: u8,
    /// Activations.
    pub activations: u8,
    /// Outputs (and tree leaves).
    pub outputs: u8,
}

impl Resolved {
    /// Applies the defaults (8-bit inputs, weights and outputs, 7-bit activations).
    pub fn of(n: &NBits) -> Self {
        Resolved {
            inputs: n.inputs.unwrap_or(8),
            weights: n.weights.unwrap_or(8),
            activations: n.activations.unwrap_or(7),
            outputs: n.outputs.unwrap_or(8),
        }
    }

    /// The defaults of a network whose lookups round their accumulators (Concrete ML's usual
    /// setting): 6-bit inputs, weights and activations, 8-bit outputs. Smaller weights keep the
    /// noise that each layer's sums amplify small, so the bootstraps stay cheap.
    pub fn of_rounded_network(n: &NBits) -> Self {
        Resolved {
            inputs: n.inputs.unwrap_or(DEFAULT_NETWORK_BITS),
            weights: n.weights.unwrap_or(DEFAULT_NETWORK_BITS),
            activations: n.activations.unwrap_or(DEFAULT_NETWORK_BITS),
            outputs: n.outputs.unwrap_or(8),
        }
    }
}

/// Quantization width of networks whose accumulators are rounded by default
/// ([`Resolved::of_rounded_network`]).
pub const DEFAULT_NETWORK_BITS: u8 = 6;

/// Largest accumulator magnitude that a table lookup accepts (a signed 16-bit value).
pub const MAX_ACC: i128 = (1 << (MAX_TLU_DOMAIN_BITS - 1)) - 1;

/// Largest accumulator magnitude when lookups round approximately (they read a quotient of
/// the kept bits, so only the encoding's width bounds it: a signed 24-bit value).
pub const MAX_ROUNDED_ACC: i128 = (1 << 23) - 1;

impl Ctx<'_> {
    /// The calibrated range of value `name`.
    pub fn range(&self, name: &str) -> OnnxResult<(f64, f64)> {
        self.ranges.get(name).copied().ok_or_else(|| {
            OnnxError::Malformed(format!(
                "value `{name}` was never computed during calibration"
            ))
        })
    }

    /// A per-tensor unsigned quantizer of `bits` covering the range of value `name`.
    pub fn quantizer(&self, name: &str, bits: u8) -> OnnxResult<UniformQuantizer> {
        let (lo, hi) = self.range(name)?;
        Ok(UniformQuantizer::from_ranges(
            &[lo],
            &[hi],
            QuantOptions::unsigned(bits, Granularity::PerTensor),
        )?)
    }

    /// Smallest and largest integer of `v`'s element type.
    pub fn int_range(&self, v: ValueId) -> OnnxResult<(i128, i128)> {
        let t = self.b.ty(v)?.int;
        Ok((t.min(), t.max()))
    }

    /// One table lookup per element of `qv`: integer `q` of channel `c` maps to
    /// `f(c, qv.decode(c, q))`.
    pub fn lookup(
        &self,
        qv: &QVal,
        what: &str,
        f: &dyn Fn(usize, f64) -> i64,
    ) -> OnnxResult<ValueId> {
        let n = self.lookups.get();
        self.lookups.set(n + 1);
        // an approximate round gives the rounded quotient: the table has one entry per kept
        // value, however wide the accumulator
        // (without a plan entry, operands too wide for a table keep the widest one's bits)
        let per_channel = qv.axis.is_some()
            && (qv.scale.len() > 1
                || qv.zero.len() > 1
                || qv
                    .funcs
                    .iter()
                    .any(|f| matches!(f, Func::Affine { mul, .. } if mul.len() > 1)));
        let plan = self.round_plan.get(n).cloned().unwrap_or_default();
        // the offsets and factors (one per table, or one) when the plan's lookup has the same
        // tables as this one
        let fits = |k: usize| (k == 1 && !per_channel) || (per_channel && k == qv.channels());
        let offsets: Vec<i64> =
            if plan.lsbs > 0 && fits(plan.offsets.len()) && plan.offsets.iter().any(|&o| o != 0) {
                plan.offsets.clone()
            } else {
                Vec::new()
            };
        let factors: Vec<i64> = if plan.lsbs > 0
            && fits(plan.factors.len())
            && plan.factors.iter().all(|&m| m >= 1)
            && plan.factors.iter().any(|&m| m > 1)
        {
            plan.factors.clone()
        } else {
            Vec::new()
        };
        // one clear operand: a scalar, or one value per element (its channel's)
        let clear = |per: &[i64]| -> OnnxResult<ValueId> {
            Ok(match per {
                [v] => self.b.constant_scalar(*v)?,
                per => {
                    let n: usize = qv.shape.iter().product();
                    let c: Vec<i64> = (0..n).map(|j| per[qv.channel_of(j)]).collect();
                    self.b.constant(&qv.shape, &c)?
                }
            })
        };
        let mut acc = qv.id;
        if !factors.is_empty() {
            acc = self.b.mul(acc, clear(&factors)?)?;
        }
        if !offsets.is_empty() {
            acc = self.b.add(acc, clear(&offsets)?)?;
        }
        let offset = |c: usize| offsets.get(c).or(offsets.first()).copied().unwrap_or(0);
        let factor = |c: usize| factors.get(c).or(factors.first()).copied().unwrap_or(1);
        let wide = {
            let bits = self.b.ty(acc)?.int.bits;
            bits.saturating_sub(MAX_TLU_DOMAIN_BITS - 1)
        };
        let planned = plan.lsbs;
        let round = if self.round_approx {
            LookupRounding {
                lsbs: planned.max(wide),
                method: RoundingMethod::Approximate,
            }
        } else {
            LookupRounding {
                lsbs: planned,
                method: RoundingMethod::Exact,
            }
        };
        let (x, shift) = round_for_lookup(self.b, acc, round)?;
        let int = self.b.ty(x)?.int;
        if int.bits > MAX_TLU_DOMAIN_BITS {
            return Err(OnnxError::Build(veil_ir::BuildError::Invalid {
                op: "tlu",
                msg: format!(
                    "{what}: the value to requantize has type {int}, wider than the {MAX_TLU_DOMAIN_BITS} bits a table lookup accepts; lower n_bits (weights or activations)"
                ),
            }));
        }
        let map = per_channel.then(|| {
            let n: usize = qv.shape.iter().product();
            (0..n).map(|j| qv.channel_of(j) as u32).collect()
        });
        let entry = |c: usize, q: i64| {
            let acc = (q - offset(c)) as f64 / factor(c) as f64;
            f(c, qv.decode_real(c, acc))
        };
        Ok(tabulate_lookup(
            self.b,
            x,
            shift,
            qv.channels(),
            map,
            &entry,
        )?)
    }

    /// Requantizes `qv` with the per-tensor quantizer `q` (fusing every pending function).
    pub fn materialize_with(
        &self,
        qv: &QVal,
        q: &UniformQuantizer,
        what: &str,
    ) -> OnnxResult<QVal> {
        let id = self.lookup(qv, what, &|_, x| q.quantize(x, 0))?;
        Ok(QVal::new(
            id,
            qv.shape.clone(),
            None,
            vec![q.scale[0]],
            vec![q.zero_point[0] as f64],
        ))
    }

    /// Requantizes `qv`, which stands for value `name`, with an activation quantizer
    /// calibrated on the range of `name`.
    pub fn materialize(&self, qv: &QVal, name: &str) -> OnnxResult<QVal> {
        let q = self.quantizer(name, self.n_bits.activations)?;
        self.materialize_with(qv, &q, name)
    }

    /// `qv` without pending functions (materialized if needed).
    pub fn plain(&self, qv: QVal, name: &str) -> OnnxResult<QVal> {
        if qv.is_plain() {
            Ok(qv)
        } else {
            self.materialize(&qv, name)
        }
    }

    /// `qv` plain and at most as wide as the input or activation width: a linear op's weights
    /// get more bits from a narrow input (an average pool's sum, for instance, is requantized).
    pub fn narrow(&self, qv: QVal, name: &str) -> OnnxResult<QVal> {
        let qv = self.plain(qv, name)?;
        let bits = self.b.ty(qv.id)?.int.bits;
        if bits > self.n_bits.activations.max(self.n_bits.inputs) {
            return self.materialize(&qv, name);
        }
        Ok(qv)
    }

    /// `qv` as a per-tensor, plain value (materialized if needed).
    pub fn per_tensor(&self, qv: QVal, name: &str) -> OnnxResult<QVal> {
        let uniform =
            qv.scale.iter().all(|&s| s == qv.scale[0]) && qv.zero.iter().all(|&z| z == qv.zero[0]);
        if qv.is_plain() && uniform {
            let (s, z) = (qv.scale[0], qv.zero[0]);
            return Ok(QVal::new(qv.id, qv.shape, None, vec![s], vec![z]));
        }
        let funcs_uniform = qv.funcs.iter().all(|f| match f {
            Func::Affine { mul, add } => {
                mul.iter().all(|&m| m == mul[0]) && add.iter().all(|&a| a == add[0])
            }
            Func::Act(_) => true,
        });
        if uniform && funcs_uniform {
            let mut q = qv;
            q.axis = None;
            q.scale.truncate(1);
            q.zero.truncate(1);
            for f in &mut q.funcs {
                f.select(&[0]);
            }
            return Ok(q);
        }
        self.materialize(&qv, name)
    }

    /// Applies `x -> x * mul_c + add_c` along `axis`, folding into the encoding when possible.
    pub fn affine(
        &self,
        qv: QVal,
        name_in: &str,
        axis: Option<usize>,
        mul: Vec<f64>,
        add: Vec<f64>,
    ) -> OnnxResult<QVal> {
        let qv = match qv.clone().with_axis(axis) {
            Some(q) => q,
            None => self
                .materialize(&qv, name_in)?
                .with_axis(axis)
                .expect("per tensor"),
        };
        let n = qv.channels();
        let mut qv = qv;
        if qv.is_plain() && mul.iter().all(|&m| m != 0.0 && m.is_finite()) {
            let (scale, zero): (Vec<f64>, Vec<f64>) = (0..n.max(qv.scale.len()))
                .map(|c| {
                    let s = at(&qv.scale, c) * at(&mul, c);
                    (s, at(&qv.zero, c) - at(&add, c) / s)
                })
                .unzip();
            if scale.len() == 1 || scale.len() == n {
                qv.scale = scale;
                qv.zero = zero;
                return Ok(qv);
            }
        }
        qv.funcs.push(Func::Affine { mul, add });
        Ok(qv)
    }
}
