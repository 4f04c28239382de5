//! The simulation executor: runs a TFHE-level program on clear integers, mimicking what the
//! encrypted execution computes, including bootstrap errors.
//!
//! Levelled ops and clear nodes follow the reference semantics (`veil_ir::interp::eval_op`).
//! Encrypted values are their messages modulo `2^(w + 1)` as ciphertexts hold them: a `pbs`
//! reads `m mod 2^(w+1)`; with the padding bit set (`m >= 2^w`) it returns `-table[m - 2^w]`
//! like the negacyclic bootstrap does. Each bootstrap is wrong with probability `p_error` of
//! its parameter set (a seeded RNG): the input then lands one box off (`m +- 1`).
//! A `keyswitch.round` (approximate rounding) reads the nearest multiple, except that it
//! takes the other neighbour with the probability that Gaussian noise of the set's largest
//! allowed deviation (the one its `p_error` implies for a whole box) carries the phase across
//! the tie: `Phi(-d / sigma)` for a value `d` boxes from the tie.
//! Outputs are decoded like decryption does (`w + 1` bits, sign-extended for signed types).

use crate::error::{Result, RuntimeError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_ir::interp::eval_op;
use veil_ir::{Graph, Level, Op, Tensor, TensorType};

/// Options of a simulation.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Seed of the error RNG.
    pub seed: u64,
    /// Use this per-bootstrap error probability instead of each set's `p_error` (e.g. `0.0`
    /// for an error-free run, a large value to test error handling).
    pub p_error_override: Option<f64>,
}

/// What a simulation produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    /// Outputs, decoded like decryption would.
    pub outputs: Vec<Tensor<i64>>,
    /// Bootstraps simulated.
    pub pbs_count: u64,
    /// Bootstraps that were made wrong, and approximate roundings that took the farther
    /// neighbour.
    pub errors_injected: u64,
}

fn wrap(m: i128, width: u8) -> i128 {
    m.rem_euclid(1i128 << (width as u32 + 1))
}

fn decode(m: i128, ty: &TensorType) -> i128 {
    match ty.encoding {
        Some(e) if ty.is_encrypted() => {
            let w = e.width as u32;
            let u = wrap(m, e.width);
            if ty.int.signed && u >= 1i128 << w {
                u - (1i128 << (w + 1))
            } else {
                u
            }
        }
        _ => m,
    }
}

