//! Adversarial user data (issue 21) against ordinary calls of the same size, in one run:
//! time per MB and peak allocation through the replay/changes path (`fixture::Replay`: the
//! one wire decoder, `CallStore::apply`, each change's user-data diff, written out as JSON
//! Lines as `gws-cometd replay` does), and through `replay --snapshot` for comparison.
//!
//! The shapes (`gws_cometd_test_support::adversarial`), each about `SIZE` bytes in two
//! notifications of one call (the user data, then its change): 1 KB ordinary notifications
//! of 100 calls; duplicates of one key with every other value changed; distinct keys then
//! permuted; members nested to `MAX_USER_DATA_DEPTH` as objects, as lists; 100 KB strings
//! full of escapes; and user data nested far over the limit (refused at its line).
//!
//! Peak allocation is the most bytes the thread held at once while replaying (a counting
//! global allocator), beyond the input itself.
//!
//! Run: `cargo bench --bench adversarial` (`-- --size MB` to change the size, default 4).

use std::hint::black_box;
use std::time::{Duration, Instant};

use gws_cometd::fixture::{Reader, Replay};
use gws_cometd_test_support::adversarial::{fixture, peak_during, Counting, Shape};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs of each measurement; the fastest counts.
const RUNS: usize = 5;

/// The replay as the CLI does it: every change written as one JSON line; the output's size,
/// or the error's text.
fn replay(bytes: &[u8]) -> Result<usize, String> {
    let mut out = Vec::new();
    for change in Replay::new(Reader::new("adversarial.jsonl", bytes)) {
        let change = change.map_err(|e| e.to_string())?;
        serde_json::to_writer(&mut out, &change).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(black_box(out).len())
}

/// `replay --snapshot`: the store without the changes.
fn snapshot(bytes: &[u8]) -> Result<usize, String> {
    let mut replay = Replay::new(Reader::new("adversarial.jsonl", bytes));
    let store = replay.finish().map_err(|e| e.to_string())?;
    Ok(black_box(serde_json::to_vec(&store.snapshot()).map_err(|e| e.to_string())?).len())
}

/// The fastest of `RUNS` runs, and the peak held by the first.
fn measure(f: impl Fn() -> Result<usize, String>) -> (Duration, usize, Result<usize, String>) {
    let (out, peak) = peak_during(&f);
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let t = Instant::now();
        black_box(f().ok());
        best = best.min(t.elapsed());
    }
    (best, peak, out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(4);
    // `cargo test --benches` runs this with `--test`: one quick pass is enough there.
    let size = if args.iter().any(|a| a == "--test") {
        1 << 18
    } else {
        mb << 20
    };
    println!(
        "adversarial user data, ~{} MB per shape; time per MB is the fastest of {RUNS} runs; peak = most bytes held at once",
        size >> 20
    );
    println!(
        "{:<38} {:>9} {:>11} {:>10} {:>9} {:>12} {:>10}  outcome",
        "shape", "bytes", "replay/MB", "× ordinary", "peak MB", "snapshot/MB", "peak MB"
    );
    let mut ordinary = None;
    for shape in Shape::ALL {
        let bytes = fixture(shape, size);
        let mbytes = bytes.len() as f64 / (1 << 20) as f64;
        let (t, peak, out) = measure(|| replay(&bytes));
        let (ts, speak, _) = measure(|| snapshot(&bytes));
        let per_mb = t.as_secs_f64() / mbytes;
        let base = *ordinary.get_or_insert(per_mb);
        let outcome = match out {
            Ok(n) => format!("{n} bytes of changes"),
            Err(e) => format!("refused: {}", e.chars().take(110).collect::<String>()),
        };
        println!(
            "{:<38} {:>9} {:>8.2} ms {:>9.1}× {:>9.1} {:>9.2} ms {:>10.1}  {outcome}",
            shape.name(),
            bytes.len(),
            per_mb * 1e3,
            per_mb / base,
            peak as f64 / 1e6,
            ts.as_secs_f64() / mbytes * 1e3,
            speak as f64 / 1e6,
        );
    }
}
