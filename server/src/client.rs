//! The client side of [`crate::serve()`] over HTTP/1 (hyper), plain or over TLS (`https://`
//! URLs with [`ClientOptions::ca_cert`]: the server's certificate must chain to a CA in that
//! file and name the URL's host or IP address): upload evaluation keys, run a program on
//! encrypted inputs, delete keys, read the server's program info. `veil client` is a thin
//! command line over [`Client`].
//!
//! Ownership: [`OwnerToken`] is a random secret a client keeps next to its keys
//! (`owner.veil-token`, mode 0600); uploads send it (`Authorization: Bearer`) so that the
//! first upload makes its holder the keys' owner, and only the owner can delete them.
//!
//! The client does not trust the server: connecting and every wait for the server are bounded
//! ([`ClientOptions`]), answers over a size limit are cut off, the key id a server answers is
//! checked against the one computed from the uploaded keys, and answers are checked for their
//! kind. Failures (no server, timeouts, HTTP errors, answers of another kind) are one-line
//! [`ClientError`]s holding the server's message.

use crate::store;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Method, Request, StatusCode, Uri};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use veil_runtime::artifact::{check_kind, ArtifactError, Direction};
use veil_runtime::keys::human_bytes;
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_runtime::CompressedServerKeys;

/// Largest `GET /health` answer read (program info is small).
const MAX_HEALTH_ANSWER: usize = 1 << 20;

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
    /// The file to send is not what it should be (wrong kind, damaged).
    #[error("{0}")]
    BadFile(String),
    /// The server answered with an error status.
    #[error("{url}: the server answered {}: {message}", status_text(*status))]
    Status {
        /// The server's base URL.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
        /// The wait the server asked for before a new attempt (`Retry-After` in seconds), if
        /// it sent one.
        retry_after: Option<Duration>,
    },
    /// No answer: the connection could not be made, or it broke (closed, reset) before the
    /// whole answer arrived, e.g. because the server stopped or restarted. The server may or
    /// may not have done the request; resending is safe for idempotent requests (uploads,
    /// runs) and is what [`ClientError::is_retryable`] allows.
    #[error("{0}")]
    Connection(String),
    /// Anything else: timeouts, broken answers, answers of another kind.
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// Whether the server answered 404 (an unknown key id: never uploaded, evicted or
    /// deleted).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// Whether sending the same request again may succeed: no connection or a broken one
    /// ([`ClientError::Connection`]: a server that stopped or restarted), a proxy that could
    /// not reach its server (502, 504), or a server or proxy that answered 503 with a
    /// `Retry-After` (the HTTP way to say "busy, come back"). Never for the other statuses (a
    /// 4xx is the request's fault and gets the same answer again; a 500 is the server's key
    /// store; `veil serve`'s own 503s come after a request already waited its whole
    /// `--request-timeout-s`, or from a full key store, and sending again would only add
    /// load), timeouts waiting for an answer (the server is working) or bad files.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connection(_) => true,
            ClientError::Status {
                status,
                retry_after,
                ..
            } => match *status {
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => true,
                StatusCode::SERVICE_UNAVAILABLE => retry_after.is_some(),
                _ => false,
            },
            ClientError::TooLarge { .. } | ClientError::BadFile(_) | ClientError::Failed(_) => {
                false
            }
        }
    }
}

/// Limits of a [`Client`]: how long it waits and how much it reads.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Longest wait for the connection to the server.
    pub connect_timeout: Duration,
    /// Longest wait for the server: for the answer to begin after the request is sent, and
    /// between two pieces of the answer.
    pub read_timeout: Duration,
    /// Largest answer read (encrypted results).
    pub max_response: usize,
    /// PEM file of the CA certificates trusted for `https://` URLs (required for them).
    pub ca_cert: Option<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(900),
            max_response: 1 << 30,
            ca_cert: None,
        }
    }
}

/// File name of the owner token next to the evaluation keys (`veil client` default).
pub const OWNER_TOKEN_FILE: &str = "owner.veil-token";

/// A secret that makes its holder the owner of uploaded keys (see the module documentation):
/// 64 hex digits from the operating system's random source. Its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerToken(String);

impl std::fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerToken(..)")
    }
}

