//! A connection's destination: the host and port to connect to, whether it speaks TLS, and
//! the `Host` header its requests carry.

use ::http::HeaderValue;
use ::http::uri::Scheme;

/// Where to open a connection, whether it speaks TLS, and what to put in `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dest {
    /// Host to connect to (IPv6 literals without brackets); also the TLS server name.
    pub host: String,
    pub port: u16,
    /// `https`: TLS over the TCP connection.
    pub tls: bool,
    /// `Host` header value: the authority as written.
    pub host_header: HeaderValue,
}

impl Dest {
    /// The destination of a URI's authority; `tls` for `https://`.
    pub(crate) fn from_authority(
        authority: &::http::uri::Authority,
        tls: bool,
    ) -> Result<Self, String> {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err("no host".into());
        }
        let host_header = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        Ok(Self {
            host,
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            tls,
            host_header,
        })
    }

    pub(crate) fn same_endpoint(&self, other: &Dest) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && self.tls == other.tls
    }

    pub(crate) fn scheme(&self) -> Scheme {
        if self.tls {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }
}
