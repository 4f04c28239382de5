//! `veil client upload-keys|run|delete-keys|key-id|health`: the client side of `veil serve`
//! over HTTP/1 ([`veil_server::Client`]).
//!
//! - `veil client upload-keys --url URL --eval-keys FILE` uploads the evaluation keys once
//!   and prints the key id (the SHA-256 of the keys, checked against the server's answer),
//!   with the owner token (`--owner-token FILE`, by default `owner.veil-token` next to the
//!   keys, created at the first upload): the first upload makes its holder the owner.
//! - `veil client run --url URL --key-id ID --input CT_FILE --out CT_FILE` sends encrypted
//!   inputs and writes the encrypted results (decrypt them with `veil decrypt`); with
//!   `--eval-keys FILE` it uploads the keys again when the server forgot them.
//! - `veil client delete-keys --url URL --key-id ID --owner-token FILE` deletes the keys from
//!   the server (their owner only).
//! - `veil client key-id --eval-keys FILE` prints the key id without a server.
//!
//! `https://` URLs need `--ca-cert FILE` (the CA certificates to trust, PEM). Every request
//! is bounded: `--connect-timeout-s`, `--read-timeout-s`, `--max-response-mb`.
//! Uploads, runs and health requests are sent again (`--retries`, after `--retry-wait-s`,
//! doubling) when the connection fails or breaks before the answer, or the server answers
//! busy (502, 504, 503 with `Retry-After`): they are idempotent (content-addressed keys; a run computes the same
//! results from the same inputs and keys), so a server that restarts mid-request costs a
//! retry, not the request. Never after a 4xx, a 500, a 503 without `Retry-After` or a read
//! timeout. Retries are logged with `veil -v`; `run` says "after N attempts". Failures (no
//! server, timeouts, HTTP errors) print one line and exit with code 1.

use super::io;
use super::CliError;
use std::path::{Path, PathBuf};
use std::time::Duration;
use veil_runtime::artifact::{check_kind, Direction};
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_server::client::{OwnerToken, OWNER_TOKEN_FILE};
use veil_server::{Client, ClientError, ClientOptions};

/// Arguments of `veil client`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys\n  veil client run --url http://127.0.0.1:8080 --key-id KEY_ID --input x.veil-ct --out y.veil-ct\n  veil client delete-keys --url http://127.0.0.1:8080 --key-id KEY_ID --owner-token keys/owner.veil-token\n  veil client health --url https://veil.internal:8443 --ca-cert tls/ca.pem\n  veil client key-id --eval-keys keys/eval.veil-keys\n  veil client health --url http://127.0.0.1:8080 --connect-timeout-s 2"
)]
pub struct ClientArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
    /// Seconds to wait for the connection to the server.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub connect_timeout_s: f64,
    /// Seconds to wait for the server: for its answer to begin (a run's whole computation)
    /// and between two pieces of it.
    #[arg(long, global = true, default_value_t = 900.0)]
    pub read_timeout_s: f64,
    /// Largest answer to read, in MiB (encrypted results).
    #[arg(long, global = true, default_value_t = 1024)]
    pub max_response_mb: u64,
    /// PEM file of the CA certificate(s) to trust for an https:// URL (the CA that signed
    /// the server's certificate, or the system's CA bundle); the server's certificate must
    /// also name the URL's host or IP address.
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Times to send an upload, run or health request again when the connection fails or
    /// breaks before the answer (e.g. a server restart) or a proxy or server answers 502, 504
    /// or 503 with Retry-After; never after another error (4xx, 500) or a read timeout. 0:
    /// never. `veil -v` logs each retry.
    #[arg(long, global = true, default_value_t = 3)]
    pub retries: u32,
    /// Seconds to wait before the first retry; each later wait is twice the one before (at
    /// most 30 s).
    #[arg(long, global = true, default_value_t = 0.5)]
    pub retry_wait_s: f64,
}

/// When and how often a failed request is sent again (`--retries`, `--retry-wait-s`).
#[derive(Clone, Copy, Debug)]
struct Retry {
    retries: u32,
    first_wait: Duration,
}

