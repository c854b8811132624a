//! The calls as the page shows them: read from the REST listing's text with every `userData`
//! pair kept in order, duplicate keys included (a browser's `JSON.parse` would keep only
//! the last of them).

use std::fmt;

use gws_cometd::gws::Value;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One attached-data pair.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct PairView {
    pub key: String,
    /// A string value as the string; any other value as its JSON text.
    pub value: String,
    /// True when `value` is JSON text (a number, an object, ...), not a string.
    pub json: bool,
}

/// One call.
#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallView {
    pub id: String,
    pub state: String,
    pub call_type: String,
    pub ani: String,
    pub dnis: String,
    pub duration: String,
    pub capabilities: Vec<String>,
    pub user_data: Vec<PairView>,
}

fn text_of(raw: &RawValue) -> String {
    serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
}

impl CallView {
    /// Reads one call object's text with the library's reader of calls (v2's and v3's
    /// forms alike); `None` when it is not an object.
    pub(crate) fn read(call: &str) -> Option<CallView> {
        if !call.trim_start().starts_with('{') {
            return None;
        }
        let typed = gws_cometd::gws::CallView::from_text(call).ok()?;
        let call = typed.call();
        let text = |s: Option<&dyn fmt::Display>| s.map(|s| s.to_string()).unwrap_or_default();
        Some(CallView {
            id: call.id.clone(),
            state: text(call.state.as_ref().map(|s| s as _)),
            call_type: text(call.call_type.as_ref().map(|s| s as _)),
            ani: text(call.ani.as_ref().map(|s| s as _)),
            dnis: text(call.dnis.as_ref().map(|s| s as _)),
            duration: call
                .duration
                .as_ref()
                .map(|d| text_of(d.0.as_raw()))
                .unwrap_or_default(),
            capabilities: call
                .capabilities
                .iter()
                .flatten()
                .map(|c| c.to_string())
                .collect(),
            user_data: call
                .user_data()
                .iter()
                .map(|(key, v)| PairView {
                    key: key.to_owned(),
                    json: !matches!(v, Value::String(_)),
                    value: v.to_string(),
                })
                .collect(),
        })
    }

    /// The calls of a `{"statusCode":0,"calls":[...]}` listing.
    pub(crate) fn listed(listing: &str) -> Vec<CallView> {
        #[derive(Deserialize)]
        struct Listing<'a> {
            #[serde(borrow)]
            calls: Vec<&'a RawValue>,
        }
        serde_json::from_str::<Listing<'_>>(listing)
            .map(|l| l.calls.iter().filter_map(|c| Self::read(c.get())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_and_non_string_values_are_kept_in_order() {
        let listing = r#"{"statusCode":0,"calls":[{"id":"0071","state":"Ringing","callType":"Inbound","ani":"5115","dnis":"5001","capabilities":["Answer","Hangup"],"duration":"3","userData":{"A":"1","N":12345678901234567890,"A":"2","O":{"x":1}}},{"id":"0072","state":"Dialing"}]}"#;
        let calls = CallView::listed(listing);
        assert_eq!(calls.len(), 2);
        let c = &calls[0];
        assert_eq!(
            (c.id.as_str(), c.state.as_str(), c.call_type.as_str()),
            ("0071", "Ringing", "Inbound")
        );
        assert_eq!((c.ani.as_str(), c.dnis.as_str()), ("5115", "5001"));
        assert_eq!(c.capabilities, ["Answer", "Hangup"]);
        let pairs: Vec<(&str, &str, bool)> = c
            .user_data
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str(), p.json))
            .collect();
        assert_eq!(
            pairs,
            [
                ("A", "1", false),
                ("N", "12345678901234567890", true),
                ("A", "2", false),
                ("O", r#"{"x":1}"#, true)
            ]
        );
        assert!(calls[1].user_data.is_empty());
        assert!(CallView::listed("not json").is_empty());
    }

    #[test]
    fn a_v3_kvlist_is_read_in_order_with_its_duplicates() {
        let listing = r#"{"statusCode":0,"calls":[{"id":"0071","state":"Established","userData":[{"key":"A","type":"str","value":"1"},{"key":"P","type":"int","value":8},{"key":"A","type":"str","value":"2"}]}]}"#;
        let calls = CallView::listed(listing);
        let pairs: Vec<(&str, &str, bool)> = calls[0]
            .user_data
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str(), p.json))
            .collect();
        assert_eq!(
            pairs,
            [("A", "1", false), ("P", "8", true), ("A", "2", false)]
        );
    }
}
