//! Fixtures: what came over the wire, recorded as JSON Lines, replayed as a `Stream`.
//!
//! Format: each line is one HTTP reply body — one Bayeux message object or an array of
//! them — exactly as received (duplicate keys and number spellings preserved). Blank lines
//! are skipped. Lines end with `\n` (a trailing `\r` is ignored).
//!
//! - [`Recorder`] writes reply bodies, one per line.
//! - [`read`] replays a file as a `Stream` of [`Message`]s, so tests drive the same code as
//!   live traffic; [`Reader`] is the synchronous reader under it (an `Iterator` of messages,
//!   or line by line with [`Reader::next_line`]).
//!
//! Errors name the file, the 1-based line and, where known, the column.
//!
//! ```no_run
//! use futures::StreamExt;
//! use gws_cometd::gws::CallStore;
//! # async fn demo() -> gws_cometd::Result<()> {
//! let mut changes = CallStore::new().changes(Box::pin(gws_cometd::fixture::read("calls.jsonl")));
//! while let Some(change) = changes.next().await {
//!     println!("{}", serde_json::to_string(&change?).unwrap());
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use futures::Stream;

use crate::bayeux::Message;
use serde_json::value::RawValue;

use crate::gws::store::ChangeOrigin;
use crate::gws::wire::{self, CallNotification};
use crate::gws::DecodeError;

/// Why a fixture could not be read or written. Says which file, and where in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// The file could not be opened or created.
    #[error("cannot open fixture {}: {source}", .path.display())]
    Open {
        /// The fixture file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed after `line` lines.
    #[error("cannot read fixture {} after line {line}: {source}", .path.display())]
    Read {
        /// The fixture file.
        path: PathBuf,
        /// Lines read before the failure.
        line: usize,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not what a fixture holds (not UTF-8, not JSON, not Bayeux, a call
    /// notification that does not fit the model).
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Parse {
        /// The fixture file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column in that line (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write fixture {label}: {source}")]
    Write {
        /// The fixture's name.
        label: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl FixtureError {
    /// A decoding error of `line` of `path`, at the column within the line it names.
    pub(crate) fn parse(path: &Path, line: usize, e: &DecodeError) -> FixtureError {
        FixtureError::Parse {
            path: path.to_owned(),
            line,
            column: e.column(),
            message: e.message().to_owned(),
        }
    }
}

/// `Result` with [`FixtureError`].
pub type Result<T, E = FixtureError> = std::result::Result<T, E>;

/// Reads a fixture file line by line.
pub struct Reader<R> {
    path: PathBuf,
    inner: R,
    line: usize,
    /// The current line, line end included; always UTF-8 once `advance` returned it.
    buf: String,
    pending: VecDeque<Message>,
    failed: bool,
}

/// One non-blank line of a fixture: its number and text (without the line end).
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    /// The line's text.
    pub text: &'a str,
}

impl Reader<BufReader<File>> {
    /// Opens a fixture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| FixtureError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Reader::new(path, BufReader::with_capacity(1 << 16, file)))
    }
}

/// UTF-8's byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: BufRead> Reader<R> {
    /// Reads a fixture from `inner`; `path` names it in errors.
    pub fn new(path: impl Into<PathBuf>, inner: R) -> Self {
        Reader {
            path: path.into(),
            inner,
            line: 0,
            buf: String::new(),
            pending: VecDeque::new(),
            failed: false,
        }
    }

    /// The next non-blank line, checked to be UTF-8; `None` at the end of the file.
    pub fn next_line(&mut self) -> Option<Result<Line<'_>>> {
        let next = self.advance()?;
        Some(next.map(|()| Line {
            number: self.line,
            text: &self.buf,
        }))
    }

    /// Reads the next non-blank line, its line end dropped, into `buf` and checks it is UTF-8
    /// (once: the buffer is handed back and forth between bytes and text without copying).
    fn advance(&mut self) -> Option<Result<()>> {
        let mut bytes = std::mem::take(&mut self.buf).into_bytes();
        let end = loop {
            bytes.clear();
            match self.inner.read_until(b'\n', &mut bytes) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(FixtureError::Read {
                        path: self.path.clone(),
                        line: self.line,
                        source,
                    }))
                }
            }
            self.line += 1;
            // A byte-order mark, as some Windows editors write, is not part of the first line.
            if self.line == 1 && bytes.starts_with(BOM) {
                bytes.drain(..BOM.len());
            }
            let mut end = bytes.len();
            while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            if !bytes[..end].iter().all(u8::is_ascii_whitespace) {
                break end;
            }
        };
        bytes.truncate(end);
        Some(match String::from_utf8(bytes) {
            Ok(text) => {
                self.buf = text;
                Ok(())
            }
            Err(e) => {
                let column = e.utf8_error().valid_up_to() + 1;
                self.buf = String::new();
                Err(FixtureError::Parse {
                    path: self.path.clone(),
                    line: self.line,
                    column,
                    message: "invalid UTF-8".to_owned(),
                })
            }
        })
    }

    /// The next batch (the messages of one line) with its line number.
    pub fn next_batch(&mut self) -> Option<Result<(usize, Vec<Message>)>> {
        if let Err(e) = self.advance()? {
            return Some(Err(e));
        }
        Some(
            Message::parse_batch(self.buf.as_bytes())
                .map(|batch| (self.line, batch))
                .map_err(|e| FixtureError::parse(&self.path, self.line, &DecodeError::from(&e))),
        )
    }

    /// What the next non-blank line holds for a call store, with the line's number: its
    /// call notifications (read in one pass and borrowed from it), or a snapshot of the
    /// server's calls; `None` at the end of the file. A line that is not a Bayeux reply body,
    /// or a call notification that does not fit the model, is an error naming the file, the
    /// line and the column.
    pub fn next_item(&mut self) -> Option<Result<(usize, Item<'_>)>> {
        if let Err(e) = self.advance()? {
            return Some(Err(e));
        }
        let item = if self.buf.starts_with(SNAPSHOT_PREFIX) {
            read_snapshot(&self.buf).map(Item::Snapshot)
        } else {
            wire::calls_in_text(&self.buf).map(Item::Calls)
        };
        Some(
            item.map(|item| (self.line, item))
                .map_err(|e| FixtureError::parse(&self.path, self.line, &e)),
        )
    }

    /// The path errors name.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What one fixture line holds for a [`CallStore`](crate::gws::CallStore).
