//! [`CallStore`]: the latest snapshot of every call, and the [`CallChange`] each notification
//! makes.
//!
//! | module | what it is |
//! |---|---|
//! | `ordered` | the insertion-ordered map the calls live in |
//! | `changes` | [`Changes`]: a stream of Bayeux messages turned into a stream of changes |

mod changes;
mod members;
mod ordered;

use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

pub use self::changes::{Changes, MessageItem};
use self::members::Members;
use self::ordered::OrderedMap;
use super::model::diff::UserDataDiff;
use super::model::{Call, CallState, NotificationType};
use super::wire::{json, CallNotification};

/// A call's state before and after a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateTransition {
    /// The state before; `None` for a call not seen before (or sent without a state).
    pub from: Option<CallState>,
    /// The state after; `None` when the notification has no state.
    pub to: Option<CallState>,
}

/// Where a [`CallChange`] comes from: what a service needs to tell "it was already so" from
/// "it just happened".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeOrigin {
    /// A notification said so: it just happened. (Not written out: a change without
    /// `origin` is a notification's.)
    #[default]
    Notification,
    /// The feed started (or logged in again) and read the server's current calls: the call
    /// was already so when the feed arrived. Written `"origin":"catchUp"`.
    CatchUp,
    /// Messages may have been lost (a re-handshake, a lost reply): the server's current
    /// calls said so. It happened at some point while the feed was blind. Written
    /// `"origin":"heal"`.
    Heal,
}

impl ChangeOrigin {
    fn is_notification(&self) -> bool {
        *self == ChangeOrigin::Notification
    }
}

/// What one notification (or one reading of the server's calls) changed in the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallChange {
    /// The call's id.
    pub call_id: String,
    /// Where the change comes from.
    #[serde(skip_serializing_if = "ChangeOrigin::is_notification")]
    pub origin: ChangeOrigin,
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

/// What [`CallStore::apply`] did: enough to say what changed at no cost, and the whole
/// [`CallChange`] (with the user-data diff, which takes work) when asked for.
#[derive(Debug)]
pub struct Applied<'a> {
    call_id: &'a str,
    origin: ChangeOrigin,
    /// The call's text before, when it was in the store.
    old_text: Option<&'a str>,
    /// Its text now (the notification's).
    new_text: &'a str,
    notification_type: Option<&'a NotificationType>,
    new: bool,
    state: Option<StateTransition>,
    removed: bool,
    old_user_data: Option<&'a str>,
    new_user_data: Option<&'a str>,
    /// Where the old `userData`'s members are, when the store knew.
    old_members: Option<Members>,
    /// Where the call's entry keeps its members, to fill for the next diff.
    cache: Option<&'a mut Option<Members>>,
    /// The new `userData` is over a limit and was not read: no diff.
    user_data_unread: bool,
}

impl Applied<'_> {
    /// The call's id.
    pub fn call_id(&self) -> &str {
        self.call_id
    }

    /// True when the call was not in the store before.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// True when the call left the store.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// The state transition, when the state changed.
    pub fn state(&self) -> Option<&StateTransition> {
        self.state.as_ref()
    }

    /// The call's text before the change; `None` for a call new to the store.
    pub fn previous_text(&self) -> Option<&str> {
        self.old_text
    }

    /// The call's text the change leaves (the last one seen, for a call that left the
    /// store).
    pub fn text(&self) -> &str {
        self.new_text
    }

    /// Marks where the change comes from (a notification unless said otherwise).
    pub fn with_origin(mut self, origin: ChangeOrigin) -> Self {
        self.origin = origin;
        self
    }

    /// The whole change, user-data diff included.
    pub fn change(&mut self) -> CallChange {
        let old = self.old_user_data.map(|t| (t, self.old_members.as_deref()));
        let (user_data, members) = match (old, self.new_user_data) {
            _ if self.user_data_unread => (UserDataDiff::default(), None),
            (Some((a, _)), Some(b)) if a == b => (UserDataDiff::default(), self.old_members.take()),
            (old, new) => members::diff(old, new),
        };
        if let Some(cache) = self.cache.as_deref_mut() {
            *cache = members;
        }
        CallChange {
            call_id: self.call_id.to_owned(),
            origin: self.origin,
            notification_type: self.notification_type.cloned(),
            new: self.new,
            state: self.state.clone(),
            user_data,
            removed: self.removed,
        }
    }
}

