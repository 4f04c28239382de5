//! Translation between a tensor-level [`Graph`] and the e-graph, and back from an extraction.

use super::analysis::{value, OpaqueInfo, VeilAnalysis, VeilEGraph};
use super::extract::Choice;
use super::lang::{Pred, VeilLang};
use super::table::FnTable;
use super::RewriteError;
use egg::Id;
use std::collections::{HashMap, HashSet};
use veil_ir::infer::ValueRanges;
use veil_ir::{Graph, Level, Op, TensorType, ValueId, Visibility};

/// Largest operand width (bits) of an emitted `tlu` (its table has `2^bits` entries).
pub const MAX_EMITTED_TLU_BITS: u8 = 20;

/// A graph loaded into an e-graph.
pub struct Loaded {
    /// The e-graph (not yet rebuilt).
    pub egraph: VeilEGraph,
    /// Class of each input, in input order.
    pub inputs: Vec<Id>,
    /// Class of each output node, in output order.
    pub outputs: Vec<Id>,
    /// Class of every graph value.
    pub classes: HashMap<ValueId, Id>,
}

/// Loads a tensor-level graph. Ranges from a calibration (if given) tighten the declared ones.
pub fn to_egraph(g: &Graph, ranges: Option<&ValueRanges>) -> Result<Loaded, RewriteError> {
    if g.level != Level::Tensor {
        return Err(RewriteError::NotTensorLevel);
    }
    let order = g
        .topo_order()
        .map_err(|cycle| RewriteError::Cyclic(cycle.len()))?;
    let numbers = g.value_numbers();
    let mut analysis = VeilAnalysis::default();
    analysis.graph_tables = g.tables.clone();
    let mut eg = VeilEGraph::new(analysis);
    let mut classes: HashMap<ValueId, Id> = HashMap::new();
    for v in order {
        let node = g.node(v);
        let kids: Vec<Id> = g.operands(v).iter().map(|o| classes[o]).collect();
        let bad = |what: &str| RewriteError::BadNode {
            value: format!("%{}", numbers.get(&v).copied().unwrap_or(v.index())),
            what: what.to_string(),
        };
        let k = |i: usize| kids.get(i).copied().ok_or_else(|| bad("missing operand"));
        let en = match &node.op {
            Op::Add => VeilLang::Add([k(0)?, k(1)?]),
            Op::Sub => VeilLang::Sub([k(0)?, k(1)?]),
            Op::Neg => VeilLang::Neg([k(0)?]),
            Op::Mul => VeilLang::Mul([k(0)?, k(1)?]),
            Op::Min => VeilLang::Min([k(0)?, k(1)?]),
            Op::Max => VeilLang::Max([k(0)?, k(1)?]),
            Op::Relu => VeilLang::Relu([k(0)?]),
            Op::Abs => VeilLang::Abs([k(0)?]),
            Op::Cmp(p) => {
                let p = eg.add(VeilLang::Pred(Pred(*p)));
                VeilLang::Cmp([p, k(0)?, k(1)?])
            }
            // an approximate round stays opaque: folding it into a lookup would widen the
            // lookup to the operand's full width
            Op::Round {
                lsbs,
                approx: false,
                rescale: false,
            } => {
                let n = eg.add(VeilLang::Num(*lsbs as i64));
                VeilLang::Round([n, k(0)?])
            }
            Op::Clip { lo, hi } => {
                let l = eg.add(VeilLang::Num(*lo));
                let h = eg.add(VeilLang::Num(*hi));
                VeilLang::Clip([l, h, k(0)?])
            }
            Op::Tlu { table } => {
                let operand = g.operands(v)[0];
                let t = g
                    .table(*table)
                    .and_then(|t| FnTable::from_graph(t, g.ty(operand).int))
                    .ok_or_else(|| bad("table id out of the pool or empty table"))?;
                let tr = eg.analysis.add_table(t);
                let tl = eg.add(VeilLang::Table(tr));
                VeilLang::Tlu([tl, k(0)?])
            }
            Op::Const { value } => {
                let c = g
                    .constant(*value)
                    .ok_or_else(|| bad("constant id out of the pool"))?;
                VeilLang::Const(eg.analysis.add_const(c.clone()))
            }
            Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => return Err(RewriteError::NotTensorLevel),
            // ops the rules do not rewrite: opaque nodes with their declared type (the
            // analysis ranges them by veil-ir's transfer function)
            op @ (Op::Input { .. }
            | Op::Output { .. }
            | Op::Round { .. }
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::TluMulti { .. }
            | Op::Binary(_)
            | Op::Unary(_)
            | Op::Where) => {
                let o = eg.analysis.add_opaque(OpaqueInfo {
                    op: op.clone(),
                    ty: node.ty.clone(),
                });
                let mut ch = vec![eg.add(VeilLang::OpRef(o))];
                ch.extend(kids.iter().copied());
                VeilLang::Opaque(ch.into_boxed_slice())
            }
        };
        let id = eg.add(en);
        // the declared type (and the calibration) are facts about the original value
        if let Some(d) = eg[id].data.as_mut() {
            let declared = veil_ir::Interval::of_type(node.ty.int);
            let mut r = d.range.intersect(declared).unwrap_or(declared);
            if let Some(c) = ranges.and_then(|rs| rs.get(v)) {
                r = r.intersect(c).unwrap_or(r);
            }
            d.range = r;
            if !d.original {
                d.int = node.ty.int;
                d.original = true;
            }
        }
        classes.insert(v, id);
    }
    let inputs = g.inputs().iter().map(|v| classes[v]).collect();
    let outputs = g.outputs().iter().map(|v| classes[v]).collect();
    Ok(Loaded {
        egraph: eg,
        inputs,
        outputs,
        classes,
    })
}

