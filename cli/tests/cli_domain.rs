//! A compiled program is right on every input it accepts, or refuses the input: samples that
//! drive a value outside the interval the program was compiled for are refused by `veil
//! encrypt` with the sample, the value and the interval (exit 1, nothing encrypted), through
//! the real binary in separate processes.

use std::path::Path;
mod common;
use common::{interpret, ints, s, veil, workdir};
mod cli_serve_support;
use cli_serve_support::Server;

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// Compiles `src` on `inputset` and makes keys; returns (client, secret, server, eval).
fn setup(dir: &Path, src: &str, inputset: &str) -> [String; 4] {
    let set = dir.join("inputset.csv");
    std::fs::write(&set, inputset).unwrap();
    setup_with(dir, src, &["--inputset", &s(&set)])
}

/// Compiles `src` with the compile options `extra` and makes keys; returns (client, secret,
/// server, eval).
fn setup_with(dir: &Path, src: &str, extra: &[&str]) -> [String; 4] {
    let prog = dir.join("prog.veil");
    std::fs::write(&prog, src).unwrap();
    let build = dir.join("build");
    let (p, b) = (s(&prog), s(&build));
    let mut args = vec!["compile", &p, "--out", &b];
    args.extend_from_slice(extra);
    ok(&args);
    let keys = dir.join("keys");
    let client = s(&build.join("client.veil-artifact"));
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &s(&keys),
        "--seed",
        "9",
    ]);
    [
        client,
        s(&keys.join("secret.veil-keys")),
        s(&build.join("server.veil-artifact")),
        s(&keys.join("eval.veil-keys")),
    ]
}

