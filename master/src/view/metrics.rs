//! The master's Prometheus metrics (`--metrics-bind`): the run as the views see it, exported on
//! `GET /metrics` as OpenMetrics text.
//!
//! The figures come from the controller's [`Snapshot`] (one per report interval, and a last one
//! holding every final report), so the endpoint shows exactly what the summary will say. They
//! are encoded at scrape time from the latest snapshot: counters are the cumulative counts of
//! the merged histograms, quantiles are read from the merged cumulative histograms.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::View;
use super::families::{Labels, counter, gauge};
use super::phase_metrics::encode_phases;
use super::snapshot::{PhaseRow, Row, Snapshot};
use crate::outcome::{ERROR_KINDS, FailureRow, Summary};

/// Content type of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Status class labels, in `Row::status` order.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Reads one figure of a row.
type Pick = fn(&Row) -> f64;

/// The latency quantiles exported, with their `quantile` label.
const QUANTILES: [(&str, Pick); 3] = [
    ("0.5", |r| r.p50_ms),
    ("0.95", |r| r.p95_ms),
    ("0.99", |r| r.p99_ms),
];

/// What the last snapshot said, kept for the next scrape.
#[derive(Debug, Default)]
struct Figures {
    elapsed_s: f64,
    duration_s: f64,
    users_goal: u32,
    users_running: u32,
    /// The longest a report waited in the master to be counted, over the last interval.
    master_wait_s: f64,
    workers: usize,
    by_arch: Vec<Row>,
    by_target: Vec<Row>,
    phases: Vec<PhaseRow>,
    failures: Vec<FailureRow>,
    finished: bool,
}

/// The metrics of one run: a [`View`] that keeps the latest figures, and their encoding.
/// Clones share the figures.
#[derive(Debug, Clone)]
pub struct Metrics {
    figures: Arc<Mutex<Figures>>,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Metrics for the run `name`, all zero until the first snapshot.
    pub fn new(name: &str) -> Metrics {
        let figures = Arc::new(Mutex::new(Figures::default()));
        let mut registry = Registry::with_prefix("stampede");
        registry.register(
            "run",
            "The scenario being run",
            Info::new(vec![("name".to_owned(), name.to_owned())]),
        );
        registry.register_collector(Box::new(RunCollector(figures.clone())));
        Metrics {
            figures,
            registry: Arc::new(registry),
        }
    }

    /// Everything, as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; an error would mean a malformed metric.
        if let Err(e) = text::encode(&mut out, &self.registry) {
            tracing::error!("cannot encode the metrics: {e}");
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }

    fn figures(&self) -> MutexGuard<'_, Figures> {
        lock(&self.figures)
    }
}

/// A poisoned lock only means a panic elsewhere; the figures themselves are always whole.
fn lock(figures: &Mutex<Figures>) -> MutexGuard<'_, Figures> {
    figures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl View for Metrics {
    fn update(&mut self, s: &Snapshot) {
        let mut f = self.figures();
        f.elapsed_s = s.elapsed.as_secs_f64();
        f.duration_s = s.duration.as_secs_f64();
        f.users_goal = s.users_goal;
        f.users_running = s.users_running;
        f.master_wait_s = s.master_wait.as_secs_f64();
        f.workers = s.workers.len();
        f.by_arch.clone_from(&s.by_arch);
        f.by_target.clone_from(&s.by_target);
        f.phases.clone_from(&s.phases);
        f.failures.clone_from(&s.failures);
    }

    fn finish(&mut self, _summary: &Summary) {
        // The controller's last snapshot, taken after the final reports, already holds the
        // figures the summary was built from.
        self.figures().finished = true;
    }
}

/// Encodes the run's figures at scrape time.
#[derive(Debug)]
struct RunCollector(Arc<Mutex<Figures>>);

impl Collector for RunCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = lock(&self.0);
        let seconds = Some(&Unit::Seconds);
        gauge_one(
            &mut enc,
            "run_elapsed",
            "Time since the load started",
            seconds,
            f.elapsed_s,
        )?;
        gauge_one(
            &mut enc,
            "run_planned",
            "Planned length of the run",
            seconds,
            f.duration_s,
        )?;
        gauge_one(
            &mut enc,
            "run_finished",
            "1 once the run is over and the figures are final",
            None,
            u32::from(f.finished),
        )?;
        gauge_one(
            &mut enc,
            "users_goal",
            "Users the plan asks for now",
            None,
            f.users_goal,
        )?;
        gauge_one(
            &mut enc,
            "master_queue",
            "Longest a report waited in the master to be counted, last interval (past one interval: the master is behind)",
            seconds,
            f.master_wait_s,
        )?;
        let running = "Users the workers run, as they last reported";
        gauge_one(&mut enc, "users_running", running, None, f.users_running)?;
        let workers = "Workers connected to the master";
        gauge_one(
            &mut enc,
            "workers_connected",
            workers,
            None,
            f.workers as u64,
        )?;
        let arch_labels = |r: &Row| vec![("arch", r.label.clone())];
        let target_labels = |r: &Row| vec![("target", r.label.clone()), ("arch", r.arch.clone())];
        encode_rows(
            &mut enc,
            "arch",
            "by the arch that served them",
            &f.by_arch,
            arch_labels,
        )?;
        encode_rows(
            &mut enc,
            "target",
            "by target (with its declared arch)",
            &f.by_target,
            target_labels,
        )?;
        encode_phases(&mut enc, &f.phases, &f.failures)
    }
}

