//! What this crate's tests share.

use gws_cometd_test_support::nats::NatsServer;

/// A nats-server with JetStream on a free port; the test fails if it cannot start.
pub async fn nats_server() -> NatsServer {
    match NatsServer::start().await {
        Ok(server) => server,
        Err(e) => panic!("nats-server must start for these tests: {e}"),
    }
}
