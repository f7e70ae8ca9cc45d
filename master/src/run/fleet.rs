//! The workers of a run as a fleet: who joined and who was lost (and why), what each was told.
//! It sends the run configuration, absolute loads, stops and quits, acknowledges counted
//! reports, and drops workers that fall silent, stop reading or keep sending bad reports. What
//! load to send comes from the pacing; counting is the aggregator's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stampede_proto::{self as pb, master_message::Kind as Msg};

use super::registry::{JoinError, Joined, Registry, State, Worker};
use crate::outcome::WorkerRecord;
use crate::stats::Report;
use crate::wire::{Liveness, Outbox};

/// Reports a worker may get rejected before it is disconnected.
const MAX_REJECTED_REPORTS: u32 = 10;

/// A running worker as a dispatch round sees it: its id and the connection it is on.
pub type Handle = (String, u64);

/// A worker process that started its part of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The aggregator's key for it: its id and instance.
    pub source: String,
    pub id: String,
    pub instance: String,
    pub hostname: String,
    pub arch: String,
}

/// A worker that left: what the pacing must know to hand its load to the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    pub id: String,
    pub instance: String,
    pub reason: String,
    /// Users it was running (its last assignment).
    pub users: u32,
    /// The latest `requests` stage whose share it had sent in full.
    pub completed_stage: u32,
    /// It left before saying goodbye (not a worker that finished its run).
    pub unfinished: bool,
}

pub struct Fleet {
    registry: Registry,
    /// The compiled scenario every worker receives when the run starts (or when it joins).
    config: pb::RunConfig,
    liveness_timeout: Duration,
    epoch: u64,
    rejected: HashMap<String, u32>,
    /// Set once workers are being told to stop: latecomers are stopped at once.
    stop: Option<pb::Stop>,
    /// Lines worth telling the user, taken by the controller.
    pub notices: Vec<String>,
}

impl Fleet {
    pub fn new(config: pb::RunConfig, liveness_timeout: Duration) -> Fleet {
        Fleet {
            registry: Registry::default(),
            config,
            liveness_timeout,
            epoch: 0,
            rejected: HashMap::new(),
            stop: None,
            notices: Vec::new(),
        }
    }

    /// Checksum of the configuration workers receive: a resumed run must send the same one.
    pub fn config_crc(&self) -> u32 {
        use prost::Message;
        crc32fast::hash(&self.config.encode_to_vec())
    }

    pub fn len(&self) -> usize {
        self.registry.len()
    }

    pub fn live(&self) -> impl Iterator<Item = &Worker> {
        self.registry.live()
    }

    /// The workers of a run before its master's outage.
    pub fn restore_history(&mut self, history: Vec<WorkerRecord>) {
        self.registry.restore_history(history);
    }

    /// Every worker that took part, with join and leave times.
    pub fn history(&self) -> &[WorkerRecord] {
        self.registry.history()
    }

    /// Admits a worker `at` into the run. When the run has started it is sent the run at once
    /// (and, while stopping, told to stop): returns its id then, for the aggregator's clock.
    pub fn join(
        &mut self,
        conn: u64,
        hello: pb::Hello,
        outbox: Outbox,
        liveness: Arc<Liveness>,
        at: Duration,
        started: bool,
    ) -> Option<Started> {
        let id = hello.worker_id.clone();
        tracing::info!(
            worker = %id,
            hostname = %hello.hostname,
            arch = %hello.arch,
            cores = hello.cores,
            "worker joined"
        );
        match self.registry.join(
            conn,
            hello,
            outbox.clone(),
            liveness,
            at,
            self.liveness_timeout,
        ) {
            Ok(Joined::New) => {}
            Ok(Joined::Replaced(old)) => {
                tracing::warn!(worker = %id, "worker reconnected; its previous connection is closed");
                self.notices.push(format!("worker {id} reconnected"));
                disconnect(&old, "a newer connection of this worker replaced this one");
            }
            Err(JoinError::DuplicateId(id)) => {
                tracing::warn!(worker = %id, "refused a second worker with the same id");
                let _ = outbox.try_send(Err(tonic::Status::already_exists(format!(
                    "a worker with id `{id}` is already connected"
                ))));
                return None;
            }
        }
        if !started {
            return None;
        }
        self.notices.push(format!("worker {id} joined"));
        // A worker coming back to this run resends its unacknowledged reports on this
        // RunConfig; during the stop it is told to stop at once, so they still arrive.
        let started = self.start(&id, conn);
        if let Some(stop) = self.stop.clone()
            && let Some(w) = self.registry.get_mut(&id, conn)
            && w.send(Msg::Stop(stop))
        {
            w.state = State::Stopping;
        }
        self.reassign_all();
        started
    }

