//! One scenario in progress: its network, its ledger of signed messages and
//! the names of its keys, with the steps every scenario repeats.

use std::collections::BTreeSet;

use acp_protocol::finality::State;
use acp_protocol::{ContentId, Keypair, Resolution, SignedMessage};

use crate::ledger::Ledger;
use crate::net::{Network, NodeView};
use crate::show::{self, Names, Out};

/// A proposal every node holds a certificate for, with the full resolution
/// behind it.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The proposal.
    pub proposal: ContentId,
    /// What each node computed.
    pub views: Vec<NodeView>,
    /// The resolution, recomputed from the submitted messages and the
    /// certificates' receipts, and checked to have the digest, finality
    /// state and certified result every node reported.
    pub resolution: Resolution,
}

impl Decided {
    /// "APPROVED, certified by 3 of 3 organizations".
    pub fn headline(&self) -> String {
        let f = &self.resolution.finality;
        format!(
            "{}, {}",
            show::status(self.resolution.final_status()).to_uppercase(),
            show::certification(
                f.state,
                f.certificate.as_ref().map_or(0, |c| c.organizations.len()),
                f.organizations
            )
        )
    }
}

/// A running scenario.
#[derive(Debug)]
pub struct Play {
    /// The nodes.
    pub net: Network,
    /// Every message submitted.
    pub ledger: Ledger,
    /// Names of agents and humans.
    pub names: Names,
}

impl Play {
    /// Starts one node per agent, each anchored on `genesis` (the domain's
    /// genesis policy), and publishes the genesis through the first node.
    pub async fn start(
        genesis: &SignedMessage,
        agents: &[(&str, &Keypair)],
        names: Names,
    ) -> anyhow::Result<Self> {
        let net = Network::start(genesis, agents).await?;
        let mut play = Self {
            ledger: Ledger::anchored(&net.domain, net.genesis),
            net,
            names,
        };
        let via = agents
            .first()
            .map(|(name, _)| *name)
            .ok_or_else(|| anyhow::anyhow!("a scenario needs at least one node"))?;
        play.publish(via, genesis).await?;
        Ok(play)
    }

    /// Submits through the node named `via` and records the message.
    pub async fn submit(&mut self, via: &str, msg: &SignedMessage) -> anyhow::Result<ContentId> {
        let id = self.net.submit(via, msg).await?;
        self.ledger.record(msg);
        Ok(id)
    }

    /// Submits through `via` and waits until every node holds the message.
    pub async fn publish(&mut self, via: &str, msg: &SignedMessage) -> anyhow::Result<ContentId> {
        let id = self.submit(via, msg).await?;
        self.net.wait_everywhere(&id).await?;
        Ok(id)
    }

    /// Waits until every node holds a certificate for `proposal`, in a
    /// finality state `accept` takes; records the certificates' receipts
    /// and checks digest, state and certified result against the ledger.
    pub async fn settle(
        &mut self,
        proposal: &ContentId,
        accept: impl Fn(State) -> bool,
    ) -> anyhow::Result<Decided> {
        let views = self.net.wait_certified(proposal, accept).await?;
        let mut fetched = BTreeSet::new();
        for v in &views {
            for id in v.certificate.iter().flat_map(|c| &c.receipts) {
                if fetched.insert(*id) {
                    let receipt = self.net.message(&v.node, id).await?;
                    self.ledger.record(&receipt);
                }
            }
        }
        let resolution = self.ledger.confirm(proposal, &views)?;
        Ok(Decided {
            proposal: *proposal,
            views,
            resolution,
        })
    }

    /// Prints a settled proposal: votes with reasoning, tally, the
    /// certificate's attestors, each node's view.
    pub fn print(&self, out: &mut Out, d: &Decided) -> anyhow::Result<()> {
        let pkg = self.ledger.package(d.resolution.clone())?;
        show::package(out, &pkg, &self.names);
        if !d.resolution.reasons.is_empty() {
            let reasons: Vec<String> = d
                .resolution
                .reasons
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("{r:?}"))
                })
                .collect();
            out.line(format!("    reasons: {}", reasons.join(", ")));
        }
        show::certificate(out, &pkg, &self.names);
        show::views(out, &d.views);
        let agree = d.views.windows(2).all(|w| {
            w[0].resolution == w[1].resolution
                && match (&w[0].certificate, &w[1].certificate) {
                    (Some(a), Some(b)) => a.same_result(b),
                    _ => false,
                }
        });
        out.line(format!(
            "    {} nodes, each resolving on its own: {}",
            d.views.len(),
            if agree {
                "identical resolution digests, one certified result"
            } else {
                "DISAGREE"
            }
        ));
        Ok(())
    }
}
