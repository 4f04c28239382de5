//! Load and fault benchmark of `veil serve` (issue 14, item 8), on loopback against the real
//! binary in a separate process.
//!
//! **Load**: a corpus program (`tests/corpus/<name>.veil`, default the depth-2 decision tree
//! `dtree_depth2`) is compiled, keys are generated once and uploaded, then N concurrent
//! clients (threads, each a [`veil_server::Client`]: a `GET /health` for the body limit and a
//! `POST /run`, as `veil client run` does) each send R requests of one encrypted sample. Per N
//! it prints the throughput (runs/s), the p50 and p99 latency of a request, and the server's
//! resident memory (`VmRSS` of `/proc/<pid>/status`, sampled every 20 ms: peak and after).
//! One answer per distinct input is decrypted and compared with the reference interpreter.
//!
//! **Fault**: a server with `--key-dir` gets the keys, clients (`veil client run --retries`,
//! separate processes) send batches, the server is killed (SIGKILL) while it computes and
//! restarted on the same port and key directory; the clients retry, and every result is
//! decrypted and compared with the interpreter. It prints how many clients were cut off, how
//! long the recovery took, and whether the restarted server took the keys from the key store
//! (no new upload).
//!
//! Needs the `veil` binary: `$VEIL_BIN`, else `veil` next to this benchmark's folder
//! (`target/release/veil` for `cargo bench`: run `cargo build --release -p veil-cli` first).
//! Linux only (`/proc`). Run with
//! `cargo build --release -p veil-cli && cargo bench -p veil-benches --bench serve_load`
//! (`--profile release` skips the bench profile's fat LTO).
//!
//! Settings (environment): `VEIL_BENCH_CLIENTS=1,4,16,64` the numbers of concurrent clients,
//! `VEIL_BENCH_REQUESTS=4` requests per client, `VEIL_BENCH_PROGRAM=dtree_depth2` the corpus
//! program, `VEIL_BENCH_SLOTS=1` the server's `--max-concurrent`, `VEIL_BENCH_THREADS=0` its
//! `--threads` (0: one per CPU), `VEIL_BENCH_FAULT_CLIENTS=4` the clients of the fault run
//! (0 skips it), `VEIL_BENCH_FAULT_ROWS=16` the samples in each of their batches.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veil_ir::{Graph, Tensor};
use veil_server::{Client, ClientOptions};
use veil_tests::corpus;

/// A failure of the benchmark: one line, printed before exiting with code 1.
type Res<T> = Result<T, String>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Res<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?}: not a valid value")),
        Err(_) => Ok(default),
    }
}

/// The `veil` binary: `$VEIL_BIN`, else `veil` in the target folder this benchmark runs from.
fn veil_bin() -> Res<PathBuf> {
    if let Ok(b) = std::env::var("VEIL_BIN") {
        return Ok(PathBuf::from(b));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this benchmark: {e}"))?;
    // target/<profile>/deps/serve_load-HASH -> target/<profile>/veil
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("veil"))
        .ok_or("cannot find the target folder")?;
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(format!(
            "no veil binary at {}: run `cargo build --release -p veil-cli` first, or set VEIL_BIN",
            candidate.display()
        ))
    }
}

/// Runs `veil args`; its stdout, or an error with its stderr.
fn veil(bin: &Path, args: &[&str]) -> Res<String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "veil {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A row of program inputs as one CSV line (inputs flattened in order).
fn csv_line(row: &[Tensor<i64>]) -> String {
    row.iter()
        .flat_map(|t| t.data.iter().map(i64::to_string))
        .collect::<Vec<_>>()
        .join(",")
        + "\n"
}

/// The reference interpreter on one row: the flattened outputs, in the program's order.
fn reference(g: &Graph, row: &[Tensor<i64>]) -> Res<Vec<Vec<i64>>> {
    let outs = veil_ir::interp::run(g, row).map_err(|e| format!("interpreter: {e}"))?;
    Ok(outs.into_iter().map(|t| t.data).collect())
}

