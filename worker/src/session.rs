//! The session with the master (docs/architecture.md, "The session protocol") and what keeps
//! it honest when the network is not: Hello, Welcome, then RunConfig / SetLoad / Stop / Quit /
//! Ack while sending heartbeats and one report per interval; across connections:
//!
//! - a lost link stops all load at once and is redialled with backoff and jitter; the worker
//!   re-registers with the same id and instance;
//! - the dead-man switch: a master silent for `master_timeout` (less a margin for the stop
//!   itself) is treated as lost, even when TCP has not noticed;
//! - load restarts only on a SetLoad received over a live link, with an epoch not yet seen;
//! - reports the master has not acknowledged are kept (bounded) and resent when the same
//!   master's RunConfig for the same run arrives again; it counts each (run, worker, seq) once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stampede_proto::master_message::Kind as In;
use stampede_proto::worker_message::Kind as Out;
use stampede_proto::{
    Ack, Goodbye, Heartbeat, MasterMessage, Report, RunConfig, SetLoad, Stop, Welcome, WorkerState,
};
use tokio::time::{self, Instant, Interval, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::cpu::CpuMeter;
use crate::engine::{Drain, Engine, Level};
use crate::link::{self, Link, SendError};
use crate::unacked::Unacked;
use crate::{WorkerError, WorkerOptions, report};

/// Used when the master leaves an interval at 0.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The dead-man switch fires this much before `master_timeout` (at most), so that stopping the
/// users, on a busy machine, still completes within the bound.
const MAX_SWITCH_MARGIN: Duration = Duration::from_secs(1);

/// Runs sessions with the master until it says Quit, a refusal that retrying cannot fix
/// (token, version, duplicate id), or, without `reconnect`, the first lost link.
pub(crate) async fn run(opts: WorkerOptions) -> Result<(), WorkerError> {
    Session::new(&opts).run().await
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
    /// When the RunConfig first arrived: report bounds are measured from here.
    started: Instant,
    stopping: bool,
    /// Users were stopped because the master was lost; only a fresh SetLoad restarts them.
    paused: bool,
    seq: u64,
    last_end_ms: u64,
    last_epoch: Option<u64>,
    unacked: Unacked,
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

    /// Keeps a report until the master acknowledges it.
    fn remember(&mut self, report: Report) {
        let forgotten = self.unacked.push(report);
        if forgotten > 0 {
            error!(
                run_id = %self.id,
                requests = forgotten,
                "no master has acknowledged this worker's reports for too long; forgot the oldest (their requests will be missing from the totals)"
            );
        }
    }
}

struct Session<'a> {
    opts: &'a WorkerOptions,
    /// Random per process run: tells the master a reconnect from a second worker with our id.
    instance: String,
    heartbeat_every: Duration,
    cpu: CpuMeter,
    run: Option<Run>,
    /// The report clock of the current run, until it stops.
    reports: Option<Interval>,
    /// Users draining after a Stop.
    drain: Option<Drain>,
    /// When the master was last heard from, for the dead-man switch.
    last_contact: Instant,
}

impl<'a> Session<'a> {
    fn new(opts: &'a WorkerOptions) -> Self {
        Self {
            opts,
            instance: format!("{:016x}", rand::random::<u64>()),
            heartbeat_every: DEFAULT_HEARTBEAT,
            cpu: CpuMeter::new(),
            run: None,
            reports: None,
            drain: None,
            last_contact: Instant::now(),
        }
    }

    /// The dead-man switch's bound, less the margin its own work needs.
    fn switch_after(&self) -> Duration {
        let t = self.opts.master_timeout;
        t.saturating_sub((t / 10).min(MAX_SWITCH_MARGIN))
    }

