//! [`CallStore`]: the latest snapshot of every call, and the [`CallChange`] each notification
//! makes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::call::{Call, CallState, CallStateChangeMessage, NotificationType};
use super::diff::{JsonText, UserDataDiff};
use super::ordered::OrderedMap;
use super::raw::{RawJson, Record};
use super::raw_call::RawCallMessage;
use super::scan;
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

/// One call in the store: its last call object exactly as received, what the reducer
/// compares, and the typed [`Call`], decoded from the text when first asked for.
struct Entry {
    /// The call object's text (the buffer is reused from one notification to the next).
    text: String,
    /// Where `userData` is in `text`; `None` when absent or null.
    user_data: Option<Range<usize>>,
    state: Option<CallState>,
    last: Option<NotificationType>,
    released_at: Option<Instant>,
    /// Boxed: most stores (replay, say) never ask for it, and a `Call` is large.
    typed: OnceLock<Box<Call>>,
}

impl Entry {
    fn call(&self) -> &Call {
        self.typed.get_or_init(|| Box::new(decode_call(&self.text)))
    }

    fn user_data_text(&self) -> Option<&str> {
        self.text.get(self.user_data.clone()?)
    }

    fn into_call(self) -> Call {
        match self.typed.into_inner() {
            Some(call) => *call,
            None => decode_call(&self.text),
        }
    }
}

/// The typed view of a call object's text. The reducer only checked the fields it reads, so
/// a known field of an unexpected shape (say `"capabilities":5`) is kept in `other`, as
/// received, rather than failing.
fn decode_call(text: &str) -> Call {
    if let Ok(call) = serde_json::from_str::<Call>(text) {
        return call;
    }
    let mut call = Call::default();
    for (key, range) in scan::members(text).unwrap_or_default() {
        let Some(value) = text.get(range) else {
            continue;
        };
        let mut de = serde_json::Deserializer::from_str(value);
        if call.take_field(key.clone(), &mut de).is_err() {
            if let Ok(raw) = RawJson::from_text(value) {
                call.other.push((key.into_owned(), raw));
            }
        }
    }
    call
}

/// The pairs of a `userData` object text (none for `None`), values as text.
fn pairs(text: Option<&str>) -> Vec<(Cow<'_, str>, JsonText<'_>)> {
    let mut out = Vec::new();
    if let Some(text) = text {
        out.reserve(16);
        scan::for_each_member(text, |k, r| {
            if let Some(v) = text.get(r) {
                out.push((k, JsonText(v)));
            }
        });
    }
    out
}

fn user_data_diff(old: Option<&str>, new: Option<&str>) -> UserDataDiff {
    if old == new {
        return UserDataDiff::default();
    }
    UserDataDiff::between_pairs(&pairs(old), &pairs(new))
}

