//! Deployment artifacts on the server side, and the files client and server exchange.
//!
//! - [`ServerArtifact`] (`server.veil-artifact`, kind [`KIND_SERVER_ARTIFACT`]): the lowered
//!   TFHE-level program (its parameter sets included), its statistics ([`CompileStats`], a
//!   typed record the compiler fills and readers use field by field) and its *program id*
//!   (a hash of the program). No secrets: a server needs it, the evaluation keys a client
//!   uploads once (`CompressedServerKeys::to_bytes`, kind
//!   [`crate::serial::KIND_COMPRESSED_SERVER_KEYS`]) and ciphertexts.
//! - [`EncryptedBatch`] (kinds [`KIND_ENCRYPTED_INPUTS`] and [`KIND_ENCRYPTED_OUTPUTS`]): one
//!   run of the program per entry, tagged with the program id and the key generation id, so
//!   that mixing programs or keys is an error, not garbage.
//! - The client's artifact (kind [`KIND_CLIENT_ARTIFACT`]: input/output encodings, key
//!   requirements, ML pre- and post-processing) is built by the compiler's ML layer on the same
//!   envelope ([`seal`], [`open`]).
//!
//! Every file uses the checked envelope of [`veil_ir::serial`] (magic `VEIL`, format version,
//! kind, payload length, SHA-256 checksum); inside it the payload starts with the artifact's
//! own format version ([`ARTIFACT_VERSION`]), checked before the rest is decoded. Loading a
//! truncated, modified, wrong-kind or wrong-version file fails with an [`ArtifactError`].
//!
//! This module needs no compiler: `veil run` and `veil serve` link the runtime only.

use crate::serial::{KIND_CLIENT_KEYS, KIND_COMPRESSED_SERVER_KEYS, KIND_SERVER_KEYS};
use crate::{CompressedServerKeys, CtTensor, Executor, RuntimeError, ServerKeys, Value};
use bincode::Options;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use veil_ir::serial::{self, decode_binary, encode_binary, SerialError, MAGIC};
use veil_ir::{Graph, IntType, KeyId, Level, Op, ParamSet, Tensor, TensorType};

/// Format version of the artifact payloads (inside the envelope's own version).
pub const ARTIFACT_VERSION: u32 = 6;
/// Kind of a [`ServerArtifact`].
pub const KIND_SERVER_ARTIFACT: &str = "veil-server-artifact";
/// Kind of the client artifact (`veil_ml::artifact::ClientArtifact`).
pub const KIND_CLIENT_ARTIFACT: &str = "veil-client-artifact";
/// Kind of an [`EncryptedBatch`] of program inputs (written by the client).
pub const KIND_ENCRYPTED_INPUTS: &str = "veil-encrypted-inputs";
/// Kind of an [`EncryptedBatch`] of program outputs (written by the server).
pub const KIND_ENCRYPTED_OUTPUTS: &str = "veil-encrypted-outputs";

/// File name of the server artifact in `veil compile --out DIR`.
pub const SERVER_FILE: &str = "server.veil-artifact";
/// File name of the client artifact in `veil compile --out DIR`.
pub const CLIENT_FILE: &str = "client.veil-artifact";
/// File name of the secret client keys in `veil keygen --out DIR`.
pub const SECRET_KEYS_FILE: &str = "secret.veil-keys";
/// File name of the compressed evaluation keys in `veil keygen --out DIR`.
pub const EVAL_KEYS_FILE: &str = "eval.veil-keys";

/// Why an artifact could not be built, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The envelope is broken (not a veil file, truncated, checksum mismatch, undecodable).
    #[error("{source}")]
    Serial {
        /// The kind that was expected.
        expected: &'static str,
        /// What went wrong.
        source: SerialError,
    },
    /// The file holds another kind of veil data.
    #[error(
        "this is {}, but {} is expected here",
        describe_kind(found),
        describe_kind(expected)
    )]
    WrongKind {
        /// Kind in the file.
        found: String,
        /// Kind expected.
        expected: &'static str,
    },
    /// Written by another artifact format version.
    #[error(
        "{} of format version {found}, but this veil reads version {expected}",
        describe_kind(kind)
    )]
    Version {
        /// Kind of the file.
        kind: &'static str,
        /// Version in the file.
        found: u32,
        /// [`ARTIFACT_VERSION`].
        expected: u32,
    },
    /// The pieces do not belong together (other program, other keys).
    #[error("{0}")]
    Mismatch(String),
    /// The content is inconsistent or unusable.
    #[error("{0}")]
    Invalid(String),
    /// The runtime failed (keys, encryption, execution).
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
}

