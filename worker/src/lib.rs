//! The stampede worker: runs simulated users (or an arrival rate) against the scenario's targets, records every
//! request into per-thread HdrHistograms and reports them to the master over one gRPC stream.
//!
//! The master embeds workers in-process through [`run`]; the `stampede-worker` binary is a thin
//! wrapper around the same function.
// One audited exception: registering the open model's timerfd with the reactor (`timer.rs`).
#![deny(unsafe_code)]

mod arrivals;
mod attempt;
mod backoff;
mod choice;
mod cpu;
mod dest;
mod dial;
pub mod engine;
mod error;
mod h1;
mod h2;
mod http;
mod link;
mod open;
pub mod outcome;
pub mod phases;
mod plan;
mod pool;
mod quota;
pub mod record;
pub mod report;
mod session;
mod timer;
mod tls;
mod unacked;
mod user;
pub mod wait;

use std::time::Duration;

pub use engine::{Drain, Engine, Level};
pub use error::{EngineError, WorkerError};
pub use stampede_proto as proto;
pub use tls::TlsConfigError;

/// How one worker finds and introduces itself to its master.
#[derive(Clone)]
pub struct WorkerOptions {
    /// The master's gRPC address, e.g. `http://127.0.0.1:5557`.
    pub master: String,
    /// Shared token, sent as `authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Unique worker id, shown by the master and carried in every report.
    pub id: String,
    /// Host name, for the master's workers table.
    pub hostname: String,
    /// Kubernetes arch name of this host (`amd64`, `arm64`, ...).
    pub arch: String,
    /// Engine threads (one current-thread runtime each).
    pub threads: usize,
    /// The dead-man switch: with no word from the master for this long, all load stops (and
    /// the link is redialled). A lost connection stops the load at once.
    pub master_timeout: Duration,
    /// Redial a lost master (with backoff and jitter) instead of returning the error.
    pub reconnect: bool,
    /// First and longest delay between redials.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// TLS to the master; `None`: plain HTTP/2.
    pub tls: Option<ClientTls>,
}

/// How the worker speaks TLS to the master (PEM bytes, read by the caller).
#[derive(Clone)]
pub struct ClientTls {
    /// The CA that signed the master's certificate.
    pub ca: Vec<u8>,
    /// A client certificate and key, for a master that requires them.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the master's certificate against (default: the host in `master`).
    pub domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_certificate", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// The default `--master-timeout`.
pub const DEFAULT_MASTER_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for WorkerOptions {
    // The token must never reach a log line, even through a stray `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("master", &self.master)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("id", &self.id)
            .field("hostname", &self.hostname)
            .field("arch", &self.arch)
            .field("threads", &self.threads)
            .field("master_timeout", &self.master_timeout)
            .field("reconnect", &self.reconnect)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl WorkerOptions {
    /// Options with defaults derived from this host: id `hostname-pid-xxxx`, the host's arch and
    /// one engine thread per available core.
    pub fn new(master: impl Into<String>) -> Self {
        let hostname = hostname();
        // The random suffix keeps ids unique when several in-process workers share a pid.
        let id = format!(
            "{hostname}-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        );
        Self {
            master: master.into(),
            token: None,
            id,
            hostname,
            arch: kubernetes_arch(std::env::consts::ARCH).to_string(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            master_timeout: DEFAULT_MASTER_TIMEOUT,
            reconnect: true,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// Serves the master: connects, says hello, then runs whatever the master asks until it says
/// `Quit` (returns `Ok`). A lost master stops the load and is redialled (with `reconnect`);
/// a refusal retrying cannot fix (token, protocol version, duplicate id) is returned.
pub async fn run(opts: WorkerOptions) -> Result<(), WorkerError> {
    session::run(opts).await
}

/// Kubernetes (GOARCH-style) name for a Rust target arch, so the master can compare worker and
/// target arches with the labels nodes carry.
pub fn kubernetes_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The host name without a libc call: the kernel's value, else `$HOSTNAME`, else `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names_follow_kubernetes() {
        assert_eq!(kubernetes_arch("x86_64"), "amd64");
        assert_eq!(kubernetes_arch("aarch64"), "arm64");
        assert_eq!(kubernetes_arch("riscv64"), "riscv64");
    }

    #[test]
    fn default_options_are_filled_in() {
        let opts = WorkerOptions::new("http://127.0.0.1:5557");
        assert!(opts.threads >= 1);
        assert!(opts.id.starts_with(&opts.hostname));
        assert!(!opts.arch.is_empty());
    }
}
