//! The numpy integer ops (`floordiv` ... `where`) through the compiler: bootstrap counts of the
//! desugared programs, interpreter agreement of the `desugar` pass on random programs
//! (proptest), and one encrypted run of every op checked against the reference interpreter.

use proptest::prelude::*;
use veil_compiler::passes::{PassContext, PassManager};
use veil_compiler::program::{compile, CompileConfig};
use veil_ir::builder::Builder;
use veil_ir::{BinOp, Graph, IntType, Tensor, ValueId};

fn u(b: u8) -> IntType {
    IntType::unsigned(b)
}

fn t(shape: &[usize], d: Vec<i64>) -> Tensor<i64> {
    Tensor::new(shape.to_vec(), d).unwrap()
}

/// Every value of a scalar-per-element input of `bits` bits, as one `[n]` sample per value.
fn all_values(n: usize, bits: u8) -> Vec<Vec<Tensor<i64>>> {
    (0..1i64 << bits)
        .map(|v| vec![t(&[n], vec![v; n])])
        .collect()
}

/// `np.where(x > 10, x * 2, x // 2)` on u5: one lookup of `x`, one bootstrap per element.
fn select_program() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[4], u(5)).unwrap();
    let ten = b.constant_scalar(10).unwrap();
    let two = b.constant_scalar(2).unwrap();
    let c = b.gt(x, ten).unwrap();
    let a = b.mul(x, two).unwrap();
    let h = b.floor_div(x, 2).unwrap();
    let w = b.where_(c, a, h).unwrap();
    b.output("y", w).unwrap();
    b.finish().unwrap()
}

#[test]
fn select_compiles_to_one_bootstrap() {
    let g = select_program();
    let p = compile(&g, &all_values(4, 5), &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 4, "{}", p.stats.summary());
    assert_eq!(
        p.stats.pbs_by_precision.keys().copied().collect::<Vec<_>>(),
        vec![5]
    );
    for v in [0, 10, 11, 31] {
        let x = vec![t(&[4], vec![v; 4])];
        let want = veil_ir::run(&g, &x).unwrap();
        assert_eq!(p.simulate(&x, 1).unwrap(), want);
        assert_eq!(want[0].data[0], if v > 10 { v * 2 } else { v / 2 });
    }
}

/// `x // 3`, `x % 5`, `(x + 1) ** 2` and `x >> 1` on one value each cost one bootstrap, and a
/// chain of them fuses with the neighbouring lookups.
#[test]
fn univariate_ops_are_single_lookups() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[1], u(4)).unwrap();
    let one = b.constant_scalar(1).unwrap();
    let q = b.floor_div(x, 3).unwrap();
    let r = b.modulo(x, 5).unwrap();
    let xp = b.add(x, one).unwrap();
    let p2 = b.pow(xp, 2).unwrap();
    let m = b.modulo(p2, 7).unwrap();
    let s = b.shr(x, 1).unwrap();
    for (n, v) in [("q", q), ("r", r), ("m", m), ("s", s)] {
        b.output(n, v).unwrap();
    }
    let g = b.finish().unwrap();
    let p = compile(&g, &all_values(1, 4), &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 4, "{}", p.stats.summary());
    let x = vec![t(&[1], vec![13])];
    assert_eq!(
        p.simulate(&x, 0).unwrap(),
        vec![
            t(&[1], vec![4]),
            t(&[1], vec![3]),
            t(&[1], vec![0]),
            t(&[1], vec![6])
        ]
    );
}

/// A program with every new op, on 2-bit values so that every packed lookup is small.
fn all_ops_program() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], u(2)).unwrap();
    let y = b.input_encrypted("y", &[3], u(2)).unwrap();
    let c = b.input_encrypted("c", &[3], u(1)).unwrap();
    let two = b.constant_scalar(2).unwrap();
    let xm = b.sub(x, two).unwrap(); // -2..1: signed operands
    let mut outs: Vec<(String, ValueId)> = vec![];
    for op in BinOp::ALL {
        outs.push((op.name().into(), b.binary(xm, y, op).unwrap()));
    }
    outs.push(("floordiv3".into(), b.floor_div(xm, 3).unwrap()));
    outs.push(("pow3".into(), b.pow(xm, 3).unwrap()));
    outs.push(("sign".into(), b.sign(xm).unwrap()));
    outs.push(("not".into(), b.logical_not(xm).unwrap()));
    outs.push(("bitnot".into(), b.bit_not(xm).unwrap()));
    outs.push(("where".into(), b.where_(c, xm, y).unwrap()));
    for (n, v) in &outs {
        b.output(n, *v).unwrap();
    }
    b.finish().unwrap()
}

