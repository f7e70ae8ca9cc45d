//! Turning a scenario into what workers run, and into what the summary shows.

use stampede_proto as pb;

use super::model::{Connection, Scenario, Wait};

/// Header names whose values never leave the master in a summary or a log.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// The compiled scenario for the workers of run `run_id`.
pub fn compile(s: &Scenario, run_id: &str) -> pb::RunConfig {
    pb::RunConfig {
        run_id: run_id.to_owned(),
        report_interval_ms: millis(s.report_interval),
        arch_header: s.arch_header.to_ascii_lowercase(),
        targets: s
            .targets
            .iter()
            .map(|t| pb::Target {
                name: t.name.clone(),
                url: t.url.clone(),
                arch: t.arch.clone(),
                weight: t.weight,
            })
            .collect(),
        requests: s
            .requests
            .iter()
            .map(|r| pb::Request {
                name: r.name.clone(),
                method: r.method.to_ascii_uppercase(),
                path: r.path.clone(),
                weight: r.weight,
                headers: r
                    .headers
                    .iter()
                    .map(|(name, value)| pb::Header {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                body: r.body.clone().unwrap_or_default().into_bytes(),
                timeout_ms: millis(r.timeout),
                expect: r.expect.iter().map(|&c| u32::from(c)).collect(),
                targets: Vec::new(),
            })
            .collect(),
        wait: Some(compile_wait(&s.load.wait)),
        model: pb::LoadModel::Closed as i32,
        connection: match s.load.connection {
            Connection::PerUser => pb::ConnectionMode::PerUser,
            Connection::Shared => pb::ConnectionMode::Shared,
            Connection::Close => pb::ConnectionMode::Close,
        } as i32,
        max_redirects: 0,
        connect_timeout_ms: 5_000,
        max_in_flight: 0,
        arrivals: pb::Arrivals::Poisson as i32,
        pool_size: s.load.pool_size.unwrap_or(0),
    }
}

fn compile_wait(w: &Wait) -> pb::Wait {
    let (kind, a, b) = match *w {
        Wait::None => (pb::WaitKind::None, 0, 0),
        Wait::Constant { duration } => (pb::WaitKind::Constant, micros(duration), 0),
        Wait::Between { min, max } => (pb::WaitKind::Between, micros(min), micros(max)),
    };
    pb::Wait {
        kind: kind as i32,
        a_us: a,
        b_us: b,
        rate: 0.0,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The scenario as run, for the summary, with secret header values replaced.
pub fn redacted(s: &Scenario) -> serde_json::Value {
    let mut s = s.clone();
    for r in &mut s.requests {
        for (name, value) in &mut r.headers {
            if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                *value = "<redacted>".to_owned();
            }
        }
    }
    serde_json::to_value(&s).unwrap_or(serde_json::Value::Null)
}
