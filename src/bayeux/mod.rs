//! The Bayeux protocol without I/O: messages, channels and the client session state machine.
//!
//! Nothing here opens a socket, awaits or reads a clock: callers pass the current time in,
//! so every rule is unit-tested with explicit instants.

pub mod channel;
pub mod message;
pub mod session;
pub mod split;

pub use channel::{channel_matches, ChannelName, InvalidChannel};
pub use message::{Advice, BayeuxError, Message, Reconnect, Subscription};
pub use session::{
    Cause, Event, Failure, FailureKind, GapCause, Limit, Request, RequestId, Session,
    SessionConfig, SessionError, SessionEvent, Slot, State, Termination,
};
pub use split::{ArraySplitter, SplitError, SplitErrorKind};
