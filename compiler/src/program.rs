//! The embedder API: compile a tensor-level graph once, then generate keys, encrypt, run,
//! decrypt or simulate.
//!
//! ```no_run
//! use veil_compiler::program::{compile, CompileConfig};
//! use veil_ir::{Builder, IntType, Tensor};
//! let b = Builder::new();
//! let x = b.input_encrypted("x", &[4], IntType::unsigned(3)).unwrap();
//! let y = b.tlu(x, |v| v * v).unwrap();
//! b.output("y", y).unwrap();
//! let graph = b.finish().unwrap();
//! let inputset: Vec<Vec<Tensor<i64>>> = (0..8)
//!     .map(|i| vec![Tensor::new(vec![4], vec![i % 8; 4]).unwrap()])
//!     .collect();
//! let program = compile(&graph, &inputset, &CompileConfig::default()).unwrap();
//! let (client, server) = program.keygen(42).unwrap();
//! let x = Tensor::new(vec![4], vec![1, 2, 3, 7]).unwrap();
//! let ct = program.encrypt(&client, &[x]).unwrap();
//! let out = program.run(&server, ct).unwrap();
//! assert_eq!(program.decrypt(&client, &out).unwrap()[0].data, vec![1, 4, 9, 49]);
//! ```

use crate::lower::{lower, LowerError, LowerStats, OptimizerChooser};
use crate::optimizer::{self, ErrorTarget};
use crate::passes::{PassContext, PassError, PassManager, PipelineReport, DEFAULT_PIPELINE};
use std::sync::OnceLock;
use std::time::Instant;
use thiserror::Error;
use veil_ir::{Graph, KeyId, Tensor};
pub use veil_runtime::artifact::{CompileStats, DomainPolicy, InputInterval, PartitionStats};
use veil_runtime::{ClientKeys, KeygenOptions, ServerKeys, Value};

/// Options of [`compile`].
#[derive(Clone, Debug)]
pub struct CompileConfig {
    /// Error target of the program (per bootstrap and/or global; the stricter wins).
    pub error: ErrorTarget,
    /// Tensor-level pass pipeline, by registered pass name.
    pub pipeline: Vec<String>,
    /// Dump the IR after every pass into [`Program::report`].
    pub print_after_all: bool,
    /// Dump the IR after these passes.
    pub print_after: Vec<String>,
    /// One parameter set for every bootstrap (Concrete's mono-parameter strategy) instead of
    /// one per partition where that is cheaper.
    pub single_parameter_set: bool,
    /// Which inputs the program is made exact for ([`DomainPolicy`]): the calibrated
    /// intervals of the inputset (the default) or every value of the declared input types.
    pub domain: DomainPolicy,
    /// What the parameter optimizer minimises ([`optimizer::Objective`]): by default
    /// `Latency`, the sets that measured fastest on this runtime; `Model` (Concrete's cost
    /// model) for comparisons with Concrete's optimizer.
    pub objective: optimizer::Objective,
}

pub use crate::optimizer::DEFAULT_P_ERROR;

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            error: ErrorTarget::p_error(DEFAULT_P_ERROR),
            pipeline: DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect(),
            print_after_all: false,
            print_after: Vec::new(),
            single_parameter_set: false,
            domain: DomainPolicy::Calibrated,
            objective: optimizer::COMPILE_OBJECTIVE,
        }
    }
}

