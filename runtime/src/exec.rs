//! The executor: runs a TFHE-level program on ciphertexts with server keys.
//!
//! Nodes run in topological waves: every node whose operands are ready runs in parallel with
//! the others of its wave, and the elements of each `keyswitch`/`pbs` tensor run in parallel
//! too (rayon, on the executor's own pool of a configurable size). A value is dropped as soon as
//! its last user has run. Levelled ops use the shared kernels of `veil_ir::tensor` on
//! [`Lwe`] elements; clear-only nodes use the reference semantics (`veil_ir::interp::eval_op`).

use crate::ciphertext::{CtTensor, Lwe, Value};
use crate::error::{Result, RuntimeError};
use crate::keys::ServerKeys;
use crate::pbs::KsRead;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use veil_ir::interp::eval_op;
use veil_ir::tensor::zip_broadcast;
use veil_ir::{Element, Graph, Level, Op, Tensor, TensorType, ValueId};

/// Progress of a run, reported after every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Nodes finished.
    pub nodes_done: usize,
    /// Nodes in the program.
    pub nodes_total: usize,
    /// Bootstraps finished.
    pub pbs_done: usize,
    /// Bootstraps in the program.
    pub pbs_total: usize,
}

/// A progress callback; called from worker threads.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Runs programs on its own rayon thread pool.
pub struct Executor {
    pool: rayon::ThreadPool,
    threads: usize,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("threads", &self.threads)
            .finish()
    }
}

impl Executor {
    /// An executor with `threads` worker threads (`0`: one per CPU).
    pub fn new(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("veil-exec-{i}"))
            .build()
            .map_err(|e| RuntimeError::ThreadPool {
                threads,
                msg: e.to_string(),
            })?;
        Ok(Executor {
            threads: pool.current_num_threads(),
            pool,
            progress: None,
        })
    }

    /// Reports progress to `f` after every node.
    pub fn with_progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on this executor's pool (so rayon work inside uses its threads).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Runs `program` on `inputs` (in input order); returns the outputs in output order.
    pub fn run(
        &self,
        program: &Graph,
        keys: &ServerKeys,
        inputs: Vec<Value>,
    ) -> Result<Vec<Value>> {
        self.pool
            .install(|| run_inner(program, keys, inputs, self.progress.as_ref()))
    }
}

/// Runs `program` on the global rayon pool (see [`Executor`] for a sized pool).
pub fn run(program: &Graph, keys: &ServerKeys, inputs: Vec<Value>) -> Result<Vec<Value>> {
    run_inner(program, keys, inputs, None)
}

struct Ctx<'a> {
    g: &'a Graph,
    keys: &'a ServerKeys,
    names: HashMap<ValueId, usize>,
}

impl Ctx<'_> {
    fn at(&self, v: ValueId) -> String {
        match self.names.get(&v) {
            Some(n) => format!("%{n} = {}", self.g.op(v).name()),
            None => self.g.op(v).name().to_string(),
        }
    }

    fn err(&self, v: ValueId, msg: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Program(format!("{}: {msg}", self.at(v)))
    }
}

