//! `veil fmt FILE [--dot]`: parse and verify a `.veil` file, print its canonical form (or a
//! Graphviz rendering) to stdout.

use super::CliError;
use std::path::{Path, PathBuf};

/// Arguments of `veil fmt`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  veil fmt tests/golden/tlu.veil\n  veil fmt --dot tests/golden/tlu.veil | dot -Tsvg > tlu.svg"
)]
pub struct FmtArgs {
    /// The `.veil` text file to format.
    pub file: PathBuf,
    /// Print a Graphviz `dot` rendering instead of the canonical text.
    #[arg(long)]
    pub dot: bool,
}

/// Reads, parses and verifies a `.veil` file; errors read `file:line:col: message`.
pub fn parse_file(path: &Path) -> Result<veil_ir::Graph, CliError> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    veil_ir::text::parse(&src).map_err(|e| {
        // `file:line:col: message`, or `file: message` for whole-program problems.
        let sep = if e.errors().first().is_some_and(|p| p.line > 0) {
            ":"
        } else {
            ": "
        };
        CliError(format!("{}{sep}{e}", path.display()))
    })
}

/// Formats `path`: the canonical text (or dot) of the verified program.
pub fn format_file(path: &Path, dot: bool) -> Result<String, CliError> {
    let g = parse_file(path)?;
    Ok(if dot {
        veil_ir::dot::to_dot(&g)
    } else {
        veil_ir::text::print(&g)
    })
}

/// Runs `veil fmt`.
pub fn run(args: &FmtArgs) -> Result<(), CliError> {
    print!("{}", format_file(&args.file, args.dot)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn formats_and_reports() {
        let p = tmp(
            "ok.veil",
            "veil 1\n%x = input \"x\" : enc<u2>[2]\n%n = neg %x : enc<i3>[2]\noutput \"y\", %n\n",
        );
        assert_eq!(
            format_file(&p, false).unwrap(),
            "veil 1\n%0 = input \"x\" : enc<u2>[2]\n%1 = neg %0 : enc<i3>[2]\noutput \"y\", %1\n"
        );
        assert!(format_file(&p, true).unwrap().starts_with("digraph veil {"));
        let bad = tmp("bad.veil", "veil 1\n%x = input \"x\" : enc<u0>\n");
        let e = format_file(&bad, false).unwrap_err().0;
        assert!(
            e.ends_with("bad.veil:2:22: bad type: bit width 0 out of range 1..=64"),
            "{e}"
        );
        let e = format_file(Path::new("/nonexistent/x.veil"), false)
            .unwrap_err()
            .0;
        assert!(e.starts_with("cannot read /nonexistent/x.veil"), "{e}");
    }
}
