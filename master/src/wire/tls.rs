//! TLS for the gRPC listener: the master's certificate and key and, optionally, the CA whose
//! client certificates every worker must present (mutual TLS). Without them the listener speaks
//! plain HTTP/2, for trusted networks (the token still decides who joins).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The files a TLS listener needs, read.
#[derive(Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certificates_required", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {source}", path.display())]
pub struct TlsFileError {
    flag: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        flag,
        path: path.to_owned(),
        source,
    })
}

impl ServerTls {
    /// Reads the certificate, its key and, for mutual TLS, the CA of client certificates.
    pub fn read(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsFileError> {
        Ok(ServerTls {
            cert: read("--tls-cert", cert)?,
            key: read("--tls-key", key)?,
            client_ca: client_ca
                .map(|ca| read("--tls-client-ca", ca))
                .transpose()?,
        })
    }

    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    pub fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}
