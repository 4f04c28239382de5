//! `veil compile FILE.veil|FILE.onnx --inputset FILE.csv|.npy [--out DIR] [--emit STAGE]
//! [--stats] [--json] [--p-error X]`: compile a program or model and write the server and
//! client artifacts into `--out`.
//!
//! The inputset calibrates the compilation: for a `.veil` program every row is one sample of
//! the program's inputs (integers, every input flattened in declaration order); for an `.onnx`
//! model every row is one float sample (its features), used to calibrate the quantizers.

use super::io;
use super::CliError;
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_compiler::optimizer::ErrorTarget;
use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ml::artifact::{ClientArtifact, ClientModel};
use veil_ml::onnx::{ImportConfig, OnnxImport};
use veil_ml::Matrix;
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

Examples:
  veil compile tests/golden/tlu.veil --inputset samples.csv --out build --stats
  veil compile model.onnx --inputset calibration.npy --out build --json
  veil compile prog.veil --inputset samples.csv --emit tfhe"
)]
pub struct CompileArgs {
    /// The program (`.veil`) or model (`.onnx`) to compile.
    pub file: PathBuf,
    /// Samples that calibrate the compilation (`.csv` or `.npy`, one row per sample).
    #[arg(long)]
    pub inputset: PathBuf,
    /// Folder for `server.veil-artifact` and `client.veil-artifact`.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Print this stage's IR (or the statistics JSON) to stdout instead of the summary.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Print a table of statistics (bootstraps, keys, cost, predicted error).
    #[arg(long)]
    pub stats: bool,
    /// Print a JSON summary (paths, program id, statistics) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Largest probability that one bootstrap decodes wrongly (default: see
    /// [`p_error_help`]).
    #[arg(long, help = p_error_help())]
    pub p_error: Option<f64>,
}

/// The help of `--p-error`, with the default computed from
/// [`veil_compiler::program::DEFAULT_P_ERROR`]: `(default 2^-40 ≈ 9.1e-13)`.
pub fn p_error_help() -> String {
    let p = veil_compiler::program::DEFAULT_P_ERROR;
    format!(
        "Largest probability that one bootstrap decodes wrongly (default 2^{} ≈ {p:.1e})",
        p.log2().round()
    )
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

fn config(args: &CompileArgs) -> Result<CompileConfig, CliError> {
    let mut cfg = CompileConfig::default();
    if let Some(p) = args.p_error {
        if !(p > 0.0 && p < 1.0) {
            return Err(CliError(format!(
                "--p-error {p}: give a probability between 0 and 1 (exclusive), e.g. 6.1e-5"
            )));
        }
        cfg.error = ErrorTarget::p_error(p);
    }
    Ok(cfg)
}

fn art(path: &Path) -> impl Fn(artifact::ArtifactError) -> CliError + '_ {
    move |e| io::artifact_error(path, &e)
}

/// Compiles `args.file` with its inputset (without writing anything).
pub fn build(args: &CompileArgs) -> Result<Compiled, CliError> {
    let cfg = config(args)?;
    let name = args.file.display().to_string();
    let ext = args
        .file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let t = Instant::now();
    let (program, model) = match ext.as_deref() {
        Some("veil") => {
            let g = super::fmt::parse_file(&args.file)?;
            if g.level != veil_ir::Level::Tensor {
                return Err(CliError(format!(
                    "{name}: this program is already lowered to the TFHE level; `veil compile` takes tensor-level programs"
                )));
            }
            let table = io::read_ints(&args.inputset)?;
            let samples = io::int_samples(&table, &artifact::input_specs(&g))?;
            tracing::debug!(samples = samples.len(), "inputset read");
            let p = compile(&g, &samples, &cfg).map_err(|e| CliError(format!("{name}: {e}")))?;
            (p, ClientModel::Integers)
        }
        Some("onnx") => {
            let bytes = io::read(&args.file)?;
            let import =
                OnnxImport::from_bytes(&bytes).map_err(|e| CliError(format!("{name}: {e}")))?;
            let table = io::read_floats(&args.inputset)?;
            let n = import.n_features();
            table.expect_columns(
                n,
                &format!(
                    "the model's {n} features of sample shape {:?}, flattened",
                    import.sample_shape()
                ),
            )?;
            let x = Matrix::from_rows(&table.rows).map_err(|e| CliError(e.to_string()))?;
            let model = import
                .compile(&x, &ImportConfig::default())
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            let inputset: Vec<Vec<veil_ir::Tensor<i64>>> = model
                .client()
                .encode(&x)
                .map_err(|e| CliError(format!("{name}: {e}")))?
                .into_iter()
                .map(|t| vec![t])
                .collect();
            let p = compile(model.graph(), &inputset, &cfg)
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            let tail =
                veil_ml::artifact::onnx_tail(bytes, &import, model.encrypted_output(), x.row(0))
                    .map_err(art(&args.file))?;
            (
                p,
                ClientModel::Quantized {
                    spec: Box::new(model.client().clone()),
                    onnx: Some(tail),
                },
            )
        }
        _ => {
            return Err(CliError(format!(
                "{name}: unknown kind of file; give a .veil program or an .onnx model"
            )))
        }
    };
    tracing::debug!(elapsed = ?t.elapsed(), "compiled");
    let source = args
        .file
        .file_name()
        .map_or(name.clone(), |f| f.to_string_lossy().into_owned());
    let server = program.server_artifact().map_err(art(&args.file))?;
    let client = ClientArtifact::from_program(&program, &source, model).map_err(art(&args.file))?;
    Ok(Compiled {
        program,
        server,
        client,
    })
}

/// Runs `veil compile`.
pub fn run(args: &CompileArgs) -> Result<(), CliError> {
    let c = build(args)?;
    let sb = c.server.to_bytes().map_err(art(&args.file))?;
    let cb = c.client.to_bytes().map_err(art(&args.file))?;
    let sp = args.out.join(artifact::SERVER_FILE);
    let cp = args.out.join(artifact::CLIENT_FILE);
    io::write(&sp, &sb, false)?;
    io::write(&cp, &cb, false)?;
    let stats = c.server.stats();
    let text = |g: &veil_ir::Graph| veil_ir::text::print(g);
    match args.emit {
        Some(Emit::Tensor) => print!("{}", text(&c.program.source)),
        Some(Emit::Optimized) => print!("{}", text(&c.program.optimized)),
        Some(Emit::Tfhe) => print!("{}", text(&c.program.tfhe)),
        Some(Emit::Stats) => println!("{}", pretty(&stats)?),
        None if args.json => {
            let out = serde_json::json!({
                "server": sp.display().to_string(),
                "client": cp.display().to_string(),
                "server_bytes": sb.len(),
                "client_bytes": cb.len(),
                "program_id": format!("{:016x}", c.server.program_id()),
                "params": c.program.tfhe.params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "stats": stats,
            });
            println!("{}", pretty(&out)?);
        }
        None => {
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
                    super::inspect::stats_table(&stats, &c.program.tfhe.params)
                );
            }
        }
    }
    Ok(())
}

/// Pretty JSON.
pub fn pretty(v: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(v).map_err(|e| CliError(format!("cannot write JSON: {e}")))
}
