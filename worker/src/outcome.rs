//! Outcome classes: what the master counts a request as. An HTTP status maps to its class; a
//! transport failure maps to the kind the operator can act on (could not connect, TLS,
//! connection reset, timed out, anything else), and to a short reason for the failures table.

use std::io;

use stampede_proto::Outcome;

use crate::{h1, h2, http, tls};

/// The outcome class of an HTTP status code.
pub fn status_outcome(status: u16) -> Outcome {
    match status {
        100..=199 => Outcome::Status1xx,
        200..=299 => Outcome::Status2xx,
        300..=399 => Outcome::Status3xx,
        400..=499 => Outcome::Status4xx,
        500..=599 => Outcome::Status5xx,
        // The status line allows 600..=999; no class fits, so it is a bad response.
        _ => Outcome::ErrorOther,
    }
}

/// Whether `status` is outside the request's `expect` list. With no list, any status below 400
/// is expected.
pub fn is_unexpected(status: u16, expect: &[u16]) -> bool {
    if expect.is_empty() {
        status >= 400
    } else {
        !expect.contains(&status)
    }
}

/// The transport error kinds the protocol distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect = 0,
    Reset = 1,
    Timeout = 2,
    Other = 3,
    Tls = 4,
}

impl ErrorKind {
    /// The proto outcome for this kind.
    pub fn outcome(self) -> Outcome {
        match self {
            ErrorKind::Connect => Outcome::ErrorConnect,
            ErrorKind::Reset => Outcome::ErrorReset,
            ErrorKind::Timeout => Outcome::ErrorTimeout,
            ErrorKind::Other => Outcome::ErrorOther,
            ErrorKind::Tls => Outcome::ErrorTls,
        }
    }

    /// Kind of an I/O error on an established connection.
    pub fn of_io(err: &io::Error) -> Self {
        use io::ErrorKind as K;
        match err.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Reset
            }
            K::TimedOut => ErrorKind::Timeout,
            K::ConnectionRefused
            | K::NotConnected
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable => ErrorKind::Connect,
            _ => ErrorKind::Other,
        }
    }
}

/// Classifies a failed exchange.
pub(crate) fn classify_error(err: &http::Error) -> ErrorKind {
    match err {
        // Whatever stopped the connect (refused, unreachable, DNS, connect timeout), no request
        // left this worker: it is a connect error.
        http::Error::Connect(_) => ErrorKind::Connect,
        http::Error::Tls { .. } => ErrorKind::Tls,
        http::Error::Timeout => ErrorKind::Timeout,
        // TLS records that went bad after the handshake are TLS's failure, not the server's.
        http::Error::Http(h1::Error::Io { source, .. }) if tls::rustls_error(source).is_some() => {
            ErrorKind::Tls
        }
        http::Error::Http(h1::Error::Io { source, .. }) => ErrorKind::of_io(source),
        // The connection closing under a request is what a reset looks like to the operator.
        http::Error::Http(h1::Error::Closed { .. }) => ErrorKind::Reset,
        http::Error::Http(h1::Error::Protocol(_)) => ErrorKind::Other,
        http::Error::H2(e) => h2_kind(e),
        http::Error::Redirect(_) => ErrorKind::Other,
    }
}

fn h2_kind(err: &h2::Error) -> ErrorKind {
    match err {
        h2::Error::Dial(_) => ErrorKind::Connect,
        h2::Error::NotNegotiated => ErrorKind::Tls,
        h2::Error::Handshake(e) | h2::Error::Stream(e) => match e.get_io() {
            Some(io) if tls::rustls_error(io).is_some() => ErrorKind::Tls,
            Some(io) => ErrorKind::of_io(io),
            // Streams reset or refused, and connections told to go away, are the server
            // closing on the request.
            None if e.is_reset() || (e.is_go_away() && e.is_remote()) => ErrorKind::Reset,
            None => ErrorKind::Other,
        },
        h2::Error::Request(_) => ErrorKind::Other,
    }
}

/// The short reason a failed exchange is counted under in the failures table: from a fixed
/// set, so that a misbehaving server cannot grow the table.
pub(crate) fn reason(err: &http::Error) -> &'static str {
    match err {
        http::Error::Connect(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused",
            io::ErrorKind::TimedOut => "connect timeout",
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
            _ if e.to_string().starts_with("cannot resolve") => "name not resolved",
            _ => "connect failed",
        },
        http::Error::Tls { reason, .. } => reason,
        http::Error::Timeout => "timeout",
        http::Error::Http(h1::Error::Io { source, .. }) => match tls::rustls_error(source) {
            Some(e) => tls::reason(e),
            None => io_reason(source),
        },
        http::Error::Http(h1::Error::Closed { answered: false }) => "closed before answering",
        http::Error::Http(h1::Error::Closed { answered: true }) => "closed mid-response",
        http::Error::Http(h1::Error::Protocol(_)) => "bad response",
        http::Error::H2(e) => match e {
            h2::Error::Handshake(e) | h2::Error::Stream(e) => match e.get_io() {
                Some(io) => match tls::rustls_error(io) {
                    Some(t) => tls::reason(t),
                    None => io_reason(io),
                },
                None => h2::stream_reason(e),
            },
            other => other.reason(),
        },
        http::Error::Redirect(_) => "bad redirect",
    }
}

fn io_reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "connection reset",
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::UnexpectedEof => "closed mid-response",
        io::ErrorKind::TimedOut => "timeout",
        _ => "i/o error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_outcome(100), Outcome::Status1xx);
        assert_eq!(status_outcome(204), Outcome::Status2xx);
        assert_eq!(status_outcome(302), Outcome::Status3xx);
        assert_eq!(status_outcome(404), Outcome::Status4xx);
        assert_eq!(status_outcome(503), Outcome::Status5xx);
        assert_eq!(status_outcome(599), Outcome::Status5xx);
        assert_eq!(status_outcome(600), Outcome::ErrorOther);
    }

    #[test]
    fn unexpected_without_expect_list_is_400_and_up() {
        assert!(!is_unexpected(200, &[]));
        assert!(!is_unexpected(302, &[]));
        assert!(is_unexpected(404, &[]));
        assert!(is_unexpected(503, &[]));
    }

    #[test]
    fn unexpected_with_expect_list_is_membership() {
        assert!(!is_unexpected(200, &[200]));
        assert!(is_unexpected(201, &[200]));
        assert!(!is_unexpected(404, &[200, 404]));
        assert!(is_unexpected(503, &[200, 404]));
    }

    #[test]
    fn io_errors_by_kind() {
        let kind = |k| ErrorKind::of_io(&io::Error::from(k));
        assert_eq!(kind(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::BrokenPipe), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::UnexpectedEof), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(kind(io::ErrorKind::ConnectionRefused), ErrorKind::Connect);
        assert_eq!(kind(io::ErrorKind::InvalidData), ErrorKind::Other);
    }

    #[test]
    fn exchange_errors() {
        let refused = http::Error::Connect(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify_error(&refused), ErrorKind::Connect);
        // A connect that timed out is still a connect error: nothing was sent.
        let slow = http::Error::Connect(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(classify_error(&slow), ErrorKind::Connect);
        assert_eq!(classify_error(&http::Error::Timeout), ErrorKind::Timeout);
        let redirect = http::Error::Redirect("to https".into());
        assert_eq!(classify_error(&redirect), ErrorKind::Other);
        assert_eq!(ErrorKind::Reset.outcome(), Outcome::ErrorReset);
    }
}
