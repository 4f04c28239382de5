//! `veil keygen --client CLIENT_ARTIFACT --out DIR [--seed N]`: generate the secret client
//! keys (`secret.veil-keys`, kept by the client) and the compressed evaluation keys
//! (`eval.veil-keys`, uploaded to the server once).

use super::io;
use super::CliError;
use std::path::PathBuf;
use std::time::Instant;
use veil_ml::artifact::ClientArtifact;
use veil_runtime::artifact::{self, KIND_CLIENT_ARTIFACT};

/// Arguments of `veil keygen`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil keygen --client build/client.veil-artifact --out keys\n  veil keygen --client build/client.veil-artifact --out keys --seed 42   # reproducible, for tests"
)]
pub struct KeygenArgs {
    /// The client artifact from `veil compile`.
    #[arg(long)]
    pub client: PathBuf,
    /// Folder for `secret.veil-keys` and `eval.veil-keys`.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Seed: equal seeds give equal keys (for tests). Default: a fresh random seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs `veil keygen`.
pub fn run(args: &KeygenArgs) -> Result<(), CliError> {
    let client = io::load(
        &args.client,
        KIND_CLIENT_ARTIFACT,
        ClientArtifact::from_bytes,
    )?;
    let seed: u128 = match args.seed {
        Some(s) => s as u128,
        None => rand::random(),
    };
    let t = Instant::now();
    let spin = io::spinner("generating keys");
    let (secret, eval) = client
        .keygen(seed)
        .map_err(|e| io::artifact_error(&args.client, &e))?;
    spin.finish_and_clear();
    tracing::debug!(elapsed = ?t.elapsed(), "keys generated");
    let sk = secret
        .to_bytes()
        .map_err(|e| CliError(format!("cannot serialize the secret keys: {e}")))?;
    let ek = eval
        .to_bytes()
        .map_err(|e| CliError(format!("cannot serialize the evaluation keys: {e}")))?;
    let sp = args.out.join(artifact::SECRET_KEYS_FILE);
    let ep = args.out.join(artifact::EVAL_KEYS_FILE);
    io::write(&sp, &sk, true)?;
    io::write(&ep, &ek, false)?;
    println!(
        "key generation {:016x} in {:.2?}: wrote {} (secret: keep it on the client) and {} ({}, upload it to the server once)",
        secret.key_id(),
        t.elapsed(),
        sp.display(),
        ep.display(),
        io::size(ek.len())
    );
    Ok(())
}
