//! The libp2p transport, shaped like the rust-libp2p examples: one
//! [`EventLoop`] owns the [`Swarm`] and runs `tokio::select!` over swarm events
//! and a bounded command channel; everything else holds a cloneable
//! [`Client`].
//!
//! The transport moves opaque bytes. Gossip messages are handed to the node
//! core as [`NetEvent::Gossip`] and are *not* forwarded until the core reports
//! a validation result ([`Client::report`]): gossipsub runs with
//! `validate_messages()`, anonymous envelopes (ACP messages carry their own
//! signatures), message id = hash of the full bytes and peer scoring, so a
//! peer that sends invalid messages loses score and is eventually graylisted.
//!
//! Every queue is bounded. When the core's inbound queue is full, gossip is
//! reported as `Ignore` and dropped, inbound sync requests are dropped (the
//! peer sees a failed request and retries next round), and the drop is
//! counted in [`Metrics`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use acp_protocol::ContentId;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, mdns, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

/// The anti-entropy request-response protocol.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/acp/sync/2");
/// The Kademlia protocol name of ACP networks.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/acp/kad/1");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/acp/2";
/// How long a sync request waits for its answer before it fails.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest sync request, in bytes.
pub const MAX_SYNC_REQUEST: usize = 64 * 1024;
/// Largest sync response, in bytes.
pub const MAX_SYNC_RESPONSE: usize = acp_protocol::sync::MAX_SYNC_BYTES + 64 * 1024;

/// The gossip topic of a domain: `acp/2/<domain>` (the protocol version, so
/// nodes of different versions never mesh on one topic).
pub fn topic(domain: &str) -> IdentTopic {
    IdentTopic::new(format!("acp/2/{domain}"))
}

/// The domain of a gossip topic, if it is an ACP topic.
pub fn domain_of(topic: &TopicHash) -> Option<&str> {
    topic.as_str().strip_prefix("acp/2/")
}

/// The gossipsub message id of a payload: SHA-256 of all its bytes,
/// signatures included.
///
/// Not the content id: that leaves the signatures out, and gossipsub marks an
/// id as seen before validation, so a forged copy (same body, bad signature)
/// that arrived first would make every peer drop the genuine message as a
/// duplicate. Honest copies are byte-identical and still dedup here; the
/// engine dedups re-signed copies by content id.
pub fn message_id(data: &[u8]) -> MessageId {
    MessageId::from(ContentId::of(data).digest().to_vec())
}

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum P2pError {
    /// Building the swarm failed.
    #[error("transport: {0}")]
    Build(String),
    /// An address could not be listened on or dialed.
    #[error("address {addr}: {message}")]
    Address {
        /// The multiaddr.
        addr: String,
        /// Why.
        message: String,
    },
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
}

/// Settings of the transport.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers dialed on start.
    pub bootstrap: Vec<Multiaddr>,
    /// Domains whose topics are joined.
    pub domains: Vec<String>,
    /// mDNS discovery on or off.
    pub mdns: bool,
    /// Largest gossip message payload.
    pub max_message_bytes: usize,
    /// Capacity of the command and event queues and of gossipsub's per-peer
    /// send queue.
    pub queue_capacity: usize,
    /// Gossipsub mesh degree D (at least 2).
    pub mesh_degree: usize,
}

impl NetConfig {
    /// A bare participant in `domain`'s topic that only dials out: no
    /// listen address, no bootstrap, no mDNS, 1 MiB messages. For tools
    /// that speak gossip to a node directly (load generators, hostile
    /// peers), whatever a node's own configuration says.
    pub fn dialer(domain: &str) -> Self {
        NetConfig {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            domains: vec![domain.to_owned()],
            mdns: false,
            max_message_bytes: 1 << 20,
            queue_capacity: 4096,
            mesh_degree: DEFAULT_MESH_DEGREE,
        }
    }
}

