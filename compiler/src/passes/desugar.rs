//! The `desugar` pass: the numpy integer ops (`floordiv`, `mod`, `pow`, the bitwise and logical
//! ops, shifts, `sign`, `not`, `bitnot`, `where`) become table lookups on existing ops, before
//! the rewrites, so the e-graph language needs no new nodes and the fusion rules see plain
//! `tlu`s.
//!
//! For each such op (the *root*) the pass looks at its *cone*: the elementwise ops above it
//! (`add`, `sub`, `neg`, `mul`, comparisons, `min`, `max`, `relu`, `abs`, `round`, `clip`,
//! `tlu` and the new ops themselves) up to encrypted *leaves* (values made by other ops, or
//! inputs) and clear constants. The root's value is a function of the leaves alone, so it is
//! one lookup of the leaves packed into one integer,
//! `p = sum_i (leaf_i - min_i) * 2^(bits of the leaves after i)`, tabulated by running the
//! interpreter's own op semantics on every packed value. Two cones are tried:
//!
//! - the *maximal* cone, whose leaves are the furthest encrypted values: `where(x > 10, x * 2,
//!   x // 2)` depends on `x` only and becomes one lookup of `x`;
//! - the *minimal* cone, whose leaves are the root's own operands (the plain desugaring of one
//!   op: `x // 3` is one `tlu` of `x`, `a & b` one lookup of `a * 2^bits(b) + b`).
//!
//! The maximal cone wins when it has a single leaf, or when it reads at most
//! [`WIDER_BITS_PER_SAVED`] more packed bits than the minimal one per bootstrap of the cone it
//! makes dead (one bootstrap replaces several, on an input not much wider: the comparisons of
//! a decision tree's features fold into one lookup of the features). A cone is usable when its packed
//! leaves hold at most [`MAX_PACKED_BITS`] bits ([`MAX_SINGLE_BITS`] for one leaf). Clear
//! constants that vary per element give one table per distinct combination (`tlu.multi`).
//!
//! `where (c, a, b)` with a clear constant condition is levelled: `b + c' * (a - b)` with the
//! clear `c' = (c != 0)`. With an encrypted condition too wide to pack with both branches it
//! is two lookups `(c ? a : 0) + (c ? 0 : b)`, each on one packed pair: two bootstraps, as
//! many as `b + c * (a - b)` would cost (an encrypted product is two), on narrower inputs.
//! `bitand`/`bitor`/`bitxor` of encrypted pairs too wide to pack go chunk by chunk
//! (`CHUNK_BITS` bits); logical `and`/`or`/`xor` reduce each operand to one bit first (three
//! lookups). Ops on clear constants only are folded. Other ops too wide to pack are an
//! error naming the op and the packed width.

use super::{Pass, PassContext, PassError, PassStats};
use std::collections::{BTreeMap, HashMap, HashSet};
use veil_ir::tensor::broadcast_index;
use veil_ir::{eval_op, infer, BinOp, Constant, Graph, Op, Table, Tensor, ValueId};

/// Widest packed input of a lookup made from several leaves (bits).
pub const MAX_PACKED_BITS: u32 = 8;

/// How many more packed bits the maximal cone may read than the minimal one per bootstrap it
/// makes dead: one lookup of `2 + 2k` more bits replaces `k + 1` (a bootstrap's cost roughly
/// doubles per two bits at these widths), so `np.logical_and(x > 3, y < 2)` on 3-bit values is
/// one 6-bit lookup instead of two comparisons and a 2-bit lookup.
pub const WIDER_BITS_PER_SAVED: u32 = 2;

/// Widest single leaf a lookup may be tabulated on (bits; tables have `2^bits` entries).
pub const MAX_SINGLE_BITS: u32 = 16;

/// Most nodes a cone may hold.
const MAX_CONE_NODES: usize = 256;

/// The `desugar` pass.
pub struct DesugarPass;