/// Why compilation or execution failed.
#[derive(Debug, Error)]
pub enum ProgramError {
    /// The input graph is invalid.
    #[error("invalid program: {0}")]
    Invalid(String),
    /// The error target is not a pair of probabilities the optimizer accepts.
    #[error("error target: {0}")]
    Target(#[from] optimizer::OptimizeError),
    /// A tensor-level pass failed.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// Lowering failed.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// The runtime failed (keys, encryption, execution).
    #[error(transparent)]
    Runtime(#[from] veil_runtime::RuntimeError),
    /// The reference interpreter failed (e.g. an input outside its type).
    #[error("{0}")]
    Interp(String),
    /// A sample leaves the domain the program was compiled for; nothing was encrypted.
    #[error("{0}; nothing was encrypted. The inputset this program was compiled with did not cover this sample: compile with one that does or with `DomainPolicy::Types` (exact on every value of the declared input types), or encrypt with `Program::encrypt_unchecked` (results may be wrong)")]
    OutOfDomain(veil_ir::DomainViolation),
}

impl ProgramError {
    /// The error of a failed domain check: [`ProgramError::OutOfDomain`] for a value outside
    /// its interval, [`ProgramError::Interp`] when the interpreter refused the sample.
    pub fn from_domain(e: veil_ir::DomainError) -> Self {
        domain_error(e)
    }
}

fn domain_error(e: veil_ir::DomainError) -> ProgramError {
    match e {
        veil_ir::DomainError::Outside(v) => ProgramError::OutOfDomain(v),
        veil_ir::DomainError::Interp(e) => ProgramError::Interp(e.to_string()),
    }
}

/// The intervals [`Program::check_domain`] holds a sample to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainCheck {
    /// Every value of the source program inside the interval calibrated on the inputset
    /// ([`Program::domain`]): the compiled program is exact on such samples.
    Calibrated,
    /// Every value of the optimized program inside its (narrowed) type: the encrypted program
    /// computes what the optimized program computes in the clear (which may differ from the
    /// source where a table was clamped outside its calibrated interval; see
    /// [`DomainCheck::Exact`]).
    Types,
    /// Exactly the samples the compiled program computes right
    /// ([`veil_ir::domain::check_exact`]): every value of the source inside its calibrated
    /// interval, or, for a sample that leaves it, every value of the optimized program inside
    /// its type and the optimized program's outputs equal to the source's. What quantized
    /// models are checked with: FHE equals the quantized model in the clear on every sample
    /// accepted.
    Exact,
}

/// A compiled program: the graphs of every stage and its statistics.
#[derive(Clone, Debug)]
pub struct Program {
    /// The tensor-level input graph.
    pub source: Graph,
    /// The tensor-level graph after the pass pipeline.
    pub optimized: Graph,
    /// The TFHE-level graph the runtime executes.
    pub tfhe: Graph,
    /// The intervals of the values of `source` that the program is exact on (calibrated on
    /// the inputset before any rewrite): a sample that keeps every value of `source` inside
    /// them keeps every fused table inside the interval it was tabulated on. A sample that
    /// leaves them must be refused before it is encrypted ([`veil_ir::Domain::check`]).
    pub domain: veil_ir::Domain,
    /// The intervals of the values of `optimized`: their (narrowed) types, what
    /// [`DomainCheck::Types`] holds a sample to (computed once, not per sample).
    pub type_domain: veil_ir::Domain,
    /// Statistics before keygen.
    pub stats: CompileStats,
    /// Per-pass report (times, statistics, IR dumps).
    pub report: PipelineReport,
    /// The domain checkers, prepared on first use ([`Program::check_domain`]).
    pub checkers: DomainCheckers,
}

/// The two domain checkers of a [`Program`] ([`DomainCheck::Calibrated`] on `source` and
/// `domain`, [`DomainCheck::Types`] on `optimized` and `type_domain`), each prepared for the
/// interpreter on its first use and then reused, so that checking a sample runs the sample
/// and nothing else. A checker keeps copies of the graph and domain it was prepared from:
/// change a program's graphs or domains only on a fresh clone (a clone starts empty).
#[derive(Default)]
pub struct DomainCheckers {
    calibrated: OnceLock<Result<veil_ir::DomainChecker<'static>, String>>,
    types: OnceLock<Result<veil_ir::DomainChecker<'static>, String>>,
}

impl Clone for DomainCheckers {
    fn clone(&self) -> Self {
        DomainCheckers::default()
    }
}

impl std::fmt::Debug for DomainCheckers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainCheckers")
            .field("calibrated", &self.calibrated.get().is_some())
            .field("types", &self.types.get().is_some())
            .finish()
    }
}

