//! Splits a JSON array arriving in chunks into its top-level elements, without I/O.
//!
//! A reply batch can be megabytes long (a server draining a full queue into one reply). The
//! [`ArraySplitter`] lets the client handle it element by element as the body arrives: it
//! keeps only the bytes of the element being assembled, and an element lying wholly inside
//! one chunk is handed out as a slice of that chunk, without copying.
//!
//! It checks the framing only (brackets, strings, commas); each element is validated when it
//! is parsed. Errors name the byte offset in the whole body.
//!
//! An element longer than the limit set with [`ArraySplitter::max_element`] is scanned to its
//! end without being kept and comes out as [`Element::TooLarge`]; the elements after it are
//! split as usual, so memory is bounded per element, not per body.

use std::fmt;

use bytes::{Bytes, BytesMut};

/// Why a body is not a well-framed JSON array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitError {
    /// Offset in the whole body of the byte at fault (the body length when it ended early).
    pub offset: u64,
    /// What is wrong.
    pub kind: SplitErrorKind,
}

/// The kinds of [`SplitError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SplitErrorKind {
    /// The body does not start with `[` (nor `{`, when single objects are allowed).
    NotAnArray,
    /// Something other than whitespace follows the closing `]`.
    TrailingGarbage,
    /// The body ended before the array was closed (or was empty).
    Truncated,
    /// A comma, bracket or brace where it cannot be.
    Unexpected,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SplitErrorKind::NotAnArray => "not a JSON array",
            SplitErrorKind::TrailingGarbage => "garbage after the closing ']'",
            SplitErrorKind::Truncated => "body ended inside the array",
            SplitErrorKind::Unexpected => "unexpected character in the array",
        };
        write!(f, "{what} at byte {}", self.offset)
    }
}

impl std::error::Error for SplitError {}

/// One top-level element of the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    /// The element's bytes.
    Complete(Bytes),
    /// An element over the size limit, passed over.
    TooLarge {
        /// Its length in bytes.
        size: u64,
    },
}

impl Element {
    /// The bytes of a complete element.
    #[cfg(test)]
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Element::Complete(b) => Some(b),
            Element::TooLarge { .. } => None,
        }
    }
}

/// Where the scan stands between bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` or a comma: an element or (only right after `[`) `]` comes next.
    BeforeElement { first: bool },
    /// Inside an element.
    InElement,
    /// After an element: `,` or `]` comes next.
    AfterElement,
    /// After the closing `]` (or the single top-level object): only whitespace may follow.
    Done,
    /// An error was reported; nothing more is read.
    Failed,
}

/// Incremental splitter of one JSON array; see the [module docs](self).
#[derive(Debug)]
pub struct ArraySplitter {
    allow_object: bool,
    /// The top level is a single object rather than an array.
    single: bool,
    state: State,
    /// The chunk being scanned, and how far.
    chunk: Bytes,
    pos: usize,
    /// Body offset of `chunk[0]`.
    base: u64,
    /// Where the current element starts in `chunk`, if it started there.
    start: Option<usize>,
    /// The bytes of the current element from earlier chunks.
    partial: BytesMut,
    /// Open brackets of the current element: `true` for `[`, `false` for `{`.
    stack: Vec<bool>,
    in_string: bool,
    escaped: bool,
    /// The element is a scalar (number, literal), ended by a delimiter.
    scalar: bool,
    /// Elements longer than this are passed over.
    max_element: usize,
    /// Bytes of the current element in earlier chunks (kept in `partial` unless oversized).
    taken: u64,
    /// The current element is over the limit: its bytes are no longer kept.
    oversized: bool,
}

