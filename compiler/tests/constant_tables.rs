//! Lookups whose table is constant on some elements (the dead neurons of a ReLU network: a
//! per-neuron `tlu.multi` whose table is flat over the neuron's whole domain) cost nothing
//! there: the lowered `pbs` bootstraps only the other elements, the keyswitch before it skips
//! them, and the statistics count only the bootstraps that run. The encrypted result still
//! equals the reference interpreter on every sample.

use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ir::builder::Builder;
use veil_ir::{Graph, IntType, Op, Tensor};

const N: usize = 4;

/// `y = tlu.multi(x)` with per-element tables `[x^2 mod 11, 3, 15 - x, 0]`, then a clear
/// weighted sum (so the constant elements reach the output through levelled ops).
fn program() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[N], IntType::unsigned(4)).unwrap();
    let sq: Vec<i64> = (0..16).map(|v| v * v % 11).collect();
    let three = vec![3; 16];
    let down: Vec<i64> = (0..16).map(|v| 15 - v).collect();
    let zero = vec![0; 16];
    let t = b
        .tlu_multi(x, vec![sq, three, down, zero], vec![0, 1, 2, 3])
        .unwrap();
    let w = b.constant(&[N], &[2, -1, 1, 5]).unwrap();
    let p = b.mul(t, w).unwrap();
    let s = b.sum(p, &[0], false).unwrap();
    b.output("t", t).unwrap();
    b.output("s", s).unwrap();
    b.finish().unwrap()
}

fn sample(v: i64) -> Vec<Tensor<i64>> {
    let x: Vec<i64> = (0..N as i64).map(|j| (v + 5 * j) % 16).collect();
    vec![Tensor::new(vec![N], x).unwrap()]
}

fn compiled() -> (Graph, Program) {
    let g = program();
    let inputset: Vec<_> = (0..16).map(sample).collect();
    let p = compile(&g, &inputset, &CompileConfig::default()).unwrap();
    (g, p)
}

#[test]
fn constant_elements_are_not_bootstrapped() {
    let (_, p) = compiled();
    assert_eq!(p.stats.pbs, 2, "{}", p.stats.summary());
    let t = &p.tfhe;
    let pbs: Vec<_> = t
        .values()
        .into_iter()
        .filter(|&v| matches!(t.op(v), Op::Pbs { .. }))
        .collect();
    assert_eq!(pbs.len(), 1);
    assert_eq!(t.bootstraps(pbs[0]), 2);
    // the keyswitch feeding it computes the two elements the bootstrap reads
    let ks = t.operands(pbs[0])[0];
    assert_eq!(t.elements_read(ks), Some(vec![true, false, true, false]));
}

#[test]
fn encrypted_run_equals_the_interpreter() {
    let (g, p) = compiled();
    let (ck, sk) = p.keygen(3).unwrap();
    for v in [0, 7, 15] {
        let s = sample(v);
        let want = veil_ir::run(&g, &s).unwrap();
        let enc = p.encrypt(&ck, &s).unwrap();
        let got = p.decrypt(&ck, &p.run(&sk, enc).unwrap()).unwrap();
        assert_eq!(got, want, "sample {v}");
        assert_eq!(
            p.simulate(&s, v as u64).unwrap(),
            want,
            "simulated, sample {v}"
        );
    }
}
