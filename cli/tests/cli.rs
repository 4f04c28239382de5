//! The `veil` binary as a user runs it: the demo's table, and one-line errors with exit code 1.

use std::process::Command;

fn veil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .output()
        .expect("veil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_encrypted_and_matches_clear() {
    // The default model bootstraps (a decision tree), so the demo shows what FHE costs.
    let (code, out, err) = veil(&["demo", "--samples", "2"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("DecisionTreeClassifier"), "{out}");
    assert!(out.contains("FHE == clear on 2/2 samples"), "{out}");
    // a tree's features travel as ranks among its split points: a deliberately out-of-range
    // sample is accepted and decided as the float model decides it
    assert!(
        out.contains("out-of-range sample (feature 0 at") && out.contains("accepted"),
        "{out}"
    );
}

#[test]
fn demo_refuses_an_out_of_range_sample_of_a_quantized_model() {
    // A logistic regression quantizes its features: the client's domain check refuses a
    // deliberately out-of-range sample before encrypting it, with its message.
    let (code, out, err) = veil(&["demo", "--model", "linear", "--samples", "1"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("out-of-range sample refused"), "{out}");
}

#[test]
fn bad_usage_is_one_line_and_exit_code_1() {
    let (code, _, err) = veil(&["fmt", "/nonexistent/program.veil"]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    let (code, _, err) = veil(&["params", "--precision", "40", "--p-error", "1e-9"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Usage mistakes (missing options, unknown flags, bad values) are one line too.
    for args in [
        &["run"][..],
        &["fmt", "--no-such-flag", "x.veil"],
        &["params", "--precision", "four"],
        &["no-such-command"],
    ] {
        let (code, _, err) = veil(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let (code, out, _) = veil(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage"), "{out}");
}

#[test]
fn demo_boosted_trees_run_encrypted() {
    // The bundled XGBoost model: 20 trees, one encrypted sample.
    let (code, out, err) = veil(&["demo", "--model", "boosted", "--samples", "1"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("XGBClassifier"), "{out}");
    assert!(out.contains("FHE == clear on 1/1 samples"), "{out}");
}

#[test]
fn demo_mlp_runs_encrypted() {
    let (code, out, err) = veil(&["demo", "--model", "mlp", "--samples", "2"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("MlpClassifier"), "{out}");
    assert!(out.contains("FHE == clear on 2/2 samples"), "{out}");
}
