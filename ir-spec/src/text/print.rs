//! The canonical printer.
//!
//! Output is deterministic: pools are compacted on a clone (tables numbered in order of first
//! use), ops print in [`Graph::topo_order`] with the numbering of [`Graph::value_numbers`], and
//! `output` lines come last in output order. Malformed graphs still print (never a panic);
//! whatever is wrong with them shows in the text and makes the parser or verifier complain.

use crate::graph::{Graph, Level};
use crate::ops::{ConstId, Op, TableId};
use crate::types::numel;
use crate::{ValueId, FORMAT_VERSION};
use std::collections::HashMap;
use std::fmt::Write;

/// Prints a graph in the canonical text form.
pub fn print(graph: &Graph) -> String {
    let mut g = graph.clone();
    g.compact_pools();
    let mut out = String::new();
    let _ = writeln!(out, "veil {FORMAT_VERSION}");
    if g.level == Level::Tfhe {
        out.push_str("level tfhe\n");
    }
    for (i, p) in g.params.iter().enumerate() {
        let _ = writeln!(out, "params @p{i} = {p}");
    }
    for (i, t) in g.tables.iter().enumerate() {
        let _ = writeln!(out, "table @t{i} = {}", int_list(&t.entries));
    }
    let order = g.topo_order().unwrap_or_else(|_| g.values());
    let nums = g.value_numbers();
    let outputs = g.outputs();
    for v in order
        .iter()
        .filter(|v| !matches!(g.op(**v), Op::Output { .. }))
    {
        print_node(&mut out, &g, *v, &nums);
    }
    for v in outputs {
        print_node(&mut out, &g, v, &nums);
    }
    out
}

fn print_node(out: &mut String, g: &Graph, v: ValueId, nums: &HashMap<ValueId, usize>) {
    let node = g.node(v);
    let operands: Vec<String> = g
        .operands(v)
        .into_iter()
        .map(|o| match nums.get(&o) {
            Some(n) => format!("%{n}"),
            // An output used as an operand (malformed): it has no number.
            None => format!("%output{}", o.index()),
        })
        .collect();
    let operands = operands.join(", ");
    if let Op::Output { name } = &node.op {
        let _ = write!(out, "output {name:?}");
        if !operands.is_empty() {
            let _ = write!(out, ", {operands}");
        }
        out.push('\n');
        return;
    }
    let n = nums.get(&v).copied().unwrap_or(usize::MAX);
    let _ = write!(out, "%{n} = {}", node.op.name());
    match &node.op {
        Op::Input { name } => {
            let _ = write!(out, " {name:?}");
            if !operands.is_empty() {
                let _ = write!(out, ", {operands}");
            }
        }
        Op::Const { value } => {
            let _ = write!(out, " {}", const_literal(g, *value));
            if !operands.is_empty() {
                let _ = write!(out, ", {operands}");
            }
        }
        op => {
            if !operands.is_empty() {
                let _ = write!(out, " {operands}");
            }
            for (name, value) in attrs(op) {
                let _ = write!(out, " {name}={value}");
            }
        }
    }
    let _ = writeln!(out, " : {}", node.ty);
}

/// The attributes of an op as `(name, printed value)`, in canonical order.
pub(crate) fn attrs(op: &Op) -> Vec<(&'static str, String)> {
    match op {
        Op::Conv2d(a) => vec![
            ("strides", usize_list(&a.strides)),
            ("pads", usize_list(&a.pads)),
            ("dilations", usize_list(&a.dilations)),
            ("group", a.group.to_string()),
        ],
        Op::Sum { axes, keepdims } => vec![
            ("axes", usize_list(axes)),
            ("keepdims", keepdims.to_string()),
        ],
        Op::Transpose { perm } => vec![("perm", usize_list(perm))],
        Op::Concat { axis } => vec![("axis", axis.to_string())],
        Op::Slice {
            starts,
            stops,
            steps,
        } => vec![
            ("starts", usize_list(starts)),
            ("stops", usize_list(stops)),
            ("steps", usize_list(steps)),
        ],
        Op::Tlu { table } => vec![("table", table_ref(*table))],
        Op::TluMulti { tables, map } => {
            vec![("tables", table_list(tables)), ("map", usize_list(map))]
        }
        Op::Pbs { tables, map } => {
            let mut v = vec![("tables", table_list(tables))];
            if !map.is_empty() {
                v.push(("map", usize_list(map)));
            }
            v
        }
        Op::WopPbs {
            tables,
            map,
            pfks_base_log,
            pfks_level,
            cbs_base_log,
            cbs_level,
            out_bits,
        } => {
            let mut v = vec![("tables", table_list(tables))];
            if !map.is_empty() {
                v.push(("map", usize_list(map)));
            }
            v.push(("pfks_base_log", pfks_base_log.to_string()));
            v.push(("pfks_level", pfks_level.to_string()));
            v.push(("cbs_base_log", cbs_base_log.to_string()));
            v.push(("cbs_level", cbs_level.to_string()));
            v.push(("out_bits", out_bits.to_string()));
            v
        }
        Op::Round {
            lsbs,
            approx,
            rescale,
        } => {
            let mut v = vec![("lsbs", lsbs.to_string())];
            if *approx {
                v.push(("approx", "true".to_string()));
            }
            if *rescale {
                v.push(("rescale", "true".to_string()));
            }
            v
        }
        Op::KeySwitchShr { shift } | Op::KeySwitchRound { shift } => {
            vec![("shift", shift.to_string())]
        }
        Op::KeySwitchBit { bit } => vec![("bit", bit.to_string())],
        Op::Clip { lo, hi } => vec![("lo", lo.to_string()), ("hi", hi.to_string())],
        Op::Input { .. }
        | Op::Const { .. }
        | Op::Output { .. }
        | Op::Add
        | Op::Sub
        | Op::Neg
        | Op::Mul
        | Op::MatMul
        | Op::Reshape
        | Op::Broadcast
        | Op::Cmp(_)
        | Op::Min
        | Op::Max
        | Op::Relu
        | Op::Abs
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Where
        | Op::KeySwitch => vec![],
    }
}

fn table_ref(t: TableId) -> String {
    format!("@t{}", t.0)
}

fn table_list(ts: &[TableId]) -> String {
    let items: Vec<String> = ts.iter().map(|t| table_ref(*t)).collect();
    format!("[{}]", items.join(","))
}

fn usize_list<T: ToString>(xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

fn int_list(xs: &[i64]) -> String {
    usize_list(xs)
}

/// A constant as a nested list (a bare integer for a scalar).
fn const_literal(g: &Graph, id: ConstId) -> String {
    let Some(c) = g.constant(id) else {
        return format!("<missing constant {}>", id.0);
    };
    if numel(&c.shape) != c.values.len() {
        // Malformed pool entry: print the flat values; the parser reports the mismatch.
        return int_list(&c.values);
    }
    let mut out = String::new();
    nested(&mut out, &c.shape, &c.values);
    out
}

/// Writes `values` (row-major, `numel(shape)` of them) as a nested list.
pub(crate) fn nested(out: &mut String, shape: &[usize], values: &[i64]) {
    match shape.split_first() {
        None => {
            let _ = write!(out, "{}", values.first().copied().unwrap_or(0));
        }
        Some((&n, rest)) => {
            let chunk = numel(rest);
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                nested(
                    out,
                    rest,
                    values.get(i * chunk..(i + 1) * chunk).unwrap_or(&[]),
                );
            }
            out.push(']');
        }
    }
}
