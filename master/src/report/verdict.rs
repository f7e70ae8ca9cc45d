//! The verdict in words: what the run says about the arches, from the summary alone. The
//! sentences the studies end with ("arm64 sustains 1.3× the throughput of amd64 until 5XX
//! exceed 1%", "43 arm64 nodes vs 56 amd64 nodes"), computed instead of eyeballed.

use crate::outcome::Summary;
use crate::outcome::batch::Interval;
use crate::outcome::confidence::ci_text;
use crate::outcome::{ArchCapacity, End};

use super::charts::plain;

/// Whether the run passed its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    /// No thresholds were set.
    Unjudged,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    /// The one sentence that matters most.
    pub headline: String,
    /// Supporting sentences.
    pub details: Vec<String>,
}

/// "1.32×".
fn times(r: f64) -> String {
    format!("{r:.2}×")
}

pub fn verdict(s: &Summary) -> Verdict {
    let mut details = Vec::new();
    let capacity = capacity_sentences(s);
    let throughput = throughput_sentence(s);
    let headline = match (&capacity, &throughput) {
        (Some((head, rest)), _) => {
            details.extend(rest.iter().cloned());
            head.clone()
        }
        (None, Some(t)) => t.clone(),
        (None, None) => format!(
            "{} requests in {:.0} s, {} of them 5XX ({:.2}%).",
            s.totals.requests,
            s.duration_s,
            s.totals.status.s5xx,
            s.totals.ratio_5xx * 100.0
        ),
    };
    if capacity.is_some()
        && let Some(t) = throughput
    {
        details.push(format!("Over the whole run: {t}"));
    }
    details.extend(cost_sentences(s));
    let failed: Vec<&str> = s
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    let status = if s.thresholds.is_empty() {
        Status::Unjudged
    } else if failed.is_empty() {
        details.push(format!("All {} thresholds passed.", s.thresholds.len()));
        Status::Passed
    } else {
        details.push(format!(
            "{} of {} thresholds failed: {}.",
            failed.len(),
            s.thresholds.len(),
            failed.join("; ")
        ));
        Status::Failed
    };
    if s.dropped > 0 {
        details.push(format!(
            "{} arrivals found no free slot and were not sent (counted, not hidden).",
            s.dropped
        ));
    }
    Verdict {
        status,
        headline,
        details,
    }
}

/// The SLO the search used, in words.
fn slo(s: &Summary) -> String {
    let Some(c) = &s.capacity else {
        return String::new();
    };
    let mut parts = vec![format!(
        "5XX and errors ≤ {}%",
        plain(c.rules.slo_5xx * 100.0)
    )];
    if let Some(p99) = c.rules.slo_p99 {
        parts.push(format!("p99 ≤ {}", humantime::format_duration(p99)));
    }
    format!(
        "{} for {} intervals in a row",
        parts.join(" and "),
        c.rules.consecutive
    )
}

fn knee_phrase(arch: &str, a: &ArchCapacity, unit: &str) -> String {
    let Some(k) = &a.knee else {
        return format!("{arch} breached already at the start level");
    };
    let bound = match a.end {
        End::MaxReached => " (the search maximum: the knee is higher)",
        End::Unfinished => " (the run ended before the knee was found)",
        _ => "",
    };
    format!(
        "{arch} sustains {} req/s{} at {} {unit}{}{bound}, p50 {} ms, p99 {} ms",
        plain(a.max_sustainable_rps.unwrap_or(k.rps)),
        window_spread(a),
        plain(k.level),
        a.uncertainty.as_ref().map_or(String::new(), |u| format!(
            " (fine step {})",
            plain(u.fine_step)
        )),
        plain(k.p50_ms),
        plain(k.p99_ms)
    )
}

/// " (one window: 48–56)": how the knee's throughput spread over the windows behind it.
fn window_spread(a: &ArchCapacity) -> String {
    a.uncertainty.as_ref().map_or(String::new(), |u| {
        let w = u.windows;
        format!(" (one window: {}–{})", plain(w.min), plain(w.max))
    })
}

fn capacity_sentences(s: &Summary) -> Option<(String, Vec<String>)> {
    let c = s.capacity.as_ref()?;
    let mut rest: Vec<String> = c
        .by_arch
        .iter()
        .map(|(arch, a)| {
            let mut line = knee_phrase(arch, a, &c.unit);
            if let Some(b) = &a.breach {
                line.push_str(&format!(
                    "; at {} {} it breached ({})",
                    plain(b.level),
                    c.unit,
                    b.breach.as_deref().unwrap_or("SLO")
                ));
            }
            line.push('.');
            line
        })
        .collect();
    let head = match &c.comparison {
        Some(cmp) if c.by_arch.len() > 1 => {
            let others: Vec<String> = cmp
                .rps_ratio
                .iter()
                .filter(|(arch, _)| **arch != cmp.baseline)
                .map(|(arch, r)| format!("{arch} sustains {} the throughput of", times(*r)))
                .collect();
            format!(
                "{} {} before its SLO breaks ({}).",
                others.join(", and "),
                cmp.baseline,
                slo(s)
            )
        }
        _ => {
            if rest.is_empty() {
                return None;
            }
            let first = rest.remove(0);
            format!("{} (SLO: {}).", first.trim_end_matches('.'), slo(s))
        }
    };
    Some((head, rest))
}