/// The longest wait between two attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

impl Retry {
    /// Calls `attempt` until it succeeds, fails with an error that is not
    /// [`ClientError::is_retryable`], or has been retried `self.retries` times; the answer
    /// and the number of attempts. Each retry is logged (`veil -v`); a retryable error that
    /// ends the attempts says so.
    fn run<T>(
        self,
        mut attempt: impl FnMut() -> Result<T, ClientError>,
    ) -> Result<(T, u32), ClientError> {
        let mut wait = self.first_wait;
        let mut n = 0;
        loop {
            match attempt() {
                Ok(v) => return Ok((v, n + 1)),
                Err(e) if e.is_retryable() && n < self.retries => {
                    n += 1;
                    // A server's Retry-After is honoured, up to the longest wait.
                    let asked = match &e {
                        ClientError::Status {
                            retry_after: Some(d),
                            ..
                        } => (*d).min(MAX_RETRY_WAIT),
                        _ => Duration::ZERO,
                    };
                    let this = wait.max(asked);
                    tracing::warn!(
                        "{e}; sending it again in {:.1} s (retry {n} of {})",
                        this.as_secs_f64(),
                        self.retries
                    );
                    std::thread::sleep(this);
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
                Err(e) if e.is_retryable() => {
                    let hint = if self.retries == 0 {
                        " (veil client --retries N sends it again)".to_string()
                    } else {
                        format!(" (gave up after {} attempts; veil client --retries)", n + 1)
                    };
                    return Err(with_hint(e, &hint));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `" after N attempts"` when a request took more than one, else nothing.
fn attempts_note(n: u32) -> String {
    if n > 1 {
        format!(" after {n} attempts")
    } else {
        String::new()
    }
}

/// `e` with `hint` appended to its message.
fn with_hint(e: ClientError, hint: &str) -> ClientError {
    match e {
        ClientError::Connection(m) => ClientError::Connection(m + hint),
        ClientError::Failed(m) => ClientError::Failed(m + hint),
        ClientError::BadFile(m) => ClientError::BadFile(m + hint),
        ClientError::Status {
            url,
            status,
            message,
            retry_after,
        } => ClientError::Status {
            url,
            status,
            message: message + hint,
            retry_after,
        },
        e @ ClientError::TooLarge { .. } => e,
    }
}

/// The subcommands of `veil client`.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Upload evaluation keys to a `veil serve` server; print their key id.
    #[command(
        after_help = "Example:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys"
    )]
    UploadKeys {
        /// Base URL of the server (http://host:port, or https:// with --ca-cert).
        #[arg(long)]
        url: String,
        /// The evaluation keys from `veil keygen`.
        #[arg(long)]
        eval_keys: PathBuf,
        /// The owner token sent with the keys (default: owner.veil-token next to
        /// --eval-keys, created with mode 0600 if missing); the first upload of the keys
        /// makes its holder their owner, who alone can delete them.
        #[arg(long)]
        owner_token: Option<PathBuf>,
    },
    /// Run the program on encrypted inputs on a `veil serve` server; write the encrypted
    /// results.
    #[command(
        after_help = "Example:\n  veil client run --url http://127.0.0.1:8080 --key-id 3f2a9c0d11e4b7a8 --input x.veil-ct --out y.veil-ct"
    )]
    Run {
        /// Base URL of the server (http://host:port, or https:// with --ca-cert).
        #[arg(long)]
        url: String,
        /// The key id printed by `veil client upload-keys` (or `veil client key-id`); may be
        /// left out when --eval-keys is given.
        #[arg(long, required_unless_present = "eval_keys")]
        key_id: Option<String>,
        /// The evaluation keys: uploaded first when the server does not know the key id
        /// (evicted, deleted, or a restart without --key-dir), then the run is sent again.
        #[arg(long)]
        eval_keys: Option<PathBuf>,
        /// The owner token sent when the keys are uploaded again (default: owner.veil-token
        /// next to --eval-keys).
        #[arg(long, requires = "eval_keys")]
        owner_token: Option<PathBuf>,
        /// The encrypted inputs from `veil encrypt`.
        #[arg(long)]
        input: PathBuf,
        /// The encrypted results to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete evaluation keys from a `veil serve` server (memory and key store).
    #[command(
        after_help = "Example:\n  veil client delete-keys --url http://127.0.0.1:8080 --key-id KEY_ID --owner-token keys/owner.veil-token"
    )]
    DeleteKeys {
        /// Base URL of the server (http://host:port, or https:// with --ca-cert).
        #[arg(long)]
        url: String,
        /// The key id printed by `veil client upload-keys`.
        #[arg(long)]
        key_id: String,
        /// The owner token the keys were first uploaded with (owner.veil-token next to the
        /// evaluation keys).
        #[arg(long)]
        owner_token: PathBuf,
    },
    /// Print the key id of evaluation keys (the SHA-256 of the keys; no server needed).
    #[command(after_help = "Example:\n  veil client key-id --eval-keys keys/eval.veil-keys")]
    KeyId {
        /// The evaluation keys from `veil keygen`.
        #[arg(long)]
        eval_keys: PathBuf,
    },
    /// Print the server's program info (JSON).
    #[command(after_help = "Example:\n  veil client health --url http://127.0.0.1:8080")]
    Health {
        /// Base URL of the server (http://host:port, or https:// with --ca-cert).
        #[arg(long)]
        url: String,
    },
}

