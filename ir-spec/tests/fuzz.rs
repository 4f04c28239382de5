//! Fuzzing of the IR's readers: the text parser ([`veil_ir::text::parse`]) on random bytes and
//! on mutations of the golden files and the corpus (`tests/golden/*.veil`,
//! `tests/corpus/*.veil`), and the serialized-program decoders ([`veil_ir::serial::from_bytes`],
//! [`veil_ir::serial::from_json`]) on mutations of valid programs; plus the tensor size limit
//! ([`veil_ir::infer::MAX_ELEMENTS`]) through the parser, the builder and the decoder.
//!
//! Property: `Ok` or a clean `Err`, never a panic or an abort, and no single allocation above
//! [`ALLOC_BOUND`] (a global allocator refuses larger requests: the binary aborts with "memory
//! allocation of N bytes failed"). A program that parses is also printed, parsed again and
//! serialized both ways.
//!
//! Cases: 128 per property by default (a few seconds); `PROPTEST_CASES` raises it.

// The bounded test allocator (tests/support/bounded_alloc.rs) implements GlobalAlloc, an unsafe
// trait: the only unsafe code in veil (the workspace denies it elsewhere).
#![allow(unsafe_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Serialize, Serializer};
use std::cell::Cell;
use std::sync::OnceLock;
use veil_ir::builder::{BuildError, Builder};
use veil_ir::infer::{checked_numel, MAX_ELEMENTS};
use veil_ir::serial::{self, encode_binary, Program, KIND_GRAPH};
use veil_ir::text::{parse, print};
use veil_ir::IntType;

// ------------------------------------------------------------------ allocation bound

/// Largest single allocation the readers may make on these (kilobyte-sized) inputs.
const ALLOC_BOUND: usize = 64 << 20;

#[path = "../../tests/support/bounded_alloc.rs"]
mod bounded_alloc;

#[global_allocator]
static ALLOC: bounded_alloc::Bounded<ALLOC_BOUND> = bounded_alloc::Bounded;

// ------------------------------------------------------------------ inputs

/// The sources of `tests/golden` and `tests/corpus`.
fn sources() -> &'static [String] {
    static SRC: OnceLock<Vec<String>> = OnceLock::new();
    SRC.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
        let mut out = Vec::new();
        for dir in ["golden", "corpus"] {
            let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap_or_else(|e| panic!("tests/{dir}: {e}"))
                .map(|e| e.expect("a directory entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "veil"))
                .collect();
            paths.sort();
            for p in paths {
                out.push(std::fs::read_to_string(&p).expect("readable"));
            }
        }
        assert!(out.len() > 20, "found {} programs", out.len());
        out
    })
}

/// Serialized forms of every source that parses: (binary payload, JSON).
fn serialized() -> &'static [(Vec<u8>, String)] {
    static SER: OnceLock<Vec<(Vec<u8>, String)>> = OnceLock::new();
    SER.get_or_init(|| {
        sources()
            .iter()
            .filter_map(|s| parse(s).ok())
            .map(|g| {
                let b = serial::to_bytes(&g).expect("serializes");
                let header = 4 + 4 + 1 + KIND_GRAPH.len() + 8 + 8;
                (b[header..].to_vec(), serial::to_json(&g).expect("JSON"))
            })
            .collect()
    })
}

/// Bytes serialized as themselves (a tuple of `u8`, no length): an envelope around any payload.
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

fn graph_file(payload: Vec<u8>) -> Vec<u8> {
    encode_binary(KIND_GRAPH, &Raw(payload)).expect("encodes")
}

/// Words the mutator splices into programs: op names, keywords, punctuation, extreme numbers.
const DICT: &[&str] = &[
    "veil 1",
    "level tfhe",
    "%0",
    "%x",
    "@t0",
    "@p0",
    "@p0.small",
    "=",
    ",",
    ":",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\n",
    " ",
    "enc<u3>",
    "clear<i8>",
    "enc<u64>",
    "enc<i0>",
    "[65536,65536]",
    "[4294967296]",
    "[0]",
    "[]",
    "0",
    "-1",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "2^-17.5",
    "1e308",
    "NaN",
    "input",
    "const",
    "add",
    "matmul",
    "conv2d",
    "sum",
    "reshape",
    "broadcast",
    "transpose",
    "concat",
    "slice",
    "tlu",
    "tlu.multi",
    "round",
    "clip",
    "keyswitch",
    "pbs",
    "output",
    "table",
    "params",
    "axes=[0]",
    "perm=[1,0]",
    "lsbs=63",
    "strides=[18446744073709551615,1]",
    "pads=[18446744073709551615,0,0,0]",
    "group=18446744073709551615",
    "map=[0,0,0]",
];

