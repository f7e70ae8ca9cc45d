//! The run, from waiting for workers to the summary: one task that owns the registry, the
//! aggregator and the plan, and reacts to worker events and the clock.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use stampede_proto::{self as pb, master_message::Kind as Msg};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::aggregate::{Aggregator, TargetInfo};
use crate::capacity::CapacityDriver;
use crate::command::Command;
use crate::dispatch::{self, Quotas, Ramp, spread};
use crate::plan::{Cursor, Goal, Plan};
use crate::registry::{JoinError, Joined, Registry, State, Worker};
use crate::scenario::{self, Model, Scenario};
use crate::server::Event;
use crate::snapshot::{Progress, Snapshot};
use crate::summary::{RunFacts, Summary};
use crate::thresholds::Threshold;
use crate::valid_load::ValidLoad;
use crate::view::View;

/// How often the controller re-plans the load (the spawn-rate granularity).
const TICK: Duration = Duration::from_millis(100);
/// Extra time, beyond the stop timeout, that workers get to send their final reports.
const FINAL_REPORT_GRACE: Duration = Duration::from_secs(5);
/// Reports a worker may get rejected before it is disconnected.
const MAX_REJECTED_REPORTS: u32 = 10;
/// The live view's `+`/`-` move the goal by this fraction of the scenario's peak users.
const USERS_STEP_FRACTION: f64 = 0.1;
/// The most users the live view may add on top of the plan.
const MAX_USERS_SHIFT: i64 = 1_000_000;

/// Everything about a run that is not in the scenario.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Workers to wait for before starting.
    pub expect_workers: usize,
    /// How long to wait for them.
    pub wait_workers: Duration,
    pub summary_path: PathBuf,
    pub heartbeat_interval: Duration,
    /// A worker silent for longer is declared missing.
    pub liveness_timeout: Duration,
}

/// How a run ended, for the exit code.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Completed and every threshold passed.
    Passed,
    /// Completed, and these thresholds failed.
    ThresholdsFailed(Vec<String>),
    /// The run could not be carried out.
    NotCarriedOut(String),
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Finished {
    pub verdict: Verdict,
    pub summary: Option<Summary>,
}

pub struct Controller {
    scenario: Scenario,
    settings: RunSettings,
    cursor: Cursor,
    /// Where the plan was at the last tick.
    goal: Option<Goal>,
    /// The current `requests` stage's shares, fixed when it started.
    quotas: Option<Quotas>,
    ramp: Ramp,
    thresholds: Vec<Threshold>,
    /// Why the run stopped early, if a threshold aborted it.
    aborted: Option<String>,
    agg: Aggregator,
    registry: Registry,
    config: pb::RunConfig,
    events: mpsc::Receiver<Event>,
    view: Box<dyn View>,
    stop: CancellationToken,
    run_start: Option<Instant>,
    last_tick: Instant,
    epoch: u64,
    rejected: std::collections::HashMap<String, u32>,
    notices: Vec<String>,
    started_at: SystemTime,
    /// Commands from the view (keys), if it sends any.
    commands: Option<mpsc::Receiver<Command>>,
    /// Users added to the plan's goal from the view.
    users_shift: i64,
    users_step: u32,
    valid_load: ValidLoad,
    /// The run is over and workers have been told to stop.
    stopping: bool,
    /// Per-arch levels from a capacity search, instead of the plan's.
    capacity: Option<CapacityDriver>,
}

