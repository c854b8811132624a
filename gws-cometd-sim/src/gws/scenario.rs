//! Scenarios: timed steps that drive the simulated calls of one user.
//!
//! The file format is documented on [`parse_scenario`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::value::RawValue;

use super::calls::Pairs;
use super::{GwsSim, Inner, NewCall, RawPairs};

/// One timed step of a scenario.
#[derive(Clone, Debug)]
pub struct ScenarioStep {
    /// When the step runs, counted from the scenario's start.
    pub at: Duration,
    /// What it does.
    pub action: ScenarioAction,
}

/// What a scenario step does.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ScenarioAction {
    /// An inbound call rings.
    Ring {
        /// The caller (`ani`).
        from: String,
        /// The agent's number (`dnis`).
        to: String,
    },
    /// An internal call (from a colleague's number) rings.
    RingInternal {
        /// The colleague's number (`ani`).
        from: String,
        /// The agent's number (`dnis`).
        to: String,
    },
    /// The agent dials out: an outbound call from the agent's number starts `Dialing`.
    Dial {
        /// The dialled number (`dnis`).
        to: String,
    },
    /// Dialing → Established: the far end answered.
    RemoteAnswer(CallRef),
    /// Ringing → Established.
    Answer(CallRef),
    /// Established → Held.
    Hold(CallRef),
    /// Held → Established.
    Retrieve(CallRef),
    /// `Hangup`: → Released.
    Hangup(CallRef),
    /// Released → Completed.
    Complete(CallRef),
    /// `AttachUserData`.
    Attach {
        /// The call.
        call: CallRef,
        /// The pairs to append.
        user_data: RawPairs,
    },
    /// `UpdateUserData`.
    Update {
        /// The call.
        call: CallRef,
        /// The pairs to set.
        user_data: RawPairs,
    },
    /// `DeleteUserDataPair`.
    DeletePair {
        /// The call.
        call: CallRef,
        /// The key to remove.
        key: String,
    },
    /// `DeleteUserData`.
    DeleteAll(CallRef),
}

/// A call named in a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallRef {
    /// The n-th call the scenario rang, from 0.
    Index(usize),
    /// A call id.
    Id(String),
}

/// A scenario that could not be read: where (file, 1-based line) when known, and what is
/// wrong. Shown as `scenario.jsonl:3: unknown field "rign"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{}{message}", Where(path.as_deref(), *line))]
pub struct ScenarioError {
    path: Option<PathBuf>,
    line: Option<usize>,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl ScenarioError {
    /// The scenario file, when the scenario came from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The 1-based line of the bad step (JSON Lines only).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn invalid(line: Option<usize>, message: String) -> Self {
        ScenarioError {
            path: None,
            line,
            message,
            source: None,
        }
    }
}

/// The `file:line: ` prefix of a [`ScenarioError`].
struct Where<'a>(Option<&'a Path>, Option<usize>);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(path), Some(line)) => write!(f, "{}:{line}: ", path.display()),
            (Some(path), None) => write!(f, "{}: ", path.display()),
            (None, Some(line)) => write!(f, "line {line}: "),
            (None, None) => Ok(()),
        }
    }
}

