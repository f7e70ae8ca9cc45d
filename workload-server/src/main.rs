//! `stampede-workload-server [--listen ADDR] [--matrix-dim N] [--arch-label LABEL] ...`
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use stampede_workload_server::{Cli, ServeError, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let config = Cli::parse().into_config();
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(error @ ServeError::Config(_)) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(addr = %server.local_addr(), "listening");
    server.serve(terminated()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn terminated() {
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = sigterm => tracing::info!("SIGTERM"),
        Ok(()) = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
}
