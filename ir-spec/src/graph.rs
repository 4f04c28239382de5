//! The dataflow graph: an arena of nodes (one [`Op`] and its result [`TensorType`] each) on a
//! petgraph `StableDiGraph`, addressed by typed [`ValueId`] handles, plus the pools that nodes
//! reference: tables, constants and (TFHE level) parameter sets.
//!
//! Edges run from operand to user; an edge's weight is the operand position, so operand order
//! is explicit. Handles stay valid when other nodes are removed.

use crate::ops::{ConstId, Constant, Op, Table, TableId};
use crate::params::ParamSet;
use crate::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Handle of a value (the result of one node) in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(NodeIndex<u32>);

impl ValueId {
    /// A stable small integer for this handle, for dense side tables and debugging output.
    /// Not the printed `%N` number (the printer renumbers in topological order).
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0.index())
    }
}

/// Which level of the IR a graph is at (see `SPEC.md`, "Levels").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Level {
    /// High-level tensor program as the frontend produces it: no encodings, no TFHE ops.
    #[default]
    Tensor,
    /// Lowered program the runtime executes: only levelled ops, `keyswitch` and `pbs`; every
    /// encrypted value has an encoding; parameter sets are given.
    Tfhe,
}

/// One node: an operation and the type of the value it produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Type of the result.
    pub ty: TensorType,
}

/// A veil program: nodes and pools.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    g: StableDiGraph<Node, u32>,
    /// Table pool; nodes refer to tables by [`TableId`]. Each distinct table is stored once.
    pub tables: Vec<Table>,
    /// Constant pool; `const` nodes refer to it by [`ConstId`].
    pub consts: Vec<Constant>,
    /// Parameter sets `@p0, @p1, ...` (TFHE level only; empty at the tensor level).
    pub params: Vec<ParamSet>,
    /// IR level.
    pub level: Level,
}

impl Graph {
    /// An empty tensor-level graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// Adds a node with the given operands (in order). No checking: use the builder or run the
    /// verifier afterwards.
    pub fn add_node(&mut self, op: Op, ty: TensorType, operands: &[ValueId]) -> ValueId {
        let id = self.g.add_node(Node { op, ty });
        for (pos, o) in operands.iter().enumerate() {
            self.g.add_edge(o.0, id, pos as u32);
        }
        ValueId(id)
    }

    /// Whether the handle names a live node of this graph.
    pub fn contains(&self, v: ValueId) -> bool {
        self.g.contains_node(v.0)
    }

    /// The node of a value.
    ///
    /// # Panics
    /// If `v` is not a live node of this graph (a handle from another graph or a removed node).
    pub fn node(&self, v: ValueId) -> &Node {
        &self.g[v.0]
    }

    /// Mutable access to a node (changing its op or type; operands via [`Graph::set_operands`]).
    pub fn node_mut(&mut self, v: ValueId) -> &mut Node {
        &mut self.g[v.0]
    }

    /// The operation of a value.
    pub fn op(&self, v: ValueId) -> &Op {
        &self.g[v.0].op
    }

