use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::*;
use crate::backoff::BackoffConfig;

// ---- helpers ----

/// The tests hand replies over as the driver does, through [`Session::reply`].
impl Session {
    /// A whole reply, element by element, then its end. What the session says to deliver is
    /// queued as an [`Event::Message`], where the tests look for it.
    fn handle_reply(&mut self, id: RequestId, messages: Vec<Message>, now: Instant) {
        for message in messages {
            let text = serde_json::to_vec(&message).unwrap();
            let part = ReplyPart::Element {
                message,
                text: &text,
            };
            match self.reply(id, part, now) {
                Verdict::Deliver(m) => self.events.push_back(Event::Message(m)),
                Verdict::Gap(cause) => self.emit(SessionEvent::Gap { cause }),
                Verdict::Duplicate | Verdict::Taken | Verdict::Ignored => {}
            }
        }
        self.reply(id, ReplyPart::End, now);
    }

    fn handle_failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        assert_eq!(
            self.reply(id, ReplyPart::Failed(failure), now),
            Verdict::Taken
        );
    }

    fn reply_started(&mut self, id: RequestId, now: Instant) {
        assert_eq!(self.reply(id, ReplyPart::Head, now), Verdict::Taken);
    }

    /// One element of a reply as it arrives: a data message on `channel` whose text is
    /// `payload`.
    fn element(&mut self, id: RequestId, channel: &str, payload: &str, now: Instant) -> Verdict {
        let message = data(channel, payload);
        let text = serde_json::to_vec(&message).unwrap();
        let part = ReplyPart::Element {
            message,
            text: &text,
        };
        self.reply(id, part, now)
    }

    /// Whether the acknowledged-messages extension is on.
    fn dedupes(&self) -> bool {
        self.phase.ack().is_some()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg() -> SessionConfig {
    SessionConfig {
        backoff: BackoffConfig {
            initial: ms(500),
            max: ms(30_000),
            factor: 2.0,
            jitter: false,
        },
        ..SessionConfig::default()
    }
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

fn ch(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

fn timeout() -> Failure {
    Failure::new(FailureKind::Timeout, "no reply before the deadline")
}

fn refused() -> Failure {
    Failure::new(FailureKind::NotSent, "connection refused")
}

fn reset() -> Failure {
    Failure::new(FailureKind::Interrupted, "connection reset")
}

/// A failure as the HTTP transport reports an error status.
fn status(status: u16, body: &str) -> Failure {
    Failure::from(crate::transport::TransportError::Status {
        url: "http://h/cometd".into(),
        status,
        body: body.into(),
    })
}

fn advice(json: &str) -> Advice {
    serde_json::from_str(json).unwrap()
}

/// A successful reply to message `i` of `req`.
fn ok(req: &Request, i: usize) -> Message {
    let sent = &req.messages[i];
    let mut m = Message::new(sent.channel.clone());
    m.id = sent.id.clone();
    m.successful = Some(true);
    m.subscription = sent.subscription.clone();
    m
}

/// An unsuccessful reply to message `i` of `req`.
fn err(req: &Request, i: usize, error: &str) -> Message {
    let mut m = ok(req, i);
    m.successful = Some(false);
    m.error = Some(error.to_owned());
    m
}

fn with_advice(mut m: Message, json: &str) -> Message {
    m.advice = Some(advice(json));
    m
}

fn handshake_ok(req: &Request, client_id: &str) -> Vec<Message> {
    let mut m = with_advice(
        ok(req, 0),
        r#"{"reconnect":"retry","interval":0,"timeout":30000}"#,
    );
    m.client_id = Some(client_id.to_owned());
    vec![m]
}

fn data(channel: &str, payload: &str) -> Message {
    let mut m = Message::new(channel);
    m.data = Some(raw(payload));
    m
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn is_gap(e: &Event) -> bool {
    matches!(e, Event::Session(SessionEvent::Gap { .. }))
}

/// The gap causes among `evs`.
fn gaps(evs: &[Event]) -> Vec<GapCause> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Session(SessionEvent::Gap { cause }) => Some(cause.clone()),
            _ => None,
        })
        .collect()
}

/// The events other than gaps.
fn without_gaps(evs: Vec<Event>) -> Vec<Event> {
    evs.into_iter().filter(|e| !is_gap(e)).collect()
}

fn requests(s: &mut Session, now: Instant) -> Vec<Request> {
    std::iter::from_fn(|| s.poll_request(now)).collect()
}

fn channels(req: &Request) -> Vec<&str> {
    req.messages.iter().map(|m| m.channel.as_str()).collect()
}

fn subscriptions(req: &Request) -> Vec<String> {
    req.messages
        .iter()
        .filter(|m| m.channel == "/meta/subscribe")
        .flat_map(|m| {
            m.subscription
                .as_ref()
                .unwrap()
                .channels()
                .map(str::to_owned)
        })
        .collect()
}

fn timeout_advice(m: &Message) -> Option<u64> {
    m.advice.as_ref().and_then(|a| a.timeout)
}

/// Handshakes as `c1` at `t` (no subscriptions), answers the first connect and drains the
/// events; the next connect is due at `t`.
fn connected(t: Instant) -> Session {
    let mut s = Session::new(cfg(), t);
    let hs = s.poll_request(t).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t);
    let c = s.poll_request(t).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t);
    events(&mut s);
    s
}

/// Like `connected`, with `chans` subscribed and confirmed.
fn subscribed(t: Instant, chans: &[&str]) -> Session {
    let mut s = Session::new(cfg(), t);
    for c in chans {
        s.subscribe(ch(c));
    }
    let hs = s.poll_request(t).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t);
    let c = s.poll_request(t).unwrap();
    let sub = s.poll_request(t).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t);
    let replies = (0..sub.messages.len()).map(|i| ok(&sub, i)).collect();
    s.handle_reply(sub.id, replies, t);
    events(&mut s);
    s
}

// ---- handshake ----

#[test]
fn a_new_session_handshakes_at_once_with_version_long_polling_and_an_id() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    assert_eq!(s.state(), State::Unconnected);
    assert_eq!(s.poll_timeout(), Some(t0));
    let req = s.poll_request(t0).unwrap();
    assert_eq!(req.slot, Slot::LongPoll);
    assert_eq!(channels(&req), ["/meta/handshake"]);
    let m = &req.messages[0];
    assert_eq!(m.version.as_deref(), Some("1.0"));
    assert_eq!(
        m.supported_connection_types.as_deref(),
        Some(&["long-polling".to_owned()][..])
    );
    assert!(m.id.is_some());
    assert_eq!(m.client_id, None);
    assert_eq!(s.state(), State::Handshaking);
    assert!(s.poll_request(t0).is_none(), "one handshake at a time");
}