impl Default for ArraySplitter {
    fn default() -> Self {
        Self::new()
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl ArraySplitter {
    /// A splitter for one body that must be a JSON array.
    pub fn new() -> Self {
        ArraySplitter {
            allow_object: false,
            single: false,
            state: State::Start,
            chunk: Bytes::new(),
            pos: 0,
            base: 0,
            start: None,
            partial: BytesMut::new(),
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            scalar: false,
            max_element: usize::MAX,
            taken: 0,
            oversized: false,
        }
    }

    /// Passes over elements longer than `bytes`, yielding [`Element::TooLarge`] for them
    /// (default: no limit).
    pub fn max_element(mut self, bytes: usize) -> Self {
        self.max_element = bytes;
        self
    }

    /// Also accepts a body that is a single JSON object, yielded as the only element (Bayeux
    /// servers may answer a batch of one that way).
    pub fn allow_single_object(mut self, allow: bool) -> Self {
        self.allow_object = allow;
        self
    }

    /// Adds the next chunk of the body. Call [`next_element`](Self::next_element) until it
    /// returns `Ok(None)` before feeding more; bytes left unread are kept (copied) if not.
    pub fn feed(&mut self, chunk: Bytes) {
        let rest = self.chunk.len() - self.pos;
        if rest == 0 {
            self.base += self.chunk.len() as u64;
            self.chunk = chunk;
        } else {
            // Only reachable when the caller fed early; then no element is in progress
            // (scanning pauses right after an element), so no start index needs shifting.
            let mut joined = BytesMut::with_capacity(rest + chunk.len());
            joined.extend_from_slice(&self.chunk[self.pos..]);
            joined.extend_from_slice(&chunk);
            self.base += self.pos as u64;
            self.chunk = joined.freeze();
        }
        self.pos = 0;
        if self.state == State::InElement {
            self.start = None;
        }
    }

    /// The next complete element, `Ok(None)` when the chunks fed so far hold no more.
    pub fn next_element(&mut self) -> Result<Option<Element>, SplitError> {
        // Taken out for the scan so that it can be read while `self` changes (cheaper than
        // a reference-counted clone); always put back.
        let chunk = std::mem::take(&mut self.chunk);
        let result = self.scan(&chunk);
        self.chunk = chunk;
        result
    }

    fn scan(&mut self, chunk: &Bytes) -> Result<Option<Element>, SplitError> {
        let begin = self.pos;
        let data = &chunk[..];
        while self.pos < data.len() {
            let i = self.pos;
            let b = data[i];
            match self.state {
                State::Failed => return Ok(None),
                State::Start => {
                    self.pos += 1;
                    if is_ws(b) {
                        continue;
                    }
                    if b == b'[' {
                        self.state = State::BeforeElement { first: true };
                    } else if b == b'{' && self.allow_object {
                        self.single = true;
                        self.begin_element(i, b);
                    } else {
                        return Err(self.fail(i, SplitErrorKind::NotAnArray));
                    }
                }
                State::BeforeElement { first } => {
                    if is_ws(b) {
                        self.pos += 1;
                    } else if b == b']' && first {
                        self.pos += 1;
                        self.state = State::Done;
                    } else if matches!(b, b']' | b',' | b'}' | b':') {
                        return Err(self.fail(i, SplitErrorKind::Unexpected));
                    } else {
                        self.pos += 1;
                        self.begin_element(i, b);
                    }
                }
                State::InElement => {
                    if let Some(element) = self.scan_element(chunk)? {
                        return Ok(Some(element));
                    }
                }
                State::AfterElement => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::BeforeElement { first: false },
                        b']' => self.state = State::Done,
                        b if is_ws(b) => {}
                        _ => return Err(self.fail(i, SplitErrorKind::Unexpected)),
                    }
                }
                State::Done => {
                    if !is_ws(b) {
                        return Err(self.fail(i, SplitErrorKind::TrailingGarbage));
                    }
                    self.pos += 1;
                }
            }
        }
        if self.state == State::InElement {
            // Keep the unfinished element's bytes from this chunk (those before `begin` are
            // kept already when it started in an earlier chunk).
            let from = self.start.take().unwrap_or(begin);
            let n = data.len() - from;
            self.taken += n as u64;
            if !self.oversized && self.partial.len() + n > self.max_element {
                // Past the limit: stop keeping it (and let its memory go).
                self.oversized = true;
                self.partial = BytesMut::new();
            }
            if !self.oversized {
                self.partial.extend_from_slice(&data[from..]);
            }
        }
        Ok(None)
    }

