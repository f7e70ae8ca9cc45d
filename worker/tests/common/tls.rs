//! TLS for the worker's tests: a CA and server certificates made by rcgen, an in-test rustls
//! server, nginx (skipped with a reason when it is not installed), and a TCP proxy that holds
//! bytes for a known time, as an oracle for the recorded phases.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Counts;

/// The names every test server certificate is valid for.
pub const NAMES: &[&str] = &[
    "127.0.0.1",
    "127.0.0.2",
    "localhost",
    "pool.stampede.invalid",
];

/// A CA and one server certificate signed by it, as PEM.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "stampede worker test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_cert,
            ca_key,
        }
    }

    /// A client certificate and key signed by the CA, as PEM.
    pub fn client_identity(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["stampede-worker".to_string()])
            .unwrap()
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A rustls server config that requires a client certificate signed by the CA.
    pub fn mtls_server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        Arc::new(config)
    }

    /// A rustls server config for the certificate, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// The target TLS settings that trust this CA.
    pub fn trusting(&self) -> stampede_worker::proto::TargetTls {
        stampede_worker::proto::TargetTls {
            ca_pem: self.ca_pem.as_bytes().to_vec(),
            ..Default::default()
        }
    }
}

/// A scratch folder under the system's temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "stampede-{tag}-{}-{:x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx with the test CA's certificate, logging each request as
/// `$server_addr $server_port $server_protocol $ssl_protocol $ssl_session_reused $host
/// $ssl_server_name $connection $uri $status`. `/arm/...` answers with `x-arch: arm64`,
/// `/amd/...` with `x-arch: amd64`.
pub struct Nginx {
    child: Child,
    pub dir: Scratch,
    pub log: PathBuf,
}

/// One line of nginx's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub server_addr: String,
    pub server_port: u16,
    pub protocol: String,
    pub ssl_protocol: String,
    pub reused: bool,
    pub host: String,
    pub sni: String,
    pub connection: u64,
    pub uri: String,
    pub status: u16,
}

impl Nginx {
    /// `listen` lines for the one server block (e.g. `"127.0.0.1:8443 ssl http2"`). `None`, with
    /// the reason printed, when nginx is not installed: the caller skips its test.
    pub fn start(pki: &Pki, listens: &[String]) -> Option<Nginx> {
        let Some(binary) = nginx_binary() else {
            eprintln!(
                "SKIPPED: nginx is not installed (apt-get install nginx-light; .ci/run installs it)"
            );
            return None;
        };
        let dir = Scratch::new("nginx");
        let d = &dir.0;
        std::fs::write(d.join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(d.join("key.pem"), &pki.key_pem).unwrap();
        std::fs::create_dir_all(d.join("logs")).unwrap();
        let log = d.join("logs/access.log");
        let listen: String = listens
            .iter()
            .map(|l| format!("        listen {l};\n"))
            .collect();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format t '$server_addr $server_port $server_protocol $ssl_protocol $ssl_session_reused $host $ssl_server_name $connection $uri $status';
    access_log {log} t;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    http2_max_concurrent_streams 128;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
    ssl_session_tickets on;
    server {{
{listen}        server_name _;
        location /arm/ {{ add_header x-arch arm64 always; default_type text/plain; return 200 "ok"; }}
        location /amd/ {{ add_header x-arch amd64 always; default_type text/plain; return 200 "ok"; }}
        location / {{ default_type text/plain; return 200 "ok"; }}
    }}
}}
"#,
            d = d.display(),
            log = log.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, log };
        // Ready when every listening address accepts.
        let addrs: Vec<String> = listens
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in addrs {
            while std::net::TcpStream::connect(&addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {addr}: {}",
                    std::fs::read_to_string(nginx.dir.0.join("logs/error.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(nginx)
    }

    /// The access log so far (nginx writes each line when its request ends).
    pub fn logged(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 10, "log line {line:?}");
                Logged {
                    server_addr: f[0].into(),
                    server_port: f[1].parse().unwrap(),
                    protocol: f[2].into(),
                    ssl_protocol: f[3].into(),
                    reused: f[4] == "r",
                    host: f[5].into(),
                    sni: f[6].into(),
                    connection: f[7].parse().unwrap(),
                    uri: f[8].into(),
                    status: f[9].parse().unwrap(),
                }
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// An in-test TLS server: accepts, completes the handshake, then hands the TLS stream to
/// `handle`. `counts.accepted` counts TCP connections; `counts.served` is the handler's.
pub async fn tls_server<F, Fut>(config: Arc<rustls::ServerConfig>, handle: F) -> super::TestServer
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>, Arc<Counts>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handle = Arc::new(handle);
    super::raw_server(move |tcp, counts| {
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                handle(tls, counts).await;
            }
        }
    })
    .await
}

/// Serves HTTP/1.1 keep-alive "ok" answers on a TLS stream until the client closes.
pub async fn serve_ok<S>(mut stream: S, counts: Arc<Counts>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let close = String::from_utf8_lossy(&buf[..end])
            .to_ascii_lowercase()
            .contains("connection: close");
        buf.drain(..end);
        counts.served.fetch_add(1, Ordering::SeqCst);
        let resp: &[u8] = if close {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        if stream.write_all(resp).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Which server bytes a [`Proxy`] holds back.
#[derive(Clone, Copy)]
pub enum Hold {
    /// The first server bytes after each client write: each response's first byte.
    EachResponse(Duration),
    /// The first server bytes of each connection: with TLS, the ServerHello.
    FirstBytes(Duration),
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that holds server bytes as `hold` says.
pub struct Proxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr, hold: Hold) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(pipe(client, upstream, hold));
            }
        });
        Proxy { addr, task }
    }
}

async fn pipe(client: TcpStream, upstream: SocketAddr, hold: Hold) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Set when the client has written since the server last answered.
    let asked = Arc::new(AtomicBool::new(false));
    let asked_up = asked.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            asked_up.store(true, Ordering::SeqCst);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut first = true;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let wait = match hold {
                Hold::FirstBytes(d) if first => Some(d),
                Hold::EachResponse(d) if asked.swap(false, Ordering::SeqCst) => Some(d),
                _ => None,
            };
            first = false;
            if let Some(d) = wait {
                hold_for(d).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Waits `d` to well under a millisecond: tokio's timer rounds up to the next millisecond, so
/// it sleeps to 1 ms short and yields until the exact instant.
async fn hold_for(d: Duration) {
    let until = Instant::now() + d;
    if let Some(coarse) = d.checked_sub(Duration::from_millis(1)) {
        tokio::time::sleep(coarse).await;
    }
    while Instant::now() < until {
        tokio::task::yield_now().await;
    }
}

/// Reads a whole file, for messages.
pub fn slurp(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
