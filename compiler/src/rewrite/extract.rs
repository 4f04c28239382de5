//! Extraction: choosing one node per e-class so that the program's cost, with shared
//! sub-graphs counted once, is small.
//!
//! egg's [`egg::Extractor`] minimizes *tree* cost (a class used twice is paid twice), which
//! favours duplicating work: a lookup fused into each of two users costs two bootstraps where
//! the shared lookup plus two levelled ops costs one. [`dag_extract`] instead computes, for
//! every class, the *set* of classes its best choice needs and minimizes the cost of that set
//! (the union of the children's sets plus the node itself), iterating to a fixpoint (the
//! greedy-DAG extractor of extraction-gym), then improves the choice locally. [`tree_extract`]
//! wraps egg's extractor with the same node costs, for comparison.
//!
//! Cost: near-linear in the e-graph's size. Sets are persistent treaps sharing structure
//! (`pset`); the fixpoint rounds only re-evaluate classes whose children changed, within a
//! work budget beyond which classes are settled cheapest first; local improvement prices a
//! re-choice by the classes it makes (un)reachable (reference counts) and checks cycles with a
//! search pruned by a topological numbering.

use super::analysis::{node_op, value, value_children, VeilEGraph};
use super::cost::{CostModel, Fact, OpCost};
use super::lang::VeilLang;
use egg::{CostFunction, Id, Language};
use std::collections::HashMap;

/// A tie-breaker added to every node: among equal costs, fewer nodes win.
const NODE_EPSILON: f64 = 1e-6;

/// Cost of node `n` of class `class` alone (children not included), with the tie-breaker.
pub fn enode_cost(eg: &VeilEGraph, model: &CostModel, class: Id, n: &VeilLang) -> f64 {
    enode_op_cost(eg, model, class, n).cost + NODE_EPSILON
}

/// Bootstraps and cost of node `n` of class `class` alone, exactly as the lowering of the
/// emitted op executes them.
pub fn enode_op_cost(eg: &VeilEGraph, model: &CostModel, class: Id, n: &VeilLang) -> OpCost {
    let Some(op) = node_op(n, eg) else {
        return OpCost::default();
    };
    let kids: Vec<_> = value_children(n)
        .iter()
        .filter_map(|c| value(eg, *c))
        .collect();
    let Some(res) = value(eg, class) else {
        return OpCost::default();
    };
    fn fact(d: &super::analysis::ValueData) -> Fact<'_> {
        Fact {
            encrypted: d.encrypted,
            int: d.int,
            shape: &d.shape,
            align: d.align,
        }
    }
    let facts: Vec<Fact> = kids.iter().map(|d| fact(d)).collect();
    model.op_cost(&op, &facts, &fact(res))
}

/// The chosen node of every class reachable from the roots.
pub type Choice = HashMap<Id, VeilLang>;

/// Rounds of local improvement after the greedy choice.
const LOCAL_ROUNDS: usize = 4;

/// Two DAG costs closer than this are equal.
const COST_TOLERANCE: f64 = 1e-9;

/// DAG extraction (see the module docs): the greedy-DAG choice of every class, then local
/// improvement (re-choosing one class at a time while the DAG cost of everything the roots
/// need drops, which catches what the per-class greedy misses: a node whose inputs the rest of
/// the program computes anyway). Returns the chosen node of every class reachable from
/// `roots`, or `None` if some root has no acyclic choice (cannot happen for e-graphs built
/// from a graph).
pub fn dag_extract(eg: &VeilEGraph, model: &CostModel, roots: &[Id]) -> Option<Choice> {
    let flat = Flat::new(eg, model);
    let pick = greedy(&flat);
    let roots: Vec<usize> = roots.iter().map(|r| flat.pos[&eg.find(*r)]).collect();
    let mut local = Local::new(&flat, pick, &roots)?;
    local.improve();
    let classes = reachable(&flat, &local.pick, &roots)?;
    Some(
        classes
            .into_iter()
            .map(|c| {
                let id = flat.ids[c];
                let node = local.pick[c].expect("reachable classes have a pick");
                (id, eg[id].nodes[node].clone())
            })
            .collect(),
    )
}

/// The greedy-DAG choice of every class that has an acyclic one.
pub fn dag_choices(eg: &VeilEGraph, model: &CostModel) -> Choice {
    let flat = Flat::new(eg, model);
    greedy(&flat)
        .into_iter()
        .enumerate()
        .filter_map(|(c, i)| {
            let id = flat.ids[c];
            i.map(|i| (id, eg[id].nodes[i].clone()))
        })
        .collect()
}

