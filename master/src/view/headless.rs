//! The headless view: a plain-text status block every few seconds, for pipes, CI and logs.

use std::io::Write;
use std::time::{Duration, Instant};

use super::View;
use super::snapshot::{Row, Snapshot};
use crate::outcome::Summary;
use crate::outcome::batch::Interval;
use crate::outcome::confidence::ci_text;

pub struct Headless<W: Write + Send> {
    out: W,
    every: Duration,
    last: Option<Instant>,
}

impl<W: Write + Send> Headless<W> {
    pub fn new(out: W, every: Duration) -> Self {
        Headless {
            out,
            every,
            last: None,
        }
    }
}

/// " [95% CI 0.97–1.03, no significant difference]", or nothing without an interval.
fn bracket(ci: Option<&Interval>) -> String {
    ci.map_or(String::new(), |i| {
        let judged = if i.covers(1.0) {
            "no significant difference"
        } else {
            "significant"
        };
        format!(" [{}, {judged}]", ci_text(i))
    })
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

const HEADER: &str = "  name                  req/s      total        2xx      5xx   5xx%   errors    p50 ms    p95 ms    p99 ms    max ms";

fn row_line(kind: &str, r: &Row) -> String {
    let label = if kind == "target" {
        format!("{kind} {} ({})", r.label, r.arch)
    } else {
        format!("{kind} {}", r.label)
    };
    format!(
        "  {label:<20} {:>7.1} {:>10} {:>10} {:>8} {:>5.2}% {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        r.rps_now,
        r.requests,
        r.s2xx,
        r.s5xx,
        r.ratio_5xx * 100.0,
        r.errors,
        r.p50_ms,
        r.p95_ms,
        r.p99_ms,
        r.max_ms
    )
}

/// TLS errors so far with their reasons, when there are any: a certificate the workers do not
/// trust fails every request, and the status block should say why at once.
fn tls_errors(s: &Snapshot) -> Option<String> {
    let n = s.totals.error_kinds[4];
    if n == 0 {
        return None;
    }
    let mut reasons: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in s.failures.iter().filter(|f| f.kind == "tls") {
        *reasons.entry(f.reason.as_str()).or_default() += f.count;
    }
    let mut reasons: Vec<(&str, u64)> = reasons.into_iter().collect();
    reasons.sort_by_key(|&(_, c)| std::cmp::Reverse(c));
    let why: Vec<String> = reasons.iter().map(|(r, c)| format!("{r} {c}")).collect();
    Some(format!("  tls errors: {n} ({})", why.join(", ")))
}

/// The status block for one snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut lines = vec![format!(
        "[{} / {}] {}  stage {}/{}  users {}/{}  workers {}  {:.1} req/s",
        hms(s.elapsed),
        hms(s.duration),
        s.name,
        s.stage.0,
        s.stage.1,
        s.users_running,
        s.users_goal,
        s.workers.len(),
        s.rps_now
    )];
    lines.push(HEADER.to_owned());
    lines.extend(s.by_arch.iter().map(|r| row_line("arch", r)));
    lines.extend(s.by_target.iter().map(|r| row_line("target", r)));
    lines.push(row_line("all", &s.totals));
    if s.master_wait > Duration::from_secs(1) {
        lines.push(format!(
            "  master behind: reports waited up to {:.1} s to be counted (acknowledgements slowed)",
            s.master_wait.as_secs_f64()
        ));
    }
    if s.late_requests > 0 {
        lines.push(format!(
            "  late: {} requests reported after their interval closed (in the totals, not in the series)",
            s.late_requests
        ));
    }
    if let Some(line) = tls_errors(s) {
        lines.push(line);
    }
    lines.extend(s.notices.iter().map(|n| format!("  ! {n}")));
    lines.join("\n")
}

impl<W: Write + Send> View for Headless<W> {
    fn update(&mut self, snapshot: &Snapshot) {
        let due = self.last.is_none_or(|t| t.elapsed() >= self.every);
        if !due && snapshot.notices.is_empty() {
            return;
        }
        self.last = Some(Instant::now());
        let _ = writeln!(self.out, "{}\n", render(snapshot));
        let _ = self.out.flush();
    }