/// The names of the program's outputs, in order.
fn output_names(g: &Graph) -> Vec<String> {
    g.outputs()
        .into_iter()
        .filter_map(|o| match g.op(o) {
            veil_ir::Op::Output { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The integers of a (nested) JSON array, flattened.
fn ints(v: &serde_json::Value) -> Vec<i64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(ints).collect(),
        v => v.as_i64().into_iter().collect(),
    }
}

/// Everything a client needs: the compiled program, keys and encrypted inputs.
struct Setup {
    bin: PathBuf,
    dir: PathBuf,
    graph: Graph,
    client_artifact: String,
    server_artifact: String,
    secret: String,
    eval_keys: Vec<u8>,
    eval_path: String,
    /// Inputs and their one-sample encrypted files.
    samples: Vec<(Vec<Tensor<i64>>, Vec<u8>)>,
    /// All rows (the inputset), for the fault run's batches.
    rows: Vec<Vec<Tensor<i64>>>,
}

impl Setup {
    /// Encrypts `rows` into one file at `path`.
    fn encrypt(&self, rows: &[Vec<Tensor<i64>>], name: &str) -> Res<PathBuf> {
        let csv = self.dir.join(format!("{name}.csv"));
        std::fs::write(&csv, rows.iter().map(|r| csv_line(r)).collect::<String>())
            .map_err(|e| format!("{}: {e}", csv.display()))?;
        let out = self.dir.join(format!("{name}.veil-ct"));
        veil(
            &self.bin,
            &[
                "encrypt",
                "--client",
                &self.client_artifact,
                "--keys",
                &self.secret,
                "--input",
                &s(&csv),
                "--out",
                &s(&out),
            ],
        )?;
        Ok(out)
    }

    /// Decrypts an encrypted-results file and compares it with the interpreter on `rows`;
    /// the number of rows that match.
    fn check(&self, results: &Path, rows: &[Vec<Tensor<i64>>]) -> Res<usize> {
        let dec = veil(
            &self.bin,
            &[
                "decrypt",
                "--client",
                &self.client_artifact,
                "--keys",
                &self.secret,
                "--input",
                &s(results),
                "--format",
                "json",
            ],
        )?;
        let got: serde_json::Value =
            serde_json::from_str(&dec).map_err(|e| format!("decrypt output: {e}"))?;
        let got = got.as_array().ok_or("decrypt output: not a JSON array")?;
        if got.len() != rows.len() {
            return Err(format!("{} results for {} samples", got.len(), rows.len()));
        }
        let names = output_names(&self.graph);
        let mut right = 0;
        for (row, sample) in rows.iter().zip(got) {
            let want = reference(&self.graph, row)?;
            if names
                .iter()
                .zip(&want)
                .all(|(n, w)| ints(&sample[n.as_str()]) == *w)
            {
                right += 1;
            }
        }
        Ok(right)
    }
}

fn setup(bin: PathBuf, program: &str) -> Res<Setup> {
    let entries = corpus::load();
    let entry = entries
        .iter()
        .find(|e| e.name == program)
        .ok_or_else(|| format!("VEIL_BENCH_PROGRAM={program}: no such program in tests/corpus"))?;
    let dir = std::env::temp_dir().join(format!("veil-serve-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let rows = corpus::test_inputs(&entry.graph, 256, 7);
    let inputset = dir.join("inputset.csv");
    std::fs::write(
        &inputset,
        rows.iter().map(|r| csv_line(r)).collect::<String>(),
    )
    .map_err(|e| format!("{}: {e}", inputset.display()))?;
    let build = dir.join("build");
    let t = Instant::now();
    veil(
        &bin,
        &[
            "compile",
            &s(&entry.path),
            "--inputset",
            &s(&inputset),
            "--out",
            &s(&build),
        ],
    )?;
    let compile_s = t.elapsed().as_secs_f64();
    let client_artifact = s(&build.join("client.veil-artifact"));
    let keys = dir.join("keys");
    let t = Instant::now();
    veil(
        &bin,
        &[
            "keygen",
            "--client",
            &client_artifact,
            "--out",
            &s(&keys),
            "--seed",
            "1",
        ],
    )?;
    let keygen_s = t.elapsed().as_secs_f64();
    let eval_path = keys.join("eval.veil-keys");
    let eval_keys =
        std::fs::read(&eval_path).map_err(|e| format!("{}: {e}", eval_path.display()))?;
    let info =
        veil(&bin, &["inspect", &s(&build.join("server.veil-artifact"))]).unwrap_or_default();
    let pbs = info
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("pbs"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "program {program} ({}): compiled in {compile_s:.1} s, keys in {keygen_s:.1} s, eval keys {:.1} MiB{}",
        s(&entry.path),
        eval_keys.len() as f64 / (1 << 20) as f64,
        if pbs.is_empty() { String::new() } else { format!("; {pbs}") }
    );
    let mut setup = Setup {
        bin,
        dir,
        graph: entry.graph.clone(),
        client_artifact,
        server_artifact: s(&build.join("server.veil-artifact")),
        secret: s(&keys.join("secret.veil-keys")),
        eval_keys,
        eval_path: s(&eval_path),
        samples: Vec::new(),
        rows: rows.clone(),
    };
    // Eight distinct one-sample inputs, spread over the inputset.
    let step = (rows.len() / 8).max(1);
    for (i, row) in rows.iter().step_by(step).take(8).enumerate() {
        let path = setup.encrypt(std::slice::from_ref(row), &format!("sample{i}"))?;
        let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        setup.samples.push((row.clone(), data));
    }
    Ok(setup)
}

/// A `veil serve` child process (killed when dropped) with its log collected.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `veil -v serve --addr addr extra...`; retries for a few seconds while the port
    /// is still held (a restart on the port of a killed server).
    fn start(st: &Setup, addr: &str, extra: &[&str]) -> Res<Server> {
        let t = Instant::now();
        loop {
            let mut child = Command::new(&st.bin)
                .args([
                    "-v",
                    "serve",
                    "--server",
                    &st.server_artifact,
                    "--addr",
                    addr,
                ])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start veil serve: {e}"))?;
            let log = Arc::new(Mutex::new(String::new()));
            if let Some(stderr) = child.stderr.take() {
                let l = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        if let Ok(mut l) = l.lock() {
                            l.push_str(&line);
                            l.push('\n');
                        }
                    }
                });
            }
            let mut reader = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            if let Some(rest) = line.split("http://").nth(1) {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                });
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                return Ok(Server { child, addr, log });
            }
            let _ = child.kill();
            let _ = child.wait();
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "veil serve does not start on {addr}: {}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Resident memory of the server in bytes (`VmRSS`).
    fn rss(&self) -> Option<u64> {
        rss_of(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The `q` quantile (0..=1) of sorted durations, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One load level: `n` clients, `r` requests each. Prints one table row.
fn load_level(st: &Setup, server: &Server, key_id: &str, n: usize, r: usize) -> Res<()> {
    let url = server.url();
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(900),
        max_response: 1 << 30,
        ca_cert: None,
    };
    // RSS sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(server.rss().unwrap_or(0)));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), server.child.id());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(b) = rss_of(pid) {
                    peak.fetch_max(b, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let first_answers: Arc<Mutex<Vec<Option<Vec<u8>>>>> =
        Arc::new(Mutex::new(vec![None; st.samples.len()]));
    let t = Instant::now();
    let results: Vec<(Vec<Duration>, usize, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|c| {
                let client = Client::with_options(&url, options.clone());
                let first_answers = first_answers.clone();
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(r);
                    let mut errors = 0;
                    let mut last_error = None;
                    for j in 0..r {
                        let which = (c + j) % st.samples.len();
                        let t = Instant::now();
                        match client.run(key_id, st.samples[which].1.clone()) {
                            Ok(answer) => {
                                lat.push(t.elapsed());
                                if let Ok(mut f) = first_answers.lock() {
                                    f[which].get_or_insert(answer);
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                last_error = Some(e.to_string());
                            }
                        }
                    }
                    (lat, errors, last_error)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), r, Some("a client thread failed".into())))
            })
            .collect()
    });
    let wall = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let after = server.rss().unwrap_or(0);
    let mut lat: Vec<Duration> = results.iter().flat_map(|(l, _, _)| l.clone()).collect();
    lat.sort();
    let errors: usize = results.iter().map(|(_, e, _)| e).sum();
    // Check one answer per distinct input.
    let answers = first_answers.lock().map(|a| a.clone()).unwrap_or_default();
    let (mut checked, mut right) = (0, 0);
    for (i, a) in answers.iter().enumerate() {
        if let Some(a) = a {
            let path = st.dir.join(format!("answer-{n}-{i}.veil-ct"));
            std::fs::write(&path, a).map_err(|e| format!("{}: {e}", path.display()))?;
            checked += 1;
            right += st.check(&path, std::slice::from_ref(&st.samples[i].0))?;
        }
    }
    println!(
        "| {n} | {} | {:.1} | {:.2} | {:.0} | {:.0} | {:.1} | {:.1} | {errors} | {right}/{checked} |",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        quantile(&lat, 0.5).as_secs_f64() * 1e3,
        quantile(&lat, 0.99).as_secs_f64() * 1e3,
        mib(peak.load(Ordering::Relaxed)),
        mib(after),
    );
    if let Some(e) = results.iter().find_map(|(_, _, e)| e.clone()) {
        println!("  (last error: {e})");
    }
    Ok(())
}

