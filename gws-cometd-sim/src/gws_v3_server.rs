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
use gws_cometd::bayeux::Message;
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
