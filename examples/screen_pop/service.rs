//! The service's reaction, kept apart from the feed so the live run (`main.rs`) and the
//! fixture test (`fixture_test.rs`) drive the same code.

use std::fmt;

use gws_cometd::gws::{CallEvent, ChangeOrigin, NotificationType};

/// The user-data key whose arrival pops the customer's record.
pub const KEY: &str = "AccountNumber";

/// What the agent's screen should show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenPop {
    /// The call's id.
    pub call_id: String,
    /// The account the change brought, as a person reads it.
    pub account: String,
    /// The caller's number, when GWS sent one.
    pub caller: Option<String>,
    /// The call's type and state, as the change left them (`Inbound, Established`).
    pub call: String,
}

impl fmt::Display for ScreenPop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "screen pop: account {} on call {} ({}, caller {})",
            self.account,
            self.call_id,
            self.call,
            self.caller.as_deref().unwrap_or("unknown")
        )
    }
}

/// A screen pop when the change brings an `AccountNumber` (attached, or updated to a new
/// value): an `AttachedDataChanged` notification, or a heal that found one the feed had
/// missed. Catch-up changes (calls already in progress when the service started) pop
/// nothing: the agent saw those before.
pub fn react(event: &CallEvent) -> Option<ScreenPop> {
    let CallEvent { change, call } = event;
    let brought = match change.origin {
        ChangeOrigin::CatchUp => return None,
        ChangeOrigin::Heal => true,
        _ => change.notification_type == Some(NotificationType::AttachedDataChanged),
    };
    if !brought {
        return None;
    }
    let diff = &change.user_data;
    let account = diff
        .added
        .iter()
        .filter(|p| p.key == KEY)
        .map(|p| &p.value)
        .chain(diff.changed.iter().filter(|p| p.key == KEY).map(|p| &p.new))
        .last()?;
    // The call as this change left it, typed: no trip to the store, which may be ahead.
    let call = call.as_ref()?;
    let kind = |v: Option<String>| v.unwrap_or_else(|| "?".to_owned());
    Some(ScreenPop {
        call_id: change.call_id.clone(),
        account: account.to_string(),
        caller: call.ani.clone(),
        call: format!(
            "{}, {}",
            kind(call.call_type.as_ref().map(ToString::to_string)),
            kind(call.state.as_ref().map(ToString::to_string))
        ),
    })
}
