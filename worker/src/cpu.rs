//! Process CPU use for heartbeats, read from `/proc/self/stat` (no libc). Where that file does
//! not exist the meter reads 0.

use std::time::Instant;

/// Clock ticks per second of `/proc` times: USER_HZ, fixed at 100 by the Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU used by this process between two calls to [`CpuMeter::percent`].
pub(crate) struct CpuMeter {
    last_ticks: Option<u64>,
    last_at: Instant,
}

impl CpuMeter {
    pub(crate) fn new() -> Self {
        Self {
            last_ticks: process_ticks(),
            last_at: Instant::now(),
        }
    }

    /// Percent of one core used since the previous call (100 = one core busy).
    pub(crate) fn percent(&mut self) -> f32 {
        let now = Instant::now();
        let ticks = process_ticks();
        let elapsed = now.duration_since(self.last_at).as_secs_f64();
        let percent = match (self.last_ticks, ticks) {
            (Some(before), Some(after)) if elapsed > 0.0 => {
                after.saturating_sub(before) as f64 / TICKS_PER_SECOND / elapsed * 100.0
            }
            _ => 0.0,
        };
        self.last_ticks = ticks;
        self.last_at = now;
        percent as f32
    }
}

/// utime + stime of this process, in ticks.
fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_ticks(&stat)
}

/// Fields 14 and 15 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and
/// may hold spaces, so count from the last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(parse_ticks(line), Some(325));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn meter_reads_something_sane() {
        let mut meter = CpuMeter::new();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let p = meter.percent();
        assert!((0.0..=100.0 * 64.0).contains(&p), "{p} ({x})");
    }
}
