//! The e-class analysis: per class, the value's visibility, shape, type, range, known zero low
//! bits and (for clear constants) its value; the side pools that leaves point into; constant
//! folding of the explicit ops.

use super::lang::{ConstRef, OpaqueRef, TableRef, VeilLang};
use super::table::{FnTable, Unary};
use crate::lower::common_align;
use egg::{Analysis, DidMerge, EGraph, Id};
use std::collections::HashMap;
use veil_ir::infer::{transfer, OperandFacts};
use veil_ir::tensor::zip_broadcast;
use veil_ir::types::broadcast_shapes;
use veil_ir::Interval;
use veil_ir::{CmpOp, Constant, IntType, Op, TensorType};

/// The e-graph type used by the rewrite engine.
pub type VeilEGraph = EGraph<VeilLang, VeilAnalysis>;

/// Largest constant (in elements) that constant folding materializes.
pub const MAX_FOLD_ELEMENTS: usize = 1 << 16;

/// Facts about the value of an e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueData {
    /// Whether the value is encrypted.
    pub encrypted: bool,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type: the declared one for classes of the input graph, else the narrowest
    /// type holding `range`.
    pub int: IntType,
    /// Every element lies in this range.
    pub range: Interval,
    /// Number of low bits known to be zero in every element.
    pub align: u8,
    /// Its value, when the class is a clear constant.
    pub konst: Option<ConstRef>,
    /// The common value of all elements of a constant, if there is one.
    pub splat: Option<i64>,
    /// Whether a node of the input graph is in the class (its declared type then wins).
    pub original: bool,
}

/// Analysis data: `None` for attribute leaves (tables, predicates, numbers, op references).
pub type ClassData = Option<ValueData>;

/// An opaque op of the input graph.
#[derive(Clone, Debug, PartialEq)]
pub struct OpaqueInfo {
    /// The original op.
    pub op: Op,
    /// Its declared result type.
    pub ty: TensorType,
}

/// Side pools and options of the analysis.
#[derive(Clone, Debug, Default)]
pub struct VeilAnalysis {
    /// Tables referenced by [`TableRef`] leaves.
    pub tables: Vec<FnTable>,
    table_ids: HashMap<FnTable, u32>,
    /// Constants referenced by [`ConstRef`] leaves.
    pub consts: Vec<Constant>,
    const_ids: HashMap<Constant, u32>,
    /// Opaque ops referenced by [`OpaqueRef`] leaves.
    pub opaque: Vec<OpaqueInfo>,
    opaque_ids: HashMap<(Op, TensorType), u32>,
    /// Graph tables of the input graph (for the ranges of opaque `tlu.multi`).
    pub graph_tables: Vec<veil_ir::Table>,
    /// Rule applications already done: `(rule, matched classes)`; appliers skip them.
    pub applied: std::collections::HashSet<(egg::Symbol, Vec<Id>)>,
    /// Entries of every table interned so far (new or not): the work of the rules, which
    /// tabulate a function per application, bounded by [`crate::rewrite::RewriteConfig`].
    pub table_work: usize,
}

impl VeilAnalysis {
    /// Interns a table.
    pub fn add_table(&mut self, t: FnTable) -> TableRef {
        self.table_work += t.entries.len();
        if let Some(&i) = self.table_ids.get(&t) {
            return TableRef(i);
        }
        let i = self.tables.len() as u32;
        self.table_ids.insert(t.clone(), i);
        self.tables.push(t);
        TableRef(i)
    }

    /// Interns a constant.
    pub fn add_const(&mut self, c: Constant) -> ConstRef {
        if let Some(&i) = self.const_ids.get(&c) {
            return ConstRef(i);
        }
        let i = self.consts.len() as u32;
        self.const_ids.insert(c.clone(), i);
        self.consts.push(c);
        ConstRef(i)
    }

    /// Interns an opaque op (identical ops and types share a reference, so that egg's
    /// hash-consing merges identical opaque computations: CSE).
    pub fn add_opaque(&mut self, info: OpaqueInfo) -> OpaqueRef {
        let key = (info.op.clone(), info.ty.clone());
        if let Some(&i) = self.opaque_ids.get(&key) {
            return OpaqueRef(i);
        }
        let i = self.opaque.len() as u32;
        self.opaque_ids.insert(key, i);
        self.opaque.push(info);
        OpaqueRef(i)
    }
}

/// The value facts of class `id` (`None` for attribute leaves).
pub fn value(eg: &VeilEGraph, id: Id) -> Option<&ValueData> {
    eg[id].data.as_ref()
}

