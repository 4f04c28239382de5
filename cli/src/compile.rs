//! `veil compile FILE.veil|FILE.onnx --inputset FILE.csv|.npy [--domain calibrated|types]
//! [--out DIR] [--emit STAGE] [--stats] [--json] [--p-error X] [--objective O]`: compile a program or model and
//! write the server and client artifacts into `--out`; with `--emit` print one stage (or the
//! statistics) to stdout and write nothing.
//!
//! The inputset calibrates the compilation: for a `.veil` program every row is one sample of
//! the program's inputs (integers, every input flattened in declaration order); for an `.onnx`
//! model every row is one float sample (its features), used to calibrate the quantizers.
//! `--domain` chooses which inputs the program is exact on ([`DomainArg`]): the calibrated
//! intervals (default) or every value of the declared input types (`.veil` programs then need
//! no inputset).

use super::io;
use super::CliError;
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_compiler::optimizer::ErrorTarget;
use veil_compiler::program::{compile, CompileConfig, CompileStats, DomainPolicy, Program};
use veil_ml::artifact::{ClientArtifact, ClientModel};
use veil_ml::onnx::{ImportConfig, OnnxImport, OnnxModel};
use veil_ml::quantize::RoundingMethod;
use veil_ml::{Matrix, NBits};
use veil_runtime::artifact::{self, ServerArtifact};

/// What `--emit` prints to stdout.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The tensor-level program as parsed or imported.
    Tensor,
    /// The tensor-level program after the passes.
    Optimized,
    /// The lowered TFHE-level program (what the server runs).
    Tfhe,
    /// The compile statistics as JSON.
    Stats,
}

/// Arguments of `veil compile`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Inputset layout: one row per sample. For a .veil program: integers, \
every input flattened (row-major) in declaration order, e.g. for `x: enc<u3>[3]` then \
`k: clear<u2>` the row `1,2,3,0`. For an .onnx model: the float features of one sample. CSV \
(comma-separated, `#` comments, an optional header row) or NPY (a 2-D array [samples, columns]; \
integers for .veil programs, floats or integers for models).

Domain (--domain): a compiled program is exact on its domain and `veil encrypt` refuses samples \
outside it (exit 1, nothing encrypted), so a result is never silently wrong. `calibrated` \
(default): the intervals every value takes on the inputset; narrowest types and fewest \
bootstrap bits, but samples whose values leave those intervals are refused. `types`: intervals \
propagated from the declared input types; every sample of the declared input types is computed \
exactly (unless a value overflows its declared type, which is refused too), at the price of \
wider bootstraps; a .veil program needs no --inputset. `--emit stats` and `veil inspect` show \
the policy and each input's accepted interval; with `--domain types` and an inputset, `--stats` \
and `--emit stats` also show what types costs against calibrated (PBS, widest bootstrap, \
estimated latency; `versus_calibrated` in the JSON).

Examples:
  veil compile tests/golden/tlu.veil --inputset samples.csv --out build --stats
  veil compile prog.veil --domain types --out build --stats
  veil compile model.onnx --inputset calibration.npy --out build --json
  veil compile prog.veil --inputset samples.csv --emit tfhe"
)]
pub struct CompileArgs {
    /// The program (`.veil`) or model (`.onnx`) to compile.
    pub file: PathBuf,
    /// Samples that calibrate the compilation (`.csv` or `.npy`, one row per sample); optional
    /// for a `.veil` program compiled with `--domain types`.
    #[arg(long)]
    pub inputset: Option<PathBuf>,
    /// Folder for `server.veil-artifact` and `client.veil-artifact`.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Print this stage's IR (or the statistics JSON) to stdout and write no artifact.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Print a table of statistics (bootstraps, keys, cost, predicted error).
    #[arg(long)]
    pub stats: bool,
    /// Print a JSON summary (paths, program id, statistics) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Error targets and ML model options.
    #[command(flatten)]
    pub options: CompileOptions,
}

/// The help of `--p-error`, with the default computed from
/// [`veil_compiler::program::DEFAULT_P_ERROR`]: `(default 2^-40 ≈ 9.1e-13)`.
pub fn p_error_help() -> String {
    let p = veil_compiler::program::DEFAULT_P_ERROR;
    format!(
        "Largest probability that one bootstrap decodes wrongly, e.g. 6.1e-5 or 2^-128 (default 2^{} ≈ {p:.1e})",
        p.log2().round()
    )
}

