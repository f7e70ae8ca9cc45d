//! The run's loop, from waiting for workers to the summary: one task that takes events in
//! (worker streams, the clock, the view's keys, a stop) and hands the decisions to the fleet
//! (who is told what), the pacing (what load is due) and the aggregator (what is counted).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backlog::Backlog;
use super::fleet::{Fleet, Lost, Started};
use super::journaling::{self, Journaling};
use super::pacing::Pacing;
use super::show::{self, Progress};
use crate::outcome::{self, Outage, Summary};
use crate::scenario::{self, Scenario};
use crate::stats::{self, Aggregator, RunFacts, TargetInfo};
use crate::view::{Command, View};
use crate::wire::Event;

/// How often the controller re-plans the load (the spawn-rate granularity).
mod ingest;

const TICK: Duration = Duration::from_millis(100);
/// The longest wait for final reports, in stop waits, however long reports keep coming.
const FINAL_WAIT_BOUND: u32 = 12;
/// Extra time, beyond the stop timeout, that workers get to send their final reports.
const FINAL_REPORT_GRACE: Duration = Duration::from_secs(5);

/// Everything about a run that is not in the scenario.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Workers to wait for before starting.
    pub expect_workers: usize,
    /// How long to wait for them.
    pub wait_workers: Duration,
    /// Where `e` writes the summary so far (`*.partial.json` beside it).
    pub summary_path: PathBuf,
    /// A worker silent for longer is declared missing.
    pub liveness_timeout: Duration,
    /// Where the run's journal goes (`RUN_ID.journal`); `None`: no journal.
    pub state_dir: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Finished {
    /// The run was carried out: its summary, thresholds judged, and the ones that failed.
    Ran {
        summary: Box<Summary>,
        failed: Vec<String>,
    },
    /// The run could not be carried out.
    NotCarriedOut(String),
}

/// The run's clock: zero until the load starts.
struct Clock {
    start: Option<Instant>,
    started_at: SystemTime,
    last_tick: Instant,
}

impl Clock {
    fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn elapsed_ms(&self) -> u64 {
        self.elapsed().as_millis() as u64
    }

    /// Seconds since the last tick, and the tick is now.
    fn tick(&mut self) -> f64 {
        let dt = self.last_tick.elapsed().as_secs_f64();
        self.last_tick = Instant::now();
        dt
    }
}

pub struct Controller {
    scenario: Scenario,
    settings: RunSettings,
    events: mpsc::Receiver<Event>,
    /// Commands from the view (keys), if it sends any.
    commands: Option<mpsc::Receiver<Command>>,
    view: Box<dyn View>,
    stop: CancellationToken,
    clock: Clock,
    agg: Aggregator,
    fleet: Fleet,
    pacing: Pacing,
    /// How far behind the counting is.
    load: Backlog,
    /// When the views were last shown.
    last_show: Instant,
    /// Why the run stopped early, if a threshold aborted it.
    aborted: Option<String>,
    notices: Vec<String>,
    /// Series points the views have been given.
    shown: usize,
    /// The journal, when the run keeps one.
    journal: Option<Journaling>,
    /// When the journal was last written.
    journal_written: Instant,
    /// Times no master ran (a resumed run's gaps), run time.
    outages: Vec<(Duration, Duration)>,
    /// A resumed run: what it takes up when it starts again.
    resume: Option<journaling::Resume>,
}

impl Controller {
    pub fn new(
        scenario: Scenario,
        settings: RunSettings,
        events: mpsc::Receiver<Event>,
        view: Box<dyn View>,
        stop: CancellationToken,
    ) -> Controller {
        let run_id = new_run_id();
        Controller::for_run(scenario, settings, events, view, stop, run_id)
    }

    /// A controller for the run `run_id` (a new one, or one a journal resumes).
    pub(super) fn for_run(
        scenario: Scenario,
        settings: RunSettings,
        events: mpsc::Receiver<Event>,
        mut view: Box<dyn View>,
        stop: CancellationToken,
        run_id: String,
    ) -> Controller {
        let config = scenario::compile(&scenario, &run_id);
        let targets = scenario
            .targets()
            .iter()
            .map(|t| TargetInfo {
                name: t.name.clone(),
                arch: t.arch.clone(),
            })
            .collect();
        let requests = scenario.file.requests.len();
        let agg = Aggregator::new(run_id, config.report_interval_ms, targets, requests);
        Controller {
            load: Backlog::new(scenario.file.report_interval),
            last_show: Instant::now(),
            commands: view.commands(),
            pacing: Pacing::new(&scenario),
            fleet: Fleet::new(config, settings.liveness_timeout),
            agg,
            clock: Clock {
                start: None,
                started_at: SystemTime::now(),
                last_tick: Instant::now(),
            },
            scenario,
            settings,
            events,
            view,
            stop,
            aborted: None,
            notices: Vec::new(),
            shown: 0,
            journal: None,
            journal_written: Instant::now(),
            outages: Vec::new(),
            resume: None,
        }
    }

