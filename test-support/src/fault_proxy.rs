//! A fault-injecting TCP proxy on 127.0.0.1 for tests. It forwards every accepted connection
//! to a new connection to one upstream (both directions, half-closes passed on), and on request
//! misbehaves the way networks, proxies and load balancers do: resets, replies cut mid-body,
//! silent stalls, outages, latency and low bandwidth.
//!
//!
//! ```text
//! let proxy = FaultProxy::start(server_addr).await?;
//! let client = Client::builder(proxy.url("/cometd")) ... ;
//! proxy.cut_next_reply(100, Cut::Reset);      // the next reply loses all but 100 body bytes
//! ... wait for the client to report the gap ...
//! assert!(proxy.stats().cuts >= 1);
//! ```
//!
//! Every fault can be switched at any time while traffic flows; each method says whether it
//! acts on live connections, new ones or both. [`FaultProxy::clear`] turns them all off.
//! [`FaultProxy::stats`] counts what the proxy did, so a test can assert that a fault really
//! happened. Dropping the proxy aborts its tasks, which closes the listener and every live
//! connection.
//!
//! Time comes from tokio's clock and the proxy has no timers of its own unless latency or
//! bandwidth is set, so tests may run it under `tokio::time::pause`. Under paused time tokio
//! advances the clock as soon as no task is ready, even while socket I/O is in flight: bound
//! such tests in real time, not with a tokio timeout, which auto-advance would fire early.
//!
//! Limits worth knowing:
//! - A refused connection is one the kernel accepted (the client's `connect` succeeds) and the
//!   proxy resets at once: the client's first read or write fails with `ConnectionReset`. A
//!   true `ConnectionRefused` would need the listener closed, and its port could be lost.
//! - The end of an HTTP response head is the next `\r\n\r\n` in the server→client bytes. That
//!   is exact for HTTP/1.1 replies whose bodies do not contain `\r\n\r\n` (JSON never does).
//!   A cut whose `after_body_bytes` exceeds the body lands in whatever the server sends next
//!   on that connection, or never if it sends nothing more.
//! - Before a cut resets the client, the proxy waits (up to 2 s of real time) until the client's
//!   kernel has acknowledged every forwarded byte, read from Linux's `/proc/net/tcp`: a reset
//!   discards unsent data, and without the wait a slow reader would get fewer bytes. Elsewhere
//!   than Linux the wait is skipped.
//! - Bandwidth is a token bucket shared by all connections (one slow link), 1/10 s of the rate
//!   deep: the first 1/10 s worth passes at once, then the rate holds to within one piece.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, Instant};

/// Largest chunk read from a socket at once.
const CHUNK: usize = 16 * 1024;
/// Chunks per direction read but not yet written (held while stalled, delayed by latency);
/// beyond that the proxy stops reading and TCP flow control holds the sender.
const IN_FLIGHT: usize = 16;
/// How long a cut waits, in real time, for the client to acknowledge the bytes before it.
const DELIVERY_LIMIT: Duration = Duration::from_secs(2);
/// The end of an HTTP/1.x message head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// How a cut reply ends, on both the client's and the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A TCP reset (RST): the client reads the bytes forwarded so far, then `ConnectionReset`.
    Reset,
    /// A FIN: the client reads the bytes forwarded so far, then the end of the stream.
    Close,
}

/// What the proxy has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted, refused ones included.
    pub accepted: u64,
    /// Connections reset at once because a refusal was on.
    pub refused: u64,
    /// Connections reset at once because the upstream could not be reached.
    pub upstream_failures: u64,
    /// Connections open now.
    pub live: u64,
    /// Bytes written to the upstream.
    pub client_to_server: u64,
    /// Bytes written to clients.
    pub server_to_client: u64,
    /// Live connections reset by [`FaultProxy::reset_all`] or by the start of a refusal.
    pub resets: u64,
    /// Replies cut by [`FaultProxy::cut_next_reply`] and its kin.
    pub cuts: u64,
}

