//! What the node shows to its own agent and operator: the sidecar HTTP API
//! and escalation page ([`api`]), the line-based control channel
//! ([`control`]), Prometheus text ([`metrics`]) and the JSON of a
//! proposal's finality shared by all of them ([`view`]).

pub mod api;
pub mod control;
pub mod metrics;
pub mod view;
