//! The `veil` command line. Subcommands live in the `veil_cli` library, one file each.

fn main() -> std::process::ExitCode {
    veil_cli::main()
}
