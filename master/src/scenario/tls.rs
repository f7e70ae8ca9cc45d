//! The keys of how a target is reached, as written: `[target.tls]` (with its PEM files, read
//! at load) and `http`. Their checks, the files' reading and compiling are `target.rs`'s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[target.tls]`. File paths are relative to the scenario file's folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetTls {
    /// A PEM file of CA certificates trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Accept any certificate (the handshake's signatures are still checked).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Client certificate chain and its key (PEM files), for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// SNI and the name the certificate is checked against (default: the URL's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Allowed versions, from "1.2" and "1.3" (default both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Session resumption; false makes every new connection a full handshake.
    #[serde(default = "yes")]
    pub resumption: bool,
    /// The files' contents, read at load (never written to a summary).
    #[serde(skip)]
    pub pem: Pem,
}

fn yes() -> bool {
    true
}

/// PEM bytes read from `ca`, `cert` and `key`.
#[derive(Clone, Default, PartialEq)]
pub struct Pem {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Pem {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("ca_bytes", &self.ca.len())
            .field("cert_bytes", &self.cert.len())
            .field("key", &(!self.key.is_empty()).then_some("<redacted>"))
            .finish()
    }
}

/// `http = "1.1" | "2" | "auto"`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(try_from = "String", into = "String")]
pub enum HttpVersion {
    #[default]
    Http11,
    Http2,
    Auto,
}

impl TryFrom<String> for HttpVersion {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        match v.trim() {
            "1.1" => Ok(HttpVersion::Http11),
            "2" | "2.0" => Ok(HttpVersion::Http2),
            "auto" => Ok(HttpVersion::Auto),
            other => Err(format!(
                "\"{other}\": expected one of \"1.1\", \"2\", \"auto\""
            )),
        }
    }
}

impl From<HttpVersion> for String {
    fn from(v: HttpVersion) -> String {
        match v {
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Auto => "auto",
        }
        .to_owned()
    }
}
