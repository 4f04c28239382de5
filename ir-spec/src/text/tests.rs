//! Tests of the text form: canonical printing, every error class, and never panicking.

use super::*;
use proptest::prelude::*;

/// A program using every op, in canonical form (so it must print back unchanged).
const ALL_OPS: &str = r#"veil 1
table @t0 = [0,1,4,9,16,25,36,49]
table @t1 = [7,6,5,4,3,2,1,0]
%0 = input "x" : enc<u3>[2,2]
%1 = input "w\"q" : clear<i4>[2,2]
%2 = const [[1,-2],[3,4]] : clear<i4>[2,2]
%3 = const 5 : clear<u3>
%4 = add %0, %2 : enc<i5>[2,2]
%5 = sub %4, %3 : enc<i6>[2,2]
%6 = neg %5 : enc<i7>[2,2]
%7 = mul %0, %1 : enc<i8>[2,2]
%8 = mul %0, %0 : enc<u6>[2,2]
%9 = matmul %0, %2 : enc<i7>[2,2]
%10 = sum %9 axes=[0] keepdims=false : enc<i8>[2]
%11 = reshape %0 : enc<u3>[4]
%12 = transpose %0 perm=[1,0] : enc<u3>[2,2]
%13 = broadcast %11 : enc<u3>[3,4]
%14 = concat %0, %12 axis=0 : enc<u3>[4,2]
%15 = slice %14 starts=[0,1] stops=[4,2] steps=[2,1] : enc<u3>[2,1]
%16 = tlu %0 table=@t0 : enc<u6>[2,2]
%17 = tlu.multi %0 tables=[@t0,@t1] map=[0,1,1,0] : enc<u6>[2,2]
%18 = lt %0, %3 : enc<u1>[2,2]
%19 = le %0, %3 : enc<u1>[2,2]
%20 = gt %0, %3 : enc<u1>[2,2]
%21 = ge %0, %3 : enc<u1>[2,2]
%22 = eq %0, %3 : enc<u1>[2,2]
%23 = ne %0, %3 : enc<u1>[2,2]
%24 = min %5, %3 : enc<i6>[2,2]
%25 = max %5, %3 : enc<i6>[2,2]
%26 = relu %5 : enc<u5>[2,2]
%27 = abs %5 : enc<u6>[2,2]
%28 = round %0 lsbs=2 : enc<u4>[2,2]
%29 = clip %5 lo=0 hi=7 : enc<u3>[2,2]
%30 = input "img" : enc<u2>[1,1,3,3]
%31 = const [[[[1,1],[1,1]]]] : clear<i2>[1,1,2,2]
%32 = const [1] : clear<i2>[1]
%33 = conv2d %30, %31, %32 strides=[1,1] pads=[0,0,0,0] dilations=[1,1] group=1 : enc<u5>[1,1,2,2]
output "a", %6
output "b", %10
"#;

const TFHE: &str = r#"veil 1
level tfhe
params @p0 = { n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4, bits=4, p_error=1e-5 }
table @t0 = [0,1,4,9,0,9,4,1,0,1,4,9,0,9,4,1]
%0 = input "x" : enc<u2>[4] @p0/4
%1 = keyswitch %0 : enc<u2>[4] @p0.small/4
%2 = pbs %1 tables=[@t0] : enc<u4>[4] @p0/4
%3 = pbs %1 tables=[@t0,@t0] map=[0,1,1,0] : enc<u4>[4] @p0/4
output "y", %2
output "z", %3
"#;

fn reprint(src: &str) -> String {
    match parse_unverified(src) {
        Ok(g) => print(&g),
        Err(e) => panic!("{e}\n{src}"),
    }
}

/// Parses `src` and expects the error `expect` (`line:col: message`, compared by prefix).
fn check_err(src: &str, expect: &str) {
    let got = match parse_unverified(src) {
        Ok(g) => panic!("expected error {expect:?}, parsed:\n{}", print(&g)),
        Err(e) => e.to_string(),
    };
    assert!(got.starts_with(expect), "got {got:?}\nexpected {expect:?}");
}

