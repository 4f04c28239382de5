//! The client's deployment artifact: what `veil compile` writes for a client
//! ([`ClientArtifact`], `client.veil-artifact`, kind [`KIND_CLIENT_ARTIFACT`]): the parameter
//! sets, the key requirements (which bootstrap and keyswitch keys to generate), the name,
//! type and encoding of every input and output, the ML pre- and post-processing
//! ([`ClientModel`]: quantizers, output decoder, the ONNX client-side ops), the tensor-level
//! graphs before and after the passes (for `veil inspect`) and the statistics.
//!
//! The server's half ([`ServerArtifact`](veil_runtime::artifact::ServerArtifact)), the encrypted batches and the envelope live in the
//! runtime ([`veil_runtime::artifact`]), so that a server links no compiler.
//!
//! ```no_run
//! use veil_ml::artifact::{ClientArtifact, ClientModel};
//! use veil_compiler::program::{compile, CompileConfig};
//! use veil_runtime::artifact::ServerArtifact;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (graph, inputset, sample): (veil_ir::Graph, Vec<Vec<veil_ir::Tensor<i64>>>, Vec<veil_ir::Tensor<i64>>) = todo!();
//! let program = compile(&graph, &inputset, &CompileConfig::default())?;
//! let server = program.server_artifact()?;
//! let client = ClientArtifact::from_program(&program, "prog.veil", ClientModel::Integers)?;
//! let (server, client) = (
//!     ServerArtifact::from_bytes(&server.to_bytes()?)?,
//!     ClientArtifact::from_bytes(&client.to_bytes()?)?,
//! );
//! let (secret, eval) = client.keygen(42)?;                        // client
//! let batch = client.encrypt(&secret, &[sample], 1)?;
//! let exec = veil_runtime::Executor::new(0)?;                     // server
//! let out = server.run(&exec, &eval.decompress(), &batch, |_| {})?;
//! let clear = client.decrypt(&secret, &out)?;                     // client
//! # Ok(()) }
//! ```

use crate::model::argmax;
use crate::onnx::{FTensor, OnnxImport};
use crate::{ClientSpec, Matrix, PostProcess};
use serde::{Deserialize, Serialize};
use veil_compiler::program::{CompileStats, Program};
use veil_ir::serial;
use veil_ir::{Domain, DomainError, Graph, ParamSet, Tensor};
use veil_runtime::artifact::{
    by_name, check_sample_count, check_tensor, fingerprints, io_specs, load_graph, open,
    program_id, seal, to_serial, ArtifactError, EncryptedBatch, IoSpec, KeySpec,
    KIND_CLIENT_ARTIFACT,
};
use veil_runtime::{ClientKeys, CompressedServerKeys, KeyRequirements, KeygenOptions, Value};

/// Client-side pre- and post-processing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientModel {
    /// An integer program: the client encrypts integers and decrypts integers.
    Integers,
    /// A quantized ML model: floats are quantized before encryption and the decrypted integers
    /// decoded (dequantized, post-processed).
    Quantized {
        /// Input quantizer and output decoder.
        spec: Box<ClientSpec>,
        /// For imported ONNX models: the client-side tail of the model.
        onnx: Option<OnnxTail>,
    },
}

/// The client-side ops of an ONNX model (Softmax, ArgMax, classifier heads), run in float on
/// the decoded values. Stored as the original `.onnx` bytes (the client owns the model): the
/// split into server and client parts is recomputed on load, deterministically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnnxTail {
    /// The `.onnx` file.
    pub model: Vec<u8>,
    /// Shape of one sample of the value that crosses from the server to the client.
    pub cut_shape: Vec<usize>,
}

/// Everything a client needs to generate keys, encrypt inputs and decode results. Holds no
/// key; it may be public.
#[derive(Clone, Debug)]
pub struct ClientArtifact {
    /// The file the program was compiled from (for messages).
    pub source: String,
    /// Id of the program the server runs ([`ServerArtifact::program_id`](veil_runtime::artifact::ServerArtifact::program_id)).
    pub program_id: u64,
    /// Parameter sets of the program.
    pub params: Vec<ParamSet>,
    /// Evaluation keys to generate.
    pub keys: KeySpec,
    /// Program inputs in declaration order (CSV columns follow it).
    pub inputs: Vec<IoSpec>,
    /// Program outputs in order.
    pub outputs: Vec<IoSpec>,
    /// Pre- and post-processing.
    pub model: ClientModel,
    /// The tensor-level program as compiled.
    pub tensor: Graph,
    /// The tensor-level program after the passes.
    pub optimized: Graph,
    /// The compile statistics.
    pub stats: CompileStats,
    /// The intervals of the values of `tensor` the program is exact on (calibrated); samples
    /// are checked against them before encryption ([`ClientArtifact::check_domain`]).
    pub domain: Domain,
}

