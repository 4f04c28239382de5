//! End to end through the embedder API: compile (passes, lowering, optimizer-chosen secure
//! parameters), generate real keys, encrypt, run on ciphertexts, decrypt, and compare with the
//! reference interpreter; plus simulation and the ML backends.

use std::sync::OnceLock;
use veil_compiler::optimizer::ErrorTarget;
use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ir::{Builder, Graph, IntType, Tensor};
use veil_ml::backend::{ExecuteBackend, SimulateBackend};
use veil_ml::{dataset, FheClassifier, LogisticRegression};
use veil_runtime::{ClientKeys, ServerKeys};

/// A program with every bootstrap kind the lowering emits: a table, a comparison of two
/// encrypted values, an encrypted product and a levelled dot product.
fn program_graph() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], IntType::unsigned(2)).unwrap();
    let y = b.input_encrypted("y", &[3], IntType::unsigned(2)).unwrap();
    let sq = b.tlu(x, |v| (v * v + 1) % 4).unwrap();
    let lt = b.lt(x, y).unwrap();
    let p = b.mul(x, y).unwrap();
    let w = b.constant(&[3], &[1, 2, 1]).unwrap();
    let dot = b.matmul(sq, w).unwrap();
    b.output("lt", lt).unwrap();
    b.output("p", p).unwrap();
    b.output("dot", dot).unwrap();
    b.finish().unwrap()
}

fn all_inputs() -> Vec<Vec<Tensor<i64>>> {
    (0..16)
        .map(|i| {
            let x = vec![i % 4, (i / 4) % 4, (i + 1) % 4];
            let y = vec![(i / 4) % 4, i % 4, (i + 3) % 4];
            vec![
                Tensor::new(vec![3], x).unwrap(),
                Tensor::new(vec![3], y).unwrap(),
            ]
        })
        .collect()
}

/// One compiled program and its keys, shared by the tests (keygen takes seconds).
fn compiled() -> &'static (Program, ClientKeys, ServerKeys) {
    static P: OnceLock<(Program, ClientKeys, ServerKeys)> = OnceLock::new();
    P.get_or_init(|| {
        let cfg = CompileConfig {
            error: ErrorTarget::p_error(2f64.powi(-20)),
            ..Default::default()
        };
        let p = compile(&program_graph(), &all_inputs(), &cfg).unwrap();
        let (c, s) = p.keygen(7).unwrap();
        (p, c, s)
    })
}

#[test]
fn encrypted_equals_interpreter_with_optimizer_parameters() {
    let (p, client, server) = compiled();
    let params = &p.tfhe.params[0];
    assert!(params.is_secure(), "{:?}", params.insecurity());
    assert!(params.p_error <= 2f64.powi(-20));
    assert!(p.stats.pbs > 0);
    for inputs in all_inputs().iter().take(4) {
        let want = veil_ir::interp::run(&p.source, inputs).unwrap();
        let ct = p.encrypt(client, inputs).unwrap();
        let out = p.run(server, ct).unwrap();
        assert_eq!(p.decrypt(client, &out).unwrap(), want, "inputs {inputs:?}");
        assert_eq!(p.clear(inputs).unwrap(), want);
    }
}

#[test]
fn simulation_matches_interpreter_exhaustively() {
    let (p, _, _) = compiled();
    for inputs in all_inputs() {
        let want = veil_ir::interp::run(&p.source, &inputs).unwrap();
        assert_eq!(p.simulate(&inputs, 1).unwrap(), want);
    }
}

#[test]
fn stats_are_consistent() {
    let (p, _, _) = compiled();
    let s = &p.stats;
    assert_eq!(s.pbs_by_precision.values().sum::<u64>(), s.pbs);
    assert!(s.global_p_error >= s.p_error);
    assert!(s.bsk_bytes > 0);
    // Keyswitch keys exist exactly when a keyswitch changes the key (inputs that only feed
    // bootstraps are encrypted under the small key).
    assert_eq!(s.ksk_bytes > 0, s.keyswitches > 0);
    assert_eq!(s.partitions.iter().map(|p| p.pbs).sum::<u64>(), s.pbs);
    assert!(s.partitions.iter().all(|p| p.set < s.params.len()));
    assert!(s.estimated_latency_ms > 0.0);
    let json = serde_json::to_string(s).unwrap();
    assert!(json.contains("\"pbs\""));
}

