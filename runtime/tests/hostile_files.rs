//! Hostile files: every decoder of the runtime (and the IR's program decoder) on random bytes
//! and on mutations of valid files, under proptest.
//!
//! Property: `Ok` or a clean `Err`, never a panic or an abort, and no single allocation above
//! [`ALLOC_BOUND`] (a counting global allocator refuses larger requests, which aborts the test
//! binary with "memory allocation of N bytes failed": a failure CI cannot miss).
//!
//! Valid files come from one tiny, insecure parameter set (keys in milliseconds, files of a few
//! kilobytes), generated once ([`OnceLock`]). Mutations work at two depths: on the whole file
//! (the envelope: magic, version, kind, lengths, checksum) and inside the payload, which is
//! then sealed again with a correct checksum so that the bincode decoders and the checks after
//! them see the damage. Numbers that size allocations (varints, `u64` lengths) are a favourite
//! target.
//!
//! Cases: 64 per property by default (the whole file runs in seconds); set `PROPTEST_CASES`
//! for a longer run, e.g. `PROPTEST_CASES=20000 cargo test -p veil-runtime --release --test
//! hostile_files`.

// The bounded test allocator (tests/support/bounded_alloc.rs) implements GlobalAlloc, an unsafe
// trait: the only unsafe code in veil (the workspace denies it elsewhere).
#![allow(unsafe_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::Cell;
use std::sync::OnceLock;
use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use veil_ir::serial::{decode_binary, encode_binary, KIND_GRAPH};
use veil_ir::{Encoding, Graph, IntType, KeyId, ParamSet, Tensor};
use veil_runtime::artifact::{
    check_sample_count, seal, Direction, EncryptedBatch, ServerArtifact, KIND_ENCRYPTED_INPUTS,
    KIND_ENCRYPTED_OUTPUTS, KIND_SERVER_ARTIFACT,
};
use veil_runtime::serial::{
    params_from_bytes, params_to_bytes, KIND_CIPHERTEXT, KIND_CLIENT_KEYS,
    KIND_COMPRESSED_SERVER_KEYS, KIND_PARAMS, KIND_SERVER_KEYS,
};
use veil_runtime::{
    ClientKeys, CompressedServerKeys, CtTensor, Executor, KeyRequirements, KeygenOptions,
    ServerKeys, Value,
};

// ------------------------------------------------------------------ allocation bound

/// Largest single allocation any decoder may make on these (kilobyte-sized) inputs.
const ALLOC_BOUND: usize = 64 << 20;

/// The largest allocation request seen (for the report of the long run).
#[path = "../../tests/support/bounded_alloc.rs"]
mod bounded_alloc;

#[global_allocator]
static ALLOC: bounded_alloc::Bounded<ALLOC_BOUND> = bounded_alloc::Bounded;

// ------------------------------------------------------------------ valid files

/// Raw bytes that serialize without a length prefix (a tuple of `u8`): sealing `Raw(body)`
/// gives exactly the envelope a real value with that bincode body would have.
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

/// The artifact payload (`veil_runtime::artifact`'s private `Versioned`), to reach the body.
#[derive(Deserialize)]
struct Versioned {
    #[allow(dead_code)]
    version: u32,
    body: Vec<u8>,
}

/// How a file's payload is wrapped.
#[derive(Clone, Copy, Debug)]
enum Layer {
    /// `veil_ir::serial` envelope around the bincode value.
    Serial,
    /// The same envelope around the artifact version and the bincode body (`seal`).
    Artifact,
}

/// A valid file, its kind and the bytes inside its wrapping.
struct Sample {
    kind: &'static str,
    layer: Layer,
    file: Vec<u8>,
    inner: Vec<u8>,
}

impl Sample {
    fn new(kind: &'static str, layer: Layer, file: Vec<u8>) -> Self {
        let inner = match layer {
            Layer::Serial => {
                let header = 4 + 4 + 1 + kind.len() + 8 + 8;
                file[header..].to_vec()
            }
            Layer::Artifact => {
                decode_binary::<Versioned>(kind, &file)
                    .expect("a valid artifact")
                    .body
            }
        };
        Sample {
            kind,
            layer,
            file,
            inner,
        }
    }

