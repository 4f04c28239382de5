//! Faults between `veil client` and `veil serve`, through the real binary in separate
//! processes: a server killed (SIGKILL) in the middle of a run and restarted on the same
//! `--key-dir` and port, which a client with `--retries` survives with correct results and no
//! new key upload; the same without retries, one clear error; proxy errors (502, 504, 503
//! with Retry-After), which are sent again; and errors that are not transient (4xx, 500,
//! `veil serve`'s own 503), which are never sent again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
mod common;
use common::{bin, interpret, ints, s, workdir};
mod cli_serve_support;
use cli_serve_support::{compile_tlu, ok};

/// Rows in the batch a client sends: enough runs that the server is still computing when it
/// is killed.
const ROWS: usize = 40;

/// A compiled program, one client's keys and a batch of encrypted inputs.
struct Setup {
    dir: PathBuf,
    src: String,
    rows: Vec<Vec<i64>>,
    client: String,
    server: String,
    secret: String,
    eval: String,
    /// The encrypted batch of `rows`.
    x: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = workdir("faults");
        let rows: Vec<Vec<i64>> = (0..ROWS as i64)
            .map(|i| {
                (0..8)
                    .map(|j| if j < 4 { (i + j) % 4 } else { (i + j) % 4 - 2 })
                    .collect()
            })
            .collect();
        let (src, client, server) = compile_tlu(&dir, &rows);
        let keys = dir.join("keys");
        ok(&[
            "keygen",
            "--client",
            &client,
            "--out",
            &s(&keys),
            "--seed",
            "11",
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
            dir,
            src,
            rows,
            client,
            server,
            secret,
            eval: s(&keys.join("eval.veil-keys")),
            x,
        }
    })
}

