//! File tests, in the manner of Cranelift's filetests: every `compiler/tests/rules/<domain>/*.veil`
//! and `compiler/tests/passes/<pass>/*.veil` file is a program with a header, run through
//! passes, and its output is an insta snapshot (`compiler/tests/snapshots/filetests__rules@...`
//! and `filetests__passes@...`).
//!
//! Header (the file's first comment lines, before `veil 1`):
//!
//! ```text
//! ; test: rewrite rules=<domain>[,<domain>...]   in rules/<domain>/: the rule domains the
//!                                                 rewrite may use (passes default: `rewrite`)
//! ; test: passes=<pass>[,<pass>...]               in passes/<pass>/: the passes to run
//! ; passes: bitwidth,rewrite                      optional: the passes of a rules test
//! ; inputset: 1,2 | 3,-1                          optional; calibration samples for `bitwidth`,
//!                                                 one row per sample, every input flattened
//!                                                 in declaration order (as `--inputset` CSVs)
//! ; any other comment: what the test shows
//! ```
//!
//! The snapshot holds the PBS counts of every `rewrite` run and the program after the passes.
//! Every output is checked against the input program with the interpreter (on the inputset's
//! samples if there is one, else every input or a fixed-seed sample). For rules tests, so is
//! every alternative the domain's rules add to the e-graph, alone and with every other domain
//! (on every input).
//!
//! `veil opt FILE --passes ... --rules ...` prints the same program as the snapshot.
//!
//! Bless new or changed snapshots with `cargo insta accept` (or `INSTA_UPDATE=always cargo
//! test -p veil-compiler --test filetests`) and review the `.snap` diffs; with `CI=true` a
//! missing or different snapshot fails.

mod rewrite_util;
use rewrite_util::*;
use std::path::Path;
use veil_compiler::passes::{PassContext, PassManager, REGISTRY};
use veil_compiler::rewrite::{rules::DOMAINS, RewriteConfig};
use veil_ir::{text, Graph, Tensor};

