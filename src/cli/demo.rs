//! The demo `tail` runs when no endpoint is given: the built-in simulator publishing one
//! inbound call's notifications on `/v2/me/calls`.

use std::sync::Arc;
use std::time::Duration;

use gws_cometd::sim::{SimConfig, SimServer};
use gws_cometd::Error;

/// The channel the demo publishes on.
pub const DEMO_CHANNEL: &str = "/v2/me/calls";

/// Starts the simulator and a task that publishes the demo call once a client subscribes.
pub async fn start(channels: &[String]) -> Result<Arc<SimServer>, Error> {
    let sim = Arc::new(
        SimServer::start(SimConfig::default())
            .await
            .map_err(|source| Error::Io {
                context: "starting the built-in simulator".into(),
                source,
            })?,
    );
    if !channels
        .iter()
        .any(|c| gws_cometd::bayeux::channel_matches(c, DEMO_CHANNEL))
    {
        tracing::warn!("the demo publishes on {DEMO_CHANNEL}, which no --channel matches");
    }
    tracing::info!(url = %sim.url(), "built-in simulator started");
    let publisher = sim.clone();
    tokio::spawn(async move {
        if !publisher
            .wait_for_subscribers(DEMO_CHANNEL, 1, Duration::from_secs(30))
            .await
        {
            return;
        }
        for data in demo_notifications() {
            publisher.publish_str(DEMO_CHANNEL, &data);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    Ok(sim)
}

const CALL_ID: &str = "01RCC3N118B1V0SL8O7GK2LAES00000R";

/// One inbound call: rings, is answered, gets attached data (twice the same key, as
/// `AttachUserData` does), is released and completed.
pub fn demo_notifications() -> Vec<String> {
    let steps: [(&str, &str, Option<&str>); 6] = [
        ("StatusChange", "Ringing", None),
        ("StatusChange", "Established", None),
        (
            "AttachedDataChanged",
            "Established",
            Some(r#"{"AccountNumber":"12345"}"#),
        ),
        (
            "AttachedDataChanged",
            "Established",
            Some(r#"{"AccountNumber":"12345","AccountNumber":"67890","Priority":2}"#),
        ),
        (
            "StatusChange",
            "Released",
            Some(r#"{"AccountNumber":"12345","AccountNumber":"67890","Priority":2}"#),
        ),
        ("StatusChange", "Completed", None),
    ];
    steps
        .iter()
        .enumerate()
        .map(|(i, (kind, state, user_data))| {
            let user_data = user_data
                .map(|u| format!(r#","userData":{u}"#))
                .unwrap_or_default();
            format!(
                concat!(
                    r#"{{"messageType":"CallStateChangeMessage","notificationType":"{kind}","phoneNumber":"5001","#,
                    r#""call":{{"id":"{id}","callUuid":"{id}","connId":"0071025bd3c3b001","state":"{state}","#,
                    r#""callType":"Inbound","ani":"5115","dnis":"5001","#,
                    r#""participants":[{{"e164Number":"5115","formattedPhoneNumber":"5115","phoneNumber":"5115","digits":"5115"}}],"#,
                    r#""capabilities":["Hold","Release","AttachUserData","DeleteUserData","UpdateUserData"]{user_data},"#,
                    r#""duration":"{duration}","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"#,
                    r#""recordingState":"Stopped","path":"/calls/{id}"}}}}"#
                ),
                kind = kind,
                id = CALL_ID,
                state = state,
                user_data = user_data,
                duration = i * 7,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_notifications_are_json_call_state_changes() {
        let all = demo_notifications();
        assert_eq!(all.len(), 6);
        for n in &all {
            let v: serde_json::Value = serde_json::from_str(n).unwrap();
            assert_eq!(v["messageType"], "CallStateChangeMessage");
            assert_eq!(v["call"]["id"], CALL_ID);
        }
        assert!(all[3].contains(r#""AccountNumber":"12345","AccountNumber":"67890""#));
    }
}