/// The e-graph flattened for extraction: classes by position (in `eg.classes()` order), the
/// children of every node as class positions, and the cost of every node.
struct Flat {
    /// Class id of every position.
    ids: Vec<Id>,
    /// Position of every canonical class id.
    pos: HashMap<Id, usize>,
    /// `kids[c][i]`: the children of node `i` of class `c`, in order.
    kids: Vec<Vec<Vec<usize>>>,
    /// `costs[c][i]`: the cost of node `i` of class `c` ([`enode_cost`]).
    costs: Vec<Vec<f64>>,
}

impl Flat {
    fn new(eg: &VeilEGraph, model: &CostModel) -> Flat {
        let ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
        let pos: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut kids = Vec::with_capacity(ids.len());
        let mut costs = Vec::with_capacity(ids.len());
        for &c in &ids {
            let class = &eg[c];
            kids.push(
                class
                    .nodes
                    .iter()
                    .map(|n| n.children().iter().map(|k| pos[&eg.find(*k)]).collect())
                    .collect(),
            );
            costs.push(
                class
                    .nodes
                    .iter()
                    .map(|n| enode_cost(eg, model, c, n))
                    .collect(),
            );
        }
        Flat {
            ids,
            pos,
            kids,
            costs,
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Classes reachable from `roots` through the picks, children before parents; `None` on a
/// cycle or a missing pick.
fn reachable(f: &Flat, pick: &[Option<usize>], roots: &[usize]) -> Option<Vec<usize>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; f.len()];
    let mut order = Vec::new();
    let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|r| (*r, false)).collect();
    while let Some((c, exiting)) = stack.pop() {
        if exiting {
            state[c] = DONE;
            order.push(c);
            continue;
        }
        match state[c] {
            DONE => continue,
            ON_PATH => return None,
            _ => {}
        }
        state[c] = ON_PATH;
        stack.push((c, true));
        for &k in f.kids[c][pick[c]?].iter().rev() {
            match state[k] {
                ON_PATH => return None,
                NEW => stack.push((k, false)),
                _ => {}
            }
        }
    }
    Some(order)
}

/// Greedy DAG: per class, the node minimizing the cost of the union of its children's sets
/// (the classes a choice needs, each paid once).
///
/// First in rounds ([`greedy_rounds`]), the reference algorithm, within a budget of work
/// (node evaluations plus the elements merged into the largest child set) of
/// [`ROUND_BUDGET_MIN`] plus two per e-node (every program of the corpus converges within a
/// hundredth of it); when the rounds do not converge within it (large e-graphs, where
/// changes travel one step of the class order per round, or large sets are merged over and
/// over), cheapest first ([`greedy_settled`]), which evaluates every node once.
fn greedy(f: &Flat) -> Vec<Option<usize>> {
    let nodes: usize = f.kids.iter().map(Vec::len).sum();
    let budget = ROUND_BUDGET_MIN.saturating_add(2 * nodes);
    greedy_rounds(f, budget).unwrap_or_else(|| greedy_settled(f))
}

/// Node evaluations always allowed to `greedy_rounds`.
pub const ROUND_BUDGET_MIN: usize = 200_000;