/// Reads a scenario. Errors name the 1-based line (for JSON Lines) or step (for an array).
///
/// A scenario is a list of timed steps, written either as one JSON array of step objects or
/// as JSON Lines (one step object per line; blank lines and lines starting with `#` are
/// skipped). Each step has `at_ms`, the time since the scenario started, and exactly one
/// action. Steps run in the order written; a step whose time has passed runs at once.
///
/// ```text
/// {"at_ms":500,"ring":{"from":"5115","to":"5001"}}
/// {"at_ms":1500,"answer":0}
/// {"at_ms":2500,"attach":{"call":0,"userData":{"AccountNumber":"12345","Priority":2}}}
/// {"at_ms":3000,"update":{"call":0,"userData":{"Priority":3}}}
/// {"at_ms":3500,"delete_pair":{"call":0,"key":"Priority"}}
/// {"at_ms":4000,"hold":0}
/// {"at_ms":5000,"retrieve":0}
/// {"at_ms":6000,"delete_all":0}
/// {"at_ms":7000,"hangup":0}
/// {"at_ms":8000,"complete":0}
/// {"at_ms":9000,"ring_internal":{"from":"5002","to":"5001"}}
/// {"at_ms":9500,"dial":{"to":"+14155550123"}}
/// {"at_ms":11000,"remote_answer":2}
/// ```
///
/// A call is named by its index among the calls this scenario started (`0` is the first) or
/// by its id as a string. `ring` (an inbound call) and `ring_internal` give the caller
/// (`from`, the call's `ani`) and the agent's number (`to`, the `dnis` and the
/// notification's `phoneNumber`); `dial` starts an outbound call from the user's number
/// ([`GwsSimConfig::number_of`](super::GwsSimConfig::number_of)) to `to`, which
/// `remote_answer` establishes.
pub fn parse_scenario(text: &str) -> Result<Vec<ScenarioStep>, ScenarioError> {
    if text.trim_start().starts_with('[') {
        let steps: Vec<Box<RawValue>> = serde_json::from_str(text)
            .map_err(|e| ScenarioError::invalid(None, format!("not a JSON array of steps: {e}")))?;
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_step(s.get())
                    .map_err(|e| ScenarioError::invalid(None, format!("step {}: {e}", i + 1)))
            })
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| parse_step(l).map_err(|e| ScenarioError::invalid(Some(i + 1), e)))
            .collect()
    }
}

/// Reads a scenario file; see [`parse_scenario`]. Errors name the file.
pub fn load_scenario(path: &Path) -> Result<Vec<ScenarioStep>, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError {
        path: Some(path.to_owned()),
        line: None,
        message: format!("cannot read the scenario: {source}"),
        source: Some(source),
    })?;
    parse_scenario(&text).map_err(|e| ScenarioError {
        path: Some(path.to_owned()),
        ..e
    })
}

fn parse_step(text: &str) -> Result<ScenarioStep, String> {
    let Pairs(fields) =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut at = None;
    let mut action = None;
    for (key, value) in &fields {
        let value = value.get();
        if key == "at_ms" {
            let ms: u64 = serde_json::from_str(value)
                .map_err(|_| "at_ms must be a non-negative integer of milliseconds".to_owned())?;
            at = Some(Duration::from_millis(ms));
            continue;
        }
        if action.is_some() {
            return Err(format!("more than one action (second: {key:?})"));
        }
        action = Some(parse_action(key, value)?);
    }
    Ok(ScenarioStep {
        at: at.ok_or("at_ms is missing")?,
        action: action.ok_or(
            "no action (ring, ring_internal, dial, remote_answer, answer, hold, retrieve, hangup, complete, attach, update, delete_pair, delete_all)",
        )?,
    })
}

fn parse_action(key: &str, value: &str) -> Result<ScenarioAction, String> {
    let call_ref = |v: &str| -> Result<CallRef, String> {
        if let Ok(i) = serde_json::from_str::<usize>(v) {
            Ok(CallRef::Index(i))
        } else if let Ok(id) = serde_json::from_str::<String>(v) {
            Ok(CallRef::Id(id))
        } else {
            Err(format!(
                "{key}: a call is an index (0, 1, ...) or an id string, not {v}"
            ))
        }
    };
    let object = |v: &str| -> Result<RawPairs, String> {
        serde_json::from_str::<Pairs>(v)
            .map(|p| p.0)
            .map_err(|_| format!("{key}: expected an object"))
    };
    let field = |pairs: &RawPairs, name: &str| -> Result<String, String> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get().to_owned())
            .ok_or_else(|| format!("{key}: {name} is missing"))
    };
    let string = |text: String, name: &str| -> Result<String, String> {
        serde_json::from_str(&text).map_err(|_| format!("{key}: {name} must be a string"))
    };
    Ok(match key {
        "ring" | "ring_internal" => {
            let o = object(value)?;
            let from = string(field(&o, "from")?, "from")?;
            let to = string(field(&o, "to")?, "to")?;
            if key == "ring" {
                ScenarioAction::Ring { from, to }
            } else {
                ScenarioAction::RingInternal { from, to }
            }
        }
        "dial" => {
            let o = object(value)?;
            ScenarioAction::Dial {
                to: string(field(&o, "to")?, "to")?,
            }
        }
        "remote_answer" => ScenarioAction::RemoteAnswer(call_ref(value)?),
        "answer" => ScenarioAction::Answer(call_ref(value)?),
        "hold" => ScenarioAction::Hold(call_ref(value)?),
        "retrieve" => ScenarioAction::Retrieve(call_ref(value)?),
        "hangup" => ScenarioAction::Hangup(call_ref(value)?),
        "complete" => ScenarioAction::Complete(call_ref(value)?),
        "delete_all" => ScenarioAction::DeleteAll(call_ref(value)?),
        "attach" | "update" => {
            let o = object(value)?;
            let call = call_ref(&field(&o, "call")?)?;
            let user_data = object(&field(&o, "userData")?)?;
            if key == "attach" {
                ScenarioAction::Attach { call, user_data }
            } else {
                ScenarioAction::Update { call, user_data }
            }
        }
        "delete_pair" => {
            let o = object(value)?;
            ScenarioAction::DeletePair {
                call: call_ref(&field(&o, "call")?)?,
                key: string(field(&o, "key")?, "key")?,
            }
        }
        other => return Err(format!("unknown field {other:?}")),
    })
}

