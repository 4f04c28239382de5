//! A compiled program is right on every input it accepts, or refuses the input (issue 13):
//! - `DomainPolicy::Types` compiles every corpus program; the recorded domain accepts every
//!   input of the declared types, and the lowered program, simulated and encrypted
//!   (`types_domain_encrypted_corpus`, keys shared between programs of equal parameters),
//!   equals the reference interpreter on random inputs over the full input types;
//! - a property test over the corpus and the two programs of the issue, calibrated on small
//!   random inputsets: a random input of the declared types that the domain check accepts is
//!   simulated exactly; one it refuses is refused as out of domain (what `Program::encrypt`
//!   does under the default `error` policy), never computed and reported as right.

use proptest::prelude::*;
use std::sync::OnceLock;
use veil_compiler::program::{
    compile, CompileConfig, DomainCheck, DomainPolicy, Program, ProgramError,
};
use veil_ir::text::parse;
use veil_ir::{interp, Graph, Tensor};
use veil_tests::corpus;
use veil_tests::keys::KeyCache;

/// `y = (a + b)^2` through one table (the first case of the issue).
const SQUARE_OF_SUM: &str = "veil 1
%a = input \"a\" : enc<u4>
%b = input \"b\" : enc<u4>
%s = add %a, %b : enc<u5>
table @sq = [0,1,4,9,16,25,36,49,64,81,100,121,144,169,196,225,256,289,324,361,400,441,484,529,576,625,676,729,784,841,900,961]
%y = tlu %s table=@sq : enc<u10>
output \"y\", %y
";

/// A 4x4 dense layer with a relu (the second case of the issue).
const DENSE_RELU: &str = "veil 1
%x = input \"x\" : enc<u4>[4]
%w = const [[1,-1,2,0],[1,1,-2,-1],[2,0,1,-1],[-1,2,1,-2]] : clear<i3>[4,4]
%acc = matmul %x, %w : enc<i8>[4]
%y = relu %acc : enc<u7>[4]
output \"y\", %y
";

fn types_config() -> CompileConfig {
    CompileConfig {
        domain: DomainPolicy::Types,
        ..corpus::default_config()
    }
}

/// The corpus and the programs: (name, graph).
fn programs() -> &'static [(String, Graph)] {
    static P: OnceLock<Vec<(String, Graph)>> = OnceLock::new();
    P.get_or_init(|| {
        let mut v: Vec<(String, Graph)> = corpus::load()
            .into_iter()
            .map(|e| (e.name, e.graph))
            .collect();
        for (name, src) in [("square_of_sum", SQUARE_OF_SUM), ("dense_relu", DENSE_RELU)] {
            v.push((name.into(), parse(src).expect("valid program")));
        }
        v
    })
}

fn reference(name: &str, g: &Graph, x: &[Tensor<i64>]) -> Vec<Tensor<i64>> {
    interp::run(g, x).unwrap_or_else(|e| panic!("{name}: interpreter on {x:?}: {e}"))
}

/// Every program of [`programs`] compiled under `types` (once per test binary).
fn types_programs() -> &'static [Program] {
    static P: OnceLock<Vec<Program>> = OnceLock::new();
    P.get_or_init(|| {
        programs()
            .iter()
            .map(|(name, g)| {
                // the inputset is ignored under `types`: give one that would narrow a lot
                let set = corpus::random_inputs(g, 2, 1);
                compile(g, &set, &types_config())
                    .unwrap_or_else(|e| panic!("{name}: --domain types: {e}"))
            })
            .collect()
    })
}

#[test]
fn types_domain_is_exact_on_every_input_of_the_declared_types() {
    for ((name, g), p) in programs().iter().zip(types_programs()) {
        assert_eq!(p.stats.domain, DomainPolicy::Types, "{name}");
        // per input, the accepted interval is the declared type's range
        for (v, iv) in g.inputs().into_iter().zip(&p.stats.input_domain) {
            let t = g.ty(v).int;
            assert_eq!(
                (iv.lo as i128, iv.hi as i128),
                (t.min(), t.max()),
                "{name}: input {}",
                iv.name
            );
        }
        // exhaustive inputs when the space is small, else random ones over the full types
        let inputs = corpus::test_inputs(g, 200, 0xd0);
        for (i, x) in inputs.iter().enumerate() {
            let want = reference(name, g, x);
            p.check_domain(x, DomainCheck::Calibrated)
                .unwrap_or_else(|e| panic!("{name}: {x:?} refused under types: {e}"));
            let sim = p
                .simulate(x, i as u64)
                .unwrap_or_else(|e| panic!("{name}: simulate {x:?}: {e}"));
            assert_eq!(sim, want, "{name}: simulate under types on {x:?}");
            let low = reference(name, &p.tfhe, x);
            assert_eq!(low, want, "{name}: lowered program under types on {x:?}");
        }
    }
}