    pub(super) fn run_id(&self) -> &str {
        self.agg.run_id()
    }

    pub(super) fn report_interval(&self) -> Duration {
        self.scenario.file.report_interval
    }

    /// A journal's counts and workers, for a resumed run.
    pub(super) fn restore_counts(&mut self, agg: Aggregator, workers: Vec<outcome::WorkerRecord>) {
        self.agg = agg;
        self.fleet.restore_history(workers);
    }

    pub(super) fn set_resume(&mut self, r: journaling::Resume) {
        self.resume = Some(r);
    }

    pub(super) fn set_clock(&mut self, start: Instant, started_at: SystemTime) {
        self.clock = Clock {
            start: Some(start),
            started_at,
            last_tick: Instant::now(),
        };
    }

    pub(super) fn set_outages(&mut self, outages: Vec<(Duration, Duration)>) {
        self.outages = outages;
    }

    pub(super) fn restore_pacing(&mut self, state: super::pacing::PacingState, now: Duration) {
        self.pacing.restore(state, now);
    }

    pub(super) fn set_journal(&mut self, j: Journaling) {
        self.journal = Some(j);
    }

    /// Runs to the end; the summary of a run that was carried out has its thresholds judged.
    pub async fn run(mut self) -> Finished {
        if let Err(why) = self.wait_for_workers().await {
            tracing::error!("{why}");
            self.fleet.quit_all("run not carried out");
            return Finished::NotCarriedOut(why);
        }
        self.start();
        self.drive().await;
        let load_time = self.clock.elapsed();
        self.stop_workers().await;
        self.fleet.quit_all("run complete");
        self.agg.close_all();
        // The views' last picture holds every final report, as the summary does.
        self.show();
        let at = journaling::millis(self.clock.elapsed());
        let load = journaling::millis(load_time.saturating_sub(self.outage()));
        if let Some(j) = self.journal.as_mut() {
            j.end(at, load, &self.pacing.state(), &self.outages);
        }
        let mut summary = self.summary(load_time);
        let failed = outcome::judge_all(&mut summary, &self.scenario.thresholds);
        self.view.finish(&summary);
        Finished::Ran {
            summary: Box::new(summary),
            failed,
        }
    }

    /// The summary of what has been counted so far, `elapsed` into the run.
    fn summary(&self, elapsed: Duration) -> Summary {
        let facts = RunFacts {
            scenario: &self.scenario,
            started_at: self.clock.started_at,
            ended_at: SystemTime::now(),
            // Load was applied all that time but the outages.
            duration: elapsed.saturating_sub(self.outage()),
            workers: self.fleet.history().to_vec(),
            capacity: self.pacing.capacity_report(),
            aborted: self.aborted.clone(),
            master: Some(self.load.report()),
        };
        let mut summary = stats::summary(&self.agg, facts);
        summary.ended = Some("completed".to_owned());
        summary.outages = self
            .outages
            .iter()
            .map(|(from, to)| Outage {
                from_s: from.as_secs_f64(),
                to_s: to.as_secs_f64(),
            })
            .collect();
        summary
    }

    /// Time the run lost to master outages.
    fn outage(&self) -> Duration {
        self.outages
            .iter()
            .map(|(from, to)| to.saturating_sub(*from))
            .sum()
    }

    /// The plan's clock: the run's, less the outages (a resumed run goes on where it stood).
    fn plan_now(&self) -> Duration {
        self.clock.elapsed().saturating_sub(self.outage())
    }

