//! Lowering: tensor level -> TFHE level.
//!
//! Levelled ops are copied with an encoding on every encrypted value. Every op that needs a
//! bootstrap becomes `add offset -> keyswitch -> pbs` (plus levelled glue):
//!
//! | tensor op | lowered as |
//! |---|---|
//! | `tlu x` | `pbs(x - min(type x))` with the same table (its index *is* `x - min`) |
//! | `relu`, `abs`, `clip` | `pbs(x - min)` with the function tabulated |
//! | `round x, k` | `t = x + 2^(k-1)`; per bit `j < k`: `t -= pbs(keyswitch.bit t, j)` (exact) |
//! | `round x, k, approx` | lookups of it: `pbs(keyswitch.round (x - lo), k)`, their own table; other users: one `pbs` of that to `lo + m * 2^k` |
//! | any of these on an aligned `x` | `keyswitch.shr`: the bootstrap reads only the high bits |
//! | `cmp a, b` | `pbs(d - min)` of `d = a - b`, table `pred(d, 0)` |
//! | `min a, b` / `max a, b` | `a - relu(a - b)` / `b + relu(a - b)`, one PBS |
//! | `mul a, b` (both encrypted) | `floor((a+b)^2/4) - floor((a-b)^2/4)`, two PBS |
//! | `matmul a, b` (both encrypted) | reshape/broadcast, encrypted `mul`, `sum` |
//!
//! The offset makes every bootstrap input a non-negative message below `2^b` (the padding bit
//! stays clear). Keyswitches and offsets of one value are shared by all its bootstraps.
//!
//! Parameters (multi-parameter, after Concrete's partitions):
//!
//! - **Regions.** Encrypted values joined by levelled ops share one encoding: a key and a
//!   message width `w` (`delta = 2^(63-w)`). A region's width is its widest keyswitch output
//!   or encrypted output; arithmetic in it is exact modulo `2^(w+1)`.
//! - **Partitions.** Bootstraps are grouped by input width and by the region they read;
//!   partitions whose bootstraps feed one region are merged (a region lives under one big
//!   key). Each partition's keyswitches narrow their region's messages to the bootstrap's own
//!   width `b` (tables have `2^b` entries), which multiplies the region's noise by `4^(w-b)`:
//!   that factor enters the partition's norm2 (see [`manp`]).
//! - **Keys.** A region lives under the big key of the partition producing it, or (inputs) of
//!   its main consumer. A keyswitch from a region under another set's big key goes straight
//!   into the consumer's small key (a *crossing*, priced and noise-checked by the optimizer).
//!   Inputs that only feed bootstraps of one set are encrypted by the client directly under
//!   that set's small key, so their keyswitch is a free rescale.
//! - **Choice.** A [`ParamChooser`] (the optimizer) gets a [`LowerRequest`]: per partition its
//!   width, norm2, bootstrap count and the outputs decoded under its key; the crossings. It
//!   returns the sets and which partition uses which; partitions may share a set. The
//!   [`MonoChooser`] view asks for one set for everything.
//!
//! Architecture invariant: the lowered graph verifies at [`Level::Tfhe`] and computes exactly
//! what the tensor-level graph computes (checked by tests through both interpreters).

pub mod choose;
pub mod manp;

pub use choose::{levelled_params, OptimizerChooser};

use petgraph::unionfind::UnionFind;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;
use veil_ir::infer::{transfer, OperandFacts};
use veil_ir::types::numel;
use veil_ir::{
    CmpOp, Constant, Encoding, Graph, IntType, Interval, KeyId, Level, Op, ParamSet, Table,
    TensorType, ValueId, Visibility,
};
use veil_runtime::wopbs::WopParams;

/// What the lowering asks of the parameter optimizer for one partition when a single set
/// serves the whole program (the [`MonoChooser`] view).
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

/// One partition of a lowered program: the bootstraps sharing an input precision (and those
/// whose outputs meet them in a levelled computation).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PartitionInfo {
    /// Widest bootstrap input of the partition, in bits.
    pub precision: u8,
    /// Largest norm2 reaching one of its keyswitches, in units of the input's variance,
    /// scaled by `4^s` when the keyswitch narrows the message by `s` bits.
    pub norm2: f64,
    /// Bootstraps (ciphertexts).
    pub tlus: u64,
    /// Outputs decoded under the partition's big key: `(width, norm2)`.
    pub outputs: Vec<(u8, f64)>,
}

/// Everything the parameter optimizer needs to know about a program.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LowerRequest {
    /// The partitions (empty for a program without bootstraps).
    pub partitions: Vec<PartitionInfo>,
    /// `(from, to, count)`: `count` ciphertexts under partition `from`'s big key keyswitched into
    /// partition `to`'s small key.
    pub crossings: Vec<(usize, usize, u64)>,
    /// Outputs of a program without bootstraps: `(width, norm2)`, decoded under a fresh key.
    pub levelled_outputs: Vec<(u8, f64)>,
    /// Probability that one of the program's other lookups fails: its WoP-PBS lookups, whose
    /// parameters are chosen first. A global error target covers them too, so the bootstraps
    /// of `partitions` get what remains of it ([`LowerRequest::classic_target`]); `0` when
    /// there are none.
    pub reserved_p_error: f64,
}

impl LowerRequest {
    /// The error target of the bootstraps of `partitions` when the program's target is
    /// `target`: a global target less the probability that the other lookups fail
    /// ([`LowerRequest::reserved_p_error`]), `1 - (1 - global) / (1 - reserved)`, so that
    /// the whole program fails with probability at most `global`; a per-bootstrap target as
    /// it is. A request without bootstraps keeps the target (levelled outputs are decoded, not
    /// looked up, and count toward no global target).
    pub fn classic_target(
        &self,
        target: crate::optimizer::ErrorTarget,
    ) -> Result<crate::optimizer::ErrorTarget, ChooseError> {
        let r = self.reserved_p_error;
        let Some(g) = target.global_p_error else {
            return Ok(target);
        };
        if r <= 0.0 || self.partitions.is_empty() {
            return Ok(target);
        }
        let rest = -((-g).ln_1p() - (-r).ln_1p()).exp_m1();
        if rest.is_nan() || rest <= 0.0 {
            return Err(ChooseError::Other(format!(
                "the WoP-PBS lookups alone fail with probability {r:.3e}, which leaves nothing of the global target {g:.3e} to the other bootstraps"
            )));
        }
        Ok(crate::optimizer::ErrorTarget {
            global_p_error: Some(rest),
            ..target
        })
    }

    /// The single-set view: widest precision, largest norm2, all bootstraps.
    pub fn merged(&self) -> PartitionRequest {
        let outs = self
            .partitions
            .iter()
            .flat_map(|p| p.outputs.iter())
            .chain(&self.levelled_outputs);
        let mut r = PartitionRequest {
            precision: 1,
            norm2: 1.0,
            tlu_count: 0,
        };
        for p in &self.partitions {
            r.precision = r.precision.max(p.precision);
            r.norm2 = r.norm2.max(p.norm2);
            r.tlu_count += p.tlus;
        }
        for &(w, n2) in outs {
            r.precision = r.precision.max(w);
            r.norm2 = r.norm2.max(n2);
        }
        r
    }
}

