//! The per-user HTTP client: over HTTP/1.1, one keep-alive connection, opened lazily and
//! reopened when the server has closed it, or connections borrowed from the engine thread's
//! shared pools; over HTTP/2, streams on the engine thread's shared connections ([`Hub`]).
//! Redirects are followed within the run's bound. The exchanges themselves are [`crate::h1`]
//! and [`crate::h2`]; connections are opened by [`crate::dial`], plain or TLS.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::header::HOST;
use ::http::{Method, StatusCode, Uri};
use tracing::debug;

use crate::dest::Dest;
use crate::dial::{DialError, Stream};
use crate::h1::{self, Conn, Value};
use crate::h2::{self, H2Request, Hub};
use crate::phases::Phases;
use crate::plan::{HttpMode, Plan, absolute_uri};
use crate::pool::{Lease, Pools};

/// Why an exchange produced no final response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    #[error("tls: {reason}: {source}")]
    Tls {
        reason: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("request timed out")]
    Timeout,
    #[error("http: {0}")]
    Http(#[source] h1::Error),
    #[error("{0}")]
    H2(#[source] h2::Error),
    #[error("redirect: {0}")]
    Redirect(String),
}

impl From<DialError> for Error {
    fn from(e: DialError) -> Self {
        match e {
            DialError::Connect(e) => Error::Connect(e),
            DialError::Tls { reason, source } => Error::Tls { reason, source },
        }
    }
}

impl From<h2::Error> for Error {
    fn from(e: h2::Error) -> Self {
        match e {
            h2::Error::Dial(e) => e.into(),
            e => Error::H2(e),
        }
    }
}

/// The final response of an exchange.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    /// The value of the run's arch header, if the response had one.
    pub arch: Option<Value>,
}

/// One request as measured: latency from its origin (just before connecting or sending, or when
/// an open-model arrival was due) to the end of the final response's body, and its phases.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub latency: Duration,
    pub result: Result<Answer, Error>,
    pub phases: Phases,
}

/// A user's connections: one to its target, and one to the last other authority a redirect
/// pointed at; or, with shared pools, whatever connection the pool lends for each hop; and the
/// engine thread's HTTP/2 connections.
pub(crate) struct Client {
    primary: Option<Conn>,
    secondary: Option<Conn>,
    secondary_dest: Option<Dest>,
    pools: Option<Arc<Pools>>,
    hub: Arc<Hub>,
}

/// What an HTTP/1.1 hop gave: a response, or (an `auto` target) a connection on which ALPN
/// chose HTTP/2, which the hop's request then goes over instead.
enum Sent {
    Response(h1::Response),
    NegotiatedH2(Stream),
}

impl Client {
    /// A client with connections of its own (`pools` is `None`) or borrowed from `pools`,
    /// and the engine thread's HTTP/2 connections.
    pub(crate) fn new(pools: Option<Arc<Pools>>, hub: Arc<Hub>) -> Self {
        Self {
            primary: None,
            secondary: None,
            secondary_dest: None,
            pools,
            hub,
        }
    }