#[test]
fn the_handshake_carries_the_configured_ext_and_debug_output_hides_it() {
    let t0 = Instant::now();
    let config = SessionConfig {
        handshake_ext: Some(raw(r#"{"token":"s3cret"}"#)),
        ack: false,
        ..cfg()
    };
    assert!(!format!("{config:?}").contains("s3cret"));
    let mut s = Session::new(config.clone(), t0);
    let req = s.poll_request(t0).unwrap();
    assert_eq!(
        req.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"token":"s3cret"}"#)
    );
    assert!(!format!("{req:?}").contains("s3cret"));
    assert!(!format!("{s:?}").contains("s3cret"));
    // Asking for the acknowledged-messages extension adds to the application's ext.
    let mut s = Session::new(
        SessionConfig {
            ack: true,
            ..config
        },
        t0,
    );
    let req = s.poll_request(t0).unwrap();
    assert_eq!(
        req.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":true,"token":"s3cret"}"#)
    );
}

#[test]
fn messages_after_the_handshake_carry_the_client_id_and_fresh_increasing_ids() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    s.subscribe(ch("/v2/me/calls"));
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    assert_eq!(s.client_id(), Some("c1"));
    let reqs = requests(&mut s, t0);
    assert_eq!(reqs.len(), 2);
    let mut ids = vec![hs.messages[0].id.clone().unwrap().parse::<u64>().unwrap()];
    for m in reqs.iter().flat_map(|r| &r.messages) {
        assert_eq!(m.client_id.as_deref(), Some("c1"), "{}", m.channel);
        ids.push(m.id.as_ref().unwrap().parse().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
}

#[test]
fn a_successful_handshake_emits_handshaken_and_requests_the_first_connect() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "abc"), t0 + ms(5));
    assert_eq!(
        events(&mut s),
        [Event::Session(SessionEvent::Handshaken {
            client_id: "abc".into()
        })]
    );
    assert_eq!(s.state(), State::Connecting);
    let c = s.poll_request(t0 + ms(5)).unwrap();
    assert_eq!(channels(&c), ["/meta/connect"]);
    assert_eq!(
        c.messages[0].connection_type.as_deref(),
        Some("long-polling")
    );
}

#[test]
fn a_handshake_reply_without_client_id_counts_as_a_failure() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, vec![ok(&hs, 0)], t0);
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::Session(SessionEvent::HandshakeFailed {
            attempt: 1,
            ..
        })]
    ));
    assert_eq!(s.client_id(), None);
    assert_eq!(s.state(), State::Backoff);
}

// ---- connect ----

#[test]
fn first_connect_after_handshake_carries_timeout_zero() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    let c = s.poll_request(t0).unwrap();
    assert_eq!(timeout_advice(&c.messages[0]), Some(0));
    assert_eq!(c.deadline, t0 + ms(10_000), "holds 0 ms + network delay");
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    let next = s.poll_request(t0).unwrap();
    assert_eq!(timeout_advice(&next.messages[0]), None);
    assert_eq!(next.deadline, t0 + ms(30_000 + 10_000));
}

#[test]
fn the_connect_deadline_is_advice_timeout_plus_max_network_delay() {
    let t0 = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            max_network_delay: ms(2_000),
            ..cfg()
        },
        t0,
    );
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(hs.deadline, t0 + ms(2_000));
    let mut reply = handshake_ok(&hs, "c1");
    reply[0].advice = Some(advice(r#"{"timeout":7000}"#));
    s.handle_reply(hs.id, reply, t0);
    let c = s.poll_request(t0).unwrap();
    assert_eq!(c.deadline, t0 + ms(2_000));
    s.handle_reply(c.id, vec![ok(&c, 0)], t0 + ms(10));
    let c2 = s.poll_request(t0 + ms(10)).unwrap();
    assert_eq!(c2.deadline, t0 + ms(10 + 7_000 + 2_000));
}

#[test]
fn without_server_timeout_advice_the_connect_deadline_assumes_thirty_seconds() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    let mut reply = handshake_ok(&hs, "c1");
    reply[0].advice = None;
    s.handle_reply(hs.id, reply, t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    let c2 = s.poll_request(t0).unwrap();
    assert_eq!(c2.deadline, t0 + ms(40_000));
}

#[test]
fn only_one_connect_is_outstanding_at_a_time() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    assert_eq!(channels(&c), ["/meta/connect"]);
    assert!(s.poll_request(t0 + ms(60_000)).is_none());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn the_next_connect_waits_advice_interval_after_a_connect_reply() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(ok(&c, 0), r#"{"interval":2500}"#);
    s.handle_reply(c.id, vec![reply], t0 + ms(100));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(2_600)));
    assert!(s.poll_request(t0 + ms(2_599)).is_none());
    let next = s.poll_request(t0 + ms(2_600)).unwrap();
    assert_eq!(channels(&next), ["/meta/connect"]);
}

#[test]
fn connected_is_emitted_after_the_first_successful_connect_only() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    events(&mut s);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    assert_eq!(events(&mut s), [Event::Session(SessionEvent::Connected)]);
    assert_eq!(s.state(), State::Connected);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    assert_eq!(events(&mut s), []);
}

// ---- advice ----

#[test]
fn advice_from_any_reply_persists_until_replaced() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    s.subscribe(ch("/a"));
    let hs = s.poll_request(t0).unwrap();
    let mut reply = handshake_ok(&hs, "c1");
    reply[0].advice = Some(advice(r#"{"interval":1000,"timeout":20000}"#));
    s.handle_reply(hs.id, reply, t0);
    let c = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    // The connect reply has no advice: the handshake's interval still applies.
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    assert!(s.poll_request(t0 + ms(999)).is_none());
    let c2 = s.poll_request(t0 + ms(1_000)).unwrap();
    assert_eq!(c2.deadline, t0 + ms(1_000 + 20_000 + 10_000));
    // A subscribe reply replaces the interval only; the timeout stays.
    let sub_reply = with_advice(ok(&sub, 0), r#"{"interval":4000}"#);
    s.handle_reply(sub.id, vec![sub_reply], t0 + ms(1_000));
    s.handle_reply(c2.id, vec![ok(&c2, 0)], t0 + ms(2_000));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(6_000)));
    let c3 = s.poll_request(t0 + ms(6_000)).unwrap();
    assert_eq!(c3.deadline, t0 + ms(6_000 + 20_000 + 10_000));
}

#[test]
fn reconnect_handshake_advice_rehandshakes_and_restores_every_subscription() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/a", "/b", "/c"]);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(
        err(&c, 0, "402::Unknown client"),
        r#"{"reconnect":"handshake"}"#,
    );
    s.handle_reply(c.id, vec![reply], t0 + ms(10));
    assert_eq!(s.state(), State::Handshaking);
    assert_eq!(s.client_id(), None);
    let hs = s.poll_request(t0 + ms(10)).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0 + ms(20));
    let reqs = requests(&mut s, t0 + ms(20));
    assert_eq!(reqs.len(), 2);
    assert_eq!(timeout_advice(&reqs[0].messages[0]), Some(0));
    let sub = &reqs[1];
    assert_eq!(sub.slot, Slot::Batch);
    assert_eq!(subscriptions(sub), ["/a", "/b", "/c"]);
    assert!(sub
        .messages
        .iter()
        .all(|m| m.client_id.as_deref() == Some("c2")));
    s.handle_reply(
        sub.id,
        vec![ok(sub, 0), err(sub, 1, "403::denied"), ok(sub, 2)],
        t0 + ms(30),
    );
    let evs = events(&mut s);
    assert!(evs.contains(&Event::Session(SessionEvent::Rehandshaken {
        client_id: "c2".into()
    })));
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(
                e,
                Event::Session(SessionEvent::Subscribed { .. })
                    | Event::Session(SessionEvent::SubscriptionDenied { .. })
            ))
            .collect::<Vec<_>>(),
        [
            &Event::Session(SessionEvent::Subscribed { channel: ch("/a") }),
            &Event::Session(SessionEvent::SubscriptionDenied {
                channel: ch("/b"),
                error: "403::denied".into()
            }),
            &Event::Session(SessionEvent::Subscribed { channel: ch("/c") }),
        ]
    );
}

