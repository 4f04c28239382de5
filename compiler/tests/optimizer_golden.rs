//! The optimizer's choices against Concrete's published table, and an insta snapshot of
//! veil's choices (`snapshots/optimizer_golden__params_table.snap`) so any drift of the noise
//! model, cost model or search shows in review.
//!
//! Bless it after an intended change with `cargo insta accept` (or `INSTA_UPDATE=always cargo
//! test -p veil-compiler --test optimizer_golden`) and review the diff.

use std::fmt::Write;
use veil_compiler::optimizer::cost::{ks_cost, pbs_cost};
use veil_compiler::optimizer::{optimize, ErrorTarget, NoiseOptions, Objective, Problem, Solution};
use veil_ir::{KsModulus, ModulusSwitch, NoiseDistribution};

/// Concrete's reference choices (concrete-optimizer's reference table): bits, k, log2 N, n, BR level/base_log,
/// KS level/base_log, at p_error 2^-13.9 and norm2 1.
type Reference = (u8, usize, u32, usize, usize, usize, usize, usize);

/// Concrete's table rows.
const CONCRETE: [Reference; 8] = [
    (1, 5, 8, 592, 1, 15, 3, 3),
    (2, 5, 8, 700, 1, 15, 3, 4),
    (3, 3, 9, 722, 1, 18, 3, 4),
    (4, 2, 10, 801, 1, 23, 3, 4),
    (5, 1, 11, 783, 1, 23, 5, 3),
    (6, 1, 12, 880, 1, 22, 4, 4),
    (7, 1, 13, 915, 1, 22, 6, 3),
    (8, 1, 14, 1006, 2, 15, 5, 4),
];

fn p_error_13_9() -> f64 {
    (-13.9f64).exp2()
}

/// Cost of one KS + PBS of Concrete's reference choice under veil's cost model.
fn concrete_cost(bits: u8) -> f64 {
    let &(_, k, log_n, n, pbs_l, _, ks_l, _) = CONCRETE.iter().find(|r| r.0 == bits).unwrap();
    let big_n = 1usize << log_n;
    pbs_cost(n, k, big_n, pbs_l) + ks_cost(k * big_n, n, ks_l)
}

fn solve(bits: u8, norm2: f64, target: ErrorTarget) -> Solution {
    solve_with(bits, norm2, target, NoiseOptions::default())
}

fn solve_with(bits: u8, norm2: f64, target: ErrorTarget, noise: NoiseOptions) -> Solution {
    solve_obj(bits, norm2, target, noise, Objective::Model)
}

fn solve_obj(
    bits: u8,
    norm2: f64,
    target: ErrorTarget,
    noise: NoiseOptions,
    objective: Objective,
) -> Solution {
    let mut p = Problem::single(bits, norm2, 1, target);
    p.noise = noise;
    p.objective = objective;
    optimize(&p).unwrap_or_else(|e| panic!("{bits} bits, norm2 {norm2}: {e}"))
}

fn ks32(dist: Option<NoiseDistribution>) -> NoiseOptions {
    NoiseOptions {
        distribution: dist,
        modulus_switch: None,
        ks_modulus: Some(KsModulus::Q32),
    }
}

/// tfhe-rs 1.8's KS32 default set (`V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128`: n 918,
/// k 1, N 2048, TUniform bounds 2^13 on the 32-bit keyswitch modulus and 2^17 on 2^64, PBS 23x1,
/// KS 4x4, centered switch) is exactly what veil picks for its request (4 bits, norm2 5,
/// p_error 2^-128) with KS32 and TUniform forced.
#[test]
fn ks32_reproduces_tfhe_rs_default() {
    let s = solve_with(
        4,
        5.0,
        ErrorTarget::p_error((-128f64).exp2()),
        ks32(Some(NoiseDistribution::TUniform)),
    );
    let p = &s.sets[0].params;
    assert!(p.is_secure(), "{:?}", p.insecurity());
    assert_eq!(
        (
            p.lwe_dimension,
            p.glwe_dimension,
            p.polynomial_size,
            p.pbs_base_log,
            p.pbs_level,
            p.ks_base_log,
            p.ks_level
        ),
        (918, 1, 2048, 23, 1, 4, 4),
        "{p}"
    );
    assert_eq!((p.lwe_noise_log2, p.glwe_noise_log2), (-19.0, -47.0));
    assert_eq!(
        (p.ks_modulus, p.modulus_switch),
        (KsModulus::Q32, ModulusSwitch::Centered)
    );
    assert!(s.p_error <= (-128f64).exp2());
}