/// Transport counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Gossip messages received (before validation).
    pub gossip_received: AtomicU64,
    /// Gossip messages published by this node.
    pub published: AtomicU64,
    /// Publications that failed (no peers, duplicate, too large).
    pub publish_failed: AtomicU64,
    /// Inbound events dropped because the core's queue was full.
    pub dropped_events: AtomicU64,
    /// Sync requests sent.
    pub sync_requests_sent: AtomicU64,
    /// Sync requests answered.
    pub sync_requests_served: AtomicU64,
    /// Outbound or inbound sync failures.
    pub sync_failures: AtomicU64,
    /// Bytes written to TCP connections (everything on the wire above TCP:
    /// Noise, yamux, every protocol). QUIC traffic is not counted.
    pub tcp_bytes_sent: AtomicU64,
    /// Bytes read from TCP connections (as [`Metrics::tcp_bytes_sent`]).
    pub tcp_bytes_received: AtomicU64,
    /// Gossipsub figures per subscribed topic, refreshed by the event loop
    /// every second.
    pub gossip_topics: std::sync::Mutex<Vec<TopicStats>>,
}

/// Gossipsub figures of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Connected peers subscribed to it.
    pub peers: u64,
    /// Peers in this node's mesh for it.
    pub mesh: u64,
}

/// A counter snapshot, for logs and the control API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct MetricsSnapshot {
    /// See [`Metrics::gossip_received`].
    pub gossip_received: u64,
    /// See [`Metrics::published`].
    pub published: u64,
    /// See [`Metrics::publish_failed`].
    pub publish_failed: u64,
    /// See [`Metrics::dropped_events`].
    pub dropped_events: u64,
    /// See [`Metrics::sync_requests_sent`].
    pub sync_requests_sent: u64,
    /// See [`Metrics::sync_requests_served`].
    pub sync_requests_served: u64,
    /// See [`Metrics::sync_failures`].
    pub sync_failures: u64,
    /// See [`Metrics::tcp_bytes_sent`].
    pub tcp_bytes_sent: u64,
    /// See [`Metrics::tcp_bytes_received`].
    pub tcp_bytes_received: u64,
}

impl Metrics {
    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            gossip_received: r(&self.gossip_received),
            published: r(&self.published),
            publish_failed: r(&self.publish_failed),
            dropped_events: r(&self.dropped_events),
            sync_requests_sent: r(&self.sync_requests_sent),
            sync_requests_served: r(&self.sync_requests_served),
            sync_failures: r(&self.sync_failures),
            tcp_bytes_sent: r(&self.tcp_bytes_sent),
            tcp_bytes_received: r(&self.tcp_bytes_received),
        }
    }

    /// The latest gossipsub figures per topic.
    pub fn gossip_topics(&self) -> Vec<TopicStats> {
        match self.gossip_topics.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A TCP stream that counts the bytes it moves into [`Metrics`].
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            this.metrics
                .tcp_bytes_received
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            this.metrics
                .tcp_bytes_sent
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Length-prefixed (u32, big endian) opaque byte frames with size limits
/// checked before allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sync frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    data: &[u8],
    max: usize,
) -> io::Result<()> {
    if data.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sync frame too large",
        ));
    }
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sync frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_SYNC_REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_SYNC_RESPONSE).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, MAX_SYNC_REQUEST).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, MAX_SYNC_RESPONSE).await
    }
}

/// The node's network behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Domain-scoped gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Peer routing.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Local network discovery (off in tests).
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// `/acp/sync/2` anti-entropy.
    pub sync: request_response::Behaviour<SyncCodec>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // Decision traffic is sparse: do not punish mesh peers for not
        // delivering enough messages (P3, P3b off).
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Invalid messages (P4) cost a lot: a handful graylists the sender.
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    }
}

/// Default gossipsub mesh degree D. Each node pushes a message on to about
/// D − 1 mesh peers, so D sets the copies sent per receiver; 3 is the largest
/// that keeps wire bytes under 3× the payload (`docs/BENCHMARKS.md`, item 4).
pub const DEFAULT_MESH_DEGREE: usize = 3;

/// Builds the swarm: TCP + Noise + yamux and QUIC, with [`Behaviour`].
/// Public so tests can build a (hostile) peer that speaks the same protocols.
pub fn build_swarm(key: Keypair, cfg: &NetConfig) -> Result<Swarm<Behaviour>, P2pError> {
    build_swarm_counted(key, cfg, Arc::new(Metrics::default()))
}

