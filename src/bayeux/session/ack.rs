//! The acknowledged-messages extension, client side (CometD's `AckExtension`).
//!
//! The handshake asks with `ext:{ack:true}`; a server that agrees answers `ext:{ack:true}`
//! (or `{enabled:true,batch:N}`). Every connect then sends back the batch number of the last
//! connect reply received **whole**, and the server keeps every message it has not seen
//! acknowledged, resending all of them, from the first, in their original order, at the head
//! of every connect reply until they are.
//!
//! So after a connect reply is cut, the next one starts with the same messages. The session
//! counts the elements of each connect reply (the `/meta/connect` answer itself aside) and
//! remembers a [`Fingerprint`] of each one it let through since the last acknowledged batch:
//! an element at a position already delivered is a duplicate and is dropped, after checking
//! that its fingerprint is the one delivered there. A different one means the server's queue is not what
//! was delivered (it was rebuilt, or another node answers): that is reported as a gap and
//! delivery goes on from there. State lives per session: a new handshake starts afresh.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What identifies an element of a connect reply, to tell a redelivery from another message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fingerprint {
    /// A hash of its text.
    Text(u64),
    /// An element over the size limit is never read whole, so its size stands for it.
    TooLarge {
        /// Its size in bytes, as far as it was read.
        size: u64,
    },
}

/// What to do with one element of a connect reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not delivered before: hand it out.
    Deliver,
    /// Delivered before a cut, redelivered now: drop it.
    Duplicate,
    /// At a position delivered before, but not the same message: hand it out, and report a
    /// gap.
    Mismatch,
}

/// The extension's state on a session whose server agreed to it.
#[derive(Debug, Default)]
pub(super) struct Ack {
    /// The last batch received whole; 0 before any.
    batch: u64,
    /// The elements delivered since that batch, in position order.
    delivered: Vec<Fingerprint>,
}

/// The handshake `ext`: the application's, with `ack:true` added.
pub(super) fn handshake_ext(app: Option<&RawValue>) -> Box<RawValue> {
    let text = match app.map(|a| a.get().trim()) {
        Some(t) if t.starts_with('{') => match t[1..].trim_start().strip_prefix('}') {
            Some(_) => r#"{"ack":true}"#.to_owned(),
            None => format!(r#"{{"ack":true,{}"#, &t[1..]),
        },
        // Not an object: it cannot carry the request, so it goes as the application gave it.
        Some(t) => t.to_owned(),
        None => r#"{"ack":true}"#.to_owned(),
    };
    // Built from valid JSON text, so this parses; `null` (no ext) is the fallback.
    RawValue::from_string(text).unwrap_or_default()
}

#[derive(Deserialize)]
struct AckField<'a> {
    #[serde(borrow)]
    ack: Option<&'a RawValue>,
}

fn ack_field(ext: Option<&RawValue>) -> Option<&RawValue> {
    serde_json::from_str::<AckField<'_>>(ext?.get()).ok()?.ack
}

impl Ack {
    /// The extension as a handshake reply's `ext` grants it: `None` when it does not.
    pub(super) fn granted(ext: Option<&RawValue>) -> Option<Ack> {
        #[derive(Deserialize)]
        struct Enabled {
            enabled: Option<bool>,
            batch: Option<u64>,
        }
        let field = ack_field(ext)?;
        match field.get() {
            "true" => Some(Ack::default()),
            text if text.starts_with('{') => {
                let e: Enabled = serde_json::from_str(text).ok()?;
                (e.enabled == Some(true)).then(|| Ack {
                    batch: e.batch.unwrap_or(0),
                    delivered: Vec::new(),
                })
            }
            _ => None,
        }
    }

