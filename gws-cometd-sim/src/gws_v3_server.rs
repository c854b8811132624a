//! The Workspace API v3 on a [`GwsSimServer`](crate::GwsSimServer): its REST routes
//! (`/auth/v3`, `/workspace/v3`, see [`V3`]), its CometD endpoint
//! `/workspace/v3/notifications` for the user of a `WORKSPACE_SESSIONID` session (sharing
//! the engine with v2, so both generations see the same calls), and the
//! `WorkspaceInitializationComplete` message each v3 session gets once it subscribes to
//! the initialization channel.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use gws_cometd::bayeux::{Advice, Message, Reconnect};
use gws_cometd::gws::api::{Api, V3_INITIALIZATION_CHANNEL};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::bayeux_route::BayeuxRoute;
use super::engine::Engine;
use super::fault::ActiveFaults;
use super::gws::V3;
use super::server::{json_reply, text_reply, Route};

/// How long the initialization watcher sleeps when nothing changes.
const WATCH_RECHECK: Duration = Duration::from_secs(60);

/// `/auth/v3...` and `/workspace/v3...` (but the notifications) through [`V3::handle`].
pub(crate) struct V3RestRoute {
    pub v3: Arc<V3>,
}

impl Route for V3RestRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        _faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        futures::future::ready(self.v3.handle(req)).boxed()
    }
}

/// `/workspace/v3/notifications...`: Bayeux for the user of a valid workspace session.
pub(crate) struct V3NotificationsRoute {
    v3: Arc<V3>,
    engine: Arc<Engine>,
    bayeux: BayeuxRoute,
}

impl V3NotificationsRoute {
    pub(crate) fn new(v3: Arc<V3>, engine: Arc<Engine>) -> Self {
        V3NotificationsRoute {
            v3,
            engine: engine.clone(),
            bayeux: BayeuxRoute {
                engine,
                bases: vec![Api::V3.notifications_path().to_owned()],
            },
        }
    }
}

impl Route for V3NotificationsRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        if !self.bayeux.serves(req.uri().path()) {
            return futures::future::ready(None).boxed();
        }
        async move {
            let json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if !json {
                return Some(text_reply(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Content-Type must be application/json",
                ));
            }
            let Some(user) = self.v3.session_of(req.headers(), true) else {
                let batch = Message::parse_batch(req.body()).unwrap_or_default();
                if let Some(owed) = self.engine.answer_ended(&batch) {
                    return Some(bayeux_reply(&owed));
                }
                if self.v3.unknown_in_bayeux() {
                    return Some(unknown_session(&batch));
                }
                return Some(json_reply(
                    StatusCode::UNAUTHORIZED,
                    r#"{"status":{"code":401,"message":"Unauthorized: no session"}}"#,
                ));
            };
            let reply = self.bayeux.answer(req, faults, Some(&user)).await;
            if contains(req.body(), b"/meta/handshake") {
                self.handshaken(&user, reply.body());
            }
            Some(reply)
        }
        .boxed()
    }
}

impl V3NotificationsRoute {
    /// Remembers the sessions a handshake reply opened; with delivery without subscription
    /// on, gives each its initialization message at once.
    fn handshaken(&self, user: &str, reply: &[u8]) {
        let Ok(messages) = Message::parse_batch(reply) else {
            return;
        };
        let opened = messages
            .into_iter()
            .filter(|m| m.channel == "/meta/handshake" && m.successful == Some(true))
            .filter_map(|m| m.client_id);
        for client_id in opened {
            self.v3.add_bayeux_client(&client_id);
            if self.v3.unsubscribed_delivery().is_some() && self.v3.first_initialization(&client_id)
            {
                if let Some(raw) = initialization(&self.v3, user) {
                    self.engine
                        .push_unsubscribed(user, V3_INITIALIZATION_CHANNEL, &raw, |id| {
                            id == client_id
                        });
                }
            }
        }
    }
}

/// The Bayeux answer to a batch without a workspace session, as a CometD endpoint that
/// checks the HTTP session only behind the handshake gives it: handshakes succeed (with a
/// client id no session backs), everything else is `402::Unknown client`.
fn unknown_session(batch: &[Message]) -> Response<Bytes> {
    let replies: Vec<Message> = batch
        .iter()
        .map(|req| {
            let mut m = Message::new(req.channel.clone());
            m.id = req.id.clone();
            let mut advice = Advice {
                reconnect: Some(Reconnect::Handshake),
                interval: Some(0),
                ..Advice::default()
            };
            if req.channel == "/meta/handshake" {
                m.successful = Some(true);
                m.client_id = Some(format!("{:016x}", rand_id()));
                m.version = Some("1.0".into());
                m.supported_connection_types = Some(vec!["long-polling".into()]);
                advice.reconnect = Some(Reconnect::Retry);
            } else {
                m.successful = Some(false);
                m.client_id = req.client_id.clone();
                m.error = Some("402::Unknown client".into());
            }
            m.advice = Some(advice);
            m
        })
        .collect();
    bayeux_reply(&replies)
}

fn bayeux_reply(messages: &[Message]) -> Response<Bytes> {
    match serde_json::to_vec(messages) {
        Ok(body) => json_reply(StatusCode::OK, body),
        Err(e) => text_reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A client id nobody can guess twice in a test run.
fn rand_id() -> u64 {
    use std::hash::BuildHasher;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::collections::hash_map::RandomState::new().hash_one(n)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `user`'s `WorkspaceInitializationComplete` message.
fn initialization(v3: &V3, user: &str) -> Option<Box<RawValue>> {
    let data = format!(
        r#"{{"messageType":"WorkspaceInitializationComplete","state":"Complete","data":{{"user":{}}}}}"#,
        v3.user_json(user, false)
    );
    RawValue::from_string(data)
        .map_err(|e| tracing::warn!(error = %e, "initialization message is not JSON"))
        .ok()
}

/// Gives every session that subscribes to [`V3_INITIALIZATION_CHANNEL`] one
/// `WorkspaceInitializationComplete` message, until shutdown.
pub(crate) async fn announce_initialization(
    v3: Arc<V3>,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        v3.retain_bayeux_clients(|id| engine.queued_for(id).is_some());
        for (client_id, user) in engine.sessions_receiving(V3_INITIALIZATION_CHANNEL) {
            if !v3.first_initialization(&client_id) {
                continue;
            }
            if let Some(raw) = initialization(&v3, &user) {
                let mut msg = Message::new(V3_INITIALIZATION_CHANNEL);
                msg.data = Some(raw);
                engine.deliver_to_session(&client_id, &msg);
            }
        }
        let changed = engine.wait_until(WATCH_RECHECK, |e| {
            e.sessions_receiving(V3_INITIALIZATION_CHANNEL)
                .keys()
                .any(|k| !v3.is_initialized(k))
        });
        tokio::select! {
            _ = changed => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