/// Options shared by `veil compile` and `veil eval`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CompileOptions {
    /// Largest probability that one bootstrap decodes wrongly (`6.1e-5` or `2^-128`).
    #[arg(long, help = p_error_help(), conflicts_with = "global_p_error", value_parser = crate::params::parse_probability)]
    pub p_error: Option<f64>,
    /// Largest probability that any bootstrap of one run decodes wrongly (Concrete's
    /// global_p_error); the optimizer spreads it over the program's bootstraps.
    #[arg(long, value_parser = crate::params::parse_probability)]
    pub global_p_error: Option<f64>,
    /// A named error target: ind-cpa (p_error 2^-40, the default) or ind-cpa-d (2^-128, for
    /// deployments where the server may learn whether decryptions succeeded; docs/noise.md).
    #[arg(long, value_enum, conflicts_with_all = ["p_error", "global_p_error"])]
    pub security_profile: Option<crate::params::SecurityProfile>,
    /// ONNX models: the inputset column that holds labels (`last`, `first`, a 1-based column
    /// number or a header name); it is left out of the features.
    #[arg(long)]
    pub label_column: Option<String>,
    /// ONNX models: quantization width in bits of inputs, weights, activations and outputs
    /// (default: 8-bit inputs and weights, 7-bit activations; trees: 6-bit features and leaves).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub n_bits: Option<u8>,
    /// ONNX models: keep at most this many high bits of every accumulator a table lookup
    /// reads, dropping the others with a rounding (Concrete ML's rounding_threshold_bits).
    /// Default: accumulators up to 8 bits are read whole; when one is wider, the model is a
    /// network and gets the cheapest rounding (6, 7 or 8 kept bits, 6-bit widths where
    /// unset) whose predictions on the inputset agree with the float model's within 5 points
    /// of the best of them. With a value, every lookup reads exactly that many bits (one more
    /// bit is dropped where an approximate rounding's deviation would widen a later lookup);
    /// the default does the same wherever that agrees with float as well (within a point), then
    /// keeps one bit fewer at each lookup where that is cheaper and agreement holds.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub rounding_bits: Option<u8>,
    /// ONNX models: how accumulators are rounded. `approximate` (default, as Concrete ML): the
    /// lookup reads the kept bits directly, no extra bootstrap, and near a tie the kept value
    /// may be one step off; `exact`: one 1-bit bootstrap per dropped bit.
    #[arg(long, value_enum)]
    pub rounding_method: Option<RoundingMethodArg>,
    /// Which inputs the program is exact on: `calibrated` (the inputset's intervals; samples
    /// outside them are refused at encrypt) or `types` (every value of the declared input
    /// types; wider, costlier bootstraps).
    #[arg(long, value_enum, default_value = "calibrated")]
    pub domain: DomainArg,
    /// What the parameter optimizer minimises: `latency` (default: the sets that measured
    /// fastest on this runtime), `model` (Concrete's cost model, to compare with Concrete) or
    /// `keys` (evaluation key bytes, for one sample per key generation).
    #[arg(long, value_enum)]
    pub objective: Option<crate::params::ObjectiveArg>,
}

/// `--rounding-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoundingMethodArg {
    /// Off by at most one step near ties; no bootstrap of its own.
    Approximate,
    /// Exact; one 1-bit bootstrap per dropped bit.
    Exact,
}

impl From<RoundingMethodArg> for RoundingMethod {
    fn from(m: RoundingMethodArg) -> Self {
        match m {
            RoundingMethodArg::Approximate => RoundingMethod::Approximate,
            RoundingMethodArg::Exact => RoundingMethod::Exact,
        }
    }
}

/// `--domain`: which inputs a compiled program is exact on
/// ([`veil_compiler::program::DomainPolicy`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DomainArg {
    /// The intervals every value takes on the inputset: narrow and cheap; samples whose
    /// values leave them are refused at encrypt.
    #[default]
    Calibrated,
    /// Intervals propagated from the declared input types: exact for every sample of those
    /// types (overflows of a declared type are refused); wider bootstraps.
    Types,
}

