//! `veil serve --server SERVER_ARTIFACT [--addr 127.0.0.1:8080] [--max-body-mb N]
//! [--max-concurrent N] [--max-keys N] [--threads N]`: the server side as an HTTP service
//! ([`veil_server::serve()`]: axum, HTTP/1, no TLS: put a reverse proxy in front of it for
//! HTTPS). Endpoints: `GET /health`, `POST /keys`, `POST /run/{key_id}`.

use super::io;
use super::CliError;
use std::path::PathBuf;
use veil_runtime::artifact::{ServerArtifact, KIND_SERVER_ARTIFACT};
use veil_server::ServeConfig;

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

/// Runs `veil serve` (until Ctrl-C).
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let server = io::load(
        &args.server,
        KIND_SERVER_ARTIFACT,
        ServerArtifact::from_bytes,
    )?;
    if args.max_concurrent == 0 {
        return Err(CliError("--max-concurrent: give at least 1".into()));
    }
    let max_body = usize::try_from(args.max_body_mb.saturating_mul(1 << 20))
        .map_err(|_| CliError("--max-body-mb: too large".into()))?;
    let config = ServeConfig {
        addr: args.addr.clone(),
        max_body,
        max_concurrent: args.max_concurrent,
        max_keys: args.max_keys,
        threads: args.threads,
    };
    let program_id = server.program_id();
    veil_server::serve(
        server,
        &config,
        |local| println!("serving program {program_id:016x} on http://{local} (Ctrl-C stops)"),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .map_err(|e| CliError(e.to_string()))
}
