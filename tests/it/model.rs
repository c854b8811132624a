//! The typed GWS model, the user-data multimap and the call store.

use std::time::{Duration, Instant};

use futures::StreamExt;
use gws_cometd::bayeux::Message;
use gws_cometd::gws::model::{CallDuration, Capability, Mute, Participant};
use gws_cometd::gws::wire::{self, CallNotification, Notification};
use gws_cometd::gws::{
    CallChange, CallState, CallStateChangeMessage, CallStore, CallType, GwsNotification,
    NotificationType, RawJson, UserData, Value,
};

const SEED: &str = include_str!("../../fixtures/seed-attached-data-changed.jsonl");
const CALL_ID: &str = "01RCC3N118B1V0SL8O7GK2LAES00000R";

fn seed_message() -> Message {
    serde_json::from_str(SEED.trim()).unwrap()
}

fn seed_call_msg() -> CallStateChangeMessage {
    CallStateChangeMessage::from_message(&seed_message())
        .unwrap()
        .unwrap()
}

/// A call notification for `id` with the given state and user-data object text (or none).
fn notification(
    nt: &str,
    id: &str,
    state: &str,
    user_data: Option<&str>,
) -> CallStateChangeMessage {
    let ud = user_data
        .map(|u| format!(r#","userData":{u}"#))
        .unwrap_or_default();
    serde_json::from_str(&format!(
        r#"{{"messageType":"CallStateChangeMessage","notificationType":"{nt}","call":{{"id":"{id}","state":"{state}"{ud}}}}}"#
    ))
    .unwrap()
}

/// Applies a typed notification as a typed caller does: as its call text, at `now`.
fn apply_at(
    store: &mut CallStore,
    msg: &CallStateChangeMessage,
    now: Instant,
) -> Option<CallChange> {
    let text = msg.call_text();
    let call = CallNotification::from_call_text(&text, msg.notification_type.clone()).unwrap();
    store.apply(&call, now).map(|mut applied| applied.change())
}

fn apply(store: &mut CallStore, msg: &CallStateChangeMessage) -> Option<CallChange> {
    apply_at(store, msg, Instant::now())
}

#[test]
fn the_seed_notification_decodes_into_typed_fields() {
    let m = seed_call_msg();
    assert_eq!(
        m.notification_type,
        Some(NotificationType::AttachedDataChanged)
    );
    assert_eq!(m.phone_number.as_deref(), Some("5001"));
    let c = &m.call;
    assert_eq!(c.id, CALL_ID);
    assert_eq!(c.conn_id.as_deref(), Some("0071025bd3c3b001"));
    assert_eq!(c.state, Some(CallState::Established));
    assert_eq!(c.call_type, Some(CallType::Inbound));
    assert_eq!(c.mute, Some(Mute::Off));
    assert_eq!(
        c.duration.as_ref().and_then(CallDuration::seconds),
        Some(42)
    );
    assert_eq!(c.supervisor_listening_in, Some(false));
    let caps = c.capabilities.as_ref().unwrap();
    assert_eq!(caps.len(), 9);
    assert_eq!(caps[0], Capability::Hold);
    assert_eq!(caps[8], Capability::SingleStepTransfer);
    // The seed was recorded with `Release`, which GWS does not name: kept as received.
    assert_eq!(caps[1], Capability::Other("Release".into()));
    let parts = c.participants.as_ref().unwrap();
    assert_eq!(parts[0].phone_number(), Some("5115"));
    assert_eq!(
        c.user_data().get("AccountNumber").and_then(Value::as_str),
        Some("12345")
    );
    assert!(
        c.other.is_empty(),
        "every seed field is known: {:?}",
        c.other
    );
}

#[test]
fn encoding_the_seed_gives_back_the_same_json() {
    let msg = seed_message();
    let data = msg.data.as_ref().unwrap().get();
    let encoded = serde_json::to_string(&seed_call_msg()).unwrap();
    assert_eq!(encoded, data);
}

#[test]
fn unknown_fields_and_values_are_kept_and_written_back() {
    let text = r#"{"messageType":"CallStateChangeMessage","notificationType":"BrandNewKind","x-top":[1,{"a":1,"a":2}],"call":{"id":"c1","state":"Parked","callType":"Sideways","capabilities":["Hold","Teleport"],"mute":"Half","x-future":{"n":123456789012345678901234567890},"duration":17},"metrics":{"m":1.50}}"#;
    let m: CallStateChangeMessage = serde_json::from_str(text).unwrap();
    assert_eq!(
        m.notification_type,
        Some(NotificationType::Other("BrandNewKind".into()))
    );
    assert_eq!(m.call.state, Some(CallState::Other("Parked".into())));
    assert_eq!(m.call.call_type, Some(CallType::Other("Sideways".into())));
    assert_eq!(m.call.mute, Some(Mute::Other("Half".into())));
    assert_eq!(
        m.call.capabilities.as_ref().unwrap()[1],
        Capability::Other("Teleport".into())
    );
    assert_eq!(m.call.duration.as_ref().unwrap().seconds(), Some(17));
    assert_eq!(m.other[0].0, "x-top");
    assert_eq!(m.other[0].1.get(), r#"[1,{"a":1,"a":2}]"#);
    assert_eq!(
        m.call.other[0].1.get(),
        r#"{"n":123456789012345678901234567890}"#
    );
    let back = serde_json::to_string(&m).unwrap();
    assert!(back.contains(r#""x-top":[1,{"a":1,"a":2}]"#), "{back}");
    assert!(
        back.contains(r#""n":123456789012345678901234567890"#),
        "{back}"
    );
    assert!(back.contains(r#""metrics":{"m":1.50}"#), "{back}");
    assert!(
        back.contains(r#""capabilities":["Hold","Teleport"]"#),
        "{back}"
    );
    let again: CallStateChangeMessage = serde_json::from_str(&back).unwrap();
    assert_eq!(again, m);
}

#[test]
fn participants_come_as_objects_or_as_strings_with_participants_info() {
    let m: CallStateChangeMessage = serde_json::from_str(
        r#"{"messageType":"CallStateChangeMessage","call":{"id":"c1","participants":["5115","5001"],"participantsInfo":[{"number":"5115"}]}}"#,
    )
    .unwrap();
    let p = m.call.participants.as_ref().unwrap();
    assert_eq!(p[0], Participant::Number("5115".into()));
    assert_eq!(p[1].phone_number(), Some("5001"));
    assert_eq!(
        m.call.participants_info.as_ref().map(RawJson::get),
        Some(r#"[{"number":"5115"}]"#)
    );
    let back = serde_json::to_string(&m).unwrap();
    assert!(back.contains(r#""participants":["5115","5001"]"#));
}

#[test]
fn a_call_notification_without_a_call_or_call_id_is_an_error() {
    for text in [
        r#"{"messageType":"CallStateChangeMessage","notificationType":"StatusChange"}"#,
        r#"{"messageType":"CallStateChangeMessage","call":{"state":"Ringing"}}"#,
        r#"{"messageType":"CallStateChangeMessage","call":{"id":7}}"#,
        r#"{"notificationType":"StatusChange","messageType":"CallStateChangeMessage","call":{"state":"Ringing"}}"#,
    ] {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        assert!(GwsNotification::from_data(&raw).is_err(), "{text}");
    }
}

#[test]
fn data_is_dispatched_on_message_type_wherever_it_appears() {
    let first = r#"{"messageType":"CallStateChangeMessage","call":{"id":"c1","state":"Held"}}"#;
    let later = r#"{"call":{"id":"c1","state":"Held"},"messageType":"CallStateChangeMessage"}"#;
    for text in [first, later] {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        match GwsNotification::from_data(&raw).unwrap() {
            GwsNotification::CallStateChange(m) => {
                assert_eq!(m.call.state, Some(CallState::Held));
                assert!(m.other.is_empty(), "messageType is not an unknown field");
            }
            other => panic!("{other:?}"),
        }
    }

    let device = r#"{"messageType":"DeviceStateChangeMessage","devices":[{"id":"d1","deviceState":"Active","x":1}]}"#;
    let raw = serde_json::value::RawValue::from_string(device.to_owned()).unwrap();
    match GwsNotification::from_data(&raw).unwrap() {
        GwsNotification::DeviceStateChange(d) => {
            let devs = d.devices.unwrap();
            assert_eq!(devs[0].device_state.as_deref(), Some("Active"));
            assert_eq!(devs[0].other[0].0, "x");
        }
        other => panic!("{other:?}"),
    }

    let error = r#"{"messageType":"ErrorMessage","errorMessage":"Invalid key","errorCode":2}"#;
    let raw = serde_json::value::RawValue::from_string(error.to_owned()).unwrap();
    match GwsNotification::from_data(&raw).unwrap() {
        GwsNotification::Error(e) => {
            assert_eq!(e.error_message.as_deref(), Some("Invalid key"));
            assert_eq!(e.error_code.unwrap().get(), "2");
        }
        other => panic!("{other:?}"),
    }

    for text in [
        r#"{"messageType":"SomethingNew","a":1,"a":2}"#,
        r#"{"a":1}"#,
        r#""just a string""#,
        r#"[1,2]"#,
        r#"{}"#,
    ] {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        assert_eq!(
            GwsNotification::from_data(&raw).unwrap(),
            GwsNotification::Other(RawJson::from_text(text).unwrap()),
            "{text}"
        );
    }
}

#[test]
fn any_data_decodes_and_encodes_back_as_a_notification() {
    // Found by fuzzing: `data` that is not an object must survive encode → decode.
    for text in [
        r#""E""#,
        "[1,{}]",
        "12345678901234567890123",
        "null",
        r#"{"a":1,"a":2}"#,
    ] {
        let n: GwsNotification = serde_json::from_str(text).unwrap();
        assert_eq!(n, GwsNotification::Other(RawJson::from_text(text).unwrap()));
        assert_eq!(serde_json::to_string(&n).unwrap(), text);
    }
    let seed = seed_message();
    let n = GwsNotification::from_message(&seed).unwrap().unwrap();
    let back: GwsNotification = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
    assert_eq!(back, n);
}

#[test]
fn only_call_notifications_on_the_calls_channel_are_calls() {
    let seed = seed_message();
    assert!(CallStateChangeMessage::from_message(&seed)
        .unwrap()
        .is_some());
    let mut elsewhere = seed.clone();
    elsewhere.channel = "/v2/me/devices".into();
    assert!(CallStateChangeMessage::from_message(&elsewhere)
        .unwrap()
        .is_none());
    let meta = Message::new("/meta/connect");
    assert!(CallStateChangeMessage::from_message(&meta)
        .unwrap()
        .is_none());
    let other_type: Message = serde_json::from_str(
        r#"{"channel":"/v2/me/calls","data":{"messageType":"ErrorMessage","errorCode":2}}"#,
    )
    .unwrap();
    assert!(CallStateChangeMessage::from_message(&other_type)
        .unwrap()
        .is_none());
}

#[test]
fn user_data_keeps_duplicates_big_integers_and_nested_values() {
    let text = r#"{"A":"1","B":9007199254740993,"A":"2","F":1.50,"E":-1e400,"N":{"x":"y","x":null},"L":[true,"s",123456789012345678901234567890],"U":"Zo\u00eb"}"#;
    let ud: UserData = serde_json::from_str(text).unwrap();
    assert_eq!(ud.len(), 8);
    let keys: Vec<_> = ud.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["A", "B", "A", "F", "E", "N", "L", "U"]);
    let a: Vec<_> = ud.get_all("A").filter_map(Value::as_str).collect();
    assert_eq!(a, ["1", "2"]);
    assert_eq!(ud.get("B").unwrap().as_u64(), Some(9007199254740993));
    assert_eq!(ud.get("B").unwrap().as_i64(), Some(9007199254740993));
    match ud.get("F").unwrap() {
        Value::Float(n) => assert_eq!(n.as_str(), "1.50"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ud.get("N")
            .unwrap()
            .as_object()
            .unwrap()
            .get_all("x")
            .count(),
        2
    );
    match ud.get("L").unwrap() {
        Value::List(items) => match &items[2] {
            Value::Integer(n) => {
                assert_eq!(n.as_str(), "123456789012345678901234567890");
                assert_eq!(n.as_u64(), None);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(ud.get("U").and_then(Value::as_str), Some("Zoë"));
    let back = serde_json::to_string(&ud).unwrap();
    assert_eq!(
        back,
        r#"{"A":"1","B":9007199254740993,"A":"2","F":1.50,"E":-1e400,"N":{"x":"y","x":null},"L":[true,"s",123456789012345678901234567890],"U":"Zoë"}"#
    );
    assert_eq!(serde_json::from_str::<UserData>(&back).unwrap(), ud);
}

#[test]
fn each_notification_replaces_the_snapshot_and_reports_the_diff() {
    let mut store = CallStore::new();
    let first = apply(
        &mut store,
        &notification("StatusChange", "c1", "Ringing", None),
    )
    .unwrap();
    assert!(first.new);
    assert_eq!(first.state.as_ref().unwrap().from, None);
    assert_eq!(first.state.as_ref().unwrap().to, Some(CallState::Ringing));

    let c = apply(
        &mut store,
        &notification(
            "AttachedDataChanged",
            "c1",
            "Established",
            Some(r#"{"AccountNumber":"12345"}"#),
        ),
    )
    .unwrap();
    assert!(!c.new);
    assert_eq!(c.state.as_ref().unwrap().from, Some(CallState::Ringing));
    assert_eq!(c.user_data.added.len(), 1);

    // A second AccountNumber is an addition, not a change of the first.
    let c = apply(
        &mut store,
        &notification(
            "AttachedDataChanged",
            "c1",
            "Established",
            Some(r#"{"AccountNumber":"12345","AccountNumber":"67890"}"#),
        ),
    )
    .unwrap();
    assert_eq!(c.state, None, "no state transition");
    assert_eq!(
        serde_json::to_string(&c.user_data).unwrap(),
        r#"{"added":[{"key":"AccountNumber","value":"67890"}]}"#
    );
    assert_eq!(
        store
            .get("c1")
            .unwrap()
            .user_data()
            .get_all("AccountNumber")
            .count(),
        2
    );

    // An absent userData means none: every pair is removed.
    let c = apply(
        &mut store,
        &notification("AttachedDataChanged", "c1", "Established", None),
    )
    .unwrap();
    assert_eq!(c.user_data.removed.len(), 2);
    assert!(store.get("c1").unwrap().user_data.is_none());
}

#[test]
fn released_calls_stay_and_completed_calls_leave() {
    let mut store = CallStore::new();
    apply(
        &mut store,
        &notification("StatusChange", "c1", "Established", None),
    );
    apply(
        &mut store,
        &notification("StatusChange", "c1", "Released", None),
    );
    assert!(store.get("c1").is_some(), "wrap-up keeps the call");
    let c = apply(
        &mut store,
        &notification(
            "AttachedDataChanged",
            "c1",
            "Released",
            Some(r#"{"D":"x"}"#),
        ),
    )
    .unwrap();
    assert_eq!(c.user_data.added.len(), 1);
    let done = apply(
        &mut store,
        &notification("StatusChange", "c1", "Completed", Some(r#"{"D":"x"}"#)),
    )
    .unwrap();
    assert!(done.removed);
    assert_eq!(done.state.unwrap().to, Some(CallState::Completed));
    assert!(store.get("c1").is_none());
    assert!(apply(
        &mut store,
        &notification("StatusChange", "c1", "Completed", None)
    )
    .is_none());
    assert!(store.is_empty());
}

#[test]
fn the_retention_time_after_released_is_checked_with_an_explicit_time() {
    let t0 = Instant::now();
    let mut store = CallStore::with_retention(Duration::from_secs(30));
    apply_at(
        &mut store,
        &notification("StatusChange", "c1", "Released", None),
        t0,
    );
    apply_at(
        &mut store,
        &notification("StatusChange", "c2", "Established", None),
        t0,
    );
    // Data changes during wrap-up do not restart the clock.
    apply_at(
        &mut store,
        &notification(
            "AttachedDataChanged",
            "c1",
            "Released",
            Some(r#"{"a":"1"}"#),
        ),
        t0 + Duration::from_secs(20),
    );
    assert!(store.expire(t0 + Duration::from_secs(29)).is_empty());
    let gone = store.expire(t0 + Duration::from_secs(30));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, "c1");
    assert_eq!(gone[0].user_data().len(), 1);
    assert!(store.get("c1").is_none());
    assert!(store.get("c2").is_some(), "not released, never expires");

    let mut no_retention = CallStore::new();
    apply_at(
        &mut no_retention,
        &notification("StatusChange", "c1", "Released", None),
        t0,
    );
    assert!(no_retention
        .expire(t0 + Duration::from_secs(3600))
        .is_empty());
}

#[test]
fn applying_the_same_message_twice_changes_nothing_the_second_time() {
    let mut store = CallStore::new();
    let msg = seed_call_msg();
    assert!(apply(&mut store, &msg).is_some());
    let before = serde_json::to_string(&store.snapshot()).unwrap();
    assert_eq!(apply(&mut store, &msg), None);
    assert_eq!(serde_json::to_string(&store.snapshot()).unwrap(), before);
}

#[test]
fn the_snapshot_holds_each_call_as_received() {
    let mut store = CallStore::new();
    apply(&mut store, &seed_call_msg());
    // The seed's call object, cut from its text: `..."call":{...}}}`.
    let seed = SEED.trim();
    let seed_call = &seed[seed.find(r#""call":"#).unwrap() + 7..seed.len() - 2];
    assert_eq!(
        serde_json::to_string(&store.snapshot()).unwrap(),
        format!(r#"{{"calls":{{"{CALL_ID}":{seed_call}}}}}"#)
    );
}

#[tokio::test]
async fn a_stream_of_messages_becomes_a_stream_of_changes() {
    let msgs = vec![
        Message::new("/meta/connect"),
        seed_message(),
        seed_message(),
        serde_json::from_str(r#"{"channel":"/v2/me/calls","data":{"messageType":"CallStateChangeMessage","call":{"state":"Ringing"}}}"#).unwrap(),
    ];
    let mut changes = CallStore::new().changes(futures::stream::iter(msgs));
    let first: CallChange = changes.next().await.unwrap().unwrap();
    assert_eq!(first.call_id, CALL_ID);
    // The duplicate is skipped; the malformed notification is reported, naming its channel.
    let err = changes.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("/v2/me/calls"), "{err}");
    assert!(changes.next().await.is_none());
    assert_eq!(changes.store().len(), 1);
}

#[tokio::test]
async fn a_replayed_fixture_drives_the_same_stream_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/inbound-call.jsonl");
    let changes: Vec<_> = CallStore::new()
        .changes(Box::pin(gws_cometd::fixture::read(path)))
        .collect()
        .await;
    let lines: Vec<String> = changes
        .into_iter()
        .map(|c| serde_json::to_string(&c.unwrap()).unwrap())
        .collect();
    let golden = include_str!("../../fixtures/golden/inbound-call.changes.jsonl");
    assert_eq!(lines.join("\n") + "\n", golden);
}

#[test]
fn the_store_keeps_the_call_text_and_decodes_the_typed_call_on_demand() {
    let call = r#"{"state":"Held","id":"c1","capabilities":5,"userData":{"A":"1"},"ani":"5115"}"#;
    let body = format!(
        r#"{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","call":{call}}}}}"#
    );
    let msgs = wire::calls_in_batch(body.as_bytes()).unwrap();
    let mut store = CallStore::new();
    let now = Instant::now();
    let change = store.apply(&msgs[0], now).unwrap().change();
    assert_eq!(change.user_data.added.len(), 1);
    assert_eq!(store.get_text("c1"), Some(call));
    // Only the fields the store reads are checked; one of another shape is kept, as received,
    // among the unknown fields of the typed view.
    let typed = store.get("c1").unwrap();
    assert_eq!(typed.state, Some(CallState::Held));
    assert_eq!(typed.ani.as_deref(), Some("5115"));
    assert_eq!(typed.capabilities, None);
    assert_eq!(typed.other.len(), 1);
    assert_eq!(typed.other[0].0, "capabilities");
    assert_eq!(typed.other[0].1.get(), "5");
    // The same text again changes nothing.
    assert!(store.apply(&msgs[0], now).is_none());
    // A message decoded alone reads the same as the batch.
    let msg: Message = serde_json::from_str(&body).unwrap();
    assert_eq!(
        wire::decode(&msg).unwrap(),
        Notification::Call(msgs[0].clone())
    );
}

// ---- reconciling with the server's list of calls ----

fn listed(calls: &[&str]) -> Vec<Box<serde_json::value::RawValue>> {
    calls
        .iter()
        .map(|c| serde_json::value::RawValue::from_string((*c).to_owned()).unwrap())
        .collect()
}

#[test]
fn a_heal_reports_what_differs_and_the_calls_that_are_gone() {
    use gws_cometd::gws::ChangeOrigin;
    let mut store = CallStore::new();
    let now = Instant::now();
    for id in ["a", "b", "c", "kept"] {
        apply(
            &mut store,
            &notification("StatusChange", id, "Established", Some(r#"{"K":"1"}"#)),
        );
    }
    let server = listed(&[
        r#"{"id":"a","state":"Established","userData":{"K":"1"}}"#,
        r#"{"id":"b","state":"Held","userData":{"K":"1","L":"2"}}"#,
    ]);
    let changes = store.reconcile(&server, now, ChangeOrigin::Heal, |id| id == "kept");
    let summary: Vec<(&str, bool, Option<CallState>, usize)> = changes
        .iter()
        .map(|r| {
            let c = &r.change;
            assert_eq!(c.origin, ChangeOrigin::Heal);
            (
                c.call_id.as_str(),
                c.removed,
                c.state.as_ref().and_then(|s| s.to.clone()),
                c.user_data.added.len() + c.user_data.removed.len(),
            )
        })
        .collect();
    // `a` is as the server has it; `b` changed; `c` is gone; `kept` is left alone.
    assert_eq!(
        summary,
        [("b", false, Some(CallState::Held), 1), ("c", true, None, 1)]
    );
    assert!(store.get("kept").is_some());
    assert!(store.get("c").is_none());
}

#[test]
fn a_call_listed_with_only_a_later_duration_is_no_change() {
    use gws_cometd::gws::ChangeOrigin;
    let mut store = CallStore::new();
    let now = Instant::now();
    let first = r#"{"id":"a","state":"Established","duration":"12","userData":{"K":"1"}}"#;
    let call =
        CallNotification::from_call_text(first, Some(NotificationType::StatusChange)).unwrap();
    assert!(store.apply(&call, now).is_some());
    // The server renders `duration` from its clock for every list.
    let later = r#"{"id":"a","state":"Established","duration":"95","userData":{"K":"1"}}"#;
    let changes = store.reconcile(&listed(&[later]), now, ChangeOrigin::Heal, |_| false);
    assert!(
        changes.is_empty(),
        "{:?}",
        changes.iter().map(|r| &r.change).collect::<Vec<_>>()
    );
    assert_eq!(
        store.get_text("a"),
        Some(later),
        "the store takes the server's text"
    );
    // Anything else that differs is a change, even with the duration.
    let held = r#"{"id":"a","state":"Held","duration":"99","userData":{"K":"1"}}"#;
    let changes = store.reconcile(&listed(&[held]), now, ChangeOrigin::Heal, |_| false);
    assert_eq!(changes.len(), 1);
}

#[test]
fn the_notification_a_catch_up_already_reflected_is_no_change() {
    use gws_cometd::gws::ChangeOrigin;
    let mut store = CallStore::new();
    let now = Instant::now();
    let text = r#"{"id":"a","state":"Ringing","userData":{}}"#;
    let caught = store.reconcile(&listed(&[text]), now, ChangeOrigin::CatchUp, |_| false);
    assert_eq!(caught.len(), 1);
    // The notification that made that state arrives after the read: nothing new.
    let same =
        CallNotification::from_call_text(text, Some(NotificationType::StatusChange)).unwrap();
    assert!(store.apply(&same, now).is_none());
    let answered = r#"{"id":"a","state":"Established","userData":{}}"#;
    let next =
        CallNotification::from_call_text(answered, Some(NotificationType::StatusChange)).unwrap();
    assert!(store.apply(&next, now).is_some());
}
