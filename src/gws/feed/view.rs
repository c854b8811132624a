//! [`CallView`]: the call a [`CallEvent`](super::CallEvent) carries, its exact text and its
//! typed [`Call`] read from that text once, when first asked for.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};

use crate::gws::model::{Call, RawJson};

/// A call as a change left it: the call object exactly as GWS sent it, and the typed
/// [`Call`] read from that text.
///
/// The typed call is decoded by the crate's one reader of call objects (the one behind
/// [`CallStore::get`](crate::gws::CallStore::get)) the first time a field is asked for, and
/// kept: a service that only forwards the text never pays for it, one that reads several
/// fields pays once. `CallView` dereferences to [`Call`], so `call.state`,
/// `call.user_data()`, `call.ani` and `call.participants` read as on a `Call`; the text is
/// [`text`](CallView::text) (and what `CallView` serializes to, byte for byte).
///
/// ```
/// use gws_cometd::gws::{CallState, CallView};
///
/// let call = CallView::from_text(
///     r#"{"id":"c1","state":"Established","ani":"5551234","userData":{"A":"1","A":2}}"#,
/// )
/// .unwrap();
/// assert_eq!(call.state, Some(CallState::Established));
/// assert_eq!(call.ani.as_deref(), Some("5551234"));
/// let a: Vec<String> = call.user_data().get_all("A").map(|v| v.to_string()).collect();
/// assert_eq!(a, ["1", "2"]);
/// // The text as received, for services that forward the call exactly.
/// assert!(call.text().starts_with(r#"{"id":"c1","#));
/// ```
#[derive(Clone)]
pub struct CallView {
    raw: RawJson,
    /// Boxed: a `Call` is large, and many events are never asked for it.
    typed: OnceLock<Box<Call>>,
}

impl CallView {
    /// A view of the call object `text` (e.g. a call a test builds, or one kept from
    /// [`CallStore::get_text`](crate::gws::CallStore::get_text)). Fails only when the text
    /// is not JSON; a value that does not fit the model reads as lenient as the feed reads
    /// it (unknown fields and odd shapes kept in `other`).
    pub fn from_text(text: impl Into<String>) -> Result<CallView, serde_json::Error> {
        RawJson::from_text(text).map(CallView::from)
    }

    /// The call object's text, exactly as received.
    pub fn text(&self) -> &str {
        self.raw.get()
    }

    /// The call object as exact JSON.
    pub fn raw(&self) -> &RawJson {
        &self.raw
    }

    /// The typed call, read from the text the first time it is asked for.
    pub fn call(&self) -> &Call {
        self.typed
            .get_or_init(|| Box::new(Call::read(self.raw.get())))
    }

    /// The typed call, owned.
    pub fn into_call(self) -> Call {
        match self.typed.into_inner() {
            Some(call) => *call,
            None => Call::read(self.raw.get()),
        }
    }

    /// The exact text, owned.
    pub fn into_raw(self) -> RawJson {
        self.raw
    }
}

impl From<RawJson> for CallView {
    fn from(raw: RawJson) -> Self {
        CallView {
            raw,
            typed: OnceLock::new(),
        }
    }
}

impl Deref for CallView {
    type Target = Call;

    fn deref(&self) -> &Call {
        self.call()
    }
}

impl AsRef<Call> for CallView {
    fn as_ref(&self) -> &Call {
        self.call()
    }
}

/// Two views are equal when their texts are.
impl PartialEq for CallView {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for CallView {}

/// The text, as [`RawJson`] shows it.
impl fmt::Debug for CallView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallView").field(&self.raw).finish()
    }
}

/// Writes the text exactly as received.
impl Serialize for CallView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::CallType;

    const TEXT: &str = r#"{"id":"c1","state":"Ringing","callType":"Inbound","dnis":"8000","participants":[{"phoneNumber":"5001"}],"userData":{"K":"1","K":"2","Big":9007199254740993},"odd":[1 , 2]}"#;

    #[test]
    fn a_view_reads_the_typed_call_from_its_text_once() {
        let view = CallView::from_text(TEXT).unwrap();
        assert!(view.typed.get().is_none(), "nothing read before asked");
        assert_eq!(view.call_type, Some(CallType::Inbound));
        let first: *const Call = view.call();
        assert_eq!(view.dnis.as_deref(), Some("8000"));
        assert!(std::ptr::eq(first, view.call()), "read once, kept");
        let pairs: Vec<(&str, String)> = view
            .user_data()
            .iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("K", "1".to_owned()),
                ("K", "2".to_owned()),
                ("Big", "9007199254740993".to_owned())
            ]
        );
        let participants = view.participants.as_ref().unwrap();
        assert_eq!(participants[0].phone_number(), Some("5001"));
    }

    #[test]
    fn a_view_keeps_and_writes_back_the_exact_text() {
        let view = CallView::from_text(TEXT).unwrap();
        assert_eq!(view.text(), TEXT);
        let _ = view.call();
        assert_eq!(serde_json::to_string(&view).unwrap(), TEXT);
        assert_eq!(view.clone(), view);
        assert_eq!(view.clone().into_raw().get(), TEXT);
        assert_eq!(view.into_call().other[0].0, "odd");
    }

    #[test]
    fn a_view_of_an_odd_call_reads_as_leniently_as_the_store() {
        let view = CallView::from_text(r#"{"id":"c2","state":7,"notificationType":"X"}"#).unwrap();
        assert_eq!(view.id, "c2");
        assert_eq!(view.state, None);
        assert!(view.other.iter().any(|(k, _)| k == "state"));
        assert!(CallView::from_text("{").is_err());
    }
}