    /// Call at the end of the body: fails unless the array was closed.
    pub fn finish(&mut self) -> Result<(), SplitError> {
        let end = self.base + self.pos as u64;
        match self.state {
            State::Done => Ok(()),
            State::Failed => Ok(()),
            // A scalar at the top of a single-object body cannot happen; a scalar element
            // still needs its delimiter, so this is truncated too.
            _ => {
                self.state = State::Failed;
                Err(SplitError {
                    offset: end,
                    kind: SplitErrorKind::Truncated,
                })
            }
        }
    }

    fn fail(&mut self, at: usize, kind: SplitErrorKind) -> SplitError {
        self.state = State::Failed;
        SplitError {
            offset: self.base + at as u64,
            kind,
        }
    }

    /// Starts an element whose first byte `b` at `chunk[i]` was just consumed.
    fn begin_element(&mut self, i: usize, b: u8) {
        self.state = State::InElement;
        self.start = Some(i);
        self.partial.clear();
        self.taken = 0;
        self.oversized = false;
        self.stack.clear();
        self.in_string = false;
        self.escaped = false;
        self.scalar = false;
        match b {
            b'[' => self.stack.push(true),
            b'{' => self.stack.push(false),
            b'"' => self.in_string = true,
            _ => self.scalar = true,
        }
    }

