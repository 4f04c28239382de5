//! Bootstraps of one width are partitioned by the region they read, so that the optimizer can
//! give lookups whose outputs feed small weights a cheaper set than lookups whose outputs feed
//! a wide dot product decoded by the client (Concrete's partitions by precision and norm2).
//! The encrypted semantics do not change: the lowered program equals the reference
//! interpreter (checked by the lowering tests); here, the split and its price.

use veil_compiler::program::{compile, CompileConfig};
use veil_ir::builder::Builder;
use veil_ir::{Graph, IntType, Tensor};

/// `y = f(x)` (5-bit lookup); `s` = sums of pairs of `y` (weights 1); `z = g(s)` (a 5-bit
/// lookup of another region); `out = z @ W` with wide weights, decoded exactly by the client.
fn program() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[8], IntType::unsigned(5)).unwrap();
    let y = b.tlu(x, |v| (v * 7 + 3) % 16).unwrap();
    let pairs = b.reshape(y, &[4, 2]).unwrap();
    let s = b.sum(pairs, &[1], false).unwrap();
    let z = b.tlu(s, |v| (v * v) % 29).unwrap();
    let w: Vec<i64> = (0..12)
        .map(|i| [31, -29, 27, -25][i % 4] - i as i64)
        .collect();
    let wc = b.constant(&[4, 3], &w).unwrap();
    let out = b.matmul(z, wc).unwrap();
    b.output("out", out).unwrap();
    b.finish().unwrap()
}

fn inputset() -> Vec<Vec<Tensor<i64>>> {
    (0..32)
        .map(|i| {
            let x: Vec<i64> = (0..8).map(|j| (i * 5 + j * 3) % 32).collect();
            vec![Tensor::new(vec![8], x).unwrap()]
        })
        .collect()
}

#[test]
fn lookups_of_one_width_feeding_different_weights_get_their_own_sets() {
    let g = program();
    let split = compile(&g, &inputset(), &CompileConfig::default()).unwrap();
    let single = compile(
        &g,
        &inputset(),
        &CompileConfig {
            single_parameter_set: true,
            ..CompileConfig::default()
        },
    )
    .unwrap();
    let (s, m) = (&split.stats, &single.stats);
    assert_eq!(s.pbs_by_precision, m.pbs_by_precision, "same lookups");
    assert_eq!(m.params.len(), 1);
    assert_eq!(s.params.len(), 2, "{}", s.summary());
    // the set of the lookup feeding the pair sums is the cheaper one
    let levels: Vec<usize> = s.params.iter().map(|p| p.pbs_level).collect();
    assert_ne!(levels[0], levels[1], "{:?}", s.params);
    assert!(
        s.estimated_latency_ms < m.estimated_latency_ms / (1.0 + 0.02),
        "split {} ms against one set {} ms",
        s.estimated_latency_ms,
        m.estimated_latency_ms
    );
}