fn load(st: &Setup, levels: &[usize], r: usize, slots: usize, threads: usize) -> Res<()> {
    let (slots, threads) = (slots.to_string(), threads.to_string());
    let server = Server::start(
        st,
        "127.0.0.1:0",
        &["--max-concurrent", &slots, "--threads", &threads],
    )?;
    let idle = server.rss().unwrap_or(0);
    let client = Client::new(&server.url());
    let t = Instant::now();
    let key_id = client
        .upload_keys(st.eval_keys.clone())
        .map_err(|e| e.to_string())?;
    let upload_s = t.elapsed().as_secs_f64();
    println!(
        "\n## Load: veil serve --max-concurrent {slots} --threads {threads} on loopback, {r} requests of one sample per client\n"
    );
    println!(
        "server RSS: {:.1} MiB idle, {:.1} MiB with one key set (upload and expansion {upload_s:.1} s)\n",
        mib(idle),
        mib(server.rss().unwrap_or(0))
    );
    println!("| clients | requests | wall s | runs/s | p50 ms | p99 ms | RSS peak MiB | RSS after MiB | errors | answers checked |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in levels {
        load_level(st, &server, &key_id, n, r)?;
    }
    Ok(())
}

/// Waits until `server`'s log holds `what`.
fn wait_for(server: &Server, what: &str, limit: Duration) -> Res<()> {
    let t = Instant::now();
    while !server.log().contains(what) {
        if t.elapsed() > limit {
            return Err(format!("the server never logged {what:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn fault(st: &Setup, clients: usize, rows_per: usize, threads: usize) -> Res<()> {
    println!(
        "\n## Fault: {clients} clients (veil client run --retries 8 --retry-wait-s 0.2) with batches of {rows_per} samples; SIGKILL of the server mid-run, restart on the same port and --key-dir\n"
    );
    let key_dir = st.dir.join("key-store");
    let kd = s(&key_dir);
    let threads = threads.to_string();
    let extra = ["--key-dir", kd.as_str(), "--threads", threads.as_str()];
    let mut first = Server::start(st, "127.0.0.1:0", &extra)?;
    let url = first.url();
    let key_id = veil(
        &st.bin,
        &[
            "client",
            "upload-keys",
            "--url",
            &url,
            "--eval-keys",
            &st.eval_path,
        ],
    )?
    .trim()
    .to_string();
    let mut jobs = Vec::new();
    for c in 0..clients {
        let rows: Vec<Vec<Tensor<i64>>> = st
            .rows
            .iter()
            .cycle()
            .skip(c * rows_per)
            .take(rows_per)
            .cloned()
            .collect();
        let x = st.encrypt(&rows, &format!("fault-in-{c}"))?;
        let y = st.dir.join(format!("fault-out-{c}.veil-ct"));
        jobs.push((rows, x, y));
    }
    let t = Instant::now();
    let children: Vec<Child> = jobs
        .iter()
        .map(|(_, x, y)| {
            Command::new(&st.bin)
                .args(["client", "run", "--url", &url, "--key-id", &key_id])
                .args(["--input", &s(x), "--out", &s(y)])
                .args(["--retries", "8", "--retry-wait-s", "0.2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start veil client: {e}"))
        })
        .collect::<Res<_>>()?;
    wait_for(&first, "run started", Duration::from_secs(300))?;
    std::thread::sleep(Duration::from_millis(200));
    let done_before = first.log().matches("run done").count();
    let _ = first.child.kill();
    let _ = first.child.wait();
    let killed_at = t.elapsed();
    println!(
        "killed the server (SIGKILL) {:.2} s after the clients started; {done_before} of {clients} requests were answered before",
        killed_at.as_secs_f64()
    );
    let t_restart = Instant::now();
    let second = Server::start(st, &first.addr, &extra)?;
    println!(
        "restarted it on {} with the same --key-dir in {:.2} s",
        second.addr,
        t_restart.elapsed().as_secs_f64()
    );
    let (mut ok, mut retried, mut retries, mut right, mut total) = (0, 0, 0, 0, 0);
    for (child, (rows, _, y)) in children.into_iter().zip(&jobs) {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("veil client: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        // `veil client run` prints "wrote FILE (SIZE) after N attempts" when it retried.
        let said = String::from_utf8_lossy(&out.stdout);
        let n = said
            .split(" after ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n - 1);
        retries += n;
        retried += usize::from(n > 0);
        total += rows.len();
        if out.status.success() {
            ok += 1;
            right += st.check(y, rows)?;
        } else {
            println!("  a client failed: {}", err.trim());
        }
    }
    let all_done = t.elapsed();
    let log = second.log();
    println!(
        "{ok} of {clients} clients succeeded ({retried} cut off by the kill retried, {retries} retries in all), {:.2} s after the kill; results decrypted: {right} of {total} samples equal to the interpreter",
        (all_done - killed_at).as_secs_f64()
    );
    println!(
        "restarted server: keys loaded from the key store: {}; keys uploaded again: {}; runs answered: {}",
        if log.contains("loaded from the key store") { "yes" } else { "no" },
        if log.contains("evaluation keys stored") { "yes" } else { "no" },
        log.matches("run done").count()
    );
    if ok == clients && right == total {
        println!("fault run: nothing lost");
        Ok(())
    } else {
        Err("fault run: results were lost or wrong (above)".into())
    }
}

fn run() -> Res<()> {
    let bin = veil_bin()?;
    let levels: Vec<usize> = std::env::var("VEIL_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| format!("VEIL_BENCH_CLIENTS: {v:?} is not a number above 0"))
        })
        .collect::<Res<_>>()?;
    let r: usize = env_or("VEIL_BENCH_REQUESTS", 4)?;
    let program: String = env_or("VEIL_BENCH_PROGRAM", "dtree_depth2".to_string())?;
    let slots: usize = env_or("VEIL_BENCH_SLOTS", 1)?;
    let threads: usize = env_or("VEIL_BENCH_THREADS", 0)?;
    let fault_clients: usize = env_or("VEIL_BENCH_FAULT_CLIENTS", 4)?;
    let fault_rows: usize = env_or("VEIL_BENCH_FAULT_ROWS", 16)?;
    println!(
        "veil serve load and fault benchmark: {} ({} CPUs)",
        bin.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let st = setup(bin, &program)?;
    load(&st, &levels, r.max(1), slots.max(1), threads)?;
    if fault_clients > 0 {
        fault(&st, fault_clients, fault_rows.max(1), threads)?;
    }
    let _ = std::fs::remove_dir_all(&st.dir);
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
