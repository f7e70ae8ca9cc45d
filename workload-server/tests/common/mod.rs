//! Helpers shared by the integration tests: a server on 127.0.0.1:0, a small HTTP/1 client,
//! and readers for the metrics text.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use stampede_workload_server::{ServeError, Server, ServerConfig};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test finishes within this, or fails.
pub const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs a test body with a time bound.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test did not finish in time")
}

/// A configuration for tests: an ephemeral port on loopback and a known identity.
pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        matrix_dim: 16,
        max_matrix_dim: 2000,
        arch_label: "arm64".into(),
        instance_type: "m7g.test".into(),
        served_by: "test-pod-0".into(),
        ..ServerConfig::default()
    }
}

/// A server serving in a task of the test's runtime.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

pub async fn start(config: ServerConfig) -> Running {
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Completes the shutdown future; `finished` then awaits the drain.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn finished(self) -> Result<(), ServeError> {
        self.task.await.unwrap()
    }
}

/// One answer, body read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One keep-alive HTTP/1 connection.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        Client { sender }
    }

    pub async fn send(&mut self, method: Method, path: &str, body: impl Into<Bytes>) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .body(Full::new(body.into()))
            .unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, Bytes::new()).await
    }
}

/// A GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    Client::connect(addr).await.get(path).await
}

/// The value of one sample (`name` or `name{labels}`, exactly as written) in metrics text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// The number of multiplies in flight, from /metrics.
pub async fn in_flight(addr: SocketAddr) -> f64 {
    let text = get(addr, "/metrics").await.body;
    sample(&text, "stampede_workload_in_flight").unwrap()
}

/// Polls /metrics until `n` multiplies are running.
pub async fn wait_for_in_flight(addr: SocketAddr, n: f64) {
    while in_flight(addr).await != n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A dim whose multiply takes about a second on this machine and build (debug or release), so
/// that a test can act while it runs without depending on a fixed speed: probes doubling dims
/// until one takes a fifth of that, then scales by the cube law.
pub async fn slow_dim(addr: SocketAddr) -> usize {
    const TARGET_MS: f64 = 1000.0;
    const MAX_DIM: usize = 2000;
    let mut dim = 100;
    loop {
        let reply = get(addr, &format!("/runtime?dim={dim}")).await;
        let ms = reply.json()["compute_ms"].as_f64().unwrap().max(0.01);
        if ms >= TARGET_MS / 5.0 || dim >= MAX_DIM {
            let scaled = dim as f64 * (TARGET_MS / ms).cbrt();
            return (scaled as usize).clamp(100, MAX_DIM);
        }
        dim = (dim * 2).min(MAX_DIM);
    }
}
