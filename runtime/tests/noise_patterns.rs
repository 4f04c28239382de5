//! End-to-end runs under every noise pattern the optimizer may choose: TUniform key and
//! encryption noise, and the centered (mean-compensated) modulus switch, alone and together.
//!
//! The TUniform set is tfhe-rs 1.8's default for 2 message + 2 carry bits on the 64-bit
//! keyswitch (n = 918, k = 1, N = 2048, TUniform bounds 2^45 and 2^17, PBS 23x1, KS 4x4), which
//! veil's optimizer also picks for 4 bits at norm2 5 and p_error 2^-128 when TUniform is forced.
//! Each program chains two bootstraps after a levelled sum of five ciphertexts, so the noise the
//! sets were sized for is exercised, and compares with the interpreter.

use veil_ir::params::{min_secure_noise_log2, min_secure_tuniform_log2};
use veil_ir::{
    Encoding, Graph, IntType, KeyId, Level, ModulusSwitch, NoiseDistribution, Op, ParamSet, Table,
    Tensor, TensorType,
};
use veil_runtime::*;

fn set(
    (n, k, big_n): (usize, usize, usize),
    pbs: (usize, usize),
    ks: (usize, usize),
    noise_distribution: NoiseDistribution,
    modulus_switch: ModulusSwitch,
) -> ParamSet {
    let floor = match noise_distribution {
        NoiseDistribution::Gaussian => min_secure_noise_log2,
        NoiseDistribution::TUniform => min_secure_tuniform_log2,
    };
    ParamSet {
        lwe_dimension: n,
        glwe_dimension: k,
        polynomial_size: big_n,
        lwe_noise_log2: floor(n),
        glwe_noise_log2: floor(k * big_n),
        pbs_base_log: pbs.0,
        pbs_level: pbs.1,
        ks_base_log: ks.0,
        ks_level: ks.1,
        message_bits: 4,
        p_error: 1e-10,
        noise_distribution,
        modulus_switch,
    }
}

fn enc_ty(int: IntType, shape: &[usize], key: KeyId) -> TensorType {
    TensorType {
        encoding: Some(Encoding { key, width: 4 }),
        ..TensorType::encrypted(int, shape.to_vec())
    }
}

/// `y = t2(t1(x0 + x1 + x2 + x3 + x4))` on 16 lanes, 4-bit unsigned.
fn program(p: ParamSet) -> Graph {
    let mut g = Graph::new();
    g.level = Level::Tfhe;
    g.params = vec![p];
    let u4 = IntType::unsigned(4);
    let big = enc_ty(u4, &[16], KeyId::Big(0));
    let small = enc_ty(u4, &[16], KeyId::Small(0));
    let mut sum = g.add_node(Op::Input { name: "x0".into() }, big.clone(), &[]);
    for i in 1..5 {
        let x = g.add_node(
            Op::Input {
                name: format!("x{i}"),
            },
            big.clone(),
            &[],
        );
        sum = g.add_node(Op::Add, big.clone(), &[sum, x]);
    }
    let mut v = sum;
    for f in [|i: i64| (5 * i + 3) % 16, |i: i64| 15 - i] {
        let ks = g.add_node(Op::KeySwitch, small.clone(), &[v]);
        let t = g.add_table(Table {
            entries: (0..16).map(f).collect(),
        });
        v = g.add_node(
            Op::Pbs {
                tables: vec![t],
                map: vec![],
            },
            big.clone(),
            &[ks],
        );
    }
    g.add_node(Op::Output { name: "y".into() }, big, &[v]);
    veil_ir::verify::verify(&g).unwrap_or_else(|e| panic!("test program invalid: {e}"));
    g
}

fn run_pattern(p: ParamSet, seed: u128) {
    assert!(p.is_secure(), "{p}: {:?}", p.insecurity());
    let g = program(p.clone());
    let ck = ClientKeys::generate(
        &[p],
        &KeygenOptions {
            seed,
            allow_insecure_for_tests: false,
        },
    )
    .unwrap();
    let req = KeyRequirements {
        bsk: [0].into(),
        ksk: [(KeyId::Big(0), KeyId::Small(0))].into(),
        ..Default::default()
    };
    let sk = ck.server_keys(&req, None).unwrap().decompress();
    // Five addends of at most 3 each: the sum stays within 4 bits.
    let inputs: Vec<Tensor<i64>> = (0..5)
        .map(|j| Tensor::new(vec![16], (0..16).map(|i| (i * (j + 1) + j) % 4).collect()).unwrap())
        .collect();
    let want = veil_ir::interp::run(&g, &inputs).unwrap();
    let vals = ck.encrypt_inputs(&g, &inputs).unwrap();
    let out = Executor::new(2).unwrap().run(&g, &sk, vals).unwrap();
    assert_eq!(ck.decrypt_outputs(&g, &out).unwrap(), want);
}

#[test]
fn tuniform_centered_tfhe_rs_default_set() {
    let p = set(
        (918, 1, 2048),
        (23, 1),
        (4, 4),
        NoiseDistribution::TUniform,
        ModulusSwitch::Centered,
    );
    // The bounds tfhe-rs uses for this set: 2^45 (LWE) and 2^17 (GLWE) on the 64-bit modulus.
    assert_eq!((p.lwe_noise_log2, p.glwe_noise_log2), (-19.0, -47.0));
    run_pattern(p, 17);
}

#[test]
fn gaussian_centered() {
    // veil's choice for 4 bits at norm2 5 and p_error 2^-128.
    let p = set(
        (833, 1, 2048),
        (23, 1),
        (3, 5),
        NoiseDistribution::Gaussian,
        ModulusSwitch::Centered,
    );
    run_pattern(p, 18);
}

#[test]
fn tuniform_standard() {
    // veil's choice for the same request with TUniform noise and the standard switch.
    let p = set(
        (879, 1, 4096),
        (23, 1),
        (3, 5),
        NoiseDistribution::TUniform,
        ModulusSwitch::Standard,
    );
    run_pattern(p, 19);
}