    /// Scans the current element from `pos`; returns it once complete.
    fn scan_element(&mut self, chunk: &Bytes) -> Result<Option<Element>, SplitError> {
        let data = &chunk[..];
        let mut i = self.pos;
        while i < data.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Skip plain string bytes in one go.
                match memchr::memchr2(b'"', b'\\', &data[i..]) {
                    None => {
                        i = data.len();
                        break;
                    }
                    Some(n) => {
                        i += n;
                        if data[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.stack.is_empty() {
                                // A top-level string element ends with its quote.
                                self.pos = i + 1;
                                return Ok(Some(self.complete(chunk, i + 1)));
                            }
                        }
                        i += 1;
                        continue;
                    }
                }
            }
            let b = data[i];
            if self.scalar {
                if is_ws(b) || matches!(b, b',' | b']' | b'}' | b'[' | b'{' | b'"' | b':') {
                    // The delimiter belongs to the array, not to the element.
                    self.pos = i;
                    return Ok(Some(self.complete(chunk, i)));
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' => self.stack.push(true),
                b'{' => self.stack.push(false),
                b']' | b'}' => {
                    let want = b == b']';
                    if self.stack.pop() != Some(want) {
                        self.pos = i;
                        return Err(self.fail(i, SplitErrorKind::Unexpected));
                    }
                    if self.stack.is_empty() {
                        self.pos = i + 1;
                        return Ok(Some(self.complete(chunk, i + 1)));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        Ok(None)
    }

    /// The element ending at `chunk[..end]`: a slice of the chunk when it started in it.
    fn complete(&mut self, chunk: &Bytes, end: usize) -> Element {
        self.state = if self.single {
            State::Done
        } else {
            State::AfterElement
        };
        let start = self.start.take();
        let size = self.taken + (end - start.unwrap_or(0)) as u64;
        if self.oversized || size > self.max_element as u64 {
            self.partial = BytesMut::new();
            return Element::TooLarge { size };
        }
        Element::Complete(match start {
            Some(start) => chunk.slice(start..end),
            None => {
                self.partial.extend_from_slice(&chunk[..end]);
                // Hand the buffer over; the next element starts a fresh one.
                std::mem::take(&mut self.partial).freeze()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_come_out_whole_whatever_the_chunks() {
        let mut s = ArraySplitter::new();
        let mut out = Vec::new();
        for chunk in [&br#"[{"a":"x]"#[..], br#""},2 ,[3]]"#] {
            s.feed(Bytes::copy_from_slice(chunk));
            while let Some(element) = s.next_element().unwrap() {
                out.push(element.into_bytes().unwrap());
            }
        }
        s.finish().unwrap();
        assert_eq!(out, [&br#"{"a":"x]"}"#[..], b"2", b"[3]"]);
    }

    /// Splits `body` fed in pieces cut at `cuts` (sorted offsets).
    fn split_at(body: &[u8], cuts: &[usize], allow_object: bool) -> Result<Vec<Bytes>, SplitError> {
        let mut s = ArraySplitter::new().allow_single_object(allow_object);
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            s.feed(Bytes::copy_from_slice(&body[from..cut]));
            from = cut;
            while let Some(e) = s.next_element()? {
                out.push(e.into_bytes().unwrap());
            }
            // Asking again before the next chunk changes nothing.
            assert_eq!(s.next_element(), Ok(None));
        }
        s.finish()?;
        Ok(out)
    }

    fn split(body: &str) -> Result<Vec<String>, SplitError> {
        Ok(split_at(body.as_bytes(), &[], false)?
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect())
    }

    fn err(body: &str) -> SplitError {
        split(body).unwrap_err()
    }

    #[test]
    fn elements_of_every_kind_are_split() {
        assert_eq!(
            split(r#" [ {"a":[1,{"b":"]}"}]} , "x\"]," ,12.5e3,true,null,[[]],{} ] "#).unwrap(),
            [
                r#"{"a":[1,{"b":"]}"}]}"#,
                r#""x\"],""#,
                "12.5e3",
                "true",
                "null",
                "[[]]",
                "{}"
            ]
        );
        assert_eq!(split("[]").unwrap(), Vec::<String>::new());
        assert_eq!(split("\n[ ]\r\n").unwrap(), Vec::<String>::new());
        assert_eq!(split(r#"["a\\",1]"#).unwrap(), [r#""a\\""#, "1"]);
        assert_eq!(split(r#"["\\\"]"]"#).unwrap(), [r#""\\\"]""#]);
    }

    #[test]
    fn errors_name_the_offset() {
        assert_eq!(
            err(r#"{"channel":"/a"}"#),
            SplitError {
                offset: 0,
                kind: SplitErrorKind::NotAnArray
            }
        );
        assert_eq!(err("  x").offset, 2);
        assert_eq!(
            err("[1] x"),
            SplitError {
                offset: 4,
                kind: SplitErrorKind::TrailingGarbage
            }
        );
        assert_eq!(
            err(r#"[{"channel":"#),
            SplitError {
                offset: 12,
                kind: SplitErrorKind::Truncated
            }
        );
        assert_eq!(err("").kind, SplitErrorKind::Truncated);
        assert_eq!(err("[1,2").kind, SplitErrorKind::Truncated);
        assert_eq!(err("[1,]").kind, SplitErrorKind::Unexpected);
        assert_eq!(err("[,1]").kind, SplitErrorKind::Unexpected);
        assert_eq!(err("[1 2]").kind, SplitErrorKind::Unexpected);
        assert_eq!(
            err(r#"[{"a":1]]"#),
            SplitError {
                offset: 7,
                kind: SplitErrorKind::Unexpected
            }
        );
        assert_eq!(
            err(r#"[{"a":1}]]"#).to_string(),
            "garbage after the closing ']' at byte 9"
        );
    }

    #[test]
    fn offsets_count_across_chunks() {
        let e = split_at(b"[1, 2] zz", &[2, 5, 7], false).unwrap_err();
        assert_eq!(e.offset, 7);
        let e = split_at(b"[1, 2", &[2, 4], false).unwrap_err();
        assert_eq!((e.offset, e.kind), (5, SplitErrorKind::Truncated));
    }

    #[test]
    fn a_single_object_is_one_element_when_allowed() {
        let out = split_at(br#" {"channel":"/a","x":"}"} "#, &[3, 9], true).unwrap();
        assert_eq!(out, [&br#"{"channel":"/a","x":"}"}"#[..]]);
        let e = split_at(br#"{"channel":"/a"}{}"#, &[], true).unwrap_err();
        assert_eq!((e.offset, e.kind), (16, SplitErrorKind::TrailingGarbage));
        assert_eq!(split_at(b"[1]", &[], true).unwrap(), [&b"1"[..]]);
    }

    #[test]
    fn elements_inside_one_chunk_are_slices_of_it() {
        let chunk = Bytes::from_static(br#"[{"a":1},{"b":2}]"#);
        let mut s = ArraySplitter::new();
        s.feed(chunk.clone());
        let e = s.next_element().unwrap().unwrap().into_bytes().unwrap();
        assert_eq!(&e[..], br#"{"a":1}"#);
        // Same memory: no copy was made.
        assert_eq!(e.as_ptr(), chunk[1..].as_ptr());
    }

    #[test]
    fn feeding_before_draining_keeps_the_rest() {
        let mut s = ArraySplitter::new();
        s.feed(Bytes::from_static(b"[1,2,"));
        assert_eq!(
            &s.next_element().unwrap().unwrap().into_bytes().unwrap()[..],
            b"1"
        );
        s.feed(Bytes::from_static(b"3]"));
        let rest: Vec<Bytes> = std::iter::from_fn(|| s.next_element().unwrap())
            .filter_map(Element::into_bytes)
            .collect();
        assert_eq!(rest, [&b"2"[..], b"3"]);
        s.finish().unwrap();
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                (-1e9f64..1e9).prop_map(Value::from),
                "[a-z\"\\\\\\]\\[{},: é\u{1F600}\n]{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::vec(("[a-z\"\\\\]{0,6}", inner), 0..5)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        /// A batch written with random whitespace between tokens of the array.
        fn body() -> impl Strategy<Value = (Vec<Value>, Vec<u8>)> {
            (
                prop::collection::vec(json_value(), 0..8),
                prop::collection::vec(prop::sample::select(vec!["", " ", "\n", "\t "]), 20),
                any::<bool>(),
            )
                .prop_map(|(values, ws, pretty)| {
                    let mut out = String::new();
                    let mut w = ws.iter().cycle();
                    out.push_str(w.next().unwrap());
                    out.push('[');
                    for (n, v) in values.iter().enumerate() {
                        if n > 0 {
                            out.push_str(w.next().unwrap());
                            out.push(',');
                        }
                        out.push_str(w.next().unwrap());
                        let text = if pretty {
                            serde_json::to_string_pretty(v).unwrap()
                        } else {
                            serde_json::to_string(v).unwrap()
                        };
                        out.push_str(&text);
                    }
                    out.push_str(w.next().unwrap());
                    out.push(']');
                    out.push_str(w.next().unwrap());
                    (values, out.into_bytes())
                })
        }

        fn parse_all(elements: &[Bytes]) -> Vec<Value> {
            elements
                .iter()
                .map(|e| serde_json::from_slice(e).expect("each element is JSON"))
                .collect()
        }

        proptest! {
            #[test]
            fn random_chunking_yields_what_serde_sees(
                (values, body) in body(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            ) {
                // Compared with serde's reading of the whole body (float text may not
                // round-trip to the generated value exactly).
                let whole: Vec<Value> = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(whole.len(), values.len());
                let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
                cuts.sort_unstable();
                let elements = split_at(&body, &cuts, false).unwrap();
                prop_assert_eq!(parse_all(&elements), whole);
            }

            #[test]
            fn every_chunk_boundary_yields_what_serde_sees((_values, body) in body()) {
                let whole: Vec<Value> = serde_json::from_slice(&body).unwrap();
                let one_byte: Vec<usize> = (1..body.len()).collect();
                let elements = split_at(&body, &one_byte, false).unwrap();
                prop_assert_eq!(parse_all(&elements), whole.clone());
                for cut in 0..=body.len() {
                    let elements = split_at(&body, &[cut], false).unwrap();
                    prop_assert_eq!(parse_all(&elements), whole.clone());
                }
            }

            #[test]
            fn cut_bodies_are_reported_truncated((_values, body) in body(), at in any::<prop::sample::Index>()) {
                let end = body.iter().rposition(|&b| b == b']').unwrap();
                let cut = at.index(end + 1);
                let e = split_at(&body[..cut], &[], false).unwrap_err();
                prop_assert_eq!(e.kind, SplitErrorKind::Truncated);
                prop_assert_eq!(e.offset, cut as u64);
            }
        }
    }
}