struct Emitter<'a> {
    eg: &'a VeilEGraph,
    choice: &'a Choice,
    out: Graph,
    memo: HashMap<Id, ValueId>,
    /// Index of `out`'s table pool (first occurrence of each table), so that adding a table
    /// does not scan the pool.
    tables: HashMap<veil_ir::Table, veil_ir::TableId>,
    /// Index of `out`'s constant pool, likewise.
    consts: HashMap<veil_ir::Constant, veil_ir::ConstId>,
}

impl Emitter<'_> {
    fn ty(&self, c: Id) -> Result<TensorType, RewriteError> {
        let d = value(self.eg, c).ok_or(RewriteError::Extraction("attribute used as value"))?;
        Ok(TensorType {
            vis: if d.encrypted {
                Visibility::Encrypted
            } else {
                Visibility::Clear
            },
            int: d.int,
            shape: d.shape.clone(),
            encoding: None,
        })
    }

    fn num(&self, c: Id) -> Result<i64, RewriteError> {
        match self.choice.get(&self.eg.find(c)) {
            Some(VeilLang::Num(k)) => Ok(*k),
            _ => super::analysis::num_of(self.eg, c)
                .ok_or(RewriteError::Extraction("number leaf expected")),
        }
    }

    /// `Graph::add_table` without the scan of the pool.
    fn add_table(&mut self, t: veil_ir::Table) -> veil_ir::TableId {
        if let Some(&id) = self.tables.get(&t) {
            return id;
        }
        let id = veil_ir::TableId(self.out.tables.len() as u32);
        self.out.tables.push(t.clone());
        self.tables.insert(t, id);
        id
    }

    /// `Graph::add_const` without the scan of the pool.
    fn add_const(&mut self, c: veil_ir::Constant) -> veil_ir::ConstId {
        if let Some(&id) = self.consts.get(&c) {
            return id;
        }
        let id = veil_ir::ConstId(self.out.consts.len() as u32);
        self.out.consts.push(c.clone());
        self.consts.insert(c, id);
        id
    }

    /// Emits class `c` and everything its choice needs, children first and in operand order
    /// (an iterative depth-first search: long programs do not exhaust the stack).
    fn emit(&mut self, c: Id) -> Result<ValueId, RewriteError> {
        let c = self.eg.find(c);
        let mut on_stack: HashSet<Id> = HashSet::new();
        let mut stack: Vec<(Id, bool)> = vec![(c, false)];
        while let Some((c, exiting)) = stack.pop() {
            if exiting {
                on_stack.remove(&c);
                let v = self.emit_node(c)?;
                self.memo.insert(c, v);
                continue;
            }
            if self.memo.contains_key(&c) {
                continue;
            }
            if !on_stack.insert(c) {
                return Err(RewriteError::Extraction("cyclic choice"));
            }
            let n = self
                .choice
                .get(&c)
                .ok_or(RewriteError::Extraction("class without a choice"))?;
            stack.push((c, true));
            let kids = match n {
                VeilLang::Table(_) | VeilLang::OpRef(_) | VeilLang::Pred(_) | VeilLang::Num(_) => {
                    Vec::new()
                }
                n => super::analysis::value_children(n),
            };
            for k in kids.into_iter().rev() {
                let k = self.eg.find(k);
                if on_stack.contains(&k) {
                    return Err(RewriteError::Extraction("cyclic choice"));
                }
                if !self.memo.contains_key(&k) {
                    stack.push((k, false));
                }
            }
        }
        Ok(self.memo[&c])
    }

    /// Emits the chosen node of class `c`, whose value children are emitted.
    fn emit_node(&mut self, c: Id) -> Result<ValueId, RewriteError> {
        let n = self
            .choice
            .get(&c)
            .ok_or(RewriteError::Extraction("class without a choice"))?
            .clone();
        let ty = self.ty(c)?;
        let child = |em: &Self, k: &Id| -> Result<ValueId, RewriteError> {
            em.memo
                .get(&em.eg.find(*k))
                .copied()
                .ok_or(RewriteError::Extraction("operand not emitted"))
        };
        let v = match &n {
            VeilLang::Const(k) => {
                let kc = self.eg.analysis.consts[k.0 as usize].clone();
                let id = self.add_const(kc);
                let mut t = ty;
                t.vis = Visibility::Clear;
                self.out.add_node(Op::Const { value: id }, t, &[])
            }
            VeilLang::Tlu([t, x]) => {
                let xv = child(self, x)?;
                let xint = self.out.ty(xv).int;
                if xint.bits > MAX_EMITTED_TLU_BITS {
                    return Err(RewriteError::TableTooLarge(xint.bits));
                }
                let tref = super::analysis::table_of(self.eg, *t)
                    .ok_or(RewriteError::Extraction("table leaf expected"))?;
                let table = self.eg.analysis.tables[tref.0 as usize].to_graph(xint, ty.int);
                let tid = self.add_table(table);
                self.out.add_node(Op::Tlu { table: tid }, ty, &[xv])
            }
            VeilLang::Round([k, x]) => {
                let lsbs = u8::try_from(self.num(*k)?)
                    .map_err(|_| RewriteError::Extraction("round lsbs out of range"))?;
                let xv = child(self, x)?;
                self.out.add_node(
                    Op::Round {
                        lsbs,
                        approx: false,
                        rescale: false,
                    },
                    ty,
                    &[xv],
                )
            }
            VeilLang::Clip([lo, hi, x]) => {
                let (lo, hi) = (self.num(*lo)?, self.num(*hi)?);
                let xv = child(self, x)?;
                self.out.add_node(Op::Clip { lo, hi }, ty, &[xv])
            }
            VeilLang::Cmp([p, a, b]) => {
                let p = super::analysis::pred_of(self.eg, *p)
                    .ok_or(RewriteError::Extraction("predicate leaf expected"))?;
                let (av, bv) = (child(self, a)?, child(self, b)?);
                self.out.add_node(Op::Cmp(p), ty, &[av, bv])
            }
            VeilLang::Opaque(ch) => {
                let o = self.eg[ch[0]]
                    .nodes
                    .iter()
                    .find_map(|x| match x {
                        VeilLang::OpRef(o) => Some(*o),
                        _ => None,
                    })
                    .ok_or(RewriteError::Extraction("opaque op leaf expected"))?;
                let info = self.eg.analysis.opaque[o.0 as usize].clone();
                let kids = ch[1..]
                    .iter()
                    .map(|k| child(self, k))
                    .collect::<Result<Vec<_>, _>>()?;
                let ty = match info.op {
                    // an output has its operand's type
                    Op::Output { .. } => self.out.ty(kids[0]).clone(),
                    _ => info.ty.clone(),
                };
                self.out.add_node(info.op.clone(), ty, &kids)
            }
            VeilLang::Table(_) | VeilLang::OpRef(_) | VeilLang::Pred(_) | VeilLang::Num(_) => {
                return Err(RewriteError::Extraction("attribute used as value"));
            }
            other => {
                let op = super::analysis::node_op(other, self.eg)
                    .ok_or(RewriteError::Extraction("node without an op"))?;
                let kids = super::analysis::value_children(other)
                    .iter()
                    .map(|k| child(self, k))
                    .collect::<Result<Vec<_>, _>>()?;
                self.out.add_node(op, ty, &kids)
            }
        };
        Ok(v)
    }
}

