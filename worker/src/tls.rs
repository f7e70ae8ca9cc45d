//! TLS to targets: one `rustls::ClientConfig` per target, built once per run from its
//! `TargetTls` (roots, client identity, versions, resumption, ALPN), and the short reasons a
//! failed handshake is reported under.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use stampede_proto::{TargetTls, TlsVersion};
use tracing::{debug, warn};

/// ALPN protocol ids.
pub(crate) const ALPN_H2: &[u8] = b"h2";
pub(crate) const ALPN_H1: &[u8] = b"http/1.1";

/// Why a target's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("ca: {0}")]
    Ca(String),
    #[error("cert/key: {0}")]
    Identity(String),
    #[error("server_name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("versions: {0}")]
    Versions(String),
}

/// What the connections of one target offer in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    H1,
    H2,
    Both,
}

/// The TLS side of one target: the config for its own endpoint (ALPN as its `http` allows),
/// one for other endpoints a redirect names (HTTP/1.1 only), and the name to send as SNI.
#[derive(Debug)]
pub(crate) struct TargetTlsConfig {
    pub own: Arc<ClientConfig>,
    pub other: Arc<ClientConfig>,
    /// `server_name` when set: it replaces the URL's host for SNI and the certificate check.
    pub server_name: Option<ServerName<'static>>,
}

/// The ring provider, shared: the worker never relies on a process-wide default provider.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trusted roots, read once per process. A system without a readable store
/// leaves only the scenario's `ca` (said once in the log).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            debug!(errors = ?found.errors, "some system certificates could not be read");
        }
        if found.certs.is_empty() {
            warn!("no system root certificates found; only a target's `ca` is trusted");
        }
        found.certs
    })
}

impl TargetTlsConfig {
    /// Builds the configs of one target.
    pub(crate) fn build(tls: &TargetTls, alpn: Alpn) -> Result<Self, TlsConfigError> {
        let versions = versions(&tls.versions)?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsConfigError::Versions(e.to_string()))?;
        let builder = if tls.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify {
                    algorithms: provider().signature_verification_algorithms,
                }))
        } else {
            builder.with_root_certificates(roots(&tls.ca_pem)?)
        };
        let mut config = match (tls.cert_pem.is_empty(), tls.key_pem.is_empty()) {
            (true, true) => builder.with_no_client_auth(),
            (false, false) => {
                let (certs, key) = identity(&tls.cert_pem, &tls.key_pem)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| TlsConfigError::Identity(e.to_string()))?
            }
            _ => {
                return Err(TlsConfigError::Identity(
                    "a client certificate needs both cert and key".into(),
                ));
            }
        };
        if tls.no_resumption {
            // Every new connection then does a full handshake: what a handshake-cost run needs.
            config.resumption = Resumption::disabled();
        }
        let mut other = config.clone();
        other.alpn_protocols = vec![ALPN_H1.to_vec()];
        config.alpn_protocols = match alpn {
            Alpn::H1 => vec![ALPN_H1.to_vec()],
            Alpn::H2 => vec![ALPN_H2.to_vec()],
            Alpn::Both => vec![ALPN_H2.to_vec(), ALPN_H1.to_vec()],
        };
        let server_name = match tls.server_name.trim() {
            "" => None,
            name => Some(
                ServerName::try_from(name.to_string())
                    .map_err(|_| TlsConfigError::ServerName(name.to_string()))?,
            ),
        };
        Ok(Self {
            own: Arc::new(config),
            other: Arc::new(other),
            server_name,
        })
    }

    /// Defaults (system roots, both versions, resumption), for `https://` redirects from a
    /// plain target; built once per process.
    pub(crate) fn default_other() -> Arc<ClientConfig> {
        static DEFAULT: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                TargetTlsConfig::build(&TargetTls::default(), Alpn::H1)
                    .ok()
                    .map(|c| c.other)
            })
            .clone()
            .unwrap_or_else(|| {
                // Building from defaults has no input that can be bad; should it fail anyway, an
                // empty root store makes every such handshake a clear "unknown issuer".
                Arc::new(
                    ClientConfig::builder_with_provider(provider())
                        .with_safe_default_protocol_versions()
                        .map(|b| b.with_root_certificates(RootCertStore::empty()))
                        .map(|b| b.with_no_client_auth())
                        .unwrap_or_else(|_| unreachable!("ring supports the default versions")),
                )
            })
    }
}

