//! In-process workers: the same worker library, dialing the master over loopback gRPC, so local
//! mode exercises exactly the path a distributed run takes.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// Starts `n` workers that connect to the master at `addr`.
pub fn spawn(n: usize, addr: SocketAddr, token: Option<String>) -> Vec<JoinHandle<()>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (cores / n.max(1)).max(1);
    // A wildcard bind is reachable on loopback.
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    (1..=n)
        .map(|i| {
            let mut opts = stampede_worker::WorkerOptions::new(format!(
                "http://{host}:{}",
                addr.port()
            ));
            opts.id = format!("local-{i}");
            opts.token = token.clone();
            opts.threads = threads;
            tokio::spawn(async move {
                if let Err(e) = stampede_worker::run(opts).await {
                    tracing::error!("local worker {i}: {e}");
                }
            })
        })
        .collect()
}
