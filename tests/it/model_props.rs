//! Property tests: decode → encode → decode is the identity on generated notifications
//! (duplicate keys, big integers, unicode escapes, unknown fields; v2's and v3's, whose user
//! data is a KVList of any types); the one wire decoder
//! agrees with a plain serde reading of the same bodies (`support/oracle.rs`); applying a
//! message twice changes nothing the second time.

use crate::support::oracle;

use std::time::Instant;

use gws_cometd::bayeux::Message;
use gws_cometd::gws::wire::{self, calls_in_text, CallNotification};
use gws_cometd::gws::{CallStateChangeMessage, CallStore, GwsNotification, UserData, Value};
use proptest::prelude::*;

/// A JSON string literal for `s`, each character written plainly or as a `\u` escape.
fn json_string(s: &str, escape: &[bool]) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        let esc = escape
            .get(i % escape.len().max(1))
            .copied()
            .unwrap_or(false);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || esc => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string_lit() -> impl Strategy<Value = String> {
    (
        prop::string::string_regex("[a-zA-Z0-9 _\"\\\\\u{e9}\u{fc}\u{4e2d}\u{1f600}\n\t-]{0,12}")
            .unwrap(),
        prop::collection::vec(any::<bool>(), 1..4),
    )
        .prop_map(|(s, esc)| json_string(&s, &esc))
}

fn number_lit() -> impl Strategy<Value = String> {
    prop::string::string_regex("-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?")
        .unwrap()
}

fn key_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"AccountNumber\"".to_owned()),
        Just("\"a\"".to_owned()),
        Just("\"\\u0061\"".to_owned()),
        Just("\"Zo\\u00eb\"".to_owned()),
        string_lit(),
    ]
}

/// Any JSON value as text, with duplicate keys likely.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_lit(),
        number_lit(),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key_lit(), inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn user_data_lit() -> impl Strategy<Value = String> {
    prop::collection::vec((key_lit(), json_value()), 0..6).prop_map(|kv| {
        let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", fields.join(","))
    })
}

fn unknown_fields() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        (
            prop::string::string_regex("x-[a-z]{1,5}").unwrap(),
            json_value(),
        )
            .prop_map(|(k, v)| format!("\"{k}\":{v}")),
        0..3,
    )
}

fn enum_lit(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(known).prop_map(|s| format!("\"{s}\"")),
        string_lit(),
    ]
}

