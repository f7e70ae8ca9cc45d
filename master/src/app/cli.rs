//! The command line as clap types: `run`, `check`, `report`, `demo`, `recover`, `compare`,
//! and the flags `run` and `demo` share. Every flag also reads the environment (`STAMPEDE_*`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::wire::{ServerTls, TlsFileError};

#[derive(Debug, Parser)]
#[command(
    name = "stampede-master",
    version,
    about = "Distributed HTTP load generator: the master"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: with in-process workers, or remote ones (--expect-workers).
    Run(Box<RunArgs>),
    /// Validate a scenario and print the resolved plan; sends no request.
    Check(CheckArgs),
    /// Local demo: two workload servers (arm64, amd64 labels), a local worker, the live view.
    Demo(DemoArgs),
    /// Write the HTML report (and optionally Locust CSV) of a finished run from its summary.
    Report(ReportArgs),
    /// Write the summary (and reports) of a run whose master died, from its journal.
    Recover(RecoverArgs),
    /// Compare two runs' summaries: every figure's change with its 95% interval.
    Compare(CompareArgs),
}

/// `compare`'s arguments.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The base run's JSON summary.
    pub base: PathBuf,
    /// The candidate run's JSON summary.
    pub candidate: PathBuf,
    /// Exit 1 when a significant change passes this rule: the threshold grammar with a change
    /// in percent, e.g. "p99 > +5%", "arch:arm64/rps < -10%", "target:arm/5xx_ratio > +0.5%"
    /// (points for ratios). Repeatable.
    #[arg(long = "fail-on", value_name = "RULE")]
    pub fail_on: Vec<String>,
    /// Which base arch or target is which in the candidate, e.g. arm64=graviton4. Repeatable.
    #[arg(long = "map", value_name = "BASE=CANDIDATE")]
    pub map: Vec<String>,
    /// A Markdown table (for a pull request comment) instead of the plain one.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// The comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `demo`'s flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Plain status lines instead of the terminal UI.
    #[arg(long)]
    pub headless: bool,
    /// How long the demo runs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub run_time: Duration,
    /// Total users (split over the two targets).
    #[arg(long, value_name = "N")]
    pub users: Option<u32>,
    /// Where to write the JSON summary.
    #[arg(long, default_value = "demo-summary.json", value_name = "PATH")]
    pub summary: PathBuf,
    /// Another scenario to run against the two demo servers (its first two targets are pointed
    /// at them).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Override any scenario key, e.g. --set load.users=40.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// How often the headless view prints.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub status_every: Duration,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The run's journal (STATE_DIR/RUN_ID.journal).
    pub journal: PathBuf,
    /// Where to write the JSON summary (default: beside the journal, RUN_ID.summary.json).
    #[arg(short = 'o', long = "output", value_name = "SUMMARY.json")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The JSON summary of a run.
    pub summary: PathBuf,
    /// Where to write the HTML report.
    #[arg(short = 'o', long = "output", value_name = "REPORT.html")]
    pub output: Option<PathBuf>,
    /// Also write Locust-format CSV (PREFIX_stats.csv, ...) and HdrHistogram interval logs
    /// (PREFIX_ARCH.hlog).
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
}

