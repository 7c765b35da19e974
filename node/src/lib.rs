//! `acp-node`: the ACP node as a library. It drives the sans-IO
//! [`acp_protocol::Engine`] with real IO and is what `acp node`, the demo,
//! the benchmarks, the examples and the tests all start, through one entry
//! point: [`Node::builder`].
//!
//! - [`service`]: the core task, the one owner of the engine and the store;
//!   every transport and surface talks to it through a [`service::NodeHandle`].
//! - [`transport`]: libp2p gossipsub and sync, anti-entropy rounds, Redis Streams.
//! - [`storage`]: sled behind a small `Store` trait, and group commit.
//! - [`surface`]: the sidecar HTTP API and escalation page, the control
//!   channel, Prometheus metrics, the JSON view of finality.
//! - [`config`], [`keys`]: the data directory, key files and `config.toml`.
//! - [`launch`]: starts `acp node` as a child process, for tests and tools
//!   where the process boundary is the point (crash, namespaces).
//!
//! It is not a command-line program: the `acp` and `acp-bench` binaries live
//! in the `acp-cli` crate, and this crate depends on no CLI, HTTP-client or
//! MCP library.

mod builder;
pub mod config;
pub mod keys;
pub mod launch;
pub mod service;
pub mod storage;
pub mod surface;
pub mod transport;

pub use builder::{Node, NodeBuilder, StartError};
