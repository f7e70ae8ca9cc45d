//! Locust-format CSV (`--csv PREFIX`), with Locust's file names and column names, so that
//! existing dashboards and scripts keep working:
//!
//! - `PREFIX_stats.csv`: one row per (request, serving arch), named `REQUEST [ARCH]`, then
//!   `Aggregated`.
//! - `PREFIX_stats_history.csv`: per interval, one row per arch (Type `arch`, Name the arch),
//!   then `Aggregated`; the percentiles are the interval's, the `Total …` columns cumulative.
//! - `PREFIX_failures.csv`: failures by request, arch and cause.
//!
//! And two of stampede's own: `PREFIX_phases.csv` (DNS, connect, TLS and time-to-first-byte
//! figures per arch, target and in total) and `PREFIX_failure_reasons.csv` (failed requests
//! per target, kind and reason).
//!
//! Times are milliseconds, as in Locust. stampede does not measure body sizes: the content
//! size columns are 0.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::{ReportError, histogram, with_suffix, write_atomically};
use crate::outcome::{PHASES, PhasesMs, Results, Summary};
use stampede_proto::hdr::new_histogram;

/// Locust's percentile columns and the quantiles they stand for.
pub const PERCENTILES: [(&str, f64); 11] = [
    ("50%", 0.50),
    ("66%", 0.66),
    ("75%", 0.75),
    ("80%", 0.80),
    ("90%", 0.90),
    ("95%", 0.95),
    ("98%", 0.98),
    ("99%", 0.99),
    ("99.9%", 0.999),
    ("99.99%", 0.9999),
    ("100%", 1.0),
];

pub const STATS_COLUMNS: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];

pub const HISTORY_COLUMNS_HEAD: [&str; 6] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
];

pub const HISTORY_COLUMNS_TAIL: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

pub const FAILURES_COLUMNS: [&str; 4] = ["Method", "Name", "Error", "Occurrences"];

pub const PHASES_COLUMNS: [&str; 9] = [
    "Type", "Name", "Arch", "Phase", "Count", "p50 ms", "p90 ms", "p99 ms", "Max ms",
];

pub const REASONS_COLUMNS: [&str; 4] = ["Target", "Kind", "Reason", "Count"];

/// Writes the three files; returns their paths.
pub fn write_all(summary: &Summary, prefix: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let files = [
        ("_stats.csv", stats(summary)?),
        ("_stats_history.csv", history(summary)?),
        ("_failures.csv", failures(summary)),
        ("_phases.csv", phases(summary)),
        ("_failure_reasons.csv", reasons(summary)),
    ];
    let mut out = Vec::new();
    for (suffix, rows) in files {
        let path = with_suffix(prefix, suffix);
        write_atomically(&path, &to_csv(&rows))?;
        out.push(path);
    }
    Ok(out)
}

type Rows = Vec<Vec<String>>;

fn to_csv(rows: &Rows) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for row in rows {
        // Writing to memory cannot fail.
        let _ = w.write_record(row);
    }
    w.into_inner().unwrap_or_default()
}

fn header(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| (*s).to_owned()))
        .collect()
}

/// `_stats.csv`.
pub fn stats(summary: &Summary) -> Result<Rows, ReportError> {
    let names: Vec<&str> = PERCENTILES.iter().map(|(n, _)| *n).collect();
    let mut rows = vec![header(&[&STATS_COLUMNS[..], &names[..]])];
    let d = summary.duration_s;
    for r in &summary.by_request {
        let what = format!("request {} on {}", r.request, r.arch);
        let h = histogram(r.results.hdr.as_deref(), &what)?;
        let name = format!("{} [{}]", r.request, r.arch);
        rows.push(stats_row(&r.method, &name, &r.results, h.as_ref(), d));
    }
    let h = histogram(summary.totals.hdr.as_deref(), "the totals")?;
    rows.push(stats_row("", "Aggregated", &summary.totals, h.as_ref(), d));
    Ok(rows)
}

fn stats_row(
    method: &str,
    name: &str,
    r: &Results,
    h: Option<&Histogram<u64>>,
    duration_s: f64,
) -> Vec<String> {
    let per_s = |n: u64| {
        if duration_s > 0.0 {
            n as f64 / duration_s
        } else {
            0.0
        }
    };
    let mut row = vec![method.to_owned(), name.to_owned()];
    row.extend(totals(r.requests, r.failures, h));
    row.extend([float(per_s(r.requests)), float(per_s(r.failures))]);
    row.extend(percentiles(h, r.requests));
    row
}

