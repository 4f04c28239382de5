//! The server side as an HTTP service (axum on hyper, HTTP/1, over TLS with
//! [`ServeConfig::tls`] or plain, e.g. behind a TLS-terminating reverse proxy: see
//! `docs/serving.md`). `veil serve` is a thin command line over [`serve`].
//!
//! - `GET /health`: program info (JSON): program id, inputs, outputs, parameter sets, limits.
//! - `POST /keys`, body: the evaluation-key file (`eval.veil-keys`). The keys are checked
//!   against the program, stored under their key id (the SHA-256 of their canonical encoding,
//!   [`crate::store::key_id`]: an id can only name the keys it was computed from), expanded
//!   and kept in memory; answers `{"key_id": "<64 hex digits>", "new": bool,
//!   "key_generation": "<16 hex digits>", "owned": bool or null}`. Uploading the same keys
//!   again changes nothing. With `Authorization: Bearer <owner token>` the first upload
//!   makes the token's holder the owner (only its SHA-256 is kept); `owned` says whether this
//!   request's token is the owner's (null: no token sent). A later upload never changes the
//!   owner.
//! - `POST /run/{key_id}`, body: an encrypted-inputs file (`veil encrypt`) made with the
//!   secret keys of that key generation; answers the encrypted-results file.
//! - `DELETE /keys/{key_id}` with `Authorization: Bearer <owner token>`: forgets the keys
//!   (memory and key directory); 401 without a token, 403 with another token than the
//!   owner's or for keys uploaded without one.
//!
//! Errors answer `{"error": "..."}`: 400 for a malformed or mismatched body (the library's
//! message) or a malformed owner token, 401/403 as above, 404 for an unknown key id or path, 408 for a body that did not arrive in time,
//! 413 for a body over [`ServeConfig::max_body`] or a batch of more than
//! [`ServeConfig::max_runs_per_request`] runs or keys over the key directory's quota, 503 when the server is busy past
//! [`ServeConfig::request_timeout`] or holds [`ServeConfig::max_keys`] key sets without
//! eviction, 500 when the key directory fails.
//!
//! Limits: FHE work (key expansion, runs) happens on blocking threads, at most
//! [`ServeConfig::max_concurrent`] at a time, one run at a time per slot (a batch takes a slot
//! per run, so requests of many runs interleave with others fairly); at most
//! [`ServeConfig::max_uploads`] request bodies are read and held at once; at most
//! [`ServeConfig::max_connections`] connections are open; connections idle or slow to send
//! headers are closed after [`ServeConfig::header_timeout`]. The async workers never decode,
//! expand or run anything.
//!
//! Cancellation: when a client disconnects or its request passes
//! [`ServeConfig::request_timeout`], the runs of its batch that have not started are dropped
//! (counted in `/health` as `runs_dropped`); a run already computing on a blocking thread
//! cannot be interrupted in the middle of its bootstraps and finishes, its result discarded.

use crate::store::{self, DiskStore, Inserted, Lru};
use crate::tls::TlsFiles;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
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
    /// When [`ServeConfig::max_keys`] sets are in memory: forget the least recently used one
    /// (true) or refuse new uploads (false).
    pub evict: bool,
    /// Directory of the persistent key store (`None`: memory only, lost on restart).
    pub key_dir: Option<PathBuf>,
    /// Most bytes of keys in [`ServeConfig::key_dir`] (`None`: no quota): after an upload the
    /// least recently used key sets there are deleted until the rest fits.
    pub key_dir_max_bytes: Option<u64>,
    /// Serve HTTPS with this certificate and key (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
    /// Most runs in one request (a run: one sample, or one batch of an ML model).
    pub max_runs_per_request: usize,
    /// Request bodies read and held at once (each up to [`ServeConfig::max_body`]); more
    /// requests wait for one to finish.
    pub max_uploads: usize,
    /// Open connections at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time a connection may take to send a request's headers, and may stay idle between
    /// requests, before it is closed.
    pub header_timeout: Duration,
    /// Time a request body may take to arrive.
    pub body_timeout: Duration,
    /// Time a request may wait and run; checked before each run of a batch, so a request
    /// ends at most one run after it.
    pub request_timeout: Duration,
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
            evict: true,
            key_dir: None,
            key_dir_max_bytes: None,
            tls: None,
            max_runs_per_request: 128,
            max_uploads: 4,
            max_connections: 256,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(600),
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

