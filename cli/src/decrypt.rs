//! `veil decrypt --client CLIENT_ARTIFACT --keys SECRET --input CT_FILE [--format csv|json]
//! [--out FILE]`: decrypt the server's results and decode them, one row per sample: the
//! program's integer outputs, or for ML models the dequantized, post-processed predictions
//! (class labels and probabilities, or values).

use super::io;
use super::CliError;
use std::path::PathBuf;
use veil_ml::artifact::ClientArtifact;
use veil_runtime::artifact::{Direction, EncryptedBatch, KIND_CLIENT_ARTIFACT};
use veil_runtime::serial::KIND_CLIENT_KEYS;
use veil_runtime::ClientKeys;

/// Output formats of `veil decrypt`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A header, then one comma-separated row per sample.
    Csv,
    /// An array with one object per sample.
    Json,
}

/// Arguments of `veil decrypt`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil decrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input y.veil-ct\n  veil decrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input y.veil-ct --format json --out y.json"
)]
pub struct DecryptArgs {
    /// The client artifact from `veil compile`.
    #[arg(long)]
    pub client: PathBuf,
    /// The secret keys from `veil keygen`.
    #[arg(long)]
    pub keys: PathBuf,
    /// The encrypted results from `veil run`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print values outside their output's type or compiled interval (a noise failure, a fault
    /// or tampering) with a warning on stderr instead of failing.
    #[arg(long)]
    pub warn_out_of_range: bool,
}

/// Runs `veil decrypt`.
pub fn run(args: &DecryptArgs) -> Result<(), CliError> {
    let client = io::load(
        &args.client,
        KIND_CLIENT_ARTIFACT,
        ClientArtifact::from_bytes,
    )?;
    let keys = io::load_runtime(&args.keys, KIND_CLIENT_KEYS, ClientKeys::from_bytes)?;
    client
        .check_keys(&keys)
        .map_err(|e| io::artifact_error(&args.keys, &e))?;
    let batch = io::load(&args.input, Direction::Outputs.kind(), |d| {
        EncryptedBatch::from_bytes(d, Direction::Outputs)
    })?;
    let outs = if args.warn_out_of_range {
        let (outs, anomalies) = client
            .decrypt_lenient(&keys, &batch)
            .map_err(|e| io::artifact_error(&args.input, &e))?;
        for a in anomalies {
            eprintln!("warning: {}: {a}", args.input.display());
        }
        outs
    } else {
        client
            .decrypt(&keys, &batch)
            .map_err(|e| io::artifact_error(&args.input, &e))?
    };
    if let Some(b) = client
        .stats()
        .approx_deviation
        .iter()
        .max()
        .filter(|b| **b > 0)
    {
        eprintln!(
            "note: {}: the program rounds approximately (as compiled), so each output element \
             may differ from exact rounding by up to {b} integer steps before decoding \
             (`veil compile --rounding-method exact` for exact results)",
            args.client.display()
        );
    }
    let pred = client
        .decode(&outs, batch.samples)
        .map_err(|e| io::artifact_error(&args.input, &e))?;
    let text = match args.format {
        Format::Csv => pred.to_csv(),
        Format::Json => format!("{}\n", super::compile::pretty(&pred.to_json())?),
    };
    match &args.out {
        Some(p) => io::write(p, text.as_bytes(), false)?,
        None => print!("{text}"),
    }
    Ok(())
}
