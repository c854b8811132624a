//! What only this crate's tests share.

pub mod oracle;