impl Pass for DesugarPass {
    fn name(&self) -> &'static str {
        "desugar"
    }

    fn doc(&self) -> &'static str {
        "Desugars the numpy integer ops (floordiv, mod, pow, bitand/bitor/bitxor, shl/shr, \
         and/or/xor, sign, not, bitnot, where) into table lookups on packed operands: each \
         becomes one `tlu` (or `tlu.multi` for per-element constants) of the encrypted values \
         its elementwise cone depends on, packed into one integer when there are several \
         (at most 8 packed bits; 16 for one value), so `where(x > 10, x * 2, x // 2)` is one \
         lookup of x. `where` with a clear condition is levelled; with an encrypted one too \
         wide to pack, two lookups; bitand/bitor/bitxor of wider encrypted pairs go chunk by \
         chunk. Ops on constants only are folded, and the replaced ops removed (dead-code \
         elimination). Reads the graph's types (run after `bitwidth` so they are \
         calibrated) and gives new values the range of their type in `cx.ranges`."
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassStats, PassError> {
        let order = graph
            .topo_order()
            .map_err(|_| PassError::failed("desugar", "the graph has a cycle"))?;
        let nums = graph.value_numbers();
        let mut st = Stats::default();
        for v in order {
            if !matches!(graph.op(v), Op::Binary(_) | Op::Unary(_) | Op::Where) {
                continue;
            }
            let label = format!(
                "%{} = {}",
                nums.get(&v).copied().unwrap_or(0),
                graph.op(v).name()
            );
            let new = desugar(graph, v, &mut st)
                .map_err(|m| PassError::failed("desugar", format!("{label}: {m}")))?;
            // Keep the declared (calibrated) type where it is narrower than the inferred one,
            // and where it is wider: lookups reading `v` have tables of one entry per value of
            // its type (a `where` folded to one constant must not shrink under them).
            let (old, got) = (graph.ty(v).int, graph.ty(new).int);
            let contains =
                |a: veil_ir::IntType, b: veil_ir::IntType| a.min() <= b.min() && b.max() <= a.max();
            if contains(got, old) || contains(old, got) {
                graph.node_mut(new).ty.int = old;
            }
            graph.replace_all_uses(v, new);
            // A rounded value keeps more bits than the round drops.
            let keep = graph
                .users(new)
                .into_iter()
                .filter_map(|u| match graph.op(u) {
                    Op::Round { lsbs, .. } => Some(lsbs.saturating_add(1)),
                    _ => None,
                })
                .max();
            if let Some(bits) = keep.filter(|&b| graph.ty(new).int.bits < b) {
                graph.node_mut(new).ty.int.bits = bits;
            }
            let ty = graph.ty(new).clone();
            for u in graph.users(new) {
                if matches!(graph.op(u), Op::Output { .. }) {
                    graph.node_mut(u).ty = ty.clone();
                }
            }
            st.desugared += 1;
        }
        if st.desugared > 0 {
            // The replaced ops are dead: drop them so that later passes (and the rewrite's
            // `pbs_before`) see only the program. Surviving handles do not change.
            st.removed = graph.dce() as i64;
        }
        if let Some(r) = cx.ranges.as_mut() {
            // New values: the range of their (sound, inferred) type.
            for w in graph.values() {
                if r.get(w).is_none() {
                    r.set(w, veil_ir::Interval::of_type(graph.ty(w).int));
                }
            }
        }
        let mut s = PassStats::default();
        s.count("ops_desugared", st.desugared)
            .count("lookups", st.lookups)
            .count("cones_merged", st.merged)
            .count("folded", st.folded)
            .count("levelled_where", st.levelled)
            .count("nodes_removed", st.removed);
        Ok(s)
    }
}

#[derive(Default)]
struct Stats {
    desugared: i64,
    lookups: i64,
    merged: i64,
    folded: i64,
    levelled: i64,
    removed: i64,
}

type R<T = ValueId> = Result<T, String>;

/// Adds `op(operands)` with its inferred type.
fn push(g: &mut Graph, op: Op, operands: &[ValueId], target: Option<&[usize]>) -> R {
    let ty = infer(g, &op, operands, target).map_err(|e| e.to_string())?;
    Ok(g.add_node(op, ty, operands))
}

fn scalar(g: &mut Graph, v: i128) -> R {
    let v = i64::try_from(v).map_err(|_| format!("constant {v} does not fit i64"))?;
    let id = g.add_const(Constant {
        shape: vec![],
        values: vec![v],
    });
    push(g, Op::Const { value: id }, &[], None)
}

fn is_const(g: &Graph, v: ValueId) -> bool {
    matches!(g.op(v), Op::Const { .. })
}