impl ArtifactError {
    /// A short suggestion of how to fix the problem (to append to the message).
    pub fn hint(&self) -> String {
        let redo = |kind: &str| match kind {
            KIND_SERVER_ARTIFACT | KIND_CLIENT_ARTIFACT => "compile again with `veil compile`",
            KIND_CLIENT_KEYS | KIND_COMPRESSED_SERVER_KEYS | KIND_SERVER_KEYS => {
                "generate keys again with `veil keygen`"
            }
            KIND_ENCRYPTED_INPUTS => "encrypt again with `veil encrypt`",
            KIND_ENCRYPTED_OUTPUTS => "run again with `veil run`",
            _ => "write it again with the veil that reads it",
        };
        match self {
            ArtifactError::Serial { expected, source } => match source {
                SerialError::BadMagic { .. } => format!("give {} instead", describe_kind(expected)),
                SerialError::Version { .. } => format!("{} (this veil version)", redo(expected)),
                _ => format!(
                    "the file is damaged or incomplete: copy it again or {}",
                    redo(expected)
                ),
            },
            ArtifactError::WrongKind { .. } => "check which file goes to which option".into(),
            ArtifactError::Version { kind, .. } => format!("{} (this veil version)", redo(kind)),
            ArtifactError::Mismatch(_) => {
                "use files from the same `veil compile` and the same `veil keygen`".into()
            }
            ArtifactError::Invalid(_) | ArtifactError::Runtime(_) => String::new(),
        }
    }
}

/// A person's name for a kind of veil file.
pub fn describe_kind(kind: &str) -> String {
    match kind {
        KIND_SERVER_ARTIFACT => {
            "a server artifact (server.veil-artifact from `veil compile`)".into()
        }
        KIND_CLIENT_ARTIFACT => {
            "a client artifact (client.veil-artifact from `veil compile`)".into()
        }
        KIND_CLIENT_KEYS => "secret client keys (secret.veil-keys from `veil keygen`)".into(),
        KIND_COMPRESSED_SERVER_KEYS => "evaluation keys (eval.veil-keys from `veil keygen`)".into(),
        KIND_SERVER_KEYS => "expanded evaluation keys".into(),
        KIND_ENCRYPTED_INPUTS => "encrypted inputs (from `veil encrypt`)".into(),
        KIND_ENCRYPTED_OUTPUTS => "encrypted results (from `veil run`)".into(),
        serial::KIND_GRAPH => "a serialized veil program".into(),
        other => format!("veil data of kind {other:?}"),
    }
}

/// The kind named in the envelope header of `data`, or `None` when `data` does not start with
/// a readable header.
pub fn file_kind(data: &[u8]) -> Option<String> {
    if data.len() < 9 || data[..4] != MAGIC {
        return None;
    }
    let len = data[8] as usize;
    let kind = data.get(9..9 + len)?;
    String::from_utf8(kind.to_vec()).ok()
}

/// Fails with [`ArtifactError::WrongKind`] when `data` has a readable header of another kind
/// than `expected` (other problems are left to the decoder).
pub fn check_kind(data: &[u8], expected: &'static str) -> Result<(), ArtifactError> {
    match file_kind(data) {
        Some(found) if found != expected => Err(ArtifactError::WrongKind { found, expected }),
        _ => Ok(()),
    }
}

fn serial_err(expected: &'static str) -> impl Fn(SerialError) -> ArtifactError {
    move |source| match source {
        SerialError::Kind { found, .. } => ArtifactError::WrongKind { found, expected },
        source => ArtifactError::Serial { expected, source },
    }
}

/// The payload of every artifact: its format version, then the bincode body.
#[derive(Serialize, Deserialize)]
struct Versioned {
    version: u32,
    body: Vec<u8>,
}

fn bincode_opts() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Seals `value` as an artifact of `kind`: [`ARTIFACT_VERSION`], then the bincode body, in
/// the checked envelope.
pub fn seal<T: Serialize>(kind: &'static str, value: &T) -> Result<Vec<u8>, ArtifactError> {
    let body = bincode_opts()
        .serialize(value)
        .map_err(|e| ArtifactError::Serial {
            expected: kind,
            source: SerialError::Encode(e.to_string()),
        })?;
    encode_binary(
        kind,
        &Versioned {
            version: ARTIFACT_VERSION,
            body,
        },
    )
    .map_err(serial_err(kind))
}

