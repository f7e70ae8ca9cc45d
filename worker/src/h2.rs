//! HTTP/2 through the `h2` crate: on each engine thread, for each target, up to `connections`
//! shared connections that the thread's users and arrivals multiplex their requests over, at
//! most `streams_per_connection` at a time on each (fewer when the server's SETTINGS say so).
//! Each connection has its driver task (h2's `Connection` future) on the engine thread; a
//! request waits for a free stream, and that wait counts in its latency, as it would for any
//! HTTP/2 client.
//!
//! A request the server provably did not process (refused with REFUSED_STREAM, above a GOAWAY's
//! last stream id, or never sent because the connection was going away) is sent again, on
//! another connection, a bounded number of times; it is recorded once either way.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ::h2::client::SendRequest;
use ::h2::{Reason, RecvStream};
use ::http::header::{HeaderMap, HeaderName};
use ::http::{Method, Request, Uri};
use bytes::Bytes;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tracing::debug;

use crate::dest::Dest;
use crate::dial::{DialError, Stream};
use crate::h1::{Response, Value};
use crate::phases::Phases;
use crate::plan::{Plan, TargetPlan};

/// Largest response header block accepted (as for HTTP/1.1 heads): past it the stream fails.
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Flow-control windows offered: large enough that a response body never waits for a window
/// update on loopback, small enough to bound what one connection can buffer.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
/// How often an unprocessed request is sent again before its refusal is the answer.
const MAX_RETRIES: u32 = 2;

/// Why an HTTP/2 request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Dial(#[from] DialError),
    #[error("h2 handshake: {0}")]
    Handshake(#[source] ::h2::Error),
    #[error("h2: {0}")]
    Stream(#[source] ::h2::Error),
    #[error("h2: the server did not choose h2 in ALPN")]
    NotNegotiated,
    #[error("h2: bad request: {0}")]
    Request(String),
}

impl Error {
    /// The server provably did not process the request (RFC 9113 §8.7): it refused the stream,
    /// or the stream was above the last id of the GOAWAY it sent (h2 reports a remote GOAWAY on
    /// exactly those streams), or the request was never handed to the connection.
    fn unprocessed(&self) -> bool {
        match self {
            Error::Stream(e) => {
                (e.is_reset() && e.is_remote() && e.reason() == Some(Reason::REFUSED_STREAM))
                    || (e.is_go_away() && e.is_remote())
            }
            _ => false,
        }
    }

    /// The server said the connection is going away: no new stream may use it.
    fn going_away(&self) -> bool {
        matches!(self, Error::Stream(e) if e.is_go_away())
    }

    /// The short reason a failure is counted under.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Error::Dial(_) => "connect",
            Error::Handshake(_) => "h2 handshake failed",
            Error::NotNegotiated => "no common protocol",
            Error::Request(_) => "h2 bad request",
            Error::Stream(e) => stream_reason(e),
        }
    }
}

/// The short reason of an error on a stream or connection.
pub(crate) fn stream_reason(e: &::h2::Error) -> &'static str {
    match e {
        e if e.is_go_away() => match e.reason() {
            Some(Reason::NO_ERROR) => "h2 GOAWAY",
            Some(Reason::PROTOCOL_ERROR) if !e.is_remote() => "h2 protocol error",
            Some(Reason::COMPRESSION_ERROR) => "h2 compression error",
            Some(Reason::FRAME_SIZE_ERROR) => "h2 frame size error",
            Some(Reason::ENHANCE_YOUR_CALM) => "h2 GOAWAY ENHANCE_YOUR_CALM",
            _ => "h2 GOAWAY with error",
        },
        e if e.is_reset() => match e.reason() {
            Some(Reason::REFUSED_STREAM) => "h2 RST_STREAM REFUSED_STREAM",
            Some(Reason::CANCEL) => "h2 RST_STREAM CANCEL",
            Some(Reason::PROTOCOL_ERROR) if !e.is_remote() => "h2 protocol error",
            Some(Reason::INTERNAL_ERROR) => "h2 RST_STREAM INTERNAL_ERROR",
            Some(Reason::NO_ERROR) => "h2 RST_STREAM NO_ERROR",
            _ => "h2 RST_STREAM",
        },
        e if e.is_io() => "h2 connection lost",
        _ => "h2 protocol error",
    }
}

/// One request as HTTP/2 sends it.
pub(crate) struct H2Request<'a> {
    pub method: &'a Method,
    /// Absolute: scheme, authority (`:authority`), path.
    pub uri: Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub arch_header: &'a HeaderName,
}