/// The calls a scenario started, by index.
#[derive(Default)]
pub(super) struct CallBook {
    ids: HashMap<usize, String>,
    started: usize,
}

impl CallBook {
    /// Records the next started call; returns its index.
    pub(super) fn started(&mut self, id: String) -> usize {
        let n = self.started;
        self.ids.insert(n, id);
        self.started += 1;
        n
    }

    /// The index of the call started last.
    pub(super) fn last_started(&self) -> Option<usize> {
        self.started.checked_sub(1)
    }

    /// The id `call` names.
    pub(super) fn resolve<'b>(&'b self, call: &'b CallRef) -> Result<&'b str, String> {
        match call {
            CallRef::Id(id) => Ok(id),
            CallRef::Index(i) => self.ids.get(i).map(String::as_str).ok_or_else(|| {
                format!(
                    "call #{i} has not started (only {} have) or is forgotten",
                    self.started
                )
            }),
        }
    }

    /// Forgets call `index` (a long-running scenario keeps only calls still going).
    pub(super) fn forget(&mut self, index: usize) {
        self.ids.remove(&index);
    }
}

impl GwsSim {
    /// Runs `steps` for the default user on a tokio task (see [`parse_scenario`]). The task
    /// stops after the last step, or as soon as the simulator is dropped. Must be called
    /// inside a tokio runtime.
    pub fn run_scenario(&self, steps: Vec<ScenarioStep>) -> tokio::task::JoinHandle<()> {
        let user = self.inner.config.default_user().to_owned();
        tokio::spawn(self.scenario(user, steps))
    }