impl Controller {
    pub fn new(
        scenario: Scenario,
        settings: RunSettings,
        events: mpsc::Receiver<Event>,
        mut view: Box<dyn View>,
        stop: CancellationToken,
    ) -> Controller {
        let run_id = new_run_id();
        let config = scenario::compile(&scenario, &run_id);
        let targets = scenario
            .targets
            .iter()
            .map(|t| TargetInfo {
                name: t.name.clone(),
                arch: t.arch.clone(),
            })
            .collect();
        let requests = scenario.requests.iter().map(|r| r.name.clone()).collect();
        let interval_ms = config.report_interval_ms;
        let commands = view.commands();
        let thresholds = scenario
            .thresholds
            .iter()
            .filter_map(|(key, spec)| Threshold::parse(key, spec).ok())
            .collect();
        let capacity = scenario
            .capacity
            .as_ref()
            .filter(|_| scenario.is_capacity_search())
            .map(|spec| {
                let (interval, spawn) = (scenario.report_interval, scenario.load.spawn_rate);
                CapacityDriver::new(spec, &scenario.targets, interval, spawn, Duration::ZERO)
            });
        Controller {
            started_at: SystemTime::now(),
            commands,
            users_shift: 0,
            users_step: users_step(&scenario),
            valid_load: ValidLoad::from_thresholds(&scenario.thresholds),
            cursor: Cursor::new(Plan::from_scenario(&scenario)),
            goal: None,
            quotas: None,
            ramp: Ramp::new(scenario.load.spawn_rate),
            thresholds,
            aborted: None,
            agg: Aggregator::new(run_id, interval_ms, targets, requests),
            registry: Registry::default(),
            config,
            scenario,
            settings,
            events,
            view,
            stop,
            run_start: None,
            last_tick: Instant::now(),
            epoch: 0,
            rejected: Default::default(),
            notices: Vec::new(),
            stopping: false,
            capacity,
        }
    }

    pub fn run_id(&self) -> &str {
        self.agg.run_id()
    }

    /// Runs to the end and writes the summary.
    pub async fn run(mut self) -> Finished {
        if let Err(why) = self.wait_for_workers().await {
            tracing::error!("{why}");
            self.quit_all("run not carried out");
            return Finished {
                verdict: Verdict::NotCarriedOut(why),
                summary: None,
            };
        }
        self.start();
        self.drive().await;
        let load_time = self.run_elapsed();
        self.stop_workers().await;
        self.quit_all("run complete");
        self.agg.close_all();
        // The views' last picture holds every final report, as the summary does.
        self.show();
        let mut summary = self.summary_so_far(load_time);
        summary.aborted = self.aborted.clone();
        let failed = self.evaluate_thresholds(&mut summary);
        self.view.finish(&summary);
        let verdict = match summary.write(&self.settings.summary_path) {
            Err(e) => Verdict::NotCarriedOut(format!(
                "cannot write the summary to {}: {e}",
                self.settings.summary_path.display()
            )),
            Ok(()) if failed.is_empty() => Verdict::Passed,
            Ok(()) => Verdict::ThresholdsFailed(failed),
        };
        Finished {
            verdict,
            summary: Some(summary),
        }
    }

    /// The summary of what has been counted so far, over `duration` of load.
    fn summary_so_far(&self, duration: Duration) -> Summary {
        let mut summary = Summary::build(
            &self.agg,
            RunFacts {
                name: self.scenario.name.clone(),
                scenario: scenario::redacted(&self.scenario),
                started_at: self.started_at,
                ended_at: SystemTime::now(),
                duration_s: duration.as_secs_f64(),
                workers: self.registry.history().to_vec(),
            },
        );
        summary.capacity = self.capacity.as_ref().map(CapacityDriver::report);
        summary.cost = (self.scenario.cost.as_ref()).map(|c| crate::cost::evaluate(c, &summary));
        summary
    }

    fn evaluate_thresholds(&self, summary: &mut Summary) -> Vec<String> {
        summary.thresholds = self
            .thresholds
            .iter()
            .map(|t| t.evaluate(summary))
            .collect();
        let mut failed: Vec<String> = summary
            .thresholds
            .iter()
            .filter(|t| !t.pass)
            .map(|t| t.expr.clone())
            .collect();
        // A run stopped by a threshold failed, whatever the final figures say.
        if let Some(why) = &self.aborted
            && failed.is_empty()
        {
            failed.push(why.clone());
        }
        failed
    }

    /// Checks the `abort_on_fail` thresholds on the results so far; true when one fails.
    fn threshold_aborts(&mut self) -> bool {
        let elapsed = self.run_elapsed();
        for t in &self.thresholds {
            if let Some(value) = t.fails_now(&self.agg, elapsed) {
                let why = format!(
                    "{} failed {} into the run (measured {value:.4}): aborted",
                    t.expr,
                    humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
                );
                tracing::warn!("{why}");
                self.notices.push(why.clone());
                self.aborted = Some(why);
                return true;
            }
        }
        false
    }

    fn run_elapsed(&self) -> Duration {
        self.run_start.map_or(Duration::ZERO, |s| s.elapsed())
    }