/// A `veil -v serve` child process whose log (stderr) is collected; killed when dropped.
struct Proc {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `veil -v serve --addr addr --key-dir key_dir --threads 2`; waits until it
    /// listens (it prints the bound address once bound). A port still held by the killed
    /// server is tried again for a few seconds.
    fn start(server: &str, addr: &str, key_dir: &str) -> Proc {
        let t = Instant::now();
        loop {
            let mut child = Command::new(bin())
                .args(["-v", "serve", "--server", server, "--addr", addr])
                .args(["--key-dir", key_dir, "--threads", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("veil serve starts");
            let log = Arc::new(Mutex::new(String::new()));
            let stderr = child.stderr.take().unwrap();
            let l = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = l.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(rest) = line.split("http://").nth(1) {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                });
                let addr = rest.split_whitespace().next().unwrap().to_string();
                return Proc { child, addr, log };
            }
            let _ = child.wait();
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "veil serve does not start on {addr}:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server's log holds `what`.
    fn wait_for(&self, what: &str) {
        let t = Instant::now();
        while !self.log.lock().unwrap().contains(what) {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the server never logged {what:?}:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash or an out-of-memory kill would do: no graceful shutdown.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `veil client run` on the setup's batch as a child process.
fn start_run(url: &str, key_id: &str, out: &str, extra: &[&str]) -> Child {
    let st = setup();
    Command::new(bin())
        .args(["client", "run", "--url", url, "--key-id", key_id])
        .args(["--input", &st.x, "--out", out])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil client starts")
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Decrypts `y` and compares every row with the reference interpreter.
fn check_results(y: &str) {
    let st = setup();
    let dec = ok(&[
        "decrypt", "--client", &st.client, "--keys", &st.secret, "--input", y, "--format", "json",
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

#[test]
fn a_client_with_retries_survives_a_server_killed_mid_run() {
    let st = setup();
    let key_dir = st.dir.join("store-restart");
    let kd = s(&key_dir);
    let mut first = Proc::start(&st.server, "127.0.0.1:0", &kd);
    let url = first.url();
    let key_id = ok(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--eval-keys",
        &st.eval,
    ])
    .trim()
    .to_string();
    let y = s(&st.dir.join("y-restart.veil-ct"));
    // --key-id only: the restarted server must find the keys in the key store by itself.
    let client = start_run(
        &url,
        &key_id,
        &y,
        &["--retries", "8", "--retry-wait-s", "0.2"],
    );
    first.wait_for("run started");
    std::thread::sleep(Duration::from_millis(100));
    first.kill();
    assert!(
        !first.log.lock().unwrap().contains("run done"),
        "the run ended before the kill: make the batch longer"
    );
    let second = Proc::start(&st.server, &first.addr, &kd);
    let (code, out, err) = text(&client.wait_with_output().unwrap());
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("wrote") && out.contains("attempts"),
        "the run was not sent again:\n{out}"
    );
    assert!(err.is_empty(), "{err}");
    check_results(&y);
    let log = second.log.lock().unwrap().clone();
    assert!(
        log.contains("loaded from the key store") && log.contains("run done"),
        "the restarted server did not run from the key store:\n{log}"
    );
    assert!(
        !log.contains("evaluation keys stored"),
        "keys were uploaded again:\n{log}"
    );
    eprintln!("client after the restart: {out}");
}

#[test]
fn without_retries_a_killed_server_is_one_clear_error() {
    let st = setup();
    let kd = s(&st.dir.join("store-no-retry"));
    let mut server = Proc::start(&st.server, "127.0.0.1:0", &kd);
    let url = server.url();
    let key_id = ok(&[
        "client",
        "upload-keys",
        "--url",
        &url,
        "--eval-keys",
        &st.eval,
    ])
    .trim()
    .to_string();
    let y = st.dir.join("y-no-retry.veil-ct");
    let client = start_run(&url, &key_id, &s(&y), &["--retries", "0"]);
    server.wait_for("run started");
    std::thread::sleep(Duration::from_millis(100));
    server.kill();
    let (code, _, err) = text(&client.wait_with_output().unwrap());
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    assert!(
        err.contains("broke") && err.contains("--retries"),
        "the error does not say what happened and what to do: {err}"
    );
    assert!(!y.exists(), "a result file was written");
    // With retries but no server coming back: one error naming the attempts.
    let client = start_run(
        &url,
        &key_id,
        &s(&y),
        &["--retries", "2", "--retry-wait-s", "0.05"],
    );
    let (code, _, err) = text(&client.wait_with_output().unwrap());
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    assert!(
        err.starts_with("error: cannot connect") && err.contains("after 3 attempts"),
        "{err}"
    );
}

/// A server on loopback that answers every request with `answer` and counts the requests.
fn fake_server(answer: &'static str) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            n.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let body = r#"{"error": "fake"}"#;
            let _ = write!(
                c,
                "HTTP/1.1 {answer}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn gateway_errors_are_retried_and_4xx_never() {
    let st = setup();
    let y = s(&st.dir.join("y-fake.veil-ct"));
    let id = "0".repeat(64);
    let fast = ["--retries", "2", "--retry-wait-s", "0.05"];
    // A proxy's 503 with Retry-After, 502 and 504: sent again, then one error.
    for answer in [
        "503 Service Unavailable\r\nRetry-After: 0",
        "502 Bad Gateway",
        "504 Gateway Timeout",
    ] {
        let (url, count) = fake_server(answer);
        let (code, _, err) = text(&start_run(&url, &id, &y, &fast).wait_with_output().unwrap());
        assert_eq!(code, 1, "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 3, "{answer}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ")
                && err.contains(&answer[..3])
                && err.contains("after 3 attempts"),
            "{err}"
        );
    }
    // 4xx, 500 and veil serve's own 503 (no Retry-After: the request already waited its
    // whole timeout): never sent again.
    for answer in [
        "404 Not Found",
        "400 Bad Request",
        "413 Payload Too Large",
        "500 Internal Server Error",
        "503 Service Unavailable",
    ] {
        let (url, count) = fake_server(answer);
        let (code, _, err) = text(&start_run(&url, &id, &y, &fast).wait_with_output().unwrap());
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "{answer} was sent again: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && !err.contains("attempts"),
            "{err}"
        );
    }
}