/// Outputs beside the JSON summary, shared by `run` and `demo`.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Write the HTML report here (default: the scenario's output.report).
    #[arg(long, env = "STAMPEDE_REPORT", value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Write Locust-format CSV (PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv)
    /// and HdrHistogram interval logs (PREFIX_ARCH.hlog) (default: the scenario's output.csv).
    #[arg(long, env = "STAMPEDE_CSV", value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write the thresholds as JUnit XML here, one test case each with its measured value, for
    /// CI (default: the scenario's output.junit).
    #[arg(long, env = "STAMPEDE_JUNIT", value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Plain status lines instead of the terminal UI.
    #[arg(long, env = "STAMPEDE_HEADLESS")]
    pub headless: bool,
    /// Where to write the JSON summary (default: the scenario's output.summary, else summary.json).
    #[arg(long, env = "STAMPEDE_SUMMARY", value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// Remote workers to wait for before starting (0: run local workers only).
    #[arg(
        long,
        env = "STAMPEDE_EXPECT_WORKERS",
        default_value_t = 0,
        value_name = "N"
    )]
    pub expect_workers: usize,
    /// In-process workers (default 1 when no remote workers are expected, else 0).
    #[arg(long, env = "STAMPEDE_LOCAL_WORKERS", value_name = "N")]
    pub local_workers: Option<usize>,
    /// Engine threads of each local worker (default: the cores divided among the local workers).
    /// One thread pins a local worker to one core, e.g. for a per-CPU efficiency benchmark.
    #[arg(long, env = "STAMPEDE_WORKER_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
    /// gRPC listen address (default 0.0.0.0:5557; 127.0.0.1 on a free port when only local
    /// workers run).
    #[arg(long, env = "STAMPEDE_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Override any scenario key by its dotted path, e.g. --set load.users=200.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Shortcut for --set load.users=N.
    #[arg(long, env = "STAMPEDE_USERS", value_name = "N")]
    pub users: Option<u32>,
    /// Shortcut for --set load.spawn_rate=R.
    #[arg(long, env = "STAMPEDE_SPAWN_RATE", value_name = "R")]
    pub spawn_rate: Option<f64>,
    /// Shortcut for --set run_time=DUR (e.g. 90s, 10m).
    #[arg(long, env = "STAMPEDE_RUN_TIME", value_name = "DUR")]
    pub run_time: Option<String>,
    /// Search each arch's capacity (the scenario's [capacity], or its defaults) instead of
    /// following the load plan; shortcut for --set capacity.enabled=true.
    #[arg(long, env = "STAMPEDE_CAPACITY")]
    pub capacity: bool,
    #[command(flatten)]
    pub outputs: OutputArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Shared token workers must present (required with --expect-workers; runs with local
    /// workers only make one up).
    #[arg(long, env = "STAMPEDE_TOKEN", hide_env_values = true, value_name = "T")]
    pub token: Option<String>,
    /// Admit workers without a token (loudly warned about): anyone who reaches the port joins.
    #[arg(long, env = "STAMPEDE_INSECURE", conflicts_with = "token")]
    pub insecure: bool,
    /// How long to wait for the expected workers.
    #[arg(long, env = "STAMPEDE_WAIT_WORKERS", default_value = "2m", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub wait_workers: Duration,
    /// How often workers send heartbeats.
    #[arg(long, env = "STAMPEDE_HEARTBEAT", default_value = "1s", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub heartbeat_interval: Duration,
    /// A worker silent for longer is declared missing and its users go to the others.
    #[arg(long, env = "STAMPEDE_LIVENESS_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub liveness_timeout: Duration,
    /// How often the headless view prints a status block.
    #[arg(long, env = "STAMPEDE_STATUS_EVERY", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DUR")]
    pub status_every: Duration,
    /// Serve Prometheus metrics on GET http://ADDR/metrics (off unless given).
    #[arg(long, env = "STAMPEDE_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// Also print the JSON summary to standard output at the end, between
    /// `-----BEGIN STAMPEDE SUMMARY-----` and `-----END STAMPEDE SUMMARY-----` lines.
    #[arg(long, env = "STAMPEDE_PRINT_SUMMARY")]
    pub print_summary: bool,
    /// After the run, stay up this long (or `forever`) before exiting, still serving /metrics
    /// for a last scrape; a signal ends the wait.
    #[arg(long, env = "STAMPEDE_LINGER", default_value = "0s", value_parser = parse_linger, value_name = "DUR")]
    pub linger: Linger,
    /// Where the run's journal goes, `RUN_ID.journal` (default: the summary's folder).
    #[arg(long, env = "STAMPEDE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep no journal (a crash of the master then loses the run).
    #[arg(long, env = "STAMPEDE_NO_JOURNAL", conflicts_with = "resume")]
    pub no_journal: bool,
    /// Go on with the run a journal recorded (its master died): a path, or `auto` for the
    /// newest unfinished journal in the state folder (a fresh run when there is none).
    #[arg(long, env = "STAMPEDE_RESUME", value_name = "JOURNAL|auto")]
    pub resume: Option<PathBuf>,
}

/// How long the master stays up once the run is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    For(Duration),
    /// Until a signal: a Kubernetes Deployment must not restart a finished run.
    Forever,
}

fn parse_linger(value: &str) -> Result<Linger, String> {
    if value == "forever" {
        return Ok(Linger::Forever);
    }
    humantime::parse_duration(value)
        .map(Linger::For)
        .map_err(|e| format!("{e}: expected a duration such as 30s or 10m, or `forever`"))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Override any scenario key by its dotted path.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl RunArgs {
    /// `--set` values, then the shortcut flags, in the order they apply.
    pub fn overrides(&self) -> Vec<String> {
        let mut out = self.set.clone();
        if let Some(u) = self.users {
            out.push(format!("load.users={u}"));
        }
        if let Some(r) = self.spawn_rate {
            out.push(format!("load.spawn_rate={r}"));
        }
        if let Some(t) = &self.run_time {
            out.push(format!("run_time={t}"));
        }
        if self.capacity {
            out.push("capacity.enabled=true".to_owned());
        }
        out
    }

    pub fn local_workers(&self) -> usize {
        self.local_workers
            .unwrap_or(if self.expect_workers == 0 { 1 } else { 0 })
    }

    pub fn bind_addr(&self) -> SocketAddr {
        self.bind.unwrap_or_else(|| {
            if self.expect_workers == 0 {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                SocketAddr::from(([0, 0, 0, 0], stampede_proto::DEFAULT_PORT))
            }
        })
    }
}

/// TLS on the gRPC listener.
#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// Serve gRPC over TLS with this certificate (PEM, the chain up to its CA).
    #[arg(
        long,
        env = "STAMPEDE_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "STAMPEDE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(
        long,
        env = "STAMPEDE_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Reads the files named; `None` without `--tls-cert`.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsFileError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        ServerTls::read(cert, key, self.tls_client_ca.as_deref()).map(Some)
    }
}
