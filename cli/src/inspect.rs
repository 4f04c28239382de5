//! `veil inspect FILE [--stage tensor|optimized|tfhe] [--dot] [--stats] [--json]`: show any
//! veil file: artifacts (summary, IR of a stage, statistics, Graphviz), evaluation keys, secret
//! keys (ids and sizes only, never the keys) and encrypted batches.

use super::io;
use super::CliError;
use std::fmt::Write;
use std::path::PathBuf;
use veil_ir::{Graph, ParamSet};
use veil_ml::artifact::{ClientArtifact, ClientModel};
use veil_runtime::artifact::{
    self, CompileStats, Direction, DomainPolicy, EncryptedBatch, IoSpec, ServerArtifact,
};
use veil_runtime::serial::{KIND_CLIENT_KEYS, KIND_COMPRESSED_SERVER_KEYS};
use veil_runtime::{ClientKeys, CompressedServerKeys};

/// A stage of compilation.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The tensor-level program as parsed or imported (client artifact).
    Tensor,
    /// The tensor-level program after the passes (client artifact).
    Optimized,
    /// The lowered TFHE-level program (server artifact).
    Tfhe,
}

/// Arguments of `veil inspect`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The server artifact holds the tfhe stage; the client artifact holds the \
tensor and optimized stages.

Examples:
  veil inspect build/server.veil-artifact
  veil inspect build/client.veil-artifact --stage optimized
  veil inspect build/server.veil-artifact --dot | dot -Tsvg > program.svg
  veil inspect build/client.veil-artifact --stats --json
  veil inspect keys/eval.veil-keys"
)]
pub struct InspectArgs {
    /// An artifact, key or ciphertext file.
    pub file: PathBuf,
    /// Print the IR of this stage.
    #[arg(long, value_enum)]
    pub stage: Option<Stage>,
    /// Print Graphviz `dot` of the stage (default: the stage the artifact holds).
    #[arg(long)]
    pub dot: bool,
    /// Print only the statistics table.
    #[arg(long)]
    pub stats: bool,
    /// Print JSON (the summary or, with --stats, the statistics).
    #[arg(long)]
    pub json: bool,
}

/// A float for the statistics table: three decimals, or three significant digits in
/// scientific notation when very small or large.
fn float(f: f64) -> String {
    if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e6) {
        format!("{f:.3e}")
    } else {
        format!("{f:.3}")
    }
}

