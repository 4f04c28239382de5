//! `veil keygen --client CLIENT_ARTIFACT --out DIR [--seed N] [--force]`: generate the secret
//! client keys (`secret.veil-keys`, kept by the client) and the compressed evaluation keys
//! (`eval.veil-keys`, uploaded to the server once).
//!
//! The secret key file is created new, readable by its owner only (mode 0600), written whole
//! before it appears, and never written through a symbolic link. An existing secret key is
//! never replaced unless `--force` is given.

use super::io;
use super::CliError;
use std::path::PathBuf;
use std::time::Instant;
use veil_ml::artifact::ClientArtifact;
use veil_runtime::artifact::{self, KIND_CLIENT_ARTIFACT};

/// Arguments of `veil keygen`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil keygen --client build/client.veil-artifact --out keys\n  veil keygen --client build/client.veil-artifact --out keys --seed 42   # reproducible, for tests\n  veil keygen --client build/client.veil-artifact --out keys --force     # replace existing keys"
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
    /// Replace an existing `secret.veil-keys` (what the old key encrypted can then no longer
    /// be decrypted). Without it keygen refuses to overwrite a secret key.
    #[arg(long)]
    pub force: bool,
}

/// Runs `veil keygen`.
pub fn run(args: &KeygenArgs) -> Result<(), CliError> {
    let sp = args.out.join(artifact::SECRET_KEYS_FILE);
    let ep = args.out.join(artifact::EVAL_KEYS_FILE);
    // Before the (slow) key generation; write_secret checks again when it creates the file.
    io::check_secret_free(&sp, args.force)?;
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
    io::write_secret(&sp, &sk, args.force)?;
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