/// Opens an artifact of `kind` sealed by [`seal`]: checks the kind, the envelope and the
/// artifact version, then decodes the body (bounded by its length).
pub fn open<T: DeserializeOwned>(kind: &'static str, data: &[u8]) -> Result<T, ArtifactError> {
    check_kind(data, kind)?;
    let v: Versioned = decode_binary(kind, data).map_err(serial_err(kind))?;
    if v.version != ARTIFACT_VERSION {
        return Err(ArtifactError::Version {
            kind,
            found: v.version,
            expected: ARTIFACT_VERSION,
        });
    }
    bincode_opts()
        .with_limit(v.body.len() as u64)
        .deserialize(&v.body)
        .map_err(|e| ArtifactError::Serial {
            expected: kind,
            source: SerialError::Decode {
                what: "artifact",
                msg: e.to_string(),
            },
        })
}

/// The id of a TFHE-level program: the first 8 bytes of the SHA-256 of its canonical bytes.
pub fn program_id(tfhe: &Graph) -> Result<u64, ArtifactError> {
    use sha2::{Digest, Sha256};
    let bytes = serial::to_bytes(tfhe).map_err(serial_err(serial::KIND_GRAPH))?;
    let d = Sha256::digest(&bytes);
    Ok(u64::from_le_bytes(d[..8].try_into().expect("8 bytes")))
}

fn io_name(op: &Op) -> String {
    match op {
        Op::Input { name } | Op::Output { name } => name.clone(),
        _ => String::new(),
    }
}

/// The inputs of `g` with their types, in order.
pub fn input_specs(g: &Graph) -> Vec<IoSpec> {
    io_specs(g, false)
}

/// The outputs of `g` with their types, in order.
pub fn output_specs(g: &Graph) -> Vec<IoSpec> {
    io_specs(g, true)
}

/// The graph's inputs (or outputs) with their types.
pub fn io_specs(g: &Graph, outputs: bool) -> Vec<IoSpec> {
    let vs = if outputs { g.outputs() } else { g.inputs() };
    vs.into_iter()
        .map(|v| IoSpec {
            name: io_name(g.op(v)),
            ty: g.ty(v).clone(),
        })
        .collect()
}

/// Loads a serialized graph and verifies it.
pub fn load_graph(p: &serial::Program, kind: &'static str) -> Result<Graph, ArtifactError> {
    let g = p.to_graph().map_err(serial_err(kind))?;
    veil_ir::verify::verify(&g).map_err(|e| ArtifactError::Invalid(e.to_string()))?;
    Ok(g)
}

/// A graph in its serialized form.
pub fn to_serial(g: &Graph, kind: &'static str) -> Result<serial::Program, ArtifactError> {
    serial::Program::from_graph(g).map_err(serial_err(kind))
}

// ---------------------------------------------------------------- statistics

/// Which inputs a compiled program is exact on, and so which samples its domain check
/// accepts. Either way a sample outside the domain is refused before encryption, never
/// computed wrongly. (The compiler's `CompileConfig::domain`; recorded in [`CompileStats`].)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainPolicy {
    /// Intervals calibrated on the inputset (the hull of the values every sample takes):
    /// narrow types, tables tabulated over the calibrated intervals, fewest and narrowest
    /// bootstraps. Samples whose values leave those intervals are refused. Without an
    /// inputset the intervals are propagated from the declared input types, as for
    /// [`DomainPolicy::Types`].
    #[default]
    Calibrated,
    /// Intervals propagated soundly from the declared input types (interval arithmetic over
    /// every op, the compiler's `bitwidth::propagate_ranges`); the inputset is not used.
    /// Every table covers its operand's whole propagated interval, so the program is exact
    /// for every sample of the declared input types whose values fit their declared types (a
    /// sample that overflows a declared type is refused by the reference interpreter). Costs
    /// wider bootstraps where the types are wider than the data.
    Types,
}

impl DomainPolicy {
    /// `calibrated` or `types`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DomainPolicy::Calibrated => "calibrated",
            DomainPolicy::Types => "types",
        }
    }
}