/// Runs counted since the server started (shown by `/health`).
#[derive(Default)]
struct RunStats {
    /// Runs computed.
    done: AtomicU64,
    /// Runs of requests that ended (client gone, timeout) before the run started.
    dropped: AtomicU64,
    /// Runs computing now.
    running: AtomicU64,
}

struct AppState {
    server: ServerArtifact,
    exec: Executor,
    keys: Mutex<Lru<Arc<ServerKeys>>>,
    /// Owner hashes by key id when there is no key directory (else in its owner files).
    owners: Mutex<HashMap<String, String>>,
    runs: RunStats,
    disk: Option<DiskStore>,
    slots: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    config: ServeConfig,
}

type Shared = Arc<AppState>;

/// An error answer: status and one-line message, sent as `{"error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(status = %self.0, error = %self.1, "request failed");
        let body = serde_json::json!({ "error": self.1 }).to_string();
        let mut r = (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
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

fn internal(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, what.into())
}

fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn too_large(state: &AppState) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over this server's limit of {} (veil serve --max-body-mb)",
            human_bytes(state.config.max_body as u64)
        ),
    )
}

fn busy(state: &AppState, what: &str) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the server is busy: {what} within its request timeout of {} s (veil serve --request-timeout-s); retry later",
            state.config.request_timeout.as_secs()
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
        Some(n) if n > state.config.max_body as u64 => too_large(&state).into_response(),
        _ => next.run(req).await,
    }
}

/// Reads a request body once one of the [`ServeConfig::max_uploads`] places is free (the
/// permit is held until the request ends): 413 over the limit, 408 when it does not arrive
/// within [`ServeConfig::body_timeout`], 503 when no place frees up before `deadline`.
async fn read_body(
    state: &Shared,
    body: Body,
    deadline: Instant,
) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
    let permit = tokio::time::timeout_at(deadline, state.uploads.clone().acquire_owned())
        .await
        .map_err(|_| busy(state, "no upload place (veil serve --max-uploads) freed up"))?
        .map_err(|_| internal("the server is shutting down"))?;
    let max = state.config.max_body;
    let collect = async move {
        let mut body = body;
        let mut data = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            })?;
            if let Ok(chunk) = frame.into_data() {
                if data.len() + chunk.len() > max {
                    return Err(too_large(state));
                }
                data.extend_from_slice(&chunk);
            }
        }
        Ok(Bytes::from(data))
    };
    let data = tokio::time::timeout(state.config.body_timeout, collect)
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s (veil serve --body-timeout-s)",
                    state.config.body_timeout.as_secs()
                ),
            )
        })??;
    Ok((data, permit))
}

/// Runs `f` on a blocking thread (never on the async workers).
async fn off_async<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| internal("internal error: a server task failed"))
}

/// Runs FHE work on a blocking thread once one of the [`ServeConfig::max_concurrent`] slots
/// is free (503 when none frees up before `deadline`). The slot is held by the blocking work
/// itself, so a request given up on does not free it while its work goes on.
async fn in_slot<R: Send + 'static>(
    state: &Shared,
    deadline: Instant,
    f: impl FnOnce(&AppState) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let permit = tokio::time::timeout_at(deadline, state.slots.clone().acquire_owned())
        .await
        .map_err(|_| {
            busy(
                state,
                "no evaluation slot (veil serve --max-concurrent) freed up",
            )
        })?
        .map_err(|_| internal("the server is shutting down"))?;
    let st = state.clone();
    off_async(move || {
        let r = f(&st);
        drop(permit);
        r
    })
    .await
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
    let c = &state.config;
    json(serde_json::json!({
        "status": "ok",
        "veil": env!("CARGO_PKG_VERSION"),
        "program_id": format!("{:016x}", state.server.program_id()),
        "inputs": ios(artifact::input_specs(g)),
        "outputs": ios(artifact::output_specs(g)),
        "params": state.server.params().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "keys_loaded": keys_loaded,
        "max_keys": c.max_keys,
        "evict": c.evict,
        "key_store": state.disk.is_some(),
        "key_dir_max_bytes": c.key_dir_max_bytes,
        "tls": c.tls.is_some(),
        "runs_done": state.runs.done.load(Ordering::Relaxed),
        "runs_dropped": state.runs.dropped.load(Ordering::Relaxed),
        "runs_running": state.runs.running.load(Ordering::Relaxed),
        "max_body_bytes": c.max_body,
        "max_concurrent": c.max_concurrent,
        "max_runs_per_request": c.max_runs_per_request,
        "max_uploads": c.max_uploads,
        "request_timeout_s": c.request_timeout.as_secs(),
        "threads": state.exec.threads(),
    }))
}

