//! Issue 13 on quantized models: FHE equals the quantized model in the clear on every sample
//! the client accepts.
//!
//! A quantized model's features are refused outside the ranges its quantizer was calibrated
//! on, but a sample inside every feature's range can still drive an intermediate value (an
//! accumulator, a hidden activation) outside the interval it was calibrated on, where a fused
//! table of the compiled program may read a clamped entry. The client's check for quantized
//! models is `DomainCheck::Exact` (`veil_ir::domain::check_exact`): a sample inside the
//! calibrated domain is exact by construction; one outside it is accepted only when the
//! optimized program keeps every value inside its type and gives the source's outputs.
//!
//! `quantized_models_accept_only_samples_they_compute_exactly` draws samples inside every feature's calibrated range but with the features'
//! correlations broken (each feature uniform in its own range), shows that such samples do
//! leave the calibrated domain, and that every sample the exact check accepts is computed
//! exactly (simulation equals the quantized model in the clear), while the types-only check
//! (what the ML path used before) accepts samples the compiled program gets wrong whenever
//! there are any.
//!
//! `types_domain_onnx_fixtures` compiles every ONNX fixture under `--domain types` and checks
//! the compiled program against the quantized model on random inputs over the full input
//! types: simulated on all, encrypted on those whose bootstraps fit a bounded CI budget. The
//! bench `domain_types_encrypted` runs the others encrypted (networks, the largest ensembles).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_compiler::program::{
    compile, CompileConfig, DomainCheck, DomainPolicy, Program, ProgramError,
};
use veil_ir::Tensor;
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::{dataset, CompiledModel, Matrix, MlpClassifier};
use veil_runtime::SimOptions;
use veil_tests::keys::KeyCache;
use veil_tests::{corpus, fixtures};

/// `n` samples inside every feature's calibrated range, each feature drawn on its own.
fn probes(m: &CompiledModel, n: usize, seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f = m.client.n_features;
    let data = (0..n * f)
        .map(|i| {
            let (lo, hi) = m.client.input.float_range(i % f);
            // a hair inside, so that rounding cannot push a feature out
            let pad = (hi - lo) * 1e-6;
            rng.gen_range(lo + pad..=hi - pad)
        })
        .collect();
    Matrix::new(n, f, data).unwrap()
}

