//! What a worker's connection task knows of it, shared with the run without a message: when
//! the connection last brought anything, and what the last heartbeat said. Heartbeats stop
//! here (they never queue behind reports), so a master that is behind on counting never takes
//! a live worker for a silent one; and while the connection task itself waits for the run to
//! take a report, the connection is not silent either: the wait is the master's.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process's clock origin: atomics hold milliseconds since it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub struct Liveness {
    heard_ms: AtomicU64,
    /// The connection task is waiting for the run to take a report.
    held: AtomicBool,
    users: AtomicU32,
    /// CPU %, as `f32` bits.
    cpu: AtomicU32,
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness {
            heard_ms: AtomicU64::new(now_ms()),
            held: AtomicBool::new(false),
            users: AtomicU32::new(0),
            cpu: AtomicU32::new(0),
        })
    }

    /// Something arrived on the connection.
    pub fn heard(&self) {
        self.heard_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn heartbeat(&self, users: u32, cpu_percent: f32) {
        self.heard();
        self.users.store(users, Ordering::Relaxed);
        self.cpu.store(cpu_percent.to_bits(), Ordering::Relaxed);
    }

    /// Marks the connection task as waiting on the master (`true`) or reading again.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
        if !held {
            self.heard();
        }
    }

    /// How long the connection has been silent; zero while the master holds it up.
    pub fn silence(&self) -> Duration {
        if self.held.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        Duration::from_millis(now_ms().saturating_sub(self.heard_ms.load(Ordering::Relaxed)))
    }

    /// Users and CPU % from the last heartbeat.
    pub fn reported(&self) -> (u32, f32) {
        (
            self.users.load(Ordering::Relaxed),
            f32::from_bits(self.cpu.load(Ordering::Relaxed)),
        )
    }

    /// Users as a report said (it comes more often than nothing else).
    pub fn set_users(&self, users: u32) {
        self.users.store(users, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_last_message_but_not_while_held() {
        let l = Liveness::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.silence() >= Duration::from_millis(25));
        l.hold(true);
        assert_eq!(l.silence(), Duration::ZERO);
        l.hold(false);
        assert!(l.silence() < Duration::from_millis(25));
        l.heartbeat(7, 12.5);
        assert_eq!(l.reported(), (7, 12.5));
    }
}
