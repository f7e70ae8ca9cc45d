//! Shared connection pools (`connection = "shared"`): on each engine thread, a bounded set of
//! keep-alive connections per endpoint, which users borrow for one request (redirects included)
//! at a time. A user that finds every connection busy waits its turn (first come, first served),
//! and that wait counts in its request's latency, as it would for a real client's pool.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::dest::Dest;
use crate::h1::Conn;

/// Endpoints one thread keeps pools for. Redirects can name any host, so the set is bounded;
/// beyond it a request gets a connection of its own that is closed after use.
const MAX_ENDPOINTS: usize = 64;

/// The pools of one engine thread, by endpoint.
pub(crate) struct Pools {
    size: usize,
    by_dest: Mutex<Vec<(Dest, Arc<Pool>)>>,
}

/// At most `size` connections to one endpoint: every connection open is either lent (and its
/// borrower holds a permit) or idle (and a permit is free for whoever takes it).
struct Pool {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
}

/// A borrowed connection slot. Put a connection in `slot` (or use the one found there); call
/// [`Lease::keep`] once the exchange on it is complete, and the connection goes back to the
/// pool when the lease is dropped. Without `keep` (an error, a timeout, a cancelled request)
/// the connection is closed: its state is unknown.
pub(crate) struct Lease {
    pub slot: Option<Conn>,
    pool: Option<Arc<Pool>>,
    keep: bool,
    // Released after `drop` has put the connection back, so the next borrower finds it.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Pools {
    /// Pools of at most `size` connections per endpoint (at least one).
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            by_dest: Mutex::new(Vec::new()),
        }
    }

    /// Waits for a connection slot to `dest`; the slot holds an idle connection if there is one.
    pub(crate) async fn lease(&self, dest: &Dest) -> Lease {
        let Some(pool) = self.pool(dest) else {
            return Lease {
                slot: None,
                pool: None,
                keep: false,
                _permit: None,
            };
        };
        // The semaphore is never closed, so acquiring only fails if it were; then go unpooled.
        let permit = Arc::clone(&pool.permits).acquire_owned().await.ok();
        let slot = lock(&pool.idle).pop();
        Lease {
            slot,
            pool: permit.is_some().then_some(pool),
            keep: false,
            _permit: permit,
        }
    }

    fn pool(&self, dest: &Dest) -> Option<Arc<Pool>> {
        let mut pools = lock(&self.by_dest);
        if let Some((_, pool)) = pools.iter().find(|(d, _)| d.same_endpoint(dest)) {
            return Some(Arc::clone(pool));
        }
        if pools.len() >= MAX_ENDPOINTS {
            return None;
        }
        let pool = Arc::new(Pool {
            permits: Arc::new(Semaphore::new(self.size)),
            idle: Mutex::new(Vec::with_capacity(self.size)),
        });
        pools.push((dest.clone(), Arc::clone(&pool)));
        Some(pool)
    }
}

impl Lease {
    /// The exchange completed (the body was read to its end): the connection may be reused.
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.keep {
            return;
        }
        // A connection the server has closed meanwhile is found out by its next borrower.
        if let (Some(pool), Some(conn)) = (&self.pool, self.slot.take()) {
            lock(&pool.idle).push(conn);
        }
    }
}

/// The pools' locks guard plain lists that a panic cannot leave inconsistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
