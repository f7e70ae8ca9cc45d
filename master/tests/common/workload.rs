//! The bundled workload server as a capacity test's target: compute slots and a queue of known
//! size, its own count of answers (its /metrics), and a poller of those counts through a run,
//! the oracle for the throughput a search measured over a given window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use stampede_workload_server::{Server, ServerConfig};

/// A workload server on its own thread and runtime, stopped when dropped.
pub struct Workload {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Workload {
    /// `slots` multiplies of `dim`×`dim` at once, `queue` waiting; beyond that, 503.
    pub fn start(arch: &str, slots: usize, queue: usize, dim: usize) -> Workload {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            matrix_dim: dim,
            arch_label: arch.to_owned(),
            served_by: format!("test-{arch}"),
            max_inflight: slots,
            max_queue: queue,
            deadline: Duration::from_secs(30),
            ..ServerConfig::default()
        };
        std::thread::spawn(move || {
            // Two threads for HTTP, so answering is never what limits a server (the multiplies
            // run on the blocking pool).
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind(config).await.unwrap();
                addr_tx.send(server.local_addr()).unwrap();
                let _ = server
                    .serve(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        Workload {
            addr: addr_rx.recv().unwrap(),
            _stop: stop_tx,
        }
    }

    /// The server's own count of answers with `status` on `route`.
    pub fn answered(&self, route: &str, status: u16) -> u64 {
        answered(self.addr, route, status)
    }
}

/// A server's own count of answers with `status` on `route`, from its /metrics.
pub fn answered(addr: SocketAddr, route: &str, status: u16) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let want = format!("route=\"{route}\",status=\"{status}\"");
    text.lines()
        .filter(|l| l.starts_with("stampede_workload_requests_total") && l.contains(&want))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls servers' own 200 counts (one route each) every 100 ms until finished.
pub struct Poller {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Polled>,
}

/// Each poll: when, and every server's count in the order given.
pub type Polled = Vec<(SystemTime, Vec<u64>)>;

impl Poller {
    pub fn start(servers: Vec<(SocketAddr, &'static str)>) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut polled = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let at = SystemTime::now();
                    let counts = servers
                        .iter()
                        .map(|(addr, route)| answered(*addr, route, 200))
                        .collect();
                    polled.push((at, counts));
                    std::thread::sleep(Duration::from_millis(100));
                }
                polled
            })
        };
        Poller { stop, handle }
    }

    pub fn finish(self) -> Polled {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// Server `which`'s answers per second between two wall times, interpolated linearly between
/// polls.
pub fn served_rps(polled: &Polled, which: usize, from: SystemTime, to: SystemTime) -> f64 {
    let at = |t: SystemTime| -> f64 {
        let i = polled.partition_point(|p| p.0 <= t);
        assert!(
            i > 0 && i < polled.len(),
            "{t:?} is outside the polled span"
        );
        let (a, b) = (&polled[i - 1], &polled[i]);
        let span = b.0.duration_since(a.0).unwrap().as_secs_f64();
        let into = t.duration_since(a.0).unwrap().as_secs_f64();
        let (ca, cb) = (a.1[which] as f64, b.1[which] as f64);
        ca + (cb - ca) * into / span
    };
    (at(to) - at(from)) / to.duration_since(from).unwrap().as_secs_f64()
}
