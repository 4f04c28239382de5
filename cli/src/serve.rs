//! `veil serve --server SERVER_ARTIFACT [--addr 127.0.0.1:8080] [--key-dir DIR]
//! [--tls-cert FILE --tls-key FILE] [limits]`: the server side as an HTTP service
//! ([`veil_server::serve()`]: axum, HTTP/1, HTTPS with rustls when given a certificate, else
//! plain HTTP for loopback or behind a TLS-terminating reverse proxy, see
//! `docs/serving.md`). Endpoints: `GET /health`, `POST /keys`, `DELETE /keys/{key_id}`
//! (owner token), `POST /run/{key_id}`.

use super::io;
use super::CliError;
use std::path::PathBuf;
use std::time::Duration;
use veil_runtime::artifact::{ServerArtifact, KIND_SERVER_ARTIFACT};
use veil_server::ServeConfig;

/// Arguments of `veil serve`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Endpoints:\n  GET    /health          program info and limits (JSON)\n  POST   /keys            body: eval.veil-keys; answers {\"key_id\": \"...\"} (the SHA-256 of the keys)\n  DELETE /keys/{key_id}   forget the keys (memory and --key-dir); needs the owner token they were uploaded with\n  POST   /run/{key_id}    body: encrypted inputs; answers encrypted results\n\nReachable from other machines: give --tls-cert and --tls-key (HTTPS), or put a TLS-terminating reverse proxy in front (docs/serving.md).\n\nExamples:\n  veil serve --server build/server.veil-artifact\n  veil serve --server build/server.veil-artifact --addr 0.0.0.0:8443 --tls-cert tls/chain.pem --tls-key tls/key.pem --key-dir /var/lib/veil/keys --key-dir-max-mb 20000\n  veil serve --server build/server.veil-artifact --addr 127.0.0.1:8080 --key-dir /var/lib/veil/keys --max-keys 8 --max-concurrent 2 --threads 8\n\nThen, on the client:\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys\n  veil client run --url http://127.0.0.1:8080 --key-id KEY_ID --input x.veil-ct --out y.veil-ct"
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
    /// Evaluation key sets kept in memory (expanded keys are large); the least recently used
    /// one is forgotten to make room (see --no-evict).
    #[arg(long, default_value_t = 16)]
    pub max_keys: usize,
    /// Refuse new key uploads (503) when --max-keys sets are in memory, instead of forgetting
    /// the least recently used set.
    #[arg(long)]
    pub no_evict: bool,
    /// Directory of the persistent key store: uploaded keys are written there (atomically,
    /// named by their SHA-256) and survive restarts until DELETE /keys/{key_id}; several
    /// servers may share it. Without it keys live in memory only.
    #[arg(long)]
    pub key_dir: Option<PathBuf>,
    /// Quota of the key store in MiB: after an upload the least recently used key sets in
    /// --key-dir are deleted until the rest fits (their owners upload them again).
    #[arg(long, requires = "key_dir")]
    pub key_dir_max_mb: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs
    /// --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most runs in one request (a run: one sample, or one batch of an ML model).
    #[arg(long, default_value_t = 128)]
    pub max_runs_per_request: usize,
    /// Request bodies (keys or inputs) read and held at once; more requests wait.
    #[arg(long, default_value_t = 4)]
    pub max_uploads: usize,
    /// Open connections at once; more wait to be accepted.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request's headers or stay idle between
    /// requests before it is closed.
    #[arg(long, default_value_t = 30)]
    pub header_timeout_s: u64,
    /// Seconds a request body may take to arrive (408 after).
    #[arg(long, default_value_t = 120)]
    pub body_timeout_s: u64,
    /// Seconds a request may wait and run (503 after; checked before each run of a batch).
    #[arg(long, default_value_t = 600)]
    pub request_timeout_s: u64,
    /// Worker threads of the FHE executor (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs `veil serve` (until Ctrl-C).
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let server = io::load(
        &args.server,
        KIND_SERVER_ARTIFACT,
        ServerArtifact::from_bytes,
    )?;
    let max_body = usize::try_from(args.max_body_mb.saturating_mul(1 << 20))
        .map_err(|_| CliError("--max-body-mb: too large".into()))?;
    let config = ServeConfig {
        addr: args.addr.clone(),
        max_body,
        max_concurrent: args.max_concurrent,
        max_keys: args.max_keys,
        evict: !args.no_evict,
        key_dir: args.key_dir.clone(),
        key_dir_max_bytes: args.key_dir_max_mb.map(|mb| mb.saturating_mul(1 << 20)),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(veil_server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        max_runs_per_request: args.max_runs_per_request,
        max_uploads: args.max_uploads,
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout_s),
        body_timeout: Duration::from_secs(args.body_timeout_s),
        request_timeout: Duration::from_secs(args.request_timeout_s),
        threads: args.threads,
    };
    let program_id = server.program_id();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    veil_server::serve(
        server,
        &config,
        |local| println!("serving program {program_id:016x} on {scheme}://{local} (Ctrl-C stops)"),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .map_err(|e| CliError(e.to_string()))
}
