//! The GWS simulator server over real HTTP on 127.0.0.1: login, the authenticated CometD
//! endpoint, per-user calls and notifications, scenarios, expiry, shutdown, and `serve`.

use std::collections::BTreeSet;
use std::time::Duration;

use gws_cometd_sim::gws::{GwsSim, GwsSimConfig, CALLS_CHANNEL, CSRF_HEADER, DEVICES_CHANNEL};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use gws_cometd_test_support::within;
use serde_json::{json, Value};

const USER: &str = "agent";
const JSON: &str = "application/json";
const PASSWORD: &str = "pa55-w0rd";
const OTHER: &str = "second";
const OTHER_PASSWORD: &str = "s3cond-pw";

fn config(scenario: Option<Vec<gws_cometd_sim::gws::ScenarioStep>>) -> GwsServerConfig {
    GwsServerConfig {
        gws: GwsSimConfig::new(USER, PASSWORD).with_user(OTHER, OTHER_PASSWORD),
        scenario,
        ..GwsServerConfig::new(USER, PASSWORD)
    }
}

/// The body of `resp` as JSON of type `T`.
async fn json_of<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> T {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One GWS user's HTTP client: cookie jar, CSRF token, Bayeux client id.
struct Agent {
    http: reqwest::Client,
    base: String,
    csrf: Option<String>,
    client_id: Option<String>,
}

impl Agent {
    async fn login(server: &GwsSimServer, user: &str, password: &str) -> Agent {
        let http = http();
        let base = server.base_url();
        let resp = http
            .get(format!("{base}/api/v2/me"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let set_cookie = resp.headers()["set-cookie"].to_str().unwrap();
        assert!(set_cookie.starts_with("JSESSIONID="), "{set_cookie}");
        assert_eq!(resp.headers()["x-csrf-header"], CSRF_HEADER);
        let csrf = resp.headers()[CSRF_HEADER].to_str().unwrap().to_owned();
        assert!(!csrf.is_empty());
        Agent {
            http,
            base,
            csrf: Some(csrf),
            client_id: None,
        }
    }

    async fn cometd(&self, batch: Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/api/v2/notifications", self.base))
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(serde_json::to_string(&batch).unwrap());
        if let Some(token) = &self.csrf {
            req = req.header(CSRF_HEADER, token);
        }
        req.send().await.unwrap()
    }

    async fn handshake(&mut self) {
        let resp = self
            .cometd(json!([{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]))
            .await;
        assert_eq!(resp.status(), 200);
        let reply: Value = json_of(resp).await;
        assert_eq!(reply[0]["successful"], true, "{reply}");
        self.client_id = Some(reply[0]["clientId"].as_str().unwrap().to_owned());
    }

    async fn subscribe(&self, channel: &str) {
        let resp = self
            .cometd(json!([{"channel":"/meta/subscribe","clientId":self.client_id,"subscription":channel,"id":"2"}]))
            .await;
        let reply: Value = json_of(resp).await;
        assert_eq!(reply[0]["successful"], true, "{reply}");
    }

    /// One `/meta/connect` held at most `timeout_ms`; returns the HTTP response.
    async fn connect(&self, timeout_ms: u64) -> reqwest::Response {
        self.cometd(json!([{"channel":"/meta/connect","clientId":self.client_id,"connectionType":"long-polling","advice":{"timeout":timeout_ms}}]))
            .await
    }

    /// Connects until `n` data messages arrived; returns their `data`.
    async fn notifications(&self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let resp = self.connect(1000).await;
            assert_eq!(resp.status(), 200);
            let reply: Vec<Value> = json_of(resp).await;
            for m in reply {
                if m["channel"] == "/meta/connect" {
                    assert_eq!(m["successful"], true, "{m}");
                } else {
                    assert_eq!(m["channel"], CALLS_CHANNEL);
                    out.push(m["data"].clone());
                }
            }
        }
        out
    }

    async fn calls(&self) -> String {
        self.http
            .get(format!("{}/api/v2/me/calls", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_notification_endpoint_needs_the_http_session_and_its_csrf_token() {
    let server = GwsSimServer::start(config(Some(vec![]))).await.unwrap();
    within("the test", Duration::from_secs(10), async {
        let mut agent = Agent::login(&server, USER, PASSWORD).await;
        let handshake = json!([{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]);

        // No JSESSIONID: 401.
        let resp = http()
            .post(format!("{}/api/v2/notifications/handshake", server.base_url()))
            .header(CSRF_HEADER, agent.csrf.clone().unwrap())
            .header(reqwest::header::CONTENT_TYPE, JSON).body(serde_json::to_string(&handshake).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);

        // The session cookie without the CSRF token: 403.
        let token = agent.csrf.take();
        let resp = agent.cometd(handshake.clone()).await;
        assert_eq!(resp.status(), 403);
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"statusCode":3,"statusMessage":"Missing or invalid Csrf token"}"#
        );
        assert_eq!(server.bayeux().stats().handshakes, 0);

        // Both: a Bayeux session.
        agent.csrf = token;
        agent.handshake().await;
        assert_eq!(server.bayeux().stats().handshakes, 1);

        // The plain endpoint stays open.
        let resp = http()
            .post(format!("{}/cometd", server.base_url()))
            .header(reqwest::header::CONTENT_TYPE, JSON).body(serde_json::to_string(&handshake).unwrap())
            .send()
            .await
            .unwrap();
        let reply: Value = json_of(resp).await;
        assert_eq!(reply[0]["successful"], true);
    })
    .await;
}

#[tokio::test]
async fn each_user_gets_the_scenario_once_and_sees_only_their_own_call() {
    let server = GwsSimServer::start(config(Some(GwsSim::one_call_scenario())))
        .await
        .unwrap();
    within("the test", Duration::from_secs(15), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        let mut b = Agent::login(&server, OTHER, OTHER_PASSWORD).await;
        a.handshake().await;
        b.handshake().await;
        a.subscribe(CALLS_CHANNEL).await;
        b.subscribe(CALLS_CHANNEL).await;

        let (na, nb) = tokio::join!(a.notifications(3), b.notifications(3));
        let summary = |notes: &[Value]| -> Vec<(String, String)> {
            notes
                .iter()
                .map(|n| {
                    (
                        n["notificationType"].as_str().unwrap().to_owned(),
                        n["call"]["state"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let expected = [
            ("StatusChange", "Ringing"),
            ("StatusChange", "Established"),
            ("AttachedDataChanged", "Established"),
        ]
        .map(|(t, s)| (t.to_owned(), s.to_owned()));
        assert_eq!(summary(&na), expected);
        assert_eq!(summary(&nb), expected);
        assert_eq!(na[2]["call"]["userData"]["AccountNumber"], "12345");
        let id_a = na[0]["call"]["id"].as_str().unwrap().to_owned();
        let id_b = nb[0]["call"]["id"].as_str().unwrap().to_owned();
        assert_ne!(id_a, id_b);
        assert!(na.iter().all(|n| n["call"]["id"] == id_a.as_str()));
        assert!(nb.iter().all(|n| n["call"]["id"] == id_b.as_str()));
        // The calls name the real server.
        let uri = na[0]["call"]["uri"].as_str().unwrap();
        assert!(uri.starts_with(&server.base_url()), "{uri}");

        // REST shows each user only their call.
        let (ca, cb) = (a.calls().await, b.calls().await);
        assert!(ca.contains(&id_a) && !ca.contains(&id_b), "{ca}");
        assert!(cb.contains(&id_b) && !cb.contains(&id_a), "{cb}");
        assert_eq!(server.gws().call_ids_for(USER), vec![id_a]);

        // A second session of the same user does not start the scenario again.
        let mut again = Agent::login(&server, USER, PASSWORD).await;
        again.handshake().await;
        again.subscribe(CALLS_CHANNEL).await;
        let resp = again.connect(700).await;
        let reply: Vec<Value> = json_of(resp).await;
        assert_eq!(reply.len(), 1, "only the connect reply: {reply:?}");
        assert_eq!(server.gws().call_ids().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn with_scenario_per_session_a_new_session_of_the_same_user_sees_the_scenario_again() {
    let server = GwsSimServer::start(GwsServerConfig {
        scenario_per_session: true,
        ..config(Some(GwsSim::one_call_scenario()))
    })
    .await
    .unwrap();
    within("the test", Duration::from_secs(15), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        a.handshake().await;
        a.subscribe(CALLS_CHANNEL).await;
        let first = a.notifications(3).await;
        assert_eq!(first[0]["call"]["state"], "Ringing");

        // The service under test is restarted: a new login, a new session, the scenario
        // from its start, with a call of its own.
        let mut again = Agent::login(&server, USER, PASSWORD).await;
        again.handshake().await;
        again.subscribe(CALLS_CHANNEL).await;
        let second = again.notifications(3).await;
        assert_eq!(second[0]["call"]["state"], "Ringing");
        assert_eq!(second[2]["call"]["userData"]["AccountNumber"], "12345");
        assert_ne!(second[0]["call"]["id"], first[0]["call"]["id"]);
        assert_eq!(server.gws().call_ids_for(USER).len(), 2);
    })
    .await;
}

#[tokio::test]
async fn the_living_contact_center_runs_per_user_and_a_client_that_comes_later_sees_new_calls() {
    let server = GwsSimServer::start(GwsServerConfig {
        seed: Some(11),
        ..config(None)
    })
    .await
    .unwrap();
    assert_eq!(server.seed(), Some(11));
    within("the test", Duration::from_secs(20), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        let mut b = Agent::login(&server, OTHER, OTHER_PASSWORD).await;
        a.handshake().await;
        b.handshake().await;
        a.subscribe(CALLS_CHANNEL).await;
        b.subscribe(CALLS_CHANNEL).await;
        let (na, nb) = tokio::join!(a.notifications(3), b.notifications(3));
        let ids = |notes: &[Value], number: &str| -> BTreeSet<String> {
            notes
                .iter()
                .map(|n| {
                    assert_eq!(n["phoneNumber"], number, "{n}");
                    n["call"]["id"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        let (ia, ib) = (ids(&na, "5001"), ids(&nb, "5002"));
        assert!(ia.is_disjoint(&ib));
        assert_eq!(
            na[0]["call"]["state"], "Ringing",
            "the first call is inbound"
        );

        // A second client of the same user, long after the start, still sees calls arrive.
        let mut later = Agent::login(&server, USER, PASSWORD).await;
        later.handshake().await;
        later.subscribe(CALLS_CHANNEL).await;
        let known: BTreeSet<String> = server.gws().call_ids_for(USER).into_iter().collect();
        loop {
            let n = later.notifications(1).await.remove(0);
            let id = n["call"]["id"].as_str().unwrap();
            assert_eq!(n["phoneNumber"], "5001");
            if !known.contains(id) && !ia.contains(id) {
                assert!(matches!(
                    n["call"]["state"].as_str(),
                    Some("Ringing" | "Dialing")
                ));
                break;
            }
        }
    })
    .await;
    let quiet = GwsSimServer::start(config(Some(vec![]))).await.unwrap();
    assert_eq!(quiet.seed(), None, "no center, no seed");
}

#[tokio::test]
async fn notifications_and_operations_stay_with_the_calls_owner() {
    let server = GwsSimServer::start(config(Some(vec![]))).await.unwrap();
    within("the test", Duration::from_secs(10), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        let mut b = Agent::login(&server, OTHER, OTHER_PASSWORD).await;
        a.handshake().await;
        b.handshake().await;
        a.subscribe("/v2/me/*").await;
        b.subscribe(CALLS_CHANNEL).await;
        assert!(
            server
                .bayeux()
                .wait_for_subscribers(CALLS_CHANNEL, 1, Duration::from_secs(1))
                .await
        );
        assert!(
            server.gws().call_ids().is_empty(),
            "an empty scenario rings nothing"
        );

        let mine = server.gws().ring_inbound("5115", "5001");
        let theirs = server
            .gws()
            .ring_inbound_for(OTHER, "6116", "6001")
            .unwrap();
        let na = a.notifications(1).await;
        let nb = b.notifications(1).await;
        assert_eq!(na[0]["call"]["id"], mine.as_str());
        assert_eq!(nb[0]["call"]["id"], theirs.as_str());

        // The other user's call is unknown to this user.
        let url = format!("{}/api/v2/me/calls/{theirs}", server.base_url());
        let resp = a
            .http
            .post(&url)
            .header(CSRF_HEADER, a.csrf.clone().unwrap())
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(json!({"operationName":"AttachUserData","userData":{"K":"v"}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        assert!(resp.text().await.unwrap().contains(r#""statusCode":6"#));
        assert!(!server
            .gws()
            .call_json(&theirs)
            .unwrap()
            .contains("userData"));

        // The owner's operation notifies the owner only.
        let resp = b
            .http
            .post(&url)
            .header(CSRF_HEADER, b.csrf.clone().unwrap())
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(json!({"operationName":"AttachUserData","userData":{"K":"v"}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let nb = b.notifications(1).await;
        assert_eq!(nb[0]["notificationType"], "AttachedDataChanged");
        let reply: Vec<Value> = json_of(a.connect(300).await).await;
        assert_eq!(reply.len(), 1, "nothing for the other user: {reply:?}");
    })
    .await;
}

impl Agent {
    async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(CSRF_HEADER, self.csrf.clone().unwrap())
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Connects until a data message arrives; returns its channel and data.
    async fn next_message(&self) -> (String, Value) {
        loop {
            let reply: Vec<Value> = json_of(self.connect(1000).await).await;
            if let Some(m) = reply.iter().find(|m| m["channel"] != "/meta/connect") {
                return (m["channel"].as_str().unwrap().to_owned(), m["data"].clone());
            }
        }
    }
}

#[tokio::test]
async fn agent_state_device_and_error_notifications_reach_the_user_over_cometd() {
    let server = GwsSimServer::start(config(Some(vec![]))).await.unwrap();
    within("the test", Duration::from_secs(10), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        a.handshake().await;
        a.subscribe("/v2/me/*").await;
        let devices: Value = json_of(
            a.http
                .get(format!("{}/api/v2/me/devices?fields=*", a.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(devices["devices"][0]["userState"]["state"], "NotReady");

        let resp = a
            .post_json(
                "/api/v2/me/channels/voice",
                json!({"operationName":"Ready"}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let (channel, data) = a.next_message().await;
        assert_eq!(channel, DEVICES_CHANNEL);
        assert_eq!(data["messageType"], "DeviceStateChangeMessage");
        assert_eq!(data["devices"][0]["userState"]["state"], "Ready");
        assert_eq!(data["devices"][0]["phoneNumber"], "5001");

        assert!(server.gws().publish_error_message(USER, 71, "Invalid DN"));
        let (channel, data) = a.next_message().await;
        assert_eq!(channel, CALLS_CHANNEL);
        assert_eq!(
            data,
            json!({"messageType":"ErrorMessage","errorCode":71,"errorMessage":"Invalid DN"})
        );

        // A passive client never sent these; this one now does.
        let stats = server.gws().stats();
        assert_eq!(stats.operation("StartContactCenterSession"), 0);
        assert_eq!(stats.operation("EndContactCenterSession"), 0);
        let resp = a
            .post_json(
                "/api/v2/me",
                json!({"operationName":"StartContactCenterSession","channels":["voice"]}),
            )
            .await;
        assert_eq!(resp.text().await.unwrap(), r#"{"statusCode":0}"#);
        assert!(server.gws().is_logged_in(USER));
        let resp = a
            .post_json(
                "/api/v2/me",
                json!({"operationName":"EndContactCenterSession"}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(server.gws().stats().operation("EndContactCenterSession"), 1);
        // The HTTP session is over: CometD with it is refused.
        assert_eq!(a.connect(0).await.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn an_expired_http_session_gets_401_on_cometd_until_the_next_login() {
    let server = GwsSimServer::start(config(Some(vec![]))).await.unwrap();
    within("the test", Duration::from_secs(10), async {
        let mut a = Agent::login(&server, USER, PASSWORD).await;
        a.handshake().await;
        a.subscribe(CALLS_CHANNEL).await;
        assert_eq!(a.connect(0).await.status(), 200);

        server.gws().expire_http_sessions();
        assert_eq!(a.connect(0).await.status(), 401);

        // Logging in again on the same client (same jar) revives the Bayeux session.
        let resp = a
            .http
            .get(format!("{}/api/v2/me", a.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        a.csrf = Some(resp.headers()[CSRF_HEADER].to_str().unwrap().to_owned());
        let resp = a.connect(0).await;
        assert_eq!(resp.status(), 200);
        let reply: Vec<Value> = json_of(resp).await;
        assert_eq!(reply[0]["successful"], true, "{reply:?}");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_server_closes_its_port() {
    let server = GwsSimServer::start(config(None)).await.unwrap();
    let addr = server.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(server);
    // Aborted tasks release the listener on their next poll: wait for it, bounded.
    within("the port to close", Duration::from_secs(5), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let server = GwsSimServer::start(config(None)).await.unwrap();
    let addr = server.addr();
    within("the shutdown", Duration::from_secs(10), server.shutdown()).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn debug_output_never_shows_passwords() {
    let config = config(Some(vec![]));
    assert!(!format!("{config:?}").contains(PASSWORD));
    let server = GwsSimServer::start(config).await.unwrap();
    let shown = format!("{server:?}");
    assert!(shown.contains(OTHER), "{shown}");
    assert!(!shown.contains(PASSWORD) && !shown.contains(OTHER_PASSWORD));
}

/// What a service's `?` makes of a simulator that cannot start: a `gws_cometd::Error`.
async fn start_as_a_service_would(config: GwsServerConfig) -> gws_cometd::Result<GwsSimServer> {
    Ok(GwsSimServer::start(config).await?)
}

#[tokio::test]
async fn a_port_in_use_becomes_a_library_error_through_question_mark() {
    let first = GwsSimServer::start(config(None)).await.unwrap();
    let mut second = config(None);
    second.sim.listen = first.addr();
    let err = start_as_a_service_would(second)
        .await
        .expect_err("the port is taken");
    let gws_cometd::Error::Io(io) = &err else {
        panic!("not an I/O error: {err:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
    assert!(!err.is_retryable() && !err.is_auth());
}
