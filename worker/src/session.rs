//! The session with the master (docs/architecture.md, "The session protocol"): dial, Hello,
//! Welcome, then serve RunConfig / SetLoad / Stop / Quit / Ack while sending heartbeats and one
//! report per interval. Outgoing messages go through an mpsc channel that feeds the request
//! stream, so every sender (timers, handlers) shares one ordered path.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stampede_proto::coordinator_client::CoordinatorClient;
use stampede_proto::master_message::Kind as In;
use stampede_proto::worker_message::Kind as Out;
use stampede_proto::{
    Ack, Goodbye, Heartbeat, Hello, MasterMessage, PROTOCOL_VERSION, Report, RunConfig, SetLoad,
    Stop, TOKEN_METADATA_KEY, Welcome, WorkerMessage, WorkerState,
};
use tokio::sync::mpsc;
use tokio::time::{self, Instant, Interval, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};
use tracing::{debug, error, info, warn};

use crate::cpu::CpuMeter;
use crate::engine::{Drain, Engine, Level};
use crate::{WorkerError, WorkerOptions, report};

/// Outgoing messages waiting for the stream; reports are one per interval, so this is plenty.
const OUTBOX: usize = 64;
/// Reports kept until acknowledged, so they can be resent after a reconnect.
const MAX_UNACKED: usize = 128;
/// Used when the master leaves an interval at 0.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings detect a dead master within interval + timeout even when it sends nothing, so a
/// worker that loses its master stops generating load in bounded time.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one session to its end.
pub(crate) async fn run(opts: WorkerOptions) -> Result<(), WorkerError> {
    let channel = connect(&opts.master).await?;
    let (tx, rx) = mpsc::channel(OUTBOX);
    // Queued before the call, so the master's first read finds it.
    tx.send(message(Out::Hello(hello(&opts))))
        .await
        .map_err(|_| WorkerError::Disconnected("outgoing stream closed before Hello".into()))?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = &opts.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| WorkerError::InvalidToken)?;
        request.metadata_mut().insert(TOKEN_METADATA_KEY, value);
    }
    let mut client = CoordinatorClient::new(channel);
    let mut inbound = client
        .session(request)
        .await
        .map_err(from_status)?
        .into_inner();
    let welcome = match inbound.message().await.map_err(from_status)? {
        Some(MasterMessage {
            kind: Some(In::Welcome(welcome)),
        }) => welcome,
        Some(other) => {
            return Err(WorkerError::Protocol(format!(
                "expected Welcome as the master's first message, got {:?}",
                other.kind.map(|k| kind_name(&k))
            )));
        }
        None => {
            return Err(WorkerError::Disconnected(
                "the master closed the session before welcoming this worker".into(),
            ));
        }
    };
    if welcome.protocol_version != PROTOCOL_VERSION {
        return Err(WorkerError::VersionMismatch {
            worker: PROTOCOL_VERSION,
            master: format!("v{}", welcome.protocol_version),
        });
    }
    info!(
        master = %opts.master,
        master_version = %welcome.master_version,
        worker = %opts.id,
        "joined the master"
    );
    Session::new(&opts, tx, &welcome).serve(inbound).await
}

