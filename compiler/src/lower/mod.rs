//! Lowering: tensor level -> TFHE level.
//!
//! Levelled ops are copied with an encoding on every encrypted value. Every op that needs a
//! bootstrap becomes `add offset -> keyswitch -> pbs` (plus levelled glue):
//!
//! | tensor op | lowered as |
//! |---|---|
//! | `tlu x` | `pbs(x - min(type x))` with the same table (its index *is* `x - min`) |
//! | `relu`, `abs`, `clip`, `round` | `pbs(x - min)` with the function tabulated |
//! | `cmp a, b` | `pbs(d - min)` of `d = a - b`, table `pred(d, 0)` |
//! | `min a, b` / `max a, b` | `a - relu(a - b)` / `b + relu(a - b)`, one PBS |
//! | `mul a, b` (both encrypted) | `floor((a+b)^2/4) - floor((a-b)^2/4)`, two PBS |
//! | `matmul a, b` (both encrypted) | reshape/broadcast, encrypted `mul`, `sum` |
//!
//! The offset makes every bootstrap input a non-negative message below `2^b` (the padding bit
//! stays clear). Keyswitches and offsets of one value are shared by all its bootstraps.
//!
//! Parameters: one parameter set (mono-parameter) whose message width `W` is the widest
//! bootstrap input or encrypted output; all encrypted values are encoded with `delta =
//! 2^(63-W)`. The set is chosen by a [`ParamChooser`] (the optimizer) from `W`, the largest
//! norm2 reaching a bootstrap or an output (see [`manp`]), and the number of bootstraps.
//!
//! Architecture invariant: the lowered graph verifies at [`Level::Tfhe`] and computes exactly
//! what the tensor-level graph computes (checked by tests through both interpreters).

pub mod manp;

use std::collections::HashMap;
use thiserror::Error;
use veil_ir::types::numel;
use veil_ir::{
    CmpOp, Constant, Encoding, Graph, IntType, KeyId, Level, Op, ParamSet, Table, TensorType,
    ValueId, Visibility,
};

/// What the lowering asks of the parameter optimizer for one partition.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PartitionRequest {
    /// Message width of bootstrap inputs (and of every encrypted value), in bits.
    pub precision: u8,
    /// Largest norm2 (sum of squared clear weights since the last bootstrap) reaching a
    /// bootstrap or an output.
    pub norm2: f64,
    /// Number of bootstraps (ciphertext count) in the program.
    pub tlu_count: u64,
}

/// Chooses a parameter set for a partition (implemented by the optimizer).
pub trait ParamChooser {
    /// A secure parameter set meeting the program's error target, or why there is none.
    fn choose(&self, req: &PartitionRequest) -> Result<ParamSet, String>;
}

impl<F: Fn(&PartitionRequest) -> Result<ParamSet, String>> ParamChooser for F {
    fn choose(&self, req: &PartitionRequest) -> Result<ParamSet, String> {
        self(req)
    }
}

/// Why a program cannot be lowered.
#[derive(Debug, Error, PartialEq)]
pub enum LowerError {
    /// The input graph is malformed or not at the tensor level.
    #[error("lowering needs a verified tensor-level graph: {0}")]
    BadInput(String),
    /// An op/operand combination the lowering does not support.
    #[error("cannot lower {what}: {why}")]
    Unsupported {
        /// The op, e.g. `conv2d %4`.
        what: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// No parameters exist for what the program needs.
    #[error("no TFHE parameters for {precision}-bit bootstraps with norm2 {norm2}: {why}")]
    NoParameters {
        /// Required precision.
        precision: u8,
        /// Required norm2.
        norm2: f64,
        /// The optimizer's explanation.
        why: String,
    },
}

/// Counts of the lowered program.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LowerStats {
    /// Bootstraps (one per ciphertext).
    pub pbs: u64,
    /// Keyswitches (one per ciphertext).
    pub keyswitches: u64,
    /// Levelled op nodes.
    pub levelled_ops: u64,
    /// Message width of the single partition.
    pub precision: u8,
    /// Largest norm2 reaching a bootstrap or output.
    pub norm2: f64,
}

