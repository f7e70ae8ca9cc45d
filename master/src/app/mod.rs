//! The binary's edge: the command line (`cli`), carrying out a run (`execute`, with its
//! `outputs`), comparing two summaries (`compare`), the demo (`demo`), in-process workers
//! (`local`), signals (`shutdown`), logs (`logging`), and the one error type that becomes the
//! exit code (`exit`).
//!
//! May import: everything below it; nothing imports it.

mod cli;
mod compare;
mod demo;
mod execute;
mod exit;
mod local;
mod logging;
mod outputs;
mod shutdown;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Parser;

pub use execute::{SUMMARY_BEGIN, SUMMARY_END};

use cli::{CheckArgs, Cli, Command, RecoverArgs, ReportArgs, RunArgs};
use execute::{ExecuteOptions, execute};
use exit::Failure;

use crate::report;
use crate::scenario::{self, Scenario};
use crate::wire;

/// Parses the command line, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return exit::exit_code(Err(Failure::not_carried_out(anyhow!(
                "cannot start the async runtime: {e}"
            ))));
        }
    };
    let result = runtime.block_on(command(cli.command));
    // Worker threads and lingering connections must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    exit::exit_code(result)
}

async fn command(command: Command) -> Result<(), Failure> {
    match command {
        Command::Check(args) => check(&args),
        Command::Run(args) => run(*args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Report(args) => report(&args),
        Command::Recover(args) => recover(&args),
        Command::Compare(args) => compare::compare(&args),
    }
}

/// The scenario at `path` with its overrides, or exit 2 saying what is wrong where.
fn load(path: &std::path::Path, overrides: &[String]) -> Result<Scenario, Failure> {
    let s = scenario::load(path, overrides).map_err(Failure::bad_input)?;
    for warning in scenario::warnings(&s.file) {
        eprintln!("WARNING: {warning}");
    }
    Ok(s)
}

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let s = load(&args.scenario, &args.set)?;
    println!("{}: ok", args.scenario.display());
    println!("{}", scenario::describe(&s));
    Ok(())
}

fn report(args: &ReportArgs) -> Result<(), Failure> {
    if args.output.is_none() && args.csv.is_none() {
        return Err(Failure::bad_input(anyhow!(
            "nothing to write: give -o REPORT.html and/or --csv PREFIX"
        )));
    }
    let summary = report::read_summary(&args.summary).map_err(Failure::bad_input)?;
    let reporters = report::reporters(args.output.as_deref(), args.csv.as_deref());
    let failed = outputs::write_reports(&reporters, &summary);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::not_carried_out(anyhow!(
            "{} report(s) could not be written",
            failed.len()
        )))
    }
}

/// The summary of a run whose master died, from its journal, and the reports asked for.
fn recover(args: &RecoverArgs) -> Result<(), Failure> {
    let journal = crate::journal::read(&args.journal).map_err(Failure::bad_input)?;
    let summary_path = args.output.clone().unwrap_or_else(|| {
        args.journal
            .with_file_name(format!("{}.summary.json", journal.start.run_id))
    });
    let outputs = outputs::Outputs::prepare(
        summary_path.clone(),
        args.outputs.report.as_deref(),
        args.outputs.csv.as_deref(),
        None,
    )?
    .with_junit(args.outputs.junit.as_deref())?;
    let summary = crate::run::recover(journal).map_err(|e| Failure::bad_input(anyhow!(e)))?;
    outputs.write(&summary)?;
    eprintln!(
        "summary recovered to {} ({} requests, up to {:.1} s into the run)",
        summary_path.display(),
        summary.totals.requests,
        summary
            .recovered
            .as_ref()
            .map_or(0.0, |r| r.journal_until_s)
    );
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), Failure> {
    let scenario = load(&args.scenario, &args.overrides())?;
    let auth = wire::resolve_auth(args.token.as_deref(), args.insecure, args.expect_workers)
        .map_err(Failure::bad_input)?;
    let tls = args.tls.load().map_err(Failure::bad_input)?;
    if tls.is_some() && args.local_workers() > 0 {
        return Err(Failure::bad_input(anyhow!(
            "--tls-cert: local workers join over loopback without TLS; run remote workers \
             (--expect-workers) with --tls-ca, or drop --tls-cert"
        )));
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
        journal: !args.no_journal,
        state_dir: args.state_dir.clone(),
        resume: args.resume.clone(),
    };
    execute(scenario, options).await
}
