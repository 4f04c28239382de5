//! The server side as an HTTP service (axum, HTTP/1, no TLS: put a reverse proxy in front of
//! it for HTTPS). `veil serve` is a thin command line over [`serve`].
//!
//! - `GET /health`: program info (JSON): program id, inputs, outputs, parameter sets, limits.
//! - `POST /keys`, body: the evaluation-key file (`eval.veil-keys`). The keys are checked
//!   against the program, expanded once and kept in memory; answers `{"key_id": "..."}` (the
//!   key generation id, which the encrypted inputs carry too). Uploading the same keys again
//!   changes nothing.
//! - `POST /run/{key_id}`, body: an encrypted-inputs file (`veil encrypt`); answers the
//!   encrypted-results file (`veil decrypt` reads it).
//!
//! Errors answer `{"error": "..."}`: 400 for a malformed or mismatched body (the library's
//! message), 404 for an unknown key id or path, 413 for a body over
//! [`ServeConfig::max_body`], 503 when [`ServeConfig::max_keys`] key sets are loaded. FHE work
//! (key expansion, runs) happens on blocking threads, at most
//! [`ServeConfig::max_concurrent`] at a time, on one executor of [`ServeConfig::threads`]
//! threads.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;
use veil_runtime::artifact::{
    self, describe_type, ArtifactError, Direction, EncryptedBatch, ServerArtifact,
};
use veil_runtime::keys::human_bytes;
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_runtime::{CompressedServerKeys, Executor, ServerKeys};

/// How a server listens and what it accepts.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (port 0: any free port).
    pub addr: String,
    /// Largest request body in bytes (evaluation keys or encrypted inputs).
    pub max_body: usize,
    /// FHE evaluations (runs and key expansions) at the same time; more requests wait.
    pub max_concurrent: usize,
    /// Evaluation key sets kept in memory (expanded keys are large).
    pub max_keys: usize,
    /// Worker threads of the FHE executor (0: one per CPU).
    pub threads: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: "127.0.0.1:8080".into(),
            max_body: 1 << 30,
            max_concurrent: 1,
            max_keys: 16,
            threads: 0,
        }
    }
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// Listening or serving failed.
    #[error("{0}")]
    Io(String),
}

struct AppState {
    server: ServerArtifact,
    exec: Executor,
    keys: Mutex<HashMap<u64, Arc<ServerKeys>>>,
    slots: Semaphore,
    max_body: usize,
    max_concurrent: usize,
    max_keys: usize,
}

type Shared = Arc<AppState>;

/// An error answer: status and one-line message, sent as `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(status = %self.0, error = %self.1, "request failed");
        let body = serde_json::json!({ "error": self.1 }).to_string();
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn bad(e: &ArtifactError) -> ApiError {
    let hint = e.hint();
    let msg = if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e}; {hint}")
    };
    ApiError(StatusCode::BAD_REQUEST, msg)
}

fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn too_large(state: &AppState) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over this server's limit of {} (veil serve --max-body-mb)",
            human_bytes(state.max_body as u64)
        ),
    )
}

/// Answers 413 at once when the declared `Content-Length` is over the limit (instead of
/// reading the body up to the limit first).
async fn refuse_declared_oversize(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > state.max_body as u64 => too_large(&state).into_response(),
        _ => next.run(req).await,
    }
}

/// The request body, or a clear error (413 over the limit).
fn body(state: &AppState, b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state)
        } else {
            ApiError(
                e.status(),
                format!("cannot read the request body: {}", e.body_text()),
            )
        }
    })
}

/// Runs FHE work on a blocking thread once a slot is free.
async fn blocking<R: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&AppState) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let internal = |what: &str| ApiError(StatusCode::INTERNAL_SERVER_ERROR, what.to_string());
    let _permit = state
        .slots
        .acquire()
        .await
        .map_err(|_| internal("the server is shutting down"))?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|_| internal("internal error: the evaluation failed"))
}

async fn health(State(state): State<Shared>) -> Response {
    let g = state.server.program();
    let ios = |specs: Vec<artifact::IoSpec>| {
        specs
            .iter()
            .map(|s| serde_json::json!({"name": s.name, "type": describe_type(&s.ty)}))
            .collect::<Vec<_>>()
    };
    let keys_loaded = state.keys.lock().map(|k| k.len()).unwrap_or(0);
    json(serde_json::json!({
        "status": "ok",
        "veil": env!("CARGO_PKG_VERSION"),
        "program_id": format!("{:016x}", state.server.program_id()),
        "inputs": ios(artifact::input_specs(g)),
        "outputs": ios(artifact::output_specs(g)),
        "params": state.server.params().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "keys_loaded": keys_loaded,
        "max_keys": state.max_keys,
        "max_body_bytes": state.max_body,
        "max_concurrent": state.max_concurrent,
        "threads": state.exec.threads(),
    }))
}

