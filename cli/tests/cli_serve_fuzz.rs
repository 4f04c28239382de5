//! Fuzzing of the HTTP request handlers of `veil serve` in-process ([`veil_server::router`],
//! the same service `veil serve` runs on each connection): random and mutated methods,
//! paths, headers (owner tokens, lengths, types) and bodies (random bytes, and valid
//! evaluation keys and encrypted inputs, whole or mutated: truncated, bits flipped in the
//! envelope or the payload, bytes spliced in).
//!
//! Property: every request gets an answer within a minute, without a panic; the answer is a
//! success only where one is due, every other answer is a 4xx or 503 with a one-line JSON
//! `{"error": ...}` (axum's own 405 for a wrong method on a known path, and any answer to
//! `HEAD`, have no body), never a 500 (the key store and the server's tasks never fail on bad
//! input); `/health` is JSON; the untouched inputs under the right key id get results that
//! decrypt to what a separate `veil run` computes; and the server answers correctly after the
//! whole sequence.
//!
//! Cases: 48 by default (CI, well under a minute with optimized dependencies);
//! `PROPTEST_CASES` raises it, e.g. `PROPTEST_CASES=3000 cargo test -p veil-cli --test
//! cli_serve_fuzz -- --nocapture` (it prints the number of requests and their statuses).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tower::ServiceExt;
use veil_runtime::artifact::ServerArtifact;
use veil_server::client::OwnerToken;
use veil_server::ServeConfig;
mod common;
use common::{s, workdir};
mod cli_serve_support;
use cli_serve_support::{compile_tlu, ok};

/// What the requests are made of.
struct Corpus {
    keys: Vec<u8>,
    key_id: String,
    /// Another client's keys (never uploaded before the fuzzing starts).
    other_keys: Vec<u8>,
    inputs: Vec<u8>,
    /// `veil run`'s results for `inputs`, decrypted (JSON).
    results: String,
    client: String,
    secret: String,
    token: String,
    server: PathBuf,
    dir: PathBuf,
}

fn corpus() -> Corpus {
    let dir = workdir("serve-fuzz");
    let rows = vec![vec![0, 1, 2, 3, -2, -1, 0, 1]];
    let (_, client, server) = compile_tlu(&dir, &rows);
    let keygen = |name: &str, seed: &str| {
        let k = dir.join(name);
        ok(&[
            "keygen",
            "--client",
            &client,
            "--out",
            &s(&k),
            "--seed",
            seed,
        ]);
        k
    };
    let keys_dir = keygen("keys", "11");
    let other_dir = keygen("other", "12");
    let eval = s(&keys_dir.join("eval.veil-keys"));
    let x = s(&dir.join("x.veil-ct"));
    ok(&[
        "encrypt",
        "--client",
        &client,
        "--keys",
        &s(&keys_dir.join("secret.veil-keys")),
        "--input",
        &s(&dir.join("samples.csv")),
        "--out",
        &x,
    ]);
    let y = s(&dir.join("y.veil-ct"));
    ok(&[
        "run",
        "--server",
        &server,
        "--eval-keys",
        &eval,
        "--input",
        &x,
        "--out",
        &y,
    ]);
    let secret = s(&keys_dir.join("secret.veil-keys"));
    let results = decrypt(&client, &secret, &y);
    let key_id = ok(&["client", "key-id", "--eval-keys", &eval])
        .trim()
        .to_string();
    Corpus {
        keys: std::fs::read(&eval).unwrap(),
        key_id,
        other_keys: std::fs::read(other_dir.join("eval.veil-keys")).unwrap(),
        inputs: std::fs::read(&x).unwrap(),
        results,
        client,
        secret,
        token: OwnerToken::generate().as_str().to_string(),
        server: PathBuf::from(server),
        dir,
    }
}

/// `veil decrypt` of the results file `y`, as JSON text.
fn decrypt(client: &str, secret: &str, y: &str) -> String {
    ok(&[
        "decrypt", "--client", client, "--keys", secret, "--input", y, "--format", "json",
    ])
}

/// Whether encrypted results `answer` decrypt to the corpus' expected results.
fn decrypts_right(c: &Corpus, answer: &[u8]) -> bool {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let y = c.dir.join(format!("answer-{n}.veil-ct"));
    std::fs::write(&y, answer).unwrap();
    let got = decrypt(&c.client, &c.secret, &s(&y));
    let _ = std::fs::remove_file(&y);
    got == c.results
}

/// One generated request.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: BodyKind,
}

/// A body, described (the bytes are built from the corpus).
#[derive(Clone, Debug)]
enum BodyKind {
    Empty,
    Random(Vec<u8>),
    Keys(Mutation),
    OtherKeys(Mutation),
    Inputs(Mutation),
}

