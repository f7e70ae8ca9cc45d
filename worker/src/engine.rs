//! The engine: N OS threads, each running its own current-thread tokio runtime and owning a
//! recording shard (wrk-style thread per core: no work stealing, no cross-thread wake-ups on the
//! hot path). The closed model runs users, tasks spread over the threads round-robin; the open
//! model runs one arrival schedule per thread and target, each at its share of the rate. Both
//! send through the same request path, and both honour a `requests` stage's count.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use hdrhistogram::Histogram;
use stampede_proto::{Arrivals, LoadModel, RunConfig};
use tokio::runtime::{self, Handle};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::EngineError;
use crate::arrivals::Gaps;
use crate::h2::Hub;
use crate::open::{Pool, Schedule};
use crate::plan::Plan;
use crate::pool::Pools;
use crate::quota::{Quota, QuotaSender, QuotaView};
use crate::record::{self, Histograms, PhaseHistograms, ReasonCount, Shard, SharedShard};
use crate::user::User;

/// The open model's in-flight bound per worker when the configuration leaves it at 0.
const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

/// How long a stopping engine thread waits for its runtime's blocking tasks (DNS lookups).
const THREAD_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Waits for stopped users; resolves to the number of users abandoned at the timeout.
pub type Drain = Pin<Box<dyn Future<Output = usize> + Send + 'static>>;

struct EngineThread {
    handle: Handle,
    shard: SharedShard,
    /// The thread's shared connection pools (shared connection mode only).
    pools: Option<Arc<Pools>>,
    /// The thread's HTTP/2 connections, per target.
    hub: Arc<Hub>,
    /// Dropping it ends the thread's runtime.
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<thread::JoinHandle<()>>,
}

struct RunningUser {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// The load on one target for this worker: users (closed model) or arrivals per second (open
/// model), and, in a `requests` stage, how many requests to send in it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Level {
    pub users: u32,
    pub rate: f64,
    /// `Some(n)`: send exactly `n` requests in this stage (0: none), then idle.
    pub quota: Option<u64>,
}

/// One target's load and the channels its senders watch.
struct TargetRun {
    /// Oldest first: scaling down cancels the newest.
    users: Vec<RunningUser>,
    quota: QuotaSender,
    /// The quota in force, as published.
    current_quota: Option<Arc<Quota>>,
    /// Open model: each thread's share of the rate.
    rate: watch::Sender<f64>,
    rate_total: f64,
}

/// Runs the load of one run configuration.
pub struct Engine {
    plan: Arc<Plan>,
    model: LoadModel,
    threads: Vec<EngineThread>,
    targets: Vec<TargetRun>,
    /// Cancelled users that may still be finishing their last request.
    draining: Vec<JoinHandle<()>>,
    next_thread: usize,
    /// Open model: the arrival schedules.
    schedules: Vec<JoinHandle<()>>,
    /// Open model: in-flight arrivals.
    in_flight: TaskTracker,
    stop_arrivals: CancellationToken,
    abandon: CancellationToken,
    /// The stage of the quotas in force (0: none yet).
    quota_stage: u32,
    /// The latest stage whose quotas were all done when last asked.
    completed: AtomicU32,
}

impl Engine {
    /// Compiles the configuration and starts `threads` engine threads (at least one). Nothing
    /// is sent until [`Engine::set_users`] / [`Engine::apply`].
    pub fn build(config: &RunConfig, threads: usize) -> Result<Self, EngineError> {
        let plan = Arc::new(Plan::compile(config)?);
        let model = LoadModel::try_from(config.model)
            .map_err(|_| EngineError::Unsupported("an unknown load model"))?;
        let arrivals = Arrivals::try_from(config.arrivals)
            .map_err(|_| EngineError::Unsupported("an unknown arrival distribution"))?;
        let count = threads.max(1);
        // The worker's pool size is split over its threads (rounded up): each thread's users
        // borrow only their thread's connections, so no connection crosses threads.
        let per_thread = plan.shared_pool.map(|size| size.div_ceil(count));
        let threads = (0..count)
            .map(|index| start_thread(index, per_thread, Arc::new(Hub::new(&plan, count))))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = plan
            .targets
            .iter()
            .map(|_| TargetRun {
                users: Vec::new(),
                quota: watch::Sender::new(None),
                current_quota: None,
                rate: watch::Sender::new(0.0),
                rate_total: 0.0,
            })
            .collect();
        let mut engine = Self {
            plan,
            model,
            threads,
            targets,
            draining: Vec::new(),
            next_thread: 0,
            schedules: Vec::new(),
            in_flight: TaskTracker::new(),
            stop_arrivals: CancellationToken::new(),
            abandon: CancellationToken::new(),
            quota_stage: 0,
            completed: AtomicU32::new(0),
        };
        if model == LoadModel::Open {
            let bound = match config.max_in_flight {
                0 => DEFAULT_MAX_IN_FLIGHT,
                n => n,
            };
            engine.start_schedules(Gaps { kind: arrivals }, bound);
        }
        Ok(engine)
    }

