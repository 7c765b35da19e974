//! The node core: one task that owns the [`Engine`] and the [`Store`], fed by
//! the transport ([`NetEvent`]s), local requests ([`NodeHandle`]) and time.
//!
//! It applies every engine effect in order: `Store` writes to sled (and, for
//! a local submission, flushes before the submission is acknowledged),
//! `Publish` goes to the transport, `Fetch` asks peers for the messages that
//! parked messages wait for, `Sync` runs an anti-entropy round for a domain
//! (before this node signs receipts), `Event` is logged and broadcast.
//!
//! Gossip is validated by the engine before gossipsub may forward it:
//! accepted -> `Accept`; rejected (invalid bytes, forged signature) ->
//! `Reject` (the sender loses peer score); duplicate, from the future,
//! waiting for its policy or proposal, or not admitted by the domain's
//! lineage -> `Ignore`. A peer that keeps forwarding messages no lineage
//! authorizes ([`STRIKES_TOLERATED`] within [`STRIKE_WINDOW`]) gets `Reject`
//! for the further ones, so its score drops like an invalid sender's.
//!
//! On start the trust anchors are loaded into the engine, then the engine is
//! rebuilt by ingesting every stored message with `Origin::Store`, in the
//! order they were first stored.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acp_protocol::admission::Refusal;
use acp_protocol::sync::{SyncRequest, SyncResponse};
use acp_protocol::{
    ContentId, Effect, Engine, EngineConfig, Event, IngestError, Keypair, Origin, Timestamp,
    Unverified,
};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{self, ConfigError};
use crate::storage::commit::GroupCommit;
use crate::storage::store::{Store, StoreError};
use crate::surface::api::types::{
    ControlRefusal, Held, IdList, NodeStatus, QueryAnswer, ResolutionAnswer,
};
use crate::surface::metrics::NodeMetrics;
use crate::surface::view;
use crate::transport::p2p::{self, Client, NetEvent};
use crate::transport::redis::{Inbound, RedisLink};
use crate::transport::sync::{ResponseError, Sessions};

pub use crate::surface::view::status_str;

/// Messages replayed per batch when rebuilding the engine from the store.
const REPLAY_BATCH: usize = 512;
/// Most queued transport events taken in one turn of the core loop; the
/// gossip among them is verified as one batch.
const MAX_BURST: usize = 256;
/// Refused gossip a forwarding peer may send within [`STRIKE_WINDOW`]
/// before its further refused messages are reported as `Reject`. An honest
/// peer with the same anchors forwards only what its lineage admitted, so it
/// never gets here; a few strikes still pass for a peer whose anchors differ
/// by mistake.
pub const STRIKES_TOLERATED: u32 = 16;
/// The window over which [`STRIKES_TOLERATED`] counts.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(60);
/// Peers asked for one `Effect::Fetch`: more than one, so one silent peer
/// does not stall the wait, and few, so a fetch does not fan out to all.
const FETCH_PEERS: usize = 3;
/// Most rounds of `Engine::tick` per turn of the core loop: a receipt this
/// node signs in one round may complete a certificate in the next.
const MAX_TICK_ROUNDS: usize = 4;
/// How long after start the node waits before finalizing (the engine's
/// finalize grace): time for the first sync rounds with its peers.
const STARTUP_SYNC_GRACE: Duration = Duration::from_secs(2);
/// How long a sync session's request may wait for an answer or a failure
/// before the session is dropped: the transport fails it after
/// [`p2p::SYNC_REQUEST_TIMEOUT`], so longer means that event was lost.
const SYNC_STALL: Duration = p2p::SYNC_REQUEST_TIMEOUT.saturating_mul(2);

/// A gossip message waiting for its verdict.
struct InGossip {
    source: PeerId,
    id: MessageId,
    domain: String,
    data: Vec<u8>,
}

/// The wall clock as protocol time (milliseconds since the Unix epoch).
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Why the node could not start or a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transport failed.
    #[error(transparent)]
    P2p(#[from] p2p::P2pError),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The node refused a query (the control channel's `error`).
    #[error("the node refused: {0}")]
    Refused(String),
}

/// A query answered with another kind of answer than it asks for: only a
/// refusal can be (each query has its one answer type).
fn unexpected(answer: QueryAnswer) -> NodeError {
    match answer {
        QueryAnswer::Refused(r) => NodeError::Refused(r.error),
        _ => NodeError::Refused("unexpected answer kind".to_owned()),
    }
}

/// Why a local submission was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The engine rejected the message (it is not stored).
    #[error("{0}")]
    Ingest(IngestError),
    /// The message could not be made durable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a trust anchor was not added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The node does not join the domain: without its topic the anchor
    /// would admit nothing.
    #[error(
        "this node does not join domain {0:?} (add it to `domains` in config.toml and restart)"
    )]
    NotJoined(String),
    /// The domain already has another genesis. Messages were admitted under
    /// it; switching lineages on a running node would leave them in the set,
    /// so a new genesis takes an edit of config.toml and a restart (which
    /// re-admits the store under the new anchor).
    #[error(
        "domain {domain:?} already has the genesis {current}; to change it, edit [anchors] in \
         config.toml and restart the node"
    )]
    Conflict {
        /// The domain.
        domain: String,
        /// Its genesis now.
        current: ContentId,
    },
    /// config.toml could not be updated (the anchor was not added).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// A durable, accepted local submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The message's content id.
    pub id: ContentId,
    /// False when the node already held it.
    pub new: bool,
}