#[derive(Debug)]
pub enum Item<'a> {
    /// The call notifications of a reply body, borrowed from the line (possibly none).
    Calls(Vec<CallNotification<'a>>),
    /// What a feed read of the server's calls.
    Snapshot(Snapshot),
}

/// A read of the server's calls, as a [`CallFeed`](crate::gws::CallFeed) records it: apply
/// it with [`CallStore::reconcile`](crate::gws::CallStore::reconcile), leaving `kept`
/// alone, to get the changes the feed reported.
#[derive(Debug)]
pub struct Snapshot {
    /// Catch-up or heal.
    pub origin: ChangeOrigin,
    /// Each call's text as the server listed it.
    pub calls: Vec<Box<RawValue>>,
    /// Calls a notification touched while the list was read: the feed left them as they
    /// were.
    pub kept: Vec<String>,
}

/// The channels of the snapshot lines: not Bayeux channels any server uses.
const CATCH_UP_CHANNEL: &str = "/gws-cometd/catch-up";
const HEAL_CHANNEL: &str = "/gws-cometd/heal";
/// How every snapshot line starts (the feed writes it so).
const SNAPSHOT_PREFIX: &str = r#"{"channel":"/gws-cometd/"#;

/// The fixture line recording a read of the server's calls: a Bayeux message on
/// `/gws-cometd/catch-up` or `/gws-cometd/heal` whose data is
/// `{"calls":[...],"kept":[...]}`, the calls exactly as the server listed them.
pub fn snapshot_line(origin: ChangeOrigin, calls: &[Box<RawValue>], kept: &[String]) -> String {
    let channel = match origin {
        ChangeOrigin::CatchUp => CATCH_UP_CHANNEL,
        _ => HEAL_CHANNEL,
    };
    let calls: Vec<&str> = calls.iter().map(|c| c.get()).collect();
    let kept: Vec<String> = kept.iter().map(|k| crate::json::quote(k)).collect();
    format!(
        r#"{{"channel":"{channel}","data":{{"calls":[{}],"kept":[{}]}}}}"#,
        calls.join(","),
        kept.join(",")
    )
}