impl From<DomainArg> for DomainPolicy {
    fn from(d: DomainArg) -> Self {
        match d {
            DomainArg::Calibrated => DomainPolicy::Calibrated,
            DomainArg::Types => DomainPolicy::Types,
        }
    }
}

/// What a compilation produced.
pub struct Compiled {
    /// The program.
    pub program: Program,
    /// Its server artifact.
    pub server: ServerArtifact,
    /// Its client artifact.
    pub client: ClientArtifact,
}

fn config(options: &CompileOptions) -> Result<CompileConfig, CliError> {
    let mut cfg = CompileConfig {
        domain: options.domain.into(),
        ..CompileConfig::default()
    };
    let check = crate::params::check_probability;
    if let Some(objective) = options.objective {
        cfg.objective = objective.into();
    }
    if let Some(profile) = options.security_profile {
        cfg.error = ErrorTarget::p_error(profile.p_error());
    }
    if let Some(p) = options.p_error {
        cfg.error = ErrorTarget::p_error(check("--p-error", p)?);
    }
    if let Some(p) = options.global_p_error {
        cfg.error = ErrorTarget::global(check("--global-p-error", p)?);
    }
    Ok(cfg)
}

impl CompileOptions {
    /// The ONNX import configuration these options ask for.
    pub fn import_config(&self) -> ImportConfig {
        ImportConfig {
            n_bits: self.n_bits.map(NBits::all).unwrap_or_default(),
            rounding_bits: self.rounding_bits,
            rounding_method: self.rounding_method.map(Into::into).unwrap_or_default(),
            ..ImportConfig::default()
        }
    }

    /// Fails when an ML-only option is given for a `.veil` program.
    fn check_program(&self, name: &str) -> Result<(), CliError> {
        for (flag, given) in [
            ("--label-column", self.label_column.is_some()),
            ("--n-bits", self.n_bits.is_some()),
            ("--rounding-bits", self.rounding_bits.is_some()),
            ("--rounding-method", self.rounding_method.is_some()),
        ] {
            if given {
                return Err(CliError(format!(
                    "{name}: {flag} applies to .onnx models, not to .veil programs (their inputs are integers already)"
                )));
            }
        }
        Ok(())
    }
}

/// Reads the float features of an ONNX model's samples from `path`: the label column
/// (`--label-column`) taken out, every row checked against the model's features. Returns the
/// features and the labels (when a label column was named).
pub fn read_model_rows(
    path: &Path,
    import: &OnnxImport,
    label_column: Option<&str>,
) -> Result<(Matrix, Option<Vec<f64>>), CliError> {
    let n = import.n_features();
    let layout = format!(
        "the model's {n} features of sample shape {:?}, flattened",
        import.sample_shape()
    );
    read_features(path, n, &layout, label_column)
}

/// Reads rows of `n` float features from `path` (`layout` describes them for messages), with
/// the label column `label_column` taken out first; a file with one column too many and no
/// label column named gets a hint.
pub fn read_features(
    path: &Path,
    n: usize,
    layout: &str,
    label_column: Option<&str>,
) -> Result<(Matrix, Option<Vec<f64>>), CliError> {
    let mut table = io::read_floats(path)?;
    let labels = label_column.map(|l| table.take_labels(l)).transpose()?;
    if labels.is_none() && table.rows.first().is_some_and(|r| r.len() == n + 1) {
        return Err(CliError(format!(
            "{}: rows have {} columns, one more than {layout}; if one column holds labels, name it with --label-column last (or first, a 1-based column number or its header name)",
            path.display(),
            n + 1
        )));
    }
    table.expect_columns(n, layout)?;
    let x = Matrix::from_rows(&table.rows).map_err(|e| CliError(e.to_string()))?;
    Ok((x, labels))
}

fn art(path: &Path) -> impl Fn(artifact::ArtifactError) -> CliError + '_ {
    move |e| io::artifact_error(path, &e)
}

/// Compiles `args.file` with its inputset (without writing anything).
pub fn build(args: &CompileArgs) -> Result<Compiled, CliError> {
    Ok(build_model(&args.file, args.inputset.as_deref(), &args.options)?.0)
}

