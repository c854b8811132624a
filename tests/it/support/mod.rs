//! What only this crate's tests share.

pub mod events;
pub mod oracle;
