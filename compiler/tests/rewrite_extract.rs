//! DAG extraction against egg's tree extraction on a program with sharing.

mod rewrite_util;
use rewrite_util::*;
use veil_compiler::rewrite::{convert, cost, extract, saturate, RewriteConfig};

/// `s = f(x)` on 8 bits is an output and also feeds `g = s * s` (a 3-bit lookup of `s`).
/// Fusing `g . f` into one 8-bit lookup looks cheaper as a tree (`c8 < c8 + c3`), but `s` is
/// computed anyway, so the DAG cost of keeping `g(s)` is only `c3` more (`c8 > c3`).
const SHARED: &str = r#"veil 1
%0 = input "x" : enc<u8>
%1 = const 32 : clear<u6>
%2 = sub %0, %1 : enc<i9>
%3 = clip %2 lo=0 hi=7 : enc<u3>
%4 = mul %3, %3 : enc<u6>
output "s", %3
output "y", %4
"#;

#[test]
fn dag_extraction_beats_tree_extraction_with_sharing() {
    let mut g = parse(SHARED);
    // the bitwidth pass would narrow %2; keep the program as written (x is 8 bits)
    g.compact_pools();
    let sat = saturate(&g, None, &RewriteConfig::default()).unwrap();
    let roots: Vec<_> = sat
        .loaded
        .inputs
        .iter()
        .chain(&sat.loaded.outputs)
        .copied()
        .collect();
    let eg = &sat.loaded.egraph;
    let model = cost::CostModel::default();
    let dag = extract::dag_extract(eg, &model, &roots).unwrap();
    let tree = extract::tree_extract(eg, &model, &roots);
    let (gd, gt) = (
        convert::from_choice(&sat.loaded, &dag, &g).unwrap(),
        convert::from_choice(&sat.loaded, &tree, &g).unwrap(),
    );
    assert_equivalent(&g, &gd, 1);
    assert_equivalent(&g, &gt, 2);
    let (cd, ct) = (cost::graph_cost(&gd), cost::graph_cost(&gt));
    assert!(
        cd.cost < ct.cost,
        "dag {cd:?} vs tree {ct:?}\n{}\n{}",
        veil_ir::text::print(&gd),
        veil_ir::text::print(&gt)
    );
    assert!(extract::choice_cost(eg, &model, &dag) < extract::choice_cost(eg, &model, &tree));
}

#[test]
fn saturation_limits_are_reported() {
    let cfg = RewriteConfig {
        iter_limit: 1,
        ..Default::default()
    };
    let g = parse(SHARED);
    let (_, r) = veil_compiler::rewrite::rewrite_graph(&g, None, &cfg).unwrap();
    assert_eq!(r.iterations, 1);
    assert_eq!(r.stop_reason, "IterationLimit");
    let cfg = RewriteConfig {
        node_limit: 5,
        ..Default::default()
    };
    let (_, r) = veil_compiler::rewrite::rewrite_graph(&g, None, &cfg).unwrap();
    assert_eq!(r.stop_reason, "NodeLimit");
}