/// Read-only questions to the node core (answered as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Query {
    /// Peer id, agent key, counts, peers, listen addresses, counters.
    Status,
    /// Sorted ids held in a domain (all domains when absent).
    Ids {
        /// Domain.
        domain: Option<String>,
    },
    /// Whether a message is held.
    Has {
        /// Content id.
        id: String,
    },
    /// The current resolution of a proposal and the receipts held for it.
    Resolution {
        /// Proposal id.
        proposal: String,
    },
}

enum Request {
    Submit {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Submitted, SubmitError>>,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<QueryAnswer>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), p2p::P2pError>>,
    },
    AddAnchor {
        domain: String,
        genesis: ContentId,
        reply: oneshot::Sender<Result<bool, AnchorError>>,
    },
    /// Runs a read-mostly closure on the engine, inside the core task.
    With(EngineJob),
}

/// A closure run on the engine inside the core task.
type EngineJob = Box<dyn FnOnce(&mut Engine) + Send>;

/// Capacity of the event broadcast; a subscriber that falls further behind
/// is told how many events it missed.
pub const EVENT_CAPACITY: usize = 1024;

/// A cloneable handle to the node core: the one entry point the control
/// API, the CLI and a later HTTP API call.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    tx: mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<Event>>,
    metrics: Arc<NodeMetrics>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Submit { .. } => "Submit",
            Request::Query { .. } => "Query",
            Request::Dial { .. } => "Dial",
            Request::AddAnchor { .. } => "AddAnchor",
            Request::With(_) => "With",
        })
    }
}

impl NodeHandle {
    /// Submits a message signed by the local agent. Returns once the message
    /// is validated, stored **and flushed to disk**, and handed to gossip.
    pub async fn submit(&self, bytes: Vec<u8>) -> Result<Submitted, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Submit { bytes, reply })
            .await
            .map_err(|_| SubmitError::Stopped)?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    /// Answers a [`Query`], typed.
    pub async fn answer(&self, query: Query) -> Result<QueryAnswer, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Query { query, reply })
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// The node's status.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        match self.answer(Query::Status).await? {
            QueryAnswer::Status(s) => Ok(*s),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the engine and the store hold message `id`.
    pub async fn has(&self, id: &ContentId) -> Result<Held, NodeError> {
        match self.answer(Query::Has { id: id.to_string() }).await? {
            QueryAnswer::Has(h) => Ok(h),
            other => Err(unexpected(other)),
        }
    }

    /// The resolution of a proposal with its finality and receipts; `Ok(Err)`
    /// when the node refuses (e.g. it does not hold the proposal).
    pub async fn resolution(
        &self,
        proposal: &ContentId,
    ) -> Result<Result<ResolutionAnswer, ControlRefusal>, NodeError> {
        let q = Query::Resolution {
            proposal: proposal.to_string(),
        };
        match self.answer(q).await? {
            QueryAnswer::Resolution(r) => Ok(Ok(*r)),
            QueryAnswer::Refused(e) => Ok(Err(e)),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `f` on the engine inside the core task and returns its result
    /// (for reads: resolutions, decision packages, trust, bundles).
    pub async fn with_engine<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        let (reply, rx) = oneshot::channel();
        let job: EngineJob = Box::new(move |e: &mut Engine| {
            let _ = reply.send(f(e));
        });
        self.tx
            .send(Request::With(job))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Subscribes to the engine's events (bounded: a slow subscriber
    /// receives `RecvError::Lagged` and skips ahead).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// The node's counters (see [`crate::surface::metrics`]).
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// Trusts `genesis` as the genesis policy of `domain` from now on, and
    /// writes it to config.toml (when the node has a data directory) before
    /// the engine takes it, so the anchor survives a restart. Returns false
    /// when the domain already had exactly this anchor.
    pub async fn add_anchor(
        &self,
        domain: String,
        genesis: ContentId,
    ) -> Result<bool, AnchorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::AddAnchor {
                domain,
                genesis,
                reply,
            })
            .await
            .map_err(|_| AnchorError::Stopped)?;
        rx.await.map_err(|_| AnchorError::Stopped)?
    }

    /// Dials a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Dial { addr, reply })
            .await
            .map_err(|_| NodeError::Stopped)?;
        Ok(rx.await.map_err(|_| NodeError::Stopped)??)
    }
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Joined domains.
    pub domains: Vec<String>,
    /// Trust anchors: genesis policy id by domain (config.toml's `[anchors]`).
    pub anchors: BTreeMap<String, ContentId>,
    /// The data directory whose config.toml receives anchors added while the
    /// node runs; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// Seconds between sync rounds.
    pub sync_interval: Duration,
    /// Ids per fetch.
    pub sync_batch: usize,
    /// Capacity of the request queue.
    pub queue_capacity: usize,
}

/// Called for every new listen address.
type ListenHook = Box<dyn FnMut(&Multiaddr) + Send>;

