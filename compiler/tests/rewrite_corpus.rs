//! The corpus of `rewrite_util::CORPUS` through the default pipeline: PBS count and cost
//! before/after (run with `--nocapture` to see the table). Each must not get costlier, must
//! compute the same, and must compile in under a second.

mod rewrite_util;
use rewrite_util::*;
use veil_compiler::passes::{PassContext, PassManager, DEFAULT_PIPELINE};
use veil_compiler::rewrite::cost::graph_cost;

/// Expected PBS counts `(before, after)` per corpus program.
const EXPECTED: &[(&str, (u64, u64))] = &[
    ("mlp-relu-requant", (5, 3)),
    ("poly-x2-plus-relu", (9, 3)),
    ("argmax2", (4, 2)),
    ("shared-activation", (12, 8)),
    ("mul-enc-enc", (6, 2)),
    ("matmul-enc-enc", (10, 10)),
    ("minmax-relu", (4, 3)),
    // the exact round stays: 3 one-bit extractions and a 3-bit lookup per element
    ("round-requant", (10, 8)),
    ("lincomb-chain", (4, 2)),
];

#[test]
fn corpus_figures() {
    assert_eq!(EXPECTED.len(), CORPUS.len());
    let mut wrong = Vec::new();
    println!("| program | PBS before | PBS after | cost before | cost after | ms |");
    for ((name, src), (ename, pbs)) in CORPUS.iter().zip(EXPECTED) {
        assert_eq!(name, ename);
        let orig = parse(src);
        let mut g = orig.clone();
        let before = graph_cost(&g);
        let t = std::time::Instant::now();
        PassManager::from_names(DEFAULT_PIPELINE)
            .unwrap()
            .run(&mut g, &mut PassContext::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let after = graph_cost(&g);
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {ms:.1} |",
            before.pbs, after.pbs, before.cost, after.cost
        );
        assert_equivalent(&orig, &g, 3);
        if (before.pbs, after.pbs) != *pbs {
            wrong.push(format!(
                "{name}: PBS {:?}, expected {pbs:?}:\n{}",
                (before.pbs, after.pbs),
                veil_ir::text::print(&g)
            ));
        }
        assert!(after.cost <= before.cost, "{name}");
        assert!(ms < 1000.0, "{name}: {ms} ms");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
