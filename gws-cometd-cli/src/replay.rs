//! `gws-cometd replay`: runs a fixture through the call-state reducer.
//!
//! All output is built in memory and written only when the whole input was read: a
//! malformed line anywhere means one error line on stderr (`FILE:LINE:COLUMN: what is
//! wrong`, in plain words) and nothing on stdout. `-` reads stdin. A UTF-8 byte-order mark
//! at the start (as some Windows editors write) is skipped.

use std::cell::Cell;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use gws_cometd::fixture::{FixtureError, Reader, Replay};

use super::json_errors;
use super::log::fatal;
use super::{EXIT_FATAL, EXIT_REFUSED};

/// How stdin is named in errors.
const STDIN_NAME: &str = "<stdin>";

/// Arguments of `replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The fixture: JSON Lines, each line one Bayeux message or an array of them (what
    /// `tail --record` and `watch --record` write); `-` reads stdin.
    pub file: PathBuf,
    /// Print one JSON object with the final snapshot of every call still in the store,
    /// `{"calls":{"<id>":<call>,...}}`, instead of one JSON line per change.
    #[arg(long)]
    pub snapshot: bool,
}

/// Runs `replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    let result = if args.file.as_os_str() == "-" {
        replay(STDIN_NAME.as_ref(), std::io::stdin().lock(), args.snapshot)
    } else {
        open(&args.file).and_then(|file| {
            replay(
                &args.file,
                std::io::BufReader::with_capacity(1 << 16, file),
                args.snapshot,
            )
        })
    };
    match result {
        Ok(Replayed { empty: true, .. }) => {
            let name = if args.file.as_os_str() == "-" {
                STDIN_NAME.to_owned()
            } else {
                args.file.display().to_string()
            };
            fatal(
                "replay",
                &format!("{name} is empty: no lines to replay (a fixture is what watch --record or tail --record writes)"),
            );
            ExitCode::from(EXIT_REFUSED)
        }
        Ok(Replayed { out, .. }) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&out).and_then(|_| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`| head`) is the reader's choice, not a failure to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    fatal("replay", &format!("cannot write output: {e}"));
                    ExitCode::from(EXIT_FATAL)
                }
            }
        }
        Err(e) => {
            fatal("replay", &e);
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// Opens the fixture; a directory is named as such (reading one fails with a bare "Is a
/// directory" only later).
fn open(path: &Path) -> Result<std::fs::File, String> {
    if path.is_dir() {
        return Err(format!(
            "{} is a directory, not a fixture: give a JSON Lines file (what watch --record or tail --record writes)",
            path.display()
        ));
    }
    std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// What a replay printed, and whether the input held nothing but whitespace.
struct Replayed {
    out: Vec<u8>,
    empty: bool,
}

fn replay(name: &Path, input: impl BufRead, snapshot: bool) -> Result<Replayed, String> {
    let seen = Rc::new(Seen::default());
    let input = Watched {
        inner: input,
        seen: seen.clone(),
    };
    let mut replay = Replay::new(Reader::new(name, input));
    let mut out = Vec::new();
    let binary = |e: &FixtureError| {
        if seen.binary.get() {
            format!(
                "{} is not a fixture: it holds binary data, not JSON Lines text (what watch --record or tail --record writes)",
                name.display()
            )
        } else {
            describe(e)
        }
    };
    if snapshot {
        let store = replay.finish().map_err(|e| binary(&e))?;
        if seen.text.get() {
            write_json_line(&mut out, &store.snapshot());
        }
    } else {
        for change in replay {
            write_json_line(&mut out, &change.map_err(|e| binary(&e))?);
        }
    }
    Ok(Replayed {
        out,
        empty: !seen.text.get(),
    })
}

/// What the input showed so far.
#[derive(Default)]
struct Seen {
    /// Something other than whitespace.
    text: Cell<bool>,
    /// Bytes no text file has ([`looks_binary`]): a binary file, not a fixture.
    binary: Cell<bool>,
}

/// The input, noting what [`Seen`] asks.
struct Watched<R> {
    inner: R,
    seen: Rc<Seen>,
}

impl<R: BufRead> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Watched<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let buf = self.inner.fill_buf()?;
        if !self.seen.text.get() && buf.iter().any(|b| !b.is_ascii_whitespace()) {
            self.seen.text.set(true);
        }
        if !self.seen.binary.get() && looks_binary(buf) {
            self.seen.binary.set(true);
        }
        Ok(buf)
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}

/// Whether `buf` holds bytes no text file has: NUL, or control characters other than tab,
/// line breaks, form feed and escape. (Text in another encoding, such as Latin-1, is not
/// binary: its line and column are named instead.)
fn looks_binary(buf: &[u8]) -> bool {
    buf.iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
}

/// `FILE:LINE:COLUMN: what is wrong` in plain words for a line that does not read; other
/// errors as they are.
fn describe(e: &FixtureError) -> String {
    match e {
        FixtureError::Parse {
            path,
            line,
            column,
            message,
        } => format!(
            "{}:{line}:{column}: {}",
            path.display(),
            json_errors::json_error(message)
        ),
        other => other.to_string(),
    }
}

fn write_json_line(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing to a Vec cannot fail and these types always serialize.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = r#"{"channel":"/v2/me/calls","data":{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{"id":"c1","state":"Ringing"}}}"#;

    fn replay_text(bytes: &[u8]) -> Result<String, String> {
        replay("calls.jsonl".as_ref(), bytes, false).map(|r| String::from_utf8(r.out).unwrap())
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let plain = replay_text(CALL.as_bytes()).unwrap();
        assert!(plain.contains(r#""callId":"c1""#), "{plain}");
        let with_bom = [b"\xEF\xBB\xBF", CALL.as_bytes()].concat();
        assert_eq!(replay_text(&with_bom).unwrap(), plain);
        // Fewer bytes than a BOM are kept as they are.
        assert_eq!(replay_text(b"\n").unwrap(), "");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column_in_plain_words() {
        let text = format!("{CALL}\n\nnot json at all\n");
        assert_eq!(
            replay_text(text.as_bytes()).unwrap_err(),
            "calls.jsonl:3:2: not JSON: expected a value"
        );
        let text = format!("{CALL}\n[{{\"channel\":\"/v2/me/calls\",}}]\n");
        let err = replay_text(text.as_bytes()).unwrap_err();
        assert!(err.starts_with("calls.jsonl:2:"), "{err}");
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn user_data_nested_over_the_limit_is_refused_at_its_line_naming_the_limit() {
        let deep = format!("{}1{}", r#"{"k":"#.repeat(200_000), "}".repeat(200_000));
        let call = CALL.replace(
            r#""state":"Ringing"}"#,
            &format!(r#""state":"Ringing","userData":{{"Deep":{deep}}}}}"#),
        );
        let text = format!("{CALL}\n{call}\n");
        let err = replay_text(text.as_bytes()).unwrap_err();
        let column = call.find(r#"{"Deep""#).unwrap() + 1;
        assert_eq!(
            err,
            format!("calls.jsonl:2:{column}: nested deeper than 64 levels: over the `userData` nesting depth limit (MAX_USER_DATA_DEPTH)")
        );
        // The snapshot reads the same decoder: refused the same way.
        let snap = replay("calls.jsonl".as_ref(), text.as_bytes(), true)
            .err()
            .unwrap();
        assert_eq!(snap, err);
    }
}