/// Locust's totals columns: requests, failures, median, average, min and max response time
/// (ms), and the average content size (not measured: 0).
fn totals(requests: u64, failures: u64, h: Option<&Histogram<u64>>) -> [String; 7] {
    [
        requests.to_string(),
        failures.to_string(),
        ms_int(h.map(|h| h.value_at_quantile(0.5))),
        float(h.map_or(0.0, |h| h.mean() / 1000.0)),
        float(h.map_or(0.0, |h| h.min() as f64 / 1000.0)),
        float(h.map_or(0.0, |h| h.max() as f64 / 1000.0)),
        "0".to_owned(),
    ]
}

/// Locust's percentile fields: whole milliseconds, `N/A` without requests.
fn percentiles(h: Option<&Histogram<u64>>, requests: u64) -> Vec<String> {
    PERCENTILES
        .iter()
        .map(|(_, q)| match h {
            _ if requests == 0 => "N/A".to_owned(),
            Some(h) if !h.is_empty() => ms_int(Some(h.value_at_quantile(*q))),
            _ => "0".to_owned(),
        })
        .collect()
}

/// µs as whole milliseconds, rounded (Locust's percentile columns are integers).
fn ms_int(us: Option<u64>) -> String {
    us.map_or(0, |us| (us + 500) / 1000).to_string()
}

fn float(v: f64) -> String {
    format!("{v:.6}")
}

/// A cumulative tally of one history row's name.
#[derive(Default)]
struct Running {
    requests: u64,
    failures: u64,
    hist: Option<Histogram<u64>>,
}