fn versions(
    wanted: &[i32],
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsConfigError> {
    if wanted.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    for &v in wanted {
        let version = match TlsVersion::try_from(v) {
            Ok(TlsVersion::Tls12) => &rustls::version::TLS12,
            Ok(TlsVersion::Tls13) => &rustls::version::TLS13,
            _ => return Err(TlsConfigError::Versions(format!("unknown TLS version {v}"))),
        };
        if !out.contains(&version) {
            out.push(version);
        }
    }
    Ok(out)
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    // Some system certificates may not parse with webpki; the others are still trusted.
    let (_added, _ignored) = store.add_parsable_certificates(system_roots().iter().cloned());
    if !ca_pem.is_empty() {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert =
                cert.map_err(|e| TlsConfigError::Ca(format!("not a PEM certificate: {e}")))?;
            store
                .add(cert)
                .map_err(|e| TlsConfigError::Ca(format!("unusable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::Ca("no PEM certificate in it".into()));
        }
    }
    Ok(store)
}

fn identity(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Identity(format!("cert: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Identity(
            "cert: no PEM certificate in it".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsConfigError::Identity(format!("key: not a PEM private key: {e}")))?;
    Ok((certs, key))
}

/// `insecure_skip_verify`: any certificate chain and name are accepted, but the handshake's
/// signatures are still checked, so the connection is sound, only not authenticated.
#[derive(Debug)]
struct NoVerify {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls error inside an I/O error from a TLS stream, if that is what it is.
pub(crate) fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// The short reason a TLS failure is counted under in the failures table.
pub(crate) fn reason(err: &rustls::Error) -> &'static str {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "unknown issuer",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "name mismatch"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not yet valid"
            }
            CertificateError::Revoked => "revoked",
            _ => "bad certificate",
        },
        E::AlertReceived(alert) => match alert {
            AlertDescription::ProtocolVersion | AlertDescription::NoApplicationProtocol => {
                "no common protocol"
            }
            AlertDescription::UnknownCA => "server rejected the client certificate",
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown => "server rejected the client certificate",
            _ => "handshake failure",
        },
        E::PeerIncompatible(_) | E::NoApplicationProtocol => "no common protocol",
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::PeerMisbehaved(_)
        | E::PeerSentOversizedRecord => "bad TLS record",
        E::DecryptError => "decrypt error",
        _ => "handshake failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_get_the_operators_words() {
        let cert = |e| reason(&rustls::Error::InvalidCertificate(e));
        assert_eq!(cert(CertificateError::UnknownIssuer), "unknown issuer");
        assert_eq!(cert(CertificateError::NotValidForName), "name mismatch");
        assert_eq!(cert(CertificateError::Expired), "expired");
        assert_eq!(cert(CertificateError::BadSignature), "bad certificate");
        let alert = |a| reason(&rustls::Error::AlertReceived(a));
        assert_eq!(
            alert(AlertDescription::HandshakeFailure),
            "handshake failure"
        );
        assert_eq!(
            alert(AlertDescription::ProtocolVersion),
            "no common protocol"
        );
        assert_eq!(
            alert(AlertDescription::NoApplicationProtocol),
            "no common protocol"
        );
        assert_eq!(
            reason(&rustls::Error::NoApplicationProtocol),
            "no common protocol"
        );
    }

    #[test]
    fn versions_and_settings_are_checked() {
        assert_eq!(versions(&[]).unwrap().len(), 2);
        assert_eq!(versions(&[TlsVersion::Tls13 as i32]).unwrap().len(), 1);
        assert!(versions(&[9]).is_err());
        let only_key = TargetTls {
            key_pem: b"x".to_vec(),
            ..Default::default()
        };
        assert!(matches!(
            TargetTlsConfig::build(&only_key, Alpn::H1),
            Err(TlsConfigError::Identity(_))
        ));
        let bad_name = TargetTls {
            server_name: "not a name".into(),
            ..Default::default()
        };
        assert!(matches!(
            TargetTlsConfig::build(&bad_name, Alpn::H1),
            Err(TlsConfigError::ServerName(_))
        ));
        let ok = TargetTlsConfig::build(&TargetTls::default(), Alpn::Both).unwrap();
        assert_eq!(
            ok.own.alpn_protocols,
            vec![ALPN_H2.to_vec(), ALPN_H1.to_vec()]
        );
        assert_eq!(ok.other.alpn_protocols, vec![ALPN_H1.to_vec()]);
    }
}