fn all_ops_inputs() -> Vec<Vec<Tensor<i64>>> {
    let mut set = vec![];
    for xv in 0..4 {
        for yv in 0..4 {
            // y = 0 divides by zero: the inputset avoids it (numpy would warn).
            let yv = yv.max(1);
            set.push(vec![
                t(&[3], vec![xv, (xv + 1) % 4, (xv + 2) % 4]),
                t(&[3], vec![yv, 3, 1 + (xv % 3)]),
                t(&[3], vec![xv % 2, 1, 0]),
            ]);
        }
    }
    set
}

#[test]
fn every_op_runs_encrypted() {
    let g = all_ops_program();
    let set = all_ops_inputs();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    // One lookup per element of each of the 17 outputs (pairs packed into one value).
    assert_eq!(p.stats.pbs, 17 * 3, "{}", p.stats.summary());
    let (ck, sk) = p.keygen(7).unwrap();
    for sample in [&set[0], &set[7], &set[13]] {
        let want = veil_ir::run(&g, sample).unwrap();
        let enc = p.encrypt(&ck, sample).unwrap();
        let out = p.run(&sk, enc).unwrap();
        assert_eq!(p.decrypt(&ck, &out).unwrap(), want);
    }
}

/// One random step of a program over values `vals`.
fn step(b: &Builder, vals: &[ValueId], kind: u8, i: u8, j: u8, k: i8) -> Option<ValueId> {
    let a = vals[i as usize % vals.len()];
    let c = vals[j as usize % vals.len()];
    let r = match kind % 10 {
        0 => b.binary(a, c, BinOp::ALL[k.unsigned_abs() as usize % 11]),
        1 => {
            let kc = b.constant_scalar(k as i64).ok()?;
            b.binary(a, kc, BinOp::ALL[(k as u8 as usize / 3) % 11])
        }
        2 => b.where_(a, c, vals[(i ^ j) as usize % vals.len()]),
        3 => b.sign(a),
        4 => b.bit_not(a),
        5 => b.logical_not(a),
        6 => b.add(a, c),
        8 => b.max(a, c).and_then(|m| b.relu(m)),
        9 => b
            .min(a, c)
            .and_then(|m| b.tlu(m, |v| (v * v - 1).clamp(-8, 7))),
        _ => {
            let kc = b.constant_scalar(k as i64).ok()?;
            b.gt(a, kc)
        }
    };
    let r = r.ok()?;
    // Keep values narrow enough to pack.
    (b.ty(r).ok()?.int.bits <= 4).then_some(r)
}

fn random_program(steps: &[(u8, u8, u8, i8)]) -> Option<Graph> {
    let b = Builder::new();
    let mut vals = vec![
        b.input_encrypted("x", &[2], u(2)).ok()?,
        b.input_encrypted("y", &[2], IntType::signed(2)).ok()?,
    ];
    for &(kind, i, j, k) in steps {
        if let Some(v) = step(&b, &vals, kind, i, j, k) {
            vals.push(v);
        }
    }
    if vals.len() < 3 {
        return None;
    }
    b.output("out", *vals.last()?).ok()?;
    b.output("mid", vals[vals.len() / 2 + 1]).ok()?;
    b.finish().ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The desugared graph computes what the original computes, wherever the original is
    /// defined, and holds none of the numpy ops.
    #[test]
    fn desugar_agrees_with_the_interpreter(
        steps in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), -4i8..6), 1..8),
        xs in prop::collection::vec((0i64..4, -2i64..2), 2),
    ) {
        let Some(g) = random_program(&steps) else { return Ok(()) };
        let mut d = g.clone();
        let mut pm = PassManager::from_names(&["desugar", "dce"]).unwrap();
        pm.run(&mut d, &mut PassContext::default()).unwrap();
        for v in d.values() {
            prop_assert!(
                !matches!(d.op(v), veil_ir::Op::Binary(_) | veil_ir::Op::Unary(_) | veil_ir::Op::Where),
                "{}", veil_ir::text::print(&d)
            );
        }
        let inputs = vec![
            t(&[2], xs.iter().map(|p| p.0).collect()),
            t(&[2], xs.iter().map(|p| p.1).collect()),
        ];
        if let Ok(want) = veil_ir::run(&g, &inputs) {
            let got = veil_ir::run(&d, &inputs);
            prop_assert_eq!(got.as_ref().ok(), Some(&want), "{}\n{}", veil_ir::text::print(&g), veil_ir::text::print(&d));
        }
    }
}

