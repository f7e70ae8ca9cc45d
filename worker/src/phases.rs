//! The phases of one request that are timed apart from its total latency, each present only
//! when it happened: a kept-alive request has no DNS, connect or TLS phase, a failed connect
//! has no time to first byte.

use std::time::Duration;

use stampede_proto::Phase;

/// What one request spent in each phase (of the connection its final response came on, when
/// that connection was opened for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    /// From the request's first byte sent to the response's first byte received.
    pub ttfb: Option<Duration>,
}

impl Phases {
    /// The phases that happened, with their wire names.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> {
        [
            (Phase::Dns, self.dns),
            (Phase::Connect, self.connect),
            (Phase::Tls, self.tls),
            (Phase::Ttfb, self.ttfb),
        ]
        .into_iter()
        .filter_map(|(p, d)| d.map(|d| (p, d)))
    }
}
