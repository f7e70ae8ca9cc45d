//! `stampede-worker`: joins a master and runs the users it is given.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use stampede_worker::WorkerOptions;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "stampede worker: runs simulated users for a stampede master"
)]
struct Cli {
    /// The master's gRPC address.
    #[arg(long, env = "STAMPEDE_MASTER", default_value = "http://127.0.0.1:5557")]
    master: String,
    /// Shared token the master expects.
    #[arg(long, env = "STAMPEDE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Worker id (default: hostname-pid-random).
    #[arg(long, env = "STAMPEDE_WORKER_ID")]
    id: Option<String>,
    /// Engine threads (default: one per core).
    #[arg(long, env = "STAMPEDE_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stampede-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut opts = WorkerOptions::new(cli.master);
    opts.token = cli.token.filter(|t| !t.is_empty());
    if let Some(id) = cli.id {
        opts.id = id;
    }
    if let Some(threads) = cli.threads {
        opts.threads = usize::from(threads);
    }
    // The session itself is light; the load runs on the engine's own threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(stampede_worker::run(opts))?;
    Ok(())
}
