//! One scenario in progress: its network, its ledger of signed messages and
//! the names of its keys, with the steps every scenario repeats.

use acp_protocol::{ContentId, Resolution, SignedMessage};

use crate::ledger::Ledger;
use crate::net::{Network, NodeView};
use crate::show::{self, Names, Out};

/// A proposal every node settled, with the full resolution behind it.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The proposal.
    pub proposal: ContentId,
    /// What each node computed.
    pub views: Vec<NodeView>,
    /// The resolution, recomputed from the submitted messages and checked
    /// to have the digest every node reported.
    pub resolution: Resolution,
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
    /// A scenario on `net`.
    pub fn new(net: Network, names: Names) -> Self {
        Self {
            net,
            ledger: Ledger::new(),
            names,
        }
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

    /// Waits until every node settled `proposal` on a status `done` accepts,
    /// and checks the digest against the ledger.
    pub async fn settle(
        &self,
        proposal: &ContentId,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Decided> {
        let views = self.net.wait_settled(proposal, done).await?;
        let resolution = self.ledger.confirm(proposal, &views)?;
        Ok(Decided {
            proposal: *proposal,
            views,
            resolution,
        })
    }

    /// Prints a settled proposal: votes with reasoning, tally, each node's view.
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
        show::views(out, &d.views);
        let agree = d
            .views
            .windows(2)
            .all(|w| w[0].resolution == w[1].resolution);
        out.line(format!(
            "    {} nodes, each resolving on its own: {}",
            d.views.len(),
            if agree {
                "identical resolution digests"
            } else {
                "DISAGREE"
            }
        ));
        Ok(())
    }
}
