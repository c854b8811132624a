//! `serve --replay` in the console: where the user's replay stands, and its controls.
//!
//! | request | what it does |
//! |---|---|
//! | `POST /console/api/replay/play` | plays on at the current speed |
//! | `POST /console/api/replay/pause` | holds the next notification |
//! | `POST /console/api/replay/step` | while paused, lets exactly one more notification go |
//! | `POST /console/api/replay/speed` | `{"speed": "max" \| 0.5 \| "2" ...}`: the new pace |
//!
//! Each answers `{"statusCode":0,"replay":{...}}`, the [`ReplayView`] right after.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::phone::Refused;
use crate::replay::{ReplayControl, Speed};

/// What the console shows of a replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReplayView {
    /// Notifications the latest session got in its current pass.
    pub delivered: usize,
    /// Notifications in the recording.
    pub total: usize,
    /// Passes the latest session started over (`--loop`).
    pub loops: u64,
    /// Sessions replaying now.
    pub sessions: usize,
    pub paused: bool,
    /// `max`, or the factor as a number's text: `0.5`, `1`, `2`.
    pub speed: String,
}

impl ReplayView {
    pub(crate) fn of(control: &ReplayControl) -> ReplayView {
        let p = control.position();
        ReplayView {
            delivered: p.delivered,
            total: p.total,
            loops: p.loops,
            sessions: p.sessions,
            paused: control.is_paused(),
            speed: match control.speed() {
                Speed::Factor(x) => x.to_string(),
                Speed::Max => "max".to_owned(),
            },
        }
    }
}

/// `POST /console/api/replay/speed`'s body.
#[derive(Deserialize)]
struct SetSpeed {
    /// A string (`"max"`, `"2"`) or a number (`0.5`).
    speed: Value,
}

fn bad(message: impl Into<String>) -> Refused {
    Refused {
        code: 1,
        message: message.into(),
    }
}

/// Does `action` (`play`, `pause`, `step`, `speed` with its `body`) on `control`.
pub(crate) fn act(control: &ReplayControl, action: &str, body: &[u8]) -> Result<(), Refused> {
    match action {
        "play" => control.play(),
        "pause" => control.pause(),
        "step" => control.step(),
        "speed" => {
            let asked: SetSpeed =
                serde_json::from_slice(body).map_err(|e| bad(format!("speed: {e}")))?;
            let text = match asked.speed {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                other => return Err(bad(format!("speed: {other} is not a speed"))),
            };
            let speed: Speed = text.trim().parse().map_err(bad)?;
            control.set_speed(speed);
        }
        _ => {
            return Err(Refused {
                code: 6,
                message: format!("no replay control {action:?}: play, pause, step or speed"),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_moves_the_control_and_a_bad_speed_is_refused_with_why() {
        let control = ReplayControl::new(Speed::Factor(1.0), 4);
        act(&control, "pause", b"{}").unwrap();
        assert!(ReplayView::of(&control).paused);
        act(&control, "speed", br#"{"speed":0.5}"#).unwrap();
        assert_eq!(ReplayView::of(&control).speed, "0.5");
        act(&control, "speed", br#"{"speed":"max"}"#).unwrap();
        act(&control, "play", b"{}").unwrap();
        let view = ReplayView::of(&control);
        assert_eq!((view.paused, view.speed.as_str()), (false, "max"));
        assert_eq!((view.delivered, view.total), (0, 4));

        let slow = act(&control, "speed", br#"{"speed":"0"}"#).unwrap_err();
        assert_eq!(slow.code, 1);
        assert!(slow.message.contains("not a speed"), "{}", slow.message);
        assert_eq!(
            act(&control, "speed", br#"{"speed":true}"#)
                .unwrap_err()
                .code,
            1
        );
        assert_eq!(act(&control, "speed", b"2").unwrap_err().code, 1);
        assert_eq!(act(&control, "rewind", b"{}").unwrap_err().code, 6);
        assert_eq!(ReplayView::of(&control).speed, "max", "unchanged");
    }
}
