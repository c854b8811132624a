//! A call as the Workspace API v3 shows it, rendered from the same call model as the v2
//! form (see [`render`](super::render)), and the `CallStateChanged` message that carries it
//! on [`V3_VOICE_CHANNEL`].
//!
//! ```text
//! {"id","connId","callUuid","state","callType","ani","dnis",
//!  "participants":[{"number","role"}],"capabilities":[kebab-case],"duration":N,
//!  "startedAt":"2026-01-02T03:04:05.678Z","recordingState":"Stopped","userData":[KVList]}
//! ```
//!
//! `participants` names the other party, with role `RoleOrigination` when they called and
//! `RoleDestination` when the agent did. `capabilities` are the v2 list in kebab case
//! (`Hangup` is `release`), and `complete` while a released call is in wrap-up (the v3
//! operation that ends it). `userData` is always present (`[]` when empty; see
//! [`kvlist`](super::kvlist) for the value types). A change made by a v3 operation request
//! carries its `operationId` after `call`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use gws_cometd::gws::api::V3_VOICE_CHANNEL;

use super::kvlist::to_kvlist;
use super::{SimCall, SimCallState, SimCallType};
use crate::gws::{GwsSimConfig, Note};
use crate::json_string::quote;

thread_local! {
    /// The v3 operation being carried out on this thread, if any (see [`with_operation_id`]).
    static OPERATION_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` (a call operation, which changes the model and publishes on this thread) with
/// every `CallStateChanged` it publishes carrying `"operationId":id`, as GWS answers a v3
/// request's operation.
pub(in crate::gws) fn with_operation_id<T>(id: &str, f: impl FnOnce() -> T) -> T {
    OPERATION_ID.with(|cell| *cell.borrow_mut() = Some(id.to_owned()));
    let out = f();
    OPERATION_ID.with(|cell| *cell.borrow_mut() = None);
    out
}

/// A v2 operation name (`AttachUserData`) in kebab case (`attach-user-data`); `Hangup` is
/// v3's `release`.
fn kebab(name: &str) -> String {
    if name == "Hangup" {
        return "release".to_owned();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The v3 capabilities of a state, as a JSON array's text.
fn capabilities(state: SimCallState) -> String {
    let v2: Vec<String> = serde_json::from_str(state.capabilities()).unwrap_or_default();
    let mut names: Vec<String> = v2.iter().map(|n| quote(&kebab(n))).collect();
    if state == SimCallState::Released {
        names.push(quote("complete"));
    }
    format!("[{}]", names.join(","))
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(in crate::gws) fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

impl SimCall {
    /// The call's v3 JSON text.
    pub(super) fn json_v3(&self) -> String {
        let elapsed = self.started.elapsed();
        let role = match self.call.call_type {
            SimCallType::Outbound => "RoleDestination",
            SimCallType::Inbound | SimCallType::Internal => "RoleOrigination",
        };
        let mut o = String::with_capacity(768);
        let _ = write!(
            o,
            r#"{{"id":{},"connId":{},"callUuid":{},"state":"{}","callType":"{}","ani":{},"dnis":{},"participants":[{{"number":{},"role":"{role}"}}],"capabilities":{},"duration":{},"startedAt":"{}","recordingState":"Stopped","userData":{}}}"#,
            quote(&self.id),
            quote(&self.conn_id),
            quote(&self.call_uuid),
            self.state.as_str(),
            self.call.call_type.as_str(),
            quote(&self.call.from),
            quote(&self.call.to),
            quote(self.call.other_party()),
            capabilities(self.state),
            elapsed.as_secs(),
            iso8601(self.started_at),
            to_kvlist(&self.user_data),
        );
        o
    }

    /// The v3 `CallStateChanged` message; `notification_type` is v2's (`StatusChange` is
    /// v3's `StateChange`).
    fn notification_v3(&self, notification_type: &str) -> String {
        let kind = match notification_type {
            "StatusChange" => "StateChange",
            other => other,
        };
        let operation = OPERATION_ID.with(|cell| {
            cell.borrow()
                .as_deref()
                .map(|id| format!(r#","operationId":{}"#, quote(id)))
                .unwrap_or_default()
        });
        format!(
            r#"{{"messageType":"CallStateChanged","notificationType":{},"call":{}{operation}}}"#,
            quote(kind),
            self.json_v3()
        )
    }

    /// The notifications of one change of the call: the v2 `CallStateChangeMessage` and
    /// the v3 `CallStateChanged`, both for its owner.
    pub(super) fn notes(&self, notification_type: &str, config: &GwsSimConfig) -> Vec<Note> {
        vec![
            Note::call(&self.owner, self.notification(notification_type, config)),
            Note {
                user: self.owner.clone(),
                channel: V3_VOICE_CHANNEL,
                data: self.notification_v3(notification_type),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dates_and_capabilities() {
        assert_eq!(kebab("AttachUserData"), "attach-user-data");
        assert_eq!(kebab("Hangup"), "release");
        assert_eq!(
            capabilities(SimCallState::Ringing),
            r#"["answer","release","attach-user-data","delete-user-data","delete-user-data-pair","update-user-data"]"#
        );
        assert_eq!(capabilities(SimCallState::Released), r#"["complete"]"#);
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_709_251_200_123);
        assert_eq!(iso8601(t), "2024-03-01T00:00:00.123Z");
    }
}