#[test]
fn a_subscribe_reply_with_handshake_advice_rehandshakes() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let _long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    // Successful, but the server asks for a new session.
    let reply = with_advice(ok(&sub, 0), r#"{"reconnect":"handshake"}"#);
    s.handle_reply(sub.id, vec![reply], t0);
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

#[test]
fn reconnect_none_on_a_connect_reply_terminates() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(err(&c, 0, "403::go away"), r#"{"reconnect":"none"}"#);
    s.handle_reply(c.id, vec![reply], t0);
    assert_eq!(
        events(&mut s),
        [Event::Terminated {
            reason: Termination::Failed(SessionError::ReconnectNone {
                error: Some("403::go away".into())
            })
        }]
    );
    assert_eq!(s.state(), State::Terminated);
    assert!(s.poll_request(t0 + ms(100_000)).is_none());
}

#[test]
fn a_restored_subscription_is_not_sent_twice_in_one_client_id() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/a"]);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(ok(&c, 0), r#"{"reconnect":"handshake"}"#);
    s.handle_reply(c.id, vec![reply], t0);
    let hs = s.poll_request(t0).unwrap();
    s.subscribe(ch("/a")); // asked again while handshaking
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    let reqs = requests(&mut s, t0);
    assert_eq!(subscriptions(&reqs[1]), ["/a"]);
    s.subscribe(ch("/a")); // asked again while pending
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(reqs[1].id, vec![ok(&reqs[1], 0)], t0);
    s.subscribe(ch("/a")); // asked again when subscribed
    assert!(s.poll_request(t0).is_none());
    let subscribed_events = events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, Event::Session(SessionEvent::Subscribed { .. })))
        .count();
    assert_eq!(subscribed_events, 1);
}

// ---- unknown client ----

#[test]
fn an_unknown_client_error_on_connect_rehandshakes_without_advice() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "402::Unknown client")], t0);
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    assert!(
        events(&mut s).contains(&Event::Session(SessionEvent::Rehandshaken {
            client_id: "c2".into()
        }))
    );
}

#[test]
fn session_unknown_on_several_replies_of_one_batch_rehandshakes_once() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    s.subscribe(ch("/b"));
    let long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_reply(
        sub.id,
        vec![
            err(&sub, 0, "402::session_unknown"),
            err(&sub, 1, "402::session_unknown"),
        ],
        t0,
    );
    let evs = events(&mut s);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Event::Session(SessionEvent::SubscriptionDenied { .. }))),
        "an unknown client is not a denial: {evs:?}"
    );
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    assert!(s.poll_request(t0).is_none());
    // The abandoned long poll answering with the same error changes nothing.
    s.handle_reply(
        long_poll.id,
        vec![err(&long_poll, 0, "402::session_unknown")],
        t0,
    );
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    let reqs = requests(&mut s, t0);
    assert_eq!(reqs.len(), 2);
    assert_eq!(subscriptions(&reqs[1]), ["/a", "/b"]);
    let rehandshakes = events(&mut s)
        .iter()
        .filter(|e| matches!(e, Event::Session(SessionEvent::Rehandshaken { .. })))
        .count();
    assert_eq!(rehandshakes, 1);
}

#[test]
fn an_unknown_client_error_on_a_publish_reply_rehandshakes() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let id = s.publish(ch("/service/x"), raw("{}"));
    let _long_poll = s.poll_request(t0).unwrap();
    let p = s.poll_request(t0).unwrap();
    s.handle_reply(p.id, vec![err(&p, 0, "401:c1:Unknown client")], t0);
    assert_eq!(
        events(&mut s),
        [
            Event::PublishAck {
                publish_id: id,
                successful: false,
                error: Some("401:c1:Unknown client".into())
            },
            Event::Session(SessionEvent::Forgotten {
                cause: Cause::Unsuccessful {
                    error: Some("401:c1:Unknown client".into())
                },
                unconnected: false
            })
        ]
    );
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

#[test]
fn http_403_whose_body_says_unknown_client_rehandshakes_instead_of_terminating() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let body = r#"[{"channel":"/meta/connect","successful":false,"error":"403::Unknown client"}]"#;
    s.handle_failure(c.id, status(403, body), t0);
    assert_ne!(s.state(), State::Terminated);
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

#[test]
fn http_401_that_is_not_an_unknown_client_error_terminates_unauthorized() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, status(401, "<html>Unauthorized</html>"), t0);
    assert_eq!(
        events(&mut s),
        [Event::Terminated {
            reason: Termination::Failed(SessionError::Unauthorized {
                failure: status(401, "<html>Unauthorized</html>")
            })
        }]
    );
    assert!(s.poll_request(t0 + ms(100_000)).is_none());
}

#[test]
fn http_403_on_the_handshake_terminates_unauthorized() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_failure(hs.id, status(403, ""), t0);
    assert_eq!(
        events(&mut s),
        [Event::Terminated {
            reason: Termination::Failed(SessionError::Unauthorized {
                failure: status(403, "")
            })
        }]
    );
}

// ---- backoff ----

#[test]
fn failed_connects_back_off_exponentially_and_reset_after_a_success() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let mut now = t0;
    for expected in [500, 1_000, 2_000] {
        let c = s.poll_request(now).unwrap();
        assert_eq!(channels(&c), ["/meta/connect"]);
        s.handle_failure(c.id, refused(), now);
        assert_eq!(s.state(), State::Backoff);
        assert_eq!(s.poll_timeout(), Some(now + ms(expected)));
        assert!(s.poll_request(now + ms(expected - 1)).is_none());
        now += ms(expected);
    }
    let c = s.poll_request(now).unwrap();
    assert_eq!(timeout_advice(&c.messages[0]), Some(0), "reconnect asks 0");
    s.handle_reply(c.id, vec![ok(&c, 0)], now);
    assert_eq!(s.state(), State::Connected);
    let c = s.poll_request(now).unwrap();
    s.handle_failure(c.id, timeout(), now);
    assert_eq!(s.poll_timeout(), Some(now + ms(500)));
}

#[test]
fn an_unsuccessful_connect_without_advice_backs_off() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "500::oops")], t0);
    assert_eq!(s.state(), State::Backoff);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
    assert!(s.poll_request(t0).is_none());
}

#[test]
fn connection_lost_is_emitted_once_per_outage() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let mut now = t0;
    for _ in 0..3 {
        let c = s.poll_request(now).unwrap();
        s.handle_failure(c.id, reset(), now);
        now += ms(10_000);
    }
    let evs = events(&mut s);
    // Each lost reply may have carried messages; the outage is reported once.
    assert_eq!(gaps(&evs).len(), 3);
    assert_eq!(
        without_gaps(evs),
        [Event::Session(SessionEvent::ConnectionLost {
            cause: Cause::Failed(reset())
        })]
    );
    let c = s.poll_request(now).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], now);
    assert_eq!(events(&mut s), [Event::Session(SessionEvent::Connected)]);
    let c = s.poll_request(now).unwrap();
    s.handle_failure(c.id, timeout(), now);
    assert!(matches!(
        without_gaps(events(&mut s)).as_slice(),
        [Event::Session(SessionEvent::ConnectionLost { .. })]
    ));
}

#[test]
fn unconnected_longer_than_timeout_interval_and_max_interval_handshakes_instead() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    let mut reply = handshake_ok(&hs, "c1");
    reply[0].advice = Some(advice(
        r#"{"reconnect":"retry","timeout":1000,"interval":0,"maxInterval":2000}"#,
    ));
    s.handle_reply(hs.id, reply, t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0); // last success at t0; limit 3 s
                                               // Fails at 1 s: retry at 1.5 s, within the limit.
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, timeout(), t0 + ms(1_000));
    let c = s.poll_request(t0 + ms(1_500)).unwrap();
    assert_eq!(channels(&c), ["/meta/connect"]);
    // Fails at 2 s: retry at 3 s, exactly at the limit: still a connect.
    s.handle_failure(c.id, timeout(), t0 + ms(2_000));
    let c = s.poll_request(t0 + ms(3_000)).unwrap();
    assert_eq!(channels(&c), ["/meta/connect"]);
    // Fails at 3 s: a retry at 5 s would be past the limit: handshake then.
    s.handle_failure(c.id, timeout(), t0 + ms(3_000));
    assert_eq!(s.client_id(), None);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(5_000)));
    let hs = s.poll_request(t0 + ms(5_000)).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

