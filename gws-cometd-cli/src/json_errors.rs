//! serde_json's syntax errors in plain words: `expected ident` means nothing to someone who
//! fed a file of plain text; "not JSON: expected a value" does.

/// `message` (serde_json's wording, without its position) in plain words. Messages that are
/// not JSON syntax errors (a field missing, a Bayeux message of the wrong shape) are kept.
pub fn json_error(message: &str) -> String {
    let plain = match message {
        "expected value" | "expected ident" => "expected a value",
        "EOF while parsing a value" => "the text ends where a value should be",
        "EOF while parsing a list" => "the text ends inside a list (a ']' is missing)",
        "EOF while parsing an object" => "the text ends inside an object (a '}' is missing)",
        "EOF while parsing a string" => "the text ends inside a string (a '\"' is missing)",
        "expected `:`" => "expected ':' after an object key",
        "expected `,` or `]`" => "expected ',' or ']' in a list",
        "expected `,` or `}`" => "expected ',' or '}' in an object",
        "key must be a string" => "an object key must be a string in double quotes",
        "invalid escape" => "an invalid escape in a string",
        "invalid number" => "an invalid number",
        "trailing characters" => "more text after the value",
        m if m.starts_with("control character") => {
            "a control character in a string (write it as an escape such as \\n)"
        }
        m if m.starts_with("invalid unicode code point")
            || m.starts_with("lone leading surrogate")
            || m.starts_with("unexpected end of hex escape") =>
        {
            "an invalid \\u escape in a string"
        }
        m if m.starts_with("number out of range") => "a number out of range",
        m if m.starts_with("recursion limit exceeded") => "nested too deeply",
        other => return other.to_owned(),
    };
    format!("not JSON: {plain}")
}

/// A serde_json error's message without the ` at line L column C` serde_json appends, and
/// the 1-based column it names.
pub fn serde_message(e: &serde_json::Error) -> (String, usize) {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    (message, e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> String {
        let e = serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap_err();
        json_error(&serde_message(&e).0)
    }

    #[test]
    fn syntax_errors_read_as_plain_words() {
        assert_eq!(plain("hello"), "not JSON: expected a value");
        assert_eq!(plain("not json"), "not JSON: expected a value");
        assert_eq!(
            plain("{\"a\":1"),
            "not JSON: the text ends inside an object (a '}' is missing)"
        );
        assert_eq!(plain("[1 2]"), "not JSON: expected ',' or ']' in a list");
        assert_eq!(
            plain("{a:1}"),
            "not JSON: an object key must be a string in double quotes"
        );
        assert_eq!(plain("1 2"), "not JSON: more text after the value");
        assert_eq!(plain(""), "not JSON: the text ends where a value should be");
        assert_eq!(
            json_error("missing field `channel`"),
            "missing field `channel`"
        );
        // Already plain words.
        assert_eq!(json_error("invalid UTF-8"), "invalid UTF-8");
    }

    #[test]
    fn the_position_is_taken_out_of_the_message() {
        let e = serde_json::from_str::<serde::de::IgnoredAny>("[1,,]").unwrap_err();
        assert_eq!(serde_message(&e), ("expected value".to_owned(), 4));
    }
}
