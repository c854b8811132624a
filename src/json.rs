//! JSON string literals for text the crate builds by hand: REST request bodies and the
//! fixture header's list of kept keys. One function, `quote`.

/// `s` as a JSON string literal, quotes included and escapes applied.
pub(crate) fn quote(s: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}
