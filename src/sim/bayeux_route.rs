//! The Bayeux endpoint: parses request batches, binds them to the `BAYEUX_BROWSER` cookie,
//! runs them through the [`Engine`] and writes the reply batch.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use hyper::header::SET_COOKIE;
use hyper::{Method, StatusCode};

use super::engine::{Engine, Policy};
use super::server::{Route, SimRequest, SimResponse};
use crate::bayeux::Message;

/// The cookie the official CometD server binds sessions to.
pub(crate) const BROWSER_COOKIE: &str = "BAYEUX_BROWSER";

/// Serves Bayeux at each base path and everything below it (`/cometd/connect`, ...).
pub(crate) struct BayeuxRoute {
    pub engine: Arc<Engine>,
    pub bases: Vec<String>,
}

impl BayeuxRoute {
    /// Whether `path` is one of the base paths or below one.
    pub(crate) fn serves(&self, path: &str) -> bool {
        self.bases.iter().any(|b| {
            path.strip_prefix(b.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// Answers a Bayeux POST on behalf of `owner` (the authenticated user, if any).
    pub(crate) async fn answer(&self, req: &SimRequest, owner: Option<&str>) -> SimResponse {
        if req.method != Method::POST {
            return SimResponse::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Bayeux long-polling takes POST",
            );
        }
        let batch = match Message::parse_batch(&req.body) {
            Ok(b) => b,
            Err(e) => {
                return SimResponse::text(
                    StatusCode::BAD_REQUEST,
                    format!("invalid Bayeux message batch: {e}"),
                )
            }
        };
        let policy = Policy {
            advice_none: req.faults.advice_none,
            deny: req.faults.deny.clone(),
        };
        let reply = self
            .engine
            .handle_batch(batch, req.cookie(BROWSER_COOKIE), owner, &policy)
            .await;
        let mut r = SimResponse::json(StatusCode::OK, Message::encode_batch(&reply.messages));
        if let Some(b) = reply.set_browser {
            r = r.with_header(
                SET_COOKIE,
                &format!("{BROWSER_COOKIE}={b}; Path=/; HttpOnly"),
            );
        }
        r
    }
}

impl Route for BayeuxRoute {
    fn handle<'a>(&'a self, req: &'a SimRequest) -> BoxFuture<'a, Option<SimResponse>> {
        if !self.serves(&req.path) {
            return futures::future::ready(None).boxed();
        }
        async move { Some(self.answer(req, None).await) }.boxed()
    }
}
