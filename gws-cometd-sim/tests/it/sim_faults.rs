//! Each simulator fault, observed over real HTTP on 127.0.0.1.

use std::time::{Duration, Instant};

use crate::support::{acked_delivery, http, post, sim, Session};
use gws_cometd::bayeux::{Message, Reconnect};
use gws_cometd_sim::Fault;
use gws_cometd_test_support::within;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn handshake_body() -> serde_json::Value {
    json!([{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}])
}

#[tokio::test]
async fn http_status_applies_until_cleared_and_once_only_to_the_next_request() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::HttpStatus(503));
        for _ in 0..2 {
            let r = post(&http(), &sim.url(), handshake_body()).await;
            assert_eq!(r.status, 503);
        }
        assert_eq!(
            sim.stats().handshakes,
            0,
            "a refused request is not processed"
        );
        sim.clear_faults();
        sim.set_fault(Fault::HttpStatusOnce(500));
        assert_eq!(
            post(&http(), &sim.url(), handshake_body()).await.status,
            500
        );
        let r = post(&http(), &sim.url(), handshake_body()).await;
        assert_eq!(r.status, 200);
        assert!(r.on("/meta/handshake").is_successful());
        assert_eq!(sim.stats().requests, 4);
    })
    .await;
}

#[tokio::test]
async fn malformed_replies_are_not_json() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::Malformed);
        let r = post(&http(), &sim.url(), handshake_body()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"[{"channel":"#);
        assert!(Message::parse_batch(&r.body).is_err());
        assert_eq!(sim.stats().handshakes, 0);
    })
    .await;
}

#[tokio::test]
async fn truncated_replies_are_the_first_half_of_a_valid_reply() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::Truncated);
        let r = post(&http(), &sim.url(), handshake_body()).await;
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with(br#"[{"channel":"/meta/handshake""#));
        assert!(Message::parse_batch(&r.body).is_err());
        sim.clear_faults();
        let r = post(&http(), &sim.url(), handshake_body()).await;
        assert!(r.on("/meta/handshake").is_successful());
    })
    .await;
}

#[tokio::test]
async fn held_requests_are_never_answered_so_the_client_deadline_fires() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::Hold);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let start = Instant::now();
        let err = client
            .post(sim.url())
            .body(handshake_body().to_string())
            .send()
            .await
            .expect_err("a held request has no reply");
        assert!(err.is_timeout(), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(300));
        sim.clear_faults();
        let r = post(&http(), &sim.url(), handshake_body()).await;
        assert!(r.on("/meta/handshake").is_successful());
    })
    .await;
}

/// One raw HTTP/1.1 exchange; returns (head, body) after reading until the peer closes.
async fn raw_exchange(addr: std::net::SocketAddr, body: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /cometd HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    // Read to EOF: this only returns if the server closes the connection.
    tcp.read_to_end(&mut all).await.unwrap();
    let text = String::from_utf8(all).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn close_after_reply_closes_the_connection_without_saying_so() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::CloseAfterReply);
        let body = handshake_body().to_string();
        let (head, reply) = raw_exchange(sim.addr(), &body).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert!(Message::parse_batch(reply.as_bytes()).unwrap()[0].is_successful());
        // A fresh connection works, and is closed again.
        let (_, reply) = raw_exchange(sim.addr(), &body).await;
        assert!(Message::parse_batch(reply.as_bytes()).unwrap()[0].is_successful());
        // A pooled client sees every reply although each connection dies after it.
        let http = http();
        for _ in 0..3 {
            let r = post(&http, &sim.url(), handshake_body()).await;
            assert!(r.on("/meta/handshake").is_successful());
        }
        assert_eq!(sim.stats().handshakes, 5);
    })
    .await;
}

#[tokio::test]
async fn without_the_fault_connections_stay_open() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        let body = handshake_body().to_string();
        let req = format!(
            "POST /cometd HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0);
        // Nothing more arrives and the connection is not closed within a short while.
        let more = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await;
        assert!(
            more.is_err(),
            "the connection was closed or sent more: {more:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn slow_bodies_arrive_complete_in_pieces() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/a").await;
        let data = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
        sim.publish_str("/a", &data);
        sim.set_fault(Fault::SlowBody(Duration::from_millis(20)));
        let start = Instant::now();
        let got = s.receive(Some(0)).await;
        // 16 pieces, 15 pauses of 20 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(got, [("/a".to_string(), data)]);
    })
    .await;
}

#[tokio::test]
async fn reset_mid_body_breaks_the_reply() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        sim.set_fault(Fault::ResetMidBody);
        let resp = http()
            .post(sim.url())
            .body(handshake_body().to_string())
            .send()
            .await;
        let failed = match resp {
            Err(_) => true,
            Ok(r) => r.bytes().await.is_err(),
        };
        assert!(failed, "a reply cut off mid-body must fail to read");
    })
    .await;
}

