//! The client session state machine (see the module docs of []).
