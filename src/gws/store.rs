//! [`CallStore`]: the latest snapshot of every call, and the [`CallChange`] each notification
//! makes.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use indexmap::IndexMap;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::call::{Call, CallState, CallStateChangeMessage, NotificationType};
use super::diff::UserDataDiff;
use super::user_data::UserData;
use crate::bayeux::Message;
use crate::Error;

/// A call's state before and after a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateTransition {
    /// The state before; `None` for a call not seen before (or sent without a state).
    pub from: Option<CallState>,
    /// The state after; `None` when the notification has no state.
    pub to: Option<CallState>,
}

/// What one notification changed in the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallChange {
    /// The call's id.
    pub call_id: String,
    /// The notification's `notificationType`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_type: Option<NotificationType>,
    /// True when the call was not in the store before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
    /// The state transition, when the state changed (always for a new call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateTransition>,
    /// The user-data diff.
    #[serde(skip_serializing_if = "UserDataDiff::is_empty")]
    pub user_data: UserDataDiff,
    /// True when the call left the store (its state became `Completed`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

struct Entry {
    call: Call,
    last: Option<NotificationType>,
    released_at: Option<Instant>,
}

/// The latest snapshot of every call, keyed by call id, in the order calls were first seen.
///
/// Each notification replaces its call's snapshot whole (GWS sends full snapshots; a missing
/// `userData` means the call has none). A call stays after `Released`, because its data can
/// still change during wrap-up; it leaves when a notification says `Completed`, or, when a
/// retention time is set, once that time has passed after `Released` (see
/// [`CallStore::expire`]). Applying the same message twice changes nothing the second time.
///
/// ```
/// use gws_cometd::gws::{CallStateChangeMessage, CallStore};
/// let msg: CallStateChangeMessage = serde_json::from_str(
///     r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged",
///         "call":{"id":"c1","state":"Established","userData":{"AccountNumber":"12345"}}}"#,
/// ).unwrap();
/// let mut store = CallStore::new();
/// let change = store.apply(&msg).unwrap();
/// assert_eq!(change.user_data.added.len(), 1);
/// assert!(store.apply(&msg).is_none());
/// ```
#[derive(Default)]
pub struct CallStore {
    calls: IndexMap<String, Entry>,
    retention: Option<Duration>,
}

impl std::fmt::Debug for CallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStore")
            .field("calls", &self.calls.len())
            .field("retention", &self.retention)
            .finish()
    }
}

impl CallStore {
    /// An empty store without a retention time.
    pub fn new() -> Self {
        CallStore::default()
    }

    /// An empty store that drops a call `retention` after it was `Released` (checked by
    /// [`CallStore::expire`]; only calls applied with a time, [`CallStore::apply_at`], count).
    pub fn with_retention(retention: Duration) -> Self {
        CallStore {
            calls: IndexMap::new(),
            retention: Some(retention),
        }
    }

    /// Applies one notification; `None` when it changes nothing.
    pub fn apply(&mut self, msg: &CallStateChangeMessage) -> Option<CallChange> {
        self.apply_inner(Cow::Borrowed(msg), None)
    }

    /// Like [`CallStore::apply`], taking the message to avoid copying the call.
    pub fn apply_owned(&mut self, msg: CallStateChangeMessage) -> Option<CallChange> {
        self.apply_inner(Cow::Owned(msg), None)
    }

    /// Like [`CallStore::apply`], noting `now` as the time a call became `Released`.
    pub fn apply_at(&mut self, msg: &CallStateChangeMessage, now: Instant) -> Option<CallChange> {
        self.apply_inner(Cow::Borrowed(msg), Some(now))
    }

