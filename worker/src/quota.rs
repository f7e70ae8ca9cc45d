//! A `requests` stage's count on this worker for one target. Users and arrivals claim a ticket
//! before each request and mark it finished once the request is recorded, so exactly `limit`
//! requests are sent, and the stage is known complete when every one of them is in a shard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// One stage's count for one target.
#[derive(Debug)]
pub(crate) struct Quota {
    /// The plan stage it belongs to.
    pub stage: u32,
    limit: AtomicU64,
    claimed: AtomicU64,
    finished: AtomicU64,
}

impl Quota {
    pub(crate) fn new(stage: u32, limit: u64) -> Self {
        Self {
            stage,
            limit: AtomicU64::new(limit),
            claimed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// Takes one request from the count; false when none is left.
    pub(crate) fn claim(&self) -> bool {
        let limit = self.limit.load(Ordering::SeqCst);
        self.claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < limit).then_some(c + 1)
            })
            .is_ok()
    }

    /// Gives back a ticket whose request was never sent.
    pub(crate) fn unclaim(&self) {
        self.claimed.fetch_sub(1, Ordering::SeqCst);
    }

    /// A claimed request is recorded.
    pub(crate) fn finish(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// Every request of the count is sent and recorded.
    pub(crate) fn is_done(&self) -> bool {
        self.finished.load(Ordering::SeqCst) >= self.limit.load(Ordering::SeqCst)
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit.load(Ordering::SeqCst)
    }

    /// The master may re-send a stage's load with another share; the count so far stays.
    pub(crate) fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::SeqCst);
    }
}

/// What the engine publishes per target: the current stage's quota, or none (no limit).
pub(crate) type QuotaSender = watch::Sender<Option<Arc<Quota>>>;

/// The outcome of asking for a ticket.
pub(crate) enum Claim {
    /// No count in force: send.
    Unlimited,
    /// One request of this quota: send, then [`Quota::finish`].
    Ticket(Arc<Quota>),
    /// The count is used up: wait for the next stage.
    Exhausted,
}

/// A sender's view of its target's quota: looks at the watch only when it changed (one atomic
/// load per request otherwise).
pub(crate) struct QuotaView {
    rx: watch::Receiver<Option<Arc<Quota>>>,
    current: Option<Arc<Quota>>,
}

impl QuotaView {
    pub(crate) fn new(mut rx: watch::Receiver<Option<Arc<Quota>>>) -> Self {
        let current = rx.borrow_and_update().clone();
        Self { rx, current }
    }

    pub(crate) fn claim(&mut self) -> Claim {
        if self.rx.has_changed().unwrap_or(false) {
            self.current = self.rx.borrow_and_update().clone();
        }
        match &self.current {
            None => Claim::Unlimited,
            Some(q) if q.claim() => Claim::Ticket(q.clone()),
            Some(_) => Claim::Exhausted,
        }
    }

    /// Resolves when the engine publishes another quota (never, once the engine is gone).
    pub(crate) async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.current = self.rx.borrow_and_update().clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_limit_is_claimed_across_threads() {
        let q = Arc::new(Quota::new(1, 1000));
        let claimed: u64 = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    while q.claim() {
                        n += 1;
                        q.finish();
                    }
                    n
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(claimed, 1000);
        assert!(q.is_done());
    }

    #[test]
    fn done_only_when_every_claim_is_finished() {
        let q = Quota::new(2, 2);
        assert!(q.claim() && q.claim());
        assert!(!q.claim());
        q.finish();
        assert!(!q.is_done());
        q.finish();
        assert!(q.is_done());
        // A zero share is done at once.
        assert!(Quota::new(3, 0).is_done());
    }

    #[tokio::test]
    async fn view_follows_the_published_quota() {
        let (tx, rx) = watch::channel(None);
        let mut view = QuotaView::new(rx);
        assert!(matches!(view.claim(), Claim::Unlimited));
        tx.send_replace(Some(Arc::new(Quota::new(1, 1))));
        assert!(matches!(view.claim(), Claim::Ticket(_)));
        assert!(matches!(view.claim(), Claim::Exhausted));
        tx.send_replace(None);
        view.changed().await;
        assert!(matches!(view.claim(), Claim::Unlimited));
    }
}