/// The table a table-leaf class holds.
pub fn table_of(eg: &VeilEGraph, id: Id) -> Option<TableRef> {
    eg[id].nodes.iter().find_map(|n| match n {
        VeilLang::Table(t) => Some(*t),
        _ => None,
    })
}

/// The number a number-leaf class holds.
pub fn num_of(eg: &VeilEGraph, id: Id) -> Option<i64> {
    eg[id].nodes.iter().find_map(|n| match n {
        VeilLang::Num(k) => Some(*k),
        _ => None,
    })
}

/// The predicate a predicate-leaf class holds.
pub fn pred_of(eg: &VeilEGraph, id: Id) -> Option<CmpOp> {
    eg[id].nodes.iter().find_map(|n| match n {
        VeilLang::Pred(p) => Some(p.0),
        _ => None,
    })
}

fn fitting(r: Interval) -> IntType {
    r.int_type().unwrap_or(IntType::signed(64))
}

/// The scalar univariate function of an explicit elementwise op with clear constant operands,
/// used by constant folding.
fn fold_binary(n: &VeilLang, eg: &VeilEGraph, a: &Constant, b: &Constant) -> Option<Constant> {
    let f: fn(i128, i128, Option<CmpOp>) -> i128 = match n {
        VeilLang::Add(_) => |a, b, _| a + b,
        VeilLang::Sub(_) => |a, b, _| a - b,
        VeilLang::Mul(_) => |a, b, _| a.saturating_mul(b),
        VeilLang::Min(_) => |a, b, _| a.min(b),
        VeilLang::Max(_) => |a, b, _| a.max(b),
        VeilLang::Cmp(_) => |a, b, p| p.map(|p| p.eval(a, b) as i128).unwrap_or(0),
        _ => return None,
    };
    let p = match n {
        VeilLang::Cmp([p, _, _]) => Some(pred_of(eg, *p)?),
        _ => None,
    };
    let ta = veil_ir::Tensor::new(a.shape.clone(), a.values.clone()).ok()?;
    let tb = veil_ir::Tensor::new(b.shape.clone(), b.values.clone()).ok()?;
    let t = zip_broadcast(&ta, &tb, |x, y| f(*x as i128, *y as i128, p)).ok()?;
    Some(Constant {
        shape: t.shape,
        values: t
            .data
            .into_iter()
            .map(i64::try_from)
            .collect::<Result<_, _>>()
            .ok()?,
    })
}

fn fold(eg: &mut VeilEGraph, n: &VeilLang) -> Option<ConstRef> {
    let konst = |id: &Id| {
        value(eg, *id)
            .and_then(|d| d.konst)
            .map(|c| eg.analysis.consts[c.0 as usize].clone())
    };
    let c = match n {
        VeilLang::Add([a, b])
        | VeilLang::Sub([a, b])
        | VeilLang::Mul([a, b])
        | VeilLang::Min([a, b])
        | VeilLang::Max([a, b])
        | VeilLang::Cmp([_, a, b]) => {
            let (ca, cb) = (konst(a)?, konst(b)?);
            if ca.values.len().max(cb.values.len()) > MAX_FOLD_ELEMENTS {
                return None;
            }
            fold_binary(n, eg, &ca, &cb)?
        }
        VeilLang::Neg([x])
        | VeilLang::Relu([x])
        | VeilLang::Abs([x])
        | VeilLang::Tlu([_, x])
        | VeilLang::Round([_, x])
        | VeilLang::Clip([_, _, x]) => {
            let cx = konst(x)?;
            let table;
            let u = match n {
                VeilLang::Neg(_) => Unary::Neg,
                VeilLang::Relu(_) => Unary::Relu,
                VeilLang::Abs(_) => Unary::Abs,
                VeilLang::Tlu([t, _]) => {
                    table = eg.analysis.tables[table_of(eg, *t)?.0 as usize].clone();
                    Unary::Table(&table)
                }
                VeilLang::Round([k, _]) => Unary::Round(u8::try_from(num_of(eg, *k)?).ok()?),
                VeilLang::Clip([lo, hi, _]) => {
                    Unary::Clip(num_of(eg, *lo)? as i128, num_of(eg, *hi)? as i128)
                }
                _ => return None,
            };
            Constant {
                shape: cx.shape.clone(),
                values: cx
                    .values
                    .iter()
                    .map(|&v| i64::try_from(u.eval(v as i128)).ok())
                    .collect::<Option<_>>()?,
            }
        }
        _ => return None,
    };
    Some(eg.analysis.add_const(c))
}