    /// One arrival schedule per thread and target, idle until a rate is set. The in-flight
    /// bound is shared out over the threads (each thread's arrivals only ever touch its own).
    fn start_schedules(&mut self, gaps: Gaps, max_in_flight: u32) {
        let n = self.threads.len();
        let per_thread = (max_in_flight as usize).div_ceil(n).max(1);
        for (i, thread) in self.threads.iter().enumerate() {
            let slots = Arc::new(Semaphore::new(per_thread));
            for (t, run) in self.targets.iter().enumerate() {
                let schedule = Schedule {
                    plan: Arc::clone(&self.plan),
                    target: t,
                    shard: Arc::clone(&thread.shard),
                    rate: run.rate.subscribe(),
                    quota: QuotaView::new(run.quota.subscribe()),
                    gaps,
                    phase: (i + 1) as f64 / n as f64,
                    slots: Arc::clone(&slots),
                    pool: Pool::default(),
                    hub: Arc::clone(&thread.hub),
                    tracker: self.in_flight.clone(),
                    cancel: self.stop_arrivals.clone(),
                    abort: self.abandon.clone(),
                };
                self.schedules.push(thread.handle.spawn(schedule.run()));
            }
        }
    }

    /// Applies absolute per-target levels for plan stage `stage` (targets not named go to
    /// zero). A quota counts from the first time its stage is applied: applying the same stage
    /// again changes levels, never the count so far.
    pub fn apply(&mut self, stage: u32, levels: &[Level]) -> Result<(), EngineError> {
        if levels.len() > self.targets.len() {
            return Err(EngineError::UnknownTarget {
                index: levels.len() as u32 - 1,
                count: self.targets.len(),
            });
        }
        if levels.iter().any(|l| l.quota.is_some()) {
            self.quota_stage = stage;
        }
        let level = |t: usize| levels.get(t).copied().unwrap_or_default();
        // Lower levels first and raise them last, with the quotas changed in between: a sender
        // never runs under a quota that is not its stage's (no request escapes a count, none
        // is sent in a pause).
        for t in 0..self.targets.len() {
            self.set_level(t, level(t), |new, old| new < old)?;
        }
        for t in 0..self.targets.len() {
            self.set_quota(t, stage, level(t).quota);
        }
        for t in 0..self.targets.len() {
            self.set_level(t, level(t), |new, old| new > old)?;
        }
        Ok(())
    }

    /// Stops all load at once, in either model (the dead-man switch), leaving quotas as they
    /// are: a master that comes back resumes a counted stage where it was.
    pub fn halt(&mut self) -> Result<(), EngineError> {
        for t in 0..self.targets.len() {
            self.set_level(t, Level::default(), |_, _| true)?;
        }
        Ok(())
    }

    /// Sets target `t`'s users or rate to `level`'s when `when(new, old)` holds.
    fn set_level(
        &mut self,
        t: usize,
        level: Level,
        when: impl Fn(f64, f64) -> bool,
    ) -> Result<(), EngineError> {
        match self.model {
            LoadModel::Closed => {
                let old = self.targets[t].users.len() as f64;
                if when(f64::from(level.users), old) {
                    self.set_users(t as u32, level.users)?;
                }
            }
            LoadModel::Open => {
                let rate = if level.rate.is_finite() {
                    level.rate.max(0.0)
                } else {
                    0.0
                };
                if when(rate, self.targets[t].rate_total) {
                    self.set_rate(t, rate);
                }
            }
        }
        Ok(())
    }