/// Writes the `Store` effects among `effects` as one store write.
pub fn write_effects(store: &dyn Store, effects: &[Effect]) -> Result<(), StoreError> {
    let writes: Vec<(ContentId, &[u8])> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Store { id, bytes } => Some((*id, bytes.as_slice())),
            _ => None,
        })
        .collect();
    if !writes.is_empty() {
        store.put_all(&writes)?;
    }
    Ok(())
}

/// The node core. Build with [`Core::new`], run with [`Core::run`].
pub struct Core {
    engine: Engine,
    store: Arc<dyn Store>,
    commit: GroupCommit,
    net: Client,
    events: mpsc::Receiver<NetEvent>,
    requests: mpsc::Receiver<Request>,
    cfg: CoreConfig,
    agent: acp_protocol::PublicKey,
    peers: HashMap<PeerId, Strikes>,
    /// Rotates which peers an `Effect::Fetch` asks.
    fetch_turn: usize,
    /// One anti-entropy session per peer with work under way.
    sync: Sessions,
    listen: Vec<Multiaddr>,
    on_listen: Option<ListenHook>,
    events_tx: broadcast::Sender<Arc<Event>>,
    metrics: Arc<NodeMetrics>,
    redis: Option<RedisLink>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

/// Refused gossip forwarded by one peer in the current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    since: Instant,
    count: u32,
}

impl Strikes {
    fn new(now: Instant) -> Self {
        Self {
            since: now,
            count: 0,
        }
    }

    /// Counts one refused message; true once the peer is over
    /// [`STRIKES_TOLERATED`] within [`STRIKE_WINDOW`].
    fn strike(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.since) > STRIKE_WINDOW {
            *self = Self::new(now);
        }
        self.count = self.count.saturating_add(1);
        self.count > STRIKES_TOLERATED
    }
}

/// A stable number per peer for the engine's per-source bound on messages
/// waiting for a dependency: one peer cannot fill the whole buffer.
fn source_of(peer: &PeerId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    peer.hash(&mut h);
    h.finish()
}

/// The source of Redis stream entries (one shared log, one share of the
/// waiting buffer).
const REDIS_SOURCE: u64 = u64::MAX;

/// Whether a refusal is the forwarding peer's doing. Without an anchor this
/// node refuses every honest message of the domain: its own configuration,
/// not the peer's fault.
fn peer_at_fault(refusal: Refusal) -> bool {
    refusal != Refusal::NoAnchor
}

impl Core {
    /// Rebuilds the engine from the store and wires the core to the
    /// transport. Returns the core and its handle.
    pub fn new(
        agent: Keypair,
        store: Arc<dyn Store>,
        net: Client,
        events: mpsc::Receiver<NetEvent>,
        cfg: CoreConfig,
    ) -> Result<(Self, NodeHandle), NodeError> {
        let agent_pub = agent.public();
        let mut engine = Engine::new(EngineConfig {
            receipt_key: Some(agent),
            ..EngineConfig::default()
        });
        // Anchors first: without them the store's messages are not admitted.
        for (domain, genesis) in &cfg.anchors {
            engine.add_anchor(domain, *genesis);
        }
        let t = now();
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(REPLAY_BATCH);
        let mut replayed = 0usize;
        // Messages stored under other anchors are refused now; one summary
        // line instead of one per message.
        let mut not_replayed: BTreeMap<String, usize> = BTreeMap::new();
        let mut replay = |engine: &mut Engine, batch: &mut Vec<Vec<u8>>| {
            let items: Vec<(&[u8], Origin)> = batch
                .iter()
                .map(|b| (b.as_slice(), Origin::Store))
                .collect();
            for r in engine.ingest_batch(&items, t) {
                match r {
                    Ok(_) => replayed += 1,
                    Err(IngestError::Duplicate(_)) => {}
                    Err(IngestError::NotAdmitted(r)) => {
                        *not_replayed.entry(r.code().to_owned()).or_default() += 1;
                    }
                    Err(IngestError::Pending { .. }) => {
                        *not_replayed.entry("pending".to_owned()).or_default() += 1;
                    }
                    Err(e) => tracing::warn!(error = %e, "stored message not replayed"),
                }
            }
            batch.clear();
        };
        for item in store.iter() {
            let (_, bytes) = item?;
            batch.push(bytes);
            if batch.len() == REPLAY_BATCH {
                replay(&mut engine, &mut batch);
            }
        }
        replay(&mut engine, &mut batch);
        tracing::info!(messages = replayed, "engine rebuilt from store");
        if !not_replayed.is_empty() {
            tracing::warn!(
                ?not_replayed,
                "stored messages not admitted under the configured anchors (kept in the store)"
            );
        }
        let (tx, requests) = mpsc::channel(cfg.queue_capacity);
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let metrics = Arc::new(NodeMetrics::new(net.shared_metrics()));
        let sync = Sessions::new(cfg.sync_batch);
        Ok((
            Self {
                engine,
                commit: GroupCommit::start(store.clone()),
                store,
                net,
                events,
                requests,
                cfg,
                agent: agent_pub,
                peers: HashMap::new(),
                fetch_turn: 0,
                sync,
                listen: Vec::new(),
                on_listen: None,
                events_tx: events_tx.clone(),
                metrics: metrics.clone(),
                redis: None,
            },
            NodeHandle {
                tx,
                events: events_tx,
                metrics,
            },
        ))
    }