fn unknown_key(state: &AppState, key_id: &str) -> ApiError {
    let why = if store::parse_key_id(key_id).is_none() {
        format!(
            "a key id is the {} hex digits `veil client upload-keys` prints",
            store::KEY_ID_HEX_LEN
        )
    } else if state.disk.is_some() {
        "upload the evaluation keys (veil client upload-keys)".to_string()
    } else {
        format!(
            "upload the evaluation keys (veil client upload-keys); this server keeps {} key set(s) in memory only and forgets the least recently used ones",
            state.config.max_keys
        )
    };
    ApiError(
        StatusCode::NOT_FOUND,
        format!("unknown key id {key_id:?}: {why}"),
    )
}

fn full(state: &AppState) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "this server holds {} key sets already and does not evict (veil serve --max-keys, --no-evict); delete unused ones with DELETE /keys/{{key_id}}",
            state.config.max_keys
        ),
    )
}

fn lock(state: &AppState) -> Result<std::sync::MutexGuard<'_, Lru<Arc<ServerKeys>>>, ApiError> {
    state
        .keys
        .lock()
        .map_err(|_| internal("internal error: the key store is unusable"))
}

fn owners(
    state: &AppState,
) -> Result<std::sync::MutexGuard<'_, HashMap<String, String>>, ApiError> {
    state
        .owners
        .lock()
        .map_err(|_| internal("internal error: the owner table is unusable"))
}

/// Stores expanded keys in memory; logs evictions (without a key directory the evicted
/// keys are gone, and their owners with them).
fn remember(state: &AppState, id: &str, keys: Arc<ServerKeys>) -> Result<Inserted, ApiError> {
    let r = lock(state)?.insert(id, keys);
    if let Inserted::New(evicted) = &r {
        for e in evicted {
            if state.disk.is_none() {
                owners(state)?.remove(e);
            }
            tracing::info!(key_id = %e, "evaluation keys evicted from memory (least recently used)");
        }
    }
    Ok(r)
}

/// The owner token of a request (`Authorization: Bearer <token>`) as its SHA-256; `None`
/// without that header, 400 when it is malformed.
fn owner_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = |why: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the Authorization header {why}: send `Authorization: Bearer <owner token>`"),
        )
    };
    let v = v.to_str().map_err(|_| malformed("is not visible ASCII"))?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or_else(|| malformed("is not a bearer token"))?;
    store::owner_hash(token.trim())
        .map(Some)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))
}

/// Makes the holder of `owner` (an owner hash) the owner of `id` unless it has one; whether
/// `owner` is the owner afterwards.
async fn claim(state: &Shared, id: &str, owner: &str) -> Result<bool, ApiError> {
    let current = match state.disk.clone() {
        Some(d) => {
            let (i, o) = (id.to_string(), owner.to_string());
            off_async(move || d.claim(&i, &o))
                .await?
                .map_err(internal)?
        }
        None => owners(state)?
            .entry(id.to_string())
            .or_insert_with(|| owner.to_string())
            .clone(),
    };
    Ok(store::same_hash(&current, owner))
}

/// The owner hash of `id` (`None`: uploaded without a token).
async fn owner_of(state: &Shared, id: &str) -> Result<Option<String>, ApiError> {
    match state.disk.clone() {
        Some(d) => {
            let i = id.to_string();
            off_async(move || d.owner(&i)).await?.map_err(internal)
        }
        None => Ok(owners(state)?.get(id).cloned()),
    }
}

