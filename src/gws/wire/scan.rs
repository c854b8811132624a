//! A validating JSON scanner: reads JSON text once, exactly as strictly as serde_json does,
//! and tells where values are instead of building them.
//!
//! The one-pass call reader ([`super::raw_call`]) walks the few levels it cares about (the
//! reply array, each message, its `data`, the call) member by member with
//! [`Scanner::next_key`] and [`Scanner::next_element`], and passes over everything else with
//! [`Scanner::skip_value`], one tight loop that checks a whole value without visiting its
//! parts. That is what keeps `replay` close to the cost of merely validating its input.
//!
//! What is checked is what serde_json checks when it reads a value into `IgnoredAny`: the
//! grammar of RFC 8259, escapes (`\u` takes four hex digits; surrogate pairs are checked
//! only when a string is decoded, as in serde_json), no raw control characters in strings,
//! nothing after the value. The error carries the position serde_json would report for the
//! same text, so both readers point at the same column. Nesting depth is not limited by the
//! scan itself (the open containers are kept in a bit stack, not by recursion); a caller that
//! builds values from what it scans passes its limit to [`Scanner::skip_value_within`] (the
//! call reader does, for `userData`: [`MAX_USER_DATA_DEPTH`]).
//!
//! A failing step records its [`ScanError`] in the scanner and returns the empty [`Fault`]:
//! results stay small enough to travel in registers on the hot path.

use std::borrow::Cow;
use std::ops::Range;

use crate::bayeux::Limit;
#[cfg(doc)]
use crate::gws::MAX_USER_DATA_DEPTH;

/// What is wrong, and where: `at` is the index serde_json reports for it (the 1-based
/// column of the offending byte on a one-line text; the length when the text ended early).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub(crate) at: usize,
    pub(crate) what: Cow<'static, str>,
    /// True when the text is not JSON; false when it is, but not of the expected shape.
    pub(crate) syntax: bool,
    /// The limit the text is over, when that is what is wrong.
    pub(crate) limit: Option<Limit>,
}

impl ScanError {
    /// An error about the shape of the value that starts at `start`.
    pub(crate) fn value(start: usize, what: impl Into<Cow<'static, str>>) -> ScanError {
        ScanError {
            at: start + 1,
            what: what.into(),
            syntax: false,
            limit: None,
        }
    }

    /// The value that starts at `start` nests deeper than `max`, over `limit`.
    pub(crate) fn over(start: usize, limit: Limit, max: usize) -> ScanError {
        ScanError {
            limit: Some(limit),
            ..ScanError::value(
                start,
                format!("nested deeper than {max} levels: over {limit}"),
            )
        }
    }

    fn syntax(at: usize, what: &'static str) -> ScanError {
        ScanError {
            at,
            what: Cow::Borrowed(what),
            syntax: true,
            limit: None,
        }
    }
}

/// A step failed; its [`ScanError`] is in the scanner ([`Scanner::take_error`]).
#[derive(Debug)]
pub(crate) struct Fault;

pub(crate) type Result<T> = std::result::Result<T, Fault>;

// serde_json's wording, so both readers say the same thing.
const EOF_VALUE: &str = "EOF while parsing a value";
const EOF_LIST: &str = "EOF while parsing a list";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_STRING: &str = "EOF while parsing a string";
const EXPECTED_VALUE: &str = "expected value";
const EXPECTED_IDENT: &str = "expected ident";
const EXPECTED_COLON: &str = "expected `:`";
const EXPECTED_LIST_END: &str = "expected `,` or `]`";
const EXPECTED_OBJECT_END: &str = "expected `,` or `}`";
const KEY_MUST_BE_STRING: &str = "key must be a string";
const CONTROL_CHARACTER: &str = "control character (\\u0000-\\u001F) found while parsing a string";
const INVALID_ESCAPE: &str = "invalid escape";
const INVALID_NUMBER: &str = "invalid number";
const TRAILING_CHARACTERS: &str = "trailing characters";

