//! The driver task: runs the [`Session`] with a [`Transport`], does the I/O and the timers,
//! and hands data messages to local subscribers.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::reply::{Progress, ReplyReader};
use super::{ClientEvent, Command, ReplyTap};
use crate::bayeux::session::{
    Event, Failure, GapCause, ReplyPart, Request, RequestId, Session, SessionEvent, Termination,
    Verdict,
};
use crate::bayeux::{ChannelName, Message};
use crate::error::{Error, Result};
use crate::transport::{Transport, TransportError};

/// Most elements handled in a row from one reply before commands get a turn.
const ELEMENT_BUDGET: usize = 256;

struct LocalSubscriber {
    id: u64,
    patterns: Vec<ChannelName>,
    tx: mpsc::Sender<Box<Message>>,
}

/// A request in flight and how far its reply got.
struct Flight {
    id: RequestId,
    reader: ReplyReader,
    /// Elements of the reply seen so far, for errors.
    elements: usize,
}

/// How the driver reads replies.
pub(super) struct Limits {
    /// The longest the server may be silent while a reply body arrives.
    pub(super) silence: Duration,
    /// Messages larger than this are passed over (and reported as a gap).
    pub(super) max_message_bytes: usize,
}

pub(super) struct Driver {
    session: Session,
    transport: Arc<dyn Transport>,
    endpoint: Arc<str>,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    events: broadcast::Sender<ClientEvent>,
    subscribers: Vec<LocalSubscriber>,
    in_flight: Vec<Flight>,
    /// Where `poll_flights` starts, for fairness between the two requests.
    next_flight: usize,
    publishes: HashMap<u64, (ChannelName, oneshot::Sender<Result<()>>)>,
    disconnect_waiters: Vec<oneshot::Sender<()>>,
    tap: Option<ReplyTap>,
    /// An error of the client's own (not the session's) that ends it.
    pending_error: Option<Error>,
    limits: Limits,
    /// The failures of the current outage already logged at the default level: each
    /// distinct one is logged once, until the next successful connect.
    outage_log: std::collections::HashSet<String>,
}

