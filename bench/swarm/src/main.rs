//! `stampede-swarm`: a benchmark tool that opens many worker sessions to one master from one
//! process (bench/fanin.sh). Each session speaks the protocol as a worker does: Hello,
//! heartbeats, and once per interval a Report with one series per (target, arch, outcome class),
//! carrying realistic latency histograms. It measures what the master's fan-in costs the
//! workers: the lag from each interval's end to the master's Ack, which the master sends once
//! the report is counted in its aggregate, and how many reports wait unacknowledged.
#![forbid(unsafe_code)]

mod payload;
mod session;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::payload::Payloads;
use crate::stats::Stats;

#[derive(Debug, Parser)]
#[command(about = "Many synthetic stampede workers in one process, for the master fan-in bench")]
pub struct Args {
    /// The master's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:5557")]
    pub master: String,
    /// Worker sessions to open.
    #[arg(long, default_value_t = 1000)]
    pub workers: usize,
    /// Shared token the master expects.
    #[arg(long)]
    pub token: Option<String>,
    /// Arch labels the synthetic responses carry (each target's series come from all of them).
    #[arg(long, value_delimiter = ',', default_value = "arm64,amd64")]
    pub arches: Vec<String>,
    /// Requests per worker and interval the histograms hold (all targets and arches together).
    #[arg(long, default_value_t = 3000)]
    pub requests: u64,
    /// Delay between opening two sessions.
    #[arg(long, default_value = "2ms", value_parser = humantime_ms)]
    pub connect_every: Duration,
    /// How often to print a progress line.
    #[arg(long, default_value = "10s", value_parser = humantime_ms)]
    pub print_every: Duration,
    /// Send the histograms as V2 + deflate (what workers sent before they switched to plain V2),
    /// to measure what inflating costs the master.
    #[arg(long)]
    pub deflate: bool,
    /// Give up after this long whatever the master does.
    #[arg(long, default_value = "10m", value_parser = humantime_ms)]
    pub max_time: Duration,
}

fn humantime_ms(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("bad duration `{s}`"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration `{s}` (use ms, s or m)")),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let payloads = Arc::new(Payloads::generate(
        &args.arches,
        args.requests,
        args.deflate,
    ));
    let stats = Arc::new(Stats::default());
    let args = Arc::new(args);
    eprintln!(
        "swarm: {} sessions to {}, {} series per target and report, {} histogram bytes per target ({})",
        args.workers,
        args.master,
        payloads.per_target(),
        payloads.bytes_per_target(),
        if args.deflate {
            "V2 + deflate"
        } else {
            "plain V2"
        }
    );
    let mut sessions = tokio::task::JoinSet::new();
    for i in 0..args.workers {
        let (args2, payloads, stats) =
            (Arc::clone(&args), Arc::clone(&payloads), Arc::clone(&stats));
        sessions.spawn(async move {
            if let Err(e) = session::run(i, &args2, &payloads, &stats).await {
                stats.failed(&format!("{e:#}"));
            }
        });
        tokio::time::sleep(args.connect_every).await;
    }
    let printer = tokio::spawn(stats::print_every(Arc::clone(&stats), args.print_every));
    let all = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(args.max_time, all).await.is_err() {
        eprintln!("swarm: max time reached");
    }
    printer.abort();
    println!("{}", stats.final_line());
    Ok(())
}