/// A string token found by the scanner: where it is (quotes included), and whether it has
/// escapes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Str {
    pub(crate) start: usize,
    pub(crate) end: usize,
    escaped: bool,
}

/// A value as [`Scanner::token`] read it.
#[derive(Clone, Debug)]
pub(crate) enum Token {
    Str(Str),
    /// Any other value, where it is.
    Other(Range<usize>),
}

impl Token {
    /// Where the value starts.
    pub(crate) fn start(&self) -> usize {
        match self {
            Token::Str(t) => t.start,
            Token::Other(r) => r.start,
        }
    }
}

/// The containers open inside [`Scanner::skip_value`]: one bit each (object or array), the
/// innermost in the low bit of `top`, every further 64 in `spill`.
#[derive(Default)]
struct Open {
    top: u64,
    len: usize,
    spill: Vec<u64>,
}

impl Open {
    fn push(&mut self, object: bool) {
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.spill.push(self.top);
            self.top = 0;
        }
        self.top = (self.top << 1) | u64::from(object);
        self.len += 1;
    }

    /// Whether the innermost open container is an object; `None` when none is open.
    fn innermost(&self) -> Option<bool> {
        (self.len > 0).then_some(self.top & 1 == 1)
    }

    fn pop(&mut self) {
        self.top >>= 1;
        self.len = self.len.saturating_sub(1);
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.top = self.spill.pop().unwrap_or(0);
        }
    }
}