impl std::fmt::Display for DomainPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What compilation produced, before any key exists: costs, counts and predicted error. The
/// compiler fills it; both artifacts store it as it is (typed, no JSON inside), so `veil
/// inspect`, a server and benchmarks read its fields without the compiler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompileStats {
    /// Bootstraps per input precision (bits -> count), one per ciphertext.
    pub pbs_by_precision: BTreeMap<u8, u64>,
    /// Total bootstraps.
    pub pbs: u64,
    /// Keyswitches that change the key (same-key keyswitches only rescale and are free).
    pub keyswitches: u64,
    /// Levelled op nodes of the lowered program.
    pub levelled_ops: u64,
    /// The partitions of the program (bootstraps grouped by input precision) and their sets.
    pub partitions: Vec<PartitionStats>,
    /// Ciphertexts keyswitched from one partition's big key into another's small key:
    /// `(from, to, count)`.
    pub crossings: Vec<(usize, usize, u64)>,
    /// The chosen parameter sets (`@p0, @p1, ...`).
    pub params: Vec<ParamSet>,
    /// Predicted per-bootstrap error probability (the worst partition).
    pub p_error: f64,
    /// Predicted probability that any bootstrap of one run fails.
    pub global_p_error: f64,
    /// Evaluation key sizes (bytes): bootstrap keys in Fourier form; zero when the program
    /// needs none.
    pub bsk_bytes: u64,
    /// Keyswitch key bytes (every key pair the program uses).
    pub ksk_bytes: u64,
    /// Model cost of one run (Concrete's cost units).
    pub cost: f64,
    /// Estimated single-thread latency of one run, in milliseconds: a *model estimate*, not a
    /// measurement. It is the optimizer's calibrated latency model (`Solution::
    /// estimated_latency_s` of veil-compiler: every bootstrap, keyswitch, conversion and
    /// levelled op of the chosen parameter sets, priced by `optimizer::cost::pbs_latency_ns`
    /// and its siblings, whose constants were fitted by the `pbs_cost` bench, which prints
    /// refit constants for another machine). Zero for a program without bootstraps.
    pub estimated_latency_ms: f64,
    /// Compile time in milliseconds.
    pub compile_ms: f64,
    /// The domain policy the program was compiled under (`calibrated` or `types`).
    pub domain: DomainPolicy,
    /// Per program input (in declaration order), the interval of element values the domain
    /// check accepts.
    pub input_domain: Vec<InputInterval>,
    /// Per program output (in order), the largest difference of one decrypted element from
    /// the exact result (the reference interpreter) that the program's approximate rounds may
    /// cause on a sample inside the domain: a proven bound, in the output's integer units.
    /// Empty when the program has no approximate rounds (every output is exact).
    #[serde(default)]
    pub approx_deviation: Vec<i64>,
    /// The WoP-PBS lookups (inputs wider than the classic bootstraps take), one entry per
    /// parameter set they use; not counted in `pbs`.
    #[serde(default)]
    pub wop: Vec<WopStats>,
}

/// One WoP-PBS parameter set's lookups in [`CompileStats::wop`]: their decomposition, cost,
/// predicted error and keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WopStats {
    /// Widest lookup input, in bits.
    pub bits: u8,
    /// Index of the parameter set.
    pub set: usize,
    /// Lookups (ciphertexts) per run.
    pub lookups: u64,
    /// PFPKS decomposition `(base_log, levels)`.
    pub pfks: (usize, usize),
    /// Circuit bootstrap (GGSW) decomposition `(base_log, levels)`.
    pub cbs: (usize, usize),
    /// Widest output one lookup carries.
    pub out_bits: u8,
    /// Per lookup: big-to-small keyswitches of the bit extraction.
    pub keyswitches: u64,
    /// Per lookup: one-bit bootstraps of the bit extraction.
    pub extraction_pbs: u64,
    /// Per lookup: bootstraps of the circuit bootstraps.
    pub cbs_pbs: u64,
    /// Per lookup: private functional packing keyswitches of the circuit bootstraps.
    pub pfpks: u64,
    /// Per lookup: CMuxes of the vertical packing's tree.
    pub cmux_tree: u64,
    /// Per lookup: external products of its blind rotation.
    pub blind_rotation: u64,
    /// Predicted probability that one lookup fails.
    pub p_error: f64,
    /// Model cost of one lookup (Concrete's units).
    pub cost: f64,
    /// Estimated single-thread latency of one lookup, in milliseconds.
    pub latency_ms: f64,
    /// Its WoP-PBS keys, seeded (sent by the client), in bytes.
    pub key_bytes_compressed: u64,
    /// Its WoP-PBS keys, expanded on the server, in bytes.
    pub key_bytes: u64,
}

