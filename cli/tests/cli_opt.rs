//! `veil opt` as a user runs it (the built binary, one process per call): every registered
//! pass on every corpus program, the dumps of `--print-after-all`, `--rules`, `--inputset`,
//! and one-line errors (exit code 1, never a panic) for unknown passes and malformed programs.

mod common;
use common::{fails, repo, s, veil, workdir};

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    out
}

fn corpus() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "veil"))
        .map(|p| s(&p))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} corpus programs", files.len());
    files
}

/// The output is a program: it parses and verifies.
fn parses(text: &str, what: &str) -> veil_ir::Graph {
    let g = veil_ir::text::parse(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    veil_ir::verify::verify(&g).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    g
}

/// Splits `--print-after-all` output into `(header, program)` chunks.
fn dumps(out: &str) -> Vec<(String, String)> {
    let mut chunks: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if line.starts_with("; after ") {
            chunks.push((line.to_string(), String::new()));
        } else {
            let c = chunks.last_mut().expect("output starts with a dump header");
            c.1 += line;
            c.1 += "\n";
        }
    }
    chunks
}

#[test]
fn every_registered_pass_on_every_corpus_program() {
    let list = ok(&["opt", "--list"]);
    let mut passes: Vec<&str> = veil_compiler::passes::REGISTRY
        .iter()
        .map(|p| p.name)
        .collect();
    passes.extend(["lower", "verify"]);
    for p in &passes {
        assert!(
            list.contains(&format!("  {p} ")),
            "--list lacks {p}:\n{list}"
        );
    }
    for d in veil_compiler::rewrite::rules::DOMAINS {
        assert!(list.contains(d.name), "--list lacks rule domain {}", d.name);
    }
    assert_eq!(ok(&["opt", "--passes", "list"]), list);
    for file in corpus() {
        for p in &passes {
            // lowering knows the core ops only: the numpy ops are desugared first
            let pipeline = if *p == "lower" { "desugar,lower" } else { p };
            let out = ok(&["opt", &file, "--passes", pipeline]);
            let g = parses(&out, &format!("{file} --passes {pipeline}"));
            let want = if *p == "lower" {
                veil_ir::Level::Tfhe
            } else {
                veil_ir::Level::Tensor
            };
            assert_eq!(g.level, want, "{file} --passes {pipeline}");
        }
    }
}

#[test]
fn print_after_all_prints_every_stage() {
    let pipeline = "bitwidth,desugar,rewrite,bitwidth,dce,lower";
    let names: Vec<&str> = pipeline.split(',').collect();
    for file in corpus() {
        let out = ok(&["opt", &file, "--passes", pipeline, "--print-after-all"]);
        let chunks = dumps(&out);
        assert_eq!(chunks.len(), names.len(), "{file}:\n{out}");
        for (i, ((header, text), name)) in chunks.iter().zip(&names).enumerate() {
            assert_eq!(
                header,
                &format!("; after {name} ({}/{})", i + 1, names.len()),
                "{file}"
            );
            parses(text, &format!("{file} after {name}"));
        }
        // the last dump is the result, printed once
        assert!(chunks[5].1.contains("level tfhe"), "{file}");
        // and it is what the pipeline without dumps prints
        assert_eq!(
            ok(&["opt", &file, "--passes", pipeline]),
            chunks[5].1,
            "{file}"
        );
    }
    // --print-after names one pass: its dumps, then the result
    let file = repo("tests/corpus/pw_relu6.veil");
    let out = ok(&[
        "opt",
        &file,
        "--passes",
        "bitwidth,rewrite,bitwidth",
        "--print-after",
        "bitwidth",
    ]);
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("; after")).collect();
    assert_eq!(
        headers,
        ["; after bitwidth (1/3)", "; after bitwidth (3/3)"]
    );
}