/// `_stats_history.csv`.
pub fn history(summary: &Summary) -> Result<Rows, ReportError> {
    let names: Vec<&str> = PERCENTILES.iter().map(|(n, _)| *n).collect();
    let mut rows = vec![header(&[
        &HISTORY_COLUMNS_HEAD[..],
        &names[..],
        &HISTORY_COLUMNS_TAIL[..],
    ])];
    let start = humantime::parse_rfc3339(&summary.started_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let interval = summary.interval_s.max(1e-3);
    let arches: Vec<&String> = summary.by_arch.keys().collect();
    let mut running: Vec<Running> = arches.iter().map(|_| Running::default()).collect();
    let mut total = Running::default();
    for point in &summary.series {
        let timestamp = (start + point.t).floor() as u64;
        let mut interval_all = new_histogram();
        let (mut req_all, mut fail_all) = (0u64, 0u64);
        for (arch, run) in arches.iter().zip(running.iter_mut()) {
            let Some(p) = point.by_arch.get(*arch) else {
                continue;
            };
            let what = format!("{arch} at {} s", point.t);
            let h = histogram(p.hdr.as_deref(), &what)?;
            if let Some(h) = &h {
                let _ = interval_all.add(h);
            }
            req_all += p.requests;
            fail_all += p.failures;
            run.add(p.requests, p.failures, h.as_ref());
            rows.push(history_row(
                timestamp,
                point.users,
                ("arch", arch.as_str()),
                (p.requests, p.failures, interval),
                h.as_ref(),
                run,
            ));
        }
        total.add(req_all, fail_all, Some(&interval_all));
        rows.push(history_row(
            timestamp,
            point.users,
            ("", "Aggregated"),
            (req_all, fail_all, interval),
            Some(&interval_all),
            &total,
        ));
    }
    Ok(rows)
}

impl Running {
    fn add(&mut self, requests: u64, failures: u64, h: Option<&Histogram<u64>>) {
        self.requests += requests;
        self.failures += failures;
        if let Some(h) = h {
            let _ = self.hist.get_or_insert_with(new_histogram).add(h);
        }
    }
}

fn history_row(
    timestamp: u64,
    users: u64,
    (kind, name): (&str, &str),
    (requests, failures, interval_s): (u64, u64, f64),
    now: Option<&Histogram<u64>>,
    run: &Running,
) -> Vec<String> {
    let mut row = vec![
        timestamp.to_string(),
        users.to_string(),
        kind.to_owned(),
        name.to_owned(),
        float(requests as f64 / interval_s),
        float(failures as f64 / interval_s),
    ];
    row.extend(percentiles(now, requests));
    let h = run.hist.as_ref().filter(|h| !h.is_empty());
    row.extend(totals(run.requests, run.failures, h));
    row
}

/// `_failures.csv`: every cause of failure of every (request, arch).
pub fn failures(summary: &Summary) -> Rows {
    let mut rows = vec![header(&[&FAILURES_COLUMNS[..]])];
    for r in &summary.by_request {
        for (cause, n) in &r.results.failures_by {
            rows.push(vec![
                r.method.clone(),
                format!("{} [{}]", r.request, r.arch),
                describe_cause(cause),
                n.to_string(),
            ]);
        }
    }
    rows
}

/// `_phases.csv`: a row per (group, phase that happened): arches, targets, then the total.
pub fn phases(summary: &Summary) -> Rows {
    let mut rows = vec![header(&[&PHASES_COLUMNS[..]])];
    let mut groups: Vec<(&str, &str, &str, &PhasesMs)> = summary
        .by_arch
        .iter()
        .map(|(arch, r)| ("arch", arch.as_str(), arch.as_str(), &r.phases_ms))
        .collect();
    groups.extend(summary.by_target.iter().map(|(name, t)| {
        (
            "target",
            name.as_str(),
            t.arch.as_str(),
            &t.results.phases_ms,
        )
    }));
    groups.push(("total", "Aggregated", "", &summary.totals.phases_ms));
    for (kind, name, arch, phases) in groups {
        for phase in PHASES {
            let Some(f) = phases.get(phase) else { continue };
            rows.push(vec![
                kind.to_owned(),
                name.to_owned(),
                arch.to_owned(),
                phase.to_owned(),
                f.count.to_string(),
                f.p50.to_string(),
                f.p90.to_string(),
                f.p99.to_string(),
                f.max.to_string(),
            ]);
        }
    }
    rows
}

/// `_failure_reasons.csv`.
pub fn reasons(summary: &Summary) -> Rows {
    let mut rows = vec![header(&[&REASONS_COLUMNS[..]])];
    rows.extend(summary.failures.iter().map(|f| {
        vec![
            f.target.clone(),
            f.kind.clone(),
            f.reason.clone(),
            f.count.to_string(),
        ]
    }));
    rows
}

fn describe_cause(cause: &str) -> String {
    match cause {
        "tls" => "transport error: TLS (handshake or certificate)".to_owned(),
        "connect" => "transport error: connection refused or failed".to_owned(),
        "reset" => "transport error: connection reset".to_owned(),
        "timeout" => "transport error: timeout".to_owned(),
        "other" => "transport error: other".to_owned(),
        class => format!("unexpected HTTP {} response", class.to_ascii_uppercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_reasons_files() {
        use crate::outcome::{FailureRow, PhaseFigures, TargetResults};
        let figures = PhaseFigures {
            count: 3,
            p50: 1.5,
            p90: 2.0,
            p99: 2.5,
            max: 3.0,
        };
        let results = Results {
            phases_ms: [("connect".to_owned(), figures)].into(),
            ..Results::default()
        };
        let summary = Summary {
            totals: results.clone(),
            by_arch: [("arm64".to_owned(), results.clone())].into(),
            by_target: [(
                "arm".to_owned(),
                TargetResults {
                    arch: "arm64".into(),
                    results,
                },
            )]
            .into(),
            failures: vec![FailureRow {
                target: "arm".into(),
                kind: "tls".into(),
                reason: "expired".into(),
                count: 2,
            }],
            ..Summary::default()
        };
        let rows = phases(&summary);
        assert_eq!(rows[0], PHASES_COLUMNS);
        assert_eq!(
            rows[1],
            [
                "arch", "arm64", "arm64", "connect", "3", "1.5", "2", "2.5", "3"
            ]
        );
        assert_eq!(rows[2][..4], ["target", "arm", "arm64", "connect"]);
        assert_eq!(rows[3][..4], ["total", "Aggregated", "", "connect"]);
        assert_eq!(reasons(&summary)[1], ["arm", "tls", "expired", "2"]);
        assert_eq!(
            describe_cause("tls"),
            "transport error: TLS (handshake or certificate)"
        );
    }

    #[test]
    fn headers_are_locusts() {
        let names: Vec<&str> = PERCENTILES.iter().map(|(n, _)| *n).collect();
        let stats = header(&[&STATS_COLUMNS[..], &names[..]]).join(",");
        assert_eq!(
            stats,
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
             Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
             50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
        );
        let history = header(&[
            &HISTORY_COLUMNS_HEAD[..],
            &names[..],
            &HISTORY_COLUMNS_TAIL[..],
        ])
        .join(",");
        assert!(history.starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%"));
        assert!(history.ends_with(
            "100%,Total Request Count,Total Failure Count,Total Median Response Time,\
             Total Average Response Time,Total Min Response Time,Total Max Response Time,\
             Total Average Content Size"
        ));
    }

    #[test]
    fn percentiles_are_whole_ms_and_na_without_requests() {
        let mut h = new_histogram();
        for v in [1_400, 2_600, 100_000] {
            h.record(v).unwrap();
        }
        let p = percentiles(Some(&h), 3);
        assert_eq!(p[0], "3", "the median 2.6 ms rounds to 3");
        assert_eq!(p[10], "100");
        assert!(percentiles(None, 0).iter().all(|v| v == "N/A"));
        assert_eq!(describe_cause("5xx"), "unexpected HTTP 5XX response");
    }
}
