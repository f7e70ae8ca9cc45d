//! The listener and its connections: hyper's HTTP/1 with keep-alive, one task per connection,
//! and a graceful drain when the shutdown future completes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::{ConfigError, ServerConfig};
use crate::service::{App, handle};

/// A client that has not sent a whole request head in this long is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("bad configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A bound, not yet serving, workload server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Arc<App>,
    drain_timeout: Duration,
}

impl Server {
    /// Checks the configuration and binds the listener (`127.0.0.1:0` picks a free port).
    /// Connections queue in the backlog until [`Server::serve`] runs.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        let app = App::new(&config)?;
        let bind_error = |source| ServeError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(Server {
            listener,
            local_addr,
            app: Arc::new(app),
            drain_timeout: config.drain_timeout,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets every request in progress
    /// finish and be answered (for at most the drain timeout), and returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            listener,
            local_addr,
            app,
            drain_timeout,
        } = self;
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _peer)) => stream,
                        Err(error) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if let Err(error) = stream.set_nodelay(true) {
                        debug!(%error, "cannot set TCP_NODELAY");
                    }
                    let app = Arc::clone(&app);
                    let service = service_fn(move |request| handle(Arc::clone(&app), request));
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            debug!(%error, "connection ended with an error");
                        }
                    });
                }
            }
        }

        drop(listener);
        app.start_draining();
        info!(addr = %local_addr, connections = graceful.count(), "draining");
        if tokio::time::timeout(drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            warn!(timeout = ?drain_timeout, "drain timed out; dropping the remaining connections");
        }
        info!(addr = %local_addr, "stopped");
        Ok(())
    }
}