/// `a ^ b` on two u6 values does not pack into 8 bits: digit-wise, two 3-bit chunks per operand,
/// 6 bootstraps per element on 6 bits, and the lowered program computes it (simulated).
#[test]
fn wide_xor_goes_digit_by_digit() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], u(6)).unwrap();
    let y = b.input_encrypted("y", &[2], u(6)).unwrap();
    let r = b.bit_xor(x, y).unwrap();
    b.output("r", r).unwrap();
    let g = b.finish().unwrap();
    let set: Vec<Vec<Tensor<i64>>> = (0..16)
        .map(|i| {
            vec![
                t(&[2], vec![i * 4, 63 - i]),
                t(&[2], vec![63 - i * 3, i * 2]),
            ]
        })
        .collect();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 12, "{}", p.stats.summary());
    assert!(p.stats.pbs_by_precision.keys().all(|&b| b <= 6));
    for s in &set {
        assert_eq!(p.simulate(s, 3).unwrap(), veil_ir::run(&g, s).unwrap());
    }
}

/// A depth-2 decision tree written with `where`: `where(x0 > 5, where(x1 > 3, 1, 2),
/// where(x2 > 9, 3, 4))` on u4 features. Each inner `where` is one lookup of its feature (the
/// comparison fused in), the root one lookup of the packed (condition, left, right) and the
/// root's comparison one more: 4 bootstraps, the optimum stated in issue 16.
#[test]
fn decision_tree_with_where_is_four_bootstraps() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], u(4)).unwrap();
    let f = |i: usize| {
        let s = b.slice(x, &[i], &[i + 1], &[1]).unwrap();
        b.reshape(s, &[]).unwrap()
    };
    let (x0, x1, x2) = (f(0), f(1), f(2));
    let k = |v: i64| b.constant_scalar(v).unwrap();
    let c0 = b.gt(x0, k(5)).unwrap();
    let c1 = b.gt(x1, k(3)).unwrap();
    let c2 = b.gt(x2, k(9)).unwrap();
    let l = b.where_(c1, k(1), k(2)).unwrap();
    let r = b.where_(c2, k(3), k(4)).unwrap();
    let y = b.where_(c0, l, r).unwrap();
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    let set: Vec<Vec<Tensor<i64>>> = (0..48)
        .map(|i| vec![t(&[3], vec![i % 16, (i * 7) % 16, (i * 5 + 3) % 16])])
        .collect();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 4, "{}", p.stats.summary());
    for s in &set {
        assert_eq!(p.simulate(s, 5).unwrap(), veil_ir::run(&g, s).unwrap());
    }
}