fn run_inner(
    g: &Graph,
    keys: &ServerKeys,
    inputs: Vec<Value>,
    progress: Option<&ProgressFn>,
) -> Result<Vec<Value>> {
    if g.level != Level::Tfhe {
        return Err(RuntimeError::Program(
            "the runtime executes TFHE-level programs; lower this tensor-level program first"
                .into(),
        ));
    }
    veil_ir::verify::verify(g).map_err(|e| RuntimeError::Program(e.to_string()))?;
    keys.check_serves(g)?;
    let ctx = Ctx {
        g,
        keys,
        names: g.value_numbers(),
    };
    let order = g
        .topo_order()
        .map_err(|_| RuntimeError::Program("the program has a cycle".into()))?;
    let slots = g
        .values()
        .iter()
        .map(|v| v.index())
        .max()
        .map_or(0, |m| m + 1);
    let mut vals: Vec<Option<Value>> = (0..slots).map(|_| None).collect();

    let ins = g.inputs();
    if ins.len() != inputs.len() {
        return Err(RuntimeError::BadInput(format!(
            "the program takes {} input(s), got {}",
            ins.len(),
            inputs.len()
        )));
    }
    for (&v, x) in ins.iter().zip(inputs) {
        check_input(&ctx, v, &x)?;
        vals[v.index()] = Some(x);
    }

    // Waves: depth = 1 + max depth of operands.
    let mut depth: HashMap<ValueId, usize> = HashMap::new();
    let mut waves: Vec<Vec<ValueId>> = Vec::new();
    let mut uses: Vec<usize> = vec![0; slots];
    for &v in &order {
        let d = g
            .operands(v)
            .iter()
            .map(|o| depth[o] + 1)
            .max()
            .unwrap_or(0);
        depth.insert(v, d);
        uses[v.index()] = g.users(v).len();
        if !matches!(g.op(v), Op::Input { .. }) {
            if waves.len() <= d {
                waves.resize(d + 1, Vec::new());
            }
            waves[d].push(v);
        }
    }
    let pbs_total: usize = order.iter().map(|v| g.bootstraps(*v) as usize).sum();
    let nodes_total = order.len() - ins.len();
    let nodes_done = AtomicUsize::new(0);
    let pbs_done = AtomicUsize::new(0);

    for wave in waves {
        let results: Vec<(ValueId, Result<Value>)> = wave
            .par_iter()
            .map(|&v| {
                let operands = g.operands(v);
                let args: Vec<&Value> = operands
                    .iter()
                    .map(|o| {
                        vals[o.index()]
                            .as_ref()
                            .expect("operands run in earlier waves")
                    })
                    .collect();
                let r = eval_node(&ctx, v, &args);
                if let Some(p) = progress {
                    let n = nodes_done.fetch_add(1, Ordering::Relaxed) + 1;
                    let b = g.bootstraps(v) as usize;
                    let pb = if b > 0 {
                        pbs_done.fetch_add(b, Ordering::Relaxed) + b
                    } else {
                        pbs_done.load(Ordering::Relaxed)
                    };
                    p(&Progress {
                        nodes_done: n,
                        nodes_total,
                        pbs_done: pb,
                        pbs_total,
                    });
                }
                (v, r)
            })
            .collect();
        for (v, r) in results {
            vals[v.index()] = Some(r?);
            for o in g
                .operands(v)
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
            {
                let u = &mut uses[o.index()];
                *u -= 1;
                if *u == 0 {
                    vals[o.index()] = None;
                }
            }
        }
    }
    g.outputs()
        .into_iter()
        .map(|o| {
            vals[o.index()]
                .take()
                .ok_or_else(|| ctx.err(o, "output was not computed"))
        })
        .collect()
}

fn check_input(ctx: &Ctx, v: ValueId, x: &Value) -> Result<()> {
    let ty = ctx.g.ty(v);
    let name = match ctx.g.op(v) {
        Op::Input { name } => name.as_str(),
        _ => "?",
    };
    if x.shape() != ty.shape.as_slice() {
        return Err(RuntimeError::BadInput(format!(
            "input \"{name}\" has shape {:?}, expected {:?}",
            x.shape(),
            ty.shape
        )));
    }
    match (x, ty.encoding) {
        (Value::Encrypted(c), Some(enc)) => {
            if c.encoding != enc {
                return Err(RuntimeError::BadInput(format!(
                    "input \"{name}\" is encrypted with encoding {}, the program expects {enc}",
                    c.encoding
                )));
            }
            if c.key_id != ctx.keys.key_id() {
                return Err(RuntimeError::KeyMismatch(format!(
                    "input \"{name}\" was encrypted with key generation {:016x}, the server keys are {:016x}",
                    c.key_id,
                    ctx.keys.key_id()
                )));
            }
            let p = ctx
                .keys
                .params()
                .get(enc.key.param() as usize)
                .ok_or_else(|| {
                    RuntimeError::KeyMismatch(format!(
                        "input \"{name}\" is under {} which the keys lack",
                        enc.key
                    ))
                })?;
            let dim = match enc.key {
                veil_ir::KeyId::Big(_) => p.big_lwe_dimension(),
                veil_ir::KeyId::Small(_) => p.lwe_dimension,
            };
            if c.param_fingerprint != p.fingerprint() || c.lwe_dimension() != dim {
                return Err(RuntimeError::KeyMismatch(format!(
                    "input \"{name}\" holds ciphertexts of dimension {} made for other parameters than {} of the program (dimension {dim})",
                    c.lwe_dimension(),
                    enc.key
                )));
            }
            Ok(())
        }
        (Value::Clear(t), None) if !ty.is_encrypted() => {
            match t.data.iter().position(|&x| !ty.int.contains(x as i128)) {
                Some(i) => Err(RuntimeError::OutOfRange(format!(
                    "clear input \"{name}\" element {} does not fit {}",
                    t.data[i], ty.int
                ))),
                None => Ok(()),
            }
        }
        (Value::Clear(_), _) => Err(RuntimeError::BadInput(format!(
            "input \"{name}\" must be encrypted ({ty}), got a clear tensor"
        ))),
        (Value::Encrypted(_), None) => Err(RuntimeError::BadInput(format!(
            "input \"{name}\" is clear ({ty}), got ciphertexts"
        ))),
    }
}

