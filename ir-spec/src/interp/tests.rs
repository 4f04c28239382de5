//! Hand-checked semantics of every op, error cases, and a property test that builder-made
//! random graphs verify and run without overflow.

use super::*;
use crate::builder::{BuildError, Builder};
use crate::ops::{CmpOp, Constant, Conv2dAttrs, Table};
use crate::params::ParamSet;
use crate::types::{Encoding, KeyId};
use crate::Level;
use proptest::prelude::*;

fn u(b: u8) -> IntType {
    IntType::unsigned(b)
}
fn i(b: u8) -> IntType {
    IntType::signed(b)
}

type Input<'a> = (IntType, &'a [usize], &'a [i64]);

/// Builds a graph from encrypted inputs and `f`, runs it on the inputs' values and compares
/// the single output (`"[shape] [data]"`) or the error text with `expect`.
fn check(
    inputs: &[Input],
    f: impl Fn(&Builder, &[ValueId]) -> Result<ValueId, BuildError>,
    expect: &str,
) {
    let b = Builder::new();
    let xs: Vec<ValueId> = inputs
        .iter()
        .enumerate()
        .map(|(k, (t, s, _))| b.input_encrypted(&format!("x{k}"), s, *t).unwrap())
        .collect();
    let y = f(&b, &xs).unwrap();
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    check_graph(&g, inputs, expect);
}

fn check_graph(g: &Graph, inputs: &[Input], expect: &str) {
    let vals: Vec<Tensor<i64>> = inputs
        .iter()
        .map(|(_, s, d)| Tensor::new(s.to_vec(), d.to_vec()).unwrap())
        .collect();
    let got = match run(g, &vals) {
        Ok(outs) => outs
            .iter()
            .map(|t| format!("{:?} {:?}", t.shape, t.data))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expect);
}

#[test]
fn add_sub_neg_mul() {
    check(
        &[(u(4), &[3], &[1, 2, 15]), (i(3), &[], &[-4])],
        |b, x| b.add(x[0], x[1]),
        "[3] [-3, -2, 11]",
    );
    check(
        &[(u(4), &[2, 1], &[1, 2]), (u(5), &[3], &[10, 20, 30])],
        |b, x| b.add(x[0], x[1]),
        "[2, 3] [11, 21, 31, 12, 22, 32]",
    );
    check(
        &[(u(4), &[2], &[1, 5]), (u(2), &[2], &[3, 2])],
        |b, x| b.sub(x[0], x[1]),
        "[2] [-2, 3]",
    );
    check(&[(i(4), &[2], &[-8, 7])], |b, x| b.neg(x[0]), "[2] [8, -7]");
    check(
        &[(i(3), &[2, 1], &[-4, 3]), (u(2), &[1, 2], &[3, 0])],
        |b, x| b.mul(x[0], x[1]),
        "[2, 2] [-12, 0, 9, 0]",
    );
    // Clear constant operands broadcast too.
    check(
        &[(i(3), &[2], &[-4, 3])],
        |b, x| b.mul(x[0], b.constant_scalar(-5)?),
        "[2] [20, -15]",
    );
}

#[test]
fn matmul() {
    // [2,3] @ const [3,2] with signed weights.
    check(
        &[(i(4), &[2, 3], &[1, -2, 3, 4, 5, -6])],
        |b, x| b.matmul(x[0], b.constant(&[3, 2], &[1, 0, -1, 2, 3, -3])?),
        // row 0: (1*1 + -2*-1 + 3*3, 0 - 4 - 9) = (12, -13); row 1: (4 - 5 - 18, 10 + 18) = (-19, 28)
        "[2, 2] [12, -13, -19, 28]",
    );
    // const [2] @ x [2,3]
    check(
        &[(u(3), &[2, 3], &[1, 2, 3, 4, 5, 6])],
        |b, x| b.matmul(b.constant(&[2], &[2, -1])?, x[0]),
        "[3] [-2, -1, 0]",
    );
    // vector . vector, both encrypted.
    check(
        &[(i(3), &[3], &[1, -2, 3]), (i(3), &[3], &[-4, 2, 1])],
        |b, x| b.matmul(x[0], x[1]),
        "[] [-5]",
    );
    // [m,k] @ [k] -> [m]
    check(
        &[(u(2), &[2, 2], &[1, 2, 3, 0]), (u(2), &[2], &[3, 1])],
        |b, x| b.matmul(x[0], x[1]),
        "[2] [5, 9]",
    );
}

