//! The HTTP/1.1 exchange on the hot path, written for a load generator, the same over a plain or
//! a TLS stream ([`Stream`]): the request goes out as bytes rendered once per run, the response
//! head is parsed in place (`httparse`) and the body is read to its end and dropped, all inside
//! the user's own task. Nothing is spawned per connection and nothing is buffered while a
//! connection is idle: a read buffer is borrowed from the thread's free list for the length of
//! one exchange.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use ::http::Method;
use ::http::header::{CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, TRANSFER_ENCODING};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dial::Stream;

/// Largest response head accepted; past it the response is a protocol error (a server sending
/// megabytes of headers must not make the worker allocate them).
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
const MAX_HEADERS: usize = 100;
/// A read buffer's size when it is lent out; a head that needs more grows it up to `MAX_HEAD`.
const BUFFER: usize = 8 * 1024;
/// Buffers a thread keeps for reuse; a burst of concurrent exchanges beyond it allocates.
const FREE_BUFFERS: usize = 1024;

/// Why an exchange on an open connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{source}")]
    Io {
        #[source]
        source: io::Error,
        /// Whether any byte of the response had arrived.
        answered: bool,
    },
    #[error("connection closed before the response was complete")]
    Closed { answered: bool },
    #[error("bad response: {0}")]
    Protocol(String),
}

impl Error {
    /// The server sent nothing back: on a kept-alive connection this is the race with the
    /// server closing it while idle, and an idempotent request may be sent again.
    pub(crate) fn unanswered(&self) -> bool {
        match self {
            Error::Io { answered, .. } | Error::Closed { answered } => !answered,
            Error::Protocol(_) => false,
        }
    }
}

/// A short header value kept without a heap allocation (arch names are a few bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Inline { bytes: [u8; 30], len: u8 },
    Heap(Box<[u8]>),
}

impl Value {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut inline = [0u8; 30];
        match inline.get_mut(..bytes.len()) {
            Some(prefix) => {
                prefix.copy_from_slice(bytes);
                Value::Inline {
                    bytes: inline,
                    len: bytes.len() as u8,
                }
            }
            None => Value::Heap(bytes.into()),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Inline { bytes, len } => &bytes[..usize::from(*len)],
            Value::Heap(bytes) => bytes,
        }
    }
}

/// What the caller needs from a final response.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    /// The run's arch header, if present.
    pub arch: Option<Value>,
    /// `Location`, kept only for 3xx responses.
    pub location: Option<Box<[u8]>>,
    /// Whether the connection may carry another request.
    pub reusable: bool,
    /// From the request's first byte written to the response's first byte read.
    pub ttfb: Duration,
}

/// One open connection to a server, plain or TLS: the exchange is the same over both.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
}

impl Conn {
    pub(crate) fn new(stream: Stream) -> Self {
        Self { stream }
    }

    /// Whether the server closed the connection (or sent something unasked) while it sat idle.
    pub(crate) fn is_stale(&mut self) -> bool {
        self.stream.is_stale()
    }