    /// Like [`run_scenario`](Self::run_scenario), ringing `user`'s calls.
    pub fn run_scenario_for(
        &self,
        user: &str,
        steps: Vec<ScenarioStep>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.scenario(user.to_owned(), steps))
    }

    /// The scenario as a future, for callers that own the task. Its clock starts now.
    pub(crate) fn scenario(
        &self,
        user: String,
        steps: Vec<ScenarioStep>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let mut alive = self.inner.alive.subscribe();
        let start = tokio::time::Instant::now();
        async move {
            let mut book = CallBook::default();
            for (n, step) in steps.into_iter().enumerate() {
                tokio::select! {
                    _ = tokio::time::sleep_until(start + step.at) => {}
                    _ = alive.changed() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let sim = GwsSim { inner };
                if let Err(e) = sim.apply(&user, &step.action, &mut book) {
                    tracing::warn!(step = n + 1, %user, "scenario step failed: {e}");
                }
            }
        }
    }

    /// A one-call scenario: an inbound call from 5115 to 5001 rings after 0.5 s, is answered
    /// 1 s later, gets `AccountNumber` attached, and stays established.
    pub fn one_call_scenario() -> Vec<ScenarioStep> {
        let account = RawValue::from_string(r#""12345""#.into()).ok();
        let mut steps = vec![
            ScenarioStep {
                at: Duration::from_millis(500),
                action: ScenarioAction::Ring {
                    from: "5115".into(),
                    to: "5001".into(),
                },
            },
            ScenarioStep {
                at: Duration::from_millis(1500),
                action: ScenarioAction::Answer(CallRef::Index(0)),
            },
        ];
        if let Some(account) = account {
            steps.push(ScenarioStep {
                at: Duration::from_millis(2500),
                action: ScenarioAction::Attach {
                    call: CallRef::Index(0),
                    user_data: vec![("AccountNumber".into(), account)],
                },
            });
        }
        steps
    }

    /// Runs one action for `user`; calls are named through `book`.
    pub(super) fn apply(
        &self,
        user: &str,
        action: &ScenarioAction,
        book: &mut CallBook,
    ) -> Result<(), String> {
        let unknown = || format!("unknown user {user:?}");
        let new_call = match action {
            ScenarioAction::Ring { from, to } => Some(NewCall::inbound(from, to)),
            ScenarioAction::RingInternal { from, to } => Some(NewCall::internal(from, to)),
            ScenarioAction::Dial { to } => {
                let from = self.inner.config.number_of(user).ok_or_else(unknown)?;
                Some(NewCall::outbound(from, to))
            }
            _ => None,
        };
        if let Some(call) = new_call {
            let id = self.start_call(user, call).ok_or_else(unknown)?;
            book.started(id);
            return Ok(());
        }
        let done = match action {
            ScenarioAction::Ring { .. }
            | ScenarioAction::RingInternal { .. }
            | ScenarioAction::Dial { .. } => Ok(()),
            ScenarioAction::RemoteAnswer(c) => self.remote_answer(book.resolve(c)?),
            ScenarioAction::Answer(c) => self.answer(book.resolve(c)?),
            ScenarioAction::Hold(c) => self.hold(book.resolve(c)?),
            ScenarioAction::Retrieve(c) => self.retrieve(book.resolve(c)?),
            ScenarioAction::Hangup(c) => self.hangup(book.resolve(c)?),
            ScenarioAction::Complete(c) => self.complete(book.resolve(c)?),
            ScenarioAction::Attach { call, user_data } => {
                self.attach_user_data(book.resolve(call)?, user_data.clone())
            }
            ScenarioAction::Update { call, user_data } => {
                self.update_user_data(book.resolve(call)?, user_data.clone())
            }
            ScenarioAction::DeletePair { call, key } => {
                self.delete_user_data_pair(book.resolve(call)?, key)
            }
            ScenarioAction::DeleteAll(c) => self.delete_user_data(book.resolve(c)?),
        };
        done.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::test_support::*;

    #[test]
    fn scenarios_parse_from_json_lines_or_an_array_and_errors_name_the_line() {
        let lines = "# a call\n{\"at_ms\":500,\"ring\":{\"from\":\"5115\",\"to\":\"5001\"}}\n\n{\"at_ms\":1500,\"answer\":0}\n{\"at_ms\":2000,\"attach\":{\"call\":\"X\",\"userData\":{\"K\":1,\"K\":2}}}\n{\"at_ms\":2500,\"delete_pair\":{\"call\":0,\"key\":\"K\"}}\n";
        let steps = parse_scenario(lines).unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[1].at, Duration::from_millis(1500));
        assert!(matches!(
            &steps[1].action,
            ScenarioAction::Answer(CallRef::Index(0))
        ));
        match &steps[2].action {
            ScenarioAction::Attach { call, user_data } => {
                assert_eq!(call, &CallRef::Id("X".into()));
                assert_eq!(user_data.len(), 2, "duplicate keys are kept");
            }
            other => panic!("{other:?}"),
        }
        let array = r#"[{"at_ms":0,"ring":{"from":"1","to":"2"}},{"at_ms":10,"complete":0}]"#;
        assert_eq!(parse_scenario(array).unwrap().len(), 2);

        let err = parse_scenario(
            "{\"at_ms\":1,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":2,\"dance\":0}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("line 2:") && err.contains("dance"), "{err}");
        assert!(parse_scenario(r#"{"ring":{"from":"1","to":"2"}}"#)
            .unwrap_err()
            .to_string()
            .contains("at_ms"));
        assert!(parse_scenario(r#"{"at_ms":1,"answer":0,"hold":0}"#)
            .unwrap_err()
            .to_string()
            .contains("more than one"));
        assert!(parse_scenario(r#"[{"at_ms":1,"answer":true}]"#)
            .unwrap_err()
            .to_string()
            .starts_with("step 1:"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_one_call_scenario_rings_answers_and_stays_established() {
        let (sim, published) = sim();
        let task = sim.run_scenario(GwsSim::one_call_scenario());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(sim.call_ids().is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ids = sim.call_ids();
        assert_eq!(ids.len(), 1);
        assert!(sim
            .call_json(&ids[0])
            .unwrap()
            .contains(r#""state":"Ringing""#));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(sim
            .call_json(&ids[0])
            .unwrap()
            .contains(r#""state":"Established""#));
        task.await.unwrap();
        tokio::time::sleep(Duration::from_secs(130)).await;
        let call = sim.call_json(&ids[0]).unwrap();
        assert!(call.contains(r#""state":"Established""#), "{call}");
        assert!(
            call.contains(r#""userData":{"AccountNumber":"12345"}"#),
            "{call}"
        );
        assert_eq!(lock(&published).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scenario_stops_when_the_simulator_is_dropped() {
        let (sim, published) = sim();
        let steps = parse_scenario(
            "{\"at_ms\":10,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":60000,\"answer\":0}",
        )
        .unwrap();
        let task = sim.run_scenario(steps);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lock(&published).len(), 1);
        drop(sim);
        tokio::time::timeout(Duration::from_millis(1), task)
            .await
            .expect("the task ends without waiting for its next step")
            .unwrap();
        assert_eq!(lock(&published).len(), 1);
    }

    #[test]
    fn a_bad_scenario_file_is_named_with_its_line_and_a_missing_one_keeps_the_io_error() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenario.jsonl");
        std::fs::write(
            &path,
            "# two good steps, then a typo\n{\"at_ms\":1,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":2,\"rign\":0}\n",
        )
        .unwrap();
        let err = load_scenario(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:3: unknown field \"rign\"", path.display())
        );
        assert_eq!((err.path(), err.line()), (Some(path.as_path()), Some(3)));
        assert_eq!(err.message(), "unknown field \"rign\"");
        assert!(err.source().is_none());

        let missing = dir.path().join("missing.jsonl");
        let err = load_scenario(&missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", missing.display())),
            "{err}"
        );
        assert_eq!(err.line(), None);
        let io = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[tokio::test(start_paused = true)]
    async fn scenarios_dial_ring_internal_and_hang_up_with_gws_names() {
        let steps = parse_scenario(
            "{\"at_ms\":0,\"dial\":{\"to\":\"+14155550123\"}}\n\
             {\"at_ms\":10,\"ring_internal\":{\"from\":\"5002\",\"to\":\"5001\"}}\n\
             {\"at_ms\":20,\"remote_answer\":0}\n\
             {\"at_ms\":30,\"answer\":1}\n\
             {\"at_ms\":40,\"hangup\":0}\n\
             {\"at_ms\":50,\"complete\":0}\n",
        )
        .unwrap();
        assert_eq!(steps.len(), 6);
        let err = parse_scenario(r#"{"at_ms":1,"release":0}"#).unwrap_err();
        assert_eq!(err.to_string(), r#"line 1: unknown field "release""#);

        let (sim, published) = sim();
        sim.run_scenario(steps).await.unwrap();
        let seen: Vec<(String, String, String)> = lock(&published)
            .iter()
            .map(|(_, d)| {
                let v: serde_json::Value = serde_json::from_str(d).unwrap();
                let f = |k: &str| v["call"][k].as_str().unwrap().to_owned();
                (f("callType"), f("state"), f("ani"))
            })
            .collect();
        let expected = [
            ("Outbound", "Dialing", "5001"),
            ("Internal", "Ringing", "5002"),
            ("Outbound", "Established", "5001"),
            ("Internal", "Established", "5002"),
            ("Outbound", "Released", "5001"),
            ("Outbound", "Completed", "5001"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(seen, expected);
        assert_eq!(sim.call_ids().len(), 1, "the internal call goes on");
    }
}