/// Compiles the program or model `file` calibrated on `inputset`; for an ONNX model also
/// returns the imported model (for evaluation in Clear, Simulate and Execute modes). Only a
/// `.veil` program compiled with `--domain types` may go without an inputset.
pub fn build_model(
    file: &Path,
    inputset: Option<&Path>,
    options: &CompileOptions,
) -> Result<(Compiled, Option<(OnnxImport, OnnxModel)>), CliError> {
    let cfg = config(options)?;
    let name = file.display().to_string();
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let t = Instant::now();
    let mut imported = None;
    let (program, model) = match ext.as_deref() {
        Some("veil") => {
            options.check_program(&name)?;
            let g = super::fmt::parse_file(file)?;
            if g.level != veil_ir::Level::Tensor {
                return Err(CliError(format!(
                    "{name}: this program is already lowered to the TFHE level; `veil compile` takes tensor-level programs"
                )));
            }
            let samples = match inputset {
                Some(path) => {
                    let table = io::read_ints(path)?;
                    io::int_samples(&table, &artifact::input_specs(&g))?
                }
                None if cfg.domain == DomainPolicy::Types => Vec::new(),
                None => {
                    return Err(CliError(format!(
                        "{name}: --inputset is required to calibrate the program (--domain calibrated, the default); give samples with --inputset FILE.csv, or compile for every value of the declared input types with --domain types"
                    )))
                }
            };
            tracing::debug!(samples = samples.len(), "inputset read");
            let p = compile(&g, &samples, &cfg).map_err(|e| CliError(format!("{name}: {e}")))?;
            (p, ClientModel::Integers)
        }
        Some("onnx") => {
            let bytes = io::read(file)?;
            let import =
                OnnxImport::from_bytes(&bytes).map_err(|e| CliError(format!("{name}: {e}")))?;
            let inputset = inputset.ok_or_else(|| {
                CliError(format!(
                    "{name}: --inputset is required for an .onnx model (it calibrates the quantizers, whatever the --domain); give float samples with --inputset FILE.csv"
                ))
            })?;
            let (x, _) = read_model_rows(inputset, &import, options.label_column.as_deref())?;
            let model = import
                .compile(&x, &options.import_config())
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            let inputset: Vec<Vec<veil_ir::Tensor<i64>>> = model
                .client()
                .calibration_inputs(&x)
                .map_err(|e| CliError(format!("{name}: {e}")))?
                .into_iter()
                .map(|t| vec![t])
                .collect();
            let p = compile(model.graph(), &inputset, &cfg).map_err(|e| {
                // Wide accumulators: say which model options narrow them.
                let hint = match &e {
                    veil_compiler::program::ProgramError::Lower(
                        veil_compiler::lower::LowerError::NoParameters { precision, .. },
                    ) if *precision > 8 => format!(
                        "; the model's accumulators need {precision}-bit lookups: round them with --rounding-bits 6 (Concrete ML's rounding_threshold_bits) or quantize with fewer bits (--n-bits 4)"
                    ),
                    _ => String::new(),
                };
                CliError(format!("{name}: {e}{hint}"))
            })?;
            let tail =
                veil_ml::artifact::onnx_tail(bytes, &import, model.encrypted_output(), x.row(0))
                    .map_err(art(file))?;
            let client = ClientModel::Quantized {
                spec: Box::new(model.client().clone()),
                onnx: Some(tail),
            };
            imported = Some((import, model));
            (p, client)
        }
        _ => {
            return Err(CliError(format!(
                "{name}: unknown kind of file; give a .veil program or an .onnx model"
            )))
        }
    };
    tracing::debug!(elapsed = ?t.elapsed(), "compiled");
    let source = file
        .file_name()
        .map_or(name.clone(), |f| f.to_string_lossy().into_owned());
    let server = program.server_artifact().map_err(art(file))?;
    let client = ClientArtifact::from_program(&program, &source, model).map_err(art(file))?;
    Ok((
        Compiled {
            program,
            server,
            client,
        },
        imported,
    ))
}