/// Compiles `graph` (tensor level): runs the pass pipeline (calibrated on `inputset`, one
/// sample = one tensor per input), lowers to the TFHE level and chooses parameters.
pub fn compile(
    graph: &Graph,
    inputset: &[Vec<Tensor<i64>>],
    config: &CompileConfig,
) -> Result<Program, ProgramError> {
    let start = Instant::now();
    veil_ir::verify::verify(graph).map_err(|e| ProgramError::Invalid(e.to_string()))?;
    let mut optimized = graph.clone();
    let mut pm = PassManager::from_names(&config.pipeline)?;
    pm.printer(veil_ir::text::print)
        .print_after_all(config.print_after_all);
    for p in &config.print_after {
        pm.print_after(p);
    }
    // `types`: no calibration, intervals propagated from the declared input types.
    let calibrate = config.domain == DomainPolicy::Calibrated && !inputset.is_empty();
    let mut cx = PassContext {
        inputset: calibrate.then(|| inputset.to_vec()),
        error: config.error,
        ..Default::default()
    };
    // The rewrite prices bootstraps at the program's own error target (the count of
    // bootstraps is not known yet).
    cx.rewrite.p_error = config.error.per_bootstrap(0)?;
    let report = pm.run(&mut optimized, &mut cx)?;
    // The first calibration is of the graph as given (bit widths narrow types in place and
    // keep handles), so its ranges are those of `graph`'s values.
    let domain = veil_ir::Domain::from_ranges(
        graph,
        cx.source_ranges
            .iter()
            .flat_map(|r| r.iter())
            .filter(|(v, _)| graph.contains(*v))
            .map(|(v, r)| (v, (r.lo, r.hi))),
    );

    let chooser =
        OptimizerChooser::new(config.error, config.single_parameter_set, config.objective);
    let lowered = lower(&optimized, &chooser)?;
    let mut stats = make_stats(
        &lowered.program,
        &lowered.stats,
        chooser.into_solution(),
        start,
    );
    stats.domain = config.domain;
    stats.input_domain = input_intervals(graph, &domain);
    if crate::passes::deviation::has_approx_rounds(graph) {
        if let Some(ranges) = &cx.source_ranges {
            let dev = crate::passes::deviation::approx_deviations(graph, ranges);
            stats.approx_deviation = graph
                .outputs()
                .into_iter()
                .map(|o| dev.of(o).clamp(0, i64::MAX as i128) as i64)
                .collect();
        }
    }
    Ok(Program {
        source: graph.clone(),
        type_domain: veil_ir::Domain::from_types(&optimized),
        optimized,
        tfhe: lowered.program,
        domain,
        stats,
        report,
        checkers: DomainCheckers::default(),
    })
}

fn make_stats(
    g: &Graph,
    l: &LowerStats,
    sol: Option<optimizer::Solution>,
    start: Instant,
) -> CompileStats {
    let params = g.params.clone();
    let partitions: Vec<PartitionStats> = l
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| PartitionStats {
            precision: p.precision,
            norm2: p.norm2,
            pbs: p.tlus,
            set: l.partition_sets[i],
            p_error: sol
                .as_ref()
                .map_or(params[l.partition_sets[i]].p_error, |s| {
                    s.partition_p_errors[i]
                }),
        })
        .collect();
    // Evaluation keys: a bootstrap key per set that bootstraps, a keyswitch key per key pair.
    let keys = veil_runtime::KeyRequirements::of(g).ok();
    let (mut bsk, mut ksk) = (0, 0);
    if let Some(k) = &keys {
        for &s in &k.bsk {
            bsk += optimizer::keys::key_sizes(&params[s as usize]).fourier_bsk_bytes;
        }
        let dim = |key: KeyId| {
            let p = &params[key.param() as usize];
            match key {
                KeyId::Big(_) => p.big_lwe_dimension(),
                KeyId::Small(_) => p.lwe_dimension,
            }
        };
        for &(from, to) in &k.ksk {
            let set = &params[to.param() as usize];
            // KS32 keys (into a KS32 set's small key) hold 32-bit words.
            let q = match to {
                KeyId::Small(_) => set.ks_modulus,
                KeyId::Big(_) => veil_ir::KsModulus::Q64,
            };
            ksk += optimizer::keys::ksk_bytes_mod(q, dim(from), dim(to), set.ks_level);
        }
    }
    let (mut cost, mut p_error, mut global_p_error) = match &sol {
        Some(s) => (s.cost, s.p_error, s.global_p_error),
        None if l.partitions.is_empty() && !l.wop.is_empty() => (0.0, 0.0, 0.0),
        None => {
            let p = params.first().map_or(0.0, |p| p.p_error);
            (0.0, p, p)
        }
    };
    let wop: Vec<veil_runtime::artifact::WopStats> = l
        .wop
        .iter()
        .map(|w| {
            let e = optimizer::wop::estimate(&w.params, w.bits, w.p_target);
            cost += e.cost * w.lookups as f64;
            p_error = p_error.max(e.p_error);
            global_p_error =
                1.0 - (1.0 - global_p_error) * (1.0 - e.p_error).powf(w.lookups as f64);
            // The bootstrap key, the big-to-small keyswitch key and the PFPKS list; seeded
            // bootstrap and keyswitch keys keep only their bodies.
            let key = optimizer::keys::key_sizes(&w.params.set);
            let k1 = w.params.set.glwe_dimension as u64 + 1;
            let n1 = w.params.set.lwe_dimension as u64 + 1;
            let pfpksk = w.params.pfpksk_bytes();
            veil_runtime::artifact::WopStats {
                bits: w.bits,
                set: w.set,
                lookups: w.lookups,
                pfks: (w.params.pfks_base_log, w.params.pfks_level),
                cbs: (w.params.cbs_base_log, w.params.cbs_level),
                out_bits: w.params.out_bits,
                keyswitches: e.counts.keyswitches,
                extraction_pbs: e.counts.extraction_pbs,
                cbs_pbs: e.counts.cbs_pbs,
                pfpks: e.counts.pfpks,
                cmux_tree: e.counts.cmux_tree,
                blind_rotation: e.counts.blind_rotation,
                p_error: e.p_error,
                cost: e.cost,
                latency_ms: e.cost * optimizer::wop::SECONDS_PER_COST_UNIT * 1e3,
                key_bytes_compressed: key.bsk_bytes / k1 + key.ksk_bytes / n1 + pfpksk,
                key_bytes: key.bsk_bytes + key.ksk_bytes + pfpksk,
            }
        })
        .collect();
    CompileStats {
        pbs_by_precision: l.pbs_by_precision.clone(),
        pbs: l.pbs,
        keyswitches: l.keyswitches,
        levelled_ops: l.levelled_ops,
        partitions,
        crossings: l.crossings.clone(),
        p_error,
        global_p_error,
        bsk_bytes: bsk,
        ksk_bytes: ksk,
        cost,
        // the optimizer's calibrated latency model for the chosen sets (`optimizer::cost`,
        // fitted by `benches/benches/pbs_cost.rs`): a model estimate, not a measurement
        estimated_latency_ms: sol.as_ref().map_or(0.0, |s| s.estimated_latency_s * 1e3),
        params,
        compile_ms: start.elapsed().as_secs_f64() * 1e3,
        domain: DomainPolicy::Calibrated,
        input_domain: Vec::new(),
        approx_deviation: Vec::new(),
        wop,
    }
}