/// Encrypts the one-row CSV `row` with `extra` options: (exit code, stderr).
fn encrypt(dir: &Path, keys: &[String; 4], row: &str, extra: &[&str]) -> (i32, String) {
    let input = dir.join("x.csv");
    std::fs::write(&input, row).unwrap();
    let x = s(&dir.join("x.veil-ct"));
    let mut args = vec![
        "encrypt",
        "--client",
        &keys[0],
        "--keys",
        &keys[1],
        "--input",
        input.to_str().unwrap(),
        "--out",
        &x,
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = veil(&args);
    (code, err)
}

/// Runs and decrypts the last encrypted sample; its outputs as JSON.
fn run_and_decrypt(dir: &Path, keys: &[String; 4]) -> serde_json::Value {
    let (x, y) = (s(&dir.join("x.veil-ct")), s(&dir.join("y.veil-ct")));
    ok(&[
        "run",
        "--server",
        &keys[2],
        "--eval-keys",
        &keys[3],
        "--input",
        &x,
        "--out",
        &y,
    ]);
    let out = ok(&[
        "decrypt", "--client", &keys[0], "--keys", &keys[1], "--input", &y, "--format", "json",
    ]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
}

const SQUARE_OF_SUM: &str = "veil 1
; y = (a + b)^2 through one table
%a = input \"a\" : enc<u4>
%b = input \"b\" : enc<u4>
%s = add %a, %b : enc<u5>
table @sq = [0,1,4,9,16,25,36,49,64,81,100,121,144,169,196,225,256,289,324,361,400,441,484,529,576,625,676,729,784,841,900,961]
%y = tlu %s table=@sq : enc<u10>
output \"y\", %y
";

#[test]
fn a_sum_outside_its_calibrated_interval_is_refused() {
    let dir = workdir("sum");
    // The inputset keeps a <= 3, b <= 1 and a + b <= 3: the program narrows a to u2, b to
    // u1 and s to u2.
    let keys = setup(&dir, SQUARE_OF_SUM, "0,0\n3,0\n2,1\n1,1\n0,1\n1,0\n");
    // a = 3, b = 1 fits the narrowed inputs, but a + b = 4 does not fit s: refused, not
    // decrypted to a wrong 0.
    let (code, err) = encrypt(&dir, &keys, "3,1\n", &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("sample 1"), "{err}");
    assert!(err.contains("= add would be 4, outside 0..=3"), "{err}");
    assert!(err.contains("nothing was encrypted"), "{err}");
    // Clamping the inputs into their intervals (a <= 3, b <= 1) still gives a + b = 4: refused.
    let (code, err) = encrypt(&dir, &keys, "3,1\n", &["--out-of-domain", "clamp-inputs"]);
    assert_eq!(code, 1, "{err}");
    // An input outside its calibrated interval (here also outside its narrowed type) is
    // refused, naming the input.
    let (code, err) = encrypt(&dir, &keys, "0,2\n", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("input \"b\""), "{err}");
    // A sample inside the domain runs and equals the interpreter.
    let (code, err) = encrypt(&dir, &keys, "2,1\n", &[]);
    assert_eq!(code, 0, "{err}");
    let want = interpret(SQUARE_OF_SUM, &[2, 1]);
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), want[0].1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `veil serve`'s client path: the client checks each sample before it encrypts it, so a
/// sample outside the domain never reaches the server; one inside runs on the server and
/// decrypts to the interpreter's result.
#[test]
fn the_serve_client_path_checks_samples_before_sending_them() {
    let dir = workdir("serve");
    let keys = setup(&dir, SQUARE_OF_SUM, "0,0\n3,0\n2,1\n1,1\n0,1\n1,0\n");
    let x = dir.join("x.veil-ct");
    let (code, err) = encrypt(&dir, &keys, "3,1\n", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("= add would be 4, outside 0..=3"), "{err}");
    assert!(!x.exists(), "a refused sample left ciphertexts to send");
    let (code, err) = encrypt(&dir, &keys, "2,1\n", &[]);
    assert_eq!(code, 0, "{err}");
    let server = Server::start(&keys[2], &["--threads", "1"]);
    let url = server.url();
    let key_id = ok(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--eval-keys",
        &keys[3],
    ]);
    let y = s(&dir.join("y.veil-ct"));
    ok(&[
        "client",
        "run",
        "--url",
        &url,
        "--key-id",
        key_id.trim(),
        "--input",
        &s(&x),
        "--out",
        &y,
    ]);
    let out = ok(&[
        "decrypt", "--client", &keys[0], "--keys", &keys[1], "--input", &y, "--format", "json",
    ]);
    let got = serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone();
    assert_eq!(ints(&got["y"]), interpret(SQUARE_OF_SUM, &[2, 1])[0].1);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

const DENSE_RELU: &str = "veil 1
; a 4x4 dense layer with a relu: max(x @ w, 0)
%x = input \"x\" : enc<u4>[4]
%w = const [[1,-1,2,0],[1,1,-2,-1],[2,0,1,-1],[-1,2,1,-2]] : clear<i3>[4,4]
%acc = matmul %x, %w : enc<i8>[4]
%y = relu %acc : enc<u7>[4]
output \"y\", %y
";

#[test]
fn an_accumulator_outside_its_calibrated_interval_is_refused() {
    let dir = workdir("dense");
    // Each input alone covers its whole u4 range; their sums stay small.
    let mut rows = vec!["0,0,0,0".to_string()];
    for i in 0..4 {
        for v in [5, 10, 15] {
            let mut r = [0; 4];
            r[i] = v;
            rows.push(format!("{},{},{},{}", r[0], r[1], r[2], r[3]));
        }
    }
    rows.push("3,4,5,6\n".into());
    let keys = setup(&dir, DENSE_RELU, &rows.join("\n"));
    // Valid u4 inputs whose accumulators leave the calibrated intervals: refused with the
    // value (the matmul) that leaves.
    let (code, err) = encrypt(&dir, &keys, "15,2,12,13\n", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("= matmul at ["), "{err}");
    assert!(
        err.contains("the interval the program was compiled for"),
        "{err}"
    );
    // --out-of-domain allow encrypts anyway (the help says results may be wrong).
    let (code, err) = encrypt(&dir, &keys, "15,2,12,13\n", &["--out-of-domain", "allow"]);
    assert_eq!(code, 0, "{err}");
    let (_, help, _) = veil(&["encrypt", "--help"]);
    assert!(help.contains("MAY BE WRONG"), "{help}");
    // Inside the domain: equal to the interpreter.
    let (code, err) = encrypt(&dir, &keys, "3,4,5,6\n", &[]);
    assert_eq!(code, 0, "{err}");
    let want = interpret(DENSE_RELU, &[3, 4, 5, 6]);
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), want[0].1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--domain types`: the 4x4 relu layer, compiled for every value of its u4 inputs,
/// decrypts the sample that the calibrated program refuses (and once computed wrongly) to the
/// interpreter's values; `veil inspect` shows the policy and the accepted intervals.
#[test]
fn domain_types_computes_every_input_of_the_declared_types() {
    let dir = workdir("dense-types");
    // no inputset needed under --domain types
    let keys = setup_with(&dir, DENSE_RELU, &["--domain", "types"]);
    let (code, err) = encrypt(&dir, &keys, "15,2,12,13\n", &[]);
    assert_eq!(code, 0, "{err}");
    let want = interpret(DENSE_RELU, &[15, 2, 12, 13]);
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), want[0].1);
    let (code, err) = encrypt(&dir, &keys, "15,15,15,15\n", &[]);
    assert_eq!(code, 0, "{err}");
    let want = interpret(DENSE_RELU, &[15, 15, 15, 15]);
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), want[0].1);
    let info = ok(&["inspect", &keys[0]]);
    assert!(info.contains("domain                 types"), "{info}");
    assert!(info.contains("input \"x\"            0..=15"), "{info}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--domain types` on the first case of the issue: `a=3, b=1` decrypts to 16; the stats
/// record the policy and the intervals, and the default policy without an inputset says how
/// to fix the command.
#[test]
fn domain_types_squares_the_sum_the_calibrated_program_refuses() {
    let dir = workdir("sum-types");
    let set = dir.join("inputset.csv");
    std::fs::write(&set, "0,0\n3,0\n2,1\n1,1\n0,1\n1,0\n").unwrap();
    // the same narrow inputset: ignored under types
    let keys = setup_with(
        &dir,
        SQUARE_OF_SUM,
        &["--domain", "types", "--inputset", &s(&set)],
    );
    let (code, err) = encrypt(&dir, &keys, "3,1\n", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), vec![16]);
    let (code, err) = encrypt(&dir, &keys, "15,15\n", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ints(&run_and_decrypt(&dir, &keys)["y"]), vec![900]);
    let prog = s(&dir.join("prog.veil"));
    let out = s(&dir.join("stats"));
    let stats = ok(&[
        "compile", &prog, "--domain", "types", "--emit", "stats", "--out", &out,
    ]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["domain"], "types", "{stats}");
    assert_eq!(v["input_domain"][1]["name"], "b", "{stats}");
    assert_eq!(v["input_domain"][1]["hi"], 15, "{stats}");
    // with an inputset, what types costs against calibrated: a 5-bit lookup instead of 2
    let with_set = |what: &[&str]| {
        let set = s(&set);
        let mut args = vec!["compile", &prog, "--domain", "types", "--inputset", &set];
        args.extend_from_slice(what);
        args.extend_from_slice(&["--out", &out]);
        ok(&args)
    };
    let stats = with_set(&["--emit", "stats"]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        v["versus_calibrated"]["calibrated"]["max_bits"], 2,
        "{stats}"
    );
    assert_eq!(v["versus_calibrated"]["types"]["max_bits"], 5, "{stats}");
    let table = with_set(&["--stats"]);
    assert!(
        table.contains("calibrated -> types") && table.contains("widest bootstrap 2 -> 5 bits"),
        "{table}"
    );
    let stats = ok(&[
        "compile",
        &prog,
        "--inputset",
        &s(&set),
        "--emit",
        "stats",
        "--out",
        &out,
    ]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["domain"], "calibrated", "{stats}");
    assert_eq!(v["input_domain"][1]["hi"], 1, "{stats}");
    let (code, _, err) = veil(&["compile", &prog, "--out", &out]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--inputset is required") && err.contains("--domain types"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compile_help_documents_both_domain_policies() {
    let (_, help, _) = veil(&["compile", "--help"]);
    for want in [
        "--domain <DOMAIN>",
        "calibrated",
        "types",
        "refused",
        "declared input types",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

/// An ONNX fixture's calibration rows and test rows as CSV files, the label last.
fn fixture_csvs(name: &str, dir: &Path) -> (String, String, String) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ml/tests/fixtures/onnx");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join(format!("{name}.json"))).unwrap())
            .unwrap();
    fn flat(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            v => out.push(format!("{:?}", v.as_f64().unwrap())),
        }
    }
    let write = |key: &str, labels: Option<&serde_json::Value>, path: &Path| {
        let mut text = String::new();
        for (i, r) in f[key].as_array().unwrap().iter().enumerate() {
            let mut cells = Vec::new();
            flat(r, &mut cells);
            cells.push(labels.map_or("0".into(), |l| l[i].to_string()));
            text += &(cells.join(",") + "\n");
        }
        std::fs::write(path, text).unwrap();
        s(path)
    };
    (
        s(&base.join(format!("{name}.onnx"))),
        write("calibration", None, &dir.join("train.csv")),
        write("inputs", Some(&f["targets"]), &dir.join("test.csv")),
    )
}

/// `--domain types` compiles ONNX models (a tree and a network) and records the policy; the
/// simulated program (and, for the tree, the encrypted one on two samples) predicts exactly
/// what the quantized program predicts in the clear. The network rounds exactly: approximate
/// rounding may flip a tie, by design (its bound is checked in
/// `an_approximate_round_is_stated_with_its_bound`).
#[test]
fn domain_types_compiles_onnx_models_and_simulates_them_exactly() {
    let dir = workdir("onnx-types");
    for (name, extra) in [
        ("tree_iris", &[][..]),
        (
            "torch_mlp_iris",
            &["--rounding-bits", "6", "--rounding-method", "exact"][..],
        ),
    ] {
        let (model, train, test) = fixture_csvs(name, &dir);
        let out = s(&dir.join(name));
        let mut args = vec![
            "compile",
            &model,
            "--inputset",
            &train,
            "--label-column",
            "last",
            "--domain",
            "types",
            "--emit",
            "stats",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        let stats: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(stats["domain"], "types", "{name}: {stats}");
        let eval = |mode: &str, more: &[&str]| -> serde_json::Value {
            let mut args = vec![
                "eval",
                &model,
                "--inputset",
                &train,
                "--test",
                &test,
                "--label-column",
                "last",
                "--domain",
                "types",
                "--mode",
                mode,
                "--json",
            ];
            args.extend_from_slice(extra);
            args.extend_from_slice(more);
            serde_json::from_str(&ok(&args)).unwrap()
        };
        let (clear, sim) = (eval("clear", &[]), eval("simulate", &[]));
        assert_eq!(sim["veil"], clear["veil"], "{name}: {sim} vs {clear}");
        if name == "tree_iris" {
            // encrypted: keys, encryption, the run and decryption of two samples
            let two = ["--samples", "2"];
            let (clear, exec) = (eval("clear", &two), eval("execute", &two));
            assert_eq!(exec["veil"], clear["veil"], "{name}: {exec} vs {clear}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A program with an approximate round says so: `veil inspect --stats` states the bound per
/// output, `veil decrypt` repeats it on stderr, and the decrypted value lies within it.
#[test]
fn an_approximate_round_is_stated_with_its_bound() {
    let dir = workdir("approx");
    let src = "veil 1
; y = x^2 of x rounded approximately to a multiple of 4
%x = input \"x\" : enc<u6>
%r = round %x lsbs=2 approx=true
%y = mul %r, %r
output \"y\", %y
";
    let inputset: String = (0..64).map(|v| format!("{v}\n")).collect();
    let keys = setup(&dir, src, &inputset);
    let stats = ok(&["inspect", &keys[0], "--stats"]);
    let line = stats
        .lines()
        .find(|l| l.contains("approximate rounding"))
        .unwrap_or_else(|| panic!("no bound stated:\n{stats}"));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", &keys[2], "--stats", "--json"])).unwrap();
    let bound = v["approx_deviation"][0].as_i64().unwrap();
    // r moves by one step of 4 at most; y = r^2 by at most (r + 4)^2 - r^2 over r's range
    assert!(bound >= 4 * 2 * 62, "{bound}");
    assert!(line.contains(&format!("±{bound}")), "{line}");
    let (code, err) = encrypt(&dir, &keys, "37\n", &[]);
    assert_eq!(code, 0, "{err}");
    let (x, y) = (s(&dir.join("x.veil-ct")), s(&dir.join("y.veil-ct")));
    ok(&[
        "run",
        "--server",
        &keys[2],
        "--eval-keys",
        &keys[3],
        "--input",
        &x,
        "--out",
        &y,
    ]);
    let (code, out, err) = veil(&[
        "decrypt", "--client", &keys[0], "--keys", &keys[1], "--input", &y, "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("rounds approximately"), "{err}");
    assert!(err.contains(&format!("up to {bound}")), "{err}");
    let got = ints(&serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["y"]);
    // 37 rounds to 36 or 40
    assert!(got == vec![36 * 36] || got == vec![40 * 40], "{got:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