/// The expanded keys of `id`: from memory, else from the key directory (decoded, checked
/// and expanded under a slot); `None` when unknown.
async fn find_keys(
    state: &Shared,
    id: &str,
    deadline: Instant,
) -> Result<Option<Arc<ServerKeys>>, ApiError> {
    let cached = lock(state)?.get(id);
    let Some(disk) = state.disk.clone() else {
        return Ok(cached);
    };
    if let Some(keys) = cached {
        // Deleted (or evicted by the quota) through another server sharing the directory:
        // forget them here too. Else mark them used for the quota's order.
        let (d, i) = (disk.clone(), id.to_string());
        if off_async(move || d.touch(&i)).await? {
            return Ok(Some(keys));
        }
        lock(state)?.remove(id);
        return Ok(None);
    }
    let (d, i) = (disk.clone(), id.to_string());
    if !off_async(move || d.touch(&i)).await? {
        return Ok(None);
    }
    let i = id.to_string();
    let loaded = in_slot(state, deadline, move |st| {
        let bytes = match disk.get(&i) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        let keys = CompressedServerKeys::from_bytes(&bytes)
            .map_err(|e| internal(format!("key store: {}: {e}", disk.path(&i).display())))?;
        st.server.check_keys(&keys).map_err(|e| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("key id {i}: the stored keys are not for this program: {e}"),
            )
        })?;
        Ok(Some(st.exec.install(|| keys.decompress())))
    })
    .await??;
    let Some(keys) = loaded else {
        return Ok(None);
    };
    let keys = Arc::new(keys);
    tracing::debug!(key_id = %id, "evaluation keys loaded from the key store");
    // When memory is full without eviction this request is served anyway and the keys stay
    // on disk only.
    remember(state, id, keys.clone())?;
    Ok(Some(lock(state)?.get(id).unwrap_or(keys)))
}

async fn upload_keys(
    State(state): State<Shared>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.request_timeout;
    let t = Instant::now();
    let owner = owner_token(&headers)?;
    let (data, _upload) = read_body(&state, b, deadline).await?;
    artifact::check_kind(&data, KIND_COMPRESSED_SERVER_KEYS).map_err(|e| bad(&e))?;
    let st = state.clone();
    let (keys, id, canonical) = off_async(move || {
        let keys = CompressedServerKeys::from_bytes(&data)
            .map_err(|e| bad(&ArtifactError::from_runtime(KIND_COMPRESSED_SERVER_KEYS, e)))?;
        drop(data);
        st.server.check_keys(&keys).map_err(|e| bad(&e))?;
        let (id, canonical) = store::key_id(&keys).map_err(internal)?;
        Ok::<_, ApiError>((keys, id, canonical))
    })
    .await??;
    let generation = keys.key_id();
    let answer = |new: bool, owned: Option<bool>| {
        json(serde_json::json!({
            "key_id": id,
            "new": new,
            "key_generation": format!("{generation:016x}"),
            "owned": owned,
        }))
    };
    let in_memory = lock(&state)?.get(&id).is_some();
    let on_disk = match state.disk.clone() {
        Some(d) => {
            let i = id.clone();
            off_async(move || d.touch(&i)).await?
        }
        None => false,
    };
    let stored = in_memory && (on_disk || state.disk.is_none());
    if !stored {
        if !in_memory && lock(&state)?.refuses_new() {
            return Err(full(&state));
        }
        if let Some(max) = state.config.key_dir_max_bytes.filter(|_| !on_disk) {
            if canonical.len() as u64 > max {
                return Err(ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the keys take {}, over this server's key store quota of {} (veil serve --key-dir-max-mb)",
                        human_bytes(canonical.len() as u64),
                        human_bytes(max)
                    ),
                ));
            }
        }
    }
    // Ownership is settled before the keys are visible to other requests.
    let owned = match &owner {
        Some(o) => Some(claim(&state, &id, o).await?),
        None => None,
    };
    if stored {
        return Ok(answer(false, owned));
    }
    match (state.disk.clone(), on_disk) {
        (Some(d), false) => {
            let (i, max) = (id.clone(), state.config.key_dir_max_bytes);
            let evicted = off_async(move || {
                d.put(&i, &canonical)?;
                drop(canonical);
                match max {
                    Some(max) => d.enforce_quota(max, &i),
                    None => Ok(Vec::new()),
                }
            })
            .await?
            .map_err(internal)?;
            tracing::debug!(key_id = %id, "evaluation keys stored");
            for e in evicted {
                lock(&state)?.remove(&e);
                tracing::info!(key_id = %e, "evaluation keys evicted from the key store (--key-dir-max-mb, least recently used)");
            }
        }
        // Not needed: free it before the expansion.
        _ => drop(canonical),
    }
    if !in_memory {
        let expanded = in_slot(&state, deadline, move |st| {
            st.exec.install(|| keys.decompress())
        })
        .await?;
        if let Inserted::Full = remember(&state, &id, Arc::new(expanded))? {
            if state.disk.is_none() {
                owners(&state)?.remove(&id);
            }
            return Err(full(&state));
        }
    }
    tracing::debug!(key_id = %id, elapsed = ?t.elapsed(), "evaluation keys loaded");
    Ok(answer(!in_memory && !on_disk, owned))
}

