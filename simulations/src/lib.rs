//! `acp-sim`: a deterministic discrete-event world that drives the real
//! [`acp_protocol::Engine`]. Not a network stack and not a node: it owns no
//! sockets, threads or wall clock.