impl OwnerToken {
    /// A new random token.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        OwnerToken(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    /// The token as sent (`Authorization: Bearer <token>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a token file (written by [`OwnerToken::create`]); errors name the file.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let bad = |why: String| ClientError::BadFile(format!("{}: {why}", path.display()));
        let meta = std::fs::metadata(path)
            .map_err(|e| bad(format!("cannot read the owner token: {e}")))?;
        if !meta.is_file() || meta.len() > 1024 {
            return Err(bad("not an owner token file".into()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the owner token: {e}")))?;
        let token = text.trim().to_string();
        store::owner_hash(&token).map_err(|e| bad(format!("not an owner token: {e}")))?;
        Ok(OwnerToken(token))
    }

    /// Writes a new random token to `path`: written with mode 0600 to a temporary file beside
    /// it, then hard-linked to `path`, which never replaces an existing file or writes
    /// through a symbolic link, and never shows a half-written token to a concurrent reader.
    pub fn create(path: &Path) -> Result<Self, ClientError> {
        Self::create_io(path).map_err(|e| {
            ClientError::BadFile(format!(
                "{}: cannot create the owner token: {e}",
                path.display()
            ))
        })
    }

    fn create_io(path: &Path) -> std::io::Result<Self> {
        let token = Self::generate();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            &token.0[..16]
        ));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let written = o.open(&tmp).and_then(|mut f| {
            f.write_all(format!("{}\n", token.0).as_bytes())?;
            f.sync_all()
        });
        let linked = written.and_then(|_| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        linked.map(|_| token)
    }

    /// The token in `path`, created first if there is no such file (a symbolic link there,
    /// even a dangling one, is an error; of two processes creating it at once, both end up
    /// with the same token).
    pub fn load_or_create(path: &Path) -> Result<Self, ClientError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match Self::create_io(path) {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
                Err(e) => Err(ClientError::BadFile(format!(
                    "{}: cannot create the owner token: {e}",
                    path.display()
                ))),
            },
            _ => Self::load(path),
        }
    }
}

/// What the server answered an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The key id (checked against the one computed from the keys).
    pub key_id: String,
    /// Whether the keys were new to the server.
    pub new: bool,
    /// Whether the token sent is the keys' owner (`None`: no token sent).
    pub owned: Option<bool>,
}

/// A `veil serve` server at a base URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    options: ClientOptions,
}

impl Client {
    /// A client of the server at `url` with the default [`ClientOptions`] (nothing is sent
    /// yet).
    pub fn new(url: &str) -> Self {
        Self::with_options(url, ClientOptions::default())
    }