/// Runs `veil client`.
pub fn run(args: &ClientArgs) -> Result<(), CliError> {
    let seconds = |v: f64, flag: &str| {
        if v.is_finite() && v > 0.0 && v <= 1e9 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(CliError(format!(
                "{flag}: give a number of seconds above 0, e.g. {flag} 30"
            )))
        }
    };
    let options = ClientOptions {
        connect_timeout: seconds(args.connect_timeout_s, "--connect-timeout-s")?,
        read_timeout: seconds(args.read_timeout_s, "--read-timeout-s")?,
        max_response: usize::try_from(args.max_response_mb.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        ca_cert: args.ca_cert.clone(),
    };
    let retry = Retry {
        retries: args.retries,
        first_wait: if (0.0..=3600.0).contains(&args.retry_wait_s) {
            Duration::from_secs_f64(args.retry_wait_s)
        } else {
            return Err(CliError(
                "--retry-wait-s: give a number of seconds from 0 to 3600, e.g. --retry-wait-s 1"
                    .into(),
            ));
        },
    };
    let client = |url: &str| Client::with_options(url, options.clone());
    match &args.command {
        ClientCommand::UploadKeys {
            url,
            eval_keys,
            owner_token,
        } => {
            let data = read_checked(eval_keys, KIND_COMPRESSED_SERVER_KEYS)?;
            let (token_path, token) = owner_of(eval_keys, owner_token.as_deref())?;
            let c = client(url);
            let (up, _) = retry
                .run(|| c.upload_keys_as(data.clone(), Some(&token)))
                .map_err(|e| about(eval_keys, e))?;
            warn_not_owner(&up, &token_path);
            println!("{}", up.key_id);
            Ok(())
        }
        ClientCommand::Run {
            url,
            key_id,
            eval_keys,
            owner_token,
            input,
            out,
        } => {
            let keys = match eval_keys {
                Some(path) => {
                    let data = read_checked(path, KIND_COMPRESSED_SERVER_KEYS)?;
                    let id =
                        veil_server::client::key_id_of_file(&data).map_err(|e| about(path, e))?;
                    let token = owner_of(path, owner_token.as_deref())?;
                    Some((path, data, id, token))
                }
                None => None,
            };
            let id = match (key_id, &keys) {
                (Some(given), Some((path, _, id, _))) if given.trim() != id => {
                    return Err(CliError(format!(
                        "--key-id {given} is not the key id of {} ({id}); leave --key-id out or give the matching keys",
                        path.display()
                    )))
                }
                (Some(given), _) => given.trim().to_string(),
                (None, Some((_, _, id, _))) => id.clone(),
                (None, None) => {
                    return Err(CliError(
                        "give --key-id or --eval-keys (see veil client run --help)".into(),
                    ))
                }
            };
            let data = read_checked(input, Direction::Inputs.kind())?;
            let c = client(url);
            // Each attempt: the run, and with --eval-keys, when the server does not know the
            // keys, an upload and the run again. Both are idempotent, so an attempt cut short
            // by a broken connection is safe to repeat.
            let mut upload_failed = None;
            let (answer, attempts) = retry
                .run(|| match &keys {
                    None => c.run(&id, data.clone()),
                    Some((path, keys, _, (token_path, token))) => match c.run(&id, data.clone()) {
                        Err(e) if e.is_not_found() => {
                            match c.upload_keys_as(keys.clone(), Some(token)) {
                                Err(e) => {
                                    upload_failed = Some(*path);
                                    return Err(e);
                                }
                                Ok(up) => warn_not_owner(&up, token_path),
                            }
                            upload_failed = None;
                            c.run(&id, data.clone())
                        }
                        r => r,
                    },
                })
                .map_err(|e| about(upload_failed.unwrap_or(input), e))?;
            io::write(out, &answer, false)?;
            println!(
                "wrote {} ({}){}",
                out.display(),
                io::size(answer.len()),
                attempts_note(attempts)
            );
            Ok(())
        }
        ClientCommand::DeleteKeys {
            url,
            key_id,
            owner_token,
        } => {
            let token = OwnerToken::load(owner_token).map_err(|e| CliError(e.to_string()))?;
            client(url)
                .delete_keys(key_id, &token)
                .map_err(|e| CliError(e.to_string()))?;
            println!("deleted {}", key_id.trim());
            Ok(())
        }
        ClientCommand::KeyId { eval_keys } => {
            let data = read_checked(eval_keys, KIND_COMPRESSED_SERVER_KEYS)?;
            let id = veil_server::client::key_id_of_file(&data).map_err(|e| about(eval_keys, e))?;
            println!("{id}");
            Ok(())
        }
        ClientCommand::Health { url } => {
            let c = client(url);
            let (v, _) = retry
                .run(|| c.health())
                .map_err(|e| CliError(e.to_string()))?;
            println!("{v}");
            Ok(())
        }
    }
}

