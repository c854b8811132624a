//! Differential fuzzing of the decoder's accepted set against serde_json, through a
//! message's `data`: any text the decoder reads there, it must accept exactly when serde_json
//! accepts it (into `IgnoredAny`), and a syntax error must be at the line and column serde_json
//! reports.
#![no_main]

use gws_cometd::gws::wire::decode_data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = decode_data(text);
    let theirs = serde_json::from_str::<serde::de::IgnoredAny>(text);
    match (&ours, &theirs) {
        (Ok(_), Ok(_)) => {}
        // Valid JSON whose call notification lacks what the store needs.
        (Err(e), Ok(_)) => assert!(!e.is_syntax(), "{text:?}: {e}"),
        (Err(e), Err(s)) => {
            assert!(e.is_syntax(), "{text:?}: {e}, serde_json: {s}");
            assert_eq!((e.line(), e.column()), (s.line(), s.column()), "{text:?}: {e}, serde_json: {s}");
        }
        (Ok(_), Err(s)) => panic!("{text:?}: accepted, serde_json says {s}"),
    }
});