/// One input's accepted interval in [`CompileStats::input_domain`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputInterval {
    /// The input's name.
    pub name: String,
    /// Smallest accepted element.
    pub lo: i64,
    /// Largest accepted element.
    pub hi: i64,
}

/// One partition in [`CompileStats`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionStats {
    /// Widest bootstrap input of the partition, in bits.
    pub precision: u8,
    /// Largest norm2 reaching one of its keyswitches.
    pub norm2: f64,
    /// Bootstraps.
    pub pbs: u64,
    /// Index of its parameter set.
    pub set: usize,
    /// Predicted per-bootstrap error probability.
    pub p_error: f64,
}

impl CompileStats {
    /// One line: bootstraps per precision, the sets and the predicted error, e.g.
    /// `21 PBS/sample (4-bit: 11, 6-bit: 10); @p0 n=950 k=1 N=8192 (6 bits), @p1 n=771 k=1
    /// N=2048 (4 bits); p_error 9.1e-13 per PBS`.
    pub fn summary(&self) -> String {
        let by: Vec<String> = self
            .pbs_by_precision
            .iter()
            .map(|(b, n)| format!("{b}-bit: {n}"))
            .collect();
        let sets: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "@p{i} n={} k={} N={} ({} bits)",
                    p.lwe_dimension, p.glwe_dimension, p.polynomial_size, p.message_bits
                )
            })
            .collect();
        let mut pbs = if by.is_empty() {
            format!("{} PBS/sample", self.pbs)
        } else {
            format!("{} PBS/sample ({})", self.pbs, by.join(", "))
        };
        for w in &self.wop {
            pbs.push_str(&format!(
                " + {} WoP-PBS lookup(s) of {} bits on @p{}",
                w.lookups, w.bits, w.set
            ));
        }
        format!(
            "{pbs}; {}; p_error {:.1e} per PBS",
            sets.join(", "),
            self.p_error
        )
    }

    /// The widest bootstrap input, in bits (0 without bootstraps).
    pub fn max_bits(&self) -> u8 {
        let wop = self.wop.iter().map(|w| w.bits).max().unwrap_or(0);
        self.pbs_by_precision
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(wop)
    }
}

// ---------------------------------------------------------------- server artifact

/// What a server needs besides the evaluation keys: the TFHE-level program (with its
/// parameter sets) and its statistics. Holds no secret.
#[derive(Clone, Debug)]
pub struct ServerArtifact {
    program: Graph,
    program_id: u64,
    stats: CompileStats,
}

#[derive(Serialize, Deserialize)]
struct ServerFile {
    program_id: u64,
    program: serial::Program,
    stats: CompileStats,
}

impl ServerArtifact {
    /// The server part of a compiled program: its TFHE-level graph and its statistics.
    pub fn new(program: Graph, stats: CompileStats) -> Result<Self, ArtifactError> {
        if program.level != Level::Tfhe {
            return Err(ArtifactError::Invalid(
                "a server artifact holds a lowered (TFHE-level) program".into(),
            ));
        }
        Ok(ServerArtifact {
            program_id: program_id(&program)?,
            program,
            stats,
        })
    }

    /// The TFHE-level program.
    pub fn program(&self) -> &Graph {
        &self.program
    }

    /// Its parameter sets (`@p0` first).
    pub fn params(&self) -> &[ParamSet] {
        &self.program.params
    }

    /// The program id ([`program_id`]).
    pub fn program_id(&self) -> u64 {
        self.program_id
    }

