//! `acp-node`: drives the [`acp_protocol::Engine`] with real IO.
//!
//! - [`store`]: sled behind a small `Store` trait, the durable message set;
//! - [`commit`]: group commit, one flush for every write waiting on it;
//! - [`keys`], [`config`]: the data directory, key files and `config.toml`;
//! - [`p2p`]: libp2p transport (one event loop owning the swarm, a cloneable client);
//! - [`api`]: the sidecar HTTP API (bearer token, OpenAPI, server-sent events) and the escalation page.
//! - [`metrics`]: Prometheus text at `GET /metrics`.
//! - [`redis`]: a second transport, the same signed messages over Redis Streams.
//! - [`launch`]: starts `acp node` as a child process and reads the addresses it announces.
//! - [`view`]: the JSON of a proposal's finality and receipts, the same on every surface.

pub mod api;
pub mod commit;
pub mod config;
pub mod control;
pub mod keys;
pub mod launch;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod redis;
pub mod store;
pub mod sync;
pub mod view;