#[test]
fn a_connect_reply_that_began_shows_the_session_alive_even_when_cut() {
    let t0 = Instant::now();
    let mut s = connected(t0); // limit 40 s from the last time the server was heard
                               // Each reply begins (the server answered the session), then is cut: the limit counts
                               // from the last beginning, so the session is kept however long that goes on.
    let (mut now, mut heard) = (t0, t0);
    for _ in 0..30 {
        let c = s.poll_request(now).unwrap();
        assert_eq!(channels(&c), ["/meta/connect"], "still the same session");
        heard = now + ms(2_000);
        s.reply_started(c.id, heard);
        s.handle_failure(c.id, reset(), heard);
        now = s.poll_timeout().unwrap();
    }
    assert_eq!(s.client_id(), Some("c1"));
    // Once replies stop beginning, the rule counts from the last one: a retry due within
    // 40 s of it is a connect, the first one due later a handshake.
    loop {
        let c = s.poll_request(now).unwrap();
        if channels(&c) == ["/meta/handshake"] {
            break;
        }
        assert!(now.duration_since(heard) <= ms(40_000));
        s.handle_failure(c.id, refused(), now);
        now = s.poll_timeout().unwrap();
    }
    assert!(
        now.duration_since(heard) > ms(40_000),
        "{:?}",
        now.duration_since(heard)
    );
}

#[test]
fn max_interval_defaults_to_ten_seconds_when_the_server_never_said() {
    let t0 = Instant::now();
    let mut s = connected(t0); // timeout 30 s, interval 0, maxInterval unknown: limit 40 s
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, timeout(), t0 + ms(39_000));
    let c = s.poll_request(t0 + ms(39_500)).unwrap();
    assert_eq!(channels(&c), ["/meta/connect"]);
    s.handle_failure(c.id, timeout(), t0 + ms(39_500));
    let hs = s.poll_request(t0 + ms(40_500)).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

// ---- handshake failures ----

#[test]
fn failed_handshakes_back_off_and_count_attempts() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_failure(hs.id, refused(), t0);
    assert_eq!(s.state(), State::Backoff);
    assert!(s.poll_request(t0 + ms(499)).is_none());
    let hs = s.poll_request(t0 + ms(500)).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    s.handle_reply(hs.id, vec![err(&hs, 0, "500::busy")], t0 + ms(500));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(1_500)));
    assert_eq!(
        events(&mut s),
        [
            Event::Session(SessionEvent::HandshakeFailed {
                attempt: 1,
                cause: Cause::Failed(refused()),
                retry_in: Some(ms(500))
            }),
            Event::Session(SessionEvent::HandshakeFailed {
                attempt: 2,
                cause: Cause::Unsuccessful {
                    error: Some("500::busy".into())
                },
                retry_in: Some(ms(1_000))
            }),
        ]
    );
}

#[test]
fn a_handshake_reply_with_reconnect_none_terminates_handshake_refused() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    let reply = with_advice(
        err(&hs, 0, "403::bad credentials"),
        r#"{"reconnect":"none"}"#,
    );
    s.handle_reply(hs.id, vec![reply], t0);
    assert_eq!(
        events(&mut s),
        [
            Event::Session(SessionEvent::HandshakeFailed {
                attempt: 1,
                cause: Cause::Unsuccessful {
                    error: Some("403::bad credentials".into())
                },
                retry_in: None
            }),
            Event::Terminated {
                reason: Termination::Failed(SessionError::HandshakeRefused {
                    error: "403::bad credentials".into()
                })
            }
        ]
    );
    assert!(s.poll_request(t0 + ms(100_000)).is_none());
}

#[test]
fn initial_handshake_attempts_run_out_into_unreachable() {
    let t0 = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            initial_handshake_attempts: Some(2),
            ..cfg()
        },
        t0,
    );
    let hs = s.poll_request(t0).unwrap();
    s.handle_failure(hs.id, timeout(), t0);
    let hs = s.poll_request(t0 + ms(500)).unwrap();
    s.handle_failure(hs.id, refused(), t0 + ms(500));
    let evs = events(&mut s);
    assert_eq!(
        evs.last(),
        Some(&Event::Terminated {
            reason: Termination::Failed(SessionError::Unreachable {
                attempts: 2,
                last: Cause::Failed(refused())
            })
        })
    );
    assert!(matches!(
        evs[1],
        Event::Session(SessionEvent::HandshakeFailed {
            attempt: 2,
            retry_in: None,
            ..
        })
    ));
    assert!(s.poll_request(t0 + ms(100_000)).is_none());
}

#[test]
fn the_attempt_limit_does_not_apply_once_a_handshake_succeeded() {
    let t0 = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            initial_handshake_attempts: Some(1),
            ..cfg()
        },
        t0,
    );
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "402::Unknown client")], t0);
    // Forgotten before its first connect: the handshake waits a backoff.
    let t1 = t0 + ms(500);
    let hs = s.poll_request(t1).unwrap();
    s.handle_failure(hs.id, timeout(), t1);
    assert_eq!(s.state(), State::Backoff);
    assert!(s.poll_request(t1 + ms(500)).is_some());
}

// ---- sessions the server forgot or ended ----

fn forgotten(evs: &[Event]) -> Vec<(Cause, bool)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Session(SessionEvent::Forgotten { cause, unconnected }) => {
                Some((cause.clone(), *unconnected))
            }
            _ => None,
        })
        .collect()
}

fn disconnect_from_server() -> Message {
    let mut m = Message::new("/meta/disconnect");
    m.successful = Some(true);
    m
}

#[test]
fn a_disconnect_sent_by_the_server_ends_the_session_and_a_new_one_restores_the_subscriptions() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/a"]);
    let c = s.poll_request(t0).unwrap();
    // As a CometD server ending a session answers its held connect: the disconnect, and
    // a connect answer advising not to reconnect, which is moot once the session is over.
    let connect = with_advice(ok(&c, 0), r#"{"reconnect":"none"}"#);
    s.handle_reply(
        c.id,
        vec![data("/a", "1"), disconnect_from_server(), connect],
        t0,
    );
    let evs = events(&mut s);
    assert_eq!(evs[0], Event::Message(data("/a", "1")));
    assert!(evs.contains(&Event::Session(SessionEvent::ConnectionLost {
        cause: Cause::EndedByServer
    })));
    assert_eq!(forgotten(&evs), [(Cause::EndedByServer, false)]);
    assert_ne!(s.state(), State::Terminated);
    // Ended on purpose: the new handshake waits a backoff.
    assert!(s.poll_request(t0 + ms(499)).is_none());
    let t1 = t0 + ms(500);
    let hs = s.poll_request(t1).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t1);
    let reqs = requests(&mut s, t1);
    assert_eq!(subscriptions(&reqs[1]), ["/a"]);
    let evs = events(&mut s);
    assert!(evs.contains(&Event::Session(SessionEvent::Rehandshaken {
        client_id: "c2".into()
    })));
    assert_eq!(gaps(&evs), [GapCause::Rehandshake]);
}

