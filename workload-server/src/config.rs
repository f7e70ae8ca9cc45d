//! Everything the server can be told: [`ServerConfig`], its command line ([`Cli`]) and the
//! environment a Kubernetes pod sets.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use http::HeaderValue;

/// The largest `--max-matrix-dim` accepted: one `i32` matrix of this side is 1 GiB.
pub const HARD_MAX_MATRIX_DIM: usize = 16_384;

/// How one server behaves. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port; see `Server::local_addr`).
    pub listen: SocketAddr,
    /// Side of the matrices when a request gives no `?dim=`.
    pub matrix_dim: usize,
    /// Largest `?dim=` accepted; larger ones are answered 400.
    pub max_matrix_dim: usize,
    /// Architecture reported in `x-arch` and the JSON answer.
    pub arch_label: String,
    /// Instance type reported in `x-instance-type` (e.g. `m7g.large`).
    pub instance_type: String,
    /// Host or pod name reported in `x-served-by`.
    pub served_by: String,
    /// Fraction of `/app/...` requests redirected to `/arm/...`; the rest go to `/amd/...`.
    pub app_split: f64,
    /// Matrix multiplies running at once.
    pub max_inflight: usize,
    /// Requests waiting for a free multiply slot; past that, 503 at once.
    pub max_queue: usize,
    /// How long a request may wait for a slot, counted from its arrival; past that, 504.
    pub deadline: Duration,
    /// Largest request body accepted; larger ones are answered 413.
    pub max_body_bytes: u64,
    /// How long a graceful shutdown waits for in-flight requests before giving up on them.
    pub drain_timeout: Duration,
    /// Added to every `/runtime` answer after the multiply (no CPU, no slot held): a known
    /// difference for A/B checks of the measurement (`bench/aa.sh`). Zero by default.
    pub extra_delay: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = cores();
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            matrix_dim: 500,
            max_matrix_dim: 2000,
            arch_label: default_arch().to_owned(),
            instance_type: "unknown".to_owned(),
            served_by: hostname(),
            app_split: 0.5,
            max_inflight: cores,
            max_queue: 4 * cores,
            deadline: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
            extra_delay: Duration::ZERO,
        }
    }
}

/// A configuration the server cannot run with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("matrix dim must be at least 1, got {0}")]
    MatrixDimZero(usize),
    #[error("max matrix dim must be between 1 and {HARD_MAX_MATRIX_DIM}, got {0}")]
    MaxMatrixDim(usize),
    #[error("matrix dim {dim} exceeds the max matrix dim {max}")]
    MatrixDimAboveMax { dim: usize, max: usize },
    #[error("app split must be a fraction between 0 and 1, got {0}")]
    AppSplit(f64),
    #[error("max in-flight must be at least 1")]
    MaxInflightZero,
    #[error("{name} must be non-empty visible ASCII (it is sent as a header), got {value:?}")]
    HeaderValue { name: &'static str, value: String },
}

impl ServerConfig {
    /// Checks that the server can run with this configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_matrix_dim == 0 || self.max_matrix_dim > HARD_MAX_MATRIX_DIM {
            return Err(ConfigError::MaxMatrixDim(self.max_matrix_dim));
        }
        if self.matrix_dim == 0 {
            return Err(ConfigError::MatrixDimZero(self.matrix_dim));
        }
        if self.matrix_dim > self.max_matrix_dim {
            return Err(ConfigError::MatrixDimAboveMax {
                dim: self.matrix_dim,
                max: self.max_matrix_dim,
            });
        }
        if !(0.0..=1.0).contains(&self.app_split) {
            return Err(ConfigError::AppSplit(self.app_split));
        }
        if self.max_inflight == 0 {
            return Err(ConfigError::MaxInflightZero);
        }
        header_value("arch label", &self.arch_label)?;
        header_value("instance type", &self.instance_type)?;
        header_value("served-by", &self.served_by)?;
        Ok(())
    }
}

pub(crate) fn header_value(name: &'static str, value: &str) -> Result<HeaderValue, ConfigError> {
    let bad = || ConfigError::HeaderValue {
        name,
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    HeaderValue::from_str(value).map_err(|_| bad())
}

/// The architecture this binary runs on, by its Kubernetes name (`kubernetes.io/arch`):
/// `amd64` for x86_64, `arm64` for aarch64, Rust's own name otherwise.
pub fn default_arch() -> &'static str {
    kubernetes_arch(std::env::consts::ARCH)
}

