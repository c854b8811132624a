//! A Workspace API v3 client over raw HTTP for the simulator tests: logs in by password
//! grant or by form sign-in and code, initializes the workspace (the session cookie kept),
//! handshakes and subscribes on `/workspace/v3/notifications`, long-polls, posts operations.

use std::time::Duration;

use gws_cometd::bayeux::Message;
use gws_cometd_test_support::within;
use serde_json::Value;

/// Where the code flow says to come back to (never fetched: redirects are not followed).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `name=value&...`, percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub struct V3Client {
    pub http: reqwest::Client,
    pub base: String,
    client_id: String,
}

/// A reply's status and body as JSON.
pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

impl V3Client {
    pub fn new(base: &str) -> V3Client {
        V3Client {
            http: http(),
            base: base.to_owned(),
            client_id: String::new(),
        }
    }

    /// `POST /auth/v3/oauth/token` with the password grant.
    pub async fn token(&self, user: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/v3/oauth/token", self.base))
            .basic_auth("external_api_client", Some("client-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("client_id", "external_api_client"),
            ]))
            .send()
            .await
            .unwrap()
    }

    /// The password grant, then initialize-workspace with the bearer token.
    pub async fn login_by_password(base: &str, user: &str, password: &str) -> V3Client {
        let c = V3Client::new(base);
        let (status, body) = json(c.token(user, password).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "bearer");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let resp = c
            .http
            .post(format!("{base}/workspace/v3/initialize-workspace"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        c.initialized(resp, user).await;
        c
    }

    /// Authorize, sign in, follow the redirect's code into initialize-workspace.
    pub async fn login_by_code(base: &str, user: &str, password: &str) -> V3Client {
        let c = V3Client::new(base);
        let code = c.sign_in(user, password).await.expect("signed in");
        let resp = c
            .http
            .get(format!("{base}/workspace/v3/initialize-workspace"))
            .query(&[("code", code.as_str()), ("redirect_uri", REDIRECT_URI)])
            .send()
            .await
            .unwrap();
        c.initialized(resp, user).await;
        c
    }

    /// Authorize and sign in: the code of the redirect, or the status of a refusal.
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<String, u16> {
        let resp = self
            .http
            .get(format!("{}/auth/v3/oauth/authorize", self.base))
            .query(&[
                ("response_type", "code"),
                ("client_id", "external_api_client"),
                ("redirect_uri", REDIRECT_URI),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("name=\"username\""));
        let resp = self
            .http
            .post(format!("{}/auth/v3/sign-in", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", user), ("password", password)]))
            .send()
            .await
            .unwrap();
        if resp.status() != 302 {
            return Err(resp.status().as_u16());
        }
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let code = location
            .strip_prefix(&format!("{REDIRECT_URI}?code="))
            .unwrap_or_else(|| panic!("{location}"));
        Ok(code.to_owned())
    }

    async fn initialized(&self, resp: reqwest::Response, user: &str) {
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("WORKSPACE_SESSIONID="), "{cookie}");
        let (status, body) = json(resp).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"]["code"], 1);
        assert_eq!(
            body["data"]["user"]["userName"],
            user.rsplit('\\').next().unwrap()
        );
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        json(resp).await
    }

    /// A GET's status and body text, as sent.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// A JSON POST: the status and the body.
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        json(resp).await
    }

    /// A call operation's `operationId`, checking the reply says success.
    pub async fn operate(&self, call: &str, op: &str, body: &str) -> String {
        let (status, reply) = self
            .post(&format!("/workspace/v3/voice/calls/{call}/{op}"), body)
            .await;
        assert_eq!((status, &reply["status"]["code"]), (200, &Value::from(0)));
        reply["operationId"].as_str().unwrap().to_owned()
    }

    pub async fn cometd(&self, body: String) -> Vec<Message> {
        let resp = self
            .http
            .post(format!("{}/workspace/v3/notifications", self.base))
            .header("content-type", "application/json;charset=UTF-8")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        Message::parse_batch(&resp.bytes().await.unwrap()).unwrap()
    }

    /// Handshakes a new CometD session.
    pub async fn handshake(&mut self) {
        let reply = self
            .cometd(r#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#.to_owned())
            .await;
        assert_eq!(reply[0].successful, Some(true), "{reply:?}");
        self.client_id = reply[0].client_id.clone().unwrap();
    }

    /// Handshakes and subscribes `channels`.
    pub async fn start_session(&mut self, channels: &[&str]) {
        self.handshake().await;
        self.subscribe(channels).await;
    }

    /// Subscribes `channels` in one batch.
    pub async fn subscribe(&self, channels: &[&str]) {
        let id = &self.client_id;
        let subscribes: Vec<String> = channels
            .iter()
            .map(|c| {
                format!(r#"{{"channel":"/meta/subscribe","clientId":"{id}","subscription":"{c}"}}"#)
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
            .cometd(format!(r#"[{{"channel":"/meta/connect","clientId":"{id}","connectionType":"long-polling"}}]"#))
            .await;
        reply
            .into_iter()
            .filter(|m| !m.channel.starts_with("/meta/"))
            .map(|m| (m.channel, m.data.unwrap().get().to_owned()))
            .collect()
    }

    /// Long-polls until `n` data messages came: `(channel, data text, when it came)`.
    pub async fn receive_timed(&self, n: usize) -> Vec<(String, String, std::time::Instant)> {
        let mut got = Vec::new();
        within("the v3 notifications", Duration::from_secs(15), async {
            while got.len() < n {
                for (channel, data) in self.connect().await {
                    got.push((channel, data, std::time::Instant::now()));
                }
            }
        })
        .await;
        got
    }

    /// Long-polls for `time`: nothing may come.
    pub async fn nothing_for(&self, time: Duration) {
        let until = tokio::time::Instant::now() + time;
        while tokio::time::Instant::now() < until {
            assert_eq!(self.connect().await, Vec::new());
        }
    }

    /// Long-polls until `n` data messages came: `(channel, data)`.
    pub async fn receive(&self, n: usize) -> Vec<(String, Value)> {
        let mut got = Vec::new();
        let id = self.client_id.clone();
        within("the v3 notifications", Duration::from_secs(15), async {
            while got.len() < n {
                let reply = self
                    .cometd(format!(r#"[{{"channel":"/meta/connect","clientId":"{id}","connectionType":"long-polling"}}]"#))
                    .await;
                for m in reply.into_iter().filter(|m| !m.channel.starts_with("/meta/")) {
                    let data = serde_json::from_str(m.data.unwrap().get()).unwrap();
                    got.push((m.channel, data));
                }
            }
        })
        .await;
        got
    }

    /// Like [`receive`](Self::receive), the raw text of each message's `data`.
    pub async fn receive_text(&self, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        let id = self.client_id.clone();
        within("the v3 notifications", Duration::from_secs(15), async {
            while got.len() < n {
                let reply = self
                    .cometd(format!(r#"[{{"channel":"/meta/connect","clientId":"{id}","connectionType":"long-polling"}}]"#))
                    .await;
                for m in reply.into_iter().filter(|m| !m.channel.starts_with("/meta/")) {
                    got.push(m.data.unwrap().get().to_owned());
                }
            }
        })
        .await;
        got
    }
}