    async fn run(mut self) -> Result<(), WorkerError> {
        let mut backoff = Backoff::new(self.opts.reconnect_min, self.opts.reconnect_max);
        let mut link: Option<Link> = None;
        let opts = self.opts;
        let mut dialing = Some(Box::pin(link::dial(opts, self.instance.clone())));
        let mut retry_at: Option<Instant> = None;
        let mut heartbeat = time::interval(self.heartbeat_every);
        loop {
            let switch_at = self.last_contact + self.switch_after();
            tokio::select! {
                dialed = pending_or(&mut dialing) => {
                    dialing = None;
                    match dialed {
                        Ok((l, welcome)) => {
                            backoff.reset();
                            heartbeat = self.connected(&welcome);
                            link = Some(l);
                        }
                        Err(e) if e.is_final() || !self.opts.reconnect => return Err(e),
                        Err(e) => {
                            let delay = backoff.next_delay();
                            warn!("cannot join the master: {e}; retrying in {}", ms(delay));
                            retry_at = Some(Instant::now() + delay);
                        }
                    }
                }
                () = time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                    dialing = Some(Box::pin(link::dial(opts, self.instance.clone())));
                }
                incoming = receive(&mut link) => {
                    let lost = match incoming {
                        Ok(Some(msg)) => {
                            self.last_contact = Instant::now();
                            match self.handle(msg, link.as_ref()) {
                                Flow::Quit => return Ok(()),
                                Flow::Continue => None,
                            }
                        }
                        Ok(None) => Some(WorkerError::Disconnected(
                            "the master closed the session without a Quit".into(),
                        )),
                        Err(status) => Some(link::from_status(status)),
                    };
                    if let Some(e) = lost {
                        link = None;
                        self.lost(&e);
                        if e.is_final() || !self.opts.reconnect {
                            return Err(e);
                        }
                        retry_at = Some(Instant::now() + backoff.next_delay());
                    }
                }
                _ = heartbeat.tick(), if link.is_some() => self.heartbeat(&mut link),
                () = tick(&mut self.reports) => self.send_report(false, &mut link)?,
                abandoned = finished(&mut self.drain) => self.finish_stop(abandoned, &mut link)?,
                () = time::sleep_until(switch_at), if link.is_some() => {
                    link = None;
                    let e = WorkerError::Disconnected(format!(
                        "no word from the master for {} (--master-timeout {})",
                        ms(self.last_contact.elapsed()),
                        ms(self.opts.master_timeout)
                    ));
                    self.lost(&e);
                    if !self.opts.reconnect {
                        return Err(e);
                    }
                    retry_at = Some(Instant::now() + backoff.next_delay());
                }
            }
        }
    }

    /// A new link is up: note the contact and the master's heartbeat interval.
    fn connected(&mut self, welcome: &Welcome) -> Interval {
        self.last_contact = Instant::now();
        self.heartbeat_every = millis_or(welcome.heartbeat_interval_ms, DEFAULT_HEARTBEAT);
        info!(
            master = %self.opts.master,
            master_version = %welcome.master_version,
            worker = %self.opts.id,
            "joined the master"
        );
        let mut heartbeat = time::interval(self.heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat
    }

    /// The link is gone: stop generating load now; reports wait for the next link.
    fn lost(&mut self, why: &WorkerError) {
        let Some(run) = self.run.as_mut() else {
            warn!("lost the master: {why}");
            return;
        };
        match run.engine.as_mut() {
            Some(engine) if !run.stopping && !run.paused => {
                if let Err(e) = engine.halt() {
                    warn!("cannot stop the load: {e}");
                }
                run.paused = true;
                warn!(
                    run_id = %run.id,
                    unacked = run.unacked.len(),
                    "lost the master: {why}; stopped all load, reconnecting"
                );
            }
            _ => warn!(run_id = %run.id, "lost the master: {why}; reconnecting"),
        }
    }

    fn handle(&mut self, msg: MasterMessage, link: Option<&Link>) -> Flow {
        let Some(kind) = msg.kind else {
            warn!("empty message from the master; ignored");
            return Flow::Continue;
        };
        debug!(message = link::kind_name(&kind), "from master");
        match kind {
            In::Welcome(_) => warn!("a second Welcome from the master; ignored"),
            In::Heartbeat(_) => {}
            In::Run(config) => self.start_run(config, link),
            In::Load(load) => self.set_load(load),
            In::Stop(stop) => self.stop(stop, link),
            In::Quit(quit) => {
                info!(reason = %quit.reason, "the master says quit");
                return Flow::Quit;
            }
            In::Ack(ack) => self.ack(&ack),
        }
        Flow::Continue
    }

    fn start_run(&mut self, config: RunConfig, link: Option<&Link>) {
        if let Some(run) = self.run.as_mut()
            && run.id == config.run_id
        {
            // The same run, after a reconnect: carry on, and resend what it has not counted.
            // The run's master may be a new process (resumed from its journal) counting its
            // epochs from the start again: nothing from before this configuration can come on
            // this link, so the next SetLoad is news whatever its epoch.
            info!(run_id = %run.id, resend = run.unacked.len(), "rejoined the run");
            run.last_epoch = None;
            if let Some(link) = link {
                for report in run.unacked.iter() {
                    if link.send(Out::Report(report.clone())).is_err() {
                        break;
                    }
                }
            }
            return;
        }
        let started = Instant::now();
        if let Some(old) = self.run.take() {
            if old.engine.is_some() {
                warn!(old = %old.id, new = %config.run_id, "a new run replaces one that was not stopped");
            }
            if old.unacked.len() > 0 {
                warn!(
                    old = %old.id,
                    reports = old.unacked.len(),
                    "reports of a previous master's run were never acknowledged; that master is gone"
                );
            }
        }
        self.reports = None;
        self.drain = None;
        match Engine::build(&config, self.opts.threads) {
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
                    paused: false,
                    seq: 0,
                    last_end_ms: 0,
                    last_epoch: None,
                    unacked: Unacked::new(every),
                });
            }
            Err(e) => {
                // Tell the master why, and stay connected for a configuration we can run.
                error!(run_id = %config.run_id, "cannot run this configuration: {e}");
                send(
                    link,
                    Out::Goodbye(Goodbye {
                        run_id: config.run_id,
                        last_seq: 0,
                        reason: format!("cannot run this configuration: {e}"),
                    }),
                );
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
        run.paused = false;
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
        // Every ramp step brings one: chatter, not news.
        debug!(
            epoch = load.epoch,
            stage = load.stage,
            users = engine.users_running(),
            rate = engine.rate_running(),
            "load applied"
        );
    }

    fn stop(&mut self, stop: Stop, link: Option<&Link>) {
        let Some(run) = self.run.as_mut() else {
            debug!("Stop with no run; ignored");
            return;
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
                send(link, Out::Goodbye(goodbye));
            }
        }
    }

    /// In-flight requests are done (or abandoned): final report, engine down, Goodbye.
    fn finish_stop(
        &mut self,
        abandoned: usize,
        link: &mut Option<Link>,
    ) -> Result<(), WorkerError> {
        self.drain = None;
        self.reports = None;
        self.send_report(true, link)?;
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
        send(link.as_ref(), Out::Goodbye(goodbye));
        Ok(())
    }

    /// Reports what the engine recorded since the previous report. Without a link the report
    /// is only kept (and an empty one not even made), to be resent on the next link.
    fn send_report(&mut self, is_final: bool, link: &mut Option<Link>) -> Result<(), WorkerError> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let Some(engine) = run.engine.as_ref() else {
            return Ok(());
        };
        // Asked before the shards are taken, so every request of a completed stage is in them.
        let completed_stage = engine.completed_stage();
        let series = report::to_series(report::merge(engine.take_shards())?)?;
        let phases = report::to_phase_series(engine.take_phases())?;
        let errors = report::to_error_reasons(engine.take_reasons());
        let send_lag = match engine.take_send_lag() {
            Some(h) => report::encode_send_lag(&h)?,
            None => Vec::new(),
        };
        if link.is_none() && series.is_empty() && !is_final {
            return Ok(());
        }
        let end_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        run.seq += 1;
        let report = Report {
            run_id: run.id.clone(),
            worker_id: self.opts.id.clone(),
            seq: run.seq,
            start_ms: run.last_end_ms,
            end_ms,
            users: engine.users_running(),
            r#final: is_final,
            series,
            dropped: engine.take_dropped(),
            completed_stage,
            send_lag,
            phases,
            errors,
        };
        run.last_end_ms = end_ms;
        run.remember(report.clone());
        if let Some(l) = link.as_ref()
            && l.send(Out::Report(report)) == Err(SendError::Closed)
        {
            *link = None;
        }
        Ok(())
    }

    fn ack(&mut self, ack: &Ack) {
        let Some(run) = self.run.as_mut().filter(|r| r.id == ack.run_id) else {
            debug!(run_id = %ack.run_id, seq = ack.seq, "Ack for another run; ignored");
            return;
        };
        // An Ack names one counted report (acks may come out of order after a resend).
        run.unacked.ack(ack.seq);
    }

    fn heartbeat(&mut self, link: &mut Option<Link>) {
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
        if let Some(l) = link.as_ref()
            && l.send(Out::Heartbeat(heartbeat)) == Err(SendError::Closed)
        {
            *link = None;
        }
    }
}

/// Queues a message if there is a link; a master that is not reading misses it.
fn send(link: Option<&Link>, kind: Out) {
    if let Some(l) = link
        && let Err(e) = l.send(kind)
    {
        debug!("message to the master dropped: {e:?}");
    }
}

/// The outcome of `fut`, or never when there is none.
async fn pending_or<F: std::future::Future + Unpin>(fut: &mut Option<F>) -> F::Output {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The next message on the link, or never without one.
async fn receive(link: &mut Option<Link>) -> Result<Option<MasterMessage>, tonic::Status> {
    match link {
        Some(l) => l.inbound.message().await,
        None => std::future::pending().await,
    }
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

/// A duration for a log line, to the millisecond.
fn ms(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
