//! `veil serve` with several tenants, restarts and hostile peers, through the real binary:
//! key ids that cannot be squatted, eviction and deletion of keys by their owner only, the
//! persistent key store shared by two servers and its quota, the per-request run limit,
//! cancelled runs, idle connections, and a `veil client` that bounds what it waits for and
//! reads from a server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
mod common;
use common::{interpret, ints, s, veil, workdir};
mod cli_serve_support;
use cli_serve_support::{compile_tlu, error_of, fails, ok, Server};

/// A compiled program, two clients' keys (the victim's and the attacker's) and their inputs.
struct Setup {
    dir: PathBuf,
    src: String,
    rows: Vec<Vec<i64>>,
    client: String,
    server: String,
    /// Victim: secret keys, evaluation keys, encrypted inputs.
    victim: (String, String, String),
    /// Attacker: the same for another key generation.
    attacker: (String, String, String),
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = workdir("tenants");
        let rows: Vec<Vec<i64>> = vec![
            vec![0, 1, 2, 3, -2, -1, 0, 1],
            vec![3, 2, 1, 0, 1, 0, -1, -2],
        ];
        let (src, client, server) = compile_tlu(&dir, &rows);
        let tenant = |name: &str, seed: &str| {
            let keys = dir.join(name);
            ok(&[
                "keygen",
                "--client",
                &client,
                "--out",
                &s(&keys),
                "--seed",
                seed,
            ]);
            let secret = s(&keys.join("secret.veil-keys"));
            let x = s(&dir.join(format!("{name}.veil-ct")));
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
            (secret, s(&keys.join("eval.veil-keys")), x)
        };
        let victim = tenant("victim", "7");
        let attacker = tenant("attacker", "8");
        Setup {
            dir,
            src,
            rows,
            client,
            server,
            victim,
            attacker,
        }
    })
}

/// The owner token `veil client upload-keys` keeps next to the evaluation keys `eval`.
fn token_of(eval: &str) -> String {
    s(&Path::new(eval).parent().unwrap().join("owner.veil-token"))
}

/// `veil client upload-keys --url URL --eval-keys EVAL`; the key id it prints.
fn upload(url: &str, eval: &str) -> String {
    ok(&["client", "upload-keys", "--url", url, "--eval-keys", eval])
        .trim()
        .to_string()
}

