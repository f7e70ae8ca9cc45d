//! Honest overload (503 with Retry-After, 504 past the deadline) and the graceful drain, over
//! real HTTP. No timing asserts: each test waits, via /metrics, until the slow request is
//! actually running before acting.

mod common;

use std::time::Duration;

use common::{Client, bounded, config, get, slow_dim, start, wait_for_in_flight};
use http::StatusCode;
use stampede_workload_server::ServerConfig;

#[tokio::test]
async fn with_the_slot_busy_and_no_queue_requests_are_refused_at_once() {
    bounded(async {
        let server = start(ServerConfig {
            max_inflight: 1,
            max_queue: 0,
            ..config()
        })
        .await;
        let addr = server.addr;
        let dim = slow_dim(addr).await;
        let busy = tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await });
        wait_for_in_flight(addr, 1.0).await;

        let refused: Vec<_> = (0..6)
            .map(|_| tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await }))
            .collect();
        for request in refused {
            let reply = request.await.unwrap();
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
            assert_eq!(reply.header("retry-after"), "1");
            assert_eq!(reply.header("x-arch"), "arm64");
        }
        // Health checks are not behind the limiter.
        assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);

        let reply = busy.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json()["dim"], dim);
        // The slot is free again.
        assert_eq!(get(addr, "/runtime?dim=3").await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn waiting_past_the_deadline_gets_504() {
    bounded(async {
        let server = start(ServerConfig {
            max_inflight: 1,
            max_queue: 4,
            deadline: Duration::from_millis(50),
            ..config()
        })
        .await;
        let addr = server.addr;
        let dim = slow_dim(addr).await;
        let busy = tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await });
        wait_for_in_flight(addr, 1.0).await;

        let reply = get(addr, "/runtime?dim=2").await;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{reply:?}");
        assert!(reply.body.contains("deadline"));

        assert_eq!(busy.await.unwrap().status, StatusCode::OK);
        let text = get(addr, "/metrics").await.body;
        assert_eq!(
            common::sample(
                &text,
                r#"stampede_workload_requests_total{route="/runtime",status="504"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            common::sample(&text, "stampede_workload_queue_depth"),
            Some(0.0)
        );
    })
    .await;
}

#[tokio::test]
async fn a_queued_request_is_served_when_the_slot_frees() {
    bounded(async {
        let server = start(ServerConfig {
            max_inflight: 1,
            max_queue: 1,
            // Not what this test is about: long enough for any machine.
            deadline: Duration::from_secs(100),
            ..config()
        })
        .await;
        let addr = server.addr;
        let dim = slow_dim(addr).await;
        let busy = tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await });
        wait_for_in_flight(addr, 1.0).await;
        let queued = tokio::spawn(async move { get(addr, "/runtime?dim=5").await });
        // Wait until it is in the queue, then the queue (of one) is full.
        loop {
            let text = get(addr, "/metrics").await.body;
            if common::sample(&text, "stampede_workload_queue_depth") == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            get(addr, "/runtime?dim=5").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(busy.await.unwrap().status, StatusCode::OK);
        assert_eq!(queued.await.unwrap().status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    bounded(async {
        let mut server = start(config()).await;
        let addr = server.addr;
        let dim = slow_dim(addr).await;
        let mut idle = Client::connect(addr).await;
        assert_eq!(idle.get("/readyz").await.status, StatusCode::OK);
        let busy = tokio::spawn(async move { get(addr, &format!("/runtime?dim={dim}")).await });
        wait_for_in_flight(addr, 1.0).await;

        server.shut_down();
        let reply = busy.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json()["dim"], dim);
        server.finished().await.unwrap();
        // Stopped: nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}
