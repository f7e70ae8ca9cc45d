//! The session over real gRPC on loopback: a tiny scripted master (the `Coordinator` service
//! implemented here) drives a worker through Welcome, RunConfig, SetLoad, Stop and Quit.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use stampede_worker::proto::coordinator_server::{Coordinator, CoordinatorServer};
use stampede_worker::proto::master_message::Kind as In;
use stampede_worker::proto::worker_message::Kind as Out;
use stampede_worker::proto::{
    Ack, MasterMessage, PROTOCOL_VERSION, Quit, RunConfig, SetLoad, Stop, TOKEN_METADATA_KEY,
    TargetLoad, Welcome, WorkerMessage, WorkerState,
};
use stampede_worker::{WorkerError, WorkerOptions, report};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// What the scripted master does after its Welcome.
#[derive(Clone)]
enum Script {
    /// Run `config`: 3 users, a stale SetLoad, 2 users, Stop, and Quit after the Goodbye.
    Run(RunConfig),
    /// Refuse with FAILED_PRECONDITION, naming both versions.
    WrongVersion,
}

#[derive(Clone)]
struct Master {
    token: Option<String>,
    script: Script,
    /// Every message the worker sent, in order.
    seen: Arc<Mutex<Vec<WorkerMessage>>>,
}

type Outbox = mpsc::Sender<Result<MasterMessage, Status>>;

fn msg(kind: In) -> Result<MasterMessage, Status> {
    Ok(MasterMessage { kind: Some(kind) })
}

fn load(epoch: u64, users: u32) -> In {
    In::Load(SetLoad {
        epoch,
        targets: vec![TargetLoad {
            target: 0,
            users,
            ..Default::default()
        }],
        stage: 0,
    })
}

