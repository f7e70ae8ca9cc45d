//! Answering one request: route, method, body limit, query, admission, the multiply, the answer.
//! Every answer carries the server's identity headers (`x-arch`, `x-instance-type`,
//! `x-served-by`), errors included, so a load generator can attribute a 503 to the arch that
//! refused it.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use rand::Rng;

use crate::admission::{Admission, Refusal};
use crate::config::{ConfigError, ServerConfig, header_value};
use crate::matmul;
use crate::metrics::{self, Metrics};
use crate::routes::{self, Route};

/// Multiplies at most this big run on the reactor thread: handing them to the blocking pool would
/// cost more than doing them (32³ multiply-adds are a few microseconds).
const INLINE_MAX_DIM: usize = 32;

/// A body larger than the limit is still read and discarded up to this many times the limit, so
/// the client gets its 413 rather than a connection reset; past that the connection is dropped.
const DISCARD_FACTOR: u64 = 16;

const X_ARCH: HeaderName = HeaderName::from_static("x-arch");
const X_INSTANCE_TYPE: HeaderName = HeaderName::from_static("x-instance-type");
const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub(crate) type Answer = Response<Full<Bytes>>;

/// What the server says it is.
#[derive(Debug)]
struct Identity {
    arch: HeaderValue,
    instance_type: HeaderValue,
    served_by: HeaderValue,
    /// `{"arch":..,"instance_type":..,"served_by":..,` ready to be continued.
    json_prefix: String,
}

impl Identity {
    fn new(config: &ServerConfig) -> Result<Identity, ConfigError> {
        let json = |s: &str| serde_json::Value::from(s).to_string();
        Ok(Identity {
            arch: header_value("arch label", &config.arch_label)?,
            instance_type: header_value("instance type", &config.instance_type)?,
            served_by: header_value("served-by", &config.served_by)?,
            json_prefix: format!(
                r#"{{"arch":{},"instance_type":{},"served_by":{},"#,
                json(&config.arch_label),
                json(&config.instance_type),
                json(&config.served_by)
            ),
        })
    }

    fn stamp(&self, headers: &mut HeaderMap) {
        headers.insert(X_ARCH, self.arch.clone());
        headers.insert(X_INSTANCE_TYPE, self.instance_type.clone());
        headers.insert(X_SERVED_BY, self.served_by.clone());
    }
}

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct App {
    default_dim: usize,
    max_dim: usize,
    app_split: f64,
    max_body_bytes: u64,
    extra_delay: std::time::Duration,
    identity: Identity,
    admission: Admission,
    metrics: Metrics,
    draining: AtomicBool,
}

impl App {
    pub(crate) fn new(config: &ServerConfig) -> Result<App, ConfigError> {
        config.validate()?;
        let identity = Identity::new(config)?;
        let metrics = Metrics::new([
            ("arch", config.arch_label.clone()),
            ("instance_type", config.instance_type.clone()),
            ("served_by", config.served_by.clone()),
        ]);
        let admission = Admission::new(
            config.max_inflight,
            config.max_queue,
            config.deadline,
            metrics.in_flight(),
            metrics.queue_depth(),
        );
        Ok(App {
            default_dim: config.matrix_dim,
            max_dim: config.max_matrix_dim,
            app_split: config.app_split,
            max_body_bytes: config.max_body_bytes,
            extra_delay: config.extra_delay,
            identity,
            admission,
            metrics,
            draining: AtomicBool::new(false),
        })
    }