#[test]
fn conv2d() {
    let x: Vec<i64> = (1..=9).collect();
    // Kernel of ones, bias 1 (same as the tensor kernel test).
    check(
        &[(u(4), &[1, 1, 3, 3], &x)],
        |b, v| {
            let w = b.constant(&[1, 1, 2, 2], &[1; 4])?;
            let bias = b.constant(&[1], &[1])?;
            b.conv2d(v[0], w, Some(bias), Conv2dAttrs::default())
        },
        "[1, 1, 2, 2] [13, 17, 25, 29]",
    );
    // Padding 1, stride 2, signed kernel [[1, -1], [0, 2]].
    check(
        &[(u(4), &[1, 1, 3, 3], &x)],
        |b, v| {
            let w = b.constant(&[1, 1, 2, 2], &[1, -1, 0, 2])?;
            let at = Conv2dAttrs {
                pads: [1, 1, 1, 1],
                strides: [2, 2],
                ..Default::default()
            };
            b.conv2d(v[0], w, None, at)
        },
        // (0,0): window rows -1..0, cols -1..0: only x[0][0]=1 at kernel (1,1): 2*1 = 2
        // (0,1): cols 1..2: kernel (1,0)*x[0][1] + (1,1)*x[0][2] = 0 + 2*3 = 6
        // (1,0): rows 1..2, cols -1..0: (0,1)*x[1][0] + (1,1)*x[2][0] = -4 + 14 = 10
        // (1,1): (0,0)*5 + (0,1)*6 + (1,0)*8 + (1,1)*9 = 5 - 6 + 0 + 18 = 17
        "[1, 1, 2, 2] [2, 6, 10, 17]",
    );
    // Two groups with dilation: each output channel sees one input channel.
    check(
        &[(i(3), &[1, 2, 1, 3], &[1, 2, 3, -1, -2, -3])],
        |b, v| {
            let w = b.constant(&[2, 1, 1, 2], &[1, 1, 2, -1])?;
            let at = Conv2dAttrs {
                dilations: [1, 2],
                group: 2,
                ..Default::default()
            };
            b.conv2d(v[0], w, None, at)
        },
        // ch0: 1 + 3 = 4; ch1: 2*-1 - (-3) = 1
        "[1, 2, 1, 1] [4, 1]",
    );
}

#[test]
fn sum_and_movement() {
    let x: &[i64] = &[1, 2, 3, 4, 5, 6];
    let s: &[usize] = &[2, 3];
    check(
        &[(u(3), s, x)],
        |b, v| b.sum(v[0], &[1], false),
        "[2] [6, 15]",
    );
    check(
        &[(u(3), s, x)],
        |b, v| b.sum(v[0], &[0], true),
        "[1, 3] [5, 7, 9]",
    );
    check(&[(u(3), s, x)], |b, v| b.sum(v[0], &[], false), "[] [21]");
    check(
        &[(u(3), s, x)],
        |b, v| b.reshape(v[0], &[3, 1, 2]),
        "[3, 1, 2] [1, 2, 3, 4, 5, 6]",
    );
    check(
        &[(u(3), s, x)],
        |b, v| b.transpose(v[0], &[1, 0]),
        "[3, 2] [1, 4, 2, 5, 3, 6]",
    );
    check(
        &[(u(3), &[3], &[1, 2, 3])],
        |b, v| b.broadcast(v[0], &[2, 3]),
        "[2, 3] [1, 2, 3, 1, 2, 3]",
    );
    check(
        &[(u(3), s, x), (u(3), &[2, 1], &[7, 0])],
        |b, v| b.concat(&[v[0], v[1]], 1),
        "[2, 4] [1, 2, 3, 7, 4, 5, 6, 0]",
    );
    check(
        &[(u(3), s, x)],
        |b, v| b.slice(v[0], &[0, 0], &[2, 3], &[1, 2]),
        "[2, 2] [1, 3, 4, 6]",
    );
    check(&[(u(3), s, x)], |b, v| b.index(v[0], 0, 1), "[3] [4, 5, 6]");
    check(&[(u(3), s, x)], |b, v| b.index(v[0], 1, 2), "[2] [3, 6]");
}

