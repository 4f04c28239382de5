//! Bad input as a new user would give it: every mistake prints exactly one line on stderr
//! naming what is wrong, where, and how to fix it, and exits with code 1, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fails, s, veil};

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// Two compiled programs (no bootstrap, so keygen is instant) with two key generations for
/// the first, inputs encrypted under the first keys, and the server's results.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn p(&self, rel: &str) -> String {
        s(&self.dir.join(rel))
    }
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("veil-cli-errors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let p = |r: &str| s(&dir.join(r));
        // x: enc<u3>[3], k: clear<u2>.
        std::fs::write(dir.join("x.csv"), "1,2,3,0\n7,0,5,3\n").unwrap();
        std::fs::write(dir.join("neg.csv"), "0,3,7,-8,0,7\n").unwrap();
        let prog = s(&root.join("tests/golden/add_enc_clear.veil"));
        let other = s(&root.join("tests/golden/neg.veil"));
        ok(&[
            "compile",
            &prog,
            "--inputset",
            &p("x.csv"),
            "--out",
            &p("a"),
        ]);
        ok(&[
            "compile",
            &other,
            "--inputset",
            &p("neg.csv"),
            "--out",
            &p("b"),
        ]);
        for (keys, seed) in [("k1", "1"), ("k2", "2")] {
            ok(&[
                "keygen",
                "--client",
                &p("a/client.veil-artifact"),
                "--out",
                &p(keys),
                "--seed",
                seed,
            ]);
        }
        ok(&[
            "keygen",
            "--client",
            &p("b/client.veil-artifact"),
            "--out",
            &p("kb"),
            "--seed",
            "1",
        ]);
        ok(&[
            "encrypt",
            "--client",
            &p("a/client.veil-artifact"),
            "--keys",
            &p("k1/secret.veil-keys"),
            "--input",
            &p("x.csv"),
            "--out",
            &p("x.veil-ct"),
        ]);
        ok(&[
            "run",
            "--server",
            &p("a/server.veil-artifact"),
            "--eval-keys",
            &p("k1/eval.veil-keys"),
            "--input",
            &p("x.veil-ct"),
            "--out",
            &p("y.veil-ct"),
        ]);
        Setup { dir }
    })
}

fn encrypt_csv(t: &Setup, name: &str, text: &str) -> String {
    let path = t.p(name);
    std::fs::write(&path, text).unwrap();
    fails(
        &[
            "encrypt",
            "--client",
            &t.p("a/client.veil-artifact"),
            "--keys",
            &t.p("k1/secret.veil-keys"),
            "--input",
            &path,
            "--out",
            &t.p("z.veil-ct"),
        ],
        &[name],
    )
}