/// The select example written with the tracing frontend compiles to the same single lookup and
/// runs encrypted.
#[test]
fn traced_select_runs_encrypted() {
    let tr = veil_ir::trace::Tracer::new();
    let x = tr.input("x", &[4], u(5));
    tr.output("y", x.gt(10).select(x * 2, x / 2));
    let g = tr.finish().unwrap();
    let p = compile(&g, &all_values(4, 5), &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 4, "{}", p.stats.summary());
    let (ck, sk) = p.keygen(11).unwrap();
    let x = vec![t(&[4], vec![3, 10, 11, 31])];
    let out = p.run(&sk, p.encrypt(&ck, &x).unwrap()).unwrap();
    assert_eq!(
        p.decrypt(&ck, &out).unwrap(),
        vec![t(&[4], vec![1, 5, 22, 62])]
    );
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// numpy's functions of encrypted pairs that Concrete compiles through `fhe.multivariate`
/// (`x / y` then cast, `gcd`, `lcm`, `hypot`, `arctan2`, `copysign`, `ldexp`), each one lookup of
/// the packed pair, and `fmod`, run encrypted against the interpreter and the direct formula.
#[test]
fn multivariate_pairs_run_encrypted() {
    type F = fn(i64, i64) -> i64;
    let fns: [(&str, F); 7] = [
        ("true_divide", |a, b| {
            if b == 0 {
                0
            } else {
                (a as f64 / b as f64).floor() as i64
            }
        }),
        ("gcd", gcd),
        ("lcm", |a, b| {
            if a == 0 || b == 0 {
                0
            } else {
                (a * b).abs() / gcd(a, b)
            }
        }),
        ("hypot", |a, b| {
            ((a * a + b * b) as f64).sqrt().round() as i64
        }),
        ("arctan2", |a, b| {
            (10.0 * (a as f64).atan2(b as f64)).round() as i64
        }),
        ("copysign", |a, b| if b < 0 { -a.abs() } else { a.abs() }),
        ("ldexp", |a, b| a * (1 << b.max(0))),
    ];
    let tr = veil_ir::trace::Tracer::new();
    let x = tr.input("x", &[3], IntType::signed(3));
    let y = tr.input("y", &[3], u(3));
    let ys = tr.input("ys", &[3], IntType::signed(2));
    for (name, f) in fns {
        let other = if name == "copysign" { ys } else { y };
        tr.output(name, tr.multivariate(&[x, other], move |v| f(v[0], v[1])));
    }
    tr.output("fmod", x.fmod(3));
    let g = tr.finish().unwrap();
    let sample = |a: [i64; 3], b: [i64; 3], c: [i64; 3]| {
        vec![
            t(&[3], a.to_vec()),
            t(&[3], b.to_vec()),
            t(&[3], c.to_vec()),
        ]
    };
    let mut set = vec![];
    for a in -4..4 {
        set.push(sample(
            [a, (-a).min(3), a / 2],
            [(a & 7), 7 - (a & 7), 3],
            [a % 2, -2, 1],
        ));
    }
    // exact on every input of the declared types: the probe pairs values the inputset never
    // pairs (a packed index outside the calibrated one)
    let types = CompileConfig {
        domain: veil_compiler::program::DomainPolicy::Types,
        ..CompileConfig::default()
    };
    let p = compile(&g, &set, &types).unwrap();
    // One lookup per element of each output.
    assert_eq!(p.stats.pbs, 8 * 3, "{}", p.stats.summary());
    let (ck, sk) = p.keygen(23).unwrap();
    let probe = sample([-4, 2, 0], [3, 0, 6], [-2, 1, -1]);
    let want = veil_ir::run(&g, &probe).unwrap();
    for (k, (name, f)) in fns.iter().enumerate() {
        let other = if *name == "copysign" {
            &probe[2]
        } else {
            &probe[1]
        };
        let direct: Vec<i64> = (0..3).map(|i| f(probe[0].data[i], other.data[i])).collect();
        assert_eq!(want[k].data, direct, "{name}");
    }
    assert_eq!(want[7].data, vec![-1, 2, 0]); // C remainder: fmod(-4, 3) = -1
    let out = p.run(&sk, p.encrypt(&ck, &probe).unwrap()).unwrap();
    assert_eq!(p.decrypt(&ck, &out).unwrap(), want);
}

/// A multivariate function of arguments too wide to pack is one error line at the caller's
/// source location.
#[test]
fn multivariate_too_wide_names_the_caller() {
    let tr = veil_ir::trace::Tracer::new();
    let x = tr.input("x", &[2], u(5));
    let y = tr.input("y", &[2], u(4));
    let line = line!() + 1;
    let z = tr.multivariate(&[x, y], |v| v[0] * v[1]);
    tr.output("z", z);
    let e = tr.finish().unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "numpy_ops.rs:{line}:16: multivariate: the arguments (u5, u4) hold 9 bits"
        )),
        "{e}"
    );
}