/// What a thread learned of an `auto` target: whether ALPN picked h2.
const LEARNED_NOTHING: u8 = 0;
const LEARNED_H1: u8 = 1;
const LEARNED_H2: u8 = 2;

/// The HTTP/2 connections of one engine thread, per target.
pub(crate) struct Hub {
    targets: Vec<Arc<TargetConns>>,
}

impl Hub {
    /// Connections per target on this thread: the target's `connections` shared over the
    /// engine's `threads` (rounded up), or one.
    pub(crate) fn new(plan: &Plan, threads: usize) -> Self {
        let targets = plan
            .targets
            .iter()
            .map(|t| {
                let conns = t
                    .connections
                    .map_or(1, |n| n.div_ceil(threads.max(1)))
                    .max(1);
                Arc::new(TargetConns::new(conns, t.streams_per_connection.max(1)))
            })
            .collect();
        Self { targets }
    }

    /// For an `auto` target: `Some(true)` once a connection of this thread negotiated h2,
    /// `Some(false)` once one negotiated HTTP/1.1.
    pub(crate) fn learned(&self, target: usize) -> Option<bool> {
        match self.targets[target].learned.load(Ordering::Relaxed) {
            LEARNED_H2 => Some(true),
            LEARNED_H1 => Some(false),
            _ => None,
        }
    }

    /// Held by the one request of this thread that finds out what an `auto` target speaks:
    /// the others wait for the answer instead of each opening a connection to ask.
    pub(crate) async fn probe(&self, target: usize) -> tokio::sync::MutexGuard<'_, ()> {
        self.targets[target].probe.lock().await
    }

    pub(crate) fn learn(&self, target: usize, h2: bool) {
        let value = if h2 { LEARNED_H2 } else { LEARNED_H1 };
        self.targets[target].learned.store(value, Ordering::Relaxed);
    }

    /// Takes a connection that ALPN made an h2 one (an `auto` target's probe) into the pool,
    /// when there is room for it; otherwise it is closed.
    pub(crate) async fn adopt(&self, target: usize, stream: Stream) -> Result<(), Error> {
        let conns = &self.targets[target];
        let room = {
            let mut state = lock(&conns.state);
            let room = state.conns.len() + state.dialing < conns.max_conns;
            if room {
                state.dialing += 1;
            }
            room
        };
        if !room {
            return Ok(());
        }
        let dialing = Dialing(conns);
        let conn = Box::pin(handshake(stream, conns.next_id())).await;
        drop(dialing);
        let conn = conn?;
        lock(&conns.state).conns.push(conn);
        conns.wake();
        Ok(())
    }

    /// Sends `req` to `target`'s own endpoint over one of this thread's connections (or, with
    /// `fresh`, over a connection opened for it alone, as `connection = "close"` asks), and
    /// reads the response to its end.
    pub(crate) async fn send(
        &self,
        plan: &Plan,
        target: usize,
        req: &H2Request<'_>,
        fresh: bool,
        phases: &mut Phases,
    ) -> Result<Response, Error> {
        let t = &plan.targets[target];
        let conns = &self.targets[target];
        let mut tries = 0;
        loop {
            let result = if fresh {
                let conn = Box::pin(dial(t, &t.dest, phases, conns.next_id())).await?;
                let mut conn = conn;
                exchange(&mut conn.send, req, phases).await
            } else {
                let lease = conns.lease(t, phases).await?;
                let mut lease = lease;
                let result = exchange(&mut lease.send, req, phases).await;
                if result.as_ref().is_err_and(Error::going_away) {
                    // Not this connection again: it is going away. (A refused stream leaves
                    // the connection usable: the server was only over its stream limit.)
                    lease.retire();
                }
                result
            };
            match result {
                Err(e) if e.unprocessed() && tries < MAX_RETRIES => {
                    tries += 1;
                    debug!(target = %t.name, "h2 request not processed ({e}); sending it again");
                }
                other => return other,
            }
        }
    }
}

/// One target's connections on one thread.
struct TargetConns {
    max_conns: usize,
    streams: usize,
    /// Free streams over all connections (`max_conns` × `streams`).
    permits: Semaphore,
    state: Mutex<State>,
    /// A connection was added, a dial ended or a stream was given back.
    changed: Notify,
    /// Requests waiting on `changed`.
    waiters: AtomicUsize,
    learned: AtomicU8,
    probe: tokio::sync::Mutex<()>,
    ids: AtomicU64,
}