#[test]
fn table_lookups() {
    // Signed operand: entry i is the image of min + i = -2 + i.
    check(
        &[(i(2), &[4], &[-2, -1, 0, 1])],
        |b, v| b.tlu_table(v[0], vec![10, 20, 30, 40]),
        "[4] [10, 20, 30, 40]",
    );
    check(
        &[(i(3), &[4], &[-4, -1, 0, 3])],
        |b, v| b.tlu(v[0], |x| x * x - 1),
        "[4] [15, 0, -1, 8]",
    );
    check(
        &[(u(1), &[2, 2], &[0, 1, 1, 0])],
        |b, v| b.tlu_multi(v[0], vec![vec![5, 6], vec![-7, -8]], vec![0, 0, 1, 1]),
        "[2, 2] [5, 6, -8, -7]",
    );
}

#[test]
fn comparisons() {
    let cases = [
        (CmpOp::Lt, "[3] [1, 0, 0]"),
        (CmpOp::Le, "[3] [1, 1, 0]"),
        (CmpOp::Gt, "[3] [0, 0, 1]"),
        (CmpOp::Ge, "[3] [0, 1, 1]"),
        (CmpOp::Eq, "[3] [0, 1, 0]"),
        (CmpOp::Ne, "[3] [1, 0, 1]"),
    ];
    for (op, expect) in cases {
        check(
            &[(i(3), &[3], &[-3, 2, 3]), (u(2), &[], &[2])],
            |b, v| b.cmp(v[0], v[1], op),
            expect,
        );
    }
    check(
        &[(i(3), &[2], &[-3, 2]), (i(3), &[2], &[-3, 3])],
        |b, v| b.lt(v[0], v[1]),
        "[2] [0, 1]",
    );
}

#[test]
fn pbs_style_unary_ops() {
    let x: &[i64] = &[-8, -3, 0, 5, 7];
    check(
        &[(i(4), &[5], x), (i(4), &[], &[-2])],
        |b, v| b.min(v[0], v[1]),
        "[5] [-8, -3, -2, -2, -2]",
    );
    check(
        &[(i(4), &[5], x), (i(4), &[], &[-2])],
        |b, v| b.max(v[0], v[1]),
        "[5] [-2, -2, 0, 5, 7]",
    );
    check(
        &[(i(4), &[5], x)],
        |b, v| b.relu(v[0]),
        "[5] [0, 0, 0, 5, 7]",
    );
    check(
        &[(i(4), &[5], x)],
        |b, v| b.abs(v[0]),
        "[5] [8, 3, 0, 5, 7]",
    );
    check(
        &[(i(4), &[5], x)],
        |b, v| b.clip(v[0], -4, 5),
        "[5] [-4, -3, 0, 5, 5]",
    );
    // Round: ties go upward, negative values floor-shift.
    check(
        &[(u(4), &[6], &[5, 6, 7, 10, 14, 15])],
        |b, v| b.round(v[0], 2),
        "[6] [4, 8, 8, 12, 16, 16]",
    );
    check(
        &[(i(4), &[5], &[-8, -7, -6, -2, -1])],
        |b, v| b.round(v[0], 2),
        "[5] [-8, -8, -4, 0, 0]",
    );
}

#[test]
fn constants_and_clear_values() {
    let b = Builder::new();
    let c = b.constant(&[2], &[-3, 9]).unwrap();
    let d = b.constant_scalar(4).unwrap();
    let p = b.input_clear("p", &[2], u(3)).unwrap();
    b.output("c", c).unwrap();
    b.output("s", b.add(b.mul(c, d).unwrap(), p).unwrap())
        .unwrap();
    let g = b.finish().unwrap();
    check_graph(&g, &[(u(3), &[2], &[1, 7])], "[2] [-3, 9]; [2] [-11, 43]");
}

/// `x + y` with the result narrowed to `u4` (as bit-width analysis might).
fn narrowed_add() -> Graph {
    let b = Builder::new();
    let x = b.input_encrypted("x", &[3], u(4)).unwrap();
    let y = b.input_encrypted("y", &[3], u(4)).unwrap();
    let s = b.add(x, y).unwrap();
    b.output("s", s).unwrap();
    let mut g = b.finish().unwrap();
    g.node_mut(s).ty.int = u(4);
    let o = g.outputs()[0];
    g.node_mut(o).ty.int = u(4);
    g
}

