//! Honest overload: at most `max_inflight` multiplies at once, at most `max_queue` requests
//! waiting for one, and no request waiting past its deadline.
//!
//! A saturated service that queues without bound only turns overload into timeouts everywhere;
//! this one says so: a request that finds the slots busy and the queue full is refused at once
//! (503, with `Retry-After`), and one that waited too long is answered 504 without doing the work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot busy and the queue full.
    #[error("server at capacity: every compute slot is busy and the queue is full")]
    Overloaded,
    /// Waited in the queue past the deadline.
    #[error("waited past the deadline for a compute slot")]
    DeadlineExceeded,
}

/// The in-flight / queue limiter.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    deadline: Duration,
    in_flight: Gauge,
    queue_depth: Gauge,
}

/// The right to run one multiply; the slot frees when this drops.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_flight: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// One place in the queue, given back when this drops (admitted, timed out or abandoned).
struct Place<'a>(&'a Admission);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.queue_depth.dec();
    }
}

impl Admission {
    /// A limiter with `max_inflight` slots (at least one) and room for `max_queue` waiting; the
    /// gauges follow the number running and the number waiting.
    pub fn new(
        max_inflight: usize,
        max_queue: usize,
        deadline: Duration,
        in_flight: Gauge,
        queue_depth: Gauge,
    ) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(max_inflight.max(1))),
            waiting: AtomicUsize::new(0),
            max_queue,
            deadline,
            in_flight,
            queue_depth,
        }
    }

    /// Waits for a slot for a request that arrived at `arrived`: at once if one is free, in the
    /// queue (first come, first served) if there is room, until `arrived + deadline` at most.
    pub async fn admit(&self, arrived: Instant) -> Result<Slot, Refusal> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(self.slot(permit));
        }
        let joined = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_queue).then_some(n + 1)
            });
        if joined.is_err() {
            return Err(Refusal::Overloaded);
        }
        self.queue_depth.inc();
        let _place = Place(self);
        let until = tokio::time::Instant::from_std(arrived + self.deadline);
        match tokio::time::timeout_at(until, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
            // The semaphore is never closed; if it were, there would be no capacity at all.
            Ok(Err(_closed)) => Err(Refusal::Overloaded),
            Err(_elapsed) => Err(Refusal::DeadlineExceeded),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.in_flight.inc();
        Slot {
            _permit: permit,
            in_flight: self.in_flight.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_inflight: usize, max_queue: usize, deadline: Duration) -> Admission {
        Admission::new(
            max_inflight,
            max_queue,
            deadline,
            Gauge::default(),
            Gauge::default(),
        )
    }

    #[tokio::test]
    async fn full_slots_and_queue_refuse_at_once() {
        let limiter = admission(1, 0, Duration::from_secs(60));
        let held = limiter.admit(Instant::now()).await.unwrap();
        assert_eq!(limiter.in_flight.get(), 1);
        assert_eq!(
            limiter.admit(Instant::now()).await.unwrap_err(),
            Refusal::Overloaded
        );
        drop(held);
        assert_eq!(limiter.in_flight.get(), 0);
        limiter.admit(Instant::now()).await.unwrap();
    }

    #[tokio::test]
    async fn a_queued_request_gets_the_freed_slot() {
        let limiter = Arc::new(admission(1, 1, Duration::from_secs(60)));
        let held = limiter.admit(Instant::now()).await.unwrap();
        let waiter = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.admit(Instant::now()).await.map(drop) })
        };
        while limiter.queue_depth.get() == 0 {
            tokio::task::yield_now().await;
        }
        // The queue (of one) is full now.
        assert_eq!(
            limiter.admit(Instant::now()).await.unwrap_err(),
            Refusal::Overloaded
        );
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(limiter.queue_depth.get(), 0);
        assert_eq!(limiter.in_flight.get(), 0);
    }

    #[tokio::test]
    async fn waiting_past_the_deadline_is_refused() {
        let limiter = admission(1, 4, Duration::from_millis(20));
        let _held = limiter.admit(Instant::now()).await.unwrap();
        assert_eq!(
            limiter.admit(Instant::now()).await.unwrap_err(),
            Refusal::DeadlineExceeded
        );
        assert_eq!(limiter.queue_depth.get(), 0);
    }
}
