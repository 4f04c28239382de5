//! `veil run --server SERVER_ARTIFACT --eval-keys EVAL_KEYS --input CT_FILE --out CT_FILE
//! [--threads N]`: the server side. Runs the program on every encrypted run of the batch with
//! the evaluation keys only: no secret key and no client artifact is read.

use super::io;
use super::CliError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use veil_runtime::artifact::{Direction, EncryptedBatch, ServerArtifact, KIND_SERVER_ARTIFACT};
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_runtime::{CompressedServerKeys, Executor};

/// Arguments of `veil run`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil run --server build/server.veil-artifact --eval-keys keys/eval.veil-keys --input x.veil-ct --out y.veil-ct\n  veil run --server build/server.veil-artifact --eval-keys keys/eval.veil-keys --input x.veil-ct --out y.veil-ct --threads 4"
)]
pub struct RunArgs {
    /// The server artifact from `veil compile`.
    #[arg(long)]
    pub server: PathBuf,
    /// The evaluation keys from `veil keygen`.
    #[arg(long)]
    pub eval_keys: PathBuf,
    /// The encrypted inputs from `veil encrypt`.
    #[arg(long)]
    pub input: PathBuf,
    /// The encrypted results to write (send them back to the client).
    #[arg(long)]
    pub out: PathBuf,
    /// Worker threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs `veil run`.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let server = io::load(
        &args.server,
        KIND_SERVER_ARTIFACT,
        ServerArtifact::from_bytes,
    )?;
    let keys = io::load_runtime(&args.eval_keys, KIND_COMPRESSED_SERVER_KEYS, |d| {
        CompressedServerKeys::from_bytes(d)
    })?;
    server
        .check_keys(&keys)
        .map_err(|e| io::artifact_error(&args.eval_keys, &e))?;
    let batch = io::load(&args.input, Direction::Inputs.kind(), |d| {
        EncryptedBatch::from_bytes(d, Direction::Inputs)
    })?;
    server
        .check_batch(&batch, keys.key_id())
        .map_err(|e| io::artifact_error(&args.input, &e))?;
    let exec = Executor::new(args.threads).map_err(|e| CliError(format!("--threads: {e}")))?;
    let t = Instant::now();
    let spin = io::spinner("expanding evaluation keys");
    let keys = exec.install(|| keys.decompress());
    spin.finish_and_clear();
    tracing::debug!(elapsed = ?t.elapsed(), "evaluation keys expanded");
    let bar = io::bar(batch.runs.len() as u64, "running");
    let b2 = bar.clone();
    let exec = exec.with_progress(Arc::new(move |p: &veil_runtime::Progress| {
        b2.set_message(format!("{}/{} PBS", p.pbs_done, p.pbs_total));
    }));
    let t = Instant::now();
    let out = server
        .run(&exec, &keys, &batch, |i| {
            bar.set_position(i as u64 + 1);
            tracing::debug!(run = i + 1, elapsed = ?t.elapsed(), "run done");
        })
        .map_err(|e| io::artifact_error(&args.input, &e))?;
    bar.finish_and_clear();
    let elapsed = t.elapsed();
    let bytes = out
        .to_bytes(Direction::Outputs)
        .map_err(|e| io::artifact_error(&args.out, &e))?;
    io::write(&args.out, &bytes, false)?;
    println!(
        "ran {} run(s) on {} thread(s) in {:.2?}: wrote {} ({})",
        out.runs.len(),
        exec.threads(),
        elapsed,
        args.out.display(),
        io::size(bytes.len())
    );
    Ok(())
}
