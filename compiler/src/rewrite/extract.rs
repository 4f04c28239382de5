//! Extraction: choosing one node per e-class so that the program's cost, with shared
//! sub-graphs counted once, is small.
//!
//! egg's [`egg::Extractor`] minimizes *tree* cost (a class used twice is paid twice), which
//! favours duplicating work: a lookup fused into each of two users costs two bootstraps where
//! the shared lookup plus two levelled ops costs one. [`dag_extract`] instead computes, for
//! every class, the *set* of classes its best choice needs and minimizes the cost of that set
//! (the union of the children's sets plus the node itself), iterating to a fixpoint (the
//! greedy-DAG extractor of extraction-gym). [`tree_extract`] wraps egg's extractor with the
//! same node costs, for comparison.

use super::analysis::{node_op, value, value_children, VeilEGraph};
use super::cost::{CostModel, Fact, OpCost};
use super::lang::VeilLang;
use egg::{CostFunction, Id, Language};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

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

/// DAG extraction (see the module docs): the greedy-DAG choice of every class, then local
/// improvement (re-choosing one class at a time while the DAG cost of everything the roots
/// need drops, which catches what the per-class greedy misses: a node whose inputs the rest of
/// the program computes anyway). Returns the chosen node of every class reachable from
/// `roots`, or `None` if some root has no acyclic choice (cannot happen for e-graphs built
/// from a graph).
pub fn dag_extract(eg: &VeilEGraph, model: &CostModel, roots: &[Id]) -> Option<Choice> {
    let costs = node_costs(eg, model);
    let mut pick: HashMap<Id, usize> = greedy(eg, &costs);
    let roots: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    let mut best = reachable_cost(eg, &pick, &roots, &costs)?;
    // local improvement, bounded in rounds
    for _ in 0..4 {
        let mut improved = false;
        let classes: Vec<Id> = reachable(eg, &pick, &roots)?.into_iter().collect();
        for c in classes {
            let current = pick[&c];
            for i in 0..eg[c].nodes.len() {
                if i == current {
                    continue;
                }
                let old = pick.insert(c, i);
                match reachable_cost(eg, &pick, &roots, &costs) {
                    Some(cost) if cost < best - 1e-9 => {
                        best = cost;
                        improved = true;
                        break;
                    }
                    _ => {
                        if let Some(o) = old {
                            pick.insert(c, o);
                        }
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    let classes = reachable(eg, &pick, &roots)?;
    Some(
        classes
            .into_iter()
            .map(|c| (c, eg[c].nodes[pick[&c]].clone()))
            .collect(),
    )
}

/// Cost of every node of every class.
fn node_costs(eg: &VeilEGraph, model: &CostModel) -> HashMap<Id, Vec<f64>> {
    eg.classes()
        .map(|c| {
            (
                c.id,
                c.nodes
                    .iter()
                    .map(|n| enode_cost(eg, model, c.id, n))
                    .collect(),
            )
        })
        .collect()
}

/// Classes reachable from `roots` through the picks; `None` on a cycle or a missing pick.
fn reachable(
    eg: &VeilEGraph,
    pick: &HashMap<Id, usize>,
    roots: &[Id],
) -> Option<std::collections::BTreeSet<Id>> {
    // iterative DFS with colours to detect cycles
    let mut done = std::collections::BTreeSet::new();
    let mut on_path = std::collections::HashSet::new();
    let mut stack: Vec<(Id, bool)> = roots.iter().map(|r| (*r, false)).collect();
    while let Some((c, exiting)) = stack.pop() {
        if exiting {
            on_path.remove(&c);
            done.insert(c);
            continue;
        }
        if done.contains(&c) {
            continue;
        }
        if !on_path.insert(c) {
            return None;
        }
        stack.push((c, true));
        let n = &eg[c].nodes[*pick.get(&c)?];
        for k in n.children() {
            let k = eg.find(*k);
            if on_path.contains(&k) {
                return None;
            }
            if !done.contains(&k) {
                stack.push((k, false));
            }
        }
    }
    Some(done)
}

fn reachable_cost(
    eg: &VeilEGraph,
    pick: &HashMap<Id, usize>,
    roots: &[Id],
    costs: &HashMap<Id, Vec<f64>>,
) -> Option<f64> {
    Some(
        reachable(eg, pick, roots)?
            .iter()
            .map(|c| costs[c][pick[c]])
            .sum(),
    )
}

/// The greedy-DAG choice of every class that has an acyclic one.
pub fn dag_choices(eg: &VeilEGraph, model: &CostModel) -> Choice {
    let costs = node_costs(eg, model);
    greedy(eg, &costs)
        .into_iter()
        .map(|(c, i)| (c, eg[c].nodes[i].clone()))
        .collect()
}

/// Greedy DAG: per class, the node minimizing the cost of the union of its children's sets.
fn greedy(eg: &VeilEGraph, costs: &HashMap<Id, Vec<f64>>) -> HashMap<Id, usize> {
    type Set = Rc<BTreeMap<Id, f64>>;
    let mut best: HashMap<Id, (f64, usize, Set)> = HashMap::new();
    let max_rounds = eg.number_of_classes() + 2;
    for _ in 0..max_rounds {
        let mut changed = false;
        for class in eg.classes() {
            for (i, n) in class.nodes.iter().enumerate() {
                let kids: Vec<Id> = n.children().iter().map(|c| eg.find(*c)).collect();
                if kids.iter().any(|k| !best.contains_key(k)) {
                    continue;
                }
                // start from the largest child set, add the others
                let mut sets: Vec<&Set> = kids.iter().map(|k| &best[k].2).collect();
                sets.sort_by_key(|s| std::cmp::Reverse(s.len()));
                let mut set: BTreeMap<Id, f64> =
                    sets.first().map(|s| (***s).clone()).unwrap_or_default();
                for s in sets.iter().skip(1) {
                    for (k, v) in s.iter() {
                        set.insert(*k, *v);
                    }
                }
                if set.contains_key(&class.id) {
                    continue;
                }
                set.insert(class.id, costs[&class.id][i]);
                let total: f64 = set.values().sum();
                let better = match best.get(&class.id) {
                    None => true,
                    Some((c, _, _)) => total < *c - 1e-9,
                };
                if better {
                    best.insert(class.id, (total, i, Rc::new(set)));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    best.into_iter().map(|(c, (_, i, _))| (c, i)).collect()
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
