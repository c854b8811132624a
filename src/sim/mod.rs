//! An in-process GWS simulator: REST semantics and a scripted call model.

pub mod gws;