    async fn wait_for_workers(&mut self) -> Result<(), String> {
        let want = self.settings.expect_workers.max(1);
        let deadline = tokio::time::sleep(self.settings.wait_workers);
        tokio::pin!(deadline);
        tracing::info!("waiting for {want} worker(s)");
        while self.fleet.len() < want {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return Err("the gRPC server stopped".into()),
                },
                () = &mut deadline => {
                    return Err(format!(
                        "only {} of {want} worker(s) connected within {}",
                        self.fleet.len(),
                        humantime::format_duration(self.settings.wait_workers)
                    ));
                }
                () = self.stop.cancelled() => return Err("stopped before the run started".into()),
            }
        }
        Ok(())
    }

    fn start(&mut self) {
        match self.resume.take() {
            Some(resume) => self.take_up(resume),
            None => {
                self.clock = Clock {
                    start: Some(Instant::now()),
                    started_at: SystemTime::now(),
                    last_tick: Instant::now(),
                };
                self.open_journal();
                tracing::info!(
                    run_id = self.agg.run_id(),
                    workers = self.fleet.len(),
                    "run started"
                );
            }
        }
        for started in self.fleet.start_all() {
            self.started(&started);
        }
        self.dispatch();
    }

    /// A worker process has the run: its reports count from now on its clock.
    fn started(&mut self, s: &Started) {
        let now = self.clock.elapsed_ms();
        self.agg.worker_started(&s.source, now);
        // A process back from before an outage keeps its first clock.
        let since = self.agg.started_at(&s.source).unwrap_or(now);
        if let Some(j) = self.journal.as_mut() {
            j.started(s, now, since);
        }
    }

    /// The main loop: events, the dispatch clock, the views, until the plan ends or a stop.
    async fn drive(&mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut show = tokio::time::interval(self.scenario.file.report_interval);
        show.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                due = tick.tick() => {
                    self.load.ticked(due.elapsed(), self.events.len(), self.events.max_capacity());
                    // Silence is only judged while the master keeps up: a master that is
                    // behind has not read what its workers sent.
                    if self.load.calm_for() > self.settings.liveness_timeout {
                        let lost = self.fleet.reap_silent(self.clock.elapsed());
                        self.lost(&lost);
                    }
                    self.write_journal(false);
                    if !self.dispatch() {
                        break;
                    }
                    self.agg.close_intervals(self.clock.elapsed_ms());
                    self.pacing.observe(self.agg.series(), self.clock.elapsed());
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

    /// Moves the plan on and sends changed assignments; false once the plan is over.
    fn dispatch(&mut self) -> bool {
        let dt = self.clock.tick();
        let now = self.plan_now();
        let running = self.fleet.running();
        let ids: Vec<String> = running.iter().map(|(id, _)| id.clone()).collect();
        let fleet = &self.fleet;
        let round = self.pacing.round(now, dt, &ids, |workers, stage| {
            fleet.completed(workers, stage)
        });
        let Some((rows, stage)) = round else {
            return false;
        };
        let lost = self
            .fleet
            .send_loads(running, rows, stage, self.clock.elapsed());
        self.lost(&lost);
        true
    }

    /// Hands the load of lost workers to the pacing, and journals their departure.
    fn lost(&mut self, lost: &[Lost]) {
        let at = self.clock.elapsed_ms();
        for l in lost {
            self.pacing.worker_lost(l);
            if let Some(j) = self.journal.as_mut() {
                j.left(l, at);
            }
        }
    }

    /// Checks the `abort_on_fail` thresholds on the results so far; true when one fails.
    fn threshold_aborts(&mut self) -> bool {
        let elapsed = self.clock.elapsed();
        for t in &self.scenario.thresholds {
            if let Some(value) = stats::fails_now(t, &self.agg, elapsed) {
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

    fn show(&mut self) {
        let elapsed = self.clock.elapsed();
        let (heading, level) = self.pacing.levels_now();
        let (users_shift, users_step) = self.pacing.adjustment();
        let behind = self.load.look(self.last_show.elapsed());
        self.last_show = Instant::now();
        let mut notices = std::mem::take(&mut self.notices);
        notices.append(&mut self.fleet.notices);
        notices.append(&mut self.pacing.notices);
        notices.append(&mut self.load.notices);
        let progress = Progress {
            name: self.scenario.name().to_owned(),
            elapsed,
            // Unknown while a `requests` stage decides it: show the time so far.
            duration: self.pacing.expected_end().unwrap_or(elapsed),
            stage: self.pacing.stage(),
            stage_target: heading.round() as u32,
            users_goal: level.round() as u32,
            users_shift,
            users_step,
            notices,
        };
        let valid = &self.scenario.valid_load;
        let mut snapshot = show::snapshot(progress, valid, &self.agg, &self.fleet, self.shown);
        snapshot.master_wait = behind;
        self.shown = self.agg.series().len();
        self.view.update(&snapshot);
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::ShiftUsers(steps) => self.pacing.shift(steps),
            Command::Export => self.export(),
        }
        // Answer the key at once rather than at the next interval.
        self.show();
    }

    /// Writes the summary so far to `*.partial.json` beside the summary path.
    fn export(&mut self) {
        let path = partial_path(&self.settings.summary_path);
        let mut summary = self.summary(self.clock.elapsed());
        outcome::judge_all(&mut summary, &self.scenario.thresholds);
        let notice = match summary.write(&path) {
            Ok(()) => format!("summary so far written to {}", path.display()),
            Err(e) => format!("cannot write the summary to {}: {e}", path.display()),
        };
        tracing::info!("{notice}");
        self.notices.push(notice);
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

/// Where `e` writes the summary so far: `summary.json` -> `summary.partial.json`.
pub fn partial_path(summary: &std::path::Path) -> PathBuf {
    summary.with_extension("partial.json")
}

/// A run id unique enough to tell runs apart in logs and summaries.
fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{:08x}", rand::random::<u32>())
}
