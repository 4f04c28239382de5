//! Lowering soundness: for every program, the TFHE-level graph verifies and computes exactly
//! what the tensor-level graph computes (both run through the reference interpreter).

use veil_compiler::lower::{
    levelled_params, lower, op_align, ChooseError, LowerError, PartitionRequest,
};
use veil_ir::builder::Builder;
use veil_ir::params::min_secure_noise_log2;
use veil_ir::{interp, verify, Graph, IntType, Level, Op, ParamSet, Tensor};

/// A fixed parameter chooser: the interpreter does not look at parameters, it only needs a set
/// with the requested width.
fn chooser(req: &PartitionRequest) -> Result<ParamSet, String> {
    Ok(ParamSet {
        lwe_dimension: 801,
        glwe_dimension: 2,
        polynomial_size: 1024,
        lwe_noise_log2: min_secure_noise_log2(801),
        glwe_noise_log2: min_secure_noise_log2(2048),
        pbs_base_log: 23,
        pbs_level: 1,
        ks_base_log: 4,
        ks_level: 3,
        message_bits: req.precision,
        p_error: 1e-9,
        noise_distribution: Default::default(),
        modulus_switch: Default::default(),
        ks_modulus: Default::default(),
    })
}

/// Deterministic pseudo-random input in the range of each input's type.
fn inputs(g: &Graph, seed: u64) -> Vec<Tensor<i64>> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    g.inputs()
        .into_iter()
        .map(|v| {
            let t = g.ty(v);
            let (lo, hi) = (t.int.min(), t.int.max());
            let data = (0..t.numel())
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (lo + ((s >> 33) as i128 % (hi - lo + 1))) as i64
                })
                .collect();
            Tensor::new(t.shape.clone(), data).unwrap()
        })
        .collect()
}

/// Lowers `g`, verifies the result, and compares both interpreters on `samples` inputs;
/// returns the number of bootstraps.
fn check(g: &Graph, samples: u64) -> u64 {
    verify::verify(g).expect("tensor-level graph verifies");
    let l = lower(g, &chooser).expect("lowers");
    assert_eq!(l.program.level, Level::Tfhe);
    if let Err(e) = verify::verify(&l.program) {
        panic!(
            "lowered graph does not verify: {e}\n{}",
            veil_ir::text::print(&l.program)
        );
    }
    for seed in 0..samples {
        let x = inputs(g, seed);
        let want = interp::run(g, &x).expect("tensor-level run");
        let got = interp::run(&l.program, &x).unwrap_or_else(|e| {
            panic!(
                "TFHE-level run failed: {e}\n{}",
                veil_ir::text::print(&l.program)
            )
        });
        assert_eq!(got, want, "inputs {x:?}");
    }
    l.stats.pbs
}

fn u(bits: u8) -> IntType {
    IntType::unsigned(bits)
}

#[test]
fn tlu_unsigned_and_signed() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[4], u(3)).unwrap();
    let y = b.tlu(x, |v| v * v - 3).unwrap();
    let d = b.sub(x, b.constant_scalar(4).unwrap()).unwrap();
    let z = b.tlu(d, |v| 2 * v).unwrap();
    b.output("y", y).unwrap();
    b.output("z", z).unwrap();
    assert_eq!(check(&b.finish().unwrap(), 30), 8);
}

#[test]
fn univariate_ops() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], IntType::signed(4)).unwrap();
    for (name, v) in [
        ("relu", b.relu(x).unwrap()),
        ("abs", b.abs(x).unwrap()),
        ("clip", b.clip(x, -2, 3).unwrap()),
        ("round", b.round(x, 2).unwrap()),
    ] {
        b.output(name, v).unwrap();
    }
    // One shared keyswitch node for relu, abs and clip (a bootstrap each per element); the
    // exact round extracts its 2 dropped bits, a `keyswitch.bit` and a 1-bit bootstrap
    // each, whose results are subtracted from x + 2: x lives under the big key.
    let g = b.finish().unwrap();
    assert_eq!(check(&g, 40), 15);
    let l = lower(&g, &chooser).unwrap();
    let p = &l.program;
    let count = |f: &dyn Fn(&Op) -> bool| p.values().into_iter().filter(|v| f(p.op(*v))).count();
    assert_eq!(count(&|op| matches!(op, Op::KeySwitch)), 1);
    assert_eq!(count(&|op| matches!(op, Op::KeySwitchBit { .. })), 2);
    assert_eq!(l.stats.pbs_by_precision.get(&1), Some(&6));
    let x = p.inputs()[0];
    assert_eq!(p.ty(x).encoding.unwrap().key, veil_ir::KeyId::Big(0));
}

#[test]
fn comparisons_min_max() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], u(3)).unwrap();
    let y = b.input_encrypted("y", &[2], u(3)).unwrap();
    let c = b.constant(&[2], &[2, 5]).unwrap();
    for (i, op) in veil_ir::CmpOp::ALL.into_iter().enumerate() {
        let r = b.cmp(x, y, op).unwrap();
        b.output(&format!("c{i}"), r).unwrap();
        let r = b.cmp(x, c, op).unwrap();
        b.output(&format!("k{i}"), r).unwrap();
    }
    let mn = b.min(x, y).unwrap();
    let mx = b.max(x, c).unwrap();
    b.output("min", mn).unwrap();
    b.output("max", mx).unwrap();
    check(&b.finish().unwrap(), 40);
}