#[test]
fn missing_file() {
    let t = setup();
    fails(
        &[
            "run",
            "--server",
            &t.p("nowhere/server.veil-artifact"),
            "--eval-keys",
            &t.p("k1/eval.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "cannot read",
            "nowhere/server.veil-artifact",
            "no such file",
            "check the path",
        ],
    );
    fails(
        &["compile", &t.p("missing.veil"), "--inputset", &t.p("x.csv")],
        &["cannot read", "missing.veil"],
    );
    let prog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/add_enc_clear.veil");
    fails(
        &[
            "compile",
            &s(&prog),
            "--inputset",
            &t.p("x.csv"),
            "--p-error",
            "2",
            "--out",
            &t.p("c"),
        ],
        &["--p-error 2", "between 0 and 1"],
    );
    fails(
        &["compile", &t.p("x.csv"), "--inputset", &t.p("x.csv")],
        &["x.csv", "give a .veil program or an .onnx model"],
    );
}

#[test]
fn wrong_artifact_kind() {
    let t = setup();
    // The client artifact given to the server step.
    fails(
        &[
            "run",
            "--server",
            &t.p("a/client.veil-artifact"),
            "--eval-keys",
            &t.p("k1/eval.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "a/client.veil-artifact",
            "this is a client artifact",
            "but a server artifact",
            "is expected here",
        ],
    );
    // Secret keys where evaluation keys go, results where inputs go, a CSV where keys go.
    fails(
        &[
            "run",
            "--server",
            &t.p("a/server.veil-artifact"),
            "--eval-keys",
            &t.p("k1/secret.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "secret.veil-keys",
            "this is secret client keys",
            "but evaluation keys",
        ],
    );
    fails(
        &[
            "run",
            "--server",
            &t.p("a/server.veil-artifact"),
            "--eval-keys",
            &t.p("k1/eval.veil-keys"),
            "--input",
            &t.p("y.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "y.veil-ct",
            "this is encrypted results",
            "but encrypted inputs",
        ],
    );
    fails(
        &[
            "decrypt",
            "--client",
            &t.p("a/client.veil-artifact"),
            "--keys",
            &t.p("x.csv"),
            "--input",
            &t.p("y.veil-ct"),
        ],
        &["x.csv", "not a veil file", "give secret client keys"],
    );
}

#[test]
fn wrong_keys() {
    let t = setup();
    // Inputs encrypted under k1, evaluation keys of k2.
    fails(
        &[
            "run",
            "--server",
            &t.p("a/server.veil-artifact"),
            "--eval-keys",
            &t.p("k2/eval.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "x.veil-ct",
            "from another `veil keygen`",
            "use files from the same `veil compile` and the same `veil keygen`",
        ],
    );
    // Results of k1, secret keys of k2.
    fails(
        &[
            "decrypt",
            "--client",
            &t.p("a/client.veil-artifact"),
            "--keys",
            &t.p("k2/secret.veil-keys"),
            "--input",
            &t.p("y.veil-ct"),
        ],
        &[
            "y.veil-ct",
            "these secret keys are",
            "from another `veil keygen`",
        ],
    );
    // Inputs of one program, server artifact of another.
    fails(
        &[
            "run",
            "--server",
            &t.p("b/server.veil-artifact"),
            "--eval-keys",
            &t.p("kb/eval.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "x.veil-ct",
            "encrypted for program",
            "this server artifact holds program",
        ],
    );
}

#[test]
fn truncated_ciphertext_and_tampered_artifact() {
    let t = setup();
    let ct = std::fs::read(t.p("x.veil-ct")).unwrap();
    let cut = t.p("cut.veil-ct");
    std::fs::write(&cut, &ct[..ct.len() * 2 / 3]).unwrap();
    fails(
        &[
            "run",
            "--server",
            &t.p("a/server.veil-artifact"),
            "--eval-keys",
            &t.p("k1/eval.veil-keys"),
            "--input",
            &cut,
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "cut.veil-ct",
            "truncated veil data",
            "encrypt again with `veil encrypt`",
        ],
    );
    let mut art = std::fs::read(t.p("a/server.veil-artifact")).unwrap();
    let i = art.len() - 20;
    art[i] ^= 0x40;
    let bad = t.p("tampered.veil-artifact");
    std::fs::write(&bad, &art).unwrap();
    fails(
        &[
            "run",
            "--server",
            &bad,
            "--eval-keys",
            &t.p("k1/eval.veil-keys"),
            "--input",
            &t.p("x.veil-ct"),
            "--out",
            &t.p("o.veil-ct"),
        ],
        &[
            "tampered.veil-artifact",
            "checksum mismatch",
            "compile again with `veil compile`",
        ],
    );
    fails(
        &["inspect", &bad],
        &["tampered.veil-artifact", "checksum mismatch"],
    );
}

#[test]
fn bad_csv_cells() {
    let t = setup();
    encrypt_csv(t, "cols.csv", "1,2,3,0\n1,2,3\n")
        .contains(
            "line 2 has 3 column(s), expected 4 (x: 3 values, k: 1 value in declaration order)",
        )
        .then_some(())
        .expect("column count");
    let e = encrypt_csv(t, "word.csv", "1,2,3,0\nfour,2,3,0\n");
    assert!(
        e.contains("line 2, column 1: `four` is not a number"),
        "{e}"
    );
    let e = encrypt_csv(t, "float.csv", "1,2.5,3,0\n");
    assert!(
        e.contains("line 1, column 2: `2.5` is not an integer") && e.contains("give whole numbers"),
        "{e}"
    );
    let e = encrypt_csv(t, "range.csv", "1,2,9,0\n");
    assert!(
        e.contains("line 1, column 3 (input \"x\", element 2): 9 does not fit u3 (0..=7)"),
        "{e}"
    );
    let e = encrypt_csv(t, "empty.csv", "# nothing\n");
    assert!(e.contains("no samples"), "{e}");
    // A float array where integers are needed.
    let npy = t.p("floats.npy");
    std::fs::write(
        &npy,
        veil_cli::io::npy::write_2d(1, 4, None, Some(&[1.0, 2.0, 3.0, 0.0])),
    )
    .unwrap();
    fails(
        &[
            "encrypt",
            "--client",
            &t.p("a/client.veil-artifact"),
            "--keys",
            &t.p("k1/secret.veil-keys"),
            "--input",
            &npy,
            "--out",
            &t.p("z.veil-ct"),
        ],
        &[
            "floats.npy",
            "is a float type, but this program takes integers",
            "astype",
        ],
    );
}
