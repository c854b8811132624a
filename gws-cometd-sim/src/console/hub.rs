//! What the console shows live: every user's calls as the library's [`CallStore`] sees the
//! simulator's notifications, the last changes as `watch` prints them, and a version that
//! wakes the pages waiting on it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gws_cometd::gws::wire::{decode_data, Notification};
use gws_cometd::gws::{CallChange, CallStore, ChangeOrigin};
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::gws::{Publish, CALLS_CHANNEL};

/// How many changes the console keeps per user.
pub(crate) const CHANGES_KEPT: usize = 50;

/// One user's view.
#[derive(Default)]
struct UserLog {
    /// Bumped by every notification the user receives.
    version: u64,
    store: CallStore,
    /// `CallChange` JSON lines, oldest first.
    changes: VecDeque<String>,
}

impl UserLog {
    /// Keeps `change` as the line `watch` prints for it, dropping the oldest past
    /// [`CHANGES_KEPT`].
    fn keep(&mut self, change: &CallChange) {
        if let Ok(line) = serde_json::to_string(change) {
            if self.changes.len() == CHANGES_KEPT {
                self.changes.pop_front();
            }
            self.changes.push_back(line);
        }
    }
}

/// Every user's calls and changes, fed by the simulator's notifications and by what
/// `serve --replay` delivers (see `replay::player`).
pub(crate) struct Hub {
    users: Mutex<HashMap<String, UserLog>>,
    /// Counts every notification, for any user: what waiting pages watch.
    wake: watch::Sender<u64>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            users: Mutex::default(),
            wake: watch::channel(0).0,
        }
    }
}

