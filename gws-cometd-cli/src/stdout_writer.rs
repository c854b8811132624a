//! stdout written from a thread of its own, so that a consumer that stops reading never
//! holds up the session, the `--record` file, `--duration` or a stop signal.
//!
//! The commands hand complete lines to a [`StdoutWriter`] over a bounded channel; its thread
//! writes them, flushing whenever nothing more is queued. What happens when the channel is
//! full is the command's choice: `watch` stops taking changes from the feed, which then
//! coalesces them per call (memory bounded by the number of calls), and `tail` drops lines
//! and says how many on stderr ([`StdoutWriter::offer`]). At the end the writer gets
//! [`DRAIN_GRACE`] to write what is queued; a stdout still blocked then is left behind.

use std::io::Write;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::log::cli_event;

/// How long the end of a command waits for the queued lines to be written.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Lines queued between a command and its stdout thread.
pub const QUEUED_LINES: usize = 64;

/// The stdout thread's end of the lines.
pub struct StdoutWriter {
    lines: mpsc::Sender<Vec<u8>>,
    /// The thread's outcome, until it has been read once.
    done: Option<oneshot::Receiver<std::io::Result<()>>>,
    /// The thread's outcome once read (a oneshot may be awaited only once), as the write
    /// error's kind and text.
    ended: Option<Result<(), (std::io::ErrorKind, String)>>,
    /// Lines dropped since stdout last took one ([`offer`](Self::offer)).
    dropping: u64,
    /// Lines dropped over the whole run.
    dropped: u64,
}

/// What [`StdoutWriter::offer`] did with a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// stdout is behind by [`QUEUED_LINES`]: the line was dropped.
    Dropped,
}

impl StdoutWriter {
    /// Starts the thread that writes to stdout.
    pub fn start() -> Result<Self, String> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUED_LINES);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let result = write_all(&mut rx);
                // Closing first: a command waiting for room learns at once that no more
                // lines will be taken.
                rx.close();
                let _ = done_tx.send(result);
            })
            .map_err(|e| format!("cannot start the stdout thread: {e}"))?;
        Ok(StdoutWriter {
            lines: tx,
            done: Some(done),
            ended: None,
            dropping: 0,
            dropped: 0,
        })
    }

    /// Waits for room for one line; `Err` with the write error once stdout failed.
    pub async fn reserve(&mut self) -> Result<mpsc::OwnedPermit<Vec<u8>>, std::io::Error> {
        match self.lines.clone().reserve_owned().await {
            Ok(permit) => Ok(permit),
            Err(_) => Err(self.failure().await),
        }
    }

    /// Queues `line` without waiting: dropped (and counted, and said once per episode on
    /// stderr) when stdout is [`QUEUED_LINES`] behind; `Err` once stdout failed.
    pub async fn offer(&mut self, line: Vec<u8>) -> Result<Offered, std::io::Error> {
        match self.lines.try_send(line) {
            Ok(()) => {
                if self.dropping > 0 {
                    cli_event!(
                        warn,
                        dropped = self.dropping,
                        "stdout is being read again: {} lines were dropped while it was not",
                        self.dropping
                    );
                    self.dropping = 0;
                }
                Ok(Offered::Queued)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.dropping == 0 {
                    cli_event!(
                        warn,
                        queued = QUEUED_LINES,
                        "stdout is not being read: dropping lines until it is (the session \
                         and --record go on)"
                    );
                }
                self.dropping += 1;
                self.dropped += 1;
                Ok(Offered::Dropped)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.failure().await),
        }
    }

    /// Lines dropped by [`offer`](Self::offer) over the whole run.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Waits for the thread's outcome (read once, then remembered).
    async fn outcome(&mut self) -> Result<(), std::io::Error> {
        if let Some(done) = self.done.take() {
            self.ended = Some(match done.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err((e.kind(), e.to_string())),
                Err(_) => Err((
                    std::io::ErrorKind::Other,
                    "the stdout thread stopped".to_owned(),
                )),
            });
        }
        match &self.ended {
            Some(Err((kind, text))) => Err(std::io::Error::new(*kind, text.clone())),
            _ => Ok(()),
        }
    }

    /// Why the thread stopped taking lines.
    async fn failure(&mut self) -> std::io::Error {
        match self.outcome().await {
            Err(e) => e,
            Ok(()) => std::io::Error::other("the stdout thread stopped"),
        }
    }

    /// Lets the thread write what is queued, for at most [`DRAIN_GRACE`]; `Err` with the
    /// write error if it failed. A stdout still blocked after the grace is left behind.
    pub async fn finish(mut self) -> Result<(), std::io::Error> {
        // No more lines: the thread ends once it has written what is queued.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.lines, closed));
        match tokio::time::timeout(DRAIN_GRACE, self.outcome()).await {
            Ok(result) => result,
            Err(_) => {
                cli_event!(
                    debug,
                    "stdout still blocked after {DRAIN_GRACE:?}: lines left unwritten"
                );
                Ok(())
            }
        }
    }
}

/// The thread: every line as it comes, one flush per burst.
fn write_all(rx: &mut mpsc::Receiver<Vec<u8>>) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    while let Some(line) = rx.blocking_recv() {
        out.write_all(&line)?;
        while let Ok(line) = rx.try_recv() {
            out.write_all(&line)?;
        }
        out.flush()?;
    }
    out.flush()
}