    /// Calls `f` for every new listen address (e.g. to print it).
    pub fn on_listen(&mut self, f: impl FnMut(&Multiaddr) + Send + 'static) {
        self.on_listen = Some(Box::new(f));
    }

    /// Adds the Redis Streams transport (see [`crate::transport::redis`]): its entries
    /// are ingested like gossip, and what the node publishes or accepts from
    /// libp2p is appended to the streams.
    pub fn attach_redis(&mut self, link: RedisLink) {
        self.redis = Some(link);
    }

    /// Runs until the transport stops or every handle is dropped.
    pub async fn run(mut self) {
        let mut sync_timer = tokio::time::interval(self.cfg.sync_interval);
        sync_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What came due while the node was down is finalized (and its
        // receipts signed) only after the on-connect sync rounds had time to
        // bring what the node missed: a receipt is signed once per round and
        // never again, so it must not be signed on a stale set.
        let ticks_from = tokio::time::Instant::now() + STARTUP_SYNC_GRACE;
        loop {
            let ticking = tokio::time::Instant::now() >= ticks_from;
            let wake = if ticking {
                self.engine.next_wakeup().map(|t| {
                    let ms = t.0.saturating_sub(now().0);
                    tokio::time::Instant::now() + Duration::from_millis(ms.min(3_600_000))
                })
            } else {
                Some(ticks_from)
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => {
                        // Drain what is already queued, verify the gossip in
                        // it as one batch, then resolve once.
                        let mut burst = Vec::new();
                        self.on_net(ev, &mut burst).await;
                        for _ in 0..MAX_BURST {
                            match self.events.try_recv() {
                                Ok(ev) => self.on_net(ev, &mut burst).await,
                                Err(_) => break,
                            }
                        }
                        self.on_gossip(burst).await;
                    }
                    None => return,
                },
                req = self.requests.recv() => match req {
                    Some(r) => self.on_request(r).await,
                    None => return,
                },
                entry = recv_redis(&mut self.redis) => match entry {
                    Some(Inbound { domain, data }) => self.on_redis(&domain, &data).await,
                    None => {
                        tracing::warn!("redis transport stopped");
                        self.redis = None;
                    }
                },
                _ = sleep => {}
                _ = sync_timer.tick() => {
                    let domains = self.cfg.domains.clone();
                    self.sync_round(None, &domains).await;
                }
            }
            if tokio::time::Instant::now() >= ticks_from {
                self.tick().await;
            }
        }
    }

    async fn tick(&mut self) {
        for _ in 0..MAX_TICK_ROUNDS {
            let effects = self.engine.tick(now());
            if effects.is_empty() {
                return;
            }
            if let Err(e) = self.apply_with(effects, true).await {
                tracing::error!(error = %e, "storing a receipt failed");
            }
        }
    }

    /// Applies effects: every `Store` effect first, as one write, then the
    /// rest in order. A store error is returned after every effect was
    /// attempted.
    async fn apply(&mut self, effects: Vec<Effect>) -> Result<(), StoreError> {
        self.apply_with(effects, false).await
    }

