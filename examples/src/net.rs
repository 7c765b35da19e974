//! A network of real ACP nodes inside this process: one per agent, each with
//! its own sled store in a temporary data directory, its own libp2p identity,
//! listening on 127.0.0.1 (ephemeral TCP port, mDNS off) and connected to
//! every node started before it. Every node is configured with the domain's
//! trust anchor (its genesis policy), as each organization's operator would
//! configure it; without one a node admits nothing in the domain. Messages
//! travel by gossipsub and anti-entropy sync over loopback; every node
//! resolves on its own and counts the receipts of the organizations'
//! attestors towards a certificate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use acp_node::config::Config;
use acp_node::keys;
use acp_node::service::NodeHandle;
use acp_node::surface::api::types::{AttestationView, ResolutionAnswer};
use acp_node::surface::api::{self, ApiKeys, ApiState};
use acp_protocol::finality::State;
use acp_protocol::{Body, ContentId, Keypair, PublicKey, SignedMessage, Status, Timestamp};
use anyhow::{Context, anyhow, bail};
use tokio::task::JoinHandle;

/// How long any wait for the network gives up after.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How often a wait polls the nodes.
const POLL: Duration = Duration::from_millis(25);

/// One running node, with the agent whose key it holds.
#[derive(Debug)]
pub struct Node {
    /// The agent's name (also the node's).
    pub name: String,
    /// The agent's key; the node signs its receipts with it.
    pub agent: Keypair,
    /// The node core's handle: submit and query.
    pub handle: NodeHandle,
    /// The TCP listen address, ending in `/p2p/<peer id>`.
    pub addr: String,
    _node: acp_node::Node,
    /// Extra API servers started by [`Network::serve_api`].
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A node's answer about one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's name.
    pub node: String,
    /// The status to act on: the certified one, escalated while a human
    /// must decide, else the provisional result of the votes.
    pub status: Status,
    /// Where the proposal stands on the way to finality.
    pub state: State,
    /// Digest of the resolution the node computes now.
    pub resolution: ContentId,
    /// Counted votes.
    pub counted: u64,
    /// Organizations of the pinned policy.
    pub organizations: u16,
    /// The certificate in force, if any.
    pub certificate: Option<NodeCertificate>,
    /// Receipts held, every round and signer.
    pub receipts: usize,
}

/// A certificate as one node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertificate {
    /// The certified status.
    pub status: Status,
    /// The certified resolution digest.
    pub resolution: ContentId,
    /// The human decision it settles (round 1), `None` for the votes.
    pub human_decision: Option<ContentId>,
    /// Organizations whose attestors signed it.
    pub organizations: usize,
    /// Their receipts.
    pub receipts: Vec<ContentId>,
}

impl NodeCertificate {
    /// Whether two nodes hold certificates for the same result (they may
    /// hold receipts from different organizations beyond the quorum).
    pub fn same_result(&self, other: &Self) -> bool {
        (self.status, self.resolution, self.human_decision)
            == (other.status, other.resolution, other.human_decision)
    }

    fn from_view(c: &AttestationView) -> Self {
        Self {
            status: c.status,
            resolution: c.resolution,
            human_decision: c.human_decision,
            organizations: c.organizations.len(),
            receipts: c.receipts.clone(),
        }
    }
}

impl NodeView {
    fn from_answer(node: &str, v: &ResolutionAnswer) -> Self {
        let f = &v.finality;
        Self {
            node: node.to_owned(),
            status: v.status,
            state: f.state,
            resolution: v.resolution,
            counted: u64::try_from(v.counted).unwrap_or(u64::MAX),
            organizations: f.organizations,
            certificate: f.certificate.as_ref().map(NodeCertificate::from_view),
            receipts: v.receipts.len(),
        }
    }
}

/// The nodes of one scenario, all joined to one domain.
#[derive(Debug)]
pub struct Network {
    /// The domain every node joins.
    pub domain: String,
    /// The domain's genesis policy, every node's trust anchor.
    pub genesis: ContentId,
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
}