/// Python indexing (negative indices and steps, fancy indexing, `x[i] = y`), 1-D and 3-D
/// convolutions, dilated pooling and batched matmul, written with the tracer, compile and run
/// encrypted: the data movement and convolutions are levelled, the pooling costs its maxima
/// and floor divisions only.
#[test]
fn indexing_convolutions_and_batches_run_encrypted() {
    let tr = veil_ir::trace::Tracer::new();
    let x = tr.input("x", &[2, 6], u(3));
    let v = tr.input("v", &[2], u(3));
    let img = tr.input("img", &[1, 1, 5, 5], u(3));
    let vol = tr.input("vol", &[1, 1, 3, 3, 4], u(2));
    tr.output("rev", x.slice_signed(1, None, None, -2));
    tr.output("neg", x.at_signed(0, -1).take(&[-1, 0, 0], 0));
    tr.output("set", x.put(1, &[-1], v.reshape(&[2, 1])));
    let w1 = tr.constant(&[1, 2, 2], &[1, -1, 2, 1]);
    tr.output("conv1d", x.reshape(&[1, 2, 6]).conv1d(w1, 2, [1, 0], 2));
    let w3 = tr.constant(&[1, 1, 2, 2, 2], &[1, 0, 0, 1, -1, 0, 1, 1]);
    tr.output(
        "conv3d",
        vol.conv3d(w3, [2, 1, 1], [1, 0, 1, 0, 0, 0], [1, 1, 2]),
    );
    tr.output("maxpool", img.max_pool2d_dilated([2, 2], [1, 2], [2, 2]));
    tr.output("avgpool", img.avg_pool2d_dilated([2, 1], [2, 1], [3, 1]));
    let m = tr.constant(&[3, 2], &[1, 2, 0, -1, 3, 1]);
    tr.output("bmm", x.reshape(&[2, 2, 3]).matmul(m));
    let g = tr.finish().unwrap();
    let sample = |s: i64| {
        vec![
            t(&[2, 6], (0..12).map(|i| (i * 5 + s) % 8).collect()),
            t(&[2], vec![s % 8, (s + 3) % 8]),
            t(&[1, 1, 5, 5], (0..25).map(|i| (i * 3 + s) % 8).collect()),
            t(&[1, 1, 3, 3, 4], (0..36).map(|i| (i * 7 + s) % 4).collect()),
        ]
    };
    let set: Vec<_> = (0..16).map(sample).collect();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    // Max pool: 3x2 windows of 4 (3 maxima each); avg pool: 1x5 windows, one division each.
    assert_eq!(p.stats.pbs, 6 * 3 + 5, "{}", p.stats.summary());
    let (ck, sk) = p.keygen(29).unwrap();
    let probe = sample(5);
    let want = veil_ir::run(&g, &probe).unwrap();
    let out = p.run(&sk, p.encrypt(&ck, &probe).unwrap()).unwrap();
    assert_eq!(p.decrypt(&ck, &out).unwrap(), want);
}

/// Concrete's `fhe.refresh`: the identity lookup is kept as one bootstrap per element, on an
/// input directly and inside arithmetic (where the rewrite moves it onto the narrower `x`), and
/// the refreshed program runs encrypted.
#[test]
fn refresh_is_a_kept_bootstrap() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], u(4)).unwrap();
    let three = b.constant_scalar(3).unwrap();
    let s = b.mul(x, three).unwrap();
    let r = b.refresh(s).unwrap();
    let y = b.add(r, x).unwrap();
    let z = b.refresh(x).unwrap();
    b.output("y", y).unwrap();
    b.output("z", z).unwrap();
    let g = b.finish().unwrap();
    let p = compile(&g, &all_values(2, 4), &CompileConfig::default()).unwrap();
    assert_eq!(p.stats.pbs, 4, "{}", p.stats.summary());
    let x = vec![t(&[2], vec![5, 15])];
    let want = veil_ir::run(&g, &x).unwrap();
    assert_eq!(want, vec![t(&[2], vec![20, 60]), t(&[2], vec![5, 15])]);
    let (ck, sk) = p.keygen(31).unwrap();
    let out = p.run(&sk, p.encrypt(&ck, &x).unwrap()).unwrap();
    assert_eq!(p.decrypt(&ck, &out).unwrap(), want);
}