/// A lowered program and its statistics.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The TFHE-level graph (verifies at [`Level::Tfhe`]).
    pub program: Graph,
    /// Counts.
    pub stats: LowerStats,
}

/// A bootstrap whose tables are materialized once the partition width is known.
struct PendingPbs {
    node: ValueId,
    /// Per table: images of messages `0 .. 2^in_bits`.
    tables: Vec<Vec<i64>>,
    map: Vec<u32>,
}

struct Lowerer<'a> {
    src: &'a Graph,
    dst: Graph,
    map: HashMap<ValueId, ValueId>,
    numbers: HashMap<ValueId, usize>,
    pending: Vec<PendingPbs>,
    /// Keyswitched, offset bootstrap inputs, shared between bootstraps of one value.
    ks_cache: HashMap<ValueId, (ValueId, i128, u8)>,
}

type R<T> = Result<T, LowerError>;

/// Lowers a verified tensor-level graph to the TFHE level, choosing parameters with `chooser`.
pub fn lower(src: &Graph, chooser: &dyn ParamChooser) -> R<Lowered> {
    if src.level != Level::Tensor {
        return Err(LowerError::BadInput(
            "graph is already at the TFHE level".into(),
        ));
    }
    let order = src
        .topo_order()
        .map_err(|_| LowerError::BadInput("graph has a cycle".into()))?;
    let mut l = Lowerer {
        src,
        dst: Graph::new(),
        map: HashMap::new(),
        numbers: src.value_numbers(),
        pending: Vec::new(),
        ks_cache: HashMap::new(),
    };
    for v in order {
        let nv = l.lower_node(v)?;
        l.map.insert(v, nv);
    }
    l.finish(chooser)
}

fn range_of(t: &IntType) -> (i128, i128) {
    let t = *t;
    (t.min(), t.max())
}

impl<'a> Lowerer<'a> {
    fn what(&self, v: ValueId) -> String {
        match self.numbers.get(&v) {
            Some(n) => format!("{} %{n}", self.src.op(v).name()),
            None => self.src.op(v).name().to_string(),
        }
    }

    fn ty(&self, dv: ValueId) -> &TensorType {
        self.dst.ty(dv)
    }

    fn int_type(&self, v: ValueId, lo: i128, hi: i128) -> R<IntType> {
        IntType::fitting(lo, hi).ok_or_else(|| LowerError::Unsupported {
            what: self.what(v),
            why: format!("an intermediate range [{lo}, {hi}] needs more than 64 bits"),
        })
    }

    /// Adds a levelled node whose result type is computed from an integer range.
    fn levelled(
        &mut self,
        src: ValueId,
        op: Op,
        operands: &[ValueId],
        range: (i128, i128),
        shape: Vec<usize>,
    ) -> R<ValueId> {
        let enc = operands.iter().any(|o| self.ty(*o).is_encrypted());
        let int = self.int_type(src, range.0, range.1)?;
        let ty = TensorType {
            vis: if enc {
                Visibility::Encrypted
            } else {
                Visibility::Clear
            },
            int,
            shape,
            encoding: None,
        };
        Ok(self.dst.add_node(op, ty, operands))
    }

    fn scalar_const(&mut self, src: ValueId, k: i128) -> R<ValueId> {
        let int = self.int_type(src, k, k)?;
        let c = self.dst.add_const(Constant {
            shape: vec![],
            values: vec![k as i64],
        });
        Ok(self
            .dst
            .add_node(Op::Const { value: c }, TensorType::clear(int, vec![]), &[]))
    }

    /// `a - b` with broadcasting, typed by range.
    fn sub(&mut self, src: ValueId, a: ValueId, b: ValueId) -> R<ValueId> {
        let (al, ah) = range_of(&self.ty(a).int);
        let (bl, bh) = range_of(&self.ty(b).int);
        let shape = self.broadcast_shape(src, a, b)?;
        self.levelled(src, Op::Sub, &[a, b], (al - bh, ah - bl), shape)
    }

    /// `a + b` with broadcasting, typed by range.
    fn add(&mut self, src: ValueId, a: ValueId, b: ValueId) -> R<ValueId> {
        let (al, ah) = range_of(&self.ty(a).int);
        let (bl, bh) = range_of(&self.ty(b).int);
        let shape = self.broadcast_shape(src, a, b)?;
        self.levelled(src, Op::Add, &[a, b], (al + bl, ah + bh), shape)
    }

