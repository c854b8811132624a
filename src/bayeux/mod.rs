//! The Bayeux protocol without I/O: messages, channels and the client session state machine.
//!
//! Nothing here opens a socket, awaits or reads a clock: callers pass the current time in,
//! so every rule is unit-tested with explicit instants.
//!
//! What a user meets is public: the [`Message`] and its parts ([`Advice`], [`Reconnect`],
//! [`Subscription`], [`BayeuxError`]), [`ChannelName`]s, and what the session tells the
//! application ([`SessionEvent`] and its [`Cause`], [`GapCause`], [`Limit`], [`Failure`] of
//! a [`FailureKind`], [`SessionError`]). The session itself, its requests and the reply
//! splitter are the client driver's machinery and stay inside the crate.

mod channel;
mod message;
pub(crate) mod session;
pub(crate) mod split;

pub use channel::{channel_matches, ChannelName, InvalidChannel};
pub use message::{Advice, BayeuxError, Message, Reconnect, Subscription};
pub use session::{Cause, Failure, FailureKind, GapCause, Limit, SessionError, SessionEvent};