    /// The compile statistics.
    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// Serializes the artifact.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        seal(
            KIND_SERVER_ARTIFACT,
            &ServerFile {
                program_id: self.program_id,
                program: to_serial(&self.program, KIND_SERVER_ARTIFACT)?,
                stats: self.stats.clone(),
            },
        )
    }

    /// Loads an artifact: checks the envelope, the version, that the program verifies at the
    /// TFHE level and that it matches its id.
    pub fn from_bytes(data: &[u8]) -> Result<Self, ArtifactError> {
        let f: ServerFile = open(KIND_SERVER_ARTIFACT, data)?;
        let program = load_graph(&f.program, KIND_SERVER_ARTIFACT)?;
        if program.level != Level::Tfhe {
            return Err(ArtifactError::Invalid(
                "the server artifact holds a tensor-level program, not a lowered one".into(),
            ));
        }
        if program_id(&program)? != f.program_id {
            return Err(ArtifactError::Invalid(
                "the program does not match its id".into(),
            ));
        }
        Ok(ServerArtifact {
            program,
            program_id: f.program_id,
            stats: f.stats,
        })
    }

    /// Checks that `keys` serve this program (same parameters, every needed key).
    pub fn check_keys(&self, keys: &CompressedServerKeys) -> Result<(), ArtifactError> {
        if fingerprints(keys.params()) != fingerprints(self.params()) {
            return Err(ArtifactError::Mismatch(
                "the evaluation keys were generated for another program's parameters".into(),
            ));
        }
        Ok(())
    }

    /// Runs every entry of `batch` (program inputs encrypted by the client) on
    /// `exec` with the evaluation keys only; `done(i)` is called after run `i`.
    pub fn run(
        &self,
        exec: &Executor,
        keys: &ServerKeys,
        batch: &EncryptedBatch,
        mut done: impl FnMut(usize),
    ) -> Result<EncryptedBatch, ArtifactError> {
        self.check_batch(batch, keys.key_id())?;
        keys.check_serves(&self.program)?;
        let want = io_specs(&self.program, false);
        let outs = io_specs(&self.program, true);
        let mut runs = Vec::with_capacity(batch.runs.len());
        for (i, run) in batch.runs.iter().enumerate() {
            let inputs = by_name(&batch.names, run, &want, "input")?;
            let out = exec
                .run(&self.program, keys, inputs)
                .map_err(|e| ArtifactError::Invalid(format!("run {}: {e}", i + 1)))?;
            runs.push(out);
            done(i);
        }
        Ok(EncryptedBatch {
            program_id: self.program_id,
            key_id: batch.key_id,
            samples: batch.samples,
            names: outs.into_iter().map(|s| s.name).collect(),
            runs,
        })
    }

    /// Checks that `batch` holds inputs for this program encrypted under the key generation
    /// `key_id` (that of the evaluation keys), before any work is done.
    pub fn check_batch(&self, batch: &EncryptedBatch, key_id: u64) -> Result<(), ArtifactError> {
        if batch.program_id != self.program_id {
            return Err(ArtifactError::Mismatch(format!(
                "the inputs were encrypted for program {:016x}, this server artifact holds program {:016x}",
                batch.program_id, self.program_id
            )));
        }
        if batch.key_id != key_id {
            return Err(ArtifactError::Mismatch(format!(
                "the inputs were encrypted with keys {:016x}, the evaluation keys are {key_id:016x} (from another `veil keygen`)",
                batch.key_id
            )));
        }
        Ok(())
    }
}

/// Reorders `values` (named by `names`) into the order of `want`.
pub fn by_name(
    names: &[String],
    values: &[Value],
    want: &[IoSpec],
    what: &str,
) -> Result<Vec<Value>, ArtifactError> {
    if names.len() != values.len() || names.len() != want.len() {
        return Err(ArtifactError::Mismatch(format!(
            "{} {what}(s) given, the program has {}",
            values.len(),
            want.len()
        )));
    }
    want.iter()
        .map(|w| {
            names
                .iter()
                .position(|n| *n == w.name)
                .map(|i| values[i].clone())
                .ok_or_else(|| {
                    ArtifactError::Mismatch(format!(
                        "no value for the program's {what} {:?}",
                        w.name
                    ))
                })
        })
        .collect()
}

/// The fingerprints of parameter sets (to compare keys with programs).
pub fn fingerprints(p: &[ParamSet]) -> Vec<u64> {
    p.iter().map(ParamSet::fingerprint).collect()
}

/// The name and type (encoding included, for encrypted values) of a program input or output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IoSpec {
    /// Name in the program.
    pub name: String,
    /// Type at the TFHE level.
    pub ty: TensorType,
}

/// The evaluation keys a program needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySpec {
    /// Parameter sets that need a bootstrap key.
    pub bsk: Vec<u32>,
    /// Keyswitch keys `(from, to)`.
    pub ksk: Vec<(KeyId, KeyId)>,
    /// WoP-PBS keys per parameter set (format 5 and later).
    #[serde(default)]
    pub wop: Vec<(u32, crate::wopbs::WopParams)>,
}