/// [`build_swarm`], counting TCP wire bytes into `metrics`.
pub fn build_swarm_counted(
    key: Keypair,
    cfg: &NetConfig,
    metrics: Arc<Metrics>,
) -> Result<Swarm<Behaviour>, P2pError> {
    let b = |e: &dyn std::fmt::Display| P2pError::Build(e.to_string());
    let max = cfg.max_message_bytes;
    let queue = cfg.queue_capacity;
    // gossipsub needs D_lo >= 1 (D - 1) and at least one outbound mesh peer.
    let d = cfg.mesh_degree.max(2);
    let domains = cfg.domains.clone();
    let use_mdns = cfg.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        // TCP + Noise + yamux as `with_tcp` builds it, with a byte counter
        // around the socket.
        .with_other_transport(|key| {
            use libp2p::Transport as _;
            let noise = noise::Config::new(key)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .map(move |inner, _| CountingStream { inner, metrics })
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| b(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gcfg = gossipsub::ConfigBuilder::default()
                // ACP messages are signed and content-addressed, and the
                // message id hashes all their bytes: gossipsub's own source,
                // sequence number and signature would add ~115 B to every
                // copy of a ~300 B message and prove nothing more. Scores
                // still land on the peer that forwarded a message.
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .validate_messages()
                .message_id_fn(|m: &gossipsub::Message| message_id(&m.data))
                .max_transmit_size(max + 4096)
                .connection_handler_queue_len(queue)
                .heartbeat_interval(Duration::from_millis(700))
                // A thin mesh is enough because it is not the only path:
                // IHAVE gossip reaches a node that missed a message from
                // about D holders within a heartbeat, and `/acp/sync/2`
                // (on connect and every `sync_interval_secs`) repairs the
                // rest, including publications made before any mesh formed.
                .mesh_n(d)
                .mesh_n_low(d - 1)
                .mesh_n_high(d + 1)
                .mesh_outbound_min(1)
                // The publisher's copy goes to its mesh (topped up with
                // random subscribed peers while the mesh forms), not to
                // every peer: flooding it cost a copy per connection.
                .flood_publish(false)
                // Each holder advertises an id once, to D peers whatever its
                // peer count (the default grows with it): a node that missed
                // the id already hears of it about D times.
                .gossip_lazy(d)
                .gossip_factor(0.0)
                .history_gossip(1)
                .build()
                .map_err(|e| b(&e))?;
            let mut gossipsub =
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gcfg)
                    .map_err(|e| b(&e))?;
            let mut params = gossipsub::PeerScoreParams::default();
            // The colocation penalty is aimed at sybils behind one public
            // address. On loopback (tests, demos, benchmarks) every peer
            // shares 127.0.0.1: beyond 10 peers, those outside the mesh
            // score below zero and cannot be grafted (a thin mesh cannot
            // heal), beyond 11 they get no IHAVE, beyond 14 none of their
            // RPCs are read.
            params.ip_colocation_factor_whitelist.extend([
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
            for d in &domains {
                params.topics.insert(topic(d).hash(), topic_score_params());
            }
            gossipsub
                .with_peer_score(params, gossipsub::PeerScoreThresholds::default())
                .map_err(|e| b(&e))?;
            let identify = identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.into(),
                key.public(),
            ));
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad::Config::new(KAD_PROTOCOL),
            );
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if use_mdns {
                Some(
                    mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                        .map_err(|e| b(&e))?,
                )
            } else {
                None
            };
            let sync = request_response::Behaviour::with_codec(
                SyncCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(SYNC_REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(64),
            );
            Ok(Behaviour {
                gossipsub,
                identify,
                kad,
                mdns: Toggle::from(mdns),
                sync,
            })
        })
        .map_err(|e| b(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// What the transport tells the node core.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message awaiting validation; answer with [`Client::report`].
    Gossip {
        /// The peer that forwarded it.
        source: PeerId,
        /// Its gossipsub id.
        id: MessageId,
        /// The domain of its topic.
        domain: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer asks for sync data; answer with [`Client::sync_respond`].
    SyncRequest {
        /// The asking peer.
        peer: PeerId,
        /// The encoded request.
        data: Vec<u8>,
        /// Where the answer goes.
        channel: ResponseChannel<Vec<u8>>,
    },
    /// The answer to a request sent with [`Client::sync_request`].
    SyncResponse {
        /// The answering peer.
        peer: PeerId,
        /// The encoded request it answers.
        request: Vec<u8>,
        /// The encoded response.
        data: Vec<u8>,
    },
    /// A request sent with [`Client::sync_request`] got no answer (timeout,
    /// closed connection, unsupported protocol).
    SyncFailed {
        /// The peer asked.
        peer: PeerId,
        /// The encoded request.
        request: Vec<u8>,
    },
    /// A connection to a new peer was established.
    Connected(PeerId),
    /// The last connection to a peer closed.
    Disconnected(PeerId),
    /// The node listens on a new address.
    Listening(Multiaddr),
}

#[derive(Debug)]
enum Command {
    Publish {
        domain: String,
        data: Vec<u8>,
    },
    Report {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    SyncRequest {
        peer: PeerId,
        data: Vec<u8>,
    },
    SyncRespond {
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), P2pError>>,
    },
}

/// A cloneable handle to the [`EventLoop`].
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    local_peer_id: PeerId,
}

impl Client {
    async fn send(&self, c: Command) -> Result<(), P2pError> {
        self.tx.send(c).await.map_err(|_| P2pError::Stopped)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Transport counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Transport counters, shared.
    pub fn shared_metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Publishes a payload on a domain's topic. Failure (no peer yet) is
    /// counted, not returned: anti-entropy delivers the message later.
    pub async fn publish(&self, domain: String, data: Vec<u8>) -> Result<(), P2pError> {
        self.send(Command::Publish { domain, data }).await
    }

    /// Reports the validation result of a [`NetEvent::Gossip`].
    pub async fn report(
        &self,
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    ) -> Result<(), P2pError> {
        self.send(Command::Report {
            id,
            source,
            acceptance,
        })
        .await
    }

    /// Sends a sync request; the answer arrives as [`NetEvent::SyncResponse`].
    pub async fn sync_request(&self, peer: PeerId, data: Vec<u8>) -> Result<(), P2pError> {
        self.send(Command::SyncRequest { peer, data }).await
    }

    /// Answers a [`NetEvent::SyncRequest`].
    pub async fn sync_respond(
        &self,
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    ) -> Result<(), P2pError> {
        self.send(Command::SyncRespond { channel, data }).await
    }

    /// Dials an address (returns once the dial started).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), P2pError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }
}

/// Owns the swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    metrics: Arc<Metrics>,
    outbound: HashMap<OutboundRequestId, Vec<u8>>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").finish_non_exhaustive()
    }
}

/// Builds the transport: listens, subscribes, dials the bootstrap peers.
/// Returns the client handle, the stream of [`NetEvent`]s for the core, and
/// the event loop to spawn.
pub fn new(
    key: Keypair,
    cfg: &NetConfig,
) -> Result<(Client, mpsc::Receiver<NetEvent>, EventLoop), P2pError> {
    let metrics = Arc::new(Metrics::default());
    let mut swarm = build_swarm_counted(key, cfg, metrics.clone())?;
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| P2pError::Address {
                addr: addr.to_string(),
                message: e.to_string(),
            })?;
    }
    for d in &cfg.domains {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic(d))
            .map_err(|e| P2pError::Build(e.to_string()))?;
    }
    for addr in &cfg.bootstrap {
        if let Some(peer) = peer_of(addr) {
            swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, strip_p2p(addr));
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "bootstrap dial failed");
        }
    }
    let (tx, commands) = mpsc::channel(cfg.queue_capacity);
    let (events, rx) = mpsc::channel(cfg.queue_capacity);
    let client = Client {
        tx,
        metrics: metrics.clone(),
        local_peer_id: *swarm.local_peer_id(),
    };
    let ev = EventLoop {
        swarm,
        commands,
        events,
        metrics,
        outbound: HashMap::new(),
    };
    Ok((client, rx, ev))
}