/// Encrypted pairs too wide to pack into one lookup (`u6` with `i5`, 11 bits): comparisons and
/// `min`/`max` never pack (one lookup of the difference), logical `and`/`or`/`xor` reduce each
/// operand to a bit first (three lookups), bitwise ops go digit by digit; all agree with the
/// interpreter on the lowered program (simulated).
#[test]
fn wide_pairs_compile_without_packing() {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[4], u(6)).unwrap();
    let y = b.input_encrypted("y", &[4], IntType::signed(5)).unwrap();
    let outs = [
        ("lt", b.lt(x, y).unwrap()),
        ("ge", b.ge(x, y).unwrap()),
        ("eq", b.eq(x, y).unwrap()),
        ("max", b.max(x, y).unwrap()),
        ("min", b.min(x, y).unwrap()),
        ("and", b.logical_and(x, y).unwrap()),
        ("or", b.logical_or(x, y).unwrap()),
        ("xor", b.logical_xor(x, y).unwrap()),
        ("bitor", b.bit_or(x, y).unwrap()),
    ];
    for (n, v) in outs {
        b.output(n, v).unwrap();
    }
    let g = b.finish().unwrap();
    let set: Vec<_> = (0..64)
        .map(|i| {
            vec![
                t(&[4], vec![i, 63 - i, i / 2, 0]),
                t(&[4], vec![i % 32 - 16, i % 7 - 3, 0, (i % 31) - 15]),
            ]
        })
        .collect();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    assert!(
        p.stats.pbs_by_precision.keys().all(|&b| b <= 8),
        "{}",
        p.stats.summary()
    );
    for s in [&set[0], &set[17], &set[40], &set[63]] {
        assert_eq!(p.simulate(s, 3).unwrap(), veil_ir::run(&g, s).unwrap());
    }
}

/// `fhe.truncate_bit_pattern(x, k)` costs what Concrete's lowering costs (one 1-bit bootstrap
/// per cleared bit, `lsb` extractions subtracted from `x`), not one lookup of the whole of `x`:
/// on a `u6[4]` with `k = 2`, 8 one-bit bootstraps at 4.75e8 in Concrete's cost model against
/// 4 six-bit lookups at 1.82e9 for the shift spelling `(x >> 2) << 2`. Signed operands and a
/// lookup of the truncated value (which reads its kept high bits) agree with the interpreter.
#[test]
fn truncate_bit_pattern_costs_one_bit_bootstraps() {
    let program = |shifts: bool, ty: IntType, k: u32, then_square: bool| {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[4], ty).unwrap();
        let y = if shifts {
            let q = b.shr(x, k).unwrap();
            b.shl(q, k).unwrap()
        } else {
            b.truncate_bit_pattern(x, k).unwrap()
        };
        let y = if then_square {
            b.tlu(y, |v| v * v % 61).unwrap()
        } else {
            y
        };
        b.output("y", y).unwrap();
        b.finish().unwrap()
    };
    let config = CompileConfig {
        domain: veil_runtime::artifact::DomainPolicy::Types,
        ..Default::default()
    };
    let g = program(false, u(6), 2, false);
    let p = compile(&g, &[], &config).unwrap();
    assert_eq!(p.stats.pbs, 8, "{}", p.stats.summary());
    assert_eq!(
        p.stats
            .pbs_by_precision
            .clone()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(1, 8)]
    );
    let shifted = compile(&program(true, u(6), 2, false), &[], &config).unwrap();
    assert_eq!(shifted.stats.pbs, 4);
    assert!(
        p.stats.cost * 2.0 < shifted.stats.cost,
        "{} against {}",
        p.stats.cost,
        shifted.stats.cost
    );
    for (ty, k, square) in [
        (u(6), 2, false),
        (IntType::signed(5), 3, false),
        (u(6), 3, true),
    ] {
        let g = program(false, ty, k, square);
        let p = compile(&g, &[], &config).unwrap();
        let (lo, hi) = (ty.min() as i64, ty.max() as i64);
        for v in lo..=hi {
            let x = vec![t(&[4], vec![v, lo.max(v - 1), hi.min(v + 1), v / 2])];
            let want = veil_ir::run(&g, &x).unwrap();
            if !square {
                let floor = v.div_euclid(1 << k) * (1 << k);
                assert_eq!(want[0].data[0], floor, "{ty:?} {v} k={k}");
            }
            assert_eq!(p.simulate(&x, 1).unwrap(), want, "{ty:?} {v} k={k}");
        }
    }
}
