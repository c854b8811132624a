//! The interop harness end to end: the official CometD Node.js server, driven by raw Bayeux
//! requests, so the harness is known to work before any client is tested against it.

use gws_cometd_test_support::{cometd_node, within};

use std::time::Duration;

use cometd_node::{CometdNode, NodeOptions};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Bound on each whole test.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A bare Bayeux long-polling peer: one cookie jar, JSON arrays in and out.
struct RawBayeux {
    http: reqwest::Client,
    url: String,
    client_id: String,
    next_id: u64,
}

impl RawBayeux {
    fn new(url: String) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .no_proxy()
            .timeout(Duration::from_secs(40))
            .build()?;
        Ok(Self {
            http,
            url,
            client_id: String::new(),
            next_id: 0,
        })
    }

    async fn post(&mut self, mut msg: Value) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
        self.next_id += 1;
        msg["id"] = json!(self.next_id.to_string());
        if !self.client_id.is_empty() {
            msg["clientId"] = json!(self.client_id);
        }
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json;charset=UTF-8")
            .body(json!([msg]).to_string())
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {body}").into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    async fn handshake(&mut self) -> Result<Value, Box<dyn std::error::Error>> {
        self.client_id.clear();
        let reply = self
            .post(json!({
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }))
            .await?;
        let hs = meta_reply(&reply, "/meta/handshake")?;
        assert_eq!(hs["successful"], json!(true), "handshake failed: {hs}");
        self.client_id = hs["clientId"]
            .as_str()
            .ok_or("handshake reply without clientId")?
            .to_string();
        Ok(hs)
    }

    async fn subscribe(&mut self, channel: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let reply = self
            .post(json!({"channel": "/meta/subscribe", "subscription": channel}))
            .await?;
        meta_reply(&reply, "/meta/subscribe")
    }

    /// One `/meta/connect`; returns the whole reply array.
    async fn connect(
        &mut self,
        advice: Option<Value>,
    ) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
        let mut msg = json!({"channel": "/meta/connect", "connectionType": "long-polling"});
        if let Some(a) = advice {
            msg["advice"] = a;
        }
        self.post(msg).await
    }
}

fn meta_reply(reply: &[Value], channel: &str) -> Result<Value, Box<dyn std::error::Error>> {
    reply
        .iter()
        .find(|m| m["channel"] == json!(channel) && m.get("data").is_none())
        .cloned()
        .ok_or_else(|| format!("no {channel} reply in {reply:?}").into())
}