    /// Sends the run to every connected worker; returns those that have it.
    pub fn start_all(&mut self) -> Vec<Started> {
        let handles: Vec<Handle> = self
            .registry
            .live()
            .map(|w| (w.id.clone(), w.conn))
            .collect();
        handles
            .into_iter()
            .filter_map(|(id, conn)| self.start(&id, conn))
            .collect()
    }

    /// Sends the run configuration to one worker; says who it was when it went out.
    fn start(&mut self, id: &str, conn: u64) -> Option<Started> {
        let w = self.registry.get_mut(id, conn)?;
        if !w.send(Msg::Run(self.config.clone())) {
            return None;
        }
        w.state = State::Running;
        Some(Started {
            source: w.source.clone(),
            id: w.id.clone(),
            instance: w.instance.clone(),
            hostname: w.hostname.clone(),
            arch: w.arch.clone(),
        })
    }

    /// The workers running the run now, in the order dispatch rows are made for.
    pub fn running(&self) -> Vec<Handle> {
        self.registry
            .live()
            .filter(|w| w.state == State::Running)
            .map(|w| (w.id.clone(), w.conn))
            .collect()
    }

    /// Sends each running worker its row of `rows` (in [`Fleet::running`] order) where it
    /// changed; workers that are not reading their stream are lost.
    pub fn send_loads(
        &mut self,
        running: Vec<Handle>,
        rows: Vec<Vec<pb::TargetLoad>>,
        stage: u32,
        at: Duration,
    ) -> Vec<Lost> {
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
        unreachable
            .into_iter()
            .filter_map(|(id, conn)| self.lose(&id, conn, at, "not reading its stream"))
            .collect()
    }

    /// Drops a worker (`at` into the run), saying why; its users are for the others to take.
    pub fn lose(&mut self, id: &str, conn: u64, at: Duration, reason: &str) -> Option<Lost> {
        let w = self.registry.leave(id, conn, at, reason)?;
        let unfinished = w.state != State::Finished;
        if unfinished {
            tracing::warn!(worker = id, "worker lost: {reason}");
            self.notices.push(format!("worker {id} left: {reason}"));
        }
        disconnect(&w, reason);
        self.reassign_all();
        Some(Lost {
            id: id.to_owned(),
            instance: w.instance.clone(),
            reason: reason.to_owned(),
            users: w.assigned.iter().map(|l| l.users).sum(),
            completed_stage: w.completed_stage,
            unfinished,
        })
    }

    /// Drops the workers not heard from within the liveness timeout.
    pub fn reap_silent(&mut self, at: Duration) -> Vec<Lost> {
        let why = format!(
            "missing: silent for more than {}",
            humantime::format_duration(self.liveness_timeout)
        );
        self.registry
            .silent(self.liveness_timeout)
            .into_iter()
            .filter_map(|(id, conn)| self.lose(&id, conn, at, &why))
            .collect()
    }

    pub fn goodbye(&mut self, worker: &str, conn: u64, goodbye: &pb::Goodbye) {
        if let Some(w) = self.registry.get_mut(worker, conn) {
            w.state = State::Finished;
            w.liveness.set_users(0);
            tracing::debug!(worker, last_seq = goodbye.last_seq, "worker finished");
        }
    }

