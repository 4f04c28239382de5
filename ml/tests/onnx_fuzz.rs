//! Fuzzing of veil-ml's readers: the ONNX importer ([`OnnxImport::from_bytes`]) on random
//! bytes and byte mutations of the fixtures (`ml/tests/fixtures/onnx/*.onnx`), and the client
//! artifact ([`ClientArtifact::from_bytes`]) on mutations of a compiled one; plus the client's
//! checks of the sample count the server writes into a results file
//! ([`ClientArtifact::decrypt`], [`ClientArtifact::decode`]).
//!
//! Property: `Ok` or a clean `Err`, never a panic or an abort, and no single allocation above
//! [`ALLOC_BOUND`] (a global allocator refuses larger requests: the binary aborts with "memory
//! allocation of N bytes failed").
//!
//! Cases: 256 per property by default (seconds); `PROPTEST_CASES` raises it.

// The bounded test allocator (tests/support/bounded_alloc.rs) implements GlobalAlloc, an unsafe
// trait: the only unsafe code in veil (the workspace denies it elsewhere).
#![allow(unsafe_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::Cell;
use std::sync::OnceLock;
use veil_compiler::program::{compile, CompileConfig};
use veil_ir::serial::decode_binary;
use veil_ir::Tensor;
use veil_ml::artifact::{ClientArtifact, ClientModel};
use veil_ml::onnx::OnnxImport;
use veil_runtime::artifact::{seal, EncryptedBatch, KIND_CLIENT_ARTIFACT};
use veil_runtime::Value;

// ------------------------------------------------------------------ allocation bound

/// Largest single allocation the readers may make on these (kilobyte-sized) inputs.
const ALLOC_BOUND: usize = 256 << 20;

#[path = "../../tests/support/bounded_alloc.rs"]
mod bounded_alloc;

#[global_allocator]
static ALLOC: bounded_alloc::Bounded<ALLOC_BOUND> = bounded_alloc::Bounded;

// ------------------------------------------------------------------ inputs

fn fixtures() -> &'static [(String, Vec<u8>)] {
    static F: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).expect("readable"))
            })
            .collect();
        out.sort();
        assert!(out.len() >= 10, "found {} fixtures", out.len());
        out
    })
}

const SRC: &str = "veil 1\n%x = input \"x\" : enc<u3>[3]\n%k = input \"k\" : clear<u2>\n\
    %y = add %x, %k : enc<u4>[3]\noutput \"y\", %y\n";

/// A compiled integer program's client artifact (no bootstrap: keys are cheap).
fn client() -> &'static ClientArtifact {
    static C: OnceLock<ClientArtifact> = OnceLock::new();
    C.get_or_init(|| {
        let g = veil_ir::text::parse(SRC).unwrap();
        let inputset: Vec<Vec<Tensor<i64>>> = (0..8)
            .map(|i| {
                vec![
                    Tensor::new(vec![3], vec![i % 8, (i + 3) % 8, 7 - i % 8]).unwrap(),
                    Tensor::scalar(i % 4),
                ]
            })
            .collect();
        let p = compile(&g, &inputset, &CompileConfig::default()).unwrap();
        ClientArtifact::from_program(&p, "t.veil", ClientModel::Integers).unwrap()
    })
}

/// The body of the client artifact file (inside the envelope and the artifact version).
fn client_body() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        #[derive(Deserialize)]
        struct Versioned {
            #[allow(dead_code)]
            version: u32,
            body: Vec<u8>,
        }
        let file = client().to_bytes().unwrap();
        decode_binary::<Versioned>(KIND_CLIENT_ARTIFACT, &file)
            .unwrap()
            .body
    })
}

/// Bytes serialized as themselves (a tuple of `u8`): sealing `Raw(body)` gives the artifact a
/// value with that bincode body would have.
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

// ------------------------------------------------------------------ mutations

