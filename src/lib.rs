//! gws-cometd: CometD/Bayeux long-polling client for Genesys Web Services notifications.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bayeux;
pub mod error;
pub use error::{Error, Result};
pub mod fixture;
pub mod gws;
pub mod sim;
pub mod transport;
