//! `gws-cometd replay`: runs a fixture through the call-state reducer.
//!
//! All output is built in memory and written only when the whole file was read: a malformed
//! line anywhere means one error line on stderr and nothing on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gws_cometd::fixture::{self, Item, Reader};
use gws_cometd::gws::CallStore;

/// Arguments of `replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The fixture: JSON Lines, each line one Bayeux message or an array of them.
    pub file: PathBuf,
    /// Print one JSON object with the final snapshot of every call still in the store,
    /// `{"calls":{"<id>":<call>,...}}`, instead of one JSON line per change.
    #[arg(long)]
    pub snapshot: bool,
}

/// Runs `replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    match replay(&args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&out).and_then(|_| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`| head`) is the reader's choice, not a failure to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gws-cometd replay: cannot write output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("gws-cometd replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn replay(args: &ReplayArgs) -> fixture::Result<Vec<u8>> {
    let mut reader = Reader::open(&args.file)?;
    let mut store = CallStore::new();
    let mut out = Vec::new();
    // A replay has no clock of its own: every call is applied at the same instant.
    let now = Instant::now();
    while let Some(line) = reader.next_item() {
        match line?.1 {
            // Read in one pass, borrowing the line; the store copies only each call's text.
            Item::Calls(calls) => {
                for call in &calls {
                    let applied = store.apply(call, now);
                    if !args.snapshot {
                        // The snapshot needs no diffs: only the changes are worked out.
                        if let Some(mut applied) = applied {
                            write_json_line(&mut out, &applied.change());
                        }
                    }
                }
            }
            // What a recording feed read of the server's calls: its catch-up and heals.
            Item::Snapshot(s) => {
                let keep = |id: &str| s.kept.iter().any(|k| k == id);
                for r in store.reconcile(&s.calls, now, s.origin, keep) {
                    if !args.snapshot {
                        write_json_line(&mut out, &r.change);
                    }
                }
            }
        }
    }
    if args.snapshot {
        write_json_line(&mut out, &store.snapshot());
    }
    Ok(out)
}

fn write_json_line(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing to a Vec cannot fail and these types always serialize.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}