/// Left free, the keyswitch modulus follows the objective: Concrete's model counts KS32 like the
/// 64-bit keyswitch and keeps 2^64 (never noisier); the latency and key objectives take KS32
/// where it is cheaper, never worse than forcing either.
#[test]
fn ks32_free_choice_by_objective() {
    let t = ErrorTarget::p_error((-40f64).exp2());
    for bits in 1..=8 {
        let m = solve_with(bits, 1.0, t, NoiseOptions::default());
        assert_eq!(m.sets[0].params.ks_modulus, KsModulus::Q64);
        let m32 = solve_with(bits, 1.0, t, ks32(None));
        assert!(m.cost <= m32.cost);
        for o in [Objective::Latency, Objective::Keys] {
            let free = solve_obj(bits, 1.0, t, NoiseOptions::default(), o);
            let f64_ = solve_obj(
                bits,
                1.0,
                t,
                NoiseOptions {
                    ks_modulus: Some(KsModulus::Q64),
                    ..Default::default()
                },
                o,
            );
            let f32_ = solve_obj(bits, 1.0, t, ks32(None), o);
            assert_eq!(
                free.sets[0].params.ks_modulus,
                KsModulus::Q32,
                "{bits} {o:?}"
            );
            if o == Objective::Latency {
                assert!(free.estimated_latency_s < f64_.estimated_latency_s);
                assert!(free.estimated_latency_s <= f32_.estimated_latency_s);
            }
        }
    }
}

/// The acceptance criterion: for 1..8 bits at p_error 2^-13.9 and norm2 1 every set
/// meets the security floor and costs at most Concrete's published choice under the same model.
#[test]
fn matches_or_beats_concrete() {
    for bits in 1..=8 {
        let s = solve(bits, 1.0, ErrorTarget::p_error(p_error_13_9()));
        let set = &s.sets[0].params;
        assert!(set.is_secure(), "{bits} bits: {:?}", set.insecurity());
        assert!(s.p_error <= p_error_13_9() * (1.0 + 1e-9));
        let ratio = s.cost / concrete_cost(bits);
        assert!(
            ratio <= 1.0 + 1e-9,
            "{bits} bits: veil {set} costs {ratio:.3}x Concrete's choice"
        );
    }
}

/// Where veil used to be 45% dearer than Concrete 2.10's live optimizer (8 bits at 2^-13.9:
/// veil 1.78e9, Concrete 1.22e9; 7 bits at 2^-40: 1.74e9 vs 1.20e9): the centered modulus switch
/// and tfhe-rs's FFT noise fit bring both within 2% of Concrete's figure.
#[test]
fn closes_the_gap_at_the_top() {
    for (bits, target_log2, concrete) in [(8u8, -13.9f64, 1.22e9), (7, -40.0, 1.20e9)] {
        let s = solve(bits, 1.0, ErrorTarget::p_error(target_log2.exp2()));
        assert!(s.sets[0].params.is_secure());
        assert!(
            s.cost <= 1.02 * concrete,
            "{bits} bits at 2^{target_log2}: {:.3e} vs Concrete's {concrete:.2e}",
            s.cost
        );
    }
}