#[test]
fn ml_backends_agree_with_clear_mode() {
    let data = dataset::breast_cancer().unwrap();
    let split = dataset::train_test_split(&data, 0.25, 0).unwrap();
    let ytr = split.train.classes().unwrap();
    let mut m = LogisticRegression::new();
    m.fit(&split.train.x, &ytr).unwrap();
    let compiled = m
        .compile(&split.train.x, &Default::default())
        .unwrap()
        .clone();
    let inputset: Vec<Vec<Tensor<i64>>> = compiled
        .client
        .encode(&split.train.x)
        .unwrap()
        .into_iter()
        .map(|t| vec![t])
        .collect();
    let x = split.test.x.select_rows(&[0, 1, 2, 3, 4, 5]);
    let clear = m.predict_clear(&x).unwrap();
    let sim = SimulateBackend::new(&compiled.graph, &inputset, &CompileConfig::default()).unwrap();
    assert_eq!(m.predict_with(&x, &sim).unwrap(), clear);
    let exe =
        ExecuteBackend::new(&compiled.graph, &inputset, &CompileConfig::default(), 3).unwrap();
    assert_eq!(m.predict_with(&x, &exe).unwrap(), clear);
    // A backend compiled for one program refuses another.
    let err = exe.run_other(&program_graph());
    assert!(err.contains("another program"), "{err}");
}

/// Runs an unrelated graph through a backend, returning its error message.
trait RunOther {
    fn run_other(&self, g: &Graph) -> String;
}

impl RunOther for ExecuteBackend {
    fn run_other(&self, g: &Graph) -> String {
        use veil_ml::Backend;
        self.run(g, &[]).unwrap_err().to_string()
    }
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let (p, client, _) = compiled();
    // Out-of-range value for a u2 input.
    let bad = vec![
        Tensor::new(vec![3], vec![0, 9, 1]).unwrap(),
        Tensor::new(vec![3], vec![0, 0, 0]).unwrap(),
    ];
    assert!(p.encrypt(client, &bad).is_err());
    assert!(p.clear(&bad).is_err());
    // Wrong number of inputs.
    assert!(p.encrypt(client, &bad[..1]).is_err());
}

/// Two bootstrap widths that the optimizer serves with two parameter sets: 2 bootstraps at 4
/// bits feed (through a levelled sum) 16 bootstraps at 3 bits. Exercises partitions, a
/// crossing keyswitch from one set's big key into the other's small key, inputs encrypted
/// under a small key, and keys for two sets.
#[test]
fn two_parameter_sets_encrypted_equals_interpreter() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], IntType::unsigned(4)).unwrap();
    let hi = b.tlu(x, |v| v >> 2).unwrap();
    let s = b.sum(hi, &[], false).unwrap();
    let s = b.reshape(s, &[1]).unwrap();
    let wide = b.broadcast(s, &[16]).unwrap();
    let tables: Vec<Vec<i64>> = (0..8)
        .map(|j| (0..8).map(|v| (v * j + 1) % 8).collect())
        .collect();
    let y = b
        .tlu_multi(wide, tables, (0..16).map(|j| j % 8).collect())
        .unwrap();
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    let inputs: Vec<Vec<Tensor<i64>>> = (0..256)
        .map(|i| vec![Tensor::new(vec![2], vec![i % 16, i / 16]).unwrap()])
        .collect();
    let cfg = CompileConfig {
        error: ErrorTarget::p_error(2f64.powi(-20)),
        ..Default::default()
    };
    let p = compile(&g, &inputs, &cfg).unwrap();
    let s = &p.stats;
    assert_eq!(s.params.len(), 2, "{}", s.summary());
    assert_eq!(s.partitions.len(), 2, "{}", s.summary());
    assert_eq!(s.crossings.len(), 1, "{}", s.summary());
    assert!(s.params.iter().all(|p| p.is_secure()));
    assert!(s.p_error <= 2f64.powi(-20) * (1.0 + 1e-9));
    veil_ir::verify::verify(&p.tfhe).unwrap();
    for inp in &inputs {
        let want = veil_ir::interp::run(&g, inp).unwrap();
        assert_eq!(p.simulate(inp, 3).unwrap(), want);
    }
    let (client, server) = p.keygen(11).unwrap();
    for inp in inputs.iter().step_by(53) {
        let want = veil_ir::interp::run(&g, inp).unwrap();
        let ct = p.encrypt(&client, inp).unwrap();
        let out = p.run(&server, ct).unwrap();
        assert_eq!(p.decrypt(&client, &out).unwrap(), want, "inputs {inp:?}");
    }
}
