//! The `veil` command line. Subcommands live in `veil_compiler::cli`, one file each.

fn main() -> std::process::ExitCode {
    veil_compiler::cli::main()
}