/// The owner token to send with the keys `eval_keys`: the file `given`, else
/// `owner.veil-token` next to the keys, created when missing.
fn owner_of(eval_keys: &Path, given: Option<&Path>) -> Result<(PathBuf, OwnerToken), CliError> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => eval_keys
            .parent()
            .unwrap_or(Path::new("."))
            .join(OWNER_TOKEN_FILE),
    };
    let token = OwnerToken::load_or_create(&path).map_err(|e| CliError(e.to_string()))?;
    Ok((path, token))
}

/// Says on stderr when the keys belong to another token (somebody uploaded them first with
/// theirs): they run, but this client cannot delete them.
fn warn_not_owner(up: &veil_server::client::Uploaded, token: &Path) {
    if up.owned == Some(false) {
        eprintln!(
            "warning: key id {} was first uploaded with another owner token than {}; the keys work, but only that token can delete them",
            up.key_id,
            token.display()
        );
    }
}

/// A client error about the file `path` that was sent.
fn about(path: &Path, e: ClientError) -> CliError {
    match e {
        ClientError::TooLarge { .. } | ClientError::BadFile(_) => {
            CliError(format!("{}: {e}", path.display()))
        }
        e @ (ClientError::Failed(_) | ClientError::Connection(_) | ClientError::Status { .. }) => {
            CliError(e.to_string())
        }
    }
}

/// Reads a file and checks that it holds `kind` (a clear error before any upload).
fn read_checked(path: &Path, kind: &'static str) -> Result<Vec<u8>, CliError> {
    let data = io::read(path)?;
    check_kind(&data, kind).map_err(|e| io::artifact_error(path, &e))?;
    Ok(data)
}
