//! The one request path both load models share: send a request (following redirects) and
//! record it on this thread's shard. The closed model's users and the open model's arrivals
//! differ only in when they call it and where latency starts counting.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::warn;

use crate::http::{self, Client};
use crate::outcome::{self, ErrorKind, classify_error, is_unexpected, status_outcome};
use crate::plan::Plan;
use crate::record::{self, Sample, SharedShard};

/// Sends request `request` to target `target` on `client` and records it. Latency counts from
/// `origin`: when a user started the request, or when an open-model arrival was due, so time
/// spent waiting for the worker itself is never hidden.
pub(crate) async fn attempt(
    plan: &Plan,
    target: usize,
    request: usize,
    client: &mut Client,
    shard: &SharedShard,
    origin: Instant,
) {
    let exchange = client.execute(plan, target, request, origin).await;
    let r = &plan.requests[request];
    let mut reason = None;
    let (outcome, unexpected, arch) = match &exchange.result {
        Ok(answer) => {
            let status = answer.status;
            (
                status_outcome(status),
                is_unexpected(status, &r.expect),
                answer.arch.as_ref().map(|v| v.as_bytes()),
            )
        }
        Err(err) => {
            let kind = classify_error(err);
            reason = Some(outcome::reason(err));
            log_first(plan, target, kind, err);
            (kind.outcome(), true, None)
        }
    };
    let sample = Sample {
        target: target as u32,
        request: request as u32,
        outcome,
        unexpected,
        arch_header: arch,
        declared_arch: &plan.targets[target].arch,
        latency_us: u64::try_from(exchange.latency.as_micros()).unwrap_or(u64::MAX),
        phases: exchange.phases,
        reason,
    };
    record::lock(shard).record(sample);
}

/// Logs the first error of each kind in the run; the rest are only counted.
fn log_first(plan: &Plan, target: usize, kind: ErrorKind, err: &http::Error) {
    let flag = &plan.error_logged[kind as usize];
    if !flag.load(Ordering::Relaxed) && !flag.swap(true, Ordering::Relaxed) {
        let target = &plan.targets[target].name;
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
