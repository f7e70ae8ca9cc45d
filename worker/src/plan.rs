//! The run configuration compiled once per run into what users need on the hot path: parsed
//! destinations, ready-made URIs and header maps, per-target request choices, the wait strategy.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ::http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use ::http::uri::{Authority, Scheme};
use ::http::{Method, Uri};
use bytes::Bytes;
use stampede_proto::{ConnectionMode, HttpVersion, LoadModel, RunConfig};

use crate::EngineError;
use crate::choice::Choice;
use crate::dest::Dest;
use crate::dial::{Dialer, Pinned};
use crate::h1;
use crate::tls::{Alpn, TargetTlsConfig};
use crate::wait::Wait;

/// Used when a request has no timeout: every request must end some time so it is counted.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared-pool connections per target and worker when the run configuration leaves it at 0.
pub(crate) const DEFAULT_POOL_SIZE: usize = 64;

/// The scenario's default arch header, used when the run configuration leaves it empty.
const DEFAULT_ARCH_HEADER: &str = "x-arch";

/// HTTP/2 streams per connection when the target leaves it at 0.
pub(crate) const DEFAULT_STREAMS_PER_CONNECTION: usize = 100;

/// How long a resolved host name is reused when the target does not say.
const DEFAULT_DNS_TTL: Duration = Duration::from_secs(60);

/// Which HTTP a target's own endpoint is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpMode {
    H1,
    /// h2c with prior knowledge over `http://`, ALPN `h2` over `https://`.
    H2,
    /// Over `https://`, what ALPN picks; over `http://`, HTTP/1.1.
    Auto,
}

#[derive(Debug)]
pub(crate) struct TargetPlan {
    pub name: String,
    pub dest: Dest,
    /// Declared arch, used when a response carries no arch header.
    pub arch: Arc<str>,
    /// The requests this target may receive.
    pub choice: Choice,
    /// How its connections are opened (addresses, TLS).
    pub dialer: Dialer,
    pub http: HttpMode,
    /// HTTP/2: most concurrent streams per connection (the server's SETTINGS may lower it).
    pub streams_per_connection: usize,
    /// HTTP/2: connections per worker; `None`: one per engine thread.
    pub connections: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct RequestPlan {
    pub method: Method,
    /// Origin-form URI (base path + request path + query), one per target.
    pub uris: Vec<Uri>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The request as sent to each target's own endpoint, rendered once per run.
    pub wire: Vec<Box<[u8]>>,
    /// HTTP/2: the absolute URI (scheme, authority, path) for each target's own endpoint.
    pub h2_uris: Vec<Uri>,
    /// HTTP/2: the scenario's headers less those HTTP/2 forbids or carries otherwise (`Host`
    /// becomes `:authority`; connection-specific ones do not exist there).
    pub h2_headers: HeaderMap,
    pub timeout: Duration,
    pub expect: Vec<u16>,
    /// Redirects followed before a 3xx counts as the answer.
    pub max_redirects: u32,
}

/// Everything users share, read-only, for one run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub targets: Vec<TargetPlan>,
    pub requests: Vec<RequestPlan>,
    pub wait: Wait,
    pub arch_header: HeaderName,
    /// `CONNECTION_MODE_CLOSE`: a new connection for every request.
    pub close_each: bool,
    /// `CONNECTION_MODE_SHARED`: connections per target and worker that users borrow.
    pub shared_pool: Option<usize>,
    /// Whether the first transport error of each kind was logged (connect, reset, timeout,
    /// other): one line per kind and run says what is going on without flooding the log.
    pub error_logged: [AtomicBool; 5],
    /// An empty body, for hops that drop the request's (a 303's GET).
    pub no_body: Bytes,
}