/// Uploads `eval` raw; the JSON answer.
fn upload_raw(server: &Server, eval: &str) -> serde_json::Value {
    let (status, body) = server
        .http("POST", "/keys", &[], &std::fs::read(eval).unwrap())
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Runs the victim's inputs under `key_id` on `url` and checks the decrypted results
/// against the interpreter.
fn run_and_check(st: &Setup, url: &str, key_id: &str, out_name: &str) {
    let y = s(&st.dir.join(out_name));
    let (secret, _, x) = &st.victim;
    ok(&[
        "client", "run", "--url", url, "--key-id", key_id, "--input", x, "--out", &y,
    ]);
    let dec = ok(&[
        "decrypt", "--client", &st.client, "--keys", secret, "--input", &y, "--format", "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&dec).unwrap();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), st.rows.len());
    for (row, sample) in st.rows.iter().zip(got) {
        for (name, want) in interpret(&st.src, row) {
            assert_eq!(ints(&sample[&name]), want, "output {name} of {row:?}");
        }
    }
}

fn run_fails(url: &str, key_id: &str, x: &str, y: &str) -> String {
    fails(&[
        "client", "run", "--url", url, "--key-id", key_id, "--input", x, "--out", y,
    ])
}

#[test]
fn an_upload_cannot_squat_another_clients_key_id() {
    let st = setup();
    let server = Server::start(&st.server, &["--threads", "2"]);
    let url = server.url();
    let victim_id = ok(&["client", "key-id", "--eval-keys", &st.victim.1])
        .trim()
        .to_string();
    // The attacker uploads first: its keys get their own id, never the victim's.
    let attacker_id = upload(&url, &st.attacker.1);
    assert_ne!(attacker_id, victim_id);
    let again = upload_raw(&server, &st.attacker.1);
    assert_eq!(again["key_id"], attacker_id.as_str());
    assert_eq!(again["new"], false);
    // The victim's upload is new and stored under the victim's id.
    let v = upload_raw(&server, &st.victim.1);
    assert_eq!(v["key_id"], victim_id.as_str());
    assert_eq!(v["new"], true);
    assert_eq!(upload(&url, &st.victim.1), victim_id);
    run_and_check(st, &url, &victim_id, "squat-y.veil-ct");
    // Inputs of one key generation are refused under the other's keys, both ways.
    let y = s(&st.dir.join("squat-bad.veil-ct"));
    let err = run_fails(&url, &victim_id, &st.attacker.2, &y);
    assert!(err.contains("400") && err.contains("veil keygen"), "{err}");
    let err = run_fails(&url, &attacker_id, &st.victim.2, &y);
    assert!(err.contains("400") && err.contains("veil keygen"), "{err}");
    // The old 16-digit ids are not key ids.
    let err = run_fails(&url, "0123456789abcdef", &st.victim.2, &y);
    assert!(
        err.contains("404") && err.contains("64 hex digits"),
        "{err}"
    );
}

#[test]
fn keys_are_evicted_least_recently_used_deleted_and_bounded() {
    let st = setup();
    let y = s(&st.dir.join("evict-y.veil-ct"));
    let server = Server::start(&st.server, &["--threads", "2", "--max-keys", "1"]);
    let url = server.url();
    let victim_id = upload(&url, &st.victim.1);
    let attacker_id = upload(&url, &st.attacker.1);
    // One set in memory: the victim's (least recently used) was forgotten.
    let err = run_fails(&url, &victim_id, &st.victim.2, &y);
    assert!(
        err.contains("404") && err.contains("least recently used") && err.contains("upload-keys"),
        "{err}"
    );
    // Given the keys, the client uploads them again and runs (evicting the attacker's).
    let out = ok(&[
        "client",
        "run",
        "--url",
        &url,
        "--eval-keys",
        &st.victim.1,
        "--input",
        &st.victim.2,
        "--out",
        &y,
    ]);
    assert!(out.starts_with("wrote "), "{out}");
    let err = fails(&[
        "client",
        "run",
        "--url",
        &url,
        "--key-id",
        &attacker_id,
        "--eval-keys",
        &st.victim.1,
        "--input",
        &st.victim.2,
        "--out",
        &y,
    ]);
    assert!(err.contains("is not the key id of"), "{err}");
    upload(&url, &st.attacker.1);
    // Deleting (by the owner): once, then unknown.
    let token = token_of(&st.attacker.1);
    let out = ok(&[
        "client",
        "delete-keys",
        "--url",
        &url,
        "--key-id",
        &attacker_id,
        "--owner-token",
        &token,
    ]);
    assert!(out.contains("deleted"), "{out}");
    let err = fails(&[
        "client",
        "delete-keys",
        "--url",
        &url,
        "--key-id",
        &attacker_id,
        "--owner-token",
        &token,
    ]);
    assert!(
        err.contains("404") && err.contains("unknown key id"),
        "{err}"
    );
    let (status, health) = server.http("GET", "/health", &[], b"").unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["keys_loaded"], 0);
    drop(server);

    // Without eviction a full server refuses new keys and keeps the old ones.
    let server = Server::start(
        &st.server,
        &[
            "--threads",
            "2",
            "--max-keys",
            "1",
            "--no-evict",
            "--max-runs-per-request",
            "1",
        ],
    );
    let url = server.url();
    upload(&url, &st.victim.1);
    let err = fails(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--eval-keys",
        &st.attacker.1,
    ]);
    assert!(err.contains("503") && err.contains("--no-evict"), "{err}");
    // Two runs in one request, one allowed: 413 naming the flag, nothing run.
    let err = run_fails(&url, &victim_id, &st.victim.2, &y);
    assert!(
        err.contains("413") && err.contains("--max-runs-per-request"),
        "{err}"
    );
}

#[test]
fn a_key_dir_survives_restarts_and_is_shared_by_two_servers() {
    let st = setup();
    let key_dir = st.dir.join("key-store");
    let kd = s(&key_dir);
    let first = Server::start(&st.server, &["--threads", "2", "--key-dir", &kd]);
    let id = ok(&[
        "client",
        "upload-keys",
        "--url",
        &first.url(),
        "--eval-keys",
        &st.victim.1,
    ])
    .trim()
    .to_string();
    // Killed (no clean shutdown): the keys are on disk, under their id, with their owner
    // file, no temporary files.
    drop(first);
    let mut files: Vec<String> = std::fs::read_dir(&key_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![format!("{id}.veil-keys"), format!("{id}.veil-owner")]
    );
    // Two replicas on the same store: both serve the victim without a new upload.
    let a = Server::start(&st.server, &["--threads", "2", "--key-dir", &kd]);
    let b = Server::start(&st.server, &["--threads", "2", "--key-dir", &kd]);
    run_and_check(st, &a.url(), &id, "store-a.veil-ct");
    run_and_check(st, &b.url(), &id, "store-b.veil-ct");
    // Uploading again to a replica that has them on disk: not new.
    assert_eq!(upload_raw(&b, &st.victim.1)["new"], false);
    // Deleted through one replica: the other one stops serving them too.
    let token = token_of(&st.victim.1);
    ok(&[
        "client",
        "delete-keys",
        "--url",
        &b.url(),
        "--key-id",
        &id,
        "--owner-token",
        &token,
    ]);
    let y = s(&st.dir.join("store-gone.veil-ct"));
    let err = run_fails(&a.url(), &id, &st.victim.2, &y);
    assert!(err.contains("404"), "{err}");
    // A damaged file under a valid id: a clear error, no panic, the server stays up.
    std::fs::write(key_dir.join(format!("{id}.veil-keys")), b"damaged").unwrap();
    let err = run_fails(&a.url(), &id, &st.victim.2, &y);
    assert!(err.contains("500") && err.contains("damaged"), "{err}");
    let (status, _) = a.http("GET", "/health", &[], b"").unwrap();
    assert_eq!(status, 200);
    // An unusable key directory stops the server at start with one line.
    let file = st.dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = fails(&["serve", "--server", &st.server, "--key-dir", &s(&file)]);
    assert!(err.contains("--key-dir"), "{err}");
}

#[test]
fn idle_connections_are_closed_and_health_stays_prompt() {
    let st = setup();
    let server = Server::start(
        &st.server,
        &["--header-timeout-s", "1", "--max-connections", "8"],
    );
    // More idle connections than the server takes.
    let idle: Vec<TcpStream> = (0..24)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let t = Instant::now();
    let (status, _) = server.http("GET", "/health", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // The first idle connection was closed by the server.
    let mut c = &idle[0];
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection got data");
    // A trickling request head is cut off the same way.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = slow.write_all(b"Host: x\r\n\r\n");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Ctrl-C (SIGINT) stops the server cleanly even with idle connections open.
    drop(idle);
    drop(slow);
    let mut server = server;
    let killed = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Flag checks: one line each.
    let err = fails(&["serve", "--server", &st.server, "--max-uploads", "0"]);
    assert!(err.contains("--max-uploads"), "{err}");
    let err = fails(&["serve", "--server", &st.server, "--max-keys", "0"]);
    assert!(err.contains("--max-keys"), "{err}");
    let err = fails(&["serve", "--server", &st.server, "--request-timeout-s", "0"]);
    assert!(err.contains("--request-timeout-s"), "{err}");
}

/// A fake server on loopback: answers `GET /health` with a small limit and everything else
/// with `other` (raw bytes after the head is read), or nothing at all when `other` is None.
fn fake_server(other: Option<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            let Ok(mut c) = c else { continue };
            let Some(other) = other else {
                held.push(c); // silent: never answers, never closes
                continue;
            };
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut line = String::new();
                while r.read_line(&mut line).is_ok() && line.trim() != "" {
                    line.clear();
                }
                if first.starts_with("GET /health") {
                    let body = br#"{"status":"ok","max_body_bytes":1000000000}"#;
                    let _ = write!(
                        c,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = c.write_all(body);
                } else {
                    let _ = c.write_all(other);
                    // A body without end: 8 MiB of chunks, then close.
                    let chunk = vec![0u8; 1 << 16];
                    for _ in 0..128 {
                        if write!(c, "{:x}\r\n", chunk.len()).is_err()
                            || c.write_all(&chunk).is_err()
                            || c.write_all(b"\r\n").is_err()
                        {
                            break;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn the_client_bounds_what_it_waits_for_and_reads() {
    let st = setup();
    let y = s(&st.dir.join("client-y.veil-ct"));
    // A silent server: the read timeout ends the wait with one line.
    let silent = fake_server(None);
    let t = Instant::now();
    let err = fails(&[
        "client",
        "health",
        "--url",
        &silent,
        "--read-timeout-s",
        "1",
    ]);
    assert!(
        err.contains("no answer") && err.contains("--read-timeout-s"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // A server whose answer never ends: cut off at --max-response-mb.
    let endless = fake_server(Some(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    ));
    let err = fails(&[
        "client",
        "run",
        "--url",
        &endless,
        "--key-id",
        &"0".repeat(64),
        "--input",
        &st.victim.2,
        "--out",
        &y,
        "--max-response-mb",
        "1",
    ]);
    assert!(
        err.contains("over") && err.contains("--max-response-mb"),
        "{err}"
    );
    assert!(!Path::new(&y).exists());
    // One that announces a huge answer: refused before reading it.
    let huge = fake_server(Some(
        b"HTTP/1.1 200 OK\r\nContent-Length: 50000000000\r\nConnection: close\r\n\r\n",
    ));
    let err = fails(&[
        "client",
        "run",
        "--url",
        &huge,
        "--key-id",
        &"0".repeat(64),
        "--input",
        &st.victim.2,
        "--out",
        &y,
    ]);
    assert!(
        err.contains("announced") && err.contains("--max-response-mb"),
        "{err}"
    );
    // Unusable flags.
    let err = fails(&[
        "client",
        "health",
        "--url",
        &silent,
        "--connect-timeout-s",
        "0",
    ]);
    assert!(err.contains("--connect-timeout-s"), "{err}");
    // A damaged key file is named before anything is sent.
    let bad = st.dir.join("bad.veil-keys");
    let mut data = std::fs::read(&st.victim.1).unwrap();
    let n = data.len();
    data.truncate(n / 2);
    std::fs::write(&bad, data).unwrap();
    let err = fails(&["client", "key-id", "--eval-keys", &s(&bad)]);
    assert!(err.contains("bad.veil-keys"), "{err}");
}

#[test]
fn slow_bodies_and_long_requests_are_cut_off() {
    let st = setup();
    let server = Server::start(
        &st.server,
        &[
            "--threads",
            "1",
            "--max-uploads",
            "1",
            "--body-timeout-s",
            "2",
            "--request-timeout-s",
            "1",
            "--max-runs-per-request",
            "10000",
        ],
    );
    let url = server.url();
    let id = upload(&url, &st.victim.1);
    // A body that trickles: it holds the only upload place until the body timeout.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    write!(
        slow,
        "POST /run/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile another request waits for a place past its request timeout: 503.
    let y = s(&st.dir.join("slow-y.veil-ct"));
    let err = run_fails(&url, &id, &st.victim.2, &y);
    assert!(
        err.contains("503") && err.contains("--max-uploads"),
        "{err}"
    );
    // The trickling body itself gets 408 naming the flag.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("408") && answer.contains("--body-timeout-s"),
        "{answer}"
    );
    // A batch too long for the request timeout: cut off between runs with 503.
    let many = st.dir.join("many.csv");
    let rows: String = (0..400).map(|_| "0,1,2,3,-2,-1,0,1\n").collect();
    std::fs::write(&many, rows).unwrap();
    let x = s(&st.dir.join("many.veil-ct"));
    ok(&[
        "encrypt",
        "--client",
        &st.client,
        "--keys",
        &st.victim.0,
        "--input",
        &s(&many),
        "--out",
        &x,
    ]);
    let err = run_fails(&url, &id, &x, &y);
    assert!(
        err.contains("503") && err.contains("of 400 runs") && err.contains("--request-timeout-s"),
        "{err}"
    );
    // The runs it did not reach were dropped, not computed after the answer.
    let h = settled(&server);
    let (done, dropped) = (h["runs_done"].as_u64(), h["runs_dropped"].as_u64());
    assert!(dropped.unwrap() > 0, "{h}");
    assert_eq!(done.unwrap() + dropped.unwrap(), 400, "{h}");
}

/// `/health` once no run computes any more.
fn settled(server: &Server) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let h = server.health();
        if h["runs_running"] == 0 {
            return h;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "runs never settled: {h}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Encrypts `n` copies of the victim's first sample; the file.
fn encrypt_many(st: &Setup, n: usize, name: &str) -> String {
    let csv = st.dir.join(format!("{name}.csv"));
    let rows: String = (0..n).map(|_| "0,1,2,3,-2,-1,0,1\n").collect();
    std::fs::write(&csv, rows).unwrap();
    let x = s(&st.dir.join(format!("{name}.veil-ct")));
    ok(&[
        "encrypt",
        "--client",
        &st.client,
        "--keys",
        &st.victim.0,
        "--input",
        &s(&csv),
        "--out",
        &x,
    ]);
    x
}

#[test]
fn a_client_that_goes_away_cancels_its_queued_runs() {
    let st = setup();
    let server = Server::start(
        &st.server,
        &[
            "--threads",
            "1",
            "--max-concurrent",
            "1",
            "--max-runs-per-request",
            "1000",
        ],
    );
    let id = upload(&server.url(), &st.victim.1);
    let x = std::fs::read(encrypt_many(st, 300, "cancel")).unwrap();
    let mut c = TcpStream::connect(&server.addr).unwrap();
    write!(
        c,
        "POST /run/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        x.len()
    )
    .unwrap();
    c.write_all(&x).unwrap();
    // Once the first run is computing, the client goes away.
    let t = Instant::now();
    while server.health()["runs_running"] == 0 && server.health()["runs_done"] == 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "no run started");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    let h = settled(&server);
    let (done, dropped) = (
        h["runs_done"].as_u64().unwrap(),
        h["runs_dropped"].as_u64().unwrap(),
    );
    eprintln!("client gone: {done} runs computed, {dropped} dropped");
    assert_eq!(done + dropped, 300, "{h}");
    assert!(done < 100 && dropped > 200, "{h}");
    // Nothing queued is left behind: the next request is served at once.
    let t = Instant::now();
    run_and_check(st, &server.url(), &id, "cancel-y.veil-ct");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(settled(&server)["runs_done"].as_u64().unwrap(), done + 2);
}

#[test]
fn only_the_owner_token_deletes_keys() {
    let st = setup();
    let key_dir = st.dir.join("owner-store");
    let kd = s(&key_dir);
    let server = Server::start(&st.server, &["--threads", "2", "--key-dir", &kd]);
    let url = server.url();
    let id = upload(&url, &st.victim.1);
    let victim_token = token_of(&st.victim.1);
    let token_text = std::fs::read_to_string(&victim_token).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&victim_token)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }
    // The server keeps a hash of the token, never the token.
    let owner_file = std::fs::read_to_string(key_dir.join(format!("{id}.veil-owner"))).unwrap();
    assert_eq!(owner_file.trim().len(), 64);
    assert!(!owner_file.contains(token_text.trim()));
    // The attacker, holding the victim's evaluation keys, uploads them with its own token:
    // the keys work, but the owner does not change (a warning says so).
    upload(&url, &st.attacker.1);
    let attacker_token = token_of(&st.attacker.1);
    let (code, out, err) = veil(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--eval-keys",
        &st.victim.1,
        "--owner-token",
        &attacker_token,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), id);
    assert!(
        err.contains("warning") && err.contains("another owner token"),
        "{err}"
    );
    // Deleting: without a token 401, with a malformed one 400, with the attacker's 403.
    let path = format!("/keys/{id}");
    let (status, body) = server.http("DELETE", &path, &[], b"").unwrap();
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(error_of(&body).contains("owner token"));
    let (status, _) = server
        .http("DELETE", &path, &[("Authorization", "Bearer short")], b"")
        .unwrap();
    assert_eq!(status, 400);
    let (status, _) = server
        .http("DELETE", &path, &[("Authorization", "Basic abc")], b"")
        .unwrap();
    assert_eq!(status, 400);
    let del = |url: &str, token: &str| {
        veil(&[
            "client",
            "delete-keys",
            "--url",
            url,
            "--key-id",
            &id,
            "--owner-token",
            token,
        ])
    };
    let err = fails(&[
        "client",
        "delete-keys",
        "--url",
        &url,
        "--key-id",
        &id,
        "--owner-token",
        &attacker_token,
    ]);
    assert!(
        err.contains("403") && err.contains("not the owner token"),
        "{err}"
    );
    // A missing token file is named.
    let err = fails(&[
        "client",
        "delete-keys",
        "--url",
        &url,
        "--key-id",
        &id,
        "--owner-token",
        &s(&st.dir.join("no-such.veil-token")),
    ]);
    assert!(err.contains("no-such.veil-token"), "{err}");
    // Ownership survives a restart (it is in the key directory).
    drop(server);
    let server = Server::start(&st.server, &["--threads", "2", "--key-dir", &kd]);
    let url = server.url();
    let (code, _, err) = del(&url, &attacker_token);
    assert!(code == 1 && err.contains("403"), "{err}");
    run_and_check(st, &url, &id, "owner-y.veil-ct");
    let (code, out, err) = del(&url, &victim_token);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted"), "{out}");
    assert!(!key_dir.join(format!("{id}.veil-owner")).exists());
    // Keys uploaded without a token have no owner: nobody deletes them over HTTP.
    let v = upload_raw(&server, &st.victim.1);
    assert_eq!(v["owned"], serde_json::Value::Null);
    let (code, _, err) = del(&url, &victim_token);
    assert!(
        code == 1 && err.contains("403") && err.contains("without an owner token"),
        "{err}"
    );
    // ... until somebody uploads them with a token: the first token claims them.
    let v = upload(&url, &st.victim.1);
    assert_eq!(v, id);
    let (code, _, err) = del(&url, &victim_token);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_key_dir_quota_evicts_the_least_recently_used_keys() {
    let st = setup();
    let third = st.dir.join("third");
    ok(&[
        "keygen",
        "--client",
        &st.client,
        "--out",
        &s(&third),
        "--seed",
        "9",
    ]);
    let third_eval = s(&third.join("eval.veil-keys"));
    let size = std::fs::metadata(&st.victim.1).unwrap().len();
    // Room for two key sets, not three.
    let quota_mb = (size * 5 / 2) >> 20;
    assert!(
        quota_mb << 20 >= 2 * size && quota_mb << 20 < 3 * size,
        "keys of {size} bytes"
    );
    let key_dir = st.dir.join("quota-store");
    let kd = s(&key_dir);
    let q = quota_mb.to_string();
    let server = Server::start(
        &st.server,
        &["--threads", "2", "--key-dir", &kd, "--key-dir-max-mb", &q],
    );
    let url = server.url();
    let a = upload(&url, &st.victim.1);
    let b = upload(&url, &st.attacker.1);
    // The victim's keys are used after the attacker's upload: the attacker's are the least
    // recently used when the third set arrives.
    std::thread::sleep(Duration::from_millis(1100));
    run_and_check(st, &url, &a, "quota-y.veil-ct");
    let c = upload(&url, &third_eval);
    let on_disk = |id: &str| key_dir.join(format!("{id}.veil-keys")).exists();
    assert!(on_disk(&a) && on_disk(&c), "the recent ones stay");
    assert!(!on_disk(&b), "the least recently used one is evicted");
    assert!(!key_dir.join(format!("{b}.veil-owner")).exists());
    let y = s(&st.dir.join("quota-gone.veil-ct"));
    let err = run_fails(&url, &b, &st.attacker.2, &y);
    assert!(err.contains("404"), "{err}");
    run_and_check(st, &url, &a, "quota-y2.veil-ct");
    assert_eq!(server.health()["key_dir_max_bytes"], quota_mb << 20);
    drop(server);
    // A quota below one key set: the upload is refused with the flag named, nothing stored.
    let small = st.dir.join("quota-small");
    let server = Server::start(
        &st.server,
        &[
            "--threads",
            "2",
            "--key-dir",
            &s(&small),
            "--key-dir-max-mb",
            "1",
        ],
    );
    if size > 1 << 20 {
        let err = fails(&[
            "client",
            "upload-keys",
            "--url",
            &server.url(),
            "--eval-keys",
            &st.victim.1,
        ]);
        assert!(
            err.contains("413") && err.contains("--key-dir-max-mb"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0);
    }
    let err = fails(&[
        "serve",
        "--server",
        &st.server,
        "--key-dir",
        &kd,
        "--key-dir-max-mb",
        "0",
    ]);
    assert!(err.contains("--key-dir-max-mb"), "{err}");
}

#[test]
fn a_long_batch_does_not_starve_a_short_one() {
    let st = setup();
    let server = Server::start(
        &st.server,
        &[
            "--threads",
            "1",
            "--max-concurrent",
            "1",
            "--max-uploads",
            "4",
        ],
    );
    let url = server.url();
    let id = upload(&url, &st.victim.1);
    let many = st.dir.join("fair.csv");
    let rows: String = (0..40).map(|_| "3,2,1,0,1,0,-1,-2\n").collect();
    std::fs::write(&many, rows).unwrap();
    let x = s(&st.dir.join("fair.veil-ct"));
    ok(&[
        "encrypt",
        "--client",
        &st.client,
        "--keys",
        &st.victim.0,
        "--input",
        &s(&many),
        "--out",
        &x,
    ]);
    // The long batch first, on its own thread.
    let (u, i, yl) = (
        url.clone(),
        id.clone(),
        s(&st.dir.join("fair-long.veil-ct")),
    );
    let t = Instant::now();
    let long = std::thread::spawn(move || {
        ok(&[
            "client", "run", "--url", &u, "--key-id", &i, "--input", &x, "--out", &yl,
        ]);
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(500));
    // The short one, while the long one runs: its runs interleave with the long one's.
    run_and_check(st, &url, &id, "fair-short.veil-ct");
    let short_done = t.elapsed();
    let long_done = long.join().unwrap();
    eprintln!("fairness: 2 runs done after {short_done:?}, 40 runs after {long_done:?}");
    assert!(
        short_done < long_done,
        "the short request ({short_done:?}) waited for the long one ({long_done:?})"
    );
}

#[test]
fn mutated_bodies_get_400_and_the_server_stays_up() {
    let st = setup();
    let server = Server::start(&st.server, &["--threads", "2"]);
    let url = server.url();
    let id = upload(&url, &st.victim.1);
    let keys = std::fs::read(&st.victim.1).unwrap();
    let inputs = std::fs::read(&st.victim.2).unwrap();
    // A small deterministic generator (xorshift) for the mutation positions.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let run_path = format!("/run/{id}");
    for (path, original) in [("/keys", &keys), (run_path.as_str(), &inputs)] {
        for i in 0..40 {
            let mut body = original.clone();
            match i % 4 {
                0 => body.truncate(next(body.len())),
                1 => {
                    let p = next(body.len());
                    body[p] ^= 1 << next(8);
                }
                2 => {
                    // A bit flipped in the header (magic, version, kind, length, checksum).
                    let p = next(body.len().min(96));
                    body[p] ^= 1 << next(8);
                }
                _ => {
                    let p = next(body.len());
                    body.splice(p..p, (0..next(64) + 1).map(|k| k as u8));
                }
            }
            let (status, answer) = server.http("POST", path, &[], &body).unwrap();
            assert_eq!(
                status,
                400,
                "{path} mutant {i}: {}",
                String::from_utf8_lossy(&answer)
            );
            assert!(!error_of(&answer).is_empty());
        }
    }
    // Still serving the untouched inputs correctly.
    run_and_check(st, &url, &id, "mutants-y.veil-ct");
}
