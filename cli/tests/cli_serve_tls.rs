//! `veil serve --tls-cert/--tls-key` and `veil client --ca-cert` over HTTPS on loopback, as
//! separate processes: a full upload-run-decrypt round, and one clear line for each thing
//! that goes wrong (a wrong CA, a certificate for another name, plain HTTP to an HTTPS server
//! and HTTPS to a plain one, missing and bad PEM files).
//!
//! The certificates in `cli_serve_tls/` are test-only (their keys are public): a CA, a server
//! certificate for `127.0.0.1` and `localhost` and one for another name, both signed by that
//! CA, and an unrelated CA; ECDSA P-256, valid for a century. They were made with
//! `openssl req -x509` (CA: `basicConstraints=critical,CA:TRUE`) and `openssl x509 -req`
//! (servers: `subjectAltName`, `extendedKeyUsage=serverAuth`).

use std::path::PathBuf;
use std::sync::OnceLock;
mod common;
use common::{interpret, ints, s, workdir};
mod cli_serve_support;
use cli_serve_support::{compile_tlu, fails, ok, Server};

fn pem(name: &str) -> String {
    s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli_serve_tls")
        .join(name))
}

struct Setup {
    dir: PathBuf,
    src: String,
    rows: Vec<Vec<i64>>,
    client: String,
    server: String,
    secret: String,
    eval: String,
    x: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = workdir("tls");
        let rows: Vec<Vec<i64>> = vec![vec![1, 0, 3, 2, -1, 1, -2, 0]];
        let (src, client, server) = compile_tlu(&dir, &rows);
        let keys = dir.join("keys");
        ok(&[
            "keygen",
            "--client",
            &client,
            "--out",
            &s(&keys),
            "--seed",
            "5",
        ]);
        let secret = s(&keys.join("secret.veil-keys"));
        let x = s(&dir.join("x.veil-ct"));
        ok(&[
            "encrypt",
            "--client",
            &client,
            "--keys",
            &secret,
            "--input",
            &s(&dir.join("samples.csv")),
            "--out",
            &x,
        ]);
        Setup {
            eval: s(&keys.join("eval.veil-keys")),
            dir,
            src,
            rows,
            client,
            server,
            secret,
            x,
        }
    })
}

fn tls_server(st: &Setup, cert: &str, key: &str) -> Server {
    Server::start(
        &st.server,
        &[
            "--threads",
            "2",
            "--tls-cert",
            &pem(cert),
            "--tls-key",
            &pem(key),
        ],
    )
}

#[test]
fn https_serves_a_client_that_trusts_the_ca() {
    let st = setup();
    let server = tls_server(st, "server.pem", "server.key");
    let ca = pem("ca.pem");
    for url in [
        format!("https://{}", server.addr),
        format!(
            "https://localhost:{}",
            server.addr.rsplit(':').next().unwrap()
        ),
    ] {
        let health = ok(&["client", "health", "--url", &url, "--ca-cert", &ca]);
        let v: serde_json::Value = serde_json::from_str(&health).unwrap();
        assert_eq!(v["tls"], true, "{v}");
    }
    let url = format!("https://{}", server.addr);
    let id = ok(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--ca-cert",
        &ca,
        "--eval-keys",
        &st.eval,
    ])
    .trim()
    .to_string();
    let y = s(&st.dir.join("y.veil-ct"));
    ok(&[
        "client",
        "run",
        "--url",
        &url,
        "--ca-cert",
        &ca,
        "--key-id",
        &id,
        "--input",
        &st.x,
        "--out",
        &y,
    ]);
    let dec = ok(&[
        "decrypt", "--client", &st.client, "--keys", &st.secret, "--input", &y, "--format", "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&dec).unwrap();
    for (row, sample) in st.rows.iter().zip(got.as_array().unwrap()) {
        for (name, want) in interpret(&st.src, row) {
            assert_eq!(ints(&sample[&name]), want, "output {name} of {row:?}");
        }
    }
    let token = s(&PathBuf::from(&st.eval).with_file_name("owner.veil-token"));
    ok(&[
        "client",
        "delete-keys",
        "--url",
        &url,
        "--ca-cert",
        &ca,
        "--key-id",
        &id,
        "--owner-token",
        &token,
    ]);
}

#[test]
fn tls_mistakes_are_one_clear_line() {
    let st = setup();
    let server = tls_server(st, "server.pem", "server.key");
    let https = format!("https://{}", server.addr);
    let health = |url: &str, ca: Option<&str>| {
        let mut args = vec!["client", "health", "--url", url, "--retries", "0"];
        if let Some(ca) = ca {
            args.extend(["--ca-cert", ca]);
        }
        fails(&args)
    };
    // A CA that did not sign the server's certificate (or a server impersonating it).
    let err = health(&https, Some(&pem("other-ca.pem")));
    assert!(err.contains("not signed by a CA in --ca-cert"), "{err}");
    // No CA at all.
    let err = health(&https, None);
    assert!(err.contains("--ca-cert"), "{err}");
    // A CA file that is not one.
    let err = health(&https, Some(&pem("server.key")));
    assert!(
        err.contains("--ca-cert") && err.contains("no certificate"),
        "{err}"
    );
    let missing = s(&st.dir.join("missing-ca.pem"));
    let err = health(&https, Some(&missing));
    assert!(
        err.contains("--ca-cert") && err.contains("missing-ca.pem"),
        "{err}"
    );
    // Plain HTTP to the HTTPS server: a 400 that says so.
    let err = health(&format!("http://{}", server.addr), None);
    assert!(err.contains("400") && err.contains("HTTPS only"), "{err}");
    // The server keeps serving HTTPS after all that.
    ok(&[
        "client",
        "health",
        "--url",
        &https,
        "--ca-cert",
        &pem("ca.pem"),
    ]);
    // A certificate signed by the right CA but for another name.
    let other = tls_server(st, "wrong-name.pem", "wrong-name.key");
    let err = health(&format!("https://{}", other.addr), Some(&pem("ca.pem")));
    assert!(err.contains("not for this host"), "{err}");
    drop(other);
    // HTTPS to a plain HTTP server.
    let plain = Server::start(&st.server, &["--threads", "1"]);
    let err = health(&format!("https://{}", plain.addr), Some(&pem("ca.pem")));
    assert!(err.contains("does not speak TLS"), "{err}");
}

#[test]
fn bad_certificate_and_key_files_stop_the_server_with_one_line() {
    let st = setup();
    let serve = |cert: &str, key: &str| {
        fails(&[
            "serve",
            "--server",
            &st.server,
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ])
    };
    let missing = s(&st.dir.join("missing.pem"));
    let err = serve(&missing, &pem("server.key"));
    assert!(
        err.contains("--tls-cert") && err.contains("missing.pem"),
        "{err}"
    );
    let err = serve(&pem("server.pem"), &missing);
    assert!(
        err.contains("--tls-key") && err.contains("missing.pem"),
        "{err}"
    );
    // Swapped files.
    let err = serve(&pem("server.key"), &pem("server.pem"));
    assert!(
        err.contains("--tls-cert") && err.contains("no certificate"),
        "{err}"
    );
    let err = serve(&pem("server.pem"), &pem("ca.pem"));
    assert!(
        err.contains("--tls-key") && err.contains("no private key"),
        "{err}"
    );
    // A key that is not the certificate's.
    let err = serve(&pem("server.pem"), &pem("wrong-name.key"));
    assert!(err.contains("unusable together"), "{err}");
    // Not PEM at all.
    let garbage = st.dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = serve(&s(&garbage), &pem("server.key"));
    assert!(err.contains("not a valid PEM"), "{err}");
}