    fn set_quota(&mut self, target: usize, stage: u32, limit: Option<u64>) {
        let run = &mut self.targets[target];
        match (limit, &run.current_quota) {
            (None, None) => {}
            (None, Some(_)) => {
                run.current_quota = None;
                run.quota.send_replace(None);
            }
            (Some(n), Some(q)) if q.stage == stage => {
                if q.limit() != n {
                    q.set_limit(n);
                    // Wake senders that found the old count used up.
                    run.quota.send_replace(Some(q.clone()));
                }
            }
            (Some(n), _) => {
                let q = Arc::new(Quota::new(stage, n));
                run.current_quota = Some(q.clone());
                run.quota.send_replace(Some(q));
            }
        }
    }

    /// Open model: `rate` arrivals per second on `target` (finite, not negative: see
    /// `set_level`), shared evenly by the threads.
    fn set_rate(&mut self, target: usize, rate: f64) {
        let run = &mut self.targets[target];
        run.rate_total = rate;
        let share = rate / self.threads.len() as f64;
        run.rate.send_if_modified(|r| {
            let changed = *r != share;
            *r = share;
            changed
        });
    }

    /// The latest `requests` stage whose count this worker has sent in full, every request
    /// recorded (so a report taken after this call carries all of them).
    pub fn completed_stage(&self) -> u32 {
        let stage = self.quota_stage;
        let mut quotas = self
            .targets
            .iter()
            .filter_map(|t| t.current_quota.as_ref())
            .filter(|q| q.stage == stage)
            .peekable();
        if stage > 0 && quotas.peek().is_some() && quotas.all(|q| q.is_done()) {
            self.completed.fetch_max(stage, Ordering::SeqCst);
        }
        self.completed.load(Ordering::SeqCst)
    }

    /// Moves target `target` to exactly `users` users at once: starts new ones, or cancels the
    /// newest (each finishes and records its in-flight request, then exits).
    pub fn set_users(&mut self, target: u32, users: u32) -> Result<(), EngineError> {
        let count = self.targets.len();
        let index = target as usize;
        if index >= count {
            return Err(EngineError::UnknownTarget {
                index: target,
                count,
            });
        }
        self.draining.retain(|task| !task.is_finished());
        let want = users as usize;
        while self.targets[index].users.len() > want {
            if let Some(user) = self.targets[index].users.pop() {
                user.cancel.cancel();
                self.draining.push(user.task);
            }
        }
        while self.targets[index].users.len() < want {
            let user = self.spawn_user(index);
            self.targets[index].users.push(user);
        }
        debug!(target = %self.plan.targets[index].name, users, "load set");
        Ok(())
    }

    /// Users currently running (not counting cancelled ones finishing their last request).
    pub fn users_running(&self) -> u32 {
        let n: usize = self.targets.iter().map(|t| t.users.len()).sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Open model: arrivals per second currently scheduled, over all targets.
    pub fn rate_running(&self) -> f64 {
        self.targets.iter().map(|t| t.rate_total).sum()
    }

    /// Neither users nor arrivals are scheduled.
    pub fn is_idle(&self) -> bool {
        self.users_running() == 0 && self.rate_running() <= 0.0
    }

    /// Number of targets in the run configuration.
    pub fn targets(&self) -> usize {
        self.targets.len()
    }

    /// Open-model arrivals dropped (no free slot) since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| record::lock(&t.shard).take_dropped())
            .sum()
    }

    /// The open model's send lags (µs) of every thread since the last call; `None` if no
    /// arrival was sent.
    pub fn take_send_lag(&self) -> Option<Histogram<u64>> {
        let mut merged: Option<Histogram<u64>> = None;
        for t in &self.threads {
            let Some(h) = record::lock(&t.shard).take_send_lag() else {
                continue;
            };
            match merged.as_mut() {
                // Same bounds on both sides, so adding cannot fail.
                Some(m) => {
                    let _ = m.add(&h);
                }
                None => merged = Some(h),
            }
        }
        merged
    }

    /// Takes what every thread recorded since the last call, one map per thread.
    pub fn take_shards(&self) -> Vec<Histograms> {
        self.threads
            .iter()
            .map(|t| record::lock(&t.shard).take())
            .collect()
    }

