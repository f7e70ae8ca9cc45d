//! In-process workers: the same worker library, dialing the master over loopback gRPC, so local
//! mode exercises exactly the path a distributed run takes. Each runs its control loop on its
//! own thread (the worker's engine has its own threads for users).

use std::net::SocketAddr;

use tokio::sync::oneshot;

/// Resolves when the local worker's session has ended.
pub type Done = oneshot::Receiver<()>;

/// Starts `n` workers that connect to the master at `addr`, each with `threads` engine threads
/// (`None`: the cores divided among them).
pub fn spawn(
    n: usize,
    threads: Option<usize>,
    addr: SocketAddr,
    token: Option<String>,
) -> Vec<Done> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = threads.unwrap_or(cores / n.max(1)).max(1);
    // A wildcard bind is reachable on loopback.
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let mut done = Vec::with_capacity(n);
    for i in 1..=n {
        let mut opts =
            stampede_worker::WorkerOptions::new(format!("http://{host}:{}", addr.port()));
        opts.id = format!("local-{i}");
        opts.token = token.clone();
        opts.threads = threads;
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("local-worker-{i}"))
            .spawn(move || {
                run_one(i, opts);
                let _ = tx.send(());
            });
        match spawned {
            Ok(_) => done.push(rx),
            Err(e) => tracing::error!("cannot start local worker {i}: {e}"),
        }
    }
    done
}

fn run_one(i: usize, opts: stampede_worker::WorkerOptions) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("local worker {i}: cannot start its runtime: {e}");
            return;
        }
    };
    if let Err(e) = runtime.block_on(stampede_worker::run(opts)) {
        tracing::error!("local worker {i}: {e}");
    }
}
