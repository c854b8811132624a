//! One agents file with an agent on API v2 and one on the Workspace API v3 (`api=v3` on its
//! line), in one bridge on the simulator (which serves both generations) and a real
//! nats-server: each agent's feed speaks its own generation, and both publish the change
//! payloads a v2 observer computes, the same for the same scenario. The v3 agent signs in
//! with the bridge's OAuth client id and redirect URI.

use gws_cometd_test_support::within;

use std::collections::BTreeMap;
use std::time::Duration;

use gws_cometd::gws::Api;
use gws_cometd_bridge::{AgentsFile, Bridge, BridgeConfig, CallAddress, BUCKET};

use crate::bridge::{
    agent, js, observe, sim, stored, wait_connected, wait_stream_len, Stored, CHANGES_PER_AGENT,
    PASSWORD, SCENARIO,
};
use crate::support::nats_server;

const CLIENT: &str = "bridge-crm";
const REDIRECT: &str = "https://crm.example/gws/callback";

/// `stored`'s payloads for `subject`, without `"agent"`.
fn payloads(stored: &[Stored], subject: &str) -> Vec<serde_json::Value> {
    stored
        .iter()
        .filter(|m| m.subject == subject)
        .map(|m| {
            let mut p = m.payload.clone();
            p.as_object_mut().unwrap().remove("agent");
            p
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_and_a_v3_agent_in_one_file_publish_the_same_changes() {
    const N: usize = 2;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        // The v3 agent must sign in as the bridge's client, the v2 agent is untouched by it.
        sim.v3().register_client(CLIENT, REDIRECT);
        let (observed, observers) = observe(&sim, N).await;
        let text = format!(
            "# agent 0 on --api's generation (v2 here), agent 1 on v3\n{}:{PASSWORD}\n\
             api=v3 {}:{PASSWORD}\n",
            agent(0),
            agent(1)
        );
        let file = AgentsFile::parse(&text).expect("the agents file");
        let apis: Vec<_> = file.agents.iter().map(|a| a.api).collect();
        assert_eq!(apis, [None, Some(Api::V3)]);
        let mut config = BridgeConfig::new(sim.base_url(), file.agents, nats.url());
        config.replica = "replica-mixed".into();
        config.nats_timeout = Duration::from_secs(2);
        config.drain_timeout = Duration::from_secs(5);
        assert_eq!(config.gws_api.api, Api::V2);
        config.gws_api.client_id = Some(CLIENT.into());
        config.gws_api.redirect_uri = Some(REDIRECT.into());
        let bridge = Bridge::start(config).await.expect("bridge");
        wait_connected(&bridge, N).await;
        let js = js(&nats).await;
        let want = (N * CHANGES_PER_AGENT) as u64;
        wait_stream_len(&js, want, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stored = stored(&js).await;
        assert_eq!(stored.len() as u64, want);

        // Per agent, its calls in the order they began, each with its payloads: exactly the
        // v2 observer's changes, whatever generation the agent's feed spoke.
        let observed = observed.lock().unwrap().clone();
        let mut per_agent = BTreeMap::new();
        for (name, seen) in &observed {
            let mut calls: Vec<&str> = Vec::new();
            for s in seen {
                if !calls.contains(&s.call_id.as_str()) {
                    calls.push(&s.call_id);
                }
            }
            let mut lists = Vec::new();
            for id in calls {
                let subject = CallAddress::new(name, id).unwrap().subject;
                let got = payloads(&stored, &subject);
                let want: Vec<_> = seen
                    .iter()
                    .filter(|s| s.call_id == id)
                    .map(|s| s.change.clone())
                    .collect();
                assert_eq!(got, want, "{subject}");
                // The same change with the call id left out, to compare the two agents.
                lists.push(
                    got.into_iter()
                        .map(|mut p| {
                            p.as_object_mut().unwrap().remove("callId");
                            p
                        })
                        .collect::<Vec<_>>(),
                );
            }
            per_agent.insert(name.clone(), lists);
        }
        assert_eq!(per_agent.len(), N);
        assert_eq!(
            per_agent[&agent(0)],
            per_agent[&agent(1)],
            "the v2 and the v3 agent published different changes for the same scenario"
        );

        // The KV holds each call as the agent's own feed got it: v2's user data an object,
        // v3's a typed list.
        let kv = js.get_key_value(BUCKET).await.expect("bucket");
        for (i, form) in [(0, r#""userData":{"#), (1, r#""userData":["#)] {
            let ids = sim.gws().call_ids_for(&agent(i));
            assert!(!ids.is_empty());
            for id in ids {
                let key = CallAddress::new(&agent(i), &id).unwrap().key;
                let value = kv.get(&key).await.unwrap().expect("a live call in the KV");
                let text = std::str::from_utf8(&value).unwrap();
                assert!(text.contains(form), "agent {i}: {text}");
            }
        }
        assert_eq!(bridge.shutdown().await.unwritten, 0);
        for o in observers {
            o.abort();
        }
    })
    .await;
}