/// Makes every input class of `choice` choose the input node itself (how
/// [`from_choice`] emits it).
pub fn pin_inputs(loaded: &Loaded, choice: &mut Choice) {
    let eg = &loaded.egraph;
    for &i in &loaded.inputs {
        let c = eg.find(i);
        let input_node = eg[c].nodes.iter().find(|n| {
            matches!(n, VeilLang::Opaque(_))
                && matches!(super::analysis::node_op(n, eg), Some(Op::Input { .. }))
        });
        if let Some(n) = input_node {
            choice.insert(c, n.clone());
        }
    }
}

/// Builds the graph of an extraction: inputs first (in order, each emitted as its original
/// input node), then every output in order. Pools start from `template`'s (opaque ops refer
/// to them) and are compacted at the end.
pub fn from_choice(
    loaded: &Loaded,
    choice: &Choice,
    template: &Graph,
) -> Result<Graph, RewriteError> {
    let eg = &loaded.egraph;
    let mut choice = choice.clone();
    pin_inputs(loaded, &mut choice);
    let mut out = Graph::new();
    out.tables = template.tables.clone();
    out.consts = template.consts.clone();
    out.params = template.params.clone();
    out.level = template.level;
    let mut tables = HashMap::new();
    for (i, t) in out.tables.iter().enumerate() {
        tables
            .entry(t.clone())
            .or_insert(veil_ir::TableId(i as u32));
    }
    let mut consts = HashMap::new();
    for (i, c) in out.consts.iter().enumerate() {
        consts
            .entry(c.clone())
            .or_insert(veil_ir::ConstId(i as u32));
    }
    let mut em = Emitter {
        eg,
        choice: &choice,
        out,
        memo: HashMap::new(),
        tables,
        consts,
    };
    for &i in &loaded.inputs {
        em.emit(i)?;
    }
    for &o in &loaded.outputs {
        em.emit(o)?;
    }
    let mut out = em.out;
    out.dce();
    Ok(out)
}