/// The noise deviation, in boxes of the bootstrap that reads it, that makes a phase leave its
/// half-box margin with probability `p_error`: `P(|N(0, sigma)| > 1/2) = p_error`.
fn box_sigma(p_error: f64) -> f64 {
    if p_error.is_nan() || p_error <= 0.0 {
        return 0.0;
    }
    let p = p_error.min(1.0);
    // P(|N(0, s)| > 1/2) = erfc(1 / (2 sqrt(2) s)) grows with s: bisect on log s
    let tail = |s: f64| libm::erfc(0.5 / (std::f64::consts::SQRT_2 * s));
    let (mut lo, mut hi) = (1e-6f64, 1e3f64);
    for _ in 0..100 {
        let mid = (lo * hi).sqrt();
        if tail(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo * hi).sqrt()
}

/// Probability that noise of deviation `sigma` carries a phase `d` boxes from a tie across
/// it: `Phi(-d / sigma) = erfc(d / (sqrt(2) sigma)) / 2`.
fn flip_probability(d: f64, sigma: f64) -> f64 {
    (0.5 * libm::erfc(d / (std::f64::consts::SQRT_2 * sigma))).clamp(0.0, 1.0)
}

/// Runs `program` on clear `inputs` (in input order).
pub fn simulate(program: &Graph, inputs: &[Tensor<i64>], opts: &SimOptions) -> Result<SimReport> {
    let g = program;
    if g.level != Level::Tfhe {
        return Err(RuntimeError::Program(
            "simulation runs TFHE-level programs; lower the program first".into(),
        ));
    }
    veil_ir::verify::verify(g).map_err(|e| RuntimeError::Program(e.to_string()))?;
    let names = g.value_numbers();
    let at = |v| match names.get(&v) {
        Some(n) => format!("%{n} = {}", g.op(v).name()),
        None => g.op(v).name().to_string(),
    };
    let ins = g.inputs();
    if ins.len() != inputs.len() {
        return Err(RuntimeError::BadInput(format!(
            "the program takes {} input(s), got {}",
            ins.len(),
            inputs.len()
        )));
    }
    let order = g
        .topo_order()
        .map_err(|_| RuntimeError::Program("the program has a cycle".into()))?;
    let slots = g
        .values()
        .iter()
        .map(|v| v.index())
        .max()
        .map_or(0, |m| m + 1);
    let mut vals: Vec<Option<Tensor<i128>>> = vec![None; slots];
    for (&v, t) in ins.iter().zip(inputs) {
        let ty = g.ty(v);
        if t.shape != ty.shape || t.data.iter().any(|&x| !ty.int.contains(x as i128)) {
            return Err(RuntimeError::BadInput(format!(
                "input {} must be {ty}, got shape {:?} with values outside the type or not",
                at(v),
                t.shape
            )));
        }
        vals[v.index()] = Some(t.map(|&x| x as i128));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (mut pbs_count, mut errors) = (0u64, 0u64);
    for &v in &order {
        let op = g.op(v);
        if matches!(op, Op::Input { .. }) {
            continue;
        }
        let operands = g.operands(v);
        let args: Vec<&Tensor<i128>> = operands
            .iter()
            .map(|o| vals[o.index()].as_ref().expect("topological order"))
            .collect();
        let r = match op {
            Op::Pbs { tables, map } => {
                let ot = g.ty(operands[0]);
                let enc = ot.encoding.ok_or_else(|| {
                    RuntimeError::Program(format!("{}: operand has no encoding", at(v)))
                })?;
                let p_err = opts.p_error_override.unwrap_or_else(|| {
                    g.params
                        .get(enc.key.param() as usize)
                        .map_or(0.0, |p| p.p_error)
                });
                let w = enc.width as u32;
                let half = 1i128 << w;
                let data = args[0]
                    .data
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| {
                        let bad =
                            |what: String| RuntimeError::Program(format!("{}: {what}", at(v)));
                        let ti = map.get(j).copied().unwrap_or(0) as usize;
                        let t = *tables
                            .get(ti)
                            .ok_or_else(|| bad(format!("map entry {ti} out of range")))?;
                        let table = g
                            .table(t)
                            .ok_or_else(|| bad(format!("table #{} does not exist", t.0)))?;
                        // a constant table is a trivial encryption, not a bootstrap
                        if table.is_constant() && !table.entries.is_empty() {
                            return Ok(table.entries[0] as i128);
                        }
                        pbs_count += 1;
                        let mut m = wrap(x, enc.width);
                        if p_err > 0.0 && rng.gen_bool(p_err.min(1.0)) {
                            errors += 1;
                            m = wrap(m + if rng.gen_bool(0.5) { 1 } else { -1 }, enc.width);
                        }
                        let (idx, sign) = if m >= half { (m - half, -1) } else { (m, 1) };
                        let e = table
                            .entries
                            .get(idx as usize)
                            .ok_or_else(|| bad(format!("table #{} has no entry {idx}", t.0)))?;
                        Ok(sign * *e as i128)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor {
                    shape: args[0].shape.clone(),
                    data,
                }
            }
            Op::WopPbs { tables, map, .. } => {
                // A WoP-PBS reads the low `w` bits (no padding, no negacyclic sign); a failed
                // bit extraction or circuit bootstrap reads a neighbouring entry.
                let ot = g.ty(operands[0]);
                let enc = ot.encoding.ok_or_else(|| {
                    RuntimeError::Program(format!("{}: operand has no encoding", at(v)))
                })?;
                let p_err = opts.p_error_override.unwrap_or_else(|| {
                    g.params
                        .get(enc.key.param() as usize)
                        .map_or(0.0, |p| p.p_error)
                });
                let modulus = 1i128 << enc.width.min(62);
                let data = args[0]
                    .data
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| {
                        pbs_count += 1;
                        let mut m = x.rem_euclid(modulus);
                        if p_err > 0.0 && rng.gen_bool(p_err.min(1.0)) {
                            errors += 1;
                            m = (m + if rng.gen_bool(0.5) { 1 } else { -1 }).rem_euclid(modulus);
                        }
                        let bad =
                            |what: String| RuntimeError::Program(format!("{}: {what}", at(v)));
                        let ti = map.get(j).copied().unwrap_or(0) as usize;
                        let t = *tables
                            .get(ti)
                            .ok_or_else(|| bad(format!("map entry {ti} out of range")))?;
                        let table = g
                            .table(t)
                            .ok_or_else(|| bad(format!("table #{} does not exist", t.0)))?;
                        let e = table
                            .entries
                            .get(m as usize)
                            .ok_or_else(|| bad(format!("table #{} has no entry {m}", t.0)))?;
                        Ok(*e as i128)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor {
                    shape: args[0].shape.clone(),
                    data,
                }
            }
            Op::KeySwitchRound { shift } => {
                let enc = g.ty(v).encoding.ok_or_else(|| {
                    RuntimeError::Program(format!("{}: result has no encoding", at(v)))
                })?;
                let p_err = opts.p_error_override.unwrap_or_else(|| {
                    g.params
                        .get(enc.key.param() as usize)
                        .map_or(0.0, |p| p.p_error)
                });
                let sigma = box_sigma(p_err);
                let k = (*shift).min(120);
                let step = 1i128 << k;
                let data = args[0]
                    .data
                    .iter()
                    .map(|&x| {
                        let floor = x.div_euclid(step);
                        let frac = x.rem_euclid(step) as f64 / step as f64;
                        let nearest = if frac >= 0.5 { floor + 1 } else { floor };
                        let other = if frac >= 0.5 { floor } else { floor + 1 };
                        let d = (frac - 0.5).abs();
                        // a multiple sits mid-box: only the bootstraps' own error moves it
                        let flip =
                            frac > 0.0 && sigma > 0.0 && rng.gen_bool(flip_probability(d, sigma));
                        if flip {
                            errors += 1;
                            other
                        } else {
                            nearest
                        }
                    })
                    .collect();
                Tensor {
                    shape: args[0].shape.clone(),
                    data,
                }
            }
            // exact: levelled ops (their noise is the bootstraps' and the keyswitches' to
            // model), keyswitches that read the whole message or a bit window exactly, and
            // tensor-level ops (the simulator runs either level)
            Op::Input { .. }
            | Op::Const { .. }
            | Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Mul
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Relu
            | Op::Binary(_)
            | Op::Unary(_)
            | Op::Where
            | Op::Abs
            | Op::Round { .. }
            | Op::Clip { .. }
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. } => {
                let types: Vec<&TensorType> = operands.iter().map(|o| g.ty(*o)).collect();
                eval_op(g, op, &types, g.ty(v), &args)
                    .map_err(|e| RuntimeError::Program(format!("{}: {e}", at(v))))?
            }
        };
        vals[v.index()] = Some(r);
    }
    let outputs = g
        .outputs()
        .into_iter()
        .map(|o| {
            let ty = g.ty(o);
            let t = vals[o.index()].take().expect("outputs computed");
            t.try_map(|&x| {
                let d = decode(x, ty);
                i64::try_from(d).map_err(|_| {
                    RuntimeError::OutOfRange(format!("output {} value {d} exceeds 64 bits", at(o)))
                })
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SimReport {
        outputs,
        pbs_count,
        errors_injected: errors,
    })
}