/// A v3 KVList: entries of any type (known or not) with any value, duplicates likely.
fn kvlist_lit() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        prop::sample::select(&["\"str\"", "\"int\"", "\"kvlist\"", "\"binary\""][..])
            .prop_map(str::to_owned),
        string_lit(),
    ];
    let entry = (
        key_lit(),
        ty,
        prop_oneof![string_lit(), number_lit(), json_value()],
    )
        .prop_map(|(k, t, v)| format!(r#"{{"key":{k},"type":{t},"value":{v}}}"#))
        .boxed();
    let list = |entry: BoxedStrategy<String>| {
        prop::collection::vec(entry, 0..6).prop_map(|e| format!("[{}]", e.join(",")))
    };
    let nested = (key_lit(), list(entry.clone()))
        .prop_map(|(k, v)| format!(r#"{{"key":{k},"type":"kvlist","value":{v}}}"#));
    list(prop_oneof![3 => entry, 1 => nested].boxed())
}

/// The `data` text of a CallStateChangeMessage; `messageType` is not always first.
fn call_message(ids: &'static [&'static str]) -> impl Strategy<Value = String> {
    call_message_of(ids, false)
}

/// The `data` text of a v3 CallStateChanged, its user data a KVList.
fn v3_call_message(ids: &'static [&'static str]) -> impl Strategy<Value = String> {
    call_message_of(ids, true)
}

fn call_message_of(ids: &'static [&'static str], v3: bool) -> impl Strategy<Value = String> {
    let (notification_types, user_data): (&'static [&'static str], BoxedStrategy<String>) = if v3 {
        (
            &[
                "StateChange",
                "AttachedDataChanged",
                "ParticipantsUpdated",
                "CallRecovered",
            ],
            kvlist_lit().boxed(),
        )
    } else {
        (
            &["StatusChange", "AttachedDataChanged", "ParticipantsUpdated"],
            user_data_lit().boxed(),
        )
    };
    (
        prop::sample::select(ids),
        enum_lit(&["Ringing", "Established", "Held", "Released", "Completed"]),
        enum_lit(notification_types),
        prop::option::of(user_data),
        unknown_fields(),
        unknown_fields(),
        any::<bool>(),
        prop::option::of(prop_oneof![Just("\"42\"".to_owned()), number_lit(),]),
    )
        .prop_map(
            move |(id, state, nt, ud, call_extra, top_extra, type_first, duration)| {
                let mut call = vec![format!("\"id\":\"{id}\""), format!("\"state\":{state}")];
                if let Some(ud) = ud {
                    call.push(format!("\"userData\":{ud}"));
                }
                if let Some(d) = duration {
                    call.push(format!("\"duration\":{d}"));
                }
                call.extend(call_extra);
                let mut top = vec![
                    format!("\"notificationType\":{nt}"),
                    format!("\"call\":{{{}}}", call.join(",")),
                ];
                top.extend(top_extra);
                let mt = if v3 {
                    "\"messageType\":\"CallStateChanged\"".to_owned()
                } else {
                    "\"messageType\":\"CallStateChangeMessage\"".to_owned()
                };
                if type_first {
                    top.insert(0, mt);
                } else {
                    top.push(mt);
                }
                format!("{{{}}}", top.join(","))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Checked against serde_json's own reading of each generated key and leaf, so a decoder
    /// that dropped duplicates or rounded numbers fails here even if it round-trips.
    #[test]
    fn user_data_keeps_every_pair_in_order_with_exact_numbers(
        pairs in prop::collection::vec(
            (key_lit(), prop_oneof![string_lit(), number_lit(), json_value()]),
            0..8,
        ),
    ) {
        let text = format!(
            "{{{}}}",
            pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
        );
        let ud: UserData = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(ud.len(), pairs.len());
        for ((key, value), (k_text, v_text)) in ud.iter().zip(&pairs) {
            prop_assert_eq!(key, serde_json::from_str::<String>(k_text).unwrap());
            match value {
                Value::Integer(n) | Value::Float(n) => prop_assert_eq!(n.as_str(), v_text),
                Value::String(s) => {
                    prop_assert_eq!(s, &serde_json::from_str::<String>(v_text).unwrap())
                }
                _ => {}
            }
        }
    }

    #[test]
    fn user_data_decode_encode_decode_is_identity(text in user_data_lit()) {
        let a: UserData = serde_json::from_str(&text).unwrap();
        let encoded = serde_json::to_string(&a).unwrap();
        let b: UserData = serde_json::from_str(&encoded).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(serde_json::to_string(&b).unwrap(), encoded);
    }

    #[test]
    fn notification_decode_encode_decode_is_identity(
        data in prop_oneof![call_message(&["c1", "c2"]), v3_call_message(&["c1", "c2"])],
    ) {
        let raw = serde_json::value::RawValue::from_string(data.clone()).unwrap();
        let a = match GwsNotification::from_data(&raw).unwrap() {
            GwsNotification::CallStateChange(m) => m,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let encoded = serde_json::to_string(&a).unwrap();
        let b: CallStateChangeMessage = serde_json::from_str(&encoded).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(serde_json::to_string(&b).unwrap(), encoded);
    }

    #[test]
    fn the_one_pass_decoder_agrees_with_the_general_one(
        datas in prop::collection::vec(
            (
                prop_oneof![call_message(&["c1", "c2"]), v3_call_message(&["c1", "c2"])],
                any::<bool>(),
                prop::sample::select(
                    &["/v2/me/calls", "/v2/me/devices", "/meta/connect", "/workspace/v3/voice"][..],
                ),
            ),
            1..4,
        ),
    ) {
        let body = format!(
            "[{}]",
            datas
                .iter()
                .map(|(d, data_first, ch)| if *data_first {
                    format!(r#"{{"data":{d},"id":"1","channel":"{ch}"}}"#)
                } else {
                    format!(r#"{{"channel":"{ch}","id":"1","data":{d}}}"#)
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let fast = wire::calls_in_batch(body.as_bytes()).unwrap();
        let general = oracle::calls(body.as_bytes()).unwrap();
        prop_assert_eq!(fast.len(), general.len());
        for (f, g) in fast.iter().zip(&general) {
            prop_assert_eq!(f.call_text(), g.call_text.as_str());
            prop_assert_eq!(f.call_id(), g.message.call.id.as_str());
            prop_assert_eq!(f.state(), g.message.call.state.as_ref());
            prop_assert_eq!(f.notification_type(), g.message.notification_type.as_ref());
        }
        // The typed views, read from the text the decoder judged, are the oracle's.
        let typed: Vec<CallStateChangeMessage> = Message::parse_batch(body.as_bytes())
            .unwrap()
            .iter()
            .filter_map(|m| CallStateChangeMessage::from_message(m).unwrap())
            .collect();
        let oracle_typed: Vec<&CallStateChangeMessage> = general.iter().map(|g| &g.message).collect();
        prop_assert_eq!(typed.iter().collect::<Vec<_>>(), oracle_typed);
    }

    #[test]
    fn the_decoder_and_the_oracle_agree_whatever_the_order_and_repetition_of_members(
        messages in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    3 => prop::sample::select(&["/v2/me/calls", "/v2/me/devices", "\\/v2\\/me\\/calls", "/workspace/v3/voice", "\\/workspace\\/v3\\/voice"][..])
                        .prop_map(|c| format!(r#""channel":"{c}""#)),
                    3 => prop_oneof![
                        3 => call_message(&["c1", "c2"]),
                        2 => v3_call_message(&["c1", "c2"]),
                        1 => json_value(),
                    ].prop_map(|d| format!(r#""data":{d}"#)),
                    1 => json_value().prop_map(|v| format!(r#""ext":{v}"#)),
                ],
                1..5,
            ),
            1..4,
        ),
    ) {
        let body = format!(
            "[{}]",
            messages
                .iter()
                .map(|members| format!("{{{}}}", members.join(",")))
                .collect::<Vec<_>>()
                .join(",")
        );
        // Bodies the oracle refuses (no channel, data of the wrong shape) say nothing about
        // agreement.
        let Ok(general) = oracle::calls(body.as_bytes()) else { return Ok(()) };
        let raw = calls_in_text(&body);
        prop_assert!(raw.is_ok(), "{} {:?}", body, raw);
        let raw = raw.unwrap();
        prop_assert_eq!(raw.len(), general.len(), "{}", body);
        for (r, g) in raw.iter().zip(&general) {
            prop_assert_eq!(r.call_text(), g.call_text.as_str());
            prop_assert_eq!(r.call_id(), g.message.call.id.as_str());
            prop_assert_eq!(r.state(), g.message.call.state.as_ref());
            prop_assert_eq!(r.notification_type(), g.message.notification_type.as_ref());
        }
    }

    #[test]
    fn applying_a_message_twice_is_idempotent(
        datas in prop::collection::vec(call_message(&["c1", "c2", "c3"]), 1..12),
    ) {
        let mut store = CallStore::new();
        let now = Instant::now();
        for d in &datas {
            // A typed notification enters the store as its call text, as the wire does.
            let m: CallStateChangeMessage = serde_json::from_str(d).unwrap();
            let text = m.call_text();
            let call = CallNotification::from_call_text(&text, m.notification_type.clone()).unwrap();
            store.apply(&call, now);
            let before = serde_json::to_string(&store.snapshot()).unwrap();
            prop_assert!(store.apply(&call, now).is_none());
            prop_assert_eq!(serde_json::to_string(&store.snapshot()).unwrap(), before);
        }
    }
}
