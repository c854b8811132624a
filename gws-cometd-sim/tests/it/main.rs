//! The integration tests of this crate, in one binary (one link, one build).

mod support;
mod v3_support;

mod console;
mod gws_sim_server;
mod gws_v3;
mod sim_bayeux;
mod sim_faults;
mod sim_replay;
mod sim_replay_v3;