async fn delete_keys(
    State(state): State<Shared>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(id) = store::parse_key_id(&key_id) else {
        return Err(unknown_key(&state, &key_id));
    };
    let token = owner_token(&headers)?.ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "deleting keys needs their owner token: send `Authorization: Bearer <owner token>` (veil client delete-keys --owner-token FILE)".into(),
        )
    })?;
    let in_memory = lock(&state)?.contains(&id);
    let on_disk = match state.disk.clone() {
        Some(d) => {
            let i = id.clone();
            off_async(move || d.contains(&i)).await?
        }
        None => false,
    };
    if !in_memory && !on_disk {
        return Err(unknown_key(&state, &key_id));
    }
    match owner_of(&state, &id).await? {
        None => {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("key id {id}: these keys were uploaded without an owner token, so nobody can delete them over HTTP; the operator can (delete their files in --key-dir)"),
            ))
        }
        Some(o) if !store::same_hash(&o, &token) => {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("key id {id}: this is not the owner token these keys were first uploaded with"),
            ))
        }
        Some(_) => {}
    }
    let in_memory = lock(&state)?.remove(&id);
    if state.disk.is_none() {
        owners(&state)?.remove(&id);
    }
    let on_disk = match state.disk.clone() {
        Some(d) => {
            let i = id.clone();
            off_async(move || d.delete(&i)).await?.map_err(internal)?
        }
        None => false,
    };
    if !in_memory && !on_disk {
        return Err(unknown_key(&state, &key_id));
    }
    tracing::debug!(key_id = %id, "evaluation keys deleted");
    Ok(json(serde_json::json!({ "key_id": id, "deleted": true })))
}

async fn run_batch(
    State(state): State<Shared>,
    Path(key_id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.request_timeout;
    let id = store::parse_key_id(&key_id).ok_or_else(|| unknown_key(&state, &key_id))?;
    let keys = find_keys(&state, &id, deadline)
        .await?
        .ok_or_else(|| unknown_key(&state, &key_id))?;
    let (data, _upload) = read_body(&state, b, deadline).await?;
    let kind = Direction::Inputs.kind();
    artifact::check_kind(&data, kind).map_err(|e| bad(&e))?;
    let batch = off_async(move || EncryptedBatch::from_bytes(&data, Direction::Inputs))
        .await?
        .map_err(|e| bad(&e))?;
    let max_runs = state.config.max_runs_per_request;
    if batch.runs.len() > max_runs {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the inputs hold {} runs, this server takes at most {max_runs} per request (veil serve --max-runs-per-request); split the input file and send several requests",
                batch.runs.len()
            ),
        ));
    }
    state
        .server
        .check_batch(&batch, keys.key_id())
        .map_err(|e| bad(&e))?;
    let t = Instant::now();
    let EncryptedBatch {
        program_id,
        key_id: generation,
        samples,
        names,
        runs,
    } = batch;
    let total = runs.len();
    tracing::debug!(key_id = %id, runs = total, "run started");
    let queue = Arc::new(Queue {
        state: state.clone(),
        key_id: id.clone(),
        total,
        progress: Mutex::new((0, false)),
    });
    let _cancel_on_drop = CancelOnDrop(queue.clone());
    let mut outputs = Vec::with_capacity(total);
    // One slot per run: the slots' queue is fair (first come, first served), so the runs of
    // a large batch interleave with other requests instead of holding a slot throughout.
    for (i, run) in runs.into_iter().enumerate() {
        if Instant::now() >= deadline {
            return Err(busy(&state, &format!("only {i} of {total} runs were done")));
        }
        let one = EncryptedBatch {
            program_id,
            key_id: generation,
            samples,
            names: names.clone(),
            runs: vec![run],
        };
        let keys = keys.clone();
        let q = queue.clone();
        let out = in_slot(&state, deadline, move |st| {
            if !q.start() {
                return None;
            }
            st.runs.running.fetch_add(1, Ordering::Relaxed);
            let r = st.server.run(&st.exec, &keys, &one, |_| {});
            st.runs.running.fetch_sub(1, Ordering::Relaxed);
            st.runs.done.fetch_add(1, Ordering::Relaxed);
            Some(r)
        })
        .await
        .map_err(|e| ApiError(e.0, format!("after {i} of {total} runs: {}", e.1)))?
        .ok_or_else(|| internal("internal error: a run was cancelled"))?
        .map_err(|e| bad(&e))?;
        outputs.extend(out.runs);
    }
    let out = EncryptedBatch {
        program_id,
        key_id: generation,
        samples,
        names: artifact::output_specs(state.server.program())
            .into_iter()
            .map(|s| s.name)
            .collect(),
        runs: outputs,
    };
    let out = off_async(move || out.to_bytes(Direction::Outputs))
        .await?
        .map_err(|e| bad(&e))?;
    tracing::debug!(key_id = %id, elapsed = ?t.elapsed(), runs = total, bytes = out.len(), "run done");
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], out).into_response())
}