/// Why a clear tensor does not fit an input of the program ([`check_tensor`]; the message
/// names no position: the caller says which input and sample).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TensorMismatch {
    /// The tensor's shape is not the input's.
    #[error("shape {got:?}, the program takes {want:?}")]
    Shape {
        /// The tensor's shape.
        got: Vec<usize>,
        /// The input's shape.
        want: Vec<usize>,
    },
    /// An element outside the input's integer type.
    #[error("{value} does not fit {}", describe_int(*int))]
    Range {
        /// The first element that does not fit.
        value: i64,
        /// The input's element type.
        int: IntType,
    },
}

/// Checks shape and range of one input tensor.
pub fn check_tensor(t: &Tensor<i64>, s: &IoSpec) -> Result<(), TensorMismatch> {
    if t.shape != s.ty.shape.to_vec() {
        return Err(TensorMismatch::Shape {
            got: t.shape.clone(),
            want: s.ty.shape.to_vec(),
        });
    }
    if let Some(&v) = t.data.iter().find(|&&v| !s.ty.int.contains(v as i128)) {
        return Err(TensorMismatch::Range {
            value: v,
            int: s.ty.int,
        });
    }
    Ok(())
}

/// `u3 (0..=7)`.
pub fn describe_int(t: IntType) -> String {
    format!("{t} ({}..={})", t.min(), t.max())
}

/// `enc<u4>[3] under k0 (width 5)`: a type with its encoding, for people.
pub fn describe_type(t: &TensorType) -> String {
    let vis = if t.is_encrypted() { "enc" } else { "clear" };
    let mut s = format!("{vis}<{}>{:?}", t.int, t.shape);
    if let Some(e) = t.encoding {
        s.push_str(&format!(" under {} (width {})", e.key, e.width));
    }
    s
}

// ---------------------------------------------------------------- encrypted batches

/// Which side of a run an [`EncryptedBatch`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Program inputs ([`KIND_ENCRYPTED_INPUTS`]).
    Inputs,
    /// Program outputs ([`KIND_ENCRYPTED_OUTPUTS`]).
    Outputs,
}

impl Direction {
    /// The file kind.
    pub fn kind(self) -> &'static str {
        match self {
            Direction::Inputs => KIND_ENCRYPTED_INPUTS,
            Direction::Outputs => KIND_ENCRYPTED_OUTPUTS,
        }
    }
}

/// Values of several program runs (one per input sample or ML batch), encrypted except for
/// clear inputs, tagged with the program id and the key generation id.
#[derive(Debug)]
pub struct EncryptedBatch {
    /// Id of the program they are for.
    pub program_id: u64,
    /// Id of the key generation they are encrypted under.
    pub key_id: u64,
    /// Samples the runs hold (rows of the input file).
    pub samples: usize,
    /// Names of the values of one run, in order.
    pub names: Vec<String>,
    /// The values, one vector per run.
    pub runs: Vec<Vec<Value>>,
}