impl Plan {
    pub(crate) fn compile(cfg: &RunConfig) -> Result<Self, EngineError> {
        check_supported(cfg)?;
        if cfg.targets.is_empty() {
            return Err(EngineError::NoTargets);
        }
        let bases = cfg
            .targets
            .iter()
            .map(|t| parse_base(&t.name, &t.url))
            .collect::<Result<Vec<_>, _>>()?;
        let requests = cfg
            .requests
            .iter()
            .map(|r| compile_request(r, &bases, cfg))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = cfg
            .targets
            .iter()
            .zip(bases)
            .enumerate()
            .map(|(index, (t, (dest, _)))| {
                let (dialer, http) = target_connection(t, &dest, cfg)?;
                let candidates = cfg.requests.iter().enumerate().filter_map(|(i, r)| {
                    let allowed = r.targets.is_empty() || r.targets.contains(&(index as u32));
                    allowed.then_some((i as u32, r.weight))
                });
                let choice = Choice::new(candidates).ok_or_else(|| EngineError::NoRequests {
                    target: t.name.clone(),
                })?;
                Ok(TargetPlan {
                    name: t.name.clone(),
                    dest,
                    arch: Arc::from(t.arch.as_str()),
                    choice,
                    dialer,
                    http,
                    streams_per_connection: match t.streams_per_connection {
                        0 => DEFAULT_STREAMS_PER_CONNECTION,
                        n => n as usize,
                    },
                    connections: (t.connections > 0).then_some(t.connections as usize),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let header = if cfg.arch_header.is_empty() {
            DEFAULT_ARCH_HEADER
        } else {
            cfg.arch_header.as_str()
        };
        let arch_header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| EngineError::BadArchHeader(cfg.arch_header.clone()))?;
        Ok(Self {
            targets,
            requests,
            wait: Wait::from_proto(&cfg.wait.unwrap_or_default())?,
            arch_header,
            close_each: cfg.connection() == ConnectionMode::Close,
            shared_pool: (cfg.connection() == ConnectionMode::Shared).then_some(
                match cfg.pool_size {
                    0 => DEFAULT_POOL_SIZE,
                    n => n as usize,
                },
            ),
            error_logged: Default::default(),
            no_body: Bytes::new(),
        })
    }
}

/// A target's dialer (pinned addresses, DNS cache, TLS configs) and HTTP mode.
fn target_connection(
    t: &stampede_proto::Target,
    dest: &Dest,
    cfg: &RunConfig,
) -> Result<(Dialer, HttpMode), EngineError> {
    let http = match HttpVersion::try_from(t.http) {
        Ok(HttpVersion::Http11) => HttpMode::H1,
        Ok(HttpVersion::Http2) => HttpMode::H2,
        Ok(HttpVersion::Auto) => HttpMode::Auto,
        Err(_) => return Err(EngineError::Unsupported("an unknown HTTP version")),
    };
    let pinned = t
        .connect_to
        .iter()
        .map(|a| Pinned::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| EngineError::BadConnectTo {
            target: t.name.clone(),
            reason,
        })?;
    let tls = if dest.tls {
        let alpn = match http {
            HttpMode::H1 => Alpn::H1,
            HttpMode::H2 => Alpn::H2,
            HttpMode::Auto => Alpn::Both,
        };
        let settings = t.tls.clone().unwrap_or_default();
        let config = TargetTlsConfig::build(&settings, alpn).map_err(|e| EngineError::BadTls {
            target: t.name.clone(),
            reason: e.to_string(),
        })?;
        Some(config)
    } else {
        None
    };
    let dns_ttl = t.dns_ttl_ms.map_or(DEFAULT_DNS_TTL, Duration::from_millis);
    let connect_timeout =
        (cfg.connect_timeout_ms > 0).then(|| Duration::from_millis(cfg.connect_timeout_ms));
    Ok((Dialer::new(pinned, dns_ttl, tls, connect_timeout), http))
}

/// Refuses what this worker cannot run yet, rather than running something else.
fn check_supported(cfg: &RunConfig) -> Result<(), EngineError> {
    if LoadModel::try_from(cfg.model).is_err() {
        return Err(EngineError::Unsupported("an unknown load model"));
    }
    match ConnectionMode::try_from(cfg.connection) {
        Ok(ConnectionMode::PerUser | ConnectionMode::Close | ConnectionMode::Shared) => {}
        Err(_) => return Err(EngineError::Unsupported("an unknown connection mode")),
    }
    Ok(())
}

/// A target's destination and base path (without a trailing slash).
fn parse_base(name: &str, url: &str) -> Result<(Dest, String), EngineError> {
    let bad = |reason: String| EngineError::BadTargetUrl {
        target: name.to_string(),
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: ::http::uri::InvalidUri| bad(e.to_string()))?;
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(_) => {
            return Err(EngineError::UnsupportedScheme {
                target: name.to_string(),
                url: url.to_string(),
            });
        }
        None => return Err(bad("it must start with http:// or https://".into())),
    };
    let authority = uri.authority().ok_or_else(|| bad("no host".into()))?;
    let dest = Dest::from_authority(authority, tls).map_err(bad)?;
    if uri.query().is_some() {
        return Err(bad(
            "a base URL cannot carry a query; put it in the request path".into(),
        ));
    }
    Ok((dest, uri.path().trim_end_matches('/').to_string()))
}

fn compile_request(
    r: &stampede_proto::Request,
    bases: &[(Dest, String)],
    cfg: &RunConfig,
) -> Result<RequestPlan, EngineError> {
    let targets = &cfg.targets;
    let method = if r.method.is_empty() {
        Method::GET
    } else {
        Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            EngineError::BadMethod {
                request: r.name.clone(),
                method: r.method.clone(),
            }
        })?
    };
    if let Some(&index) = r.targets.iter().find(|&&i| i as usize >= targets.len()) {
        return Err(EngineError::BadRequestTarget {
            request: r.name.clone(),
            index,
            count: targets.len(),
        });
    }
    let uris = bases
        .iter()
        .zip(targets)
        .map(|((_, base), t)| {
            join_path(base, &r.path).map_err(|reason| EngineError::BadPath {
                request: r.name.clone(),
                path: r.path.clone(),
                target: t.name.clone(),
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut headers = HeaderMap::with_capacity(r.headers.len());
    for h in &r.headers {
        let bad = |reason: String| EngineError::BadHeader {
            request: r.name.clone(),
            header: h.name.clone(),
            reason,
        };
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_str(&h.value).map_err(|e| bad(e.to_string()))?;
        headers.append(name, value);
    }
    let expect = r
        .expect
        .iter()
        .map(|&s| {
            u16::try_from(s)
                .ok()
                .filter(|s| (100..=999).contains(s))
                .ok_or(EngineError::BadExpect {
                    request: r.name.clone(),
                    status: s,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let h2_uris = bases
        .iter()
        .zip(&uris)
        .map(|((dest, _), uri)| {
            // HTTP/2 carries Host as :authority; a Host header from the scenario names it.
            let authority = headers.get(HOST).unwrap_or(&dest.host_header);
            absolute_uri(dest.scheme(), authority, uri)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| EngineError::BadHeader {
            request: r.name.clone(),
            header: HOST.to_string(),
            reason,
        })?;
    let h2_headers = h2_headers(&headers);
    let close = cfg.connection() == ConnectionMode::Close;
    let wire = bases
        .iter()
        .zip(&uris)
        .map(|((dest, _), uri)| {
            // A Host header from the scenario names the target; otherwise the URL's authority.
            let host = (!headers.contains_key(HOST)).then(|| dest.host_header.as_bytes());
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            h1::render(&method, path, host, &headers, &r.body, close).into_boxed_slice()
        })
        .collect();
    Ok(RequestPlan {
        method,
        uris,
        headers,
        wire,
        h2_uris,
        h2_headers,
        body: Bytes::copy_from_slice(&r.body),
        timeout: if r.timeout_ms == 0 {
            DEFAULT_TIMEOUT
        } else {
            Duration::from_millis(r.timeout_ms)
        },
        expect,
        max_redirects: r.max_redirects.unwrap_or(cfg.max_redirects),
    })
}

/// The headers of a request as HTTP/2 may carry them (RFC 9113 §8.2.2).
fn h2_headers(headers: &HeaderMap) -> HeaderMap {
    use ::http::header::{CONNECTION, CONTENT_LENGTH, TE, TRANSFER_ENCODING, UPGRADE};
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let connection_specific = [HOST, CONNECTION, TRANSFER_ENCODING, UPGRADE, CONTENT_LENGTH]
            .contains(name)
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
            || (name == TE && value != "trailers");
        if !connection_specific {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The absolute form of an origin-form `uri` at `authority`, as HTTP/2 sends it.
pub(crate) fn absolute_uri(
    scheme: Scheme,
    authority: &HeaderValue,
    uri: &Uri,
) -> Result<Uri, String> {
    let authority = Authority::try_from(authority.as_bytes()).map_err(|e| e.to_string())?;
    let mut parts = ::http::uri::Parts::default();
    parts.scheme = Some(scheme);
    parts.authority = Some(authority);
    parts.path_and_query = uri.path_and_query().cloned();
    Uri::from_parts(parts).map_err(|e| e.to_string())
}

/// Origin-form URI of `base` + `path` (which may carry a query).
fn join_path(base: &str, path: &str) -> Result<Uri, String> {
    let joined = match (
        path.is_empty(),
        path.starts_with('/') || path.starts_with('?'),
    ) {
        (true, _) if base.is_empty() => "/".to_string(),
        (true, _) => base.to_string(),
        (false, true) => format!("{base}{path}"),
        (false, false) => format!("{base}/{path}"),
    };
    let joined = if joined.starts_with('?') {
        format!("/{joined}")
    } else {
        joined
    };
    let uri: Uri = joined
        .parse()
        .map_err(|e: ::http::uri::InvalidUri| e.to_string())?;
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err("the path must not name a scheme or host".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_proto::{Request, Target};

    fn target(url: &str) -> Target {
        Target {
            name: "t".into(),
            url: url.into(),
            arch: "arm64".into(),
            weight: 1,
            ..Default::default()
        }
    }

    fn config(url: &str) -> RunConfig {
        RunConfig {
            run_id: "r".into(),
            targets: vec![target(url)],
            requests: vec![Request {
                name: "get".into(),
                path: "/runtime?dim=10".into(),
                weight: 1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn joins_base_path_and_request_path() {
        let plan = Plan::compile(&config("http://127.0.0.1:8081/arm/")).unwrap();
        assert_eq!(plan.requests[0].uris[0], "/arm/runtime?dim=10");
        let dest = &plan.targets[0].dest;
        assert_eq!((dest.host.as_str(), dest.port), ("127.0.0.1", 8081));
        assert_eq!(dest.host_header, "127.0.0.1:8081");
        assert_eq!(plan.arch_header, "x-arch");
        assert_eq!(plan.requests[0].method, Method::GET);
    }

    #[test]
    fn join_edge_cases() {
        assert_eq!(join_path("", "").unwrap(), "/");
        assert_eq!(join_path("/a", "").unwrap(), "/a");
        assert_eq!(join_path("/a", "b").unwrap(), "/a/b");
        assert_eq!(join_path("", "?q=1").unwrap(), "/?q=1");
        // A request path is always a path on the target, never another host.
        assert_eq!(join_path("", "http://evil/x").unwrap(), "/http://evil/x");
        assert!(join_path("/a", "b c").is_err());
    }

    #[test]
    fn https_targets_default_to_port_443_and_tls() {
        let plan = Plan::compile(&config("https://example.invalid/a")).unwrap();
        let dest = &plan.targets[0].dest;
        assert_eq!((dest.port, dest.tls), (443, true));
        assert_eq!(
            plan.requests[0].h2_uris[0],
            "https://example.invalid/a/runtime?dim=10"
        );
        let mut cfg = config("https://example.invalid/");
        cfg.targets[0].tls = Some(stampede_proto::TargetTls {
            ca_pem: b"not pem".to_vec(),
            ..Default::default()
        });
        let err = Plan::compile(&cfg).unwrap_err();
        assert!(matches!(err, EngineError::BadTls { .. }), "{err}");
        let mut cfg = config("http://h:1/");
        cfg.targets[0].connect_to = vec!["nope".into()];
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::BadConnectTo { .. })
        ));
    }

    #[test]
    fn ipv6_literal_host() {
        let plan = Plan::compile(&config("http://[::1]:9000")).unwrap();
        assert_eq!(plan.targets[0].dest.host, "::1");
        assert_eq!(plan.targets[0].dest.host_header, "[::1]:9000");
        assert_eq!(plan.requests[0].uris[0], "/runtime?dim=10");
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut cfg = config("http://127.0.0.1:1");
        cfg.requests[0].method = "G ET".into();
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::BadMethod { .. })
        ));

        let mut cfg = config("http://127.0.0.1:1");
        cfg.requests[0].weight = 0;
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::NoRequests { .. })
        ));

        let mut cfg = config("http://127.0.0.1:1");
        cfg.requests[0].targets = vec![3];
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::BadRequestTarget { .. })
        ));

        let mut cfg = config("http://127.0.0.1:1");
        cfg.model = 7;
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::Unsupported(_))
        ));

        assert!(matches!(
            Plan::compile(&config("ftp://h/")),
            Err(EngineError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Plan::compile(&config("127.0.0.1:80")),
            Err(EngineError::BadTargetUrl { .. })
        ));
    }

    #[test]
    fn request_restricted_to_targets() {
        let mut cfg = config("http://127.0.0.1:1/a");
        cfg.targets.push(target("http://127.0.0.1:2/b"));
        cfg.requests[0].targets = vec![1];
        // Target 0 has no request left.
        assert!(matches!(
            Plan::compile(&cfg),
            Err(EngineError::NoRequests { .. })
        ));
        cfg.requests.push(Request {
            name: "only-a".into(),
            path: "/x".into(),
            weight: 1,
            targets: vec![0],
            ..Default::default()
        });
        let plan = Plan::compile(&cfg).unwrap();
        let mut rng = rand::rng();
        assert!((0..100).all(|_| plan.targets[0].choice.pick(&mut rng) == 1));
        assert!((0..100).all(|_| plan.targets[1].choice.pick(&mut rng) == 0));
    }
}
