//! Errors at the library's edge: what can go wrong with a session, and with building or steering
//! an engine from a run configuration.

use std::io;

use crate::report::ReportError;

/// Why a session with the master ended other than by `Quit`.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The master address could not be parsed as a URI.
    #[error("invalid master address {addr:?}: {detail}")]
    InvalidMaster { addr: String, detail: String },

    /// No connection could be made to the master.
    #[error("cannot connect to the master at {addr}: {detail}")]
    Connect { addr: String, detail: String },

    /// The token cannot travel as gRPC metadata.
    #[error("the token must be visible ASCII (it travels as an HTTP header)")]
    InvalidToken,

    /// The master rejected the token (or its absence).
    #[error("master refused this worker: wrong or missing token (UNAUTHENTICATED): {message}")]
    Unauthenticated { message: String },

    /// The master speaks another protocol version.
    #[error(
        "master refused this worker: protocol version mismatch (worker speaks v{worker}, master: {master}) (FAILED_PRECONDITION)"
    )]
    VersionMismatch { worker: u32, master: String },

    /// The master refused the session for another reason.
    #[error("master refused this worker ({code:?}): {message}")]
    Refused { code: tonic::Code, message: String },

    /// The master sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The stream ended or broke without a `Quit`.
    #[error("lost the master: {0}")]
    Disconnected(String),

    /// An interval report could not be built.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl WorkerError {
    /// Whether retrying cannot help: the master refused this worker for what it is (token,
    /// version, id), or the options themselves are wrong.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            WorkerError::InvalidMaster { .. }
                | WorkerError::InvalidToken
                | WorkerError::Unauthenticated { .. }
                | WorkerError::VersionMismatch { .. }
                | WorkerError::Refused { .. }
                | WorkerError::Report(_)
        )
    }
}

/// Why an engine could not be built from a `RunConfig`, or a load level not applied.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the run configuration has no targets")]
    NoTargets,

    #[error("target {target:?}: {url:?} is not a valid base URL: {reason}")]
    BadTargetUrl {
        target: String,
        url: String,
        reason: String,
    },

    #[error("target {target:?}: tls: {reason}")]
    BadTls { target: String, reason: String },

    #[error("target {target:?}: connect_to: {reason}")]
    BadConnectTo { target: String, reason: String },

    #[error(
        "target {target:?}: unsupported scheme in {url:?} (http:// and https:// are supported)"
    )]
    UnsupportedScheme { target: String, url: String },

    #[error("target {target:?}: no request with a positive weight may be sent to it")]
    NoRequests { target: String },

    #[error("request {request:?}: invalid method {method:?}")]
    BadMethod { request: String, method: String },

    #[error("request {request:?}: invalid header {header:?}: {reason}")]
    BadHeader {
        request: String,
        header: String,
        reason: String,
    },

    #[error(
        "request {request:?}: path {path:?} is not a valid URI path (with target {target:?}): {reason}"
    )]
    BadPath {
        request: String,
        path: String,
        target: String,
        reason: String,
    },

    #[error("request {request:?}: target index {index} is out of range ({count} targets)")]
    BadRequestTarget {
        request: String,
        index: u32,
        count: usize,
    },

    #[error("request {request:?}: expected status {status} is not an HTTP status code")]
    BadExpect { request: String, status: u32 },

    #[error("invalid arch header name {0:?}")]
    BadArchHeader(String),

    #[error("invalid wait time: {0}")]
    BadWait(String),

    #[error("{0} is not supported by this worker yet")]
    Unsupported(&'static str),

    #[error("target index {index} is out of range ({count} targets)")]
    UnknownTarget { index: u32, count: usize },

    #[error("cannot start an engine thread: {0}")]
    Thread(#[source] io::Error),
}
