//! The v3 authorization-code flow with the client id and redirect URI a deployment
//! registered, against the simulator with that client registered (as a real GWS 9 has it):
//! the feed with them logs in and catches up; the default client id, another redirect URI
//! or one that is not a URL are refused with an error that says which and what to give.

use gws_cometd_test_support::within;
use std::time::Duration;

use gws_cometd::gws::rest::{Credentials, GwsSession};
use gws_cometd::gws::{Api, CallFeed, FeedEvent};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

const USER: &str = "agent";
const PASSWORD: &str = "c0de-fl0w";
const CLIENT: &str = "crm-sync";
const REDIRECT: &str = "https://crm.example/gws/callback";
const WAIT: Duration = Duration::from_secs(15);

async fn sim() -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    let sim = GwsSimServer::start(config).await.expect("simulator starts");
    sim.v3().register_client(CLIENT, REDIRECT);
    sim
}

fn builder(sim: &GwsSimServer) -> gws_cometd::gws::CallFeedBuilder {
    CallFeed::builder(
        sim.base_url(),
        Credentials::new(format!("\\{USER}"), PASSWORD),
    )
    .api(Api::V3)
    .max_network_delay(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_uses_the_registered_client_id_and_redirect_uri() {
    let sim = sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    let connecting = builder(&sim)
        .client_id(CLIENT)
        .redirect_uri(REDIRECT)
        .connect();
    let mut feed = within("connect", WAIT, connecting)
        .await
        .expect("logged in");
    let calls = within("the catch-up", WAIT, async {
        loop {
            match feed.next().await.expect("the feed goes on") {
                FeedEvent::Ready { calls } => return calls,
                FeedEvent::Call(ev) => assert_eq!(ev.change.call_id, id),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(calls, 1);
    feed.disconnect().await;
}

#[tokio::test]
async fn another_client_id_or_redirect_uri_is_refused_with_a_clear_error() {
    let sim = sim().await;
    let err = within("connect", WAIT, builder(&sim).connect())
        .await
        .expect_err("the default client id is not registered");
    let text = err.to_string();
    assert!(err.is_auth(), "{err:?}");
    for want in [
        "refused client \"gws-cometd\"",
        "Unknown client id",
        "(client_id, redirect_uri)",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    assert!(!text.contains(PASSWORD), "{text}");

    let wrong_uri = builder(&sim)
        .client_id(CLIENT)
        .redirect_uri("https://crm.example/elsewhere")
        .connect();
    let text = within("connect", WAIT, wrong_uri)
        .await
        .expect_err("another redirect URI")
        .to_string();
    for want in [
        "refused client \"crm-sync\" with redirect URI \"https://crm.example/elsewhere\"",
        "redirect_uri does not match the one registered",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }

    let err = GwsSession::builder(&sim.base_url(), Credentials::new(USER, PASSWORD))
        .api(Api::V3)
        .redirect_uri("crm.example/callback")
        .build()
        .expect_err("not an absolute URL");
    assert!(
        err.to_string()
            .contains("a redirect URI must be an absolute URL"),
        "{err}"
    );
}