    fn apply_inner(
        &mut self,
        msg: Cow<'_, CallStateChangeMessage>,
        now: Option<Instant>,
    ) -> Option<CallChange> {
        let state = msg.call.state.as_ref();
        let completed = state == Some(&CallState::Completed);
        let released = state == Some(&CallState::Released);
        let Some(index) = self.calls.get_index_of(msg.call.id.as_str()) else {
            // A call first seen as `Completed` never enters the store.
            if completed {
                return None;
            }
            let change = CallChange {
                call_id: msg.call.id.clone(),
                notification_type: msg.notification_type.clone(),
                new: true,
                state: Some(StateTransition {
                    from: None,
                    to: msg.call.state.clone(),
                }),
                user_data: UserDataDiff::between(&UserData::EMPTY, msg.call.user_data()),
                removed: false,
            };
            let msg = msg.into_owned();
            self.calls.insert(
                msg.call.id.clone(),
                Entry {
                    call: msg.call,
                    last: msg.notification_type,
                    released_at: if released { now } else { None },
                },
            );
            return Some(change);
        };
        let (_, entry) = self.calls.get_index_mut(index)?;
        if entry.last == msg.notification_type && same_snapshot(&entry.call, &msg.call) {
            return None;
        }
        let change = CallChange {
            call_id: msg.call.id.clone(),
            notification_type: msg.notification_type.clone(),
            new: false,
            state: (entry.call.state != msg.call.state).then(|| StateTransition {
                from: entry.call.state.clone(),
                to: msg.call.state.clone(),
            }),
            user_data: UserDataDiff::between(entry.call.user_data(), msg.call.user_data()),
            removed: completed,
        };
        if completed {
            self.calls.shift_remove_index(index);
        } else {
            entry.released_at = if released {
                entry.released_at.or(now)
            } else {
                None
            };
            let msg = msg.into_owned();
            entry.call = msg.call;
            entry.last = msg.notification_type;
        }
        Some(change)
    }

    /// Removes the calls whose retention time after `Released` has passed at `now`, and
    /// returns their last snapshots. Does nothing without a retention time.
    pub fn expire(&mut self, now: Instant) -> Vec<Call> {
        let Some(retention) = self.retention else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        self.calls.retain(|_, e| match e.released_at {
            Some(at) if now.saturating_duration_since(at) >= retention => {
                gone.push(std::mem::take(&mut e.call));
                false
            }
            _ => true,
        });
        gone
    }

    /// The call with `id`.
    pub fn get(&self, id: &str) -> Option<&Call> {
        self.calls.get(id).map(|e| &e.call)
    }

    /// Every call, in the order first seen.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().map(|e| &e.call)
    }

    /// The number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when there are no calls.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The store as JSON: `{"calls": {"<id>": <call>, ...}}`.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot(self)
    }

    /// Turns a stream of Bayeux messages (or of `Result`s of them, as
    /// [`crate::fixture::read`] yields) into a stream of the changes they make. Messages that
    /// are not call notifications on `/v2/me/calls` are skipped.
    pub fn changes<S>(self, messages: S) -> Changes<S>
    where
        S: Stream + Unpin,
        S::Item: MessageItem,
    {
        Changes {
            store: self,
            inner: messages,
        }
    }
}

/// Full equality, checking first the fields that change most often so that a differing
/// snapshot is found out early.
fn same_snapshot(a: &Call, b: &Call) -> bool {
    a.duration == b.duration && a.state == b.state && a.user_data == b.user_data && a == b
}

/// The serialized form of a [`CallStore`]: `{"calls": {"<id>": <call>, ...}}`.
pub struct Snapshot<'a>(&'a CallStore);

impl Serialize for Snapshot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Calls<'a>(&'a CallStore);
        impl Serialize for Calls<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.calls.len()))?;
                for (id, e) in &self.0.calls {
                    m.serialize_entry(id, &e.call)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("calls", &Calls(self.0))?;
        m.end()
    }
}

/// An item [`CallStore::changes`] accepts: a [`Message`], or a `Result` of one.
pub trait MessageItem {
    /// The message, or the error that took its place.
    fn into_message(self) -> Result<Message, Error>;
}

impl MessageItem for Message {
    fn into_message(self) -> Result<Message, Error> {
        Ok(self)
    }
}

impl MessageItem for Result<Message, Error> {
    fn into_message(self) -> Result<Message, Error> {
        self
    }
}

/// The stream [`CallStore::changes`] returns. Errors of the inner stream pass through; a
/// call notification that does not fit the model yields
/// [`Error::MalformedNotification`] and the stream goes on.
pub struct Changes<S> {
    store: CallStore,
    inner: S,
}

impl<S> Changes<S> {
    /// The store as it is now.
    pub fn store(&self) -> &CallStore {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> CallStore {
        self.store
    }
}

impl<S> Stream for Changes<S>
where
    S: Stream + Unpin,
    S::Item: MessageItem,
{
    type Item = Result<CallChange, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let item = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let msg = match item.into_message() {
                Ok(m) => m,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            match CallStateChangeMessage::from_message(&msg) {
                Ok(Some(m)) => {
                    if let Some(change) = this.store.apply_owned(m) {
                        return Poll::Ready(Some(Ok(change)));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    return Poll::Ready(Some(Err(Error::MalformedNotification {
                        channel: msg.channel,
                        message: e.to_string(),
                    })))
                }
            }
        }
    }
}
