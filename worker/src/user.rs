//! One simulated user: pick a request by weight, send it, record it, wait; until cancelled.
//! Cancellation is looked at between requests and during the wait, never mid-request, so every
//! request that was sent is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::http::{self, Client, Exchange};
use crate::outcome::{ErrorKind, classify_error, is_unexpected, status_outcome};
use crate::plan::Plan;
use crate::pool::Pools;
use crate::record::{self, Sample, SharedShard};

/// What a user needs to run.
pub(crate) struct User {
    pub plan: Arc<Plan>,
    /// Index into the plan's targets.
    pub target: usize,
    /// The shard of the engine thread this user runs on.
    pub shard: SharedShard,
    /// The engine thread's shared pools, when users share connections.
    pub pools: Option<Arc<Pools>>,
    pub cancel: CancellationToken,
}

impl User {
    /// The user loop.
    pub(crate) async fn run(self) {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let mut client = Client::new(self.pools.clone());
        let target = &self.plan.targets[self.target];
        while !self.cancel.is_cancelled() {
            let started = Instant::now();
            let request = target.choice.pick(&mut rng) as usize;
            let exchange = client.execute(&self.plan, self.target, request).await;
            self.record(request, &exchange);
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

    fn record(&self, request: usize, exchange: &Exchange) {
        let r = &self.plan.requests[request];
        let (outcome, unexpected, arch) = match &exchange.result {
            Ok(answer) => {
                let status = answer.status.as_u16();
                (
                    status_outcome(status),
                    is_unexpected(status, &r.expect),
                    answer.arch.as_ref().map(|v| v.as_bytes()),
                )
            }
            Err(err) => {
                let kind = classify_error(err);
                self.log_first(kind, err);
                (kind.outcome(), true, None)
            }
        };
        let sample = Sample {
            target: self.target as u32,
            request: request as u32,
            outcome,
            unexpected,
            arch_header: arch,
            declared_arch: &self.plan.targets[self.target].arch,
            latency_us: u64::try_from(exchange.latency.as_micros()).unwrap_or(u64::MAX),
        };
        record::lock(&self.shard).record(sample);
    }

    /// Logs the first error of each kind in the run; the rest are only counted.
    fn log_first(&self, kind: ErrorKind, err: &http::Error) {
        let flag = &self.plan.error_logged[kind as usize];
        if !flag.load(Ordering::Relaxed) && !flag.swap(true, Ordering::Relaxed) {
            let target = &self.plan.targets[self.target].name;
            let mut detail = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !detail.contains(&text) {
                    detail = format!("{detail}: {text}");
                }
                source = cause.source();
            }
            warn!(target = %target, "first {kind:?} error of this run (later ones are counted, not logged): {detail}");
        }
    }
}
