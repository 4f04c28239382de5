//! `veil client upload-keys|run|health`: the client side of `veil serve` over HTTP/1
//! ([`veil_server::Client`]).
//!
//! - `veil client upload-keys --url URL --eval-keys FILE` uploads the evaluation keys once
//!   and prints the key id on stdout.
//! - `veil client run --url URL --key-id ID --input CT_FILE --out CT_FILE` sends encrypted
//!   inputs and writes the encrypted results (decrypt them with `veil decrypt`).
//!
//! Failures (no server, HTTP errors) print one line and exit with code 1.

use super::io;
use super::CliError;
use std::path::{Path, PathBuf};
use veil_runtime::artifact::{check_kind, Direction};
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_server::{Client, ClientError};

/// Arguments of `veil client`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys\n  veil client run --url http://127.0.0.1:8080 --key-id 3f2a9c0d11e4b7a8 --input x.veil-ct --out y.veil-ct\n  veil client health --url http://127.0.0.1:8080"
)]
pub struct ClientArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The subcommands of `veil client`.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Upload evaluation keys to a `veil serve` server; print their key id.
    #[command(
        after_help = "Example:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys"
    )]
    UploadKeys {
        /// Base URL of the server (http only).
        #[arg(long)]
        url: String,
        /// The evaluation keys from `veil keygen`.
        #[arg(long)]
        eval_keys: PathBuf,
    },
    /// Run the program on encrypted inputs on a `veil serve` server; write the encrypted
    /// results.
    #[command(
        after_help = "Example:\n  veil client run --url http://127.0.0.1:8080 --key-id 3f2a9c0d11e4b7a8 --input x.veil-ct --out y.veil-ct"
    )]
    Run {
        /// Base URL of the server (http only).
        #[arg(long)]
        url: String,
        /// The key id printed by `veil client upload-keys`.
        #[arg(long)]
        key_id: String,
        /// The encrypted inputs from `veil encrypt`.
        #[arg(long)]
        input: PathBuf,
        /// The encrypted results to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the server's program info (JSON).
    #[command(after_help = "Example:\n  veil client health --url http://127.0.0.1:8080")]
    Health {
        /// Base URL of the server (http only).
        #[arg(long)]
        url: String,
    },
}

/// Runs `veil client`.
pub fn run(args: &ClientArgs) -> Result<(), CliError> {
    match &args.command {
        ClientCommand::UploadKeys { url, eval_keys } => {
            let data = read_checked(eval_keys, KIND_COMPRESSED_SERVER_KEYS)?;
            let id = Client::new(url)
                .upload_keys(data)
                .map_err(|e| about(eval_keys, e))?;
            println!("{id}");
            Ok(())
        }
        ClientCommand::Run {
            url,
            key_id,
            input,
            out,
        } => {
            let data = read_checked(input, Direction::Inputs.kind())?;
            let answer = Client::new(url)
                .run(key_id, data)
                .map_err(|e| about(input, e))?;
            io::write(out, &answer, false)?;
            println!("wrote {} ({})", out.display(), io::size(answer.len()));
            Ok(())
        }
        ClientCommand::Health { url } => {
            let v = Client::new(url)
                .health()
                .map_err(|e| CliError(e.to_string()))?;
            println!("{v}");
            Ok(())
        }
    }
}

/// A client error about the file `path` that was sent.
fn about(path: &Path, e: ClientError) -> CliError {
    match e {
        ClientError::TooLarge { .. } => CliError(format!("{}: {e}", path.display())),
        ClientError::Failed(msg) => CliError(msg),
    }
}

/// Reads a file and checks that it holds `kind` (a clear error before any upload).
fn read_checked(path: &Path, kind: &'static str) -> Result<Vec<u8>, CliError> {
    let data = io::read(path)?;
    check_kind(&data, kind).map_err(|e| io::artifact_error(path, &e))?;
    Ok(data)
}