/// Dials the master eagerly, so an unreachable master is reported as such.
async fn connect(master: &str) -> Result<Channel, WorkerError> {
    // Accept a bare host:port, as people type it.
    let addr = if master.contains("://") {
        master.to_string()
    } else {
        format!("http://{master}")
    };
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| WorkerError::InvalidMaster {
            addr: master.to_string(),
            detail: chain(&e),
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    endpoint.connect().await.map_err(|e| WorkerError::Connect {
        addr,
        detail: chain(&e),
    })
}

fn hello(opts: &WorkerOptions) -> Hello {
    Hello {
        worker_id: opts.id.clone(),
        hostname: opts.hostname.clone(),
        arch: opts.arch.clone(),
        cores: u32::try_from(opts.threads).unwrap_or(u32::MAX),
        protocol_version: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// What a session does after handling a message.
enum Flow {
    Continue,
    Quit,
}

/// The run this worker was configured with.
struct Run {
    id: String,
    /// `None` once the run has stopped (the engine and its threads are gone).
    engine: Option<Engine>,
    /// When the RunConfig arrived: report bounds are measured from here.
    started: Instant,
    stopping: bool,
    seq: u64,
    last_end_ms: u64,
    last_epoch: Option<u64>,
    acked: u64,
    unacked: VecDeque<Report>,
}

impl Run {
    fn state(&self) -> (WorkerState, u32) {
        match &self.engine {
            None => (WorkerState::Stopped, 0),
            Some(e) if self.stopping => (WorkerState::Stopping, e.users_running()),
            Some(e) if e.is_idle() => (WorkerState::Ready, 0),
            Some(e) => (WorkerState::Running, e.users_running()),
        }
    }

    /// Keeps a sent report until the master acknowledges it.
    fn remember(&mut self, report: Report) {
        if self.unacked.len() >= MAX_UNACKED {
            self.unacked.pop_front();
            warn!(run_id = %self.id, "the master is not acknowledging reports; forgetting the oldest");
        }
        self.unacked.push_back(report);
    }
}

struct Session {
    worker_id: String,
    threads: usize,
    tx: mpsc::Sender<WorkerMessage>,
    heartbeat_every: Duration,
    cpu: CpuMeter,
    run: Option<Run>,
    /// The report clock of the current run, until it stops.
    reports: Option<Interval>,
    /// Users draining after a Stop.
    drain: Option<Drain>,
}

impl Session {
    fn new(opts: &WorkerOptions, tx: mpsc::Sender<WorkerMessage>, welcome: &Welcome) -> Self {
        Self {
            worker_id: opts.id.clone(),
            threads: opts.threads,
            tx,
            heartbeat_every: millis_or(welcome.heartbeat_interval_ms, DEFAULT_HEARTBEAT),
            cpu: CpuMeter::new(),
            run: None,
            reports: None,
            drain: None,
        }
    }

    async fn serve(mut self, mut inbound: Streaming<MasterMessage>) -> Result<(), WorkerError> {
        let mut heartbeat = time::interval(self.heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                incoming = inbound.message() => {
                    let Some(msg) = incoming.map_err(from_status)? else {
                        return Err(WorkerError::Disconnected(
                            "the master closed the session without a Quit".into(),
                        ));
                    };
                    if let Flow::Quit = self.handle(msg).await? {
                        return Ok(());
                    }
                }
                _ = heartbeat.tick() => self.heartbeat().await?,
                () = tick(&mut self.reports) => self.send_report(false).await?,
                abandoned = finished(&mut self.drain) => self.finish_stop(abandoned).await?,
            }
        }
    }

    async fn handle(&mut self, msg: MasterMessage) -> Result<Flow, WorkerError> {
        let Some(kind) = msg.kind else {
            warn!("empty message from the master; ignored");
            return Ok(Flow::Continue);
        };
        debug!(message = kind_name(&kind), "from master");
        match kind {
            In::Welcome(_) => warn!("a second Welcome from the master; ignored"),
            In::Run(config) => self.start_run(config).await?,
            In::Load(load) => self.set_load(load),
            In::Stop(stop) => self.stop(stop).await?,
            In::Quit(quit) => {
                info!(reason = %quit.reason, "the master says quit");
                return Ok(Flow::Quit);
            }
            In::Ack(ack) => self.ack(&ack),
        }
        Ok(Flow::Continue)
    }

    async fn start_run(&mut self, config: RunConfig) -> Result<(), WorkerError> {
        let started = Instant::now();
        if let Some(old) = self.run.take()
            && old.engine.is_some()
        {
            warn!(old = %old.id, new = %config.run_id, "a new run replaces one that was not stopped");
        }
        self.reports = None;
        self.drain = None;
        match Engine::build(&config, self.threads) {
            Ok(engine) => {
                info!(
                    run_id = %config.run_id,
                    targets = config.targets.len(),
                    requests = config.requests.len(),
                    "run configured"
                );
                let every = millis_or(config.report_interval_ms, DEFAULT_REPORT_INTERVAL);
                let mut reports = time::interval_at(started + every, every);
                reports.set_missed_tick_behavior(MissedTickBehavior::Delay);
                self.reports = Some(reports);
                self.run = Some(Run {
                    id: config.run_id,
                    engine: Some(engine),
                    started,
                    stopping: false,
                    seq: 0,
                    last_end_ms: 0,
                    last_epoch: None,
                    acked: 0,
                    unacked: VecDeque::new(),
                });
                Ok(())
            }
            Err(e) => {
                // Tell the master why, and stay connected for a configuration we can run.
                error!(run_id = %config.run_id, "cannot run this configuration: {e}");
                self.send(Out::Goodbye(Goodbye {
                    run_id: config.run_id,
                    last_seq: 0,
                    reason: format!("cannot run this configuration: {e}"),
                }))
                .await
            }
        }
    }

    /// Applies absolute per-target levels; targets not named go to zero.
    fn set_load(&mut self, load: SetLoad) {
        let Some(run) = self.run.as_mut() else {
            warn!(epoch = load.epoch, "SetLoad before any RunConfig; ignored");
            return;
        };
        if run.stopping {
            debug!(epoch = load.epoch, "SetLoad while stopping; ignored");
            return;
        }
        let Some(engine) = run.engine.as_mut() else {
            debug!(epoch = load.epoch, "SetLoad after the run stopped; ignored");
            return;
        };
        if let Some(last) = run.last_epoch
            && load.epoch <= last
        {
            debug!(epoch = load.epoch, last, "stale SetLoad ignored");
            return;
        }
        run.last_epoch = Some(load.epoch);
        let mut levels = vec![Level::default(); engine.targets()];
        for level in &load.targets {
            match levels.get_mut(level.target as usize) {
                Some(l) => {
                    *l = Level {
                        users: level.users,
                        rate: level.rate,
                        quota: level.counted.then_some(level.requests),
                    }
                }
                None => warn!(
                    target = level.target,
                    "SetLoad names an unknown target; ignored"
                ),
            }
        }
        if let Err(e) = engine.apply(load.stage, &levels) {
            warn!("cannot apply SetLoad: {e}");
        }
        info!(
            epoch = load.epoch,
            stage = load.stage,
            users = engine.users_running(),
            rate = engine.rate_running(),
            "load applied"
        );
    }

    async fn stop(&mut self, stop: Stop) -> Result<(), WorkerError> {
        let Some(run) = self.run.as_mut() else {
            debug!("Stop with no run; ignored");
            return Ok(());
        };
        match run.engine.as_mut() {
            Some(_) if run.stopping => debug!("already stopping"),
            Some(engine) => {
                info!(run_id = %run.id, reason = %stop.reason, timeout_ms = stop.stop_timeout_ms, "stopping");
                run.stopping = true;
                self.drain = Some(engine.begin_stop(Duration::from_millis(stop.stop_timeout_ms)));
            }
            None => {
                // Stop is idempotent: repeat the Goodbye for a master that missed it.
                let goodbye = Goodbye {
                    run_id: run.id.clone(),
                    last_seq: run.seq,
                    reason: "already stopped".into(),
                };
                self.send(Out::Goodbye(goodbye)).await?;
            }
        }
        Ok(())
    }

    /// In-flight requests are done (or abandoned): final report, engine down, Goodbye.
    async fn finish_stop(&mut self, abandoned: usize) -> Result<(), WorkerError> {
        self.drain = None;
        self.reports = None;
        self.send_report(true).await?;
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        run.engine = None;
        run.stopping = false;
        let reason = if abandoned == 0 {
            "stopped".to_string()
        } else {
            format!(
                "stopped; {abandoned} users abandoned their in-flight request at the stop timeout"
            )
        };
        info!(run_id = %run.id, last_seq = run.seq, "{reason}");
        let goodbye = Goodbye {
            run_id: run.id.clone(),
            last_seq: run.seq,
            reason,
        };
        self.send(Out::Goodbye(goodbye)).await
    }

    /// Sends what the engine recorded since the previous report.
    async fn send_report(&mut self, is_final: bool) -> Result<(), WorkerError> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let Some(engine) = run.engine.as_ref() else {
            return Ok(());
        };
        // Asked before the shards are taken, so every request of a completed stage is in them.
        let completed_stage = engine.completed_stage();
        let series = report::to_series(report::merge(engine.take_shards())?)?;
        let end_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        run.seq += 1;
        let report = Report {
            run_id: run.id.clone(),
            worker_id: self.worker_id.clone(),
            seq: run.seq,
            start_ms: run.last_end_ms,
            end_ms,
            users: engine.users_running(),
            r#final: is_final,
            series,
            dropped: engine.take_dropped(),
            completed_stage,
        };
        run.last_end_ms = end_ms;
        run.remember(report.clone());
        self.send(Out::Report(report)).await
    }

    fn ack(&mut self, ack: &Ack) {
        let Some(run) = self.run.as_mut().filter(|r| r.id == ack.run_id) else {
            debug!(run_id = %ack.run_id, seq = ack.seq, "Ack for another run; ignored");
            return;
        };
        // An Ack names one counted report (acks may come out of order after a resend).
        run.acked = run.acked.max(ack.seq);
        run.unacked.retain(|r| r.seq != ack.seq);
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        let (state, users_running) = self.run.as_ref().map_or((WorkerState::Idle, 0), Run::state);
        let sent_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let heartbeat = Heartbeat {
            state: state as i32,
            users_running,
            cpu_percent: self.cpu.percent(),
            sent_unix_ms,
            rate_running: self
                .run
                .as_ref()
                .and_then(|r| r.engine.as_ref())
                .map_or(0.0, Engine::rate_running),
        };
        self.send(Out::Heartbeat(heartbeat)).await
    }

    async fn send(&self, kind: Out) -> Result<(), WorkerError> {
        self.tx
            .send(message(kind))
            .await
            .map_err(|_| WorkerError::Disconnected("the stream to the master closed".into()))
    }
}

fn message(kind: Out) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

/// The next report tick, or never when no run is being reported.
async fn tick(reports: &mut Option<Interval>) {
    match reports {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The end of the stop drain, or never when not stopping.
async fn finished(drain: &mut Option<Drain>) -> usize {
    match drain {
        Some(drain) => drain.await,
        None => std::future::pending().await,
    }
}

fn millis_or(ms: u64, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(ms)
    }
}

/// Maps a status from the master to the reason the session ended.
fn from_status(status: Status) -> WorkerError {
    let message = status.message().to_string();
    match status.code() {
        Code::Unauthenticated => WorkerError::Unauthenticated { message },
        Code::FailedPrecondition => WorkerError::VersionMismatch {
            worker: PROTOCOL_VERSION,
            master: message,
        },
        code @ (Code::PermissionDenied
        | Code::InvalidArgument
        | Code::AlreadyExists
        | Code::ResourceExhausted
        | Code::Unimplemented) => WorkerError::Refused { code, message },
        code => WorkerError::Disconnected(format!("{code:?}: {}", chain(&status))),
    }
}

/// An error and its sources on one line.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

fn kind_name(kind: &In) -> &'static str {
    match kind {
        In::Welcome(_) => "Welcome",
        In::Run(_) => "RunConfig",
        In::Load(_) => "SetLoad",
        In::Stop(_) => "Stop",
        In::Quit(_) => "Quit",
        In::Ack(_) => "Ack",
    }
}