    /// A client of the server at `url` with `options`.
    pub fn with_options(url: &str, options: ClientOptions) -> Self {
        Client {
            url: url.to_string(),
            options,
        }
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<Bytes, ClientError> {
        self.send_as(method, path, None, body, max_answer)
    }

    fn send_as(
        &self,
        method: Method,
        path: &str,
        owner: Option<&OwnerToken>,
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<Bytes, ClientError> {
        let opts = ClientOptions {
            max_response: max_answer.min(self.options.max_response),
            ..self.options.clone()
        };
        exchange(&self.url, method, path, owner, body, &opts)
    }

    /// The server's program info (`GET /health`).
    pub fn health(&self) -> Result<serde_json::Value, ClientError> {
        let answer = self.send(Method::GET, "/health", Vec::new(), MAX_HEALTH_ANSWER)?;
        serde_json::from_slice(&answer).map_err(|e| {
            ClientError::Failed(format!(
                "{}: the server's health answer is not JSON ({e}); is this a veil server?",
                self.url
            ))
        })
    }

    /// Uploads an evaluation-key file (`eval.veil-keys`); returns the key id (the SHA-256 of
    /// the keys, [`key_id_of_file`]), checked against the server's answer.
    pub fn upload_keys(&self, eval_keys: Vec<u8>) -> Result<String, ClientError> {
        self.upload_keys_as(eval_keys, None).map(|u| u.key_id)
    }

    /// [`Client::upload_keys`] with an owner token: the first upload of these keys makes the
    /// token's holder their owner; the answer says whether `owner` is the owner.
    pub fn upload_keys_as(
        &self,
        eval_keys: Vec<u8>,
        owner: Option<&OwnerToken>,
    ) -> Result<Uploaded, ClientError> {
        let expected = key_id_of_file(&eval_keys)?;
        self.check_limit(eval_keys.len())?;
        let answer = self.send_as(Method::POST, "/keys", owner, eval_keys, MAX_HEALTH_ANSWER)?;
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let got = v["key_id"].as_str().ok_or_else(|| {
            ClientError::Failed(format!("{}: the server's answer holds no key id", self.url))
        })?;
        if got != expected {
            return Err(ClientError::Failed(format!(
                "{}: the server stored the keys under key id {got}, but their key id is {expected}; is this a veil server of the same version?",
                self.url
            )));
        }
        Ok(Uploaded {
            key_id: expected,
            new: v["new"].as_bool().unwrap_or(false),
            owned: v["owned"].as_bool(),
        })
    }

    /// Deletes the keys of `key_id` from the server (memory and key store); `owner` must be
    /// the token they were first uploaded with.
    pub fn delete_keys(&self, key_id: &str, owner: &OwnerToken) -> Result<(), ClientError> {
        let path = format!("/keys/{}", key_id.trim());
        self.send_as(
            Method::DELETE,
            &path,
            Some(owner),
            Vec::new(),
            MAX_HEALTH_ANSWER,
        )?;
        Ok(())
    }

    /// Runs the program on an encrypted-inputs file under `key_id`; returns the
    /// encrypted-results file.
    pub fn run(&self, key_id: &str, inputs: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        check_kind(&inputs, Direction::Inputs.kind())
            .map_err(|e| ClientError::BadFile(e.to_string()))?;
        self.check_limit(inputs.len())?;
        let path = format!("/run/{}", key_id.trim());
        let answer = self.send(Method::POST, &path, inputs, usize::MAX)?;
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

/// The key id of an evaluation-key file: the SHA-256 of the keys' canonical encoding, as the
/// server computes it ([`store::key_id`]). Checks the file's kind and content.
pub fn key_id_of_file(eval_keys: &[u8]) -> Result<String, ClientError> {
    let fail = |e: ArtifactError| ClientError::BadFile(e.to_string());
    check_kind(eval_keys, KIND_COMPRESSED_SERVER_KEYS).map_err(fail)?;
    let keys = CompressedServerKeys::from_bytes(eval_keys)
        .map_err(|e| fail(ArtifactError::from_runtime(KIND_COMPRESSED_SERVER_KEYS, e)))?;
    store::key_id(&keys)
        .map(|(id, _)| id)
        .map_err(ClientError::Failed)
}

/// Sends one request to `base` + `path` with the default [`ClientOptions`]; the answer's body
/// on success (2xx), else an error holding the server's message.
pub fn request(
    base: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<Bytes, ClientError> {
    request_with(base, method, path, body, &ClientOptions::default())
}

/// [`request`] with `opts`: a connection not made within `opts.connect_timeout`, a server
/// silent for `opts.read_timeout` or an answer over `opts.max_response` bytes is an error.
pub fn request_with(
    base: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
    opts: &ClientOptions,
) -> Result<Bytes, ClientError> {
    exchange(base, method, path, None, body, opts)
}

/// A connection's byte stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// [`request_with`], sending `owner` as `Authorization: Bearer <token>` when given.
fn exchange(
    base: &str,
    method: Method,
    path: &str,
    owner: Option<&OwnerToken>,
    body: Vec<u8>,
    opts: &ClientOptions,
) -> Result<Bytes, ClientError> {
    let uri: Uri = base.parse().map_err(|e| {
        ClientError::Failed(format!(
            "--url {base:?}: {e}; give e.g. http://127.0.0.1:8080"
        ))
    })?;
    let tls = match uri.scheme_str() {
        Some("http") => None,
        Some("https") => {
            let ca = opts.ca_cert.as_deref().ok_or_else(|| {
                ClientError::Failed(format!(
                    "--url {base:?}: an https URL needs --ca-cert FILE, the PEM certificate of the CA that signed the server's certificate (or the system's CA bundle)"
                ))
            })?;
            Some(crate::tls::client_config(ca).map_err(ClientError::BadFile)?)
        }
        Some(s) => {
            return Err(ClientError::Failed(format!(
                "--url {base:?}: {s} is not supported, only http and https"
            )))
        }
        None => {
            return Err(ClientError::Failed(format!(
                "--url {base:?}: give a full URL, e.g. http://127.0.0.1:8080"
            )))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::Failed(format!("--url {base:?}: no host")))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let server_name = match &tls {
        Some(_) => Some(
            crate::tls::server_name(&host)
                .map_err(|e| ClientError::Failed(format!("--url {base:?}: {e}")))?,
        ),
        None => None,
    };
    let authorization = owner.map(|t| format!("Bearer {}", t.as_str()));
    let target = format!("{}{path}", uri.path().trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Failed(format!("cannot start the HTTP client: {e}")))?;
    let sent = body.len();
    let ClientOptions {
        connect_timeout,
        read_timeout,
        max_response,
        ..
    } = opts.clone();
    let silent = move || {
        ClientError::Failed(format!(
            "{base}: no answer from the server within {} s (veil client --read-timeout-s); the server may be overloaded or stuck",
            read_timeout.as_secs_f64()
        ))
    };
    let too_big = move |n: u64| {
        ClientError::Failed(format!(
            "{base}: the server's answer is over {} ({}; veil client --max-response-mb)",
            human_bytes(max_response as u64),
            if n == u64::MAX {
                "cut off".to_string()
            } else {
                format!("it announced {}", human_bytes(n))
            }
        ))
    };
    let (status, retry_after, answer) = rt.block_on(async move {
        let stream = tokio::time::timeout(
            connect_timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| {
            ClientError::Connection(format!(
                "cannot connect to {base}: no connection within {} s (veil client --connect-timeout-s); check the URL and that `veil serve` runs there",
                connect_timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| {
            ClientError::Connection(format!(
                "cannot connect to {base}: {e}; check the URL and that `veil serve` runs there"
            ))
        })?;
        let stream: Box<dyn Io> = match (tls, server_name) {
            (Some(config), Some(name)) => {
                let connector = tokio_rustls::TlsConnector::from(config);
                let s = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| {
                        ClientError::Connection(format!(
                            "{base}: no TLS handshake within {} s (veil client --connect-timeout-s)",
                            connect_timeout.as_secs_f64()
                        ))
                    })?
                    .map_err(|e| {
                        ClientError::Failed(format!("{base}: {}", crate::tls::handshake_error(&e)))
                    })?;
                Box::new(s)
            }
            _ => Box::new(stream),
        };
        let http_err = |e: hyper::Error| {
            // A malformed answer is the server's fault and comes again; anything else here
            // (closed, reset, cut short) is a connection that broke.
            if e.is_parse() || e.is_parse_status() || e.is_user() {
                return ClientError::Failed(format!("{base}: the request failed: {e}"));
            }
            let mut msg = format!("{base}: the connection broke before the answer: {e}");
            if let Some(io) = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
            {
                msg.push_str(&format!(" ({io})"));
            }
            if sent > 0 {
                msg.push_str(
                    "; the server stopped, or refused a body this large (see its --max-body-mb)",
                );
            }
            ClientError::Connection(msg)
        };
        let (mut sender, conn) = tokio::time::timeout(
            read_timeout,
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
        )
        .await
        .map_err(|_| silent())?
        .map_err(http_err)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(&target)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/octet-stream");
        if let Some(a) = &authorization {
            req = req.header(header::AUTHORIZATION, a.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Failed(format!("--url {base:?}: {e}")))?;
        let resp = tokio::time::timeout(read_timeout, sender.send_request(req))
            .await
            .map_err(|_| silent())?
            .map_err(http_err)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = declared.filter(|&n| n > max_response as u64) {
            return Err(too_big(n));
        }
        let mut body = resp.into_body();
        let mut answer = Vec::new();
        loop {
            let frame = tokio::time::timeout(read_timeout, body.frame())
                .await
                .map_err(|_| silent())?;
            let Some(frame) = frame else { break };
            if let Ok(chunk) = frame.map_err(http_err)?.into_data() {
                if answer.len() + chunk.len() > max_response {
                    return Err(too_big(u64::MAX));
                }
                answer.extend_from_slice(&chunk);
            }
        }
        Ok::<_, ClientError>((status, retry_after, Bytes::from(answer)))
    })?;
    if status.is_success() {
        return Ok(answer);
    }
    Err(ClientError::Status {
        url: base.to_string(),
        status,
        message: server_message(&answer),
        retry_after,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-connection server on loopback that reads the request head and answers `answer`
    /// (nothing at all when `None`, holding the connection open).
    fn fake(answer: Option<Vec<u8>>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            match answer {
                Some(a) => {
                    let _ = c.write_all(&a);
                }
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        });
        format!("http://{addr}")
    }

    fn opts(read_ms: u64, max: usize) -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_millis(read_ms),
            max_response: max,
            ca_cert: None,
        }
    }

    fn get(url: &str, o: &ClientOptions) -> Result<Bytes, ClientError> {
        request_with(url, Method::GET, "/health", Vec::new(), o)
    }

    #[test]
    fn a_silent_server_times_out() {
        let url = fake(None);
        let e = get(&url, &opts(200, 1000)).unwrap_err().to_string();
        assert!(
            e.contains("no answer") && e.contains("--read-timeout-s"),
            "{e}"
        );
    }

    #[test]
    fn answers_over_the_cap_are_refused() {
        let url = fake(Some(
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n".to_vec(),
        ));
        let e = get(&url, &opts(2000, 1000)).unwrap_err().to_string();
        assert!(
            e.contains("announced") && e.contains("--max-response-mb"),
            "{e}"
        );
        let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..4 {
            endless.extend_from_slice(b"200\r\n");
            endless.extend_from_slice(&[b'x'; 0x200]);
            endless.extend_from_slice(b"\r\n");
        }
        let url = fake(Some(endless));
        let e = get(&url, &opts(2000, 1000)).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
        let url = fake(Some(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ));
        assert_eq!(&get(&url, &opts(2000, 2)).unwrap()[..], b"ok");
    }

    #[test]
    fn error_statuses_keep_the_servers_message() {
        let body = br#"{"error": "unknown key id"}"#;
        let mut a = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        a.extend_from_slice(body);
        let url = fake(Some(a));
        let e = get(&url, &opts(2000, 1000)).unwrap_err();
        assert!(e.is_not_found());
        let e = e.to_string();
        assert!(e.contains("404 Not Found: unknown key id"), "{e}");
    }

    #[test]
    fn only_broken_connections_and_busy_servers_are_retried() {
        let answer = |status: &str| {
            let body = br#"{"error": "x"}"#;
            let mut a = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            a.extend_from_slice(body);
            a
        };
        for (status, retry) in [
            ("503 Service Unavailable\r\nRetry-After: 1", true),
            ("503 Service Unavailable", false),
            ("502 Bad Gateway", true),
            ("504 Gateway Timeout", true),
            ("404 Not Found", false),
            ("400 Bad Request", false),
            ("413 Payload Too Large", false),
            ("500 Internal Server Error", false),
        ] {
            let e = get(&fake(Some(answer(status))), &opts(2000, 1000)).unwrap_err();
            assert_eq!(e.is_retryable(), retry, "{status}: {e}");
        }
        // closed without an answer
        let e = get(&fake(Some(Vec::new())), &opts(2000, 1000)).unwrap_err();
        assert!(matches!(e, ClientError::Connection(_)), "{e}");
        assert!(e.is_retryable() && e.to_string().contains("broke"), "{e}");
        // nobody listening
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = get(&format!("http://127.0.0.1:{port}"), &opts(2000, 1000)).unwrap_err();
        assert!(
            e.is_retryable() && e.to_string().contains("cannot connect"),
            "{e}"
        );
        // a silent server is not retried (it may be working)
        let e = get(&fake(None), &opts(200, 1000)).unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        // garbage is not retried
        let e = get(
            &fake(Some(b"NOT HTTP AT ALL\r\n\r\n".to_vec())),
            &opts(2000, 1000),
        )
        .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
    }

    #[test]
    fn owner_tokens_are_created_once_private_and_never_through_links() {
        let dir = std::env::temp_dir().join(format!("veil-owner-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(OWNER_TOKEN_FILE);
        let t = OwnerToken::load_or_create(&path).unwrap();
        assert_eq!(t.as_str().len(), 64);
        assert_eq!(OwnerToken::load_or_create(&path).unwrap(), t);
        assert!(OwnerToken::create(&path).is_err(), "never over a token");
        assert_ne!(OwnerToken::generate(), t);
        assert_eq!(format!("{t:?}"), "OwnerToken(..)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let link = dir.join("link.veil-token");
            std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
            let e = OwnerToken::load_or_create(&link).unwrap_err().to_string();
            assert!(e.contains("link.veil-token"), "{e}");
            assert!(
                !dir.join("elsewhere").exists(),
                "nothing written through the link"
            );
        }
        std::fs::write(dir.join("bad"), "not a token").unwrap();
        let e = OwnerToken::load(&dir.join("bad")).unwrap_err().to_string();
        assert!(e.contains("not an owner token"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urls_are_checked() {
        let e = get("https://127.0.0.1:1", &opts(100, 10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-cert"), "{e}");
        let e = get("ftp://127.0.0.1:1", &opts(100, 10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only http and https"), "{e}");
        let e = get("127.0.0.1:1", &opts(100, 10)).unwrap_err().to_string();
        assert!(e.contains("full URL") || e.contains("--url"), "{e}");
    }
}
