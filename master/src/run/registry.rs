//! The workers the master knows: who they are, how to reach them, what they last said, and the
//! history of joins and departures for the summary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stampede_proto as pb;

use crate::outcome::WorkerRecord;
use crate::wire::{Liveness, Outbox};

/// A worker's state as the master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connected,
    Running,
    Stopping,
    Finished,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Finished => "finished",
        }
    }
}

#[derive(Debug)]
pub struct Worker {
    pub id: String,
    pub hostname: String,
    pub arch: String,
    /// Random per worker process: the same instance under the same id is a reconnect.
    pub instance: String,
    /// The process as the aggregator tells them apart (id and instance).
    pub source: String,
    pub conn: u64,
    pub outbox: Outbox,
    pub state: State,
    /// Requests per second in its last report.
    pub rps: f64,
    /// The connection's view: when it last brought anything, the last heartbeat.
    pub liveness: Arc<Liveness>,
    /// Its current assignment, per target (empty: none sent yet, or a re-send is due).
    pub assigned: Vec<pb::TargetLoad>,
    /// The plan stage of its current assignment.
    pub assigned_stage: u32,
    /// The latest `requests` stage whose count it has sent in full.
    pub completed_stage: u32,
    /// Index into the history, for recording when it left.
    record: usize,
}

impl Worker {
    /// Queues a message; false when the worker is not reading (its queue is full or closed).
    pub fn send(&self, kind: pb::master_message::Kind) -> bool {
        self.outbox
            .try_send(Ok(pb::MasterMessage { kind: Some(kind) }))
            .is_ok()
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    live: BTreeMap<String, Worker>,
    history: Vec<WorkerRecord>,
}

/// Why a worker could not join.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinError {
    DuplicateId(String),
}

/// What a successful join did.
#[derive(Debug)]
pub enum Joined {
    New,
    /// The worker came back on a new connection; its old one (returned) is no longer live.
    Replaced(Worker),
}

impl Registry {
    /// Admits a worker; `at` is the run time. A live worker with the same id is replaced when
    /// the newcomer is the same process reconnecting (same instance) or the old connection has
    /// been silent for `stale_after`; otherwise the newcomer is refused.
    pub fn join(
        &mut self,
        conn: u64,
        hello: pb::Hello,
        outbox: Outbox,
        liveness: Arc<Liveness>,
        at: Duration,
        stale_after: Duration,
    ) -> Result<Joined, JoinError> {
        let mut joined = Joined::New;
        if let Some(old) = self.live.get(&hello.worker_id) {
            let same_process = !hello.instance.is_empty() && old.instance == hello.instance;
            if !same_process && old.liveness.silence() <= stale_after {
                return Err(JoinError::DuplicateId(hello.worker_id));
            }
            let (id, old_conn) = (old.id.clone(), old.conn);
            let why = if same_process {
                "reconnected"
            } else {
                "replaced by a new process with its id"
            };
            if let Some(old) = self.leave(&id, old_conn, at, why) {
                joined = Joined::Replaced(old);
            }
        }
        self.history.push(WorkerRecord {
            id: hello.worker_id.clone(),
            arch: hello.arch.clone(),
            hostname: hello.hostname.clone(),
            joined_s: at.as_secs_f64(),
            left_s: None,
            reason: None,
        });
        let worker = Worker {
            id: hello.worker_id.clone(),
            hostname: hello.hostname,
            arch: hello.arch,
            source: crate::journal::source_of(&hello.worker_id, &hello.instance),
            instance: hello.instance,
            conn,
            outbox,
            state: State::Connected,
            rps: 0.0,
            liveness,
            assigned: Vec::new(),
            assigned_stage: 0,
            completed_stage: 0,
            record: self.history.len() - 1,
        };
        self.live.insert(hello.worker_id, worker);
        Ok(joined)
    }

    /// The live worker `id` on connection `conn` (a stale connection's events are ignored).
    pub fn get_mut(&mut self, id: &str, conn: u64) -> Option<&mut Worker> {
        self.live.get_mut(id).filter(|w| w.conn == conn)
    }

    /// Removes a worker, recording when and why; returns it if it was live on `conn`.
    pub fn leave(&mut self, id: &str, conn: u64, at: Duration, reason: &str) -> Option<Worker> {
        if self.live.get(id).is_none_or(|w| w.conn != conn) {
            return None;
        }
        let worker = self.live.remove(id)?;
        if let Some(r) = self.history.get_mut(worker.record) {
            r.left_s = Some(at.as_secs_f64());
            r.reason = Some(reason.to_owned());
        }
        Some(worker)
    }

    pub fn live(&self) -> impl Iterator<Item = &Worker> {
        self.live.values()
    }

    pub fn live_mut(&mut self) -> impl Iterator<Item = &mut Worker> {
        self.live.values_mut()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Workers that have not been heard from within `timeout`.
    pub fn silent(&self, timeout: Duration) -> Vec<(String, u64)> {
        self.live
            .values()
            .filter(|w| w.liveness.silence() > timeout)
            .map(|w| (w.id.clone(), w.conn))
            .collect()
    }

    /// Starts from the history of a run before its master's outage.
    pub fn restore_history(&mut self, history: Vec<WorkerRecord>) {
        self.history = history;
    }

    /// Every worker that took part, with join and leave times.
    pub fn history(&self) -> &[WorkerRecord] {
        &self.history
    }
}