#[test]
fn a_disconnect_sent_by_the_server_on_a_subscribe_reply_ends_the_session_too() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let _long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_reply(sub.id, vec![disconnect_from_server()], t0);
    assert_eq!(forgotten(&events(&mut s)), [(Cause::EndedByServer, false)]);
    let hs = s.poll_request(t0 + ms(500)).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

#[test]
fn sessions_forgotten_before_their_first_connect_are_handshaken_again_after_a_growing_backoff() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    let unknown = |s: &mut Session, t: Instant| {
        let c = s.poll_request(t).unwrap();
        assert_eq!(channels(&c), ["/meta/connect"]);
        let reply = with_advice(
            err(&c, 0, "402::Unknown client"),
            r#"{"reconnect":"handshake","interval":0}"#,
        );
        s.handle_reply(c.id, vec![reply], t);
        forgotten(&events(s))
    };
    let unknown_client = Cause::Unsuccessful {
        error: Some("402::Unknown client".into()),
    };
    assert_eq!(unknown(&mut s, t0), [(unknown_client.clone(), true)]);
    // The handshake waits 500 ms, then 1 s after the next such session: a server that
    // forgets every new session is not asked again and again at once.
    assert!(s.poll_request(t0 + ms(499)).is_none());
    let t1 = t0 + ms(500);
    let hs = s.poll_request(t1).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t1);
    assert_eq!(unknown(&mut s, t1), [(unknown_client.clone(), true)]);
    assert!(s.poll_request(t1 + ms(999)).is_none());
    let t2 = t1 + ms(1_000);
    let hs = s.poll_request(t2).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c3"), t2);
    // Once a connect succeeded, a forgotten session is handshaken again at once, and the
    // backoff starts over.
    let c = s.poll_request(t2).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t2);
    assert_eq!(unknown(&mut s, t2), [(unknown_client, false)]);
    let hs = s.poll_request(t2).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
}

// ---- stale replies and data ----

#[test]
fn a_connect_reply_with_a_stale_id_is_dropped_but_its_data_is_delivered() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let mut stale = with_advice(err(&c, 0, "500::x"), r#"{"reconnect":"none"}"#);
    stale.id = Some("999999".into());
    s.handle_reply(
        c.id,
        vec![
            data("/v2/me/calls", "1"),
            stale,
            data("/v2/me/calls", "2"),
            ok(&c, 0),
        ],
        t0,
    );
    assert_eq!(
        events(&mut s),
        [
            Event::Message(data("/v2/me/calls", "1")),
            Event::Message(data("/v2/me/calls", "2")),
        ]
    );
    assert_eq!(s.state(), State::Connected);
    assert!(s.poll_request(t0).is_some());
}

#[test]
fn a_reply_with_only_a_stale_connect_answer_counts_as_a_failed_connect() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let mut stale = ok(&c, 0);
    stale.id = Some("1".into());
    s.handle_reply(c.id, vec![stale], t0);
    assert_eq!(s.state(), State::Backoff);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
}

#[test]
fn replies_to_abandoned_requests_deliver_data_and_ignore_meta() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let old_connect = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_reply(sub.id, vec![err(&sub, 0, "402::Unknown client")], t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    events(&mut s);
    let none = with_advice(err(&old_connect, 0, "500::x"), r#"{"reconnect":"none"}"#);
    s.handle_reply(
        old_connect.id,
        vec![data("/v2/me/calls", "7"), none, ok(&old_connect, 0)],
        t0,
    );
    assert_eq!(events(&mut s), [Event::Message(data("/v2/me/calls", "7"))]);
    assert_eq!(s.state(), State::Connecting);
    assert_eq!(s.client_id(), Some("c2"));
}

#[test]
fn data_is_delivered_for_any_request_until_terminated_and_then_never() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let long_poll = s.poll_request(t0).unwrap();
    assert_eq!(
        s.element(long_poll.id, "/x", "0", t0),
        Verdict::Deliver(data("/x", "0"))
    );
    s.disconnect();
    // Abandoned, but its data still counts.
    assert_eq!(
        s.element(long_poll.id, "/x", "1", t0),
        Verdict::Deliver(data("/x", "1"))
    );
    s.handle_reply(long_poll.id, vec![data("/x", "1")], t0);
    assert_eq!(events(&mut s), [Event::Message(data("/x", "1"))]);
    let d = s.poll_request(t0).unwrap();
    s.handle_reply(d.id, vec![ok(&d, 0)], t0);
    assert_eq!(s.state(), State::Terminated);
    events(&mut s);
    // Once terminated, nothing of a reply is delivered.
    assert_eq!(s.element(long_poll.id, "/x", "2", t0), Verdict::Ignored);
    s.handle_reply(long_poll.id, vec![data("/x", "2")], t0);
    assert_eq!(events(&mut s), []);
}

#[test]
fn data_before_and_after_the_connect_reply_is_delivered_in_order() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(ok(&c, 0), r#"{"reconnect":"handshake"}"#);
    s.handle_reply(
        c.id,
        vec![data("/x", "1"), data("/x", "2"), reply, data("/x", "3")],
        t0,
    );
    let msgs: Vec<String> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.data.unwrap().get().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(msgs, ["1", "2", "3"]);
}

#[test]
fn data_and_acks_in_replies_to_other_requests_are_delivered_in_order() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let id = s.publish(ch("/service/echo"), raw(r#"{"q":1}"#));
    let _long_poll = s.poll_request(t0).unwrap();
    let p = s.poll_request(t0).unwrap();
    assert_eq!(p.slot, Slot::Batch);
    assert_eq!(p.messages[0].data.as_ref().unwrap().get(), r#"{"q":1}"#);
    s.handle_reply(
        p.id,
        vec![
            data("/v2/me/calls", "1"),
            ok(&p, 0),
            data("/v2/me/calls", "2"),
        ],
        t0,
    );
    // Data is handed out as it arrives, the acknowledgement once the reply is whole (a reply
    // cut short acknowledges nothing): the order the driver has always produced. Before the
    // session took replies element by element, this test handed it the batch whole and saw
    // the ack between the two messages, an order no client ever gave a user.
    assert_eq!(
        events(&mut s),
        [
            Event::Message(data("/v2/me/calls", "1")),
            Event::Message(data("/v2/me/calls", "2")),
            Event::PublishAck {
                publish_id: id,
                successful: true,
                error: None
            },
        ]
    );
}

#[test]
fn data_in_a_terminating_batch_comes_before_terminated() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let reply = with_advice(ok(&c, 0), r#"{"reconnect":"none"}"#);
    s.handle_reply(c.id, vec![reply, data("/x", "1")], t0);
    assert_eq!(
        events(&mut s),
        [
            Event::Message(data("/x", "1")),
            Event::Terminated {
                reason: Termination::Failed(SessionError::ReconnectNone { error: None })
            }
        ]
    );
}

// ---- the other slot ----

#[test]
fn queued_subscribes_unsubscribes_and_publishes_go_in_one_batch() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/old"]);
    s.subscribe(ch("/a"));
    s.subscribe(ch("/b"));
    s.unsubscribe(&ch("/old"));
    let p = s.publish(ch("/service/p"), raw("1"));
    let _long_poll = s.poll_request(t0).unwrap();
    let batch = s.poll_request(t0).unwrap();
    assert_eq!(batch.slot, Slot::Batch);
    assert_eq!(batch.deadline, t0 + ms(10_000));
    assert_eq!(
        channels(&batch),
        [
            "/meta/unsubscribe",
            "/meta/subscribe",
            "/meta/subscribe",
            "/service/p"
        ]
    );
    assert!(s.poll_request(t0).is_none());
    let replies = (0..4).map(|i| ok(&batch, i)).collect();
    s.handle_reply(batch.id, replies, t0);
    assert_eq!(
        events(&mut s),
        [
            Event::Session(SessionEvent::Unsubscribed {
                channel: ch("/old")
            }),
            Event::Session(SessionEvent::Subscribed { channel: ch("/a") }),
            Event::Session(SessionEvent::Subscribed { channel: ch("/b") }),
            Event::PublishAck {
                publish_id: p,
                successful: true,
                error: None
            },
        ]
    );
    let desired: Vec<&str> = s.desired_subscriptions().map(|c| c.as_str()).collect();
    assert_eq!(desired, ["/a", "/b"]);
}

#[test]
fn only_one_other_request_is_in_flight_and_the_rest_waits() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let _long_poll = s.poll_request(t0).unwrap();
    let first = s.poll_request(t0).unwrap();
    s.subscribe(ch("/b"));
    s.publish(ch("/service/p"), raw("1"));
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(first.id, vec![ok(&first, 0)], t0);
    let second = s.poll_request(t0).unwrap();
    assert_eq!(channels(&second), ["/meta/subscribe", "/service/p"]);
    assert_eq!(subscriptions(&second), ["/b"]);
}

