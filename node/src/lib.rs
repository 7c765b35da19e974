//! `acp-node`: drives the [`acp_protocol::Engine`] with real IO.
