//! Where the feed plugs in: one [`CallFeed`] per agent, every feed on one shared HTTP
//! client, and what the bridge makes of each [`FeedEvent`].

use std::sync::Arc;
use std::time::Duration;

use super::agents::Agent;
use super::writer::ChangeItem;
use gws_cometd::bayeux::{GapCause, SessionEvent};
use gws_cometd::gws::feed::{CallEvent, CallFeed, FeedEvent};
use gws_cometd::gws::rest::Password;
use gws_cometd::gws::Api;
use gws_cometd::{ClientEvent, Error};

/// How every agent's feed is opened.
#[derive(Clone, Debug)]
pub(crate) struct FeedSettings {
    pub base_url: String,
    /// One client (pool, TLS) for every session; each session keeps its own cookies.
    pub http: reqwest::Client,
    pub max_network_delay: Duration,
    /// Bounds the logins in flight.
    pub logins: Arc<tokio::sync::Semaphore>,
    /// The GWS generation of agents that do not say, and v3's login settings.
    pub api: GwsApi,
}

/// Which GWS generation the agents' feeds speak when their line does not say
/// ([`Agent::api`]), and how v3 logs in (the same for every v3 agent).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct GwsApi {
    /// v2 (default) or v3, for the agents that do not say.
    pub api: Api,
    /// v3: the OAuth client id and secret for the password grant (else form sign-in).
    pub client_credentials: Option<(String, Password)>,
    /// v3, form sign-in: the authorization-code flow's client id (default
    /// [`DEFAULT_CLIENT_ID`](gws_cometd::gws::rest::DEFAULT_CLIENT_ID)).
    pub client_id: Option<String>,
    /// v3, form sign-in: the authorization-code flow's redirect URI (default: the base URL).
    pub redirect_uri: Option<String>,
    /// Sent as `x-api-key` on every request, when set.
    pub api_key: Option<Password>,
}

/// Logs in, connects, subscribes and catches up (the catch-up changes come from `next`).
pub(crate) async fn connect(settings: &FeedSettings, agent: Agent) -> gws_cometd::Result<CallFeed> {
    // Never closed: the bridge owns it.
    let _permit = settings.logins.acquire().await;
    let api = agent.api.unwrap_or(settings.api.api);
    let mut builder = CallFeed::builder(settings.base_url.clone(), agent.credentials).api(api);
    if api == Api::V3 {
        let v3 = &settings.api;
        if let Some((id, secret)) = v3.client_credentials.clone() {
            builder = builder.client_credentials(id, secret);
        }
        if let Some(id) = v3.client_id.clone() {
            builder = builder.client_id(id);
        }
        if let Some(uri) = v3.redirect_uri.clone() {
            builder = builder.redirect_uri(uri);
        }
    }
    if let Some(key) = settings.api.api_key.clone() {
        builder = builder.api_key(key);
    }
    builder
        .http_client(settings.http.clone())
        .max_network_delay(settings.max_network_delay)
        // The bridge keeps retrying by itself, with its own backoff and report.
        .initial_handshake_attempts(Some(3))
        .connect()
        .await
}

/// What a feed event means to the bridge.
#[derive(Debug)]
pub(crate) enum Seen {
    /// A change to publish.
    Change(Box<ChangeItem>),
    /// The catch-up is done.
    Ready { calls: usize },
    /// Messages may have been lost.
    Gap {
        rehandshake: bool,
        /// Why, when a notification was over a limit (the one gap the bridge logs: the
        /// feed's heal is logged for every gap).
        over_limit: Option<String>,
    },
    /// A heal is done.
    Healed { changes: usize },
    /// Reading the calls after a gap failed (retried by the feed).
    HealFailed(Arc<Error>),
    /// The HTTP session expired and was logged in again.
    LoggedInAgain,
    /// The notification connection is up.
    Connected,
    /// The notification connection was lost (the client retries).
    ConnectionLost,
    /// The feed ended for good (its next `next()` is `None`).
    Ended(Arc<Error>),
    /// The agent's store may be stale since then (the feed logged why).
    Stale(std::time::Instant),
    /// The agent's store is known complete again.
    Fresh,
    /// The consumer was behind and the feed dropped events other than call changes.
    Lagged(u64),
    /// Nothing for the bridge.
    Nothing,
}

/// Sorts one feed event.
pub(crate) fn sort(event: FeedEvent) -> Seen {
    match event {
        FeedEvent::Call(CallEvent { change, call }) => {
            // The exact text: the bridge forwards the call as GWS sent it, never typed.
            let call: Option<Arc<str>> = call.map(|c| Arc::from(c.text()));
            Seen::Change(Box::new(ChangeItem::new(change, call)))
        }
        FeedEvent::Ready { calls } => Seen::Ready { calls },
        FeedEvent::Gap { cause } => Seen::Gap {
            rehandshake: matches!(cause, GapCause::Rehandshake),
            over_limit: matches!(cause, GapCause::MessageOverLimit { .. })
                .then(|| cause.to_string()),
        },
        FeedEvent::Healed { changes } => Seen::Healed { changes },
        FeedEvent::HealFailed(e) => Seen::HealFailed(e),
        FeedEvent::LoggedInAgain => Seen::LoggedInAgain,
        FeedEvent::Lagged { missed } => Seen::Lagged(missed),
        FeedEvent::Stale { since, .. } => {
            // The feed gives the wall clock; the bridge measures on the monotonic one.
            let ago = since.elapsed().unwrap_or_default();
            let now = std::time::Instant::now();
            Seen::Stale(now.checked_sub(ago).unwrap_or(now))
        }
        FeedEvent::Fresh { .. } => Seen::Fresh,
        FeedEvent::Session(ClientEvent::Session(SessionEvent::Connected)) => Seen::Connected,
        FeedEvent::Session(ClientEvent::Session(SessionEvent::ConnectionLost { .. })) => {
            Seen::ConnectionLost
        }
        FeedEvent::Session(ClientEvent::Terminated { error }) => Seen::Ended(error),
        _ => Seen::Nothing,
    }
}
