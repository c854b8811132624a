//! Feeds arbitrary bytes to the decoders a fixture line or a reply body goes through.
//! Nothing may panic; whatever decodes must encode and decode to the same value, and
//! applying a notification twice must change nothing the second time.
#![no_main]

use gws_cometd::bayeux::Message;
use gws_cometd::gws::{
    calls_in_batch, raw_calls_in_batch, CallStateChangeMessage, CallStore, GwsNotification,
};
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
    // On UTF-8 input the raw reader accepts what the typed one-pass decoder accepts (it
    // checks fewer shapes), and finds the same calls.
    let raw = raw_calls_in_batch(data);
    // The raw reader checks syntax as strictly as serde_json: it never accepts what serde_json
    // refuses, and calls a fault a syntax error only when serde_json refuses the body too.
    let valid_json = serde_json::from_slice::<serde_json::Value>(data).is_ok();
    match &raw {
        Ok(_) => assert!(valid_json, "raw reader accepted malformed JSON"),
        Err(e) if e.is_syntax() => assert!(!valid_json, "syntax error in valid JSON: {e}"),
        Err(_) => {}
    }
    if let (Ok(fast), true) = (&fast, std::str::from_utf8(data).is_ok()) {
        let raw = raw.as_ref().expect("raw reader rejects what the typed decoder accepts");
        assert_eq!(raw.len(), fast.len());
        let mut store = CallStore::new();
        for (r, f) in raw.iter().zip(fast) {
            assert_eq!(r.call_id(), f.call.id);
            assert_eq!(r.state(), f.call.state.as_ref());
            store.apply_raw(r);
            assert!(store.apply_raw(r).is_none());
            assert_eq!(store.get_text(r.call_id()).map(|_| ()), store.get(r.call_id()).map(|_| ()));
        }
        let _ = serde_json::to_string(&store.snapshot()).expect("raw snapshot");
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
