//! Long programs compile to what they compute: chains of a few thousand ops (levelled only,
//! and levelled ops interleaved with lookups that the rewrite fuses) and a wide dot product go
//! through the whole `compile` pipeline, and the optimized tensor-level program and the
//! lowered one (in simulation) agree with the reference interpreter on the source. No timing
//! here: compile time against size is the `compile_time` benchmark's business.
//!
//! Programs are built node by node with the value ranges as declared types (type inference
//! alone widens a chain by a bit per op).

use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ir::{interp, Constant, Graph, IntType, Op, Table, Tensor, TensorType, ValueId};

/// A graph under construction, every value typed by the range it is declared to hold.
struct Prog {
    g: Graph,
}

impl Prog {
    fn new() -> Self {
        Prog { g: Graph::new() }
    }

    fn input(&mut self, shape: &[usize], bits: u8) -> ValueId {
        let ty = TensorType::encrypted(IntType::unsigned(bits), shape.to_vec());
        self.g.add_node(Op::Input { name: "x".into() }, ty, &[])
    }

    fn scalar(&mut self, c: i64) -> ValueId {
        let id = self.g.add_const(Constant {
            shape: vec![],
            values: vec![c],
        });
        let int = IntType::fitting(c as i128, c as i128).unwrap();
        self.g
            .add_node(Op::Const { value: id }, TensorType::clear(int, vec![]), &[])
    }

    fn op(&mut self, op: Op, operands: &[ValueId], lo: i128, hi: i128, shape: &[usize]) -> ValueId {
        let int = IntType::fitting(lo, hi).unwrap();
        self.g
            .add_node(op, TensorType::encrypted(int, shape.to_vec()), operands)
    }

    fn tlu(&mut self, x: ValueId, f: impl Fn(i64) -> i64) -> ValueId {
        let t = self.g.ty(x).clone();
        let entries: Vec<i64> = (t.int.min()..=t.int.max()).map(|v| f(v as i64)).collect();
        let lo = *entries.iter().min().unwrap() as i128;
        let hi = *entries.iter().max().unwrap() as i128;
        let table = self.g.add_table(Table { entries });
        self.op(Op::Tlu { table }, &[x], lo, hi, &t.shape)
    }

    fn finish(mut self, y: ValueId) -> Graph {
        let ty = self.g.ty(y).clone();
        self.g.add_node(Op::Output { name: "y".into() }, ty, &[y]);
        veil_ir::verify(&self.g).unwrap();
        self.g
    }
}

/// Every value of a `u4` scalar input.
fn all_u4() -> Vec<Vec<Tensor<i64>>> {
    (0..16)
        .map(|v| vec![Tensor::new(vec![], vec![v]).unwrap()])
        .collect()
}

/// Compiles `g` calibrated on `set` and checks it against the interpreter on `inputs`.
fn compile_and_check(g: &Graph, set: &[Vec<Tensor<i64>>], inputs: &[Vec<Tensor<i64>>]) -> Program {
    let p = compile(g, set, &CompileConfig::default()).unwrap();
    for (i, x) in inputs.iter().enumerate() {
        let want = interp::run(g, x).unwrap();
        assert_eq!(p.clear(x).unwrap(), want, "optimized program, input {i}");
        assert_eq!(
            p.simulate(x, i as u64).unwrap(),
            want,
            "lowered program, input {i}"
        );
    }
    p
}

#[test]
fn a_long_negation_chain_compiles_to_levelled_ops() {
    let mut p = Prog::new();
    let mut v = p.input(&[], 4);
    for _ in 0..3001 {
        v = p.op(Op::Neg, &[v], -15, 15, &[]);
    }
    let g = p.finish(v);
    let prog = compile_and_check(&g, &all_u4(), &all_u4());
    assert_eq!(prog.stats.pbs, 0);
    // an odd number of negations
    let y = prog
        .clear(&[Tensor::new(vec![], vec![7]).unwrap()])
        .unwrap();
    assert_eq!(y[0].data, vec![-7]);
}

#[test]
fn a_long_chain_of_lookups_and_levelled_ops_is_fused_and_correct() {
    let mut p = Prog::new();
    let mut v = p.input(&[], 4);
    let c = p.scalar(3);
    for i in 0..600 {
        let k = (i % 7) as i64 + 2;
        v = p.tlu(v, move |a| (a * k + 1).rem_euclid(16));
        v = p.op(Op::Add, &[v, c], 3, 18, &[]);
        v = p.op(Op::Neg, &[v], -18, -3, &[]);
        v = p.op(Op::Sub, &[v, c], -21, -6, &[]);
    }
    let g = p.finish(v);
    assert!(g.len() > 2400, "{} nodes", g.len());
    let prog = compile_and_check(&g, &all_u4(), &all_u4());
    let rw = prog
        .report
        .passes
        .iter()
        .find(|r| r.pass == "rewrite")
        .unwrap();
    let (before, after) = (
        rw.stats.counters["pbs_before"],
        rw.stats.counters["pbs_after"],
    );
    assert_eq!(before, 600);
    assert!(after < before, "no lookup fused: {before} -> {after}");
    // Tables are tabulated over calibrated ranges: once the chain's values collapse to one
    // per input (`a * k` mod 16 with an even `k` drops bits), the later lookups are constant
    // and lower to trivial encryptions, not bootstraps.
    assert!(prog.stats.pbs as i64 <= after);
    assert_eq!(prog.stats.pbs, 3);
}

#[test]
fn a_wide_dot_product_with_grouped_lookups_is_correct() {
    let k = 1024;
    let mut p = Prog::new();
    let x = p.input(&[k], 2);
    let w: Vec<_> = [-2, -1, 1, 2].iter().map(|&c| p.scalar(c)).collect();
    let mut total: Option<ValueId> = None;
    for (gi, g) in (0..k).step_by(32).enumerate() {
        let mut terms: Vec<ValueId> = (g..g + 32)
            .map(|i| {
                let s = Op::Slice {
                    starts: vec![i],
                    stops: vec![i + 1],
                    steps: vec![1],
                };
                let s = p.op(s, &[x], 0, 3, &[1]);
                let e = p.op(Op::Reshape, &[s], 0, 3, &[]);
                p.op(Op::Mul, &[e, w[i % 4]], -6, 6, &[])
            })
            .collect();
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|c| p.op(Op::Add, &[c[0], c[1]], -192, 192, &[]))
                .collect();
        }
        let q = p.tlu(terms[0], |v| (v / 8).clamp(0, 15));
        total = Some(match total {
            None => q,
            Some(t) => p.op(Op::Add, &[t, q], 0, 15 * (gi as i128 + 1), &[]),
        });
    }
    let g = p.finish(total.unwrap());
    assert!(g.len() > 4000, "{} nodes", g.len());
    let sample = |seed: i64| {
        let data = (0..k as i64)
            .map(|i| (i * 7 + seed * 3 + i / 5) % 4)
            .collect();
        vec![Tensor::new(vec![k], data).unwrap()]
    };
    let set: Vec<_> = (0..4).map(sample).collect();
    let prog = compile_and_check(&g, &set, &set);
    // one lookup per group, except the 6 groups whose calibrated sums all map to one value
    // (a constant table: a trivial encryption, no bootstrap)
    assert_eq!(prog.stats.pbs, 26);
}