/// The families of one group of rows (`arch` or `target`): requests, responses by status class,
/// transport errors by kind, throughput now and latency quantiles.
fn encode_rows(
    enc: &mut DescriptorEncoder,
    group: &str,
    by: &str,
    rows: &[Row],
    labels: impl Fn(&Row) -> Labels,
) -> Result<(), std::fmt::Error> {
    let with = |r: &Row, key: &'static str, value: &str| {
        let mut l = labels(r);
        l.push((key, value.to_owned()));
        l
    };
    counter(
        enc,
        &format!("{group}_requests"),
        &format!("Requests (responses and transport errors) {by}"),
        rows.iter().map(|r| (labels(r), r.requests)),
    )?;
    counter(
        enc,
        &format!("{group}_responses"),
        &format!("Responses by status class, {by}"),
        rows.iter().flat_map(|r| {
            CLASSES
                .iter()
                .zip(r.status)
                .map(move |(class, n)| (with(r, "class", class), n))
        }),
    )?;
    counter(
        enc,
        &format!("{group}_errors"),
        &format!("Transport errors by kind, {by}"),
        rows.iter().flat_map(|r| {
            ERROR_KINDS
                .iter()
                .zip(r.error_kinds)
                .map(move |(kind, n)| (with(r, "kind", kind), n))
        }),
    )?;
    gauge(
        enc,
        &format!("{group}_rps"),
        &format!("Requests per second in the last report interval, {by}"),
        None,
        rows.iter().map(|r| (labels(r), r.rps_now)),
    )?;
    gauge(
        enc,
        &format!("{group}_latency"),
        &format!("Latency quantiles over the whole run (merged HDR histograms), {by}"),
        Some(&Unit::Seconds),
        rows.iter().flat_map(|r| {
            QUANTILES
                .iter()
                .map(move |(q, ms)| (with(r, "quantile", q), ms(r) / 1000.0))
        }),
    )
}

fn gauge_one(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// Binds the metrics listener (a port of 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, metrics: Metrics, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Running out of file descriptors, say: try again shortly rather than spin.
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, metrics.clone()));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    metrics: Metrics,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, CONTENT_TYPE, metrics.encode())
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the master serves GET /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(label: &str, arch: &str, requests: u64) -> Row {
        Row {
            label: label.into(),
            arch: arch.into(),
            rps_now: 12.5,
            requests,
            s2xx: requests - 2,
            s5xx: 1,
            errors: 1,
            status: [0, requests - 2, 0, 0, 1],
            error_kinds: [0, 0, 1, 0, 0],
            p50_ms: 20.0,
            p95_ms: 25.0,
            p99_ms: 30.0,
            ..Row::default()
        }
    }

    #[test]
    fn snapshot_figures_are_exported() {
        let mut m = Metrics::new("demo \"run\"");
        let snapshot = Snapshot {
            elapsed: Duration::from_secs(3),
            duration: Duration::from_secs(10),
            users_goal: 8,
            users_running: 6,
            by_arch: vec![row("arm64", "arm64", 40)],
            by_target: vec![row("arm", "arm64", 40)],
            ..Snapshot::default()
        };
        m.update(&snapshot);
        let text = m.encode();
        for line in [
            r#"stampede_run_info{name="demo \"run\""} 1"#,
            "stampede_users_goal 8",
            "stampede_users_running 6",
            "stampede_run_finished 0",
            "stampede_run_elapsed_seconds 3.0",
            r#"stampede_arch_requests_total{arch="arm64"} 40"#,
            r#"stampede_arch_responses_total{arch="arm64",class="5xx"} 1"#,
            r#"stampede_arch_errors_total{arch="arm64",kind="timeout"} 1"#,
            r#"stampede_target_requests_total{target="arm",arch="arm64"} 40"#,
            r#"stampede_target_latency_seconds{target="arm",arch="arm64",quantile="0.99"} 0.03"#,
            r#"stampede_arch_rps{arch="arm64"} 12.5"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn finish_marks_the_figures_final() {
        let mut m = Metrics::new("x");
        assert!(m.encode().contains("stampede_run_finished 0\n"));
        let summary = Summary {
            schema: crate::outcome::SCHEMA.into(),
            run_id: "r".into(),
            name: "x".into(),
            duration_s: 1.0,
            scenario: serde_json::json!({}),
            interval_s: 1.0,
            ..Summary::default()
        };
        m.finish(&summary);
        assert!(m.encode().contains("stampede_run_finished 1\n"));
    }
}
