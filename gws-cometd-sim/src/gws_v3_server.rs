//! The Workspace API v3 on a [`GwsSimServer`](crate::GwsSimServer): its REST routes
//! (`/auth/v3`, `/workspace/v3`, see [`V3`]), its CometD endpoint
//! `/workspace/v3/notifications` for the user of a `WORKSPACE_SESSIONID` session (sharing
//! the engine with v2, so both generations see the same calls), and the
//! `WorkspaceInitializationComplete` message each v3 session gets once it subscribes to
//! the initialization channel.

use std::collections::BTreeSet;
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
    bayeux: BayeuxRoute,
}

impl V3NotificationsRoute {
    pub(crate) fn new(v3: Arc<V3>, engine: Arc<Engine>) -> Self {
        V3NotificationsRoute {
            v3,
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
            Some(self.bayeux.answer(req, faults, Some(&user)).await)
        }
        .boxed()
    }
}

/// Gives every session that subscribes to [`V3_INITIALIZATION_CHANNEL`] one
/// `WorkspaceInitializationComplete` message, until shutdown.
pub(crate) async fn announce_initialization(
    v3: Arc<V3>,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut announced: BTreeSet<String> = BTreeSet::new();
    loop {
        let now = engine.sessions_receiving(V3_INITIALIZATION_CHANNEL);
        announced.retain(|id| now.contains_key(id));
        for (client_id, user) in now {
            if announced.contains(&client_id) {
                continue;
            }
            let data = format!(
                r#"{{"messageType":"WorkspaceInitializationComplete","state":"Complete","data":{{"user":{}}}}}"#,
                v3.user_json(&user, false)
            );
            match RawValue::from_string(data) {
                Ok(raw) => {
                    let mut msg = Message::new(V3_INITIALIZATION_CHANNEL);
                    msg.data = Some(raw);
                    engine.deliver_to_session(&client_id, &msg);
                }
                Err(e) => tracing::warn!(error = %e, "initialization message is not JSON"),
            }
            announced.insert(client_id);
        }
        let changed = engine.wait_until(WATCH_RECHECK, |e| {
            e.sessions_receiving(V3_INITIALIZATION_CHANNEL)
                .keys()
                .any(|k| !announced.contains(k))
        });
        tokio::select! {
            _ = changed => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