/// A TCP proxy from `127.0.0.1:<free port>` to one upstream, with switchable faults.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 with a free port and forwards each accepted connection to a new
    /// connection to `upstream`. Must be called inside a tokio runtime.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults: watch::Sender::new(Faults::default()),
            resets: watch::Sender::new(0),
            bucket: Mutex::new(Bucket::full(Instant::now())),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy { addr, shared, task })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>` (a `/` is put before `path` when it has none).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// Resets (RST, both sides) every connection live now. Connections accepted afterwards
    /// are not affected.
    pub fn reset_all(&self) {
        self.shared
            .resets
            .send_modify(|generation| *generation += 1);
    }

    /// Cuts the next reply: once the end of the next HTTP response head has passed towards a
    /// client, forwards exactly `after_body_bytes` more bytes, then resets or closes both sides
    /// of that connection. Acts on whichever connection, live or new, passes a head end first.
    /// Replaces any cut already planned.
    pub fn cut_next_reply(&self, after_body_bytes: usize, how: Cut) {
        self.cut_replies(1, after_body_bytes, how);
    }

    /// Like [`cut_next_reply`](Self::cut_next_reply), for the next `count` replies (0 cancels
    /// any planned cut).
    pub fn cut_replies(&self, count: usize, after_body_bytes: usize, how: Cut) {
        let cut = (count > 0).then_some(CutPlan {
            times: Times::Count(count),
            after_body_bytes,
            how,
        });
        self.shared.faults.send_modify(|f| f.cut = cut);
    }

    /// Like [`cut_next_reply`](Self::cut_next_reply), for every reply until
    /// [`clear`](Self::clear) or another cut plan.
    pub fn cut_every_reply(&self, after_body_bytes: usize, how: Cut) {
        let cut = CutPlan {
            times: Times::Every,
            after_body_bytes,
            how,
        };
        self.shared.faults.send_modify(|f| f.cut = Some(cut));
    }

    /// While set, server bytes that contain `pattern` (within one chunk the proxy reads, or
    /// across two) are not forwarded: the connection is reset instead, on both sides, and
    /// counted as a cut. A middlebox that always breaks one kind of reply, such as every
    /// reply carrying a notification. `None` turns it off; so does [`clear`](Self::clear).
    pub fn reset_replies_containing(&self, pattern: Option<&[u8]>) {
        let pattern = pattern.filter(|p| !p.is_empty()).map(Arc::from);
        self.shared
            .faults
            .send_modify(|f| f.reset_containing = pattern);
    }

    /// While on, no byte goes from the server to any client (live or new): the proxy holds
    /// them, and releases them intact, in order, when turned off. Bytes already handed to the
    /// kernel still arrive. Client→server bytes keep flowing.
    pub fn stall(&self, on: bool) {
        self.shared.faults.send_modify(|f| f.stall = on);
    }

    /// While on, every new connection is reset as soon as it is accepted; turning it on also
    /// resets every live connection. An outage until turned off.
    pub fn refuse(&self, on: bool) {
        let refusal = if on { Refusal::On } else { Refusal::Off };
        self.shared.faults.send_modify(|f| f.refusal = refusal);
        if on {
            self.reset_all();
        }
    }

    /// Like [`refuse(true)`](Self::refuse) for `outage` of tokio time, after which new
    /// connections are forwarded again.
    pub fn refuse_for(&self, outage: Duration) {
        let refusal = match Instant::now().checked_add(outage) {
            Some(until) => Refusal::Until(until),
            None => Refusal::On,
        };
        self.shared.faults.send_modify(|f| f.refusal = refusal);
        self.reset_all();
    }

    /// Delays every chunk, both directions, live and new connections, by `delay` after it was
    /// read (a delay line: chunks in flight overlap, as on a long link; zero turns it off).
    pub fn latency(&self, delay: Duration) {
        self.shared.faults.send_modify(|f| f.latency = delay);
    }

    /// Limits server→client throughput, summed over all connections, to `bytes_per_second`
    /// (`None`: unlimited). Large chunks are split into pieces of 1/10 s worth, so a large reply
    /// streams steadily. The bucket starts full whenever this is called.
    ///
    /// # Panics
    /// On `Some(0)`: use [`stall`](Self::stall) to stop the flow.
    pub fn bandwidth(&self, bytes_per_second: Option<u64>) {
        assert_ne!(
            bytes_per_second,
            Some(0),
            "bandwidth must be at least 1 byte/s; stall(true) stops the flow"
        );
        *self.shared.bucket() = Bucket::full(Instant::now());
        self.shared
            .faults
            .send_modify(|f| f.bandwidth = bytes_per_second);
    }

    /// Turns every fault off (cuts, stall, refusal, latency, bandwidth). Counters are kept.
    pub fn clear(&self) {
        *self.shared.bucket() = Bucket::full(Instant::now());
        self.shared.faults.send_modify(|f| *f = Faults::default());
    }

    /// What the proxy has done so far. A counter moves before its effect can be seen by a
    /// client (a reset or cut is counted before the socket closes).
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            accepted: c.accepted.load(Relaxed),
            refused: c.refused.load(Relaxed),
            upstream_failures: c.upstream_failures.load(Relaxed),
            live: c.live.load(Relaxed),
            client_to_server: c.client_to_server.load(Relaxed),
            server_to_client: c.server_to_client.load(Relaxed),
            resets: c.resets.load(Relaxed),
            cuts: c.cuts.load(Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the listener and the connection tasks: aborting it ends them all.
        self.task.abort();
    }
}

/// The faults switched on now.
#[derive(Debug, Clone, Default)]
struct Faults {
    stall: bool,
    latency: Duration,
    bandwidth: Option<u64>,
    refusal: Refusal,
    cut: Option<CutPlan>,
    /// Server bytes containing this reset the connection before they are forwarded.
    reset_containing: Option<Arc<[u8]>>,
}

impl Faults {
    fn refusing(&self, now: Instant) -> bool {
        match self.refusal {
            Refusal::Off => false,
            Refusal::Until(until) => now < until,
            Refusal::On => true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
enum Refusal {
    #[default]
    Off,
    Until(Instant),
    On,
}

#[derive(Debug, Clone, Copy)]
struct CutPlan {
    times: Times,
    after_body_bytes: usize,
    how: Cut,
}

#[derive(Debug, Clone, Copy)]
enum Times {
    /// This many more replies (never 0: the plan is removed instead).
    Count(usize),
    Every,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    upstream_failures: AtomicU64,
    live: AtomicU64,
    client_to_server: AtomicU64,
    server_to_client: AtomicU64,
    resets: AtomicU64,
    cuts: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    /// The switches; a `watch` so that stalled writers wake when the stall ends.
    faults: watch::Sender<Faults>,
    /// A generation number: every change resets the connections live at the time.
    resets: watch::Sender<u64>,
    bucket: Mutex<Bucket>,
    counters: Counters,
}

impl Shared {
    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // Never held across a panic point that matters: a poisoned bucket is still a bucket.
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one reply of the planned cuts, if any: (body bytes to let through, how).
    fn claim_cut(&self) -> Option<(usize, Cut)> {
        let mut claimed = None;
        self.faults.send_if_modified(|f| {
            if let Some(plan) = &mut f.cut {
                claimed = Some((plan.after_body_bytes, plan.how));
                if let Times::Count(left) = &mut plan.times {
                    *left -= 1;
                    if *left == 0 {
                        f.cut = None;
                    }
                }
            }
            false // nobody waits on the cut plan
        });
        claimed
    }
}

/// Token bucket for the bandwidth limit, on tokio time.
struct Bucket {
    /// Bytes that may go now; negative while pieces wait for their turn.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket {
            tokens: f64::INFINITY, // clamped to the depth of the rate on first use
            last: now,
        }
    }

    /// Takes `n` bytes' worth of tokens at `rate` bytes/s, in debt if need be; returns how long
    /// to wait before the piece may be written.
    fn take(&mut self, n: usize, rate: u64, now: Instant) -> Duration {
        let rate_f = rate as f64;
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate_f;
        self.tokens = (self.tokens + refill).min(piece(rate) as f64);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate_f)
        }
    }
}

/// Bytes a bandwidth-limited piece may hold, and the bucket's depth: 1/10 s of the rate.
fn piece(rate: u64) -> usize {
    usize::try_from(rate / 10).unwrap_or(usize::MAX).max(1)
}

/// Why a connection ended other than by both sides closing.
enum End {
    /// A side failed (reset, or a write to a closed peer): pass it on as a reset.
    Broken,
    /// `reset_all` or the start of a refusal.
    Reset,
    /// A planned cut, after its bytes went through.
    Cut(Cut),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here so that aborting this task drops, and so aborts, every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    shared.counters.accepted.fetch_add(1, Relaxed);
                    // Subscribed now: a reset_all from here on reaches this connection.
                    let resets = shared.resets.subscribe();
                    connections.spawn(serve(shared.clone(), client, resets));
                }
                // A connection aborted before accept, or out of descriptors: keep serving.
                Err(_) => sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Keeps [`Stats::live`] true however the connection task ends (aborts included).
struct Live(Arc<Shared>);

impl Live {
    fn enter(shared: &Arc<Shared>) -> Live {
        shared.counters.live.fetch_add(1, Relaxed);
        Live(shared.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.counters.live.fetch_sub(1, Relaxed);
    }
}

async fn serve(shared: Arc<Shared>, mut client: TcpStream, mut resets: watch::Receiver<u64>) {
    let _live = Live::enter(&shared);
    if shared.faults.borrow().refusing(Instant::now()) {
        shared.counters.refused.fetch_add(1, Relaxed);
        reset(client);
        return;
    }
    // No timeout of its own (it would move under paused time): a loopback connect ends at
    // once, and the task ends with the proxy anyway.
    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(upstream) => upstream,
        Err(_) => {
            shared.counters.upstream_failures.fetch_add(1, Relaxed);
            reset(client);
            return;
        }
    };
    // Whole chunks at once, no Nagle delay: timings in tests are the faults' own.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let end = {
        let (from_client, to_client) = client.split();
        let (from_server, to_server) = upstream.split();
        let (up_tx, up_rx) = mpsc::channel(IN_FLIGHT);
        let (down_tx, down_rx) = mpsc::channel(IN_FLIGHT);
        let pipes = async {
            tokio::try_join!(
                read_side(from_client, up_tx),
                write_side(to_server, up_rx, Direction::ToServer, &shared),
                read_side(from_server, down_tx),
                write_side(to_client, down_rx, Direction::ToClient, &shared),
            )
        };
        tokio::select! {
            ended = pipes => ended.err(),
            _ = resets.changed() => {
                shared.counters.resets.fetch_add(1, Relaxed);
                Some(End::Reset)
            }
        }
    };
    match end {
        None => {} // both sides closed; dropping closes ours
        Some(End::Cut(Cut::Close)) => {
            let _ = client.shutdown().await;
            let _ = upstream.shutdown().await;
            // Dropping with unread input would turn the FIN into a reset: let the bytes land.
            delivered(&client).await;
        }
        Some(End::Cut(Cut::Reset)) => {
            delivered(&client).await;
            reset(client);
            reset(upstream);
        }
        Some(End::Reset | End::Broken) => {
            reset(client);
            reset(upstream);
        }
    }
}

/// Closes `stream` with a TCP reset: SO_LINGER 0, then close.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Reads chunks and stamps them with the time they were read; ends at end of stream.
async fn read_side<R: AsyncRead + Unpin>(
    mut from: R,
    chunks: mpsc::Sender<(Instant, Vec<u8>)>,
) -> Result<(), End> {
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = from.read(&mut chunk).await.map_err(|_| End::Broken)?;
        if n == 0 {
            return Ok(()); // dropping `chunks` tells the writer
        }
        chunk.truncate(n);
        if chunks.send((Instant::now(), chunk)).await.is_err() {
            return Ok(()); // the writer has ended, and says why
        }
    }
}

/// Writes the chunks with the faults of `direction`, then passes the end of stream on.
async fn write_side<W: AsyncWrite + Unpin>(
    mut to: W,
    mut chunks: mpsc::Receiver<(Instant, Vec<u8>)>,
    direction: Direction,
    shared: &Shared,
) -> Result<(), End> {
    let mut faults = shared.faults.subscribe();
    let mut cutter = Cutter::default();
    // The last bytes forwarded, so that a pattern split across two chunks is found.
    let mut tail: Vec<u8> = Vec::new();
    while let Some((read_at, chunk)) = chunks.recv().await {
        let latency = faults.borrow().latency;
        if !latency.is_zero() {
            sleep_until(read_at + latency).await;
        }
        if direction == Direction::ToServer {
            to.write_all(&chunk).await.map_err(|_| End::Broken)?;
            let n = chunk.len() as u64;
            shared.counters.client_to_server.fetch_add(n, Relaxed);
            continue;
        }
        let pattern = faults.borrow().reset_containing.clone();
        if let Some(pattern) = pattern {
            tail.extend_from_slice(&chunk);
            if tail.windows(pattern.len()).any(|w| *w == *pattern) {
                shared.counters.cuts.fetch_add(1, Relaxed);
                return Err(End::Cut(Cut::Reset));
            }
            let keep = pattern.len() - 1;
            tail.drain(..tail.len().saturating_sub(keep));
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let (n, cut) = cutter.next(rest, shared);
            to_client(&mut to, &rest[..n], &mut faults, shared).await?;
            if let Some(how) = cut {
                shared.counters.cuts.fetch_add(1, Relaxed);
                return Err(End::Cut(how));
            }
            rest = &rest[n..];
        }
    }
    to.shutdown().await.map_err(|_| End::Broken)
}

/// Writes server bytes to a client, held while stalled and paced by the bandwidth limit.
async fn to_client<W: AsyncWrite + Unpin>(
    to: &mut W,
    mut bytes: &[u8],
    faults: &mut watch::Receiver<Faults>,
    shared: &Shared,
) -> Result<(), End> {
    while !bytes.is_empty() {
        // The sender lives in `shared`, so this waits for the stall to end, never fails.
        let rate = faults
            .wait_for(|f| !f.stall)
            .await
            .map_err(|_| End::Broken)?
            .bandwidth;
        let n = rate.map_or(bytes.len(), |rate| bytes.len().min(piece(rate)));
        if let Some(rate) = rate {
            let wait = shared.bucket().take(n, rate, Instant::now());
            if !wait.is_zero() {
                sleep(wait).await;
            }
        }
        to.write_all(&bytes[..n]).await.map_err(|_| End::Broken)?;
        shared
            .counters
            .server_to_client
            .fetch_add(n as u64, Relaxed);
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Finds HTTP response head ends in the server→client bytes and counts a claimed cut down.
#[derive(Default)]
struct Cutter {
    /// How many bytes of `HEAD_END` the bytes seen so far end with.
    matched: usize,
    /// A cut in progress: body bytes still to forward, and how it ends.
    cutting: Option<(usize, Cut)>,
}

impl Cutter {
    /// How many bytes of `rest` to forward next, and whether to cut right after them.
    fn next(&mut self, rest: &[u8], shared: &Shared) -> (usize, Option<Cut>) {
        if let Some((left, how)) = self.cutting {
            if left <= rest.len() {
                return (left, Some(how));
            }
            self.cutting = Some((left - rest.len(), how));
            return (rest.len(), None);
        }
        let Some(head_end) = self.find_head_end(rest) else {
            return (rest.len(), None);
        };
        let body = rest.len() - head_end;
        match shared.claim_cut() {
            Some((after, how)) if after <= body => (head_end + after, Some(how)),
            Some((after, how)) => {
                self.cutting = Some((after - body, how));
                (rest.len(), None)
            }
            None => (head_end, None),
        }
    }

    /// Index just past the first head end in `bytes`, counting bytes seen before.
    fn find_head_end(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            self.matched = if b == HEAD_END[self.matched] {
                self.matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.matched == HEAD_END.len() {
                self.matched = 0;
                return Some(i + 1);
            }
        }
        None
    }
}

/// Waits (in real time, at most `DELIVERY_LIMIT`) until the peer of `stream` has acknowledged
/// every byte written to it, so that a reset right after discards nothing it was sent.
async fn delivered(stream: &TcpStream) {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    // A blocking thread: it also keeps a paused clock from jumping while the kernel works.
    let _ = tokio::task::spawn_blocking(move || {
        let give_up = std::time::Instant::now() + DELIVERY_LIMIT;
        while unacknowledged(local, peer).is_some_and(|n| n > 0)
            && std::time::Instant::now() < give_up
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await;
}

/// Bytes written on the TCP connection `local`→`peer` that the peer has not acknowledged
/// (`tx_queue` in Linux's `/proc/net/tcp`); `None` where that cannot be read.
fn unacknowledged(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer) else {
        return None;
    };
    // The kernel prints the address as the native-endian value of its network-order bytes.
    let hex = |a: SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (local, peer) = (hex(local), hex(peer));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, l, r, _, queues, ..] if l == local && r == peer => {
                let tx_queue = queues.split(':').next()?;
                u64::from_str_radix(tx_queue, 16).ok()
            }
            _ => None,
        }
    })
}
