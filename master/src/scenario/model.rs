//! The scenario file as typed serde structs. Every struct denies unknown keys, so a typo is an
//! error that names the key instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::names::one_of;
pub use super::wait::Wait;

/// One scenario file, resolved (file, then environment, then flags), as written: what outputs
/// show. What the run uses is parsed out of it once, into [`super::Scenario`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Run name, shown in outputs.
    pub name: String,
    /// Total run time; optional when stages are given (then it caps them).
    #[serde(default, with = "humantime_serde")]
    pub run_time: Option<Duration>,
    /// How often workers report.
    #[serde(default = "default_report_interval", with = "humantime_serde")]
    pub report_interval: Duration,
    /// Response header naming the arch that served a request.
    #[serde(default = "default_arch_header")]
    pub arch_header: String,
    /// How long in-flight requests may take to finish once the run stops.
    #[serde(default = "default_stop_timeout", with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Redirects a request follows before its 3xx counts as the answer (0: none).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// How long opening a connection may take.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The fleets under test.
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
    /// What each user does, picked by weight.
    #[serde(rename = "request", default)]
    pub requests: Vec<Request>,
    /// The load model.
    pub load: LoadSection,
    /// Optional load profile.
    #[serde(rename = "stage", default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// k6-style thresholds: `"[scope/]metric" = "op value"`, or a table with `abort_on_fail`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, ThresholdSpec>,
    /// Output paths.
    #[serde(default)]
    pub output: Output,
    /// SLO-driven capacity search per arch (instead of the plan's levels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<super::CapacitySpec>,
    /// Fleet prices, for cost per request and nodes needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::CostSpec>,
}

fn default_report_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_arch_header() -> String {
    "x-arch".to_owned()
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_redirects() -> u32 {
    5
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// One fleet: a base URL and the arch it is declared to run on, and how it is reached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub url: String,
    pub arch: String,
    #[serde(default = "one")]
    pub weight: u32,
    /// `https://` targets: `[target.tls]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TargetTls>,
    /// `"1.1"` (default), `"2"` or `"auto"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::tls::HttpVersion>,
    /// HTTP/2: concurrent streams per connection (default 100, capped by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_per_connection: Option<u32>,
    /// HTTP/2: connections per worker (default one per engine thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Addresses to connect to instead of resolving the URL's host (round-robin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_to: Vec<String>,
    /// How long a resolved host name is reused (default 60s; 0s: resolve every connection).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_ttl: Option<Duration>,
}

fn one() -> u32 {
    1
}

/// One kind of request a user makes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Appended to the target's URL path; may carry a query of its own.
    #[serde(default = "default_path")]
    pub path: String,
    /// Query parameters, percent-encoded and appended to the path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A text body, sent as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A JSON body (any TOML value), sent with `content-type: application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Expected statuses; empty means "any status below 400".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<u16>,
    /// Overrides the scenario's `max_redirects` for this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    /// Target names this request goes to; empty means every target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Closed (users) or open (arrival rate) load.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Model {
    #[default]
    Closed,
    Open,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Closed => "closed",
            Model::Open => "open",
        }
    }

    /// What a level counts in this model.
    pub fn unit(self) -> &'static str {
        match self {
            Model::Closed => "users",
            Model::Open => "req/s",
        }
    }
}

/// How open-model arrivals are spaced.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Arrivals {
    /// Exponential gaps: independent arrivals, like real traffic.
    #[default]
    Poisson,
    /// Equal gaps.
    Uniform,
}

/// How users hold connections.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Connection {
    /// Each user keeps its own keep-alive connection (real users).
    #[default]
    PerUser,
    /// Users share a pool of connections.
    Shared,
    /// A new connection for every request.
    Close,
}

impl TryFrom<String> for Model {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        one_of(&v, &[("closed", Model::Closed), ("open", Model::Open)])
    }
}

impl TryFrom<String> for Arrivals {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        one_of(
            &v,
            &[
                ("poisson", Arrivals::Poisson),
                ("uniform", Arrivals::Uniform),
            ],
        )
    }
}

impl TryFrom<String> for Connection {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        one_of(
            &v,
            &[
                ("per_user", Connection::PerUser),
                ("shared", Connection::Shared),
                ("close", Connection::Close),
            ],
        )
    }
}

/// `[load]`, as written (both models' keys; [`super::Load`] is the one that applies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    #[serde(default)]
    pub model: Model,
    /// Closed model: total users across workers and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Closed model: users started (or stopped) per second, globally; absent means at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_rate: Option<f64>,
    /// Closed model: think time between a user's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    #[serde(default)]
    pub connection: Connection,
    /// Open model: total arrivals per second across workers and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open model: how arrivals are spaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<Arrivals>,
    /// Open model: most requests in flight at once on one worker; arrivals beyond are dropped
    /// (and counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// `connection = "shared"`: connections per target and worker (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<u32>,
}

/// The default bound on in-flight requests per worker in the open model.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

impl LoadSection {
    /// The level without stages (and of `requests` stages that name none): users or req/s.
    pub fn level(&self) -> Option<f64> {
        match self.model {
            Model::Closed => self.users.map(f64::from),
            Model::Open => self.rate,
        }
    }
}

impl Stage {
    /// The level this stage names, users or req/s (validation allows only its model's key).
    pub fn level(&self) -> Option<f64> {
        self.users.map(f64::from).or(self.rate)
    }
}

/// One stage of a load profile: a ramp (`users` or `rate` over `duration`), a fixed number of
/// `requests`, or a `pause`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts; for a `requests` stage, an optional time limit.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// Closed model: users at the end of the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Open model: arrivals per second at the end of the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Send exactly this many requests (spread over the workers), then move on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// No load for `duration`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause: bool,
}

/// One threshold: `"< 500ms"`, or `{ expr = "< 500ms", abort_on_fail = true, delay = "30s" }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Rule(ThresholdRule),
}

/// The table form of a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// `op value`, e.g. `< 0.01`.
    pub expr: String,
    /// Stop the run as soon as the threshold fails on the results so far.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: do not judge before this much of the run has passed.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
}

impl ThresholdSpec {
    pub fn expr(&self) -> &str {
        match self {
            ThresholdSpec::Expr(e) => e,
            ThresholdSpec::Rule(r) => &r.expr,
        }
    }

    pub fn abort_on_fail(&self) -> bool {
        matches!(self, ThresholdSpec::Rule(r) if r.abort_on_fail)
    }

    pub fn delay(&self) -> Duration {
        match self {
            ThresholdSpec::Rule(r) => r.delay.unwrap_or_default(),
            ThresholdSpec::Expr(_) => Duration::ZERO,
        }
    }
}

// By hand rather than `untagged`, so a bad table says which key is wrong instead of "did not
// match any variant".
impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = ThresholdSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an expression such as \"< 500ms\", or a table { expr = \"< 500ms\", abort_on_fail = true }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdSpec, E> {
                Ok(ThresholdSpec::Expr(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdSpec, A::Error> {
                ThresholdRule::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ThresholdSpec::Rule)
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

/// `[output]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Where the JSON summary goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<std::path::PathBuf>,
    /// Where the HTML report goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<std::path::PathBuf>,
    /// Prefix of the Locust-format CSV files and the HdrHistogram interval logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<std::path::PathBuf>,
    /// Where the thresholds go as JUnit XML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<std::path::PathBuf>,
}
