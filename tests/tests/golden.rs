//! Golden files: every `tests/golden/*.veil` program goes through the pipeline [`STAGES`]; after
//! each stage its canonical text is an insta snapshot (`tests/tests/snapshots/`), and the file's
//! `; run:` lines (see `veil_tests`) are checked on the stage's output with the reference
//! interpreter, so every stage must preserve the program's meaning.
//!
//! A later pass adds its stage with one line in [`STAGES`]. Bless new or changed snapshots
//! with `INSTA_UPDATE=always cargo test -p veil-tests --test golden` (or `cargo insta review`);
//! with `CI=true` a missing or different snapshot fails.

use veil_ir::text::{parse, print};
use veil_ir::Graph;

/// A named transformation of a verified program.
type Stage = (&'static str, fn(&Graph) -> Graph);

/// The pipeline, in order; each stage gets the previous stage's output.
const STAGES: &[Stage] = &[("parsed", |g| g.clone())];

#[test]
fn golden() {
    insta::glob!("../golden", "*.veil", |path| {
        let src = std::fs::read_to_string(path).expect("readable golden file");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let cases = veil_tests::run_cases(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cases.is_empty(), "{name}: no '; run:' lines");
        let mut g = parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (stage, f) in STAGES {
            g = f(&g);
            let text = print(&g);
            insta::assert_snapshot!(*stage, text);
            for case in &cases {
                if let Err(e) = veil_tests::check_case(&g, case) {
                    panic!("{name} after stage {stage}: {e}");
                }
            }
        }
    });
}

#[test]
fn golden_files_cover_every_tensor_level_op() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut seen = std::collections::BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/golden exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "veil") {
            files += 1;
            let g = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for v in g.values() {
                seen.insert(g.op(v).name());
            }
        }
    }
    assert!(files >= 20, "only {files} golden files");
    let missing: Vec<_> = veil_ir::text::OP_NAMES
        .iter()
        .filter(|n| !matches!(**n, "keyswitch" | "pbs") && !seen.contains(**n))
        .collect();
    assert!(missing.is_empty(), "no golden file uses {missing:?}");
}
