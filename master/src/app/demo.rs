//! `stampede-master demo`: the whole product on one machine with one command. Two bundled
//! workload servers on free loopback ports, labelled arm64 and amd64, the shipped demo scenario
//! pointed at them, an in-process worker, and the live view.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use stampede_workload_server::{Server, ServerConfig};
use tokio_util::sync::CancellationToken;

use super::cli::{DemoArgs, Linger};
use super::execute::{ExecuteOptions, execute};
use super::exit::Failure;
use crate::scenario;
use crate::wire::{Auth, generate_token};

/// The shipped demo scenario, built in so the demo runs from any directory.
const DEMO_SCENARIO: &str = include_str!("../../../scenarios/demo.toml");

/// A workload server started for the demo.
struct DemoServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server(arch: &str, stop: CancellationToken) -> anyhow::Result<DemoServer> {
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        arch_label: arch.to_owned(),
        served_by: format!("demo-{arch}"),
        instance_type: "local".to_owned(),
        ..ServerConfig::default()
    };
    let server = Server::bind(config)
        .await
        .with_context(|| format!("cannot start the {arch} workload server"))?;
    let addr = server.local_addr();
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(stop.cancelled_owned()).await {
            tracing::error!("demo workload server: {e}");
        }
    });
    Ok(DemoServer { addr, task })
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    let stop_servers = CancellationToken::new();
    let arm = start_server("arm64", stop_servers.clone())
        .await
        .map_err(Failure::not_carried_out)?;
    let amd = start_server("amd64", stop_servers.clone())
        .await
        .map_err(Failure::not_carried_out)?;
    eprintln!(
        "demo: workload servers arm64 on http://{} and amd64 on http://{}",
        arm.addr, amd.addr
    );
    let mut overrides = vec![
        format!("target[0].url=http://{}/arm", arm.addr),
        format!("target[1].url=http://{}/amd", amd.addr),
        format!("run_time={}", humantime::format_duration(args.run_time)),
    ];
    if let Some(users) = args.users {
        overrides.push(format!("load.users={users}"));
    }
    overrides.extend(args.set.iter().cloned());
    let loaded = match &args.scenario {
        Some(path) => scenario::load(path, &overrides),
        None => scenario::parse(Path::new("scenarios/demo.toml"), DEMO_SCENARIO, &overrides),
    };
    let scenario = loaded.map_err(Failure::bad_input)?;
    let options = ExecuteOptions {
        headless: args.headless,
        summary: Some(args.summary.clone()),
        remote_workers: 0,
        local_workers: 1,
        worker_threads: None,
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        // Only the in-process worker joins; it is handed this token.
        auth: Auth::Token(generate_token()),
        wait_workers: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(1),
        liveness_timeout: Duration::from_secs(3),
        status_every: args.status_every,
        metrics_bind: None,
        print_summary: false,
        linger: Linger::For(Duration::ZERO),
        outputs: args.outputs.clone(),
        tls: None,
        // The demo is one machine's toy run: nothing to resume.
        journal: false,
        state_dir: None,
        resume: None,
    };
    let result = execute(scenario, options).await;
    stop_servers.cancel();
    for s in [arm, amd] {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.task).await;
    }
    result
}