    /// Writes `request` (a complete request, head and body) and reads the final response to
    /// the end of its body. `head` says the request was HEAD: its response has no body.
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        head: bool,
        arch_header: &HeaderName,
    ) -> Result<Response, Error> {
        let sent = Instant::now();
        let unanswered = |source| Error::Io {
            source,
            answered: false,
        };
        self.stream.write_all(request).await.map_err(unanswered)?;
        // TLS may keep records back until flushed; on TCP this is free.
        self.stream.flush().await.map_err(unanswered)?;
        let mut buf = Buffer::take();
        let (mut response, framing, used) =
            self.read_head(&mut buf, head, arch_header, sent).await?;
        let consumed = self.read_body(&mut buf, used, framing).await?;
        // Bytes past the response were never asked for: the connection's state is unknown.
        response.reusable = response.reusable && framing != Framing::UntilClose && consumed;
        Ok(response)
    }

    /// Reads until a final (non-1xx) response head is complete. Returns it, its body framing
    /// and how much of `buf` it used.
    async fn read_head(
        &mut self,
        buf: &mut Buffer,
        head: bool,
        arch_header: &HeaderName,
        sent: Instant,
    ) -> Result<(Response, Framing, usize), Error> {
        let mut answered = false;
        let mut ttfb = None;
        loop {
            if !buf.0.is_empty() {
                answered = true;
                match parse_head(&buf.0, head, arch_header)? {
                    Parsed::Partial => {}
                    Parsed::Interim(len) => {
                        buf.0.drain(..len);
                        continue;
                    }
                    Parsed::Final {
                        mut response,
                        framing,
                        len,
                    } => {
                        response.ttfb = ttfb.unwrap_or_default();
                        return Ok((response, framing, len));
                    }
                }
            }
            if buf.0.len() >= MAX_HEAD {
                return Err(Error::Protocol(format!(
                    "response head larger than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
            if buf.0.len() == buf.0.capacity() {
                let more = buf.0.capacity().min(MAX_HEAD - buf.0.len());
                buf.0.reserve_exact(more);
            }
            let n = self
                .stream
                .read_buf(&mut buf.0)
                .await
                .map_err(|source| Error::Io { source, answered })?;
            if n == 0 {
                return Err(Error::Closed { answered });
            }
            ttfb.get_or_insert_with(|| sent.elapsed());
        }
    }

    /// Reads and drops the body. `buf[used..]` already holds its first bytes. Returns whether
    /// the body ended exactly where the bytes received so far end.
    async fn read_body(
        &mut self,
        buf: &mut Buffer,
        used: usize,
        framing: Framing,
    ) -> Result<bool, Error> {
        let eof = |answered| Error::Closed { answered };
        let io = |source| Error::Io {
            source,
            answered: true,
        };
        match framing {
            Framing::Empty => Ok(buf.0.len() == used),
            Framing::Length(mut left) => {
                let mut have = (buf.0.len() - used) as u64;
                loop {
                    if have >= left {
                        return Ok(have == left);
                    }
                    left -= have;
                    buf.0.clear();
                    have = self.stream.read_buf(&mut buf.0).await.map_err(io)? as u64;
                    if have == 0 {
                        return Err(eof(true));
                    }
                }
            }
            Framing::Chunked => {
                let mut chunks = Chunked::default();
                let mut from = used;
                loop {
                    if let Some(end) = chunks.feed(&buf.0[from..])? {
                        return Ok(from + end == buf.0.len());
                    }
                    buf.0.clear();
                    from = 0;
                    if self.stream.read_buf(&mut buf.0).await.map_err(io)? == 0 {
                        return Err(eof(true));
                    }
                }
            }
            Framing::UntilClose => loop {
                buf.0.clear();
                if self.stream.read_buf(&mut buf.0).await.map_err(io)? == 0 {
                    return Ok(true);
                }
            },
        }
    }
}

/// How a response's body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

enum Parsed {
    Partial,
    /// A 1xx response of this length, to skip.
    Interim(usize),
    Final {
        response: Response,
        framing: Framing,
        len: usize,
    },
}

/// Parses a response head at the start of `bytes`.
fn parse_head(bytes: &[u8], head: bool, arch_header: &HeaderName) -> Result<Parsed, Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(Error::Protocol(e.to_string())),
    };
    let status = parsed.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
        return Ok(Parsed::Interim(len));
    }
    let mut response = Response {
        status,
        arch: None,
        location: None,
        // HTTP/1.0 closes unless asked not to; HTTP/1.1 keeps alive unless asked not to.
        reusable: parsed.version == Some(1),
        ttfb: Duration::ZERO,
    };
    let mut length: Option<u64> = None;
    let mut transfer: Option<bool> = None;
    for field in parsed.headers.iter() {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str().as_bytes()) {
            let n = parse_length(field.value)?;
            if length.is_some_and(|m| m != n) {
                return Err(Error::Protocol("conflicting Content-Length values".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str().as_bytes()) {
            // Chunked must be the last coding for the length to be known.
            let last = field.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            transfer = Some(trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(CONNECTION.as_str().as_bytes()) {
            for token in field.value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    response.reusable = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && parsed.version == Some(0) {
                    response.reusable = true;
                }
            }
        } else if name.eq_ignore_ascii_case(arch_header.as_str().as_bytes()) {
            response.arch = Some(Value::new(field.value));
        } else if (300..400).contains(&status) && name.eq_ignore_ascii_case(b"location") {
            response.location = Some(field.value.into());
        }
    }
    let framing = if head || status == 101 || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (transfer, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    if status == 101 {
        response.reusable = false;
    }
    Ok(Parsed::Final {
        response,
        framing,
        len,
    })
}

fn parse_length(value: &[u8]) -> Result<u64, Error> {
    let value = trim(value);
    let bad = || {
        Error::Protocol(format!(
            "bad Content-Length {:?}",
            String::from_utf8_lossy(value)
        ))
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

/// A chunked body's decoder, fed whatever bytes arrive; it keeps no data, only its place.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
}

#[derive(Debug)]
enum ChunkState {
    /// Reading a chunk-size line: the size so far, its digit count, whether in an extension.
    Size {
        size: u64,
        digits: u8,
        extension: bool,
    },
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// In the trailer section; `blank` while the current line has had no content.
    Trailer {
        blank: bool,
    },
}

impl Default for ChunkState {
    fn default() -> Self {
        ChunkState::Size {
            size: 0,
            digits: 0,
            extension: false,
        }
    }
}

impl Chunked {
    /// Consumes `bytes`; `Some(n)` when the body ended after `n` of them.
    fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Error> {
        let bad = |why: &str| Error::Protocol(format!("bad chunked body: {why}"));
        let mut i = 0;
        while i < bytes.len() {
            match &mut self.state {
                ChunkState::Data(left) => {
                    let take = (*left).min((bytes.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                    continue;
                }
                ChunkState::Size {
                    size,
                    digits,
                    extension,
                } => match bytes[i] {
                    b'\n' if *digits == 0 => return Err(bad("chunk size missing")),
                    b'\n' if *size == 0 => self.state = ChunkState::Trailer { blank: true },
                    b'\n' => self.state = ChunkState::Data(*size),
                    b'\r' => {}
                    _ if *extension => {}
                    b';' | b' ' | b'\t' => *extension = true,
                    b => {
                        let digit = (b as char)
                            .to_digit(16)
                            .ok_or_else(|| bad("chunk size is not hex"))?;
                        if *digits >= 16 {
                            return Err(bad("chunk size too large"));
                        }
                        *size = *size * 16 + u64::from(digit);
                        *digits += 1;
                    }
                },
                ChunkState::DataEnd => match bytes[i] {
                    b'\r' => {}
                    b'\n' => self.state = ChunkState::default(),
                    _ => return Err(bad("chunk data longer than its size")),
                },
                ChunkState::Trailer { blank } => match bytes[i] {
                    b'\r' => {}
                    b'\n' if *blank => return Ok(Some(i + 1)),
                    b'\n' => *blank = true,
                    _ => *blank = false,
                },
            }
            i += 1;
        }
        Ok(None)
    }
}

/// The wire form of a request: request line, `Host`, the scenario's headers (without the
/// framing headers this client sets itself), `Content-Length` and the body.
pub(crate) fn render(
    method: &Method,
    path_and_query: &str,
    host: Option<&[u8]>,
    headers: &HeaderMap,
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + path_and_query.len() + body.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    if let Some(host) = host {
        line(b"host", host);
    }
    for (name, value) in headers {
        let framing = name == CONTENT_LENGTH || name == TRANSFER_ENCODING;
        if framing || (host.is_some() && name == HOST) {
            continue;
        }
        line(name.as_str().as_bytes(), value.as_bytes());
    }
    if close {
        line(b"connection", b"close");
    }
    let expects_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !body.is_empty() || expects_body {
        line(b"content-length", body.len().to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Whether a request may be sent again when a kept-alive connection died under it unanswered
/// (RFC 9110 §9.2.2).
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer lent by the thread's free list for one exchange, and given back on drop.
struct Buffer(Vec<u8>);

impl Buffer {
    fn take() -> Self {
        let reused = FREE.with(|free| free.borrow_mut().pop());
        Buffer(reused.unwrap_or_else(|| Vec::with_capacity(BUFFER)))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        // A buffer grown for a large head goes back to the allocator, not the free list.
        if buf.capacity() > BUFFER {
            return;
        }
        buf.clear();
        // `try_with`: during thread teardown the free list may already be gone.
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            if free.len() < FREE_BUFFERS {
                free.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch() -> HeaderName {
        HeaderName::from_static("x-arch")
    }

    fn head(bytes: &[u8]) -> (Response, Framing, usize) {
        match parse_head(bytes, false, &arch()).unwrap() {
            Parsed::Final {
                response,
                framing,
                len,
            } => (response, framing, len),
            Parsed::Partial => panic!("partial"),
            Parsed::Interim(_) => panic!("interim"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (r, f, len) =
            head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Arch: arm64\r\n\r\nhello");
        assert_eq!((r.status, f, len), (200, Framing::Length(5), 53));
        assert!(r.reusable);
        assert_eq!(r.arch.unwrap().as_bytes(), b"arm64");
        let (_, f, _) = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(f, Framing::Chunked);
        // Transfer-Encoding overrides Content-Length.
        let (_, f, _) =
            head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(f, Framing::Chunked);
        let (_, f, _) = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(f, Framing::UntilClose);
        let (r, f, _) = head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n");
        assert_eq!((r.status, f), (204, Framing::Empty));
        let (_, f, _) = head(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(f, Framing::Empty);
        let (_, f, _) = head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(f, Framing::UntilClose);
        match parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            true,
            &arch(),
        ) {
            Ok(Parsed::Final { framing, .. }) => assert_eq!(framing, Framing::Empty),
            _ => panic!("HEAD"),
        }
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let (r, ..) = head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.reusable);
        let (r, ..) = head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.reusable);
        let (r, ..) =
            head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert!(r.reusable);
        let (r, ..) =
            head(b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.reusable);
    }

    #[test]
    fn interim_and_partial_heads() {
        assert!(matches!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", false, &arch()),
            Ok(Parsed::Interim(25))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, &arch()),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn bad_heads_are_protocol_errors() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/9.9 200 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bytes, false, &arch()), Err(Error::Protocol(_))),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // The same length twice is allowed.
        head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    }

    #[test]
    fn location_only_on_redirects() {
        let (r, ..) = head(b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.location.as_deref(), Some(&b"/b"[..]));
        let (r, ..) = head(b"HTTP/1.1 201 Created\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        assert!(r.location.is_none());
    }

    #[test]
    fn chunked_bodies_in_any_split() {
        let body = b"5;name=x\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\nNEXT";
        let end = body.len() - 4;
        // Every way of cutting the body in two reaches the same end.
        for cut in 0..=body.len() {
            let mut c = Chunked::default();
            let first = c.feed(&body[..cut]).unwrap();
            let at = match first {
                Some(n) => n,
                None => cut + c.feed(&body[cut..]).unwrap().expect("ends"),
            };
            assert_eq!(at, end, "cut at {cut}");
        }
        // Byte by byte.
        let mut c = Chunked::default();
        let mut done = None;
        for (i, b) in body.iter().enumerate() {
            if let Some(n) = c.feed(std::slice::from_ref(b)).unwrap() {
                done = Some(i + n);
                break;
            }
        }
        assert_eq!(done, Some(end));
    }

    #[test]
    fn bad_chunks_are_errors() {
        for body in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"3\r\nabcdef\r\n",
            b"11111111111111111\r\n",
        ] {
            assert!(
                matches!(Chunked::default().feed(body), Err(Error::Protocol(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn requests_render_with_framing_set_here() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "1".parse().unwrap());
        headers.insert(CONTENT_LENGTH, "99".parse().unwrap());
        headers.insert(HOST, "scenario.test".parse().unwrap());
        let wire = render(&Method::POST, "/p?q=1", None, &headers, b"{}", true);
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("POST /p?q=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("host: scenario.test\r\n"), "{text}");
        assert!(text.contains("x-a: 1\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
        assert!(!text.contains("99"));
        // A Host given to render replaces the scenario's.
        let wire = render(&Method::GET, "/", Some(b"b.test:81"), &headers, b"", false);
        let text = String::from_utf8(wire).unwrap();
        assert!(text.contains("host: b.test:81\r\n") && !text.contains("scenario.test"));
        assert!(!text.contains("content-length"), "{text}");
        let wire = render(&Method::PUT, "/", Some(b"h"), &HeaderMap::new(), b"", false);
        assert!(
            String::from_utf8(wire)
                .unwrap()
                .contains("content-length: 0\r\n")
        );
    }

    #[test]
    fn short_values_stay_inline() {
        assert!(matches!(Value::new(b"arm64"), Value::Inline { .. }));
        let long = vec![b'a'; 40];
        let v = Value::new(&long);
        assert!(matches!(v, Value::Heap(_)));
        assert_eq!(v.as_bytes(), &long[..]);
    }
}
