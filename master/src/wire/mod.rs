//! The master's side of the wire: the gRPC service that admits workers (protocol version,
//! token, optional TLS) and turns each worker's stream into events, decoding and checking its
//! reports on the connection's own task.
//!
//! May import: `stats` (the report type decoding produces). Nothing above it.

mod auth;
pub mod decode;
mod liveness;
mod server;
mod tls;

pub use auth::{Auth, AuthError, generate_token, insecure_warning, resolve as resolve_auth};
pub use liveness::Liveness;
pub use server::{Event, MAX_MESSAGE_BYTES, OUTBOX, Outbox, Service, ServiceConfig, bind, serve};
pub use tls::{ServerTls, TlsFileError};
