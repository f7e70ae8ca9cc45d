//! Prometheus metrics: requests by route and status, multiplies in flight, queue depth, and the
//! compute-time histogram. Every (route, status) counter is created up front and kept as a
//! handle, so counting a request is one atomic add with no lock and no lookup.

use http::StatusCode;
use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::routes::Route;

/// Content type of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Statuses the server answers, each with its own pre-created counter per route.
const STATUSES: [(u16, &str); 10] = [
    (200, "200"),
    (302, "302"),
    (400, "400"),
    (404, "404"),
    (405, "405"),
    (413, "413"),
    (500, "500"),
    (503, "503"),
    (504, "504"),
    (0, "other"),
];

type RequestLabels = [(&'static str, &'static str); 2];

/// The server's metrics and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `requests[route.index() * STATUSES.len() + status slot]`
    requests: Vec<Counter>,
    in_flight: Gauge,
    queue_depth: Gauge,
    compute_seconds: Histogram,
}

impl Metrics {
    /// Registers everything under the `stampede_workload_` prefix; `identity` (arch, instance
    /// type, served-by) becomes the labels of `stampede_workload_server_info`.
    pub fn new(identity: [(&'static str, String); 3]) -> Self {
        let mut registry = Registry::with_prefix("stampede_workload");

        let family = Family::<RequestLabels, Counter>::default();
        let requests = Route::ALL
            .iter()
            .flat_map(|route| {
                STATUSES.iter().map(|&(_, status)| {
                    family.get_or_create_owned(&[("route", route.label()), ("status", status)])
                })
            })
            .collect();
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            family,
        );

        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Matrix multiplies running now",
            in_flight.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting for a compute slot",
            queue_depth.clone(),
        );
        // 100 µs to ~13 s, doubling.
        let compute_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register_with_unit(
            "compute",
            "Time to draw and multiply the matrices of one request",
            Unit::Seconds,
            compute_seconds.clone(),
        );
        registry.register(
            "server",
            "What this server reports itself as",
            Info::new(identity.map(|(k, v)| (k.to_owned(), v)).to_vec()),
        );

        Metrics {
            registry,
            requests,
            in_flight,
            queue_depth,
            compute_seconds,
        }
    }

    /// Counts one answered request.
    pub fn record(&self, route: Route, status: StatusCode) {
        let slot = STATUSES
            .iter()
            .position(|&(code, _)| code == status.as_u16())
            .unwrap_or(STATUSES.len() - 1);
        if let Some(counter) = self.requests.get(route.index() * STATUSES.len() + slot) {
            counter.inc();
        }
    }

    /// Records the compute time of one multiply.
    pub fn observe_compute(&self, seconds: f64) {
        self.compute_seconds.observe(seconds);
    }

    /// The gauge of multiplies in flight (for the admission limiter to keep).
    pub fn in_flight(&self) -> Gauge {
        self.in_flight.clone()
    }

    /// The gauge of requests waiting (for the admission limiter to keep).
    pub fn queue_depth(&self) -> Gauge {
        self.queue_depth.clone()
    }

    /// Everything, as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; an error here would only mean a malformed metric.
        if text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status() {
        let metrics = Metrics::new([
            ("arch", "arm64".into()),
            ("instance_type", "t".into()),
            ("served_by", "h".into()),
        ]);
        metrics.record(Route::Runtime, StatusCode::OK);
        metrics.record(Route::Runtime, StatusCode::OK);
        metrics.record(Route::NotFound, StatusCode::NOT_FOUND);
        metrics.record(Route::Healthz, StatusCode::IM_A_TEAPOT);
        metrics.observe_compute(0.01);
        let text = metrics.encode();
        assert!(
            text.contains(r#"stampede_workload_requests_total{route="/runtime",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"stampede_workload_requests_total{route="other",status="404"} 1"#));
        assert!(
            text.contains(r#"stampede_workload_requests_total{route="/healthz",status="other"} 1"#)
        );
        assert!(text.contains("stampede_workload_compute_seconds_count 1"));
        assert!(text.contains(r#"stampede_workload_server_info{arch="arm64""#));
        assert!(text.ends_with("# EOF\n"));
    }
}
