//! The real binary: flags, the address it logs, and SIGTERM draining a request in flight
//! before exiting 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bounded, get, slow_dim, wait_for_in_flight};
use http::StatusCode;

const BINARY: &str = env!("CARGO_BIN_EXE_stampede-workload-server");

/// Environment variables the binary reads, removed so the host's environment cannot interfere.
const ENV: [&str; 14] = [
    "LISTEN_ADDR",
    "PORT",
    "MATRIX_DIM",
    "MAX_MATRIX_DIM",
    "ARCH_LABEL",
    "INSTANCE_TYPE",
    "POD_NAME",
    "APP_SPLIT",
    "MAX_INFLIGHT",
    "MAX_QUEUE",
    "REQUEST_DEADLINE",
    "MAX_BODY_BYTES",
    "DRAIN_TIMEOUT",
    "RUST_LOG",
];

/// Kills the child if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    for name in ENV {
        command.env_remove(name);
    }
    command
}

/// Starts the binary and reads the address it listens on from its log.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Guard, SocketAddr) {
    try_spawn(args, env).expect("the server never said where it listens")
}

/// Starts the server and waits for the address it announces; `None` when it exits (or stays
/// silent for a minute) without listening.
fn try_spawn(args: &[&str], env: &[(&str, &str)]) -> Option<(Guard, SocketAddr)> {
    let mut command = command(args);
    command.envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (found, addr) = mpsc::channel();
    // Keeps reading the log so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .contains("listening")
                .then(|| line.split("addr=").nth(1))
                .flatten()
            {
                let _ = found.send(addr.trim().parse::<SocketAddr>());
            }
        }
    });
    let child = Guard(child);
    let addr = addr.recv_timeout(Duration::from_secs(60)).ok()?.ok()?;
    Some((child, addr))
}

#[tokio::test]
async fn sigterm_drains_the_request_in_flight_then_exits_0() {
    bounded(async {
        let (mut child, addr) = spawn(
            &[
                "--listen",
                "127.0.0.1:0",
                "--arch-label",
                "amd64",
                "--matrix-dim",
                "8",
            ],
            &[("INSTANCE_TYPE", "c7i.test"), ("POD_NAME", "pod-7")],
        );
        let reply = get(addr, "/runtime").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-arch"), "amd64");
        assert_eq!(reply.header("x-instance-type"), "c7i.test");
        assert_eq!(reply.header("x-served-by"), "pod-7");
        assert_eq!(reply.json()["dim"], 8);

        let dim = slow_dim(addr).await;
        let busy = tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await });
        wait_for_in_flight(addr, 1.0).await;
        let killed = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());

        let reply = busy.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json()["dim"], dim);
        let status = tokio::task::spawn_blocking(move || child.0.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn port_from_the_environment_replaces_the_port() {
    bounded(async {
        // Find a free port, then hand it over through PORT. Tests in parallel may take it in
        // between: then try another.
        let mut started = None;
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let env = [("PORT", port.to_string()), ("MATRIX_DIM", "3".to_owned())];
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Some(s) = try_spawn(&["--listen", "127.0.0.1:0"], &env) {
                started = Some((s, port));
                break;
            }
        }
        let ((_child, addr), port) = started.expect("no free port taken in five tries");
        assert_eq!(addr.port(), port);
        assert_eq!(get(addr, "/runtime").await.json()["dim"], 3);
    })
    .await;
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for args in [
        &["--matrix-dim", "lots"][..],
        &["--matrix-dim", "5000"],
        &["--app-split", "2"],
        &["--max-inflight", "0"],
    ] {
        let output = command(args)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}
