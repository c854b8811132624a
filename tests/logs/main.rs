//! The tests that read what is logged: a binary of their own, because the log capture is the
//! process's one global subscriber. Each test here installs it at the level it needs and
//! reads only lines it can tell are its own.

mod levels;
mod secrets;
