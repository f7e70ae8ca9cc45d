//! TLS for the gRPC listener: the master's certificate and key and, optionally, the CA whose
//! client certificates every worker must present (mutual TLS). Without them the listener speaks
//! plain HTTP/2, for trusted networks (the token still decides who joins).

use std::path::{Path, PathBuf};

use clap::Args;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// Serve gRPC over TLS with this certificate (PEM, the chain up to its CA).
    #[arg(
        long,
        env = "STAMPEDE_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "STAMPEDE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(
        long,
        env = "STAMPEDE_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

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

impl TlsArgs {
    /// Reads the files named; `None` without `--tls-cert`.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsFileError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        Ok(Some(ServerTls {
            cert: read("--tls-cert", cert)?,
            key: read("--tls-key", key)?,
            client_ca: self
                .tls_client_ca
                .as_deref()
                .map(|ca| read("--tls-client-ca", ca))
                .transpose()?,
        }))
    }
}

impl ServerTls {
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