    /// The `ext` of the next connect.
    pub(super) fn connect_ext(&self) -> Box<RawValue> {
        let text = format!(r#"{{"ack":{}}}"#, self.batch);
        RawValue::from_string(text).unwrap_or_default()
    }

    /// Element `position` (0-based, `/meta/connect` answers not counted) of a connect reply.
    pub(super) fn element(&mut self, position: usize, element: Fingerprint) -> Verdict {
        match self.delivered.get(position) {
            Some(&f) if f == element => Verdict::Duplicate,
            Some(_) => {
                self.delivered.truncate(position);
                self.delivered.push(element);
                Verdict::Mismatch
            }
            None => {
                // Positions past the delivered ones are new, whatever came between.
                self.delivered.push(element);
                Verdict::Deliver
            }
        }
    }

    /// A connect reply arrived whole and successful, with this `ext`: its batch number, if
    /// it has one, is acknowledged by the next connect, and nothing before it comes again.
    pub(super) fn reply_received(&mut self, ext: Option<&RawValue>) {
        if let Some(batch) = ack_field(ext).and_then(|f| f.get().parse::<u64>().ok()) {
            self.batch = batch;
        }
        self.delivered.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hash: u64) -> Fingerprint {
        Fingerprint::Text(hash)
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn the_handshake_asks_for_it_beside_the_applications_ext() {
        assert_eq!(handshake_ext(None).get(), r#"{"ack":true}"#);
        assert_eq!(handshake_ext(Some(&raw("{ }"))).get(), r#"{"ack":true}"#);
        assert_eq!(
            handshake_ext(Some(&raw(r#"{"auth":{"token":"t"}}"#))).get(),
            r#"{"ack":true,"auth":{"token":"t"}}"#
        );
        assert_eq!(handshake_ext(Some(&raw("[1]"))).get(), "[1]");
    }

    #[test]
    fn a_server_grants_it_with_true_or_an_enabled_object() {
        assert!(Ack::granted(Some(&raw(r#"{"ack":true}"#))).is_some());
        let a = Ack::granted(Some(&raw(r#"{"ack":{"enabled":true,"batch":7}}"#))).unwrap();
        assert_eq!(a.connect_ext().get(), r#"{"ack":7}"#);
        for no in [
            r#"{"ack":false}"#,
            r#"{"ack":"true"}"#,
            r#"{"ack":{"enabled":false}}"#,
            "{}",
            "5",
        ] {
            assert!(Ack::granted(Some(&raw(no))).is_none(), "{no}");
        }
        assert!(Ack::granted(None).is_none());
    }

    #[test]
    fn elements_delivered_before_a_cut_are_dropped_once_redelivered() {
        let mut a = Ack::default();
        // A reply cut after two elements.
        assert_eq!(a.element(0, t(10)), Verdict::Deliver);
        assert_eq!(a.element(1, t(11)), Verdict::Deliver);
        // Redelivered from the first, with one more.
        assert_eq!(a.element(0, t(10)), Verdict::Duplicate);
        assert_eq!(a.element(1, t(11)), Verdict::Duplicate);
        assert_eq!(a.element(2, t(12)), Verdict::Deliver);
        a.reply_received(Some(&raw(r#"{"ack":4}"#)));
        assert_eq!(a.connect_ext().get(), r#"{"ack":4}"#);
        // Acknowledged: the next reply's first element is new.
        assert_eq!(a.element(0, t(10)), Verdict::Deliver);
        // A reply without a batch number keeps the last one.
        a.reply_received(None);
        assert_eq!(a.connect_ext().get(), r#"{"ack":4}"#);
    }

    #[test]
    fn a_redelivery_that_differs_is_a_mismatch_and_delivery_goes_on() {
        let mut a = Ack::default();
        a.element(0, t(10));
        a.element(1, t(11));
        assert_eq!(a.element(0, t(10)), Verdict::Duplicate);
        assert_eq!(a.element(1, t(99)), Verdict::Mismatch);
        assert_eq!(a.element(2, t(12)), Verdict::Deliver);
        // What counts as delivered is now what was handed out last.
        assert_eq!(a.element(1, t(99)), Verdict::Duplicate);
    }

    #[test]
    fn an_element_over_the_limit_is_known_by_its_size_never_taken_for_a_hash() {
        let mut a = Ack::default();
        assert_eq!(
            a.element(0, Fingerprint::TooLarge { size: 18 }),
            Verdict::Deliver
        );
        assert_eq!(
            a.element(0, Fingerprint::TooLarge { size: 18 }),
            Verdict::Duplicate
        );
        // A text whose hash happens to equal the size is another element.
        assert_eq!(a.element(0, t(18)), Verdict::Mismatch);
    }
}