/// Concrete 2.10's 8-bit choice at 2^-13.9 (cost 1.22e9: k = 1, N = 2^14, n = 1006, one PBS level,
/// KS 5 levels of base 2^4) misses veil's bound. Its blind rotation alone needs the rounding of a
/// one-level decomposition (`(1 + kN/2) / (24 B^2)` per CMUX) plus FFT noise growing as `B^2`:
/// with tfhe-rs's FFT fit the best base leaves a predicted error of 1.5e-4 (2.4x the target, 1.11
/// `V_safe`) with the centered modulus switch, and 8.7e-4 (14x, 1.44 `V_safe`) with the standard
/// one, whose `n/24` term alone takes 65% of `V_safe`. veil's cheapest valid point (n = 1019)
/// costs 1.4% more.
///
/// Measured with real tfhe-rs keys for that set (ignored test
/// `noise_validation::concrete_live_choices_measured`): blind rotation 0.91x veil's prediction
/// (0.95x at average key weights; its FFT part 0.81x tfhe-rs's fit, 0.29x Concrete's), keyswitch
/// 0.99x, centered and standard modulus switch 1.01x and 0.97x; the bootstrap input measures
/// 1.07 +-0.02 `V_safe` with the centered switch (p_error 1.2e-4, 1.8x the target) and 1.38
/// +-0.02 `V_safe` with the standard one (6.6e-4, 10x). Concrete's set misses its target; veil's
/// model is the right one.
#[test]
fn concrete_live_8_bit_choice_violates_the_bound() {
    use veil_compiler::optimizer::error::{p_error_of_variance, safe_variance};
    use veil_compiler::optimizer::noise::{
        blind_rotation_variance, cmux_variance, keyswitch_variance, ms_variance,
    };
    use veil_compiler::optimizer::security::min_secure_variance;
    let (n, big_n) = (1006, 1usize << 14);
    let bsk = min_secure_variance(NoiseDistribution::Gaussian, big_n);
    let ksk = min_secure_variance(NoiseDistribution::Gaussian, n);
    let cmux = (1..=63)
        .map(|b| cmux_variance(1, big_n, b, 1, bsk))
        .fold(f64::INFINITY, f64::min);
    let ks = keyswitch_variance(big_n, 4, 5, ksk);
    for (ms, at_least) in [
        (ModulusSwitch::Centered, 2.0),
        (ModulusSwitch::Standard, 10.0),
    ] {
        let v = blind_rotation_variance(n, cmux) + ks + ms_variance(ms, n, big_n);
        let p = p_error_of_variance(8, v);
        assert!(
            p > at_least * p_error_13_9(),
            "{ms:?}: {p:.3e} ({:.3} V_safe)",
            v / safe_variance(8, p_error_13_9())
        );
    }
}

/// tfhe-rs 1.8's default `V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128` (n = 918, k = 1,
/// N = 2048, PBS 1 level, KS 4 levels) serves a 4-bit lookup after up to 5 summed ciphertexts
/// at p_error 2^-128; veil's choice for that request must cost no more in the same model.
#[test]
fn beats_tfhe_rs_default_at_2_minus_128() {
    let tfhe_rs = pbs_cost(918, 1, 2048, 1) + ks_cost(2048, 918, 4);
    let s = solve(4, 5.0, ErrorTarget::p_error((-128f64).exp2()));
    let set = &s.sets[0].params;
    assert!(set.is_secure());
    assert!(s.p_error <= (-128f64).exp2());
    assert!(
        s.cost <= tfhe_rs,
        "{set}: {:.3e} vs tfhe-rs {tfhe_rs:.3e}",
        s.cost
    );
    // Forced to TUniform noise it still fits (the runtime tests exercise that pattern).
    let t = solve_with(
        4,
        5.0,
        ErrorTarget::p_error((-128f64).exp2()),
        NoiseOptions {
            distribution: Some(NoiseDistribution::TUniform),
            modulus_switch: None,
            ks_modulus: None,
        },
    );
    assert!(
        t.sets[0].params.is_secure(),
        "{:?}",
        t.sets[0].params.insecurity()
    );
    assert_eq!(t.sets[0].params.modulus_switch, ModulusSwitch::Centered);
}

/// Concrete's 4-bit choice at a dot-product 2-norm of 2^10 (sum w^2 = 2^20): k = 2, N = 2^10,
/// n = 742, BR 2/15, KS 5/3. veil must do at least as well under the same models.
#[test]
fn matches_concrete_at_large_norm() {
    let s = solve(4, 1048576.0, ErrorTarget::p_error(p_error_13_9()));
    let set = &s.sets[0].params;
    assert!(set.is_secure());
    let concrete = pbs_cost(742, 2, 1024, 2) + ks_cost(2048, 742, 5);
    assert!(s.cost <= 1.10 * concrete, "{set}: {} vs {concrete}", s.cost);
}

fn row(out: &mut String, bits: u8, norm2: f64, target_log2: f64) {
    row_with(out, bits, norm2, target_log2, NoiseOptions::default());
}

fn row_with(out: &mut String, bits: u8, norm2: f64, target_log2: f64, noise: NoiseOptions) {
    row_obj(out, bits, norm2, target_log2, noise, Objective::Model);
}