    fn broadcast_shape(&self, src: ValueId, a: ValueId, b: ValueId) -> R<Vec<usize>> {
        veil_ir::types::broadcast_shapes(&self.ty(a).shape, &self.ty(b).shape).ok_or_else(|| {
            LowerError::BadInput(format!(
                "{}: operand shapes do not broadcast",
                self.what(src)
            ))
        })
    }

    /// Bootstraps every element of encrypted `x` through `f`, producing a value of type
    /// `out` (shape taken from `x`).
    fn tlu_fn(
        &mut self,
        src: ValueId,
        x: ValueId,
        out: IntType,
        f: impl Fn(i128) -> i128,
    ) -> R<ValueId> {
        let (ks, lo, bits) = self.pbs_input(src, x)?;
        let table: Vec<i64> = (0..(1i128 << bits)).map(|m| f(m + lo) as i64).collect();
        self.pbs(ks, out, vec![table], vec![])
    }

    /// The shared `keyswitch(x - min)` of a bootstrap input: `(node, min, bits)`.
    fn pbs_input(&mut self, src: ValueId, x: ValueId) -> R<(ValueId, i128, u8)> {
        if let Some(hit) = self.ks_cache.get(&x) {
            return Ok(*hit);
        }
        let t = self.ty(x).clone();
        let (lo, hi) = range_of(&t.int);
        let bits = t.int.bits;
        if bits > 16 {
            return Err(LowerError::Unsupported {
                what: self.what(src),
                why: format!(
                    "its bootstrap input is {} bits wide (at most 16); calibrate bit widths with an \
                     inputset or round the value first (`round`)",
                    bits
                ),
            });
        }
        let shifted = if lo != 0 {
            let c = self.scalar_const(src, -lo)?;
            self.levelled(src, Op::Add, &[x, c], (0, hi - lo), t.shape.clone())?
        } else {
            x
        };
        let ks = self.dst.add_node(
            Op::KeySwitch,
            TensorType {
                int: IntType::unsigned(bits),
                ..self.ty(shifted).clone()
            },
            &[shifted],
        );
        self.ks_cache.insert(x, (ks, lo, bits));
        Ok((ks, lo, bits))
    }

    fn pbs(
        &mut self,
        ks: ValueId,
        out: IntType,
        tables: Vec<Vec<i64>>,
        map: Vec<u32>,
    ) -> R<ValueId> {
        let ty = TensorType {
            int: out,
            ..self.ty(ks).clone()
        };
        let node = self.dst.add_node(
            Op::Pbs {
                tables: vec![],
                map: map.clone(),
            },
            ty,
            &[ks],
        );
        self.pending.push(PendingPbs { node, tables, map });
        Ok(node)
    }

    /// Elementwise product of two encrypted tensors: two bootstraps.
    fn mul_enc(&mut self, src: ValueId, a: ValueId, b: ValueId, out: IntType) -> R<ValueId> {
        let s = self.add(src, a, b)?;
        let d = self.sub(src, a, b)?;
        let sq = |x: i128| (x * x).div_euclid(4);
        let (sl, sh) = range_of(&self.ty(s).int);
        let (dl, dh) = range_of(&self.ty(d).int);
        let smax = sq(sl).max(sq(sh));
        let dmax = sq(dl).max(sq(dh));
        let st = self.int_type(src, 0, smax)?;
        let dt = self.int_type(src, 0, dmax)?;
        let u = self.tlu_fn(src, s, st, sq)?;
        let w = self.tlu_fn(src, d, dt, sq)?;
        let shape = self.ty(u).shape.clone();
        let r = self
            .dst
            .add_node(Op::Sub, TensorType::encrypted(out, shape), &[u, w]);
        Ok(r)
    }

