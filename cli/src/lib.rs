//! The `veil` command line (clap). One file per subcommand; this file only registers them.
//! `io` holds what the subcommands share (files, artifacts, sample tables, progress bars).
//!
//! Every subcommand returns `Result<(), CliError>`; errors print as one line on stderr and exit
//! with code 1 (never a panic).
//!
//! Client/server flow: `compile` writes a server and a client artifact; the client runs
//! `keygen`, `encrypt` and later `decrypt`; the server runs `run` with the server artifact, the
//! evaluation keys and the encrypted inputs only. Over the network, the server runs `serve`
//! (HTTP) and the client `client upload-keys` once, then `client run` instead of `run`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod client;
pub mod compile;
pub mod decrypt;
pub mod demo;
pub mod encrypt;
pub mod eval;
pub mod fmt;
pub mod inspect;
pub mod io;
pub mod keygen;
pub mod opt;
pub mod params;
pub mod run;
pub mod serve;

/// veil: compile integer tensor programs and ML models to TFHE and run them encrypted.
#[derive(Parser, Debug)]
#[command(
    name = "veil",
    version,
    about,
    long_about = None,
    after_help = "Client/server flow:\n  veil compile prog.veil --inputset samples.csv --out build\n  veil keygen --client build/client.veil-artifact --out keys\n  veil encrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input x.csv --out x.veil-ct\n  veil run --server build/server.veil-artifact --eval-keys keys/eval.veil-keys --input x.veil-ct --out y.veil-ct\n  veil decrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input y.veil-ct\n\nOver HTTP (instead of veil run):\n  veil serve --server build/server.veil-artifact --addr 127.0.0.1:8080\n  veil client upload-keys --url http://127.0.0.1:8080 --eval-keys keys/eval.veil-keys\n  veil client run --url http://127.0.0.1:8080 --key-id KEY_ID --input x.veil-ct --out y.veil-ct"
)]
pub struct Cli {
    /// Log what happens on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `veil`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile a .veil program or an .onnx model into a server and a client artifact.
    Compile(compile::CompileArgs),
    /// Show an artifact, key or ciphertext file: summary, IR of a stage, statistics, Graphviz.
    Inspect(inspect::InspectArgs),
    /// Generate secret keys and evaluation keys for a client artifact (client side).
    Keygen(keygen::KeygenArgs),
    /// Encrypt samples from a CSV or NPY file (client side).
    Encrypt(encrypt::EncryptArgs),
    /// Run a program on encrypted inputs with evaluation keys only (server side).
    Run(run::RunArgs),
    /// Decrypt and decode results (client side).
    Decrypt(decrypt::DecryptArgs),
    /// Score an ONNX model on a labelled test set once compiled (clear, simulate or execute),
    /// next to the float model: what quantization costs, before paying for encryption.
    Eval(eval::EvalArgs),
    /// Serve a program over HTTP: clients upload evaluation keys once, then send encrypted
    /// inputs and get encrypted results back (server side).
    Serve(serve::ServeArgs),
    /// Talk to a `veil serve` server: upload evaluation keys, run on encrypted inputs.
    Client(client::ClientArgs),
    /// Parse and verify a .veil file; print its canonical form (or Graphviz with --dot).
    Fmt(fmt::FmtArgs),
    /// Run compiler passes on a .veil file and print the result (like mlir-opt): --passes,
    /// --print-after-all, --rules; `veil opt --list` names the passes.
    Opt(opt::OptArgs),
    /// Choose secure TFHE parameters for one TLU precision; print them, their cost, predicted
    /// error and key sizes.
    Params(params::ParamsArgs),
    /// The end-to-end tour: train a model on a bundled dataset, compile it, generate keys,
    /// encrypt test samples, run them on ciphertexts, decrypt, and report.
    Demo(demo::DemoArgs),
    /// Print the version.
    Version,
}

/// A command-line failure: printed as one line, exit code 1.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sends `tracing` logs to stderr at debug (`-v`) or trace (`-vv`) level; none otherwise.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// Help and version requests print clap's text; a usage mistake prints one line (clap's
/// message with its details folded in) and exits with code 1 like every other failure.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || matches!(
            e.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        let _ = e.print();
        return if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let mut parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    let usage = parts
        .iter()
        .position(|l| l.starts_with("Usage:"))
        .map(|i| parts.remove(i));
    let msg = parts.join(" ").trim_start_matches("error: ").to_string();
    match usage {
        Some(u) => eprintln!("error: {msg} ({u}; see --help)"),
        None => eprintln!("error: {msg} (see --help)"),
    }
    ExitCode::FAILURE
}

/// Entry point of the `veil` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    let r: Result<(), CliError> = match cli.command {
        Command::Compile(args) => compile::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Encrypt(args) => encrypt::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Decrypt(args) => decrypt::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Client(args) => client::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Opt(args) => opt::run(&args),
        Command::Params(args) => params::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Version => {
            println!("veil {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