/// Per input of `g`, the interval `domain` accepts (its declared type's range when the domain
/// has none).
fn input_intervals(g: &Graph, domain: &veil_ir::Domain) -> Vec<InputInterval> {
    let numbers = g.value_numbers();
    g.inputs()
        .into_iter()
        .map(|v| {
            let t = g.ty(v).int;
            let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
            let (lo, hi) = numbers
                .get(&v)
                .and_then(|&n| domain.interval(n))
                .unwrap_or((clamp(t.min()), clamp(t.max())));
            let name = match g.op(v) {
                veil_ir::Op::Input { name } => name.clone(),
                _ => String::new(),
            };
            InputInterval { name, lo, hi }
        })
        .collect()
}

impl Program {
    /// The server's deployment artifact: the TFHE-level program and its statistics.
    pub fn server_artifact(
        &self,
    ) -> Result<veil_runtime::artifact::ServerArtifact, veil_runtime::artifact::ArtifactError> {
        veil_runtime::artifact::ServerArtifact::new(self.tfhe.clone(), self.stats.clone())
    }

    /// Generates the client's secret keys and the server's evaluation keys from `seed`
    /// (equal seeds give equal keys).
    pub fn keygen(&self, seed: u128) -> Result<(ClientKeys, ServerKeys), ProgramError> {
        let (ck, csk) = veil_runtime::keygen(
            &self.tfhe,
            &KeygenOptions {
                seed,
                ..Default::default()
            },
        )?;
        Ok((ck, csk.decompress()))
    }

    /// Encrypts one tensor per program input (clear inputs pass through unencrypted), after
    /// checking that the sample stays inside the program's domain
    /// ([`Program::check_domain`] with [`DomainCheck::Calibrated`]): a sample the compiled
    /// program would compute wrongly is refused, never encrypted.
    pub fn encrypt(
        &self,
        keys: &ClientKeys,
        inputs: &[Tensor<i64>],
    ) -> Result<Vec<Value>, ProgramError> {
        self.check_domain(inputs, DomainCheck::Calibrated)?;
        self.encrypt_unchecked(keys, inputs)
    }