/// A cursor over JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    error: Option<ScanError>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Scanner {
            text,
            pos: 0,
            error: None,
        }
    }

    /// Where the cursor is.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The text of `range` (empty if it is not one; ranges come from this scanner).
    pub(crate) fn slice(&self, range: Range<usize>) -> &'a str {
        self.text.get(range).unwrap_or_default()
    }

    /// Records `error` as the reason the scan stops.
    pub(crate) fn fail(&mut self, error: ScanError) -> Fault {
        self.error = Some(error);
        Fault
    }

    /// The error recorded by the step that returned [`Fault`].
    pub(crate) fn take_error(&mut self) -> ScanError {
        let fallback = ScanError::syntax(self.pos, "malformed JSON");
        self.error.take().unwrap_or(fallback)
    }

    /// Fails at the byte the cursor is on (serde_json's "peek" position).
    #[cold]
    fn fail_next(&mut self, what: &'static str) -> Fault {
        let at = (self.pos + 1).min(self.text.len());
        self.fail(ScanError::syntax(at, what))
    }

    /// Fails just after the bytes consumed so far.
    #[cold]
    fn fail_here(&mut self, what: &'static str) -> Fault {
        self.fail(ScanError::syntax(self.pos, what))
    }

    /// Skips whitespace and returns the next byte without consuming it; `None` at the end.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        let b = self.text.as_bytes();
        while let Some(&c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes the byte [`Scanner::peek`] returned.
    #[inline]
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Checks that only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.fail_next(TRAILING_CHARACTERS)),
        }
    }

    /// After the `{` of an object (`first` true) or one of its values: the next key, its
    /// colon consumed; `None` once the closing brace is consumed.
    #[inline(always)]
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<Str>> {
        match self.peek() {
            Some(b'}') => {
                self.bump();
                return Ok(None);
            }
            Some(b',') if !*first => self.bump(),
            Some(_) if *first => {}
            Some(_) => return Err(self.fail_next(EXPECTED_OBJECT_END)),
            None => return Err(self.fail_next(EOF_OBJECT)),
        }
        *first = false;
        self.key().map(Some)
    }

    /// After the `[` of an array (`first` true) or one of its elements: whether another
    /// element follows (the cursor before it); false once the closing bracket is consumed.
    pub(crate) fn next_element(&mut self, first: &mut bool) -> Result<bool> {
        match self.peek() {
            Some(b']') => {
                self.bump();
                Ok(false)
            }
            Some(b',') if !*first => {
                self.bump();
                Ok(true)
            }
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            Some(_) => Err(self.fail_next(EXPECTED_LIST_END)),
            None => Err(self.fail_next(EOF_LIST)),
        }
    }

    /// A key and its colon, when only their syntax matters.
    #[inline(always)]
    fn skip_key(&mut self) -> Result<()> {
        self.key().map(drop)
    }

    /// A key and its colon.
    #[inline(always)]
    fn key(&mut self) -> Result<Str> {
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return Err(self.fail_next(KEY_MUST_BE_STRING)),
            None => return Err(self.fail_next(EOF_OBJECT)),
        }
        let key = self.string()?;
        match self.peek() {
            Some(b':') => {
                self.bump();
                Ok(key)
            }
            Some(_) => Err(self.fail_next(EXPECTED_COLON)),
            None => Err(self.fail_next(EOF_OBJECT)),
        }
    }

    /// The decoded text of a string token (`what` names it in the error): borrowed unless
    /// it has escapes. Fails when an escape is half of a surrogate pair.
    #[inline]
    pub(crate) fn decoded(
        &self,
        token: Str,
        what: &str,
    ) -> std::result::Result<Cow<'a, str>, ScanError> {
        if token.escaped {
            return self.unescape(token, what).map(Cow::Owned);
        }
        // Inside the quotes, which are ASCII: the slice is whole characters.
        let inner = self.text.get(token.start + 1..token.end - 1);
        Ok(Cow::Borrowed(inner.unwrap_or_default()))
    }

    #[cold]
    fn unescape(&self, token: Str, what: &str) -> std::result::Result<String, ScanError> {
        let raw = self.slice(token.start..token.end);
        serde_json::from_str::<String>(raw).map_err(|e| {
            ScanError::value(
                token.start,
                format!("{what} {raw}: {}", without_position(&e)),
            )
        })
    }

    /// Reads one value, keeping a string's token (so its text can be had without looking
    /// at it again).
    #[inline]
    pub(crate) fn token(&mut self) -> Result<Token> {
        if self.peek() == Some(b'"') {
            self.string().map(Token::Str)
        } else {
            self.skip_value().map(Token::Other)
        }
    }

    /// The text of a token that is a string, decoded; `None` for any other value (or a
    /// string that escapes half a surrogate pair).
    pub(crate) fn string_of(&self, token: &Token) -> Option<Cow<'a, str>> {
        match token {
            Token::Str(t) => self.decoded(*t, "string").ok(),
            Token::Other(_) => None,
        }
    }

    /// Whether a token is `null`.
    pub(crate) fn is_null(&self, token: &Token) -> bool {
        matches!(token, Token::Other(r) if self.slice(r.clone()) == "null")
    }

    /// The string whose opening quote is the next byte.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<Str> {
        let start = self.pos;
        self.pos += 1;
        self.skip_plain();
        if self.text.as_bytes().get(self.pos) == Some(&b'"') {
            self.pos += 1;
            return Ok(Str {
                start,
                end: self.pos,
                escaped: false,
            });
        }
        self.string_rest(start)
    }

    /// The rest of a string that has an escape (or is malformed), from the cursor.
    #[inline(never)]
    fn string_rest(&mut self, start: usize) -> Result<Str> {
        loop {
            match self.text.as_bytes().get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Str {
                        start,
                        end: self.pos,
                        escaped: true,
                    });
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape()?;
                }
                Some(_) => return Err(self.fail_here(CONTROL_CHARACTER)),
                None => return Err(self.fail_here(EOF_STRING)),
            }
            self.skip_plain();
        }
    }

    /// Moves to the next `"`, `\` or control character (or the end).
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = u64::MAX / 255;
        const HIGHS: u64 = ONES << 7;
        let b = self.text.as_bytes();
        let mut i = self.pos;
        // Eight bytes at a time: a byte is special when it is below 0x20, or equal to `"` or
        // `\` (zero after an XOR). The lowest flagged byte is exact, later ones may not be.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let x = u64::from_le_bytes(word);
            let quote = x ^ (ONES * u64::from(b'"'));
            let backslash = x ^ (ONES * u64::from(b'\\'));
            let special = (x.wrapping_sub(ONES * 0x20) & !x)
                | (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash);
            let special = special & HIGHS;
            if special != 0 {
                self.pos = i + special.trailing_zeros() as usize / 8;
                return;
            }
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            i += 1;
        }
        self.pos = i;
    }

    /// The rest of an escape, after its backslash.
    fn escape(&mut self) -> Result<()> {
        let b = self.text.as_bytes();
        let Some(&c) = b.get(self.pos) else {
            return Err(self.fail_here(EOF_STRING));
        };
        self.pos += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => match b.get(self.pos..self.pos + 4) {
                Some(hex) => {
                    self.pos += 4;
                    if hex.iter().all(u8::is_ascii_hexdigit) {
                        Ok(())
                    } else {
                        Err(self.fail_here(INVALID_ESCAPE))
                    }
                }
                None => {
                    self.pos = b.len();
                    Err(self.fail_here(EOF_STRING))
                }
            },
            _ => Err(self.fail_here(INVALID_ESCAPE)),
        }
    }

    #[inline]
    fn digits(&mut self) {
        let b = self.text.as_bytes();
        while matches!(b.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<()> {
        let b = self.text.as_bytes();
        if b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match b.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if matches!(b.get(self.pos), Some(b'0'..=b'9')) {
                    return Err(self.fail_next(INVALID_NUMBER));
                }
            }
            Some(b'1'..=b'9') => {
                self.pos += 1;
                self.digits();
            }
            Some(_) => {
                self.pos += 1;
                return Err(self.fail_here(INVALID_NUMBER));
            }
            None => return Err(self.fail_here(INVALID_NUMBER)),
        }
        if b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let start = self.pos;
            self.digits();
            if self.pos == start {
                return Err(self.fail_next(INVALID_NUMBER));
            }
        }
        if matches!(b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            match b.get(self.pos) {
                Some(b'0'..=b'9') => self.digits(),
                Some(_) => {
                    self.pos += 1;
                    return Err(self.fail_here(INVALID_NUMBER));
                }
                None => return Err(self.fail_here(INVALID_NUMBER)),
            }
        }
        Ok(())
    }

    /// `true`, `false` or `null`, whose first byte is the next one.
    fn literal(&mut self, first: u8) -> Result<()> {
        let word: &[u8] = match first {
            b't' => b"rue",
            b'f' => b"alse",
            _ => b"ull",
        };
        let b = self.text.as_bytes();
        self.pos += 1;
        for &want in word {
            let Some(&c) = b.get(self.pos) else {
                return Err(self.fail_here(EOF_VALUE));
            };
            self.pos += 1;
            if c != want {
                return Err(self.fail_here(EXPECTED_IDENT));
            }
        }
        Ok(())
    }

    /// A value that is not a container, whose first byte `c` is the next one.
    #[inline(always)]
    fn scalar(&mut self, c: u8) -> Result<()> {
        match c {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            b't' | b'f' | b'n' => self.literal(c),
            _ => Err(self.fail_next(EXPECTED_VALUE)),
        }
    }

    /// Reads one value, checking all of it; where it is.
    #[inline(always)]
    pub(crate) fn skip_value(&mut self) -> Result<Range<usize>> {
        self.skip_value_within(usize::MAX, Limit::UserDataDepth)
    }

    /// Like [`Scanner::skip_value`], but fails with [`ScanError::over`] `limit` (at the
    /// value's start) when containers nest deeper than `max_depth` (the value itself, if a
    /// container, is at depth 1). The text is still checked to the end of the container
    /// that goes too deep, no further.
    #[inline(always)]
    pub(crate) fn skip_value_within(
        &mut self,
        max_depth: usize,
        limit: Limit,
    ) -> Result<Range<usize>> {
        let Some(c) = self.peek() else {
            return Err(self.fail_next(EOF_VALUE));
        };
        let start = self.pos;
        match c {
            b'{' | b'[' => {
                if !self.container(max_depth)? {
                    return Err(self.fail(ScanError::over(start, limit, max_depth)));
                }
            }
            _ => self.scalar(c)?,
        }
        Ok(start..self.pos)
    }

    /// An object or array, whose opening bracket is the next byte; false (the cursor on the
    /// bracket that would open one too many) when they nest deeper than `max_depth`.
    fn container(&mut self, max_depth: usize) -> Result<bool> {
        let mut open = Open::default();
        let mut c = self.text.as_bytes().get(self.pos).copied().unwrap_or(b'[');
        loop {
            // A value starts here, its first byte `c`.
            match c {
                b'{' | b'[' if open.len >= max_depth => return Ok(false),
                b'{' => {
                    self.bump();
                    if self.peek() == Some(b'}') {
                        self.bump();
                    } else {
                        open.push(true);
                        self.skip_key()?;
                        c = self.next_value()?;
                        continue;
                    }
                }
                b'[' => {
                    self.bump();
                    match self.peek() {
                        Some(b']') => self.bump(),
                        Some(next) => {
                            open.push(false);
                            c = next;
                            continue;
                        }
                        None => return Err(self.fail_next(EOF_LIST)),
                    }
                }
                _ => self.scalar(c)?,
            }
            // A value ended: close what it ends, up to the next comma.
            loop {
                let Some(object) = open.innermost() else {
                    return Ok(true);
                };
                match (self.peek(), object) {
                    (Some(b','), _) => {
                        self.bump();
                        if object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.bump();
                        open.pop();
                    }
                    (Some(_), true) => return Err(self.fail_next(EXPECTED_OBJECT_END)),
                    (Some(_), false) => return Err(self.fail_next(EXPECTED_LIST_END)),
                    (None, true) => return Err(self.fail_next(EOF_OBJECT)),
                    (None, false) => return Err(self.fail_next(EOF_LIST)),
                }
            }
            c = self.next_value()?;
        }
    }

    /// The first byte of the value that must come next.
    #[inline]
    fn next_value(&mut self) -> Result<u8> {
        match self.peek() {
            Some(c) => Ok(c),
            None => Err(self.fail_next(EOF_VALUE)),
        }
    }
}

