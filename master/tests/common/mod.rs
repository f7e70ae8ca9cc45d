//! Shared pieces of the master's end-to-end tests: a loopback HTTP server that counts what it
//! serves (the oracle), and helpers to run the real binaries.
#![allow(dead_code)]

pub mod nginx;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub mod schema;
pub mod workload;

/// What the test server counted, its own truth.
#[derive(Default, Debug)]
pub struct Counts {
    pub served: AtomicU64,
    pub served_5xx: AtomicU64,
    /// How long each request really waited, µs: timers overshoot, so the oracle for latency
    /// is the delay the server actually applied, not the one it asked for.
    pub delays_us: std::sync::Mutex<Vec<u64>>,
    /// Requests per path (query included).
    pub by_path: std::sync::Mutex<BTreeMap<String, u64>>,
    /// When each request arrived and when it was answered (wall clock, to line up with the
    /// summary's `started_at`).
    pub spans: std::sync::Mutex<Vec<(SystemTime, SystemTime)>>,
    /// Per connection: from one answer to the next request on the same connection, µs (a
    /// user's think time, as the server sees it).
    pub gaps_us: std::sync::Mutex<Vec<u64>>,
    /// Redirects answered.
    pub redirected: AtomicU64,
    /// Every request as it arrived: (connection number, when).
    pub arrivals: std::sync::Mutex<Vec<(u64, Instant)>>,
    /// When each connection closed.
    pub closed: std::sync::Mutex<std::collections::HashMap<u64, Instant>>,
    next_conn: AtomicU64,
}

impl Counts {
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
    pub fn served_5xx(&self) -> u64 {
        self.served_5xx.load(Ordering::SeqCst)
    }
    pub fn redirected(&self) -> u64 {
        self.redirected.load(Ordering::SeqCst)
    }
    pub fn path_count(&self, path: &str) -> u64 {
        self.by_path.lock().unwrap().get(path).copied().unwrap_or(0)
    }
    pub fn spans(&self) -> Vec<(SystemTime, SystemTime)> {
        self.spans.lock().unwrap().clone()
    }
    /// Requests in flight at `at`, by the server's own clock.
    pub fn in_flight_at(&self, at: SystemTime) -> usize {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(start, end)| *start <= at && at < *end)
            .count()
    }
    /// The most requests in flight at any moment of `[from, to]`.
    pub fn most_in_flight(&self, from: SystemTime, to: SystemTime) -> usize {
        let spans = self.spans.lock().unwrap().clone();
        // Concurrency only rises when a request arrives: look at `from` and every arrival.
        std::iter::once(from)
            .chain(spans.iter().map(|s| s.0).filter(|t| *t >= from && *t <= to))
            .map(|at| spans.iter().filter(|(s, e)| *s <= at && at < *e).count())
            .max()
            .unwrap_or(0)
    }
    /// Requests that arrived after `t`.
    pub fn arrived_after(&self, t: Instant) -> u64 {
        let a = self.arrivals.lock().unwrap();
        a.iter().filter(|(_, at)| *at > t).count() as u64
    }
    /// When the last request arrived.
    pub fn last_arrival(&self) -> Option<Instant> {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .map(|(_, at)| *at)
            .max()
    }
    /// Connections that sent a request within `[from, to]`.
    pub fn connections_active(&self, from: Instant, to: Instant) -> usize {
        let a = self.arrivals.lock().unwrap();
        let set: std::collections::HashSet<u64> = a
            .iter()
            .filter(|(_, at)| *at >= from && *at <= to)
            .map(|(c, _)| *c)
            .collect();
        set.len()
    }
    /// Median of the applied delays, ms.
    pub fn median_delay_ms(&self) -> f64 {
        let mut d = self.delays_us.lock().unwrap().clone();
        d.sort_unstable();
        d.get(d.len() / 2).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// How the test server behaves.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Value of the `x-arch` header it sets.
    pub arch: &'static str,
    /// Every `every_5xx`-th request answers 503 (0: never).
    pub every_5xx: u64,
    /// Delay before answering.
    pub delay: Duration,
    /// Answer 302 to these URLs in turn instead of serving (a splitter).
    pub redirect_to: Vec<String>,
}

