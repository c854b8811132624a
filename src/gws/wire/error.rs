//! [`DecodeError`]: why a notification or reply body could not be read, and where.

use std::borrow::Cow;
use std::fmt;

use super::json;
use super::read::Fault;
use crate::bayeux::Limit;

/// Why a reply body (or a message's `data`) could not be read: its JSON is malformed, or a
/// call notification in it lacks what the store needs. Says what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    line: usize,
    column: usize,
    message: Cow<'static, str>,
    syntax: bool,
    limit: Option<Limit>,
}

impl DecodeError {
    /// The 1-based line in the text read.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column in that line, counted in bytes as serde_json counts them (the 1-based
    /// column of the offending byte; the line's length when the text ended too early).
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the text is not JSON (or not UTF-8); false when it is JSON but a call
    /// notification in it is not of the shape the store needs (no `id`, say).
    pub fn is_syntax(&self) -> bool {
        self.syntax
    }

    /// The documented limit the text is over, when that is what is wrong (it is JSON, and
    /// of the right shape, but holds more than the decoder takes: see
    /// [`MAX_USER_DATA_DEPTH`](crate::gws::MAX_USER_DATA_DEPTH)). A feed treats such a
    /// notification as lost (a gap, then a heal), not as malformed.
    pub fn limit(&self) -> Option<Limit> {
        self.limit
    }

    /// The fault a read of `text` stopped with, placed as serde_json places its errors.
    pub(crate) fn from_fault(text: &[u8], fault: Fault) -> DecodeError {
        let (line, column) = json::line_column(text, fault.at);
        DecodeError {
            line,
            column,
            message: fault.what,
            syntax: fault.syntax,
            limit: fault.limit,
        }
    }
}

/// A serde_json error as a [`DecodeError`]: its position, and its message without the
/// position serde_json appends.
impl From<&serde_json::Error> for DecodeError {
    fn from(e: &serde_json::Error) -> DecodeError {
        DecodeError {
            line: e.line(),
            column: e.column(),
            message: Cow::Owned(json::without_position(e)),
            syntax: e.is_syntax() || e.is_eof(),
            limit: None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for DecodeError {}
