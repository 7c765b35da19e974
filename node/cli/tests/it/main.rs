//! The integration tests of `acp`, one test binary: one module per area,
//! all on the one harness in `harness.rs`.
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
