use super::lifecycle::base32hex;
use super::*;
use crate::gws::test_support::*;
use crate::gws::{CallIdForm, ParticipantsForm};
use serde_json::value::RawValue;

#[test]
fn user_data_operations_follow_gws_semantics_and_publish_the_whole_call() {
    let (sim, published) = sim();
    let id = sim.ring_inbound("5115", "5001");
    let session = login(&sim);
    let path = format!("/api/v2/me/calls/{id}");
    let last = || lock(&published).last().cloned().unwrap();

    let attach = r#"{"operationName":"AttachUserData","userData":{"A":"1","Big":123456789012345678901234567890}}"#;
    let resp = post(&sim, &path, &session, attach);
    assert_eq!(
        (resp.status().as_u16(), body(&resp)),
        (200, r#"{"statusCode":0}"#)
    );
    let (channel, data) = last();
    assert_eq!(channel, CALLS_CHANNEL);
    assert!(data.contains(r#""notificationType":"AttachedDataChanged""#));
    assert_eq!(
        user_data_of(&data).unwrap(),
        r#"{"A":"1","Big":123456789012345678901234567890}"#
    );

    post(
        &sim,
        &path,
        &session,
        r#"{"operationName":"AttachUserData","userData":{"A":2}}"#,
    );
    assert_eq!(
        user_data_of(&last().1).unwrap(),
        r#"{"A":"1","Big":123456789012345678901234567890,"A":2}"#
    );

    post(
        &sim,
        &path,
        &session,
        r#"{"operationName":"UpdateUserData","userData":{"A":"x","New":7}}"#,
    );
    assert_eq!(
        user_data_of(&last().1).unwrap(),
        r#"{"A":"x","Big":123456789012345678901234567890,"A":"x","New":7}"#
    );

    post(
        &sim,
        &path,
        &session,
        r#"{"operationName":"DeleteUserDataPair","key":"A"}"#,
    );
    assert_eq!(
        user_data_of(&last().1).unwrap(),
        r#"{"Big":123456789012345678901234567890,"New":7}"#
    );

    post(
        &sim,
        &path,
        &session,
        r#"{"operationName":"DeleteUserData"}"#,
    );
    let data = last().1;
    assert!(!data.contains("userData"), "{data}");
    assert!(!sim.call_json(&id).unwrap().contains("userData"));
    // ring + five operations
    assert_eq!(lock(&published).len(), 6);
}

#[test]
fn calls_move_through_their_states_and_completed_calls_are_not_listed() {
    let (sim, published) = sim();
    let id = sim.ring_inbound("5115", "5001");
    assert!(sim.hold(&id).is_err());
    sim.answer(&id).unwrap();
    sim.hold(&id).unwrap();
    sim.retrieve(&id).unwrap();
    sim.hangup(&id).unwrap();
    assert!(matches!(
        sim.attach_user_data(&id, Vec::new()),
        Err(SimCallError::InvalidState {
            state: SimCallState::Released,
            operation: "AttachUserData",
            ..
        })
    ));
    assert!(matches!(
        sim.answer(&id),
        Err(SimCallError::InvalidState {
            state: SimCallState::Released,
            ..
        })
    ));
    assert!(sim.calls_json().contains(&id));
    sim.complete(&id).unwrap();
    assert_eq!(sim.calls_json(), r#"{"statusCode":0,"calls":[]}"#);
    assert!(matches!(
        sim.attach_user_data(&id, Vec::new()),
        Err(SimCallError::InvalidState { .. })
    ));
    assert_eq!(
        sim.answer("nope"),
        Err(SimCallError::NotFound("nope".into()))
    );
    let states: Vec<String> = lock(&published)
        .iter()
        .map(|(_, d)| {
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            assert_eq!(v["notificationType"], "StatusChange");
            v["call"]["state"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        states,
        [
            "Ringing",
            "Established",
            "Held",
            "Established",
            "Released",
            "Completed"
        ]
    );
}

#[test]
fn notifications_have_the_shape_of_real_gws_ones() {
    let seed = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","phoneNumber":"5001","call":{"id":"01RCC3N118B1V0SL8O7GK2LAES00000R","callUuid":"01RCC3N118B1V0SL8O7GK2LAES00000R","connId":"0071025bd3c3b001","state":"Established","callType":"Inbound","ani":"5115","dnis":"5001","participants":[{"e164Number":"5115","formattedPhoneNumber":"5115","phoneNumber":"5115","digits":"5115"}],"capabilities":["SingleStepTransfer","InitiateConference","Hold","SingleStepConference","InitiateTransfer","SendDtmf","DeleteUserData","AttachUserData","DeleteUserDataPair","Hangup","UpdateUserData"],"userData":{"AccountNumber":"12345"},"duration":"42","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":"http://127.0.0.1:8090/api/v2/devices/0b1e9f27","uri":"http://127.0.0.1:8090/api/v2/me/calls/01RCC3N118B1V0SL8O7GK2LAES00000R","path":"/calls/01RCC3N118B1V0SL8O7GK2LAES00000R"}}"#;
    let (sim, published) = sim();
    let id = sim.ring_inbound("5115", "5001");
    sim.answer(&id).unwrap();
    let account = RawValue::from_string(r#""12345""#.into()).unwrap();
    sim.attach_user_data(&id, vec![("AccountNumber".into(), account)])
        .unwrap();
    let ours = lock(&published).last().unwrap().1.clone();
    let keys = |text: &str| -> (Vec<String>, Vec<String>) {
        let Pairs(top) = serde_json::from_str(text).unwrap();
        let call = &top.iter().find(|(k, _)| k == "call").unwrap().1;
        let Pairs(call) = serde_json::from_str(call.get()).unwrap();
        (
            top.into_iter().map(|p| p.0).collect(),
            call.into_iter().map(|p| p.0).collect(),
        )
    };
    assert_eq!(keys(&ours), keys(seed));
    let v: serde_json::Value = serde_json::from_str(&ours).unwrap();
    let s: serde_json::Value = serde_json::from_str(seed).unwrap();
    for field in [
        "state",
        "callType",
        "ani",
        "dnis",
        "participants",
        "capabilities",
        "userData",
        "mute",
    ] {
        assert_eq!(v["call"][field], s["call"][field], "{field}");
    }
    assert_eq!(v["phoneNumber"], "5001");
    assert_eq!(
        v["call"]["uri"],
        format!("http://127.0.0.1:8090/api/v2/me/calls/{id}")
    );
    // As real captures: a connId-like id, a different callUuid.
    assert_eq!(id.len(), 16);
    assert_eq!(v["call"]["connId"], id.as_str());
    assert_ne!(v["call"]["callUuid"], id.as_str());
}

#[test]
fn ids_and_participants_take_the_configured_form() {
    let (sim, _) = sim();
    let ids: Vec<String> = (0..15).map(|_| sim.ring_inbound("5115", "5001")).collect();
    let call: serde_json::Value = serde_json::from_str(&sim.call_json(&ids[14]).unwrap()).unwrap();
    assert_eq!(call["id"], "0071025563e9f00f");
    assert_eq!(call["callUuid"], "00QEAG4KU4A5P78IG2DAHG5AES00000F");
    assert_eq!(
        call["uri"],
        "http://127.0.0.1:8090/api/v2/me/calls/0071025563e9f00f"
    );
    assert!(call.get("participantsInfo").is_none());

    let (older, _) = sim_with(GwsSimConfig {
        call_ids: CallIdForm::CallUuid,
        participants: ParticipantsForm::StringsWithInfo,
        ..GwsSimConfig::new("agent", "pw")
    });
    let id = older.ring_inbound("5115", "5001");
    let call: serde_json::Value = serde_json::from_str(&older.call_json(&id).unwrap()).unwrap();
    assert_eq!(
        (id.len(), call["callUuid"].as_str()),
        (32, Some(id.as_str()))
    );
    assert_ne!(call["connId"], id.as_str());
    assert_eq!(call["participants"], serde_json::json!(["5115"]));
    assert_eq!(
        call["participantsInfo"],
        serde_json::json!([{"digits":"5115","e164Number":"5115","formattedPhoneNumber":"5115"}])
    );
    assert_eq!(base32hex(32 * 32 + 31, 3), "10V");
}

#[tokio::test(start_paused = true)]
async fn outbound_calls_dial_until_the_far_end_answers_and_internal_ones_ring() {
    let (sim, published) = sim();
    let out = sim
        .start_call("agent", NewCall::outbound("5001", "+14155550123"))
        .unwrap();
    let internal = sim
        .start_call("agent", NewCall::internal("5002", "5001"))
        .unwrap();
    assert_eq!(sim.start_call("nobody", NewCall::internal("1", "2")), None);
    assert!(
        sim.answer(&out).is_err(),
        "an outbound call is not answered"
    );
    assert!(sim.remote_answer(&internal).is_err());
    sim.attach_user_data(
        &out,
        vec![("K".into(), RawValue::from_string("1".into()).unwrap())],
    )
    .unwrap();
    sim.remote_answer(&out).unwrap();
    tokio::time::advance(std::time::Duration::from_secs(7)).await;
    sim.hangup(&out).unwrap();
    let notes: Vec<serde_json::Value> = lock(&published)
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let of = |id: &str| -> Vec<&serde_json::Value> {
        notes.iter().filter(|n| n["call"]["id"] == id).collect()
    };
    let states: Vec<&str> = of(&out)
        .iter()
        .map(|n| n["call"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["Dialing", "Dialing", "Established", "Released"]);
    let dialing = of(&out)[0];
    assert_eq!(dialing["phoneNumber"], "5001", "the agent's own number");
    assert_eq!(dialing["call"]["callType"], "Outbound");
    assert_eq!(dialing["call"]["ani"], "5001");
    assert_eq!(dialing["call"]["dnis"], "+14155550123");
    assert_eq!(
        dialing["call"]["participants"][0]["phoneNumber"],
        "+14155550123"
    );
    assert_eq!(
        dialing["call"]["capabilities"],
        serde_json::json!([
            "SendDtmf",
            "DeleteUserData",
            "AttachUserData",
            "DeleteUserDataPair",
            "Hangup",
            "UpdateUserData"
        ])
    );
    let released = of(&out)[3];
    assert_eq!(released["call"]["capabilities"], serde_json::json!([]));
    assert_eq!(released["call"]["duration"], "7", "paused time counts");
    let ringing = of(&internal)[0];
    assert_eq!(ringing["call"]["state"], "Ringing");
    assert_eq!(ringing["call"]["callType"], "Internal");
    assert_eq!(ringing["phoneNumber"], "5001");
    assert_eq!(ringing["call"]["participants"][0]["phoneNumber"], "5002");
}