/// Whether `op` is an elementwise function of its operands a cone may go through.
fn elementwise(op: &Op) -> bool {
    match op {
        Op::Add
        | Op::Sub
        | Op::Neg
        | Op::Mul
        | Op::Cmp(_)
        | Op::Min
        | Op::Max
        | Op::Relu
        | Op::Abs
        | Op::Round { approx: false, .. }
        | Op::Clip { .. }
        | Op::Tlu { .. }
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Where => true,
        // folding it into a lookup would make the lookup read the operand's full width
        Op::Round { approx: true, .. }
        | Op::Input { .. }
        | Op::Const { .. }
        | Op::MatMul
        | Op::Conv2d(_)
        | Op::Sum { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Broadcast
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::TluMulti { .. }
        | Op::Output { .. }
        | Op::KeySwitch
        | Op::Pbs { .. }
        | Op::WopPbs { .. }
        | Op::KeySwitchShr { .. }
        | Op::KeySwitchBit { .. }
        | Op::KeySwitchRound { .. } => false,
    }
}

/// The elementwise cone of a root: its nodes in evaluation order (root last), its encrypted
/// leaves and its clear constant leaves.
struct Cone {
    nodes: Vec<ValueId>,
    leaves: Vec<ValueId>,
    consts: Vec<ValueId>,
}

impl Cone {
    fn bits(&self, g: &Graph) -> u32 {
        self.leaves.iter().map(|&l| g.ty(l).int.bits as u32).sum()
    }

    /// Bootstraps per element the cone's lookup makes dead: those of the cone's nodes below
    /// `root` whose every user is `root` or another such dead node (an encrypted product
    /// counts two).
    fn saved(&self, g: &Graph, root: ValueId) -> u32 {
        let inside: HashSet<ValueId> = self.nodes.iter().copied().collect();
        let mut dead: HashSet<ValueId> = HashSet::from([root]);
        let mut saved = 0;
        // `nodes` is in evaluation order, root last: users come after their operands.
        for &v in self.nodes.iter().rev() {
            if v == root {
                continue;
            }
            let users = g.users(v);
            if users.is_empty() || !users.iter().all(|u| inside.contains(u) && dead.contains(u)) {
                continue;
            }
            dead.insert(v);
            let enc = g
                .operands(v)
                .iter()
                .filter(|&&o| g.ty(o).is_encrypted())
                .count();
            if g.op(v).needs_pbs(enc) {
                saved += if matches!(g.op(v), Op::Mul) { 2 } else { 1 };
            }
        }
        saved
    }

    fn usable(&self, g: &Graph) -> bool {
        let b = self.bits(g);
        match self.leaves.len() {
            0 => false,
            1 => b <= MAX_SINGLE_BITS,
            _ => b <= MAX_PACKED_BITS,
        }
    }
}

/// The cone of `root`: through elementwise encrypted ops when `deep`, else only the root.
/// `None` when it reads a clear value that is not a constant.
fn cone(g: &Graph, root: ValueId, deep: bool) -> Option<Cone> {
    let mut c = Cone {
        nodes: vec![],
        leaves: vec![],
        consts: vec![],
    };
    let mut seen = HashSet::new();
    // Iterative post-order.
    let mut stack = vec![(root, false)];
    while let Some((v, expanded)) = stack.pop() {
        if expanded {
            c.nodes.push(v);
            continue;
        }
        if !seen.insert(v) {
            continue;
        }
        let is_root = v == root;
        if !is_root && !g.ty(v).is_encrypted() {
            if is_const(g, v) {
                c.consts.push(v);
                continue;
            }
            return None;
        }
        if !is_root && (!deep || !elementwise(g.op(v))) {
            c.leaves.push(v);
            continue;
        }
        if c.nodes.len() + stack.len() > MAX_CONE_NODES {
            return None;
        }
        stack.push((v, true));
        for o in g.operands(v).into_iter().rev() {
            if !seen.contains(&o) {
                stack.push((o, false));
            }
        }
    }
    Some(c)
}

fn desugar(g: &mut Graph, v: ValueId, st: &mut Stats) -> R {
    let operands = g.operands(v);
    if operands.iter().all(|&o| is_const(g, o)) {
        st.folded += 1;
        return fold(g, v);
    }
    if operands.iter().all(|&o| !g.ty(o).is_encrypted()) {
        return Err(
            "its operands are clear but not all constants; veil computes clear values \
                    only from constants (make an operand encrypted or constant)"
                .into(),
        );
    }
    if matches!(g.op(v), Op::Where) && is_const(g, operands[0]) {
        st.levelled += 1;
        return where_clear(g, v, &operands);
    }
    let deep = cone(g, v, true);
    let shallow = cone(g, v, false)
        .ok_or("an operand is a clear value that is not a constant; make it a constant")?;
    let pick = match deep {
        Some(d)
            if d.usable(g)
                && (d.leaves.len() == 1
                    || d.bits(g) <= shallow.bits(g) + WIDER_BITS_PER_SAVED * d.saved(g, v)) =>
        {
            if d.nodes.len() > 1 {
                st.merged += 1;
            }
            d
        }
        _ => shallow,
    };
    if pick.usable(g) {
        st.lookups += 1;
        return lookup(g, v, &pick);
    }
    if matches!(g.op(v), Op::Where) {
        st.lookups += 2;
        return where_split(g, v, &operands);
    }
    if let Op::Binary(b @ (BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor)) = g.op(v) {
        if operands.iter().all(|&o| g.ty(o).is_encrypted()) {
            let b = *b;
            return digitwise(g, v, b, &operands, st);
        }
    }
    if let Op::Binary(BinOp::And | BinOp::Or | BinOp::Xor) = g.op(v) {
        if operands.iter().all(|&o| g.ty(o).is_encrypted()) {
            st.lookups += 3;
            return logical_wide(g, v, &operands);
        }
    }
    Err(format!(
        "a lookup of its encrypted operands needs {} packed bits, over the limit of \
         {MAX_PACKED_BITS}; narrow the operands (e.g. `round` or a `tlu` to fewer bits) first",
        pick.bits(g)
    ))
}

/// Folds an op on constants into a constant.
fn fold(g: &mut Graph, v: ValueId) -> R {
    let operands = g.operands(v);
    let vals: Vec<Tensor<i128>> = operands
        .iter()
        .map(|&o| match g.op(o) {
            Op::Const { value } => {
                let c = g.constant(*value).expect("verified constant");
                Tensor::new(
                    c.shape.clone(),
                    c.values.iter().map(|&x| x as i128).collect(),
                )
                .map_err(|e| e.0)
            }
            _ => Err("not a constant".to_string()),
        })
        .collect::<R<_>>()?;
    let args: Vec<&Tensor<i128>> = vals.iter().collect();
    let out = veil_ir::interp::eval_node(g, v, &args).map_err(|e| e.0)?;
    let values = out
        .data
        .iter()
        .map(|&x| i64::try_from(x).map_err(|_| format!("folded value {x} does not fit i64")))
        .collect::<R<Vec<i64>>>()?;
    let id = g.add_const(Constant {
        shape: out.shape,
        values,
    });
    let ty = g.ty(v).clone();
    Ok(g.add_node(Op::Const { value: id }, ty, &[]))
}

/// `where (c, a, b)` with a constant condition: `b + c' * (a - b)`, `c' = (c != 0)` (clear).
fn where_clear(g: &mut Graph, v: ValueId, ops: &[ValueId]) -> R {
    let Op::Const { value } = g.op(ops[0]) else {
        return Err("condition is not a constant".into());
    };
    let c = g.constant(*value).expect("verified constant").clone();
    let id = g.add_const(Constant {
        shape: c.shape.clone(),
        values: c.values.iter().map(|&x| (x != 0) as i64).collect(),
    });
    let c01 = push(g, Op::Const { value: id }, &[], None)?;
    let d = push(g, Op::Sub, &[ops[1], ops[2]], None)?;
    let m = push(g, Op::Mul, &[c01, d], None)?;
    let r = push(g, Op::Add, &[ops[2], m], None)?;
    // The same shape as `where` (an all-false scalar condition may not broadcast `a`).
    let shape = g.ty(v).shape.clone();
    if g.ty(r).shape != shape {
        return push(g, Op::Broadcast, &[r], Some(&shape));
    }
    Ok(r)
}

/// `where (c, a, b)` as `(c ? a : 0) + (c ? 0 : b)`: two lookups of packed pairs.
fn where_split(g: &mut Graph, v: ValueId, ops: &[ValueId]) -> R {
    let shape = g.ty(v).shape.clone();
    let mut cond = ops[0];
    let ct = g.ty(cond).int;
    if ct.min() < 0 || ct.max() > 1 {
        // Normalise to one bit first: c != 0.
        let n = 1usize << ct.bits;
        let entries = (0..n as i128).map(|i| (i + ct.min() != 0) as i64).collect();
        let t = g.add_table(Table { entries });
        cond = push(g, Op::Tlu { table: t }, &[cond], None)?;
    }
    let mut half = |branch: ValueId, when: bool| -> R {
        if !g.ty(branch).is_encrypted() && !is_const(g, branch) {
            return Err("a branch is a clear value that is not a constant".into());
        }
        let leaves: Vec<ValueId> = if g.ty(branch).is_encrypted() {
            vec![cond, branch]
        } else {
            vec![cond]
        };
        let bits: u32 = leaves.iter().map(|&l| g.ty(l).int.bits as u32).sum();
        if bits > MAX_PACKED_BITS.max(MAX_SINGLE_BITS * (leaves.len() == 1) as u32) {
            return Err(format!(
                "the condition packed with a branch needs {bits} bits, over the limit of \
                 {MAX_PACKED_BITS}; narrow the branches first"
            ));
        }
        let zero = scalar(g, 0)?;
        let (a, b) = if when { (branch, zero) } else { (zero, branch) };
        let ty = g.ty(v).clone();
        let w = g.add_node(Op::Where, ty, &[cond, a, b]);
        let consts = if g.ty(branch).is_encrypted() {
            vec![zero]
        } else {
            vec![zero, branch]
        };
        let c = Cone {
            nodes: vec![w],
            leaves,
            consts,
        };
        let r = lookup(g, w, &c);
        // The helper `where` is only a template for the table.
        g.remove(w);
        r
    };
    let t = half(ops[1], true)?;
    let f = half(ops[2], false)?;
    let s = push(g, Op::Add, &[t, f], None)?;
    if g.ty(s).shape != shape {
        return push(g, Op::Broadcast, &[s], Some(&shape));
    }
    Ok(s)
}

/// `and`/`or`/`xor` (logical) of encrypted operands too wide to pack: each operand becomes
/// `x != 0` (one lookup each, a `u1`), then the pair of bits is one packed lookup. Three
/// bootstraps, the widest on an operand's own width.
fn logical_wide(g: &mut Graph, v: ValueId, ops: &[ValueId]) -> R {
    let shape = g.ty(v).shape.clone();
    let mut bits = Vec::with_capacity(2);
    for &o in ops {
        let t = g.ty(o).int;
        let n = 1usize << t.bits;
        let entries = (0..n as i128).map(|i| (i + t.min() != 0) as i64).collect();
        let tid = g.add_table(Table { entries });
        bits.push(push(g, Op::Tlu { table: tid }, &[o], None)?);
    }
    let ty = g.ty(v).clone();
    let op = g.op(v).clone();
    let w = g.add_node(op, ty, &bits);
    let c = Cone {
        nodes: vec![w],
        leaves: bits,
        consts: vec![],
    };
    let r = lookup(g, w, &c);
    // The helper op is only a template for the table.
    g.remove(w);
    let r = r?;
    if g.ty(r).shape != shape {
        return push(g, Op::Broadcast, &[r], Some(&shape));
    }
    Ok(r)
}

/// Most bits per chunk of the digit-wise bitwise ops (pairs of chunks are looked up packed).
const CHUNK_BITS: u32 = MAX_PACKED_BITS / 2;

/// `a & b`, `a | b` or `a ^ b` on operands too wide to pack, chunk by chunk: both operands in
/// `w`-bit two's complement (`w` the wider width) are cut into `k`-bit chunks (one lookup per
/// chunk and operand), each pair of chunks is looked up packed, and the results are summed
/// with their weights; the top chunk's table reads its top bit with negative weight, so signed
/// operands need nothing more. `3 * ceil(w / 4)` bootstraps, none wider than `max(w, 2k)`
/// (`k = ceil(w / ceil(w / 4))`: two `u6` operands take 6 bootstraps on 6 bits).
fn digitwise(g: &mut Graph, v: ValueId, op: BinOp, ops: &[ValueId], st: &mut Stats) -> R {
    let shape = g.ty(v).shape.clone();
    let signed = ops.iter().any(|&o| g.ty(o).int.signed);
    let w = ops
        .iter()
        .map(|&o| {
            let t = g.ty(o).int;
            t.bits as u32 + (signed && !t.signed) as u32
        })
        .max()
        .unwrap_or(1);
    // As few chunks as `CHUNK_BITS` allows, balanced so their lookups are as narrow as can be.
    let n = w.div_ceil(CHUNK_BITS);
    let k = w.div_ceil(n);
    let mut chunks: Vec<Vec<ValueId>> = vec![];
    for &o in ops {
        let t = g.ty(o).int;
        let mut x = o;
        if g.ty(x).shape != shape {
            x = push(g, Op::Broadcast, &[x], Some(&shape))?;
        }
        let mut cs = vec![];
        for i in 0..n {
            let bits = k.min(w - i * k);
            let entries = (0..1i128 << t.bits)
                .map(|j| {
                    let val = j + t.min();
                    let u = val & ((1i128 << w) - 1);
                    ((u >> (i * k)) & ((1i128 << bits) - 1)) as i64
                })
                .collect();
            let tid = g.add_table(Table { entries });
            cs.push(push(g, Op::Tlu { table: tid }, &[x], None)?);
            st.lookups += 1;
        }
        chunks.push(cs);
    }
    let mut acc: Option<ValueId> = None;
    for i in 0..n {
        let bits = k.min(w - i * k);
        let top = i == n - 1 && signed;
        let (ca, cb) = (chunks[0][i as usize], chunks[1][i as usize]);
        let kk = scalar(g, 1i128 << bits)?;
        let hi = push(g, Op::Mul, &[ca, kk], None)?;
        let packed = push(g, Op::Add, &[hi, cb], None)?;
        let pt = g.ty(packed).int;
        let entries = (0..1i128 << pt.bits)
            .map(|j| {
                let p = j + pt.min();
                let (x, y) = (p >> bits, p & ((1i128 << bits) - 1));
                let r = op.eval(x, y).unwrap_or(0);
                // The top chunk of a signed result: its top bit weighs -2^(bits-1).
                let r = if top && r >= 1i128 << (bits - 1) {
                    r - (1i128 << bits)
                } else {
                    r
                };
                (r << (i * k)) as i64
            })
            .collect();
        let tid = g.add_table(Table { entries });
        let part = push(g, Op::Tlu { table: tid }, &[packed], None)?;
        st.lookups += 1;
        acc = Some(match acc {
            None => part,
            Some(a) => push(g, Op::Add, &[a, part], None)?,
        });
    }
    acc.ok_or_else(|| "no chunk".to_string())
}

/// One lookup of the cone's leaves, packed, computing the root.
fn lookup(g: &mut Graph, root: ValueId, c: &Cone) -> R {
    let shape = g.ty(root).shape.clone();
    let n: usize = shape.iter().product();
    let root_int = g.ty(root).int;
    // Leaves at the root's shape, then packed: high bits first.
    let widths: Vec<(u32, i128)> = c
        .leaves
        .iter()
        .map(|&l| (g.ty(l).int.bits as u32, g.ty(l).int.min()))
        .collect();
    let mut packed: Option<ValueId> = None;
    for (&l, &(w, lo)) in c.leaves.iter().zip(&widths) {
        let mut x = l;
        if g.ty(x).shape != shape {
            x = push(g, Op::Broadcast, &[x], Some(&shape))?;
        }
        if c.leaves.len() > 1 && lo != 0 {
            let k = scalar(g, lo)?;
            x = push(g, Op::Sub, &[x, k], None)?;
        }
        packed = Some(match packed {
            None => x,
            Some(acc) => {
                let k = scalar(g, 1i128 << w)?;
                let hi = push(g, Op::Mul, &[acc, k], None)?;
                push(g, Op::Add, &[hi, x], None)?
            }
        });
    }
    let packed = packed.ok_or("the cone has no encrypted leaf")?;
    let pint = g.ty(packed).int;
    let size = 1usize << pint.bits;
    // Per element, the values of the constant leaves: one table per distinct combination.
    let idx: Vec<Vec<usize>> = c
        .consts
        .iter()
        .map(|&k| broadcast_index(&g.ty(k).shape, &shape).map_err(|e| e.0))
        .collect::<R<_>>()?;
    let const_vals: Vec<Vec<i64>> = c
        .consts
        .iter()
        .map(|&k| match g.op(k) {
            Op::Const { value } => g.constant(*value).expect("verified").values.clone(),
            _ => vec![],
        })
        .collect();
    let mut groups: BTreeMap<Vec<i64>, u32> = BTreeMap::new();
    let mut map = Vec::with_capacity(n);
    for j in 0..n {
        let key: Vec<i64> = idx
            .iter()
            .zip(&const_vals)
            .map(|(ix, vals)| vals[ix[j]])
            .collect();
        let next = groups.len() as u32;
        map.push(*groups.entry(key).or_insert(next));
    }
    let mut tables = vec![Vec::new(); groups.len()];
    for (key, &t) in &groups {
        let mut entries = Vec::with_capacity(size);
        for i in 0..size as i128 {
            // Decode the leaves (tlu index i is the packed value i + min).
            let mut p = i + pint.min();
            let mut vals = vec![0i128; c.leaves.len()];
            if c.leaves.len() == 1 {
                vals[0] = p;
            } else {
                for (k, &(w, lo)) in widths.iter().enumerate().rev() {
                    vals[k] = (p & ((1i128 << w) - 1)) + lo;
                    p >>= w;
                }
            }
            let y = eval_cone(g, c, &vals, key).unwrap_or(0);
            entries.push(
                y.clamp(root_int.min(), root_int.max())
                    .clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            );
        }
        tables[t as usize] = entries;
    }
    let op = if tables.len() == 1 {
        let t = g.add_table(Table {
            entries: tables.pop().expect("one table"),
        });
        Op::Tlu { table: t }
    } else {
        let ids = tables
            .into_iter()
            .map(|entries| g.add_table(Table { entries }))
            .collect();
        Op::TluMulti { tables: ids, map }
    };
    push(g, op, &[packed], None)
}

/// The root's value when the leaves take `vals` and the constants `consts` (one element).
fn eval_cone(g: &Graph, c: &Cone, vals: &[i128], consts: &[i64]) -> Option<i128> {
    let mut env: HashMap<ValueId, i128> = HashMap::new();
    for (&l, &x) in c.leaves.iter().zip(vals) {
        env.insert(l, x);
    }
    for (&k, &x) in c.consts.iter().zip(consts) {
        env.insert(k, x as i128);
    }
    let mut last = None;
    for &v in &c.nodes {
        let ops = g.operands(v);
        let args: Vec<Tensor<i128>> = ops
            .iter()
            .map(|o| env.get(o).map(|&x| Tensor::scalar(x)))
            .collect::<Option<_>>()?;
        let refs: Vec<&Tensor<i128>> = args.iter().collect();
        let tys: Vec<&veil_ir::TensorType> = ops.iter().map(|&o| g.ty(o)).collect();
        let mut ty = g.ty(v).clone();
        ty.shape = vec![];
        let r = eval_op(g, g.op(v), &tys, &ty, &refs).ok()?;
        let x = *r.data.first()?;
        // A value outside its declared type never occurs on the program's domain.
        if !g.ty(v).int.contains(x) {
            return None;
        }
        env.insert(v, x);
        last = Some(x);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::builder::Builder;
    use veil_ir::IntType;

    fn run_pass(g: &mut Graph) -> PassStats {
        let mut cx = PassContext::default();
        DesugarPass.run(g, &mut cx).unwrap()
    }

    fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
        g.values().into_iter().filter(|&v| f(g.op(v))).count()
    }

    #[test]
    fn where_of_one_value_is_one_lookup() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[3], IntType::unsigned(5)).unwrap();
        let ten = b.constant_scalar(10).unwrap();
        let c = b.gt(x, ten).unwrap();
        let two = b.constant_scalar(2).unwrap();
        let a = b.mul(x, two).unwrap();
        let h = b.floor_div(x, 2).unwrap();
        let w = b.where_(c, a, h).unwrap();
        b.output("y", w).unwrap();
        let mut g = b.finish().unwrap();
        let s = run_pass(&mut g);
        assert_eq!(s.counters["cones_merged"], 1);
        g.dce();
        assert_eq!(count(&g, |o| matches!(o, Op::Tlu { .. })), 1);
        assert_eq!(count(&g, |o| o.needs_pbs(1)), 1);
        let out = veil_ir::run(&g, &[Tensor::new(vec![3], vec![3, 11, 31]).unwrap()]).unwrap();
        assert_eq!(out[0].data, vec![1, 22, 62]);
    }

    #[test]
    fn pair_is_packed() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], IntType::signed(3)).unwrap();
        let y = b.input_encrypted("y", &[2], IntType::unsigned(2)).unwrap();
        let r = b.binary(x, y, BinOp::BitXor).unwrap();
        b.output("r", r).unwrap();
        let mut g = b.finish().unwrap();
        run_pass(&mut g);
        g.dce();
        assert_eq!(count(&g, |o| o.needs_pbs(1)), 1);
        let t = |d: Vec<i64>| Tensor::new(vec![2], d).unwrap();
        let out = veil_ir::run(&g, &[t(vec![-4, 3]), t(vec![3, 1])]).unwrap();
        assert_eq!(out[0].data, vec![-4 ^ 3, 3 ^ 1]);
    }

    #[test]
    fn wide_bitwise_ops_go_digit_by_digit() {
        for (op, sx, sy) in [
            (BinOp::BitAnd, false, false),
            (BinOp::BitOr, true, false),
            (BinOp::BitXor, true, true),
        ] {
            let ty = |s: bool| {
                if s {
                    IntType::signed(6)
                } else {
                    IntType::unsigned(6)
                }
            };
            let b = Builder::new();
            let x = b.input_encrypted("x", &[4], ty(sx)).unwrap();
            let y = b.input_encrypted("y", &[4], ty(sy)).unwrap();
            let r = b.binary(x, y, op).unwrap();
            b.output("r", r).unwrap();
            let g0 = b.finish().unwrap();
            let mut g = g0.clone();
            run_pass(&mut g);
            g.dce();
            assert!(count(&g, |o| matches!(o, Op::Binary(_))) == 0);
            let lo = |s: bool| if s { -32 } else { 0 };
            for i in 0..16i64 {
                let xs: Vec<i64> = (0..4).map(|j| lo(sx) + (i * 7 + j * 13) % 64).collect();
                let ys: Vec<i64> = (0..4).map(|j| lo(sy) + (i * 11 + j * 5 + 3) % 64).collect();
                let inp = [
                    Tensor::new(vec![4], xs).unwrap(),
                    Tensor::new(vec![4], ys).unwrap(),
                ];
                assert_eq!(
                    veil_ir::run(&g, &inp).unwrap(),
                    veil_ir::run(&g0, &inp).unwrap()
                );
            }
        }
    }

    #[test]
    fn per_element_constants_give_tlu_multi() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[3], IntType::unsigned(4)).unwrap();
        let d = b.constant(&[3], &[2, 3, 2]).unwrap();
        let r = b.binary(x, d, BinOp::Mod).unwrap();
        b.output("r", r).unwrap();
        let mut g = b.finish().unwrap();
        run_pass(&mut g);
        g.dce();
        assert_eq!(count(&g, |o| matches!(o, Op::TluMulti { .. })), 1);
        let out = veil_ir::run(&g, &[Tensor::new(vec![3], vec![7, 7, 8]).unwrap()]).unwrap();
        assert_eq!(out[0].data, vec![1, 1, 0]);
    }

    #[test]
    fn clear_condition_is_levelled_and_constants_fold() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], IntType::unsigned(3)).unwrap();
        let c = b.constant(&[2], &[0, 5]).unwrap();
        let k = b.constant_scalar(7).unwrap();
        let kk = b.floor_div(k, 2).unwrap();
        let w = b.where_(c, x, kk).unwrap();
        b.output("w", w).unwrap();
        let mut g = b.finish().unwrap();
        let s = run_pass(&mut g);
        assert_eq!(s.counters["levelled_where"], 1);
        assert_eq!(s.counters["folded"], 1);
        g.dce();
        assert_eq!(count(&g, |o| o.needs_pbs(1)), 0);
        let out = veil_ir::run(&g, &[Tensor::new(vec![2], vec![6, 6]).unwrap()]).unwrap();
        assert_eq!(out[0].data, vec![3, 6]);
    }
}