#[derive(Default)]
struct State {
    conns: Vec<Conn>,
    dialing: usize,
}

/// One HTTP/2 connection: the handle to open streams on, and how many are open.
struct Conn {
    id: u64,
    send: SendRequest<Bytes>,
    in_flight: usize,
    /// Set by the driver task when the connection has ended, or when it must not be used.
    dead: Arc<AtomicBool>,
}

impl TargetConns {
    fn new(max_conns: usize, streams: usize) -> Self {
        Self {
            max_conns,
            streams,
            permits: Semaphore::new(max_conns.saturating_mul(streams)),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            waiters: AtomicUsize::new(0),
            learned: AtomicU8::new(LEARNED_NOTHING),
            probe: tokio::sync::Mutex::new(()),
            ids: AtomicU64::new(0),
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// A stream on the least busy live connection, opening a connection when none has room
    /// and the pool is not full.
    async fn lease(&self, t: &TargetPlan, phases: &mut Phases) -> Result<Lease<'_>, Error> {
        // The semaphore is never closed.
        let mut permit = self.permits.acquire().await.ok();
        let mut registered: Option<(Pin<Box<Notified<'_>>>, Waiter<'_>)> = None;
        loop {
            match self.pick() {
                Pick::Stream(id, send, dead) => {
                    return Ok(Lease {
                        conns: self,
                        id,
                        send,
                        dead,
                        _permit: permit.take(),
                    });
                }
                Pick::Wait => match registered.take() {
                    Some((notified, waiter)) => {
                        notified.await;
                        drop(waiter);
                    }
                    // Register, then look once more: a change in between wakes this request.
                    None => {
                        let waiter = Waiter::new(self);
                        let mut notified = Box::pin(self.changed.notified());
                        notified.as_mut().enable();
                        registered = Some((notified, waiter));
                    }
                },
                Pick::Dial => {
                    drop(registered.take());
                    let dialing = Dialing(self);
                    // Boxed: opening a connection (TLS included) is a large future, and the
                    // request's own future, moved on every request, should not carry it.
                    let result = Box::pin(dial(t, &t.dest, phases, self.next_id())).await;
                    drop(dialing);
                    let mut conn = result?;
                    conn.in_flight = 1;
                    let lease = Lease {
                        conns: self,
                        id: conn.id,
                        send: conn.send.clone(),
                        dead: conn.dead.clone(),
                        _permit: permit.take(),
                    };
                    lock(&self.state).conns.push(conn);
                    self.wake();
                    return Ok(lease);
                }
            }
        }
    }

    /// Wakes requests waiting for a stream, if there are any (most of the time there are
    /// none, and a release costs no more than its lock).
    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// What a request for a stream does now: take one, open a connection (counted as
    /// dialing), or wait for a change.
    fn pick(&self) -> Pick {
        let mut state = lock(&self.state);
        if state.conns.iter().any(|c| c.dead.load(Ordering::Relaxed)) {
            state.conns.retain(|c| !c.dead.load(Ordering::Relaxed));
        }
        let can_dial = state.conns.len() + state.dialing < self.max_conns;
        let dialing = state.dialing;
        let best = state.conns.iter_mut().min_by_key(|c| c.in_flight);
        match best {
            // Up to `connections`, a busy pool opens another one, so that streams spread over
            // all of them (as a server behind a balancer would see real clients do).
            Some(conn) if conn.in_flight > 0 && can_dial => {
                state.dialing += 1;
                return Pick::Dial;
            }
            // The server's limit is asked of the one candidate only (it takes h2's lock).
            Some(conn)
                if conn.in_flight < self.streams
                    && conn.in_flight < conn.send.current_max_send_streams() =>
            {
                conn.in_flight += 1;
                return Pick::Stream(conn.id, conn.send.clone(), conn.dead.clone());
            }
            _ if can_dial => {
                state.dialing += 1;
                return Pick::Dial;
            }
            _ if dialing > 0 => return Pick::Wait,
            _ => {}
        }
        // Every connection is at the server's stream limit, below ours: the stream permits
        // still allow this request, so the least busy connection takes it and h2 queues it
        // until the server lets it open.
        match state.conns.iter_mut().min_by_key(|c| c.in_flight) {
            Some(conn) => {
                conn.in_flight += 1;
                Pick::Stream(conn.id, conn.send.clone(), conn.dead.clone())
            }
            None => Pick::Wait,
        }
    }
}

enum Pick {
    Stream(u64, SendRequest<Bytes>, Arc<AtomicBool>),
    Dial,
    Wait,
}

/// A request waiting for a stream, counted so that releases only notify when someone waits.
struct Waiter<'a>(&'a TargetConns);