fn op_of(n: &VeilLang, eg: &VeilEGraph) -> Option<Op> {
    Some(match n {
        VeilLang::Add(_) => Op::Add,
        VeilLang::Sub(_) => Op::Sub,
        VeilLang::Neg(_) => Op::Neg,
        VeilLang::Mul(_) => Op::Mul,
        VeilLang::Min(_) => Op::Min,
        VeilLang::Max(_) => Op::Max,
        VeilLang::Relu(_) => Op::Relu,
        VeilLang::Abs(_) => Op::Abs,
        VeilLang::Cmp([p, _, _]) => Op::Cmp(pred_of(eg, *p)?),
        VeilLang::Round([k, _]) => Op::Round {
            lsbs: u8::try_from(num_of(eg, *k)?).ok()?,
            approx: false,
            rescale: false,
        },
        VeilLang::Clip([lo, hi, _]) => Op::Clip {
            lo: num_of(eg, *lo)?,
            hi: num_of(eg, *hi)?,
        },
        _ => return None,
    })
}

/// The veil op an e-node stands for (opaque nodes: the original op; tables: a placeholder
/// table id). `None` for leaves.
pub fn node_op(n: &VeilLang, eg: &VeilEGraph) -> Option<Op> {
    match n {
        VeilLang::Tlu(_) => Some(Op::Tlu {
            table: veil_ir::TableId(0),
        }),
        VeilLang::Opaque(ch) => {
            let o = eg[ch[0]].nodes.iter().find_map(|x| match x {
                VeilLang::OpRef(o) => Some(*o),
                _ => None,
            })?;
            Some(eg.analysis.opaque[o.0 as usize].op.clone())
        }
        VeilLang::Const(_) => Some(Op::Const {
            value: veil_ir::ConstId(0),
        }),
        _ => op_of(n, eg),
    }
}

/// Value children of a node (attribute leaves skipped).
pub fn value_children(n: &VeilLang) -> Vec<Id> {
    match n {
        VeilLang::Tlu([_, x]) | VeilLang::Round([_, x]) | VeilLang::Clip([_, _, x]) => vec![*x],
        VeilLang::Cmp([_, a, b]) => vec![*a, *b],
        VeilLang::Opaque(ch) => ch[1..].to_vec(),
        _ => egg::Language::children(n).to_vec(),
    }
}

impl Analysis<VeilLang> for VeilAnalysis {
    type Data = ClassData;

