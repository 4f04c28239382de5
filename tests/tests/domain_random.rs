//! Issue 13 on random programs: a compiled program is right on every input it accepts, or
//! refuses the input. Random corpus-like programs ([`veil_tests::random_program`]: sums,
//! products, clear matmuls, lookups of random tables, comparisons, min/max, relu, clip,
//! rounding, `where`) are compiled
//! - under `--domain calibrated` on a small random inputset: every random input of the
//!   declared types that the domain check accepts is computed exactly (simulation, the lowered
//!   program and the optimized program all equal the interpreter on the source), every input
//!   it refuses is refused as out of domain (what `Program::encrypt` does under the default
//!   `error` policy), and the calibration samples are always accepted;
//! - under `--domain types`: every input of the declared types is accepted and computed
//!   exactly.
//!
//! The property tests simulate (a fixed number of programs, about a minute of CI); a few fixed
//! programs also run encrypted, with keys shared between programs of equal parameters.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_compiler::program::{compile, CompileConfig, DomainCheck, DomainPolicy, ProgramError};
use veil_ir::text::print;
use veil_ir::{interp, Graph, Tensor};
use veil_tests::corpus;
use veil_tests::keys::KeyCache;
use veil_tests::random_program::random_program;

/// Operations per random program.
const OPS: usize = 5;

/// Random test inputs per program and policy.
const SAMPLES: usize = 24;

fn program(seed: u64) -> Graph {
    random_program(&mut ChaCha8Rng::seed_from_u64(seed), OPS)
}

fn types_config() -> CompileConfig {
    CompileConfig {
        domain: DomainPolicy::Types,
        ..corpus::default_config()
    }
}

/// A failure that shows the program.
fn fail(g: &Graph, what: String) -> TestCaseError {
    TestCaseError::fail(format!("{what}\nprogram:\n{}", print(g)))
}