/// How a valid file is damaged.
#[derive(Clone, Debug)]
enum Mutation {
    None,
    Truncate(usize),
    /// A bit flipped in the first 96 bytes (the envelope: magic, version, kind, length,
    /// checksum).
    FlipHead(usize, u8),
    FlipAnywhere(usize, u8),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::None),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        3 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipHead(p, b)),
        3 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipAnywhere(p, b)),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, v)| Mutation::Splice(p, v)),
    ]
}

fn apply(m: &Mutation, original: &[u8]) -> Vec<u8> {
    let mut b = original.to_vec();
    let n = b.len().max(1);
    match m {
        Mutation::None => {}
        Mutation::Truncate(p) => b.truncate(p % n),
        Mutation::FlipHead(p, bit) => {
            let i = p % n.min(96);
            b[i] ^= 1 << bit;
        }
        Mutation::FlipAnywhere(p, bit) => {
            let i = p % n;
            b[i] ^= 1 << bit;
        }
        Mutation::Splice(p, v) => {
            let i = p % n;
            b.splice(i..i, v.iter().copied());
        }
    }
    b
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{id}".to_string()),
        Just("{other}".to_string()),
        Just("..".to_string()),
        Just(String::new()),
        Just("%2e%2e%2f".to_string()),
        Just("%zz".to_string()),
        "[0-9a-fA-F]{1,80}",
        "[a-zA-Z0-9._~%!$&'()*+,;=:@-]{1,40}",
    ]
}