/// Greedy DAG in rounds: classes are visited in `eg.classes()` order until a round changes
/// nothing (at most `classes + 2` rounds), each node's candidate built from its children's
/// current sets. `None` when that takes more than `budget` work (see [`greedy`]).
///
/// A class is re-evaluated only when one of its children's choices changed since its last
/// evaluation (re-evaluating it otherwise cannot change anything), so the rounds are
/// simulated by a queue of `(round, position)` events: a change schedules the parents later
/// in the order in the same round, the others in the next one. The sets are persistent
/// ([`pset`]): a set and its children's sets share their structure.
fn greedy_rounds(f: &Flat, budget: usize) -> Option<Vec<Option<usize>>> {
    let n = f.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (c, nodes) in f.kids.iter().enumerate() {
        for ks in nodes {
            for &k in ks {
                parents[k].push(c);
            }
        }
    }
    for p in &mut parents {
        p.sort_unstable();
        p.dedup();
    }
    let mut best: Vec<Option<(f64, usize, pset::Tree)>> = vec![None; n];
    let max_rounds = n + 2;
    let mut spent = 0usize;
    let mut queue: std::collections::BTreeSet<(usize, usize)> = (0..n).map(|c| (0, c)).collect();
    while let Some((round, c)) = queue.pop_first() {
        if round >= max_rounds {
            break;
        }
        let mut changed = false;
        for i in 0..f.kids[c].len() {
            if f.kids[c][i].iter().any(|k| best[*k].is_none()) {
                continue;
            }
            // the work of a union: the elements of all but the largest child set
            let lens = f.kids[c][i]
                .iter()
                .map(|k| pset::len(&best[*k].as_ref().expect("checked").2) as usize);
            let (sum, max) = lens.fold((0, 0), |(s, m), l| (s + l, l.max(m)));
            spent += 1 + sum - max;
            if spent > budget {
                return None;
            }
            if let Some(candidate) = candidate(f, &best, c, i) {
                let better = match &best[c] {
                    None => true,
                    Some((b, _, _)) => candidate.0 < *b - COST_TOLERANCE,
                };
                if better {
                    best[c] = Some(candidate);
                    changed = true;
                }
            }
        }
        if changed {
            for &p in &parents[c] {
                queue.insert((if p > c { round } else { round + 1 }, p));
            }
        }
    }
    Some(best.into_iter().map(|b| b.map(|(_, i, _)| i)).collect())
}

/// The candidate of node `i` of class `c` (every child has a set): the union of its
/// children's sets plus `c`, with its total cost; `None` when a child's set contains `c`.
fn candidate(
    f: &Flat,
    best: &[Option<(f64, usize, pset::Tree)>],
    c: usize,
    i: usize,
) -> Option<(f64, usize, pset::Tree)> {
    let mut sets: Vec<&pset::Tree> = f.kids[c][i]
        .iter()
        .map(|k| &best[*k].as_ref().expect("a child with a set").2)
        .collect();
    // start from the largest child set, add the others (a later set's cost wins)
    sets.sort_by_key(|s| std::cmp::Reverse(pset::len(s)));
    let mut set = sets.first().map(|s| (*s).clone()).unwrap_or_default();
    for s in sets.iter().skip(1) {
        set = pset::union(&set, s);
    }
    let key = c as u32;
    if pset::contains(&set, key) {
        return None;
    }
    set = pset::union(&set, &pset::singleton(key, f.costs[c][i]));
    Some((pset::sum(&set), i, set))
}

/// Greedy DAG, cheapest first (Knuth's generalization of Dijkstra's algorithm): a node is
/// evaluated once, when its last child is settled, and a class is settled with its cheapest
/// candidate. A node's set contains its children's, so its cost is at least theirs and no
/// node completed later can beat a settled class. Among candidates within
/// [`COST_TOLERANCE`] the first one found stays.
fn greedy_settled(f: &Flat) -> Vec<Option<usize>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = f.len();
    // users[k]: the nodes (class, index) that have class k as a child, once per node
    let mut users: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut pending: Vec<Vec<usize>> = Vec::with_capacity(n);
    for (c, nodes) in f.kids.iter().enumerate() {
        let mut counts = Vec::with_capacity(nodes.len());
        for (i, ks) in nodes.iter().enumerate() {
            let mut distinct = ks.clone();
            distinct.sort_unstable();
            distinct.dedup();
            for &k in &distinct {
                users[k].push((c, i));
            }
            counts.push(distinct.len());
        }
        pending.push(counts);
    }
    let mut best: Vec<Option<(f64, usize, pset::Tree)>> = vec![None; n];
    let mut settled = vec![false; n];
    let mut heap: BinaryHeap<Reverse<(Cost, usize)>> = BinaryHeap::new();
    let evaluate = |best: &mut Vec<Option<(f64, usize, pset::Tree)>>,
                    heap: &mut BinaryHeap<Reverse<(Cost, usize)>>,
                    c: usize,
                    i: usize| {
        let Some(cand) = candidate(f, best, c, i) else {
            return;
        };
        let better = match &best[c] {
            None => true,
            Some((b, _, _)) => cand.0 < *b - COST_TOLERANCE,
        };
        if better {
            heap.push(Reverse((Cost(cand.0), c)));
            best[c] = Some(cand);
        }
    };
    let leaves: Vec<(usize, usize)> = pending
        .iter()
        .enumerate()
        .flat_map(|(c, ps)| {
            ps.iter()
                .enumerate()
                .filter(|(_, p)| **p == 0)
                .map(move |(i, _)| (c, i))
        })
        .collect();
    for (c, i) in leaves {
        evaluate(&mut best, &mut heap, c, i);
    }
    while let Some(Reverse((Cost(total), c))) = heap.pop() {
        if settled[c] || best[c].as_ref().is_none_or(|b| b.0 != total) {
            continue;
        }
        settled[c] = true;
        for &(p, i) in &users[c] {
            pending[p][i] -= 1;
            if pending[p][i] == 0 && !settled[p] {
                evaluate(&mut best, &mut heap, p, i);
            }
        }
    }
    best.into_iter().map(|b| b.map(|(_, i, _)| i)).collect()
}