fn clear_i128(t: &Tensor<i64>) -> Tensor<i128> {
    t.map(|&x| x as i128)
}

fn eval_node(ctx: &Ctx, v: ValueId, args: &[&Value]) -> Result<Value> {
    let g = ctx.g;
    let op = g.op(v);
    let ty = g.ty(v);
    let any_enc = args.iter().any(|a| matches!(a, Value::Encrypted(_)));
    if let Op::Output { .. } = op {
        return Ok(args[0].clone());
    }
    if let Op::Input { .. } = op {
        return Err(ctx.err(v, "inputs are given, not evaluated"));
    }
    if !any_enc {
        let types: Vec<&TensorType> = g.operands(v).into_iter().map(|o| g.ty(o)).collect();
        let cargs: Vec<Tensor<i128>> = args
            .iter()
            .map(|a| clear_i128(a.as_clear().expect("all clear")))
            .collect();
        let refs: Vec<&Tensor<i128>> = cargs.iter().collect();
        let r = eval_op(g, op, &types, ty, &refs).map_err(|e| ctx.err(v, e))?;
        let data = r
            .data
            .iter()
            .map(|&x| {
                if ty.int.contains(x) {
                    Ok(x as i64)
                } else {
                    Err(ctx.err(v, format!("clear result {x} does not fit {}", ty.int)))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Value::Clear(Tensor {
            shape: r.shape,
            data,
        }));
    }
    let enc = ty
        .encoding
        .ok_or_else(|| ctx.err(v, "encrypted result without an encoding"))?;
    let keys = ctx.keys;
    let shape_err = |e| RuntimeError::shape(ctx.at(v), e);
    let ct = |i: usize| -> Result<&CtTensor> {
        args[i]
            .as_encrypted()
            .ok_or_else(|| ctx.err(v, format!("operand {i} must be encrypted")))
    };
    let clear = |i: usize| -> Result<&Tensor<i64>> {
        args[i]
            .as_clear()
            .ok_or_else(|| ctx.err(v, format!("operand {i} must be clear")))
    };
    let tensor: Tensor<Lwe> = match op {
        Op::KeySwitch
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. } => {
            let read = ks_read(op);
            // elements that only constant tables read are left trivial zeros
            let needed = g.elements_read(v);
            return Ok(Value::Encrypted(
                keys.keyswitch_tensor_masked(ct(0)?, enc, read, needed.as_deref())
                    .map_err(|e| ctx.err(v, e))?,
            ));
        }
        Op::Pbs { tables, map } => {
            let ts = tables
                .iter()
                .map(|t| {
                    g.table(*t)
                        .map(|t| t.entries.as_slice())
                        .ok_or_else(|| ctx.err(v, format!("table #{} does not exist", t.0)))
                })
                .collect::<Result<Vec<_>>>()?;
            // a bit keyswitch's output is read as a sign
            let read = ks_read(g.op(g.operands(v)[0]));
            return Ok(Value::Encrypted(
                keys.pbs_tensor_read(ct(0)?, &ts, map, enc, read)
                    .map_err(|e| ctx.err(v, e))?,
            ));
        }
        Op::WopPbs { tables, map, .. } => {
            let ts = tables
                .iter()
                .map(|t| {
                    g.table(*t)
                        .map(|t| t.entries.as_slice())
                        .ok_or_else(|| ctx.err(v, format!("table #{} does not exist", t.0)))
                })
                .collect::<Result<Vec<_>>>()?;
            let wk = keys
                .wop(enc.key.param())
                .ok_or_else(|| ctx.err(v, format!("no WoP-PBS keys for {}", enc.key)))?;
            return Ok(Value::Encrypted(
                wk.lookup_tensor_map(ct(0)?, &ts, map, enc.width)
                    .map_err(|e| ctx.err(v, e))?,
            ));
        }
        Op::Add | Op::Sub => {
            let sub = matches!(op, Op::Sub);
            match (args[0], args[1]) {
                (Value::Encrypted(a), Value::Encrypted(b)) => zip_broadcast(&a.tensor, &b.tensor, |x, y| {
                    if sub {
                        x.sub(y)
                    } else {
                        x.add(y)
                    }
                })
                .map_err(shape_err)?,
                (Value::Encrypted(a), Value::Clear(b)) => {
                    zip_broadcast(&a.tensor, b, |x, &k| x.add_int(if sub { k.wrapping_neg() } else { k }))
                        .map_err(shape_err)?
                }
                (Value::Clear(a), Value::Encrypted(b)) => zip_broadcast(a, &b.tensor, |&k, y| {
                    if sub {
                        y.neg().add_int(k)
                    } else {
                        y.add_int(k)
                    }
                })
                .map_err(shape_err)?,
                (Value::Clear(_), Value::Clear(_)) => unreachable!("handled as clear"),
            }
        }
        Op::Neg => ct(0)?.tensor.map(|x| x.neg()),
        Op::Mul => match (args[0], args[1]) {
            (Value::Encrypted(a), Value::Clear(b)) => {
                zip_broadcast(&a.tensor, b, |x, &k| x.mul_int(k)).map_err(shape_err)?
            }
            (Value::Clear(a), Value::Encrypted(b)) => {
                zip_broadcast(a, &b.tensor, |&k, y| y.mul_int(k)).map_err(shape_err)?
            }
            _ => return Err(ctx.err(v, "encrypted x encrypted multiplication must be lowered to pbs")),
        },
        Op::MatMul => match (args[0], args[1]) {
            (Value::Encrypted(a), Value::Clear(b)) => a.tensor.matmul_clear_rhs(b).map_err(shape_err)?,
            (Value::Clear(a), Value::Encrypted(b)) => {
                Tensor::matmul_clear_lhs(a, &b.tensor).map_err(shape_err)?
            }
            _ => return Err(ctx.err(v, "encrypted x encrypted matmul must be lowered to pbs")),
        },
        Op::Conv2d(at) => {
            let bias = if args.len() == 3 { Some(clear(2)?) } else { None };
            ct(0)?
                .tensor
                .conv2d_clear(clear(1)?, bias, at)
                .map_err(shape_err)?
        }
        Op::Sum { axes, keepdims } => ct(0)?.tensor.sum(axes, *keepdims).map_err(shape_err)?,
        Op::Reshape => ct(0)?.tensor.reshape(&ty.shape).map_err(shape_err)?,
        Op::Broadcast => ct(0)?.tensor.broadcast_to(&ty.shape).map_err(shape_err)?,
        Op::Transpose { perm } => ct(0)?.tensor.transpose(perm).map_err(shape_err)?,
        Op::Slice {
            starts,
            stops,
            steps,
        } => ct(0)?.tensor.slice(starts, stops, steps).map_err(shape_err)?,
        Op::Concat { axis } => {
            let dim = args
                .iter()
                .find_map(|a| a.as_encrypted())
                .map(|c| c.lwe_dimension())
                .expect("some operand is encrypted");
            let parts: Vec<Tensor<Lwe>> = args
                .iter()
                .map(|a| match a {
                    Value::Encrypted(c) => c.tensor.clone(),
                    Value::Clear(t) => t.map(|&m| Lwe::trivial(dim, enc.width, m)),
                })
                .collect();
            let refs: Vec<&Tensor<Lwe>> = parts.iter().collect();
            Tensor::concat(&refs, *axis).map_err(shape_err)?
        }
        // tensor-level ops that bootstrap (the verifier refuses them at the TFHE level);
        // inputs and outputs returned above, constants are clear
        Op::Tlu { .. }
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
        | Op::Input { .. }
        | Op::Const { .. }
        | Op::Output { .. } => {
            return Err(ctx.err(
                v,
                format!(
                    "`{}` on encrypted values is not executable at the TFHE level; lower it to levelled ops, keyswitch and pbs",
                    op.name()
                ),
            ))
        }
    };
    if tensor.shape != ty.shape {
        return Err(ctx.err(
            v,
            format!("computed shape {:?}, declared {:?}", tensor.shape, ty.shape),
        ));
    }
    let fp = keys
        .params()
        .get(enc.key.param() as usize)
        .ok_or_else(|| ctx.err(v, format!("no parameter set for {}", enc.key)))?
        .fingerprint();
    let tensor = Tensor {
        shape: tensor.shape,
        data: tensor
            .data
            .into_iter()
            .map(|mut c| {
                c.width = enc.width;
                c
            })
            .collect(),
    };
    Ok(Value::Encrypted(CtTensor {
        encoding: enc,
        key_id: keys.key_id(),
        param_fingerprint: fp,
        tensor,
    }))
}

/// What a keyswitch op reads of its operand (plain message for other ops).
fn ks_read(op: &Op) -> KsRead {
    match op {
        // the low bits move the phase inside the bootstrap's box: the read rounds
        Op::KeySwitchShr { shift } | Op::KeySwitchRound { shift } => KsRead::Shr(*shift),
        Op::KeySwitchBit { bit } => KsRead::Bit(*bit),
        Op::KeySwitch
        | Op::Input { .. }
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
        | Op::Pbs { .. }
        | Op::WopPbs { .. } => KsRead::Message,
    }
}
