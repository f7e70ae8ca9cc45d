//! Opening a connection: which address (a pinned `connect_to` address, round-robin, else the
//! host resolved through a TTL cache), TCP, then TLS when the scheme is https; each step timed
//! into the request's phases. The stream it returns is either plain TCP or TLS over TCP, and
//! both exchanges (`h1`, `h2`) run over either.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::dest::Dest;
use crate::phases::Phases;
use crate::tls::{self, ALPN_H2, TargetTlsConfig};

/// Host names a target's resolver remembers; redirects can name any host, so it is bounded.
const MAX_CACHED_HOSTS: usize = 64;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    /// Resolving, connecting or the connect timeout: nothing reached a server.
    #[error("{0}")]
    Connect(#[source] io::Error),
    /// TCP connected, the TLS handshake failed.
    #[error("TLS handshake: {reason}: {source}")]
    Tls {
        reason: &'static str,
        #[source]
        source: io::Error,
    },
}

/// An open connection: plain TCP, or TLS over TCP (boxed: a TLS session is large, and a plain
/// connection should not pay for it).
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether ALPN chose HTTP/2.
    pub(crate) fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(ALPN_H2),
        }
    }

    /// Whether the server closed the connection (or sent something unasked) while it sat
    /// idle. The reactor's readiness answers without a system call in the usual case. On TLS a
    /// readable socket may only hold records that carry no data (a TLS 1.3 session ticket):
    /// reading through the session tells those from a close or unasked bytes.
    pub(crate) fn is_stale(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let tcp = match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_mut().0,
        };
        match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => return false,
            Poll::Ready(Err(_)) => return true,
            Poll::Ready(Ok(())) => {}
        }
        match self {
            Stream::Plain(tcp) => {
                let mut probe = [0u8; 1];
                !matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(tls) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                // Pending: only handshake records were there; anything else (data, EOF, an
                // error) means the connection cannot carry a request.
                !Pin::new(&mut **tls)
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// A pinned address: a literal, or a name resolved like the URL's host would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pinned {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Pinned {
    /// Parses `ADDR:PORT` (`10.0.0.1:443`, `[::1]:8443`, `pool-a.internal:443`).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Pinned::Addr(addr));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: expected ADDR:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err(format!("{text:?}: expected ADDR:PORT"));
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(Pinned::Addr(SocketAddr::new(ip, port))),
            Err(_) => Ok(Pinned::Name(host.to_string(), port)),
        }
    }
}

struct Cached {
    host: String,
    port: u16,
    addrs: Arc<[SocketAddr]>,
    until: Instant,
}

