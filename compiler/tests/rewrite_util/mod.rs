//! Shared helpers of the rewrite and pass tests: parse, rewrite, and check that the rewritten
//! program computes exactly what the original does (interpreter, every input or a fixed-seed
//! random sample of them).

#![allow(dead_code)]

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_compiler::rewrite::{rewrite_graph, RewriteConfig, RewriteReport};
use veil_ir::{interp, text, Graph, IntType, Tensor};

/// Parses a program (panics with the parse error: test programs are fixed strings).
pub fn parse(src: &str) -> Graph {
    text::parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

/// Deterministic random values for tests (ChaCha8 from a fixed seed).
pub struct SampleRng(ChaCha8Rng);

impl SampleRng {
    /// The generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SampleRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform value of `t`'s range.
    pub fn value(&mut self, t: IntType) -> i64 {
        self.0.gen_range(t.min()..=t.max()) as i64
    }
}

/// Input samples for `g`: every combination when there are at most 4096 (all inputs scalar or
/// tiny), else `n` random ones from a fixed seed.
pub fn samples(g: &Graph, n: usize, seed: u64) -> Vec<Vec<Tensor<i64>>> {
    let inputs = g.inputs();
    let types: Vec<_> = inputs.iter().map(|v| g.ty(*v).clone()).collect();
    let total_elems: u32 = types
        .iter()
        .map(|t| t.numel() as u32 * t.int.bits as u32)
        .sum();
    if total_elems <= 12 {
        let mut out = vec![vec![]];
        for t in &types {
            let mut next = vec![];
            for prefix in &out {
                let combos = (t.int.domain_size() as usize).pow(t.numel() as u32);
                for mut c in 0..combos {
                    let mut data = vec![];
                    for _ in 0..t.numel() {
                        let d = t.int.domain_size() as usize;
                        data.push((t.int.min() + (c % d) as i128) as i64);
                        c /= d;
                    }
                    let mut p: Vec<Tensor<i64>> = prefix.clone();
                    p.push(Tensor::new(t.shape.clone(), data).expect("shape"));
                    next.push(p);
                }
            }
            out = next;
        }
        return out;
    }
    let mut rng = SampleRng::new(seed);
    (0..n)
        .map(|_| {
            types
                .iter()
                .map(|t| {
                    let data = (0..t.numel()).map(|_| rng.value(t.int)).collect();
                    Tensor::new(t.shape.clone(), data).expect("shape")
                })
                .collect()
        })
        .collect()
}

/// Asserts that `a` and `b` compute the same outputs on `samples(a)`.
pub fn assert_equivalent(a: &Graph, b: &Graph, seed: u64) {
    for s in samples(a, 300, seed) {
        let ra = interp::run(a, &s).unwrap_or_else(|e| panic!("original fails on {s:?}: {e}"));
        let rb = interp::run(b, &s).unwrap_or_else(|e| {
            panic!(
                "rewritten fails on {s:?}: {e}\n{}\noriginal:\n{}",
                text::print(b),
                text::print(a)
            )
        });
        assert_eq!(
            ra,
            rb,
            "outputs differ on {s:?}\nrewritten:\n{}\noriginal:\n{}",
            text::print(b),
            text::print(a)
        );
    }
}

/// Rewrites `src` with `cfg`, checks the result verifies and is equivalent, returns it.
pub fn rewrite_with(src: &str, cfg: &RewriteConfig) -> (Graph, Graph, RewriteReport) {
    let g = parse(src);
    let (out, report) = rewrite_graph(&g, None, cfg).unwrap_or_else(|e| panic!("{e}\n{src}"));
    veil_ir::verify::verify(&out)
        .unwrap_or_else(|e| panic!("{e}\nrewritten:\n{}", text::print(&out)));
    assert_equivalent(&g, &out, 0x5eed);
    (g, out, report)
}

/// `start => goal`: rewriting `start` prints as `goal` (both canonicalized by the printer) and
/// is equivalent to it; the PBS count goes `pbs.0 -> pbs.1`.
pub fn check(start: &str, goal: &str, pbs: (u64, u64)) {
    let (_, out, report) = rewrite_with(start, &RewriteConfig::default());
    let want = text::print(&parse(goal));
    assert_eq!(text::print(&out), want, "report: {report:?}");
    assert_eq!(
        (report.pbs_before, report.pbs_after),
        pbs,
        "report: {report:?}"
    );
}

/// Saturates `src` and checks *every* e-node of every class against the interpreter: for each
/// node, the greedy-DAG choice with that class overridden by that node is emitted (skipped if
/// the override makes the choice cyclic) and must be equivalent to the original. Returns
/// (alternatives checked, skipped).
pub fn check_all_alternatives(src: &str, cfg: &RewriteConfig) -> (usize, usize) {
    use veil_compiler::rewrite::{convert, extract, saturate};
    let g = parse(src);
    let sat = saturate(&g, None, cfg).unwrap_or_else(|e| panic!("{e}"));
    let eg = &sat.loaded.egraph;
    let base = extract::dag_choices(eg, &cfg.cost_model());
    let (mut checked, mut skipped) = (0, 0);
    for class in eg.classes() {
        if class.data.is_none() {
            continue;
        }
        for n in &class.nodes {
            let mut choice = base.clone();
            choice.insert(class.id, n.clone());
            match convert::from_choice(&sat.loaded, &choice, &g) {
                Ok(out) => {
                    veil_ir::verify::verify(&out).unwrap_or_else(|e| {
                        panic!("alternative {n:?}: {e}\n{}", text::print(&out))
                    });
                    assert_equivalent(&g, &out, 0xa17);
                    checked += 1;
                }
                Err(_) => skipped += 1,
            }
        }
    }
    (checked, skipped)
}

/// A corpus of programs: `(name, source)`, shared by the corpus figures and the
/// rewrite/lowering consistency tests.
pub const CORPUS: &[(&str, &str)] = &[
    (
        "mlp-relu-requant",
        r#"veil 1
%0 = input "x" : enc<u3>[1,4]
%1 = const [[1,-1],[2,0],[0,1],[-1,1]] : clear<i3>[4,2]
%2 = matmul %0, %1 : enc<i6>[1,2]
%3 = relu %2 : enc<u5>[1,2]
%4 = const 2 : clear<u2>
%5 = sub %3, %4 : enc<i6>[1,2]
%6 = clip %5 lo=0 hi=7 : enc<u3>[1,2]
%7 = const [[1],[-2]] : clear<i3>[2,1]
%8 = matmul %6, %7 : enc<i5>[1,1]
%9 = abs %8 : enc<u4>[1,1]
output "y", %9
"#,
    ),
    (
        "poly-x2-plus-relu",
        r#"veil 1
%0 = input "x" : enc<i4>[3]
%1 = mul %0, %0 : enc<u7>[3]
%2 = relu %0 : enc<u3>[3]
%3 = const 3 : clear<u2>
%4 = mul %2, %3 : enc<u5>[3]
%5 = add %1, %4 : enc<u8>[3]
output "y", %5
"#,
    ),
    (
        "argmax2",
        r#"veil 1
%0 = input "a" : enc<u3>[2]
%1 = input "b" : enc<u3>[2]
%2 = gt %0, %1 : enc<u1>[2]
%3 = max %0, %1 : enc<u3>[2]
%4 = const 8 : clear<u4>
%5 = mul %2, %4 : enc<u4>[2]
%6 = add %5, %3 : enc<u4>[2]
output "y", %6
"#,
    ),
    (
        "shared-activation",
        r#"veil 1
%0 = input "x" : enc<i4>[4]
%1 = relu %0 : enc<u3>[4]
%2 = relu %0 : enc<u3>[4]
%3 = const 1 : clear<u1>
%4 = add %2, %3 : enc<u4>[4]
%5 = clip %4 lo=0 hi=5 : enc<u3>[4]
output "a", %1
output "b", %5
"#,
    ),
    (
        "mul-enc-enc",
        r#"veil 1
%0 = input "a" : enc<u2>[2]
%1 = input "b" : enc<i3>[2]
%2 = mul %0, %1 : enc<i5>[2]
%3 = relu %2 : enc<u4>[2]
output "y", %3
"#,
    ),
    (
        "matmul-enc-enc",
        r#"veil 1
%0 = input "a" : enc<u2>[1,2]
%1 = input "b" : enc<i2>[2,2]
%2 = matmul %0, %1 : enc<i5>[1,2]
%3 = abs %2 : enc<u4>[1,2]
output "y", %3
"#,
    ),
    (
        "minmax-relu",
        r#"veil 1
%0 = input "a" : enc<i3>
%1 = input "b" : enc<i3>
%2 = max %0, %1 : enc<i3>
%3 = relu %2 : enc<u2>
%4 = min %0, %1 : enc<i3>
%5 = const 1 : clear<u1>
%6 = max %4, %5 : enc<u2>
output "y", %3
output "z", %6
"#,
    ),
    (
        "round-requant",
        r#"veil 1
%0 = input "x" : enc<u6>[2]
%1 = round %0 lsbs=3 : enc<u7>[2]
%2 = const 8 : clear<u4>
%3 = sub %1, %2 : enc<i8>[2]
%4 = relu %3 : enc<u7>[2]
%5 = clip %4 lo=0 hi=31 : enc<u5>[2]
output "y", %5
"#,
    ),
    (
        "lincomb-chain",
        r#"veil 1
%0 = input "x" : enc<i3>[2]
%1 = input "y" : enc<u2>[2]
%2 = relu %0 : enc<u2>[2]
%3 = add %2, %1 : enc<u3>[2]
%4 = abs %0 : enc<u3>[2]
%5 = sub %3, %4 : enc<i4>[2]
%6 = const 3 : clear<u2>
%7 = add %5, %6 : enc<i4>[2]
output "z", %7
"#,
    ),
];
