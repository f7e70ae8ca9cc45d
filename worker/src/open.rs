//! The open model (wrk2/k6 arrival rate): on each engine thread, for each target, a schedule of
//! arrivals at the rate the master assigns. Each arrival that finds a free slot (the in-flight
//! bound) becomes a task running the same request path as a user, with latency counted from
//! when the arrival was *due*, not from when it got sent: a stalled server (or a late worker)
//! shows in the latency instead of silently thinning the load (no coordinated omission). An
//! arrival that finds no free slot is counted as dropped, never sent and never hidden.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::arrivals::Gaps;
use crate::attempt::attempt;
use crate::h2::Hub;
use crate::http::Client;
use crate::plan::Plan;
use crate::quota::{Claim, QuotaView};
use crate::record::{self, SharedShard};
use crate::timer::ArrivalTimer;

/// Idle keep-alive connections, per engine thread and target: an arrival borrows one (or opens
/// one) and gives it back, so connections are reused the way a pool would.
pub(crate) type Pool = Arc<Mutex<Vec<Client>>>;

/// One arrival schedule: one target on one engine thread.
pub(crate) struct Schedule {
    pub plan: Arc<Plan>,
    pub target: usize,
    pub shard: SharedShard,
    /// This thread's share of the target's rate, arrivals per second.
    pub rate: watch::Receiver<f64>,
    pub quota: QuotaView,
    pub gaps: Gaps,
    /// Where uniform arrivals of this thread fall within the period (0..=1).
    pub phase: f64,
    /// This thread's share of the in-flight bound.
    pub slots: Arc<Semaphore>,
    pub pool: Pool,
    /// The engine thread's HTTP/2 connections.
    pub hub: Arc<Hub>,
    /// In-flight arrivals, so a stop can wait for them.
    pub tracker: TaskTracker,
    /// Ends the schedule (no more arrivals).
    pub cancel: CancellationToken,
    /// Abandons in-flight arrivals (the stop timeout passed).
    pub abort: CancellationToken,
}

impl Schedule {
    pub(crate) async fn run(mut self) {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        // Where the next gap is counted from: the last arrival that was due (so the spacing
        // holds whatever the rate does), or the start of the schedule.
        let mut anchor: Option<Instant> = None;
        let mut timer = ArrivalTimer::new();
        loop {
            let rate = *self.rate.borrow_and_update();
            if rate.is_nan() || rate <= 0.0 {
                anchor = None;
                tokio::select! {
                    () = self.cancel.cancelled() => return,
                    changed = self.rate.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let from =
                *anchor.get_or_insert_with(|| self.gaps.start(Instant::now(), rate, self.phase));
            let due = from + self.gaps.next(rate, &mut rng);
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                changed = self.rate.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if self.gaps.redraw_from_now() {
                        anchor = Some(Instant::now());
                    }
                }
                () = timer.sleep_until(due) => {
                    if self.arrive(due, &mut rng) {
                        anchor = Some(due);
                    } else {
                        // The stage's count is used up: no arrivals until the next stage.
                        anchor = None;
                        tokio::select! {
                            () = self.cancel.cancelled() => return,
                            () = self.quota.changed() => {}
                        }
                    }
                }
            }
        }
    }

    /// One arrival, due at `due`: sent if a slot is free, else counted as dropped. False when
    /// the stage's count is used up (nothing was sent).
    fn arrive(&mut self, due: Instant, rng: &mut SmallRng) -> bool {
        let ticket = match self.quota.claim() {
            Claim::Unlimited => None,
            Claim::Ticket(q) => Some(q),
            Claim::Exhausted => return false,
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // Not sent, so it does not count toward the stage's requests.
            if let Some(q) = ticket {
                q.unclaim();
            }
            record::lock(&self.shard).drop_arrival();
            return true;
        };
        let request = self.plan.targets[self.target].choice.pick(rng) as usize;
        let (plan, shard, pool, abort, hub) = (
            self.plan.clone(),
            self.shard.clone(),
            self.pool.clone(),
            self.abort.clone(),
            self.hub.clone(),
        );
        let target = self.target;
        self.tracker.spawn(async move {
            let mut client = take(&pool, hub);
            let origin = due.into_std();
            // The generator's own error: how late this arrival's request starts.
            let lag = origin.elapsed();
            record::lock(&shard)
                .record_send_lag(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
            tokio::select! {
                // Abandoned at the stop timeout: not recorded, and its connection is dropped.
                () = abort.cancelled() => return,
                () = attempt(&plan, target, request, &mut client, &shard, origin) => {}
            }
            give_back(&pool, client);
            if let Some(q) = ticket {
                q.finish();
            }
            drop(slot);
        });
        true
    }
}

fn take(pool: &Pool, hub: Arc<Hub>) -> Client {
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop()
        .unwrap_or_else(|| Client::new(None, hub))
}

fn give_back(pool: &Pool, client: Client) {
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(client);
}
