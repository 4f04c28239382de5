//! Golden files: every `tests/golden/*.veil` program goes through the compiler's stages
//! [`STAGES`] (parsed, after `bitwidth`, after the rest of the default pipeline) and is then
//! lowered to the TFHE level as `veil compile` lowers it; after each stage its canonical text
//! is an insta snapshot (`tests/tests/snapshots/golden__STAGE@FILE.snap`), and the file's
//! `; run:` lines (see `veil_tests`) are checked on the stage's output with the reference
//! interpreter, so every stage must preserve the program's meaning (lines expecting an error
//! on the parsed program only).
//!
//! A new pass shows up in the snapshots of the stage whose pipeline runs it; a new stage is
//! one line in [`STAGES`]. Bless new or changed snapshots with `cargo insta accept` (or
//! `INSTA_UPDATE=always cargo test -p veil-tests --test golden`, or `cargo insta review`) and
//! review the diffs; with `CI=true` a missing or different snapshot fails.

use veil_compiler::passes::{PassContext, PassManager, DEFAULT_PIPELINE};
use veil_compiler::program::{compile, CompileConfig};
use veil_ir::text::{parse, print};

/// The tensor-level stages, in order: a name and the passes that turn the previous stage's
/// output into this one (one [`PassContext`] through all of them, as in `compile`).
const STAGES: &[(&str, &[&str])] = &[
    ("parsed", &[]),
    ("bitwidth", &["bitwidth"]),
    ("rewrite", &["desugar", "rewrite", "bitwidth", "dce"]),
];

#[test]
fn stages_are_the_default_pipeline() {
    let all: Vec<&str> = STAGES.iter().flat_map(|s| s.1.iter().copied()).collect();
    assert_eq!(all, DEFAULT_PIPELINE);
}

#[test]
fn golden() {
    insta::glob!("../golden", "*.veil", |path| {
        let src = std::fs::read_to_string(path).expect("readable golden file");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let cases = veil_tests::run_cases(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cases.is_empty(), "{name}: no '; run:' lines");
        let source = parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        // `=> error:` lines are the source's semantics (e.g. a division by zero); a compiled
        // program is exact inside its domain only, so they are checked on the parsed stage.
        let check = |stage: &str, g: &veil_ir::Graph| {
            let outputs_only = *stage != *"parsed";
            for case in &cases {
                if outputs_only && matches!(case.expect, veil_tests::Expect::Error(_)) {
                    continue;
                }
                if let Err(e) = veil_tests::check_case(g, case) {
                    panic!("{name} after stage {stage}: {e}");
                }
            }
        };
        let mut g = source.clone();
        let mut cx = PassContext::default();
        for (stage, passes) in STAGES {
            // a TFHE-level file (already lowered) has only its parsed stage
            if source.level != veil_ir::Level::Tensor && !passes.is_empty() {
                return;
            }
            PassManager::from_names(passes)
                .and_then(|mut pm| pm.run(&mut g, &mut cx))
                .unwrap_or_else(|e| panic!("{name}: stage {stage}: {e}"));
            insta::assert_snapshot!(*stage, print(&g));
            check(stage, &g);
        }
        // Lowered as `veil compile` lowers it: the same pipeline, then lowering and parameters.
        let p = compile(&source, &[], &CompileConfig::default())
            .unwrap_or_else(|e| panic!("{name}: compile: {e}"));
        assert_eq!(
            print(&p.optimized),
            print(&g),
            "{name}: compile's pipeline differs"
        );
        insta::assert_snapshot!("lowered", print(&p.tfhe));
        check("lowered", &p.tfhe);
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