    /// [`Core::apply`]; with `durable_publish`, what is published (this
    /// node's receipts, from a tick) is flushed to disk first. Otherwise a
    /// crash between publishing a receipt and sled's background flush would
    /// let the restarted node sign that round again, perhaps differently:
    /// two receipts of one round are its organization's equivocation.
    async fn apply_with(
        &mut self,
        effects: Vec<Effect>,
        durable_publish: bool,
    ) -> Result<(), StoreError> {
        let result = write_effects(self.store.as_ref(), &effects);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed");
        }
        if durable_publish
            && result.is_ok()
            && effects.iter().any(|e| matches!(e, Effect::Publish { .. }))
            && let Err(e) = self.commit.request().await
        {
            tracing::error!(error = %e, "flushing this node's receipts failed");
        }
        for e in effects {
            match e {
                Effect::Store { .. } => {}
                Effect::Publish { domain, id, bytes } => {
                    tracing::debug!(%id, %domain, "publish");
                    self.metrics.published();
                    self.append_to_redis(&domain, &bytes);
                    if self.net.publish(domain, bytes).await.is_err() {
                        tracing::warn!(%id, "transport stopped; not published");
                    }
                }
                Effect::Fetch { domain, ids } => self.fetch(&domain, &ids).await,
                Effect::Sync { domain } => {
                    tracing::debug!(%domain, "anti-entropy round before signing receipts");
                    self.sync_round(None, std::slice::from_ref(&domain)).await;
                }
                Effect::Event(ev) => {
                    log_event(&ev);
                    self.metrics.on_event(&ev);
                    // No subscriber is not an error.
                    let _ = self.events_tx.send(Arc::new(ev));
                }
            }
        }
        result
    }

    /// Asks a few peers for messages that parked messages wait for; what
    /// comes back is ingested like any synced message and releases them.
    async fn fetch(&mut self, domain: &str, ids: &[ContentId]) {
        let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
        if peers.is_empty() || ids.is_empty() {
            return;
        }
        peers.sort();
        let turn = self.fetch_turn;
        self.fetch_turn = self.fetch_turn.wrapping_add(1);
        let asked: Vec<PeerId> = (0..peers.len().min(FETCH_PEERS))
            .map(|i| peers[(turn + i) % peers.len()])
            .collect();
        tracing::debug!(%domain, ids = ids.len(), peers = asked.len(), "fetching dependencies");
        for peer in asked {
            self.sync.want(peer, ids);
            self.pump_sync(peer).await;
        }
    }

    /// Adds a trust anchor: written to config.toml first (so a failure
    /// leaves both unchanged), then taken by the engine, then a sync round
    /// for the domain fetches what was refused while it had no anchor.
    async fn add_anchor(
        &mut self,
        domain: String,
        genesis: ContentId,
    ) -> Result<bool, AnchorError> {
        config::check_domain(&domain)?;
        if !self.cfg.domains.contains(&domain) {
            return Err(AnchorError::NotJoined(domain));
        }
        match self.engine.set().anchor(&domain) {
            Some(current) if current == genesis => return Ok(false),
            Some(current) => return Err(AnchorError::Conflict { domain, current }),
            None => {}
        }
        if let Some(dir) = &self.cfg.data_dir {
            config::persist_anchor(dir, &domain, genesis)?;
        }
        self.engine.add_anchor(&domain, genesis);
        self.cfg.anchors.insert(domain.clone(), genesis);
        tracing::info!(%domain, %genesis, "trust anchor added");
        self.sync_round(None, std::slice::from_ref(&domain)).await;
        Ok(true)
    }

    async fn on_request(&mut self, r: Request) {
        match r {
            Request::Submit { bytes, reply } => self.submit(&bytes, reply).await,
            Request::Query { query, reply } => {
                let v = self.answer(query).await;
                let _ = reply.send(v);
            }
            Request::Dial { addr, reply } => {
                let _ = reply.send(self.net.dial(addr).await);
            }
            Request::AddAnchor {
                domain,
                genesis,
                reply,
            } => {
                let r = self.add_anchor(domain, genesis).await;
                let _ = reply.send(r);
            }
            Request::With(job) => job(&mut self.engine),
        }
    }

    /// Validates, stores and publishes a local submission, and acknowledges
    /// it once a flush covers it. The core does not wait for the disk: the
    /// submissions that arrive during one flush share the next (group commit).
    async fn submit(
        &mut self,
        bytes: &[u8],
        reply: oneshot::Sender<Result<Submitted, SubmitError>>,
    ) {
        let r = self.engine.ingest(bytes, Origin::Local, now());
        self.metrics.ingested(Origin::Local, &r);
        let written = match r {
            Ok(ing) => {
                let id = ing.id;
                tracing::info!(%id, kind = ?ing.kind, "local submission stored");
                self.apply(ing.effects)
                    .await
                    .map(|()| Submitted { id, new: true })
            }
            Err(IngestError::Duplicate(id)) => {
                self.store_held(&id).map(|()| Submitted { id, new: false })
            }
            Err(e) => {
                let _ = reply.send(Err(SubmitError::Ingest(e)));
                return;
            }
        };
        let submitted = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let durable = self.commit.request();
        tokio::spawn(async move {
            let r = durable.await.map(|()| submitted).map_err(SubmitError::from);
            let _ = reply.send(r);
        });
    }

    /// Writes a message the engine already holds (perhaps only in memory,
    /// e.g. gossip not yet flushed) unless the store has it.
    fn store_held(&self, id: &ContentId) -> Result<(), StoreError> {
        if !self.store.contains(id)?
            && let Some(b) = self.engine.get_bytes(id)
        {
            self.store.put(id, b)?;
        }
        Ok(())
    }

    /// Handles one transport event; gossip is set aside in `burst`.
    async fn on_net(&mut self, ev: NetEvent, burst: &mut Vec<InGossip>) {
        match ev {
            NetEvent::Gossip {
                source,
                id,
                domain,
                data,
            } => burst.push(InGossip {
                source,
                id,
                domain,
                data,
            }),
            NetEvent::SyncRequest {
                peer,
                data,
                channel,
            } => {
                let resp = match SyncRequest::from_bytes(&data) {
                    Ok(req) => self.engine.answer(&req),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "malformed sync request");
                        SyncResponse::Refused("malformed request".into())
                    }
                };
                let bytes = resp
                    .to_bytes()
                    .or_else(|_| SyncResponse::Refused("response too large".into()).to_bytes())
                    .unwrap_or_default();
                let _ = self.net.sync_respond(channel, bytes).await;
            }
            NetEvent::SyncResponse {
                peer,
                request,
                data,
            } => self.on_sync_response(peer, &request, &data).await,
            NetEvent::SyncFailed { peer, request } => {
                tracing::debug!(%peer, "sync request failed; session dropped");
                self.sync.on_failure(peer, &request);
            }
            NetEvent::Connected(peer) => {
                self.peers.insert(peer, Strikes::new(Instant::now()));
                tracing::info!(%peer, "peer connected");
                let domains = self.cfg.domains.clone();
                self.sync_round(Some(peer), &domains).await;
            }
            NetEvent::Disconnected(peer) => {
                self.peers.remove(&peer);
                self.sync.remove(&peer);
                tracing::info!(%peer, "peer disconnected");
            }
            NetEvent::Listening(addr) => {
                if let Some(f) = self.on_listen.as_mut() {
                    f(&addr);
                }
                self.listen.push(addr);
            }
        }
    }

    /// Validates a burst of gossip with one batch signature check, stores
    /// what is new in one write, and tells gossipsub whether to forward each.
    /// Gossip is not flushed here: it was never acknowledged to anyone, and a
    /// node that loses unflushed gossip in a crash gets it back through sync.
    async fn on_gossip(&mut self, burst: Vec<InGossip>) {
        if burst.is_empty() {
            return;
        }
        let mut verdicts = vec![MessageAcceptance::Reject; burst.len()];
        let mut checked = Vec::with_capacity(burst.len());
        let mut decoded = Vec::with_capacity(burst.len());
        for (i, g) in burst.iter().enumerate() {
            // A message must travel on its own domain's topic.
            match Unverified::decode(&g.data, Origin::Peer) {
                Ok(u) if u.envelope().body.domain() == g.domain => {
                    checked.push(i);
                    decoded.push(Ok(u.from_source(source_of(&g.source))));
                }
                Ok(_) => self.metrics.refused(Origin::Peer, "wrong_topic".into()),
                Err(e) => {
                    tracing::info!(error = %e, "gossip rejected");
                    self.metrics.refused(Origin::Peer, e.code());
                }
            }
        }
        let mut effects = Vec::new();
        let mut accepted = Vec::new();
        let results = self.engine.ingest_batch_decoded(decoded, now());
        let at = Instant::now();
        for (&i, r) in checked.iter().zip(results) {
            self.metrics.ingested(Origin::Peer, &r);
            verdicts[i] = match r {
                Ok(ing) => {
                    effects.extend(ing.effects);
                    accepted.push(i);
                    MessageAcceptance::Accept
                }
                Err(e) if e.is_reject() => {
                    tracing::info!(error = %e, "gossip rejected");
                    MessageAcceptance::Reject
                }
                Err(IngestError::NotAdmitted(refusal)) if peer_at_fault(refusal) => {
                    let source = burst[i].source;
                    // A source already disconnected has no strikes to add to.
                    let penalize = self.peers.get_mut(&source).is_some_and(|s| s.strike(at));
                    if penalize {
                        self.metrics.penalized();
                        tracing::info!(peer = %source, reason = refusal.code(),
                            "gossip not admitted; the peer keeps sending such messages: rejected");
                        MessageAcceptance::Reject
                    } else {
                        tracing::debug!(peer = %source, reason = refusal.code(), "gossip not admitted");
                        MessageAcceptance::Ignore
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "gossip ignored");
                    MessageAcceptance::Ignore
                }
            };
        }
        if let Err(e) = self.apply(effects).await {
            // Held in memory but not written: do not vouch for it to peers.
            tracing::error!(error = %e, "store failed for gossip");
            for &i in &accepted {
                verdicts[i] = MessageAcceptance::Ignore;
            }
        }
        for (g, verdict) in burst.into_iter().zip(verdicts) {
            if verdict == MessageAcceptance::Accept {
                self.append_to_redis(&g.domain, &g.data);
            }
            if self.net.report(g.id, g.source, verdict).await.is_err() {
                tracing::warn!("transport stopped");
            }
        }
    }

    /// Appends bytes to a domain's Redis stream (when Redis is attached).
    /// Never blocks the core: a full queue drops and logs.
    fn append_to_redis(&self, domain: &str, bytes: &[u8]) {
        if let Some(link) = &self.redis
            && link
                .outbound
                .try_send((domain.to_owned(), bytes.to_vec()))
                .is_err()
        {
            tracing::warn!(%domain, "redis queue full or stopped; not appended");
        }
    }

    /// Appends a held message to its domain's Redis stream.
    fn bridge_to_redis(&self, id: &ContentId) {
        if self.redis.is_none() {
            return;
        }
        let Some(domain) = self
            .engine
            .set()
            .get(id)
            .map(|m| m.body().domain().to_owned())
        else {
            return;
        };
        if let Some(bytes) = self.engine.get_bytes(id).map(<[u8]>::to_vec) {
            self.append_to_redis(&domain, &bytes);
        }
    }

    /// An entry read from a domain's Redis stream: validated exactly like
    /// gossip; accepted entries are stored and bridged to gossipsub.
    async fn on_redis(&mut self, domain: &str, data: &[u8]) {
        let u = match Unverified::decode(data, Origin::Peer) {
            Ok(u) if u.envelope().body.domain() == domain => u.from_source(REDIS_SOURCE),
            Ok(_) => {
                self.metrics.refused(Origin::Peer, "wrong_topic".into());
                tracing::info!(%domain, "redis entry on the wrong stream rejected");
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, "redis entry rejected");
                self.metrics.refused(Origin::Peer, e.code());
                return;
            }
        };
        // One message in, one result out.
        let Some(r) = self.engine.ingest_batch_decoded(vec![Ok(u)], now()).pop() else {
            return;
        };
        self.metrics.ingested(Origin::Peer, &r);
        match r {
            Ok(ing) => {
                let id = ing.id;
                if let Err(e) = self.apply(ing.effects).await {
                    tracing::error!(error = %e, "store failed for redis entry");
                    return;
                }
                tracing::debug!(%id, %domain, "redis entry accepted");
                // Bridge to libp2p (no peers: nothing happens).
                if self
                    .net
                    .publish(domain.to_owned(), data.to_vec())
                    .await
                    .is_err()
                {
                    tracing::warn!(%id, "transport stopped; not bridged");
                }
            }
            Err(e) if e.is_reject() => tracing::info!(error = %e, "redis entry rejected"),
            Err(e) => tracing::debug!(error = %e, "redis entry ignored"),
        }
    }

    /// One anti-entropy round over `domains` with one peer or all of them,
    /// queued in each peer's session.
    async fn sync_round(&mut self, only: Option<PeerId>, domains: &[String]) {
        let peers: Vec<PeerId> = match only {
            Some(p) => vec![p],
            None => self.peers.keys().copied().collect(),
        };
        if !peers.is_empty() {
            self.metrics.sync_round();
        }
        let stalled = self.sync.expire(Instant::now(), SYNC_STALL);
        if stalled > 0 {
            tracing::info!(stalled, "sync sessions without an answer dropped");
        }
        for peer in peers {
            self.sync.sync(peer, domains);
            self.pump_sync(peer).await;
        }
    }

    /// Sends `peer`'s session its next request, if it has one to send now.
    async fn pump_sync(&mut self, peer: PeerId) {
        let Some(req) = self.sync.poll(peer, Instant::now()) else {
            return;
        };
        let sent = match req.to_bytes() {
            Ok(b) => self.net.sync_request(peer, b).await.is_ok(),
            Err(e) => {
                tracing::warn!(error = %e, "sync request not encodable");
                false
            }
        };
        if !sent {
            self.sync.remove(&peer);
        }
    }

    async fn on_sync_response(&mut self, peer: PeerId, request: &[u8], data: &[u8]) {
        match self
            .sync
            .on_response(peer, request, data, self.engine.set())
        {
            Ok(messages) if !messages.is_empty() => self.ingest_synced(peer, &messages).await,
            Ok(_) => {}
            Err(ResponseError::Stale) => {
                tracing::debug!(%peer, "sync response to no request in flight");
            }
            Err(e) => tracing::info!(%peer, error = %e, "sync session with peer ended"),
        }
        self.pump_sync(peer).await;
    }

    /// Ingests messages a sync session fetched from `peer`, as one batch.
    async fn ingest_synced(&mut self, peer: PeerId, messages: &[Vec<u8>]) {
        let t = now();
        let source = source_of(&peer);
        let decoded = messages
            .iter()
            .map(|b| {
                Unverified::decode(b, Origin::Sync)
                    .map(|u| u.from_source(source))
                    .map_err(IngestError::from)
            })
            .collect();
        let mut fetched = 0usize;
        let mut effects = Vec::new();
        let mut bridged = Vec::new();
        for r in self.engine.ingest_batch_decoded(decoded, t) {
            self.metrics.ingested(Origin::Sync, &r);
            match r {
                Ok(ing) => {
                    fetched += 1;
                    bridged.push(ing.id);
                    effects.extend(ing.effects);
                }
                Err(e) if e.is_reject() => {
                    tracing::info!(%peer, error = %e, "synced message rejected");
                }
                Err(_) => {}
            }
        }
        if let Err(e) = self.apply(effects).await {
            tracing::error!(error = %e, "store failed for synced messages");
        }
        for id in bridged {
            self.bridge_to_redis(&id);
        }
        if fetched > 0 {
            tracing::info!(%peer, fetched, "sync fetched messages");
        }
    }

    async fn answer(&mut self, q: Query) -> QueryAnswer {
        match q {
            Query::Status => QueryAnswer::Status(Box::new(NodeStatus {
                ok: true,
                peer_id: self.net.local_peer_id().to_string(),
                agent: self.agent,
                messages: self.engine.set().len(),
                stored: self.store.len(),
                peers: self.peers.keys().map(|p| p.to_string()).collect(),
                listen: self.listen.iter().map(|a| a.to_string()).collect(),
                domains: self.cfg.domains.clone(),
                anchors: self.engine.set().anchors().clone(),
                metrics: self.net.metrics().snapshot(),
            })),
            Query::Ids { domain } => {
                let mut ids: Vec<ContentId> = self
                    .engine
                    .set()
                    .iter()
                    .filter(|m| domain.as_deref().is_none_or(|d| m.body().domain() == d))
                    .map(|m| m.id)
                    .collect();
                // Sorted by their text, as the answer has always been.
                ids.sort_by_cached_key(ToString::to_string);
                QueryAnswer::Ids(IdList { ok: true, ids })
            }
            Query::Has { id } => match id.parse::<ContentId>() {
                Ok(id) => QueryAnswer::Has(Held {
                    ok: true,
                    engine: self.engine.set().contains(&id),
                    store: self.store.contains(&id).unwrap_or(false),
                }),
                Err(e) => QueryAnswer::Refused(ControlRefusal::new(e)),
            },
            Query::Resolution { proposal } => match proposal.parse::<ContentId>() {
                Ok(id) => match self.resolution(&id) {
                    Ok(a) => QueryAnswer::Resolution(Box::new(a)),
                    Err(e) => QueryAnswer::Refused(e),
                },
                Err(e) => QueryAnswer::Refused(ControlRefusal::new(e)),
            },
        }
    }

    /// The control channel's view of a proposal: the status to act on, the
    /// computed result, its finality and every receipt held.
    fn resolution(&mut self, id: &ContentId) -> Result<ResolutionAnswer, ControlRefusal> {
        let pkg = self
            .engine
            .decision_package(id, now())
            .map_err(ControlRefusal::new)?;
        let r = &pkg.resolution;
        let set = self.engine.set();
        Ok(ResolutionAnswer {
            ok: true,
            proposal: *id,
            status: r.final_status(),
            computed_status: r.status,
            is_final: r.is_final,
            resolution: r.digest(),
            counted_root: r.counted_root,
            counted: r.votes.len(),
            responses: set.refs(id).map_or(0, |refs| refs.response_count()),
            finality: view::finality(r, pkg.policy.as_ref(), &pkg.after_certification),
            receipts: view::receipts(set, id),
        })
    }
}

