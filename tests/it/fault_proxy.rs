//! The fault-injecting proxy of test-support's `fault_proxy`, fault by fault, against small
//! upstreams of this file's own on 127.0.0.1 (an echo server and a fixed HTTP/1.1 server).
//!
//! Only what the fault suites (`faults_bayeux.rs`, `faults_gws/`, test-support's
//! `fault_plan`) rely on is tested here: each test names the faults or the fact it guards. A
//! suite's verdict on the client or the feed is worth no more than the proxy doing what the
//! suite says it did.

use gws_cometd_test_support::{fault_proxy, within_real};

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fault_proxy::{Cut, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, Instant};

/// Aborts a server task (and so every connection task it owns) on drop.
struct Server(JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An upstream that echoes every byte back and reports how each connection ended.
struct Echo {
    addr: SocketAddr,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// Per connection, in the order they end: bytes echoed, or the error that ended it.
    ends: mpsc::UnboundedReceiver<io::Result<u64>>,
    _server: Server,
}

async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (tx, ends) = mpsc::unbounded_channel();
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            connections.spawn(async move {
                let (mut r, mut w) = stream.split();
                let end = match tokio::io::copy(&mut r, &mut w).await {
                    Ok(n) => w.shutdown().await.map(|()| n),
                    Err(e) => Err(e),
                };
                let _ = tx.send(end);
            });
        }
    });
    Echo {
        addr,
        accepted,
        ends,
        _server: Server(task),
    }
}

impl Echo {
    /// How the next connection ended. No tokio timeout (auto-advance would fire it under paused
    /// time): the test's real-time bound covers it.
    async fn next_end(&mut self) -> io::Result<u64> {
        self.ends.recv().await.expect("the echo server runs")
    }
}

/// An HTTP/1.1 upstream answering every request head with `200` and a `len`-byte body, keeping
/// the connection open for the next request.
struct HttpUpstream {
    addr: SocketAddr,
    /// Requests answered so far (counted before the reply is written).
    requests: Arc<AtomicUsize>,
    _server: Server,
}

