//! nginx as the oracle for the master's HTTPS and HTTP/2 runs (as the worker's tests use it):
//! a CA and a server certificate made here with rcgen, nginx logging what it really served
//! (protocol, TLS version, connection number), and a TCP proxy that holds server bytes for a
//! known time, so that the summary's phases can be checked against a known delay. A test
//! without nginx is skipped with the reason printed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it, as PEM.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "stampede master test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// One line of nginx's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub port: u16,
    /// `$server_protocol`: `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// `$ssl_protocol`: `TLSv1.3`, or `-` without TLS.
    pub ssl_protocol: String,
    /// `$connection`: the connection's serial number.
    pub connection: u64,
    /// `$ssl_session_reused`: the TLS session was resumed.
    pub reused: bool,
    pub uri: String,
    pub status: u16,
}

/// nginx on 127.0.0.1 with the test certificate. `/arm/...` answers `x-arch: arm64`, `/amd/...`
/// `x-arch: amd64`, both `200 ok`.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Nginx {
    /// nginx listening as `listens` say (e.g. `"127.0.0.1:8443 ssl http2"`); `None`, with the
    /// reason printed, when nginx is not installed.
    pub fn start(pki: &Pki, listens: &[String]) -> Option<Nginx> {
        let Some(binary) = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            eprintln!(
                "SKIPPED: nginx is not installed (apt-get install nginx-light; .ci/run installs it)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
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
    log_format t '$server_port $server_protocol $ssl_protocol $connection $ssl_session_reused $uri $status';
    access_log {log} t;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
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
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        for l in listens {
            let addr = l.split_whitespace().next().unwrap_or_default();
            while TcpStream::connect(addr).is_err() {
                let errors = std::fs::read_to_string(nginx.dir.path().join("logs/error.log"));
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {addr}: {}",
                    errors.unwrap_or_default()
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
                assert_eq!(f.len(), 7, "log line {line:?}");
                Logged {
                    port: f[0].parse().unwrap(),
                    protocol: f[1].into(),
                    ssl_protocol: f[2].into(),
                    connection: f[3].parse().unwrap(),
                    reused: f[4] == "r",
                    uri: f[5].into(),
                    status: f[6].parse().unwrap(),
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which server bytes a [`Proxy`] holds back, and for how long.
#[derive(Clone, Copy)]
pub enum Hold {
    /// The first server bytes after each client write: each response's first byte.
    EachResponse(Duration),
    /// The first server bytes of each connection: over TLS, the ServerHello.
    FirstBytes(Duration),
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`; threads per connection (a test has a
/// handful), gone when the test's process ends.
pub struct Proxy {
    pub addr: SocketAddr,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, hold: Hold) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                std::thread::spawn(move || pipe(client, upstream, hold));
            }
        });
        Proxy { addr }
    }
}

fn pipe(client: TcpStream, upstream: SocketAddr, hold: Hold) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut client_r, mut server_w) = (client, server);
    // Set when the client has written since the server last answered.
    let asked = Arc::new(AtomicBool::new(false));
    let asked_up = asked.clone();
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = client_r.read(&mut buf) {
            asked_up.store(true, Ordering::SeqCst);
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    while let Ok(n @ 1..) = server_r.read(&mut buf) {
        let wait = match hold {
            Hold::FirstBytes(d) if first => Some(d),
            Hold::EachResponse(d) if asked.swap(false, Ordering::SeqCst) => Some(d),
            _ => None,
        };
        first = false;
        if let Some(d) = wait {
            hold_for(d);
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Waits `d` to well under a millisecond: sleeps to 1 ms short, then spins to the instant.
fn hold_for(d: Duration) {
    let until = Instant::now() + d;
    if let Some(coarse) = d.checked_sub(Duration::from_millis(1)) {
        std::thread::sleep(coarse);
    }
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