/// The latest snapshot of every call, keyed by call id, in the order calls were first seen.
///
/// Each notification replaces its call's snapshot whole (GWS sends full snapshots; a missing
/// `userData` means the call has none). A call stays after `Released`, because its data can
/// still change during wrap-up; it leaves when a notification says `Completed`, or, when a
/// retention time is set, once that time has passed after `Released` (see
/// [`CallStore::expire`]). Applying the same message twice changes nothing the second time.
///
/// The store keeps each call object as the text it arrived in and reads from it only the id,
/// the state and the `userData` text; the user data is decoded and diffed only when that text
/// changed, and the typed [`Call`] is decoded only when asked for ([`CallStore::get`],
/// [`CallStore::calls`]). [`CallStore::apply_raw`] takes notifications read in one pass
/// ([`super::raw_calls_in_batch`], [`RawCallMessage::from_message`]) and keeps their call
/// text byte for byte; [`CallStore::apply`] takes typed ones, and keeps their encoding.
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
    calls: OrderedMap<Entry>,
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
            calls: OrderedMap::default(),
            retention: Some(retention),
        }
    }

    /// Applies one notification; `None` when it changes nothing.
    pub fn apply(&mut self, msg: &CallStateChangeMessage) -> Option<CallChange> {
        self.apply_typed(msg, None, || msg.call.clone())
    }

    /// Like [`CallStore::apply`], taking the message to avoid copying the call.
    pub fn apply_owned(&mut self, msg: CallStateChangeMessage) -> Option<CallChange> {
        // A typed call is kept as its encoding, which is what the reducer compares.
        let text = serde_json::to_string(&msg.call).ok()?;
        let raw = RawCallMessage::from_call_text(&text, msg.notification_type).ok()?;
        self.apply_inner(&raw, None, Some(msg.call))
    }

    /// Like [`CallStore::apply`], noting `now` as the time a call became `Released`.
    pub fn apply_at(&mut self, msg: &CallStateChangeMessage, now: Instant) -> Option<CallChange> {
        self.apply_typed(msg, Some(now), || msg.call.clone())
    }

    /// Applies a notification read in one pass, keeping its call text exactly as received;
    /// `None` when it changes nothing.
    pub fn apply_raw(&mut self, msg: &RawCallMessage<'_>) -> Option<CallChange> {
        self.apply_inner(msg, None, None)
    }

    /// Like [`CallStore::apply_raw`], but only says whether the store changed, without
    /// working out the [`CallChange`] (no user-data diff): for when only the resulting
    /// snapshot matters.
    pub fn update_raw(&mut self, msg: &RawCallMessage<'_>) -> bool {
        self.apply_fields(msg, None, None, false).is_some()
    }

    /// Like [`CallStore::apply_raw`], noting `now` as the time a call became `Released`.
    pub fn apply_raw_at(&mut self, msg: &RawCallMessage<'_>, now: Instant) -> Option<CallChange> {
        self.apply_inner(msg, Some(now), None)
    }

    fn apply_typed(
        &mut self,
        msg: &CallStateChangeMessage,
        now: Option<Instant>,
        call: impl FnOnce() -> Call,
    ) -> Option<CallChange> {
        // A typed call is kept as its encoding, which is what the reducer compares.
        let text = serde_json::to_string(&msg.call).ok()?;
        let raw = RawCallMessage::from_call_text(&text, msg.notification_type.clone()).ok()?;
        let change = self.apply_inner(&raw, now, None)?;
        // Remember the typed call so `get` need not decode it again.
        if let Some(entry) = self.calls.get_mut(raw.call_id()) {
            entry.typed = OnceLock::from(Box::new(call()));
        }
        Some(change)
    }

    fn apply_inner(
        &mut self,
        msg: &RawCallMessage<'_>,
        now: Option<Instant>,
        typed: Option<Call>,
    ) -> Option<CallChange> {
        self.apply_fields(msg, now, typed, true)?
    }

    /// Applies `msg`; `None` when nothing changed, else the change when `describe` asks
    /// for it.
    fn apply_fields(
        &mut self,
        msg: &RawCallMessage<'_>,
        now: Option<Instant>,
        typed: Option<Call>,
        describe: bool,
    ) -> Option<Option<CallChange>> {
        let state = msg.state();
        let completed = state == Some(&CallState::Completed);
        let released = state == Some(&CallState::Released);
        let Some(entry) = self.calls.get_mut(msg.call_id()) else {
            // A call first seen as `Completed` never enters the store.
            if completed {
                return None;
            }
            let change = describe.then(|| CallChange {
                call_id: msg.call_id().to_owned(),
                notification_type: msg.notification_type().cloned(),
                new: true,
                state: Some(StateTransition {
                    from: None,
                    to: state.cloned(),
                }),
                user_data: user_data_diff(None, msg.user_data_text()),
                removed: false,
            });
            self.calls.insert(
                msg.call_id().to_owned(),
                Entry {
                    text: msg.call_text().to_owned(),
                    user_data: msg.user_data_range(),
                    state: state.cloned(),
                    last: msg.notification_type().cloned(),
                    released_at: if released { now } else { None },
                    typed: typed
                        .map(|t| OnceLock::from(Box::new(t)))
                        .unwrap_or_default(),
                },
            );
            return Some(change);
        };
        if entry.last.as_ref() == msg.notification_type() && entry.text == msg.call_text() {
            return None;
        }
        let change = describe.then(|| CallChange {
            call_id: msg.call_id().to_owned(),
            notification_type: msg.notification_type().cloned(),
            new: false,
            state: (entry.state.as_ref() != state).then(|| StateTransition {
                from: entry.state.clone(),
                to: state.cloned(),
            }),
            user_data: user_data_diff(entry.user_data_text(), msg.user_data_text()),
            removed: completed,
        });
        if completed {
            self.calls.remove(msg.call_id());
        } else {
            entry.released_at = if released {
                entry.released_at.or(now)
            } else {
                None
            };
            entry.text.clear();
            entry.text.push_str(msg.call_text());
            entry.user_data = msg.user_data_range();
            if entry.state.as_ref() != state {
                entry.state = state.cloned();
            }
            if entry.last.as_ref() != msg.notification_type() {
                entry.last = msg.notification_type().cloned();
            }
            entry.typed = typed
                .map(|t| OnceLock::from(Box::new(t)))
                .unwrap_or_default();
        }
        Some(change)
    }

    /// Brings the store in line with the server's current calls (each the JSON text of one
    /// call object, as `GET /api/v2/me/calls` returns them) after notifications may have been
    /// missed. Returns a change for each call whose snapshot differs (with no
    /// `notification_type`), and a `removed` change for each stored call the server no longer
    /// has. Call objects without an `id` cannot be matched; they are skipped with a warning.
    pub fn reconcile(&mut self, current: &[Box<RawValue>]) -> Vec<CallChange> {
        let mut changes = Vec::new();
        let mut present = HashSet::with_capacity(current.len());
        for text in current {
            let msg = match RawCallMessage::from_call_text(text.get(), None) {
                Ok(msg) => msg,
                Err(e) => {
                    tracing::warn!("skipping a call the server listed: {e}");
                    continue;
                }
            };
            present.insert(msg.call_id().to_owned());
            let unchanged = self
                .calls
                .get(msg.call_id())
                .is_some_and(|e| e.text == msg.call_text());
            if !unchanged {
                changes.extend(self.apply_inner(&msg, None, None));
            }
        }
        self.calls.retain(|id, entry| {
            if present.contains(id) {
                return true;
            }
            changes.push(CallChange {
                call_id: id.to_owned(),
                notification_type: None,
                new: false,
                state: entry.state.is_some().then(|| StateTransition {
                    from: entry.state.clone(),
                    to: None,
                }),
                user_data: user_data_diff(entry.user_data_text(), None),
                removed: true,
            });
            false
        });
        changes
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
                let entry = Entry {
                    text: std::mem::take(&mut e.text),
                    user_data: e.user_data.take(),
                    state: None,
                    last: None,
                    released_at: None,
                    typed: std::mem::take(&mut e.typed),
                };
                gone.push(entry.into_call());
                false
            }
            _ => true,
        });
        gone
    }

    /// The call with `id` (decoded from its text the first time it is asked for).
    pub fn get(&self, id: &str) -> Option<&Call> {
        self.calls.get(id).map(Entry::call)
    }

    /// The text of the call with `id`, exactly as last received.
    pub fn get_text(&self, id: &str) -> Option<&str> {
        self.calls.get(id).map(|e| e.text.as_str())
    }

    /// Every call, in the order first seen.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter().map(|(_, e)| e.call())
    }

    /// The number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when there are no calls.
    pub fn is_empty(&self) -> bool {
        self.calls.len() == 0
    }

    /// The store as JSON: `{"calls": {"<id>": <call>, ...}}`, each call the text it last
    /// arrived in.
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

/// The serialized form of a [`CallStore`]: `{"calls": {"<id>": <call>, ...}}`.
pub struct Snapshot<'a>(&'a CallStore);

impl Serialize for Snapshot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Calls<'a>(&'a CallStore);
        impl Serialize for Calls<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.calls.len()))?;
                for (id, e) in self.0.calls.iter() {
                    // Borrowed, so this checks the text without copying it.
                    let raw: &RawValue =
                        serde_json::from_str(&e.text).map_err(serde::ser::Error::custom)?;
                    m.serialize_entry(id, raw)?;
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
            match RawCallMessage::from_message(&msg) {
                Ok(Some(m)) => {
                    if let Some(change) = this.store.apply_raw(&m) {
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