#[tokio::test]
async fn advice_none_refuses_connects() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        sim.set_fault(Fault::AdviceNone);
        let c = s.connect(None).await.on("/meta/connect");
        assert_eq!(c.successful, Some(false));
        assert_eq!(c.advice.unwrap().reconnect, Some(Reconnect::None));
        sim.clear_faults();
        assert!(s.receive(Some(0)).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn denied_subscriptions_fail_with_403_and_subscribe_nothing() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        sim.set_fault(Fault::DenySubscribe("/secret".into()));
        let sub = s.subscribe("/secret").await;
        assert_eq!(sub.successful, Some(false));
        assert_eq!(
            sub.error.as_deref(),
            Some("403:/secret:Subscription denied")
        );
        assert!(s.subscribe("/open").await.is_successful());
        let subs = sim.stats().subscriptions;
        assert!(!subs.contains_key("/secret"));
        assert_eq!(subs["/open"], 1);
    })
    .await;
}

/// A session of the acknowledged-messages extension subscribed to `/a`, past its first
/// connect; returns it and the batch that connect closed.
async fn acked_session(sim: &gws_cometd_sim::SimServer) -> (Session, u64) {
    let (s, hs) = Session::handshake_with(&sim.url(), Some(json!({"ack": true}))).await;
    assert_eq!(hs.ext.as_ref().map(|e| e.get()), Some(r#"{"ack":true}"#));
    assert!(s.subscribe("/a").await.is_successful());
    let (data, batch) = acked_delivery(&s.try_connect_ack(0, 0).await.unwrap());
    assert!(data.is_empty());
    (s, batch.expect("connect replies carry the batch"))
}

/// Cuts the next connect reply with `fault` and checks that the following connect, which
/// acknowledges only what arrived before, brings every message of the cut reply again.
async fn a_cut_reply_is_redelivered_in_full(fault: Fault) {
    let sim = sim().await;
    let (s, first) = acked_session(&sim).await;
    for n in 1..=3 {
        assert_eq!(sim.publish_str("/a", &format!(r#"{{"n":{n}}}"#)), 1);
    }
    sim.set_fault(fault.clone());
    let cut = s.try_connect_ack(first, 0).await;
    let lost = match cut {
        Err(_) => true,
        Ok(r) => gws_cometd::bayeux::Message::parse_batch(&r.body).is_err(),
    };
    assert!(lost, "{fault:?} breaks the reply");
    sim.clear_faults();
    assert_eq!(sim.publish_str("/a", r#"{"n":4}"#), 1);

    // Prompt redelivery: answered at once, not after the long-poll timeout.
    let started = Instant::now();
    let (data, batch) = acked_delivery(&s.try_connect_ack(first, 10_000).await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        data,
        [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#]
    );
    let batch = batch.unwrap();
    assert!(
        batch > first + 1,
        "the cut reply closed a batch of its own: {batch}"
    );
    assert_eq!(sim.stats().redelivered, 3);

    // Acknowledged: not delivered again.
    let (data, _) = acked_delivery(&s.try_connect_ack(batch, 300).await.unwrap());
    assert!(data.is_empty(), "{data:?}");
}

#[tokio::test]
async fn with_acks_a_connect_reply_reset_mid_body_is_redelivered_in_full() {
    within(
        "the test",
        Duration::from_secs(10),
        a_cut_reply_is_redelivered_in_full(Fault::ResetMidBody),
    )
    .await;
}

#[tokio::test]
async fn with_acks_a_truncated_connect_reply_is_redelivered_in_full() {
    within(
        "the test",
        Duration::from_secs(10),
        a_cut_reply_is_redelivered_in_full(Fault::Truncated),
    )
    .await;
}

#[tokio::test]
async fn without_acks_a_cut_connect_reply_is_lost_as_before() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        assert!(s.subscribe("/a").await.is_successful());
        s.receive(Some(0)).await;
        sim.publish_str("/a", r#"{"n":1}"#);
        sim.set_fault(Fault::Truncated);
        let r = s.connect(Some(0)).await;
        assert!(gws_cometd::bayeux::Message::parse_batch(&r.body).is_err());
        sim.clear_faults();
        assert!(
            s.receive(Some(300)).await.is_empty(),
            "gone with the cut reply"
        );
        assert_eq!(sim.stats().redelivered, 0);
    })
    .await;
}

#[tokio::test]
async fn a_held_route_is_accepted_and_never_answered_while_others_are_served() {
    use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
    within("the test", Duration::from_secs(10), async {
        let mut config = GwsServerConfig::new("agent", "pw");
        config.scenario = Some(Vec::new());
        let server = GwsSimServer::start(config).await.unwrap();
        server.bayeux().set_fault(Fault::HoldRequests {
            method: "GET".into(),
            path: "/api/v2/me".into(),
        });
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let me = format!("{}/api/v2/me", server.base_url());
        let started = Instant::now();
        let err = client
            .get(&me)
            .basic_auth("agent", Some("pw"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(500));
        // Other routes, and other methods on the same path, are answered.
        let calls = client
            .get(format!("{me}/calls"))
            .basic_auth("agent", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(calls.status(), 200);
        let post = client.post(&me).body("{}").send().await.unwrap();
        assert_eq!(post.status(), 403, "no CSRF token: refused, but answered");
        server.bayeux().clear_faults();
        let me = client.get(&me).send().await.unwrap();
        assert_eq!(me.status(), 200);
    })
    .await;
}