/// A quantized model's program takes one input of shape `[batch, input columns]` (batch at
/// least 1) and has one output; checked when an artifact is built and when one is loaded.
fn check_model_io(
    model: &ClientModel,
    inputs: &[IoSpec],
    outputs: usize,
) -> Result<(), ArtifactError> {
    if let ClientModel::Quantized { spec, .. } = model {
        let ok = spec.batch >= 1
            && inputs.len() == 1
            && inputs[0].ty.shape.to_vec() == [spec.batch, spec.input_columns()]
            && outputs == 1;
        if !ok {
            return Err(ArtifactError::Invalid(format!(
                "a quantized model takes one input of shape [{}, {}] and has one output",
                spec.batch,
                spec.input_columns()
            )));
        }
    }
    Ok(())
}

/// Decrypted results: per run, one tensor per output.
pub type Decrypted = Vec<Vec<Tensor<i64>>>;

/// What the client does with a sample that would drive a value of the program outside the
/// interval it was compiled for (its [`Domain`]): the encrypted result would be wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutOfDomain {
    /// Refuse the sample with an error naming it, the value and the interval; encrypt nothing.
    #[default]
    Error,
    /// Clamp every input (ML features: into the quantizer's calibrated range; integer inputs:
    /// into their calibrated interval), then check again: values computed from clamped
    /// inputs may still leave the domain, and are refused.
    ClampInputs,
    /// Encrypt anyway. Results may be wrong.
    Allow,
}

#[derive(Serialize, Deserialize)]
struct ClientFile {
    source: String,
    program_id: u64,
    params: Vec<ParamSet>,
    keys: KeySpec,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    model: ClientModel,
    tensor: serial::Program,
    optimized: serial::Program,
    stats: CompileStats,
    domain: Domain,
}

