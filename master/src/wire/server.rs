//! The gRPC service: admits workers (protocol version, token), then turns each worker's stream
//! into [`Event`]s for the controller. Reports are decoded here, on the connection's task, so
//! the controller only sees checked data and decoding spreads over the runtime.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::Stream;
use stampede_proto::coordinator_server::{Coordinator, CoordinatorServer};
use stampede_proto::{self as pb, PROTOCOL_VERSION, worker_message::Kind};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use super::decode::{self, DecodeError};
use super::liveness::Liveness;
use super::tls::ServerTls;
use crate::stats::Report;

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Queue of messages to one worker; a worker that lets it fill is not reading.
pub const OUTBOX: usize = 1024;
/// Largest message accepted from a worker.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Longest worker id accepted.
const MAX_ID_LEN: usize = 128;

pub type Outbox = mpsc::Sender<Result<pb::MasterMessage, Status>>;

/// What happens on worker streams, in the order it happened per stream.
#[derive(Debug)]
pub enum Event {
    Joined {
        conn: u64,
        hello: pb::Hello,
        outbox: Outbox,
        /// The connection's own view of its worker (silence, last heartbeat).
        liveness: Arc<Liveness>,
    },
    Report {
        conn: u64,
        worker: String,
        report: Result<Report, DecodeError>,
        /// When it came off the stream: how long it then waited shows how far behind the
        /// master is.
        received: Instant,
    },
    Goodbye {
        conn: u64,
        worker: String,
        goodbye: pb::Goodbye,
    },
    Left {
        conn: u64,
        worker: String,
        reason: String,
    },
}

/// Settings of the service.
#[derive(Clone)]
pub struct ServiceConfig {
    pub token: Option<String>,
    pub heartbeat_interval: Duration,
}

#[derive(Clone)]
pub struct Service {
    config: Arc<ServiceConfig>,
    events: mpsc::Sender<Event>,
    next_conn: Arc<AtomicU64>,
}

impl Service {
    pub fn new(config: ServiceConfig, events: mpsc::Sender<Event>) -> Self {
        Service {
            config: Arc::new(config),
            events,
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    fn check_token<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(want) = &self.config.token else {
            return Ok(());
        };
        let got = req
            .metadata()
            .get(stampede_proto::TOKEN_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(got.as_bytes().ct_eq(want.as_bytes())) {
            Ok(())
        } else {
            let addr = req.remote_addr().map_or("?".to_owned(), |a| a.to_string());
            tracing::warn!(peer = %addr, "refused a worker: wrong or missing token");
            Err(Status::unauthenticated("wrong or missing token"))
        }
    }
}

/// Reads and checks the first message.
async fn read_hello(inbound: &mut Streaming<pb::WorkerMessage>) -> Result<pb::Hello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no hello within 10s"))??;
    let Some(pb::WorkerMessage {
        kind: Some(Kind::Hello(hello)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first message must be a hello",
        ));
    };
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version mismatch: worker speaks {}, master speaks {PROTOCOL_VERSION}",
            hello.protocol_version
        )));
    }
    if hello.worker_id.is_empty() || hello.worker_id.len() > MAX_ID_LEN {
        return Err(Status::invalid_argument(format!(
            "worker id must be 1 to {MAX_ID_LEN} bytes"
        )));
    }
    let fields = [
        &hello.hostname,
        &hello.arch,
        &hello.version,
        &hello.instance,
    ];
    if fields.iter().any(|f| f.len() > MAX_ID_LEN) {
        return Err(Status::invalid_argument(format!(
            "hostname, arch, version and instance must be at most {MAX_ID_LEN} bytes"
        )));
    }
    Ok(hello)
}