    /// Takes note of a report that came on a live connection: `Some(Ok(source))` when it may
    /// be counted (as the aggregator knows its sender), `Some(Err(why))` when it names another
    /// worker, `None` from a stale connection.
    pub fn report_arrived(
        &mut self,
        worker: &str,
        conn: u64,
        report: &Report,
    ) -> Option<Result<String, String>> {
        let w = self.registry.get_mut(worker, conn)?;
        if report.worker_id != worker {
            return Some(Err(format!(
                "report names worker `{}`, but came from `{worker}`",
                report.worker_id
            )));
        }
        let secs = report.end_ms.saturating_sub(report.start_ms) as f64 / 1000.0;
        w.rps = if secs > 0.0 {
            report.requests() as f64 / secs
        } else {
            0.0
        };
        w.completed_stage = w.completed_stage.max(report.completed_stage);
        Some(Ok(w.source.clone()))
    }

    /// Whether `worker` is live on `conn` (a stale connection's events are ignored).
    pub fn is_live(&mut self, worker: &str, conn: u64) -> bool {
        self.registry.get_mut(worker, conn).is_some()
    }

    /// Tells a worker its report `seq` is counted, so it need not resend it.
    pub fn ack(&mut self, worker: &str, conn: u64, seq: u64) {
        if let Some(w) = self.registry.get_mut(worker, conn) {
            let ack = pb::Ack {
                run_id: self.config.run_id.clone(),
                seq,
            };
            w.send(Msg::Ack(ack));
        }
    }

    /// A report that could not be counted: said, and after too many the worker is dropped.
    pub fn reject(&mut self, worker: &str, conn: u64, why: &str, at: Duration) -> Option<Lost> {
        tracing::warn!(worker, "rejected a report: {why}");
        self.notices
            .push(format!("rejected a report from {worker}: {why}"));
        let n = self.rejected.entry(worker.to_owned()).or_default();
        *n += 1;
        if *n > MAX_REJECTED_REPORTS {
            return self.lose(worker, conn, at, "too many rejected reports");
        }
        None
    }

    /// Whether every worker in `workers` has sent its share of `requests` stage `stage` (a
    /// worker lost since has nothing more to send).
    pub fn completed(&self, workers: &[String], stage: usize) -> bool {
        workers.iter().all(|id| {
            self.registry
                .live()
                .find(|w| &w.id == id)
                .is_none_or(|w| w.completed_stage as usize >= stage)
        })
    }

    /// Tells every running worker to stop, in-flight requests getting `stop_timeout`.
    pub fn stop_all(&mut self, stop_timeout: Duration) {
        let stop = pb::Stop {
            reason: "run complete".into(),
            stop_timeout_ms: stop_timeout.as_millis() as u64,
        };
        for w in self.registry.live_mut() {
            if w.state == State::Running && w.send(Msg::Stop(stop.clone())) {
                w.state = State::Stopping;
            }
        }
        self.stop = Some(stop);
    }

    /// Workers told to stop that have not sent their final report yet.
    /// Whether any worker is still to send its final report.
    pub fn any_stopping(&self) -> bool {
        self.registry.live().any(|w| w.state == State::Stopping)
    }

    pub fn stopping(&self) -> Vec<String> {
        self.registry
            .live()
            .filter(|w| w.state == State::Stopping)
            .map(|w| w.id.clone())
            .collect()
    }

    /// Tells every worker the session is over.
    pub fn quit_all(&self, reason: &str) {
        for w in self.registry.live() {
            w.send(Msg::Quit(pb::Quit {
                reason: reason.to_owned(),
            }));
        }
    }

    /// Forces a fresh assignment for everyone (someone joined or left).
    fn reassign_all(&mut self) {
        for w in self.registry.live_mut() {
            w.assigned.clear();
        }
    }
}