/// A cost ordered by [`f64::total_cmp`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cost(f64);

impl Eq for Cost {}

impl PartialOrd for Cost {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Cost {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Local improvement of a choice: the classes the roots reach, with how many chosen edges
/// (and roots) reach each, so that the DAG cost of re-choosing one class is the cost of the
/// classes that become reachable minus that of those that no longer are.
struct Local<'a> {
    f: &'a Flat,
    /// The chosen node of every class.
    pick: Vec<Option<usize>>,
    /// Chosen edges from reachable classes (and roots) into every class; `> 0` iff reachable.
    refs: Vec<u32>,
    /// A topological number of every reachable class: a class's is above its children's.
    topo: Vec<f64>,
    roots: Vec<usize>,
    /// Per-class marks of the current search (`(search, on_path)`).
    mark: Vec<(u32, bool)>,
    search: u32,
    /// Classes made reachable by the last [`Local::switch`].
    fresh: Vec<usize>,
}

impl<'a> Local<'a> {
    /// `None` when the roots reach a cycle or a class without a pick.
    fn new(f: &'a Flat, pick: Vec<Option<usize>>, roots: &[usize]) -> Option<Self> {
        let n = f.len();
        let mut l = Local {
            f,
            pick,
            refs: vec![0; n],
            topo: vec![0.0; n],
            roots: roots.to_vec(),
            mark: vec![(0, false); n],
            search: 0,
            fresh: Vec::new(),
        };
        let order = reachable(f, &l.pick, roots)?;
        for &c in &order {
            for &k in l.kids(c) {
                l.refs[k] += 1;
            }
        }
        for &r in roots {
            l.refs[r] += 1;
        }
        l.renumber_from(order);
        Some(l)
    }

    fn kids(&self, c: usize) -> &'a [usize] {
        let f: &'a Flat = self.f;
        &f.kids[c][self.pick[c].expect("a reachable class has a pick")]
    }

    fn cost(&self, c: usize) -> f64 {
        self.f.costs[c][self.pick[c].expect("a reachable class has a pick")]
    }

    fn renumber_from(&mut self, order: Vec<usize>) {
        for (i, c) in order.into_iter().enumerate() {
            self.topo[c] = i as f64;
        }
    }

    /// Re-chooses classes one at a time, in class id order, while that lowers the DAG cost
    /// of the reachable classes (at most [`LOCAL_ROUNDS`] rounds).
    fn improve(&mut self) {
        for _ in 0..LOCAL_ROUNDS {
            let mut improved = false;
            let mut classes: Vec<usize> = (0..self.f.len()).filter(|&c| self.refs[c] > 0).collect();
            classes.sort_by_key(|&c| self.f.ids[c]);
            for c in classes {
                if self.refs[c] == 0 {
                    // no longer reachable: re-choosing it changes nothing
                    continue;
                }
                let current = self.pick[c].expect("a reachable class has a pick");
                for i in 0..self.f.kids[c].len() {
                    if i == current || !self.acyclic(c, i) {
                        continue;
                    }
                    let delta = self.switch(c, current, i);
                    if delta < -COST_TOLERANCE {
                        self.renumber_after(c);
                        improved = true;
                        break;
                    }
                    self.switch(c, i, current);
                }
            }
            if !improved {
                break;
            }
        }
    }

    /// Whether choosing node `i` for the reachable class `c` keeps the reachable classes
    /// acyclic with a pick each. A cycle would pass through `c` or through classes that only
    /// become reachable; a reachable class numbered below `c` cannot reach `c`.
    fn acyclic(&mut self, c: usize, i: usize) -> bool {
        self.search += 1;
        let s = self.search;
        let tc = self.topo[c];
        let mut stack: Vec<(usize, bool)> = self.f.kids[c][i].iter().map(|&k| (k, false)).collect();
        while let Some((u, exiting)) = stack.pop() {
            if exiting {
                self.mark[u] = (s, false);
                continue;
            }
            if u == c {
                return false;
            }
            if self.refs[u] > 0 && self.topo[u] < tc {
                continue;
            }
            match self.mark[u] {
                (m, true) if m == s => return false,
                (m, false) if m == s => continue,
                _ => {}
            }
            let Some(p) = self.pick[u] else {
                return false;
            };
            self.mark[u] = (s, true);
            stack.push((u, true));
            for &k in &self.f.kids[u][p] {
                if k == c || self.mark[k] == (s, true) {
                    return false;
                }
                stack.push((k, false));
            }
        }
        true
    }