impl Hub {
    /// A hub, and `publish` that also feeds it every notification before passing it on.
    pub(crate) fn tap(publish: Publish) -> (Publish, Arc<Hub>) {
        let hub = Arc::new(Hub::default());
        let fed = hub.clone();
        let tapped: Publish = Arc::new(move |user: &str, channel: &str, data: String| {
            fed.note(user, channel, &data);
            publish(user, channel, data);
        });
        (tapped, hub)
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, UserLog>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one notification for `user`: a call notification is applied to their store
    /// and its change kept; anything else only bumps the version.
    pub(crate) fn note(&self, user: &str, channel: &str, data: &str) {
        // Every change is published on both generations' channels: v2's is the one taken.
        self.note_replayed(user, data, channel == CALLS_CHANNEL);
    }

    /// Takes one notification a replay delivered to `user`: with `calls` (it came on the
    /// recording's calls channel, v2's or v3's), a call notification is applied and its
    /// change kept; anything else only bumps the version.
    pub(crate) fn note_replayed(&self, user: &str, data: &str, calls: bool) {
        {
            let mut users = self.users();
            let log = users.entry(user.to_owned()).or_default();
            log.version += 1;
            if calls {
                if let Ok(Notification::Call(call)) = decode_data(data) {
                    if let Some(mut applied) = log.store.apply(&call, Instant::now()) {
                        let change = applied.change();
                        log.keep(&change);
                    }
                }
            }
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Brings `user`'s store in line with `calls` (each one call object's text, as a call
    /// read lists them), as a client's catch-up or heal read would, `origin` saying which;
    /// each change is kept as `watch` prints it.
    pub(crate) fn reconcile(&self, user: &str, calls: &[Box<RawValue>], origin: ChangeOrigin) {
        {
            let mut users = self.users();
            let log = users.entry(user.to_owned()).or_default();
            log.version += 1;
            let changes = log
                .store
                .reconcile(calls, Instant::now(), origin, |_| false);
            for r in changes {
                log.keep(&r.change);
            }
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// `user`'s version: it changes with every notification they receive.
    pub(crate) fn version(&self, user: &str) -> u64 {
        self.users().get(user).map_or(0, |log| log.version)
    }

    /// `user`'s last changes as `watch` prints them, oldest first.
    pub(crate) fn changes(&self, user: &str) -> Vec<String> {
        self.users()
            .get(user)
            .map(|log| log.changes.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until `user`'s version is no longer `since`, at most `limit`, or until
    /// `stop` becomes true.
    pub(crate) async fn wait_past(
        &self,
        user: &str,
        since: u64,
        limit: Duration,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut wake = self.wake.subscribe();
        let changed = async {
            while self.version(user) == since {
                if wake.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(limit) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RINGING: &str = r#"{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{"id":"c1","state":"Ringing","callType":"Inbound"}}"#;
    const DATA: &str = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","call":{"id":"c1","state":"Ringing","callType":"Inbound","userData":{"A":"1","A":"2"}}}"#;

    #[test]
    fn call_notifications_become_watch_lines_per_user() {
        let hub = Hub::default();
        hub.note("agent", CALLS_CHANNEL, RINGING);
        hub.note("agent", CALLS_CHANNEL, DATA);
        hub.note("agent", "/v2/me/devices", "{}");
        hub.note("other", CALLS_CHANNEL, RINGING);
        assert_eq!(hub.version("agent"), 3);
        assert_eq!(hub.version("nobody"), 0);
        let lines = hub.changes("agent");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(r#"{"callId":"c1","#), "{}", lines[0]);
        assert!(lines[0].contains(r#""new":true"#), "{}", lines[0]);
        assert!(lines[1].contains("AttachedDataChanged"), "{}", lines[1]);
        assert_eq!(hub.changes("other").len(), 1);
    }

    #[test]
    fn only_the_last_changes_are_kept() {
        let hub = Hub::default();
        for i in 0..CHANGES_KEPT + 5 {
            let data = RINGING.replace("\"c1\"", &format!("\"c{i}\""));
            hub.note("agent", CALLS_CHANNEL, &data);
        }
        let lines = hub.changes("agent");
        assert_eq!(lines.len(), CHANGES_KEPT);
        assert!(lines[0].contains("\"c5\""), "{}", lines[0]);
    }

    #[test]
    fn a_read_reconciles_the_store_and_keeps_its_changes() {
        let hub = Hub::default();
        hub.note("agent", CALLS_CHANNEL, RINGING);
        let listed: Vec<Box<RawValue>> = vec![RawValue::from_string(
            r#"{"id":"c2","state":"Established","callType":"Outbound"}"#.to_owned(),
        )
        .unwrap()];
        hub.reconcile("agent", &listed, ChangeOrigin::Heal);
        assert_eq!(hub.version("agent"), 2);
        let lines = hub.changes("agent");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[1..]
                .iter()
                .any(|l| l.contains(r#""callId":"c2""#) && l.contains(r#""new":true"#)),
            "{lines:?}"
        );
        assert!(
            lines[1..]
                .iter()
                .any(|l| l.contains(r#""callId":"c1""#) && l.contains(r#""removed":true"#)),
            "{lines:?}"
        );
        // The same calls again: nothing changed.
        hub.reconcile("agent", &listed, ChangeOrigin::Heal);
        assert_eq!(hub.changes("agent").len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_page_wakes_on_its_users_change_or_its_limit() {
        let hub = std::sync::Arc::new(Hub::default());
        let (_stop_tx, mut stop) = watch::channel(false);
        let waiter = {
            let hub = hub.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                hub.wait_past("agent", 0, Duration::from_secs(20), &mut stop)
                    .await;
                tokio::time::Instant::now()
            })
        };
        let start = tokio::time::Instant::now();
        tokio::task::yield_now().await;
        hub.note("other", CALLS_CHANNEL, RINGING);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished(), "another user's change does not wake");
        hub.note("agent", CALLS_CHANNEL, RINGING);
        let woke = waiter.await.unwrap();
        assert_eq!(woke - start, Duration::from_secs(1));

        let before = tokio::time::Instant::now();
        hub.wait_past("agent", 1, Duration::from_secs(20), &mut stop)
            .await;
        assert_eq!(before.elapsed(), Duration::from_secs(20));
    }
}