#[tokio::test]
async fn server_delivers_control_published_messages_in_order_to_a_raw_bayeux_client() -> TestResult
{
    within("the test", TEST_LIMIT, async {
        let node = CometdNode::start().await?;
        let mut peer = RawBayeux::new(node.url())?;
        let hs = peer.handshake().await?;
        // The server's defaults, as the client will see them.
        assert_eq!(hs["advice"]["timeout"], json!(30000));
        assert_eq!(hs["advice"]["interval"], json!(0));
        assert_eq!(hs["advice"]["reconnect"], json!("retry"));

        let sub = peer.subscribe("/smoke").await?;
        assert_eq!(sub["successful"], json!(true), "subscribe failed: {sub}");
        let first = peer.connect(Some(json!({"timeout": 0}))).await?;
        assert_eq!(
            meta_reply(&first, "/meta/connect")?["successful"],
            json!(true)
        );

        let seen = node
            .wait_for_subscribers("/smoke", 1, Duration::from_secs(5))
            .await?;
        assert_eq!(seen.ids, vec![peer.client_id.clone()]);

        node.publish("/smoke", 50, 300).await?;
        let mut data = Vec::new();
        while data.len() < 50 {
            let reply = peer.connect(None).await?;
            assert_eq!(
                meta_reply(&reply, "/meta/connect")?["successful"],
                json!(true)
            );
            data.extend(
                reply
                    .into_iter()
                    .filter(|m| m["channel"] == json!("/smoke")),
            );
        }
        assert_eq!(data.len(), 50, "more messages than published");
        for (i, m) in data.iter().enumerate() {
            assert_eq!(m["data"]["seq"], json!(i), "out of order at {i}: {m}");
            let len = m["data"].to_string().len();
            assert_eq!(len, 300, "data of message {i} is {len} bytes");
        }
        let stats = node.sessions().await?.stats;
        assert_eq!(stats.messages, 50);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn forget_makes_the_next_connect_fail_with_unknown_session_and_handshake_advice() -> TestResult
{
    within("the test", TEST_LIMIT, async {
        let node = CometdNode::start().await?;
        let mut peer = RawBayeux::new(node.url())?;
        peer.handshake().await?;
        peer.connect(Some(json!({"timeout": 0}))).await?;

        assert_eq!(node.forget().await?, 1);
        assert_eq!(node.sessions().await?.sessions, 0);
        let reply = peer.connect(None).await?;
        let connect = meta_reply(&reply, "/meta/connect")?;
        assert_eq!(connect["successful"], json!(false));
        assert_eq!(connect["error"], json!("402::session_unknown"));
        assert_eq!(connect["advice"]["reconnect"], json!("handshake"));

        let hs = peer.handshake().await?;
        assert_eq!(hs["successful"], json!(true));
        assert_eq!(node.sessions().await?.sessions, 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn forget_answers_a_held_connect_at_once() -> TestResult {
    within("the test", TEST_LIMIT, async {
        let node = CometdNode::start().await?;
        let mut peer = RawBayeux::new(node.url())?;
        peer.handshake().await?;
        peer.connect(Some(json!({"timeout": 0}))).await?;
        let held = tokio::spawn(async move {
            let reply = peer.connect(None).await.map_err(|e| e.to_string());
            (peer, reply)
        });
        // The held connect is suspended for 30 s by default; forget must end it well before.
        node.wait_for("a held connect", Duration::from_secs(5), |s| s.held == 1)
            .await?;
        node.forget().await?;
        let (mut peer, reply) =
            within("the held connect to end", Duration::from_secs(5), held).await?;
        reply?;
        let after = peer.connect(None).await?;
        assert_eq!(
            meta_reply(&after, "/meta/connect")?["error"],
            json!("402::session_unknown")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn sessions_are_found_by_the_browser_cookie_not_by_client_id_alone() -> TestResult {
    within("the test", TEST_LIMIT, async {
        let node = CometdNode::start().await?;
        let mut peer = RawBayeux::new(node.url())?;
        peer.handshake().await?;
        // Same clientId, fresh cookie jar: the server cannot find the session.
        let mut stranger = RawBayeux::new(node.url())?;
        stranger.client_id = peer.client_id.clone();
        let reply = stranger.connect(Some(json!({"timeout": 0}))).await?;
        assert_eq!(
            meta_reply(&reply, "/meta/connect")?["error"],
            json!("402::session_unknown")
        );
        let reply = peer.connect(Some(json!({"timeout": 0}))).await?;
        assert_eq!(
            meta_reply(&reply, "/meta/connect")?["successful"],
            json!(true)
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn server_options_are_passed_to_the_node_server() -> TestResult {
    within("the test", TEST_LIMIT, async {
        let options = NodeOptions {
            timeout_ms: Some(1500),
            interval_ms: Some(7),
            max_interval_ms: Some(4000),
            ack: false,
        };
        let node = CometdNode::start_with(options).await?;
        let mut peer = RawBayeux::new(node.url())?;
        let hs = peer.handshake().await?;
        assert_eq!(hs["advice"]["timeout"], json!(1500));
        assert_eq!(hs["advice"]["interval"], json!(7));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn restart_same_port_serves_again_on_that_port_and_has_forgotten_every_session() -> TestResult
{
    within("the test", TEST_LIMIT, async {
        let mut node = CometdNode::start().await?;
        let port = node.port();
        let mut peer = RawBayeux::new(node.url())?;
        peer.handshake().await?;
        peer.subscribe("/r").await?;

        node.restart_same_port().await?;
        assert_eq!(node.port(), port);
        let s = node.sessions().await?;
        assert_eq!((s.sessions, s.subscribers("/r")), (0, 0));
        let reply = peer.connect(Some(json!({"timeout": 0}))).await?;
        assert_eq!(
            meta_reply(&reply, "/meta/connect")?["error"],
            json!("402::session_unknown")
        );

        peer.handshake().await?;
        peer.subscribe("/r").await?;
        peer.connect(Some(json!({"timeout": 0}))).await?;
        node.publish("/r", 1, 50).await?;
        let reply = peer.connect(None).await?;
        let got: Vec<&Value> = reply
            .iter()
            .filter(|m| m["channel"] == json!("/r"))
            .collect();
        assert_eq!(got.len(), 1, "{reply:?}");
        assert_eq!(got[0]["data"]["seq"], json!(0));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn kill_stops_the_server() -> TestResult {
    within("the test", TEST_LIMIT, async {
        let mut node = CometdNode::start().await?;
        node.kill().await?;
        assert!(
            node.sessions().await.is_err(),
            "control API still answers after kill"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn received_lists_what_a_client_published() -> TestResult {
    within("the test", TEST_LIMIT, async {
        let node = CometdNode::start().await?;
        let mut peer = RawBayeux::new(node.url())?;
        peer.handshake().await?;
        let reply = peer
            .post(json!({"channel": "/up", "data": {"n": 1}}))
            .await?;
        assert_eq!(reply[0]["successful"], json!(true), "{reply:?}");
        peer.post(json!({"channel": "/up", "data": {"n": 2}}))
            .await?;
        assert_eq!(
            node.received("/up").await?,
            vec![json!({"n": 1}), json!({"n": 2})]
        );
        assert!(node.received("/other").await?.is_empty());
        Ok(())
    })
    .await
}
