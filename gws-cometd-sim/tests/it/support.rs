//! A minimal Bayeux client over reqwest for the simulator tests.

use std::time::{Duration, Instant};

use gws_cometd::bayeux::Message;
use gws_cometd_sim::{SimConfig, SimServer};
use gws_cometd_test_support::within;
use serde_json::{json, Value};

/// A simulator with a short long-poll so held connects end quickly.
pub async fn sim() -> SimServer {
    SimServer::start(SimConfig {
        long_poll_timeout: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(8))
        .build()
        .expect("reqwest client")
}

pub struct Reply {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn messages(&self) -> Vec<Message> {
        Message::parse_batch(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply is not a Bayeux batch ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The single reply on `channel`.
    pub fn on(&self, channel: &str) -> Message {
        let mut all: Vec<Message> = self
            .messages()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect();
        assert_eq!(all.len(), 1, "one {channel} reply expected");
        all.remove(0)
    }
}

pub async fn post(http: &reqwest::Client, url: &str, body: Value) -> Reply {
    post_text(http, url, body.to_string()).await
}

/// Posts `body` as given (serde_json's `json!` would reorder keys).
pub async fn post_text(http: &reqwest::Client, url: &str, body: String) -> Reply {
    try_post_text(http, url, body)
        .await
        .expect("request sent and body read")
}

/// Like [`post_text`], but a broken exchange is an error to look at.
pub async fn try_post_text(
    http: &reqwest::Client,
    url: &str,
    body: String,
) -> Result<Reply, reqwest::Error> {
    let resp = http
        .post(url)
        .header("content-type", "application/json;charset=UTF-8")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// One Bayeux session with its own cookie jar.
pub struct Session {
    pub http: reqwest::Client,
    pub url: String,
    pub id: String,
}

impl Session {
    pub async fn handshake(url: &str) -> Session {
        Self::handshake_with(url, None).await.0
    }

    /// A handshake carrying `ext` (if any); returns the session and the handshake reply.
    pub async fn handshake_with(url: &str, ext: Option<Value>) -> (Session, Message) {
        let http = http();
        let mut hs = json!({"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"});
        if let Some(ext) = ext {
            hs["ext"] = ext;
        }
        let r = post(&http, url, json!([hs])).await;
        let hs = r.on("/meta/handshake");
        assert!(hs.is_successful(), "handshake failed: {hs:?}");
        let session = Session {
            http,
            url: url.to_owned(),
            id: hs.client_id.clone().expect("clientId"),
        };
        (session, hs)
    }

    /// A connect acknowledging batch `ack`, held at most `timeout_ms`; a broken reply is an
    /// error.
    pub async fn try_connect_ack(
        &self,
        ack: u64,
        timeout_ms: u64,
    ) -> Result<Reply, reqwest::Error> {
        let m = json!([{"channel":"/meta/connect","connectionType":"long-polling","clientId":self.id,"id":"3","advice":{"timeout":timeout_ms},"ext":{"ack":ack}}]);
        try_post_text(&self.http, &self.url, m.to_string()).await
    }

    pub async fn send(&self, mut msg: Value) -> Reply {
        msg["clientId"] = json!(self.id);
        msg["id"] = json!("2");
        post(&self.http, &self.url, json!([msg])).await
    }

    pub async fn subscribe(&self, channel: &str) -> Message {
        self.send(json!({"channel":"/meta/subscribe","subscription":channel}))
            .await
            .on("/meta/subscribe")
    }

    /// A connect with `advice.timeout` = `timeout_ms` (None: the server's default).
    pub async fn connect(&self, timeout_ms: Option<u64>) -> Reply {
        let mut m = json!({"channel":"/meta/connect","connectionType":"long-polling"});
        if let Some(t) = timeout_ms {
            m["advice"] = json!({"timeout": t});
        }
        self.send(m).await
    }

    /// The data messages of a connect reply, as (channel, data text).
    pub async fn receive(&self, timeout_ms: Option<u64>) -> Vec<(String, String)> {
        let r = self.connect(timeout_ms).await;
        let msgs = r.messages();
        let last = msgs.last().expect("a non-empty connect reply");
        assert_eq!(last.channel, "/meta/connect", "connect reply comes last");
        assert!(last.is_successful(), "connect failed: {last:?}");
        msgs[..msgs.len() - 1]
            .iter()
            .map(|m| {
                (
                    m.channel.clone(),
                    m.data
                        .as_ref()
                        .map(|d| d.get().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The data texts before the `/meta/connect` reply, and the batch its `ext.ack` names.
pub fn acked_delivery(r: &Reply) -> (Vec<String>, Option<u64>) {
    let msgs = r.messages();
    let (connect, data) = msgs.split_last().expect("a non-empty connect reply");
    assert_eq!(connect.channel, "/meta/connect", "connect reply comes last");
    assert!(connect.is_successful(), "connect failed: {connect:?}");
    let batch = connect.ext.as_ref().map(|e| {
        let v: Value = serde_json::from_str(e.get()).expect("ext is JSON");
        v["ack"].as_u64().expect("ext.ack is a batch number")
    });
    let data = data
        .iter()
        .map(|m| {
            m.data
                .as_ref()
                .map(|d| d.get().to_owned())
                .unwrap_or_default()
        })
        .collect();
    (data, batch)
}

/// A GWS client over raw HTTP (what it gets is exactly what the server wrote): logs in with
/// Basic on `/api/v2/me` (cookie and CSRF token kept), reads the calls, handshakes and
/// subscribes on `/api/v2/notifications`, long-polls.
pub struct GwsClient {
    http: reqwest::Client,
    base: String,
    csrf: String,
    client_id: String,
}

impl GwsClient {
    pub async fn login(base: &str, user: &str, password: &str) -> GwsClient {
        let http = http();
        let resp = http
            .get(format!("{base}/api/v2/me"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let csrf = resp.headers()[gws_cometd_sim::gws::CSRF_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        GwsClient {
            http,
            base: base.to_owned(),
            csrf,
            client_id: String::new(),
        }
    }

    /// `GET /api/v2/me/calls?fields=*`: the catch-up (or heal) read.
    pub async fn read_calls(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/api/v2/me/calls?fields=*", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// A JSON POST with the CSRF token: the status and the body.
    pub async fn post(&self, path: &str, body: String) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(gws_cometd_sim::gws::CSRF_HEADER, &self.csrf)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn cometd(&self, body: String) -> Vec<Message> {
        let (status, text) = self.post("/api/v2/notifications", body).await;
        assert_eq!(status, 200, "{text}");
        Message::parse_batch(text.as_bytes()).unwrap()
    }

    /// Handshakes a new session and subscribes `channels` in one batch.
    pub async fn start_session(&mut self, channels: &[&str]) {
        let reply = self
            .cometd(r#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#.to_owned())
            .await;
        self.client_id = reply[0].client_id.clone().unwrap();
        let id = &self.client_id;
        let subscribes: Vec<String> = channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(r#"{{"channel":"/meta/subscribe","clientId":"{id}","subscription":"{c}","id":"s{i}"}}"#)
            })
            .collect();
        let reply = self.cometd(format!("[{}]", subscribes.join(","))).await;
        assert!(
            reply.iter().all(|m| m.successful == Some(true)),
            "{reply:?}"
        );
    }

    /// One long poll: the data messages it brought, as `(channel, data text)`.
    pub async fn connect(&self) -> Vec<(String, String)> {
        let id = &self.client_id;
        let reply = self
            .cometd(format!(
                r#"[{{"channel":"/meta/connect","clientId":"{id}","connectionType":"long-polling","id":"c"}}]"#
            ))
            .await;
        reply
            .into_iter()
            .filter(|m| !m.channel.starts_with("/meta/"))
            .map(|m| (m.channel, m.data.unwrap().get().to_owned()))
            .collect()
    }

    /// Connects until `n` data messages came; each with when it came.
    pub async fn receive(&self, n: usize) -> Vec<(String, String, Instant)> {
        let mut got = Vec::new();
        within("the notifications", Duration::from_secs(15), async {
            while got.len() < n {
                for (channel, data) in self.connect().await {
                    got.push((channel, data, Instant::now()));
                }
            }
        })
        .await;
        got
    }

    /// Like [`receive`](Self::receive), the data's text only.
    pub async fn receive_data(&self, n: usize) -> Vec<String> {
        let got = self.receive(n).await;
        got.into_iter().map(|(_, data, _)| data).collect()
    }

    /// Connects for `time`: nothing may come.
    pub async fn nothing_for(&self, time: Duration) {
        let until = tokio::time::Instant::now() + time;
        while tokio::time::Instant::now() < until {
            assert_eq!(self.connect().await, Vec::new());
        }
    }
}
