//! Rule file tests, in the manner of Cranelift's filetests: every
//! `compiler/tests/rules/<domain>/*.veil` file is a program with a header, run through passes,
//! and its output is an insta snapshot (`compiler/tests/snapshots/rule_files__run@...`).
//!
//! Header (the file's first comment lines, before `veil 1`):
//!
//! ```text
//! ; test: rewrite rules=<domain>[,<domain>...]   required; the rule domains the rewrite may use
//! ; passes: bitwidth,rewrite                      optional; default `rewrite`
//! ; inputset: 1,2 | 3,-1                          optional; calibration samples for `bitwidth`,
//!                                                 one row per sample, every input flattened
//!                                                 in declaration order (as `--inputset` CSVs)
//! ; any other comment: what the test shows
//! ```
//!
//! The snapshot holds the PBS counts of every `rewrite` run and the program after the passes.
//! Every output is checked against the input program with the interpreter (on the inputset's
//! samples if there is one, else every input or a fixed-seed sample), and so is every
//! alternative the domain's rules add to the e-graph, alone and with every other domain (on
//! every input).
//!
//! Bless new or changed snapshots with `cargo insta accept` (or `INSTA_UPDATE=always cargo
//! test -p veil-compiler --test rule_files`) and review the `.snap` diffs; with `CI=true` a
//! missing or different snapshot fails.

mod rewrite_util;
use rewrite_util::*;
use veil_compiler::passes::{PassContext, PassManager};
use veil_compiler::rewrite::{rules::DOMAINS, RewriteConfig};
use veil_ir::{text, Graph, Tensor};

/// A parsed header.
struct Header {
    domains: Vec<String>,
    passes: Vec<String>,
    inputset: Option<Vec<Vec<i64>>>,
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
    };
    let mut test = false;
    for line in src.lines().take_while(|l| l.starts_with(';')) {
        let line = line.trim_start_matches(';').trim();
        if let Some(rest) = line.strip_prefix("test:") {
            let rest = rest.trim();
            let domains = rest
                .strip_prefix("rewrite rules=")
                .ok_or_else(|| format!("`; test: {rest}`: expected `rewrite rules=<domains>`"))?;
            h.domains = list(domains);
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
        return Err("no `; test: rewrite rules=<domain>` header line".into());
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
fn run_file(src: &str) -> String {
    let h = header(src).unwrap_or_else(|e| panic!("{e}"));
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
    // Every alternative of the test's domains, and of all domains together, is sound.
    let (checked, _) = check_all_alternatives(src, &cfg);
    assert!(checked > 0, "no alternative checked");
    check_all_alternatives(src, &RewriteConfig::default());
    let mut snap = format!(
        "; passes: {}; rules: {}\n",
        h.passes.join(","),
        h.domains.join(",")
    );
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

#[test]
fn run() {
    insta::glob!("rules", "*/*.veil", |path| {
        let src = std::fs::read_to_string(path).expect("readable rule file");
        let domain = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = path.display();
        let h = header(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            h.domains.contains(&domain),
            "{name}: a test in rules/{domain}/ must use rules={domain}"
        );
        insta::assert_snapshot!(run_file(&src));
    });
}

/// Every rule domain has a directory with at least one file test.
#[test]
fn every_domain_has_file_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    for d in DOMAINS {
        let n = std::fs::read_dir(dir.join(d.name))
            .map(|r| {
                r.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "veil"))
                })
                .count()
            })
            .unwrap_or(0);
        assert!(n > 0, "no file test in compiler/tests/rules/{}/", d.name);
    }
}