#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    /// A protobuf/bincode varint of a huge value (lengths, counts, dimensions).
    Varint(usize, u64),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let huge = prop_oneof![
        Just(u64::MAX),
        Just(1u64 << 31),
        Just(1u64 << 32),
        Just(1u64 << 40),
        Just(65536),
        any::<u64>()
    ];
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Edit::Flip(p, x)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u8),
                Just(0x7f),
                Just(0x80),
                Just(0xfd),
                Just(0xff),
                any::<u8>()
            ]
        )
            .prop_map(|(p, x)| Edit::Set(p, x)),
        (any::<usize>(), huge).prop_map(|(p, x)| Edit::Varint(p, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1..32usize).prop_map(|(p, n)| Edit::Delete(p, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits`; `protobuf` chooses LEB128 varints (ONNX) over bincode's (veil files).
fn apply(data: &mut Vec<u8>, edits: &[Edit], protobuf: bool) {
    for e in edits {
        let n = data.len();
        let at = |p: usize| if n == 0 { 0 } else { p % n };
        match e {
            Edit::Flip(p, x) if n > 0 => data[at(*p)] ^= x,
            Edit::Set(p, x) if n > 0 => data[at(*p)] = *x,
            Edit::Varint(p, x) => {
                let p = at(*p);
                let b = if protobuf {
                    let (mut v, mut b) = (*x, Vec::new());
                    loop {
                        let low = (v & 0x7f) as u8;
                        v >>= 7;
                        if v == 0 {
                            b.push(low);
                            break;
                        }
                        b.push(low | 0x80);
                    }
                    b
                } else {
                    let mut b = vec![0xfd];
                    b.extend_from_slice(&x.to_le_bytes());
                    b
                };
                // Replace the varint at `p` (its continuation bytes) by the new one.
                let mut end = p;
                while protobuf && end < n && data[end] & 0x80 != 0 {
                    end += 1;
                }
                let end = (end + 1).min(n);
                data.splice(p..end, b);
            }
            Edit::Insert(p, b) => {
                let p = if n == 0 { 0 } else { p % (n + 1) };
                data.splice(p..p, b.iter().copied());
            }
            Edit::Delete(p, k) => {
                let p = at(*p);
                data.drain(p..(p + k).min(n));
            }
            Edit::Truncate(p) => data.truncate(at(*p)),
            _ => {}
        }
    }
}

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

fn report(name: &str, execs: usize, ok: usize) {
    eprintln!(
        "{name}: {execs} inputs, {ok} accepted, largest allocation {} bytes",
        bounded_alloc::largest()
    );
}

// ------------------------------------------------------------------ properties

/// Every fixture imports, except the k-NN export veil refuses by design (with its reason).
#[test]
fn onnx_fixtures_import() {
    for (name, b) in fixtures() {
        match OnnxImport::from_bytes(b) {
            Err(e) if name.starts_with("knn_") => {
                assert!(
                    e.to_string().contains("k-nearest-neighbours"),
                    "{name}: {e}"
                )
            }
            r => {
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

#[test]
fn onnx_importer_on_mutated_fixtures() {
    let n = fixtures().len();
    let mut r = runner(256);
    let (execs, ok) = (Cell::new(0), Cell::new(0));
    let strat = (0..n, prop::collection::vec(edit(), 1..5));
    r.run(&strat, |(i, edits)| {
        let mut b = fixtures()[i].1.clone();
        apply(&mut b, &edits, true);
        execs.set(execs.get() + 1);
        ok.set(ok.get() + OnnxImport::from_bytes(&b).is_ok() as usize);
        Ok(())
    })
    .unwrap();
    report("ONNX importer, mutated fixtures", execs.get(), ok.get());
}

#[test]
fn onnx_importer_on_random_bytes() {
    let mut r = runner(256);
    r.run(&prop::collection::vec(any::<u8>(), 0..512), |b| {
        let _ = OnnxImport::from_bytes(&b);
        Ok(())
    })
    .unwrap();
}

#[test]
fn client_artifact_on_mutations() {
    let file = client().to_bytes().unwrap();
    ClientArtifact::from_bytes(&file).unwrap();
    assert_eq!(
        seal(KIND_CLIENT_ARTIFACT, &Raw(client_body().to_vec())).unwrap(),
        file
    );
    let mut r = runner(256);
    let (execs, ok) = (Cell::new(0), Cell::new(0));
    let strat = (
        prop::collection::vec(edit(), 1..5),
        prop::bool::weighted(0.85),
    );
    r.run(&strat, |(edits, inner)| {
        let data = if inner {
            let mut b = client_body().to_vec();
            apply(&mut b, &edits, false);
            seal(KIND_CLIENT_ARTIFACT, &Raw(b)).unwrap()
        } else {
            let mut b = file.clone();
            apply(&mut b, &edits, false);
            b
        };
        execs.set(execs.get() + 1);
        ok.set(ok.get() + ClientArtifact::from_bytes(&data).is_ok() as usize);
        Ok(())
    })
    .unwrap();
    report("client artifact", execs.get(), ok.get());
}

// ------------------------------------------------------------------ sample counts

#[test]
fn decrypt_and_decode_refuse_forged_sample_counts() {
    let c = client();
    let (keys, _) = c.keygen(3).unwrap();
    let runs: Vec<Vec<Tensor<i64>>> = (0..3)
        .map(|i| {
            vec![
                Tensor::new(vec![3], vec![i, 1, 2]).unwrap(),
                Tensor::scalar(1),
            ]
        })
        .collect();
    let inputs = c.encrypt(&keys, &runs, 3).unwrap();
    assert_eq!(c.samples_per_run(), 1);
    // Results as a server would write them: the output "y" per run (here the input x,
    // encrypted under the same key, stands in for it).
    let results = |samples: usize| EncryptedBatch {
        program_id: inputs.program_id,
        key_id: inputs.key_id,
        samples,
        names: vec!["y".into()],
        runs: inputs
            .runs
            .iter()
            .map(|r| vec![r[0].clone()])
            .collect::<Vec<Vec<Value>>>(),
    };
    let ok = c.decrypt(&keys, &results(3)).unwrap();
    assert_eq!(c.decode(&ok, 3).unwrap().rows.len(), 3);
    for forged in [100_000_000_000usize, usize::MAX, 4, 2, 0] {
        let e = c.decrypt(&keys, &results(forged)).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "the batch claims {forged} sample(s) but holds 3 run(s)"
            )),
            "{e}"
        );
        let e = c.decode(&ok, forged).unwrap_err().to_string();
        assert!(e.contains("holds 3 run(s) of 1 sample(s) each"), "{e}");
    }
}