/// The parameter sets chosen for a [`LowerRequest`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParamChoice {
    /// The sets (`@p0, @p1, ...`); each set's `message_bits` is at least the precision of every
    /// partition it serves.
    pub sets: Vec<ParamSet>,
    /// Set index of each partition (empty when there are no partitions; then `sets` has one
    /// set for the levelled program).
    pub partition_sets: Vec<usize>,
}

/// Chooses parameter sets for a program (implemented over the optimizer by
/// `program::compile`).
pub trait ParamChooser {
    /// Secure parameter sets meeting the program's error target, or why there are none. A
    /// global target is shared with the program's WoP-PBS lookups: the sets meet
    /// [`LowerRequest::classic_target`] of it.
    fn choose(&self, req: &LowerRequest) -> Result<ParamChoice, ChooseError>;

    /// The WoP-PBS parameters for lookups of up to `bits` input bits in a program of
    /// `lookups` bootstraps and lookups in all, with the per-lookup error probability they
    /// are judged at. By default the runtime's tabulated set
    /// ([`veil_runtime::wopbs::WopParams::for_bits`], `p_error <= 2^-40`).
    fn wop(&self, bits: u8, lookups: u64) -> Result<(WopParams, f64), String> {
        let _ = lookups;
        let p = WopParams::for_bits(bits).map_err(|e| e.to_string())?;
        Ok((p, crate::optimizer::wop::WOP_P_ERROR))
    }
}

/// Why a [`ParamChooser`] found no parameters.
#[derive(Debug, Error, PartialEq)]
pub enum ChooseError {
    /// The optimizer found none, or the error target is invalid.
    #[error(transparent)]
    Optimize(#[from] crate::optimizer::OptimizeError),
    /// A program without bootstraps whose outputs need more bits than a fresh encryption of
    /// any secure levelled set decodes within the error target ([`levelled_params`]).
    #[error(
        "{precision} bits with norm2 {norm2} exceed what a fresh encryption can hold; \
         quantize with fewer bits"
    )]
    FreshEncryptionTooNarrow {
        /// Required precision.
        precision: u8,
        /// Noise growth of the levelled ops (squared 2-norm).
        norm2: f64,
    },
    /// A caller-supplied chooser's own explanation (a closure returning `Err(String)`).
    #[error("{0}")]
    Other(String),
}

impl From<String> for ChooseError {
    fn from(why: String) -> Self {
        ChooseError::Other(why)
    }
}

/// Widest bootstrap input the classic (programmable bootstrap) path takes. At `2^-40` the
/// classic search has sets up to 8 bits (`N = 2^15` at 8 bits, its cost about tripling per
/// bit), and at 8 bits a classic KS + PBS measured 510 ms against 1.65 s for a WoP-PBS
/// (`docs/noise.md`), whose cost grows linearly, about 0.24 s per input bit. Partitions whose
/// lookups read wider values (9 to 16 bits) are lowered to `wop.pbs`.
pub const MAX_CLASSIC_BITS: u8 = 8;

/// One WoP-PBS partition of a lowered program: lookups of wide inputs evaluated by `wop.pbs`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WopPartitionInfo {
    /// Widest lookup input of the partition (the width of its operands' encodings), in bits.
    pub bits: u8,
    /// Index of its parameter set in the lowered program.
    pub set: usize,
    /// The lookups' parameters (the set and the circuit bootstrap's decompositions).
    pub params: WopParams,
    /// Lookups (ciphertexts).
    pub lookups: u64,
    /// The per-lookup error probability the parameters were judged at.
    pub p_target: f64,
    /// Largest input norm2 (levelled weights since the encryption or the last lookup).
    pub norm2: f64,
}

/// A single-set chooser from a function of the merged request: every partition shares one set.
pub struct MonoChooser<F>(pub F);

impl<F, E> ParamChooser for MonoChooser<F>
where
    F: Fn(&PartitionRequest) -> Result<ParamSet, E>,
    E: Into<ChooseError>,
{
    fn choose(&self, req: &LowerRequest) -> Result<ParamChoice, ChooseError> {
        let set = (self.0)(&req.merged()).map_err(Into::into)?;
        Ok(ParamChoice {
            sets: vec![set],
            partition_sets: vec![0; req.partitions.len()],
        })
    }
}

/// A multi-set chooser from a function of the whole request.
pub struct MultiChooser<F>(pub F);

impl<F, E> ParamChooser for MultiChooser<F>
where
    F: Fn(&LowerRequest) -> Result<ParamChoice, E>,
    E: Into<ChooseError>,
{
    fn choose(&self, req: &LowerRequest) -> Result<ParamChoice, ChooseError> {
        (self.0)(req).map_err(Into::into)
    }
}

impl<F, E> ParamChooser for F
where
    F: Fn(&PartitionRequest) -> Result<ParamSet, E>,
    E: Into<ChooseError>,
{
    fn choose(&self, req: &LowerRequest) -> Result<ParamChoice, ChooseError> {
        MonoChooser(self).choose(req)
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
        /// The chooser's (the optimizer's) explanation.
        #[source]
        why: ChooseError,
    },
}

/// Counts of the lowered program.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LowerStats {
    /// Bootstraps (one per ciphertext).
    pub pbs: u64,
    /// Lookup elements whose table is constant: trivial encryptions, not bootstraps (not
    /// counted in `pbs`; the rewrite's cost model counts them as bootstraps).
    pub trivial_lookups: u64,
    /// Bootstraps per input width in bits.
    pub pbs_by_precision: BTreeMap<u8, u64>,
    /// Keyswitches that change the key (one per ciphertext); a same-key keyswitch only
    /// rescales and is free.
    pub keyswitches: u64,
    /// Levelled op nodes.
    pub levelled_ops: u64,
    /// What the parameter chooser was asked.
    pub partitions: Vec<PartitionInfo>,
    /// Set index of each partition.
    pub partition_sets: Vec<usize>,
    /// Crossings `(from, to, count)` between partitions.
    pub crossings: Vec<(usize, usize, u64)>,
    /// Outputs of a program without bootstraps: `(width, norm2)`.
    pub levelled_outputs: Vec<(u8, f64)>,
    /// WoP-PBS lookups (ciphertexts); not counted in `pbs`.
    pub wop_lookups: u64,
    /// The WoP-PBS partitions (lookups wider than [`MAX_CLASSIC_BITS`]); not among `partitions`.
    pub wop: Vec<WopPartitionInfo>,
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

impl PendingPbs {
    /// Of its `n` elements, those whose table is not constant ([`veil_ir::Graph::bootstraps`]).
    fn bootstraps(&self, n: usize) -> u64 {
        let live = |t: &Vec<i64>| !veil_ir::is_constant_table(t);
        if self.map.is_empty() {
            if self.tables.first().is_none_or(live) {
                n as u64
            } else {
                0
            }
        } else {
            self.map
                .iter()
                .filter(|&&m| self.tables.get(m as usize).is_none_or(live))
                .count() as u64
        }
    }
}

