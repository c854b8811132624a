//! Decode + apply over a generated 200 000-message fixture (~1 KB per message, 2 000 calls),
//! against two floors in the same run: validating the same bytes with serde_json into
//! `IgnoredAny`, and with sonic-rs (SIMD) into `IgnoredAny`. Before criterion's own runs, a
//! summary prints the decoder's time (`calls_in_text` on every line, the fastest of a few
//! runs) and its ratio to each floor. Both `replay` modes go through `fixture::Replay` (the one wire decoder, then
//! `CallStore::apply`); `replay --snapshot` never asks for the changes, plain `replay` works
//! out each one (its user-data diff) and writes it.
//!
//! Run: `cargo bench --bench replay -- --sample-size 20`

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gws_cometd::bayeux::Message;
use gws_cometd::fixture::{Reader, Replay};
use gws_cometd::gws::wire::{self, calls_in_batch, calls_in_text, Notification};
use gws_cometd::gws::CallStore;

const MESSAGES: usize = 200_000;
const CALLS: usize = 2_000;

/// One line per message: a one-element reply array, as the client records them.
fn fixture() -> Vec<u8> {
    let steps = MESSAGES / CALLS;
    let mut out = Vec::with_capacity(MESSAGES * 1100);
    for i in 0..MESSAGES {
        let (call, step) = (i % CALLS, i / CALLS);
        let id = format!("01RCC3N118B1V0SL8O7G{call:012}");
        let (state, nt) = match step {
            0 => ("Ringing", "StatusChange"),
            1 => ("Established", "StatusChange"),
            s if s == steps - 2 => ("Released", "StatusChange"),
            s if s == steps - 1 && call % 2 == 0 => ("Completed", "StatusChange"),
            s if s == steps - 1 => ("Released", "AttachedDataChanged"),
            _ => ("Established", "AttachedDataChanged"),
        };
        let mut ud = String::from("{");
        for k in 0..(step.min(8)) {
            ud.push_str(&format!(r#""Key{k}":"value-{k}-{call}","#));
        }
        ud.push_str(&format!(
            r#""AccountNumber":"{call}","Counter":{step},"Big":9007199254740993}}"#
        ));
        write!(
            out,
            r#"[{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","notificationType":"{nt}","phoneNumber":"5001","call":{{"id":"{id}","callUuid":"{id}","connId":"0071025bd3c3b{call:03x}","state":"{state}","callType":"Inbound","ani":"5115","dnis":"5001","participants":[{{"e164Number":"5115","formattedPhoneNumber":"5115","phoneNumber":"5115","digits":"5115"}}],"capabilities":["Hold","Release","AttachUserData","DeleteUserData","UpdateUserData","SendDtmf","InitiateTransfer","InitiateConference","SingleStepTransfer"],"userData":{ud},"duration":"{step}","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":"http://127.0.0.1:8090/api/v2/devices/0b1e9f27","uri":"http://127.0.0.1:8090/api/v2/me/calls/{id}","path":"/calls/{id}"}}}}}}]"#
        )
        .unwrap();
        out.push(b'\n');
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

fn bench(c: &mut Criterion) {
    let bytes = fixture();
    let lines = lines(&bytes);
    assert_eq!(lines.len(), MESSAGES);
    eprintln!(
        "fixture: {} messages, {} bytes ({} per message)",
        lines.len(),
        bytes.len(),
        bytes.len() / lines.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.jsonl");
    std::fs::write(&path, &bytes).unwrap();

    summary(&lines);

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Bytes(bytes.len() as u64));

    g.bench_function("floor: IgnoredAny per line (memory)", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).unwrap());
            }
        })
    });
    g.bench_function("floor: sonic-rs IgnoredAny per line (memory)", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(sonic_rs::from_slice::<serde::de::IgnoredAny>(l).unwrap());
            }
        })
    });
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let now = Instant::now();
    g.bench_function("decode only: calls_in_text (memory)", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(calls_in_text(t).unwrap());
            }
        })
    });
    g.bench_function("calls_in_text + apply (memory)", |b| {
        b.iter(|| {
            let mut store = CallStore::new();
            for t in &texts {
                for m in &calls_in_text(t).unwrap() {
                    black_box(store.apply(m, now).is_some());
                }
            }
            assert_eq!(store.len(), CALLS / 2);
            store
        })
    });
    g.bench_function("calls_in_batch + apply + change (memory)", |b| {
        b.iter(|| {
            let mut store = CallStore::new();
            for l in &lines {
                for m in &calls_in_batch(l).unwrap() {
                    black_box(store.apply(m, now).map(|mut a| a.change()));
                }
            }
            assert_eq!(store.len(), CALLS / 2);
            store
        })
    });
    g.bench_function(
        "Message::parse_batch + wire::decode + apply + change (memory, as CallStore::changes)",
        |b| {
            b.iter(|| {
                let mut store = CallStore::new();
                for l in &lines {
                    for msg in Message::parse_batch(l).unwrap() {
                        if let Notification::Call(m) = wire::decode(&msg).unwrap() {
                            black_box(store.apply(&m, now).map(|mut a| a.change()));
                        }
                    }
                }
                store
            })
        },
    );
    g.bench_function("floor: read file + IgnoredAny per line", |b| {
        b.iter(|| {
            let mut r = Reader::open(&path).unwrap();
            while let Some(line) = r.next_line() {
                let line = line.unwrap();
                black_box(serde_json::from_str::<serde::de::IgnoredAny>(line.text).unwrap());
            }
        })
    });
    g.bench_function("replay --snapshot (file, as the CLI does it)", |b| {
        b.iter(|| {
            let mut replay = Replay::open(&path).unwrap();
            let out = serde_json::to_vec(&replay.finish().unwrap().snapshot()).unwrap();
            black_box(out)
        })
    });
    g.bench_function(
        "replay, one line per change (file, as the CLI does it)",
        |b| {
            b.iter(|| {
                let mut out = Vec::new();
                for change in Replay::open(&path).unwrap() {
                    serde_json::to_writer(&mut out, &change.unwrap()).unwrap();
                    out.push(b'\n');
                }
                black_box(out)
            })
        },
    );
    g.finish();
}

/// How long `f` takes.
fn timed(f: impl Fn()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// The decoder against both floors in this run: rounds of the three, one after the other
/// (so a change in the machine's load touches all three alike), the fastest of each kept.
fn summary(lines: &[&[u8]]) {
    const ROUNDS: usize = 9;
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let serde_floor = || {
        for l in lines {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).unwrap());
        }
    };
    let sonic_floor = || {
        for l in lines {
            black_box(sonic_rs::from_slice::<serde::de::IgnoredAny>(l).unwrap());
        }
    };
    let decoder = || {
        for t in &texts {
            black_box(calls_in_text(t).unwrap());
        }
    };
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        best[0] = best[0].min(timed(serde_floor));
        best[1] = best[1].min(timed(sonic_floor));
        best[2] = best[2].min(timed(decoder));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |d: Duration| best[2].as_secs_f64() / d.as_secs_f64();
    eprintln!("same-run summary (fastest of {ROUNDS} interleaved rounds, memory):");
    eprintln!("  floor serde_json IgnoredAny: {:8.1} ms", ms(best[0]));
    eprintln!("  floor sonic-rs IgnoredAny:   {:8.1} ms", ms(best[1]));
    eprintln!(
        "  decoder calls_in_text:       {:8.1} ms  = {:.2}x serde_json floor, {:.2}x sonic-rs floor",
        ms(best[2]),
        ratio(best[0]),
        ratio(best[1])
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
