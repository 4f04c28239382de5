//! End-to-end runs under every noise pattern the optimizer may choose: TUniform key and
//! encryption noise, and the centered (mean-compensated) modulus switch, alone and together.
//!
//! The TUniform set is tfhe-rs 1.8's default for 2 message + 2 carry bits on the 64-bit
//! keyswitch (n = 918, k = 1, N = 2048, TUniform bounds 2^45 and 2^17, PBS 23x1, KS 4x4), which
//! veil's optimizer also picks for 4 bits at norm2 5 and p_error 2^-128 when TUniform is forced.
//! Each program chains two bootstraps after a levelled sum of five ciphertexts, so the noise the
//! sets were sized for is exercised, and compares with the interpreter.
//!
//! The KS32 atomic pattern (keyswitch keys modulo 2^32) runs tfhe-rs 1.8's default set for it,
//! `V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128` (the same dimensions and
//! decompositions, LWE bound 2^13 on the 32-bit modulus), which veil's optimizer picks for the
//! same request with KS32 and TUniform forced, and veil's Gaussian KS32 choice; its keys also
//! go through both serialized forms.

use veil_ir::params::{min_secure_noise_log2, min_secure_tuniform_log2};
use veil_ir::{
    Encoding, Graph, IntType, KeyId, KsModulus, Level, ModulusSwitch, NoiseDistribution, Op,
    ParamSet, Table, Tensor, TensorType,
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
        ks_modulus: KsModulus::Q64,
    }
}

/// [`set`] with KS32 keyswitch keys: the LWE noise at its floor in 2^32 units.
fn set32(
    dims: (usize, usize, usize),
    pbs: (usize, usize),
    ks: (usize, usize),
    dist: NoiseDistribution,
) -> ParamSet {
    let mut p = set(dims, pbs, ks, dist, ModulusSwitch::Centered);
    p.ks_modulus = KsModulus::Q32;
    p.lwe_noise_log2 = dist.min_secure_noise_log2_mod(dims.0, 32);
    p
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
    run_pattern_keys(p, seed, |sk| sk);
}

/// [`run_pattern`] with the compressed server keys passed through `through` (e.g. a
/// serialization round trip) before they are expanded.
fn run_pattern_keys(
    p: ParamSet,
    seed: u128,
    through: impl FnOnce(CompressedServerKeys) -> CompressedServerKeys,
) {
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
    let sk = through(ck.server_keys(&req, None).unwrap()).decompress();
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

#[test]
fn ks32_tuniform_centered_tfhe_rs_default_set() {
    let p = set32((918, 1, 2048), (23, 1), (4, 4), NoiseDistribution::TUniform);
    // tfhe-rs's bounds: 2^13 on the 32-bit keyswitch modulus (torus 2^-19), 2^17 on 2^64.
    assert_eq!((p.lwe_noise_log2, p.glwe_noise_log2), (-19.0, -47.0));
    assert!(
        p.to_string().ends_with("ms=centered, ks_modulus=2^32 }"),
        "{p}"
    );
    run_pattern(p, 20);
}

#[test]
fn ks32_gaussian_centered_through_serialized_keys() {
    // veil's choice for 4 bits at norm2 5 and p_error 2^-128 with KS32 forced (the 64-bit
    // choice's dimensions: the KS32 floor equals the 64-bit one at n = 833).
    let p = set32((833, 1, 2048), (23, 1), (3, 5), NoiseDistribution::Gaussian);
    let p64 = set(
        (833, 1, 2048),
        (23, 1),
        (3, 5),
        NoiseDistribution::Gaussian,
        ModulusSwitch::Centered,
    );
    assert_eq!(p.lwe_noise_log2, p64.lwe_noise_log2);
    // Key sizes: the KS32 keyswitch key is half the 64-bit one, seeded and expanded.
    let sizes = |p: &ParamSet| {
        let ck = ClientKeys::generate(
            std::slice::from_ref(p),
            &KeygenOptions {
                seed: 3,
                allow_insecure_for_tests: false,
            },
        )
        .unwrap();
        let req = KeyRequirements {
            ksk: [(KeyId::Big(0), KeyId::Small(0))].into(),
            ..Default::default()
        };
        ck.server_keys(&req, None).unwrap().sizes()
    };
    let (s32, s64) = (sizes(&p), sizes(&p64));
    assert_eq!(
        (2 * s32.ksk, 2 * s32.ksk_compressed),
        (s64.ksk, s64.ksk_compressed)
    );
    assert_eq!(s32.ksk, 4 * 2048 * 5 * 834);
    // Seeded keys through their file form; the expanded keys through theirs (the run below
    // uses the seeded ones).
    run_pattern_keys(p.clone(), 21, |sk| {
        let bytes = sk.to_bytes().unwrap();
        let back = CompressedServerKeys::from_bytes(&bytes).unwrap();
        assert_eq!(back, sk);
        let full = sk.decompress();
        let again = ServerKeys::from_bytes(&full.to_bytes().unwrap()).unwrap();
        assert_eq!(again.provides(), full.provides());
        back
    });
}

/// A KS32 set whose decomposition needs more than 32 bits, or whose TUniform bound does not fit
/// the 32-bit modulus, is refused with a clear error; a KS32 key below the floor in 2^32 units
/// is insecure.
#[test]
fn ks32_sets_are_checked() {
    let gen = |p: ParamSet| {
        ClientKeys::generate(
            &[p],
            &KeygenOptions {
                seed: 1,
                allow_insecure_for_tests: false,
            },
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let mut wide = set32((918, 1, 2048), (23, 1), (4, 4), NoiseDistribution::TUniform);
    wide.ks_base_log = 11;
    let e = gen(wide);
    assert!(e.contains("base_log * levels <= 32"), "{e}");
    let mut low = set32(
        (1400, 1, 2048),
        (23, 1),
        (4, 4),
        NoiseDistribution::Gaussian,
    );
    low.lwe_noise_log2 = min_secure_noise_log2(1400);
    let e = gen(low);
    assert!(e.contains("modulus 2^32"), "{e}");
}