/// serde_json's message without the " at line L column C" it appends.
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The line and column of position `at` in `text` (a [`ScanError::at`]), counted as
/// serde_json counts them: lines from 1, columns in bytes from the line's start.
pub(crate) fn line_column(text: &[u8], at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', &before[..line_start]).count();
    (line, before.len() - line_start)
}

/// Calls `f` with each member of the object `obj` (the whole text, whitespace around it
/// allowed): the key, decoded, and the range of its value, in order, duplicates kept; a key
/// that escapes half a surrogate pair is passed over. `None` when `obj` is not one JSON
/// object; members before the fault have been passed to `f` by then.
pub(crate) fn for_each_member<'a>(
    obj: &'a str,
    mut f: impl FnMut(Cow<'a, str>, Range<usize>),
) -> Option<()> {
    let mut s = Scanner::new(obj);
    if s.peek() != Some(b'{') {
        return None;
    }
    s.bump();
    let mut first = true;
    while let Some(key) = s.next_key(&mut first).ok()? {
        let value = s.skip_value().ok()?;
        if let Ok(key) = s.decoded(key, "key") {
            f(key, value);
        }
    }
    s.end().ok()
}

/// One member of an object text, by position: its key token (quotes included) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) key: Range<usize>,
    pub(crate) escaped: bool,
    pub(crate) value: Range<usize>,
}

