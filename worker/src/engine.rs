//! The engine: N OS threads, each running its own current-thread tokio runtime and owning a
//! recording shard (wrk-style thread per core: no work stealing, no cross-thread wake-ups on the
//! hot path). Users are tasks spread over the threads round-robin.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stampede_proto::RunConfig;
use tokio::runtime::{self, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::EngineError;
use crate::plan::Plan;
use crate::pool::Pools;
use crate::record::{self, Histograms, Shard, SharedShard};
use crate::user::User;

/// How long a stopping engine thread waits for its runtime's blocking tasks (DNS lookups).
const THREAD_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Waits for stopped users; resolves to the number of users abandoned at the timeout.
pub type Drain = Pin<Box<dyn Future<Output = usize> + Send + 'static>>;

struct EngineThread {
    handle: Handle,
    shard: SharedShard,
    /// The thread's shared connection pools (shared connection mode only).
    pools: Option<Arc<Pools>>,
    /// Dropping it ends the thread's runtime.
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<thread::JoinHandle<()>>,
}

struct RunningUser {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs the users of one run configuration.
pub struct Engine {
    plan: Arc<Plan>,
    threads: Vec<EngineThread>,
    /// Per target, oldest first: scaling down cancels the newest.
    users: Vec<Vec<RunningUser>>,
    /// Cancelled users that may still be finishing their last request.
    draining: Vec<JoinHandle<()>>,
    next_thread: usize,
}

impl Engine {
    /// Compiles the configuration and starts `threads` engine threads (at least one). No users
    /// run until [`Engine::set_users`].
    pub fn build(config: &RunConfig, threads: usize) -> Result<Self, EngineError> {
        let plan = Arc::new(Plan::compile(config)?);
        let count = threads.max(1);
        // The worker's pool size is split over its threads (rounded up): each thread's users
        // borrow only their thread's connections, so no connection crosses threads.
        let per_thread = plan.shared_pool.map(|size| size.div_ceil(count));
        let threads = (0..count)
            .map(|index| start_thread(index, per_thread))
            .collect::<Result<Vec<_>, _>>()?;
        let users = plan.targets.iter().map(|_| Vec::new()).collect();
        Ok(Self {
            plan,
            threads,
            users,
            draining: Vec::new(),
            next_thread: 0,
        })
    }

    /// Moves target `target` to exactly `users` users at once: starts new ones, or cancels the
    /// newest (each finishes and records its in-flight request, then exits).
    pub fn set_users(&mut self, target: u32, users: u32) -> Result<(), EngineError> {
        let count = self.users.len();
        let index = target as usize;
        if index >= count {
            return Err(EngineError::UnknownTarget {
                index: target,
                count,
            });
        }
        self.draining.retain(|task| !task.is_finished());
        let want = users as usize;
        while self.users[index].len() > want {
            if let Some(user) = self.users[index].pop() {
                user.cancel.cancel();
                self.draining.push(user.task);
            }
        }
        while self.users[index].len() < want {
            let user = self.spawn_user(index);
            self.users[index].push(user);
        }
        debug!(target = %self.plan.targets[index].name, users, "load set");
        Ok(())
    }

    /// Users currently running (not counting cancelled ones finishing their last request).
    pub fn users_running(&self) -> u32 {
        let n: usize = self.users.iter().map(Vec::len).sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Number of targets in the run configuration.
    pub fn targets(&self) -> usize {
        self.users.len()
    }

    /// Users currently running for one target.
    pub fn target_users(&self, target: u32) -> u32 {
        self.users
            .get(target as usize)
            .map_or(0, |u| u32::try_from(u.len()).unwrap_or(u32::MAX))
    }

    /// Takes what every thread recorded since the last call, one map per thread.
    pub fn take_shards(&self) -> Vec<Histograms> {
        self.threads
            .iter()
            .map(|t| record::lock(&t.shard).take())
            .collect()
    }

    /// Stops every user and returns a future that resolves once they have all finished their
    /// in-flight requests, or `timeout` has passed (the rest are then aborted, their requests
    /// not recorded). The engine's threads keep running until it is dropped, so the future can
    /// be polled from anywhere.
    pub fn begin_stop(&mut self, timeout: Duration) -> Drain {
        let mut tasks = std::mem::take(&mut self.draining);
        for user in self.users.iter_mut().flat_map(std::mem::take) {
            user.cancel.cancel();
            tasks.push(user.task);
        }
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        Box::pin(async move {
            let all = async {
                for task in tasks {
                    // A user that panicked is gone either way; nothing to wait for.
                    let _ = task.await;
                }
            };
            if tokio::time::timeout(timeout, all).await.is_ok() {
                return 0;
            }
            let abandoned = aborts.iter().filter(|a| !a.is_finished()).count();
            for abort in &aborts {
                abort.abort();
            }
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
            pools: thread.pools.clone(),
            cancel: cancel.clone(),
        };
        let task = thread.handle.spawn(user.run());
        RunningUser { cancel, task }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for user in self.users.iter().flatten() {
            user.cancel.cancel();
        }
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
fn start_thread(index: usize, pool_size: Option<usize>) -> Result<EngineThread, EngineError> {
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
        shutdown: Some(shutdown_tx),
        join: Some(join),
    })
}