#[test]
fn canonical_programs_print_back_unchanged() {
    assert_eq!(reprint(ALL_OPS), ALL_OPS);
    assert_eq!(reprint(TFHE), TFHE);
}

#[test]
fn canonical_programs_verify() {
    for src in [ALL_OPS, TFHE] {
        if let Err(e) = parse(src) {
            panic!("{e}");
        }
    }
}

#[test]
fn verifier_problems_are_located() {
    let src =
        "veil 1\n%x = input \"x\" : enc<u2>[2]\n\n%y = neg %x : enc<i3>[3]\noutput \"y\", %y\n";
    let e = parse(src).unwrap_err();
    let errs = e.errors();
    assert!(matches!(e, TextError::Invalid(_)), "{e}");
    assert_eq!(errs[0].line, 4, "{e}");
    assert!(errs[0].msg.starts_with("%1 = neg"), "{e}");
    let none = parse("veil 1\n%x = input \"x\" : enc<u2>[2]\n").unwrap_err();
    assert!(none.errors().iter().any(|p| p.line == 0), "{none}");
}

#[test]
fn labels_order_and_defaults_are_canonicalized() {
    let src = r#"
        ; a comment line
        veil 1   ; header
        table @sq = [0,1,4,9]
        table @unused = [1,1,1,1]
        %w = const [1,2] : clear<u2>[2]
        %x = input "x" : enc<u2>[2]
        %s = tlu %x table=@sq : enc<u4>[2]
        output "first", %s
        %c = conv2d %x, %w : enc<u4>[1]
        %y = sum %s keepdims=true : enc<u5>[1]
        %z = slice %x stops=[2] starts=[1] : enc<u2>[1]
        output "second", %y
        output "third", %z
    "#;
    let expect = r#"veil 1
table @t0 = [0,1,4,9]
%0 = const [1,2] : clear<u2>[2]
%1 = input "x" : enc<u2>[2]
%2 = tlu %1 table=@t0 : enc<u4>[2]
%3 = conv2d %1, %0 strides=[1,1] pads=[0,0,0,0] dilations=[1,1] group=1 : enc<u4>[1]
%4 = sum %2 axes=[] keepdims=true : enc<u5>[1]
%5 = slice %1 starts=[1] stops=[2] steps=[1] : enc<u2>[1]
output "first", %2
output "second", %4
output "third", %5
"#;
    assert_eq!(reprint(src), expect);
    assert_eq!(reprint(expect), expect);
}

#[test]
fn outputs_keep_their_order_when_topo_order_differs() {
    let mut g = parse_unverified(
        "veil 1\n%0 = input \"x\" : enc<u2>\n%1 = neg %0 : enc<i3>\noutput \"a\", %0\noutput \"b\", %1\n",
    )
    .unwrap();
    // Make output "a" use a node created after it.
    let a = g.outputs()[0];
    let x = g.inputs()[0];
    let n = g.add_node(crate::Op::Abs, g.ty(x).clone(), &[x]);
    g.set_operands(a, &[n]);
    let text = print(&g);
    let again = parse_unverified(&text).unwrap();
    let names: Vec<_> = again
        .outputs()
        .into_iter()
        .map(|o| again.op(o).name().to_string() + &format!("{:?}", again.op(o)))
        .collect();
    assert!(
        names[0].contains("\"a\"") && names[1].contains("\"b\""),
        "{text}"
    );
    assert_eq!(print(&again), text);
}