    /// Sends request `request` to target `target`, following redirects, within the request's
    /// timeout (which covers connect, response and body). Latency counts from `origin`.
    pub(crate) async fn execute(
        &mut self,
        plan: &Plan,
        target: usize,
        request: usize,
        origin: Instant,
    ) -> Exchange {
        let timeout = plan.requests[request].timeout;
        let mut phases = Phases::default();
        let result =
            match tokio::time::timeout(timeout, self.follow(plan, target, request, &mut phases))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout),
            };
        let latency = origin.elapsed();
        // After a failure the connection's state is unknown (a timed-out request may still be
        // in flight on it): start afresh. In close mode every request gets a new connection.
        if result.is_err() || plan.close_each {
            self.primary = None;
            self.secondary = None;
        }
        Exchange {
            latency,
            result,
            phases,
        }
    }

    /// Whether the target's own endpoint is spoken to over HTTP/2 (on this thread).
    fn speaks_h2(&self, plan: &Plan, target: usize) -> bool {
        let t = &plan.targets[target];
        match t.http {
            HttpMode::H1 => false,
            HttpMode::H2 => true,
            HttpMode::Auto => t.dest.tls && self.hub.learned(target) == Some(true),
        }
    }

    async fn follow(
        &mut self,
        plan: &Plan,
        target: usize,
        request: usize,
        phases: &mut Phases,
    ) -> Result<Answer, Error> {
        let t = &plan.targets[target];
        let r = &plan.requests[request];
        let mut method = r.method.clone();
        let mut uri = r.uris[target].clone();
        // The first hop's bytes were rendered with the plan; a redirect's are rendered here.
        let mut rendered: Option<Vec<u8>> = None;
        let mut dropped_body = false;
        // None: the target's own endpoint.
        let mut other: Option<Dest> = None;
        let mut hops = 0;
        let hub = Arc::clone(&self.hub);
        // An `auto` target this thread has not asked yet: one request asks, the rest wait.
        let _probing = if t.http == HttpMode::Auto && t.dest.tls && hub.learned(target).is_none() {
            Some(hub.probe(target).await)
        } else {
            None
        };
        loop {
            let dest = other.as_ref().unwrap_or(&t.dest);
            let wire = rendered.as_deref().unwrap_or(&r.wire[target]);
            let body = if dropped_body { &plan.no_body } else { &r.body };
            let hop = Hop {
                wire,
                method: &method,
                arch_header: &plan.arch_header,
                plan,
                hub: &hub,
                target,
                own: other.is_none(),
            };
            let resp = if other.is_none() && self.speaks_h2(plan, target) {
                let req = H2Request {
                    method: &method,
                    uri: if hops == 0 {
                        r.h2_uris[target].clone()
                    } else {
                        h2_uri(dest, r, &uri)?
                    },
                    headers: &r.h2_headers,
                    body,
                    arch_header: &plan.arch_header,
                };
                self.hub
                    .send(plan, target, &req, plan.close_each, phases)
                    .await?
            } else {
                // Shared mode: the borrowed connection goes back when this hop's body is read.
                let mut lease: Option<Lease> = None;
                let sent = if let Some(pools) = &self.pools {
                    let lease = lease.insert(pools.lease(dest).await);
                    hop.send(&mut lease.slot, dest, phases).await?
                } else {
                    match other.as_ref() {
                        None => hop.send(&mut self.primary, dest, phases).await?,
                        Some(d) => {
                            let slot = self.secondary_for(d);
                            hop.send(slot, d, phases).await?
                        }
                    }
                };
                match sent {
                    Sent::Response(resp) => {
                        if let Some(lease) = lease.as_mut() {
                            lease.keep();
                        }
                        resp
                    }
                    Sent::NegotiatedH2(stream) => {
                        // An `auto` target answered h2: this thread speaks h2 to it from now on.
                        self.hub.learn(target, true);
                        self.hub.adopt(target, stream).await?;
                        continue;
                    }
                }
            };
            let status = resp.status;
            let redirect = (300..400).contains(&status) && hops < r.max_redirects;
            if let (true, Some(location)) = (redirect, resp.location.as_deref()) {
                let next = resolve_location(location, dest, &uri)?;
                hops += 1;
                // 303 means "GET the other resource"; 307/308 (and, in practice, 301/302 for
                // GET) repeat the same request.
                if status == StatusCode::SEE_OTHER.as_u16() && method != Method::HEAD {
                    method = Method::GET;
                    dropped_body = true;
                }
                other = Some(next.dest).filter(|d| !d.same_endpoint(&t.dest));
                uri = next.uri;
                // A Host header from the scenario names the target; elsewhere, the redirect's.
                let host = match other.as_ref() {
                    Some(d) => Some(d.host_header.as_bytes()),
                    None if r.headers.contains_key(HOST) => None,
                    None => Some(t.dest.host_header.as_bytes()),
                };
                let body: &[u8] = if dropped_body { b"" } else { &r.body };
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                rendered = Some(h1::render(
                    &method,
                    path,
                    host,
                    &r.headers,
                    body,
                    plan.close_each,
                ));
                continue;
            }
            return Ok(Answer {
                status,
                arch: resp.arch,
            });
        }
    }

    /// The secondary connection slot, emptied first if it belongs to another endpoint.
    fn secondary_for(&mut self, dest: &Dest) -> &mut Option<Conn> {
        if !self
            .secondary_dest
            .as_ref()
            .is_some_and(|d| d.same_endpoint(dest))
        {
            self.secondary = None;
            self.secondary_dest = Some(dest.clone());
        }
        &mut self.secondary
    }
}