    /// Re-chooses node `to` instead of `from` for the reachable class `c` (the result must be
    /// acyclic) and returns the change of the DAG cost.
    fn switch(&mut self, c: usize, from: usize, to: usize) -> f64 {
        self.pick[c] = Some(to);
        self.fresh.clear();
        let f: &'a Flat = self.f;
        let mut added = 0.0;
        let mut stack: Vec<usize> = f.kids[c][to].clone();
        while let Some(k) = stack.pop() {
            self.refs[k] += 1;
            if self.refs[k] == 1 {
                added += self.cost(k);
                self.fresh.push(k);
                stack.extend_from_slice(self.kids(k));
            }
        }
        let mut removed = 0.0;
        stack.extend_from_slice(&f.kids[c][from]);
        while let Some(k) = stack.pop() {
            self.refs[k] -= 1;
            if self.refs[k] == 0 {
                removed += self.cost(k);
                stack.extend_from_slice(self.kids(k));
            }
        }
        (f.costs[c][to] - f.costs[c][from]) + (added - removed)
    }

    /// Restores the topological numbering after `c` was re-chosen: the classes that became
    /// reachable are numbered between their children and `c`, when `c` is already above its
    /// new children and the numbers have room; else everything is renumbered.
    fn renumber_after(&mut self, c: usize) {
        let tc = self.topo[c];
        let fresh: Vec<usize> = std::mem::take(&mut self.fresh);
        self.search += 1;
        let s = self.search;
        for &u in &fresh {
            self.mark[u] = (s, true);
        }
        let mut ok = true;
        // children before parents among the fresh classes
        let mut stack: Vec<(usize, bool)> = self.kids(c).iter().map(|&k| (k, false)).collect();
        while ok {
            let Some((u, exiting)) = stack.pop() else {
                break;
            };
            if self.mark[u] != (s, true) || self.refs[u] == 0 {
                continue;
            }
            if !exiting {
                stack.push((u, true));
                stack.extend(self.kids(u).iter().map(|&k| (k, false)));
                continue;
            }
            let lo = self
                .kids(u)
                .iter()
                .map(|&k| self.topo[k])
                .fold(tc - 1.0, f64::max);
            let v = (lo + tc) / 2.0;
            ok = lo < v && v < tc;
            self.topo[u] = v;
            self.mark[u] = (s, false);
        }
        ok = ok && self.kids(c).iter().all(|&k| self.topo[k] < tc);
        if !ok {
            let order =
                reachable(self.f, &self.pick, &self.roots).expect("an accepted choice is acyclic");
            self.renumber_from(order);
        }
    }
}

/// Persistent sets of classes with their costs: treaps (priorities from the class number, so
/// a set has one shape whatever its history) with shared structure, whose union reuses
/// identical sub-trees; every node holds its subtree's size and cost sum.
mod pset {
    use std::rc::Rc;

    /// A treap node.
    pub struct Node {
        key: u32,
        pri: u64,
        cost: f64,
        sum: f64,
        len: u32,
        left: Tree,
        right: Tree,
    }

    /// A set (`None`: empty).
    pub type Tree = Option<Rc<Node>>;

    /// The treap priority of a key: a fixed hash, not a random generator (the splitmix64
    /// finalizer, a bijection, so distinct keys have distinct priorities and every run builds
    /// the same tree).
    fn priority(key: u32) -> u64 {
        let mut z = (key as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Number of elements.
    pub fn len(t: &Tree) -> u32 {
        t.as_ref().map_or(0, |n| n.len)
    }

    /// Sum of the costs.
    pub fn sum(t: &Tree) -> f64 {
        t.as_ref().map_or(0.0, |n| n.sum)
    }

    fn node(key: u32, pri: u64, cost: f64, left: Tree, right: Tree) -> Tree {
        Some(Rc::new(Node {
            key,
            pri,
            cost,
            sum: sum(&left) + cost + sum(&right),
            len: len(&left) + 1 + len(&right),
            left,
            right,
        }))
    }

    /// The set `{key: cost}`.
    pub fn singleton(key: u32, cost: f64) -> Tree {
        node(key, priority(key), cost, None, None)
    }

    /// Whether `key` is in the set.
    pub fn contains(t: &Tree, key: u32) -> bool {
        let mut t = t;
        while let Some(n) = t {
            if key == n.key {
                return true;
            }
            t = if key < n.key { &n.left } else { &n.right };
        }
        false
    }

    fn same(a: &Tree, b: &Tree) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => Rc::ptr_eq(x, y),
            _ => false,
        }
    }