    /// From now on `/readyz` answers 503.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    async fn respond(&self, route: Route, request: Request<Incoming>, arrived: Instant) -> Answer {
        if route == Route::NotFound {
            return text(
                StatusCode::NOT_FOUND,
                "no such path; the server answers /runtime, /arm/runtime, /amd/runtime, /app/..., \
                 /healthz, /readyz and /metrics\n",
            );
        }
        if !route.allows(request.method()) {
            let mut answer = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            answer
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(route.allowed()));
            return answer;
        }
        let (parts, body) = request.into_parts();
        if let Err(answer) = read_body(&parts.headers, body, self.max_body_bytes).await {
            return answer;
        }
        match route {
            Route::Healthz => text(StatusCode::OK, "ok\n"),
            Route::Readyz if self.draining.load(Ordering::Acquire) => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
            Route::Readyz => text(StatusCode::OK, "ready\n"),
            Route::Metrics => {
                let mut answer = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                answer.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                answer
            }
            Route::App => self.split(&parts.uri),
            Route::Runtime | Route::ArmRuntime | Route::AmdRuntime => {
                self.runtime(route, &parts.uri, arrived).await
            }
            Route::NotFound => text(StatusCode::NOT_FOUND, "no such path\n"),
        }
    }

    /// The study's traffic splitter: 302 to `/arm/...` with probability `app_split`, else to
    /// `/amd/...`.
    fn split(&self, uri: &Uri) -> Answer {
        let to_arm = rand::rng().random_bool(self.app_split);
        let location = routes::split_location(uri.path(), uri.query(), to_arm);
        let mut answer = empty(StatusCode::FOUND);
        // The path and query came from a valid request URI, so they are a valid header value.
        match HeaderValue::try_from(location) {
            Ok(location) => {
                answer.headers_mut().insert(LOCATION, location);
                answer
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "cannot redirect this path\n"),
        }
    }

    async fn runtime(&self, route: Route, uri: &Uri, arrived: Instant) -> Answer {
        let params = match routes::runtime_params(uri.query(), self.default_dim, self.max_dim) {
            Ok(params) => params,
            Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        };
        let slot = match self.admission.admit(arrived).await {
            Ok(slot) => slot,
            Err(refusal @ Refusal::Overloaded) => {
                let mut answer = text(StatusCode::SERVICE_UNAVAILABLE, format!("{refusal}\n"));
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return answer;
            }
            Err(refusal @ Refusal::DeadlineExceeded) => {
                return text(StatusCode::GATEWAY_TIMEOUT, format!("{refusal}\n"));
            }
        };
        // Random seeds stay below 2^53 so that every JSON reader gets them back exactly.
        let seed = params
            .seed
            .unwrap_or_else(|| rand::rng().random::<u64>() >> 11);
        let dim = params.dim;
        let work = move || {
            let product = matmul::run(dim, seed);
            drop(slot);
            product
        };
        let product = if dim <= INLINE_MAX_DIM {
            work()
        } else {
            // The slot moves into the blocking task, so it stays taken until the multiply ends
            // even if the client goes away meanwhile.
            match tokio::task::spawn_blocking(work).await {
                Ok(product) => product,
                Err(error) => {
                    tracing::error!(%error, dim, "matrix multiply failed");
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "the multiply failed\n");
                }
            }
        };
        let compute = product.compute_time.as_secs_f64();
        self.metrics.observe_compute(compute);
        if !self.extra_delay.is_zero() {
            tokio::time::sleep(self.extra_delay).await;
        }

        let mut json = String::with_capacity(self.identity.json_prefix.len() + 160);
        json.push_str(&self.identity.json_prefix);
        // Writing to a String cannot fail.
        let _ = writeln!(
            json,
            r#""route":"{}","dim":{},"seed":{},"checksum":"{:016x}","compute_ms":{:.3},"elapsed_ms":{:.3}}}"#,
            route.label(),
            product.dim,
            product.seed,
            product.checksum,
            compute * 1e3,
            arrived.elapsed().as_secs_f64() * 1e3,
        );
        let mut answer = Response::new(Full::new(Bytes::from(json)));
        answer.headers_mut().insert(CONTENT_TYPE, JSON);
        answer
    }
}

/// Hyper's entry point: one request in, one answer out, counted.
pub(crate) async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let arrived = Instant::now();
    let route = Route::of_path(request.uri().path());
    let mut answer = app.respond(route, request, arrived).await;
    app.identity.stamp(answer.headers_mut());
    app.metrics.record(route, answer.status());
    Ok(answer)
}

/// Reads and discards the body, refusing it (413) past `limit` bytes: by its `Content-Length`
/// before reading anything, else by counting what arrives. Nothing is kept in memory.
async fn read_body(headers: &HeaderMap, mut body: Incoming, limit: u64) -> Result<(), Answer> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes\n"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let discard_up_to = limit.saturating_mul(DISCARD_FACTOR);
    if declared.is_some_and(|len| len > discard_up_to) {
        // Not worth reading: answer now (the connection closes with the body unread).
        return Err(too_large());
    }
    if body.is_end_stream() {
        return Ok(());
    }
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    seen = seen.saturating_add(data.len() as u64);
                    if seen > discard_up_to {
                        return Err(too_large());
                    }
                }
            }
            Err(_) => return Err(text(StatusCode::BAD_REQUEST, "unreadable request body\n")),
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(())
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut answer = Response::new(Full::new(body.into()));
    *answer.status_mut() = status;
    answer.headers_mut().insert(CONTENT_TYPE, TEXT);
    answer
}

fn empty(status: StatusCode) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = status;
    answer
}
