//! The integration tests of this crate, in one binary (one link, one build).

mod support;

mod bridge;
mod bridge_api;
mod nats_harness;
