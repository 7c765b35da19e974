//! `acp-examples`: scenarios from the user's world (a bank's loan decision,
//! a cross-organization supply chain, a spend dispute settled by a human,
//! fraud screening where trust follows outcomes), each run on real ACP nodes
//! inside one process. It holds no protocol logic of its own.
//!
//! - [`net`]: start a network of in-process nodes on loopback, each
//!   anchored on the domain's genesis policy; submit; wait until every node
//!   holds a certificate;
//! - [`http`]: a minimal client for a node's sidecar HTTP API;
//! - [`msg`]: sign proposals and responses, fresh keys;
//! - [`ledger`]: the scenario's copy of its messages and of the
//!   certificates' receipts, to show a resolution's weight breakdown and
//!   check it is the one every node computed and certified;
//! - [`show`]: output and formatting;
//! - one module per scenario ([`loan`], [`supply_chain`], [`campaign_spend`],
//!   [`fraud_trust`]), each with a `run` function that the binary of the
//!   same name calls and the tests check.

pub mod http;
pub mod ledger;
pub mod msg;
pub mod net;
pub mod play;
pub mod show;

pub mod campaign_spend;
pub mod fraud_trust;
pub mod loan;
pub mod supply_chain;