/// The peer id at the end of a multiaddr (`.../p2p/<id>`).
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

impl EventLoop {
    /// Runs until every [`Client`] is dropped.
    pub async fn run(mut self) {
        let mut stats = tokio::time::interval(Duration::from_secs(1));
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                _ = stats.tick() => self.refresh_gossip_stats(),
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => return,
                },
            }
        }
    }

    /// Copies gossipsub's peers and mesh size per topic into [`Metrics`].
    fn refresh_gossip_stats(&mut self) {
        let g = &self.swarm.behaviour().gossipsub;
        let mut out: Vec<TopicStats> = g
            .topics()
            .map(|t| TopicStats {
                topic: t.to_string(),
                peers: g.all_peers().filter(|(_, ts)| ts.contains(&t)).count() as u64,
                mesh: g.mesh_peers(t).count() as u64,
            })
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        match self.metrics.gossip_topics.lock() {
            Ok(mut v) => *v = out,
            Err(p) => *p.into_inner() = out,
        }
    }

    /// Hands an event to the core without ever blocking the swarm.
    fn emit(&mut self, ev: NetEvent) -> bool {
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                bump(&self.metrics.dropped_events);
                tracing::warn!(kind = ev_kind(&ev), "core queue full; event dropped");
                if let NetEvent::Gossip { source, id, .. } = ev {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Publish { domain, data } => {
                match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic(&domain), data)
                {
                    Ok(_) => bump(&self.metrics.published),
                    Err(e) => {
                        bump(&self.metrics.publish_failed);
                        tracing::debug!(%domain, error = %e, "publish failed");
                    }
                }
            }
            Command::Report {
                id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Command::SyncRequest { peer, data } => {
                let rid = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, data.clone());
                self.outbound.insert(rid, data);
                bump(&self.metrics.sync_requests_sent);
            }
            Command::SyncRespond { channel, data } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, data)
                    .is_err()
                {
                    bump(&self.metrics.sync_failures);
                } else {
                    bump(&self.metrics.sync_requests_served);
                }
            }
            Command::Dial { addr, reply } => {
                if let Some(peer) = peer_of(&addr) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, strip_p2p(&addr));
                }
                let res = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| P2pError::Address {
                        addr: addr.to_string(),
                        message: e.to_string(),
                    });
                let _ = reply.send(res);
            }
        }
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.emit(NetEvent::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 {
                    self.emit(NetEvent::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.emit(NetEvent::Disconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                bump(&self.metrics.gossip_received);
                match domain_of(&message.topic) {
                    Some(domain) => {
                        let domain = domain.to_owned();
                        self.emit(NetEvent::Gossip {
                            source: propagation_source,
                            id: message_id,
                            domain,
                            data: message.data,
                        });
                    }
                    None => {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                MessageAcceptance::Reject,
                            );
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                for (peer, addr) in list {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync(ev),
            _ => {}
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.emit(NetEvent::SyncRequest {
                        peer,
                        data: request,
                        channel,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(request) = self.outbound.remove(&request_id) {
                        self.emit(NetEvent::SyncResponse {
                            peer,
                            request,
                            data: response,
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                bump(&self.metrics.sync_failures);
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(request) = self.outbound.remove(&request_id) {
                    self.emit(NetEvent::SyncFailed { peer, request });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                bump(&self.metrics.sync_failures);
                tracing::debug!(%peer, %error, "inbound sync failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

fn ev_kind(ev: &NetEvent) -> &'static str {
    match ev {
        NetEvent::Gossip { .. } => "gossip",
        NetEvent::SyncRequest { .. } => "sync-request",
        NetEvent::SyncResponse { .. } => "sync-response",
        NetEvent::SyncFailed { .. } => "sync-failed",
        NetEvent::Connected(_) => "connected",
        NetEvent::Disconnected(_) => "disconnected",
        NetEvent::Listening(_) => "listening",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn topics_and_ids() {
        let t = topic("fraud.detection");
        assert_eq!(domain_of(&t.hash()), Some("fraud.detection"));
        assert_eq!(domain_of(&TopicHash::from_raw("other")), None);
        assert_eq!(message_id(b"x").0, ContentId::of(b"x").digest().to_vec());
        let kp = acp_protocol::Keypair::from_seed([7; 32]);
        let body = acp_protocol::Body::Response(acp_protocol::Response {
            responder: kp.public(),
            domain: "d".into(),
            proposal: ContentId::of(b"p"),
            stance: acp_protocol::Stance::Endorse,
            confidence_bps: 9000,
            reasoning: String::new(),
            evidence: Vec::new(),
            issued_at: acp_protocol::Timestamp(1),
        });
        let m = body.sign(&[&kp]).unwrap();
        // A forged copy of the same body must not share the genuine id.
        let mut forged = m.bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_ne!(message_id(&m.bytes), message_id(&forged));
    }

    #[tokio::test]
    async fn codec_rejects_oversized_frames() {
        let mut buf = Vec::new();
        let mut cur = futures::io::Cursor::new(&mut buf);
        write_frame(&mut cur, b"hello", 16).await.unwrap();
        let mut rd = futures::io::Cursor::new(buf.clone());
        assert_eq!(read_frame(&mut rd, 16).await.unwrap(), b"hello");
        let mut rd = futures::io::Cursor::new(buf);
        assert!(read_frame(&mut rd, 4).await.is_err());
    }
}
