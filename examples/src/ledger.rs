//! The scenario's own copy of every message it signed, so it can show the
//! full weight breakdown of a resolution and check that it is the very one
//! the nodes computed (same canonical bytes, same digest).

use acp_protocol::resolve::{DecisionPackage, ResolveError, decision_package};
use acp_protocol::trust::{TrustTable, trust_table};
use acp_protocol::{ContentId, MessageSet, Resolution, SignedMessage, Timestamp, resolve};
use anyhow::bail;

use crate::net::NodeView;

/// Every message a scenario submitted.
#[derive(Debug, Default)]
pub struct Ledger {
    set: MessageSet,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message (idempotent).
    pub fn record(&mut self, msg: &SignedMessage) {
        self.set.insert(msg.clone());
    }

    /// The resolution of a proposal at `at`, computed here.
    pub fn resolve(&self, proposal: &ContentId, at: Timestamp) -> Result<Resolution, ResolveError> {
        resolve(&self.set, proposal, at)
    }

    /// The final resolution of a proposal (after its close), checked to be
    /// bit-identical to what every node reported.
    pub fn confirm(&self, proposal: &ContentId, views: &[NodeView]) -> anyhow::Result<Resolution> {
        let r = self.resolve(proposal, Timestamp(u64::MAX))?;
        let digest = r.digest().to_string();
        for v in views {
            if v.resolution != digest {
                bail!(
                    "node {} computed {} but the messages submitted resolve to {digest}",
                    v.node,
                    v.resolution
                );
            }
        }
        Ok(r)
    }

    /// The decision package of a resolution: votes with reasoning, exclusions, human decisions.
    pub fn package(&self, resolution: Resolution) -> anyhow::Result<DecisionPackage> {
        decision_package(&self.set, resolution)
            .ok_or_else(|| anyhow::anyhow!("proposal not in the ledger"))
    }

    /// The trust table proposals of `domain` pinning `policy` will read once
    /// every recorded report is older than them.
    pub fn trust(&self, domain: &str, policy: &ContentId) -> anyhow::Result<TrustTable> {
        let reporters = self
            .set
            .policy(policy)
            .map(|p| p.reporters.clone())
            .ok_or_else(|| anyhow::anyhow!("policy not in the ledger"))?;
        Ok(trust_table(
            &self.set,
            domain,
            Timestamp(u64::MAX),
            &reporters,
        ))
    }
}