impl Network {
    /// Starts one node per `(name, agent key)`, each anchored on `genesis`
    /// (a genesis policy: it supersedes nothing), and waits until every node
    /// is connected to every other. The genesis itself is not submitted.
    pub async fn start(
        genesis: &SignedMessage,
        agents: &[(&str, &Keypair)],
    ) -> anyhow::Result<Self> {
        let domain = match genesis.body() {
            Body::Policy(p) if p.supersedes.is_none() => p.domain.clone(),
            _ => bail!("{} is not a genesis policy", genesis.id),
        };
        let mut nodes: Vec<Node> = Vec::with_capacity(agents.len());
        for (name, agent) in agents {
            let bootstrap: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
            let node = start_node(name, agent, (&domain, genesis.id), &bootstrap)
                .await
                .with_context(|| format!("starting node {name}"))?;
            nodes.push(node);
        }
        let net = Self {
            domain,
            genesis: genesis.id,
            nodes,
        };
        let want = net.nodes.len().saturating_sub(1);
        net.wait("every node to connect to every other", || async {
            for n in &net.nodes {
                if n.handle.status().await?.peers.len() < want {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
        Ok(net)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> anyhow::Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node named {name}"))
    }

    /// Submits a message through the node named `via`; returns once it is
    /// durable there.
    pub async fn submit(&self, via: &str, msg: &SignedMessage) -> anyhow::Result<ContentId> {
        let n = self.node(via)?;
        let s = n
            .handle
            .submit(msg.bytes.clone())
            .await
            .map_err(|e| anyhow!("{via} refused {}: {e}", msg.id))?;
        Ok(s.id)
    }

    /// Serves the sidecar HTTP API of the node named `name` on an ephemeral
    /// 127.0.0.1 port with a fresh bearer token; `human` is the key it signs
    /// human decisions with. Returns the address and the token.
    pub async fn serve_api(
        &mut self,
        name: &str,
        human: Option<Keypair>,
    ) -> anyhow::Result<(SocketAddr, String)> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node named {name}"))?;
        let token: String = keys::random_seed()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let state = ApiState::new(
            node.handle.clone(),
            token.clone(),
            ApiKeys {
                agent: node.agent.clone(),
                human,
                reporter: None,
            },
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        node.tasks.push(tokio::spawn(async move {
            let _ = api::serve(listener, state).await;
        }));
        Ok((addr, token))
    }

    /// The bytes of a message as the node named `name` holds it.
    pub async fn message(&self, name: &str, id: &ContentId) -> anyhow::Result<SignedMessage> {
        let id = *id;
        let bytes = self
            .node(name)?
            .handle
            .with_engine(move |e| e.get_bytes(&id).map(<[u8]>::to_vec))
            .await?
            .ok_or_else(|| anyhow!("{name} does not hold {id}"))?;
        Ok(acp_protocol::decode_message(&bytes)?)
    }

    /// Every node's trust table for the domain (agent -> trust, bps), as a
    /// proposal created after every report held would read it.
    pub async fn trust_tables(&self) -> anyhow::Result<Vec<BTreeMap<PublicKey, u16>>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let domain = self.domain.clone();
            out.push(
                n.handle
                    .with_engine(move |e| e.trust_table(&domain, Timestamp(u64::MAX)))
                    .await?,
            );
        }
        Ok(out)
    }

    /// Waits until every node holds message `id`.
    pub async fn wait_everywhere(&self, id: &ContentId) -> anyhow::Result<()> {
        let what = format!("every node to hold {id}");
        self.wait(&what, || async {
            for n in &self.nodes {
                if !n.handle.has(id).await?.engine {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
    }

    /// Every node's current view of a proposal.
    pub async fn views(&self, proposal: &ContentId) -> anyhow::Result<Vec<NodeView>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let v = n
                .handle
                .resolution(proposal)
                .await?
                .map_err(|e| anyhow!("{}: {}", n.name, e.error))?;
            out.push(NodeView::from_answer(&n.name, &v));
        }
        Ok(out)
    }

    /// Waits until every node holds a certificate for the proposal, all for
    /// the same result, in a finality state `accept` takes, and computes the
    /// certified digest itself. A certificate needs receipts from the
    /// attestors of the policy's finality quorum of organizations, not from
    /// every node. Returns every node's view.
    pub async fn wait_certified(
        &self,
        proposal: &ContentId,
        accept: impl Fn(State) -> bool,
    ) -> anyhow::Result<Vec<NodeView>> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let views = self.views(proposal).await?;
            let first = views.first().and_then(|v| v.certificate.clone());
            let certified = first.as_ref().is_some_and(|first| {
                views.iter().all(|v| {
                    accept(v.state)
                        && v.certificate
                            .as_ref()
                            .is_some_and(|c| c.same_result(first) && c.resolution == v.resolution)
                })
            });
            if certified {
                return Ok(views);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for a certificate on proposal {proposal}: {views:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait<F, Fut>(&self, what: &str, mut check: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while !check().await? {
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}

async fn start_node(
    name: &str,
    agent: &Keypair,
    (domain, genesis): (&str, ContentId),
    bootstrap: &[String],
) -> anyhow::Result<Node> {
    // Ephemeral: a temporary store and anchors in memory only, as the data
    // is thrown away with the scenario.
    let mut cfg = Config::ephemeral([domain]);
    cfg.bootstrap = bootstrap.to_vec();
    cfg.sync_interval_secs = 1;
    cfg.anchors = BTreeMap::from([(domain.to_owned(), genesis)]);
    let node = acp_node::Node::builder(cfg)
        .agent(agent.clone())
        .spawn()
        .await
        .with_context(|| format!("starting node {name}"))?;
    let addr = node
        .tcp_addr(WAIT_LIMIT)
        .await
        .ok_or_else(|| anyhow!("{name}: no listen address"))?;
    Ok(Node {
        name: name.to_owned(),
        agent: agent.clone(),
        handle: node.handle().clone(),
        addr: addr.to_string(),
        _node: node,
        tasks: Vec::new(),
    })
}
