//! The integration tests of this crate, in one binary (one link, one build).

mod support;

mod console;
mod gws_sim_server;
mod sim_bayeux;
mod sim_faults;
mod sim_replay;