fn request() -> impl Strategy<Value = Req> {
    let method = prop_oneof![
        4 => Just("GET".to_string()),
        6 => Just("POST".to_string()),
        3 => Just("DELETE".to_string()),
        1 => Just("PUT".to_string()),
        1 => Just("HEAD".to_string()),
        1 => Just("OPTIONS".to_string()),
        1 => "[A-Z]{1,10}",
    ];
    let path = prop_oneof![
        2 => Just("/health".to_string()),
        3 => Just("/keys".to_string()),
        3 => Just("/keys/{id}".to_string()),
        5 => Just("/run/{id}".to_string()),
        1 => Just("/run/{other}".to_string()),
        3 => prop::collection::vec(segment(), 0..5).prop_map(|v| format!("/{}", v.join("/"))),
        1 => ("/(keys|run|health)", segment(), "[?#]?[a-z=&]{0,10}")
            .prop_map(|(a, b, c)| format!("{a}/{b}{c}")),
    ];
    let header = prop_oneof![
        3 => Just(("authorization".to_string(), b"Bearer {token}".to_vec())),
        2 => Just(("authorization".to_string(), b"Bearer {wrong}".to_vec())),
        2 => prop::collection::vec(0x20u8..0x7f, 0..300)
            .prop_map(|v| ("authorization".to_string(), [b"Bearer ".to_vec(), v].concat())),
        1 => prop::collection::vec(0x20u8..=0xff, 0..64)
            .prop_map(|v| ("authorization".to_string(), v)),
        2 => prop_oneof![
            Just("0".to_string()),
            Just("18446744073709551616".to_string()),
            Just("99999999999".to_string()),
            Just("-1".to_string()),
            "[0-9]{1,12}",
        ]
        .prop_map(|v| ("content-length".to_string(), v.into_bytes())),
        1 => "[a-z/+-]{0,30}".prop_map(|v| ("content-type".to_string(), v.into_bytes())),
        1 => ("x-[a-z]{1,10}", prop::collection::vec(0x20u8..0x7f, 0..40))
            .prop_map(|(k, v)| (k, v)),
    ];
    let body = prop_oneof![
        1 => Just(BodyKind::Empty),
        4 => prop::collection::vec(any::<u8>(), 0..2048).prop_map(BodyKind::Random),
        1 => mutation().prop_map(BodyKind::Keys),
        1 => mutation().prop_map(BodyKind::OtherKeys),
        6 => mutation().prop_map(BodyKind::Inputs),
    ];
    (method, path, prop::collection::vec(header, 0..4), body).prop_map(
        |(method, path, headers, body)| Req {
            method,
            path,
            headers,
            body,
        },
    )
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Sends `req` to `app`; the status and body (`None`: the HTTP layer refused to build the
/// request, e.g. an invalid URI: nothing reached the server).
async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> Result<(StatusCode, Vec<u8>), TestCaseError> {
    let resp = tokio::time::timeout(Duration::from_secs(60), app.clone().oneshot(req))
        .await
        .map_err(|_| TestCaseError::fail("no answer within 60 s"))?
        .map_err(|e| TestCaseError::fail(format!("service error: {e}")))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| TestCaseError::fail(format!("answer body: {e}")))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

#[test]
fn http_handlers_answer_every_request_cleanly() {
    let c = corpus();
    let server = ServerArtifact::from_bytes(&std::fs::read(&c.server).unwrap()).unwrap();
    let key_dir = c.dir.join("fuzz-keys");
    let config = ServeConfig {
        max_body: 64 << 20,
        max_keys: 4,
        key_dir: Some(key_dir),
        key_dir_max_bytes: Some(256 << 20),
        max_runs_per_request: 4,
        body_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(60),
        threads: 2,
        ..ServeConfig::default()
    };
    let app = veil_server::router(server, &config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let upload = |token: &str| {
        Request::post("/keys")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(c.keys.clone()))
            .unwrap()
    };
    // The owner uploads its keys first.
    let (status, body) = rt.block_on(send(&app, upload(&c.token))).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let wrong = OwnerToken::generate().as_str().to_string();
    let other_id = "ab".repeat(32);
    let stats = Mutex::new(BTreeMap::<String, usize>::new());
    let mut runner = TestRunner::new(Config {
        cases: cases(48),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&request(), |r| {
        let fill = |t: &str| {
            t.replace("{id}", &c.key_id)
                .replace("{other}", &other_id)
                .replace("{token}", &c.token)
                .replace("{wrong}", &wrong)
        };
        let path = fill(&r.path);
        // The route the server sees: the path without its query or fragment.
        let route = r.path.split(['?', '#']).next().unwrap_or("");
        let body = match &r.body {
            BodyKind::Empty => Vec::new(),
            BodyKind::Random(b) => b.clone(),
            BodyKind::Keys(m) => apply(m, &c.keys),
            BodyKind::OtherKeys(m) => apply(m, &c.other_keys),
            BodyKind::Inputs(m) => apply(m, &c.inputs),
        };
        let mut builder = Request::builder()
            .method(Method::from_bytes(r.method.as_bytes()).unwrap())
            .uri(&path);
        for (k, v) in &r.headers {
            let v = fill(&String::from_utf8_lossy(v));
            builder = builder.header(k.as_str(), v.as_bytes());
        }
        let Ok(req) = builder.body(Body::from(body)) else {
            *stats
                .lock()
                .unwrap()
                .entry("not sent (invalid request)".into())
                .or_default() += 1;
            return Ok(());
        };
        let (status, answer) = rt.block_on(send(&app, req))?;
        *stats
            .lock()
            .unwrap()
            .entry(status.as_u16().to_string())
            .or_default() += 1;
        let text = String::from_utf8_lossy(&answer);
        prop_assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "500 for {} {}: {}",
            r.method,
            path,
            text
        );
        if status.is_success() {
            let ok_route = matches!(
                (r.method.as_str(), route),
                ("GET" | "HEAD", "/health")
                    | ("POST", "/keys")
                    | ("POST", "/run/{id}")
                    | ("DELETE", "/keys/{id}")
            );
            prop_assert!(ok_route, "{} {} answered {status}", r.method, path);
            if r.method == "GET" {
                let v: serde_json::Value = serde_json::from_slice(&answer)
                    .map_err(|e| TestCaseError::fail(format!("/health: {e}")))?;
                prop_assert_eq!(&v["status"], "ok");
            }
            if r.method == "DELETE" {
                // Only the owner deletes; then the keys come back for the next cases.
                let owner_header = r
                    .headers
                    .iter()
                    .find(|(k, _)| k == "authorization")
                    .map(|(_, v)| v.as_slice());
                prop_assert_eq!(owner_header, Some(&b"Bearer {token}"[..]));
                let (status, _) = rt.block_on(send(&app, upload(&c.token)))?;
                prop_assert_eq!(status, StatusCode::OK);
            }
            if let ("POST", "/run/{id}", BodyKind::Inputs(Mutation::None)) =
                (r.method.as_str(), route, &r.body)
            {
                prop_assert!(
                    decrypts_right(&c, &answer),
                    "results differ from veil run's"
                );
            }
        } else if status != StatusCode::METHOD_NOT_ALLOWED && r.method != "HEAD" {
            // (An answer to HEAD has no body by definition.)
            prop_assert!(
                status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{} {}: {status}",
                r.method,
                path
            );
            let v: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| {
                TestCaseError::fail(format!("{status} without a JSON error ({e}): {text}"))
            })?;
            let msg = v["error"].as_str().unwrap_or("");
            prop_assert!(!msg.is_empty() && !msg.contains('\n'), "{status}: {text}");
        }
        Ok(())
    });
    let stats = stats.into_inner().unwrap();
    let total: usize = stats.values().sum();
    eprintln!("HTTP fuzz: {total} requests, by status: {stats:?}");
    if let Err(e) = result {
        panic!("{e}");
    }
    // Afterwards: the owner's keys are there (uploaded again if a case deleted them) and a
    // clean run gives veil run's results.
    let (status, _) = rt.block_on(send(&app, upload(&c.token))).unwrap();
    assert_eq!(status, 200);
    let req = Request::post(format!("/run/{}", c.key_id))
        .body(Body::from(c.inputs.clone()))
        .unwrap();
    let (status, answer) = rt.block_on(send(&app, req)).unwrap();
    assert_eq!(status, 200);
    assert!(
        decrypts_right(&c, &answer),
        "results differ from veil run's"
    );
}