#[derive(Serialize, Deserialize)]
enum WireValue {
    Clear {
        shape: Vec<usize>,
        data: Vec<i64>,
    },
    /// `CtTensor::to_bytes`.
    Encrypted(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct BatchFile {
    program_id: u64,
    key_id: u64,
    samples: u64,
    names: Vec<String>,
    runs: Vec<Vec<WireValue>>,
}

impl EncryptedBatch {
    /// Serializes the batch as `direction`.
    pub fn to_bytes(&self, direction: Direction) -> Result<Vec<u8>, ArtifactError> {
        let runs = self
            .runs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| {
                        Ok(match v {
                            Value::Clear(t) => WireValue::Clear {
                                shape: t.shape.clone(),
                                data: t.data.clone(),
                            },
                            Value::Encrypted(c) => WireValue::Encrypted(c.to_bytes()?),
                        })
                    })
                    .collect::<Result<Vec<_>, ArtifactError>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        seal(
            direction.kind(),
            &BatchFile {
                program_id: self.program_id,
                key_id: self.key_id,
                samples: self.samples as u64,
                names: self.names.clone(),
                runs,
            },
        )
    }

    /// Loads a batch written as `direction`.
    pub fn from_bytes(data: &[u8], direction: Direction) -> Result<Self, ArtifactError> {
        let kind = direction.kind();
        let f: BatchFile = open(kind, data)?;
        let runs = f
            .runs
            .into_iter()
            .map(|r| {
                if r.len() != f.names.len() {
                    return Err(ArtifactError::Invalid(format!(
                        "a run holds {} values for {} names",
                        r.len(),
                        f.names.len()
                    )));
                }
                r.into_iter()
                    .map(|v| match v {
                        WireValue::Clear { shape, data } => {
                            // Checked first: `Tensor::new` multiplies the dimensions unchecked.
                            veil_ir::infer::checked_numel(&shape).map_err(|m| {
                                ArtifactError::Invalid(format!("a clear value: {m}"))
                            })?;
                            Tensor::new(shape, data)
                                .map(Value::Clear)
                                .map_err(|e| ArtifactError::Invalid(e.0))
                        }
                        WireValue::Encrypted(b) => Ok(Value::Encrypted(CtTensor::from_bytes(&b)?)),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EncryptedBatch {
            program_id: f.program_id,
            key_id: f.key_id,
            samples: f.samples as usize,
            names: f.names,
            runs,
        })
    }
}

impl EncryptedBatch {
    /// Checks the sample count against the runs, for a program whose runs hold `per_run`
    /// samples each (1 for integer programs, the batch size for ML models, whose last run is
    /// padded): see [`check_sample_count`]. A client calls it before decoding results, whose
    /// sample count the server wrote.
    pub fn check_samples(&self, per_run: usize) -> Result<(), ArtifactError> {
        check_sample_count(self.samples, self.runs.len(), per_run)
    }
}

/// Checks that `runs` program runs of `per_run` samples each hold `samples` samples:
/// `runs == ceil(samples / per_run)` (the last run may be padded). Fails with
/// [`ArtifactError::Invalid`] otherwise: a sample count that does not match its runs comes
/// from a modified or damaged file, and trusting it would drop result rows or allocate for
/// samples that do not exist.
pub fn check_sample_count(
    samples: usize,
    runs: usize,
    per_run: usize,
) -> Result<(), ArtifactError> {
    if per_run == 0 {
        return Err(ArtifactError::Invalid(
            "the program's runs hold 0 samples each; compile it again with `veil compile`".into(),
        ));
    }
    if samples.div_ceil(per_run) == runs {
        return Ok(());
    }
    let hi = runs.saturating_mul(per_run);
    let lo = hi.saturating_sub(per_run - 1).max(1);
    let expected = match runs {
        0 => "no samples".to_string(),
        _ if lo == hi => format!("{hi} sample(s)"),
        _ => format!("{lo} to {hi} samples"),
    };
    Err(ArtifactError::Invalid(format!(
        "the batch claims {samples} sample(s) but holds {runs} run(s) of {per_run} sample(s) each, that is {expected}; the file was modified or damaged: encrypt and run again (`veil encrypt`, `veil run`)"
    )))
}

impl ArtifactError {
    /// A runtime error met while loading a file of `kind`: envelope problems become
    /// [`ArtifactError::Serial`] / [`ArtifactError::WrongKind`] (with their hints), the rest
    /// [`ArtifactError::Runtime`].
    pub fn from_runtime(kind: &'static str, e: RuntimeError) -> Self {
        match e {
            RuntimeError::Serial(source) => match source {
                SerialError::Kind { found, .. } => ArtifactError::WrongKind {
                    found,
                    expected: kind,
                },
                source => ArtifactError::Serial {
                    expected: kind,
                    source,
                },
            },
            e => ArtifactError::Runtime(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_checks_kind_and_artifact_version() {
        let sealed = seal(KIND_SERVER_ARTIFACT, &7u32).unwrap();
        assert_eq!(open::<u32>(KIND_SERVER_ARTIFACT, &sealed).unwrap(), 7);
        assert_eq!(file_kind(&sealed).as_deref(), Some(KIND_SERVER_ARTIFACT));
        let e = open::<u32>(KIND_CLIENT_ARTIFACT, &sealed).unwrap_err();
        assert!(
            e.to_string().starts_with("this is a server artifact"),
            "{e}"
        );
        // A wrong artifact version inside a valid envelope.
        let inner: Versioned = decode_binary(KIND_SERVER_ARTIFACT, &sealed).unwrap();
        let old = encode_binary(
            KIND_SERVER_ARTIFACT,
            &Versioned {
                version: 0,
                body: inner.body,
            },
        )
        .unwrap();
        let e = open::<u32>(KIND_SERVER_ARTIFACT, &old).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("a server artifact (server.veil-artifact from `veil compile`) of format version 0, but this veil reads version {ARTIFACT_VERSION}")
        );
        assert_eq!(
            e.hint(),
            "compile again with `veil compile` (this veil version)"
        );
    }
}
