//! Feeds arbitrary bytes to the decoders a fixture line or a reply body goes through.
//! Nothing may panic; whatever decodes must encode and decode to the same value, and
//! applying a notification twice must change nothing the second time.
#![no_main]

use gws_cometd::bayeux::Message;
use gws_cometd::gws::{calls_in_batch, CallStateChangeMessage, CallStore, GwsNotification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fast = calls_in_batch(data);
    let mut general = Vec::new();
    let mut general_ok = true;
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
            match CallStateChangeMessage::from_message(msg) {
                Ok(Some(m)) => general.push(m),
                Ok(None) => {}
                Err(_) => general_ok = false,
            }
        }
    } else {
        general_ok = false;
    }
    // When both decoders accept the body they must agree on the calls.
    if let (Ok(fast), true) = (&fast, general_ok) {
        assert_eq!(fast, &general);
    }
    if let Ok(calls) = fast {
        let mut store = CallStore::new();
        for m in calls {
            store.apply(&m);
            assert!(store.apply(&m).is_none());
        }
        let _ = serde_json::to_string(&store.snapshot()).expect("snapshot");
    }
});