struct Lowerer<'a> {
    src: &'a Graph,
    dst: Graph,
    map: HashMap<ValueId, ValueId>,
    numbers: HashMap<ValueId, usize>,
    pending: Vec<PendingPbs>,
    /// Keyswitched, offset bootstrap inputs, shared between bootstraps of one value.
    ks_cache: HashMap<ValueId, PbsInput>,
    /// Lowered values whose low bits are known to be zero ([`alignments`]): their bootstraps
    /// read only the bits above (`keyswitch.shr`).
    aligned: HashMap<ValueId, u8>,
    /// Index of `dst`'s constant pool: `Graph::add_const` without scanning the pool.
    consts: HashMap<Constant, veil_ir::ConstId>,
    /// Approximate `round`s (source values) read only by lookups: not computed; each lookup
    /// reads the kept high bits of the round's operand itself (`keyswitch.round`).
    virtual_rounds: HashMap<ValueId, VirtualRound>,
    /// The rounding keyswitches of those operands, shared between their lookups.
    round_cache: HashMap<(ValueId, u8, bool), PbsInput>,
    /// The rounding keyswitch nodes by operand, shift, offset and width (a round and its
    /// rescaled form share one).
    round_ks: HashMap<(ValueId, u8, i128, u8), ValueId>,
}

/// An approximate `round` that the lookups reading it fold in: the lowered operand and the
/// round's attributes and result type.
#[derive(Clone, Copy, Debug)]
struct VirtualRound {
    /// The lowered operand of the round.
    x: ValueId,
    /// Low bits rounded away.
    lsbs: u8,
    /// The round's result type (it holds every value the round can give in the domain).
    out: IntType,
    /// Whether the round gives the quotient (else the multiple of `2^lsbs`).
    rescale: bool,
}

/// Whether `v` is an approximate `round` whose users all read it through a bootstrap of
/// their own (lookups), so that it needs no value of its own (the lowering computes none).
pub fn is_virtual_round(g: &Graph, v: ValueId) -> bool {
    matches!(g.op(v), Op::Round { approx: true, .. })
        && g.ty(v).is_encrypted()
        && g.users(v).iter().all(|&u| {
            matches!(
                g.op(u),
                Op::Tlu { .. } | Op::TluMulti { .. } | Op::Relu | Op::Abs | Op::Clip { .. }
            )
        })
}

/// The shared `keyswitch((x - lo) >> shift)` feeding the bootstraps of one value: message `m`
/// stands for `x = lo + (m << shift)`, and tables have `2^bits` entries.
#[derive(Clone, Copy, Debug)]
struct PbsInput {
    ks: ValueId,
    lo: i128,
    bits: u8,
    shift: u8,
}

impl PbsInput {
    /// The operand value that message `m` stands for.
    fn value(&self, m: i128) -> i128 {
        self.lo + (m << self.shift)
    }
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
        aligned: HashMap::new(),
        consts: HashMap::new(),
        virtual_rounds: HashMap::new(),
        round_cache: HashMap::new(),
        round_ks: HashMap::new(),
    };
    let align = alignments(src);
    // outputs last, in declaration order: output `k` of the lowered program is output `k` of
    // the source (a topological order may reach a later output first)
    let (mut order, outputs): (Vec<ValueId>, Vec<ValueId>) = order
        .into_iter()
        .partition(|&v| !matches!(src.op(v), Op::Output { .. }));
    order.extend(src.outputs().into_iter().filter(|v| outputs.contains(v)));
    for v in order {
        let nv = l.lower_node(v)?;
        if l.virtual_rounds.contains_key(&v) {
            // `nv` is the round's operand, which is not aligned
            l.map.insert(v, nv);
            continue;
        }
        if let Some(&a) = align.get(&v) {
            if l.ty(nv).is_encrypted() {
                l.aligned.insert(nv, a);
            }
        }
        l.map.insert(v, nv);
    }
    l.finish(chooser)
}

/// Trailing zero bits common to all values (62 for all-zero): the known-zero low bits of a
/// constant or of a lookup's entries (used by the lowering and by the rewrite's analysis).
pub fn common_align(vals: impl Iterator<Item = i128>) -> u8 {
    let mut acc: u128 = 0;
    for v in vals {
        acc |= v.unsigned_abs();
    }
    if acc == 0 {
        62
    } else {
        acc.trailing_zeros().min(62) as u8
    }
}

/// The known-zero low bits of every value of a tensor-level graph (`align_of`; values
/// without any are left out): what the lowering's bootstraps skip.
pub fn alignments(g: &Graph) -> HashMap<ValueId, u8> {
    let mut align = HashMap::new();
    for v in g.topo_order().unwrap_or_else(|_| g.values()) {
        let a = align_of(g, v, &align);
        align.insert(v, a);
    }
    align.retain(|_, a| *a > 0);
    align
}

/// Low bits of `v` known to be zero, by the rules of the rewrite analysis
/// ([`crate::rewrite::analysis`]): `round` clears its `lsbs`, a lookup whose entries share
/// trailing zeros keeps them, sums and differences keep the common ones, shape ops and
/// negation keep their operand's. Bootstraps of an aligned value read only its high bits.
fn align_of(g: &Graph, v: ValueId, known: &HashMap<ValueId, u8>) -> u8 {
    let operands: Vec<u8> = g
        .operands(v)
        .iter()
        .map(|o| known.get(o).copied().unwrap_or(0))
        .collect();
    let a = op_align(g.op(v), &operands, || match g.op(v) {
        Op::Const { value } => g
            .constant(*value)
            .map(|c| common_align(c.values.iter().map(|&x| x as i128))),
        Op::Tlu { table } => g
            .table(*table)
            .map(|t| common_align(t.entries.iter().map(|&x| x as i128))),
        _ => None,
    });
    // never all of a value's bits
    a.min(g.ty(v).int.bits.saturating_sub(1))
}

/// The alignment rule of veil, written once: the known-zero low bits of an op's result, from
/// its operands' known-zero low bits (`operands`, in operand order). `own` is asked only for a
/// `const` (the common alignment of its values) and a `tlu` (of the table entries the operand
/// can reach; all of them when its range is unknown); `None` there means nothing is known.
/// The lowering ([`alignments`]) and the rewrite's e-graph analysis both use it, so a value
/// the e-graph prices as aligned is one whose bootstraps the lowering narrows.
pub fn op_align(op: &Op, operands: &[u8], own: impl FnOnce() -> Option<u8>) -> u8 {
    let of = |i: usize| operands.get(i).copied().unwrap_or(0);
    let min_all = || operands.iter().copied().min().unwrap_or(0);
    match op {
        Op::Const { .. } | Op::Tlu { .. } => own().unwrap_or(0),
        Op::Round {
            lsbs,
            rescale: false,
            ..
        } => (*lsbs).max(of(0)),
        Op::Add | Op::Sub | Op::Min | Op::Max | Op::Sum { .. } | Op::Concat { .. } => min_all(),
        Op::Neg
        | Op::Relu
        | Op::Abs
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Broadcast
        | Op::Slice { .. }
        | Op::Output { .. } => of(0),
        // `2^i x * 2^j y = 2^(i+j) xy`
        Op::Mul => operands.iter().map(|&a| u32::from(a)).sum::<u32>().min(62) as u8,
        // nothing known: the value's low bits can be anything (TFHE-level ops are not in a
        // tensor-level graph nor in the e-graph)
        Op::Input { .. }
        | Op::Round { rescale: true, .. }
        | Op::MatMul
        | Op::Conv2d(_)
        | Op::TluMulti { .. }
        | Op::Cmp(_)
        | Op::Clip { .. }
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Where
        | Op::KeySwitch
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. }
        | Op::Pbs { .. }
        | Op::WopPbs { .. } => 0,
    }
}