async fn http_upstream(len: usize) -> HttpUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let reply: Arc<Vec<u8>> = Arc::new([head(len), body(len)].concat());
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let (count, reply) = (count.clone(), reply.clone());
            connections.spawn(async move {
                let mut input = Vec::new();
                loop {
                    let end = loop {
                        if let Some(at) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => input.extend_from_slice(&chunk[..n]),
                        }
                    };
                    input.drain(..end);
                    count.fetch_add(1, Ordering::SeqCst);
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    HttpUpstream {
        addr,
        requests,
        _server: Server(task),
    }
}

fn head(len: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\ncontent-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes()
}

/// A body whose every byte depends on its position, so lost, doubled or moved bytes show.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Pseudo-random bytes (a 64-bit LCG), different for each seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

const GET: &[u8] = b"GET /reply HTTP/1.1\r\nhost: upstream\r\n\r\n";

/// Connects to the proxy and sends one GET.
async fn get(proxy: &FaultProxy) -> TcpStream {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    stream
}

/// Reads one whole reply of a `len`-byte body.
async fn read_reply(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut reply = vec![0; head(len).len() + len];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

/// Reads until the stream ends: the bytes, and `Ok` for an end of stream or the read error.
async fn read_all(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Asserts that `got` is `want`, saying where they first differ rather than printing both.
fn assert_bytes(got: &[u8], want: &[u8]) {
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "got {} bytes, want {}; first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

/// Sends `data` through the echo path and reads it all back (write and read concurrently,
/// then a half-close that the proxy must pass on for the read to end).
async fn echo_through(proxy: &FaultProxy, data: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        w // keep the socket open until the reader is done
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    drop(writer.await.unwrap());
    back
}

/// One small round trip on a live connection.
async fn ping(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).await.unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, message);
}

/// Asserts that the proxy reset this connection: the next read fails with `ConnectionReset`.
async fn assert_reset(stream: &mut TcpStream) {
    let mut buf = [0; 16];
    match stream.read(&mut buf).await {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("read {n} bytes where a reset was expected"),
    }
}

/// Every suite: outside its faults the proxy is transparent, so what the client gets wrong is
/// the client's.
#[tokio::test]
async fn bytes_pass_unchanged_large_and_small_over_many_connections() {
    within_real("the test", Duration::from_secs(60), async {
        let mut upstream = echo().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();

        let large = noise(3_000_000, 1);
        assert_bytes(&echo_through(&proxy, large.clone()).await, &large);

        let small: Vec<Vec<u8>> = (0..40).map(|i| noise(100 + 37 * i, 2 + i as u64)).collect();
        let backs =
            futures::future::join_all(small.iter().map(|m| echo_through(&proxy, m.clone()))).await;
        for (back, sent) in backs.iter().zip(&small) {
            assert_bytes(back, sent);
        }

        let total = (large.len() + small.iter().map(Vec::len).sum::<usize>()) as u64;
        let mut echoed = 0;
        for _ in 0..41 {
            echoed += upstream
                .next_end()
                .await
                .expect("every upstream connection ends cleanly");
        }
        assert_eq!(echoed, total, "the upstream got every byte");
        let stats = proxy.stats();
        assert_eq!(stats.accepted, 41);
        assert_eq!(stats.client_to_server, total);
        assert_eq!(stats.server_to_client, total);
        assert_eq!((stats.resets, stats.cuts, stats.refused), (0, 0, 0));
        while proxy.stats().live > 0 {
            sleep(Duration::from_millis(5)).await; // the last tasks are still closing
        }
    })
    .await;
}

/// The `cut-reset` phase and `cut_every_reply(.., Cut::Reset)`: a cut reply is a head and a
/// body broken off after exactly the bytes asked for, then a reset.
#[tokio::test]
async fn a_reset_cut_delivers_the_head_and_exactly_k_body_bytes_then_a_reset() {
    within_real("the test", Duration::from_secs(30), async {
        let len = 100_000;
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        proxy.cut_next_reply(30_000, Cut::Reset);

        let mut stream = get(&proxy).await;
        let (got, end) = read_all(&mut stream).await;
        assert_bytes(&got, &[head(len), body(30_000)].concat());
        let e = end.expect_err("the cut ends in a reset");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        let stats = proxy.stats();
        assert_eq!(stats.cuts, 1);
        assert_eq!(stats.server_to_client, (head(len).len() + 30_000) as u64);

        // One-shot: the next reply is whole.
        let mut stream = get(&proxy).await;
        assert_bytes(
            &read_reply(&mut stream, len).await,
            &[head(len), body(len)].concat(),
        );
        assert_eq!(proxy.stats().cuts, 1);

        // A cut at the very end of the body: the whole reply, then a reset, with nothing more
        // from the server to trigger it.
        proxy.cut_next_reply(len, Cut::Reset);
        stream.write_all(GET).await.unwrap();
        let (got, end) = read_all(&mut stream).await;
        assert_bytes(&got, &[head(len), body(len)].concat());
        let e = end.expect_err("the cut ends in a reset");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(proxy.stats().cuts, 2);
        assert_eq!(upstream.requests.load(Ordering::SeqCst), 3);
    })
    .await;
}

/// The `cut-close` phase: the same cut ending in a FIN, also on a kept-alive connection (the
/// client's pooled one).
#[tokio::test]
async fn a_close_cut_ends_the_reply_with_an_end_of_stream_even_on_a_live_connection() {
    within_real("the test", Duration::from_secs(30), async {
        let len = 50_000;
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();

        proxy.cut_next_reply(0, Cut::Close);
        let (got, end) = read_all(&mut get(&proxy).await).await;
        assert_bytes(&got, &head(len));
        end.expect("a close cut ends in an end of stream");

        // A kept-alive connection: the first reply whole, the second cut once armed.
        let mut stream = get(&proxy).await;
        assert_bytes(
            &read_reply(&mut stream, len).await,
            &[head(len), body(len)].concat(),
        );
        proxy.cut_next_reply(12_345, Cut::Close);
        stream.write_all(GET).await.unwrap();
        let (got, end) = read_all(&mut stream).await;
        assert_bytes(&got, &[head(len), body(12_345)].concat());
        end.expect("a close cut ends in an end of stream");
        assert_eq!(proxy.stats().cuts, 2);
    })
    .await;
}

/// `cut_replies` (the cut phases, whose end is "the last of its cuts done") and
/// `cut_every_reply` (`faults_bayeux.rs`) until `clear`.
#[tokio::test]
async fn cut_replies_cuts_that_many_and_cut_every_reply_cuts_until_cleared() {
    within_real("the test", Duration::from_secs(30), async {
        let len = 5_000;
        let whole = [head(len), body(len)].concat();
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();

        proxy.cut_replies(2, 10, Cut::Close);
        for _ in 0..2 {
            let (got, end) = read_all(&mut get(&proxy).await).await;
            assert_bytes(&got, &[head(len), body(10)].concat());
            end.unwrap();
        }
        assert_bytes(&read_reply(&mut get(&proxy).await, len).await, &whole);

        proxy.cut_every_reply(100, Cut::Reset);
        for _ in 0..3 {
            let (got, end) = read_all(&mut get(&proxy).await).await;
            assert_bytes(&got, &[head(len), body(100)].concat());
            assert_eq!(end.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        }
        proxy.clear();
        assert_bytes(&read_reply(&mut get(&proxy).await, len).await, &whole);
        assert_eq!(proxy.stats().cuts, 5);
        assert_eq!(upstream.requests.load(Ordering::SeqCst), 7);
    })
    .await;
}

/// The `stall-4s` phase: nothing reaches the client while it lasts, the request still
/// reaches the server, and the reply arrives whole after it.
#[tokio::test]
async fn a_stall_holds_the_reply_and_releases_it_intact() {
    // Real time: showing that nothing arrives needs the kernel to have had the time to deliver.
    within_real("the test", Duration::from_secs(30), async {
        let len = 300_000;
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        proxy.stall(true);

        let mut stream = get(&proxy).await;
        while upstream.requests.load(Ordering::SeqCst) == 0 {
            sleep(Duration::from_millis(5)).await;
        }
        let mut buf = [0; 1024];
        let early = timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        assert!(early.is_err(), "read {early:?} during the stall");
        assert_eq!(proxy.stats().server_to_client, 0);
        assert_eq!(
            proxy.stats().client_to_server,
            GET.len() as u64,
            "the request still went through"
        );

        proxy.stall(false);
        assert_bytes(
            &read_reply(&mut stream, len).await,
            &[head(len), body(len)].concat(),
        );
    })
    .await;
}

/// `refuse_for` (outages in `faults_bayeux.rs` and `faults_gws/`): live and new
/// connections reset, none reaching the server, for exactly the outage.
#[tokio::test(start_paused = true)]
async fn refuse_for_resets_live_and_new_connections_for_the_outage_then_lets_them_through() {
    within_real("the test", Duration::from_secs(30), async {
        let mut upstream = echo().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        ping(&mut live, b"before").await;

        proxy.refuse_for(Duration::from_secs(5));
        assert_reset(&mut live).await;
        let e = upstream.next_end().await.unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::ConnectionReset,
            "the upstream side too: {e}"
        );

        assert_reset(&mut TcpStream::connect(proxy.addr()).await.unwrap()).await;
        sleep(Duration::from_millis(4_900)).await;
        assert_reset(&mut TcpStream::connect(proxy.addr()).await.unwrap()).await;
        assert_eq!(
            upstream.accepted.load(Ordering::SeqCst),
            1,
            "refused connections never reach the upstream"
        );

        sleep(Duration::from_millis(100)).await;
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        ping(&mut after, b"after").await;
        let stats = proxy.stats();
        assert_eq!((stats.accepted, stats.refused, stats.resets), (4, 2, 1));
    })
    .await;
}

/// The `refuse-3s` phase: `refuse(true)` holds until the phase's `clear`.
#[tokio::test(start_paused = true)]
async fn refuse_lasts_until_turned_off() {
    within_real("the test", Duration::from_secs(30), async {
        let upstream = echo().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        proxy.refuse(true);
        sleep(Duration::from_secs(3_600)).await;
        assert_reset(&mut TcpStream::connect(proxy.addr()).await.unwrap()).await;
        proxy.refuse(false);
        ping(
            &mut TcpStream::connect(proxy.addr()).await.unwrap(),
            b"back",
        )
        .await;
        assert_eq!(proxy.stats().refused, 1);
    })
    .await;
}

/// The `reset` phase: every live connection reset on both sides, later ones untouched.
#[tokio::test]
async fn reset_all_resets_live_connections_on_both_sides_and_spares_later_ones() {
    within_real("the test", Duration::from_secs(30), async {
        let mut upstream = echo().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        ping(&mut a, b"a").await;
        ping(&mut b, b"b").await;

        proxy.reset_all();
        assert_reset(&mut a).await;
        assert_reset(&mut b).await;
        for _ in 0..2 {
            let e = upstream.next_end().await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        }
        assert_eq!(proxy.stats().resets, 2);

        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        ping(&mut c, b"c").await;
        assert_eq!(proxy.stats().resets, 2);
    })
    .await;
}

/// The `latency-250ms` phase and `faults_gws/`'s slow network: the delay the suite
/// configures, each way, without serialising chunks.
#[tokio::test(start_paused = true)]
async fn latency_delays_every_chunk_both_ways_as_a_delay_line() {
    within_real("the test", Duration::from_secs(30), async {
        let upstream = echo().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();

        proxy.latency(Duration::from_millis(200));
        let started = Instant::now();
        ping(&mut stream, b"slow").await;
        let round_trip = started.elapsed();
        assert!(
            round_trip >= Duration::from_millis(400) && round_trip < Duration::from_millis(450),
            "200 ms each way took {round_trip:?}"
        );

        // Chunks in flight overlap: 1 MB (64 chunks each way) does not cost 64 delays.
        proxy.latency(Duration::from_millis(100));
        let data = noise(1_000_000, 9);
        let started = Instant::now();
        assert_bytes(&echo_through(&proxy, data.clone()).await, &data);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "1 MB with 100 ms each way took {took:?}"
        );

        proxy.latency(Duration::ZERO);
        let started = Instant::now();
        ping(&mut stream, b"fast").await;
        assert!(started.elapsed() < Duration::from_millis(1));
    })
    .await;
}

/// The `bandwidth-10KB/s` phase and `faults_bayeux.rs`'s slow link: the rate holds.
#[tokio::test(start_paused = true)]
async fn bandwidth_paces_a_large_reply_steadily() {
    within_real("the test", Duration::from_secs(30), async {
        let len = 500_000;
        let whole = [head(len), body(len)].concat();
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        proxy.bandwidth(Some(100_000));

        let started = Instant::now();
        let mut stream = get(&proxy).await;
        let mut got = Vec::new();
        let mut by_one_second = 0;
        let mut buf = vec![0; 64 * 1024];
        while got.len() < whole.len() {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the reply ended early");
            got.extend_from_slice(&buf[..n]);
            if started.elapsed() <= Duration::from_secs(1) {
                by_one_second = got.len();
            }
        }
        let took = started.elapsed();
        assert_bytes(&got, &whole);
        // 10 kB pass at once (the bucket's depth), the rest at 100 kB/s: ~4.9 s.
        assert!(
            took >= Duration::from_millis(4_850) && took <= Duration::from_millis(5_050),
            "500 kB at 100 kB/s took {took:?}"
        );
        assert!(
            (85_000..=120_000).contains(&by_one_second),
            "{by_one_second} bytes in the first second"
        );

        proxy.bandwidth(None);
        let started = Instant::now();
        assert_bytes(&read_reply(&mut get(&proxy).await, len).await, &whole);
        assert!(started.elapsed() < Duration::from_millis(1));
    })
    .await;
}

/// Every phase ends with `clear`, "the fault's end" from which recovery is measured.
#[tokio::test(start_paused = true)]
async fn clear_turns_every_fault_off() {
    within_real("the test", Duration::from_secs(30), async {
        let len = 100_000;
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        proxy.stall(true);
        proxy.latency(Duration::from_secs(1));
        proxy.bandwidth(Some(1_000));
        proxy.cut_every_reply(0, Cut::Reset);
        proxy.refuse(true);
        proxy.clear();

        let started = Instant::now();
        assert_bytes(
            &read_reply(&mut get(&proxy).await, len).await,
            &[head(len), body(len)].concat(),
        );
        assert!(started.elapsed() < Duration::from_millis(1));
        let stats = proxy.stats();
        assert_eq!((stats.cuts, stats.refused), (0, 0));
    })
    .await;
}

/// The suites' cuts land on the connection the client's transport (reqwest) keeps alive, and
/// after a cut body it opens a new one: the recovery the suites measure rests on both.
#[tokio::test]
async fn reqwest_keeps_one_connection_alive_across_a_whole_and_a_cut_reply() {
    // Real time: the client's connection pool has timers of its own.
    within_real("the test", Duration::from_secs(30), async {
        let len = 200_000;
        let upstream = http_upstream(len).await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();

        let first = client.get(proxy.url("/first")).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_bytes(&first.bytes().await.unwrap(), &body(len));

        proxy.cut_next_reply(1_000, Cut::Reset);
        let second = client.get(proxy.url("second")).send().await.unwrap();
        assert_eq!(second.status(), 200, "the head went through");
        let e = second.bytes().await.expect_err("the body was cut");
        assert!(e.is_body() || e.is_decode(), "{e:?}");
        let stats = proxy.stats();
        assert_eq!(stats.accepted, 1, "both requests went on one connection");
        assert_eq!(stats.cuts, 1);
        assert_eq!(upstream.requests.load(Ordering::SeqCst), 2);

        let third = client.get(proxy.url("/third")).send().await.unwrap();
        assert_bytes(&third.bytes().await.unwrap(), &body(len));
        assert_eq!(proxy.stats().accepted, 2, "a new connection after the cut");
    })
    .await;
}