    fn make(eg: &mut VeilEGraph, n: &VeilLang, _id: Id) -> ClassData {
        match n {
            VeilLang::Table(_) | VeilLang::OpRef(_) | VeilLang::Pred(_) | VeilLang::Num(_) => None,
            VeilLang::Const(c) => {
                let k = &eg.analysis.consts[c.0 as usize];
                let range = Interval::of_values(k.values.iter().map(|&v| v as i128))
                    .unwrap_or(Interval::point(0));
                let first = k.values.first().copied();
                Some(ValueData {
                    encrypted: false,
                    shape: k.shape.clone(),
                    int: fitting(range),
                    range,
                    align: common_align(k.values.iter().map(|&v| v as i128)),
                    konst: Some(*c),
                    splat: first.filter(|f| k.values.iter().all(|v| v == f)),
                    original: false,
                })
            }
            VeilLang::Opaque(ch) => {
                let o = eg[ch[0]].nodes.iter().find_map(|x| match x {
                    VeilLang::OpRef(o) => Some(*o),
                    _ => None,
                })?;
                let info = eg.analysis.opaque[o.0 as usize].clone();
                let declared = Interval::of_type(info.ty.int);
                let operands: Vec<ValueData> = ch[1..]
                    .iter()
                    .filter_map(|c| value(eg, *c).cloned())
                    .collect();
                let infos: Vec<OperandFacts> = operands
                    .iter()
                    .map(|d| OperandFacts {
                        range: d.range,
                        int: d.int,
                        shape: &d.shape,
                        constant: d.konst.map(|c| &eg.analysis.consts[c.0 as usize]),
                    })
                    .collect();
                let computed = transfer(&info.op, &infos, &eg.analysis.graph_tables).ok();
                let range = computed
                    .and_then(|c| c.intersect(declared))
                    .unwrap_or(declared);
                let align = match info.op {
                    Op::Reshape
                    | Op::Transpose { .. }
                    | Op::Broadcast
                    | Op::Slice { .. }
                    | Op::Output { .. } => operands.first().map(|d| d.align).unwrap_or(0),
                    Op::Sum { .. } | Op::Concat { .. } => {
                        operands.iter().map(|d| d.align).min().unwrap_or(0)
                    }
                    // nothing known of the low bits (TFHE-level ops never reach the e-graph)
                    Op::Input { .. }
                    | Op::Const { .. }
                    | Op::Add
                    | Op::Sub
                    | Op::Neg
                    | Op::Mul
                    | Op::MatMul
                    | Op::Conv2d(_)
                    | Op::Tlu { .. }
                    | Op::TluMulti { .. }
                    | Op::Cmp(_)
                    | Op::Min
                    | Op::Max
                    | Op::Relu
                    | Op::Abs
                    | Op::Round { .. }
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
                };
                Some(ValueData {
                    encrypted: info.ty.is_encrypted(),
                    shape: info.ty.shape.clone(),
                    int: info.ty.int,
                    range,
                    align,
                    konst: None,
                    splat: None,
                    original: true,
                })
            }
            VeilLang::Tlu([t, x]) => {
                let xd = value(eg, *x)?.clone();
                let tab = &eg.analysis.tables[table_of(eg, *t)?.0 as usize];
                let range = tab.image(xd.range);
                let first = (xd.range.lo - tab.lo).clamp(0, tab.entries.len() as i128 - 1);
                let last = (xd.range.hi - tab.lo).clamp(first, tab.entries.len() as i128 - 1);
                let align = common_align(
                    tab.entries[first as usize..=last as usize]
                        .iter()
                        .map(|&v| v as i128),
                );
                let konst = fold(eg, n);
                Some(ValueData {
                    encrypted: xd.encrypted,
                    shape: xd.shape,
                    int: fitting(range),
                    range,
                    align,
                    konst,
                    splat: None,
                    original: false,
                })
            }
            _ => {
                let op = op_of(n, eg)?;
                let kids: Vec<ValueData> = value_children(n)
                    .iter()
                    .filter_map(|c| value(eg, *c).cloned())
                    .collect();
                let infos: Vec<OperandFacts> = kids
                    .iter()
                    .map(|d| OperandFacts {
                        range: d.range,
                        int: d.int,
                        shape: &d.shape,
                        constant: None,
                    })
                    .collect();
                // a result too wide for `i128` can take any value
                let range =
                    transfer(&op, &infos, &[]).unwrap_or(Interval::new(i128::MIN, i128::MAX));
                let shape = kids
                    .iter()
                    .try_fold(Vec::new(), |s, d| broadcast_shapes(&s, &d.shape))
                    .unwrap_or_else(|| kids.first().map(|d| d.shape.clone()).unwrap_or_default());
                let align = match &op {
                    Op::Add | Op::Sub | Op::Min | Op::Max => {
                        kids.iter().map(|d| d.align).min().unwrap_or(0)
                    }
                    Op::Neg | Op::Relu | Op::Abs => kids[0].align,
                    Op::Mul => kids.iter().map(|d| d.align).sum::<u8>().min(62),
                    Op::Round {
                        lsbs,
                        rescale: false,
                        ..
                    } => (*lsbs).max(kids[0].align),
                    // nothing known of the low bits
                    Op::Round { rescale: true, .. }
                    | Op::Input { .. }
                    | Op::Output { .. }
                    | Op::Const { .. }
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
                };
                let konst = fold(eg, n);
                let splat = konst.and_then(|c| {
                    let k = &eg.analysis.consts[c.0 as usize];
                    let f = k.values.first().copied();
                    f.filter(|f| k.values.iter().all(|v| v == f))
                });
                Some(ValueData {
                    encrypted: kids.iter().any(|d| d.encrypted),
                    shape,
                    int: fitting(range),
                    range,
                    align,
                    konst,
                    splat,
                    original: false,
                })
            }
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let (a, b) = match (a.as_mut(), b) {
            (Some(a), Some(b)) => (a, b),
            (None, Some(_)) => return DidMerge(false, true),
            (Some(_), None) | (None, None) => return DidMerge(false, false),
        };
        let before = a.clone();
        if let Some(r) = a.range.intersect(b.range) {
            a.range = r;
        }
        a.int = match (a.original, b.original) {
            (true, _) => a.int,
            (false, true) => b.int,
            (false, false) if b.int.bits < a.int.bits => b.int,
            _ => a.int,
        };
        a.original |= b.original;
        a.align = a.align.max(b.align);
        a.encrypted &= b.encrypted;
        a.konst = a.konst.or(b.konst);
        a.splat = a.splat.or(b.splat);
        DidMerge(*a != before, *a != b)
    }

    fn modify(eg: &mut VeilEGraph, id: Id) {
        if let Some(c) = value(eg, id).and_then(|d| d.konst) {
            let has_const = eg[id].nodes.iter().any(|n| matches!(n, VeilLang::Const(_)));
            if !has_const {
                let k = eg.add(VeilLang::Const(c));
                eg.union(id, k);
            }
        }
    }
}
