//! What the `veil serve` tests share: a `veil serve` child process with raw HTTP requests,
//! and the `veil` runners that check exit codes and one-line errors.
#![allow(dead_code)]

use super::common::{bin, s, veil};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 0, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(err.is_empty(), "veil {args:?} wrote to stderr:\n{err}");
    out
}

/// Runs `veil args`, which must fail with one line on stderr; returns that line.
pub fn fails(args: &[&str]) -> String {
    let (code, out, err) = veil(args);
    assert_eq!(code, 1, "veil {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        err.lines().count(),
        1,
        "veil {args:?}: not one line:\n{err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Compiles `tests/golden/tlu.veil` (8 encrypted inputs: 4 unsigned, 4 signed 2-bit) into
/// `dir/build`, calibrated on `rows` (written to `dir/samples.csv`); returns the source text
/// and the paths of the client and server artifacts.
pub fn compile_tlu(dir: &std::path::Path, rows: &[Vec<i64>]) -> (String, String, String) {
    let src_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/tlu.veil");
    let src = std::fs::read_to_string(&src_path).unwrap();
    let csv: String = rows
        .iter()
        .map(|r| r.iter().map(i64::to_string).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let samples = dir.join("samples.csv");
    std::fs::write(&samples, csv).unwrap();
    let build = dir.join("build");
    ok(&[
        "compile",
        &s(&src_path),
        "--inputset",
        &s(&samples),
        "--out",
        &s(&build),
    ]);
    (
        src,
        s(&build.join("client.veil-artifact")),
        s(&build.join("server.veil-artifact")),
    )
}

/// A `veil serve` child process, killed when dropped (test failures included).
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Server {
    /// Starts `veil serve --addr 127.0.0.1:0 extra...` and reads the bound address from the
    /// first line it prints.
    pub fn start(server_artifact: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--server",
                server_artifact,
                "--addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("veil serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        let mut server = Server {
            child,
            addr: String::new(),
        };
        let tls = line.contains("https://");
        let addr = line
            .split("://")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        server.addr = addr;
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        // Wait for /health (over TLS: for the port to take connections).
        let t = Instant::now();
        if tls {
            while TcpStream::connect(&server.addr).is_err() {
                assert!(t.elapsed() < Duration::from_secs(30), "no connection");
                std::thread::sleep(Duration::from_millis(50));
            }
            return server;
        }
        loop {
            if let Ok((200, body)) = server.http("GET", "/health", &[], b"") {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["status"], "ok");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no /health answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /health` over plain HTTP, as JSON.
    pub fn health(&self) -> serde_json::Value {
        let (status, body) = self.http("GET", "/health", &[], b"").unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// One raw HTTP/1.1 request (`Connection: close`); the status and body of the answer.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut c = TcpStream::connect(&self.addr)?;
        c.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        c.write_all(head.as_bytes())?;
        c.write_all(body)?;
        let mut answer = Vec::new();
        c.read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let mut body = answer[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status, body))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..p]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[p + 4 + n..];
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn error_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON error");
    v["error"].as_str().expect("an error field").to_string()
}
