//! The living contact center: for one user, calls keep arriving until the simulator stops.
//!
//! Every call is planned whole when it arrives, from a PRNG seeded per user, and its steps
//! are ordinary [`ScenarioAction`]s run like a scenario's. Arrivals are 1.5 to 3.5 s apart
//! (the first 0.5 s after the start) and a call lasts at most about 11.5 s, so three or four
//! calls are usually up at once. The first call of every user is inbound; later ones are
//! inbound (70 %), internal (15 %) or outbound (15 %).
//!
//! | call | life |
//! |---|---|
//! | inbound | rings from an outside number; answered 1–2.5 s later; the IVR attaches its data (`IVR_Path`, `language`, `AccountNumber`, `CustomerSegment`, `IVR_Intent`, sometimes a nested `IVR_Journey`) |
//! | internal | rings from a colleague's number; answered; `AccountNumber` and `ConsultReason` attached |
//! | outbound | dials an outside number; the far end answers 1–2.5 s later; `AccountNumber`, `CampaignName`, `Attempt` attached |
//!
//! Then the agent works the call for 3–6 s: updates `CaseId` and `Priority`, sometimes
//! attaches a `Note` twice (the key then appears twice), sometimes holds and retrieves the
//! call, deletes `IVR_Intent` (inbound), sometimes changes `CustomerSegment`, and updates
//! `Disposition` before hanging up. `AccountNumber` is in the first data attached to every
//! call. After 1–2 s of wrap-up the call completes (see the [module docs](super) on how a
//! call completes).
//!
//! A step that no longer fits (a client answered or hung up the call first) is skipped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::value::RawValue;

use super::scenario::CallBook;
use super::{CallRef, GwsSim, Inner, RawPairs, ScenarioAction};

/// When the first call arrives, counted from the start.
const FIRST_ARRIVAL: Duration = Duration::from_millis(500);

