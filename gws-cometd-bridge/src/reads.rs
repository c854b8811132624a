//! The reads of `GWS_CALLS` and the KV the [`protocol`](super::protocol) asks for: a
//! subject's last message, the walk after a base, a KV entry's revision and sequence.

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::HeaderMap;

use super::error::BridgeError;
use super::layout::BUCKET_PREFIX;
use super::names::unescape_token;
use super::protocol::{Base, KvSeen, Walk};
use super::writer::{SEQ_HEADER, STATE_HEADER};

/// A walk after a base reads at most this many messages of one subject.
const MAX_WALK: usize = 10_000;

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.as_str())
}

/// The subject's last message, or [`Base::EMPTY`].
pub(crate) async fn last_of(stream: &Stream, subject: &str) -> Result<Base, BridgeError> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(m) => Ok(Base {
            seq: m.sequence,
            state: header(&m.headers, STATE_HEADER)
                .unwrap_or_default()
                .to_owned(),
        }),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(Base::EMPTY),
        Err(e) => Err(BridgeError::js("read the last message of a call", e)),
    }
}

/// Reads the subject's messages after `after`, looking for one with `state`.
pub(crate) async fn walk(
    stream: &Stream,
    subject: &str,
    after: u64,
    state: &str,
) -> Result<Walk, BridgeError> {
    let mut last = Base::EMPTY;
    let mut seq = after;
    for _ in 0..MAX_WALK {
        match stream
            .direct_get_next_for_subject(subject, Some(seq + 1))
            .await
        {
            Ok(m) => {
                let s = header(&m.headers, STATE_HEADER).unwrap_or_default();
                if s == state {
                    return Ok(Walk::Found(m.sequence));
                }
                seq = m.sequence;
                last = Base {
                    seq: m.sequence,
                    state: s.to_owned(),
                };
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(BridgeError::js("read a call's history", e)),
        }
    }
    if last.seq == 0 {
        // Refused, yet nothing after the base: the base itself was wrong (purged, say).
        last = last_of(stream, subject).await?;
    }
    Ok(Walk::NotFound(last))
}

/// The KV entry of `subject`: its revision and `Gws-Seq` (0 when absent or not written by a
/// bridge); revision 0 when there is none.
pub(crate) async fn kv_last(kv_stream: &Stream, subject: &str) -> Result<KvSeen, BridgeError> {
    match kv_stream.direct_get_last_for_subject(subject).await {
        Ok(m) => Ok(KvSeen {
            revision: m.sequence,
            seq: header(&m.headers, SEQ_HEADER)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        }),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(KvSeen {
            revision: 0,
            seq: 0,
        }),
        Err(e) => Err(BridgeError::js("read a KV entry", e)),
    }
}

/// The call text the KV holds for `key`, if it reflects stream sequence `seq`.
pub(crate) async fn kv_text_at(kv_stream: &Stream, key: &str, seq: u64) -> Option<String> {
    let m = kv_stream
        .direct_get_last_for_subject(format!("{BUCKET_PREFIX}{key}"))
        .await
        .ok()?;
    let reflects = header(&m.headers, SEQ_HEADER).and_then(|s| s.parse::<u64>().ok()) == Some(seq);
    if !reflects || header(&m.headers, "KV-Operation").is_some() {
        return None;
    }
    String::from_utf8(m.payload.to_vec()).ok()
}

/// The call id of a KV entry (headers only) written by a bridge before `floor` that shows
/// its call live.
pub(crate) fn ended_before(m: &async_nats::Message, prefix: &str, floor: u64) -> Option<String> {
    let headers = m.headers.as_ref()?;
    let seq: u64 = header(headers, SEQ_HEADER)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if header(headers, "KV-Operation").is_some() || seq == 0 || seq > floor {
        return None;
    }
    m.subject.strip_prefix(prefix).and_then(unescape_token)
}
