//! `veil eval MODEL.onnx --inputset TRAIN.csv --test TEST.csv --label-column last
//! [--mode clear|simulate|execute] [--samples N] [--seed S] [--json] [compile options]`:
//! how well a model does once compiled, before paying for encryption.
//!
//! The model is compiled exactly as `veil compile` would (same options), then run on the
//! labelled test samples in one of Concrete ML's three modes: `clear` (the quantized integer
//! program run by the reference interpreter: what an encrypted run computes), `simulate` (the
//! lowered program on clear values with bootstrap errors injected at their predicted rate) or
//! `execute` (keys, encryption, the encrypted run and decryption, in this process). The float
//! model runs on the same samples, so the report shows what quantization costs.
//!
//! Classifiers (a label output, or scores/logits whose largest entry is the class) report
//! accuracy; regressors report R².

use super::compile::{self, CompileOptions};
use super::CliError;
use std::path::PathBuf;
use std::time::Instant;
use veil_ml::backend::{ExecuteBackend, SimulateBackend};
use veil_ml::model::r2_score;
use veil_ml::onnx::model::per_row;
use veil_ml::onnx::FTensor;
use veil_ml::Matrix;

/// How `veil eval` runs the compiled model.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalMode {
    /// The quantized program on clear integers (the reference interpreter): fast, and what an
    /// encrypted run computes.
    Clear,
    /// The lowered program on clear values, with bootstrap errors injected at their predicted
    /// probability.
    Simulate,
    /// Keys, encryption, the encrypted run and decryption, in this process (slow).
    Execute,
}

/// Arguments of `veil eval`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  veil eval model.onnx --inputset train.csv --test test.csv --label-column last
  veil eval model.onnx --inputset train.csv --test test.csv --label-column species --mode simulate
  veil eval cnn.onnx --inputset train.npy --test test.csv --label-column first --n-bits 6 --rounding-bits 6 --mode execute --samples 5")]
pub struct EvalArgs {
    /// The model (`.onnx`).
    pub model: PathBuf,
    /// Samples that calibrate the compilation (as for `veil compile`).
    #[arg(long)]
    pub inputset: PathBuf,
    /// Labelled test samples (`.csv` or `.npy`, one row per sample; the labels in the column
    /// that --label-column names).
    #[arg(long)]
    pub test: PathBuf,
    /// How to run the compiled model.
    #[arg(long, value_enum, default_value = "clear")]
    pub mode: EvalMode,
    /// Evaluate the first N test samples only (default: all).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Seed of the keys (execute) or of the injected errors (simulate).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
    /// Compilation options (as for `veil compile`).
    #[command(flatten)]
    pub options: CompileOptions,
}

/// Share of predictions equal to their label (labels are compared as numbers, so negative
/// class labels work too).
fn accuracy(pred: &[f64], labels: &[f64]) -> f64 {
    let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Runs `veil eval`.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    let name = args.model.display().to_string();
    if !args
        .model
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    {
        return Err(CliError(format!(
            "{name}: veil eval scores ML models; give an .onnx model (for .veil programs, compare `veil compile --emit` stages or run them)"
        )));
    }
    let label = args.options.label_column.as_deref().ok_or_else(|| {
        CliError(
            "veil eval needs the test file's label column: add --label-column last (or first, a 1-based column number or a header name)".into(),
        )
    })?;
    let t = Instant::now();
    let (compiled, imported) =
        compile::build_model(&args.model, Some(&args.inputset), &args.options)?;
    let compile_s = t.elapsed().as_secs_f64();
    let (import, model) =
        imported.ok_or_else(|| CliError(format!("{name}: not an imported model")))?;
    let (x, labels) = compile::read_model_rows(&args.test, &import, Some(label))?;
    let mut labels = labels.unwrap_or_default();
    let x = match args.samples {
        Some(0) => return Err(CliError("--samples: give at least 1".into())),
        Some(n) if n < x.rows() => {
            labels.truncate(n);
            Matrix::new(n, x.cols(), x.data()[..n * x.cols()].to_vec())
                .map_err(|e| CliError(e.to_string()))?
        }
        _ => x,
    };
    let rows = x.rows();
    let in_model = |e: veil_ml::onnx::OnnxError| CliError(format!("{name}: {e}"));
    let float = import.predict_float(&x).map_err(in_model)?;
    let mut keygen_s = None;
    let t = Instant::now();
    let quant = match args.mode {
        EvalMode::Clear => model.predict_clear(&x),
        EvalMode::Simulate => model.run(
            &x,
            &SimulateBackend {
                program: compiled.program,
                seed: args.seed,
            },
        ),
        EvalMode::Execute => {
            let (client, server) = compiled
                .program
                .keygen(args.seed as u128)
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            keygen_s = Some(t.elapsed().as_secs_f64());
            model.run(
                &x,
                &ExecuteBackend {
                    program: compiled.program,
                    client,
                    server,
                },
            )
        }
    }
    .map_err(in_model)?;
    let eval_s = t.elapsed().as_secs_f64() - keygen_s.unwrap_or(0.0);
    let first = |ts: &[FTensor]| {
        ts.first()
            .map(|t| per_row(t, rows))
            .ok_or_else(|| CliError(format!("{name}: the model has no output")))
    };
    let (pf, pq) = (first(&float)?, first(&quant)?);
    let classifier = import.first_output_is_label() || float[0].data.len() > rows;
    let (metric, float_score, veil_score) = if classifier {
        ("accuracy", accuracy(&pf, &labels), accuracy(&pq, &labels))
    } else {
        ("r2", r2_score(&labels, &pf), r2_score(&labels, &pq))
    };
    let agree = pf.iter().zip(&pq).filter(|(a, b)| a == b).count();
    let mean_abs_diff =
        pf.iter().zip(&pq).map(|(a, b)| (a - b).abs()).sum::<f64>() / rows.max(1) as f64;
    let mode = format!("{:?}", args.mode).to_lowercase();
    let stats = compiled.server.stats();
    if args.json {
        let v = serde_json::json!({
            "model": name,
            "task": if classifier { "classification" } else { "regression" },
            "samples": rows,
            "mode": mode,
            "metric": metric,
            "float": float_score,
            "veil": veil_score,
            "same_as_float": agree,
            "mean_abs_diff_to_float": mean_abs_diff,
            "pbs": stats.pbs,
            "compile_s": compile_s,
            "keygen_s": keygen_s,
            "eval_s": eval_s,
        });
        println!("{}", compile::pretty(&v)?);
        return Ok(());
    }
    let task = if classifier {
        "classifier"
    } else {
        "regressor"
    };
    println!(
        "{name}: {task}, {} feature(s), {rows} test sample(s), mode {mode}",
        import.n_features()
    );
    let veil = format!("veil, {mode}");
    println!("  {:<14} {metric} {float_score:.4}", "float model");
    let versus = if classifier {
        format!("{agree}/{rows} predictions equal to float")
    } else {
        format!("mean |veil - float| {mean_abs_diff:.4}")
    };
    println!("  {veil:<14} {metric} {veil_score:.4}   ({versus})");
    let keygen = keygen_s.map_or(String::new(), |k| format!(", keygen {k:.2} s"));
    println!(
        "  {} bootstrap(s) per run; compile {compile_s:.2} s{keygen}, evaluation {eval_s:.2} s ({:.1} ms per sample)",
        stats.pbs,
        1e3 * eval_s / rows.max(1) as f64
    );
    Ok(())
}