/// Forwards a worker's stream to the controller until it ends. Heartbeats stop here, in
/// `liveness`; reports and goodbyes go on, in order.
async fn pump(
    conn: u64,
    worker: String,
    mut inbound: Streaming<pb::WorkerMessage>,
    events: mpsc::Sender<Event>,
    liveness: Arc<Liveness>,
) {
    let reason = loop {
        let message = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break "stream closed".to_owned(),
            Err(status) => {
                // The summary says what happened; the transport's words go to the log.
                tracing::warn!(%worker, "worker stream broke: {}", status.message());
                break "connection lost".to_owned();
            }
        };
        liveness.heard();
        let received = Instant::now();
        let kind = match message.kind {
            Some(Kind::Heartbeat(beat)) => {
                liveness.heartbeat(beat.users_running, beat.cpu_percent);
                continue;
            }
            Some(Kind::Hello(_)) | None => {
                tracing::warn!(%worker, "ignored an unexpected message");
                continue;
            }
            Some(kind) => kind,
        };
        // A queue slot first, then the decoding: a decoded report is ten times its bytes, so
        // only as many are decoded as the run can queue (a burst of final reports from
        // thousands of workers would otherwise all be decoded at once, waiting). A full queue
        // is the master falling behind, not the worker falling silent.
        liveness.hold(true);
        let slot = events.reserve().await;
        liveness.hold(false);
        let Ok(slot) = slot else {
            return;
        };
        let worker = worker.clone();
        let event = match kind {
            Kind::Report(r) => {
                let report = decode::decode(r);
                if let Ok(r) = &report {
                    liveness.set_users(r.users);
                }
                Event::Report {
                    conn,
                    worker,
                    report,
                    received,
                }
            }
            Kind::Goodbye(goodbye) => Event::Goodbye {
                conn,
                worker,
                goodbye,
            },
            Kind::Heartbeat(_) | Kind::Hello(_) => continue,
        };
        slot.send(event);
    };
    let _ = events
        .send(Event::Left {
            conn,
            worker,
            reason,
        })
        .await;
}

/// The master's side of the heartbeats: a worker that hears nothing for its --master-timeout
/// stops its load. Holds the outbox weakly, so the stream still ends when the controller drops
/// the worker.
async fn heartbeats(outbox: mpsc::WeakSender<Result<pb::MasterMessage, Status>>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        let sent_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let beat = pb::MasterMessage {
            kind: Some(pb::master_message::Kind::Heartbeat(pb::MasterHeartbeat {
                sent_unix_ms,
            })),
        };
        // A full queue means the worker is not reading; the controller deals with that.
        if let Err(mpsc::error::TrySendError::Closed(_)) = outbox.try_send(Ok(beat)) {
            return;
        }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for Service {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        req: Request<Streaming<pb::WorkerMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        self.check_token(&req)?;
        let peer = req.remote_addr();
        let mut inbound = req.into_inner();
        let hello = read_hello(&mut inbound).await.inspect_err(|status| {
            tracing::warn!(?peer, "refused a worker: {}", status.message());
        })?;
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let welcome = pb::MasterMessage {
            kind: Some(pb::master_message::Kind::Welcome(pb::Welcome {
                protocol_version: PROTOCOL_VERSION,
                master_version: env!("CARGO_PKG_VERSION").to_owned(),
                heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            })),
        };
        outbox
            .send(Ok(welcome))
            .await
            .map_err(|_| Status::internal("outbox closed"))?;
        tokio::spawn(heartbeats(
            outbox.downgrade(),
            self.config.heartbeat_interval,
        ));
        let worker = hello.worker_id.clone();
        let liveness = Liveness::new();
        self.events
            .send(Event::Joined {
                conn,
                hello,
                outbox,
                liveness: liveness.clone(),
            })
            .await
            .map_err(|_| Status::unavailable("the master is shutting down"))?;
        tokio::spawn(pump(conn, worker, inbound, self.events.clone(), liveness));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Bytes a worker's connection may send ahead of the master's reading.
const RECEIVE_WINDOW: u32 = 128 * 1024;

/// Binds the gRPC listener; returns the bound address (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Service,
    tls: Option<&ServerTls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = CoordinatorServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let incoming = TcpListenerStream::new(listener);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config())?;
    }
    builder
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        // A connection may bring a few reports ahead of the master (hyper's 1 MB default let
        // 8,000 overloaded workers park 2.7 GB in the master): past that, flow control keeps
        // them in the workers, which hold every unacknowledged report anyway.
        .initial_stream_window_size(RECEIVE_WINDOW)
        .initial_connection_window_size(RECEIVE_WINDOW)
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