/// A parsed header.
struct Header {
    /// Rule domains (rules tests); empty for pass tests (every domain).
    domains: Vec<String>,
    passes: Vec<String>,
    inputset: Option<Vec<Vec<i64>>>,
    rules_test: bool,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn header(src: &str) -> Result<Header, String> {
    let mut h = Header {
        domains: Vec::new(),
        passes: vec!["rewrite".to_string()],
        inputset: None,
        rules_test: false,
    };
    let mut test = false;
    for line in src.lines().take_while(|l| l.starts_with(';')) {
        let line = line.trim_start_matches(';').trim();
        if let Some(rest) = line.strip_prefix("test:") {
            let rest = rest.trim();
            if let Some(domains) = rest.strip_prefix("rewrite rules=") {
                h.domains = list(domains);
                h.rules_test = true;
            } else if let Some(passes) = rest.strip_prefix("passes=") {
                h.passes = list(passes);
            } else {
                return Err(format!(
                    "`; test: {rest}`: expected `rewrite rules=<domains>` or `passes=<passes>`"
                ));
            }
            test = true;
        } else if let Some(rest) = line.strip_prefix("passes:") {
            h.passes = list(rest);
        } else if let Some(rest) = line.strip_prefix("inputset:") {
            let rows: Result<Vec<Vec<i64>>, _> = rest
                .split('|')
                .map(|row| row.split(',').map(|v| v.trim().parse::<i64>()).collect())
                .collect();
            h.inputset = Some(rows.map_err(|e| format!("inputset: {e}"))?);
        }
    }
    if !test {
        return Err("no `; test: rewrite rules=<domain>` or `; test: passes=...` line".into());
    }
    Ok(h)
}

/// One sample per row: the row split into the program's inputs, in declaration order.
fn samples(g: &Graph, rows: &[Vec<i64>]) -> Vec<Vec<Tensor<i64>>> {
    rows.iter()
        .map(|row| {
            let mut at = 0;
            let s: Vec<Tensor<i64>> = g
                .inputs()
                .iter()
                .map(|v| {
                    let ty = g.ty(*v);
                    let n = ty.numel();
                    assert!(at + n <= row.len(), "inputset row {row:?} is too short");
                    let t = Tensor::new(ty.shape.clone(), row[at..at + n].to_vec()).unwrap();
                    at += n;
                    t
                })
                .collect();
            assert_eq!(at, row.len(), "inputset row {row:?} is too long");
            s
        })
        .collect()
}

/// Runs one file; returns the snapshot text.
fn run_file(src: &str, h: &Header) -> String {
    let g = parse(src);
    let cfg = RewriteConfig {
        rule_domains: h.domains.clone(),
        ..Default::default()
    };
    let mut cx = PassContext {
        inputset: h.inputset.as_ref().map(|rows| samples(&g, rows)),
        rewrite: cfg.clone(),
        ..Default::default()
    };
    let mut out = g.clone();
    let report = PassManager::from_names(&h.passes)
        .unwrap_or_else(|e| panic!("{e}"))
        .run(&mut out, &mut cx)
        .unwrap_or_else(|e| panic!("{e}"));
    match &cx.inputset {
        // Calibrated: exact on the calibration samples (types may have been narrowed to them).
        Some(samples) => {
            for s in samples {
                let want = veil_ir::interp::run(&g, s).unwrap_or_else(|e| panic!("{e}"));
                let got = veil_ir::interp::run(&out, s).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(want, got, "outputs differ on {s:?}\n{}", text::print(&out));
            }
        }
        None => assert_equivalent(&g, &out, 0x5eed),
    }
    if h.rules_test {
        // Every alternative of the test's domains, and of all domains together, is sound.
        let (checked, _) = check_all_alternatives(src, &cfg);
        assert!(checked > 0, "no alternative checked");
        check_all_alternatives(src, &RewriteConfig::default());
    }
    let mut snap = format!("; passes: {}", h.passes.join(","));
    if h.rules_test {
        snap += &format!("; rules: {}", h.domains.join(","));
    }
    snap += "\n";
    for r in &report.passes {
        if let (Some(b), Some(a)) = (
            r.stats.counters.get("pbs_before"),
            r.stats.counters.get("pbs_after"),
        ) {
            snap += &format!("; {}: pbs {b} -> {a}\n", r.pass);
        }
    }
    snap + &text::print(&out)
}

/// The name of the directory holding `path`.
fn dir_name(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn rules() {
    insta::glob!("rules", "*/*.veil", |path| {
        let src = std::fs::read_to_string(path).expect("readable rule file");
        let (name, domain) = (path.display(), dir_name(path));
        let h = header(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            h.rules_test && h.domains.contains(&domain),
            "{name}: a test in rules/{domain}/ must say `; test: rewrite rules={domain}...`"
        );
        insta::assert_snapshot!(run_file(&src, &h));
    });
}

#[test]
fn passes() {
    insta::glob!("passes", "*/*.veil", |path| {
        let src = std::fs::read_to_string(path).expect("readable pass file");
        let (name, pass) = (path.display(), dir_name(path));
        let h = header(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !h.rules_test && h.passes.contains(&pass),
            "{name}: a test in passes/{pass}/ must say `; test: passes=...{pass}...`"
        );
        insta::assert_snapshot!(run_file(&src, &h));
    });
}

/// The `.veil` files directly in `compiler/tests/{kind}/{name}/`.
fn count(kind: &str, name: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(kind)
        .join(name);
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "veil"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// Every rule domain and every registered pass has a directory with at least one file test.
#[test]
fn every_domain_and_pass_has_file_tests() {
    for d in DOMAINS {
        assert!(
            count("rules", d.name) > 0,
            "no file test in compiler/tests/rules/{}/",
            d.name
        );
    }
    for p in REGISTRY {
        assert!(
            count("passes", p.name) > 0,
            "no file test in compiler/tests/passes/{}/",
            p.name
        );
    }
}

/// Saturation is bounded by iterations, nodes, matches and table work only: no wall-clock
/// limit by default, so a snapshot cannot depend on the speed of the machine.
#[test]
fn saturation_has_no_wall_clock_limit_by_default() {
    let cfg = RewriteConfig::default();
    assert_eq!(cfg.time_limit_ms, 0, "{cfg:?}");
    assert!(cfg.iter_limit > 0 && cfg.rule_domains.is_empty(), "{cfg:?}");
}
