//! The scenario's own copy of every message it signed, plus the receipts
//! of the certificates the nodes hold, so it can show the full weight
//! breakdown of a resolution and check, on its own, that it is the very one
//! the nodes computed (same canonical bytes, same digest) and that the
//! receipts certify it.

use acp_protocol::resolve::{DecisionPackage, ResolveError, decision_package};
use acp_protocol::trust::{TrustTable, trust_table};
use acp_protocol::{ContentId, MessageSet, Resolution, SignedMessage, Timestamp, resolve};
use anyhow::bail;

use crate::net::NodeView;

/// Every message a scenario submitted, and the certificates' receipts.
#[derive(Debug)]
pub struct Ledger {
    set: MessageSet,
}

impl Ledger {
    /// An empty ledger trusting `genesis` for `domain`, as the nodes do.
    pub fn anchored(domain: &str, genesis: ContentId) -> Self {
        let mut set = MessageSet::new();
        set.set_anchor(domain, genesis);
        Self { set }
    }

    /// Records a message (idempotent).
    pub fn record(&mut self, msg: &SignedMessage) {
        self.set.insert(msg.clone());
    }

    /// The resolution of a proposal at `at`, computed here.
    pub fn resolve(&self, proposal: &ContentId, at: Timestamp) -> Result<Resolution, ResolveError> {
        resolve(&self.set, proposal, at)
    }

    /// The final resolution of a proposal (after its close, with the
    /// certificates' receipts recorded), checked to be bit-identical to
    /// what every node reported and to reach the finality state and
    /// certified result every node holds.
    pub fn confirm(&self, proposal: &ContentId, views: &[NodeView]) -> anyhow::Result<Resolution> {
        let r = self.resolve(proposal, Timestamp(u64::MAX))?;
        let digest = r.digest();
        let ours = r.finality.certificate.as_ref().map(|c| {
            (
                c.result.status,
                c.result.resolution,
                c.result.human_decision,
            )
        });
        for v in views {
            if v.resolution != digest {
                bail!(
                    "node {} computed {} but the messages submitted resolve to {digest}",
                    v.node,
                    v.resolution
                );
            }
            let theirs = v
                .certificate
                .as_ref()
                .map(|c| (c.status, c.resolution, c.human_decision));
            if v.state != r.finality.state || theirs != ours {
                bail!(
                    "node {} holds {:?} {theirs:?} but the receipts recorded give {:?} {ours:?}",
                    v.node,
                    v.state,
                    r.finality.state
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