fn range_of(t: &IntType) -> (i128, i128) {
    let t = *t;
    (t.min(), t.max())
}

/// What the transfer function knows of a node of the graph being built: its type's range.
fn facts_of(t: &TensorType) -> OperandFacts<'_> {
    OperandFacts {
        range: Interval::of_type(t.int),
        int: t.int,
        shape: &t.shape,
        constant: None,
    }
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

    /// The interval of `op` on `operands` (nodes of the TFHE-level graph, each anywhere in its
    /// type), by veil-ir's transfer function.
    fn transfer(&self, src: ValueId, op: &Op, operands: &[ValueId]) -> R<Interval> {
        let facts: Vec<OperandFacts<'_>> = operands.iter().map(|&o| facts_of(self.ty(o))).collect();
        transfer(op, &facts, &[]).map_err(|e| LowerError::Unsupported {
            what: self.what(src),
            why: e.to_string(),
        })
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
        range: Interval,
        shape: Vec<usize>,
    ) -> R<ValueId> {
        let enc = operands.iter().any(|o| self.ty(*o).is_encrypted());
        let int = self.int_type(src, range.lo, range.hi)?;
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

    /// `Graph::add_const` on `dst` (the first equal constant, else a new one) without
    /// scanning the pool.
    fn add_const(&mut self, c: Constant) -> veil_ir::ConstId {
        if let Some(&id) = self.consts.get(&c) {
            return id;
        }
        let id = veil_ir::ConstId(self.dst.consts.len() as u32);
        self.dst.consts.push(c.clone());
        self.consts.insert(c, id);
        id
    }

    fn scalar_const(&mut self, src: ValueId, k: i128) -> R<ValueId> {
        let int = self.int_type(src, k, k)?;
        let c = self.add_const(Constant {
            shape: vec![],
            values: vec![k as i64],
        });
        Ok(self
            .dst
            .add_node(Op::Const { value: c }, TensorType::clear(int, vec![]), &[]))
    }

    /// `a - b` with broadcasting, typed by range.
    fn sub(&mut self, src: ValueId, a: ValueId, b: ValueId) -> R<ValueId> {
        let range = self.transfer(src, &Op::Sub, &[a, b])?;
        let shape = self.broadcast_shape(src, a, b)?;
        self.levelled(src, Op::Sub, &[a, b], range, shape)
    }

    /// `a + b` with broadcasting, typed by range.
    fn add(&mut self, src: ValueId, a: ValueId, b: ValueId) -> R<ValueId> {
        let range = self.transfer(src, &Op::Add, &[a, b])?;
        let shape = self.broadcast_shape(src, a, b)?;
        self.levelled(src, Op::Add, &[a, b], range, shape)
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
        let p = self.pbs_input(src, x)?;
        let table: Vec<i64> = (0..(1i128 << p.bits))
            .map(|m| f(p.value(m)) as i64)
            .collect();
        self.pbs(p.ks, out, vec![table], vec![])
    }

    /// The shared `keyswitch(x - min)` of a bootstrap input (`keyswitch.shr` past the low bits
    /// an exact `round` cleared; `keyswitch.round` of the operand of a virtual approximate
    /// `round`).
    fn pbs_input(&mut self, src: ValueId, x: ValueId) -> R<PbsInput> {
        if let Some(vr) = self
            .src
            .operands(src)
            .first()
            .and_then(|o| self.virtual_rounds.get(o))
            .copied()
        {
            return self.round_input(src, vr);
        }
        if let Some(hit) = self.ks_cache.get(&x) {
            return Ok(*hit);
        }
        let t = self.ty(x).clone();
        let (lo, hi) = range_of(&t.int);
        let shift = self.aligned.get(&x).copied().unwrap_or(0);
        let bits = t.int.bits - shift;
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
            self.levelled(
                src,
                Op::Add,
                &[x, c],
                Interval::new(0, hi - lo),
                t.shape.clone(),
            )?
        } else {
            x
        };
        let op = if shift > 0 {
            Op::KeySwitchShr { shift }
        } else {
            Op::KeySwitch
        };
        let ks = self.dst.add_node(
            op,
            TensorType {
                int: IntType::unsigned(bits),
                ..self.ty(shifted).clone()
            },
            &[shifted],
        );
        let p = PbsInput {
            ks,
            lo,
            bits,
            shift,
        };
        self.ks_cache.insert(x, p);
        Ok(p)
    }

    /// The bootstrap input of an approximate `round(x, k)` of type `out`:
    /// `keyswitch.round(x - lo, k)` with `lo = min(out)` (a multiple of `2^k`; `min(out) * 2^k`
    /// for a rescaled round), whose message `m` stands for the rounded value `lo + m * 2^k`
    /// (the quotient `min(out) + m`); tables have `2^(bits(out) - k)` entries (`2^bits(out)`).
    /// `x - lo` is non-negative and its rounding stays within the table for every operand
    /// value in the domain, since `out` holds both neighbours of each.
    fn round_input(&mut self, src: ValueId, vr: VirtualRound) -> R<PbsInput> {
        if let Some(hit) = self.round_cache.get(&(vr.x, vr.lsbs, vr.rescale)) {
            return Ok(*hit);
        }
        let k = vr.lsbs;
        let lo = if vr.rescale {
            vr.out.min() << k
        } else {
            vr.out.min()
        };
        let bits = if vr.rescale {
            vr.out.bits
        } else {
            vr.out.bits.saturating_sub(k).max(1)
        };
        if bits > 16 {
            return Err(LowerError::Unsupported {
                what: self.what(src),
                why: format!(
                    "its bootstrap reads {bits} kept bits of an approximate round (at most 16); round more bits away"
                ),
            });
        }
        if lo.rem_euclid(1i128 << k) != 0 || (!vr.rescale && k >= vr.out.bits) {
            return Err(LowerError::BadInput(format!(
                "{}: approximate round lsbs={k} with result type {} (its minimum must be a multiple of 2^{k})",
                self.what(src),
                vr.out
            )));
        }
        let t = self.ty(vr.x).clone();
        let (xl, xh) = range_of(&t.int);
        let ks = match self.round_ks.get(&(vr.x, k, lo, bits)) {
            Some(&ks) => ks,
            None => {
                let shifted = if lo == 0 && !t.int.signed {
                    vr.x
                } else {
                    let c = self.scalar_const(src, -lo)?;
                    self.levelled(
                        src,
                        Op::Add,
                        &[vr.x, c],
                        Interval::new((xl - lo).max(0), (xh - lo).max(0)),
                        t.shape.clone(),
                    )?
                };
                let ks = self.dst.add_node(
                    Op::KeySwitchRound { shift: k },
                    TensorType {
                        int: IntType::unsigned(bits),
                        ..self.ty(shifted).clone()
                    },
                    &[shifted],
                );
                self.round_ks.insert((vr.x, k, lo, bits), ks);
                ks
            }
        };
        let p = if vr.rescale {
            PbsInput {
                ks,
                lo: vr.out.min(),
                bits,
                shift: 0,
            }
        } else {
            PbsInput {
                ks,
                lo,
                bits,
                shift: k,
            }
        };
        self.round_cache.insert((vr.x, vr.lsbs, vr.rescale), p);
        Ok(p)
    }

    /// Approximate `round(x, k)` whose value is needed (not only lookups read it): one
    /// bootstrap of the rounding keyswitch to the value its message stands for.
    fn round_approx(&mut self, src: ValueId, vr: VirtualRound) -> R<ValueId> {
        let out = vr.out;
        let p = self.round_input(src, vr)?;
        let (ol, oh) = range_of(&out);
        let table: Vec<i64> = (0..(1i128 << p.bits))
            .map(|m| p.value(m).clamp(ol, oh) as i64)
            .collect();
        self.pbs(p.ks, out, vec![table], vec![])
    }

    /// Exact `round(x, k)`: `t = x + 2^(k-1)`, then for `j < k` bit `j` of `t` is extracted
    /// by one bootstrap (`keyswitch.bit`, a 2-entry table `[0, 2^j]`) and subtracted, which
    /// leaves `t` with `k` zero low bits: `floor(t / 2^k) * 2^k`. The result's bootstraps read
    /// only its high bits, so a lookup after the round is as narrow as the kept bits.
    fn round_exact(&mut self, src: ValueId, x: ValueId, k: u8, out: IntType) -> R<ValueId> {
        let (xl, xh) = range_of(&self.ty(x).int);
        let shape = self.ty(x).shape.clone();
        let half = 1i128 << (k - 1);
        let c = self.scalar_const(src, half)?;
        let (mut lo, hi) = (xl + half, xh + half);
        let mut t = self.levelled(src, Op::Add, &[x, c], Interval::new(lo, hi), shape.clone())?;
        // bits below the operand's known alignment are zero already
        let first = self.aligned.get(&x).copied().unwrap_or(0).min(k - 1);
        for j in first..k {
            let ks = self.dst.add_node(
                Op::KeySwitchBit { bit: j },
                TensorType {
                    int: IntType::unsigned(1),
                    ..self.ty(t).clone()
                },
                &[t],
            );
            let b = self.pbs(ks, IntType::unsigned(j + 1), vec![vec![0, 1 << j]], vec![])?;
            let step = 1i128 << (j + 1);
            lo = lo.div_euclid(step) * step;
            t = if j + 1 == k {
                let ty = TensorType::encrypted(out, shape.clone());
                self.dst.add_node(Op::Sub, ty, &[t, b])
            } else {
                self.levelled(src, Op::Sub, &[t, b], Interval::new(lo, hi), shape.clone())?
            };
        }
        Ok(t)
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
            let id = self.add_const(c);
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
                // (the source operand's type: a virtual round's stand-in has its operand's)
                let lo = range_of(&self.src.ty(self.src.operands(v)[0]).int).0;
                // The table's index is `a - min(type a)`, exactly the offset message.
                self.tlu_fn(v, x, out, move |a| entries[(a - lo) as usize] as i128)
            }
            Op::TluMulti { tables, map } => {
                let p = self.pbs_input(v, x)?;
                let src_lo = range_of(&self.src.ty(self.src.operands(v)[0]).int).0;
                debug_assert_eq!(p.lo, src_lo);
                let mut tabs = Vec::new();
                for t in tables {
                    let e = &self
                        .src
                        .table(*t)
                        .ok_or_else(|| {
                            LowerError::BadInput(format!("{}: unknown table", self.what(v)))
                        })?
                        .entries;
                    tabs.push(
                        (0..(1i128 << p.bits))
                            .map(|m| e[(p.value(m) - p.lo) as usize])
                            .collect(),
                    );
                }
                self.pbs(p.ks, out, tabs, map.clone())
            }
            Op::Relu => self.tlu_fn(v, x, out, |a| a.max(0)),
            Op::Abs => self.tlu_fn(v, x, out, |a| a.abs()),
            Op::Clip { lo, hi } => {
                let (lo, hi) = (*lo as i128, *hi as i128);
                self.tlu_fn(v, x, out, move |a| a.clamp(lo, hi))
            }
            // already a multiple of 2^lsbs (ties round upward: nothing moves)
            Op::Round {
                lsbs,
                rescale: false,
                ..
            } if *lsbs == 0 || self.aligned.get(&x).is_some_and(|a| a >= lsbs) => {
                let ty = TensorType::encrypted(out, self.ty(x).shape.clone());
                Ok(self.dst.add_node(Op::Reshape, ty, &[x]))
            }
            Op::Round {
                lsbs,
                approx: false,
                ..
            } => self.round_exact(v, x, *lsbs, out),
            Op::Round {
                lsbs,
                approx: true,
                rescale,
            } => {
                let vr = VirtualRound {
                    x,
                    lsbs: *lsbs,
                    out,
                    rescale: *rescale,
                };
                if is_virtual_round(self.src, v) {
                    self.virtual_rounds.insert(v, vr);
                    // a stand-in for the graph's bookkeeping: no node reads it
                    return Ok(x);
                }
                self.round_approx(v, vr)
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
                let prods = self.transfer(v, &Op::Mul, &[a3, b3])?;
                let pt = self.int_type(v, prods.lo, prods.hi)?;
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
            // `desugar` turns the numpy ops into lookups before lowering
            Op::Binary(_) | Op::Unary(_) | Op::Where => Err(unsupported(&format!(
                "`{}` is lowered after the `desugar` pass turns it into lookups; run the default pipeline",
                node.op.name()
            ))),
            // levelled ops, constants and TFHE-level ops were handled above
            Op::Input { .. }
            | Op::Output { .. }
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
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => Err(unsupported(&format!(
                "`{}` needs no bootstrap here",
                node.op.name()
            ))),
        }
    }

    fn finish(mut self, chooser: &dyn ParamChooser) -> R<Lowered> {
        let g = &mut self.dst;
        let vals = g.values();
        let idx: HashMap<ValueId, usize> = vals.iter().enumerate().map(|(i, v)| (*v, i)).collect();
        let is_ks = |g: &Graph, v: ValueId| g.op(v).is_keyswitch();
        // The operand bits a keyswitch reads end at `top`: its region needs that many bits,
        // and the narrowing multiplies the region's noise by `2^(width - top)`.
        let top = |g: &Graph, k: ValueId| {
            let (lsb, bits) = g
                .op(k)
                .keyswitch_window(g.ty(k).int.bits)
                .expect("a keyswitch");
            lsb + bits
        };
        // Regions: encrypted big-key values joined by levelled ops share one encoding.
        let mut regions = UnionFind::<usize>::new(vals.len());
        for &v in &vals {
            if !g.ty(v).is_encrypted()
                || is_ks(g, v)
                || matches!(g.op(v), Op::Pbs { .. } | Op::Input { .. })
            {
                continue;
            }
            for o in g.operands(v) {
                if g.ty(o).is_encrypted() && !is_ks(g, o) {
                    regions.union(idx[&v], idx[&o]);
                }
            }
        }
        let region_of = classes_by_min(regions);
        let region = |v: ValueId| region_of[idx[&v]];
        // Partitions: keyswitches grouped by width and by the region they read, merged when
        // their bootstraps' outputs meet in one region (a region lives under one big key).
        // Lookups of one width reading different regions may then get different sets: those
        // whose outputs feed small weights need less precise (cheaper) bootstraps than those
        // feeding wide dot products or decoded outputs (Concrete's partitioning by precision
        // and norm2).
        let ks_nodes: Vec<ValueId> = vals.iter().copied().filter(|&v| is_ks(g, v)).collect();
        let class_key = |g: &Graph, k: ValueId| (g.ty(k).int.bits, region(g.operands(k)[0]));
        let mut keys: Vec<(u8, usize)> = ks_nodes.iter().map(|&k| class_key(g, k)).collect();
        keys.sort_unstable();
        keys.dedup();
        let class_of = |g: &Graph, k: ValueId| {
            keys.binary_search(&class_key(g, k))
                .expect("every keyswitch class is listed")
        };
        let mut classes = UnionFind::<usize>::new(keys.len());
        let pbs_nodes: Vec<ValueId> = vals
            .iter()
            .copied()
            .filter(|&v| matches!(g.op(v), Op::Pbs { .. }))
            .collect();
        let mut producer_class: HashMap<usize, usize> = HashMap::new();
        for &p in &pbs_nodes {
            let k = g.operands(p)[0];
            let c = class_of(g, k);
            let r = region(p);
            match producer_class.get(&r) {
                Some(&c0) => {
                    classes.union(c0, c);
                }
                None => {
                    producer_class.insert(r, c);
                }
            }
        }
        let class_root = classes_by_min(classes);
        let mut part_of_class = vec![usize::MAX; keys.len()];
        let mut n_parts = 0;
        for c in 0..keys.len() {
            let root = class_root[c];
            if part_of_class[root] == usize::MAX {
                part_of_class[root] = n_parts;
                n_parts += 1;
            }
            part_of_class[c] = part_of_class[root];
        }
        let part_of_ks = |g: &Graph, k: ValueId| part_of_class[class_of(g, k)];
        // Region facts: producing partition, consumers, outputs, width.
        #[derive(Default)]
        struct Region {
            producer: Option<usize>,
            consumers: BTreeMap<usize, u64>,
            outputs: Vec<ValueId>,
            width: u8,
        }
        let mut info: BTreeMap<usize, Region> = BTreeMap::new();
        for (&r, &c) in &producer_class {
            info.entry(r).or_default().producer = Some(part_of_class[c]);
        }
        for &k in &ks_nodes {
            let src = g.operands(k)[0];
            let r = region(src);
            let e = info.entry(r).or_default();
            *e.consumers.entry(part_of_ks(g, k)).or_default() += numel(&g.ty(k).shape) as u64;
            e.width = e.width.max(top(g, k));
        }
        for &v in &vals {
            if matches!(g.op(v), Op::Output { .. }) && g.ty(v).is_encrypted() {
                let t = g.ty(v).int;
                let w = if t.signed {
                    t.bits.saturating_sub(1).max(1)
                } else {
                    t.bits
                };
                let r = region(v);
                let e = info.entry(r).or_default();
                e.outputs.push(v);
                e.width = e.width.max(w);
            }
        }
        let mut part_width = vec![0u8; n_parts];
        for &k in &ks_nodes {
            let p = part_of_ks(g, k);
            part_width[p] = part_width[p].max(g.ty(k).int.bits);
        }
        let widest = (0..n_parts).max_by_key(|&p| (part_width[p], std::cmp::Reverse(p)));
        let mut home: BTreeMap<usize, Option<usize>> = BTreeMap::new();
        for (&r, e) in &info {
            let h = e.producer.or_else(|| {
                e.consumers
                    .iter()
                    .max_by_key(|(p, n)| (**n, part_width[**p], std::cmp::Reverse(**p)))
                    .map(|(p, _)| *p)
            });
            home.insert(r, h.or(widest));
        }
        // The request: norm2 at every keyswitch (scaled by the narrowing), outputs, crossings.
        let nu = manp::norm2(g);
        let mut partitions: Vec<PartitionInfo> = part_width
            .iter()
            .map(|&w| PartitionInfo {
                precision: w,
                norm2: 0.0,
                tlus: 0,
                outputs: Vec::new(),
            })
            .collect();
        let mut crossings: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        for &k in &ks_nodes {
            let src = g.operands(k)[0];
            let r = region(src);
            let p = part_of_ks(g, k);
            let shift = info[&r].width - top(g, k);
            let n2 = manp::max_norm2(&nu, src) * 4f64.powi(shift as i32);
            partitions[p].norm2 = partitions[p].norm2.max(n2);
            if let Some(h) = home[&r] {
                if h != p {
                    *crossings.entry((h, p)).or_default() += numel(&g.ty(k).shape) as u64;
                }
            }
        }
        // elements whose table is constant are trivial encryptions, not bootstraps
        let bootstraps: HashMap<ValueId, u64> = self
            .pending
            .iter()
            .map(|p| (p.node, p.bootstraps(numel(&g.ty(p.node).shape))))
            .collect();
        for &p in &pbs_nodes {
            let k = g.operands(p)[0];
            partitions[part_of_ks(g, k)].tlus += bootstraps
                .get(&p)
                .copied()
                .unwrap_or(numel(&g.ty(p).shape) as u64);
        }
        let mut levelled_outputs = Vec::new();
        for (r, e) in &info {
            for &o in &e.outputs {
                let out = (e.width.max(1), manp::max_norm2(&nu, o));
                match home[r] {
                    Some(h) => partitions[h].outputs.push(out),
                    None => levelled_outputs.push(out),
                }
            }
        }
        // WoP-PBS partitions: lookups wider than the classic path takes read their operand's
        // region under the big key of a WoP set directly (no keyswitch); the classic
        // partitions are chosen after them, under what their predicted failures leave of a
        // global error target (`LowerRequest::reserved_p_error`). A program whose wide lookups the classic chooser
        // serves as they are (at a looser error target, classic sets go past 8 bits, cheaper
        // than WoP-PBS there) keeps classic bootstraps.
        let wide = part_width.iter().any(|&w| w > MAX_CLASSIC_BITS);
        // (that choice is the classic one below: with no WoP partition the request is the same)
        let classic_choice = if wide {
            chooser
                .choose(&LowerRequest {
                    partitions: partitions.clone(),
                    crossings: crossings.iter().map(|(&(a, b), &n)| (a, b, n)).collect(),
                    levelled_outputs: levelled_outputs.clone(),
                    reserved_p_error: 0.0,
                })
                .ok()
        } else {
            None
        };
        let classic_serves = classic_choice.is_some();
        let is_wop: Vec<bool> = part_width
            .iter()
            .map(|&w| w > MAX_CLASSIC_BITS && !classic_serves)
            .collect();
        let mut wop_infos: BTreeMap<usize, WopPartitionInfo> = BTreeMap::new();
        if is_wop.iter().any(|&b| b) {
            let total: u64 = partitions.iter().map(|p| p.tlus).sum();
            let unsupported = |why: String| LowerError::Unsupported {
                what: "a WoP-PBS lookup".into(),
                why,
            };
            let mut bits_of: BTreeMap<usize, u8> = BTreeMap::new();
            for &k in &ks_nodes {
                let p = part_of_ks(g, k);
                if !is_wop[p] {
                    continue;
                }
                let r = region(g.operands(k)[0]);
                let e = &info[&r];
                if e.consumers.keys().any(|&q| q != p) || e.producer.is_some_and(|q| q != p) {
                    return Err(unsupported(format!(
                        "its {}-bit operand also feeds or comes from classic bootstraps of another width; WoP-PBS operands must come from inputs, levelled ops or lookups of their own width class",
                        e.width
                    )));
                }
                if e.width > veil_runtime::wopbs::MAX_WOP_BITS {
                    // wider than any lookup (classic or WoP-PBS) has parameters for
                    return Err(LowerError::NoParameters {
                        precision: e.width,
                        norm2: partitions[p].norm2,
                        why: ChooseError::Other(format!(
                            "a lookup reads a {}-bit encoding, and WoP-PBS takes at most {} bits; round the value first",
                            e.width,
                            veil_runtime::wopbs::MAX_WOP_BITS
                        )),
                    });
                }
                let b = bits_of.entry(p).or_default();
                *b = (*b).max(e.width);
            }
            for (&r, e) in &info {
                if let Some(p) = e.producer.filter(|&p| is_wop[p]) {
                    if let Some(q) = e.consumers.keys().find(|&&q| q != p) {
                        return Err(unsupported(format!(
                            "its result feeds bootstraps of {} bits; a WoP-PBS result may feed outputs, levelled ops and lookups of its own width class only",
                            part_width[*q]
                        )));
                    }
                    let _ = r;
                }
            }
            for (&p, &bits) in &bits_of {
                let (wp, p_target) =
                    chooser
                        .wop(bits, total)
                        .map_err(|why| LowerError::NoParameters {
                            precision: bits,
                            norm2: partitions[p].norm2,
                            why: ChooseError::Other(format!("WoP-PBS: {why}")),
                        })?;
                wop_infos.insert(
                    p,
                    WopPartitionInfo {
                        bits,
                        set: 0,
                        params: wp,
                        lookups: partitions[p].tlus,
                        p_target,
                        norm2: 1.0,
                    },
                );
            }
            // Noise contract: a lookup's input (fresh encryption, or a lookup's output, times
            // the levelled norm2) within `input_variance_fraction` of `V_safe`; decoded
            // outputs within `V_safe` of their width.
            let fraction = WopParams::input_variance_fraction();
            for &k in &ks_nodes {
                let p = part_of_ks(g, k);
                let Some(w) = wop_infos.get(&p) else { continue };
                let src = g.operands(k)[0];
                let e = &info[&region(src)];
                let est = crate::optimizer::wop::estimate(&w.params, w.bits, w.p_target);
                let set = &w.params.set;
                let base = if e.producer == Some(p) {
                    est.out_variance
                } else {
                    set.noise_distribution.variance(set.glwe_noise_log2)
                };
                let n2 = manp::max_norm2(&nu, src);
                let allowed =
                    fraction * crate::optimizer::error::safe_variance(e.width, w.p_target);
                if base * n2 > allowed {
                    return Err(unsupported(format!(
                        "its {}-bit operand's noise (variance {:.3e}, norm2 {n2}) exceeds the {:.3e} a WoP-PBS input may carry; bootstrap or narrow the value before the lookup",
                        e.width,
                        base * n2,
                        allowed
                    )));
                }
                let wi = wop_infos.get_mut(&p).expect("listed");
                wi.norm2 = wi.norm2.max(n2);
            }
            for (&r, e) in &info {
                let Some(p) = home[&r].filter(|p| is_wop[*p]) else {
                    continue;
                };
                let w = &wop_infos[&p];
                let est = crate::optimizer::wop::estimate(&w.params, w.bits, w.p_target);
                let set = &w.params.set;
                let (base, limit) = if e.producer == Some(p) {
                    (est.out_variance, w.params.out_bits)
                } else {
                    (set.noise_distribution.variance(set.glwe_noise_log2), w.bits)
                };
                if e.width > limit {
                    return Err(unsupported(format!(
                        "a value under its set's key is {} bits wide, but WoP-PBS outputs carry at most {limit} bits; split the table into narrower lookups",
                        e.width
                    )));
                }
                for &o in &e.outputs {
                    let n2 = manp::max_norm2(&nu, o);
                    let allowed = crate::optimizer::error::safe_variance(e.width, w.p_target);
                    if base * n2 > allowed {
                        return Err(unsupported(format!(
                            "an output it computes ({} bits, norm2 {n2}) would carry noise {:.3e} above the {:.3e} its width allows",
                            e.width,
                            base * n2,
                            allowed
                        )));
                    }
                }
            }
        }
        // The classic request: every partition but the WoP ones, renumbered.
        let mut classic_index = vec![usize::MAX; n_parts];
        let mut classic = Vec::new();
        for (p, info) in partitions.into_iter().enumerate() {
            if !wop_infos.contains_key(&p) {
                classic_index[p] = classic.len();
                classic.push(info);
            }
        }
        let req = LowerRequest {
            partitions: classic,
            crossings: crossings
                .iter()
                .map(|(&(a, b), &n)| (classic_index[a], classic_index[b], n))
                .collect(),
            levelled_outputs,
            // the WoP lookups' share of a global target, predicted as the statistics report it
            reserved_p_error: -wop_infos
                .values()
                .map(|w| {
                    let e = crate::optimizer::wop::estimate(&w.params, w.bits, w.p_target);
                    w.lookups as f64 * (-e.p_error).ln_1p()
                })
                .sum::<f64>()
                .exp_m1(),
        };
        let merged = req.merged();
        let mut choice = if let Some(c) = classic_choice {
            c
        } else if req.partitions.is_empty()
            && req.levelled_outputs.is_empty()
            && !wop_infos.is_empty()
        {
            ParamChoice {
                sets: Vec::new(),
                partition_sets: Vec::new(),
            }
        } else {
            chooser
                .choose(&req)
                .map_err(|why| LowerError::NoParameters {
                    precision: merged.precision,
                    norm2: merged.norm2,
                    why,
                })?
        };
        let bad = |why: String| Err(LowerError::BadInput(format!("parameter chooser: {why}")));
        if (choice.sets.is_empty() && wop_infos.is_empty())
            || choice.partition_sets.len() != req.partitions.len()
        {
            return bad(format!(
                "{} set(s) and {} assignment(s) for {} partition(s)",
                choice.sets.len(),
                choice.partition_sets.len(),
                req.partitions.len()
            ));
        }
        for (p, &s) in choice.partition_sets.iter().enumerate() {
            let ok = choice
                .sets
                .get(s)
                .is_some_and(|set| set.message_bits >= req.partitions[p].precision);
            if !ok {
                return bad(format!(
                    "partition {p} ({} bits) got an unknown or narrower set",
                    req.partitions[p].precision
                ));
            }
        }
        let classic_sets = choice.partition_sets.clone();
        for w in wop_infos.values_mut() {
            w.set = choice.sets.len();
            choice.sets.push(w.params.set.clone());
        }
        let set_of = |p: usize| match wop_infos.get(&p) {
            Some(w) => w.set as u32,
            None => classic_sets[classic_index[p]] as u32,
        };
        // Inputs feeding only bootstraps of one set are encrypted under that set's small key:
        // no keyswitch on the server, and less noise.
        let mut key_of_region: BTreeMap<usize, KeyId> = BTreeMap::new();
        for (&r, e) in &info {
            let consumer_sets: std::collections::BTreeSet<u32> =
                e.consumers.keys().map(|&p| set_of(p)).collect();
            let wop_home = home[&r].is_some_and(|p| wop_infos.contains_key(&p));
            let key = if !wop_home
                && e.producer.is_none()
                && e.outputs.is_empty()
                && consumer_sets.len() == 1
            {
                KeyId::Small(*consumer_sets.iter().next().expect("one set"))
            } else {
                KeyId::Big(home[&r].map_or(0, set_of))
            };
            key_of_region.insert(r, key);
        }
        // Materialize tables (one entry per message of the bootstrap's input width), each
        // distinct table once (`Graph::add_table`, through an index of the pool).
        let mut table_ids: HashMap<Vec<i64>, veil_ir::TableId> = HashMap::new();
        for (i, t) in g.tables.iter().enumerate() {
            table_ids
                .entry(t.entries.clone())
                .or_insert(veil_ir::TableId(i as u32));
        }
        let mut wop_ks = std::collections::BTreeSet::new();
        for p in std::mem::take(&mut self.pending) {
            let k = g.operands(p.node)[0];
            let bits = g.ty(k).int.bits;
            if let Some(w) = wop_infos.get(&part_of_ks(g, k)) {
                // Read the operand's whole region (its encoding width) and apply the
                // keyswitch's window in the table.
                let src = g.operands(k)[0];
                let width = info[&region(src)].width.max(1);
                let window = g.op(k).clone();
                let ids: Vec<_> = p
                    .tables
                    .into_iter()
                    .map(|mut t| {
                        t.resize(1usize << bits, 0);
                        let t = wop_table(&t, &window, bits, width);
                        *table_ids.entry(t.clone()).or_insert_with(|| {
                            g.tables.push(Table { entries: t });
                            veil_ir::TableId(g.tables.len() as u32 - 1)
                        })
                    })
                    .collect();
                let wp = &w.params;
                let small = |x: usize| u8::try_from(x).unwrap_or(u8::MAX);
                g.node_mut(p.node).op = Op::WopPbs {
                    tables: ids,
                    map: p.map,
                    pfks_base_log: small(wp.pfks_base_log),
                    pfks_level: small(wp.pfks_level),
                    cbs_base_log: small(wp.cbs_base_log),
                    cbs_level: small(wp.cbs_level),
                    out_bits: wp.out_bits,
                };
                g.set_operands(p.node, &[src]);
                wop_ks.insert(k);
                continue;
            }
            let ids: Vec<_> = p
                .tables
                .into_iter()
                .map(|mut t| {
                    // (messages past the table are unreachable; the last entry keeps a
                    // constant table constant)
                    let last = t.last().copied().unwrap_or(0);
                    t.resize(1usize << bits, last);
                    *table_ids.entry(t.clone()).or_insert_with(|| {
                        g.tables.push(Table { entries: t });
                        veil_ir::TableId(g.tables.len() as u32 - 1)
                    })
                })
                .collect();
            g.node_mut(p.node).op = Op::Pbs {
                tables: ids,
                map: p.map,
            };
        }
        for &k in &wop_ks {
            if g.users(k).is_empty() {
                g.remove(k);
            }
        }
        let vals: Vec<ValueId> = vals.into_iter().filter(|&v| g.contains(v)).collect();
        let mut stats = LowerStats {
            wop: wop_infos.values().cloned().collect(),
            partitions: req.partitions.clone(),
            partition_sets: choice.partition_sets.clone(),
            crossings: req.crossings.clone(),
            levelled_outputs: req.levelled_outputs.clone(),
            ..Default::default()
        };
        for &v in &vals {
            if !g.ty(v).is_encrypted() {
                continue;
            }
            let enc = if is_ks(g, v) {
                Encoding {
                    key: KeyId::Small(set_of(part_of_ks(g, v))),
                    width: g.ty(v).int.bits,
                }
            } else {
                let r = region(v);
                let (key, width) = match info.get(&r) {
                    Some(e) => (key_of_region[&r], e.width.max(1)),
                    None => (KeyId::Big(0), 1),
                };
                Encoding { key, width }
            };
            g.node_mut(v).ty.encoding = Some(enc);
        }
        for &v in &vals {
            let count = numel(&g.ty(v).shape) as u64;
            match g.op(v) {
                op if op.is_keyswitch() => {
                    let from = g.ty(g.operands(v)[0]).encoding.map(|e| e.key);
                    if from != g.ty(v).encoding.map(|e| e.key) {
                        stats.keyswitches += count;
                    }
                }
                Op::Pbs { .. } => {
                    let count = g.bootstraps(v);
                    stats.trivial_lookups += numel(&g.ty(v).shape) as u64 - count;
                    if count > 0 {
                        stats.pbs += count;
                        let bits = g.ty(g.operands(v)[0]).int.bits;
                        *stats.pbs_by_precision.entry(bits).or_default() += count;
                    }
                }
                Op::WopPbs { .. } => stats.wop_lookups += count,
                Op::Input { .. } | Op::Const { .. } | Op::Output { .. } => {}
                _ if g.ty(v).is_encrypted() => stats.levelled_ops += 1,
                _ => {}
            }
        }
        g.params = choice.sets;
        g.level = Level::Tfhe;
        g.compact_pools();
        Ok(Lowered {
            program: self.dst,
            stats,
        })
    }
}