/// `--domain types` on every corpus program and both programs of the issue, encrypted: real
/// keys (shared between programs of equal parameters), encryption, the server's run and
/// decryption equal the interpreter on random inputs over the full input types (and on the
/// issue's two samples, which the calibrated programs refuse).
#[test]
fn types_domain_encrypted_corpus() {
    let mut keys = KeyCache::new(13);
    let mut runs = 0;
    for ((name, g), p) in programs().iter().zip(types_programs()) {
        let (client, server) = keys.get(p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut inputs = corpus::random_inputs(g, 1, 0x13);
        if name == "dense_relu" {
            // the sample: decrypted to [32, 0, 66, 0] when calibrated and clamped
            inputs.push(vec![Tensor::new(vec![4], vec![15, 2, 12, 13]).unwrap()]);
        }
        if name == "square_of_sum" {
            inputs.push(vec![Tensor::scalar(3), Tensor::scalar(1)]);
        }
        for x in inputs {
            let want = reference(name, g, &x);
            let ct = p
                .encrypt(client, &x)
                .unwrap_or_else(|e| panic!("{name}: encrypt {x:?}: {e}"));
            let out = p
                .run(server, ct)
                .unwrap_or_else(|e| panic!("{name}: run {x:?}: {e}"));
            let got = p
                .decrypt(client, &out)
                .unwrap_or_else(|e| panic!("{name}: decrypt {x:?}: {e}"));
            assert_eq!(got, want, "{name}: encrypted run under types on {x:?}");
            runs += 1;
        }
    }
    assert_eq!(runs, programs().len() + 2);
    eprintln!("{runs} encrypted runs, {} key sets", keys.generated());
}

/// One case: program `which`, calibrated on `n_cal` random inputs from `seed`, then `n_test`
/// random inputs of the declared types checked and simulated.
fn calibrated_case(which: usize, n_cal: usize, seed: u64) -> Result<(usize, usize), TestCaseError> {
    let (name, g) = &programs()[which % programs().len()];
    let set = corpus::random_inputs(g, n_cal, seed);
    let p = compile(g, &set, &corpus::default_config())
        .map_err(|e| TestCaseError::fail(format!("{name}: compile: {e}")))?;
    let (mut inside, mut outside) = (0, 0);
    // the calibration samples are inside by construction
    for x in set
        .iter()
        .chain(&corpus::random_inputs(g, 24, seed ^ 0x5a5a))
    {
        let want = reference(name, g, x);
        match p.check_domain(x, DomainCheck::Calibrated) {
            Ok(()) => {
                let sim = p
                    .simulate(x, seed)
                    .map_err(|e| TestCaseError::fail(format!("{name}: simulate: {e}")))?;
                prop_assert_eq!(
                    &sim,
                    &want,
                    "{}: accepted {:?} but computed wrongly",
                    name,
                    x
                );
                inside += 1;
            }
            Err(ProgramError::OutOfDomain(v)) => {
                let msg = ProgramError::OutOfDomain(v).to_string();
                prop_assert!(msg.contains("nothing was encrypted"), "{}", msg);
                outside += 1;
            }
            Err(e) => return Err(TestCaseError::fail(format!("{name}: {x:?}: {e}"))),
        }
    }
    prop_assert!(
        inside >= set.len(),
        "{}: a calibration sample was refused",
        name
    );
    Ok((inside, outside))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Inside the calibrated domain: simulate == interpreter; outside: refused (never wrong).
    #[test]
    fn calibrated_domain_accepts_only_what_it_computes_exactly(
        which in 0usize..64,
        n_cal in 1usize..6,
        seed in any::<u64>(),
    ) {
        calibrated_case(which, n_cal, seed)?;
    }
}

/// The property above refuses something: small inputsets leave most corpus programs with
/// inputs outside their domain (else the test would check nothing but acceptance).
#[test]
fn small_inputsets_leave_inputs_outside_the_domain() {
    let (mut inside, mut outside) = (0, 0);
    for which in 0..programs().len() {
        let (i, o) = calibrated_case(which, 2, which as u64).unwrap();
        inside += i;
        outside += o;
    }
    assert!(outside > programs().len(), "only {outside} refused");
    assert!(inside > programs().len(), "only {inside} accepted");
}

/// Regression: `eq`, `ne` and `le` of two u3 vectors share one bootstrapped `a - b` after the
/// rewrite. Calibrated on two samples, the second bit-width run used to narrow that new value
/// to what those samples produced (i3), and `a = [2, 4], b = [5, 0]`, inside the domain (every
/// value of the source program in its interval), overflowed it and decrypted `eq` as 2. Bit
/// widths after the rewrite now come from the domain's input intervals.
#[test]
fn values_the_rewrite_introduces_hold_every_sample_of_the_domain() {
    let (_, g) = programs()
        .iter()
        .find(|(n, _)| n == "cmp_eq_ne")
        .expect("corpus program");
    let v = |x: [i64; 2]| Tensor::new(vec![2], x.to_vec()).unwrap();
    let set = vec![vec![v([4, 2]), v([6, 0])], vec![v([1, 6]), v([4, 5])]];
    let p = compile(g, &set, &corpus::default_config()).unwrap();
    let x = [v([2, 4]), v([5, 0])];
    p.check_domain(&x, DomainCheck::Calibrated)
        .expect("inside the calibrated domain");
    let want = reference("cmp_eq_ne", g, &x);
    assert_eq!(p.simulate(&x, 0).unwrap(), want);
    assert_eq!(reference("cmp_eq_ne", &p.optimized, &x), want);
}