/// The absolute URI of a redirect hop on the target's own endpoint, for HTTP/2.
fn h2_uri(dest: &Dest, r: &crate::plan::RequestPlan, uri: &Uri) -> Result<Uri, Error> {
    let authority = r.headers.get(HOST).unwrap_or(&dest.host_header);
    absolute_uri(dest.scheme(), authority, uri).map_err(Error::Redirect)
}

/// One HTTP/1.1 hop of an exchange: the bytes to send and what reading the answer needs.
struct Hop<'a> {
    wire: &'a [u8],
    method: &'a Method,
    arch_header: &'a ::http::header::HeaderName,
    plan: &'a Plan,
    hub: &'a Hub,
    target: usize,
    /// The hop goes to the target's own endpoint.
    own: bool,
}

impl Hop<'_> {
    /// Sends on the connection in `slot`, opening one if there is none or the old one was
    /// closed; the slot is emptied unless the connection may carry another request.
    async fn send(
        &self,
        slot: &mut Option<Conn>,
        dest: &Dest,
        phases: &mut Phases,
    ) -> Result<Sent, Error> {
        let reused = slot.take().and_then(|mut conn| {
            // A connection the server closed while idle is dropped here.
            (!conn.is_stale()).then_some(conn)
        });
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(conn) => conn,
            None => match self.connect(dest, phases).await? {
                Ok(conn) => conn,
                Err(stream) => return Ok(Sent::NegotiatedH2(stream)),
            },
        };
        let head = *self.method == Method::HEAD;
        let result = match conn.exchange(self.wire, head, self.arch_header).await {
            // The server closed a kept-alive connection just as the request went out and
            // answered nothing: an idempotent request is sent again on a fresh connection.
            Err(e) if was_reused && e.unanswered() && h1::idempotent(self.method) => {
                debug!("kept-alive connection closed under the request ({e}); reconnecting");
                conn = match self.connect(dest, phases).await? {
                    Ok(conn) => conn,
                    Err(stream) => return Ok(Sent::NegotiatedH2(stream)),
                };
                conn.exchange(self.wire, head, self.arch_header).await
            }
            other => other,
        };
        let resp = result.map_err(Error::Http)?;
        phases.ttfb = Some(resp.ttfb);
        if resp.reusable {
            *slot = Some(conn);
        }
        Ok(Sent::Response(resp))
    }

    /// A new HTTP/1.1 connection, or (`Err`) the stream of an `auto` target's connection on
    /// which ALPN chose h2.
    async fn connect(
        &self,
        dest: &Dest,
        phases: &mut Phases,
    ) -> Result<Result<Conn, Stream>, Error> {
        let t = &self.plan.targets[self.target];
        // Boxed: opening a connection (TLS included) is a large future, and the request's own
        // future, moved on every request, should not carry it.
        let stream = Box::pin(t.dialer.open(dest, self.own, phases)).await?;
        if self.own && t.http == HttpMode::Auto && dest.tls {
            let h2 = stream.negotiated_h2();
            if h2 {
                return Ok(Err(stream));
            }
            self.hub.learn(self.target, false);
        }
        Ok(Ok(Conn::new(stream)))
    }
}

/// Where a redirect points: an endpoint and an origin-form URI there.
struct Redirect {
    dest: Dest,
    uri: Uri,
}

/// Resolves a Location header against the current request (RFC 3986 reference resolution,
/// for the forms servers send: absolute URL, network-path, absolute path, relative path, query).
fn resolve_location(location: &[u8], current: &Dest, current_uri: &Uri) -> Result<Redirect, Error> {
    let bad =
        |why: &str| Error::Redirect(format!("{why}: {:?}", String::from_utf8_lossy(location)));
    let text = std::str::from_utf8(location)
        .map_err(|_| bad("Location is not UTF-8"))?
        .trim();
    let same_host = |path: String| -> Result<Redirect, Error> {
        let uri = origin_form(&remove_dot_segments(&path)).map_err(|_| bad("bad path"))?;
        Ok(Redirect {
            dest: current.clone(),
            uri,
        })
    };
    if let Some(rest) = text.strip_prefix("//") {
        // Network-path reference: same scheme, other authority.
        let scheme = if current.tls { "https" } else { "http" };
        return resolve_location(
            format!("{scheme}://{rest}").as_bytes(),
            current,
            current_uri,
        );
    }
    if text.starts_with('/') {
        return same_host(text.to_string());
    }
    if let Some(query) = text.strip_prefix('?') {
        return same_host(format!("{}?{query}", current_uri.path()));
    }
    let has_scheme = text.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    if !has_scheme {
        // Relative path: against the current path's directory.
        let dir = current_uri
            .path()
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir);
        return same_host(format!("{dir}/{text}"));
    }
    let uri: Uri = text.parse().map_err(|_| bad("unparsable Location"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme @ ("http" | "https")), Some(authority)) => {
            let dest = Dest::from_authority(authority, scheme == "https").map_err(|e| bad(&e))?;
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let uri = origin_form(&remove_dot_segments(path)).map_err(|_| bad("bad path"))?;
            Ok(Redirect { dest, uri })
        }
        (Some(scheme), _) => Err(bad(&format!("redirect to {scheme}: is not supported"))),
        (None, _) => Err(bad("unparsable Location")),
    }
}

