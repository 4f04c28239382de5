//! Graphviz export: `to_dot(&g)` renders a graph for `dot -Tsvg`.
//!
//! One node per op, labelled `%N = op attrs` and the result type (numbers as in the text form).
//! Encrypted values are filled boxes, clear values white dashed boxes, inputs and outputs are
//! ellipses, and ops that need programmable bootstraps ([`Op::needs_pbs`]) are red and bold.
//! Edges are labelled with the operand position when an op has several operands.

use crate::graph::Graph;
use crate::ops::Op;
use crate::text;
use std::fmt::Write;

/// Escapes a string for a double-quoted Graphviz label.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders `graph` as a Graphviz digraph.
pub fn to_dot(graph: &Graph) -> String {
    let mut g = graph.clone();
    g.compact_pools();
    let nums = g.value_numbers();
    let mut order = g.topo_order().unwrap_or_else(|_| g.values());
    order.retain(|v| !matches!(g.op(*v), Op::Output { .. }));
    order.extend(g.outputs());
    let id = |v: crate::ValueId| format!("n{}", v.index());
    let mut out = String::from(
        "digraph veil {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n",
    );
    for &v in &order {
        let node = g.node(v);
        let operands = g.operands(v);
        let head = match &node.op {
            Op::Input { name } => format!("%{} = input {name:?}", nums[&v]),
            Op::Output { name } => format!("output {name:?}"),
            Op::Const { value } => {
                let shown = g
                    .constant(*value)
                    .filter(|c| c.values.len() <= 16)
                    .map(|c| {
                        text::tensor_literal(&crate::Tensor {
                            shape: c.shape.clone(),
                            data: c.values.clone(),
                        })
                    })
                    .unwrap_or_else(|| "...".into());
                format!("%{} = const {shown}", nums[&v])
            }
            op => {
                let mut s = format!("%{} = {}", nums[&v], op.name());
                for (name, val) in crate::text::attrs(op) {
                    let val = if val.len() > 40 {
                        format!("{}...", &val[..37])
                    } else {
                        val
                    };
                    let _ = write!(s, " {name}={val}");
                }
                s
            }
        };
        let enc_operands = operands.iter().filter(|o| g.ty(**o).is_encrypted()).count();
        let pbs = node.op.needs_pbs(enc_operands);
        let shape = match node.op {
            Op::Input { .. } | Op::Output { .. } => "ellipse",
            _ => "box",
        };
        let mut style = vec![];
        let (fill, border) = if node.ty.is_encrypted() {
            style.push("filled");
            ("#d9e8fb", if pbs { "#c0392b" } else { "#2c5d8f" })
        } else {
            style.push("dashed");
            ("white", "#666666")
        };
        if pbs {
            style.push("bold");
        }
        let _ = writeln!(
            out,
            "  {} [label=\"{}\\n{}\", shape={shape}, style=\"{}\", fillcolor=\"{fill}\", color=\"{border}\"{}];",
            id(v),
            esc(&head),
            esc(&node.ty.to_string()),
            style.join(","),
            if pbs { ", penwidth=2, fontcolor=\"#c0392b\"" } else { "" },
        );
        for (i, o) in operands.iter().enumerate() {
            let label = if operands.len() > 1 {
                format!(" [label=\"{i}\"]")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {} -> {}{label};", id(*o), id(v));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_styles() {
        let g = crate::text::parse(
            "veil 1\ntable @t0 = [0,1,4,9]\n%0 = input \"x\" : enc<u2>[2]\n\
             %1 = const [1,2] : clear<u2>[2]\n%2 = add %0, %1 : enc<u3>[2]\n\
             %3 = tlu %0 table=@t0 : enc<u4>[2]\noutput \"y\", %2\noutput \"z\", %3\n",
        )
        .unwrap();
        let d = to_dot(&g);
        assert!(d.starts_with("digraph veil {"), "{d}");
        assert!(
            d.contains(
                "label=\"%0 = input \\\"x\\\"\\nenc<u2>[2]\", shape=ellipse, style=\"filled\""
            ),
            "{d}"
        );
        assert!(
            d.contains("label=\"%1 = const [1,2]\\nclear<u2>[2]\", shape=box, style=\"dashed\""),
            "{d}"
        );
        assert!(
            d.contains("%3 = tlu table=@t0\\nenc<u4>[2]\", shape=box, style=\"filled,bold\""),
            "{d}"
        );
        assert!(d.contains("[label=\"1\"]"), "{d}");
        assert_eq!(d.matches(" -> ").count(), 5);
        assert!(
            !d.contains("%2 = add\\nenc<u3>[2]\", shape=box, style=\"filled,bold"),
            "{d}"
        );
    }
}