impl<'a> Waiter<'a> {
    fn new(conns: &'a TargetConns) -> Self {
        conns.waiters.fetch_add(1, Ordering::SeqCst);
        Waiter(conns)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a dial in progress; dropping it (the dial ended, or the request was cancelled)
/// uncounts it and wakes requests waiting for a connection.
struct Dialing<'a>(&'a TargetConns);

impl Drop for Dialing<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.dialing = state.dialing.saturating_sub(1);
        drop(state);
        self.0.wake();
    }
}

/// A stream slot on one connection, given back on drop.
struct Lease<'a> {
    conns: &'a TargetConns,
    id: u64,
    send: SendRequest<Bytes>,
    dead: Arc<AtomicBool>,
    _permit: Option<SemaphorePermit<'a>>,
}

impl Lease<'_> {
    /// Takes the connection out of use for new streams (its open streams go on).
    fn retire(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.conns.state);
        if let Some(conn) = state.conns.iter_mut().find(|c| c.id == self.id) {
            conn.in_flight = conn.in_flight.saturating_sub(1);
        }
        drop(state);
        self.conns.wake();
    }
}

/// Opens a connection to the target and makes it an HTTP/2 one.
async fn dial(t: &TargetPlan, dest: &Dest, phases: &mut Phases, id: u64) -> Result<Conn, Error> {
    let stream = t.dialer.open(dest, true, phases).await?;
    if dest.tls && !stream.negotiated_h2() {
        return Err(Error::NotNegotiated);
    }
    handshake(stream, id).await
}

/// The client preface and SETTINGS, and the connection's driver task on this thread.
async fn handshake(stream: Stream, id: u64) -> Result<Conn, Error> {
    let (send, connection) = ::h2::client::Builder::new()
        .max_header_list_size(MAX_HEADER_LIST)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(Error::Handshake)?;
    let dead = Arc::new(AtomicBool::new(false));
    let ended = dead.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!("h2 connection ended: {e}");
        }
        ended.store(true, Ordering::Relaxed);
    });
    Ok(Conn {
        id,
        send,
        in_flight: 0,
        dead,
    })
}

/// One request on one stream: the response head, then the body read (and released) to its
/// end, trailers included.
async fn exchange(
    send: &mut SendRequest<Bytes>,
    req: &H2Request<'_>,
    phases: &mut Phases,
) -> Result<Response, Error> {
    // A lease's clone of the connection's handle has no stream pending, so it is ready: h2's
    // `send_request` itself refuses a connection that is going away.
    let mut request = Request::new(());
    *request.method_mut() = req.method.clone();
    *request.uri_mut() = req.uri.clone();
    if !req.headers.is_empty() {
        *request.headers_mut() = req.headers.clone();
    }
    let sent = Instant::now();
    let (response, mut body_tx) = send
        .send_request(request, req.body.is_empty())
        .map_err(|e| {
            // A request h2 refuses to send (a malformed header) never reached the server.
            if e.is_library() && e.reason().is_none() && !e.is_io() {
                Error::Request(e.to_string())
            } else {
                Error::Stream(e)
            }
        })?;
    if !req.body.is_empty() {
        body_tx
            .send_data(req.body.clone(), true)
            .map_err(Error::Stream)?;
    }
    let response = response.await.map_err(Error::Stream)?;
    phases.ttfb = Some(sent.elapsed());
    let status = response.status().as_u16();
    let arch = response
        .headers()
        .get(req.arch_header)
        .map(|v| Value::new(v.as_bytes()));
    let location = if (300..400).contains(&status) {
        response
            .headers()
            .get(::http::header::LOCATION)
            .map(|v| v.as_bytes().into())
    } else {
        None
    };
    let mut body: RecvStream = response.into_body();
    if !body.is_end_stream() {
        drain(&mut body).await?;
    }
    Ok(Response {
        status,
        arch,
        location,
        reusable: true,
        ttfb: phases.ttfb.unwrap_or(Duration::ZERO),
    })
}

async fn drain(body: &mut RecvStream) -> Result<(), Error> {
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(Error::Stream)?;
        // Give the window back at once: the bytes are dropped, never kept.
        let _ = body.flow_control().release_capacity(chunk.len());
        if body.is_end_stream() {
            return Ok(());
        }
    }
    body.trailers().await.map_err(Error::Stream)?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
