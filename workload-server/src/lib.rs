//! # stampede-workload-server
//!
//! The bundled CPU-bound target of stampede: the application from the Graviton arm64-vs-amd64
//! study, as a fast Rust server. Every `GET /runtime` (and `/arm/runtime`, `/amd/runtime`)
//! multiplies two random integer matrices exactly and answers which architecture, instance and
//! host did it; `GET /app/...` redirects at random to `/arm/...` or `/amd/...`. Overload is
//! honest (bounded concurrency and queue, 503 and 504), and `/healthz`, `/readyz` and `/metrics`
//! are there for Kubernetes and Prometheus.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stampede_workload_server::ServeError> {
//! use stampede_workload_server::{Server, ServerConfig};
//!
//! let config = ServerConfig {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     arch_label: "arm64".into(),
//!     ..ServerConfig::default()
//! };
//! let server = Server::bind(config).await?;
//! println!("serving on http://{}", server.local_addr());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! server.serve(async { let _ = stopped.await; }).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod admission;
pub mod config;
pub mod matmul;
pub mod metrics;
pub mod routes;
mod server;
mod service;

pub use config::{Cli, ConfigError, ServerConfig};
pub use server::{ServeError, Server};