    fn finish(&mut self, summary: &Summary) {
        let t = &summary.totals;
        let _ = writeln!(
            self.out,
            "done: {} requests in {:.1}s ({:.1} req/s), 5xx {} ({:.2}%), errors {}, p50 {:.2} ms, p99 {:.2} ms",
            t.requests,
            summary.duration_s,
            t.rps,
            t.status.s5xx,
            t.ratio_5xx * 100.0,
            t.errors.values().sum::<u64>(),
            t.latency_ms.p50,
            t.latency_ms.p99
        );
        for (arch, r) in &summary.by_arch {
            let _ = writeln!(
                self.out,
                "  {arch}: {} requests, {:.1} req/s, 5xx {:.2}%, p50 {:.2} ms, p99 {:.2} ms",
                r.requests,
                r.rps,
                r.ratio_5xx * 100.0,
                r.latency_ms.p50,
                r.latency_ms.p99
            );
        }
        if let Some(c) = &summary.comparison {
            for (arch, ratio) in c.by_arch.iter().filter(|(a, _)| **a != c.baseline) {
                let ci = ratio.ci.clone().unwrap_or_default();
                let _ = writeln!(
                    self.out,
                    "  {arch} vs {}: throughput x{:.3}{}, p99 x{:.3}{}",
                    c.baseline,
                    ratio.rps_ratio,
                    bracket(ci.rps_ratio.as_ref()),
                    ratio.p99_ratio,
                    bracket(ci.p99_ratio.as_ref())
                );
            }
            if let Some(note) = c.window.as_ref().and_then(|w| w.note.as_ref()) {
                let _ = writeln!(self.out, "  {note}");
            }
        }
        if summary.dropped > 0 {
            let _ = writeln!(
                self.out,
                "  dropped {} arrivals: max_in_flight requests were outstanding (not sent)",
                summary.dropped
            );
        }
        if let Some(m) = summary
            .master
            .as_ref()
            .filter(|m| m.behind_s > 0.0 || m.saturated_s > 0.0)
        {
            let unread = m.transport_ms.as_ref().map_or(0.0, |t| t.ms.max);
            let _ = writeln!(
                self.out,
                "  master behind for {:.0} s (no idle time for {:.0} s): reports waited up to {:.1} s to be counted (p99 {:.1} s), up to {:.1} s unread",
                m.behind_s,
                m.saturated_s,
                m.queue_ms.ms.max / 1000.0,
                m.queue_ms.ms.p99 / 1000.0,
                unread / 1000.0
            );
        }
        if summary.late_requests > 0 {
            let _ = writeln!(
                self.out,
                "  late: {} requests reported after their interval closed: in the totals, not in the series",
                summary.late_requests
            );
        }
        if let Some(lag) = &summary.send_lag_ms {
            let _ = writeln!(
                self.out,
                "  send lag (actual - intended start) of {} arrivals: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                lag.count, lag.ms.p50, lag.ms.p99, lag.ms.max
            );
        }
        for t in &summary.thresholds {
            let _ = writeln!(self.out, "  threshold {t}");
        }
        if let Some(why) = &summary.aborted {
            let _ = writeln!(self.out, "  stopped early: {why}");
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_requests_are_said_while_running_and_at_the_end() {
        let snapshot = Snapshot {
            name: "r".into(),
            late_requests: 3,
            ..Snapshot::default()
        };
        let block = render(&snapshot);
        assert!(block.contains("late: 3 requests"), "{block}");
        assert!(!render(&Snapshot::default()).contains("late"));
        let tls = Snapshot {
            totals: Row {
                error_kinds: [0, 0, 0, 0, 7],
                ..Row::default()
            },
            failures: vec![crate::outcome::FailureRow {
                target: "arm".into(),
                kind: "tls".into(),
                reason: "unknown issuer".into(),
                count: 7,
            }],
            ..Snapshot::default()
        };
        let block = render(&tls);
        assert!(
            block.contains("tls errors: 7 (unknown issuer 7)"),
            "{block}"
        );
        assert!(!render(&Snapshot::default()).contains("tls errors"));
        let summary = Summary {
            late_requests: 3,
            ..Summary::default()
        };
        let mut out = Vec::new();
        Headless::new(&mut out, Duration::from_secs(5)).finish(&summary);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("late: 3 requests"), "{text}");
    }
}