    fn lower_node(&mut self, v: ValueId) -> R<ValueId> {
        let node = self.src.node(v).clone();
        let ops: Vec<ValueId> = self.src.operands(v).iter().map(|o| self.map[o]).collect();
        let n_enc = ops.iter().filter(|o| self.ty(**o).is_encrypted()).count();
        let out = node.ty.int;
        let unsupported = |why: &str| LowerError::Unsupported {
            what: self.what(v),
            why: why.to_string(),
        };
        if node.op.is_tfhe_only() {
            return Err(LowerError::BadInput(format!(
                "{} is a TFHE-level op",
                self.what(v)
            )));
        }
        if let Op::Const { value } = &node.op {
            let c = self
                .src
                .constant(*value)
                .ok_or_else(|| LowerError::BadInput(format!("{}: unknown constant", self.what(v))))?
                .clone();
            let id = self.dst.add_const(c);
            return Ok(self
                .dst
                .add_node(Op::Const { value: id }, node.ty.clone(), &[]));
        }
        if !node.op.needs_pbs(n_enc) {
            // Levelled, or a non-levelled op on clear values only.
            if n_enc == 0 && node.op.needs_pbs(1) {
                return Err(unsupported(
                    "it only involves clear values; compute it before encryption or make an operand encrypted",
                ));
            }
            if matches!(node.op, Op::Conv2d(_)) && n_enc > 0 && !self.ty(ops[0]).is_encrypted() {
                return Err(unsupported(
                    "conv2d with encrypted weights is not supported; keep weights clear",
                ));
            }
            return Ok(self.dst.add_node(node.op.clone(), node.ty.clone(), &ops));
        }
        let x = ops[0];
        match &node.op {
            Op::Tlu { table } => {
                let t = self.src.table(*table).ok_or_else(|| {
                    LowerError::BadInput(format!("{}: unknown table", self.what(v)))
                })?;
                let entries = t.entries.clone();
                let lo = range_of(&self.ty(x).int).0;
                // The table's index is `a - min(type a)`, exactly the offset message.
                self.tlu_fn(v, x, out, move |a| entries[(a - lo) as usize] as i128)
            }
            Op::TluMulti { tables, map } => {
                let (ks, lo, bits) = self.pbs_input(v, x)?;
                let src_lo = range_of(&self.src.ty(self.src.operands(v)[0]).int).0;
                debug_assert_eq!(lo, src_lo);
                let mut tabs = Vec::new();
                for t in tables {
                    let e = &self
                        .src
                        .table(*t)
                        .ok_or_else(|| {
                            LowerError::BadInput(format!("{}: unknown table", self.what(v)))
                        })?
                        .entries;
                    tabs.push((0..(1usize << bits)).map(|m| e[m]).collect());
                }
                self.pbs(ks, out, tabs, map.clone())
            }
            Op::Relu => self.tlu_fn(v, x, out, |a| a.max(0)),
            Op::Abs => self.tlu_fn(v, x, out, |a| a.abs()),
            Op::Clip { lo, hi } => {
                let (lo, hi) = (*lo as i128, *hi as i128);
                self.tlu_fn(v, x, out, move |a| a.clamp(lo, hi))
            }
            Op::Round { lsbs } => {
                let k = *lsbs as u32;
                self.tlu_fn(v, x, out, move |a| {
                    if k == 0 {
                        a
                    } else {
                        (a + (1i128 << (k - 1))).div_euclid(1i128 << k) << k
                    }
                })
            }
            Op::Cmp(c) => {
                let c: CmpOp = *c;
                let d = self.sub(v, ops[0], ops[1])?;
                self.tlu_fn(v, d, out, move |x| c.eval(x, 0) as i128)
            }
            Op::Min | Op::Max => {
                let d = self.sub(v, ops[0], ops[1])?;
                let (_, dh) = range_of(&self.ty(d).int);
                let rt = self.int_type(v, 0, dh.max(0))?;
                let r = self.tlu_fn(v, d, rt, |x| x.max(0))?;
                let (base, op) = if matches!(node.op, Op::Min) {
                    (ops[0], Op::Sub)
                } else {
                    (ops[1], Op::Add)
                };
                Ok(self.dst.add_node(op, node.ty.clone(), &[base, r]))
            }
            Op::Mul => self.mul_enc(v, ops[0], ops[1], out),
            Op::MatMul => {
                let (a, b) = (ops[0], ops[1]);
                let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
                let (m, k, n, _) = veil_ir::tensor::matmul_dims(&sa, &sb)
                    .map_err(|e| LowerError::BadInput(format!("{}: {e}", self.what(v))))?;
                let ta = self.ty(a).clone().with_shape(vec![m, k, 1]);
                let tb = self.ty(b).clone().with_shape(vec![1, k, n]);
                let a3 = self.dst.add_node(Op::Reshape, ta, &[a]);
                let b3 = self.dst.add_node(Op::Reshape, tb, &[b]);
                let (al, ah) = range_of(&self.ty(a).int);
                let (bl, bh) = range_of(&self.ty(b).int);
                let prods = [al * bl, al * bh, ah * bl, ah * bh];
                let pt = self.int_type(
                    v,
                    *prods.iter().min().expect("4"),
                    *prods.iter().max().expect("4"),
                )?;
                let p = self.mul_enc(v, a3, b3, pt)?;
                let s = self.dst.add_node(
                    Op::Sum {
                        axes: vec![1],
                        keepdims: false,
                    },
                    TensorType::encrypted(out, vec![m, n]),
                    &[p],
                );
                Ok(self.dst.add_node(Op::Reshape, node.ty.clone(), &[s]))
            }
            Op::Conv2d(_) => Err(unsupported(
                "conv2d with encrypted weights is not supported; keep weights clear",
            )),
            other => Err(unsupported(&format!("no lowering for `{}`", other.name()))),
        }
    }

