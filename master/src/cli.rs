//! The command line (`run`, `check`) and the exit codes of SPEC.md: 0 passed, 1 a threshold
//! failed, 2 bad scenario, flags or input, 3 the run could not be carried out.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Auth};
use crate::controller::{Controller, RunSettings, Verdict};
use crate::headless::Headless;
use crate::metrics::{self, Metrics};
use crate::scenario::{self, Scenario};
use crate::server::{self, Service, ServiceConfig};
use crate::summary::Summary;
use crate::tls::{ServerTls, TlsArgs};
use crate::tui::Tui;
use crate::view::{Tee, View};

pub const EXIT_OK: u8 = 0;
pub const EXIT_THRESHOLDS: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_NOT_CARRIED_OUT: u8 = 3;

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
    Demo(crate::demo::DemoArgs),
    /// Write the HTML report (and optionally Locust CSV) of a finished run from its summary.
    Report(ReportArgs),
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
    fn overrides(&self) -> Vec<String> {
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

    fn local_workers(&self) -> usize {
        self.local_workers
            .unwrap_or(if self.expect_workers == 0 { 1 } else { 0 })
    }

    fn bind_addr(&self) -> SocketAddr {
        self.bind.unwrap_or_else(|| {
            if self.expect_workers == 0 {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                SocketAddr::from(([0, 0, 0, 0], stampede_proto::DEFAULT_PORT))
            }
        })
    }
}

/// Parses the command line, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_NOT_CARRIED_OUT);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    // Worker threads and lingering connections must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::tui::terminal::LogWriter)
        .try_init();
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Check(args) => check(&args),
        Command::Run(args) => report_error(run(*args).await),
        Command::Demo(args) => report_error(crate::demo::run(args).await),
        Command::Report(args) => report(&args),
    }
}

fn report_error(result: anyhow::Result<u8>) -> u8 {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_NOT_CARRIED_OUT
    })
}

pub(crate) fn load_or_report(path: &std::path::Path, overrides: &[String]) -> Result<Scenario, u8> {
    let s = scenario::load(path, overrides).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_BAD_INPUT
    })?;
    for warning in scenario::warnings(&s) {
        eprintln!("WARNING: {warning}");
    }
    Ok(s)
}

fn report(args: &ReportArgs) -> u8 {
    if args.output.is_none() && args.csv.is_none() {
        eprintln!("error: nothing to write: give -o REPORT.html and/or --csv PREFIX");
        return EXIT_BAD_INPUT;
    }
    let summary = match crate::report::read_summary(&args.summary) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let reporters = crate::report::reporters(args.output.as_deref(), args.csv.as_deref());
    if write_reports(&reporters, &summary) {
        EXIT_OK
    } else {
        EXIT_NOT_CARRIED_OUT
    }
}

/// Runs every reporter; false when one failed (each failure is said).
fn write_reports(reporters: &[Box<dyn crate::report::Reporter>], summary: &Summary) -> bool {
    let mut ok = true;
    for r in reporters {
        match r.write(summary) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", r.describe());
                ok = false;
            }
        }
    }
    ok
}

