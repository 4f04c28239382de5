//! Hostile results and programs through the real binary, one process per step: a results file
//! whose sample count (written by the server) was inflated to a huge value or shrunk makes
//! `veil decrypt` of an ML model fail with exit code 1 and one `error: ` line (no panic, no
//! abort on a huge allocation, no silently dropped rows); a program broadcasting to
//! `[65536, 65536]` makes `veil compile` fail the same way before anything allocates.

use std::path::Path;
use veil_runtime::artifact::{Direction, EncryptedBatch};

mod common;
use common::{fails, repo, s, veil, workdir};

fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// Float rows as CSV.
fn csv(rows: &[Vec<f64>]) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn decrypt_refuses_results_with_a_forged_sample_count() {
    let dir = workdir("samples");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("ml/tests/fixtures/onnx/logreg_iris.json")).unwrap(),
    )
    .unwrap();
    let rows = |k: &str, n: usize| -> Vec<Vec<f64>> {
        fixture[k].as_array().unwrap()[..n]
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    let (cal, x) = (dir.join("cal.csv"), dir.join("x.csv"));
    std::fs::write(&cal, csv(&rows("calibration", 60))).unwrap();
    std::fs::write(&x, csv(&rows("inputs", 3))).unwrap();
    let (build, keys) = (dir.join("build"), dir.join("keys"));
    ok(&[
        "compile",
        &repo("ml/tests/fixtures/onnx/logreg_iris.onnx"),
        "--inputset",
        &s(&cal),
        "--out",
        &s(&build),
    ]);
    let client = s(&build.join("client.veil-artifact"));
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &s(&keys),
        "--seed",
        "3",
    ]);
    let secret = s(&keys.join("secret.veil-keys"));
    let (ct, res) = (s(&dir.join("x.veil-ct")), dir.join("y.veil-ct"));
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &secret,
        "--input",
        &s(&x),
        "--out",
        &ct,
    ]);
    ok(&[
        "run",
        "--server",
        &s(&build.join("server.veil-artifact")),
        "--eval-keys",
        &s(&keys.join("eval.veil-keys")),
        "--input",
        &ct,
        "--out",
        &s(&res),
        "--threads",
        "2",
    ]);
    let decrypt = |input: &Path| {
        [
            "decrypt".to_string(),
            "--client".into(),
            client.clone(),
            "--keys".into(),
            secret.clone(),
            "--input".into(),
            s(input),
        ]
    };
    let args = decrypt(&res);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&args);
    assert_eq!(out.lines().count(), 4, "a header and 3 samples:\n{out}");

    // The server's results with the sample count changed, sealed again (a valid checksum:
    // only the count lies).
    let bytes = std::fs::read(&res).unwrap();
    let batch = EncryptedBatch::from_bytes(&bytes, Direction::Outputs).unwrap();
    assert_eq!((batch.samples, batch.runs.len()), (3, 3));
    for (name, forged) in [
        ("huge", 100_000_000_000usize),
        ("max", usize::MAX),
        ("small", 2),
    ] {
        let mut b = EncryptedBatch::from_bytes(&bytes, Direction::Outputs).unwrap();
        b.samples = forged;
        let path = dir.join(format!("{name}.veil-ct"));
        std::fs::write(&path, b.to_bytes(Direction::Outputs).unwrap()).unwrap();
        let args = decrypt(&path);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(
            &args,
            &[
                &s(&path),
                &format!("the batch claims {forged} sample(s) but holds 3 run(s)"),
                "the file was modified or damaged",
            ],
        );
    }
}

#[test]
fn compile_refuses_a_huge_broadcast() {
    let dir = workdir("broadcast");
    let prog = dir.join("huge.veil");
    std::fs::write(
        &prog,
        "veil 1\n%x = input \"x\" : enc<u3>[1]\n%a = broadcast %x : enc<u3>[65536, 65536]\noutput \"a\", %a\n",
    )
    .unwrap();
    let inputset = dir.join("x.csv");
    std::fs::write(&inputset, "1\n2\n").unwrap();
    fails(
        &[
            "compile",
            &s(&prog),
            "--inputset",
            &s(&inputset),
            "--out",
            &s(&dir.join("build")),
        ],
        &[
            &format!("{}:3:", s(&prog)),
            "tensor of shape [65536, 65536] has 4294967296 elements, over veil's limit of 16777216",
        ],
    );
    assert!(!dir.join("build").exists(), "nothing written");
}
