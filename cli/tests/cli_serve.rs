//! `veil serve` and `veil client` through the real binary: compile, keygen and encrypt on the
//! client side, then upload the keys and run over HTTP on a `veil serve` child process; the
//! decrypted results must equal the reference interpreter. Also the errors: unknown key id,
//! oversized and garbage bodies, no server.

use std::path::Path;
mod common;
use common::{interpret, ints, s, workdir};
mod cli_serve_support;
use cli_serve_support::{error_of, fails, ok, Server};

#[test]
fn serve_and_client_run_encrypted_inputs_like_the_interpreter() {
    let dir = workdir("flow");
    let src_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/tlu.veil");
    let src = std::fs::read_to_string(&src_path).unwrap();
    // x: enc<u2>[4], s: enc<i2>[4]: 8 bootstraps at 4 bits.
    let rows: Vec<Vec<i64>> = vec![
        vec![0, 1, 2, 3, -2, -1, 0, 1],
        vec![3, 2, 1, 0, 1, 0, -1, -2],
    ];
    let csv: String = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let samples = dir.join("samples.csv");
    std::fs::write(&samples, csv).unwrap();
    let build = dir.join("build");
    let keys = dir.join("keys");
    ok(&[
        "compile",
        &s(&src_path),
        "--inputset",
        &s(&samples),
        "--out",
        &s(&build),
    ]);
    let client = s(&build.join("client.veil-artifact"));
    let server_artifact = s(&build.join("server.veil-artifact"));
    ok(&[
        "keygen",
        "--client",
        &client,
        "--out",
        &s(&keys),
        "--seed",
        "7",
    ]);
    let secret = s(&keys.join("secret.veil-keys"));
    let eval = s(&keys.join("eval.veil-keys"));
    let (x, y) = (s(&dir.join("x.veil-ct")), s(&dir.join("y.veil-ct")));
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &secret,
        "--input",
        &s(&samples),
        "--out",
        &x,
    ]);

    let server = Server::start(&server_artifact, &["--threads", "2", "--max-body-mb", "64"]);
    let url = server.url();
    let (status, health) = server.http("GET", "/health", &[], b"").unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["inputs"][0]["name"], "x");
    assert_eq!(health["keys_loaded"], 0);

    // Unknown key id before any upload: 404, one line, exit 1.
    let err = fails(&[
        "client",
        "run",
        "--url",
        &url,
        "--key-id",
        "0123456789abcdef",
        "--input",
        &x,
        "--out",
        &y,
    ]);
    assert!(
        err.contains("404") && err.contains("unknown key id"),
        "{err}"
    );
    assert!(!Path::new(&y).exists());

    let key_id = ok(&["client", "upload-keys", "--url", &url, "--eval-keys", &eval]);
    let key_id = key_id.trim().to_string();
    assert_eq!(key_id.len(), 64, "{key_id}");
    // The key id is the SHA-256 of the keys, computed without a server too.
    assert_eq!(
        ok(&["client", "key-id", "--eval-keys", &eval]).trim(),
        key_id
    );
    // Uploading again gives the same id.
    assert_eq!(
        ok(&["client", "upload-keys", "--url", &url, "--eval-keys", &eval]).trim(),
        key_id
    );

    let out = ok(&[
        "client", "run", "--url", &url, "--key-id", &key_id, "--input", &x, "--out", &y,
    ]);
    assert!(out.starts_with("wrote "), "{out}");
    let dec = ok(&[
        "decrypt", "--client", &client, "--keys", &secret, "--input", &y, "--format", "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&dec).unwrap();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), rows.len());
    for (row, sample) in rows.iter().zip(got) {
        for (name, want) in interpret(&src, row) {
            assert_eq!(ints(&sample[&name]), want, "output {name} of {row:?}");
        }
    }

    // Garbage bodies: 400 with the library's message, through the client and raw.
    let garbage = dir.join("garbage.veil-ct");
    std::fs::write(&garbage, b"this is not a ciphertext file at all").unwrap();
    let err = fails(&[
        "client",
        "run",
        "--url",
        &url,
        "--key-id",
        &key_id,
        "--input",
        &s(&garbage),
        "--out",
        &y,
    ]);
    assert!(err.contains("400"), "{err}");
    let (status, body) = server
        .http("POST", &format!("/run/{key_id}"), &[], b"garbage")
        .unwrap();
    assert_eq!(status, 400);
    assert!(!error_of(&body).is_empty());
    let (status, body) = server.http("POST", "/keys", &[], b"garbage").unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Wrong kind: the encrypted inputs given as keys, refused by the server.
    let (status, body) = server
        .http("POST", "/keys", &[], &std::fs::read(&x).unwrap())
        .unwrap();
    assert_eq!(status, 400);
    assert!(
        error_of(&body).contains("evaluation keys"),
        "{}",
        error_of(&body)
    );
    // Unknown path.
    let (status, _) = server.http("GET", "/nope", &[], b"").unwrap();
    assert_eq!(status, 404);
    // A body declared over the limit: 413 at once, before any body byte is read.
    let (status, body) = server
        .http("POST", "/keys", &[("Content-Length", "1000000000")], b"")
        .unwrap();
    assert_eq!(status, 413);
    assert!(
        error_of(&body).contains("--max-body-mb"),
        "{}",
        error_of(&body)
    );
    // The server is still fine.
    let (status, health) = server.http("GET", "/health", &[], b"").unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["keys_loaded"], 1);
    drop(server);

    // A tiny limit: uploading the keys fails with one line naming the limit.
    let small = Server::start(&server_artifact, &["--max-body-mb", "0"]);
    let (status, body) = small.http("POST", "/keys", &[], b"any body").unwrap();
    assert_eq!(status, 413);
    assert!(
        error_of(&body).contains("--max-body-mb"),
        "{}",
        error_of(&body)
    );
    let err = fails(&[
        "client",
        "upload-keys",
        "--url",
        &small.url(),
        "--eval-keys",
        &eval,
    ]);
    assert!(err.contains("max-body-mb"), "{err}");
    let url = small.url();
    drop(small);

    // No server any more: one line, exit 1.
    let err = fails(&["client", "upload-keys", "--url", &url, "--eval-keys", &eval]);
    assert!(err.contains("cannot connect"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