/// Maps a Rust architecture name to the Kubernetes one.
pub fn kubernetes_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// This host's name: `$HOSTNAME` (a pod's name in Kubernetes), else the kernel's, else `unknown`.
pub fn hostname() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
    };
    from_env
        .or_else(from_kernel)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Cores this process may run on (its CPU affinity, so `taskset -c 0` gives 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `stampede-workload-server`: the command line. Every flag can also come from the environment
/// variable named in its help, as a Kubernetes pod sets them.
#[derive(Debug, Parser)]
#[command(
    name = "stampede-workload-server",
    version,
    about = "CPU-bound HTTP target: multiplies two random integer matrices per request"
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Port to listen on; replaces just the port of --listen.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Side of the matrices when a request gives no ?dim=.
    #[arg(long, env = "MATRIX_DIM", default_value_t = 500)]
    pub matrix_dim: usize,
    /// Largest ?dim= accepted (larger is answered 400).
    #[arg(long, env = "MAX_MATRIX_DIM", default_value_t = 2000)]
    pub max_matrix_dim: usize,
    /// Architecture to report [default: this machine's, as amd64 or arm64].
    #[arg(long, env = "ARCH_LABEL")]
    pub arch_label: Option<String>,
    /// Instance type to report in x-instance-type.
    #[arg(long, env = "INSTANCE_TYPE", default_value = "unknown")]
    pub instance_type: String,
    /// Name to report in x-served-by [default: $HOSTNAME or the kernel's host name].
    #[arg(long, env = "POD_NAME")]
    pub served_by: Option<String>,
    /// Fraction of /app/... requests redirected to /arm/... (the rest go to /amd/...).
    #[arg(long, env = "APP_SPLIT", default_value_t = 0.5)]
    pub app_split: f64,
    /// Matrix multiplies running at once [default: the number of cores].
    #[arg(long, env = "MAX_INFLIGHT")]
    pub max_inflight: Option<usize>,
    /// Requests waiting for a slot before new ones get 503 [default: 4 x cores].
    #[arg(long, env = "MAX_QUEUE")]
    pub max_queue: Option<usize>,
    /// Longest wait for a slot, from arrival, before a 504 (e.g. 10s, 500ms).
    #[arg(long, env = "REQUEST_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Largest request body accepted, in bytes (larger is answered 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: u64,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, env = "DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Wait this long more before every /runtime answer (e.g. 5ms): a known slowdown for A/B
    /// checks; holds no compute slot.
    #[arg(long, env = "EXTRA_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub extra_delay: Duration,
}

impl Cli {
    /// The configuration these flags describe (checked by `Server::bind`).
    pub fn into_config(self) -> ServerConfig {
        let defaults = ServerConfig::default();
        let mut listen = self.listen;
        if let Some(port) = self.port {
            listen.set_port(port);
        }
        ServerConfig {
            listen,
            matrix_dim: self.matrix_dim,
            max_matrix_dim: self.max_matrix_dim,
            arch_label: self.arch_label.unwrap_or(defaults.arch_label),
            instance_type: self.instance_type,
            served_by: self.served_by.unwrap_or(defaults.served_by),
            app_split: self.app_split,
            max_inflight: self.max_inflight.unwrap_or(defaults.max_inflight),
            max_queue: self.max_queue.unwrap_or(defaults.max_queue),
            deadline: self.deadline,
            max_body_bytes: self.max_body_bytes,
            drain_timeout: self.drain_timeout,
            extra_delay: self.extra_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!((config.matrix_dim, config.max_matrix_dim), (500, 2000));
        assert_eq!(config.max_queue, 4 * config.max_inflight);
        assert_eq!(config.deadline, Duration::from_secs(10));
    }

    #[test]
    fn arch_names_are_kubernetes_names() {
        assert_eq!(kubernetes_arch("x86_64"), "amd64");
        assert_eq!(kubernetes_arch("aarch64"), "arm64");
        assert_eq!(kubernetes_arch("riscv64"), "riscv64");
        assert!(["amd64", "arm64"].contains(&default_arch()) || !default_arch().is_empty());
    }

    #[test]
    fn flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "stampede-workload-server",
            "--listen",
            "127.0.0.1:9000",
            "--port",
            "9100",
            "--matrix-dim",
            "64",
            "--arch-label",
            "arm64",
            "--app-split",
            "0.8",
            "--max-inflight",
            "3",
            "--max-queue",
            "0",
            "--deadline",
            "250ms",
        ])
        .unwrap();
        let config = cli.into_config();
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.matrix_dim, 64);
        assert_eq!(config.arch_label, "arm64");
        assert_eq!(config.app_split, 0.8);
        assert_eq!((config.max_inflight, config.max_queue), (3, 0));
        assert_eq!(config.deadline, Duration::from_millis(250));
        config.validate().unwrap();
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["--matrix-dim", "abc"][..],
            &["--deadline", "soon"],
            &["--listen", "nowhere"],
        ] {
            let argv = std::iter::once("stampede-workload-server").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let ok = ServerConfig::default();
        let cases = [
            ServerConfig {
                matrix_dim: 0,
                ..ok.clone()
            },
            ServerConfig {
                matrix_dim: 3000,
                ..ok.clone()
            },
            ServerConfig {
                max_matrix_dim: HARD_MAX_MATRIX_DIM + 1,
                ..ok.clone()
            },
            ServerConfig {
                app_split: 1.5,
                ..ok.clone()
            },
            ServerConfig {
                app_split: f64::NAN,
                ..ok.clone()
            },
            ServerConfig {
                max_inflight: 0,
                ..ok.clone()
            },
            ServerConfig {
                served_by: "has space".into(),
                ..ok.clone()
            },
            ServerConfig {
                arch_label: String::new(),
                ..ok.clone()
            },
        ];
        for config in cases {
            let err = config.validate().unwrap_err();
            assert!(!err.to_string().is_empty());
        }
    }
}
