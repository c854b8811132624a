//! The network's side of a call, which GWS has no operation for: a call arriving (an
//! inbound call rung by the console, with the data an IVR would have attached), the agent
//! dialling out, the far end answering. The agent's side (answer, hold, user data, ...)
//! goes through the GWS REST API, as any desktop sends it.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::gws::{GwsSim, NewCall, RawPairs};

/// `POST /console/api/ring`: `{"from","to","userData":[[key, JSON text], ...]}`; `to`
/// defaults to the user's own number.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ring {
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    user_data: Vec<(String, String)>,
}

/// `POST /console/api/dial`: `{"to"}`.
#[derive(Deserialize)]
struct Dial {
    to: String,
}

/// Why a console request was refused: a GWS-like `statusCode` and a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub code: i64,
    pub message: String,
}

fn missing(message: impl Into<String>) -> Refused {
    Refused {
        code: 1,
        message: message.into(),
    }
}

/// Each `[key, JSON text]` pair checked: a non-empty key and a JSON value.
fn pairs(raw: Vec<(String, String)>) -> Result<RawPairs, Refused> {
    raw.into_iter()
        .map(|(key, text)| {
            if key.is_empty() {
                return Err(missing("an attached-data key is empty"));
            }
            RawValue::from_string(text)
                .map(|v| (key.clone(), v))
                .map_err(|e| missing(format!("the value of {key} is not JSON: {e}")))
        })
        .collect()
}

fn read<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refused> {
    serde_json::from_slice(body).map_err(|e| missing(format!("invalid request: {e}")))
}

/// Rings an inbound call for `user` and attaches the initial data; returns its id.
pub(crate) fn ring(gws: &GwsSim, user: &str, body: &[u8]) -> Result<String, Refused> {
    let ring: Ring = read(body)?;
    let from = ring.from.trim();
    if from.is_empty() {
        return Err(missing("from: the caller's number is empty"));
    }
    let own = gws.config().number_of(user).unwrap_or_default();
    let to = match ring.to.trim() {
        "" => own.as_str(),
        to => to,
    };
    let data = pairs(ring.user_data)?;
    let id = gws
        .start_call(user, NewCall::inbound(from, to))
        .ok_or_else(|| missing(format!("unknown user {user}")))?;
    if !data.is_empty() {
        gws.attach_user_data(&id, data).map_err(|e| Refused {
            code: 2,
            message: e.to_string(),
        })?;
    }
    Ok(id)
}

/// The user dials `to`: an outbound call, `Dialing` until the far end answers.
pub(crate) fn dial(gws: &GwsSim, user: &str, body: &[u8]) -> Result<String, Refused> {
    let dial: Dial = read(body)?;
    let to = dial.to.trim();
    if to.is_empty() {
        return Err(missing("to: the number to dial is empty"));
    }
    let own = gws.config().number_of(user).unwrap_or_default();
    gws.start_call(user, NewCall::outbound(own, to))
        .ok_or_else(|| missing(format!("unknown user {user}")))
}

/// The far end of `user`'s outbound call `id` answers.
pub(crate) fn remote_answer(gws: &GwsSim, user: &str, id: &str) -> Result<(), Refused> {
    if !gws.call_ids_for(user).iter().any(|c| c == id) {
        return Err(Refused {
            code: 6,
            message: "Call not found".into(),
        });
    }
    gws.remote_answer(id).map_err(|e| Refused {
        code: 2,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::gws::GwsSimConfig;

    fn sim() -> GwsSim {
        GwsSim::new(
            GwsSimConfig::new("agent", "pw"),
            Arc::new(|_: &str, _: &str, _: String| {}),
        )
    }

    #[test]
    fn a_ring_starts_an_inbound_call_to_the_agent_with_its_data() {
        let gws = sim();
        let body = br#"{"from":"5115","userData":[["A","\"1\""],["A","2"]]}"#;
        let id = ring(&gws, "agent", body).unwrap();
        let call = gws.call_json(&id).unwrap();
        assert!(call.contains(r#""state":"Ringing""#), "{call}");
        assert!(call.contains(r#""dnis":"5001""#), "{call}");
        assert!(call.contains(r#""userData":{"A":"1","A":2}"#), "{call}");
    }

    #[test]
    fn bad_rings_and_dials_are_refused_with_a_reason() {
        let gws = sim();
        for body in [
            &br#"{"from":""}"#[..],
            br#"{"from":"1","userData":[["","\"x\""]]}"#,
            br#"{"from":"1","userData":[["K","nope"]]}"#,
            b"nope",
        ] {
            let refused = ring(&gws, "agent", body).unwrap_err();
            assert_eq!(refused.code, 1, "{refused:?}");
        }
        assert!(ring(&gws, "nobody", br#"{"from":"1"}"#).is_err());
        assert_eq!(dial(&gws, "agent", br#"{"to":" "}"#).unwrap_err().code, 1);
        assert!(gws.call_ids().is_empty(), "nothing was started");
    }

    #[test]
    fn a_dialled_call_is_established_when_the_far_end_answers() {
        let gws = sim();
        let id = dial(&gws, "agent", br#"{"to":"+14155550123"}"#).unwrap();
        assert!(gws.call_json(&id).unwrap().contains(r#""state":"Dialing""#));
        assert_eq!(remote_answer(&gws, "other", &id).unwrap_err().code, 6);
        remote_answer(&gws, "agent", &id).unwrap();
        assert!(gws
            .call_json(&id)
            .unwrap()
            .contains(r#""state":"Established""#));
        assert_eq!(remote_answer(&gws, "agent", &id).unwrap_err().code, 2);
    }
}