fn throughput_sentence(s: &Summary) -> Option<String> {
    let cmp = s.comparison.as_ref()?;
    if cmp.by_arch.len() < 2 {
        return None;
    }
    let base = s.by_arch.get(&cmp.baseline)?;
    let parts: Vec<String> = cmp
        .by_arch
        .iter()
        .filter(|(arch, _)| **arch != cmp.baseline)
        .filter_map(|(arch, r)| {
            let a = s.by_arch.get(arch)?;
            let ci = r.ci.clone().unwrap_or_default();
            Some(format!(
                "{arch} served {} the throughput of {} ({}{} vs {} req/s) with {} its p99 \
                 ({}{} vs {} ms) and {:.2}% vs {:.2}% 5XX{}",
                times(r.rps_ratio),
                cmp.baseline,
                confidence(ci.rps_ratio.as_ref(), 1.0),
                plain(a.rps),
                plain(base.rps),
                times(r.p99_ratio),
                confidence(ci.p99_ratio.as_ref(), 1.0),
                plain(a.latency_ms.p99),
                plain(base.latency_ms.p99),
                a.ratio_5xx * 100.0,
                base.ratio_5xx * 100.0,
                five_xx_confidence(ci.ratio_5xx_diff.as_ref()),
            ))
        })
        .collect();
    let mut sentence = format!("{}.", parts.join("; "));
    if let Some(note) = cmp.window.as_ref().and_then(|w| w.note.as_ref()) {
        sentence.push_str(&format!(" No confidence intervals ({note})."));
    }
    Some(sentence)
}

/// "95% CI 0.97–1.03, no significant difference; " in front of a ratio's figures, or nothing
/// without an interval.
fn confidence(ci: Option<&Interval>, null: f64) -> String {
    let Some(i) = ci else {
        return String::new();
    };
    let judged = if i.covers(null) {
        "no significant difference"
    } else {
        "significant"
    };
    format!("{}, {judged}; ", ci_text(i))
}

/// The 5XX difference's verdict, in percentage points.
fn five_xx_confidence(ci: Option<&Interval>) -> String {
    let Some(i) = ci else {
        return String::new();
    };
    if i.covers(0.0) {
        " (no significant difference)".to_owned()
    } else {
        format!(
            " (a significant difference: {:+.2} to {:+.2} points, 95% CI)",
            i.lo * 100.0,
            i.hi * 100.0
        )
    }
}

fn cost_sentences(s: &Summary) -> Vec<String> {
    let Some(c) = &s.cost else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let per_million: Vec<String> = c
        .by_arch
        .iter()
        .filter_map(|(arch, a)| Some(format!("{} on {arch}", money(a.cost_per_million?))))
        .collect();
    if !per_million.is_empty() {
        let basis = if c
            .by_arch
            .values()
            .all(|a| a.basis == crate::outcome::Basis::Knee)
        {
            "at the knee"
        } else {
            "at the measured peak (no knee)"
        };
        out.push(format!(
            "A million requests cost {} ({basis}).",
            per_million.join(" vs ")
        ));
    }
    if let Some(target) = c.target_rps {
        let nodes: Vec<String> = c
            .by_arch
            .iter()
            .filter_map(|(arch, a)| {
                Some(format!(
                    "{} {arch} nodes ({}/h)",
                    a.nodes_needed?,
                    money(a.cost_per_hour_at_target?)
                ))
            })
            .collect();
        if !nodes.is_empty() {
            out.push(format!(
                "For {} req/s: {}.",
                plain(target),
                nodes.join(" vs ")
            ));
        }
    }
    out
}

/// A price with enough digits to tell small ones apart.
pub fn money(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::outcome::confidence::{RatioIntervals, Window};
    use crate::outcome::{Comparison, Results};

    fn interval(lo: f64, hi: f64) -> Option<Interval> {
        Some(Interval {
            estimate: (lo + hi) / 2.0,
            lo,
            hi,
        })
    }

    fn summary(ci: Option<RatioIntervals>, note: Option<&str>) -> Summary {
        let by_arch: BTreeMap<String, Results> = ["amd64", "arm64"]
            .into_iter()
            .map(|a| (a.to_owned(), Results::default()))
            .collect();
        let mut comparison = Comparison::of(&by_arch).unwrap();
        if let Some(r) = comparison.by_arch.get_mut("arm64") {
            r.ci = ci;
        }
        comparison.window = note.map(|n| Window {
            method: "batch_means".into(),
            level: 0.95,
            warmup: String::new(),
            from_s: 0.0,
            to_s: 0.0,
            intervals: 3,
            batches: 0,
            batch_s: 0.0,
            note: Some(n.to_owned()),
        });
        Summary {
            by_arch,
            comparison: Some(comparison),
            ..Summary::default()
        }
    }

    #[test]
    fn the_sentence_says_whether_each_ratio_is_significant() {
        let ci = RatioIntervals {
            rps_ratio: interval(0.97, 1.03),
            p99_ratio: interval(1.10, 1.30),
            ratio_5xx_diff: interval(-0.001, 0.001),
            ..RatioIntervals::default()
        };
        let v = verdict(&summary(Some(ci), None));
        assert!(
            v.headline
                .contains("(95% CI 0.97–1.03, no significant difference; "),
            "{}",
            v.headline
        );
        assert!(
            v.headline.contains("(95% CI 1.10–1.30, significant; "),
            "{}",
            v.headline
        );
        assert!(
            v.headline.ends_with("5XX (no significant difference)."),
            "{}",
            v.headline
        );
    }

    #[test]
    fn without_intervals_the_sentence_says_why() {
        let v = verdict(&summary(
            None,
            Some("no interval: too few steady intervals"),
        ));
        assert!(!v.headline.contains("95% CI"), "{}", v.headline);
        assert!(
            v.headline
                .ends_with("No confidence intervals (no interval: too few steady intervals)."),
            "{}",
            v.headline
        );
    }
}