fn lookup(state: &AppState, id: u64) -> Option<Arc<ServerKeys>> {
    state.keys.lock().ok()?.get(&id).cloned()
}

async fn upload_keys(
    State(state): State<Shared>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let data = body(&state, b)?;
    let t = Instant::now();
    artifact::check_kind(&data, KIND_COMPRESSED_SERVER_KEYS).map_err(|e| bad(&e))?;
    let keys = CompressedServerKeys::from_bytes(&data)
        .map_err(|e| bad(&ArtifactError::from_runtime(KIND_COMPRESSED_SERVER_KEYS, e)))?;
    drop(data);
    state.server.check_keys(&keys).map_err(|e| bad(&e))?;
    let id = keys.key_id();
    let answer =
        |new: bool| json(serde_json::json!({ "key_id": format!("{id:016x}"), "new": new }));
    if lookup(&state, id).is_some() {
        return Ok(answer(false));
    }
    let full = || {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this server holds {} key sets already (veil serve --max-keys)",
                state.max_keys
            ),
        )
    };
    if state.keys.lock().map(|k| k.len()).unwrap_or(usize::MAX) >= state.max_keys {
        return Err(full());
    }
    let expanded = blocking(&state, move |st| st.exec.install(|| keys.decompress())).await?;
    // The first upload of an id wins: a second one does not replace keys in use.
    let mut map = state
        .keys
        .lock()
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    if map.contains_key(&id) {
        return Ok(answer(false));
    }
    if map.len() >= state.max_keys {
        return Err(full());
    }
    map.insert(id, Arc::new(expanded));
    drop(map);
    tracing::debug!(key_id = %format!("{id:016x}"), elapsed = ?t.elapsed(), "evaluation keys loaded");
    Ok(answer(true))
}

async fn run_batch(
    State(state): State<Shared>,
    Path(key_id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let unknown = || {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "unknown key id {key_id:?}: upload the evaluation keys first (veil client upload-keys)"
            ),
        )
    };
    let id = u64::from_str_radix(&key_id, 16).map_err(|_| unknown())?;
    let keys = lookup(&state, id).ok_or_else(unknown)?;
    let data = body(&state, b)?;
    let kind = Direction::Inputs.kind();
    artifact::check_kind(&data, kind).map_err(|e| bad(&e))?;
    let batch =
        tokio::task::spawn_blocking(move || EncryptedBatch::from_bytes(&data, Direction::Inputs))
            .await
            .map_err(|_| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    "cannot decode the encrypted inputs".into(),
                )
            })?
            .map_err(|e| bad(&e))?;
    state.server.check_batch(&batch, id).map_err(|e| bad(&e))?;
    let t = Instant::now();
    let out = blocking(&state, move |st| {
        let out = st.server.run(&st.exec, &keys, &batch, |_| {})?;
        out.to_bytes(Direction::Outputs)
    })
    .await?
    .map_err(|e| bad(&e))?;
    tracing::debug!(key_id = %key_id, elapsed = ?t.elapsed(), bytes = out.len(), "run done");
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], out).into_response())
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such endpoint: use GET /health, POST /keys or POST /run/{key_id}".into(),
    )
}

/// Serves `server` as configured until `shutdown` completes (e.g. Ctrl-C); `on_listen` is
/// called with the bound address once the server listens.
pub fn serve(
    server: ServerArtifact,
    config: &ServeConfig,
    on_listen: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.max_concurrent == 0 {
        return Err(ServeError::Config(
            "max_concurrent: give at least 1 (veil serve --max-concurrent)".into(),
        ));
    }
    let exec =
        Executor::new(config.threads).map_err(|e| ServeError::Config(format!("threads: {e}")))?;
    let max_body = config.max_body;
    let state = Arc::new(AppState {
        server,
        exec,
        keys: Mutex::new(HashMap::new()),
        slots: Semaphore::new(config.max_concurrent),
        max_body,
        max_concurrent: config.max_concurrent,
        max_keys: config.max_keys,
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/keys", post(upload_keys))
        .route("/run/{key_id}", post(run_batch))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .with_state(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io(format!("cannot start the server runtime: {e}")))?;
    let addr = config.addr.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Io(format!("cannot listen on {addr}: {e}")))?;
        on_listen(local);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| ServeError::Io(format!("server error: {e}")))
    })
}