#[tonic::async_trait]
impl Coordinator for Master {
    type SessionStream = ReceiverStream<Result<MasterMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if let Some(token) = &self.token {
            let sent = request
                .metadata()
                .get(TOKEN_METADATA_KEY)
                .and_then(|v| v.to_str().ok());
            if sent != Some(format!("Bearer {token}").as_str()) {
                return Err(Status::unauthenticated("wrong or missing token"));
            }
        }
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("no hello"))?;
        let Some(Out::Hello(hello)) = &first.kind else {
            return Err(Status::invalid_argument("first message must be Hello"));
        };
        if let Script::WrongVersion = self.script {
            return Err(Status::failed_precondition(format!(
                "worker speaks protocol v{}, this master v{}",
                hello.protocol_version,
                hello.protocol_version + 1
            )));
        }
        self.seen.lock().unwrap().push(first);
        let (tx, rx) = mpsc::channel(64);
        tx.send(msg(In::Welcome(Welcome {
            protocol_version: PROTOCOL_VERSION,
            master_version: "test".into(),
            heartbeat_interval_ms: 100,
        })))
        .await
        .unwrap();
        if let Script::Run(config) = self.script.clone() {
            tokio::spawn(drive(config, tx.clone()));
        }
        tokio::spawn(listen(inbound, tx, self.seen.clone()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The run's timeline, as a master's ramp would send it.
async fn drive(config: RunConfig, tx: Outbox) {
    let _ = tx.send(msg(In::Run(config))).await;
    let _ = tx.send(msg(load(1, 3))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stale: an epoch already applied must be ignored.
    let _ = tx.send(msg(load(1, 0))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tx.send(msg(load(2, 2))).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _ = tx
        .send(msg(In::Stop(Stop {
            reason: "test over".into(),
            stop_timeout_ms: 10_000,
        })))
        .await;
}

/// Records what the worker sends, acks reports, and says Quit after the Goodbye.
async fn listen(
    mut inbound: Streaming<WorkerMessage>,
    tx: Outbox,
    seen: Arc<Mutex<Vec<WorkerMessage>>>,
) {
    while let Ok(Some(message)) = inbound.message().await {
        let reply = match &message.kind {
            Some(Out::Report(r)) => Some(In::Ack(Ack {
                run_id: r.run_id.clone(),
                seq: r.seq,
            })),
            Some(Out::Goodbye(_)) => Some(In::Quit(Quit {
                reason: "done".into(),
            })),
            _ => None,
        };
        seen.lock().unwrap().push(message);
        if let Some(reply) = reply {
            let _ = tx.send(msg(reply)).await;
        }
    }
}

/// Serves `master` on a loopback port; returns its address.
async fn serve(master: Master) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CoordinatorServer::new(master))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn options(master: &str, token: Option<&str>) -> WorkerOptions {
    let mut opts = WorkerOptions::new(master);
    opts.id = "test-worker".into();
    opts.token = token.map(str::to_string);
    opts.threads = 2;
    // One session: these tests look at how a session ends.
    opts.reconnect = false;
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_run_reports_every_request_once() {
    let server = http_server(Behaviour {
        delay: Duration::from_millis(5),
        every_nth_503: 4,
        arch: Some("arm64"),
        ..Default::default()
    })
    .await;
    let mut config = run_config(&server.url(""), "amd64", "/runtime");
    config.run_id = "run-1".into();
    config.report_interval_ms = 200;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(Master {
        token: Some("s3cret".into()),
        script: Script::Run(config),
        seen: seen.clone(),
    })
    .await;

    tokio::time::timeout(
        Duration::from_secs(30),
        stampede_worker::run(options(&addr, Some("s3cret"))),
    )
    .await
    .expect("the session ends by itself")
    .expect("the session ends with Quit");

    let seen = seen.lock().unwrap().clone();
    let Some(Out::Hello(hello)) = &seen[0].kind else {
        panic!("Hello first, got {:?}", seen[0]);
    };
    assert_eq!(hello.worker_id, "test-worker");
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.cores, 2);

    let reports: Vec<_> = seen
        .iter()
        .filter_map(|m| match &m.kind {
            Some(Out::Report(r)) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert!(
        reports.len() >= 4,
        "one report per 200 ms over ~1.6 s: {}",
        reports.len()
    );
    let mut end = 0;
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "seq 1, 2, 3, ...");
        assert_eq!(r.run_id, "run-1");
        assert_eq!(r.worker_id, "test-worker");
        assert_eq!(r.start_ms, end, "intervals are contiguous");
        assert!(r.end_ms >= r.start_ms);
        end = r.end_ms;
        assert_eq!(
            r.r#final,
            i == reports.len() - 1,
            "only the last report is final"
        );
    }
    let last = reports.last().unwrap();
    assert_eq!(last.users, 0, "no users after the stop");
    // Until the stop, 3 then 2 users: the stale SetLoad (0 users) was ignored.
    let users: Vec<u32> = reports[..reports.len() - 1]
        .iter()
        .map(|r| r.users)
        .collect();
    assert!(users.iter().all(|&u| u == 3 || u == 2), "{users:?}");
    assert!(users.contains(&3) && users.contains(&2), "{users:?}");

    // Every request the server served is in exactly one series, with matching histograms.
    let mut total = 0;
    let mut status_5xx = 0;
    for series in reports.iter().flat_map(|r| &r.series) {
        assert_eq!(report::decode(&series.hdr).unwrap().len(), series.count);
        assert_eq!(series.arch, "arm64");
        total += series.count;
        if series.outcome == stampede_worker::proto::Outcome::Status5xx as i32 {
            status_5xx += series.count;
        }
    }
    assert!(total > 0);
    assert_eq!(total, server.counts.served());
    assert_eq!(status_5xx, server.counts.status_503());

    // Goodbye after the final report, naming it.
    let goodbye_at = seen
        .iter()
        .position(|m| matches!(m.kind, Some(Out::Goodbye(_))))
        .expect("a Goodbye");
    let Some(Out::Goodbye(goodbye)) = &seen[goodbye_at].kind else {
        unreachable!()
    };
    assert_eq!(goodbye.last_seq, last.seq);
    assert_eq!(goodbye.run_id, "run-1");
    let final_at = seen
        .iter()
        .position(|m| matches!(&m.kind, Some(Out::Report(r)) if r.r#final))
        .unwrap();
    assert!(final_at < goodbye_at);

    // Heartbeats went up and said what the worker was doing.
    let states: Vec<_> = seen
        .iter()
        .filter_map(|m| match &m.kind {
            Some(Out::Heartbeat(h)) => Some(h.state),
            _ => None,
        })
        .collect();
    assert!(states.len() >= 5, "a heartbeat every 100 ms: {states:?}");
    assert!(
        states.contains(&(WorkerState::Running as i32)),
        "{states:?}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(Master {
        token: Some("s3cret".into()),
        script: Script::Run(run_config("http://127.0.0.1:1", "amd64", "/")),
        seen,
    })
    .await;
    for token in [None, Some("guess")] {
        let err = stampede_worker::run(options(&addr, token))
            .await
            .unwrap_err();
        assert!(matches!(err, WorkerError::Unauthenticated { .. }), "{err}");
        assert!(err.to_string().contains("UNAUTHENTICATED"), "{err}");
    }
}

#[tokio::test]
async fn a_version_mismatch_names_both_versions() {
    let addr = serve(Master {
        token: None,
        script: Script::WrongVersion,
        seen: Arc::new(Mutex::new(Vec::new())),
    })
    .await;
    let err = stampede_worker::run(options(&addr, None))
        .await
        .unwrap_err();
    assert!(matches!(err, WorkerError::VersionMismatch { .. }), "{err}");
    let text = err.to_string();
    let ours = format!("v{PROTOCOL_VERSION}");
    let theirs = format!("v{}", PROTOCOL_VERSION + 1);
    assert!(text.contains(&ours) && text.contains(&theirs), "{text}");
}

#[tokio::test]
async fn an_absent_master_is_a_connect_error() {
    let port = dead_port().await;
    let err = stampede_worker::run(options(&format!("http://127.0.0.1:{port}"), None))
        .await
        .unwrap_err();
    assert!(matches!(err, WorkerError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test]
async fn a_configuration_the_worker_cannot_run_gets_a_goodbye_with_the_reason() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(Master {
        token: None,
        script: Script::Run(run_config("ftp://127.0.0.1:1", "amd64", "/")),
        seen: seen.clone(),
    })
    .await;
    tokio::time::timeout(
        Duration::from_secs(30),
        stampede_worker::run(options(&addr, None)),
    )
    .await
    .unwrap()
    .unwrap();
    let seen = seen.lock().unwrap();
    let goodbye = seen
        .iter()
        .find_map(|m| match &m.kind {
            Some(Out::Goodbye(g)) => Some(g.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(goodbye.last_seq, 0);
    assert!(goodbye.reason.contains("https"), "{}", goodbye.reason);
    assert!(!seen.iter().any(|m| matches!(m.kind, Some(Out::Report(_)))));
}