    /// The type of a value.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.g[v.0].ty
    }

    /// Operands of `v`, in order.
    pub fn operands(&self, v: ValueId) -> Vec<ValueId> {
        let mut e: Vec<(u32, ValueId)> = self
            .g
            .edges_directed(v.0, Direction::Incoming)
            .map(|e| (*e.weight(), ValueId(e.source())))
            .collect();
        e.sort();
        e.into_iter().map(|(_, v)| v).collect()
    }

    /// Replaces the operands of `v`.
    pub fn set_operands(&mut self, v: ValueId, operands: &[ValueId]) {
        let old: Vec<_> = self
            .g
            .edges_directed(v.0, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        for (pos, o) in operands.iter().enumerate() {
            self.g.add_edge(o.0, v.0, pos as u32);
        }
    }

    /// Distinct users of `v` (nodes that take it as an operand), sorted.
    pub fn users(&self, v: ValueId) -> Vec<ValueId> {
        let s: BTreeSet<ValueId> = self
            .g
            .edges_directed(v.0, Direction::Outgoing)
            .map(|e| ValueId(e.target()))
            .collect();
        s.into_iter().collect()
    }

    /// Makes every user of `old` use `new` instead (operand positions kept).
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        let uses: Vec<_> = self
            .g
            .edges_directed(old.0, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (e, target, pos) in uses {
            self.g.remove_edge(e);
            self.g.add_edge(new.0, target, pos);
        }
    }

    /// Removes a node and its edges. Users of it become malformed: redirect them first.
    pub fn remove(&mut self, v: ValueId) {
        self.g.remove_node(v.0);
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// All live values in creation order.
    pub fn values(&self) -> Vec<ValueId> {
        self.g.node_indices().map(ValueId).collect()
    }

    /// Input nodes in declaration (creation) order: input number `k` is `inputs()[k]`.
    pub fn inputs(&self) -> Vec<ValueId> {
        self.values()
            .into_iter()
            .filter(|v| matches!(self.op(*v), Op::Input { .. }))
            .collect()
    }

    /// Output nodes in creation order: output number `k` is `outputs()[k]`.
    pub fn outputs(&self) -> Vec<ValueId> {
        self.values()
            .into_iter()
            .filter(|v| matches!(self.op(*v), Op::Output { .. }))
            .collect()
    }

    /// A deterministic topological order (Kahn's algorithm, smallest creation index first among
    /// ready nodes). Returns the nodes on a cycle as `Err` if the graph is cyclic.
    pub fn topo_order(&self) -> Result<Vec<ValueId>, Vec<ValueId>> {
        let mut indeg: HashMap<NodeIndex<u32>, usize> = HashMap::new();
        for n in self.g.node_indices() {
            indeg.insert(n, self.g.edges_directed(n, Direction::Incoming).count());
        }
        let mut ready: BTreeSet<NodeIndex<u32>> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut order = Vec::with_capacity(self.g.node_count());
        while let Some(n) = ready.pop_first() {
            order.push(ValueId(n));
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("live node");
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target());
                }
            }
        }
        if order.len() == self.g.node_count() {
            Ok(order)
        } else {
            let done: BTreeSet<_> = order.iter().copied().collect();
            Err(self
                .values()
                .into_iter()
                .filter(|v| !done.contains(v))
                .collect())
        }
    }

    /// The printed number `N` of each value (`%N` in the text form): its position in
    /// [`Graph::topo_order`] with `output` nodes skipped (they print without a number). Printer,
    /// parser and verifier messages all use this numbering. Falls back to creation order when
    /// the graph is cyclic.
    pub fn value_numbers(&self) -> HashMap<ValueId, usize> {
        let order = self.topo_order().unwrap_or_else(|_| self.values());
        order
            .into_iter()
            .filter(|v| !matches!(self.op(*v), Op::Output { .. }))
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect()
    }

    /// Adds a table to the pool, reusing an identical existing one.
    pub fn add_table(&mut self, t: Table) -> TableId {
        if let Some(i) = self.tables.iter().position(|x| *x == t) {
            return TableId(i as u32);
        }
        self.tables.push(t);
        TableId(self.tables.len() as u32 - 1)
    }

    /// A table of the pool, if the id is in range.
    pub fn table(&self, id: TableId) -> Option<&Table> {
        self.tables.get(id.0 as usize)
    }

    /// The bootstraps that `v` runs: for a `pbs`, its elements whose table is not constant
    /// ([`Table::is_constant`]; the others are trivial encryptions); for a `wop.pbs`, every
    /// element; else none.
    pub fn bootstraps(&self, v: ValueId) -> u64 {
        match self.op(v) {
            Op::Pbs { .. } => self
                .bootstrapped_elements(v)
                .map_or(0, |b| b.iter().filter(|&&b| b).count() as u64),
            Op::WopPbs { .. } => self.ty(v).numel() as u64,
            _ => 0,
        }
    }

    /// Per element of the `pbs` `v`, whether it is bootstrapped: its table is not constant (a
    /// missing table or map entry counts as bootstrapped). `None` when `v` is no `pbs`.
    fn bootstrapped_elements(&self, v: ValueId) -> Option<Vec<bool>> {
        let Op::Pbs { tables, map } = self.op(v) else {
            return None;
        };
        let live: Vec<bool> = tables
            .iter()
            .map(|t| self.table(*t).is_none_or(|t| !t.is_constant()))
            .collect();
        let of = |t: usize| live.get(t).copied().unwrap_or(true);
        let n = self.ty(v).numel();
        Some(if map.is_empty() {
            vec![of(0); n]
        } else {
            (0..n)
                .map(|j| map.get(j).is_none_or(|&t| of(t as usize)))
                .collect()
        })
    }

    /// Which elements of `v` its users read, when every user is a `pbs` (an element that only
    /// constant tables read is never needed: [`Graph::bootstraps`]); `None` when some user
    /// reads all of `v`. A keyswitch need not compute the others.
    pub fn elements_read(&self, v: ValueId) -> Option<Vec<bool>> {
        let users = self.users(v);
        if users.is_empty() {
            return None;
        }
        let mut read = vec![false; self.ty(v).numel()];
        for u in users {
            let booted = self.bootstrapped_elements(u)?;
            if booted.len() != read.len() {
                return None;
            }
            for (r, b) in read.iter_mut().zip(booted) {
                *r |= b;
            }
        }
        Some(read)
    }

    /// Adds a constant to the pool, reusing an identical existing one.
    pub fn add_const(&mut self, c: Constant) -> ConstId {
        if let Some(i) = self.consts.iter().position(|x| *x == c) {
            return ConstId(i as u32);
        }
        self.consts.push(c);
        ConstId(self.consts.len() as u32 - 1)
    }

    /// A constant of the pool, if the id is in range.
    pub fn constant(&self, id: ConstId) -> Option<&Constant> {
        self.consts.get(id.0 as usize)
    }

    /// Removes nodes that no output depends on, then drops unreferenced tables and constants
    /// (renumbering the survivors in order of first use). Returns how many nodes were removed.
    pub fn dce(&mut self) -> usize {
        let mut live: BTreeSet<ValueId> = BTreeSet::new();
        let mut stack: Vec<ValueId> = self
            .values()
            .into_iter()
            .filter(|v| matches!(self.op(*v), Op::Output { .. } | Op::Input { .. }))
            .collect();
        while let Some(v) = stack.pop() {
            if live.insert(v) {
                stack.extend(self.operands(v));
            }
        }
        let dead: Vec<_> = self
            .values()
            .into_iter()
            .filter(|v| !live.contains(v))
            .collect();
        for v in &dead {
            self.remove(*v);
        }
        self.compact_pools();
        dead.len()
    }

    /// Drops tables and constants no node refers to and renumbers the rest in the order of
    /// their first use in [`Graph::topo_order`] (so printed output stays small and stable).
    pub fn compact_pools(&mut self) {
        let order = self.topo_order().unwrap_or_else(|_| self.values());
        let mut tmap: HashMap<TableId, TableId> = HashMap::new();
        let mut cmap: HashMap<ConstId, ConstId> = HashMap::new();
        let mut tables = Vec::new();
        let mut consts = Vec::new();
        for v in &order {
            let op = &self.g[v.0].op;
            let mut ts: Vec<TableId> = Vec::new();
            match op {
                Op::Tlu { table } => ts.push(*table),
                Op::TluMulti { tables, .. }
                | Op::Pbs { tables, .. }
                | Op::WopPbs { tables, .. } => ts.extend(tables),
                Op::Const { value } if !cmap.contains_key(value) => {
                    if let Some(c) = self.consts.get(value.0 as usize) {
                        cmap.insert(*value, ConstId(consts.len() as u32));
                        consts.push(c.clone());
                    }
                }
                _ => {}
            }
            for t in ts {
                if let (std::collections::hash_map::Entry::Vacant(e), Some(tab)) =
                    (tmap.entry(t), self.tables.get(t.0 as usize))
                {
                    e.insert(TableId(tables.len() as u32));
                    tables.push(tab.clone());
                }
            }
        }
        for v in order {
            match &mut self.g[v.0].op {
                Op::Tlu { table } => {
                    if let Some(n) = tmap.get(table) {
                        *table = *n
                    }
                }
                Op::TluMulti { tables, .. }
                | Op::Pbs { tables, .. }
                | Op::WopPbs { tables, .. } => {
                    for t in tables.iter_mut() {
                        if let Some(n) = tmap.get(t) {
                            *t = *n
                        }
                    }
                }
                Op::Const { value } => {
                    if let Some(n) = cmap.get(value) {
                        *value = *n
                    }
                }
                _ => {}
            }
        }
        self.tables = tables;
        self.consts = consts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::IntType;

    #[test]
    fn operands_users_and_topo() {
        let mut g = Graph::new();
        let t = TensorType::encrypted(IntType::unsigned(4), vec![2]);
        let a = g.add_node(Op::Input { name: "a".into() }, t.clone(), &[]);
        let b = g.add_node(Op::Input { name: "b".into() }, t.clone(), &[]);
        let s = g.add_node(Op::Sub, t.clone(), &[b, a]);
        let o = g.add_node(Op::Output { name: "y".into() }, t.clone(), &[s]);
        assert_eq!(g.operands(s), vec![b, a]);
        assert_eq!(g.users(a), vec![s]);
        assert_eq!(g.topo_order().unwrap(), vec![a, b, s, o]);
        assert_eq!(g.inputs(), vec![a, b]);
        assert_eq!(g.outputs(), vec![o]);
        let n = g.add_node(Op::Neg, t.clone(), &[a]);
        g.replace_all_uses(s, n);
        assert_eq!(g.operands(o), vec![n]);
        assert_eq!(g.dce(), 1);
        assert!(!g.contains(s));
    }

    #[test]
    fn tables_are_stored_once() {
        let mut g = Graph::new();
        let t1 = g.add_table(Table {
            entries: vec![0, 1],
        });
        let t2 = g.add_table(Table {
            entries: vec![0, 1],
        });
        assert_eq!(t1, t2);
        assert_eq!(g.tables.len(), 1);
    }
}
