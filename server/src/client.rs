//! The client side of [`crate::serve()`] over HTTP/1 (hyper): upload evaluation keys, run a
//! program on encrypted inputs, read the server's program info. `veil client` is a thin
//! command line over [`Client`].
//!
//! Failures (no server, HTTP errors, answers of another kind) are one-line [`ClientError`]s
//! holding the server's message.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Method, Request, StatusCode, Uri};
use veil_runtime::artifact::{check_kind, Direction};
use veil_runtime::keys::human_bytes;
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;

/// A failed request: one line, with the server's message where it sent one.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The body to send is over the server's request limit (`GET /health`).
    #[error(
        "{} is over the server's request limit of {} (veil serve --max-body-mb)",
        human_bytes(*len),
        human_bytes(*max)
    )]
    TooLarge {
        /// Bytes to send.
        len: u64,
        /// The server's limit.
        max: u64,
    },
    /// Anything else: no server, HTTP errors, answers of another kind.
    #[error("{0}")]
    Failed(String),
}

/// A `veil serve` server at a base URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
}

impl Client {
    /// A client of the server at `url` (nothing is sent yet).
    pub fn new(url: &str) -> Self {
        Client {
            url: url.to_string(),
        }
    }

    /// The server's program info (`GET /health`).
    pub fn health(&self) -> Result<serde_json::Value, ClientError> {
        let answer = request(&self.url, Method::GET, "/health", Vec::new())?;
        serde_json::from_slice(&answer).map_err(|e| {
            ClientError::Failed(format!(
                "{}: the server's health answer is not JSON ({e}); is this a veil server?",
                self.url
            ))
        })
    }

    /// Uploads an evaluation-key file (`eval.veil-keys`); returns the key id.
    pub fn upload_keys(&self, eval_keys: Vec<u8>) -> Result<String, ClientError> {
        check_kind(&eval_keys, KIND_COMPRESSED_SERVER_KEYS)
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        self.check_limit(eval_keys.len())?;
        let answer = request(&self.url, Method::POST, "/keys", eval_keys)?;
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        v["key_id"].as_str().map(str::to_string).ok_or_else(|| {
            ClientError::Failed(format!("{}: the server's answer holds no key id", self.url))
        })
    }

    /// Runs the program on an encrypted-inputs file under `key_id`; returns the
    /// encrypted-results file.
    pub fn run(&self, key_id: &str, inputs: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        check_kind(&inputs, Direction::Inputs.kind())
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        self.check_limit(inputs.len())?;
        let path = format!("/run/{}", key_id.trim());
        let answer = request(&self.url, Method::POST, &path, inputs)?;
        check_kind(&answer, Direction::Outputs.kind()).map_err(|e| {
            ClientError::Failed(format!(
                "{}: the server answered something else: {e}",
                self.url
            ))
        })?;
        Ok(answer.to_vec())
    }

    /// Asks the server for its body limit (`GET /health`) and fails with a clear message when
    /// a body of `len` bytes is over it, instead of sending it to be cut off.
    fn check_limit(&self, len: usize) -> Result<(), ClientError> {
        let v = self.health()?;
        match v["max_body_bytes"].as_u64() {
            Some(max) if len as u64 > max => Err(ClientError::TooLarge {
                len: len as u64,
                max,
            }),
            _ => Ok(()),
        }
    }
}

/// Sends one request to `base` + `path`; the answer's body on success (2xx), else an error
/// holding the server's message.
pub fn request(
    base: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<Bytes, ClientError> {
    let uri: Uri = base.parse().map_err(|e| {
        ClientError::Failed(format!(
            "--url {base:?}: {e}; give e.g. http://127.0.0.1:8080"
        ))
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(s) => {
            return Err(ClientError::Failed(format!(
                "--url {base:?}: {s} is not supported, only http (put a TLS proxy in front of the server)"
            )))
        }
        None => {
            return Err(ClientError::Failed(format!(
                "--url {base:?}: give a full URL, e.g. http://127.0.0.1:8080"
            )))
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::Failed(format!("--url {base:?}: no host")))?
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
        .map_err(|e| ClientError::Failed(format!("cannot start the HTTP client: {e}")))?;
    let sent = body.len();
    let (status, answer) = rt.block_on(async move {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                ClientError::Failed(format!(
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
            ClientError::Failed(msg)
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
            .map_err(|e| ClientError::Failed(format!("--url {base:?}: {e}")))?;
        let resp = sender.send_request(req).await.map_err(http_err)?;
        let status = resp.status();
        let answer = resp
            .into_body()
            .collect()
            .await
            .map_err(http_err)?
            .to_bytes();
        Ok::<_, ClientError>((status, answer))
    })?;
    if status.is_success() {
        return Ok(answer);
    }
    Err(ClientError::Failed(format!(
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