/// The next Redis entry, or never when Redis is not attached.
async fn recv_redis(link: &mut Option<RedisLink>) -> Option<Inbound> {
    match link {
        Some(l) => l.inbound.recv().await,
        None => std::future::pending().await,
    }
}

fn log_event(ev: &Event) {
    match ev {
        Event::ProposalSeen {
            id,
            domain,
            proposer,
        } => tracing::info!(%id, %domain, proposer = %proposer.short(), "proposal seen"),
        Event::ResponseSeen {
            id,
            proposal,
            responder,
            stance,
        } => {
            tracing::info!(%id, %proposal, responder = %responder.short(), ?stance, "response seen")
        }
        Event::MessageSeen { id, kind, domain } => {
            tracing::info!(%id, ?kind, %domain, "message seen")
        }
        Event::Decided { resolution } => tracing::info!(
            proposal = %resolution.proposal,
            status = status_str(resolution.status),
            early = resolution.early,
            "resolved"
        ),
        Event::Escalated { resolution } => tracing::info!(
            proposal = %resolution.proposal,
            reasons = ?resolution.reasons,
            "escalated"
        ),
        Event::Finalized {
            resolution,
            receipt,
        } => tracing::info!(
            proposal = %resolution.proposal,
            status = status_str(resolution.status),
            resolution = %resolution.digest(),
            receipt = ?receipt.map(|r| r.to_string()),
            "finalized"
        ),
        Event::Equivocation {
            proposal,
            agent,
            responses,
        } => tracing::warn!(%proposal, agent = %agent, count = responses.len(), "equivocation"),
        Event::Divergence {
            proposal,
            previous,
            current,
        } => tracing::warn!(
            %proposal,
            previous = %previous.0,
            current = %current.digest(),
            status = status_str(current.status),
            "divergence: a late message changed a finalized, uncertified resolution"
        ),
        Event::ReceiptMismatch {
            proposal,
            node,
            theirs,
            ours,
        } => tracing::warn!(%proposal, node = %node, %theirs, %ours, "receipt mismatch"),
        Event::Certified { resolution } => tracing::info!(
            proposal = %resolution.proposal,
            status = status_str(resolution.final_status()),
            certificate = %view::summary(&resolution.finality),
            "certified"
        ),
        Event::Contested { resolution } => tracing::warn!(
            proposal = %resolution.proposal,
            "contested: no result of the votes can be certified; a human decides"
        ),
        Event::AttestorEquivocation {
            proposal,
            organization,
            receipts,
        } => tracing::warn!(
            %proposal,
            organization,
            receipts = ?receipts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "attestor equivocation: an organization signed two results in one round"
        ),
        Event::PolicyFork { domain, fork } => tracing::warn!(
            %domain,
            parent = %fork.parent,
            successors = ?fork.successors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "policy fork: two valid amendments of one policy (the earliest is followed)"
        ),
        Event::AfterCertification { proposal, id, kind } => tracing::warn!(
            %proposal,
            %id,
            ?kind,
            "message after certification: kept as evidence, the certified result stands"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strikes_penalize_past_the_tolerance_within_the_window() {
        let t0 = Instant::now();
        let mut s = Strikes::new(t0);
        let verdicts: Vec<bool> = (0..=STRIKES_TOLERATED).map(|_| s.strike(t0)).collect();
        assert!(verdicts[..STRIKES_TOLERATED as usize].iter().all(|p| !p));
        assert!(verdicts[STRIKES_TOLERATED as usize]);
        // A new window forgives.
        let later = t0 + STRIKE_WINDOW + Duration::from_secs(1);
        assert!(!s.strike(later));
        // Refusals for want of an anchor are this node's configuration.
        assert!(!peer_at_fault(Refusal::NoAnchor));
        assert!(
            Refusal::ALL
                .iter()
                .filter(|r| **r != Refusal::NoAnchor)
                .all(|r| peer_at_fault(*r))
        );
    }
}