    /// Takes the phase histograms every thread recorded since the last call, merged.
    pub fn take_phases(&self) -> PhaseHistograms {
        let mut merged = PhaseHistograms::new();
        for t in &self.threads {
            for (key, h) in record::lock(&t.shard).take_phases() {
                match merged.entry(key) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(h);
                    }
                    // Same bounds on both sides, so adding cannot fail.
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        let _ = e.get_mut().add(&h);
                    }
                }
            }
        }
        merged
    }

    /// Takes the failure reasons every thread counted since the last call, merged.
    pub fn take_reasons(&self) -> Vec<ReasonCount> {
        let mut merged: Vec<ReasonCount> = Vec::new();
        for t in &self.threads {
            for r in record::lock(&t.shard).take_reasons() {
                match merged.iter_mut().find(|m| {
                    m.target == r.target && m.outcome == r.outcome && m.reason == r.reason
                }) {
                    Some(m) => m.count += r.count,
                    None => merged.push(r),
                }
            }
        }
        merged
    }

    /// Stops every user and returns a future that resolves once they have all finished their
    /// in-flight requests, or `timeout` has passed (the rest are then aborted, their requests
    /// not recorded). The engine's threads keep running until it is dropped, so the future can
    /// be polled from anywhere.
    pub fn begin_stop(&mut self, timeout: Duration) -> Drain {
        let mut tasks = std::mem::take(&mut self.draining);
        for user in self
            .targets
            .iter_mut()
            .flat_map(|t| std::mem::take(&mut t.users))
        {
            user.cancel.cancel();
            tasks.push(user.task);
        }
        for t in &mut self.targets {
            t.rate_total = 0.0;
        }
        self.stop_arrivals.cancel();
        tasks.append(&mut self.schedules);
        self.in_flight.close();
        let in_flight = self.in_flight.clone();
        let abandon = self.abandon.clone();
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        Box::pin(async move {
            let all = async {
                for task in tasks {
                    // A user that panicked is gone either way; nothing to wait for.
                    let _ = task.await;
                }
                in_flight.wait().await;
            };
            if tokio::time::timeout(timeout, all).await.is_ok() {
                return 0;
            }
            let abandoned = aborts.iter().filter(|a| !a.is_finished()).count() + in_flight.len();
            for abort in &aborts {
                abort.abort();
            }
            abandon.cancel();
            warn!(
                abandoned,
                "stop timeout elapsed; abandoning in-flight requests"
            );
            abandoned
        })
    }

    /// Stops every user, waiting up to `timeout` for in-flight requests; returns how many were
    /// abandoned.
    pub async fn stop(&mut self, timeout: Duration) -> usize {
        self.begin_stop(timeout).await
    }

    fn spawn_user(&mut self, target: usize) -> RunningUser {
        let thread = &self.threads[self.next_thread % self.threads.len()];
        self.next_thread = self.next_thread.wrapping_add(1);
        let cancel = CancellationToken::new();
        let user = User {
            plan: Arc::clone(&self.plan),
            target,
            shard: Arc::clone(&thread.shard),
            quota: QuotaView::new(self.targets[target].quota.subscribe()),
            pools: thread.pools.clone(),
            hub: Arc::clone(&thread.hub),
            cancel: cancel.clone(),
        };
        let task = thread.handle.spawn(user.run());
        RunningUser { cancel, task }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for user in self.targets.iter().flat_map(|t| &t.users) {
            user.cancel.cancel();
        }
        self.stop_arrivals.cancel();
        self.abandon.cancel();
        // Ending each runtime drops its tasks (users and connections).
        for t in &mut self.threads {
            t.shutdown.take();
        }
        for t in &mut self.threads {
            if let Some(join) = t.join.take()
                && join.join().is_err()
            {
                warn!("an engine thread panicked");
            }
        }
    }
}

/// Starts one engine thread, with shared pools of `pool_size` connections per endpoint if
/// given, and waits for its runtime to be up.
fn start_thread(
    index: usize,
    pool_size: Option<usize>,
    hub: Arc<Hub>,
) -> Result<EngineThread, EngineError> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let join = thread::Builder::new()
        .name(format!("stampede-engine-{index}"))
        .spawn(move || {
            let rt = match runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            // Drives the users until the engine drops the sender.
            rt.block_on(async {
                let _ = shutdown_rx.await;
            });
            rt.shutdown_timeout(THREAD_SHUTDOWN_GRACE);
        })
        .map_err(EngineError::Thread)?;
    let handle = match handle_rx.recv() {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => return Err(EngineError::Thread(e)),
        Err(_) => {
            return Err(EngineError::Thread(std::io::Error::other(
                "engine thread exited before starting its runtime",
            )));
        }
    };
    Ok(EngineThread {
        handle,
        shard: Arc::new(std::sync::Mutex::new(Shard::new())),
        pools: pool_size.map(|size| Arc::new(Pools::new(size))),
        hub,
        shutdown: Some(shutdown_tx),
        join: Some(join),
    })
}
