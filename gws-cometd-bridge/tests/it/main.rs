//! The integration tests of this crate, in one binary (one link, one build).

mod support;

mod bridge;
mod nats_harness;