/// A `wop.pbs` table reading a whole `width`-bit message `m` where a keyswitch (`window`,
/// to `bits` bits) and a `pbs` of table `t` read it: entry `m` is `t` at the keyswitch's
/// message of `m` (interpreter semantics of the keyswitch; messages no in-domain value takes
/// clamp to the last entry).
fn wop_table(t: &[i64], window: &Op, bits: u8, width: u8) -> Vec<i64> {
    let last = (1i128 << bits) - 1;
    (0..(1i128 << width))
        .map(|m| {
            let idx = match window {
                Op::KeySwitchShr { shift } => m >> shift,
                Op::KeySwitchBit { bit } => (m >> bit) & 1,
                Op::KeySwitchRound { shift } => (m + (1i128 << (shift - 1))) >> shift,
                _ => m,
            };
            t[idx.min(last) as usize]
        })
        .collect()
}

/// The classes of a union-find over `0..n`, each element mapped to the smallest member of its
/// class (a numbering that does not depend on the union order).
fn classes_by_min(uf: UnionFind<usize>) -> Vec<usize> {
    let labels = uf.into_labeling();
    let mut smallest: HashMap<usize, usize> = HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        smallest.entry(l).or_insert(i);
    }
    labels.iter().map(|l| smallest[l]).collect()
}
