//! `KEY=VALUE` arguments of the user-data commands.

use gws_cometd::gws::rest::UserValue;

/// A `KEY=VALUE` argument that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid user-data pair {input:?}: {reason} (expected KEY=VALUE)")]
pub struct InvalidPair {
    /// The argument as given (cut to 80 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Reads a `KEY=VALUE` argument into a user-data pair.
///
/// The key is everything before the first `=` and must not be empty. The value is typed by
/// how it is written:
///
/// * a JSON integer literal (`-?(0|[1-9][0-9]*)`, any size) is an integer: `Priority=2`;
/// * a value in double quotes is always a string, the quotes removed and JSON escapes such as
///   `\"` decoded: `Code="123"` is the string `123`;
/// * anything else is a string as written, including `007` (leading zeros), `1.5`, `true`
///   and the empty value (`Note=`).
pub fn parse_pair(arg: &str) -> Result<(String, UserValue), InvalidPair> {
    let invalid = |reason| InvalidPair {
        input: arg.chars().take(80).collect(),
        reason,
    };
    let (key, value) = arg.split_once('=').ok_or_else(|| invalid("no '='"))?;
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        // A quoted value is JSON string syntax when it parses as one; otherwise the quotes
        // are simply stripped.
        let text = serde_json::from_str::<String>(value)
            .unwrap_or_else(|_| value[1..value.len() - 1].to_owned());
        UserValue::String(text)
    } else if let Some(integer) = UserValue::integer(value) {
        integer
    } else {
        UserValue::String(value.to_owned())
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_json_integer_literals_and_everything_else_is_a_string() {
        let v = |s: &str| parse_pair(s).map(|(_, v)| v);
        assert_eq!(v("P=2"), Ok(UserValue::Integer("2".into())));
        assert_eq!(v("P=-17"), Ok(UserValue::Integer("-17".into())));
        assert_eq!(
            v("Big=123456789012345678901234567890"),
            Ok(UserValue::Integer("123456789012345678901234567890".into()))
        );
        assert_eq!(v("A=007"), Ok(UserValue::String("007".into())));
        assert_eq!(v("A=1.5"), Ok(UserValue::String("1.5".into())));
        assert_eq!(v("A=true"), Ok(UserValue::String("true".into())));
        assert_eq!(v("A=-"), Ok(UserValue::String("-".into())));
        assert_eq!(v("A="), Ok(UserValue::String(String::new())));
        assert_eq!(v("A=x=y"), Ok(UserValue::String("x=y".into())));
    }

    #[test]
    fn quoted_values_are_always_strings() {
        let v = |s: &str| parse_pair(s).map(|(_, v)| v);
        assert_eq!(v(r#"A="123""#), Ok(UserValue::String("123".into())));
        assert_eq!(
            v(r#"A="say \"hi\"""#),
            Ok(UserValue::String(r#"say "hi""#.into()))
        );
        assert_eq!(v(r#"A="""#), Ok(UserValue::String(String::new())));
    }

    #[test]
    fn pairs_without_key_or_equals_are_refused() {
        assert_eq!(parse_pair("=1").unwrap_err().reason, "the key is empty");
        assert_eq!(parse_pair("Key").unwrap_err().reason, "no '='");
    }
}