#[test]
fn syntax_errors_have_positions() {
    check_err("", "1:1: expected the header 'veil 1', found end of file");
    check_err(
        "veil 2\n",
        "1:6: unsupported format version 2: this veil reads version 1",
    );
    check_err(
        "veil 1\n%0 = input \"x\" : enc<u2>\n%1 = add %0, %0 }",
        "3:17: expected ',', an attribute, ':' or the end of the line after the operand, found '}'",
    );
    // Truncated file.
    check_err(
        "veil 1\n%0 = input \"x\" : enc<u2>\n%1 = add %0,",
        "3:13: expected an operand '%name', found end of file",
    );
    check_err(
        "veil 1\n%0 = input \"x\" : enc<u2",
        "2:24: expected '>' after the element type, found end of file",
    );
    check_err(
        "veil 1\n%0 = input \"x\" : enc<u2> junk\n",
        "2:26: expected end of line after the type, found 'junk'",
    );
    check_err("veil 1\nfoo\n", "2:1: expected a definition");
    check_err("veil 1\n%0 = input \"x\n", "2:12: unterminated string");
}

#[test]
fn semantic_errors() {
    let x = "veil 1\n%0 = input \"x\" : enc<u2>[2]\n";
    check_err(
        &format!("{x}%1 = frobnicate %0 : enc<u2>[2]\n"),
        "3:6: unknown op 'frobnicate' (known ops: input, const, add,",
    );
    check_err(
        &format!("{x}%1 = neg %7 : enc<i3>[2]\n"),
        "3:10: undefined value %7",
    );
    check_err(
        &format!("{x}%0 = neg %0 : enc<i3>[2]\n"),
        "3:1: value %0 redefined (first defined on line 2)",
    );
    check_err(
        &format!("{x}%1 = add %0 : enc<u3>[2]\n"),
        "3:6: wrong number of operands: add takes 2, got 1",
    );
    check_err(
        &format!("{x}%1 = conv2d %0 : enc<u3>[2]\n"),
        "3:6: wrong number of operands: conv2d takes 2 to 3, got 1",
    );
    check_err(
        &format!("{x}%1 = neg %0 : enc<i0>[2]\n"),
        "3:19: bad type: bit width 0 out of range 1..=64",
    );
    check_err(
        &format!("{x}%1 = neg %0 : enc<i65>[2]\n"),
        "3:19: bad type: bit width 65 out of range 1..=64",
    );
    check_err(
        &format!("{x}%1 = neg %0 : enc<f32>[2]\n"),
        "3:19: expected an integer type like u8 or i4, found 'f32'",
    );
    check_err(
        &format!("{x}%1 = input \"x\" : enc<u2>\n"),
        "3:12: duplicate input name \"x\"",
    );
    check_err(
        &format!("{x}output \"y\", %0\noutput \"y\", %0\n"),
        "4:8: duplicate output name \"y\"",
    );
    check_err(
        &format!("{x}%1 = tlu %0 table=@t9 : enc<u2>[2]\n"),
        "3:19: unknown table @t9",
    );
    check_err(
        &format!("{x}%1 = sum %0 axes=[-1] : enc<u3>\n"),
        "3:19: bad attribute 'axes' of sum: expected a list of non-negative integers",
    );
    check_err(
        &format!("{x}%1 = sum %0 axis=0 : enc<u3>\n"),
        "3:13: unknown attribute 'axis' (sum takes axes, keepdims)",
    );
    check_err(
        &format!("{x}%1 = transpose %0 : enc<u2>[2]\n"),
        "3:6: transpose needs attribute 'perm'",
    );
    check_err(
        &format!("{x}%1 = round %0 lsbs=300 : enc<u2>[2]\n"),
        "3:15: bad attribute 'lsbs' of round: expected an integer in range, found 300",
    );
    check_err(
        &format!("{x}%1 = conv2d %0, %0 strides=[1] : enc<u2>[2]\n"),
        "3:20: bad attribute 'strides' of conv2d: expected 2 integers, found 1",
    );
    check_err(
        &format!("{x}%1 = const [[1,2],[3]] : clear<u2>[2,2]\n"),
        "3:19: ragged list",
    );
    check_err(
        &format!("{x}%1 = const [1,2,3] : clear<u2>[2]\n"),
        "3:12: constant of shape [3] does not match its type clear<u2>[2]",
    );
    check_err(
        &format!("{x}%1 = neg %0 : enc<i3>[2] @p0/3\n"),
        "3:26: unknown parameter set @p0 (0 declared)",
    );
    check_err(
        "veil 1\nparams @p0 = { n=1 }\n",
        "2:1: parameter sets only exist at the TFHE level",
    );
    check_err(
        "veil 1\nlevel tfhe\nparams @p0 = { n=1 }\n",
        "3:14: parameter set lacks 'k'",
    );
    check_err(
        &format!("{x}%1 = neg %0 : enc<i3>[4294967296,2]\n"),
        "3:22: bad type: shape [4294967296, 2] has more than",
    );
}