/// Polls every flight; the first with progress wins, starting after the last winner.
fn poll_flights(
    flights: &mut [Flight],
    start: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<(usize, Progress)> {
    let n = flights.len();
    for k in (0..n).map(|i| (*start + i) % n) {
        if let Poll::Ready(p) = flights[k].reader.poll_progress(cx) {
            *start = k + 1;
            return Poll::Ready((k, p));
        }
    }
    Poll::Pending
}

impl Driver {
    pub(super) fn new(
        session: Session,
        transport: Arc<dyn Transport>,
        commands: mpsc::Receiver<Command>,
        events: broadcast::Sender<ClientEvent>,
        tap: Option<ReplyTap>,
        limits: Limits,
    ) -> Self {
        Driver {
            limits,
            outage_log: Default::default(),
            session,
            endpoint: transport.endpoint().into(),
            transport,
            commands,
            commands_open: true,
            events,
            subscribers: Vec::new(),
            in_flight: Vec::new(),
            next_flight: 0,
            publishes: HashMap::new(),
            disconnect_waiters: Vec::new(),
            tap,
            pending_error: None,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            if let Some(error) = self.drain_events().await {
                self.finish(error);
                return;
            }
            self.drop_closed_subscribers();
            let now = Instant::now();
            while let Some(req) = self.session.poll_request(now.into_std()) {
                self.start(req);
            }
            // Requests may have produced events (e.g. a publish refused before sending).
            if let Some(error) = self.drain_events().await {
                self.finish(error);
                return;
            }
            let wake = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => {
                        // Every handle is gone: nobody can read more messages.
                        self.commands_open = false;
                        self.session.disconnect();
                    }
                },
                (k, progress) = std::future::poll_fn(|cx| {
                    poll_flights(&mut self.in_flight, &mut self.next_flight, cx)
                }), if !self.in_flight.is_empty() => {
                    // Boxed: its state (a message on its way to a full subscriber) would
                    // otherwise be part of every idle session's driver.
                    Box::pin(self.progress(k, progress)).await;
                }
                _ = sleep_until_opt(wake) => {}
            }
        }
    }

    fn start(&mut self, req: Request) {
        let body = Message::encode_batch(&req.messages);
        tracing::trace!(request = ?req.id, slot = ?req.slot, messages = req.messages.len(), "sending");
        let send = self.transport.send(body);
        let deadline = Instant::from_std(req.deadline);
        let reader = ReplyReader::new(
            send,
            (deadline, req.budget),
            self.limits.silence,
            self.limits.max_message_bytes,
            self.tap.is_some(),
            self.endpoint.clone(),
        );
        self.in_flight.push(Flight {
            id: req.id,
            reader,
            elements: 0,
        });
    }

    /// Handles progress of flight `k`, then whatever more of the same reply is already
    /// there (up to a budget, so commands are not starved).
    async fn progress(&mut self, k: usize, mut progress: Progress) {
        for _ in 1..ELEMENT_BUDGET {
            if !self.handle_progress(k, progress).await {
                return;
            }
            // Only ask for more when it will be handled: an element taken is never dropped.
            let flight = &mut self.in_flight[k];
            match std::future::poll_fn(|cx| Poll::Ready(flight.reader.poll_progress(cx))).await {
                Poll::Ready(p) => progress = p,
                Poll::Pending => return,
            }
        }
        self.handle_progress(k, progress).await;
    }

    fn malformed(&self, message: String) -> Failure {
        Failure::from(TransportError::Malformed {
            url: self.endpoint.to_string(),
            message,
        })
    }

    fn fail(&mut self, id: RequestId, failure: Failure, now: std::time::Instant) {
        let text = failure.to_string();
        if self.outage_log.insert(text) {
            tracing::warn!("request failed: {failure}");
        } else {
            tracing::debug!(%failure, "request failed again");
        }
        self.session.reply(id, ReplyPart::Failed(failure), now);
    }

    /// Logs a session event; one that repeats a failure already logged in this outage is
    /// logged quietly.
    fn log(&mut self, event: &SessionEvent) {
        let cause = match event {
            SessionEvent::HandshakeFailed { cause, .. }
            | SessionEvent::ConnectionLost { cause } => Some(cause.to_string()),
            SessionEvent::Gap {
                cause: GapCause::ReplyLost(failure),
            } => Some(failure.to_string()),
            SessionEvent::Connected => {
                self.outage_log.clear();
                None
            }
            _ => None,
        };
        let repeated = cause.is_some_and(|text| !self.outage_log.insert(text));
        if repeated {
            tracing::debug!(?event, "session event (its failure was logged above)");
        } else {
            event.log();
        }
    }

    /// Hands progress of flight `k` to the session and does what it says. Returns whether
    /// flight `k` is still in flight.
    async fn handle_progress(&mut self, k: usize, progress: Progress) -> bool {
        let now = Instant::now().into_std();
        let id = self.in_flight[k].id;
        match progress {
            Progress::Head => {
                self.session.reply(id, ReplyPart::Head, now);
                true
            }
            Progress::Element(bytes) => {
                let flight = &mut self.in_flight[k];
                flight.elements += 1;
                match serde_json::from_slice::<Message>(&bytes) {
                    Ok(message) => {
                        let part = ReplyPart::Element {
                            message,
                            text: &bytes,
                        };
                        let verdict = self.session.reply(id, part, now);
                        self.follow(verdict).await;
                        true
                    }
                    Err(e) => {
                        let n = flight.elements;
                        let mut flight = self.in_flight.remove(k);
                        let excerpt: String =
                            String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into();
                        let failure = self.malformed(format!(
                            "message {n} of the reply: {e} (it starts {excerpt:?})"
                        ));
                        self.record(&mut flight, false);
                        self.fail(id, failure, now);
                        false
                    }
                }
            }
            Progress::TooLarge { size } => {
                let limit = self.limits.max_message_bytes;
                let verdict = self
                    .session
                    .reply(id, ReplyPart::TooLarge { size, limit }, now);
                self.follow(verdict).await;
                true
            }
            Progress::End => {
                let mut flight = self.in_flight.remove(k);
                if self.record(&mut flight, true) {
                    self.session.reply(id, ReplyPart::End, now);
                }
                false
            }
            Progress::Failed(error) => {
                let mut flight = self.in_flight.remove(k);
                self.record(&mut flight, false);
                self.fail(id, Failure::from(error), now);
                false
            }
        }
    }

    /// Does what the session said about a reply element.
    async fn follow(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Deliver(m) => self.dispatch(m).await,
            Verdict::Gap(cause) => self.emit(SessionEvent::Gap { cause }),
            Verdict::Duplicate | Verdict::Taken | Verdict::Ignored => {}
        }
    }

    /// Hands what a reply brought to the recorder, if there is one; false when recording
    /// failed (the client is then stopping).
    fn record(&mut self, flight: &mut Flight, complete: bool) -> bool {
        let Some(tap) = &mut self.tap else {
            return true;
        };
        let Some(body) = flight.reader.take_recorded(complete) else {
            return true;
        };
        match tap(&body) {
            Ok(()) => true,
            Err(source) => {
                self.fail_tap(source);
                false
            }
        }
    }

    /// An event of the driver's own (not the session's), logged and handed out.
    fn emit(&mut self, event: SessionEvent) {
        self.log(&event);
        let _ = self.events.send(ClientEvent::Session(event));
    }

    /// A reply that could not be recorded stops the client: recording is asked for
    /// because every message matters.
    fn fail_tap(&mut self, source: std::io::Error) {
        let error = Error::Record { source };
        tracing::error!("{error}");
        self.tap = None;
        self.pending_error = Some(error);
        self.session.disconnect();
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe { id, patterns, tx } => {
                for p in &patterns {
                    self.session.subscribe(p.clone());
                }
                self.subscribers.push(LocalSubscriber { id, patterns, tx });
            }
            Command::DropSubscriber { id } => self.remove_subscriber(id),
            Command::Publish {
                channel,
                data,
                done,
            } => {
                let pid = self.session.publish(channel.clone(), data);
                self.publishes.insert(pid, (channel, done));
            }
            Command::Disconnect { done } => {
                self.disconnect_waiters.push(done);
                self.session.disconnect();
            }
        }
    }

    fn remove_subscriber(&mut self, id: u64) {
        let Some(pos) = self.subscribers.iter().position(|s| s.id == id) else {
            return;
        };
        let gone = self.subscribers.swap_remove(pos);
        for p in gone.patterns {
            if !self.subscribers.iter().any(|s| s.patterns.contains(&p)) {
                self.session.unsubscribe(&p);
            }
        }
    }

    /// Subscribers whose stream was dropped while the command queue was full.
    fn drop_closed_subscribers(&mut self) {
        while let Some(s) = self.subscribers.iter().find(|s| s.tx.is_closed()) {
            let id = s.id;
            self.remove_subscriber(id);
        }
    }

    /// Handles every pending session event. Returns the termination error, if the session
    /// ended.
    async fn drain_events(&mut self) -> Option<Error> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(m) => Box::pin(self.dispatch(m)).await,
                Event::PublishAck {
                    publish_id,
                    successful,
                    error,
                } => {
                    if let Some((channel, done)) = self.publishes.remove(&publish_id) {
                        let _ = done.send(if successful {
                            Ok(())
                        } else {
                            Err(Error::PublishRefused {
                                channel: channel.to_string(),
                                error: error.unwrap_or_else(|| "no reason given".into()),
                            })
                        });
                    }
                }
                Event::Session(event) => {
                    self.emit(event);
                }
                Event::Terminated { reason } => {
                    let error = match reason {
                        Termination::Disconnected => {
                            tracing::info!("disconnected");
                            Error::Closed
                        }
                        Termination::Failed(e) => Error::Session(e),
                    };
                    return Some(self.pending_error.take().unwrap_or(error));
                }
            }
        }
        None
    }

    /// Hands `m` to every local subscriber with a matching pattern, waiting for buffer room
    /// (backpressure). Subscribers whose stream was dropped are removed.
    async fn dispatch(&mut self, m: Message) {
        let mut matching = self
            .subscribers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.patterns.iter().any(|p| p.matches(&m.channel)))
            .map(|(i, _)| i);
        // One subscriber is the common case: no list of targets to build.
        let (first, second) = (matching.next(), matching.next());
        let targets: Vec<usize> = match (first, second) {
            (None, _) => {
                tracing::debug!(channel = %m.channel, "message for no local subscriber");
                return;
            }
            (Some(i), None) => {
                if !send(&self.subscribers[i].tx, m).await {
                    let id = self.subscribers[i].id;
                    self.remove_subscriber(id);
                }
                return;
            }
            (Some(a), Some(b)) => [a, b].into_iter().chain(matching).collect(),
        };
        let mut closed = Vec::new();
        let mut m = Some(m);
        for (n, &i) in targets.iter().enumerate() {
            let msg = if n + 1 == targets.len() {
                m.take()
            } else {
                m.clone()
            };
            let Some(msg) = msg else { break };
            if !send(&self.subscribers[i].tx, msg).await {
                closed.push(self.subscribers[i].id);
            }
        }
        for id in closed {
            self.remove_subscriber(id);
        }
    }

    fn finish(mut self, error: Error) {
        // The end is the application's to report (its Terminated event says why): a feed
        // that logs in again after a refusal is recovering, not failing.
        tracing::debug!("client stopped: {error}");
        let error = Arc::new(error);
        for (_, (_, done)) in self.publishes.drain() {
            let _ = done.send(Err(Error::Closed));
        }
        let _ = self.events.send(ClientEvent::Terminated { error });
        for w in self.disconnect_waiters.drain(..) {
            let _ = w.send(());
        }
        // Dropping the senders ends every subscriber stream.
        self.subscribers.clear();
    }
}

/// Hands `m` to a subscriber, waiting for room when its buffer is full. False when the
/// subscriber is gone.
async fn send(tx: &mpsc::Sender<Box<Message>>, m: Message) -> bool {
    match tx.try_send(Box::new(m)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(m)) => tx.send(m).await.is_ok(),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