#[derive(Clone, Debug)]
enum TextEdit {
    /// Insert a dictionary word at a byte position (snapped to a char boundary).
    Word(usize, usize),
    /// Replace the number at a position by a dictionary word.
    Number(usize, usize),
    /// Delete a range of bytes.
    Delete(usize, usize),
    /// Duplicate, delete or swap lines.
    DupLine(usize),
    DelLine(usize),
    SwapLines(usize, usize),
    /// XOR a byte (may break UTF-8; read back lossily).
    Flip(usize, u8),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        (any::<usize>(), 0..DICT.len()).prop_map(|(p, w)| TextEdit::Word(p, w)),
        (any::<usize>(), 0..DICT.len()).prop_map(|(p, w)| TextEdit::Number(p, w)),
        (any::<usize>(), 1..16usize).prop_map(|(p, n)| TextEdit::Delete(p, n)),
        any::<usize>().prop_map(TextEdit::DupLine),
        any::<usize>().prop_map(TextEdit::DelLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| TextEdit::SwapLines(a, b)),
        (any::<usize>(), 1..=255u8).prop_map(|(p, x)| TextEdit::Flip(p, x)),
    ]
}

fn snap(s: &str, p: usize) -> usize {
    let mut p = if s.is_empty() { 0 } else { p % (s.len() + 1) };
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply_text(src: &str, edits: &[TextEdit]) -> String {
    let mut s = src.to_string();
    for e in edits {
        match e {
            TextEdit::Word(p, w) => {
                let p = snap(&s, *p);
                s.insert_str(p, DICT[*w]);
            }
            TextEdit::Number(p, w) => {
                let p = snap(&s, *p);
                if let Some(start) = s[p..].find(|c: char| c.is_ascii_digit()).map(|i| i + p) {
                    let end = s[start..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(s.len(), |i| i + start);
                    s.replace_range(start..end, DICT[*w]);
                }
            }
            TextEdit::Delete(p, n) => {
                let a = snap(&s, *p);
                let b = snap(&s, a + n).max(a);
                s.replace_range(a..b, "");
            }
            TextEdit::DupLine(i) | TextEdit::DelLine(i) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let i = i % lines.len();
                    if matches!(e, TextEdit::DupLine(_)) {
                        lines.insert(i, lines[i]);
                    } else {
                        lines.remove(i);
                    }
                }
                s = lines.join("\n");
            }
            TextEdit::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let n = lines.len();
                    lines.swap(a % n, b % n);
                }
                s = lines.join("\n");
            }
            TextEdit::Flip(p, x) => {
                let mut b = s.into_bytes();
                if !b.is_empty() {
                    let n = b.len();
                    b[p % n] ^= x;
                }
                s = String::from_utf8_lossy(&b).into_owned();
            }
        }
    }
    s
}

#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Set(usize, u8),
    Varint(usize, u64),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let huge = prop_oneof![
        Just(u64::MAX),
        Just(1u64 << 32),
        Just(65536),
        Just(1u64 << 40),
        any::<u64>()
    ];
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(p, x)| ByteEdit::Flip(p, x)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u8),
                Just(0xfb),
                Just(0xfc),
                Just(0xfd),
                Just(0xff),
                any::<u8>()
            ]
        )
            .prop_map(|(p, x)| ByteEdit::Set(p, x)),
        (any::<usize>(), huge).prop_map(|(p, x)| ByteEdit::Varint(p, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| ByteEdit::Insert(p, b)),
        (any::<usize>(), 1..32usize).prop_map(|(p, n)| ByteEdit::Delete(p, n)),
    ]
}

