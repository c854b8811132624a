//! [`Tokens`]: the tokens of one JSON value's text, in order, read with an explicit stack.
//!
//! Building a [`Value`](super::Value) and comparing two value texts go token by token
//! instead of by recursion, so how deep a text nests costs memory in proportion (a few bytes
//! a level), never stack. serde_json reads every string and scalar (its checks, its escape
//! decoding); the brackets, colons and commas between them are checked here, in the order
//! RFC 8259 allows.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::gws::wire::json::{offset, string_text};

/// One token of a JSON value's text.
#[derive(Debug, PartialEq)]
pub(crate) enum Token<'a> {
    /// `{` (`object`) or `[`.
    Open { object: bool },
    /// A member's key, decoded.
    Key(Cow<'a, str>),
    /// A string value, decoded.
    Str(Cow<'a, str>),
    /// A number or literal, as text.
    Scalar(&'a str),
    /// The `}` or `]` that closes the innermost open container.
    Close,
}

/// The tokens of one JSON value's text (whitespace around it allowed).
pub(crate) struct Tokens<'a> {
    text: &'a str,
    at: usize,
    /// Per open container: an object?, and still before its first member?
    open: Vec<(bool, bool)>,
    /// A value comes next (at the start, and after a key or a comma in a list).
    value_next: bool,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Tokens {
            text,
            at: 0,
            open: Vec::new(),
            value_next: true,
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let b = self.text.as_bytes();
        while let Some(&c) = b.get(self.at) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.at += 1;
        }
        None
    }

    /// Consumes `c` when it is the next byte.
    fn eat(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.at += 1;
        }
        yes
    }

    /// One string, number or literal, read by serde_json: its text.
    fn scalar(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.at..)?;
        let mut de = serde_json::Deserializer::from_str(rest);
        let raw = <&RawValue>::deserialize(&mut de).ok()?.get();
        self.at = offset(self.text, raw) + raw.len();
        Some(raw)
    }

    /// The next token; `Some(None)` at the end, `None` when the text is not one JSON value
    /// (or a string escapes half a surrogate pair).
    pub(crate) fn next(&mut self) -> Option<Option<Token<'a>>> {
        if !self.value_next {
            let Some(&(object, first)) = self.open.last() else {
                return self.peek().is_none().then_some(None);
            };
            let close = if object { b'}' } else { b']' };
            if self.eat(close) {
                self.open.pop();
                return Some(Some(Token::Close));
            }
            if first {
                if let Some(top) = self.open.last_mut() {
                    top.1 = false;
                }
            } else if !self.eat(b',') {
                return None;
            }
            if object {
                if self.peek() != Some(b'"') {
                    return None;
                }
                let key = string_text(self.scalar()?).ok()?;
                if !self.eat(b':') {
                    return None;
                }
                self.value_next = true;
                return Some(Some(Token::Key(key)));
            }
        }
        self.value_next = false;
        Some(Some(match self.peek()? {
            c @ (b'{' | b'[') => {
                self.at += 1;
                let object = c == b'{';
                self.open.push((object, true));
                Token::Open { object }
            }
            b'"' => Token::Str(string_text(self.scalar()?).ok()?),
            _ => Token::Scalar(self.scalar()?),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the tokens reach the end, as serde_json's verdict.
    fn accepted(text: &str) -> bool {
        let mut t = Tokens::new(text);
        loop {
            match t.next() {
                Some(Some(_)) => {}
                Some(None) => return true,
                None => return false,
            }
        }
    }

    #[test]
    fn the_tokens_accept_what_serde_json_accepts() {
        for text in [
            r#"{"a":[1,-0,0.5,true,null,"x\"y"],"b":{},"c":[]}"#,
            " [ ] ",
            r#"{ "a" : 1 , "a" : 2 }"#,
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "[1 2]",
            "01",
            "[1]x",
            "{}}",
            "]",
            "",
            "[{]",
            "\"\\u12\"",
        ] {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(accepted(text), serde, "{text:?}");
        }
    }

    #[test]
    fn deep_text_takes_no_stack() {
        let depth = 100_000;
        let text = format!("{}1{}", "[{\"k\":".repeat(depth), "}]".repeat(depth));
        assert!(accepted(&text));
    }
}
