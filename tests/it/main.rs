//! The integration tests of this crate, in one binary (one link, one build).

mod support;

/// Counts what each thread holds, for the memory bounds of `adversarial`.
#[global_allocator]
static ALLOC: gws_cometd_test_support::adversarial::Counting =
    gws_cometd_test_support::adversarial::Counting;

mod adversarial;
mod client_sim;
mod fake_v3;
mod fault_proxy;
mod faults_bayeux;
mod faults_gws;
mod gws_api;
mod gws_api_v3;
mod gws_api_v3_feed;
mod gws_feed;
mod gws_feed_v3;
mod gws_v3_oauth_client;
mod interop_client;
mod interop_smoke;
mod model;
mod model_props;
mod model_v3;
mod replay_live;
