//! The simulator's Bayeux behaviour over real HTTP on 127.0.0.1.

use std::time::{Duration, Instant};

use crate::support::{acked_delivery, http, post, post_text, sim, Session};
use gws_cometd::bayeux::Reconnect;
use gws_cometd_sim::{SimConfig, SimServer};
use gws_cometd_test_support::within;
use serde_json::json;

#[tokio::test]
async fn handshake_subscribe_publish_and_connect_receives_the_data_exactly() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let http = http();
        let r = post(
            &http,
            &sim.url(),
            json!([{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/json;charset=UTF-8"
        );
        let cookie = r.headers["set-cookie"].to_str().unwrap();
        assert!(cookie.starts_with("BAYEUX_BROWSER="), "{cookie}");
        let hs = r.on("/meta/handshake");
        let id = hs.client_id.clone().unwrap();
        assert!(id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        let advice = hs.advice.unwrap();
        assert_eq!(advice.reconnect, Some(Reconnect::Retry));
        assert_eq!(advice.timeout, Some(2000));
        assert_eq!(advice.interval, Some(0));

        let s = crate::support::Session {
            http,
            url: sim.url(),
            id,
        };
        let sub = s.subscribe("/v2/me/calls").await;
        assert!(sub.is_successful());
        assert!(sim.wait_for_subscribers("/v2/me/calls", 1, Duration::from_secs(1)).await);
        assert_eq!(sim.stats().subscriptions["/v2/me/calls"], 1);

        // The first connect with advice timeout 0 answers at once, even with nothing queued.
        let start = Instant::now();
        assert!(s.receive(Some(0)).await.is_empty());
        assert!(start.elapsed() < Duration::from_secs(1));

        let data = r#"{"a":1,"a":2,"n":1.50}"#;
        assert_eq!(sim.publish_str("/v2/me/calls", data), 1);
        assert_eq!(sim.publish_str("/v2/other", "{}"), 0);
        assert_eq!(
            s.receive(None).await,
            [("/v2/me/calls".to_string(), data.to_string())]
        );
        let stats = sim.stats();
        assert_eq!((stats.handshakes, stats.delivered), (1, 1));
        assert_eq!(stats.sessions, 1);
    })
    .await;
}

#[tokio::test]
async fn a_held_connect_answers_as_soon_as_a_message_is_published() {
    within("the test", Duration::from_secs(10), async {
        let sim = SimServer::start(SimConfig {
            long_poll_timeout: Duration::from_secs(20),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/a").await;
        let held = s.receive(None);
        let publish = async {
            // Published only once the connect is held (it counts as received).
            while sim.stats().connects == 0 {
                tokio::task::yield_now().await;
            }
            sim.publish_str("/a", "1")
        };
        let start = Instant::now();
        let (got, n) = tokio::join!(held, publish);
        assert_eq!(n, 1);
        assert_eq!(got, [("/a".to_string(), "1".to_string())]);
        assert!(start.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn wildcards_deliver_to_one_or_many_segments() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let one = Session::handshake(&sim.url()).await;
        let many = Session::handshake(&sim.url()).await;
        assert!(one.subscribe("/v2/*").await.is_successful());
        assert!(many.subscribe("/v2/**").await.is_successful());
        assert_eq!(sim.publish_str("/v2/me/calls", "1"), 1);
        assert_eq!(sim.publish_str("/v2/x", "2"), 2);
        assert_eq!(sim.publish_str("/v3/x", "3"), 0);
        assert_eq!(one.receive(Some(0)).await, [("/v2/x".into(), "2".into())]);
        assert_eq!(
            many.receive(Some(0)).await,
            [
                ("/v2/me/calls".to_string(), "1".to_string()),
                ("/v2/x".into(), "2".into())
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_session_is_bound_to_its_browser_cookie() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let owner = Session::handshake(&sim.url()).await;
        // The same clientId from a client without the cookie is unknown.
        let stranger = Session {
            http: http(),
            url: sim.url(),
            id: owner.id.clone(),
        };
        let sub = stranger.subscribe("/a").await;
        assert_eq!(sub.successful, Some(false));
        assert_eq!(sub.error.as_deref(), Some("402::Unknown client"));
        assert!(sub.advice.is_none(), "no advice outside connect/handshake");
        let c = stranger.connect(Some(0)).await.on("/meta/connect");
        assert_eq!(c.error.as_deref(), Some("402::Unknown client"));
        assert_eq!(c.advice.unwrap().reconnect, Some(Reconnect::Handshake));
        // The owner, with the cookie, is fine.
        assert!(owner.subscribe("/a").await.is_successful());
        assert_eq!(sim.stats().subscriptions["/a"], 1);
    })
    .await;
}

#[tokio::test]
async fn forgotten_sessions_get_unknown_client_and_handshake_advice() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/a").await;
        let held = s.connect(None);
        let forget = async {
            while sim.stats().connects == 0 {
                tokio::task::yield_now().await;
            }
            sim.forget_sessions();
        };
        let start = Instant::now();
        let (r, ()) = tokio::join!(held, forget);
        // The held connect is released at once with the error.
        assert!(start.elapsed() < Duration::from_secs(1));
        let c = r.on("/meta/connect");
        assert_eq!(c.error.as_deref(), Some("402::Unknown client"));
        let advice = c.advice.unwrap();
        assert_eq!(advice.reconnect, Some(Reconnect::Handshake));
        assert_eq!(advice.interval, Some(0));
        let c = s.connect(Some(0)).await.on("/meta/connect");
        assert_eq!(c.error.as_deref(), Some("402::Unknown client"));
        assert_eq!(sim.stats().sessions, 0);
        assert!(sim.stats().subscriptions.is_empty());
        assert_eq!(sim.publish_str("/a", "1"), 0);
    })
    .await;
}

#[tokio::test]
async fn client_publishes_are_acknowledged_recorded_and_delivered() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/chat/**").await;
        let data = r#"{"text":"hi","k":[1,2],"k":3}"#;
        let body = format!(
            r#"[{{"channel":"/chat/room","clientId":"{}","id":"2","data":{data}}}]"#,
            s.id
        );
        let r = post_text(&s.http, &sim.url(), body).await;
        let ack = r.on("/chat/room");
        assert!(ack.is_successful());
        assert_eq!(ack.id.as_deref(), Some("2"));
        assert!(ack.data.is_none());
        assert!(
            sim.wait_for_client_publishes(1, Duration::from_secs(1))
                .await
        );
        assert_eq!(
            sim.published_by_clients(),
            [("/chat/room".to_string(), data.to_string())]
        );
        // The publisher is subscribed, so it receives its own message.
        assert_eq!(
            s.receive(Some(0)).await,
            [("/chat/room".to_string(), data.to_string())]
        );
    })
    .await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_disconnect_ends_the_session() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/a").await;
        let r = s
            .send(json!({"channel":"/meta/unsubscribe","subscription":"/a"}))
            .await;
        assert!(r.on("/meta/unsubscribe").is_successful());
        assert_eq!(sim.publish_str("/a", "1"), 0);
        assert!(s.receive(Some(0)).await.is_empty());
        let r = s.send(json!({"channel":"/meta/disconnect"})).await;
        assert!(r.on("/meta/disconnect").is_successful());
        let stats = sim.stats();
        assert_eq!((stats.sessions, stats.disconnects), (0, 1));
    })
    .await;
}

#[tokio::test]
async fn an_array_subscription_subscribes_every_channel() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        let r = s
            .send(json!({"channel":"/meta/subscribe","subscription":["/a","/b"]}))
            .await;
        assert!(r.on("/meta/subscribe").is_successful());
        let subs = sim.stats().subscriptions;
        assert_eq!((subs["/a"], subs["/b"]), (1, 1));
        // Subscribing again is counted as a request but not as a second subscription.
        s.subscribe("/a").await;
        let stats = sim.stats();
        assert_eq!(stats.subscriptions["/a"], 1);
        assert_eq!(stats.subscribe_requests["/a"], 2);
    })
    .await;
}

#[tokio::test]
async fn every_path_below_the_bases_is_served_and_a_single_object_is_accepted() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let base = format!("http://{}", sim.addr());
        for path in [
            "/cometd/handshake",
            "/api/v2/notifications",
            "/api/v2/notifications/handshake",
            "/cometd/any/thing",
        ] {
            let r = post(
                &http(),
                &format!("{base}{path}"),
                json!({"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}),
            )
            .await;
            assert!(r.on("/meta/handshake").is_successful(), "{path}");
        }
        assert!(sim.gws_url().ends_with("/api/v2/notifications"));
        let s = Session::handshake(&format!("{base}/api/v2/notifications/handshake")).await;
        let s = Session {
            url: format!("{base}/api/v2/notifications/connect"),
            ..s
        };
        assert!(s.receive(Some(0)).await.is_empty());
        let r = post(&http(), &format!("{base}/cometdx"), json!([])).await;
        assert_eq!(r.status, 404);
        assert_eq!(sim.stats().handshakes, 5);
    })
    .await;
}

#[tokio::test]
async fn a_request_that_is_not_a_bayeux_batch_is_a_bad_request() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let r = post(&http(), &sim.url(), json!([{"id":"1"}])).await;
        assert_eq!(r.status, 400);
        let get = http().get(sim.url()).send().await.unwrap();
        assert_eq!(get.status(), 405);
    })
    .await;
}

#[tokio::test]
async fn sessions_without_connects_expire_after_max_interval() {
    within("the test", Duration::from_secs(10), async {
        let sim = SimServer::start(SimConfig {
            max_interval: Duration::from_millis(200),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let s = Session::handshake(&sim.url()).await;
        assert_eq!(sim.stats().sessions, 1);
        let start = Instant::now();
        assert!(sim.wait_for_sessions(0, Duration::from_secs(5)).await);
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(sim.stats().expired, 1);
        let c = s.connect(Some(0)).await.on("/meta/connect");
        assert_eq!(c.error.as_deref(), Some("402::Unknown client"));
    })
    .await;
}

#[tokio::test]
async fn invalid_json_is_not_published() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let s = Session::handshake(&sim.url()).await;
        s.subscribe("/a").await;
        assert_eq!(sim.publish_str("/a", "{not json"), 0);
        assert_eq!(sim.stats().published, 0);
    })
    .await;
}

#[tokio::test]
async fn dropping_the_server_closes_the_listener() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let addr = sim.addr();
        drop(sim);
        // The listener task is aborted; once it has run, connections are refused.
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(refused, "the port still accepts connections");
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_answers_held_connects() {
    within("the test", Duration::from_secs(10), async {
        let sim = SimServer::start(SimConfig {
            long_poll_timeout: Duration::from_secs(20),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let s = Session::handshake(&sim.url()).await;
        let held = s.receive(None);
        let stop = async {
            while sim.stats().connects == 0 {
                tokio::task::yield_now().await;
            }
            sim.shutdown().await;
        };
        let start = Instant::now();
        let (got, ()) = tokio::join!(held, stop);
        assert!(got.is_empty());
        assert!(start.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn the_ack_extension_numbers_batches_per_session_and_forgets_acknowledged_ones() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        let (s, hs) = Session::handshake_with(&sim.url(), Some(json!({"ack": true}))).await;
        assert_eq!(hs.ext.as_ref().map(|e| e.get()), Some(r#"{"ack":true}"#));
        assert!(s.subscribe("/a").await.is_successful());
        let (none, b1) = acked_delivery(&s.try_connect_ack(0, 0).await.unwrap());
        assert_eq!((none.len(), b1), (0, Some(1)));
        sim.publish_str("/a", "1");
        sim.publish_str("/a", "2");
        let (data, b2) = acked_delivery(&s.try_connect_ack(1, 5000).await.unwrap());
        assert_eq!((data, b2), (vec!["1".to_owned(), "2".to_owned()], Some(2)));
        // Batch 2 acknowledged: the connect is held (nothing to send) until a publish.
        let held = s.try_connect_ack(2, 5000);
        let publish = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sim.publish_str("/a", "3");
        };
        let (r, ()) = tokio::join!(held, publish);
        let (data, b3) = acked_delivery(&r.unwrap());
        assert_eq!((data, b3), (vec!["3".to_owned()], Some(3)));
        assert_eq!(sim.stats().redelivered, 0);

        // Unacknowledged when the session ends: a new session starts fresh.
        sim.publish_str("/a", "4");
        let (fresh, _) = Session::handshake_with(&sim.url(), Some(json!({"ack": true}))).await;
        assert!(fresh.subscribe("/a").await.is_successful());
        let (data, batch) = acked_delivery(&fresh.try_connect_ack(0, 300).await.unwrap());
        assert_eq!((data.len(), batch), (0, Some(1)), "{data:?}");
        // The old session still has its own unacknowledged message.
        let (data, _) = acked_delivery(&s.try_connect_ack(3, 300).await.unwrap());
        assert_eq!(data, ["4"]);
    })
    .await;
}

#[tokio::test]
async fn clients_that_do_not_ask_or_a_server_without_the_extension_get_no_acks() {
    within("the test", Duration::from_secs(10), async {
        let sim = sim().await;
        for ext in [
            None,
            Some(json!({"ack": false})),
            Some(json!({"ack": "true"})),
        ] {
            let (s, hs) = Session::handshake_with(&sim.url(), ext.clone()).await;
            assert!(hs.ext.is_none(), "{ext:?}: {hs:?}");
            let (_, batch) = acked_delivery(&s.connect(Some(0)).await);
            assert_eq!(batch, None, "{ext:?}");
        }
        let off = SimServer::start(SimConfig {
            ack_extension: false,
            long_poll_timeout: Duration::from_secs(2),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let (s, hs) = Session::handshake_with(&off.url(), Some(json!({"ack": true}))).await;
        assert!(hs.ext.is_none(), "{hs:?}");
        let (_, batch) = acked_delivery(&s.try_connect_ack(0, 0).await.unwrap());
        assert_eq!(batch, None);
    })
    .await;
}