/// The seed of `user`'s center given the server's seed: users get different but repeatable
/// sequences, and adding a user changes no one else's.
pub(crate) fn user_seed(seed: u64, user: &str) -> u64 {
    // FNV-1a over the name, offset by the seed.
    user.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What happens at a planned moment.
enum Event {
    /// The next call arrives.
    Arrival,
    /// A step of a call that is going on.
    Step(ScenarioAction),
}

/// An event at `at`; `seq` keeps events planned for the same moment in planning order.
struct Planned {
    at: Duration,
    seq: u64,
    event: Event,
}

impl PartialEq for Planned {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Planned {}

impl PartialOrd for Planned {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Planned {
    // Reversed: the heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The events still to come, in time order.
#[derive(Default)]
struct Timeline {
    heap: BinaryHeap<Planned>,
    seq: u64,
}

impl Timeline {
    fn plan(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.heap.push(Planned {
            at,
            seq: self.seq,
            event,
        });
    }
}

/// A random duration between `lo` and `hi` milliseconds.
fn ms(rng: &mut fastrand::Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.u64(lo..=hi))
}

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

/// A pair whose value is `value` serialized.
fn pair(key: &str, value: impl serde::Serialize) -> Option<(String, Box<RawValue>)> {
    serde_json::value::to_raw_value(&value)
        .ok()
        .map(|v| (key.to_owned(), v))
}

fn pairs(items: impl IntoIterator<Item = Option<(String, Box<RawValue>)>>) -> RawPairs {
    items.into_iter().flatten().collect()
}

fn outside_number(rng: &mut fastrand::Rng) -> String {
    let area = pick(rng, &["212", "312", "415", "617", "206", "512"]);
    format!("+1{area}555{:04}", rng.u16(0..10_000))
}

/// The kinds of call the center makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inbound,
    Internal,
    Outbound,
}

/// Plans one call that starts now (`now`) as call `index` of `book`: its start action and
/// the later steps.
fn plan_call(
    rng: &mut fastrand::Rng,
    kind: Kind,
    index: usize,
    now: Duration,
    timeline: &mut Timeline,
) {
    let call = || CallRef::Index(index);
    let mut step =
        |at: Duration, action: ScenarioAction| timeline.plan(now + at, Event::Step(action));
    let answered = ms(rng, 1000, 2500);
    step(
        answered,
        if kind == Kind::Outbound {
            ScenarioAction::RemoteAnswer(call())
        } else {
            ScenarioAction::Answer(call())
        },
    );
    let account = format!("{:08}", rng.u32(0..100_000_000));
    let first_data = match kind {
        Kind::Inbound => pairs([
            pair(
                "IVR_Path",
                pick(
                    rng,
                    &[
                        "Main>Billing>Agent",
                        "Main>Support>Internet>Agent",
                        "Main>Sales>Agent",
                        "Main>Support>TV>Agent",
                    ],
                ),
            ),
            pair("language", pick(rng, &["en-US", "es-US", "fr-CA"])),
            pair("AccountNumber", &account),
            pair(
                "CustomerSegment",
                pick(rng, &["Bronze", "Silver", "Gold", "Platinum"]),
            ),
            pair(
                "IVR_Intent",
                pick(rng, &["PayBill", "NoService", "Upgrade", "Cancel"]),
            ),
            rng.bool()
                .then(|| {
                    pair(
                        "IVR_Journey",
                        serde_json::json!({"menus": rng.u8(2..6), "lastNode": "AgentTransfer"}),
                    )
                })
                .flatten(),
        ]),
        Kind::Internal => pairs([
            pair("AccountNumber", &account),
            pair(
                "ConsultReason",
                pick(rng, &["Billing question", "Escalation", "Second opinion"]),
            ),
        ]),
        Kind::Outbound => pairs([
            pair("AccountNumber", &account),
            pair(
                "CampaignName",
                pick(rng, &["Renewals", "Winback", "Survey"]),
            ),
            pair("Attempt", rng.u8(1..4)),
        ]),
    };
    step(
        answered + ms(rng, 200, 800),
        ScenarioAction::Attach {
            call: call(),
            user_data: first_data,
        },
    );

    // The agent's part: a talk window after the first data, ending in the hangup.
    let work = answered + Duration::from_secs(1);
    let talk = ms(rng, 3000, 6000);
    let at = |f: f64| work + talk.mul_f64(f);
    step(
        at(0.15),
        ScenarioAction::Update {
            call: call(),
            user_data: pairs([
                pair("CaseId", format!("CS-{:06}", rng.u32(0..1_000_000))),
                pair("Priority", rng.u8(1..6)),
            ]),
        },
    );
    if rng.u8(0..10) < 4 {
        // The same key attached twice: GWS keeps both.
        for (f, note) in [(0.3, "Customer verified"), (0.6, "Promised a callback")] {
            step(
                at(f),
                ScenarioAction::Attach {
                    call: call(),
                    user_data: pairs([pair("Note", note)]),
                },
            );
        }
    }
    if rng.u8(0..10) < 4 {
        let held = at(0.4);
        step(held, ScenarioAction::Hold(call()));
        step(
            held + talk.mul_f64(0.2).min(Duration::from_secs(1)),
            ScenarioAction::Retrieve(call()),
        );
    }
    if kind == Kind::Inbound {
        step(
            at(0.7),
            ScenarioAction::DeletePair {
                call: call(),
                key: "IVR_Intent".into(),
            },
        );
        if rng.u8(0..10) < 3 {
            step(
                at(0.75),
                ScenarioAction::Update {
                    call: call(),
                    user_data: pairs([pair("CustomerSegment", "Gold")]),
                },
            );
        }
    }
    step(
        at(0.9),
        ScenarioAction::Update {
            call: call(),
            user_data: pairs([pair(
                "Disposition",
                pick(rng, &["Resolved", "CallbackScheduled", "Escalated"]),
            )]),
        },
    );
    let hangup = work + talk;
    step(hangup, ScenarioAction::Hangup(call()));
    step(
        hangup + ms(rng, 1000, 2000),
        ScenarioAction::Complete(call()),
    );
}

/// What the center starts for the next call.
fn start_action(rng: &mut fastrand::Rng, kind: Kind, number: &str) -> ScenarioAction {
    match kind {
        Kind::Inbound => ScenarioAction::Ring {
            from: outside_number(rng),
            to: number.to_owned(),
        },
        Kind::Internal => {
            // A colleague: an internal number that is not the agent's own.
            let colleague = loop {
                let n = format!("{}", rng.u16(5100..5200));
                if n != number {
                    break n;
                }
            };
            ScenarioAction::RingInternal {
                from: colleague,
                to: number.to_owned(),
            }
        }
        Kind::Outbound => ScenarioAction::Dial {
            to: outside_number(rng),
        },
    }
}

impl GwsSim {
    /// Runs the living contact center for `user` on a tokio task until the simulator is
    /// dropped (see the [module docs](super)). The same `seed` gives the same sequence of
    /// operations for the same user name. Must be called inside a tokio runtime.
    pub fn run_living_center_for(&self, user: &str, seed: u64) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.living_center(user.to_owned(), seed))
    }

    /// The living center as a future, for callers that own the task. Its clock starts now.
    pub(crate) fn living_center(
        &self,
        user: String,
        seed: u64,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let mut alive = self.inner.alive.subscribe();
        let number = self.inner.config.number_of(&user);
        let start = tokio::time::Instant::now();
        async move {
            let Some(number) = number else {
                tracing::warn!(%user, "no living contact center for an unknown user");
                return;
            };
            let mut rng = fastrand::Rng::with_seed(user_seed(seed, &user));
            let mut timeline = Timeline::default();
            let mut book = CallBook::default();
            let mut arrivals = 0_u64;
            timeline.plan(FIRST_ARRIVAL, Event::Arrival);
            while let Some(next) = timeline.heap.pop() {
                tokio::select! {
                    _ = tokio::time::sleep_until(start + next.at) => {}
                    _ = alive.changed() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let sim = GwsSim { inner };
                match next.event {
                    Event::Arrival => {
                        let kind = match (arrivals, rng.u8(0..100)) {
                            (0, _) | (_, 0..70) => Kind::Inbound,
                            (_, 70..85) => Kind::Internal,
                            _ => Kind::Outbound,
                        };
                        arrivals += 1;
                        let action = start_action(&mut rng, kind, &number);
                        if let Err(e) = sim.apply(&user, &action, &mut book) {
                            tracing::warn!(%user, "living contact center stops: {e}");
                            return;
                        }
                        let Some(index) = book.last_started() else {
                            return;
                        };
                        plan_call(&mut rng, kind, index, next.at, &mut timeline);
                        timeline.plan(next.at + ms(&mut rng, 1500, 3500), Event::Arrival);
                    }
                    Event::Step(action) => {
                        if let Err(e) = sim.apply(&user, &action, &mut book) {
                            tracing::debug!(%user, "living contact center skips a step: {e}");
                        }
                        if let ScenarioAction::Complete(CallRef::Index(i)) = action {
                            book.forget(i);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;
    use crate::gws::test_support::*;

    /// `(user, data)`, and the data's text (a `Value` would lose duplicate keys).
    type Notes = Arc<Mutex<Vec<(String, Value, String)>>>;

    /// Two users; every notification recorded with the user it is for.
    fn two_users() -> (GwsSim, Notes) {
        let notes: Notes = Arc::default();
        let sink = notes.clone();
        let sim = GwsSim::new(
            GwsSimConfig::new("agent", "pw").with_user("other", "pw2"),
            Arc::new(move |user: &str, _channel: &str, data: String| {
                let v: Value = serde_json::from_str(&data).expect("notifications are JSON");
                lock(&sink).push((user.to_owned(), v, data));
            }),
        );
        (sim, notes)
    }

    /// Each call's notifications, by id, in order.
    fn by_call(notes: &[(String, Value, String)], user: &str) -> BTreeMap<String, Vec<Value>> {
        let mut calls: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (u, n, _) in notes {
            if u == user {
                let id = n["call"]["id"].as_str().unwrap().to_owned();
                calls.entry(id).or_default().push(n.clone());
            }
        }
        calls
    }

    fn state(n: &Value) -> &str {
        n["call"]["state"].as_str().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn over_twenty_seconds_two_users_each_get_at_least_three_whole_calls_of_their_own() {
        let (sim, notes) = two_users();
        let a = sim.run_living_center_for("agent", 7);
        let b = sim.run_living_center_for("other", 7);
        tokio::time::sleep(Duration::from_secs(20)).await;
        let notes = lock(&notes).clone();
        let mut ids: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for user in ["agent", "other"] {
            let number = sim.config().number_of(user).unwrap();
            let calls = by_call(&notes, user);
            let whole: Vec<_> = calls
                .values()
                .filter(|c| {
                    matches!(state(&c[0]), "Ringing" | "Dialing")
                        && state(c.last().unwrap()) == "Completed"
                        && c.iter()
                            .any(|n| n["notificationType"] == "AttachedDataChanged")
                })
                .collect();
            assert!(
                whole.len() >= 3,
                "{user}: {} whole calls of {}",
                whole.len(),
                calls.len()
            );
            for n in notes.iter().filter(|(u, ..)| u == user).map(|(_, n, _)| n) {
                assert_eq!(
                    n["phoneNumber"],
                    number.as_str(),
                    "{user} gets only their own"
                );
            }
            ids.insert(user, calls.keys().cloned().collect());
        }
        assert!(ids["agent"].is_disjoint(&ids["other"]));

        // REST shows each user only their own calls too.
        let session = login(&sim);
        let listed = body(&get(&sim, "/api/v2/me/calls", &session)).to_owned();
        for id in sim.call_ids_for("other") {
            assert!(!listed.contains(&id), "{listed}");
        }
        for id in sim.call_ids_for("agent") {
            assert!(listed.contains(&id), "{listed}");
        }
        assert!(
            !a.is_finished() && !b.is_finished(),
            "it runs until the end"
        );
        drop(sim);
        for task in [a, b] {
            tokio::time::timeout(Duration::from_millis(1), task)
                .await
                .expect("the center stops with the simulator")
                .unwrap();
        }
    }

    /// Each user's notifications with the ids and times taken out.
    async fn run(seed: u64, secs: u64) -> BTreeMap<String, Vec<String>> {
        let (sim, notes) = two_users();
        let _a = sim.run_living_center_for("agent", seed);
        let _b = sim.run_living_center_for("other", seed);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (user, mut n, _) in lock(&notes).clone() {
            let call = n["call"].as_object_mut().unwrap();
            for k in ["id", "callUuid", "connId", "uri", "path", "duration"] {
                call.remove(k);
            }
            out.entry(user).or_default().push(n.to_string());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_repeats_each_users_operations_and_another_seed_does_not() {
        let first = run(42, 30).await;
        let again = run(42, 30).await;
        assert!(first["agent"].len() > 20, "{}", first["agent"].len());
        assert_eq!(first, again);
        let other = run(43, 30).await;
        assert_ne!(first["agent"], other["agent"]);
        assert_ne!(
            first["agent"], first["other"],
            "users get different sequences from one seed"
        );
        assert_ne!(user_seed(42, "agent"), user_seed(42, "other"));
    }

    #[tokio::test(start_paused = true)]
    async fn over_five_minutes_every_kind_of_call_and_operation_shows_up() {
        let (sim, notes) = two_users();
        let _center = sim.run_living_center_for("agent", 1);
        let mut most_live = 0;
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            most_live = most_live.max(sim.call_ids_for("agent").len());
        }
        assert!(most_live >= 3, "calls overlap: at most {most_live} at once");
        assert!(
            sim.call_ids_for("agent").len() <= 6,
            "completed calls leave"
        );
        let notes = lock(&notes).clone();
        let calls = by_call(&notes, "agent");
        assert!(calls.len() >= 80, "{} calls in five minutes", calls.len());
        let mut types = BTreeSet::new();
        let (mut held, mut deleted) = (false, false);
        for c in calls.values() {
            let first = &c[0]["call"];
            let party = first["participants"][0]["phoneNumber"].as_str().unwrap();
            let kind = first["callType"].as_str().unwrap();
            types.insert(kind.to_owned());
            match kind {
                "Outbound" => {
                    assert_eq!(first["state"], "Dialing");
                    assert_eq!(first["ani"], "5001");
                    assert_eq!(first["dnis"], party);
                    assert!(party.starts_with("+1"), "{party}");
                }
                "Inbound" | "Internal" => {
                    assert_eq!(first["state"], "Ringing");
                    assert_eq!(first["dnis"], "5001");
                    assert_eq!(first["ani"], party);
                    assert_eq!(party.starts_with("+1"), kind == "Inbound", "{party}");
                }
                other => panic!("call type {other}"),
            }
            let states: Vec<&str> = c.iter().map(state).collect();
            held |= states.windows(2).any(|w| w == ["Held", "Established"]);
            if let Some(i) = states.iter().position(|s| *s == "Released") {
                // Nothing but the completion after the hangup (which may be still to come).
                assert!(
                    matches!(&states[i..], ["Released"] | ["Released", "Completed"]),
                    "{states:?}"
                );
            }
            let first_data = c
                .iter()
                .find(|n| n["notificationType"] == "AttachedDataChanged")
                .expect("every call gets data");
            assert!(first_data["call"]["userData"]["AccountNumber"].is_string());
            let had_intent = c
                .iter()
                .any(|n| n["call"]["userData"]["IVR_Intent"].is_string());
            let last_data = c.iter().rev().find(|n| n["call"]["userData"].is_object());
            deleted |= had_intent
                && last_data.is_some_and(|n| n["call"]["userData"]["IVR_Intent"].is_null());
        }
        let twice = notes
            .iter()
            .any(|(_, _, text)| text.matches(r#""Note":"#).count() >= 2);
        assert_eq!(
            types,
            BTreeSet::from(["Inbound", "Internal", "Outbound"].map(str::to_owned))
        );
        assert!(
            held && twice && deleted,
            "held {held}, twice {twice}, deleted {deleted}"
        );
        assert_eq!(
            state(&calls.values().next().unwrap()[0]),
            "Ringing",
            "the first call is inbound"
        );
    }
}
