//! The integration tests of `acp`, one test binary (linking libp2p and the
//! node once): one module per area, all on the one harness in `harness.rs`.
//! A new area is a new file here and one `mod` line below.
//!
//! One module: `cargo test -p acp-cli --test it -- network::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod api;
mod api_security;
mod cli;
mod crash_soak;
mod hostile;
mod hostile_suite;
mod mcp;
mod metrics;
mod netns;
mod network;
mod page;
mod python_agent;
mod python_client;
mod redis_transport;
mod transcripts;