/// A text table of the statistics and the parameter sets.
pub fn stats_table(stats: &CompileStats, params: &[ParamSet]) -> String {
    let by_prec = if stats.pbs_by_precision.is_empty() {
        "none".to_string()
    } else {
        stats
            .pbs_by_precision
            .iter()
            .map(|(bits, n)| format!("{n} x {bits}-bit"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "  {k:<22} {v}");
    };
    row("bootstraps (PBS)", format!("{} ({by_prec})", stats.pbs));
    for w in &stats.wop {
        row(
            "WoP-PBS lookups",
            format!(
                "{} x {}-bit on @p{} (outputs up to {} bits)",
                w.lookups, w.bits, w.set, w.out_bits
            ),
        );
        row(
            "  per lookup",
            format!(
                "{} keyswitches, {} one-bit bootstraps, {} circuit bootstraps ({} PBS, {} PFPKS, pfks {}x{}, cbs {}x{}), CMux tree {} + blind rotation {}",
                w.keyswitches,
                w.extraction_pbs,
                w.bits,
                w.cbs_pbs,
                w.pfpks,
                w.pfks.0,
                w.pfks.1,
                w.cbs.0,
                w.cbs.1,
                w.cmux_tree,
                w.blind_rotation
            ),
        );
        row(
            "  cost per lookup",
            format!(
                "{} model units, est. {:.0} ms, p_error {}",
                float(w.cost),
                w.latency_ms,
                float(w.p_error)
            ),
        );
        row(
            "  WoP-PBS keys",
            format!(
                "{} ({} seeded)",
                io::size(w.key_bytes as usize),
                io::size(w.key_bytes_compressed as usize)
            ),
        );
    }
    row("keyswitches", stats.keyswitches.to_string());
    row("levelled ops", stats.levelled_ops.to_string());
    row("p_error per PBS", float(stats.p_error));
    row("global p_error", float(stats.global_p_error));
    row("bootstrap key", io::size(stats.bsk_bytes as usize));
    row("keyswitch key", io::size(stats.ksk_bytes as usize));
    row("cost (model units)", float(stats.cost));
    row("est. latency (ms)", float(stats.estimated_latency_ms));
    row("compile time (ms)", float(stats.compile_ms));
    let (policy, what) = match stats.domain {
        DomainPolicy::Calibrated => (
            "calibrated",
            "exact on the inputset's intervals; samples outside are refused",
        ),
        DomainPolicy::Types => ("types", "exact on every value of the declared input types"),
    };
    row("domain", format!("{policy} ({what})"));
    for x in &stats.input_domain {
        row(
            &format!("  input \"{}\"", x.name),
            format!("{}..={}", x.lo, x.hi),
        );
    }
    if !stats.approx_deviation.is_empty() {
        let bounds: Vec<String> = stats
            .approx_deviation
            .iter()
            .map(|b| format!("±{b}"))
            .collect();
        row(
            "approximate rounding",
            format!(
                "per output, each element within {} of the exact result (a proven bound, in the output's integer units)",
                bounds.join(", ")
            ),
        );
    }
    for (i, p) in params.iter().enumerate() {
        row(&format!("parameters @p{i}"), p.to_string());
    }
    format!("statistics:\n{s}")
}

/// Pretty JSON of any serializable value.
pub fn pretty(v: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(v).map_err(|e| CliError(format!("cannot write JSON: {e}")))
}

fn ios(title: &str, specs: &[IoSpec]) -> String {
    let mut s = format!("{title}:\n");
    for x in specs {
        let _ = writeln!(s, "  {:<12} {}", x.name, type_text(&x.ty));
    }
    s
}

pub(crate) fn type_text(t: &veil_ir::TensorType) -> String {
    veil_runtime::artifact::describe_type(t)
}

fn stage_text(g: &Graph, dot: bool) -> String {
    if dot {
        veil_ir::dot::to_dot(g)
    } else {
        veil_ir::text::print(g)
    }
}

fn wrong_stage(args: &InspectArgs, holds: &str, other: &str) -> CliError {
    CliError(format!(
        "{}: this artifact holds the {holds} stage(s); the other stages are in the {other} artifact (veil inspect DIR/{})",
        args.file.display(),
        if other == "server" {
            artifact::SERVER_FILE
        } else {
            artifact::CLIENT_FILE
        }
    ))
}

fn stats_out(
    args: &InspectArgs,
    stats: &CompileStats,
    params: &[ParamSet],
) -> Result<(), CliError> {
    if args.json {
        println!("{}", pretty(stats)?);
    } else {
        print!("{}", stats_table(stats, params));
    }
    Ok(())
}

/// Runs `veil inspect`.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    let data = io::read(&args.file)?;
    let kind = artifact::file_kind(&data).ok_or_else(|| {
        CliError(format!(
            "{}: not a veil file; give an artifact, key or ciphertext file written by veil",
            args.file.display()
        ))
    })?;
    let fail = |e: artifact::ArtifactError| io::artifact_error(&args.file, &e);
    match kind.as_str() {
        artifact::KIND_SERVER_ARTIFACT => {
            let a = ServerArtifact::from_bytes(&data).map_err(fail)?;
            match args.stage {
                Some(Stage::Tfhe) => print!("{}", stage_text(a.program(), args.dot)),
                None if args.dot => print!("{}", stage_text(a.program(), true)),
                Some(_) => return Err(wrong_stage(args, "tfhe", "client")),
                None if args.stats => stats_out(args, a.stats(), a.params())?,
                None => {
                    let inputs = artifact::input_specs(a.program());
                    if args.json {
                        let j = serde_json::json!({
                            "kind": kind,
                            "program_id": format!("{:016x}", a.program_id()),
                            "params": a.params().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                            "inputs": inputs.iter().map(|s| serde_json::json!({"name": s.name, "type": type_text(&s.ty)})).collect::<Vec<_>>(),
                            "stats": a.stats(),
                        });
                        println!("{}", pretty(&j)?);
                    } else {
                        println!(
                            "server artifact, format {}, program {:016x} ({} nodes at the TFHE level)",
                            artifact::ARTIFACT_VERSION,
                            a.program_id(),
                            a.program().len()
                        );
                        print!("{}", ios("inputs", &inputs));
                        print!("{}", stats_table(a.stats(), a.params()));
                    }
                }
            }
        }
        artifact::KIND_CLIENT_ARTIFACT => {
            let a = ClientArtifact::from_bytes(&data).map_err(fail)?;
            let g = match args.stage {
                Some(Stage::Tensor) => Some(&a.tensor),
                Some(Stage::Optimized) => Some(&a.optimized),
                None if args.dot => Some(&a.optimized),
                Some(Stage::Tfhe) => {
                    return Err(wrong_stage(args, "tensor and optimized", "server"))
                }
                None => None,
            };
            if let Some(g) = g {
                print!("{}", stage_text(g, args.dot));
            } else if args.stats {
                stats_out(args, a.stats(), &a.params)?;
            } else if args.json {
                let j = serde_json::json!({
                    "kind": kind,
                    "source": a.source,
                    "program_id": format!("{:016x}", a.program_id),
                    "model": model_text(&a.model),
                    "params": a.params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "bootstrap_keys": a.keys.bsk,
                    "keyswitch_keys": a.keys.ksk.iter().map(|(f, t)| format!("{f} -> {t}")).collect::<Vec<_>>(),
                    "inputs": a.inputs.iter().map(|s| serde_json::json!({"name": s.name, "type": type_text(&s.ty)})).collect::<Vec<_>>(),
                    "outputs": a.outputs.iter().map(|s| serde_json::json!({"name": s.name, "type": type_text(&s.ty)})).collect::<Vec<_>>(),
                    "stats": a.stats(),
                });
                println!("{}", pretty(&j)?);
            } else {
                println!(
                    "client artifact, format {}, program {:016x}, compiled from {}",
                    artifact::ARTIFACT_VERSION,
                    a.program_id,
                    a.source
                );
                println!("model: {}", model_text(&a.model));
                println!(
                    "keys: bootstrap keys for {:?}, keyswitch keys {:?}",
                    a.keys.bsk, a.keys.ksk
                );
                print!("{}", ios("inputs", &a.inputs));
                print!("{}", ios("outputs", &a.outputs));
                print!("{}", stats_table(a.stats(), &a.params));
            }
        }
        KIND_COMPRESSED_SERVER_KEYS => {
            let k = io::load_runtime(&args.file, KIND_COMPRESSED_SERVER_KEYS, |d| {
                CompressedServerKeys::from_bytes(d)
            })?;
            println!(
                "evaluation keys (compressed), key generation {:016x}, {} parameter set(s): {}",
                k.key_id(),
                k.params().len(),
                k.sizes()
            );
        }
        KIND_CLIENT_KEYS => {
            let k = io::load_runtime(&args.file, KIND_CLIENT_KEYS, ClientKeys::from_bytes)?;
            println!(
                "secret client keys (keep them on the client), key generation {:016x}, {} parameter set(s)",
                k.key_id(),
                k.params().len()
            );
        }
        artifact::KIND_ENCRYPTED_INPUTS | artifact::KIND_ENCRYPTED_OUTPUTS => {
            let dir = if kind == artifact::KIND_ENCRYPTED_INPUTS {
                Direction::Inputs
            } else {
                Direction::Outputs
            };
            let b = EncryptedBatch::from_bytes(&data, dir).map_err(fail)?;
            println!(
                "{}: {} sample(s) in {} run(s) of program {:016x}, key generation {:016x}, values {:?}",
                artifact::describe_kind(&kind),
                b.samples,
                b.runs.len(),
                b.program_id,
                b.key_id,
                b.names
            );
        }
        other => {
            return Err(CliError(format!(
                "{}: {} cannot be inspected; give an artifact, key or ciphertext file",
                args.file.display(),
                artifact::describe_kind(other)
            )))
        }
    }
    Ok(())
}

fn model_text(m: &ClientModel) -> String {
    match m {
        ClientModel::Integers => "integer program (integers in, integers out)".into(),
        ClientModel::Quantized { spec, onnx } => format!(
            "quantized ML model{}: {} features per sample, {} sample(s) per run, {}-bit inputs, post-processing {:?}",
            if onnx.is_some() { " (ONNX, with its client-side ops)" } else { "" },
            spec.n_features,
            spec.batch,
            spec.input.n_bits,
            spec.output.post
        ),
    }
}

#[cfg(test)]
mod tests {
    /// `compile` uses `inspect` (the statistics table, the JSON printer); `inspect` never uses
    /// `compile`, so the two do not import each other.
    #[test]
    fn inspect_does_not_use_compile() {
        let needles = [
            ["super", "compile"].join("::"),
            ["crate", "compile"].join("::"),
        ];
        for line in include_str!("inspect.rs").lines() {
            let code = line.split("//").next().unwrap_or("");
            for n in &needles {
                assert!(
                    !code.contains(n.as_str()),
                    "inspect.rs uses compile: {line}"
                );
            }
        }
    }
}
