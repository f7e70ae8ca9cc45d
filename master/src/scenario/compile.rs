//! Turning a scenario into what workers run, and into what the summary shows.

use stampede_proto as pb;

use super::model::{Arrivals, Connection, DEFAULT_MAX_IN_FLIGHT, Request, ScenarioFile, Wait};
use super::{Load, Scenario};

/// Header names whose values never leave the master in a summary or a log.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// The compiled scenario for the workers of run `run_id`.
pub fn compile(scenario: &Scenario, run_id: &str) -> pb::RunConfig {
    let s = &scenario.file;
    let (model, wait, arrivals, max_in_flight) = match &scenario.load {
        // The closed model has no arrivals; the defaults keep the message as it always was.
        Load::Closed { wait, .. } => (
            pb::LoadModel::Closed,
            wait.clone(),
            Arrivals::default(),
            DEFAULT_MAX_IN_FLIGHT,
        ),
        Load::Open {
            arrivals,
            max_in_flight,
            ..
        } => (pb::LoadModel::Open, Wait::None, *arrivals, *max_in_flight),
    };
    pb::RunConfig {
        run_id: run_id.to_owned(),
        report_interval_ms: millis(s.report_interval),
        arch_header: s.arch_header.to_ascii_lowercase(),
        targets: s
            .targets
            .iter()
            .map(super::target::compile_target)
            .collect(),
        requests: s.requests.iter().map(|r| compile_request(s, r)).collect(),
        wait: Some(compile_wait(&wait)),
        model: model as i32,
        connection: match s.load.connection {
            Connection::PerUser => pb::ConnectionMode::PerUser,
            Connection::Shared => pb::ConnectionMode::Shared,
            Connection::Close => pb::ConnectionMode::Close,
        } as i32,
        max_redirects: s.max_redirects,
        connect_timeout_ms: millis(s.connect_timeout).max(1),
        max_in_flight,
        arrivals: match arrivals {
            Arrivals::Poisson => pb::Arrivals::Poisson,
            Arrivals::Uniform => pb::Arrivals::Uniform,
        } as i32,
        pool_size: s.load.pool_size.unwrap_or(0),
    }
}

fn compile_request(s: &ScenarioFile, r: &Request) -> pb::Request {
    let mut headers: Vec<pb::Header> = r
        .headers
        .iter()
        .map(|(name, value)| pb::Header {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let body = match (&r.body, &r.json) {
        (_, Some(json)) => {
            if !r
                .headers
                .keys()
                .any(|h| h.eq_ignore_ascii_case("content-type"))
            {
                headers.push(pb::Header {
                    name: "content-type".to_owned(),
                    value: "application/json".to_owned(),
                });
            }
            json.to_string().into_bytes()
        }
        (Some(text), None) => text.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    pb::Request {
        name: r.name.clone(),
        method: r.method.to_ascii_uppercase(),
        path: request_uri(r),
        weight: r.weight,
        headers,
        body,
        timeout_ms: millis(r.timeout),
        expect: r.expect.iter().map(|&c| u32::from(c)).collect(),
        targets: r
            .targets
            .iter()
            .filter_map(|name| s.targets.iter().position(|t| &t.name == name))
            .map(|i| i as u32)
            .collect(),
        max_redirects: r.max_redirects,
    }
}

/// The request's path with its `query` table percent-encoded and appended.
pub fn request_uri(r: &Request) -> String {
    if r.query.is_empty() {
        return r.path.clone();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&r.query)
        .finish();
    let sep = if !r.path.contains('?') {
        "?"
    } else if r.path.ends_with(['?', '&']) {
        ""
    } else {
        "&"
    };
    format!("{}{sep}{query}", r.path)
}

fn compile_wait(w: &Wait) -> pb::Wait {
    let (kind, a, b, rate) = match *w {
        Wait::None => (pb::WaitKind::None, 0, 0, 0.0),
        Wait::Constant { duration } => (pb::WaitKind::Constant, micros(duration), 0, 0.0),
        Wait::Between { min, max } => (pb::WaitKind::Between, micros(min), micros(max), 0.0),
        Wait::Exponential { mean } => (pb::WaitKind::Exponential, micros(mean), 0, 0.0),
        Wait::Pacing { interval } => (pb::WaitKind::Pacing, micros(interval), 0, 0.0),
        Wait::Throughput { rate } => (pb::WaitKind::Throughput, 0, 0, rate),
    };
    pb::Wait {
        kind: kind as i32,
        a_us: a,
        b_us: b,
        rate,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The scenario as run, for the summary, with secret header values replaced.
pub fn redacted(s: &ScenarioFile) -> serde_json::Value {
    let mut s = s.clone();
    for r in &mut s.requests {
        for (name, value) in &mut r.headers {
            *value = shown_header(name, value).to_owned();
        }
    }
    serde_json::to_value(&s).unwrap_or(serde_json::Value::Null)
}

/// A header's value as outputs may show it: secret ones redacted.
pub fn shown_header<'a>(name: &str, value: &'a str) -> &'a str {
    if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        "<redacted>"
    } else {
        value
    }
}
