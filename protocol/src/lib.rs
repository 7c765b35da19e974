//! `acp-protocol`: the Agent Consensus Protocol as pure logic.
//!
//! This crate is the protocol and nothing else: message types, the canonical
//! codec, content ids, Ed25519 signatures under the ZIP-215 rule, domain
//! lineage and admission, `resolve`, certified finality, `trust`, the audit
//! bundle, the pure half of anti-entropy, and the [`Engine`] — a per-node
//! state machine that takes bytes and a logical time and returns effects
//! (store, publish, fetch, sync, events).
//!
//! It is **not** a network stack, a database or a runtime: it has no IO, no
//! clock, no randomness (callers pass key seeds in), no async and no floats in
//! any decision. `acp-node` and `acp-sim` drive the same engine; what the
//! simulator shows holds for the node. `docs/SPEC.md` is normative; where this
//! code and the spec disagree, that is a bug in one of them.

#![forbid(unsafe_code)]

pub mod admission;
pub mod build;
pub mod bundle;
mod bytes;
pub mod codec;
pub mod crypto;
pub mod engine;
pub mod evidence;
pub mod finality;
pub mod id;
pub mod limits;
pub mod lineage;
pub mod message;
pub mod resolve;
pub mod set;
pub mod sync;
pub mod trust;

pub use crypto::{AgentId, Keypair, PublicKey, Signature};
pub use engine::{Effect, Engine, EngineConfig, Event, IngestError, Ingested, Origin, Unverified};
pub use id::ContentId;
pub use message::*;
pub use resolve::{Reason, Resolution, resolve};
pub use set::MessageSet;
