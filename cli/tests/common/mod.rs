//! Helpers shared by the tests that drive the real `veil` binary (`cli_flow`, `cli_errors`,
//! `cli_serve`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use veil_ir::Tensor;

/// The binary under test: `$VEIL_BIN` when set (an installed veil, or a private copy when
/// several worktrees share one target folder), else the one cargo built.
pub fn bin() -> String {
    std::env::var("VEIL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_veil").to_string())
}

/// Runs `veil args`: `(exit code, stdout, stderr)`.
pub fn veil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("veil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `veil args`, which must fail with exit code 1 and one line on stderr that starts with
/// `error: ` and contains every `want`.
pub fn fails(args: &[&str], want: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 1, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    let line = err.trim_end();
    assert!(line.starts_with("error: "), "{line}");
    for w in want {
        assert!(line.contains(w), "missing {w:?} in\n{line}");
    }
    line.to_string()
}

/// A fresh, empty scratch folder for one test: `veil-cli-{test binary}-{pid}-{name}` in the
/// temporary directory.
pub fn workdir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .map_or("test".into(), |s| s.to_string_lossy().into_owned());
    let d = std::env::temp_dir().join(format!("veil-cli-{binary}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path relative to the repository root, as a command-line argument.
pub fn repo(rel: &str) -> String {
    s(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel))
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The integers of a (nested) JSON array, flattened.
pub fn ints(v: &serde_json::Value) -> Vec<i64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(ints).collect(),
        v => vec![v.as_i64().unwrap()],
    }
}

/// The reference interpreter on one row of the program text `src`, split into the program's
/// inputs; the outputs per name.
pub fn interpret(src: &str, row: &[i64]) -> Vec<(String, Vec<i64>)> {
    let g = veil_ir::text::parse(src).unwrap();
    let mut col = 0;
    let inputs: Vec<Tensor<i64>> = g
        .inputs()
        .into_iter()
        .map(|v| {
            let n = g.ty(v).numel();
            col += n;
            Tensor::new(g.ty(v).shape.to_vec(), row[col - n..col].to_vec()).unwrap()
        })
        .collect();
    let outs = veil_ir::interp::run(&g, &inputs).unwrap();
    g.outputs()
        .into_iter()
        .zip(outs)
        .map(|(o, t)| match g.op(o) {
            veil_ir::Op::Output { name } => (name.clone(), t.data),
            _ => unreachable!(),
        })
        .collect()
}
