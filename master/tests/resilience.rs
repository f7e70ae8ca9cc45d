//! Faults with real processes against a loopback server that counts what it serves: a worker
//! killed, a worker frozen and thawed, the master killed or frozen, a worker sending garbage.
//! The server's own counts are the oracle.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "resilience-token";

fn server() -> TestServer {
    TestServer::start(Behaviour {
        arch: "arm64",
        every_5xx: 0,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
}

/// Kills the process when the test ends, passed or not: a worker redials a lost master
/// forever, so a failed test must not leave one behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn worker(master: std::net::SocketAddr, id: &str, extra: &[&str]) -> Reaped {
    let mut args = vec!["--token", TOKEN];
    args.extend_from_slice(extra);
    Reaped(start_worker(master, id, &args))
}

fn master(scenario: &str, dir: &std::path::Path, workers: usize, bind: &str) -> MasterProcess {
    let summary = dir.join("summary.json");
    let n = workers.to_string();
    let args = [
        "run",
        scenario,
        "--headless",
        "--expect-workers",
        n.as_str(),
        "--bind",
        bind,
        "--summary",
        summary.to_str().unwrap(),
        "--token",
        TOKEN,
        "--status-every",
        "1s",
    ];
    start_master(&args, dir)
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig}");
}

/// Waits until the server has served `n` requests.
fn wait_served(server: &TestServer, n: u64, limit: Duration) {
    let start = Instant::now();
    while server.counts.served() < n {
        assert!(
            start.elapsed() < limit,
            "only {} served",
            server.counts.served()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the master to complete its run (exit 0); returns its log.
fn finish(m: &mut MasterProcess, limit: Duration) -> String {
    let code = wait_exit(&mut m.child, limit);
    let log = m.log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "master log:\n{log}");
    log
}

fn workers_of(s: &Value) -> Vec<(String, Option<f64>, String)> {
    s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap().to_owned(),
                w["left_s"].as_f64(),
                w["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Must show 1: kill -9 one of three workers mid-run. The run completes, the survivors carry
/// every user within 2 s, the loss is in the summary, and the summary is short of the server
/// by at most what the killed worker did in its last, unreported interval.
#[test]
fn a_killed_worker_costs_at_most_its_last_interval() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let users = 9;
    let s = one_server_scenario(dir.path(), &srv, users, "10s");
    let mut m = master(&s, dir.path(), 3, "127.0.0.1:0");
    let mut w1 = worker(m.addr, "w1", &[]);
    let mut w2 = worker(m.addr, "w2", &[]);
    let mut w3 = worker(m.addr, "w3", &[]);
    wait_served(&srv, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    w2.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    let _ = w2.wait();

    let log = finish(&mut m, Duration::from_secs(60));
    assert_eq!(wait_exit(&mut w1, Duration::from_secs(10)), Some(0));
    assert_eq!(wait_exit(&mut w3, Duration::from_secs(10)), Some(0));
    let summary = read_summary(&dir.path().join("summary.json"));

    // The killed worker's connections are the ones that closed when it died; the survivors'
    // stay open (they only gain users) until the run ends, seconds later.
    let closed = srv.counts.closed.lock().unwrap().clone();
    let killed: Vec<u64> = closed
        .iter()
        .filter(|(_, at)| **at >= killed_at && **at <= killed_at + Duration::from_millis(500))
        .map(|(c, _)| *c)
        .collect();
    assert!(!killed.is_empty(), "the killed worker's connections closed");
    let arrivals = srv.counts.arrivals.lock().unwrap().clone();
    let last_interval = arrivals
        .iter()
        // One report interval (1 s), plus slack for a report tick delayed on a busy machine.
        .filter(|(c, at)| killed.contains(c) && *at + Duration::from_millis(1500) >= killed_at)
        .count() as u64;

    let served = srv.counts.served();
    let counted = summary["totals"]["requests"].as_u64().unwrap();
    assert!(counted <= served, "counted {counted} > served {served}");
    let missing = served - counted;
    eprintln!(
        "served {served}, counted {counted}, missing {missing}, killed worker's last 1.5 s {last_interval}"
    );
    assert!(
        missing <= last_interval,
        "missing {missing} > the killed worker's last interval ({last_interval})"
    );

    // The survivors carried every user within 2 s: the server saw `users` distinct connections
    // (one per user) in the second after that.
    let from = killed_at + Duration::from_secs(2);
    let active = srv
        .counts
        .connections_active(from, from + Duration::from_secs(1));
    assert_eq!(
        active, users as usize,
        "connections active 2-3 s after the kill"
    );

    let workers = workers_of(&summary);
    let w2_row = workers
        .iter()
        .find(|w| w.0 == "w2")
        .expect("w2 in the summary");
    assert!(w2_row.1.is_some(), "w2 left: {workers:?}");
    // What happened, in words; the transport's detail is in the log.
    assert_eq!(w2_row.2, "connection lost", "why w2 left: {workers:?}");
    assert!(log.contains("worker stream broke"), "{log}");
    assert!(log.contains("worker lost"), "{log}");
    let out = m.stdout.lock().unwrap().join("\n");
    assert!(
        out.contains("worker w2 left"),
        "the headless view says so:\n{out}"
    );
}

/// Must show 4: SIGSTOP one of two workers for 5 s (it is declared missing, its users go to
/// the other), then SIGCONT (it reconnects, resends what was not acknowledged, gets users
/// back): the totals equal the server's count exactly.
#[test]
fn a_frozen_and_thawed_worker_changes_nothing_in_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let s = one_server_scenario(dir.path(), &srv, 6, "14s");
    let mut m = master(&s, dir.path(), 2, "127.0.0.1:0");
    let mut w1 = worker(m.addr, "w1", &[]);
    let mut w2 = worker(m.addr, "w2", &[]);
    wait_served(&srv, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    signal(&w2, "-STOP");
    std::thread::sleep(Duration::from_secs(5));
    signal(&w2, "-CONT");

    let log = finish(&mut m, Duration::from_secs(90));
    assert_eq!(wait_exit(&mut w1, Duration::from_secs(10)), Some(0));
    assert_eq!(wait_exit(&mut w2, Duration::from_secs(10)), Some(0));
    let summary = read_summary(&dir.path().join("summary.json"));
    let served = srv.counts.served();
    assert!(served > 100, "{served}");
    assert_eq!(summary["totals"]["requests"], served, "log:\n{log}");
    eprintln!(
        "SIGSTOP/SIGCONT: served {served}, counted {}",
        summary["totals"]["requests"]
    );
    // Requests in flight when w2 froze were served, but w2's clock ran past their timeout
    // while it was stopped: they count once, as timeouts (at most one per w2 user).
    let timeouts = summary["totals"]["errors"]["timeout"].as_u64().unwrap();
    assert!(timeouts <= 3, "{timeouts} timeouts");
    assert_eq!(
        summary["totals"]["status"]["2xx"].as_u64().unwrap() + timeouts,
        served
    );
    let workers = workers_of(&summary);
    let w2: Vec<_> = workers.iter().filter(|w| w.0 == "w2").collect();
    assert_eq!(w2.len(), 2, "w2 left and came back: {workers:?}");
    assert!(w2[0].2.contains("missing"), "{workers:?}");
    assert!(w2[1].1.is_none(), "w2 finished the run: {workers:?}");
}

/// Must show 3: kill -9 the master. The server sees no request more than 10 s later (the
/// worker stops at once on a lost connection); the worker stays alive and joins a new master
/// on the same address, whose run counts exactly what the server served for it.
#[test]
fn a_killed_master_stops_the_load_and_the_worker_joins_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let s = one_server_scenario(dir.path(), &srv, 4, "60s");
    let mut m = master(&s, dir.path(), 1, "127.0.0.1:0");
    let addr = m.addr;
    let mut w = worker(addr, "w", &[]);
    wait_served(&srv, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    m.child.kill().unwrap();
    let killed_at = Instant::now();
    let _ = m.child.wait();
    std::thread::sleep(Duration::from_secs(11));
    let last = srv.counts.last_arrival().unwrap();
    eprintln!(
        "kill -9 master: the last request arrived {:.2} s after the kill",
        last.saturating_duration_since(killed_at).as_secs_f64()
    );
    assert!(
        last <= killed_at + Duration::from_secs(10),
        "a request {:?} after the master died",
        last - killed_at
    );
    assert!(w.try_wait().unwrap().is_none(), "the worker is still alive");

    // A new master on the same address: the worker finds it and runs its run.
    let before = srv.counts.served();
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = one_server_scenario(dir2.path(), &srv, 4, "3s");
    let bind = addr.to_string();
    let mut m2 = master(&s2, dir2.path(), 1, &bind);
    let log = finish(&mut m2, Duration::from_secs(60));
    assert_eq!(wait_exit(&mut w, Duration::from_secs(10)), Some(0));
    let summary = read_summary(&dir2.path().join("summary.json"));
    let served = srv.counts.served() - before;
    assert!(served > 20, "{served}");
    assert_eq!(summary["totals"]["requests"], served, "{log}");
}

/// The dead-man switch itself: a frozen master (SIGSTOP) keeps the TCP connection up but says
/// nothing; the worker stops all load within --master-timeout, then stays alive.
#[test]
fn a_silent_master_trips_the_dead_man_switch() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let s = one_server_scenario(dir.path(), &srv, 4, "60s");
    let mut m = master(&s, dir.path(), 1, "127.0.0.1:0");
    let mut w = worker(m.addr, "w", &["--master-timeout", "4s"]);
    wait_served(&srv, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    signal(&m.child, "-STOP");
    let frozen_at = Instant::now();
    std::thread::sleep(Duration::from_secs(7));
    let last = srv.counts.last_arrival().unwrap();
    let after = last.saturating_duration_since(frozen_at);
    eprintln!(
        "SIGSTOP master (dead-man switch 4 s): last request {:.2} s after the freeze",
        after.as_secs_f64()
    );
    assert!(
        srv.counts
            .arrived_after(frozen_at + Duration::from_millis(500))
            > 0,
        "the load went on while the master was merely quiet"
    );
    assert!(
        after <= Duration::from_secs(4),
        "a request {after:?} after the master went silent (timeout 4 s)"
    );
    assert!(w.try_wait().unwrap().is_none(), "the worker is still alive");
    m.child.kill().unwrap();
    let _ = m.child.wait();
    w.kill().unwrap();
    let _ = w.wait();
}

/// Must show 5: a fake worker with the token sends garbage reports; the master rejects each
/// (and logs why), disconnects it, and the concurrent run's totals equal the server's count.
#[test]
fn a_worker_sending_garbage_does_not_disturb_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server();
    let s = one_server_scenario(dir.path(), &srv, 4, "8s");
    let mut m = master(&s, dir.path(), 1, "127.0.0.1:0");
    let mut real = worker(m.addr, "real", &[]);
    wait_served(&srv, 1, Duration::from_secs(60));
    let ending = fake::attack(m.addr, "real");
    let pid = m.child.id();
    let hwm_kb = peak_memory_kb(pid);
    let log = finish(&mut m, Duration::from_secs(60));
    assert_eq!(wait_exit(&mut real, Duration::from_secs(10)), Some(0));
    let summary = read_summary(&dir.path().join("summary.json"));
    eprintln!(
        "garbage reports: served {}, counted {}, master peak RSS {hwm_kb:?} kB",
        srv.counts.served(),
        summary["totals"]["requests"]
    );
    let served = srv.counts.served();
    assert!(served > 50, "{served}");
    assert_eq!(summary["totals"]["requests"], served, "{log}");
    assert!(
        ending.contains("too many rejected reports"),
        "the fake was disconnected: {ending}"
    );
    for why in [
        "report for run",
        "histogram",
        "count",
        "target 99",
        "past any possible run",
        "came from `fake`",
        "sequence number 0",
    ] {
        assert!(log.contains(why), "the master logs `{why}`:\n{log}");
    }
    let fake_rows = workers_of(&summary)
        .into_iter()
        .filter(|w| w.0 == "fake")
        .collect::<Vec<_>>();
    assert_eq!(fake_rows.len(), 1);
    assert!(fake_rows[0].2.contains("rejected"), "{fake_rows:?}");
    if let Some(kb) = hwm_kb {
        assert!(kb < 1024 * 1024, "master peak memory {kb} kB");
    }
}

/// The peak resident memory of a process, from /proc (Linux only).
fn peak_memory_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A worker that says the right things to get in, then sends garbage.
mod fake {
    use std::net::SocketAddr;
    use std::time::Duration;

    use flate2::write::ZlibEncoder;
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    use stampede_proto::coordinator_client::CoordinatorClient;
    use stampede_proto::master_message::Kind as In;
    use stampede_proto::worker_message::Kind as Out;
    use stampede_proto::{self as pb, PROTOCOL_VERSION};
    use std::io::Write;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    fn hist(values: &[u64]) -> Vec<u8> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        let mut out = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut out).unwrap();
        out
    }

    /// 60 bytes announcing a 4 GiB payload.
    fn hostile_header() -> Vec<u8> {
        let mut inner = Vec::new();
        for v in [0x1c84_9313u32, u32::MAX - 64, 0, 3] {
            inner.extend_from_slice(&v.to_be_bytes());
        }
        for v in [1u64, 3_600_000_000, 1f64.to_bits()] {
            inner.extend_from_slice(&v.to_be_bytes());
        }
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&inner).unwrap();
        let d = z.finish().unwrap();
        let mut out = 0x1c84_9314u32.to_be_bytes().to_vec();
        out.extend_from_slice(&(d.len() as u32).to_be_bytes());
        out.extend_from_slice(&d);
        out
    }

    fn series(target: u32, count: u64, hdr: Vec<u8>) -> pb::Series {
        pb::Series {
            target,
            arch: "arm64".into(),
            outcome: pb::Outcome::Status2xx as i32,
            count,
            hdr,
            ..Default::default()
        }
    }

    /// Reports that must all be rejected. `run` is the real run id; `victim` a real worker.
    fn garbage(run: &str, victim: &str) -> Vec<pb::Report> {
        let ok = |seq: u64, series: Vec<pb::Series>| pb::Report {
            run_id: run.into(),
            worker_id: "fake".into(),
            seq,
            start_ms: 0,
            end_ms: 1000,
            users: 1,
            series,
            ..Default::default()
        };
        let valid = || series(0, 3, hist(&[1000, 2000, 3000]));
        let mut out = vec![
            pb::Report {
                run_id: "another-run".into(),
                ..ok(1, vec![valid()])
            },
            ok(2, vec![series(0, 5, vec![0xde, 0xad, 0xbe, 0xef])]),
            ok(3, vec![series(0, 5, hostile_header())]),
            ok(4, vec![series(0, 99, hist(&[1000]))]),
            ok(5, vec![series(99, 1, hist(&[1000]))]),
            pb::Report {
                end_ms: u64::MAX,
                ..ok(6, vec![valid()])
            },
            ok(0, vec![valid()]),
            ok(7, vec![series(0, u64::MAX, hist(&[1]))]),
        ];
        // Well-formed reports in the real worker's name, with the sequence numbers it will
        // use: counted, they would add requests and make its real reports look like resends.
        for seq in 1..=6 {
            out.push(pb::Report {
                worker_id: victim.into(),
                ..ok(seq, vec![series(0, 1000, hist(&[5; 1000]))])
            });
        }
        out
    }

    /// Joins, waits for the run, sends garbage; returns how the master ended the stream.
    pub fn attack(master: SocketAddr, victim: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut client = CoordinatorClient::connect(format!("http://{master}"))
                .await
                .unwrap();
            let (tx, rx) = mpsc::channel(64);
            let hello = pb::Hello {
                worker_id: "fake".into(),
                hostname: "nowhere".into(),
                arch: "amd64".into(),
                cores: 1,
                protocol_version: PROTOCOL_VERSION,
                version: "0".into(),
                instance: "fake".into(),
            };
            let send = |kind| pb::WorkerMessage { kind: Some(kind) };
            tx.send(send(Out::Hello(hello))).await.unwrap();
            let mut req = tonic::Request::new(ReceiverStream::new(rx));
            req.metadata_mut().insert(
                stampede_proto::TOKEN_METADATA_KEY,
                format!("Bearer {}", super::TOKEN).parse().unwrap(),
            );
            let mut inbound = client.session(req).await.unwrap().into_inner();
            let run = loop {
                match inbound.message().await {
                    Ok(Some(pb::MasterMessage {
                        kind: Some(In::Run(c)),
                    })) => break c.run_id,
                    Ok(Some(_)) => continue,
                    other => panic!("no RunConfig for the fake: {other:?}"),
                }
            };
            // Not even a message kind, and a second Hello: ignored.
            tx.send(pb::WorkerMessage { kind: None }).await.unwrap();
            for r in garbage(&run, victim) {
                tx.send(send(Out::Report(r))).await.unwrap();
            }
            let ending = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match inbound.message().await {
                        Ok(Some(pb::MasterMessage {
                            kind: Some(In::Ack(a)),
                        })) => panic!("the master acknowledged garbage: {a:?}"),
                        Ok(Some(_)) => continue,
                        Ok(None) => return "closed without a status".to_owned(),
                        Err(status) => return status.message().to_owned(),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| "still connected".to_owned());
            drop(tx);
            ending
        })
    }
}