    fn finish(mut self, chooser: &dyn ParamChooser) -> R<Lowered> {
        let g = &mut self.dst;
        // Partition width: widest bootstrap input, or encrypted output (signed outputs use the
        // padding bit as sign bit).
        let mut width: u8 = 1;
        for v in g.values() {
            match g.op(v) {
                Op::KeySwitch => width = width.max(g.ty(v).int.bits),
                Op::Output { .. } if g.ty(v).is_encrypted() => {
                    let t = g.ty(v).int;
                    width = width.max(if t.signed {
                        t.bits.saturating_sub(1).max(1)
                    } else {
                        t.bits
                    });
                }
                _ => {}
            }
        }
        // Materialize tables at width W (messages beyond an input's range are unreachable).
        for p in std::mem::take(&mut self.pending) {
            let ids: Vec<_> = p
                .tables
                .into_iter()
                .map(|mut t| {
                    t.resize(1usize << width, 0);
                    g.add_table(Table { entries: t })
                })
                .collect();
            g.node_mut(p.node).op = Op::Pbs {
                tables: ids,
                map: p.map,
            };
        }
        let mut stats = LowerStats {
            precision: width,
            ..Default::default()
        };
        for v in g.values() {
            let (is_enc, count) = (g.ty(v).is_encrypted(), numel(&g.ty(v).shape) as u64);
            match g.op(v) {
                Op::KeySwitch => stats.keyswitches += count,
                Op::Pbs { .. } => stats.pbs += count,
                Op::Input { .. } | Op::Const { .. } | Op::Output { .. } => {}
                _ if is_enc => stats.levelled_ops += 1,
                _ => {}
            }
            if is_enc {
                let key = if matches!(g.op(v), Op::KeySwitch) {
                    KeyId::Small(0)
                } else {
                    KeyId::Big(0)
                };
                g.node_mut(v).ty.encoding = Some(Encoding { key, width });
            }
        }
        let nu = manp::norm2(g);
        stats.norm2 = g
            .values()
            .into_iter()
            .filter(|v| matches!(g.op(*v), Op::KeySwitch | Op::Output { .. }))
            .map(|v| manp::max_norm2(&nu, v))
            .fold(1.0, f64::max);
        let req = PartitionRequest {
            precision: width,
            norm2: stats.norm2,
            tlu_count: stats.pbs,
        };
        let params = chooser
            .choose(&req)
            .map_err(|why| LowerError::NoParameters {
                precision: width,
                norm2: stats.norm2,
                why,
            })?;
        g.params = vec![params];
        g.level = Level::Tfhe;
        g.compact_pools();
        Ok(Lowered {
            program: self.dst,
            stats,
        })
    }
}