#[test]
fn a_subscribe_failed_in_transport_is_retried_after_the_next_successful_connect() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_failure(sub.id, reset(), t0);
    assert!(
        s.poll_request(t0 + ms(1_000)).is_none(),
        "held until a connect"
    );
    assert!(s.desired_subscriptions().any(|c| c.as_str() == "/a"));
    s.handle_reply(long_poll.id, vec![ok(&long_poll, 0)], t0 + ms(1_000));
    let reqs = requests(&mut s, t0 + ms(1_000));
    assert_eq!(reqs.len(), 2);
    assert_eq!(subscriptions(&reqs[1]), ["/a"]);
}

#[test]
fn a_subscribe_the_server_did_not_answer_is_retried_after_the_next_connect() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_reply(sub.id, vec![], t0);
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(long_poll.id, vec![ok(&long_poll, 0)], t0);
    let reqs = requests(&mut s, t0);
    assert_eq!(subscriptions(&reqs[1]), ["/a"]);
}

#[test]
fn a_failed_publish_request_acks_unsuccessful() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let id = s.publish(ch("/service/p"), raw("1"));
    let _long_poll = s.poll_request(t0).unwrap();
    let p = s.poll_request(t0).unwrap();
    s.handle_failure(p.id, timeout(), t0 + ms(10_000));
    assert_eq!(
        events(&mut s),
        [Event::PublishAck {
            publish_id: id,
            successful: false,
            error: Some("no reply before the deadline".into())
        }]
    );
    assert!(s.poll_request(t0 + ms(10_000)).is_none(), "not retried");
}

#[test]
fn publishes_wait_until_handshaken() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let id = s.publish(ch("/service/p"), raw("1"));
    let hs = s.poll_request(t0).unwrap();
    assert_eq!(channels(&hs), ["/meta/handshake"]);
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    let reqs = requests(&mut s, t0);
    assert_eq!(channels(&reqs[1]), ["/service/p"]);
    assert_eq!(reqs[1].messages[0].client_id.as_deref(), Some("c1"));
    s.handle_reply(reqs[1].id, vec![ok(&reqs[1], 0)], t0);
    assert!(events(&mut s).contains(&Event::PublishAck {
        publish_id: id,
        successful: true,
        error: None
    }));
}

#[test]
fn a_denied_subscription_is_reported_and_not_sent_again_in_the_same_session() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/secret"));
    let long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.handle_reply(sub.id, vec![err(&sub, 0, "403::denied")], t0);
    assert_eq!(
        events(&mut s),
        [Event::Session(SessionEvent::SubscriptionDenied {
            channel: ch("/secret"),
            error: "403::denied".into()
        })]
    );
    s.handle_reply(long_poll.id, vec![ok(&long_poll, 0)], t0);
    assert_eq!(requests(&mut s, t0).len(), 1, "only the next connect");
}

#[test]
fn unsubscribing_a_channel_never_sent_needs_no_request() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    s.subscribe(ch("/a"));
    s.unsubscribe(&ch("/a"));
    assert_eq!(
        events(&mut s),
        [Event::Session(SessionEvent::Unsubscribed {
            channel: ch("/a")
        })]
    );
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    assert_eq!(requests(&mut s, t0).len(), 1, "only the first connect");
    assert_eq!(s.desired_subscriptions().count(), 0);
}

#[test]
fn unsubscribing_while_the_subscribe_is_pending_unsubscribes_after_its_reply() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let _long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.unsubscribe(&ch("/a"));
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(sub.id, vec![ok(&sub, 0)], t0);
    let unsub = s.poll_request(t0).unwrap();
    assert_eq!(channels(&unsub), ["/meta/unsubscribe"]);
    s.handle_reply(unsub.id, vec![ok(&unsub, 0)], t0);
    assert_eq!(
        events(&mut s),
        [
            Event::Session(SessionEvent::Subscribed { channel: ch("/a") }),
            Event::Session(SessionEvent::Unsubscribed { channel: ch("/a") })
        ]
    );
}

// ---- disconnect ----

#[test]
fn disconnect_sends_meta_disconnect_on_the_other_slot_and_abandons_the_connect() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let long_poll = s.poll_request(t0).unwrap();
    s.disconnect();
    assert_eq!(s.state(), State::Disconnecting);
    let d = s.poll_request(t0).unwrap();
    assert_eq!(d.slot, Slot::Batch);
    assert_eq!(channels(&d), ["/meta/disconnect"]);
    assert_eq!(d.messages[0].client_id.as_deref(), Some("c1"));
    assert_eq!(d.deadline, t0 + ms(10_000));
    // The abandoned connect's reply does not bring the long poll back.
    s.handle_reply(long_poll.id, vec![ok(&long_poll, 0)], t0);
    assert!(s.poll_request(t0 + ms(60_000)).is_none());
    let reply = with_advice(ok(&d, 0), r#"{"reconnect":"none"}"#);
    s.handle_reply(d.id, vec![reply], t0);
    assert_eq!(
        events(&mut s),
        [Event::Terminated {
            reason: Termination::Disconnected
        }]
    );
    assert_eq!(s.state(), State::Terminated);
}

#[test]
fn a_failed_disconnect_still_ends_disconnected_then_terminated() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let pending = s.publish(ch("/service/p"), raw("1"));
    s.disconnect();
    let d = s.poll_request(t0).unwrap();
    assert_eq!(channels(&d), ["/service/p", "/meta/disconnect"]);
    s.handle_failure(d.id, timeout(), t0 + ms(10_000));
    assert_eq!(
        events(&mut s),
        [
            Event::PublishAck {
                publish_id: pending,
                successful: false,
                error: Some("no reply before the deadline".into())
            },
            Event::Terminated {
                reason: Termination::Disconnected
            }
        ]
    );
}

#[test]
fn disconnect_waits_for_the_other_slot() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let _long_poll = s.poll_request(t0).unwrap();
    let sub = s.poll_request(t0).unwrap();
    s.disconnect();
    assert!(s.poll_request(t0).is_none());
    s.handle_reply(sub.id, vec![ok(&sub, 0)], t0);
    let d = s.poll_request(t0).unwrap();
    assert_eq!(channels(&d), ["/meta/disconnect"]);
}

