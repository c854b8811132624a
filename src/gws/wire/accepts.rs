//! Property tests: the decoder, and the tokens a [`Value`](crate::gws::Value) is built from,
//! accept exactly the JSON texts serde_json accepts, and the decoder reports a syntax error
//! where serde_json does: in v2 notifications and in v3 calls (their KVList entries
//! included) alike.

use proptest::prelude::*;

use super::decode_data;
use crate::gws::model::tokens::Tokens;

/// `text` as an unknown member of a `data` object that is not a call notification: what the
/// decoder says of it is a verdict on syntax alone.
fn in_data(text: &str) -> String {
    format!("{{\"messageType\":\"Other\",\n\"v\":{text}}}")
}

/// `text` as the value of a v3 KVList entry, and as an unknown member of a v3 call: places
/// a v3 call notification reads (its `userData` entries are checked for shape, their values
/// for syntax only).
fn in_v3_call(text: &str) -> [String; 2] {
    [
        format!(
            "{{\"messageType\":\"CallStateChanged\",\"call\":{{\"id\":\"c\",\"userData\":[{{\"key\":\"k\",\"type\":\"x\",\n\"value\":{text}}}]}}}}"
        ),
        format!("{{\"messageType\":\"CallStateChanged\",\"call\":{{\"id\":\"c\",\n\"v\":{text}}}}}"),
    ]
}

/// serde_json's verdict, as the line and column it reports.
fn serde(text: &str) -> Result<(), (usize, usize)> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| (e.line(), e.column()))
}

fn tokens_accept(text: &str) -> bool {
    let mut t = Tokens::new(text);
    loop {
        match t.next() {
            Some(Some(_)) => {}
            Some(None) => return true,
            None => return false,
        }
    }
}

fn assert_agrees(text: &str) {
    let data = in_data(text);
    let ours = decode_data(&data).map(drop).map_err(|e| {
        assert!(e.is_syntax(), "{data:?}: {e}");
        (e.line(), e.column())
    });
    assert_eq!(ours, serde(&data), "{data:?}");
    for data in in_v3_call(text) {
        let ours = decode_data(&data).map(drop).map_err(|e| {
            assert!(e.is_syntax(), "{data:?}: {e}");
            (e.line(), e.column())
        });
        assert_eq!(ours, serde(&data), "{data:?}");
    }
    // Strings that escape half a surrogate pair pass serde_json's check but build no value.
    if !text.contains("\\u") {
        assert_eq!(tokens_accept(text), serde(text).is_ok(), "{text:?}");
    }
}

/// JSON-ish text: tokens of JSON, mostly well placed, sometimes not.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        8 => Just("{".to_owned()), 8 => Just("}".to_owned()),
        8 => Just("[".to_owned()), 8 => Just("]".to_owned()),
        8 => Just(",".to_owned()), 8 => Just(":".to_owned()),
        2 => Just(" ".to_owned()), 1 => Just("\n".to_owned()),
        2 => prop::sample::select(&["true", "false", "null", "nul", "tx"][..]).prop_map(str::to_owned),
        4 => "-?(0|[1-9][0-9]{0,3}|00)(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
        6 => "\"([a-z é✓]|\\\\[\"\\\\/bfnrtxu]|\\\\u[0-9a-fA-F]{4}|\\\\u[0-9g]{0,3}|\u{1}){0,12}\"?",
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

/// Valid JSON values.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
        ".*".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((".*", inner), 0..6).prop_map(|m| {
                let m: Vec<String> = m
                    .into_iter()
                    .map(|(k, v)| format!("{} : {v}", serde_json::to_string(&k).unwrap()))
                    .collect();
                format!("{{ {} }}", m.join(" ,"))
            }),
        ]
    })
}

#[test]
fn faults_are_reported_where_serde_json_reports_them() {
    for text in [
        "",
        " ",
        "[",
        "[1",
        "[1,",
        "[1,]",
        "[,1]",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":1,}",
        "{1:2}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "[1 2]",
        "nul",
        "nulx",
        "tru",
        "fals",
        "-",
        "-a",
        "01",
        "1.",
        "1.e5",
        "1e",
        "1e+",
        "1ex",
        "\"abc",
        "\"a\\",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"a\u{1}b\"",
        "[1]x",
        "{}}",
        "]",
        "}",
        "x",
        "[\"\\u00",
        "{\"a\":[}",
        "[{]",
        "\"\t\"",
    ] {
        assert_agrees(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_decoder_accepts_and_rejects_what_serde_json_does(text in jsonish()) {
        assert_agrees(&text);
    }

    #[test]
    fn valid_json_with_a_few_bytes_changed_is_judged_as_serde_json_judges_it(
        text in json(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, prop::sample::select(&["\"", "\\", ",", ":", "}", "]", "{", "[", "0", "-", "e", ".", "n", " ", "\u{1}", "é"][..])), 1..4),
    ) {
        let mut text = text.into_bytes();
        for (at, kind, token) in edits {
            let at = at.index(text.len() + 1);
            match kind {
                0 => drop(text.splice(at..at, token.bytes())),
                1 if at < text.len() => drop(text.remove(at)),
                _ => drop(text.splice(at..(at + 1).min(text.len()), token.bytes())),
            }
        }
        // Removing a byte can split a character; only text is read.
        if let Ok(text) = String::from_utf8(text) {
            assert_agrees(&text);
        }
    }

    #[test]
    fn valid_json_is_accepted_and_every_cut_of_it_agrees(text in json(), cut in any::<prop::sample::Index>()) {
        assert_agrees(&text);
        prop_assert!(tokens_accept(&text) || text.contains("\\u"));
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        assert_agrees(&text[..at]);
    }
}