#[test]
fn overflow_and_input_errors() {
    let g = narrowed_add();
    check_graph(
        &g,
        &[(u(4), &[3], &[1, 2, 3]), (u(4), &[3], &[4, 5, 6])],
        "[3] [5, 7, 9]",
    );
    check_graph(
        &g,
        &[(u(4), &[3], &[1, 15, 3]), (u(4), &[3], &[4, 5, 6])],
        "error: %2 = add: element [1] = 20 overflows the declared u4",
    );
    check_graph(
        &g,
        &[(u(4), &[3], &[1, 16, 3]), (u(4), &[3], &[4, 5, 6])],
        "error: input \"x\" element [1] = 16 does not fit u4",
    );
    check_graph(
        &g,
        &[(u(4), &[2], &[1, 2]), (u(4), &[3], &[4, 5, 6])],
        "error: input \"x\" has shape [2], expected [3]",
    );
    check_graph(
        &g,
        &[(u(4), &[3], &[1, 2, 3])],
        "error: the program takes 2 input(s), got 1",
    );
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2, 2], u(8)).unwrap();
    b.output("y", x).unwrap();
    check_graph(
        &b.finish().unwrap(),
        &[(u(8), &[2, 2], &[1, 2, 300, 4])],
        "error: input \"x\" element [1, 0] = 300 does not fit u8",
    );
}

#[test]
fn outputs_beyond_i64_and_invalid_graphs() {
    let b = Builder::new();
    let big = b
        .add(
            b.constant_scalar(i64::MAX).unwrap(),
            b.constant_scalar(1).unwrap(),
        )
        .unwrap();
    b.output("big", big).unwrap();
    check_graph(
        &b.finish().unwrap(),
        &[],
        "error: output \"big\" element [] = 9223372036854775808 does not fit i64",
    );
    let mut g = narrowed_add();
    let o = g.outputs()[0];
    g.remove(o);
    check_graph(
        &g,
        &[],
        "error: invalid graph: the graph has no output; add at least one `output`",
    );
}

#[test]
fn traced_values_include_overflowing_ones() {
    let g = narrowed_add();
    let x = Tensor::new(vec![3], vec![1, 15, 3]).unwrap();
    let y = Tensor::new(vec![3], vec![4, 5, 6]).unwrap();
    let mut seen = Vec::new();
    let r = run_traced(&g, &[x, y], &mut |v, t| seen.push((v, t.data.clone())));
    assert!(matches!(r, Err(InterpError::Overflow { value: 20, .. })));
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].1, vec![5, 20, 9]);
}

#[test]
fn eval_op_folds_constants() {
    let b = Builder::new();
    let c = b.constant(&[2], &[3, -4]).unwrap();
    let n = b.neg(c).unwrap();
    let g = b.graph();
    let cv = eval_node(&g, c, &[]).unwrap();
    assert_eq!(cv.data, vec![3, -4]);
    assert_eq!(eval_node(&g, n, &[&cv]).unwrap().data, vec![-3, 4]);
    // Free-standing evaluation with explicit types.
    let t = TensorType::clear(u(3), vec![2]);
    let r = TensorType::clear(u(4), vec![2]);
    let a = Tensor::new(vec![2], vec![1i128, 7]).unwrap();
    let s = eval_op(&g, &Op::Add, &[&t, &t], &r, &[&a, &a]).unwrap();
    assert_eq!(s.data, vec![2, 14]);
    let e = eval_op(&g, &Op::Add, &[&t], &r, &[&a]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "add takes 2..=2 operands, got 1 values and 1 types"
    );
    let huge = Tensor::scalar(i128::MAX);
    let e = eval_op(&g, &Op::Add, &[&t, &t], &r, &[&huge, &huge]).unwrap_err();
    assert_eq!(e.to_string(), "add overflows 128-bit arithmetic");
}

fn params(message_bits: u8) -> ParamSet {
    ParamSet {
        lwe_dimension: 742,
        glwe_dimension: 1,
        polynomial_size: 2048,
        lwe_noise_log2: -17.0,
        glwe_noise_log2: -51.0,
        pbs_base_log: 23,
        pbs_level: 1,
        ks_base_log: 4,
        ks_level: 4,
        message_bits,
        p_error: 1e-5,
        noise_distribution: Default::default(),
        modulus_switch: Default::default(),
        ks_modulus: Default::default(),
    }
}

