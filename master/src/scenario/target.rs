//! How a target is reached: the checks of `[target.tls]`, `http`, HTTP/2 streams and
//! connections, `connect_to` and `dns_ttl` (each error names its key), the PEM files read at
//! load, the warnings a run must be loud about, and what the workers receive.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use stampede_proto as pb;

use super::invalid::Invalid;
use super::model::{ScenarioFile, Target};
use super::tls::HttpVersion;

/// More streams than this on one connection is a typo, not a setting.
const MAX_STREAMS_PER_CONNECTION: u32 = 10_000;
/// More HTTP/2 connections per worker and target than this is a typo too.
const MAX_CONNECTIONS: u32 = 10_000;

/// Checks one target's connection keys; `https` says whether its URL is https://.
pub fn validate_target(i: usize, t: &Target, https: bool) -> Result<(), Invalid> {
    let key = |field: &str| format!("target[{i}].{field}");
    if t.streams_per_connection == Some(0)
        || t.streams_per_connection
            .is_some_and(|n| n > MAX_STREAMS_PER_CONNECTION)
    {
        return bad(
            key("streams_per_connection"),
            format!("must be between 1 and {MAX_STREAMS_PER_CONNECTION}"),
        );
    }
    if t.connections == Some(0) || t.connections.is_some_and(|n| n > MAX_CONNECTIONS) {
        return bad(
            key("connections"),
            format!("must be between 1 and {MAX_CONNECTIONS}"),
        );
    }
    let h2 = match t.http.unwrap_or_default() {
        HttpVersion::Http11 => false,
        HttpVersion::Http2 => true,
        HttpVersion::Auto => https,
    };
    if !h2 && (t.streams_per_connection.is_some() || t.connections.is_some()) {
        let which = if t.streams_per_connection.is_some() {
            "streams_per_connection"
        } else {
            "connections"
        };
        return bad(
            key(which),
            "only applies to HTTP/2 (set http = \"2\", or \"auto\" with an https:// url)",
        );
    }
    for (j, addr) in t.connect_to.iter().enumerate() {
        if let Err(e) = parse_addr(addr) {
            return bad(format!("target[{i}].connect_to[{j}]"), e);
        }
    }
    let Some(tls) = &t.tls else {
        return Ok(());
    };
    if !https {
        return bad(key("tls"), "only applies to an https:// url");
    }
    let mut seen = Vec::new();
    for v in &tls.versions {
        if v != "1.2" && v != "1.3" {
            return bad(
                key("tls.versions"),
                format!("\"{v}\": expected \"1.2\" and/or \"1.3\""),
            );
        }
        if seen.contains(&v) {
            return bad(key("tls.versions"), format!("\"{v}\" is listed twice"));
        }
        seen.push(v);
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => return bad(key("tls.key"), "a client `cert` needs its `key`"),
        (None, Some(_)) => return bad(key("tls.cert"), "a client `key` needs its `cert`"),
        _ => {}
    }
    if let Some(name) = &tls.server_name
        && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        return bad(
            key("tls.server_name"),
            format!("`{name}` is not a DNS name or IP address"),
        );
    }
    if tls.insecure_skip_verify && tls.ca.is_some() {
        return bad(
            key("tls.ca"),
            "has no effect with insecure_skip_verify = true (nothing is verified)",
        );
    }
    Ok(())
}

/// `ADDR:PORT`: an IP address (IPv6 in brackets) or a host name, and a port.
fn parse_addr(text: &str) -> Result<(), String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let expected = || format!("`{text}`: expected ADDR:PORT, e.g. \"10.0.0.10:443\"");
    let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
    port.parse::<u16>().map_err(|_| expected())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(expected());
    }
    Ok(())
}

fn is_host_name(host: &str) -> bool {
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Reads every target's PEM files (relative to `base`, the scenario's folder), checking that
/// each holds what it should.
pub fn read_files(s: &mut ScenarioFile, base: &Path) -> Result<(), Invalid> {
    for (i, t) in s.targets.iter_mut().enumerate() {
        let Some(tls) = t.tls.as_mut() else {
            continue;
        };
        let key = |field: &str| format!("target[{i}].tls.{field}");
        if let Some(path) = &tls.ca {
            let bytes = read(base, path).map_err(|e| (key("ca"), e))?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    (
                        key("ca"),
                        format!("{}: not PEM certificates: {e}", path.display()),
                    )
                })?;
            if certs.is_empty() {
                return bad(
                    key("ca"),
                    format!("{}: no PEM certificate in it", path.display()),
                );
            }
            tls.pem.ca = bytes;
        }
        if let Some(path) = &tls.cert {
            let bytes = read(base, path).map_err(|e| (key("cert"), e))?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    (
                        key("cert"),
                        format!("{}: not PEM certificates: {e}", path.display()),
                    )
                })?;
            if certs.is_empty() {
                return bad(
                    key("cert"),
                    format!("{}: no PEM certificate in it", path.display()),
                );
            }
            tls.pem.cert = bytes;
        }
        if let Some(path) = &tls.key {
            let bytes = read(base, path).map_err(|e| (key("key"), e))?;
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                (
                    key("key"),
                    format!("{}: not a PEM private key: {e}", path.display()),
                )
            })?;
            tls.pem.key = bytes;
        }
    }
    Ok(())
}

fn read(base: &Path, path: &Path) -> Result<Vec<u8>, String> {
    let full = if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    };
    std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
}

/// Settings a run should be loud about.
pub fn warnings(s: &ScenarioFile) -> Vec<String> {
    s.targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.tls.as_ref().is_some_and(|tls| tls.insecure_skip_verify))
        .map(|(i, t)| {
            format!(
                "target[{i}] `{}`: tls.insecure_skip_verify = true: its certificate is NOT verified; anyone on the path can pose as {}",
                t.name, t.url
            )
        })
        .collect()
}

/// The target's connection settings as workers receive them.
pub fn compile_target(t: &Target) -> pb::Target {
    pb::Target {
        name: t.name.clone(),
        url: t.url.clone(),
        arch: t.arch.clone(),
        weight: t.weight,
        tls: t.tls.as_ref().map(|tls| pb::TargetTls {
            ca_pem: tls.pem.ca.clone(),
            insecure_skip_verify: tls.insecure_skip_verify,
            cert_pem: tls.pem.cert.clone(),
            key_pem: tls.pem.key.clone(),
            server_name: tls.server_name.clone().unwrap_or_default(),
            versions: tls
                .versions
                .iter()
                .map(|v| match v.as_str() {
                    "1.2" => pb::TlsVersion::Tls12 as i32,
                    _ => pb::TlsVersion::Tls13 as i32,
                })
                .collect(),
            no_resumption: !tls.resumption,
        }),
        http: match t.http.unwrap_or_default() {
            HttpVersion::Http11 => pb::HttpVersion::Http11,
            HttpVersion::Http2 => pb::HttpVersion::Http2,
            HttpVersion::Auto => pb::HttpVersion::Auto,
        } as i32,
        streams_per_connection: t.streams_per_connection.unwrap_or(0),
        connections: t.connections.unwrap_or(0),
        connect_to: t.connect_to.clone(),
        dns_ttl_ms: t
            .dns_ttl
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

fn bad<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), message.into()))
}
