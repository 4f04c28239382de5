//! `veil params --bits B`: a wide table lookup's WoP-PBS decomposition, parameters, predicted
//! error, security check and cost, from the real binary.

mod common;
use common::veil;

#[test]
fn sixteen_bit_lookup_is_explained() {
    let (code, out, err) = veil(&["params", "--bits", "16"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for want in [
        "16-bit table lookup by WoP-PBS",
        "16 keyswitches",
        "15 one-bit bootstraps",
        "16 circuit bootstraps",
        "-> 16 GGSW ciphertexts",
        "2^16-entry table in 64 polynomial(s) of N=1024",
        "CMux tree of 63 CMux(es) (depth 6), then a blind rotation on 10 bits",
        "meets the 128-bit floor",
        "outputs of up to 8 bits",
        "classic     none",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // The predicted error is below the 2^-40 target.
    let pe: f64 = out
        .split("p_error 2^")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no p_error in\n{out}"));
    assert!(pe <= -40.0, "{pe}");
}

#[test]
fn json_and_narrow_widths() {
    let (code, out, err) = veil(&["params", "--bits", "12", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bits"], 12);
    assert_eq!(v["secure"], true);
    assert_eq!(
        v["estimate"]["counts"]["cbs_pbs"],
        12 * v["params"]["cbs_level"].as_u64().unwrap()
    );
    assert!(v["estimate"]["p_error"].as_f64().unwrap() <= (-40f64).exp2());
    // At 4 bits a classic bootstrap exists and is named for comparison.
    let (code, out, _) = veil(&["params", "--bits", "4"]);
    assert_eq!(code, 0);
    assert!(out.contains("classic     one KS + PBS"), "{out}");
}

#[test]
fn bad_widths_are_one_line_errors() {
    for args in [
        &["params", "--bits", "17"][..],
        &["params", "--bits", "0"],
        &["params", "--bits", "16", "--precision", "4"],
    ] {
        let (code, _, err) = veil(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}