fn encoded(int: IntType, shape: &[usize], key: KeyId, width: u8) -> TensorType {
    let mut t = TensorType::encrypted(int, shape.to_vec());
    t.encoding = Some(Encoding { key, width });
    t
}

/// TFHE level: `x (@p0/3) + c`, keyswitch to `@p0.small/3`, pbs through `m -> 10 * m`.
fn tfhe_graph(c: i64) -> Graph {
    let mut g = Graph::new();
    g.level = Level::Tfhe;
    g.params.push(params(3));
    let x = g.add_node(
        Op::Input { name: "x".into() },
        encoded(u(3), &[3], KeyId::Big(0), 3),
        &[],
    );
    let cid = g.add_const(Constant {
        shape: vec![],
        values: vec![c],
    });
    let cv = g.add_node(
        Op::Const { value: cid },
        TensorType::clear(IntType::fitting(c as i128, c as i128).unwrap(), vec![]),
        &[],
    );
    let st = IntType::fitting(c as i128, 7 + c as i128).unwrap();
    let s = g.add_node(Op::Add, encoded(st, &[3], KeyId::Big(0), 3), &[x, cv]);
    let k = g.add_node(Op::KeySwitch, encoded(st, &[3], KeyId::Small(0), 3), &[s]);
    let t = g.add_table(Table {
        entries: (0..8).map(|m| 10 * m).collect(),
    });
    let p = g.add_node(
        Op::Pbs {
            tables: vec![t],
            map: vec![],
        },
        encoded(u(7), &[3], KeyId::Big(0), 7),
        &[k],
    );
    g.add_node(
        Op::Output { name: "y".into() },
        encoded(u(7), &[3], KeyId::Big(0), 7),
        &[p],
    );
    g
}

#[test]
fn tfhe_level_keyswitch_and_pbs() {
    let g = tfhe_graph(1);
    verify(&g).unwrap();
    check_graph(&g, &[(u(3), &[3], &[0, 3, 6])], "[3] [10, 40, 70]");
    check_graph(
        &g,
        &[(u(3), &[3], &[0, 7, 6])],
        "error: %4 = pbs: element [1] = 8 is outside 0..2^3 (the 3-bit message space of @p0.small/3): the padding bit would be set",
    );
    let neg = tfhe_graph(-1);
    check_graph(
        &neg,
        &[(u(3), &[3], &[0, 7, 6])],
        "error: %4 = pbs: element [0] = -1 is outside 0..2^3 (the 3-bit message space of @p0.small/3): the padding bit would be set",
    );
}

// ---------------------------------------------------------------------------------------
// Property: builder-made random graphs verify and run without overflow.

/// One random step: an op code, two operand picks and a parameter.
type Step = (u8, usize, usize, i64);

fn in_range(t: IntType, raw: i64) -> i64 {
    let (lo, hi) = (t.min(), t.max());
    (match raw.rem_euclid(4) {
        0 => lo,
        1 => hi,
        _ => lo + (raw as i128 / 4).rem_euclid(hi - lo + 1),
    }) as i64
}

