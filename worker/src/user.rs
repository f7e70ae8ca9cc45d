//! One simulated user (the closed model): pick a request by weight, send and record it, wait;
//! until cancelled. Cancellation is looked at between requests and during the wait, never
//! mid-request, so every request that was sent is recorded. In a `requests` stage a user takes
//! a ticket before each request and idles once the count is used up.

use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::attempt::attempt;
use crate::h2::Hub;
use crate::http::Client;
use crate::plan::Plan;
use crate::pool::Pools;
use crate::quota::{Claim, QuotaView};
use crate::record::SharedShard;

/// What a user needs to run.
pub(crate) struct User {
    pub plan: Arc<Plan>,
    /// Index into the plan's targets.
    pub target: usize,
    /// The shard of the engine thread this user runs on.
    pub shard: SharedShard,
    pub quota: QuotaView,
    /// The engine thread's shared pools, when users share connections.
    pub pools: Option<Arc<Pools>>,
    /// The engine thread's HTTP/2 connections.
    pub hub: Arc<Hub>,
    pub cancel: CancellationToken,
}

impl User {
    /// The user loop.
    pub(crate) async fn run(mut self) {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let mut client = Client::new(self.pools.clone(), self.hub.clone());
        let target = &self.plan.targets[self.target];
        while !self.cancel.is_cancelled() {
            let ticket = match self.quota.claim() {
                Claim::Unlimited => None,
                Claim::Ticket(q) => Some(q),
                Claim::Exhausted => {
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = self.quota.changed() => continue,
                    }
                }
            };
            let started = Instant::now();
            let request = target.choice.pick(&mut rng) as usize;
            attempt(
                &self.plan,
                self.target,
                request,
                &mut client,
                &self.shard,
                started,
            )
            .await;
            if let Some(q) = ticket {
                q.finish();
            }
            let pause = self.plan.wait.next(started.elapsed(), &mut rng);
            if pause.is_zero() {
                // No think time: still let the other users of this thread run now and then (an
                // instantly failing connect would otherwise never yield). Spending coop budget
                // yields only once the budget is used up, where a yield after every request made
                // the runtime wake itself through its eventfd (a write syscall) each time.
                tokio::task::consume_budget().await;
                continue;
            }
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
