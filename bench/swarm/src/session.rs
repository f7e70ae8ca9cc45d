//! One synthetic worker: the session protocol of docs/architecture.md, with canned reports.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use stampede_proto::coordinator_client::CoordinatorClient;
use stampede_proto::master_message::Kind as In;
use stampede_proto::worker_message::Kind as Out;
use stampede_proto::{
    Goodbye, Heartbeat, Hello, PROTOCOL_VERSION, Report, TOKEN_METADATA_KEY, WorkerMessage,
    WorkerState,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::Args;
use crate::payload::Payloads;
use crate::stats::Stats;

/// Users each synthetic worker claims to run.
const USERS: u32 = 100;

struct Run {
    id: String,
    started: Instant,
    targets: u32,
    seq: u64,
    last_end_ms: u64,
    /// When each unacknowledged report's interval ended, and the requests it held.
    pending: HashMap<u64, (Instant, u64)>,
    reports: tokio::time::Interval,
    stopped: bool,
}

pub async fn run(
    index: usize,
    args: &Args,
    payloads: &Payloads,
    stats: &Stats,
) -> anyhow::Result<()> {
    let worker_id = format!("swarm-{index:05}");
    let channel = Endpoint::from_shared(args.master.clone())?
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("{worker_id}: cannot connect to {}", args.master))?;
    let (tx, rx) = mpsc::channel::<WorkerMessage>(64);
    let send = |kind: Out| {
        let tx = tx.clone();
        async move {
            tx.send(WorkerMessage { kind: Some(kind) })
                .await
                .map_err(|_| anyhow::anyhow!("the stream to the master closed"))
        }
    };
    send(Out::Hello(Hello {
        worker_id: worker_id.clone(),
        hostname: "swarm".into(),
        arch: "amd64".into(),
        cores: 1,
        protocol_version: PROTOCOL_VERSION,
        version: "swarm".into(),
        instance: format!("swarm-{worker_id}"),
    }))
    .await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = &args.token {
        request
            .metadata_mut()
            .insert(TOKEN_METADATA_KEY, format!("Bearer {token}").parse()?);
    }
    let mut inbound = CoordinatorClient::new(channel)
        .max_decoding_message_size(16 << 20)
        .session(request)
        .await
        .with_context(|| format!("{worker_id}: session refused"))?
        .into_inner();
    stats.joined();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut run: Option<Run> = None;
    let mut last_beat: Option<Instant> = None;
    loop {
        tokio::select! {
            msg = inbound.message() => {
                let Some(msg) = msg? else { bail!("{worker_id}: the master closed the stream") };
                match msg.kind {
                    Some(In::Run(cfg)) => {
                        let every = Duration::from_millis(cfg.report_interval_ms.max(100));
                        let started = Instant::now();
                        let mut reports = tokio::time::interval_at(started + every, every);
                        reports.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        stats.running();
                        run = Some(Run {
                            id: cfg.run_id,
                            started,
                            targets: u32::try_from(cfg.targets.len()).unwrap_or(u32::MAX),
                            seq: 0,
                            last_end_ms: 0,
                            pending: HashMap::new(),
                            reports,
                            stopped: false,
                        });
                    }
                    Some(In::Ack(ack)) => {
                        if let Some(r) = run.as_mut()
                            && let Some((end, requests)) = r.pending.remove(&ack.seq)
                        {
                            stats.acked(end.elapsed(), requests);
                        }
                    }
                    Some(In::Stop(_)) => {
                        if let Some(r) = run.as_mut().filter(|r| !r.stopped) {
                            let report = next_report(r, &worker_id, payloads, index, true);
                            let requests = report.series.iter().map(|s| s.count).sum();
                            send(Out::Report(report)).await?;
                            stats.sent(requests);
                            send(Out::Goodbye(Goodbye {
                                run_id: r.id.clone(),
                                last_seq: r.seq,
                                reason: "stopped".into(),
                            }))
                            .await?;
                        }
                        // A stopped worker reports no more (its acks may still come).
                        if let Some(r) = run.as_mut() {
                            r.stopped = true;
                        }
                    }
                    Some(In::Quit(_)) => return Ok(()),
                    Some(In::Welcome(_) | In::Load(_) | In::Heartbeat(_)) | None => {}
                }
            }
            _ = heartbeat.tick() => {
                if let Some(at) = last_beat.replace(Instant::now()) {
                    stats.beat(at.elapsed());
                }
                send(Out::Heartbeat(Heartbeat {
                    state: if run.is_some() { WorkerState::Running } else { WorkerState::Idle } as i32,
                    users_running: if run.is_some() { USERS } else { 0 },
                    cpu_percent: 1.0,
                    sent_unix_ms: 0,
                    rate_running: 0.0,
                }))
                .await?;
            }
            () = tick(&mut run) => {
                if let Some(r) = run.as_mut() {
                    let report = next_report(r, &worker_id, payloads, index, false);
                    let requests = report.series.iter().map(|s| s.count).sum();
                    send(Out::Report(report)).await?;
                    stats.sent(requests);
                }
            }
        }
    }
}

async fn tick(run: &mut Option<Run>) {
    match run {
        Some(r) if !r.stopped => {
            r.reports.tick().await;
        }
        _ => std::future::pending().await,
    }
}

fn next_report(
    r: &mut Run,
    worker_id: &str,
    payloads: &Payloads,
    index: usize,
    last: bool,
) -> Report {
    r.seq += 1;
    let end_ms = u64::try_from(r.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let report = Report {
        run_id: r.id.clone(),
        worker_id: worker_id.to_owned(),
        seq: r.seq,
        start_ms: r.last_end_ms,
        end_ms,
        users: USERS,
        r#final: last,
        series: payloads.series(r.targets, index + r.seq as usize),
        dropped: 0,
        completed_stage: 0,
        send_lag: Vec::new(),
        ..Default::default()
    };
    r.last_end_ms = end_ms;
    let requests = report.series.iter().map(|s| s.count).sum();
    r.pending.insert(r.seq, (Instant::now(), requests));
    report
}