/// Removes `.` and `..` segments from a path (the query is left alone).
fn remove_dot_segments(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                // A trailing dot segment leaves a directory: keep the trailing slash.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut result = format!("/{}", out.join("/"));
    if let Some(q) = query {
        result.push('?');
        result.push_str(q);
    }
    result
}

fn origin_form(path_and_query: &str) -> Result<Uri, ::http::uri::InvalidUri> {
    path_and_query.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(authority: &str) -> Dest {
        Dest::from_authority(&authority.parse().unwrap(), false).unwrap()
    }

    fn resolve(location: &str, uri: &str) -> Result<(String, u16, String), Error> {
        let r = resolve_location(
            location.as_bytes(),
            &dest("a.test:8080"),
            &uri.parse().unwrap(),
        )?;
        Ok((r.dest.host, r.dest.port, r.uri.to_string()))
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let here = |p: &str| ("a.test".to_string(), 8080, p.to_string());
        assert_eq!(
            resolve("/arm/runtime", "/app/runtime").unwrap(),
            here("/arm/runtime")
        );
        assert_eq!(
            resolve("../amd/x?y=1", "/app/b/c").unwrap(),
            here("/app/amd/x?y=1")
        );
        assert_eq!(resolve("d", "/app/b/c").unwrap(), here("/app/b/d"));
        assert_eq!(resolve("?page=2", "/list").unwrap(), here("/list?page=2"));
        assert_eq!(resolve("/a/./b/../c", "/").unwrap(), here("/a/c"));
        assert_eq!(
            resolve("http://b.test/arm?x=1", "/app").unwrap(),
            ("b.test".to_string(), 80, "/arm?x=1".to_string())
        );
        assert_eq!(
            resolve("//b.test:81/z", "/app").unwrap(),
            ("b.test".to_string(), 81, "/z".to_string())
        );
        assert_eq!(
            resolve("http://b.test", "/app").unwrap(),
            ("b.test".to_string(), 80, "/".to_string())
        );
    }

    #[test]
    fn https_locations_keep_tls() {
        let r = resolve_location(
            b"https://b.test/x",
            &dest("a.test:8080"),
            &"/".parse().unwrap(),
        )
        .unwrap();
        assert_eq!((r.dest.port, r.dest.tls), (443, true));
        let here = Dest::from_authority(&"a.test:8443".parse().unwrap(), true).unwrap();
        let r = resolve_location(b"//c.test/y", &here, &"/".parse().unwrap()).unwrap();
        assert_eq!(
            (r.dest.host.as_str(), r.dest.port, r.dest.tls),
            ("c.test", 443, true)
        );
        assert!(
            !here.same_endpoint(&dest("a.test:8443")),
            "the scheme is part of the endpoint"
        );
    }

    #[test]
    fn unsupported_locations_are_errors() {
        assert!(matches!(
            resolve("ftp://b.test/", "/"),
            Err(Error::Redirect(_))
        ));
        assert!(matches!(
            resolve("mailto:x@y", "/"),
            Err(Error::Redirect(_))
        ));
        assert!(matches!(resolve("/a b", "/"), Err(Error::Redirect(_))));
    }

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/../../.."), "/");
        assert_eq!(remove_dot_segments("/a/b/.."), "/a/");
        assert_eq!(remove_dot_segments("/a/./b"), "/a/b");
        assert_eq!(remove_dot_segments("/"), "/");
    }
}