#[test]
fn disconnect_before_any_handshake_terminates_at_once() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let p = s.publish(ch("/service/p"), raw("1"));
    s.disconnect();
    assert_eq!(
        events(&mut s),
        [
            Event::PublishAck {
                publish_id: p,
                successful: false,
                error: Some("the session ended before it was sent".into())
            },
            Event::Terminated {
                reason: Termination::Disconnected
            }
        ]
    );
    assert!(s.poll_request(t0).is_none());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn after_terminated_nothing_is_ever_sent_and_publishes_fail() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, status(401, ""), t0);
    events(&mut s);
    s.subscribe(ch("/a"));
    let p = s.publish(ch("/service/p"), raw("1"));
    s.disconnect();
    for i in 0..5 {
        assert!(s.poll_request(t0 + ms(i * 60_000)).is_none());
    }
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        events(&mut s),
        [Event::PublishAck {
            publish_id: p,
            successful: false,
            error: Some("the session is closed".into())
        }]
    );
}

// ---- states ----

#[test]
fn states_follow_the_session_through_an_outage() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), t0);
    let mut seen = vec![s.state().name()];
    let hs = s.poll_request(t0).unwrap();
    seen.push(s.state().name());
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    seen.push(s.state().name());
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    seen.push(s.state().name());
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, timeout(), t0);
    seen.push(s.state().name());
    let c = s.poll_request(t0 + ms(500)).unwrap();
    seen.push(s.state().name());
    s.handle_reply(c.id, vec![ok(&c, 0)], t0 + ms(500));
    seen.push(s.state().name());
    assert_eq!(
        seen,
        [
            "unconnected",
            "handshaking",
            "connecting",
            "connected",
            "backoff",
            "connecting",
            "connected"
        ]
    );
}

#[test]
fn a_late_reply_meant_for_the_old_client_id_neither_rehandshakes_nor_counts() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.subscribe(ch("/a"));
    let c = s.poll_request(t0).unwrap();
    let old_sub = s.poll_request(t0).unwrap();
    let reply = with_advice(ok(&c, 0), r#"{"reconnect":"handshake"}"#);
    s.handle_reply(c.id, vec![reply], t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    // The old request still holds the other slot; only the connect goes out.
    assert_eq!(requests(&mut s, t0).len(), 1);
    s.handle_reply(
        old_sub.id,
        vec![err(&old_sub, 0, "402::Unknown client")],
        t0,
    );
    assert_eq!(s.client_id(), Some("c2"));
    let sub = s.poll_request(t0).unwrap();
    assert_eq!(subscriptions(&sub), ["/a"]);
    assert_eq!(sub.messages[0].client_id.as_deref(), Some("c2"));
    assert!(s.poll_request(t0).is_none());
}

// ---- gaps and the acknowledged-messages extension ----

/// A handshake reply granting the acknowledged-messages extension.
fn handshake_ack(req: &Request, client_id: &str) -> Vec<Message> {
    let mut reply = handshake_ok(req, client_id);
    reply[0].ext = Some(raw(r#"{"ack":true}"#));
    reply
}

fn with_ext(mut m: Message, ext: &str) -> Message {
    m.ext = Some(raw(ext));
    m
}

/// Connected as `c1` with `/a` subscribed, the server granting the extension.
fn acked(t: Instant) -> Session {
    let mut s = Session::new(cfg(), t);
    s.subscribe(ch("/a"));
    let hs = s.poll_request(t).unwrap();
    s.handle_reply(hs.id, handshake_ack(&hs, "c1"), t);
    let c = s.poll_request(t).unwrap();
    assert_eq!(
        c.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":0}"#)
    );
    let sub = s.poll_request(t).unwrap();
    s.handle_reply(c.id, vec![with_ext(ok(&c, 0), r#"{"ack":1}"#)], t);
    s.handle_reply(sub.id, vec![ok(&sub, 0)], t);
    let evs = events(&mut s);
    assert!(evs.contains(&Event::Session(SessionEvent::AcknowledgedMessages)));
    s
}

#[test]
fn a_lost_connect_reply_is_a_gap_unless_nothing_was_sent() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/a"]);
    let c = s.poll_request(t0).unwrap();
    s.handle_failure(c.id, reset(), t0);
    assert_eq!(gaps(&events(&mut s)), [GapCause::ReplyLost(reset())]);
    let c = s.poll_request(t0 + ms(500)).unwrap();
    s.handle_failure(c.id, timeout(), t0 + ms(500));
    assert_eq!(gaps(&events(&mut s)), [GapCause::ReplyLost(timeout())]);
    // A connection that was refused carried nothing.
    let c = s.poll_request(t0 + ms(2_000)).unwrap();
    s.handle_failure(c.id, refused(), t0 + ms(2_000));
    assert!(gaps(&events(&mut s)).is_empty());
}

#[test]
fn an_unsuccessful_connect_is_a_gap_and_a_rehandshake_is_one_gap() {
    let t0 = Instant::now();
    let mut s = subscribed(t0, &["/a"]);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "500::overloaded")], t0);
    assert_eq!(
        gaps(&events(&mut s)),
        [GapCause::ConnectRefused {
            error: Some("500::overloaded".into())
        }]
    );
    // The session is gone: the new handshake is the gap, reported after Rehandshaken.
    let c = s.poll_request(t0 + ms(500)).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "402::Unknown client")], t0 + ms(500));
    assert!(gaps(&events(&mut s)).is_empty());
    let hs = s.poll_request(t0 + ms(500)).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0 + ms(500));
    let evs = events(&mut s);
    let at = |e: &Event| evs.iter().position(|x| x == e).unwrap();
    let gap = Event::Session(SessionEvent::Gap {
        cause: GapCause::Rehandshake,
    });
    let again = Event::Session(SessionEvent::Rehandshaken {
        client_id: "c2".into(),
    });
    assert!(at(&again) < at(&gap));
    assert_eq!(gaps(&evs), [GapCause::Rehandshake]);
}

#[test]
fn a_lost_reply_on_the_other_slot_is_a_gap_only_for_a_subscribed_session() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.publish(ch("/x"), raw("1"));
    let p = requests(&mut s, t0)
        .into_iter()
        .find(|r| r.slot == Slot::Batch)
        .unwrap();
    s.handle_failure(p.id, reset(), t0);
    assert!(gaps(&events(&mut s)).is_empty(), "nothing subscribed");
    let mut s = subscribed(t0, &["/a"]);
    s.publish(ch("/x"), raw("1"));
    let _connect = s.poll_request(t0).unwrap();
    let p = s.poll_request(t0).unwrap();
    assert_eq!(channels(&p), ["/x"]);
    s.handle_failure(p.id, reset(), t0);
    assert_eq!(gaps(&events(&mut s)), [GapCause::ReplyLost(reset())]);
}

