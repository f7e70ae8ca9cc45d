//! Real HTTP servers on 127.0.0.1 for the worker's tests, each counting what it serves, and
//! helpers to build run configurations and read recorded histograms.
#![allow(dead_code)]

pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stampede_worker::proto::{self, Outcome, RunConfig, WaitKind};
use stampede_worker::record::{Histograms, Key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a test server answers.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Delay before answering.
    pub delay: Duration,
    /// Every n-th request (1-based) gets a 503; 0: never.
    pub every_nth_503: u64,
    /// `x-arch` value to send, if any.
    pub arch: Option<&'static str>,
    /// Path prefix → Location for a 302.
    pub redirects: Vec<(String, String)>,
    /// When the n-th request (1-based) arrives, hold every request that arrives in the next
    /// `Duration` until that time is up: one stall, as a GC pause or a failover would cause.
    pub stall: Option<(u64, Duration)>,
}

/// What a server counted.
#[derive(Default)]
pub struct Counts {
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    pub served: AtomicU64,
    pub status_503: AtomicU64,
    pub redirected: AtomicU64,
    /// Until when requests are held (see `Behaviour::stall`).
    pub stall_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Requests that were held by the stall.
    pub stalled: AtomicU64,
}

impl Counts {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
    pub fn status_503(&self) -> u64 {
        self.status_503.load(Ordering::SeqCst)
    }
    pub fn redirected(&self) -> u64 {
        self.redirected.load(Ordering::SeqCst)
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hyper HTTP/1.1 server with keep-alive.
pub async fn http_server(behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let behaviour = Arc::new(behaviour);
    let task = {
        let counts = counts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                let counts = counts.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let counts = counts.clone();
                        let behaviour = behaviour.clone();
                        async move { Ok::<_, Infallible>(answer(req, &behaviour, &counts).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    TestServer { addr, counts, task }
}

async fn answer(req: Request<Incoming>, b: &Behaviour, counts: &Counts) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if let Some((_, location)) = b
        .redirects
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
    {
        counts.redirected.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location.as_str())
            .header("x-arch", "redirector")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let n = counts.served.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some((at, length)) = b.stall {
        let now = tokio::time::Instant::now();
        let until = {
            let mut until = counts.stall_until.lock().unwrap();
            if n == at {
                *until = Some(now + length);
            }
            until.filter(|u| *u > now)
        };
        if let Some(until) = until {
            counts.stalled.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep_until(until).await;
        }
    }
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let status = if b.every_nth_503 > 0 && n.is_multiple_of(b.every_nth_503) {
        counts.status_503.fetch_add(1, Ordering::SeqCst);
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut resp = Response::builder().status(status);
    if let Some(arch) = b.arch {
        resp = resp.header("x-arch", arch);
    }
    // A body bigger than one read, so it arrives in several frames.
    resp.body(Full::new(Bytes::from(vec![b'x'; 64 * 1024])))
        .unwrap()
}

/// A raw server that answers one request per connection with a keep-alive response (no
/// `Connection: close`), then closes the connection shortly after: what an idle timeout does.
pub async fn closing_server(arch: &'static str) -> TestServer {
    raw_server(move |mut stream, counts| async move {
        if !read_request(&mut stream).await {
            return;
        }
        counts.served.fetch_add(1, Ordering::SeqCst);
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-arch: {arch}\r\n\r\nok");
        let _ = stream.write_all(resp.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Dropping the stream closes it.
    })
    .await
}

/// A raw keep-alive server that closes a connection once it has been idle for `idle`: what a
/// server's keep-alive timeout does.
pub async fn idle_closing_server(idle: Duration) -> TestServer {
    raw_server(move |mut stream, counts| async move {
        while let Ok(true) = tokio::time::timeout(idle, read_request(&mut stream)).await {
            counts.served.fetch_add(1, Ordering::SeqCst);
            let resp = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if stream.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// A raw server that reads a request and closes the connection without answering.
pub async fn hangup_server() -> TestServer {
    raw_server(|mut stream, counts| async move {
        if read_request(&mut stream).await {
            counts.served.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await
}

pub async fn raw_server<F, Fut>(handle: F) -> TestServer
where
    F: Fn(tokio::net::TcpStream, Arc<Counts>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let task = {
        let counts = counts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(stream, counts.clone()));
            }
        })
    };
    TestServer { addr, counts, task }
}

/// Reads one bodiless request's head; false at EOF.
pub async fn read_request(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// A port nothing listens on.
pub async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A closed-model run configuration: one target, one GET request, 2 ms think time.
pub fn run_config(url: &str, declared_arch: &str, path: &str) -> RunConfig {
    RunConfig {
        run_id: "test-run".into(),
        report_interval_ms: 1000,
        arch_header: "x-arch".into(),
        targets: vec![proto::Target {
            name: "t0".into(),
            url: url.into(),
            arch: declared_arch.into(),
            weight: 1,
            ..Default::default()
        }],
        requests: vec![proto::Request {
            name: "get".into(),
            method: "GET".into(),
            path: path.into(),
            weight: 1,
            timeout_ms: 10_000,
            ..Default::default()
        }],
        // A short pause keeps tests that run side by side from starving each other's CPU.
        wait: Some(proto::Wait {
            kind: WaitKind::Constant as i32,
            a_us: 2_000,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Total requests recorded.
pub fn total(h: &Histograms) -> u64 {
    h.values().map(|h| h.len()).sum()
}

/// Requests recorded per (outcome, arch).
pub fn by_outcome_arch(h: &Histograms) -> HashMap<(Outcome, String), u64> {
    let mut out = HashMap::new();
    for (k, v) in h {
        *out.entry((k.outcome, k.arch.to_string())).or_insert(0) += v.len();
    }
    out
}

/// Every request recorded was a 2xx, and exactly as many were recorded as the server served.
pub fn assert_all_2xx(recorded: &Histograms, served: u64) {
    assert_eq!(
        count_outcome(recorded, Outcome::Status2xx),
        served,
        "{:?}",
        by_outcome_arch(recorded)
    );
    assert_eq!(total(recorded), served);
}

/// Requests recorded with one outcome.
pub fn count_outcome(h: &Histograms, outcome: Outcome) -> u64 {
    h.iter()
        .filter(|(k, _)| k.outcome == outcome)
        .map(|(_, v)| v.len())
        .sum()
}

pub fn keys(h: &Histograms) -> Vec<&Key> {
    h.keys().collect()
}

/// Everything an engine recorded in a run: latencies, phases and failure reasons.
pub struct Recorded {
    pub latencies: Histograms,
    pub phases: stampede_worker::record::PhaseHistograms,
    pub reasons: Vec<stampede_worker::record::ReasonCount>,
}

impl Recorded {
    /// Requests recorded for one phase (all targets and arches).
    pub fn phase_count(&self, phase: proto::Phase) -> u64 {
        self.phases
            .iter()
            .filter(|(k, _)| k.phase == phase)
            .map(|(_, h)| h.len())
            .sum()
    }

    /// One phase's histogram over all targets and arches.
    pub fn phase(&self, phase: proto::Phase) -> hdrhistogram::Histogram<u64> {
        let mut out = stampede_worker::record::new_histogram();
        for (k, h) in &self.phases {
            if k.phase == phase {
                out.add(h).unwrap();
            }
        }
        out
    }

    /// How many failures were counted under `reason`.
    pub fn reason(&self, reason: &str) -> u64 {
        self.reasons
            .iter()
            .filter(|r| r.reason == reason)
            .map(|r| r.count)
            .sum()
    }

    /// Requests recorded per arch.
    pub fn by_arch(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        for (k, h) in &self.latencies {
            *out.entry(k.arch.to_string()).or_insert(0) += h.len();
        }
        out
    }
}

/// Runs `users` users on every target of `engine` for `run_for`, stops it (every in-flight
/// request must end by itself) and returns all it recorded, taken in two intervals.
pub async fn run_all(
    engine: &mut stampede_worker::Engine,
    users: u32,
    run_for: Duration,
) -> Recorded {
    for t in 0..engine.targets() {
        engine.set_users(t as u32, users).unwrap();
    }
    tokio::time::sleep(run_for / 2).await;
    let first = (
        engine.take_shards(),
        engine.take_phases(),
        engine.take_reasons(),
    );
    tokio::time::sleep(run_for / 2).await;
    let abandoned = engine.stop(Duration::from_secs(10)).await;
    assert_eq!(abandoned, 0, "every in-flight request finished");
    let latencies =
        stampede_worker::report::merge(first.0.into_iter().chain(engine.take_shards())).unwrap();
    let mut phases = first.1;
    for (k, h) in engine.take_phases() {
        phases
            .entry(k)
            .or_insert_with(stampede_worker::record::new_histogram)
            .add(&h)
            .unwrap();
    }
    let mut reasons = first.2;
    reasons.extend(engine.take_reasons());
    Recorded {
        latencies,
        phases,
        reasons,
    }
}
