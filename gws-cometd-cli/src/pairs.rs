//! `KEY=VALUE` and `KEY:=JSON` arguments of the user-data commands, as httpie reads them.

use gws_cometd::gws::rest::UserValue;

use super::json_errors;

/// A pair argument that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid user-data pair {input:?}: {reason} (expected KEY=STRING or KEY:=JSON)")]
pub struct InvalidPair {
    /// The argument as given (cut to 80 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads a `KEY=VALUE` (string) or `KEY:=JSON` (JSON value) argument into a user-data pair.
pub fn parse_pair(arg: &str) -> Result<(String, UserValue), InvalidPair> {
    let invalid = |reason: String| InvalidPair {
        input: arg.chars().take(80).collect(),
        reason,
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| invalid("no '='".to_owned()))?;
    let (key, json) = match key.strip_suffix(':') {
        Some(key) => (key, true),
        None => (key, false),
    };
    if key.is_empty() {
        return Err(invalid("the key is empty".to_owned()));
    }
    let value = if json {
        UserValue::json(value).map_err(|e| {
            let (message, column) = json_errors::serde_message(&e);
            // The column within the argument, so the mistake can be found in it.
            let column = column + key.len() + 2;
            invalid(format!(
                "after ':=' at column {column}: {}",
                json_errors::json_error(&message)
            ))
        })?
    } else {
        UserValue::String(value.to_owned())
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<(String, String), String> {
        parse_pair(s)
            .map(|(k, v)| (k, v.to_json()))
            .map_err(|e| e.reason)
    }

    fn ok(key: &str, json: &str) -> Result<(String, String), String> {
        Ok((key.to_owned(), json.to_owned()))
    }

    #[test]
    fn key_equals_value_is_always_a_string() {
        assert_eq!(v("AccountNumber=12345"), ok("AccountNumber", r#""12345""#));
        assert_eq!(v("Zip=007"), ok("Zip", r#""007""#));
        assert_eq!(v("A=1.5"), ok("A", r#""1.5""#));
        assert_eq!(v("A=true"), ok("A", r#""true""#));
        assert_eq!(v("A="), ok("A", r#""""#));
        assert_eq!(v("A=x=y"), ok("A", r#""x=y""#));
        assert_eq!(v(r#"A="q""#), ok("A", r#""\"q\"""#));
        assert_eq!(v("A:B=1"), ok("A:B", r#""1""#));
    }

    #[test]
    fn key_colon_equals_is_json_kept_exactly() {
        assert_eq!(v("N:=5"), ok("N", "5"));
        assert_eq!(
            v("Big:=123456789012345678901234567890"),
            ok("Big", "123456789012345678901234567890")
        );
        assert_eq!(
            v(r#"J:={"a":1,"a":"2","n":[1,2.50]}"#),
            ok("J", r#"{"a":1,"a":"2","n":[1,2.50]}"#)
        );
        assert_eq!(v(r#"S:="12345""#), ok("S", r#""12345""#));
        assert!(matches!(parse_pair("N:=5"), Ok((_, UserValue::Json(_)))));
    }

    #[test]
    fn malformed_pairs_are_refused_naming_the_argument() {
        assert_eq!(v("=1").unwrap_err(), "the key is empty");
        assert_eq!(v(":=1").unwrap_err(), "the key is empty");
        assert_eq!(v("Key").unwrap_err(), "no '='");
        let err = parse_pair("N:=abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid user-data pair "N:=abc": after ':=' at column 4: not JSON: expected a value (expected KEY=STRING or KEY:=JSON)"#
        );
        assert!(v("N:=").unwrap_err().contains("not JSON"));
        assert!(v("N:={\"a\":1").unwrap_err().contains("'}' is missing"));
        assert!(v("N:=1 2").unwrap_err().contains("more text"));
    }
}
