//! Genesys Web Services: the REST session and its user-data operations.

pub mod api;