    async fn wait_for_workers(&mut self) -> Result<(), String> {
        let want = self.settings.expect_workers.max(1);
        let deadline = tokio::time::sleep(self.settings.wait_workers);
        tokio::pin!(deadline);
        tracing::info!("waiting for {want} worker(s)");
        while self.registry.len() < want {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return Err("the gRPC server stopped".into()),
                },
                () = &mut deadline => {
                    return Err(format!(
                        "only {} of {want} worker(s) connected within {}",
                        self.registry.len(),
                        humantime::format_duration(self.settings.wait_workers)
                    ));
                }
                () = self.stop.cancelled() => return Err("stopped before the run started".into()),
            }
        }
        Ok(())
    }

    fn start(&mut self) {
        self.started_at = SystemTime::now();
        self.run_start = Some(Instant::now());
        self.last_tick = Instant::now();
        tracing::info!(
            run_id = self.agg.run_id(),
            workers = self.registry.len(),
            "run started"
        );
        let ids: Vec<(String, u64)> = self
            .registry
            .live()
            .map(|w| (w.id.clone(), w.conn))
            .collect();
        for (id, conn) in ids {
            self.start_worker(&id, conn);
        }
        self.dispatch();
    }

    /// Sends the run configuration to one worker and notes when its clock started.
    fn start_worker(&mut self, id: &str, conn: u64) {
        let at_ms = self.run_elapsed().as_millis() as u64;
        let config = self.config.clone();
        let Some(w) = self.registry.get_mut(id, conn) else {
            return;
        };
        if w.send(Msg::Run(config)) {
            w.state = State::Running;
            self.agg.worker_started(id, at_ms);
        }
    }

    /// The main loop: events, the dispatch clock, the views, until the plan ends or a stop.
    async fn drive(&mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut show = tokio::time::interval(Duration::from_millis(self.config.report_interval_ms));
        show.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                _ = tick.tick() => {
                    self.reap_silent();
                    if !self.dispatch() {
                        break;
                    }
                    self.agg.close_intervals(self.run_elapsed().as_millis() as u64);
                    self.observe_capacity();
                }
                _ = show.tick() => {
                    self.show();
                    if self.threshold_aborts() {
                        break;
                    }
                }
                cmd = next_command(&mut self.commands) => self.on_command(cmd),
                () = self.stop.cancelled() => {
                    tracing::info!("stop requested");
                    break;
                }
            }
        }
    }

    fn observe_capacity(&mut self) {
        let now = self.run_elapsed();
        if let Some(c) = self.capacity.as_mut() {
            for line in c.observe(self.agg.series(), now) {
                tracing::info!("{line}");
                self.notices.push(line);
            }
        }
    }

    fn show(&mut self) {
        let elapsed = self.run_elapsed();
        let progress = Progress {
            name: self.scenario.name.clone(),
            elapsed,
            // Unknown while a `requests` stage decides it: show the time so far.
            duration: self.cursor.expected_end().unwrap_or(elapsed),
            stage: self.cursor.stage(),
            stage_target: self.shifted(self.goal.map_or(0.0, |g| g.heading)).round() as u32,
            users_goal: self.shifted(self.goal.map_or(0.0, |g| g.level)).round() as u32,
            users_shift: self.users_shift,
            users_step: self.users_step,
            valid_load: self.valid_load.clone(),
            notices: std::mem::take(&mut self.notices),
        };
        let snapshot = Snapshot::build(progress, &self.agg, &self.registry);
        self.view.update(&snapshot);
    }

    /// A plan level with the view's adjustment, never below zero.
    fn shifted(&self, level: f64) -> f64 {
        (level + self.users_shift as f64).max(0.0)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::ShiftUsers(steps) => {
                let delta = i64::from(steps) * i64::from(self.users_step);
                self.users_shift =
                    (self.users_shift + delta).clamp(-MAX_USERS_SHIFT, MAX_USERS_SHIFT);
                tracing::info!(shift = self.users_shift, "users goal adjusted");
            }
            Command::Export => self.export(),
        }
        // Answer the key at once rather than at the next interval.
        self.show();
    }

    /// Writes the summary so far to `*.partial.json` beside the summary path.
    fn export(&mut self) {
        let path = partial_path(&self.settings.summary_path);
        let mut summary = self.summary_so_far(self.run_elapsed());
        self.evaluate_thresholds(&mut summary);
        let notice = match summary.write(&path) {
            Ok(()) => format!("summary so far written to {}", path.display()),
            Err(e) => format!("cannot write the summary to {}: {e}", path.display()),
        };
        tracing::info!("{notice}");
        self.notices.push(notice);
    }

    /// Moves the plan on and sends changed assignments; false once the plan is over.
    fn dispatch(&mut self) -> bool {
        let dt = self.last_tick.elapsed().as_secs_f64();
        self.last_tick = Instant::now();
        let now = self.run_elapsed();
        let running: Vec<(String, u64)> = self
            .registry
            .live()
            .filter(|w| w.state == State::Running)
            .map(|w| (w.id.clone(), w.conn))
            .collect();
        let rows = match self.capacity.as_mut() {
            Some(c) => {
                // A capacity search ends when every arch is done, or at run_time as a cap.
                if c.done() || self.scenario.run_time.is_some_and(|cap| now >= cap) {
                    return false;
                }
                Some((capacity_rows(&c.users(dt), running.len()), 1))
            }
            None => self.plan_rows(dt, now, &running),
        };
        let Some((rows, stage)) = rows else {
            return false;
        };
        let mut unreachable = Vec::new();
        for ((id, conn), row) in running.into_iter().zip(rows) {
            let Some(w) = self.registry.get_mut(&id, conn) else {
                continue;
            };
            if w.assigned == row && w.assigned_stage == stage {
                continue;
            }
            self.epoch += 1;
            let load = pb::SetLoad {
                epoch: self.epoch,
                targets: row.clone(),
                stage,
            };
            if w.send(Msg::Load(load)) {
                w.assigned = row;
                w.assigned_stage = stage;
            } else {
                unreachable.push((id, conn));
            }
        }
        for (id, conn) in unreachable {
            self.lose(&id, conn, "not reading its stream");
        }
        true
    }

    /// The plan's per-worker loads now and its stage number; `None` once the plan is over.
    fn plan_rows(
        &mut self,
        dt: f64,
        now: Duration,
        running: &[(String, u64)],
    ) -> Option<(Vec<Vec<pb::TargetLoad>>, u32)> {
        let (quotas, registry) = (&self.quotas, &self.registry);
        let Some(goal) = self
            .cursor
            .advance(now, |stage| sent(quotas, registry, stage))
        else {
            self.goal = None;
            return None;
        };
        if self.goal.is_none_or(|g| g.stage != goal.stage) {
            self.enter_stage(&goal, running);
        }
        self.goal = Some(goal);
        let wanted = self.shifted(goal.level);
        let level = match self.scenario.load.model {
            Model::Closed => f64::from(self.ramp.advance(wanted, dt)),
            Model::Open => wanted,
        };
        let weights: Vec<u32> = self.scenario.targets.iter().map(|t| t.weight).collect();
        let ids: Vec<String> = running.iter().map(|(id, _)| id.clone()).collect();
        let rows = dispatch::loads(
            self.scenario.load.model,
            level,
            &weights,
            &ids,
            self.quotas.as_ref(),
        );
        Some((rows, goal.stage as u32))
    }

    /// A new stage: a `requests` stage shares its count out among the workers running now.
    fn enter_stage(&mut self, goal: &Goal, running: &[(String, u64)]) {
        tracing::info!(stage = goal.stage, "stage started");
        self.quotas = goal.requests.map(|count| {
            let weights: Vec<u32> = self.scenario.targets.iter().map(|t| t.weight).collect();
            let ids = running.iter().map(|(id, _)| id.clone()).collect();
            Quotas::new(
                goal.stage,
                count,
                self.scenario.load.model,
                goal.heading,
                &weights,
                ids,
            )
        });
    }

    fn reap_silent(&mut self) {
        for (id, conn) in self.registry.silent(self.settings.liveness_timeout) {
            let why = format!(
                "missing: silent for more than {}",
                humantime::format_duration(self.settings.liveness_timeout)
            );
            self.lose(&id, conn, &why);
        }
    }

    /// Drops a worker and hands its users to the others.
    fn lose(&mut self, id: &str, conn: u64, reason: &str) {
        let at = self.run_elapsed();
        if let Some(w) = self.registry.leave(id, conn, at, reason) {
            if w.state != State::Finished {
                tracing::warn!(worker = id, "worker lost: {reason}");
                self.notices.push(format!("worker {id} left: {reason}"));
                let share = self.quotas.as_ref().and_then(|q| {
                    let n: u64 = q.of(id)?.iter().sum();
                    (n > 0 && (w.completed_stage as usize) < q.stage).then_some((q.stage, n))
                });
                if let Some((stage, n)) = share {
                    let why = format!(
                        "stage {stage}: worker {id} left before sending all of its {n} requests; the stage sends fewer than its count"
                    );
                    tracing::warn!("{why}");
                    self.notices.push(why);
                }
            }
            self.dropped(&w, reason);
            // Its users are gone now: the survivors take them on at the spawn rate.
            self.ramp.shed(w.assigned.iter().map(|l| l.users).sum());
            // Force a fresh assignment for everyone left.
            for w in self.registry.live_mut() {
                w.assigned.clear();
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Joined {
                conn,
                hello,
                outbox,
            } => self.on_join(conn, hello, outbox),
            Event::Report {
                conn,
                worker,
                report,
            } => self.on_report(&worker, conn, report),
            Event::Heartbeat {
                conn,
                worker,
                heartbeat,
            } => {
                if let Some(w) = self.registry.get_mut(&worker, conn) {
                    w.last_seen = Instant::now();
                    w.users = heartbeat.users_running;
                    w.cpu_percent = heartbeat.cpu_percent;
                }
            }
            Event::Goodbye {
                conn,
                worker,
                goodbye,
            } => {
                if let Some(w) = self.registry.get_mut(&worker, conn) {
                    w.last_seen = Instant::now();
                    w.state = State::Finished;
                    w.users = 0;
                    tracing::debug!(worker, last_seq = goodbye.last_seq, "worker finished");
                }
            }
            Event::Left {
                conn,
                worker,
                reason,
            } => self.lose(&worker, conn, &reason),
        }
    }

    fn on_join(&mut self, conn: u64, hello: pb::Hello, outbox: crate::server::Outbox) {
        // Joins and departures are both on the run's clock (0 before it starts).
        let at = self.run_elapsed();
        let id = hello.worker_id.clone();
        tracing::info!(
            worker = %id,
            hostname = %hello.hostname,
            arch = %hello.arch,
            cores = hello.cores,
            "worker joined"
        );
        let stale_after = self.settings.liveness_timeout;
        match self
            .registry
            .join(conn, hello, outbox.clone(), at, stale_after)
        {
            Ok(Joined::New) => {}
            Ok(Joined::Replaced(old)) => {
                tracing::warn!(worker = %id, "worker reconnected; its previous connection is closed");
                self.notices.push(format!("worker {id} reconnected"));
                self.dropped(&old, "a newer connection of this worker replaced this one");
            }
            Err(JoinError::DuplicateId(id)) => {
                tracing::warn!(worker = %id, "refused a second worker with the same id");
                let _ = outbox.try_send(Err(tonic::Status::already_exists(format!(
                    "a worker with id `{id}` is already connected"
                ))));
                return;
            }
        }
        if self.run_start.is_some() {
            self.notices.push(format!("worker {id} joined"));
            // A worker coming back to this run resends its unacknowledged reports on this
            // RunConfig; during the stop it is told to stop at once, so they still arrive.
            self.start_worker(&id, conn);
            if self.stopping {
                let stop = self.stop_message();
                if let Some(w) = self.registry.get_mut(&id, conn)
                    && w.send(Msg::Stop(stop))
                {
                    w.state = State::Stopping;
                }
            }
            for w in self.registry.live_mut() {
                w.assigned.clear();
            }
        }
    }

    /// Ends a dropped worker's stream with a status saying why, so a worker that is still
    /// alive (frozen, partitioned) stops its load and reconnects instead of running on.
    fn dropped(&self, w: &Worker, why: &str) {
        let _ = w
            .outbox
            .try_send(Err(tonic::Status::aborted(format!("{why}; reconnect"))));
    }

    fn on_report(
        &mut self,
        worker: &str,
        conn: u64,
        report: Result<crate::decode::Report, crate::decode::DecodeError>,
    ) {
        let Some(w) = self.registry.get_mut(worker, conn) else {
            return;
        };
        w.last_seen = Instant::now();
        let result = match report {
            Ok(r) if r.worker_id != worker => Err(format!(
                "report names worker `{}`, but came from `{worker}`",
                r.worker_id
            )),
            Ok(r) => {
                w.users = r.users;
                let secs = r.end_ms.saturating_sub(r.start_ms) as f64 / 1000.0;
                w.rps = if secs > 0.0 {
                    r.requests() as f64 / secs
                } else {
                    0.0
                };
                w.completed_stage = w.completed_stage.max(r.completed_stage);
                let seq = r.seq;
                self.agg.ingest(&r).map(|_| seq).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(seq) => {
                if let Some(w) = self.registry.get_mut(worker, conn) {
                    let ack = pb::Ack {
                        run_id: self.agg.run_id().to_owned(),
                        seq,
                    };
                    w.send(Msg::Ack(ack));
                }
            }
            Err(why) => {
                tracing::warn!(worker, "rejected a report: {why}");
                self.notices
                    .push(format!("rejected a report from {worker}: {why}"));
                let n = self.rejected.entry(worker.to_owned()).or_default();
                *n += 1;
                if *n > MAX_REJECTED_REPORTS {
                    self.lose(worker, conn, "too many rejected reports");
                }
            }
        }
    }

    /// Tells every running worker to stop and waits for their final reports.
    fn stop_message(&self) -> pb::Stop {
        pb::Stop {
            reason: "run complete".into(),
            stop_timeout_ms: self.scenario.stop_timeout.as_millis() as u64,
        }
    }

    async fn stop_workers(&mut self) {
        self.stopping = true;
        let stop = self.stop_message();
        for w in self.registry.live_mut() {
            if w.state == State::Running && w.send(Msg::Stop(stop.clone())) {
                w.state = State::Stopping;
            }
        }
        let wait = self.scenario.stop_timeout + FINAL_REPORT_GRACE;
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut show = tokio::time::interval(Duration::from_millis(self.config.report_interval_ms));
        while self.registry.live().any(|w| w.state == State::Stopping) {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                _ = show.tick() => self.show(),
                () = &mut deadline => {
                    let late: Vec<String> = self
                        .registry
                        .live()
                        .filter(|w| w.state == State::Stopping)
                        .map(|w| w.id.clone())
                        .collect();
                    tracing::warn!(?late, "no final report within {}", humantime::format_duration(wait));
                    break;
                }
            }
        }
    }

    /// Tells every worker the session is over.
    fn quit_all(&mut self, reason: &str) {
        for w in self.registry.live() {
            w.send(Msg::Quit(pb::Quit {
                reason: reason.to_owned(),
            }));
        }
    }
}

