//! GWS REST semantics of the simulator.
