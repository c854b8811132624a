//! Feeds arbitrary bytes to the decoder a fixture line or a reply body goes through, and to
//! a plain serde reading of the same bytes (`tests/support/oracle.rs`). Nothing may panic;
//! where both accept the body they must find the same calls; whatever decodes must encode and
//! decode to the same typed value; applying a notification twice must change nothing the
//! second time.
#![no_main]

#[path = "../../tests/support/oracle.rs"]
mod oracle;

use std::time::Instant;

use gws_cometd::bayeux::Message;
use gws_cometd::gws::wire::calls_in_batch;
use gws_cometd::gws::{CallStore, GwsNotification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Message::parse_batch(data) {
        for msg in &batch {
            if let Some(Ok(n)) = GwsNotification::from_message(msg) {
                let text = serde_json::to_string(&n).expect("encode");
                let again: GwsNotification = serde_json::from_str(&text).expect("re-decode");
                if let (GwsNotification::CallStateChange(a), GwsNotification::CallStateChange(b)) =
                    (&n, &again)
                {
                    assert_eq!(a, b);
                }
            }
        }
    }
    let ours = calls_in_batch(data);
    // The decoder checks syntax as strictly as serde_json: it never accepts what serde_json
    // refuses, and calls a fault a syntax error only when serde_json refuses the body too.
    let valid_json = serde_json::from_slice::<serde_json::Value>(data).is_ok();
    match &ours {
        Ok(_) => assert!(valid_json, "the decoder accepted malformed JSON"),
        Err(e) if e.is_syntax() => assert!(!valid_json, "syntax error in valid JSON: {e}"),
        Err(_) => {}
    }
    // Where the oracle reads the body and it is text, the decoder reads it too (it checks
    // fewer shapes) and finds the same calls.
    if let (Ok(general), true) = (oracle::calls(data), std::str::from_utf8(data).is_ok()) {
        let ours = ours.as_ref().expect("the decoder refuses what the oracle reads");
        assert_eq!(ours.len(), general.len());
        let mut store = CallStore::new();
        let now = Instant::now();
        for (o, g) in ours.iter().zip(&general) {
            assert_eq!(o.call_text(), g.call_text);
            assert_eq!(o.call_id(), g.message.call.id);
            assert_eq!(o.state(), g.message.call.state.as_ref());
            store.apply(o, now);
            assert!(store.apply(o, now).is_none());
            let id = o.call_id();
            assert_eq!(store.get_text(id).is_some(), store.get(id).is_some());
        }
        let _ = serde_json::to_string(&store.snapshot()).expect("snapshot");
    }
});