/// How one target's connections are opened. Shared by every engine thread: its state (the
/// round-robin position and the resolver cache) is touched once per new connection, never
/// per request.
pub(crate) struct Dialer {
    pinned: Vec<Pinned>,
    next: AtomicUsize,
    dns_ttl: Duration,
    cache: Mutex<Vec<Cached>>,
    tls: Option<TargetTlsConfig>,
    connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("pinned", &self.pinned)
            .field("dns_ttl", &self.dns_ttl)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Dialer {
    pub(crate) fn new(
        pinned: Vec<Pinned>,
        dns_ttl: Duration,
        tls: Option<TargetTlsConfig>,
        connect_timeout: Option<Duration>,
    ) -> Self {
        Self {
            pinned,
            next: AtomicUsize::new(0),
            dns_ttl,
            cache: Mutex::new(Vec::new()),
            tls,
            connect_timeout,
        }
    }

    /// Opens a connection to `dest`. `own`: `dest` is the target's own endpoint, so pinned
    /// addresses, `server_name` and the target's ALPN apply; elsewhere (a redirect's host) the
    /// host is resolved and only HTTP/1.1 is offered.
    pub(crate) async fn open(
        &self,
        dest: &Dest,
        own: bool,
        phases: &mut Phases,
    ) -> Result<Stream, DialError> {
        let reaching = self.reach(dest, own, phases);
        let tcp = match self.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, reaching).await.map_err(|_| {
                DialError::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            })?,
            None => reaching.await,
        }?;
        // Requests are small and latency is what is measured: Nagle must not hold them back.
        tcp.set_nodelay(true).map_err(DialError::Connect)?;
        if !dest.tls {
            return Ok(Stream::Plain(tcp));
        }
        let (config, name) = match &self.tls {
            Some(t) if own => (t.own.clone(), t.server_name.clone()),
            Some(t) => (t.other.clone(), None),
            None => (TargetTlsConfig::default_other(), None),
        };
        let name = match name {
            Some(name) => name,
            None => ServerName::try_from(dest.host.clone()).map_err(|_| DialError::Tls {
                reason: "bad server name",
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} cannot be sent as SNI", dest.host),
                ),
            })?,
        };
        let started = Instant::now();
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| DialError::Tls {
                reason: handshake_reason(&source),
                source,
            })?;
        phases.tls = Some(started.elapsed());
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Resolves (when needed) and connects TCP, trying each address in turn.
    async fn reach(
        &self,
        dest: &Dest,
        own: bool,
        phases: &mut Phases,
    ) -> Result<TcpStream, DialError> {
        let addrs: Arc<[SocketAddr]> = if own && !self.pinned.is_empty() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pinned.len();
            match &self.pinned[i] {
                Pinned::Addr(addr) => Arc::from([*addr]),
                Pinned::Name(host, port) => self.resolve(host, *port, phases).await?,
            }
        } else if let Ok(ip) = dest.host.parse::<IpAddr>() {
            Arc::from([SocketAddr::new(ip, dest.port)])
        } else {
            self.resolve(&dest.host, dest.port, phases).await?
        };
        let started = Instant::now();
        let mut last = None;
        for addr in addrs.iter() {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    phases.connect = Some(started.elapsed());
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(DialError::Connect(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
        })))
    }

    /// The addresses of `host` (A and AAAA), from the cache while its entry is fresh.
    async fn resolve(
        &self,
        host: &str,
        port: u16,
        phases: &mut Phases,
    ) -> Result<Arc<[SocketAddr]>, DialError> {
        let now = Instant::now();
        {
            let cache = lock(&self.cache);
            if let Some(hit) = cache
                .iter()
                .find(|c| c.port == port && c.until > now && c.host.eq_ignore_ascii_case(host))
            {
                return Ok(hit.addrs.clone());
            }
        }
        let addrs: Arc<[SocketAddr]> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| {
                DialError::Connect(io::Error::new(
                    e.kind(),
                    format!("cannot resolve {host}: {e}"),
                ))
            })?
            .collect();
        phases.dns = Some(now.elapsed());
        if addrs.is_empty() {
            return Err(DialError::Connect(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )));
        }
        if !self.dns_ttl.is_zero() {
            let mut cache = lock(&self.cache);
            cache.retain(|c| c.until > now && !(c.port == port && c.host == host));
            if cache.len() < MAX_CACHED_HOSTS {
                cache.push(Cached {
                    host: host.to_string(),
                    port,
                    addrs: addrs.clone(),
                    until: now + self.dns_ttl,
                });
            }
        }
        Ok(addrs)
    }
}

/// The reason a handshake failed: rustls's own error when it has one, else what the
/// connection did.
fn handshake_reason(err: &io::Error) -> &'static str {
    if let Some(e) = tls::rustls_error(err) {
        return tls::reason(e);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => "closed during handshake",
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "reset during handshake",
        _ => "handshake failure",
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_addresses_parse() {
        assert_eq!(
            Pinned::parse("127.0.0.2:8443").unwrap(),
            Pinned::Addr("127.0.0.2:8443".parse().unwrap())
        );
        assert_eq!(
            Pinned::parse("[::1]:443").unwrap(),
            Pinned::Addr("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            Pinned::parse("pool-a.internal:443").unwrap(),
            Pinned::Name("pool-a.internal".into(), 443)
        );
        for bad in ["10.0.0.1", "host:", "host:99999", ":443", "a b:1"] {
            assert!(Pinned::parse(bad).is_err(), "{bad}");
        }
    }
}