impl ClientArtifact {
    /// The client part of a compiled program. Inputs follow the order of the source graph.
    pub fn from_program(
        program: &Program,
        source: &str,
        model: ClientModel,
    ) -> Result<Self, ArtifactError> {
        let req = KeyRequirements::of(&program.tfhe)?;
        let tfhe_inputs = io_specs(&program.tfhe, false);
        let inputs = io_specs(&program.source, false)
            .into_iter()
            .map(|s| {
                tfhe_inputs
                    .iter()
                    .find(|t| t.name == s.name)
                    .cloned()
                    .ok_or_else(|| {
                        ArtifactError::Invalid(format!("input {:?} was lost in lowering", s.name))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_model_io(&model, &inputs, program.tfhe.outputs().len())?;
        Ok(ClientArtifact {
            source: source.to_string(),
            program_id: program_id(&program.tfhe)?,
            params: program.tfhe.params.clone(),
            keys: KeySpec {
                bsk: req.bsk.into_iter().collect(),
                ksk: req.ksk.into_iter().collect(),
                wop: req.wop.into_iter().collect(),
            },
            inputs,
            outputs: io_specs(&program.tfhe, true),
            model,
            tensor: program.source.clone(),
            optimized: program.optimized.clone(),
            stats: program.stats.clone(),
            domain: program.domain.clone(),
        })
    }

    /// The compile statistics.
    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// Serializes the artifact.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        const K: &str = KIND_CLIENT_ARTIFACT;
        seal(
            K,
            &ClientFile {
                source: self.source.clone(),
                program_id: self.program_id,
                params: self.params.clone(),
                keys: self.keys.clone(),
                inputs: self.inputs.clone(),
                outputs: self.outputs.clone(),
                model: self.model.clone(),
                tensor: to_serial(&self.tensor, K)?,
                optimized: to_serial(&self.optimized, K)?,
                stats: self.stats.clone(),
                domain: self.domain.clone(),
            },
        )
    }

    /// Loads an artifact, checking envelope, version and consistency.
    pub fn from_bytes(data: &[u8]) -> Result<Self, ArtifactError> {
        const K: &str = KIND_CLIENT_ARTIFACT;
        let f: ClientFile = open(K, data)?;
        // `ParamSet::is_secure` multiplies k by N unchecked: refuse dimensions whose product
        // overflows first (found by `tests/onnx_fuzz.rs`).
        if let Some(p) = f
            .params
            .iter()
            .find(|p| p.glwe_dimension.checked_mul(p.polynomial_size).is_none())
        {
            return Err(ArtifactError::Invalid(format!(
                "parameter set {p} has a GLWE key of k * N = {} * {} coefficients, more than this machine can address",
                p.glwe_dimension, p.polynomial_size
            )));
        }
        if let Some(p) = f.params.iter().find(|p| !p.is_secure()) {
            return Err(ArtifactError::Invalid(format!(
                "parameter set {p} is not 128-bit secure"
            )));
        }
        let n = f.params.len() as u32;
        let bad_key = f.keys.bsk.iter().any(|&p| p >= n)
            || f.keys
                .ksk
                .iter()
                .any(|(a, b)| a.param() >= n || b.param() >= n)
            || f.keys
                .wop
                .iter()
                .any(|(p, w)| f.params.get(*p as usize) != Some(&w.set));
        let bad_io = f.inputs.iter().chain(&f.outputs).any(|s| {
            s.ty.encoding.is_some_and(|e| e.key.param() >= n)
                || (s.ty.is_encrypted() && s.ty.encoding.is_none())
        });
        if bad_key || bad_io {
            return Err(ArtifactError::Invalid(
                "the client artifact names a parameter set it does not hold".into(),
            ));
        }
        check_model_io(&f.model, &f.inputs, f.outputs.len())?;
        Ok(ClientArtifact {
            source: f.source,
            program_id: f.program_id,
            params: f.params,
            keys: f.keys,
            inputs: f.inputs,
            outputs: f.outputs,
            model: f.model,
            tensor: load_graph(&f.tensor, K)?,
            optimized: load_graph(&f.optimized, K)?,
            stats: f.stats,
            domain: f.domain,
        })
    }

    /// Which samples run `r` holds, for messages: `sample 3` or `samples 5-8 (run 2)`.
    fn samples_of_run(&self, r: usize) -> String {
        let batch = self.samples_per_run().max(1);
        if batch == 1 {
            format!("sample {}", r + 1)
        } else {
            format!(
                "samples {}-{} (run {})",
                r * batch + 1,
                (r + 1) * batch,
                r + 1
            )
        }
    }

    /// Checks that no run drives a value of the program outside the interval it was compiled
    /// for (its [`Domain`]), running each through the reference interpreter: under
    /// [`OutOfDomain::Error`] the first such run is refused with the sample, the value (`%N =
    /// op`), the element and the interval; [`OutOfDomain::ClampInputs`] first clamps the
    /// inputs into their intervals; [`OutOfDomain::Allow`] checks nothing. A quantized model's
    /// run that leaves the calibrated domain is accepted only when the compiled program
    /// computes it exactly as the quantized model does in the clear
    /// ([`veil_ir::domain::check_exact`]).
    pub fn check_domain(
        &self,
        runs: &mut [Vec<Tensor<i64>>],
        policy: OutOfDomain,
    ) -> Result<(), ArtifactError> {
        if policy == OutOfDomain::Allow {
            return Ok(());
        }
        // Integer programs: every value of the source inside its calibrated interval keeps
        // every fused table inside the interval it was tabulated on. Quantized models: FHE
        // must equal the quantized model in the clear; a sample inside the calibrated domain
        // does, one outside it only if the optimized program keeps every value inside its
        // type and still gives the source's outputs (`veil_ir::domain::check_exact`).
        let checker = self
            .domain
            .checker(&self.tensor)
            .map_err(|e| ArtifactError::Invalid(format!("the program does not verify: {e}")))?;
        let typed = match &self.model {
            ClientModel::Integers => None,
            ClientModel::Quantized { .. } => Some(Domain::from_types(&self.optimized)),
        };
        let compiled = typed
            .as_ref()
            .map(|d| d.checker(&self.optimized))
            .transpose()
            .map_err(|e| ArtifactError::Invalid(format!("the program does not verify: {e}")))?;
        for (r, run) in runs.iter_mut().enumerate() {
            if policy == OutOfDomain::ClampInputs {
                match &typed {
                    // quantized features are clipped in float (`quantize_with`); here the
                    // inputs only into their types
                    Some(d) => d.clamp_inputs(&self.optimized, run),
                    None => self.domain.clamp_inputs(&self.tensor, run),
                }
            }
            let result = match &compiled {
                Some(c) => veil_ir::domain::check_exact(&checker, c, run),
                None => checker.check(run),
            };
            match result {
                Ok(_) => {}
                Err(DomainError::Outside(v)) => {
                    let why = if compiled.is_some() {
                        " and the compiled program would not compute this sample as the quantized model does"
                    } else {
                        ""
                    };
                    return Err(ArtifactError::Invalid(format!(
                        "{}: {v}{why}; nothing was encrypted. The inputset this program was compiled with did not cover this sample: compile with an inputset that does or with --domain types (exact on every value of the declared input types), or choose --out-of-domain clamp-inputs (clamp the inputs into range) or allow (results may be wrong)",
                        self.samples_of_run(r)
                    )));
                }
                Err(DomainError::Interp(e)) => {
                    return Err(ArtifactError::Invalid(format!(
                        "{}: {e}",
                        self.samples_of_run(r)
                    )))
                }
            }
        }
        Ok(())
    }

    /// Generates secret client keys and compressed evaluation keys from `seed` (equal seeds
    /// give equal keys).
    pub fn keygen(&self, seed: u128) -> Result<(ClientKeys, CompressedServerKeys), ArtifactError> {
        let ck = ClientKeys::generate(
            &self.params,
            &KeygenOptions {
                seed,
                ..Default::default()
            },
        )?;
        let req = KeyRequirements {
            bsk: self.keys.bsk.iter().copied().collect(),
            ksk: self.keys.ksk.iter().copied().collect(),
            wop: self.keys.wop.iter().cloned().collect(),
        };
        let sk = ck.server_keys(&req, None)?;
        Ok((ck, sk))
    }

    /// Checks that `keys` were generated for this program's parameters.
    pub fn check_keys(&self, keys: &ClientKeys) -> Result<(), ArtifactError> {
        if fingerprints(keys.params()) != fingerprints(&self.params) {
            return Err(ArtifactError::Mismatch(
                "the secret keys were generated for another program's parameters".into(),
            ));
        }
        Ok(())
    }

    /// Encrypts one entry of `runs` per program run (one tensor per input, in
    /// [`ClientArtifact::inputs`] order; clear inputs stay clear). `samples` is the number of
    /// samples the runs hold (ML batches may pad the last run).
    ///
    /// Every run is first checked against the program's domain
    /// ([`ClientArtifact::check_domain`] under [`OutOfDomain::Error`]): a sample the program was
    /// not compiled for is refused, never encrypted into a wrong result.
    pub fn encrypt(
        &self,
        keys: &ClientKeys,
        runs: &[Vec<Tensor<i64>>],
        samples: usize,
    ) -> Result<EncryptedBatch, ArtifactError> {
        self.encrypt_with(keys, runs, samples, OutOfDomain::Error)
    }

    /// [`ClientArtifact::encrypt`] with the out-of-domain policy `policy`.
    pub fn encrypt_with(
        &self,
        keys: &ClientKeys,
        runs: &[Vec<Tensor<i64>>],
        samples: usize,
        policy: OutOfDomain,
    ) -> Result<EncryptedBatch, ArtifactError> {
        self.check_keys(keys)?;
        // Shapes and types first (clear messages), then the domain, then encryption.
        for (r, run) in runs.iter().enumerate() {
            if run.len() != self.inputs.len() {
                return Err(ArtifactError::Invalid(format!(
                    "run {}: {} input tensor(s), the program takes {}",
                    r + 1,
                    run.len(),
                    self.inputs.len()
                )));
            }
            for (t, s) in run.iter().zip(&self.inputs) {
                check_tensor(t, s).map_err(|m| {
                    ArtifactError::Invalid(format!("run {}, input {:?}: {m}", r + 1, s.name))
                })?;
            }
        }
        let mut checked;
        let runs = if policy == OutOfDomain::Allow {
            runs
        } else {
            checked = runs.to_vec();
            self.check_domain(&mut checked, policy)?;
            &checked[..]
        };
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            let vals = run
                .iter()
                .zip(&self.inputs)
                .map(|(t, s)| {
                    Ok(match s.ty.encoding {
                        Some(enc) if s.ty.is_encrypted() => {
                            Value::Encrypted(keys.encrypt(t, s.ty.int, enc)?)
                        }
                        _ => Value::Clear(t.clone()),
                    })
                })
                .collect::<Result<Vec<_>, ArtifactError>>()?;
            out.push(vals);
        }
        Ok(EncryptedBatch {
            program_id: self.program_id,
            key_id: keys.key_id(),
            samples,
            names: self.inputs.iter().map(|s| s.name.clone()).collect(),
            runs: out,
        })
    }

    /// Decrypts the results of [`ServerArtifact::run`](veil_runtime::artifact::ServerArtifact::run): one tensor per output per run.
    ///
    /// A decrypted value outside its output's declared type or outside the interval the
    /// program computes for it is an error: it means a noise failure, a fault or tampering, so
    /// the result must not be trusted ([`ClientArtifact::decrypt_lenient`] reports instead).
    pub fn decrypt(
        &self,
        keys: &ClientKeys,
        batch: &EncryptedBatch,
    ) -> Result<Vec<Vec<Tensor<i64>>>, ArtifactError> {
        let (out, anomalies) = self.decrypt_lenient(keys, batch)?;
        match anomalies.into_iter().next() {
            Some(a) => Err(ArtifactError::Invalid(a)),
            None => Ok(out),
        }
    }

    /// [`ClientArtifact::decrypt`] that returns the decrypted values together with one message
    /// per output that holds a value outside its declared type or compiled interval.
    pub fn decrypt_lenient(
        &self,
        keys: &ClientKeys,
        batch: &EncryptedBatch,
    ) -> Result<(Decrypted, Vec<String>), ArtifactError> {
        self.check_keys(keys)?;
        if batch.program_id != self.program_id {
            return Err(ArtifactError::Mismatch(format!(
                "the results come from program {:016x}, this client artifact is for program {:016x}",
                batch.program_id, self.program_id
            )));
        }
        if batch.key_id != keys.key_id() {
            return Err(ArtifactError::Mismatch(format!(
                "the results are encrypted under keys {:016x}, these secret keys are {:016x} (from another `veil keygen`)",
                batch.key_id,
                keys.key_id()
            )));
        }
        // The sample count is the server's word: check it before anything trusts it.
        batch.check_samples(self.samples_per_run())?;
        let intervals = self.output_intervals();
        let mut anomalies = Vec::new();
        let out = batch
            .runs
            .iter()
            .enumerate()
            .map(|(r, run)| {
                let vals = by_name(&batch.names, run, &self.outputs, "output")?;
                vals.iter()
                    .zip(&self.outputs)
                    .zip(&intervals)
                    .map(|((v, s), interval)| {
                        let t = match v {
                            Value::Clear(t) => t.clone(),
                            Value::Encrypted(c) => keys.decrypt(c, s.ty.int)?,
                        };
                        if t.shape != s.ty.shape {
                            return Err(ArtifactError::Invalid(format!(
                                "output {:?} has shape {:?}, the program declares {:?}",
                                s.name, t.shape, s.ty.shape
                            )));
                        }
                        let (lo, hi) = interval.unwrap_or((s.ty.int.min() as i64, s.ty.int.max() as i64));
                        let (lo, hi) = (lo.max(s.ty.int.min() as i64), hi.min(s.ty.int.max() as i64));
                        if let Some(x) = t.data.iter().find(|&&x| x < lo || x > hi) {
                            anomalies.push(format!(
                                "{}, output {:?}: decrypted {x}, outside {lo}..={hi}, the values the program computes for it: a noise failure, a fault or tampering; do not trust this result",
                                self.samples_of_run(r),
                                s.name
                            ));
                        }
                        Ok(t)
                    })
                    .collect()
            })
            .collect::<Result<Vec<_>, ArtifactError>>()?;
        Ok((out, anomalies))
    }

    /// Per output (in order), the interval the program computes for it, when the domain has
    /// one: that of the output's operand in the source graph (integer programs).
    fn output_intervals(&self) -> Vec<Option<(i64, i64)>> {
        if matches!(self.model, ClientModel::Quantized { .. }) {
            return vec![None; self.outputs.len()];
        }
        let g = &self.tensor;
        let numbers = g.value_numbers();
        self.outputs
            .iter()
            .map(|s| {
                let o = g.outputs().into_iter().find(
                    |&o| matches!(g.op(o), veil_ir::Op::Output { name } if *name == s.name),
                )?;
                let x = *g.operands(o).first()?;
                self.domain.interval(*numbers.get(&x)?)
            })
            .collect()
    }

    /// Samples one program run holds: 1 for integer programs, the batch size for ML models
    /// (whose last run is padded).
    pub fn samples_per_run(&self) -> usize {
        match &self.model {
            ClientModel::Integers => 1,
            ClientModel::Quantized { spec, .. } => spec.batch,
        }
    }

    /// Columns of one input row: `(input name, element count)` per input, in order (for
    /// [`ClientModel::Quantized`]: one input of `n_features` float columns).
    pub fn columns(&self) -> Vec<(String, usize)> {
        match &self.model {
            ClientModel::Integers => self
                .inputs
                .iter()
                .map(|s| (s.name.clone(), s.ty.numel()))
                .collect(),
            ClientModel::Quantized { spec, .. } => vec![("features".into(), spec.n_features)],
        }
    }

    /// Quantizes float feature rows into program runs (ML models only); features outside
    /// the quantizer's calibrated range are clipped (see [`ClientArtifact::quantize_with`]).
    pub fn quantize(&self, rows: &Matrix) -> Result<Vec<Vec<Tensor<i64>>>, ArtifactError> {
        self.quantize_with(rows, OutOfDomain::ClampInputs)
    }

    /// [`ClientArtifact::quantize`] under an out-of-domain policy: with
    /// [`OutOfDomain::Error`] a feature outside the quantizer's calibrated range (which would
    /// be clipped, silently changing the sample) is refused with its row, feature and range.
    pub fn quantize_with(
        &self,
        rows: &Matrix,
        policy: OutOfDomain,
    ) -> Result<Vec<Vec<Tensor<i64>>>, ArtifactError> {
        if let (ClientModel::Quantized { spec, .. }, OutOfDomain::Error) = (&self.model, policy) {
            // Rank-encoded tree features have no calibrated range: every value has a rank.
            let rows_to_check = if spec.bins.is_some() { 0 } else { rows.rows() };
            let channels = spec.n_features;
            for r in 0..rows_to_check {
                for (f, &x) in rows.row(r).iter().enumerate() {
                    let (lo, hi) = spec.input.float_range(f % channels.max(1));
                    if !(lo..=hi).contains(&x) {
                        return Err(ArtifactError::Invalid(format!(
                            "sample {}, feature {}: {x} is outside {lo:.6}..={hi:.6}, the range the model was calibrated on; nothing was encrypted. Calibrate with data that covers it, or choose --out-of-domain clamp-inputs (clip it into range) or allow (results may be wrong)",
                            r + 1,
                            f + 1
                        )));
                    }
                }
            }
        }
        match &self.model {
            ClientModel::Quantized { spec, .. } => Ok(spec
                .encode(rows)
                .map_err(|e| ArtifactError::Invalid(e.to_string()))?
                .into_iter()
                .map(|t| vec![t])
                .collect()),
            ClientModel::Integers => Err(ArtifactError::Invalid(
                "this program takes integers, not float features".into(),
            )),
        }
    }

    /// Decodes decrypted outputs into per-sample predictions: integers for integer programs;
    /// dequantized, post-processed values for ML models (with the ONNX model's own outputs for
    /// imported models).
    pub fn decode(
        &self,
        outputs: &[Vec<Tensor<i64>>],
        samples: usize,
    ) -> Result<Predictions, ArtifactError> {
        check_sample_count(samples, outputs.len(), self.samples_per_run())?;
        match &self.model {
            ClientModel::Integers => {
                let names = self.outputs.iter().map(|s| s.name.clone()).collect();
                let shapes = self.outputs.iter().map(|s| s.ty.shape.to_vec()).collect();
                let rows = outputs
                    .iter()
                    .map(|run| {
                        run.iter()
                            .map(|t| t.data.iter().map(|&v| Number::Int(v)).collect())
                            .collect()
                    })
                    .collect();
                Ok(Predictions {
                    names,
                    shapes,
                    rows,
                })
            }
            ClientModel::Quantized { spec, onnx } => {
                let flat: Vec<Tensor<i64>> = outputs
                    .iter()
                    .map(|run| {
                        run.first().cloned().ok_or_else(|| {
                            ArtifactError::Invalid("a run returned no output".into())
                        })
                    })
                    .collect::<Result<_, _>>()?;
                // Every sample decodes from at least one output value: the values the runs
                // really hold bound what is allocated for the samples.
                let held: usize = flat.iter().map(|t| t.data.len()).sum();
                if samples > held {
                    return Err(ArtifactError::Invalid(format!(
                        "{samples} samples claimed, but the runs hold only {held} output values; decrypt the results of `veil run` for this client artifact"
                    )));
                }
                let dec = spec
                    .decode(&flat, samples)
                    .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
                match onnx {
                    None => Ok(builtin_predictions(spec.output.post, &dec)),
                    Some(tail) => onnx_predictions(tail, &dec),
                }
            }
        }
    }
}

fn builtin_predictions(post: PostProcess, dec: &[Vec<f64>]) -> Predictions {
    let floats = |v: &[f64]| v.iter().map(|&x| Number::Float(x)).collect::<Vec<_>>();
    if post == PostProcess::Identity {
        let w = dec.first().map_or(0, |r| r.len());
        return Predictions {
            names: vec!["value".into()],
            shapes: vec![if w == 1 { vec![] } else { vec![w] }],
            rows: dec.iter().map(|r| vec![floats(r)]).collect(),
        };
    }
    let w = dec.first().map_or(0, |r| r.len());
    Predictions {
        names: vec!["label".into(), "scores".into()],
        shapes: vec![vec![], vec![w]],
        rows: dec
            .iter()
            .map(|r| vec![vec![Number::Int(argmax(r) as i64)], floats(r)])
            .collect(),
    }
}

fn onnx_err(e: crate::onnx::OnnxError) -> ArtifactError {
    ArtifactError::Invalid(format!("ONNX post-processing: {e}"))
}

fn onnx_predictions(tail: &OnnxTail, dec: &[Vec<f64>]) -> Result<Predictions, ArtifactError> {
    let import = OnnxImport::from_bytes(&tail.model).map_err(onnx_err)?;
    let g = import.graph();
    let split = crate::onnx::compile::split(g).map_err(onnx_err)?;
    let rows = dec.len();
    let w = tail
        .cut_shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&w| dec.iter().all(|r| r.len() >= w))
        .ok_or_else(|| {
            ArtifactError::Invalid(format!(
                "the model's client part reads values of shape {:?} per sample, the program decodes {} per sample; compile the model again with `veil compile`",
                tail.cut_shape,
                dec.first().map_or(0, |r| r.len())
            ))
        })?;
    let mut shape = vec![rows];
    shape.extend_from_slice(&tail.cut_shape);
    let mut data = Vec::with_capacity(rows.saturating_mul(w));
    for r in dec {
        data.extend_from_slice(&r[..w]);
    }
    let cut = FTensor::new(shape, data).map_err(|e| ArtifactError::Invalid(e.0))?;
    let mut env = g.consts.clone();
    env.insert(split.cut.clone(), cut);
    crate::onnx::eval::run_nodes(split.client.iter().map(|&i| &g.nodes[i]), &mut env)
        .map_err(onnx_err)?;
    let mut p = Predictions {
        names: Vec::new(),
        shapes: Vec::new(),
        rows: vec![Vec::new(); rows],
    };
    for name in &g.outputs {
        let t = env.remove(name).ok_or_else(|| {
            onnx_err(crate::onnx::OnnxError::Malformed(format!(
                "output `{name}` was not computed"
            )))
        })?;
        if t.shape.first() != Some(&rows) {
            return Err(ArtifactError::Invalid(format!(
                "ONNX output `{name}` has shape {:?}, expected {rows} samples first",
                t.shape
            )));
        }
        let per = t.data.len() / rows.max(1);
        for (i, chunk) in t.data.chunks(per.max(1)).take(rows).enumerate() {
            p.rows[i].push(chunk.iter().map(|&x| Number::Float(x)).collect());
        }
        p.names.push(name.clone());
        p.shapes.push(t.shape[1..].to_vec());
    }
    Ok(p)
}

/// Builds the ONNX tail of an imported model: the `.onnx` bytes and the shape of one sample of
/// the value crossing to the client, found by a float run of `row`.
pub fn onnx_tail(
    bytes: Vec<u8>,
    import: &OnnxImport,
    cut: &str,
    row: &[f64],
) -> Result<OnnxTail, ArtifactError> {
    let one = Matrix::new(1, row.len(), row.to_vec())
        .map_err(|e| ArtifactError::Invalid(e.to_string()))?;
    let x = crate::onnx::compile::batch_tensor(&one, import.sample_shape()).map_err(onnx_err)?;
    let env = crate::onnx::eval::run_graph(import.graph(), x).map_err(onnx_err)?;
    let t = env
        .get(cut)
        .ok_or_else(|| ArtifactError::Invalid(format!("`{cut}` was not computed")))?;
    Ok(OnnxTail {
        model: bytes,
        cut_shape: t.shape[1..].to_vec(),
    })
}

/// A number in [`Predictions`]: an integer (integer programs, labels) or a float.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(v) => write!(f, "{v}"),
            Number::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Decoded results: named fields, each a flattened tensor per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// Field names (program outputs; `label`/`scores`/`value` or the ONNX outputs for models).
    pub names: Vec<String>,
    /// Shape of each field for one sample (`[]`: a scalar).
    pub shapes: Vec<Vec<usize>>,
    /// Per sample, per field, the flattened values.
    pub rows: Vec<Vec<Vec<Number>>>,
}