/// Ends a dropped worker's stream with a status saying why, so a worker that is still alive
/// (frozen, partitioned) stops its load and reconnects instead of running on.
fn disconnect(w: &Worker, why: &str) {
    let _ = w
        .outbox
        .try_send(Err(tonic::Status::aborted(format!("{why}; reconnect"))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    type Inbox = mpsc::Receiver<Result<pb::MasterMessage, tonic::Status>>;

    fn hello(id: &str) -> pb::Hello {
        pb::Hello {
            worker_id: id.into(),
            hostname: "h".into(),
            arch: "amd64".into(),
            cores: 2,
            protocol_version: stampede_proto::PROTOCOL_VERSION,
            version: "t".into(),
            instance: format!("{id}-instance"),
        }
    }

    fn fleet() -> Fleet {
        let config = pb::RunConfig {
            run_id: "run".into(),
            ..Default::default()
        };
        Fleet::new(config, Duration::from_secs(3))
    }

    fn join(f: &mut Fleet, id: &str, conn: u64, started: bool) -> Inbox {
        let (tx, rx) = mpsc::channel(8);
        f.join(
            conn,
            hello(id),
            tx,
            Liveness::new(),
            Duration::ZERO,
            started,
        );
        rx
    }

    fn kinds(rx: &mut Inbox) -> Vec<Msg> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| m.ok().and_then(|m| m.kind))
            .collect()
    }

    fn load(users: u32) -> Vec<pb::TargetLoad> {
        vec![pb::TargetLoad {
            target: 0,
            users,
            ..Default::default()
        }]
    }

    #[test]
    fn a_late_joiner_gets_the_run_and_loads_go_only_where_they_changed() {
        let mut f = fleet();
        let mut a = join(&mut f, "a", 1, false);
        let started: Vec<String> = f.start_all().into_iter().map(|s| s.id).collect();
        assert_eq!(started, vec!["a".to_owned()]);
        assert!(matches!(kinds(&mut a)[..], [Msg::Run(_)]));
        let mut b = join(&mut f, "b", 2, true);
        assert!(matches!(kinds(&mut b)[..], [Msg::Run(_)]));
        let running = f.running();
        assert_eq!(running, vec![("a".into(), 1), ("b".into(), 2)]);
        let lost = f.send_loads(running, vec![load(2), load(1)], 1, Duration::ZERO);
        assert!(lost.is_empty());
        // The same rows again: nothing is sent.
        f.send_loads(f.running(), vec![load(2), load(1)], 1, Duration::ZERO);
        let sent = kinds(&mut a);
        assert_eq!(sent.len(), 1, "{sent:?}");
        let Msg::Load(l) = &sent[0] else {
            panic!("a load, got {sent:?}")
        };
        assert_eq!(l.targets[0].users, 2);
        assert_eq!(kinds(&mut b).len(), 1);
    }

    #[test]
    fn a_lost_worker_takes_its_users_along_and_the_rest_are_reassigned() {
        let mut f = fleet();
        let _a = join(&mut f, "a", 1, false);
        let mut b = join(&mut f, "b", 2, false);
        f.start_all();
        f.send_loads(f.running(), vec![load(3), load(4)], 1, Duration::ZERO);
        let lost = f
            .lose("a", 1, Duration::from_secs(5), "connection lost")
            .unwrap();
        assert_eq!((lost.users, lost.unfinished), (3, true));
        assert_eq!(f.history()[0].reason.as_deref(), Some("connection lost"));
        assert_eq!(f.history()[0].left_s, Some(5.0));
        // A stale connection's loss is nothing.
        assert!(f.lose("b", 99, Duration::ZERO, "x").is_none());
        // The survivor's assignment was cleared, so the same row goes out again.
        kinds(&mut b);
        f.send_loads(f.running(), vec![load(4)], 1, Duration::ZERO);
        assert_eq!(kinds(&mut b).len(), 1);
    }

    #[test]
    fn a_worker_that_stops_reading_is_lost() {
        let mut f = fleet();
        let (tx, _rx) = mpsc::channel(1);
        f.join(1, hello("a"), tx, Liveness::new(), Duration::ZERO, false);
        f.start_all(); // fills its one-message queue
        let lost = f.send_loads(f.running(), vec![load(1)], 1, Duration::ZERO);
        assert_eq!(lost.len(), 1);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn too_many_rejected_reports_drop_the_worker_and_stop_reaches_latecomers() {
        let mut f = fleet();
        let _a = join(&mut f, "a", 1, false);
        f.start_all();
        for _ in 0..MAX_REJECTED_REPORTS {
            assert!(f.reject("a", 1, "bad", Duration::ZERO).is_none());
        }
        assert!(f.reject("a", 1, "bad", Duration::ZERO).is_some());
        f.stop_all(Duration::from_secs(1));
        let mut late = join(&mut f, "late", 2, true);
        assert!(matches!(kinds(&mut late)[..], [Msg::Run(_), Msg::Stop(_)]));
        assert_eq!(f.stopping(), vec!["late".to_owned()]);
    }
}
