//! Waiting for a client's events.

use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::SessionEvent;
use gws_cometd::{ClientEvent, EventStream};
use gws_cometd_test_support::within;

/// The first event `pick` accepts, the ones before it dropped; the test fails if the stream
/// ends or `limit` passes first.
pub async fn next_event<T>(
    events: &mut EventStream,
    what: &str,
    limit: Duration,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    within(what, limit, async {
        while let Some(ev) = events.next().await {
            if let Some(t) = pick(&ev) {
                return t;
            }
        }
        panic!("event stream ended while waiting for {what}");
    })
    .await
}

/// Waits until the client reports its subscription to `channel`.
pub async fn subscribed(events: &mut EventStream, channel: &str, limit: Duration) {
    let what = format!("the subscription to {channel}");
    next_event(events, &what, limit, |e| match e {
        ClientEvent::Session(SessionEvent::Subscribed { channel: c }) if c.as_str() == channel => {
            Some(())
        }
        _ => None,
    })
    .await
}