fn check(args: &CheckArgs) -> u8 {
    match load_or_report(&args.scenario, &args.set) {
        Ok(s) => {
            println!("{}: ok", args.scenario.display());
            println!("{}", crate::check::describe(&s));
            EXIT_OK
        }
        Err(code) => code,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let scenario = match load_or_report(&args.scenario, &args.overrides()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let auth = match auth::resolve(args.token.as_deref(), args.insecure, args.expect_workers) {
        Ok(auth) => auth,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let tls = match args.tls.load() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    if tls.is_some() && args.local_workers() > 0 {
        eprintln!(
            "error: --tls-cert: local workers join over loopback without TLS; run remote workers \
             (--expect-workers) with --tls-ca, or drop --tls-cert"
        );
        return Ok(EXIT_BAD_INPUT);
    }
    let options = ExecuteOptions {
        tls,
        headless: args.headless,
        summary: args.summary.clone(),
        remote_workers: args.expect_workers,
        local_workers: args.local_workers(),
        worker_threads: args.worker_threads.map(usize::from),
        bind: args.bind_addr(),
        auth,
        wait_workers: args.wait_workers,
        heartbeat_interval: args.heartbeat_interval,
        liveness_timeout: args.liveness_timeout,
        status_every: args.status_every,
        metrics_bind: args.metrics_bind,
        print_summary: args.print_summary,
        linger: args.linger,
        outputs: args.outputs.clone(),
    };
    execute(scenario, options).await
}

/// How to carry out a loaded scenario.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    pub headless: bool,
    pub summary: Option<PathBuf>,
    pub remote_workers: usize,
    pub local_workers: usize,
    /// Engine threads per local worker; `None`: the cores divided among them.
    pub worker_threads: Option<usize>,
    pub bind: SocketAddr,
    /// How workers are admitted (see [`auth::resolve`]).
    pub auth: Auth,
    pub wait_workers: Duration,
    pub heartbeat_interval: Duration,
    pub liveness_timeout: Duration,
    pub status_every: Duration,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics_bind: Option<SocketAddr>,
    /// Print the summary to standard output at the end.
    pub print_summary: bool,
    /// How long to stay up after the run.
    pub linger: Linger,
    /// The HTML report and CSV to write from the summary.
    pub outputs: OutputArgs,
    /// TLS on the gRPC listener.
    pub tls: Option<ServerTls>,
}

/// The terminal UI when stdout is a terminal and `--headless` is not given, else status lines.
fn choose_view(headless: bool, status_every: Duration, stop: &CancellationToken) -> Box<dyn View> {
    use std::io::IsTerminal;
    if !headless && std::io::stdout().is_terminal() {
        match Tui::start(stop.clone(), status_every) {
            Ok(tui) => return Box::new(tui),
            Err(e) => tracing::warn!("cannot start the terminal UI ({e}); printing status lines"),
        }
    }
    Box::new(Headless::new(std::io::stdout(), status_every))
}

/// Serves gRPC, starts the local workers, runs the controller, reports the verdict.
pub async fn execute(scenario: Scenario, opts: ExecuteOptions) -> anyhow::Result<u8> {
    let summary_path = opts
        .summary
        .clone()
        .or_else(|| scenario.output.summary.clone())
        .unwrap_or_else(|| PathBuf::from("summary.json"));
    let expect = opts.remote_workers + opts.local_workers;
    if expect == 0 {
        eprintln!("error: no workers: give --local-workers N or --expect-workers N");
        return Ok(EXIT_BAD_INPUT);
    }
    let listener = server::bind(opts.bind)
        .await
        .with_context(|| format!("cannot listen on {}", opts.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!("master listening on {addr}");
    if opts.auth == Auth::Insecure {
        let warning = auth::insecure_warning(&addr.to_string());
        tracing::warn!("{warning}");
        eprintln!("WARNING: {warning}");
    }

    let (events_tx, events_rx) = mpsc::channel(4096);
    let service = Service::new(
        ServiceConfig {
            token: opts.auth.token().map(str::to_owned),
            heartbeat_interval: opts.heartbeat_interval,
        },
        events_tx,
    );
    let server_stop = CancellationToken::new();
    let reporters = crate::report::reporters(
        opts.outputs
            .report
            .as_deref()
            .or(scenario.output.report.as_deref()),
        opts.outputs
            .csv
            .as_deref()
            .or(scenario.output.csv.as_deref()),
    );
    if let Some(tls) = &opts.tls {
        let mode = if tls.requires_client_certificates() {
            "TLS, client certificates required"
        } else {
            "TLS"
        };
        tracing::info!("gRPC over {mode}");
    }
    let tls = opts.tls.clone();
    let server_stop_signal = server_stop.clone().cancelled_owned();
    let server_task = tokio::spawn(async move {
        server::serve(listener, service, tls.as_ref(), server_stop_signal).await
    });
    let workers = crate::local::spawn(
        opts.local_workers,
        opts.worker_threads,
        addr,
        opts.auth.token().map(str::to_owned),
    );

    let stop = CancellationToken::new();
    crate::shutdown::install(stop.clone());
    let metrics_stop = CancellationToken::new();
    let mut views: Vec<Box<dyn View>> = vec![choose_view(opts.headless, opts.status_every, &stop)];
    if let Some(bind) = opts.metrics_bind {
        let metrics = Metrics::new(&scenario.name);
        let listener = metrics::bind(bind)
            .await
            .with_context(|| format!("cannot serve metrics on {bind}"))?;
        tracing::info!("metrics listening on {}", listener.local_addr()?);
        tokio::spawn(metrics::serve(
            listener,
            metrics.clone(),
            metrics_stop.clone(),
        ));
        views.push(Box::new(metrics));
    }
    let view = Box::new(Tee(views));

    let settings = RunSettings {
        expect_workers: expect,
        wait_workers: opts.wait_workers,
        summary_path: summary_path.clone(),
        heartbeat_interval: opts.heartbeat_interval,
        liveness_timeout: opts.liveness_timeout,
    };
    let controller = Controller::new(scenario, settings, events_rx, view, stop.clone());
    let finished = controller.run().await;

    // Let local workers see their Quit and close their streams before the server goes.
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    server_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    let reports_ok = finished
        .summary
        .as_ref()
        .is_none_or(|summary| write_reports(&reporters, summary));

    if opts.print_summary
        && let Some(summary) = &finished.summary
    {
        print_summary(summary);
    }
    // A run that never started has nothing to show: exit at once, so that a pod restarts.
    let ran = finished.summary.is_some();
    let code = match finished.verdict {
        Verdict::Passed if !reports_ok => EXIT_NOT_CARRIED_OUT,
        Verdict::Passed => {
            eprintln!("summary written to {}", summary_path.display());
            EXIT_OK
        }
        Verdict::ThresholdsFailed(failed) => {
            eprintln!(
                "summary written to {}; thresholds failed: {}",
                summary_path.display(),
                failed.join("; ")
            );
            EXIT_THRESHOLDS
        }
        Verdict::NotCarriedOut(why) => {
            eprintln!("error: {why}");
            EXIT_NOT_CARRIED_OUT
        }
    };
    if ran {
        linger(opts.linger, &stop).await;
    }
    metrics_stop.cancel();
    Ok(code)
}

/// First and last line around the summary that `--print-summary` writes, so that it can be cut
/// out of a pod's log.
pub const SUMMARY_BEGIN: &str = "-----BEGIN STAMPEDE SUMMARY-----";
pub const SUMMARY_END: &str = "-----END STAMPEDE SUMMARY-----";

/// The summary on standard output, as written to its file.
fn print_summary(summary: &crate::summary::Summary) {
    match serde_json::to_string_pretty(summary) {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{SUMMARY_BEGIN}\n{json}\n{SUMMARY_END}");
            let _ = out.flush();
        }
        Err(e) => eprintln!("error: cannot print the summary: {e}"),
    }
}

/// Stays up after the run for `linger`, unless a signal came (or comes) first.
async fn linger(linger: Linger, stop: &CancellationToken) {
    if stop.is_cancelled() {
        return;
    }
    match linger {
        Linger::For(d) if d.is_zero() => {}
        Linger::For(d) => {
            tracing::info!(
                "run over; staying up for {} (--linger)",
                humantime::format_duration(d)
            );
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = stop.cancelled() => {}
            }
        }
        Linger::Forever => {
            tracing::info!("run over; staying up until stopped (--linger forever)");
            stop.cancelled().await;
        }
    }
}