fn row_obj(
    out: &mut String,
    bits: u8,
    norm2: f64,
    target_log2: f64,
    noise: NoiseOptions,
    objective: Objective,
) {
    let s = solve_obj(
        bits,
        norm2,
        ErrorTarget::p_error(target_log2.exp2()),
        noise,
        objective,
    );
    let c = &s.sets[0];
    let p = &c.params;
    let concrete = if norm2 == 1.0 && target_log2 == -13.9 {
        format!("{:.1}", concrete_cost(bits) / 1048576.0)
    } else {
        "-".into()
    };
    let pattern = format!(
        "{}{}{}",
        match p.noise_distribution {
            NoiseDistribution::Gaussian => "G",
            NoiseDistribution::TUniform => "T",
        },
        match p.modulus_switch {
            ModulusSwitch::Standard => "s",
            ModulusSwitch::Centered => "c",
        },
        match p.ks_modulus {
            KsModulus::Q64 => "",
            KsModulus::Q32 => "32",
        }
    );
    let norm2 = if norm2.log2().fract() == 0.0 {
        format!("2^{}", norm2.log2())
    } else {
        format!("{norm2}")
    };
    writeln!(
        out,
        "{bits:>4} {norm2:>6} {:>8} | {pattern} {:>1} {:>5} {:>5} {:>3}/{:<3} {:>3}/{:<3} | {:>9.1} {:>9.3e} | {:>9}",
        format!("2^{target_log2}"),
        p.glwe_dimension,
        p.polynomial_size.trailing_zeros(),
        p.lwe_dimension,
        p.pbs_level,
        p.pbs_base_log,
        p.ks_level,
        p.ks_base_log,
        s.cost / 1048576.0,
        s.p_error,
        concrete,
    )
    .unwrap();
}

fn table() -> String {
    let mut out = String::from(
        "# veil's parameter choices (128-bit floor, one TLU). Columns: precision bits, norm2 (sum w^2),\n\
         # per-TLU p_error target | noise pattern (G Gaussian / T TUniform, s standard / c centered\n\
         # modulus switch, a trailing 32 for KS32 keyswitch keys), k, log2 N, n, PBS level/base_log,\n\
         # KS level/base_log |\n\
         # model cost / 2^20, predicted p_error | Concrete's reference cost / 2^20 (same model).\n\
         # Bless: cargo insta accept (after cargo test -p veil-compiler --test optimizer_golden)\n",
    );
    for bits in 1..=8 {
        row(&mut out, bits, 1.0, -13.9);
    }
    // Concrete's "norm2 = 2^10" row is a 2-norm of 2^10: sum w^2 = 2^20.
    for bits in [2, 4, 6] {
        row(&mut out, bits, 1048576.0, -13.9);
    }
    for bits in 1..=8 {
        row(&mut out, bits, 1.0, -40.0);
    }
    // The 2^-128 mode (tfhe-rs's default failure probability); 4 bits at norm2 5 is the request
    // tfhe-rs's default 2_2 set serves. Then the same points with each pattern forced.
    for bits in 1..=8 {
        row(&mut out, bits, 1.0, -128.0);
    }
    row(&mut out, 4, 5.0, -128.0);
    for dist in [NoiseDistribution::Gaussian, NoiseDistribution::TUniform] {
        for ms in [ModulusSwitch::Standard, ModulusSwitch::Centered] {
            let noise = NoiseOptions {
                distribution: Some(dist),
                modulus_switch: Some(ms),
                ks_modulus: None,
            };
            row_with(&mut out, 4, 5.0, -128.0, noise);
            row_with(&mut out, 8, 1.0, -13.9, noise);
        }
    }
    // KS32 forced (Gaussian, then TUniform: tfhe-rs's KS32 default set), then the free choice
    // under the latency objective (the compile default), which takes KS32.
    for dist in [NoiseDistribution::Gaussian, NoiseDistribution::TUniform] {
        row_with(&mut out, 4, 5.0, -128.0, ks32(Some(dist)));
        row_with(&mut out, 8, 1.0, -13.9, ks32(Some(dist)));
    }
    out.push_str("# objective latency, patterns free\n");
    for bits in 1..=8 {
        row_obj(
            &mut out,
            bits,
            1.0,
            -40.0,
            NoiseOptions::default(),
            Objective::Latency,
        );
    }
    out
}

#[test]
fn golden_table() {
    insta::assert_snapshot!("params_table", table());
}

/// Generous sanity bound (debug build, shared machine); the real figure is ~1 ms (release and
/// dev-profile alike, plus a one-time ~15-20 ms to build the decomposition fronts).
#[test]
fn one_to_eight_bits_is_fast() {
    let t = std::time::Instant::now();
    for bits in 1..=8 {
        solve(bits, 1.0, ErrorTarget::p_error(p_error_13_9()));
    }
    let took = t.elapsed();
    assert!(
        took.as_millis() < 1000,
        "optimizing 1..8 bits took {took:?}"
    );
}