impl Predictions {
    /// CSV: a header (`name` for scalars, `name[i]` for the elements of tensors), then one row
    /// per sample.
    pub fn to_csv(&self) -> String {
        let mut head = Vec::new();
        for (n, s) in self.names.iter().zip(&self.shapes) {
            let len: usize = s.iter().product();
            if s.is_empty() {
                head.push(n.clone());
            } else {
                head.extend((0..len).map(|i| format!("{n}[{i}]")));
            }
        }
        let mut out = head.join(",");
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().flatten().map(|v| v.to_string()).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// JSON: an array with one object per sample, `{name: value}` (arrays nested by shape).
    pub fn to_json(&self) -> serde_json::Value {
        fn nest(shape: &[usize], v: &[Number]) -> serde_json::Value {
            match shape.split_first() {
                None => serde_json::to_value(v.first().copied().unwrap_or(Number::Int(0)))
                    .unwrap_or(serde_json::Value::Null),
                Some((&d, rest)) => {
                    let per = v.len() / d.max(1);
                    serde_json::Value::Array(
                        (0..d)
                            .map(|i| nest(rest, &v[i * per..(i + 1) * per]))
                            .collect(),
                    )
                }
            }
        }
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let m = self
                        .names
                        .iter()
                        .zip(&self.shapes)
                        .zip(r)
                        .map(|((n, s), v)| (n.clone(), nest(s, v)))
                        .collect();
                    serde_json::Value::Object(m)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_compiler::program::{compile, CompileConfig};
    use veil_runtime::artifact::{file_kind, Direction, ServerArtifact, KIND_SERVER_ARTIFACT};
    use veil_runtime::Executor;

    const SRC: &str = "veil 1\n%x = input \"x\" : enc<u3>[3]\n%k = input \"k\" : clear<u2>\n\
        %y = add %x, %k : enc<u4>[3]\noutput \"y\", %y\n";

    fn program() -> Program {
        let g = veil_ir::text::parse(SRC).unwrap();
        let inputset: Vec<Vec<Tensor<i64>>> = (0..8)
            .map(|i| {
                vec![
                    Tensor::new(vec![3], vec![i % 8, (i + 3) % 8, 7 - i % 8]).unwrap(),
                    Tensor::scalar(i % 4),
                ]
            })
            .collect();
        compile(&g, &inputset, &CompileConfig::default()).unwrap()
    }

    fn err<T: std::fmt::Debug>(r: Result<T, ArtifactError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn round_trips_and_runs() {
        let p = program();
        let server = p.server_artifact().unwrap();
        let client = ClientArtifact::from_program(&p, "t.veil", ClientModel::Integers).unwrap();
        let sb = server.to_bytes().unwrap();
        let cb = client.to_bytes().unwrap();
        assert_eq!(file_kind(&sb).as_deref(), Some(KIND_SERVER_ARTIFACT));
        let server = ServerArtifact::from_bytes(&sb).unwrap();
        let client = ClientArtifact::from_bytes(&cb).unwrap();
        // Canonical: loading and saving again gives the same bytes.
        assert_eq!(server.to_bytes().unwrap(), sb);
        assert_eq!(client.to_bytes().unwrap(), cb);
        assert_eq!(server.program_id(), client.program_id);
        assert_eq!(client.columns(), vec![("x".into(), 3), ("k".into(), 1)]);
        assert_eq!(server.stats(), client.stats());

        let (ck, eval) = client.keygen(7).unwrap();
        server.check_keys(&eval).unwrap();
        let x = Tensor::new(vec![3], vec![1, 5, 7]).unwrap();
        let runs = vec![
            vec![x.clone(), Tensor::scalar(3)],
            vec![x, Tensor::scalar(0)],
        ];
        let batch = client.encrypt(&ck, &runs, 2).unwrap();
        let b = batch.to_bytes(Direction::Inputs).unwrap();
        let batch = EncryptedBatch::from_bytes(&b, Direction::Inputs).unwrap();
        let exec = Executor::new(1).unwrap();
        let mut done = 0;
        let out = server
            .run(&exec, &eval.decompress(), &batch, |_| done += 1)
            .unwrap();
        assert_eq!(done, 2);
        let ob = out.to_bytes(Direction::Outputs).unwrap();
        let out = EncryptedBatch::from_bytes(&ob, Direction::Outputs).unwrap();
        let dec = client.decrypt(&ck, &out).unwrap();
        assert_eq!(dec[0][0].data, vec![4, 8, 10]);
        assert_eq!(dec[1][0].data, vec![1, 5, 7]);
        let pred = client.decode(&dec, 2).unwrap();
        assert_eq!(pred.to_csv(), "y[0],y[1],y[2]\n4,8,10\n1,5,7\n");
        assert_eq!(pred.to_json()[0]["y"], serde_json::json!([4, 8, 10]));

        // Keys of another keygen: refused by the server and by the client.
        let (ck2, eval2) = client.keygen(8).unwrap();
        let e = err(server.run(&exec, &eval2.decompress(), &batch, |_| {}));
        assert!(e.contains("from another `veil keygen`"), "{e}");
        let e = err(client.decrypt(&ck2, &out));
        assert!(e.contains("from another `veil keygen`"), "{e}");
        // Out-of-range input.
        let bad = vec![vec![
            Tensor::new(vec![3], vec![8, 0, 0]).unwrap(),
            Tensor::scalar(0),
        ]];
        let e = err(client.encrypt(&ck, &bad, 1));
        assert_eq!(e, "run 1, input \"x\": 8 does not fit u3 (0..=7)");
    }

    #[test]
    fn loading_rejects_damaged_files() {
        let p = program();
        let sb = p.server_artifact().unwrap().to_bytes().unwrap();
        let cb = ClientArtifact::from_program(&p, "t.veil", ClientModel::Integers)
            .unwrap()
            .to_bytes()
            .unwrap();
        // Tampered byte in the payload.
        let mut t = sb.clone();
        let i = t.len() - 10;
        t[i] ^= 1;
        assert_eq!(
            err(ServerArtifact::from_bytes(&t)),
            "corrupted veil data: payload checksum mismatch"
        );
        // Wrong kind, both ways.
        let e = err(ServerArtifact::from_bytes(&cb));
        assert!(
            e.starts_with("this is a client artifact") && e.contains("but a server artifact"),
            "{e}"
        );
        assert!(err(ClientArtifact::from_bytes(&sb)).starts_with("this is a server artifact"));
        // Wrong envelope version.
        let mut v = sb.clone();
        v[4] = 9;
        assert_eq!(
            err(ServerArtifact::from_bytes(&v)),
            format!(
                "unsupported format version 9: this veil reads version {}",
                veil_ir::serial::BINARY_VERSION
            )
        );
        // A wrong artifact version inside a valid envelope: see the runtime's artifact tests.
        // Truncated anywhere.
        for cut in [0, 3, 8, 12, 30, sb.len() / 2, sb.len() - 1] {
            let e = err(ServerArtifact::from_bytes(&sb[..cut]));
            assert!(e.starts_with("truncated veil data"), "cut {cut}: {e}");
        }
        for cut in [20, cb.len() - 1] {
            assert!(err(ClientArtifact::from_bytes(&cb[..cut])).starts_with("truncated"));
        }
        // Not a veil file.
        let e = ServerArtifact::from_bytes(b"x,y\n1,2\n").unwrap_err();
        assert!(e.to_string().starts_with("not a veil file"), "{e}");
        assert!(e.hint().contains("a server artifact"), "{}", e.hint());
    }

    #[test]
    fn builtin_model_predictions() {
        let dec = vec![vec![0.1, 0.7, 0.2], vec![0.5, 0.2, 0.3]];
        let p = builtin_predictions(PostProcess::Softmax, &dec);
        assert_eq!(
            p.to_csv(),
            "label,scores[0],scores[1],scores[2]\n1,0.1,0.7,0.2\n0,0.5,0.2,0.3\n"
        );
        assert_eq!(p.to_json()[1]["label"], 0);
        let p = builtin_predictions(PostProcess::Identity, &[vec![2.5], vec![-1.0]]);
        assert_eq!(p.to_csv(), "value\n2.5\n-1\n");
        assert_eq!(p.to_json()[0]["value"], 2.5);
    }

    #[test]
    fn batches_check_kind_and_truncation() {
        let p = program();
        let client = ClientArtifact::from_program(&p, "t.veil", ClientModel::Integers).unwrap();
        let (ck, _) = client.keygen(1).unwrap();
        let x = Tensor::new(vec![3], vec![1, 2, 3]).unwrap();
        let batch = client
            .encrypt(&ck, &[vec![x, Tensor::scalar(1)]], 1)
            .unwrap();
        let b = batch.to_bytes(Direction::Inputs).unwrap();
        let e = err(EncryptedBatch::from_bytes(&b, Direction::Outputs));
        assert!(e.starts_with("this is encrypted inputs"), "{e}");
        let e = err(EncryptedBatch::from_bytes(
            &b[..b.len() - 100],
            Direction::Inputs,
        ));
        assert!(e.starts_with("truncated veil data"), "{e}");
    }
}