/// Runs `veil compile`: writes the artifacts and prints a summary, or with `--emit` prints
/// the stage (or the statistics) and writes nothing.
pub fn run(args: &CompileArgs) -> Result<(), CliError> {
    let c = build(args)?;
    let stats = c.server.stats();
    // Under --domain types with an inputset, what the policy costs against calibrated (one
    // more compilation, only when statistics are printed).
    let shown = args.stats || args.json || args.emit == Some(Emit::Stats);
    let versus = (shown && args.options.domain == DomainArg::Types && args.inputset.is_some())
        .then(|| {
            let mut o = args.options.clone();
            o.domain = DomainArg::Calibrated;
            build_model(&args.file, args.inputset.as_deref(), &o).ok()
        })
        .flatten()
        .map(|cal| DomainPrice::of(&c.program.stats, &cal.0.program.stats));
    let stats_json = || -> Result<serde_json::Value, CliError> {
        let mut v =
            serde_json::to_value(stats).map_err(|e| CliError(format!("cannot write JSON: {e}")))?;
        if let (Some(p), Some(obj)) = (&versus, v.as_object_mut()) {
            let p =
                serde_json::to_value(p).map_err(|e| CliError(format!("cannot write JSON: {e}")))?;
            obj.insert("versus_calibrated".into(), p);
        }
        Ok(v)
    };
    let text = |g: &veil_ir::Graph| veil_ir::text::print(g);
    if let Some(emit) = args.emit {
        match emit {
            Emit::Tensor => print!("{}", text(&c.program.source)),
            Emit::Optimized => print!("{}", text(&c.program.optimized)),
            Emit::Tfhe => print!("{}", text(&c.program.tfhe)),
            Emit::Stats => println!("{}", pretty(&stats_json()?)?),
        }
        return Ok(());
    }
    let sb = c.server.to_bytes().map_err(art(&args.file))?;
    let cb = c.client.to_bytes().map_err(art(&args.file))?;
    let sp = args.out.join(artifact::SERVER_FILE);
    let cp = args.out.join(artifact::CLIENT_FILE);
    io::write(&sp, &sb, false)?;
    io::write(&cp, &cb, false)?;
    if args.json {
        let out = serde_json::json!({
            "server": sp.display().to_string(),
            "client": cp.display().to_string(),
            "server_bytes": sb.len(),
            "client_bytes": cb.len(),
            "program_id": format!("{:016x}", c.server.program_id()),
            "params": c.program.tfhe.params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "stats": stats_json()?,
        });
        println!("{}", pretty(&out)?);
        return Ok(());
    }
    println!(
        "compiled {} (program {:016x}): wrote {} ({}) and {} ({})",
        args.file.display(),
        c.server.program_id(),
        sp.display(),
        io::size(sb.len()),
        cp.display(),
        io::size(cb.len())
    );
    if args.stats {
        print!(
            "{}",
            super::inspect::stats_table(stats, &c.program.tfhe.params)
        );
        if let Some(v) = &versus {
            println!(
                "  {:<22} PBS {} -> {}, widest bootstrap {} -> {} bits, est. latency {:.1} -> {:.1} ms",
                "calibrated -> types",
                v.calibrated.pbs,
                v.types.pbs,
                v.calibrated.max_bits,
                v.types.max_bits,
                v.calibrated.estimated_latency_ms,
                v.types.estimated_latency_ms,
            );
        }
    }
    Ok(())
}

/// One side of a [`DomainPrice`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DomainSide {
    /// Bootstraps per run.
    pub pbs: u64,
    /// Widest bootstrap input, in bits.
    pub max_bits: u8,
    /// Estimated latency of one run (ms).
    pub estimated_latency_ms: f64,
    /// Model cost of one run.
    pub cost: f64,
}

/// The price of `--domain types` against `--domain calibrated`: PBS, widest bootstrap input
/// (bits), model cost and estimated latency of both (`versus_calibrated` in the JSON:
/// `{"calibrated": {..}, "types": {..}}`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DomainPrice {
    /// Compiled under `--domain calibrated`.
    pub calibrated: DomainSide,
    /// Compiled under `--domain types`.
    pub types: DomainSide,
}

impl DomainPrice {
    /// The price of `types` against `calibrated`.
    pub fn of(types: &CompileStats, calibrated: &CompileStats) -> Self {
        let side = |s: &CompileStats| DomainSide {
            pbs: s.pbs,
            max_bits: s.max_bits(),
            estimated_latency_ms: s.estimated_latency_ms,
            cost: s.cost,
        };
        DomainPrice {
            calibrated: side(calibrated),
            types: side(types),
        }
    }
}

/// Pretty JSON (shared by the subcommands; defined with `veil inspect`, which prints the
/// statistics too).
pub use super::inspect::pretty;
