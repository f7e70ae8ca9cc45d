//! Carrying out a loaded scenario: check the outputs, serve gRPC, start the local workers and
//! the views, run the controller, then write the summary and the reports and say how it went.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cli::{Linger, OutputArgs};
use super::exit::Failure;
use super::outputs::Outputs;
use crate::journal::{self, Journal};
use crate::outcome::Summary;
use crate::run::{Controller, Finished, RunSettings, newest_unfinished};
use crate::scenario::Scenario;
use crate::view::{Headless, Metrics, Tee, Tui, View, metrics};
use crate::wire::{self, Auth, ServerTls, Service, ServiceConfig};

/// Events (decoded reports mostly) the connections may queue for the run. A decoded report is
/// some hundred KB, so the bound is also the master's memory for a burst (every worker's final
/// report at once); connections that find it full wait, and are not taken for silent meanwhile.
const EVENTS: usize = 512;

/// First and last line around the summary that `--print-summary` writes, so that it can be cut
/// out of a pod's log.
pub const SUMMARY_BEGIN: &str = "-----BEGIN STAMPEDE SUMMARY-----";
pub const SUMMARY_END: &str = "-----END STAMPEDE SUMMARY-----";

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
    /// How workers are admitted (see [`wire::resolve_auth`]).
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
    /// Keep a journal of the run (in `state_dir`, default the summary's folder).
    pub journal: bool,
    pub state_dir: Option<PathBuf>,
    /// A journal to go on with (`auto`: the newest unfinished one in the state folder).
    pub resume: Option<PathBuf>,
}

/// The terminal UI when stdout is a terminal and `--headless` is not given, else status lines.
fn choose_view(
    headless: bool,
    status_every: Duration,
    stop: &CancellationToken,
    quit: &CancellationToken,
) -> Box<dyn View> {
    use std::io::IsTerminal;
    if !headless && std::io::stdout().is_terminal() {
        match Tui::start(stop.clone(), quit.clone(), status_every) {
            Ok(tui) => return Box::new(tui),
            Err(e) => tracing::warn!("cannot start the terminal UI ({e}); printing status lines"),
        }
    }
    Box::new(Headless::new(std::io::stdout(), status_every))
}