fn apply_bytes(data: &mut Vec<u8>, edits: &[ByteEdit]) {
    for e in edits {
        let n = data.len();
        let at = |p: usize| if n == 0 { 0 } else { p % n };
        match e {
            ByteEdit::Flip(p, x) if n > 0 => data[at(*p)] ^= x,
            ByteEdit::Set(p, x) if n > 0 => data[at(*p)] = *x,
            ByteEdit::Varint(p, x) => {
                let p = at(*p);
                let mut b = vec![0xfd];
                b.extend_from_slice(&x.to_le_bytes());
                let end = (p + b.len()).min(n);
                data.splice(p..end, b);
            }
            ByteEdit::Insert(p, b) => {
                let p = if n == 0 { 0 } else { p % (n + 1) };
                data.splice(p..p, b.iter().copied());
            }
            ByteEdit::Delete(p, k) => {
                let p = at(*p);
                data.drain(p..(p + k).min(n));
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------ properties

fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Parses `src`; a program that parses must print, parse again to the same text and survive
/// both serializations. Returns whether it parsed.
fn check_text(src: &str) -> bool {
    let Ok(g) = parse(src) else { return false };
    let p = print(&g);
    let again = parse(&p).unwrap_or_else(|e| panic!("printed program does not parse: {e}\n{p}"));
    assert_eq!(print(&again), p);
    let b = serial::to_bytes(&g).expect("a parsed program serializes");
    assert_eq!(print(&serial::from_bytes(&b).expect("and loads")), p);
    let j = serial::to_json(&g).expect("a parsed program serializes to JSON");
    serial::from_json(&j).expect("and loads from JSON");
    true
}

fn report(name: &str, execs: usize, ok: usize) {
    eprintln!(
        "{name}: {execs} inputs, {ok} accepted, largest allocation {} bytes",
        bounded_alloc::largest()
    );
}

#[test]
fn parser_on_random_bytes() {
    let mut r = runner(512);
    let (execs, ok) = (Cell::new(0), Cell::new(0));
    let strat = prop::collection::vec(any::<u8>(), 0..256);
    r.run(&strat, |b| {
        let s = String::from_utf8_lossy(&b);
        execs.set(execs.get() + 2);
        ok.set(ok.get() + check_text(&s) as usize);
        // Behind a valid header, so the parser gets past line 1.
        ok.set(ok.get() + check_text(&format!("veil 1\n{s}")) as usize);
        Ok(())
    })
    .unwrap();
    report("parser, random bytes", execs.get(), ok.get());
}

#[test]
fn parser_on_mutated_programs() {
    let n = sources().len();
    let mut r = runner(512);
    let (execs, ok) = (Cell::new(0), Cell::new(0));
    let strat = (0..n, prop::collection::vec(text_edit(), 1..5));
    r.run(&strat, |(i, edits)| {
        let s = apply_text(&sources()[i], &edits);
        execs.set(execs.get() + 1);
        ok.set(ok.get() + check_text(&s) as usize);
        Ok(())
    })
    .unwrap();
    report("parser, mutated programs", execs.get(), ok.get());
}

#[test]
fn program_decoders_on_mutations() {
    let n = serialized().len();
    let mut r = runner(512);
    let (execs, ok) = (Cell::new(0), Cell::new(0));
    let strat = (
        0..n,
        prop::collection::vec(byte_edit(), 1..5),
        prop::collection::vec(text_edit(), 1..4),
    );
    r.run(&strat, |(i, edits, tedits)| {
        let (payload, json) = &serialized()[i];
        let mut b = payload.clone();
        apply_bytes(&mut b, &edits);
        let file = graph_file(b);
        execs.set(execs.get() + 2);
        ok.set(ok.get() + serial::from_bytes(&file).is_ok() as usize);
        // The whole file, checksum and all (the envelope's own checks).
        let mut raw = graph_file(payload.clone());
        apply_bytes(&mut raw, &edits);
        ok.set(ok.get() + serial::from_bytes(&raw).is_ok() as usize);
        execs.set(execs.get() + 1);
        ok.set(ok.get() + serial::from_json(&apply_text(json, &tedits)).is_ok() as usize);
        Ok(())
    })
    .unwrap();
    report("program decoders", execs.get(), ok.get());
}

#[test]
fn program_decoder_on_random_payloads() {
    let mut r = runner(512);
    let strat = prop::collection::vec(any::<u8>(), 0..256);
    r.run(&strat, |b| {
        let _ = serial::from_bytes(&graph_file(b.clone()));
        let _ = serial::from_bytes(&b);
        let _ = serial::from_json(&String::from_utf8_lossy(&b));
        Ok(())
    })
    .unwrap();
}

// ------------------------------------------------------------------ the size limit

const HUGE_BROADCAST: &str = "veil 1
%x = input \"x\" : enc<u3>[1]
%a = broadcast %x : enc<u3>[65536, 65536]
output \"a\", %a
";

#[test]
fn a_huge_broadcast_is_refused_before_anything_allocates() {
    let e = parse(HUGE_BROADCAST).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "tensor of shape [65536, 65536] has 4294967296 elements, over veil's limit of {MAX_ELEMENTS} (2^24) elements per tensor; split the computation into smaller tensors"
        )),
        "{e}"
    );
    assert!(e.contains("3:"), "names the line: {e}");
}

#[test]
fn shapes_at_the_limit_are_accepted() {
    assert_eq!(MAX_ELEMENTS, 1 << 24);
    assert_eq!(checked_numel(&[4096, 4096]), Ok(1 << 24));
    assert_eq!(checked_numel(&[]), Ok(1));
    assert_eq!(checked_numel(&[0, usize::MAX, usize::MAX]), Ok(0));
    assert!(checked_numel(&[4097, 4096]).is_err());
    let e = checked_numel(&[usize::MAX, usize::MAX, usize::MAX]).unwrap_err();
    assert!(e.contains("has more than 2^128 elements"), "{e}");
    let src = "veil 1\n%x = input \"x\" : enc<u3>[1]\n%a = broadcast %x : enc<u3>[4096, 4096]\noutput \"a\", %a\n";
    parse(src).unwrap();
}

#[test]
fn the_builder_refuses_huge_tensors() {
    let b = Builder::new();
    let e = b
        .input_encrypted("x", &[65536, 65536], IntType::unsigned(3))
        .unwrap_err();
    assert!(matches!(e, BuildError::Invalid { op: "input", .. }), "{e}");
    assert!(
        e.to_string()
            .contains("has 4294967296 elements, over veil's limit"),
        "{e}"
    );
    let x = b.input_encrypted("y", &[1], IntType::unsigned(3)).unwrap();
    let e = b.broadcast(x, &[65536, 65536]).unwrap_err().to_string();
    assert!(
        e.starts_with("broadcast: result tensor of shape [65536, 65536]"),
        "{e}"
    );
    let e = b
        .constant(&[1 << 32, 1 << 32], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("over veil's limit"), "{e}");
    // Under the limit, a matmul whose result would be over it.
    let a = b
        .input_clear("a", &[8192, 1], IntType::unsigned(2))
        .unwrap();
    let c = b
        .input_clear("c", &[1, 8192], IntType::unsigned(2))
        .unwrap();
    let e = b.matmul(a, c).unwrap_err().to_string();
    assert!(e.contains("result tensor of shape [8192, 8192]"), "{e}");
}

#[test]
fn a_decoded_program_with_absurd_shapes_is_refused() {
    let g = parse("veil 1\n%x = input \"x\" : enc<u3>[2]\n%y = reshape %x : enc<u3>[2, 1]\noutput \"y\", %y\n")
        .unwrap();
    let p = Program::from_graph(&g).unwrap();
    for shape in [
        vec![1usize << 32, 1 << 32],
        vec![usize::MAX, 2],
        vec![65536, 65536],
    ] {
        let mut q = p.clone();
        q.nodes[0].ty.shape = shape.clone();
        let e = serial::from_bytes(&encode_binary(KIND_GRAPH, &q).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("over veil's limit"), "{shape:?}: {e}");
        // The consumer is not typed against the absurd operand (one problem, not two).
        assert!(e.starts_with("invalid graph: %0 = input"), "{shape:?}: {e}");
    }
}