/// The members of the object `obj` (the whole text) by position, in order, duplicates kept;
/// `None` when `obj` is not one JSON object.
pub(crate) fn spans(obj: &str) -> Option<Vec<Span>> {
    let mut s = Scanner::new(obj);
    if s.peek() != Some(b'{') {
        return None;
    }
    s.bump();
    let mut out = Vec::with_capacity(16);
    let mut first = true;
    while let Some(key) = s.next_key(&mut first).ok()? {
        let value = s.skip_value().ok()?;
        out.push(Span {
            key: key.start..key.end,
            escaped: key.escaped,
            value,
        });
    }
    s.end().ok()?;
    Some(out)
}

/// The members of the object `obj` whose keys start before `to`, scanned from `from`: just
/// after the `{` (`first`) or the end of a member's value. `None` when the text there is
/// not members of an object.
pub(crate) fn spans_in(obj: &str, from: usize, to: usize, first: bool) -> Option<Vec<Span>> {
    let mut s = Scanner {
        text: obj,
        pos: from,
        error: None,
    };
    let mut out = Vec::new();
    let mut first = first;
    while let Some(key) = s.next_key(&mut first).ok()? {
        if key.start >= to {
            break;
        }
        let value = s.skip_value().ok()?;
        out.push(Span {
            key: key.start..key.end,
            escaped: key.escaped,
            value,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scanner's verdict on a whole text: the value's range, or the error.
    fn scan(text: &str) -> std::result::Result<Range<usize>, ScanError> {
        let mut s = Scanner::new(text);
        let read = s.skip_value().and_then(|r| s.end().map(|()| r));
        read.map_err(|Fault| s.take_error())
    }

    /// serde_json's verdict, as the line and column it reports.
    fn serde(text: &str) -> std::result::Result<(), (usize, usize)> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map(|_| ())
            .map_err(|e| (e.line(), e.column()))
    }

    fn assert_agrees(text: &str) {
        match (scan(text), serde(text)) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(position)) => assert_eq!(
                line_column(text.as_bytes(), e.at),
                position,
                "{text:?}: {e:?}"
            ),
            (ours, theirs) => panic!("{text:?}: scanner {ours:?}, serde_json {theirs:?}"),
        }
    }

    #[test]
    fn valid_values_of_every_kind_are_accepted_whole() {
        for text in [
            r#"{"a":[1,-0,0.5,-1.5e3,2E+7,3e-2,true,false,null,"x\"y\\\/\b\f\n\r\t\u00e9"],"b":{},"c":[]}"#,
            " [ ] ",
            r#""\ud800""#,
            "123456789012345678901234567890",
            "{\"k\":\"ünïcödé ✓\"}",
        ] {
            assert!(scan(text).is_ok(), "{text}");
            assert_agrees(text);
        }
        assert_eq!(scan("  [1] ").unwrap(), 2..5);
    }

    #[test]
    fn faults_are_reported_where_serde_json_reports_them() {
        for text in [
            "",
            " ",
            "[",
            "[1",
            "[1,",
            "[1,]",
            "[,1]",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":1,}",
            "{1:2}",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "[1 2]",
            "nul",
            "nulx",
            "tru",
            "fals",
            "-",
            "-a",
            "01",
            "1.",
            "1.e5",
            "1e",
            "1e+",
            "1ex",
            "\"abc",
            "\"a\\",
            "\"a\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"a\u{1}b\"",
            "[1]x",
            "{}}",
            "]",
            "}",
            "x",
            "[\"\\u00",
            "{\"a\":[}",
            "[{]",
            "\"\t\"",
        ] {
            assert!(scan(text).is_err(), "{text:?}");
            assert_agrees(text);
        }
    }

    #[test]
    fn deep_nesting_is_read_without_recursion() {
        let depth = 100_000;
        let text = format!("{}1{}", "[{\"k\":".repeat(depth), "}]".repeat(depth));
        assert_eq!(scan(&text).unwrap(), 0..text.len());
        let unclosed = format!("{}1}}", "[{\"k\":".repeat(depth));
        assert_agrees(&unclosed);
    }

    /// The members of the object `obj`, as [`for_each_member`] passes them.
    fn members(obj: &str) -> Option<Vec<(Cow<'_, str>, Range<usize>)>> {
        let mut out = Vec::new();
        for_each_member(obj, |k, r| out.push((k, r)))?;
        Some(out)
    }

    #[test]
    fn members_split_an_object_with_nesting_escapes_and_duplicates() {
        let t = r#" { "a" : "x\"}" , "b\"c":[1,{"d":"]"}], "a":-1.5e3,"n":null } "#;
        let m: Vec<_> = members(t)
            .unwrap()
            .into_iter()
            .map(|(k, r)| (k, &t[r]))
            .collect();
        assert_eq!(
            m,
            [
                (Cow::Borrowed("a"), r#""x\"}""#),
                (Cow::Borrowed("b\"c"), r#"[1,{"d":"]"}]"#),
                (Cow::Borrowed("a"), "-1.5e3"),
                (Cow::Borrowed("n"), "null"),
            ]
        );
        assert_eq!(members("{ }").unwrap().len(), 0);
        assert!(members("[1]").is_none());
        assert!(members(r#"{"a":1"#).is_none());
    }

    #[test]
    fn strings_decode_only_when_escaped() {
        // The text of a value, when it is a string.
        fn string_value(text: &str) -> Option<Cow<'_, str>> {
            let mut s = Scanner::new(text);
            let token = s.token().ok()?;
            s.string_of(&token)
        }
        assert!(matches!(
            string_value(r#""abc""#),
            Some(Cow::Borrowed("abc"))
        ));
        assert_eq!(string_value(r#""\u00e9""#).unwrap(), "é");
        assert_eq!(string_value("12"), None);
        let mut s = Scanner::new(r#""a\u0062""#);
        let key = s.string().unwrap();
        assert_eq!(s.decoded(key, "key").unwrap(), "ab");
        let mut s = Scanner::new(r#""\ud800""#);
        let key = s.string().unwrap();
        let err = s.decoded(key, "key").unwrap_err();
        assert!(err.what.starts_with(r#"key "\ud800": "#), "{err:?}");
    }

    /// JSON-ish text: tokens of JSON, mostly well placed, sometimes not.
    fn jsonish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            8 => Just("{".to_owned()), 8 => Just("}".to_owned()),
            8 => Just("[".to_owned()), 8 => Just("]".to_owned()),
            8 => Just(",".to_owned()), 8 => Just(":".to_owned()),
            2 => Just(" ".to_owned()), 1 => Just("\n".to_owned()),
            2 => prop::sample::select(&["true", "false", "null", "nul", "tx"][..]).prop_map(str::to_owned),
            4 => "-?(0|[1-9][0-9]{0,3}|00)(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
            6 => "\"([a-z é✓]|\\\\[\"\\\\/bfnrtxu]|\\\\u[0-9a-fA-F]{4}|\\\\u[0-9g]{0,3}|\u{1}){0,12}\"?",
        ];
        prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
    }

    /// Valid JSON values.
    fn json() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
            ".*".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("true".to_owned()),
            Just("null".to_owned()),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((".*", inner), 0..6).prop_map(|m| {
                    let m: Vec<String> = m
                        .into_iter()
                        .map(|(k, v)| format!("{} : {v}", serde_json::to_string(&k).unwrap()))
                        .collect();
                    format!("{{ {} }}", m.join(" ,"))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_scanner_accepts_and_rejects_what_serde_json_does(text in jsonish()) {
            assert_agrees(&text);
        }

        #[test]
        fn valid_json_with_a_few_bytes_changed_is_judged_as_serde_json_judges_it(
            text in json(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, prop::sample::select(&["\"", "\\", ",", ":", "}", "]", "{", "[", "0", "-", "e", ".", "n", " ", "\u{1}", "é"][..])), 1..4),
        ) {
            let mut text = text.into_bytes();
            for (at, kind, token) in edits {
                let at = at.index(text.len() + 1);
                match kind {
                    0 => drop(text.splice(at..at, token.bytes())),
                    1 if at < text.len() => drop(text.remove(at)),
                    _ => drop(text.splice(at..(at + 1).min(text.len()), token.bytes())),
                }
            }
            // Removing a byte can split a character; only text is scanned.
            if let Ok(text) = String::from_utf8(text) {
                assert_agrees(&text);
            }
        }

        #[test]
        fn valid_json_is_accepted_whole_and_every_cut_of_it_agrees(text in json(), cut in any::<prop::sample::Index>()) {
            prop_assert_eq!(scan(&text), Ok(0..text.len()));
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            assert_agrees(&text[..at]);
        }
    }
}