/// The runs of one request: how many started, and whether the request ended (its handler
/// was dropped: client gone, or it returned early).
struct Queue {
    state: Shared,
    key_id: String,
    total: usize,
    /// (runs started, request ended)
    progress: Mutex<(usize, bool)>,
}

impl Queue {
    /// Called on the blocking thread about to compute a run: false (skip it) when the
    /// request has ended meanwhile, else counts it as started.
    fn start(&self) -> bool {
        let Ok(mut p) = self.progress.lock() else {
            return false;
        };
        if p.1 {
            return false;
        }
        p.0 += 1;
        true
    }
}

/// Ends a [`Queue`] when the request's handler is dropped: runs not started by then never
/// will be (a disconnected client, a timeout, an error), and are counted as dropped.
struct CancelOnDrop(Arc<Queue>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let q = &self.0;
        let started = match q.progress.lock() {
            Ok(mut p) => {
                p.1 = true;
                p.0
            }
            Err(_) => return,
        };
        let dropped = q.total.saturating_sub(started);
        if dropped > 0 {
            q.state
                .runs
                .dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
            tracing::info!(
                key_id = %q.key_id,
                "request ended (client gone, timeout or error) with {dropped} of {} runs not started: dropped",
                q.total
            );
        }
    }
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such endpoint: use GET /health, POST /keys, DELETE /keys/{key_id} or POST /run/{key_id}"
            .into(),
    )
}

