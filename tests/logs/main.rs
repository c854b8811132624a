//! The tests that read what is logged: a binary of their own, because the log capture is the
//! process's one global subscriber. Each test here installs it at the level it needs and
//! reads only lines it can tell are its own.

mod levels;
mod secrets;
mod secrets_v3;

/// The fake v3 server of the `it` tests.
#[path = "../it/fake_v3.rs"]
mod fake_v3;
