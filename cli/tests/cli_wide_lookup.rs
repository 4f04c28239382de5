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

/// A `.veil` program with a 12-bit lookup, from separate `veil` processes: `compile --emit
/// stats` shows the WoP-PBS decomposition, and compile, keygen, encrypt, run and decrypt give
/// the table's values (the lookup lowers to `wop.pbs`).
#[test]
fn twelve_bit_lookup_compiles_and_runs_encrypted() {
    let dir = common::workdir("wide_lookup");
    let f = |x: i64| (x * 37 + (x >> 6) * 11 + 5).rem_euclid(251);
    let table: Vec<String> = (0..4096).map(|x| f(x).to_string()).collect();
    let src = format!(
        "veil 1\ntable @t = [{}]\n%x = input \"x\" : enc<u12>[2]\n%y = tlu %x table=@t : enc<u8>[2]\noutput \"y\", %y\n",
        table.join(",")
    );
    let prog = dir.join("wide.veil");
    std::fs::write(&prog, src).unwrap();
    let prog = common::s(&prog);
    let ok = |args: &[&str]| {
        let (code, out, err) = veil(args);
        assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
        out
    };
    let stats: serde_json::Value = serde_json::from_str(&ok(&[
        "compile", &prog, "--domain", "types", "--emit", "stats",
    ]))
    .unwrap();
    let w = &stats["wop"][0];
    assert_eq!(w["bits"], 12, "{stats}");
    assert_eq!(w["lookups"], 2);
    assert_eq!(w["keyswitches"], 12);
    assert_eq!(w["extraction_pbs"], 11);
    assert!(w["p_error"].as_f64().unwrap() <= (-40f64).exp2());
    assert_eq!(stats["pbs"], 0, "no classic bootstrap: {stats}");
    let tfhe = ok(&["compile", &prog, "--domain", "types", "--emit", "tfhe"]);
    assert!(tfhe.contains("wop.pbs"), "{tfhe}");
    let build = dir.join("build");
    let out = ok(&[
        "compile",
        &prog,
        "--domain",
        "types",
        "--out",
        &common::s(&build),
        "--stats",
    ]);
    assert!(out.contains("WoP-PBS lookups"), "{out}");
    assert!(
        out.contains("12 keyswitches, 11 one-bit bootstraps"),
        "{out}"
    );
    let client = common::s(&build.join("client.veil-artifact"));
    let server = common::s(&build.join("server.veil-artifact"));
    let keys = dir.join("keys");
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &common::s(&keys),
        "--seed",
        "18",
    ]);
    let rows = [[0i64, 4095], [2731, 1234]];
    let input = dir.join("input.csv");
    let csv: Vec<String> = rows.iter().map(|r| format!("{},{}", r[0], r[1])).collect();
    std::fs::write(&input, format!("x0,x1\n{}\n", csv.join("\n"))).unwrap();
    let (x, y) = (
        common::s(&dir.join("x.veil-ct")),
        common::s(&dir.join("y.veil-ct")),
    );
    let secret = common::s(&keys.join("secret.veil-keys"));
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &secret,
        "--input",
        &common::s(&input),
        "--out",
        &x,
    ]);
    ok(&[
        "run",
        "--server",
        &server,
        "--eval-keys",
        &common::s(&keys.join("eval.veil-keys")),
        "--input",
        &x,
        "--out",
        &y,
        "--threads",
        "2",
    ]);
    let out = ok(&[
        "decrypt", "--client", &client, "--keys", &secret, "--input", &y, "--format", "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (r, sample) in rows.iter().zip(got.as_array().unwrap()) {
        let want: Vec<i64> = r.iter().map(|&v| f(v)).collect();
        assert_eq!(common::ints(&sample["y"]), want, "{r:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
