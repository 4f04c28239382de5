//! `veil client upload-keys|run`: the client side of `veil serve` over HTTP/1 (hyper).
//!
//! - `veil client upload-keys --url URL --eval-keys FILE` uploads the evaluation keys once
//!   and prints the key id on stdout.
//! - `veil client run --url URL --key-id ID --input CT_FILE --out CT_FILE` sends encrypted
//!   inputs and writes the encrypted results (decrypt them with `veil decrypt`).
//!
//! Failures (no server, HTTP errors) print one line and exit with code 1.

use super::io;
use super::CliError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Method, Request, StatusCode, Uri};
use std::path::{Path, PathBuf};
use veil_compiler::artifact::{self, Direction};
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;

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
            check_limit(url, eval_keys, data.len())?;
            let answer = request(url, Method::POST, "/keys", data)?;
            let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
            let id = v["key_id"]
                .as_str()
                .ok_or_else(|| CliError(format!("{url}: the server's answer holds no key id")))?;
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
            check_limit(url, input, data.len())?;
            let path = format!("/run/{}", key_id.trim());
            let answer = request(url, Method::POST, &path, data)?;
            artifact::check_kind(&answer, Direction::Outputs.kind())
                .map_err(|e| CliError(format!("{url}: the server answered something else: {e}")))?;
            io::write(out, &answer, false)?;
            println!("wrote {} ({})", out.display(), io::size(answer.len()));
            Ok(())
        }
        ClientCommand::Health { url } => {
            let answer = request(url, Method::GET, "/health", Vec::new())?;
            println!("{}", String::from_utf8_lossy(&answer).trim_end());
            Ok(())
        }
    }
}

/// Reads a file and checks that it holds `kind` (a clear error before any upload).
fn read_checked(path: &Path, kind: &'static str) -> Result<Vec<u8>, CliError> {
    let data = io::read(path)?;
    artifact::check_kind(&data, kind).map_err(|e| io::artifact_error(path, &e))?;
    Ok(data)
}

/// Asks the server for its body limit (`GET /health`) and fails with a clear message when
/// `path` (of `len` bytes) is over it, instead of sending it to be cut off.
fn check_limit(url: &str, path: &Path, len: usize) -> Result<(), CliError> {
    let health = request(url, Method::GET, "/health", Vec::new())?;
    let v: serde_json::Value = serde_json::from_slice(&health).unwrap_or_default();
    match v["max_body_bytes"].as_u64() {
        Some(max) if len as u64 > max => Err(CliError(format!(
            "{} is {}, over the server's request limit of {} (veil serve --max-body-mb)",
            path.display(),
            io::size(len),
            io::size(max as usize)
        ))),
        _ => Ok(()),
    }
}

/// Sends one request to `base` + `path`; the answer's body on success (2xx), else an error
/// holding the server's message.
fn request(base: &str, method: Method, path: &str, body: Vec<u8>) -> Result<Bytes, CliError> {
    let uri: Uri = base.parse().map_err(|e| {
        CliError(format!(
            "--url {base:?}: {e}; give e.g. http://127.0.0.1:8080"
        ))
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(s) => {
            return Err(CliError(format!(
                "--url {base:?}: {s} is not supported, only http (put a TLS proxy in front of the server)"
            )))
        }
        None => {
            return Err(CliError(format!(
                "--url {base:?}: give a full URL, e.g. http://127.0.0.1:8080"
            )))
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| CliError(format!("--url {base:?}: no host")))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(80);
    let target = format!("{}{path}", uri.path().trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the HTTP client: {e}")))?;
    let sent = body.len();
    let (status, answer) = rt.block_on(async move {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                CliError(format!(
                    "cannot connect to {base}: {e}; check the URL and that `veil serve` runs there"
                ))
            })?;
        let http_err = |e: hyper::Error| {
            let mut msg = format!("{base}: the request failed: {e}");
            if sent > 0 {
                msg.push_str(
                    " (the server may have refused a body this large: see its --max-body-mb)",
                );
            }
            CliError(msg)
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(http_err)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(&target)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CliError(format!("--url {base:?}: {e}")))?;
        let resp = sender.send_request(req).await.map_err(http_err)?;
        let status = resp.status();
        let answer = resp
            .into_body()
            .collect()
            .await
            .map_err(http_err)?
            .to_bytes();
        Ok::<_, CliError>((status, answer))
    })?;
    if status.is_success() {
        return Ok(answer);
    }
    Err(CliError(format!(
        "{base}: the server answered {}: {}",
        status_text(status),
        server_message(&answer)
    )))
}

fn status_text(s: StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

/// The `error` field of a JSON error answer, else the body as one line of text.
fn server_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(e) = v["error"].as_str() {
            return e.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "(no message)".into()
    } else {
        line.chars().take(300).collect()
    }
}