    /// Wraps `inner` as this sample's kind, with a correct checksum.
    fn wrap(&self, inner: Vec<u8>) -> Vec<u8> {
        match self.layer {
            Layer::Serial => encode_binary(self.kind, &Raw(inner)).expect("encodes"),
            Layer::Artifact => seal(self.kind, &Raw(inner)).expect("seals"),
        }
    }
}

/// A tiny, insecure parameter set: keys in milliseconds, files of kilobytes.
fn tiny() -> ParamSet {
    ParamSet {
        lwe_dimension: 16,
        glwe_dimension: 1,
        polynomial_size: 64,
        lwe_noise_log2: -30.0,
        glwe_noise_log2: -40.0,
        pbs_base_log: 12,
        pbs_level: 2,
        ks_base_log: 4,
        ks_level: 3,
        message_bits: 2,
        p_error: 1e-5,
        noise_distribution: Default::default(),
        modulus_switch: Default::default(),
        ks_modulus: Default::default(),
    }
}

const PROGRAM: &str = "veil 1
level tfhe
params @p0 = { n=16, k=1, N=64, lwe_noise=2^-30, glwe_noise=2^-40, pbs=12x2, ks=4x3, bits=2, p_error=1e-5 }
table @t0 = [0,1,0,1]
%0 = input \"x\" : enc<u2>[3] @p0/2
%1 = keyswitch %0 : enc<u2>[3] @p0.small/2
%2 = pbs %1 tables=[@t0] : enc<u1>[3] @p0/2
output \"y\", %2
";

struct Files {
    program: Graph,
    samples: Vec<Sample>,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let program = veil_ir::text::parse(PROGRAM).expect("the test program parses");
        let p = tiny();
        let ck = ClientKeys::generate(
            std::slice::from_ref(&p),
            &KeygenOptions {
                seed: 7,
                allow_insecure_for_tests: true,
            },
        )
        .expect("tiny keys");
        let req = KeyRequirements::of(&program).expect("requirements");
        let csk = ck.server_keys(&req, None).expect("server keys");
        let sk = csk.decompress();
        let enc = Encoding {
            key: KeyId::Big(0),
            width: 2,
        };
        let x = Tensor::new(vec![3], vec![0, 1, 3]).expect("tensor");
        let ct = ck.encrypt(&x, IntType::unsigned(2), enc).expect("encrypts");
        let server = ServerArtifact::new(
            program.clone(),
            veil_runtime::artifact::CompileStats {
                pbs: 3,
                ..Default::default()
            },
        )
        .expect("artifact");
        let batch = EncryptedBatch {
            program_id: server.program_id(),
            key_id: ck.key_id(),
            samples: 2,
            names: vec!["x".into()],
            runs: vec![vec![Value::Encrypted(ct.clone())]; 2],
        };
        let exec = Executor::new(1).expect("executor");
        let out = server.run(&exec, &sk, &batch, |_| {}).expect("runs");
        let clear = EncryptedBatch {
            program_id: 1,
            key_id: 2,
            samples: 1,
            names: vec!["k".into()],
            runs: vec![vec![Value::Clear(x.clone())]],
        };
        use Layer::*;
        let samples = vec![
            Sample::new(KIND_PARAMS, Serial, params_to_bytes(&p).unwrap()),
            Sample::new(KIND_CLIENT_KEYS, Serial, ck.to_bytes().unwrap()),
            Sample::new(KIND_COMPRESSED_SERVER_KEYS, Serial, csk.to_bytes().unwrap()),
            Sample::new(KIND_SERVER_KEYS, Serial, sk.to_bytes().unwrap()),
            Sample::new(KIND_CIPHERTEXT, Serial, ct.to_bytes().unwrap()),
            Sample::new(
                KIND_GRAPH,
                Serial,
                veil_ir::serial::to_bytes(&program).unwrap(),
            ),
            Sample::new(KIND_SERVER_ARTIFACT, Artifact, server.to_bytes().unwrap()),
            Sample::new(
                KIND_ENCRYPTED_INPUTS,
                Artifact,
                batch.to_bytes(Direction::Inputs).unwrap(),
            ),
            Sample::new(
                KIND_ENCRYPTED_OUTPUTS,
                Artifact,
                out.to_bytes(Direction::Outputs).unwrap(),
            ),
            Sample::new(
                KIND_ENCRYPTED_INPUTS,
                Artifact,
                clear.to_bytes(Direction::Inputs).unwrap(),
            ),
        ];
        Files { program, samples }
    })
}