/// The HTTP service of `server` as configured (the routes and their state, without the
/// listener): what [`serve`] runs on each connection; tests call it in-process. Fails when a
/// setting is unusable or the key directory cannot be opened.
pub fn router(server: ServerArtifact, config: &ServeConfig) -> Result<Router, ServeError> {
    let at_least_one = [
        (config.max_concurrent, "max_concurrent", "--max-concurrent"),
        (config.max_keys, "max_keys", "--max-keys"),
        (
            config.max_runs_per_request,
            "max_runs_per_request",
            "--max-runs-per-request",
        ),
        (config.max_uploads, "max_uploads", "--max-uploads"),
        (
            config.max_connections,
            "max_connections",
            "--max-connections",
        ),
    ];
    for (v, name, flag) in at_least_one {
        if v == 0 {
            return Err(ServeError::Config(format!(
                "{flag} ({name}): give at least 1"
            )));
        }
    }
    let timeouts = [
        (
            config.header_timeout,
            "header_timeout",
            "--header-timeout-s",
        ),
        (config.body_timeout, "body_timeout", "--body-timeout-s"),
        (
            config.request_timeout,
            "request_timeout",
            "--request-timeout-s",
        ),
    ];
    for (v, name, flag) in timeouts {
        if v.is_zero() {
            return Err(ServeError::Config(format!(
                "{flag} ({name}): give at least 1 second"
            )));
        }
    }
    match (config.key_dir_max_bytes, &config.key_dir) {
        (Some(0), _) => {
            return Err(ServeError::Config(
                "--key-dir-max-mb (key_dir_max_bytes): give at least 1".into(),
            ))
        }
        (Some(_), None) => {
            return Err(ServeError::Config(
                "--key-dir-max-mb (key_dir_max_bytes) needs --key-dir (key_dir)".into(),
            ))
        }
        _ => {}
    }
    let disk = config
        .key_dir
        .as_deref()
        .map(DiskStore::open)
        .transpose()
        .map_err(ServeError::Config)?;
    let exec =
        Executor::new(config.threads).map_err(|e| ServeError::Config(format!("threads: {e}")))?;
    let state = Arc::new(AppState {
        server,
        exec,
        keys: Mutex::new(Lru::new(config.max_keys, config.evict)),
        owners: Mutex::new(HashMap::new()),
        runs: RunStats::default(),
        disk,
        slots: Arc::new(Semaphore::new(config.max_concurrent)),
        uploads: Arc::new(Semaphore::new(config.max_uploads)),
        config: config.clone(),
    });
    Ok(Router::new()
        .route("/health", get(health))
        .route("/keys", post(upload_keys))
        .route("/keys/{key_id}", axum::routing::delete(delete_keys))
        .route("/run/{key_id}", post(run_batch))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .with_state(state))
}

/// A connection's byte stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// What a TLS server answers a plain-HTTP request: a plain-HTTP 400 that says so, then it
/// closes the connection.
const PLAIN_TO_TLS_ANSWER: &str = "this server speaks HTTPS only: use an https:// URL (veil client --ca-cert FILE to trust its certificate)";

/// The stream of an accepted connection: the TCP stream, or for a TLS server the stream
/// after the handshake (within `timeout`). `None` when the connection is done with (a failed
/// handshake, or a plain-HTTP request answered 400).
async fn open_stream(
    stream: tokio::net::TcpStream,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    timeout: Duration,
) -> Option<Box<dyn Io>> {
    let Some(acceptor) = tls else {
        return Some(Box::new(stream));
    };
    let mut first = [0u8; 4];
    let peeked = tokio::time::timeout(timeout, stream.peek(&mut first))
        .await
        .ok()?
        .ok()?;
    if crate::tls::looks_like_plain_http(&first[..peeked]) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = serde_json::json!({ "error": PLAIN_TO_TLS_ANSWER }).to_string();
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = stream;
        // Read the request head first (at most 16 KiB, for at most a second): closing a
        // socket with unread data resets it, and the client would not see the answer.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let drain = async {
            while head.len() < 16 << 10 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        let _ = tokio::time::timeout(timeout, stream.write_all(answer.as_bytes())).await;
        let _ = stream.shutdown().await;
        tracing::debug!("a plain-HTTP request to the TLS server was refused");
        return None;
    }
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(Box::new(s)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Serves `server` as configured until `shutdown` completes (e.g. Ctrl-C); `on_listen` is
/// called with the bound address once the server listens.
pub fn serve(
    server: ServerArtifact,
    config: &ServeConfig,
    on_listen: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match &config.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(files).map_err(ServeError::Config)?,
        )),
        None => None,
    };
    let app = router(server, config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io(format!("cannot start the server runtime: {e}")))?;
    let addr = config.addr.clone();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let header_timeout = config.header_timeout;
    let request_timeout = config.request_timeout;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Io(format!("cannot listen on {addr}: {e}")))?;
        on_listen(local);
        let mut shutdown = std::pin::pin!(shutdown);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                // The handshake counts as part of the request head: a client that does not
                // finish it within the header timeout is dropped.
                let Some(io) = open_stream(stream, tls.as_ref(), header_timeout).await else {
                    drop(permit);
                    return;
                };
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                let io = hyper_util::rt::TokioIo::new(io);
                let connection = watcher.watch(http.serve_connection(io, service));
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection closed");
                }
                drop(permit);
            });
        }
        // Stop accepting, let requests in progress finish (idle connections close at once),
        // for at most the request timeout.
        if tokio::time::timeout(request_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in progress at shutdown were dropped");
        }
        Ok(())
    })
}