/// The next command from the view; never ready when the view sends none.
async fn next_command(commands: &mut Option<mpsc::Receiver<Command>>) -> Command {
    loop {
        match commands {
            Some(rx) => match rx.recv().await {
                Some(cmd) => return cmd,
                None => *commands = None,
            },
            None => std::future::pending().await,
        }
    }
}

/// Users (or requests per second) one `+`/`-` moves: a tenth of the scenario's peak level, at
/// least one.
fn users_step(s: &Scenario) -> u32 {
    let peak = s
        .load
        .level()
        .into_iter()
        .chain(
            s.stages
                .iter()
                .filter_map(|st| st.users.map(f64::from).or(st.rate)),
        )
        .fold(0.0, f64::max);
    ((peak * USERS_STEP_FRACTION).round() as u32).max(1)
}

/// Where `e` writes the summary so far: `summary.json` -> `summary.partial.json`.
pub fn partial_path(summary: &std::path::Path) -> PathBuf {
    summary.with_extension("partial.json")
}

/// Whether every worker that took a share of `requests` stage `stage` has sent it in full. A
/// worker lost since has nothing more to send (its share is lost with it, and said so).
fn sent(quotas: &Option<Quotas>, registry: &Registry, stage: usize) -> bool {
    let Some(q) = quotas.as_ref().filter(|q| q.stage == stage) else {
        return false;
    };
    q.workers.iter().all(|id| {
        registry
            .live()
            .find(|w| &w.id == id)
            .is_none_or(|w| w.completed_stage as usize >= stage)
    })
}

/// A run id unique enough to tell runs apart in logs and summaries.
fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{:08x}", rand::random::<u32>())
}

/// A capacity search's users per target, shared out over the running workers.
fn capacity_rows(per_target: &[u32], workers: usize) -> Vec<Vec<pb::TargetLoad>> {
    spread(per_target, workers)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(t, users)| pb::TargetLoad {
                    target: t as u32,
                    users,
                    ..Default::default()
                })
                .collect()
        })
        .collect()
}
