//! Approximate rounding (`round ... approx=true`, lowered with `keyswitch.round`): a lookup of
//! an approximately rounded accumulator costs one bootstrap of the kept bits, and what the
//! encrypted program computes is, per element, the lookup of one of the two multiples
//! neighbouring the accumulator (the nearest one unless it sits within the noise of a tie).
//!
//! Checked through the simulation with no errors (equal to the reference interpreter), with
//! its model of the rounding noise (within that contract), and with one encrypted run.

use proptest::prelude::*;
use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ir::builder::Builder;
use veil_ir::{Graph, IntType, Tensor};
use veil_runtime::{simulate, SimOptions};

const N: usize = 6;
const K: u8 = 10;

fn table(q: i128) -> i64 {
    // a non-monotone function of the kept bits, so that a wrong index shows
    ((q * 7 + 3).rem_euclid(23)) as i64
}

/// `acc = x * 37 + y * 11 - 50` on u8 inputs (a 14-bit accumulator); `q` its rounded quotient
/// by 2^10, read by a lookup (no bootstrap of its own); `r` the rounded multiple, read by a
/// levelled add (one bootstrap of its own).
fn program() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[N], IntType::unsigned(8)).unwrap();
    let y = b.input_encrypted("y", &[N], IntType::unsigned(8)).unwrap();
    let c37 = b.constant_scalar(37).unwrap();
    let c11 = b.constant_scalar(11).unwrap();
    let c50 = b.constant_scalar(50).unwrap();
    let ax = b.mul(x, c37).unwrap();
    let by = b.mul(y, c11).unwrap();
    let s = b.add(ax, by).unwrap();
    let acc = b.sub(s, c50).unwrap();
    let q = b.round_approx_quotient(acc, K).unwrap();
    let int = b.ty(q).unwrap().int;
    let entries = (int.min()..=int.max()).map(table).collect();
    let t = b.tlu_table(q, entries).unwrap();
    b.output("t", t).unwrap();
    let r = b.round_approx(acc, K).unwrap();
    let one = b.constant_scalar(1).unwrap();
    let r1 = b.add(r, one).unwrap();
    b.output("r", r1).unwrap();
    b.finish().unwrap()
}

fn sample(x: &[i64], y: &[i64]) -> Vec<Tensor<i64>> {
    vec![
        Tensor::new(vec![N], x.to_vec()).unwrap(),
        Tensor::new(vec![N], y.to_vec()).unwrap(),
    ]
}

/// A calibration covering the whole input types.
fn inputset() -> Vec<Vec<Tensor<i64>>> {
    (0..64)
        .map(|i| {
            let x: Vec<i64> = (0..N as i64).map(|j| (i * 4 + j * 41) % 256).collect();
            let y: Vec<i64> = (0..N as i64)
                .map(|j| (i * 7 + j * 13 + 255) % 256)
                .collect();
            sample(&x, &y)
        })
        .chain([sample(&[0; N], &[0; N]), sample(&[255; N], &[255; N])])
        .collect()
}

fn compiled() -> (Graph, Program) {
    let g = program();
    let p = compile(&g, &inputset(), &CompileConfig::default()).unwrap();
    (g, p)
}

/// Whether output `t` and `r` of one element are what the contract allows for `acc`.
fn allowed(acc: i128, t: i64, r: i64) -> bool {
    let step = 1i128 << K;
    let (lo, hi) = (acc.div_euclid(step), (acc + step - 1).div_euclid(step));
    [lo, hi].iter().any(|&q| table(q) == t) && [lo, hi].iter().any(|&q| q * step + 1 == r as i128)
}

fn accs(s: &[Tensor<i64>]) -> Vec<i128> {
    (0..N)
        .map(|j| s[0].data[j] as i128 * 37 + s[1].data[j] as i128 * 11 - 50)
        .collect()
}

