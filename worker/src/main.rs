//! `stampede-worker`: joins a master and runs the users it is given.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stampede_worker::{ClientTls, WorkerOptions};
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Bad flags, as clap itself exits.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "stampede worker: runs simulated users for a stampede master"
)]
struct Cli {
    /// The master's gRPC address.
    #[arg(long, env = "STAMPEDE_MASTER", default_value = "http://127.0.0.1:5557")]
    master: String,
    /// Shared token the master expects (required unless --insecure).
    #[arg(long, env = "STAMPEDE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Join without a token (only a master started with --insecure admits this worker).
    #[arg(long, env = "STAMPEDE_INSECURE", conflicts_with = "token")]
    insecure: bool,
    /// Worker id (default: hostname-pid-random).
    #[arg(long, env = "STAMPEDE_WORKER_ID")]
    id: Option<String>,
    /// Dead-man switch: with no word from the master for this long, stop all load (and keep
    /// trying to reconnect). A lost connection stops the load at once.
    #[arg(long, env = "STAMPEDE_MASTER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DUR")]
    master_timeout: std::time::Duration,
    /// Exit when the master is lost instead of reconnecting.
    #[arg(long, env = "STAMPEDE_NO_RECONNECT")]
    no_reconnect: bool,
    /// TLS to the master: the CA (PEM) that signed its certificate.
    #[arg(long, env = "STAMPEDE_TLS_CA", value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// A client certificate (PEM), for a master that requires one (--tls-client-ca).
    #[arg(long, env = "STAMPEDE_TLS_CERT", value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "STAMPEDE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// The name the master's certificate must carry (default: the host in --master).
    #[arg(
        long,
        env = "STAMPEDE_TLS_DOMAIN",
        value_name = "NAME",
        requires = "tls_ca"
    )]
    tls_domain: Option<String>,
    /// Engine threads (default: one per core).
    #[arg(long, env = "STAMPEDE_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Colour only on a terminal, and never with NO_COLOR set (no-color.org): a log in a file
    // or a pod's log stream carries no escape codes.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let token = match (cli.token.as_deref(), cli.insecure) {
        (Some(t), _) if !t.is_empty() => Some(t.to_string()),
        (_, true) => {
            tracing::warn!(
                "INSECURE: joining without a token (--insecure); only a master that admits anyone will accept this worker"
            );
            None
        }
        _ => {
            eprintln!(
                "stampede-worker: a token is required: give --token T (or STAMPEDE_TOKEN), the one the master was started with, or --insecure for a master started with --insecure"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli, token) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stampede-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, token: Option<String>) -> anyhow::Result<()> {
    let mut opts = WorkerOptions::new(cli.master);
    opts.token = token;
    opts.master_timeout = cli.master_timeout;
    opts.reconnect = !cli.no_reconnect;
    if let Some(id) = cli.id {
        opts.id = id;
    }
    if let Some(threads) = cli.threads {
        opts.threads = usize::from(threads);
    }
    if let Some(ca) = &cli.tls_ca {
        let identity = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => {
                Some((read_pem(cert, "--tls-cert")?, read_pem(key, "--tls-key")?))
            }
            _ => None,
        };
        opts.tls = Some(ClientTls {
            ca: read_pem(ca, "--tls-ca")?,
            identity,
            domain: cli.tls_domain.clone(),
        });
    }
    // The session itself is light; the load runs on the engine's own threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(stampede_worker::run(opts))?;
    Ok(())
}

fn read_pem(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}