fn read_snapshot(line: &str) -> std::result::Result<Snapshot, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Line {
        channel: String,
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        calls: Vec<Box<RawValue>>,
        #[serde(default)]
        kept: Vec<String>,
    }
    let parsed: Line = serde_json::from_str(line).map_err(|e| DecodeError::from(&e))?;
    let origin = match parsed.channel.as_str() {
        CATCH_UP_CHANNEL => ChangeOrigin::CatchUp,
        _ => ChangeOrigin::Heal,
    };
    Ok(Snapshot {
        origin,
        calls: parsed.data.calls,
        kept: parsed.data.kept,
    })
}

/// Yields the messages of every line in order, flattened; stops after the first error.
impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(Ok(m));
            }
            if self.failed {
                return None;
            }
            match self.next_batch()? {
                Ok((_, batch)) => self.pending.extend(batch),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Replays a fixture file as a `Stream` of its messages, in order. An error (unreadable file,
/// malformed line) is the last item.
///
/// The file is read with blocking I/O on a blocking-pool thread, a line at a time.
pub fn read(path: impl AsRef<Path>) -> impl Stream<Item = crate::Result<Message>> {
    let path = path.as_ref().to_owned();
    async_stream::stream! {
        let mut reader = match Reader::open(&path) {
            Ok(r) => r,
            Err(e) => { yield Err(e.into()); return; }
        };
        loop {
            let next = tokio::task::spawn_blocking(move || {
                let batch = reader.next_batch();
                (reader, batch)
            }).await;
            let batch = match next {
                Ok((r, batch)) => { reader = r; batch }
                Err(e) => {
                    yield Err(FixtureError::Read {
                        path: path.clone(),
                        line: 0,
                        source: std::io::Error::other(e.to_string()),
                    }.into());
                    return;
                }
            };
            match batch {
                None => return,
                Some(Ok((_, messages))) => for m in messages { yield Ok(m); },
                Some(Err(e)) => { yield Err(e.into()); return; }
            }
        }
    }
}

/// Writes reply bodies to a fixture, one per line.
///
/// Each body is written verbatim except that line breaks are replaced by spaces: in JSON a
/// raw line break can only be whitespace between tokens (strings must escape it), so no token
/// changes. Leading and trailing whitespace is dropped; an empty body writes nothing. Every
/// [`Recorder::record`] flushes, so a crash loses at most the body being written.
pub struct Recorder<W: Write = BufWriter<File>> {
    out: W,
    label: String,
    line: Vec<u8>,
}

impl Recorder {
    /// Creates (or truncates) the fixture file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| FixtureError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Recorder::new(
            BufWriter::new(file),
            path.display().to_string(),
        ))
    }
}

impl<W: Write> Recorder<W> {
    /// Records into `out`; `label` names it in errors.
    pub fn new(out: W, label: impl Into<String>) -> Self {
        Recorder {
            out,
            label: label.into(),
            line: Vec::new(),
        }
    }

    /// Writes one reply body as one line and flushes.
    pub fn record(&mut self, body: &[u8]) -> Result<()> {
        let start = body.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else { return Ok(()) };
        let end = body
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(body.len(), |i| i + 1);
        self.line.clear();
        self.line.extend(body[start..end].iter().map(|&b| {
            if b == b'\n' || b == b'\r' {
                b' '
            } else {
                b
            }
        }));
        self.line.push(b'\n');
        let res = self
            .out
            .write_all(&self.line)
            .and_then(|_| self.out.flush());
        res.map_err(|source| FixtureError::Write {
            label: self.label.clone(),
            source,
        })
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.out.flush().map_err(|source| FixtureError::Write {
            label: self.label.clone(),
            source,
        })?;
        Ok(self.out)
    }
}