#[test]
fn a_lookup_of_an_approximate_round_is_one_bootstrap_of_the_kept_bits() {
    let (_, p) = compiled();
    // the lookup folds the round in; the levelled user needs the value: one each
    assert_eq!(p.stats.pbs, 2 * N as u64, "{}", p.stats.summary());
    let text = veil_ir::text::print(&p.tfhe);
    assert!(text.contains("keyswitch.round"), "{text}");
    assert!(!text.contains("keyswitch.bit"), "no bit extraction: {text}");
    // the kept bits of a 14-bit accumulator, plus one for the neighbour above
    assert!(
        p.stats.pbs_by_precision.keys().all(|&b| b <= 14 - K + 1),
        "{}",
        p.stats.summary()
    );
}

#[test]
fn encrypted_results_keep_the_contract() {
    let (g, p) = compiled();
    let (ck, sk) = p.keygen(5).unwrap();
    // near ties, multiples, and the extremes
    let cases = [
        sample(&[2, 0, 255, 10, 100, 7], &[0, 0, 255, 3, 200, 9]),
        sample(&[30, 64, 128, 1, 9, 250], &[1, 2, 3, 4, 5, 6]),
    ];
    for s in &cases {
        let want = veil_ir::run(&g, s).unwrap();
        let enc = p.encrypt(&ck, s).unwrap();
        let got = p.decrypt(&ck, &p.run(&sk, enc).unwrap()).unwrap();
        for (j, acc) in accs(s).into_iter().enumerate() {
            assert!(
                allowed(acc, got[0].data[j], got[1].data[j]),
                "element {j}: acc {acc}, got t={} r={}, reference t={} r={}",
                got[0].data[j],
                got[1].data[j],
                want[0].data[j],
                want[1].data[j]
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With no noise the lowered program computes the reference (ties upward); with the
    /// simulated noise every element stays within the contract.
    #[test]
    fn simulation_equals_the_reference_or_keeps_the_contract(
        x in proptest::collection::vec(0i64..256, N),
        y in proptest::collection::vec(0i64..256, N),
        seed in any::<u64>(),
    ) {
        let (g, p) = compiled_once();
        let s = sample(&x, &y);
        let want = veil_ir::run(g, &s).unwrap();
        let exact = simulate(&p.tfhe, &s, &SimOptions { seed, p_error_override: Some(0.0) })
            .unwrap();
        prop_assert_eq!(&exact.outputs, &want);
        let noisy = simulate(&p.tfhe, &s, &SimOptions { seed, p_error_override: None }).unwrap();
        for (j, acc) in accs(&s).into_iter().enumerate() {
            prop_assert!(allowed(acc, noisy.outputs[0].data[j], noisy.outputs[1].data[j]));
        }
    }
}

fn compiled_once() -> &'static (Graph, Program) {
    static P: std::sync::OnceLock<(Graph, Program)> = std::sync::OnceLock::new();
    P.get_or_init(compiled)
}

#[test]
fn the_simulated_noise_flips_ties_and_spares_the_rest() {
    let (_, p) = compiled_once();
    // an exact tie: acc = 512 mod 1024
    let tie = (0..256i64)
        .flat_map(|x| (0..256i64).map(move |y| (x, y)))
        .find(|&(x, y)| (x * 37 + y * 11 - 50).rem_euclid(1 << K) == 1 << (K - 1))
        .unwrap();
    let s = sample(&[tie.0; N], &[tie.1; N]);
    let mut flipped = [0u32; 2];
    for seed in 0..200 {
        let r = simulate(
            &p.tfhe,
            &s,
            &SimOptions {
                seed,
                p_error_override: None,
            },
        )
        .unwrap();
        let acc = tie.0 as i128 * 37 + tie.1 as i128 * 11 - 50;
        let up = table((acc + (1 << (K - 1))) >> K);
        flipped[0] += r.outputs[0].data.iter().filter(|&&t| t != up).count() as u32;
        flipped[1] += r.outputs[0].data.len() as u32;
    }
    // a tie goes either way about half the time
    let share = flipped[0] as f64 / flipped[1] as f64;
    assert!((0.3..0.7).contains(&share), "share flipped {share}");
}
