//! The service's reaction tested over a recorded fixture, with no GWS and no network:
//! `fixture::Replay` runs the recording through the same reducer the feed uses and yields
//! each change; each is handed to the service as the feed would hand it, a `CallEvent`
//! with the call as the change left it.
//!
//! `cargo test --example screen_pop` runs it (and `cargo test` does, with every test).

use gws_cometd::fixture::{FixtureError, Replay};
use gws_cometd::gws::store::change_between;
use gws_cometd::gws::{CallEvent, CallView, ChangeOrigin, NotificationType};

use super::service::{react, ScreenPop};

/// The screen pops the service makes while `path` replays.
fn pops_over(path: &str) -> Result<Vec<ScreenPop>, FixtureError> {
    let mut replay = Replay::open(path)?;
    let mut pops = Vec::new();
    while let Some(change) = replay.next() {
        let change = change?;
        // The replay's store holds the call as the line just read left it (`None` once
        // it left): what the feed's event would carry.
        let call = replay
            .store()
            .get_text(&change.call_id)
            .and_then(|text| CallView::from_text(text).ok());
        pops.extend(react(&CallEvent { change, call }));
    }
    Ok(pops)
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn an_inbound_call_pops_each_account_attached_once() {
    let pops = pops_over(&fixture("inbound-call.jsonl")).unwrap();
    let seen: Vec<(&str, &str)> = pops
        .iter()
        .map(|p| (&p.call_id[p.call_id.len() - 1..], p.account.as_str()))
        .collect();
    // The first call gets 12345; a second call of the agent arrives with the same account;
    // then the first call gets a second AccountNumber (GWS appends: the key is there twice).
    assert_eq!(seen, [("T", "12345"), ("R", "12345"), ("T", "67890")]);
    assert_eq!(
        pops[0].to_string(),
        "screen pop: account 12345 on call 01RCC3N118B1V0SL8O7GK2LAES00000T \
         (Inbound, Established, caller 5115)"
    );
}

/// The event a change from `before` to `after` (call object texts) would make.
fn event(
    before: Option<&str>,
    after: &str,
    origin: ChangeOrigin,
    kind: Option<NotificationType>,
) -> CallEvent {
    let change = change_between("c1", before, Some(after), origin, kind);
    CallEvent {
        change,
        call: Some(CallView::from_text(after).unwrap()),
    }
}

#[test]
fn an_account_pops_from_a_notification_or_a_heal_but_not_from_the_catch_up() {
    let without = r#"{"id":"c1","state":"Established","callType":"Inbound","ani":"5115"}"#;
    let with = r#"{"id":"c1","state":"Established","callType":"Inbound","ani":"5115","userData":{"AccountNumber":42}}"#;
    let attached = Some(NotificationType::AttachedDataChanged);
    let popped = react(&event(
        Some(without),
        with,
        ChangeOrigin::Notification,
        attached,
    ));
    assert_eq!(popped.map(|p| p.account), Some("42".to_owned()));
    let healed = react(&event(Some(without), with, ChangeOrigin::Heal, None));
    assert!(healed.is_some(), "a heal found an account the feed missed");
    assert_eq!(react(&event(None, with, ChangeOrigin::CatchUp, None)), None);
    let status = Some(NotificationType::StatusChange);
    assert_eq!(
        react(&event(Some(with), with, ChangeOrigin::Notification, status)),
        None
    );
}