/// Serves gRPC, starts the local workers, runs the controller, writes the outputs.
pub async fn execute(scenario: Scenario, opts: ExecuteOptions) -> Result<(), Failure> {
    let summary_path = opts
        .summary
        .clone()
        .or_else(|| scenario.file.output.summary.clone())
        .unwrap_or_else(|| PathBuf::from("summary.json"));
    let expect = opts.remote_workers + opts.local_workers;
    if expect == 0 {
        return Err(Failure::bad_input(anyhow!(
            "no workers: give --local-workers N or --expect-workers N"
        )));
    }
    // Before anything is sent: a run must never be lost to an output that cannot be written.
    let html = (opts.outputs.report.as_deref()).or(scenario.file.output.report.as_deref());
    let csv = (opts.outputs.csv.as_deref()).or(scenario.file.output.csv.as_deref());
    let state_dir = (opts.journal || opts.resume.is_some()).then(|| {
        opts.state_dir.clone().unwrap_or_else(|| {
            summary_path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_owned)
        })
    });
    let junit = (opts.outputs.junit.as_deref()).or(scenario.file.output.junit.as_deref());
    let outputs = Outputs::prepare(summary_path.clone(), html, csv, state_dir.as_deref())?
        .with_junit(junit)?;
    let resumed = match (&opts.resume, &state_dir) {
        (Some(which), Some(dir)) => resumed_journal(which, dir)?,
        _ => None,
    };

    let listener = wire::bind(opts.bind)
        .await
        .with_context(|| format!("cannot listen on {}", opts.bind))
        .map_err(Failure::not_carried_out)?;
    let addr = listener.local_addr().map_err(Failure::not_carried_out)?;
    tracing::info!("master listening on {addr}");
    if opts.auth == Auth::Insecure {
        let warning = wire::insecure_warning(&addr.to_string());
        tracing::warn!("{warning}");
        eprintln!("WARNING: {warning}");
    }
    let (events_tx, events_rx) = mpsc::channel(EVENTS);
    let service = Service::new(
        ServiceConfig {
            token: opts.auth.token().map(str::to_owned),
            heartbeat_interval: opts.heartbeat_interval,
        },
        events_tx,
    );
    if let Some(tls) = &opts.tls {
        let mode = if tls.requires_client_certificates() {
            "TLS, client certificates required"
        } else {
            "TLS"
        };
        tracing::info!("gRPC over {mode}");
    }
    let server_stop = CancellationToken::new();
    let tls = opts.tls.clone();
    let server_stop_signal = server_stop.clone().cancelled_owned();
    let server_task = tokio::spawn(async move {
        wire::serve(listener, service, tls.as_ref(), server_stop_signal).await
    });
    let workers = super::local::spawn(
        opts.local_workers,
        opts.worker_threads,
        addr,
        opts.auth.token().map(str::to_owned),
    );

    let stop = CancellationToken::new();
    let quit = CancellationToken::new();
    super::shutdown::install(stop.clone(), quit.clone());
    let metrics_stop = CancellationToken::new();
    let mut views: Vec<Box<dyn View>> =
        vec![choose_view(opts.headless, opts.status_every, &stop, &quit)];
    if let Some(bind) = opts.metrics_bind {
        let metrics = Metrics::new(scenario.name());
        let listener = metrics::bind(bind)
            .await
            .with_context(|| format!("cannot serve metrics on {bind}"))
            .map_err(Failure::not_carried_out)?;
        let local = listener.local_addr().map_err(Failure::not_carried_out)?;
        tracing::info!("metrics listening on {local}");
        tokio::spawn(metrics::serve(
            listener,
            metrics.clone(),
            metrics_stop.clone(),
        ));
        views.push(Box::new(metrics));
    }

    let settings = RunSettings {
        expect_workers: expect,
        wait_workers: opts.wait_workers,
        summary_path: summary_path.clone(),
        liveness_timeout: opts.liveness_timeout,
        state_dir,
    };
    let view = Box::new(Tee(views));
    let controller = match resumed {
        Some(journal) => {
            Controller::resume(scenario, settings, events_rx, view, stop.clone(), journal)
                .map_err(Failure::bad_input)?
        }
        None => Controller::new(scenario, settings, events_rx, view, stop.clone()),
    };
    let finished = controller.run().await;
    // The summary first, before anything else can go wrong.
    let written = match &finished {
        Finished::Ran { summary, .. } => Some(outputs.write(summary)),
        Finished::NotCarriedOut(_) => None,
    };

    // Let local workers see their Quit and close their streams before the server goes.
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    server_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;

    let result = match (finished, written) {
        // A run that never started has nothing to show: exit at once, so that a pod restarts.
        (Finished::NotCarriedOut(why), _) => Err(Failure::not_carried_out(anyhow!(why))),
        (Finished::Ran { summary, failed }, written) => {
            let written = written.unwrap_or(Ok(()));
            if opts.print_summary {
                print_summary(&summary);
            }
            let result = match (written, failed.is_empty()) {
                (Err(e), _) => Err(e),
                (Ok(()), true) => {
                    eprintln!("summary written to {}", summary_path.display());
                    Ok(())
                }
                (Ok(()), false) => Err(Failure::Thresholds {
                    summary: summary_path,
                    failed,
                }),
            };
            linger(opts.linger, &stop).await;
            result
        }
    };
    metrics_stop.cancel();
    result
}

/// The journal `which` names (`auto`: the newest unfinished one in `dir`, or none).
fn resumed_journal(which: &Path, dir: &Path) -> Result<Option<Journal>, Failure> {
    if which == Path::new("auto") {
        let found = newest_unfinished(dir);
        match &found {
            Some(j) => tracing::info!("resuming the run of {}", j.path.display()),
            None => tracing::info!(
                "--resume auto: no unfinished journal in {}; a new run starts",
                dir.display()
            ),
        }
        return Ok(found);
    }
    journal::read(which).map(Some).map_err(Failure::bad_input)
}

/// The summary on standard output, as written to its file.
fn print_summary(summary: &Summary) {
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