/// Applies one step to the pool of values; `Ok(None)` when the step does not apply.
fn apply(
    b: &Builder,
    pool: &[ValueId],
    (code, i, j, p): Step,
) -> Result<Option<ValueId>, BuildError> {
    let a = pool[i % pool.len()];
    let c = pool[j % pool.len()];
    let sa = b.shape(a)?;
    let ta = b.ty(a)?.int;
    let small = |k: i64| (p.wrapping_mul(k + 7)).rem_euclid(7) - 3;
    let v = match code % 24 {
        0 => b.add(a, c),
        1 => b.sub(a, c),
        2 => b.mul(a, c),
        3 => b.neg(a),
        4 => b.min(a, c),
        5 => b.max(a, c),
        6 => b.cmp(a, c, CmpOp::ALL[p.rem_euclid(6) as usize]),
        7 => b.relu(a),
        8 => b.abs(a),
        9 if ta.bits > 1 => b.round(a, 1 + p.rem_euclid(ta.bits as i64 - 1) as u8),
        10 => b.clip(a, small(1), small(1) + p.rem_euclid(5)),
        11 if ta.bits <= 8 => b.tlu(a, |x| (x * (p % 5)).rem_euclid(17) - 8),
        12 if !sa.is_empty() => b.sum(a, &[p.rem_euclid(sa.len() as i64) as usize], p % 2 == 0),
        13 if (1..=2).contains(&sa.len()) => {
            let k = *sa.last().expect("rank >= 1");
            let w: Vec<i64> = (0..k * 2).map(|e| small(e as i64)).collect();
            b.matmul(a, b.constant(&[k, 2], &w)?)
        }
        14 if sa.len() == 2 => b.transpose(a, &[1, 0]),
        15 => b.reshape(a, &[sa.iter().product()]),
        16 => {
            let mut s = vec![2];
            s.extend(&sa);
            b.broadcast(a, &s)
        }
        17 if !sa.is_empty() => b.concat(&[a, c], 0),
        18 if !sa.is_empty() && sa[0] > 1 => {
            let mut st = vec![0; sa.len()];
            st[0] = 1;
            b.slice(a, &st, &sa, &vec![1; sa.len()])
        }
        19 => b.add(a, b.constant_scalar(small(3))?),
        20 if sa.iter().product::<usize>() == 6 => {
            let x = b.reshape(a, &[1, 1, 2, 3])?;
            let w = b.constant(&[2, 1, 2, 2], &(0..8).map(small).collect::<Vec<_>>())?;
            let bias = b.constant(&[2], &[small(9), small(10)])?;
            let at = Conv2dAttrs {
                pads: [0, 1, 0, 1],
                ..Default::default()
            };
            b.conv2d(x, w, Some(bias), at)
        }
        21 if !sa.is_empty() => b.index(a, 0, p.rem_euclid(sa[0] as i64) as usize),
        22 if ta.bits <= 6 => {
            let n: usize = sa.iter().product();
            let dom = 1usize << ta.bits;
            let tables = vec![
                (0..dom as i64).map(|x| x - 3).collect(),
                (0..dom as i64).map(|x| (x * p).rem_euclid(11)).collect(),
            ];
            b.tlu_multi(a, tables, (0..n).map(|e| (e % 2) as u32).collect())
        }
        23 => b.mul(a, b.constant_scalar(small(5))?),
        _ => return Ok(None),
    };
    match v {
        Ok(v) => Ok(Some(v)),
        // Refusals are fine (shapes that do not match, results wider than 64 bits).
        Err(BuildError::Type(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn random_graphs_verify_and_run(
        types in proptest::collection::vec((any::<bool>(), 1u8..=6), 2),
        steps in proptest::collection::vec((0u8..24, 0usize..64, 0usize..64, -50i64..50), 1..16),
        raw in proptest::collection::vec(any::<i64>(), 12),
    ) {
        let b = Builder::new();
        let shapes: [&[usize]; 2] = [&[2, 3], &[3]];
        let mut pool = Vec::new();
        for (k, (signed, bits)) in types.iter().enumerate() {
            let t = IntType { signed: *signed, bits: *bits };
            pool.push(b.input_encrypted(&format!("x{k}"), shapes[k], t).unwrap());
        }
        for s in &steps {
            if let Some(v) = apply(&b, &pool, *s).unwrap() {
                pool.push(v);
            }
        }
        let outs = pool.len().min(3);
        for (k, v) in pool.iter().rev().take(outs).enumerate() {
            b.output(&format!("y{k}"), *v).unwrap();
        }
        let g = b.finish().unwrap();
        let inputs: Vec<Tensor<i64>> = g
            .inputs()
            .iter()
            .map(|&v| {
                let t = g.ty(v);
                let data = (0..t.numel()).map(|e| in_range(t.int, raw[e % raw.len()].rotate_left(e as u32))).collect();
                Tensor::new(t.shape.clone(), data).unwrap()
            })
            .collect();
        match run(&g, &inputs) {
            Ok(outs) => prop_assert_eq!(outs.len(), g.outputs().len()),
            // Only a u64 output above i64::MAX may fail to come back.
            Err(InterpError::OutputRange { .. }) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Robustness: the verifier and the interpreter never panic on corrupted graphs.

fn random_op(k: u8, p: i64) -> Op {
    let n = p.unsigned_abs() as usize;
    match k % 22 {
        0 => Op::Add,
        1 => Op::Sub,
        2 => Op::Neg,
        3 => Op::Mul,
        4 => Op::MatMul,
        5 => Op::Conv2d(Conv2dAttrs {
            pads: [n % 2, 0, n % 3, 1],
            group: 1 + n % 2,
            ..Default::default()
        }),
        6 => Op::Sum {
            axes: (0..n % 3).collect(),
            keepdims: p % 2 == 0,
        },
        7 => Op::Reshape,
        8 => Op::Transpose {
            perm: (0..n % 3).rev().collect(),
        },
        9 => Op::Broadcast,
        10 => Op::Concat { axis: n % 3 },
        11 => Op::Slice {
            starts: vec![n % 2; n % 3],
            stops: vec![n % 4; n % 3],
            steps: vec![n % 3; n % 3],
        },
        12 => Op::Tlu {
            table: TableId((n % 3) as u32),
        },
        13 => Op::TluMulti {
            tables: vec![TableId(0), TableId((n % 3) as u32)],
            map: vec![(n % 3) as u32; n % 7],
        },
        14 => Op::Cmp(CmpOp::ALL[n % 6]),
        15 => Op::Min,
        16 => Op::Relu,
        17 => Op::Round {
            lsbs: (n % 9) as u8,
            approx: n.is_multiple_of(2),
            rescale: n.is_multiple_of(4),
        },
        18 => Op::Clip { lo: p, hi: p / 2 },
        19 => Op::KeySwitch,
        20 => Op::Pbs {
            tables: vec![TableId(0)],
            map: vec![],
        },
        _ => Op::Abs,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn corrupted_graphs_never_panic(
        steps in proptest::collection::vec((0u8..24, 0usize..64, 0usize..64, -50i64..50), 1..10),
        muts in proptest::collection::vec((0u8..6, 0usize..64, 0u8..70, -9i64..9), 1..4),
        tfhe in any::<bool>(),
    ) {
        let b = Builder::new();
        let mut pool = vec![
            b.input_encrypted("x", &[2, 3], u(3)).unwrap(),
            b.input_encrypted("y", &[3], i(2)).unwrap(),
        ];
        for s in &steps {
            if let Some(v) = apply(&b, &pool, *s).unwrap() {
                pool.push(v);
            }
        }
        b.output("out", *pool.last().unwrap()).unwrap();
        let mut g = b.graph();
        g.add_table(Table { entries: vec![1, 2] });
        if tfhe {
            g.level = Level::Tfhe;
            g.params.push(params(3));
        }
        let vals = g.values();
        for (kind, at, bits, p) in muts {
            let v = vals[at % vals.len()];
            match kind {
                0 => g.node_mut(v).ty.int.bits = bits,
                1 => g.node_mut(v).ty.shape = (0..p.unsigned_abs() % 4).map(|d| (d as usize + at) % 3).collect(),
                2 => g.node_mut(v).op = random_op(bits, p),
                3 => {
                    let o = vals[(at / 3) % vals.len()];
                    g.set_operands(v, &[o, v][..1 + (p.unsigned_abs() % 2) as usize]);
                }
                4 => g.node_mut(v).ty.encoding = Some(Encoding {
                    key: if p > 0 { KeyId::Big(p as u32 % 2) } else { KeyId::Small(p.unsigned_abs() as u32 % 2) },
                    width: bits,
                }),
                _ => g.consts.iter_mut().for_each(|c| c.values.truncate(at % 3)),
            }
        }
        if verify(&g).is_ok() {
            let inputs: Vec<Tensor<i64>> = g
                .inputs()
                .iter()
                .map(|&v| {
                    let t = g.ty(v);
                    Tensor::new(t.shape.clone(), vec![in_range(t.int, 5); t.numel()]).unwrap()
                })
                .collect();
            let _ = run(&g, &inputs);
        }
    }
}

/// The numpy integer ops on `x = [-7, -1, 0, 5]`, `y = [3, 1, 2, 3]`, `c = [1, 0, 1, 1]`: the
/// values stated in SPEC.md's example.
#[test]
fn numpy_integer_ops() {
    let x: Input = (i(4), &[4], &[-7, -1, 0, 5]);
    let y: Input = (u(2), &[4], &[3, 1, 2, 3]);
    let c: Input = (u(1), &[4], &[1, 0, 1, 1]);
    let with_const = |op: crate::BinOp, k: i64, expect: &str| {
        check(
            &[x],
            |b, v| {
                let k = b.constant_scalar(k)?;
                b.binary(v[0], k, op)
            },
            expect,
        )
    };
    use crate::BinOp as B;
    with_const(B::FloorDiv, 2, "[4] [-4, -1, 0, 2]");
    with_const(B::Mod, 2, "[4] [1, 1, 0, 1]");
    with_const(B::FloorDiv, -2, "[4] [3, 0, 0, -3]");
    with_const(B::Mod, -2, "[4] [-1, -1, 0, -1]");
    with_const(B::Mod, 3, "[4] [2, 2, 0, 2]");
    with_const(B::Pow, 2, "[4] [49, 1, 0, 25]");
    with_const(B::Pow, 0, "[4] [1, 1, 1, 1]");
    with_const(B::Shl, 2, "[4] [-28, -4, 0, 20]");
    with_const(B::Shr, 1, "[4] [-4, -1, 0, 2]");
    with_const(
        B::FloorDiv,
        0,
        "error: %2 = floordiv: floordiv by zero (-7 // 0)",
    );
    with_const(B::Pow, -1, "error: %2 = pow: negative exponent (-7 ** -1)");
    let pair =
        |op: crate::BinOp, expect: &str| check(&[x, y], |b, v| b.binary(v[0], v[1], op), expect);
    pair(B::BitAnd, "[4] [1, 1, 0, 1]");
    pair(B::BitOr, "[4] [-5, -1, 2, 7]");
    pair(B::BitXor, "[4] [-6, -2, 2, 6]");
    pair(B::Shr, "[4] [-1, -1, 0, 0]");
    pair(B::Shl, "[4] [-56, -2, 0, 40]");
    let logic =
        |op: crate::BinOp, expect: &str| check(&[x, c], |b, v| b.binary(v[0], v[1], op), expect);
    logic(B::And, "[4] [1, 0, 0, 1]");
    logic(B::Or, "[4] [1, 1, 1, 1]");
    logic(B::Xor, "[4] [0, 1, 1, 0]");
    check(&[x], |b, v| b.sign(v[0]), "[4] [-1, -1, 0, 1]");
    check(&[x], |b, v| b.logical_not(v[0]), "[4] [0, 0, 1, 0]");
    check(&[x], |b, v| b.bit_not(v[0]), "[4] [6, 0, -1, -6]");
    check(
        &[c, x],
        |b, v| {
            let fd = b.floor_div(v[1], 2)?;
            b.where_(v[0], v[1], fd)
        },
        "[4] [-7, -1, 0, 5]",
    );
    // Three-way broadcasting: a scalar condition, a row and a column.
    check(
        &[
            (u(1), &[], &[0]),
            (u(2), &[2], &[1, 2]),
            (u(2), &[3, 1], &[0, 1, 3]),
        ],
        |b, v| b.where_(v[0], v[1], v[2]),
        "[3, 2] [0, 0, 1, 1, 3, 3]",
    );
}

proptest! {
    /// `floordiv` and `mod` agree with Python's: `a == b * (a // b) + a % b`, and the
    /// remainder has the sign of the divisor and is smaller than it.
    #[test]
    fn floordiv_mod_identity(a in -1000i128..1000, b in -50i128..50) {
        prop_assume!(b != 0);
        let q = crate::BinOp::FloorDiv.eval(a, b).unwrap();
        let r = crate::BinOp::Mod.eval(a, b).unwrap();
        prop_assert_eq!(b * q + r, a);
        prop_assert!(r == 0 || (r < 0) == (b < 0));
        prop_assert!(r.abs() < b.abs());
    }

    /// The inferred range of every binary op holds all its values.
    #[test]
    fn binary_range_is_sound(
        op in 0usize..11, alo in -40i128..40, aw in 0i128..80, blo in -5i128..8, bw in 0i128..70
    ) {
        let op = crate::BinOp::ALL[op];
        let (a, b) = (crate::Interval::new(alo, alo + aw), crate::Interval::new(blo, blo + bw));
        if let Some(r) = crate::infer::binary_range(op, a, b) {
            for x in [a.lo, a.hi, (a.lo + a.hi) / 2, 0, -1, 1].into_iter().filter(|&x| a.contains(x)) {
                for y in b.lo..=b.hi {
                    if let Ok(v) = op.eval(x, y) {
                        prop_assert!(r.contains(v), "{op:?} {x} {y} = {v} not in {r}");
                    }
                }
            }
        }
    }
}
