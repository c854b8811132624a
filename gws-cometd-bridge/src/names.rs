//! Names in NATS: one subject token per agent name and per call id, the subject of a call's
//! changes, its KV key, and the stable hash shards are cut by.
//!
//! # Escaping (`=XX`)
//!
//! NATS subjects are split at `.`, treat `*` and `>` tokens as wildcards, and KV keys allow
//! only `[-/_=.A-Za-z0-9]`. An agent name (`jdoe@example.com`) or a call id can hold any of
//! these, so each becomes **one token**: ASCII letters, digits, `-` and `_` stand for
//! themselves; every other byte of its UTF-8 text becomes `=` and two upper-case hex digits.
//!
//! | name | token |
//! |---|---|
//! | `jdoe` | `jdoe` |
//! | `jdoe@example.com` | `jdoe=40example=2Ecom` |
//! | `a.b` | `a=2Eb` |
//! | `=` | `=3D` |
//! | `0071025563e9f00f` | `0071025563e9f00f` |
//!
//! The scheme is injective and reversible ([`unescape_token`]); tokens are valid in subjects
//! and in KV keys, and `gws.calls.<agent token>.>` matches exactly one agent's calls. Empty
//! names have no token.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::BridgeError;

/// The prefix of every change subject: `gws.calls.<agent>.<call id>`.
pub const SUBJECT_PREFIX: &str = "gws.calls";

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The token for `name` (see the [module docs](self)); `None` for an empty name.
pub fn escape_token(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len() + 8);
    for b in name.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    Some(out)
}

/// The name a token stands for; `None` for anything [`escape_token`] cannot produce
/// (lower-case hex, an escaped unreserved byte, a reserved byte, invalid UTF-8, empty).
pub fn unescape_token(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'A'..=b'F' => Some(c - b'A' + 10),
                    _ => None,
                };
                let b = digit(hex[0])? << 4 | digit(hex[1])?;
                if unreserved(b) {
                    return None;
                }
                out.push(b);
                i += 3;
            }
            b if unreserved(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Where one call of one agent lives in NATS: its subject in `GWS_CALLS` and its key in the
/// `gws_calls` bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallAddress {
    /// `<agent token>.<call token>`: the KV key. Both tokens, so that the two agents of one
    /// internal call (same call id) never share a key.
    pub key: String,
    /// `gws.calls.<agent token>.<call token>`.
    pub subject: String,
}

impl CallAddress {
    /// The address of `call_id` of `agent`. Fails on an empty name or id.
    pub fn new(agent: &str, call_id: &str) -> Result<Self, BridgeError> {
        let a = escape_token(agent).ok_or_else(|| BridgeError::InvalidName {
            what: "agent name",
            reason: "it is empty".into(),
        })?;
        Self::with_agent_token(&a, call_id)
    }

    /// The address of `call_id` of the agent whose token is `agent_token`.
    pub(crate) fn with_agent_token(agent_token: &str, call_id: &str) -> Result<Self, BridgeError> {
        let c = escape_token(call_id).ok_or_else(|| BridgeError::InvalidName {
            what: "call id",
            reason: "it is empty".into(),
        })?;
        let key = format!("{agent_token}.{c}");
        let subject = format!("{SUBJECT_PREFIX}.{key}");
        Ok(CallAddress { key, subject })
    }
}