#[test]
fn help_has_examples_and_p_error_takes_powers_of_two() {
    let h = ok(&["opt", "--help"]);
    assert!(h.contains("Examples:") && h.contains("veil opt "), "{h}");
    let file = repo("tests/corpus/pw_relu6.veil");
    let strict = ok(&["opt", &file, "--passes", "lower", "--p-error", "2^-128"]);
    let loose = ok(&["opt", &file, "--passes", "lower", "--p-error", "2^-20"]);
    assert!(
        strict.contains("level tfhe") && strict != loose,
        "{strict}\n{loose}"
    );
}

#[test]
fn rules_and_inputset() {
    let file = repo("tests/corpus/pw_relu6.veil");
    // relu then min(., 6): one lookup with every domain, none with fusion alone
    let all = ok(&["opt", &file, "--passes", "rewrite"]);
    assert!(all.contains(" tlu "), "{all}");
    let fusion = ok(&["opt", &file, "--passes", "rewrite", "--rules", "fusion"]);
    assert!(
        !fusion.contains(" tlu ") && fusion.contains(" min "),
        "{fusion}"
    );
    // calibration narrows the input to the samples' range
    let dir = workdir("opt-inputset");
    let set = dir.join("set.csv");
    std::fs::write(&set, "0,1\n-3,2\n").unwrap();
    let out = ok(&["opt", &file, "--inputset", &s(&set), "--passes", "bitwidth"]);
    assert!(out.contains("input \"x\" : enc<i3>[2]"), "{out}");
    std::fs::write(&set, "0\n").unwrap();
    fails(
        &["opt", &file, "--inputset", &s(&set), "--passes", "bitwidth"],
        &["set.csv", "expected 2"],
    );
}

#[test]
fn mistakes_are_one_line_errors() {
    let file = repo("tests/corpus/pw_relu6.veil");
    fails(
        &["opt", &file, "--passes", "bitwidth,frobnicate"],
        &["unknown pass `frobnicate`", "bitwidth", "rewrite", "lower"],
    );
    fails(
        &["opt", &file, "--passes", "rewrite", "--rules", "nope"],
        &["unknown rule domain `nope`", "fusion"],
    );
    fails(
        &["opt", &file, "--passes", "lower,dce"],
        &["pass `dce`", "put `lower` last"],
    );
    fails(
        &["opt", &file, "--passes", "dce", "--print-after", "rewrite"],
        &["--print-after rewrite"],
    );
    fails(&["opt", &file], &["--passes"]);
    fails(
        &["opt", &file, "--passes", "lower", "--p-error", "2"],
        &["--p-error 2"],
    );
    fails(&["opt", "--passes", "dce"], &["give a .veil file"]);
    let dir = workdir("opt-bad");
    let bad = dir.join("bad.veil");
    std::fs::write(&bad, "veil 1\n%x = input \"x\" : enc<u0>\n").unwrap();
    fails(
        &["opt", &s(&bad), "--passes", "dce"],
        &["bad.veil:2:22", "bit width 0"],
    );
    std::fs::write(&bad, "veil 1\n%y = add %x, %x : enc<u3>\n").unwrap();
    fails(&["opt", &s(&bad), "--passes", "dce"], &["bad.veil"]);
    fails(
        &["opt", &s(&dir.join("missing.veil")), "--passes", "dce"],
        &["cannot read"],
    );
    // a pass that fails names itself: numpy ops cannot be lowered before desugaring
    fails(
        &[
            "opt",
            &repo("tests/corpus/np_select.veil"),
            "--passes",
            "lower",
        ],
        &["np_select.veil", "pass `lower` failed"],
    );
    // the dumps before the failing pass still print: they show what went into it
    let np = repo("tests/corpus/np_select.veil");
    let (code, out, err) = veil(&[
        "opt",
        &np,
        "--passes",
        "bitwidth,lower",
        "--print-after-all",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("; after bitwidth (1/2)\nveil 1\n"), "{out}");
    assert!(err.contains("pass `lower` failed"), "{err}");
}