#[test]
fn with_acknowledged_messages_connects_send_the_last_whole_batch_and_cuts_are_no_gaps() {
    let t0 = Instant::now();
    let mut s = acked(t0);
    let c = s.poll_request(t0).unwrap();
    assert_eq!(
        c.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":1}"#)
    );
    // Cut: the batch is not acknowledged, and the server will redeliver.
    s.handle_failure(c.id, reset(), t0);
    assert!(gaps(&events(&mut s)).is_empty());
    let c = s.poll_request(t0 + ms(500)).unwrap();
    assert_eq!(
        c.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":1}"#)
    );
    s.handle_reply(
        c.id,
        vec![with_ext(ok(&c, 0), r#"{"ack":3}"#)],
        t0 + ms(500),
    );
    let c = s.poll_request(t0 + ms(500)).unwrap();
    assert_eq!(
        c.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":3}"#)
    );
    // An unsuccessful reply does not move it.
    s.handle_reply(
        c.id,
        vec![with_ext(err(&c, 0, "500::x"), r#"{"ack":4}"#)],
        t0 + ms(500),
    );
    assert!(
        gaps(&events(&mut s)).is_empty(),
        "the server keeps what it sent"
    );
    let c = s.poll_request(t0 + ms(2_000)).unwrap();
    assert_eq!(
        c.messages[0].ext.as_ref().map(|e| e.get()),
        Some(r#"{"ack":3}"#)
    );
}

#[test]
fn messages_delivered_before_a_cut_are_refused_when_redelivered() {
    let t0 = Instant::now();
    let mut s = acked(t0);
    let c = s.poll_request(t0).unwrap();
    assert!(s.dedupes());
    // Two messages arrive, then the reply is cut.
    let t1 = t0 + ms(500);
    assert_eq!(
        s.element(c.id, "/a", "1", t0),
        Verdict::Deliver(data("/a", "1"))
    );
    assert_eq!(
        s.element(c.id, "/a", "2", t0),
        Verdict::Deliver(data("/a", "2"))
    );
    s.handle_failure(c.id, reset(), t0);
    // The redelivery starts with them, then a third, then the connect answer.
    let c = s.poll_request(t1).unwrap();
    assert_eq!(s.element(c.id, "/a", "1", t1), Verdict::Duplicate);
    assert_eq!(s.element(c.id, "/a", "2", t1), Verdict::Duplicate);
    assert_eq!(
        s.element(c.id, "/a", "3", t1),
        Verdict::Deliver(data("/a", "3"))
    );
    let answer = with_ext(ok(&c, 0), r#"{"ack":2}"#);
    let text = serde_json::to_vec(&answer).unwrap();
    let part = ReplyPart::Element {
        message: answer,
        text: &text,
    };
    assert_eq!(s.reply(c.id, part, t1), Verdict::Taken);
    s.reply(c.id, ReplyPart::End, t1);
    assert!(gaps(&events(&mut s)).is_empty());
    // Acknowledged: the next reply's elements are all new.
    let c = s.poll_request(t1).unwrap();
    assert_eq!(
        s.element(c.id, "/a", "1", t1),
        Verdict::Deliver(data("/a", "1"))
    );
    // Elements of other requests are never refused.
    s.publish(ch("/x"), raw("1"));
    let p = s.poll_request(t1).unwrap();
    assert_eq!(
        s.element(p.id, "/a", "1", t1),
        Verdict::Deliver(data("/a", "1"))
    );
}

#[test]
fn a_redelivery_that_differs_from_what_was_delivered_is_a_gap() {
    let t0 = Instant::now();
    let mut s = acked(t0);
    let c = s.poll_request(t0).unwrap();
    s.element(c.id, "/a", "1", t0);
    s.element(c.id, "/a", "2", t0);
    s.handle_failure(c.id, reset(), t0);
    let t1 = t0 + ms(500);
    let c = s.poll_request(t1).unwrap();
    assert_eq!(s.element(c.id, "/a", "1", t1), Verdict::Duplicate);
    assert_eq!(
        s.element(c.id, "/a", "7", t1),
        Verdict::Deliver(data("/a", "7"))
    );
    assert_eq!(gaps(&events(&mut s)), [GapCause::RedeliveryMismatch]);
}

#[test]
fn the_extension_is_per_session_and_can_be_turned_off() {
    let t0 = Instant::now();
    let mut s = acked(t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![err(&c, 0, "402::Unknown client")], t0);
    let hs = s.poll_request(t0).unwrap();
    // The new server session does not grant it: cuts are gaps again.
    s.handle_reply(hs.id, handshake_ok(&hs, "c2"), t0);
    assert!(!s.dedupes());
    let c = s.poll_request(t0).unwrap();
    assert!(c.messages[0].ext.is_none());

    let mut s = Session::new(
        SessionConfig {
            ack: false,
            ..cfg()
        },
        t0,
    );
    let hs = s.poll_request(t0).unwrap();
    assert!(hs.messages[0].ext.is_none());
    s.handle_reply(hs.id, handshake_ack(&hs, "c1"), t0);
    assert!(!s.dedupes(), "not asked for, not used");
}

#[test]
fn after_a_long_outage_the_next_attempt_is_never_more_than_the_default_cap_away() {
    // The default backoff (jittered), not the tests' exact one.
    let t0 = Instant::now();
    let mut s = Session::new(SessionConfig::default(), t0);
    let hs = s.poll_request(t0).unwrap();
    s.handle_reply(hs.id, handshake_ok(&hs, "c1"), t0);
    let c = s.poll_request(t0).unwrap();
    s.handle_reply(c.id, vec![ok(&c, 0)], t0);
    // Fifteen seconds of refused connections, retried as scheduled.
    let mut now = t0;
    while now < t0 + ms(15_000) {
        let Some(req) = s.poll_request(now) else {
            now = s.poll_timeout().expect("a retry is scheduled");
            continue;
        };
        s.handle_failure(req.id, refused(), now);
        let wait = s.poll_timeout().unwrap().saturating_duration_since(now);
        assert!(wait <= ms(2_000), "retry {wait:?} after the failure");
    }
}

// ---- replies element by element ----

#[test]
fn an_element_over_the_limit_is_a_gap_once_even_when_redelivered() {
    let t0 = Instant::now();
    let mut s = acked(t0);
    let c = s.poll_request(t0).unwrap();
    let too_large = |size| ReplyPart::TooLarge { size, limit: 8 };
    let gap = |size| Verdict::Gap(GapCause::MessageTooLarge { size, limit: 8 });
    assert_eq!(s.reply(c.id, too_large(18), t0), gap(18));
    s.handle_failure(c.id, reset(), t0);
    let t1 = t0 + ms(500);
    let c = s.poll_request(t1).unwrap();
    // Redelivered: its size stands for it, so it is known again and not reported twice.
    assert_eq!(s.reply(c.id, too_large(18), t1), Verdict::Duplicate);
    s.handle_failure(c.id, reset(), t1);
    let t2 = t1 + ms(1_000);
    let c = s.poll_request(t2).unwrap();
    // A message whose text happens to hash to anything is never taken for it.
    assert_eq!(
        s.element(c.id, "/a", "18", t2),
        Verdict::Deliver(data("/a", "18"))
    );
    assert_eq!(gaps(&events(&mut s)), [GapCause::RedeliveryMismatch]);
}

#[test]
fn a_connect_answer_counts_only_once_its_reply_is_whole() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let c = s.poll_request(t0).unwrap();
    let answer = ok(&c, 0);
    let text = serde_json::to_vec(&answer).unwrap();
    let part = ReplyPart::Element {
        message: answer,
        text: &text,
    };
    assert_eq!(s.reply(c.id, part, t0), Verdict::Taken);
    assert_eq!(s.state(), State::Connected, "nothing answered yet");
    assert!(
        s.poll_request(t0).is_none(),
        "the connect is still outstanding"
    );
    // Cut before its end: the answer it carried does not count.
    s.handle_failure(c.id, reset(), t0);
    assert_eq!(s.state(), State::Backoff);
}

#[test]
fn the_head_of_another_requests_reply_says_nothing_about_the_session() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.publish(ch("/x"), raw("1"));
    let _long_poll = s.poll_request(t0).unwrap();
    let p = s.poll_request(t0).unwrap();
    assert_eq!(s.reply(p.id, ReplyPart::Head, t0), Verdict::Taken);
    assert_eq!(events(&mut s), []);
}
