//! The `veil` command line (clap). One file per subcommand; this file only registers them.
//!
//! Every subcommand returns `Result<(), CliError>`; errors print as one line on stderr and exit
//! with code 1 (never a panic).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod demo;
pub mod fmt;
pub mod params;

/// veil: compile integer tensor programs and ML models to TFHE and run them encrypted.
#[derive(Parser, Debug)]
#[command(name = "veil", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `veil`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and verify a .veil file; print its canonical form (or Graphviz with --dot).
    Fmt(fmt::FmtArgs),
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

/// Entry point of the `veil` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r: Result<(), CliError> = match cli.command {
        Command::Fmt(args) => fmt::run(&args),
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