/// The shard an agent belongs to among `count`: the first 8 bytes of the SHA-256 digest of
/// the name's UTF-8 bytes, read as a big-endian unsigned 64-bit integer, modulo `count`
/// (`count` 0 counts as 1). Stable across processes, machines and versions; reproducible
/// with `printf %s NAME | sha256sum` (the first 16 hex digits, mod `count`).
pub fn shard_of(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// A short, stable fingerprint of a call's state: the first 8 bytes of SHA-256 over the
/// call object's members as GWS wrote them (name and value text, in order), except
/// `duration`, as 16 lower-case hex digits; [`REMOVED`] for a call that left.
///
/// `duration` counts seconds: the server's list of calls renders it afresh, so a catch-up
/// or heal would otherwise never match the notification that left the call so. Text that
/// is not a JSON object is hashed whole.
pub fn state_fingerprint(text: Option<&str>) -> String {
    let Some(text) = text else {
        return REMOVED.to_owned();
    };
    let mut hasher = Sha256::new();
    match serde_json::from_str::<Members<'_>>(text) {
        Ok(Members(members)) => {
            for (key, value) in members.iter().filter(|(k, _)| k != "duration") {
                hasher.update(key.as_bytes());
                hasher.update([0]);
                hasher.update(value.get().as_bytes());
                hasher.update([0]);
            }
        }
        Err(_) => hasher.update(text.as_bytes()),
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(16);
    for b in &digest[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// An object's members in order, duplicates kept, each value as its exact text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The state fingerprint of a call that left the store.
pub const REMOVED: &str = "removed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_should_be_reversible_and_injective() {
        let names = [
            "jdoe",
            "jdoe@example.com",
            "a.b",
            "a=2Eb",
            "*",
            ">",
            "a b",
            "ünï",
            "=",
            "x/y",
            "0071025563e9f00f",
            "a\tb",
            "$KV",
        ];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let token = escape_token(name).unwrap();
            assert_eq!(unescape_token(&token).as_deref(), Some(name), "{name:?}");
            assert!(seen.insert(token.clone()), "{token:?} twice");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)),
                "{token:?}"
            );
        }
        assert_eq!(
            escape_token("jdoe@example.com").unwrap(),
            "jdoe=40example=2Ecom"
        );
        assert_eq!(
            escape_token("0071025563e9f00f").unwrap(),
            "0071025563e9f00f"
        );
        assert_eq!(escape_token(""), None);
        for bad in ["", "a.b", "=2e", "=41", "=4", "a b", "=FF", "=C3"] {
            assert_eq!(unescape_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_address_should_escape_both_tokens() {
        let a = CallAddress::new("jdoe@x.com", "c.1").unwrap();
        assert_eq!(a.key, "jdoe=40x=2Ecom.c=2E1");
        assert_eq!(a.subject, "gws.calls.jdoe=40x=2Ecom.c=2E1");
        assert!(CallAddress::new("", "c1").is_err());
        assert!(CallAddress::new("a", "").is_err());
    }

    #[test]
    fn shards_should_follow_the_documented_formula() {
        // printf %s agent0001 | sha256sum → the first 16 hex digits, as an integer.
        let digest = Sha256::digest(b"agent0001");
        let n = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(shard_of("agent0001", 7), (n % 7) as u32);
        assert_eq!(shard_of("anyone", 1), 0);
        assert_eq!(shard_of("anyone", 0), 0);
        // Every shard of 4 gets some of 1 000 names, none most of them.
        let mut counts = [0u32; 4];
        for i in 0..1000 {
            counts[shard_of(&format!("agent{i:04}"), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (150..350).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn state_hashes_should_be_short_stable_and_distinct() {
        let a = state_fingerprint(Some(r#"{"id":"c1"}"#));
        assert_eq!(a.len(), 16);
        assert_eq!(a, state_fingerprint(Some(r#"{"id":"c1"}"#)));
        assert_ne!(a, state_fingerprint(Some(r#"{"id":"c2"}"#)));
        assert_eq!(state_fingerprint(None), REMOVED);
        // The seconds a call has lasted are not its state.
        assert_eq!(
            state_fingerprint(Some(r#"{"id":"c1","duration":"1","state":"Held"}"#)),
            state_fingerprint(Some(r#"{"id":"c1","duration":"7","state":"Held"}"#))
        );
        assert_ne!(
            state_fingerprint(Some(r#"{"id":"c1","state":"Held"}"#)),
            state_fingerprint(Some(r#"{"id":"c1","state":"Established"}"#))
        );
        // Not an object: the whole text.
        assert_eq!(state_fingerprint(Some("[1]")).len(), 16);
    }
}
