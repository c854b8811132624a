//! Opening a notification client for the feed, on the API generation it speaks: the CometD
//! endpoint ([`Api::notifications_path`]), its `Content-Type` (`application/json` exactly on
//! v3), the API key, and the channels: the calls channel ([`Api::calls_channel`]), plus
//! `/v2/me/devices` when devices are followed (v2) or `/workspace/v3/initialization` (v3).
//!
//! A server may deliver on a channel before (or without) confirming its subscription: the
//! client hands every message to the local subscriber whose channels match, whatever the
//! server said of the subscription, so such messages reach the feed like any other.

use std::time::Duration;

use futures::StreamExt;

use super::lock;
use super::task::{Connection, FeedSettings, Renewal};
use crate::backoff::{Backoff, BackoffConfig};
use crate::bayeux::SessionEvent;
use crate::client::{ClientBuilder, ClientEvent};
use crate::error::Result;
use crate::gws::api::V3_INITIALIZATION_CHANNEL;
use crate::gws::rest::GwsSession;
use crate::gws::wire::DEVICES_CHANNEL;
use crate::gws::Api;
use crate::transport::HttpTransport;

/// Whether `event` makes the calls channel usable: its subscription confirmed, or on v3
/// denied (a v3 server may deliver voice events without a subscription, so the feed reads
/// the calls and goes on; the client asks again after the next re-handshake).
pub(super) fn calls_usable(api: Api, event: &SessionEvent) -> bool {
    match event {
        SessionEvent::Subscribed { channel } => channel.as_str() == api.calls_channel(),
        SessionEvent::SubscriptionDenied { channel, error }
            if api == Api::V3 && channel.as_str() == api.calls_channel() =>
        {
            tracing::warn!(
                channel = %channel,
                "the server denied the subscription ({error}); going on, as a v3 server \
                 delivers voice events without one"
            );
            true
        }
        _ => false,
    }
}

/// The channels the feed subscribes on `settings.api`.
pub(super) fn channels(settings: &FeedSettings) -> Vec<&'static str> {
    let mut channels = vec![settings.api.calls_channel()];
    match settings.api {
        Api::V3 => channels.push(V3_INITIALIZATION_CHANNEL),
        _ if settings.devices => channels.push(DEVICES_CHANNEL),
        _ => {}
    }
    channels
}

/// A notification client for `session`; `handshake_attempts` bounds its first handshake.
pub(super) async fn open(
    session: &GwsSession,
    settings: &FeedSettings,
    handshake_attempts: Option<u32>,
) -> Result<Connection> {
    let mut transport = HttpTransport::builder(session.notifications_url())
        .http_client(session.http_client())
        .cookies(session.cookies())
        .shared_headers(session.csrf_headers());
    if settings.api == Api::V3 {
        // GWS 9 refuses a Content-Type with parameters.
        transport = transport.content_type("application/json");
    }
    if let Some(key) = session.api_key() {
        transport = transport.header("x-api-key", key);
    }
    let transport = transport.build()?;
    let mut builder = ClientBuilder::new(transport)
        .max_network_delay(settings.max_network_delay)
        .max_message_bytes(settings.max_message_bytes)
        .initial_handshake_attempts(handshake_attempts);
    if let Some(tap) = &settings.tap {
        let tap = tap.clone();
        builder = builder.on_reply(move |body| (*lock(&tap))(body));
    }
    let client = builder.build()?;
    let events = client.events();
    let channels = channels(settings);
    let messages = client.subscribe_all(channels).await?;
    Ok(Connection {
        client,
        events,
        messages,
        messages_open: true,
    })
}

/// Opens a notification client and waits (at most `bound`) until its calls channel is
/// subscribed; dropping the future drops the client, which then ends its session.
pub(super) fn renewal(session: GwsSession, settings: FeedSettings, bound: Duration) -> Renewal {
    Box::pin(async move {
        let started = async {
            let mut conn = open(&session, &settings, None)
                .await
                .map_err(|e| e.to_string())?;
            let mut seen = Vec::new();
            while let Some(ev) = conn.events.next().await {
                let subscribed =
                    matches!(&ev, ClientEvent::Session(e) if calls_usable(settings.api, e));
                let ended = matches!(ev, ClientEvent::Terminated { .. });
                seen.push(ev);
                if subscribed {
                    return Ok((conn, seen));
                }
                if ended {
                    break;
                }
            }
            Err("its client stopped".to_owned())
        };
        match tokio::time::timeout(bound, started).await {
            Ok(result) => result,
            Err(_) => Err(format!("not subscribed within {bound:.1?}")),
        }
    })
}

/// Logs in again after the HTTP session expired. A transient failure (network, 5xx,
/// timeout) is retried with backoff for as long as it lasts; refused credentials end the
/// feed.
pub(super) async fn login_again(session: &GwsSession) -> Result<()> {
    let mut backoff = Backoff::new(&BackoffConfig::default());
    loop {
        match session.login().await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                tracing::warn!(retry_in = ?delay, "logging in again failed: {e}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