/// One change a [`CallStore::reconcile`] made, with the call's text before (`None` for a
/// call new to the store) and after (`None` for a call that left it).
#[derive(Clone, Debug, PartialEq)]
pub struct Reconciled {
    /// The change.
    pub change: CallChange,
    /// The call's text before.
    pub previous: Option<String>,
    /// The call's text after.
    pub call: Option<String>,
}

/// Whether two texts of one call differ at most in the members the server renders from its
/// clock (`duration`), member for member otherwise.
fn same_but_the_clock(a: &str, b: &str) -> bool {
    const CLOCK: &str = "\"duration\"";
    fn members(t: &str) -> Option<Vec<(&str, &str)>> {
        let members = json::members(t)?;
        Some(
            members
                .into_iter()
                .map(|m| (t.get(m.key).unwrap_or(""), t.get(m.value).unwrap_or("")))
                .filter(|(k, _)| *k != CLOCK)
                .collect(),
        )
    }
    match (members(a), members(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The change between two snapshots of one call's text (`None`: not there), as the store
/// would report it; for consumers that merge several changes into one.
pub fn change_between(
    call_id: &str,
    before: Option<&str>,
    after: Option<&str>,
    origin: ChangeOrigin,
    notification_type: Option<NotificationType>,
) -> CallChange {
    fn read(text: Option<&str>) -> Option<CallNotification<'_>> {
        CallNotification::from_listed_call_text(text?, None).ok()
    }
    let (old, new) = (read(before), read(after));
    let unread =
        |c: &Option<CallNotification<'_>>| c.as_ref().is_some_and(|c| c.user_data_unread());
    let user_data = if unread(&old) || unread(&new) {
        UserDataDiff::default()
    } else {
        user_data_diff(
            old.as_ref().and_then(|c| c.user_data_text()),
            new.as_ref().and_then(|c| c.user_data_text()),
        )
    };
    let old_state = old.as_ref().and_then(|c| c.state().cloned());
    let new_state = new.as_ref().and_then(|c| c.state().cloned());
    let removed = after.is_none() || new_state == Some(CallState::Completed);
    CallChange {
        call_id: call_id.to_owned(),
        origin,
        notification_type,
        new: before.is_none(),
        state: (before.is_none() || old_state != new_state).then_some(StateTransition {
            from: old_state,
            to: new_state,
        }),
        user_data,
        removed,
    }
}

/// One call in the store: its last call object exactly as received, what the reducer
/// compares, and the typed [`Call`], decoded from the text when first asked for.
struct Entry {
    /// The call object's text (buffers are reused from one notification to the next).
    text: String,
    /// Where `userData` is in `text`; `None` when absent or null.
    user_data: Option<Range<usize>>,
    state: Option<CallState>,
    last: Option<NotificationType>,
    released_at: Option<Instant>,
    /// Boxed: most stores (replay, say) never ask for it, and a `Call` is large.
    typed: OnceLock<Box<Call>>,
    /// Where the members of `userData` are, once a diff has read them.
    members: Option<Members>,
}

impl Entry {
    fn call(&self) -> &Call {
        self.typed.get_or_init(|| Box::new(Call::read(&self.text)))
    }

    fn user_data_text(&self) -> Option<&str> {
        self.text.get(self.user_data.clone()?)
    }

    fn into_call(self) -> Call {
        match self.typed.into_inner() {
            Some(call) => *call,
            None => Call::read(&self.text),
        }
    }
}

fn user_data_diff(old: Option<&str>, new: Option<&str>) -> UserDataDiff {
    if old == new {
        return UserDataDiff::default();
    }
    fn pairs(text: Option<&str>) -> members::Pairs<'_> {
        text.map_or_else(members::Pairs::none, |t| members::pairs_of(t, None).0)
    }
    members::between(pairs(old), pairs(new))
}

/// The latest snapshot of every call, keyed by call id, in the order calls were first seen.
///
/// Each notification replaces its call's snapshot whole (GWS sends full snapshots; a missing
/// `userData` means the call has none). A call stays after `Released`, because its data can
/// still change during wrap-up; it leaves when a notification says `Completed`, or, when a
/// retention time is set, once that time has passed after `Released` (see
/// [`CallStore::expire`]). Applying the same message twice changes nothing the second time.
///
/// Calls enter through [`CallStore::apply`] only, as [`CallNotification`]s: read from the
/// wire ([`crate::gws::wire::decode`], [`crate::gws::wire::calls_in_text`]), from a call
/// object's text ([`CallNotification::from_call_text`]), or from a typed
/// [`CallStateChangeMessage`](crate::gws::CallStateChangeMessage) through its
/// [`call_text`](crate::gws::CallStateChangeMessage::call_text). The store keeps each call
/// object byte for byte as it arrived and reads from it only the id, the state and the
/// `userData` text; the typed [`Call`] is decoded only when asked for ([`CallStore::get`],
/// [`CallStore::calls`]).
///
/// ```
/// use std::time::Instant;
/// use gws_cometd::gws::wire::{self, Notification};
/// use gws_cometd::gws::CallStore;
///
/// let data = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged",
///     "call":{"id":"c1","state":"Established","userData":{"AccountNumber":"12345"}}}"#;
/// let Notification::Call(call) = wire::decode_data(data).unwrap() else { unreachable!() };
/// let mut store = CallStore::new();
/// let change = store.apply(&call, Instant::now()).unwrap().change();
/// assert_eq!(change.user_data.added.len(), 1);
/// assert!(store.apply(&call, Instant::now()).is_none());
/// ```
#[derive(Default)]
pub struct CallStore {
    calls: OrderedMap<Entry>,
    retention: Option<Duration>,
    /// The text a call had before the last change: what [`Applied::change`] diffs against.
    previous: String,
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
    /// [`CallStore::expire`]).
    pub fn with_retention(retention: Duration) -> Self {
        CallStore {
            retention: Some(retention),
            ..CallStore::default()
        }
    }

    /// Applies one notification, received at `now`; `None` when it changes nothing.
    pub fn apply<'a>(
        &'a mut self,
        msg: &'a CallNotification<'_>,
        now: Instant,
    ) -> Option<Applied<'a>> {
        let state = msg.state();
        let completed = state == Some(&CallState::Completed);
        let released = state == Some(&CallState::Released);
        let id = msg.call_id();
        let Some(at) = self.calls.find(id) else {
            // A call first seen as `Completed` never enters the store.
            if completed {
                return None;
            }
            self.calls.insert(
                id.to_owned(),
                Entry {
                    text: msg.call_text().to_owned(),
                    user_data: msg.user_data_range(),
                    state: state.cloned(),
                    last: msg.notification_type().cloned(),
                    released_at: released.then_some(now),
                    typed: OnceLock::new(),
                    members: None,
                },
            );
            let cache = self.calls.get_mut(id).map(|e| &mut e.members);
            return Some(Applied {
                old_members: None,
                cache,
                call_id: id,
                origin: ChangeOrigin::Notification,
                old_text: None,
                new_text: msg.call_text(),
                notification_type: msg.notification_type(),
                new: true,
                state: Some(StateTransition {
                    from: None,
                    to: state.cloned(),
                }),
                removed: false,
                old_user_data: None,
                new_user_data: msg.user_data_text(),
                user_data_unread: msg.user_data_unread(),
            });
        };
        let entry = self.calls.at_mut(at)?;
        // The same notification again (a redelivery) is nothing new; so is the first
        // notification of a call exactly as a read of the server's calls found it. (The
        // cheap test first: the texts are compared only when it passes.)
        let (read, again) = (
            entry.last.is_none(),
            entry.last.as_ref() == msg.notification_type(),
        );
        if (read || again) && entry.text == msg.call_text() {
            entry.last = msg.notification_type().cloned();
            return None;
        }
        let transition = (entry.state.as_ref() != state).then(|| StateTransition {
            from: entry.state.clone(),
            to: state.cloned(),
        });
        let old_user_data = entry.user_data.clone();
        let old_members = entry.members.take();
        let mut cache = None;
        if completed {
            if let Some(gone) = self.calls.remove_at(at) {
                self.previous = gone.text;
            }
        } else {
            let entry = self.calls.at_mut(at)?;
            // The old text moves to `previous`, for the diff; its buffer takes the new one.
            std::mem::swap(&mut entry.text, &mut self.previous);
            entry.text.clear();
            entry.text.push_str(msg.call_text());
            entry.user_data = msg.user_data_range();
            entry.released_at = if released {
                entry.released_at.or(Some(now))
            } else {
                None
            };
            if entry.state.as_ref() != state {
                entry.state = state.cloned();
            }
            if entry.last.as_ref() != msg.notification_type() {
                entry.last = msg.notification_type().cloned();
            }
            entry.typed = OnceLock::new();
            cache = Some(&mut entry.members);
        }
        Some(Applied {
            old_members,
            cache,
            call_id: id,
            origin: ChangeOrigin::Notification,
            old_text: Some(self.previous.as_str()),
            new_text: msg.call_text(),
            notification_type: msg.notification_type(),
            new: false,
            state: transition,
            removed: completed,
            old_user_data: old_user_data.and_then(|r| self.previous.get(r)),
            new_user_data: msg.user_data_text(),
            user_data_unread: msg.user_data_unread(),
        })
    }

    /// Brings the store in line with the server's current calls (each the JSON text of one
    /// call object, as `GET /api/v2/me/calls` returns them, or v3's `current-session` in
    /// `data.user.activeSession.calls`: either generation, keyed by `id`), read at `now` after
    /// notifications may have been missed. Calls for which `keep` says true are left as they
    /// are (the feed's: a notification about them arrived while the list was being read, so
    /// the store may already know better). Returns what changed, marked `origin`, with each
    /// call's text before and after: a change for each call whose snapshot differs (with no
    /// `notification_type`), and a `removed` one for each stored call the server no longer
    /// has. Call objects without an `id` cannot be matched; they are skipped with a warning. A
    /// call whose `userData` is over [`MAX_USER_DATA_DEPTH`](crate::gws::MAX_USER_DATA_DEPTH)
    /// is kept as listed, its user data not compared (a warning says so).
    pub fn reconcile(
        &mut self,
        current: &[Box<RawValue>],
        now: Instant,
        origin: ChangeOrigin,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<Reconciled> {
        let mut out = Vec::new();
        let mut present = HashSet::with_capacity(current.len());
        for text in current {
            let msg = match CallNotification::from_listed_call_text(text.get(), None) {
                Ok(msg) => msg,
                Err(e) => {
                    tracing::warn!("skipping a call the server listed: {e}");
                    continue;
                }
            };
            if msg.user_data_unread() {
                tracing::warn!(
                    call = msg.call_id(),
                    "the server lists a call whose userData nests deeper than {} levels: kept as listed, its user data not compared",
                    crate::gws::MAX_USER_DATA_DEPTH
                );
            }
            present.insert(msg.call_id().to_owned());
            if keep(msg.call_id()) {
                continue;
            }
            let stored = self.calls.get(msg.call_id()).map(|e| e.text.as_str());
            if stored == Some(msg.call_text()) {
                continue;
            }
            if stored.is_some_and(|t| same_but_the_clock(t, msg.call_text())) {
                // The server renders `duration` afresh for every list: the call did not
                // change. The store takes the server's text, and nobody is told.
                let _ = self.apply(&msg, now);
                continue;
            }
            if let Some(applied) = self.apply(&msg, now) {
                let mut applied = applied.with_origin(origin);
                out.push(Reconciled {
                    change: applied.change(),
                    previous: applied.previous_text().map(str::to_owned),
                    call: Some(applied.text().to_owned()),
                });
            }
        }
        self.calls.retain(|id, entry| {
            if present.contains(id) || keep(id) {
                return true;
            }
            out.push(Reconciled {
                change: CallChange {
                    call_id: id.to_owned(),
                    origin,
                    notification_type: None,
                    new: false,
                    state: entry.state.is_some().then(|| StateTransition {
                        from: entry.state.clone(),
                        to: None,
                    }),
                    user_data: user_data_diff(entry.user_data_text(), None),
                    removed: true,
                },
                previous: Some(std::mem::take(&mut entry.text)),
                call: None,
            });
            false
        });
        out
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
                    members: None,
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
