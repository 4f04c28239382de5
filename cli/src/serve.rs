//! `veil serve --server SERVER_ARTIFACT [--addr 127.0.0.1:8080] [--max-body-mb N]
//! [--max-concurrent N] [--max-keys N] [--threads N]`: the server side as an HTTP service
//! (axum, HTTP/1, no TLS: put a reverse proxy in front of it for HTTPS).
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
//! message), 404 for an unknown key id or path, 413 for a body over `--max-body-mb`, 503 when
//! `--max-keys` key sets are loaded. FHE work (key expansion, runs) happens on blocking
//! threads, at most `--max-concurrent` at a time, on one executor of `--threads` threads.

use super::io;
use super::CliError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;
use veil_compiler::artifact::{self, ArtifactError, Direction, EncryptedBatch, ServerArtifact};
use veil_runtime::serial::KIND_COMPRESSED_SERVER_KEYS;
use veil_runtime::{CompressedServerKeys, Executor, ServerKeys};

/// Arguments of `veil serve`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Endpoints:\n  GET  /health          program info (JSON)\n  POST /keys            body: eval.veil-keys; answers {\"key_id\": \"...\"}\n  POST /run/{key_id}    body: encrypted inputs; answers encrypted results\n\nExamples:\n  veil serve --server build/server.veil-artifact\n  veil serve --server build/server.veil-artifact --addr 0.0.0.0:8080 --max-body-mb 512 --max-concurrent 2 --threads 8\n\nThen, on the client:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys\n  veil client run --url http://127.0.0.1:8080 --key-id KEY_ID --input x.veil-ct --out y.veil-ct"
)]
pub struct ServeArgs {
    /// The server artifact from `veil compile`.
    #[arg(long)]
    pub server: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Largest request body in MiB (evaluation keys or encrypted inputs).
    #[arg(long, default_value_t = 1024)]
    pub max_body_mb: u64,
    /// FHE evaluations (runs and key expansions) at the same time; more requests wait.
    #[arg(long, default_value_t = 1)]
    pub max_concurrent: usize,
    /// Evaluation key sets kept in memory (expanded keys are large).
    #[arg(long, default_value_t = 16)]
    pub max_keys: usize,
    /// Worker threads of the FHE executor (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
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
            io::size(state.max_body)
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
            .map(|s| serde_json::json!({"name": s.name, "type": super::inspect::type_text(&s.ty)}))
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
        .map_err(|e| bad(&io::runtime_error(KIND_COMPRESSED_SERVER_KEYS, e)))?;
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

/// Runs `veil serve` (until Ctrl-C).
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let server = io::load(
        &args.server,
        artifact::KIND_SERVER_ARTIFACT,
        ServerArtifact::from_bytes,
    )?;
    if args.max_concurrent == 0 {
        return Err(CliError("--max-concurrent: give at least 1".into()));
    }
    let max_body = usize::try_from(args.max_body_mb.saturating_mul(1 << 20))
        .map_err(|_| CliError("--max-body-mb: too large".into()))?;
    let exec = Executor::new(args.threads).map_err(|e| CliError(format!("--threads: {e}")))?;
    let state = Arc::new(AppState {
        server,
        exec,
        keys: Mutex::new(HashMap::new()),
        slots: Semaphore::new(args.max_concurrent),
        max_body,
        max_concurrent: args.max_concurrent,
        max_keys: args.max_keys,
    });
    let program_id = state.server.program_id();
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
        .map_err(|e| CliError(format!("cannot start the server runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.addr)))?;
        println!("serving program {program_id:016x} on http://{local} (Ctrl-C stops)");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| CliError(format!("server error: {e}")))
    })
}