#[test]
fn encrypted_products() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2, 3], u(2)).unwrap();
    let y = b.input_encrypted("y", &[3, 2], u(2)).unwrap();
    let s = b.input_encrypted("s", &[3], IntType::signed(3)).unwrap();
    let m = b.matmul(x, y).unwrap();
    let p = b.mul(s, s).unwrap();
    b.output("m", m).unwrap();
    b.output("p", p).unwrap();
    // matmul: 2*3*2 products, 2 PBS each; mul: 3 products.
    assert_eq!(check(&b.finish().unwrap(), 30), 2 * 12 + 2 * 3);
}

#[test]
fn dot_product_with_activation_and_multi_table() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[1, 4], u(3)).unwrap();
    let w = b.constant(&[4, 2], &[1, -2, 3, 0, -1, 2, 2, 1]).unwrap();
    let acc = b.matmul(x, w).unwrap();
    let act = b.relu(acc).unwrap();
    let flat = b.reshape(act, &[2]).unwrap();
    let half = b.tlu(flat, |v| v / 2).unwrap();
    let multi = b
        .tlu_multi(
            x,
            vec![(0..8).collect(), (0..8).map(|v| 7 - v).collect()],
            vec![0, 1, 0, 1],
        )
        .unwrap();
    b.output("half", half).unwrap();
    b.output("multi", multi).unwrap();
    check(&b.finish().unwrap(), 40);
}

#[test]
fn levelled_only_program_needs_no_bootstrap() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], u(4)).unwrap();
    let w = b.constant(&[3], &[3, -5, 7]).unwrap();
    let y = b.sum(b.mul(x, w).unwrap(), &[], false).unwrap();
    b.output("y", b.neg(y).unwrap()).unwrap();
    let g = b.finish().unwrap();
    assert_eq!(check(&g, 20), 0);
    let l = lower(&g, &chooser).unwrap();
    // norm2 of the output: sum of squared weights.
    assert_eq!(l.stats.levelled_outputs[0].1, 9.0 + 25.0 + 49.0);
    assert!(l
        .program
        .values()
        .iter()
        .all(|v| !matches!(l.program.op(*v), Op::Pbs { .. })));
}

#[test]
fn errors_are_clear() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], u(20)).unwrap();
    let y = b.relu(x).unwrap();
    b.output("y", y).unwrap();
    let err = lower(&b.finish().unwrap(), &chooser).unwrap_err();
    assert!(
        matches!(&err, LowerError::Unsupported { why, .. } if why.contains("20 bits")),
        "{err}"
    );
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], u(3)).unwrap();
    b.output("y", b.relu(x).unwrap()).unwrap();
    let err = lower(&b.finish().unwrap(), &|_: &PartitionRequest| {
        Err("too tight".to_string())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no TFHE parameters for 3-bit bootstraps with norm2 1: too tight"
    );
    assert!(
        matches!(&err, LowerError::NoParameters { precision: 3, why: ChooseError::Other(w), .. } if w == "too tight"),
        "{err:?}"
    );
}

/// A levelled program needing more bits than any fresh encryption decodes gets a typed error.
#[test]
fn levelled_params_refuses_too_many_bits() {
    let req = PartitionRequest {
        precision: 60,
        norm2: 1e6,
        tlu_count: 0,
    };
    let err = levelled_params(&req, 1e-5).unwrap_err();
    assert!(
        matches!(
            err,
            ChooseError::FreshEncryptionTooNarrow { precision: 60, .. }
        ),
        "{err}"
    );
    let ok = PartitionRequest {
        precision: 4,
        norm2: 1.0,
        tlu_count: 0,
    };
    assert_eq!(levelled_params(&ok, 1e-5).unwrap().message_bits, 4);
}

/// The one alignment rule (shared by the lowering and the e-graph analysis).
#[test]
fn alignment_rule() {
    let none = || None;
    assert_eq!(op_align(&Op::Mul, &[2, 3], none), 5);
    assert_eq!(op_align(&Op::Mul, &[40, 40], none), 62);
    assert_eq!(op_align(&Op::Add, &[2, 3], none), 2);
    assert_eq!(op_align(&Op::Reshape, &[4], none), 4);
    assert_eq!(op_align(&Op::MatMul, &[4, 4], none), 0);
    let exact = Op::Round {
        lsbs: 3,
        approx: false,
        rescale: false,
    };
    assert_eq!(op_align(&exact, &[1], none), 3);
    assert_eq!(op_align(&exact, &[5], none), 5);
    let quotient = Op::Round {
        lsbs: 3,
        approx: true,
        rescale: true,
    };
    assert_eq!(op_align(&quotient, &[5], none), 0);
    let tlu = Op::Tlu {
        table: veil_ir::TableId(0),
    };
    assert_eq!(op_align(&tlu, &[0], || Some(4)), 4);
    assert_eq!(op_align(&tlu, &[0], none), 0);
}