fn reference(g: &Graph, x: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, TestCaseError> {
    interp::run(g, x).map_err(|e| fail(g, format!("interpreter on {x:?}: {e}")))
}

/// The inputset of the calibrated case of `seed`: one to four random samples.
fn inputset(g: &Graph, seed: u64) -> Vec<Vec<Tensor<i64>>> {
    let n = ChaCha8Rng::seed_from_u64(seed).gen_range(1..=4);
    corpus::random_inputs(g, n, seed ^ 0xca1)
}

/// Checks that `x`, accepted by the domain check of `p`, is computed exactly.
fn exact(
    g: &Graph,
    p: &veil_compiler::program::Program,
    x: &[Tensor<i64>],
    seed: u64,
) -> Result<(), TestCaseError> {
    let want = reference(g, x)?;
    let sim = p
        .simulate(x, seed)
        .map_err(|e| fail(g, format!("simulate {x:?}: {e}")))?;
    if sim != want {
        return Err(fail(
            g,
            format!("accepted {x:?}, simulated {sim:?}, the interpreter says {want:?}"),
        ));
    }
    let lowered = reference(&p.tfhe, x)?;
    let optimized = p
        .clear(x)
        .map_err(|e| fail(g, format!("optimized program on {x:?}: {e}")))?;
    if lowered != want || optimized != want {
        return Err(fail(
            g,
            format!("accepted {x:?}: lowered {lowered:?}, optimized {optimized:?}, want {want:?}\noptimized:\n{}", print(&p.optimized)),
        ));
    }
    Ok(())
}

/// (accepted, refused) random inputs of the calibrated compilation of program `seed`.
fn calibrated_case(seed: u64) -> Result<(usize, usize), TestCaseError> {
    let g = program(seed);
    let set = inputset(&g, seed);
    let p = compile(&g, &set, &corpus::default_config())
        .map_err(|e| fail(&g, format!("compile (calibrated): {e}")))?;
    for x in &set {
        p.check_domain(x, DomainCheck::Calibrated)
            .map_err(|e| fail(&g, format!("calibration sample {x:?} refused: {e}")))?;
        exact(&g, &p, x, seed)?;
    }
    let (mut inside, mut outside) = (set.len(), 0);
    for x in corpus::random_inputs(&g, SAMPLES, seed ^ 0x5a5a) {
        match p.check_domain(&x, DomainCheck::Calibrated) {
            Ok(()) => {
                exact(&g, &p, &x, seed)?;
                inside += 1;
            }
            Err(e @ ProgramError::OutOfDomain(_)) => {
                let msg = e.to_string();
                if !msg.contains("nothing was encrypted") || !msg.contains("outside") {
                    return Err(fail(&g, format!("unclear refusal: {msg}")));
                }
                outside += 1;
            }
            Err(e) => return Err(fail(&g, format!("{x:?}: {e}"))),
        }
    }
    Ok((inside, outside))
}

/// Every input of the declared types (random ones when there are many) accepted and exact.
fn types_case(seed: u64) -> Result<usize, TestCaseError> {
    let g = program(seed);
    let p =
        compile(&g, &[], &types_config()).map_err(|e| fail(&g, format!("compile (types): {e}")))?;
    let inputs = if corpus::input_space(&g) <= 256 {
        corpus::all_inputs(&g).expect("small input space")
    } else {
        corpus::random_inputs(&g, SAMPLES, seed ^ 0x7e)
    };
    for x in &inputs {
        p.check_domain(x, DomainCheck::Calibrated)
            .map_err(|e| fail(&g, format!("{x:?} refused under types: {e}")))?;
        exact(&g, &p, x, seed)?;
    }
    Ok(inputs.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Calibrated: accepted inputs are exact, the others refused; never a wrong answer.
    #[test]
    fn random_programs_are_exact_inside_the_calibrated_domain_and_refuse_the_rest(
        seed in any::<u64>(),
    ) {
        calibrated_case(seed)?;
    }

    /// Types: every input of the declared types is accepted and exact.
    #[test]
    fn random_programs_under_types_are_exact_on_every_input(seed in any::<u64>()) {
        types_case(seed)?;
    }
}

/// The property refuses and accepts: over fixed seeds, small inputsets leave inputs outside
/// the calibrated domain (else the property would only check acceptance), and inputs inside.
#[test]
fn random_programs_refuse_some_inputs_and_accept_others() {
    let (mut inside, mut outside) = (0, 0);
    for seed in 0..24 {
        let (i, o) = calibrated_case(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        inside += i;
        outside += o;
    }
    assert!(outside >= 24, "only {outside} refused");
    assert!(inside >= 48, "only {inside} accepted");
}

/// Encrypted, on fixed programs: under `calibrated`, samples the check accepts decrypt to the
/// interpreter's result and samples it refuses are refused by `Program::encrypt` (nothing is
/// encrypted); under `types`, random inputs of the declared types decrypt exactly.
#[test]
fn random_programs_encrypted_equal_the_interpreter_or_are_refused() {
    let mut keys = KeyCache::new(0x13);
    let (mut runs, mut refused) = (0, 0);
    for seed in 0..4u64 {
        let g = program(seed);
        let text = print(&g);
        let set = inputset(&g, seed);
        let calibrated =
            compile(&g, &set, &corpus::default_config()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let types = compile(&g, &[], &types_config()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let candidates = corpus::random_inputs(&g, 8, seed ^ 0xe2e);
        for (p, policy) in [(&calibrated, "calibrated"), (&types, "types")] {
            let (client, server) = keys
                .get(p)
                .unwrap_or_else(|e| panic!("{policy}: {e}\n{text}"));
            let (mut ran, mut refusal) = (0, false);
            for x in set.iter().take(1).chain(&candidates) {
                let want = interp::run(&g, x).unwrap();
                match p.encrypt(client, x) {
                    Ok(ct) if ran < 2 => {
                        let out = p.run(server, ct).unwrap();
                        let got = p.decrypt(client, &out).unwrap();
                        assert_eq!(got, want, "{policy} on {x:?}\n{text}");
                        ran += 1;
                    }
                    Ok(_) => {}
                    Err(ProgramError::OutOfDomain(v)) => {
                        assert_eq!(policy, "calibrated", "types refused {x:?}: {v}\n{text}");
                        if !refusal {
                            refused += 1;
                            refusal = true;
                        }
                    }
                    Err(e) => panic!("{policy}: encrypt {x:?}: {e}\n{text}"),
                }
            }
            assert!(ran >= 1, "{policy}: nothing ran\n{text}");
            runs += ran;
        }
    }
    assert!(runs >= 12, "only {runs} encrypted runs");
    assert!(refused >= 1, "no program refused an input under calibrated");
    eprintln!("{runs} encrypted runs, {} key sets", keys.generated());
}

/// Regressions (found by the property): a value narrower than its users need left an invalid
/// graph. A round whose operand is narrower than what it drops: `round %x lsbs=1` of an input calibrated to one value (the
/// bit-width pass narrowed it to one bit), and a round of a `where` the desugaring folded to
/// the constant `-1` (typed `i1`): a rounded value now keeps `lsbs + 1` bits in both passes.
/// A lookup of a `where` the desugaring folded to a constant: the constant now keeps the
/// `where`'s type.
#[test]
fn a_round_of_a_value_narrowed_to_one_bit_compiles() {
    let one_point = "veil 1
%x = input \"x\" : enc<i3>
%r = round %x lsbs=1 : enc<i4>
%d = sub %r, %x : enc<i5>
output \"y\", %d
";
    let g = veil_ir::text::parse(one_point).unwrap();
    let set = vec![vec![Tensor::scalar(0)]];
    let p = compile(&g, &set, &corpus::default_config()).unwrap();
    exact(&g, &p, &set[0], 0).unwrap();
    let refused = p.check_domain(&[Tensor::scalar(3)], DomainCheck::Calibrated);
    assert!(matches!(refused, Err(ProgramError::OutOfDomain(_))));
    let folded = "veil 1
%0 = input \"x0\" : enc<u4>[3]
%1 = neg %0 : enc<i5>[3]
%2 = clip %1 lo=1 hi=2 : enc<u2>[3]
%3 = add %1, %2 : enc<i6>[3]
%4 = gt %3, %2 : enc<u1>[3]
%5 = const -1 : clear<i1>
%6 = where %4, %2, %5 : enc<i3>[3]
%7 = round %6 lsbs=1 : enc<i4>[3]
output \"y\", %7
output \"z\", %6
";
    // and a `where` folded to a constant under a lookup whose table has one entry per value
    // of the `where`'s type: the constant keeps that type
    let under_lookup = "veil 1
table @t = [2,12,7,2,10,-3,6,5,-1,9,1,12,2,7,1,9,6,8,1,4,-3,2,10,6,0,9,3,0,7,2,3,-2]
%0 = input \"x0\" : enc<u4>[1]
%1 = gt %0, %0 : enc<u1>[1]
%2 = const -2 : clear<i2>
%3 = where %1, %0, %2 : enc<i5>[1]
%4 = tlu %3 table=@t : enc<i5>[1]
output \"y\", %4
output \"z\", %3
";
    for src in [folded, under_lookup] {
        let g = veil_ir::text::parse(src).unwrap();
        let p = compile(&g, &[], &types_config()).unwrap();
        for x in corpus::random_inputs(&g, 8, 1) {
            exact(&g, &p, &x, 0).unwrap();
        }
    }
}

/// Regression (found by the property): the lowering emitted outputs in evaluation order, so a
/// program whose second output is ready before its first decrypted them swapped. Outputs now
/// keep their declared order.
#[test]
fn outputs_keep_their_order_through_lowering() {
    let g = veil_ir::text::parse(
        "veil 1
%x = input \"x\" : enc<u4>[1]
%m = min %x, %x : enc<u4>[1]
%s = add %x, %m : enc<u5>[1]
%c = gt %x, %m : enc<u1>[1]
%k = const 5 : clear<u3>
%w = where %c, %m, %k : enc<u4>[1]
output \"y\", %w
output \"z\", %s
",
    )
    .unwrap();
    let p = compile(&g, &[], &types_config()).unwrap();
    let x = [Tensor::new(vec![1], vec![2]).unwrap()];
    assert_eq!(
        interp::run(&p.tfhe, &x).unwrap(),
        interp::run(&g, &x).unwrap()
    );
    exact(&g, &p, &x, 0).unwrap();
}
