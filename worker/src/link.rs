//! One connection to the master: dial, open the `Session` stream with the token, say Hello,
//! wait for the Welcome. Outgoing messages go through an mpsc channel that feeds the request
//! stream, so every sender (timers, handlers) shares one ordered path.

use std::error::Error as StdError;
use std::time::Duration;

use stampede_proto::coordinator_client::CoordinatorClient;
use stampede_proto::master_message::Kind as In;
use stampede_proto::worker_message::Kind as Out;
use stampede_proto::{
    Hello, MasterMessage, PROTOCOL_VERSION, TOKEN_METADATA_KEY, Welcome, WorkerMessage,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status, Streaming};

use crate::{WorkerError, WorkerOptions};

/// Outgoing messages waiting for the stream; reports are one per interval, so this is plenty.
const OUTBOX: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the master may take to answer the Hello.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings notice a dead connection even when the master has nothing to say.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A live session stream.
pub(crate) struct Link {
    tx: mpsc::Sender<WorkerMessage>,
    pub(crate) inbound: Streaming<MasterMessage>,
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The master is not reading; the message was dropped.
    Full,
    /// The stream is gone.
    Closed,
}

impl Link {
    /// Queues a message without waiting: the session loop must never block on a master that
    /// stopped reading, or its dead-man switch would block with it.
    pub(crate) fn send(&self, kind: Out) -> Result<(), SendError> {
        self.tx
            .try_send(WorkerMessage { kind: Some(kind) })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SendError::Full,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            })
    }
}

/// Connects, says Hello and returns the link with the master's Welcome.
pub(crate) async fn dial(
    opts: &WorkerOptions,
    instance: String,
) -> Result<(Link, Welcome), WorkerError> {
    let channel = connect(opts).await?;
    let (tx, rx) = mpsc::channel(OUTBOX);
    // Queued before the call, so the master's first read finds it.
    tx.try_send(WorkerMessage {
        kind: Some(Out::Hello(hello(opts, &instance))),
    })
    .map_err(|_| WorkerError::Disconnected("outgoing stream closed before Hello".into()))?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = &opts.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| WorkerError::InvalidToken)?;
        request.metadata_mut().insert(TOKEN_METADATA_KEY, value);
    }
    let mut client = CoordinatorClient::new(channel);
    let handshake = async {
        let mut inbound = client
            .session(request)
            .await
            .map_err(from_status)?
            .into_inner();
        let first = inbound.message().await.map_err(from_status)?;
        Ok::<_, WorkerError>((inbound, first))
    };
    let (inbound, first) = tokio::time::timeout(WELCOME_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            WorkerError::Disconnected(format!(
                "no Welcome from the master within {}",
                humantime::format_duration(WELCOME_TIMEOUT)
            ))
        })??;
    let welcome = match first {
        Some(MasterMessage {
            kind: Some(In::Welcome(welcome)),
        }) => welcome,
        Some(other) => {
            return Err(WorkerError::Protocol(format!(
                "expected Welcome as the master's first message, got {:?}",
                other.kind.as_ref().map(kind_name)
            )));
        }
        None => {
            return Err(WorkerError::Disconnected(
                "the master closed the session before welcoming this worker".into(),
            ));
        }
    };
    if welcome.protocol_version != PROTOCOL_VERSION {
        return Err(WorkerError::VersionMismatch {
            worker: PROTOCOL_VERSION,
            master: format!("v{}", welcome.protocol_version),
        });
    }
    Ok((Link { tx, inbound }, welcome))
}

/// Dials the master eagerly, so an unreachable master is reported as such.
async fn connect(opts: &WorkerOptions) -> Result<Channel, WorkerError> {
    let master = &opts.master;
    let invalid = |detail: String| WorkerError::InvalidMaster {
        addr: master.to_string(),
        detail,
    };
    // Accept a bare host:port, as people type it; TLS means https.
    let addr = match (master.split_once("://"), &opts.tls) {
        (None, None) => format!("http://{master}"),
        (None, Some(_)) => format!("https://{master}"),
        (Some(("http", rest)), Some(_)) => format!("https://{rest}"),
        (Some(("https", _)), None) => {
            return Err(invalid(
                "https needs the CA that signed the master's certificate (--tls-ca)".into(),
            ));
        }
        (Some(_), _) => master.to_string(),
    };
    let mut endpoint = Endpoint::from_shared(addr.clone()).map_err(|e| invalid(chain(&e)))?;
    if let Some(tls) = &opts.tls {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| invalid(chain(&e)))?;
    }
    let endpoint = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    endpoint.connect().await.map_err(|e| WorkerError::Connect {
        addr,
        detail: chain(&e),
    })
}

fn hello(opts: &WorkerOptions, instance: &str) -> Hello {
    Hello {
        worker_id: opts.id.clone(),
        hostname: opts.hostname.clone(),
        arch: opts.arch.clone(),
        cores: u32::try_from(opts.threads).unwrap_or(u32::MAX),
        protocol_version: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        instance: instance.to_string(),
    }
}

/// Maps a status from the master to the reason the session ended.
pub(crate) fn from_status(status: Status) -> WorkerError {
    let message = status.message().to_string();
    match status.code() {
        Code::Unauthenticated => WorkerError::Unauthenticated { message },
        Code::FailedPrecondition => WorkerError::VersionMismatch {
            worker: PROTOCOL_VERSION,
            master: message,
        },
        code @ (Code::PermissionDenied
        | Code::InvalidArgument
        | Code::AlreadyExists
        | Code::Unimplemented) => WorkerError::Refused { code, message },
        code => WorkerError::Disconnected(format!("{code:?}: {}", chain(&status))),
    }
}

/// An error and its sources on one line.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

pub(crate) fn kind_name(kind: &In) -> &'static str {
    match kind {
        In::Welcome(_) => "Welcome",
        In::Run(_) => "RunConfig",
        In::Load(_) => "SetLoad",
        In::Stop(_) => "Stop",
        In::Quit(_) => "Quit",
        In::Ack(_) => "Ack",
        In::Heartbeat(_) => "Heartbeat",
    }
}
