//! A string as a JSON string literal, for the replies and notifications the simulator builds
//! as text.

/// `s` as a JSON string literal, quotes included and escapes applied.
pub(crate) fn quote(s: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}