#[test]
fn tensor_literals() {
    let t = parse_tensor("[[1, 2], [3, -4]]").unwrap();
    assert_eq!(
        (t.shape.clone(), t.data.clone()),
        (vec![2, 2], vec![1, 2, 3, -4])
    );
    assert_eq!(tensor_literal(&t), "[[1,2],[3,-4]]");
    assert_eq!(parse_tensor(" 7 ").unwrap().shape, Vec::<usize>::new());
    assert!(parse_tensor("[1,2] 3")
        .unwrap_err()
        .msg
        .contains("end of input"));
    assert!(parse_tensor(&"[".repeat(100_000))
        .unwrap_err()
        .msg
        .contains("nested"));
    assert!(parse_tensor("99999999999999999999").is_err());
}

/// Single-character edits of valid programs: deletions, duplications and substitutions.
fn mutations() -> impl Strategy<Value = String> {
    let base = prop_oneof![Just(ALL_OPS), Just(TFHE)];
    (
        base,
        any::<prop::sample::Index>(),
        0..3u8,
        any::<char>(),
        1..4usize,
    )
        .prop_map(|(src, at, kind, c, n)| {
            let chars: Vec<char> = src.chars().collect();
            let i = at.index(chars.len());
            let mut out: Vec<char> = chars[..i].to_vec();
            match kind {
                0 => out.extend(&chars[(i + n).min(chars.len())..]),
                1 => {
                    out.extend(&chars[i..(i + n).min(chars.len())]);
                    out.extend(&chars[i..]);
                }
                _ => {
                    out.push(c);
                    out.extend(&chars[(i + 1).min(chars.len())..]);
                }
            }
            out.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,200}") {
        let _ = parse(&s);
        let _ = parse(&format!("veil 1\n{s}"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&b);
        let _ = parse(&s);
    }

    #[test]
    fn mutated_programs_never_panic_and_reprint_stably(s in mutations()) {
        let _ = parse(&s);
        if let Ok(g) = parse_unverified(&s) {
            let p = print(&g);
            let again = parse_unverified(&p).map_err(|e| TestCaseError::fail(format!("{e}\n{p}")))?;
            prop_assert_eq!(print(&again), p);
        }
    }
}

/// One random construction step: op kind, two operand picks and a parameter.
type Step = (u8, u16, u16, u8);

/// Builds a well-formed random program from `steps` with the [`crate::builder::Builder`]; steps
/// the builder rejects (shape or width mismatches) are skipped.
fn random_graph(shape_pick: u8, steps: &[Step]) -> Option<crate::Graph> {
    use crate::builder::Builder;
    use crate::IntType;
    let shapes: [&[usize]; 3] = [&[4], &[2, 3], &[2, 2]];
    let shape = shapes[shape_pick as usize % 3].to_vec();
    let b = Builder::new();
    let mut vals = vec![
        b.input_encrypted("x", &shape, IntType::unsigned(3)).ok()?,
        b.input_encrypted("y", &shape, IntType::signed(3)).ok()?,
        b.input_clear("c", &shape, IntType::unsigned(2)).ok()?,
    ];
    let n: usize = shape.iter().product();
    for &(kind, i, j, p) in steps {
        let a = vals[i as usize % vals.len()];
        let c = vals[j as usize % vals.len()];
        let sa = b.shape(a).ok()?;
        let bits = b.ty(a).ok()?.int.bits;
        let r = match kind % 26 {
            0 => b.add(a, c),
            1 => b.sub(a, c),
            2 => b.neg(a),
            3 => b.mul(a, c),
            4 => b.sum(a, &[0], p % 2 == 0),
            5 => b.transpose(a, &(0..sa.len()).rev().collect::<Vec<_>>()),
            6 => b.reshape(a, &[sa.iter().product()]),
            7 if bits <= 6 => b.tlu(a, |x| (x * x + p as i64) % 13 - 3),
            8 => b.cmp(a, c, crate::CmpOp::ALL[p as usize % 6]),
            9 => b.min(a, c),
            10 => b.max(a, c),
            11 => b.relu(a),
            12 => b.abs(a),
            13 if bits > 1 => b.round(a, 1 + p % (bits - 1)),
            14 => b.clip(a, -(p as i64 % 3), 2 + p as i64 % 5),
            15 => b.concat(&[a, c], 0),
            16 => b.slice(
                a,
                &vec![0; sa.len()],
                &sa,
                &sa.iter().map(|_| 1 + p as usize % 2).collect::<Vec<_>>(),
            ),
            17 => {
                let mut to = vec![2];
                to.extend(&sa);
                b.broadcast(a, &to)
            }
            18 => {
                let k = *sa.last().unwrap_or(&1);
                let w: Vec<i64> = (0..k * 2).map(|v| (v as i64 * p as i64) % 5 - 2).collect();
                b.constant(&[k, 2], &w).and_then(|w| b.matmul(a, w))
            }
            19 if bits <= 6 => {
                let size = 1usize << bits;
                let t0: Vec<i64> = (0..size as i64).map(|v| v % 4).collect();
                let t1: Vec<i64> = (0..size as i64).map(|v| -v / 2).collect();
                let numel: usize = sa.iter().product();
                b.tlu_multi(
                    a,
                    vec![t0, t1],
                    (0..numel as u32).map(|v| (v + p as u32) % 2).collect(),
                )
            }
            20 => b.constant(
                &shape,
                &(0..n as i64).map(|v| v - p as i64).collect::<Vec<_>>(),
            ),
            21 => b.constant_scalar(p as i64 - 100),
            22 if sa.len() == 2 => {
                let x = b.reshape(a, &[1, 1, sa[0], sa[1]]);
                let w = b.constant(&[2, 1, 1, 1], &[1, -1]);
                let bias = b.constant(&[2], &[p as i64, 0]);
                match (x, w, bias) {
                    (Ok(x), Ok(w), Ok(bias)) => b.conv2d(
                        x,
                        w,
                        Some(bias).filter(|_| p % 2 == 0),
                        crate::Conv2dAttrs {
                            pads: [p as usize % 2, 0, 0, 1],
                            ..Default::default()
                        },
                    ),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
                }
            }
            23 => b.binary(a, c, crate::BinOp::ALL[p as usize % 11]),
            24 => match crate::UnOp::ALL[p as usize % 3] {
                crate::UnOp::Sign => b.sign(a),
                crate::UnOp::Not => b.logical_not(a),
                crate::UnOp::BitNot => b.bit_not(a),
            },
            25 => b.where_(c, a, vals[p as usize % vals.len()]),
            _ => continue,
        };
        if let Ok(v) = r {
            vals.push(v);
        }
    }
    let last = *vals.last()?;
    b.output("out", last).ok()?;
    b.output("first", vals[vals.len() / 2]).ok()?;
    b.finish().ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_parse_round_trips_on_random_programs(
        shape in 0..3u8,
        steps in prop::collection::vec(any::<Step>(), 1..24),
    ) {
        let Some(g) = random_graph(shape, &steps) else { return Ok(()) };
        let text = print(&g);
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(print(&back), text.clone());
        let bytes = crate::serial::to_bytes(&g).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let loaded = crate::serial::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(print(&loaded), text);
    }
}

/// `text` with the `: type` of every definition removed where inference computes it (all but
/// `input`, `reshape` and `broadcast`).
fn strip_inferable_types(text: &str) -> String {
    text.lines()
        .map(|l| {
            let op = l.split_whitespace().nth(2).unwrap_or_default();
            match l.rfind(" : ") {
                Some(i)
                    if l.starts_with('%') && !["input", "reshape", "broadcast"].contains(&op) =>
                {
                    l[..i].to_string()
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Without its inferable types a printed program parses to the same program: the types the
    /// builder (and so the printer) writes are the inferred ones.
    #[test]
    fn types_left_out_are_inferred(
        shape in 0..3u8,
        steps in prop::collection::vec(any::<Step>(), 1..24),
    ) {
        let Some(g) = random_graph(shape, &steps) else { return Ok(()) };
        let text = print(&g);
        let bare = strip_inferable_types(&text);
        let back = parse(&bare).map_err(|e| TestCaseError::fail(format!("{e}\n{bare}")))?;
        prop_assert_eq!(print(&back), text);
    }
}

#[test]
fn inferred_types_parse_and_print_canonically() {
    let src = "veil 1
%x = input \"x\" : enc<u3>[2]
%c = const [1,-2]
%w = const [[1,0],[2,1]] : clear<i3>[2,2]
%y = add %x, %c
%m = matmul %y, %w   ; comments still end the line
%r = relu %m
%f = reshape %r : enc<u5>[1,2]
output \"f\", %f
";
    let g = parse(src).unwrap();
    assert_eq!(
        print(&g),
        "veil 1
%0 = input \"x\" : enc<u3>[2]
%1 = const [1,-2] : clear<i2>[2]
%2 = const [[1,0],[2,1]] : clear<i3>[2,2]
%3 = add %0, %1 : enc<i5>[2]
%4 = matmul %3, %2 : enc<i7>[2]
%5 = relu %4 : enc<u6>[2]
%6 = reshape %5 : enc<u5>[1,2]
output \"f\", %6
"
    );
}

#[test]
fn types_that_cannot_be_inferred_are_clear_errors() {
    let cases = [
        ("%x = input \"x\"\n", "2:6: input needs its result type"),
        (
            "%x = input \"x\" : enc<u3>[2]\n%r = reshape %x\n",
            "3:6: reshape needs its result type: the result shape is not inferred",
        ),
        (
            "%x = input \"x\" : enc<u3>[2]\n%y = input \"y\" : enc<u3>[3]\n%s = add %x, %y\n",
            "4:6: cannot infer the result type of add: operand shapes [2] and [3] do not broadcast",
        ),
        (
            "%x = input \"x\" : enc<u3>[2]\n%s = add %x, %x }\n",
            "3:17: expected ',', an attribute, ':' or the end of the line after the operand, found '}'",
        ),
        (
            "%x = input \"x\" : enc<u3>[2]\n%s = sum %x axes=[0] }\n",
            "3:22: expected ':' and the result type, or the end of the line, found '}'",
        ),
    ];
    for (body, want) in cases {
        let e = parse(&format!("veil 1\n{body}")).unwrap_err().to_string();
        assert!(e.starts_with(want), "{body}: got {e}");
    }
}

#[test]
fn random_programs_are_mostly_nontrivial() {
    // Guards the generator: most seeds must build programs with several ops.
    let mut built = 0;
    for s in 0..50u16 {
        let steps: Vec<Step> = (0..12u16)
            .map(|k| ((s * 7 + k * 3) as u8, s + k, s * 3 + k, (s + k) as u8))
            .collect();
        if random_graph(s as u8, &steps).is_some_and(|g| g.len() > 6) {
            built += 1;
        }
    }
    assert!(built >= 25, "only {built} of 50 random programs built");
}