/// A counting HTTP/1.1 server on 127.0.0.1 with an ephemeral port, on its own thread and
/// runtime so the test's own runtime (or lack of one) does not matter.
pub struct TestServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    _shutdown: std::sync::mpsc::Sender<()>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> TestServer {
        let counts = Arc::new(Counts::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let c = counts.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let serving = tokio::spawn(accept_loop(listener, behaviour, c));
                // Stop when the test drops its handle.
                tokio::task::spawn_blocking(move || {
                    let _ = stop_rx.recv();
                })
                .await
                .ok();
                serving.abort();
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestServer {
            addr,
            counts,
            _shutdown: stop_tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

async fn accept_loop(listener: TcpListener, behaviour: Behaviour, counts: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let b = behaviour.clone();
        let c = counts.clone();
        // When this connection's previous answer went out.
        let last = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let conn = counts.next_conn.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let cc = c.clone();
            let service =
                service_fn(move |req| handle(req, conn, b.clone(), cc.clone(), last.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            c.closed.lock().unwrap().insert(conn, Instant::now());
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    conn: u64,
    b: Behaviour,
    counts: Arc<Counts>,
    last: Arc<std::sync::Mutex<Option<Instant>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let start = Instant::now();
    let arrived = SystemTime::now();
    counts.arrivals.lock().unwrap().push((conn, start));
    if let Some(prev) = last.lock().unwrap().take() {
        counts
            .gaps_us
            .lock()
            .unwrap()
            .push(start.duration_since(prev).as_micros() as u64);
    }
    if !b.redirect_to.is_empty() {
        let n = counts.redirected.fetch_add(1, Ordering::SeqCst);
        let to = &b.redirect_to[n as usize % b.redirect_to.len()];
        *last.lock().unwrap() = Some(Instant::now());
        return Ok(Response::builder()
            .status(302)
            .header("location", to.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    *counts.by_path.lock().unwrap().entry(path).or_default() += 1;
    tokio::time::sleep(b.delay).await;
    counts
        .delays_us
        .lock()
        .unwrap()
        .push(start.elapsed().as_micros() as u64);
    let n = counts.served.fetch_add(1, Ordering::SeqCst) + 1;
    let fail = b.every_5xx > 0 && n.is_multiple_of(b.every_5xx);
    if fail {
        counts.served_5xx.fetch_add(1, Ordering::SeqCst);
    }
    let status = if fail { 503 } else { 200 };
    counts
        .spans
        .lock()
        .unwrap()
        .push((arrived, SystemTime::now()));
    *last.lock().unwrap() = Some(Instant::now());
    Ok(Response::builder()
        .status(status)
        .header("x-arch", b.arch)
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap())
}

/// The master binary under test.
pub fn master_bin() -> PathBuf {
    // Another build of the binary (e.g. a release one) when asked for.
    if let Some(p) = std::env::var_os("STAMPEDE_TEST_MASTER_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_stampede-master"))
}

/// The worker binary: built beside the master's by `cargo test --workspace`; when it is
/// missing (the master's tests alone), built here with the same cargo.
pub fn worker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STAMPEDE_TEST_WORKER_BIN") {
        return PathBuf::from(p);
    }
    let path =
        master_bin().with_file_name(format!("stampede-worker{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "stampede-worker", "--bin", "stampede-worker"])
            .status()
            .expect("run cargo build for the worker");
        assert!(status.success(), "building stampede-worker failed");
    }
    path
}

/// A master process whose stderr is watched for the address it listens on.
pub struct MasterProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    pub stdout: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for MasterProcess {
    // A failed test must not leave a master behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a headless run of `scenario` on an ephemeral port that waits for `workers` workers
/// and writes its summary to `summary`; `extra` flags follow.
pub fn start_run(
    scenario: &str,
    workers: usize,
    summary: &Path,
    extra: &[&str],
    dir: &Path,
) -> MasterProcess {
    let workers = workers.to_string();
    let summary = summary.to_str().expect("a UTF-8 temp path");
    let mut args = vec![
        "run",
        scenario,
        "--headless",
        "--expect-workers",
        &workers,
        "--bind",
        "127.0.0.1:0",
        "--summary",
        summary,
    ];
    args.extend_from_slice(extra);
    start_master(&args, dir)
}

/// Starts `stampede-master` with `args` and waits until it says where it listens.
pub fn start_master(args: &[&str], dir: &Path) -> MasterProcess {
    let mut child = Command::new(master_bin())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stampede-master");
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stdout = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("master listening on ").nth(1) {
                let _ = addr_tx.send(rest.trim().parse::<SocketAddr>());
            }
            l.lock().unwrap().push(line);
        }
    });
    let out = child.stdout.take().unwrap();
    let o = stdout.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            o.lock().unwrap().push(line);
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("master printed its address")
        .expect("address parses");
    MasterProcess {
        child,
        addr,
        log,
        stdout,
    }
}

/// Starts a `stampede-worker` process against `master`.
pub fn start_worker(master: SocketAddr, id: &str, extra: &[&str]) -> Child {
    Command::new(worker_bin())
        .args(["--master", &format!("http://{master}"), "--id", id])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stampede-worker")
}

/// Waits for a process to exit, killing it after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the master binary to completion and returns its exit code and stderr.
pub fn run_master(args: &[&str], dir: &Path, limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(master_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stampede-master");
    let code = wait_exit(&mut child, limit);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (code, err)
}

/// Writes `dir/s.toml`: the arm and amd targets both on `server` (under `/arm` and `/amd`);
/// returns its path.
pub fn one_server_scenario(dir: &Path, server: &TestServer, users: u32, run_time: &str) -> String {
    let path = dir.join("s.toml");
    let text = two_target_scenario(
        &server.url("/arm"),
        &server.url("/amd"),
        users,
        run_time,
        "",
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A scenario against an arm and an amd target.
pub fn two_target_scenario(
    arm: &str,
    amd: &str,
    users: u32,
    run_time: &str,
    extra: &str,
) -> String {
    format!(
        r#"
name = "e2e"
run_time = "{run_time}"
report_interval = "1s"
stop_timeout = "5s"

[[target]]
name = "arm"
url = "{arm}"
arch = "arm64"

[[target]]
name = "amd"
url = "{amd}"
arch = "amd64"

[[request]]
name = "runtime"
path = "/runtime"
timeout = "5s"

[load]
users = {users}
wait = {{ kind = "constant", duration = "5ms" }}
{extra}
"#
    )
}

/// Reads a summary the run wrote, after checking it against the published schema.
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("summary exists");
    schema::validate_summary(&text, &path.display().to_string());
    serde_json::from_str(&text).expect("summary is JSON")
}
