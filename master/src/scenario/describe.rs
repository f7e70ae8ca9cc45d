//! What `stampede-master check` prints: the scenario as it will run, resolved (file,
//! environment, flags) and laid out as a plan, without sending a request.

use std::fmt::Write;
use std::time::Duration;

use super::model::{Arrivals, Wait};
use super::{Load, Scenario, compile, shown_header};

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The resolved plan, one fact per line.
pub fn describe(scenario: &Scenario) -> String {
    let s = &scenario.file;
    let compiled = compile(scenario, "check");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run `{}`: {} model, report every {}, arch header `{}`, stop timeout {}",
        s.name,
        scenario.model().name(),
        dur(s.report_interval),
        s.arch_header,
        dur(s.stop_timeout)
    );
    out.push_str("targets:\n");
    for t in &s.targets {
        let _ = writeln!(
            out,
            "  {:<12} {} (arch {}, weight {})",
            t.name, t.url, t.arch, t.weight
        );
    }
    out.push_str("requests:\n");
    for (r, c) in s.requests.iter().zip(&compiled.requests) {
        let _ = write!(
            out,
            "  {:<12} {} {} (weight {}, timeout {}, expect {}, redirects {}",
            r.name,
            c.method,
            c.path,
            r.weight,
            dur(r.timeout),
            if r.expect.is_empty() {
                "< 400".to_owned()
            } else {
                format!("{:?}", r.expect)
            },
            c.max_redirects.unwrap_or(compiled.max_redirects)
        );
        if !r.targets.is_empty() {
            let _ = write!(out, ", only {}", r.targets.join(", "));
        }
        if !c.body.is_empty() {
            let _ = write!(out, ", body {} bytes", c.body.len());
        }
        out.push_str(")\n");
        for h in &c.headers {
            let _ = writeln!(out, "    {}: {}", h.name, shown_header(&h.name, &h.value));
        }
    }
    out.push_str("load:\n");
    match &scenario.load {
        Load::Closed {
            users,
            spawn_rate,
            wait: w,
        } => {
            if let Some(users) = users {
                let _ = writeln!(out, "  users {users}");
            }
            let _ = writeln!(
                out,
                "  spawn rate {}",
                spawn_rate.map_or("all at once".to_owned(), |r| format!("{r} users/s"))
            );
            let _ = writeln!(out, "  wait {}", wait(w));
        }
        Load::Open {
            rate,
            arrivals,
            max_in_flight,
        } => {
            if let Some(rate) = rate {
                let _ = writeln!(out, "  rate {rate} req/s");
            }
            let _ = writeln!(
                out,
                "  arrivals {}, at most {max_in_flight} in flight per worker",
                match arrivals {
                    Arrivals::Poisson => "poisson",
                    Arrivals::Uniform => "uniform",
                },
            );
        }
    }
    match &scenario.capacity {
        Some(c) => {
            let _ = writeln!(
                out,
                "capacity search per arch (instead of the stages): users from {} by {} (fine {}) \
                 up to {}, each level held {}; SLO 5XX+errors <= {}{}, {} interval(s) in a row",
                c.start,
                c.step(),
                c.fine_step(),
                c.max,
                dur(c.hold),
                c.slo_5xx,
                c.slo_p99
                    .map(|p| format!(", p99 <= {}", dur(p)))
                    .unwrap_or_default(),
                c.consecutive
            );
        }
        None => {
            let _ = writeln!(out, "stages:\n{}", scenario.plan);
        }
    }
    if !scenario.thresholds.is_empty() {
        out.push_str("thresholds:\n");
        for t in &scenario.thresholds {
            let abort = if t.abort_on_fail {
                format!(", abort on fail after {}", dur(t.delay))
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {}{abort}", t.expr);
        }
    }
    if let Some(path) = &s.output.summary {
        let _ = writeln!(out, "summary: {}", path.display());
    }
    out.trim_end().to_owned()
}

fn wait(w: &Wait) -> String {
    match *w {
        Wait::None => "none".to_owned(),
        Wait::Constant { duration } => format!("constant {}", dur(duration)),
        Wait::Between { min, max } => format!("uniform between {} and {}", dur(min), dur(max)),
        Wait::Exponential { mean } => format!("exponential, mean {}", dur(mean)),
        Wait::Pacing { interval } => format!("pacing: each iteration at least {}", dur(interval)),
        Wait::Throughput { rate } => format!("throughput: {rate} iterations/s per user"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn describes_everything_that_will_run() {
        let text = r#"
name = "d"
[[target]]
name = "arm"
url = "http://127.0.0.1:1/arm"
arch = "arm64"
[[target]]
name = "amd"
url = "http://127.0.0.1:2/amd"
arch = "amd64"
[[request]]
name = "mm"
method = "post"
path = "/runtime"
query = { dim = 200, note = "a b" }
headers = { authorization = "Bearer x", "x-team" = "perf" }
json = { size = 3 }
targets = ["arm"]
[[request]]
name = "other"
targets = ["amd"]
[load]
users = 4
wait = { kind = "exponential", mean = "250ms" }
[[stage]]
duration = "10s"
users = 4
[[stage]]
requests = 100
[thresholds]
"arch:arm64/p99" = { expr = "< 500ms", abort_on_fail = true, delay = "5s" }
"#;
        let s = crate::scenario::parse(Path::new("d.toml"), text, &[]).unwrap();
        let d = describe(&s);
        for want in [
            "closed model",
            "arm          http://127.0.0.1:1/arm (arch arm64, weight 1)",
            "POST /runtime?dim=200&note=a+b",
            "only arm",
            "body 10 bytes",
            "authorization: <redacted>",
            "x-team: perf",
            "content-type: application/json",
            "exponential, mean 250ms",
            "ramp 0 users -> 4 users",
            "100 requests at 4 users",
            "arch:arm64/p99 < 500ms, abort on fail after 5s",
        ] {
            assert!(d.contains(want), "missing `{want}` in:\n{d}");
        }
    }
}