    /// Encrypts without the domain check: for callers that checked already (a batch checked
    /// with [`Program::check_domain`], quantized models checked against their types) or that
    /// accept wrong results outside the domain.
    pub fn encrypt_unchecked(
        &self,
        keys: &ClientKeys,
        inputs: &[Tensor<i64>],
    ) -> Result<Vec<Value>, ProgramError> {
        Ok(keys.encrypt_inputs(&self.tfhe, inputs)?)
    }

    /// Checks a sample against the program's domain by running it through the reference
    /// interpreter (microseconds to milliseconds; one bootstrap costs tens of milliseconds):
    /// an error names the first value (`%N = op`) that leaves its interval, the element, the
    /// value and the interval. The graph is prepared for the interpreter on the first call
    /// and reused by the next ones ([`DomainCheckers`]).
    pub fn check_domain(
        &self,
        inputs: &[Tensor<i64>],
        check: DomainCheck,
    ) -> Result<(), ProgramError> {
        match check {
            DomainCheck::Calibrated => self.prepared_checker(false)?.check(inputs),
            DomainCheck::Types => self.prepared_checker(true)?.check(inputs),
            DomainCheck::Exact => veil_ir::domain::check_exact(
                self.prepared_checker(false)?,
                self.prepared_checker(true)?,
                inputs,
            ),
        }
        .map(|_| ())
        .map_err(domain_error)
    }

    /// The checker of the source's calibrated domain, or (`types`) of the optimized
    /// program's types, prepared once per program.
    fn prepared_checker(
        &self,
        types: bool,
    ) -> Result<&veil_ir::DomainChecker<'static>, ProgramError> {
        let (cell, graph, domain) = if types {
            (&self.checkers.types, &self.optimized, &self.type_domain)
        } else {
            (&self.checkers.calibrated, &self.source, &self.domain)
        };
        cell.get_or_init(|| {
            domain
                .clone()
                .into_checker(graph.clone())
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ProgramError::Invalid(format!("the domain check cannot run: {e}")))
    }

    /// A checker of samples against one of the program's domains that borrows the program
    /// (prepared anew on each call; [`Program::check_domain`] prepares once per program). Call
    /// [`veil_ir::DomainChecker::check`] per sample; map its errors with
    /// [`ProgramError::from_domain`]. [`DomainCheck::Exact`] runs two checkers: use
    /// [`Program::check_domain`] for it.
    pub fn domain_checker(
        &self,
        check: DomainCheck,
    ) -> Result<veil_ir::DomainChecker<'_>, ProgramError> {
        let (graph, domain) = match check {
            DomainCheck::Calibrated => (&self.source, &self.domain),
            DomainCheck::Types => (&self.optimized, &self.type_domain),
            DomainCheck::Exact => {
                return Err(ProgramError::Invalid(
                    "the exact domain check runs two checkers; use Program::check_domain".into(),
                ))
            }
        };
        domain.checker(graph).map_err(domain_error)
    }

    /// Runs the program on encrypted inputs with the server's keys only.
    pub fn run(&self, keys: &ServerKeys, inputs: Vec<Value>) -> Result<Vec<Value>, ProgramError> {
        Ok(veil_runtime::run(&self.tfhe, keys, inputs)?)
    }

    /// Decrypts the outputs of [`Program::run`].
    pub fn decrypt(
        &self,
        keys: &ClientKeys,
        outputs: &[Value],
    ) -> Result<Vec<Tensor<i64>>, ProgramError> {
        Ok(keys.decrypt_outputs(&self.tfhe, outputs)?)
    }

    /// Runs the lowered program on clear values, injecting bootstrap errors with their
    /// predicted probability (seeded): an accuracy estimate in milliseconds.
    pub fn simulate(
        &self,
        inputs: &[Tensor<i64>],
        seed: u64,
    ) -> Result<Vec<Tensor<i64>>, ProgramError> {
        let r = veil_runtime::simulate(
            &self.tfhe,
            inputs,
            &veil_runtime::SimOptions {
                seed,
                ..Default::default()
            },
        )?;
        Ok(r.outputs)
    }

    /// Runs the optimized tensor-level program on clear integers (the reference).
    pub fn clear(&self, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, ProgramError> {
        veil_ir::interp::run(&self.optimized, inputs)
            .map_err(|e| ProgramError::Interp(e.to_string()))
    }
}