/// Runs every decoder on `data`; returns how many accepted it. Panics propagate (the
/// property fails); aborts end the binary.
fn decode_all(data: &[u8]) -> usize {
    let oks = [
        params_from_bytes(data).is_ok(),
        ClientKeys::from_bytes(data).is_ok(),
        CompressedServerKeys::from_bytes(data).is_ok(),
        ServerKeys::from_bytes(data).is_ok(),
        CtTensor::from_bytes(data).is_ok(),
        veil_ir::serial::from_bytes(data).is_ok(),
        ServerArtifact::from_bytes(data).is_ok(),
        EncryptedBatch::from_bytes(data, Direction::Inputs).is_ok(),
        EncryptedBatch::from_bytes(data, Direction::Outputs).is_ok(),
    ];
    oks.iter().filter(|&&ok| ok).count()
}

// ------------------------------------------------------------------ mutations

/// One edit of a byte string. Positions are taken modulo the length.
#[derive(Clone, Debug)]
enum Edit {
    /// XOR one byte.
    Flip(usize, u8),
    /// Overwrite one byte with a value decoders care about.
    Set(usize, u8),
    /// Overwrite 8 bytes with a little-endian `u64` (lengths, counts).
    Word(usize, u64),
    /// Write a bincode varint marker followed by a huge value (a forged length or count).
    Varint(usize, u64),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Delete up to `n` bytes.
    Delete(usize, usize),
    /// Cut the data at a position.
    Truncate(usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(1),
        Just(0x7f),
        Just(0x80),
        Just(0xfa),
        Just(0xfb),
        Just(0xfc),
        Just(0xfd),
        Just(0xfe),
        Just(0xff),
        any::<u8>(),
    ]
}