    /// `n` with another cost and children; `n` itself when nothing changed.
    fn with(n: &Rc<Node>, cost: f64, left: Tree, right: Tree) -> Tree {
        if cost == n.cost && same(&left, &n.left) && same(&right, &n.right) {
            return Some(n.clone());
        }
        node(n.key, n.pri, cost, left, right)
    }

    /// The elements below `key`, the cost of `key` if present, the elements above.
    fn split(t: &Tree, key: u32) -> (Tree, Option<f64>, Tree) {
        let Some(n) = t else {
            return (None, None, None);
        };
        if key == n.key {
            (n.left.clone(), Some(n.cost), n.right.clone())
        } else if key < n.key {
            let (l, m, r) = split(&n.left, key);
            (l, m, with(n, n.cost, r, n.right.clone()))
        } else {
            let (l, m, r) = split(&n.right, key);
            (with(n, n.cost, n.left.clone(), l), m, r)
        }
    }

    /// The union of two sets; on a common key, `b`'s cost wins.
    pub fn union(a: &Tree, b: &Tree) -> Tree {
        let (x, y) = match (a, b) {
            (None, _) => return b.clone(),
            (_, None) => return a.clone(),
            (Some(x), Some(y)) => (x, y),
        };
        if Rc::ptr_eq(x, y) {
            return a.clone();
        }
        if x.pri > y.pri {
            let (bl, bm, br) = split(b, x.key);
            let (l, r) = (union(&x.left, &bl), union(&x.right, &br));
            with(x, bm.unwrap_or(x.cost), l, r)
        } else {
            // equal priorities: equal keys
            let (al, _, ar) = split(a, y.key);
            let (l, r) = (union(&al, &y.left), union(&ar, &y.right));
            with(y, y.cost, l, r)
        }
    }
}

struct TreeCost<'a>(&'a VeilEGraph, &'a CostModel);

impl CostFunction<VeilLang> for TreeCost<'_> {
    type Cost = f64;
    fn cost<C>(&mut self, enode: &VeilLang, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = match self.0.lookup(enode.clone()) {
            Some(class) => enode_cost(self.0, self.1, class, enode),
            None => NODE_EPSILON,
        };
        enode.children().iter().fold(own, |acc, c| acc + costs(*c))
    }
}

/// egg's tree-cost extraction with the same node costs.
pub fn tree_extract(eg: &VeilEGraph, model: &CostModel, roots: &[Id]) -> Choice {
    let ex = egg::Extractor::new(eg, TreeCost(eg, model));
    let mut choice = Choice::new();
    let mut stack: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    while let Some(c) = stack.pop() {
        if choice.contains_key(&c) {
            continue;
        }
        let n = ex.find_best_node(c).clone();
        stack.extend(n.children().iter().map(|k| eg.find(*k)));
        choice.insert(c, n);
    }
    choice
}

/// DAG cost of a choice: every chosen class paid once.
pub fn choice_cost(eg: &VeilEGraph, model: &CostModel, choice: &Choice) -> f64 {
    choice
        .iter()
        .map(|(c, n)| enode_cost(eg, model, *c, n))
        .sum()
}

/// What the program of a choice costs once emitted and lowered: bootstraps and cost of every
/// class reachable from `roots` through the choice, each paid once (no tie-breaker). `None`
/// when the choice misses a reachable class (a cyclic choice is not detected here: emitting
/// it fails).
pub fn choice_op_cost(
    eg: &VeilEGraph,
    model: &CostModel,
    choice: &Choice,
    roots: &[Id],
) -> Option<OpCost> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    let mut total = OpCost::default();
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        let n = choice.get(&c)?;
        total = total.plus(enode_op_cost(eg, model, c, n));
        stack.extend(n.children().iter().map(|k| eg.find(*k)));
    }
    Some(total)
}