/// (outside the calibrated domain, accepted there by the exact check, wrong under the
/// types-only check) over `n` probes of `m`; panics if the exact check accepts a wrong one.
fn check_model(name: &str, m: &CompiledModel, train: &Matrix, n: usize) -> (usize, usize, usize) {
    let inputset: Vec<Vec<Tensor<i64>>> = m
        .client
        .encode(train)
        .unwrap()
        .into_iter()
        .map(|t| vec![t])
        .collect();
    let p = compile(&m.graph, &inputset, &CompileConfig::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    // every calibration sample is accepted
    for x in &inputset {
        p.check_domain(x, DomainCheck::Exact)
            .unwrap_or_else(|e| panic!("{name}: calibration sample refused: {e}"));
    }
    let (mut outside, mut accepted_outside, mut wrong_under_types) = (0, 0, 0);
    for x in m.client.encode(&probes(m, n, 13)).unwrap() {
        let x = vec![x];
        let want = veil_ir::interp::run(&m.graph, &x).unwrap();
        let sim = p.simulate(&x, 0).unwrap();
        let left = p.check_domain(&x, DomainCheck::Calibrated).is_err();
        outside += usize::from(left);
        if p.check_domain(&x, DomainCheck::Types).is_ok() && sim != want {
            wrong_under_types += 1;
        }
        match p.check_domain(&x, DomainCheck::Exact) {
            Ok(()) => {
                assert_eq!(sim, want, "{name}: accepted {x:?} but computed wrongly");
                accepted_outside += usize::from(left);
            }
            Err(e @ ProgramError::OutOfDomain(_)) => {
                assert!(left, "{name}: refused inside the calibrated domain: {e}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    eprintln!(
        "{name}: {n} probes, {outside} outside the calibrated domain, {accepted_outside} of them computed exactly and accepted, {wrong_under_types} computed wrongly and accepted by a types-only check"
    );
    (outside, accepted_outside, wrong_under_types)
}

#[test]
fn quantized_models_accept_only_samples_they_compute_exactly() {
    let mut left = 0;
    for (name, data) in [
        ("iris MLP", dataset::iris().unwrap()),
        ("breast cancer MLP", dataset::breast_cancer().unwrap()),
    ] {
        let split = dataset::train_test_split(&data, 0.25, 0).unwrap();
        let y = split.train.classes().unwrap();
        let mut mlp = MlpClassifier::new();
        mlp.fit(&split.train.x, &y).unwrap();
        let m = mlp
            .compile(&split.train.x, &veil_ml::CompileConfig::default())
            .unwrap()
            .clone();
        let (outside, _, _) = check_model(name, &m, &split.train.x, 200);
        left += outside;
    }
    // it can happen: samples inside every feature's range leave the calibrated domain
    assert!(left > 0, "no probe left the calibrated domain");
}

/// Most bootstraps per sample run encrypted here (about 25 ms each on the CI machine).
const ENCRYPTED_PBS: u64 = 240;

/// Most bootstraps run encrypted in all (fixtures in name order; the rest are simulated), so
/// that the test's time stays bounded as fixtures are added.
const ENCRYPTED_BUDGET: u64 = 1200;

/// `--domain types` compiles every ONNX fixture (default import settings, exact rounding); on
/// random inputs
/// over the full input types, the domain check accepts them all and the compiled program
/// computes the quantized model exactly: simulated on every fixture, encrypted on the ones
/// of at most [`ENCRYPTED_PBS`] bootstraps.
#[test]
fn types_domain_onnx_fixtures() {
    let names = fixtures::onnx_names();
    assert!(names.len() >= 12, "fixtures: {names:?}");
    let types = CompileConfig {
        domain: DomainPolicy::Types,
        ..CompileConfig::default()
    };
    let mut keys = KeyCache::new(13);
    let (mut failed, mut encrypted) = (Vec::new(), Vec::new());
    let mut budget = ENCRYPTED_BUDGET;
    for name in &names {
        let import =
            OnnxImport::from_file(fixtures::onnx_dir().join(format!("{name}.onnx"))).unwrap();
        let x = fixtures::rows(name, "calibration");
        let model = import
            .compile(&x, &ImportConfig::default())
            .unwrap_or_else(|e| panic!("{name}: import: {e}"));
        let g = model.graph();
        let inputset: Vec<Vec<Tensor<i64>>> = model
            .client()
            .encode(&x)
            .unwrap()
            .into_iter()
            .map(|t| vec![t])
            .collect();
        let p: Program = match compile(g, &inputset, &types) {
            Ok(p) => p,
            Err(e) => {
                failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        let samples = corpus::random_inputs(g, 8, 0x13);
        for x in &samples {
            p.check_domain(x, DomainCheck::Calibrated)
                .unwrap_or_else(|e| panic!("{name}: refused under types: {e}"));
            let want = veil_ir::interp::run(g, x).unwrap();
            // without noise: networks round their accumulators approximately by default,
            // and an approximate round may give the other neighbour near a tie by design
            // (its own contract, `compiler/tests/approx_round.rs`)
            let quiet = SimOptions {
                seed: 0,
                p_error_override: Some(0.0),
            };
            let sim = veil_runtime::simulate(&p.tfhe, x, &quiet).unwrap();
            assert_eq!(sim.outputs, want, "{name}: simulated");
        }
        eprintln!(
            "{name}: --domain types: {} PBS, estimated {:.0} ms",
            p.stats.pbs, p.stats.estimated_latency_ms
        );
        let approx = p
            .optimized
            .values()
            .into_iter()
            .any(|v| matches!(p.optimized.op(v), veil_ir::Op::Round { approx: true, .. }));
        if p.stats.pbs <= ENCRYPTED_PBS.min(budget)
            && p.stats.estimated_latency_ms <= 6000.0
            && !approx
        {
            budget -= p.stats.pbs;
            let (client, server) = keys.get(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            let ct = p.encrypt(client, &samples[0]).unwrap();
            let out = p.run(server, ct).unwrap();
            let want = veil_ir::interp::run(g, &samples[0]).unwrap();
            assert_eq!(p.decrypt(client, &out).unwrap(), want, "{name}: encrypted");
            encrypted.push(name.clone());
        }
    }
    eprintln!("encrypted: {encrypted:?}");
    assert!(
        failed.is_empty(),
        "--domain types failed:\n{}",
        failed.join("\n")
    );
    assert!(encrypted.len() >= 8, "only {encrypted:?} ran encrypted");
}