fn huge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1u64 << 32),
        Just(1u64 << 40),
        Just(100_000_000_000),
        Just(0),
        any::<u64>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Edit::Flip(p, x)),
        (any::<usize>(), interesting_byte()).prop_map(|(p, x)| Edit::Set(p, x)),
        (any::<usize>(), huge()).prop_map(|(p, x)| Edit::Word(p, x)),
        (any::<usize>(), huge()).prop_map(|(p, x)| Edit::Varint(p, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1..64usize).prop_map(|(p, n)| Edit::Delete(p, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(data: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = data.len();
        let at = |p: usize| if n == 0 { 0 } else { p % n };
        match e {
            Edit::Flip(p, x) if n > 0 => data[at(*p)] ^= x,
            Edit::Set(p, x) if n > 0 => data[at(*p)] = *x,
            Edit::Word(p, x) => {
                let p = at(*p);
                let b = x.to_le_bytes();
                let end = (p + 8).min(n);
                data[p..end].copy_from_slice(&b[..end - p]);
            }
            Edit::Varint(p, x) => {
                let p = at(*p);
                let mut b = vec![0xfd];
                b.extend_from_slice(&x.to_le_bytes());
                let end = (p + b.len()).min(n);
                data.splice(p..end, b);
            }
            Edit::Insert(p, b) => {
                let p = if n == 0 { 0 } else { p % (n + 1) };
                data.splice(p..p, b.iter().copied());
            }
            Edit::Delete(p, k) => {
                let p = at(*p);
                let end = (p + k).min(n);
                data.drain(p..end);
            }
            Edit::Truncate(p) => data.truncate(at(*p)),
            _ => {}
        }
    }
}

// ------------------------------------------------------------------ properties

/// Cases per property: `PROPTEST_CASES` or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn runner(default: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Counts executions of one property (printed, so a long run reports its size).
fn report(name: &str, execs: usize, accepted: usize) {
    eprintln!(
        "{name}: {execs} decoder inputs, {accepted} decodes accepted, largest allocation {} bytes",
        bounded_alloc::largest()
    );
}

#[test]
fn valid_files_decode() {
    let f = files();
    for s in &f.samples {
        assert!(decode_all(&s.file) >= 1, "{} does not decode", s.kind);
        // Re-wrapping the untouched payload gives the same bytes (the harness is faithful).
        assert_eq!(s.wrap(s.inner.clone()), s.file, "{}", s.kind);
    }
    assert_eq!(f.program.outputs().len(), 1);
}

#[test]
fn random_bytes_are_refused_cleanly() {
    let mut r = runner(256);
    let (execs, accepted) = (Cell::new(0), Cell::new(0));
    let strat = prop::collection::vec(any::<u8>(), 0..512);
    r.run(&strat, |bytes| {
        execs.set(execs.get() + 1);
        accepted.set(accepted.get() + decode_all(&bytes));
        // A valid header of each kind in front of random bytes.
        for s in &files().samples {
            execs.set(execs.get() + 1);
            accepted.set(accepted.get() + decode_all(&s.wrap(bytes.clone())));
        }
        Ok(())
    })
    .unwrap();
    report("random bytes", execs.get(), accepted.get());
}

#[test]
fn mutated_files_are_refused_cleanly() {
    let n = files().samples.len();
    let mut r = runner(512);
    let (execs, accepted) = (Cell::new(0), Cell::new(0));
    let strat = (
        0..n,
        prop::collection::vec(edit(), 1..6),
        prop::bool::weighted(0.85),
    );
    r.run(&strat, |(i, edits, inner)| {
        let s = &files().samples[i];
        let data = if inner {
            let mut b = s.inner.clone();
            apply(&mut b, &edits);
            s.wrap(b)
        } else {
            let mut b = s.file.clone();
            apply(&mut b, &edits);
            b
        };
        execs.set(execs.get() + 1);
        accepted.set(accepted.get() + decode_all(&data));
        Ok(())
    })
    .unwrap();
    report("mutated files", execs.get(), accepted.get());
}

// ------------------------------------------------------------------ forged sample counts

#[test]
fn sample_counts_must_match_the_runs() {
    // Integer programs: one sample per run.
    assert!(check_sample_count(3, 3, 1).is_ok());
    let e = check_sample_count(100_000_000_000, 3, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the batch claims 100000000000 sample(s) but holds 3 run(s) of 1 sample(s) each, that is 3 sample(s); the file was modified or damaged: encrypt and run again (`veil encrypt`, `veil run`)"
    );
    assert!(check_sample_count(2, 3, 1).is_err());
    assert!(check_sample_count(usize::MAX, 3, 1).is_err());
    // ML models with batch 4: the last run may be padded.
    for s in 9..=12 {
        assert!(check_sample_count(s, 3, 4).is_ok(), "{s}");
    }
    for s in [0, 8, 13, usize::MAX] {
        let e = check_sample_count(s, 3, 4).unwrap_err().to_string();
        assert!(e.contains("that is 9 to 12 samples"), "{s}: {e}");
    }
    assert!(check_sample_count(0, 0, 4).is_ok());
    assert!(check_sample_count(1, 0, 4)
        .unwrap_err()
        .to_string()
        .contains("that is no samples"));
    assert!(check_sample_count(1, 1, 0)
        .unwrap_err()
        .to_string()
        .contains("0 samples each"));
}

#[test]
fn a_forged_sample_count_survives_decoding_but_not_the_check() {
    let f = files();
    let s = f
        .samples
        .iter()
        .find(|s| s.kind == KIND_ENCRYPTED_OUTPUTS)
        .unwrap();
    let mut b = EncryptedBatch::from_bytes(&s.file, Direction::Outputs).unwrap();
    assert!(b.check_samples(1).is_ok());
    for forged in [100_000_000_000usize, usize::MAX, 1, 0] {
        b.samples = forged;
        let bytes = b.to_bytes(Direction::Outputs).unwrap();
        let back = EncryptedBatch::from_bytes(&bytes, Direction::Outputs).unwrap();
        assert_eq!(back.samples, forged);
        let e = back.check_samples(1).unwrap_err().to_string();
        assert!(e.contains("holds 2 run(s)"), "{e}");
    }
}

#[test]
fn a_clear_value_of_absurd_shape_is_refused() {
    // Shape [2^32, 2^32] with no data: the product overflows 64 bits in release builds.
    let b = EncryptedBatch {
        program_id: 1,
        key_id: 2,
        samples: 1,
        names: vec!["k".into()],
        runs: vec![vec![Value::Clear(Tensor::scalar(1))]],
    };
    let s = Sample::new(
        KIND_ENCRYPTED_INPUTS,
        Layer::Artifact,
        b.to_bytes(Direction::Inputs).unwrap(),
    );
    // The body ends with the clear value: variant 0, shape [] (length 0), data [1].
    let body = &s.inner;
    let tail = body.len() - 4;
    assert_eq!(&body[tail..], &[0, 0, 1, 2], "layout changed: {body:?}");
    // Variant 0, a shape of two u64 varints of 2^32, no data.
    let mut forged = body[..tail].to_vec();
    forged.extend_from_slice(&[0, 2]);
    for _ in 0..2 {
        forged.push(0xfd);
        forged.extend_from_slice(&(1u64 << 32).to_le_bytes());
    }
    forged.push(0); // no data
    let e = EncryptedBatch::from_bytes(&s.wrap(forged), Direction::Inputs)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor of shape [4294967296, 4294967296] has 18446744073709551616 elements"),
        "{e}"
    );
}

// ------------------------------------------------------------------ forged key dimensions

/// The layout of `CompressedServerKeysFile` / `ServerKeysFile` (private to the runtime), to
/// forge key files whose parameters carry a correct fingerprint but absurd dimensions.
#[derive(Serialize)]
struct KeysFile {
    key_id: u64,
    fingerprint: u64,
    params: Vec<ParamSet>,
    /// `(param, seed, data)`; `ServerKeysFile` has no seed: see [`ExpandedKeysFile`].
    bsks: Vec<(u32, CompressionSeed, Vec<u8>)>,
    ksks: Vec<(KeyId, KeyId, CompressionSeed, Vec<u8>)>,
    /// Per set with a `wop.pbs`: its WoP-PBS keys file (binary format 4).
    wops: Vec<(u32, Vec<u8>)>,
}

#[derive(Serialize)]
struct ExpandedKeysFile {
    key_id: u64,
    fingerprint: u64,
    params: Vec<ParamSet>,
    bsks: Vec<(u32, Vec<u8>)>,
    ksks: Vec<(KeyId, KeyId, (), Vec<u8>)>,
}

#[test]
fn key_files_with_absurd_dimensions_are_refused() {
    use veil_runtime::params::fingerprint_all;
    let seed = || CompressionSeed::from(Seed(0));
    let absurd = [
        // n * levels * (k + 1) * N overflows 64 bits.
        ParamSet {
            lwe_dimension: 1 << 62,
            polynomial_size: 1 << 20,
            ..tiny()
        },
        // k + 1 overflows.
        ParamSet {
            glwe_dimension: usize::MAX,
            ..tiny()
        },
        // k * N overflows.
        ParamSet {
            glwe_dimension: 1 << 60,
            polynomial_size: 1 << 10,
            ..tiny()
        },
    ];
    for p in absurd {
        let params = vec![p.clone()];
        let fingerprint = fingerprint_all(&params);
        let seeded = KeysFile {
            key_id: 1,
            fingerprint,
            params: params.clone(),
            bsks: vec![(0, seed(), vec![0; 8])],
            ksks: vec![(KeyId::Big(0), KeyId::Small(0), seed(), vec![0; 8])],
            wops: Vec::new(),
        };
        let e = CompressedServerKeys::from_bytes(
            &encode_binary(KIND_COMPRESSED_SERVER_KEYS, &seeded).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("compressed server keys"), "{p:?}: {e}");
        assert!(
            e.contains("too large for this machine")
                || e.contains("larger than this machine can address")
                || e.contains("holds 1 words"),
            "{p:?}: {e}"
        );
        let expanded = ExpandedKeysFile {
            key_id: 1,
            fingerprint,
            params,
            bsks: vec![(0, vec![0; 16])],
            ksks: vec![(KeyId::Big(0), KeyId::Small(0), (), vec![0; 8])],
        };
        let e = ServerKeys::from_bytes(&encode_binary(KIND_SERVER_KEYS, &expanded).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("server keys"), "{p:?}: {e}");
    }
}
