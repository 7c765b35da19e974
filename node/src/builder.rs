//! The one way to start a node from code: [`Node::builder`] wires the
//! libp2p transport, the store, the core task, the optional Redis transport,
//! the HTTP API and the control channel, and returns a running [`Node`].
//!
//! With a data directory the keys, token and store come from its files (as
//! `acp init` wrote them) and anchors added at run time are written to its
//! `config.toml`. Without one the node is ephemeral: a fresh peer identity,
//! a temporary store that vanishes with the node, anchors in memory only;
//! the agent key must then be given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acp_protocol::{Keypair, PublicKey};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{self, Config, ConfigError};
use crate::keys::{self, KeyError};
use crate::service::{Core, CoreConfig, NodeHandle};
use crate::storage::store::{SledStore, Store, StoreError};
use crate::surface::api::{self, ApiKeys, ApiState};
use crate::surface::control;
use crate::transport::p2p::{self, NetConfig, P2pError};
use crate::transport::redis::{self, RedisError};

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key or token file could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Neither an agent key nor a data directory holding one was given.
    #[error("no agent key: give one, or a data directory that holds agent.key")]
    NoAgentKey,
    /// A configured address is not a multiaddr.
    #[error("{what} address {addr:?} is not a multiaddr: {message}")]
    Address {
        /// `listen` or `bootstrap`.
        what: &'static str,
        /// The address as configured.
        addr: String,
        /// The parser's message.
        message: String,
    },
    /// The store could not be opened or replayed.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The libp2p transport could not be built.
    #[error(transparent)]
    P2p(#[from] P2pError),
    /// The Redis transport could not be opened.
    #[error("starting the Redis transport: {0}")]
    Redis(#[from] RedisError),
    /// A listener could not be bound.
    #[error("binding the {what} on {addr}: {source}")]
    Bind {
        /// `HTTP API` or `control channel`.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The core task did not start.
    #[error(transparent)]
    Core(#[from] crate::service::NodeError),
}

/// Settings and keys of a node to start; see [`Node::builder`].
#[must_use]
pub struct NodeBuilder {
    config: Config,
    data_dir: Option<PathBuf>,
    agent: Option<Keypair>,
    human: Option<Keypair>,
    reporter: Option<Keypair>,
    token: Option<String>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("data_dir", &self.data_dir)
            .field("agent", &self.agent.as_ref().map(Keypair::public))
            .finish_non_exhaustive()
    }
}

/// A running node. Dropping it stops its tasks.
pub struct Node {
    handle: NodeHandle,
    peer_id: PeerId,
    agent: PublicKey,
    http_addr: SocketAddr,
    control_addr: SocketAddr,
    token: String,
    listen: watch::Receiver<Vec<Multiaddr>>,
    core: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .field("agent", &self.agent)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.core.abort();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Node {
    /// A builder for a node with `config` (see [`Config::ephemeral`] for one
    /// on loopback with ephemeral ports).
    pub fn builder(config: Config) -> NodeBuilder {
        NodeBuilder {
            config,
            data_dir: None,
            agent: None,
            human: None,
            reporter: None,
            token: None,
        }
    }

    /// The core's handle: submit, query, subscribe to events.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The agent key the node signs receipts (and API messages) with.
    pub fn agent(&self) -> PublicKey {
        self.agent
    }

    /// Where the HTTP API and the escalation page listen.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the JSON-lines control channel listens.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The HTTP API's bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The libp2p listen addresses so far; they arrive shortly after start.
    pub fn listen_addrs(&self) -> watch::Receiver<Vec<Multiaddr>> {
        self.listen.clone()
    }

    /// Waits (up to `limit`) for the first TCP listen address and returns it
    /// with `/p2p/<peer id>` appended: what another node bootstraps from.
    pub async fn tcp_addr(&self, limit: Duration) -> Option<Multiaddr> {
        let mut rx = self.listen.clone();
        let is_tcp = |a: &Multiaddr| {
            a.iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)))
        };
        let found = tokio::time::timeout(limit, rx.wait_for(|v| v.iter().any(is_tcp)))
            .await
            .ok()?
            .ok()?
            .iter()
            .find(|a| is_tcp(a))
            .cloned()?;
        Some(found.with(libp2p::multiaddr::Protocol::P2p(self.peer_id)))
    }

    /// Waits until the core task ends (the transport stopped or it failed).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.core).await;
    }
}

impl NodeBuilder {
    /// Reads the keys, the token and the store from `dir` (as `acp init`
    /// wrote it) and persists anchors added at run time to its config.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The agent key (overrides the data directory's `agent.key`).
    pub fn agent(mut self, key: Keypair) -> Self {
        self.agent = Some(key);
        self
    }

    /// The key the API signs human decisions with.
    pub fn human(mut self, key: Keypair) -> Self {
        self.human = Some(key);
        self
    }

    /// The key the API signs outcome reports with.
    pub fn reporter(mut self, key: Keypair) -> Self {
        self.reporter = Some(key);
        self
    }

    /// The HTTP API's bearer token (default: the data directory's, or a
    /// fresh random one).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Checks the configuration, opens everything and starts the tasks on
    /// the current tokio runtime.
    pub async fn spawn(self) -> Result<Node, StartError> {
        let cfg = self.config;
        cfg.check()?;
        let dir = self.data_dir.as_deref();
        let from_dir = |file: &str| dir.map(|d| d.join(file));
        let agent = match (self.agent, from_dir(keys::AGENT_KEY_FILE)) {
            (Some(k), _) => k,
            (None, Some(path)) => Keypair::from_seed(keys::read_seed_file(&path)?),
            (None, None) => return Err(StartError::NoAgentKey),
        };
        let optional = |given: Option<Keypair>, file: &str| -> Result<_, KeyError> {
            Ok(match (given, from_dir(file)) {
                (Some(k), _) => Some(k),
                (None, Some(path)) => keys::read_optional_seed(&path)?.map(Keypair::from_seed),
                (None, None) => None,
            })
        };
        let human = optional(self.human, keys::HUMAN_KEY_FILE)?;
        let reporter = optional(self.reporter, keys::REPORTER_KEY_FILE)?;
        let token = match (self.token, from_dir(keys::TOKEN_FILE)) {
            (Some(t), _) => t,
            (None, Some(path)) => keys::read_or_create_token(&path)?,
            (None, None) => hex::encode(keys::random_seed()?),
        };
        let peer_key = match from_dir(keys::PEER_KEY_FILE) {
            Some(path) => keys::read_peer_key(&path)?,
            None => libp2p::identity::Keypair::generate_ed25519(),
        };
        let store: Arc<dyn Store> = Arc::new(match dir {
            Some(d) => SledStore::open(&d.join(config::STORE_DIR))?,
            None => SledStore::temporary()?,
        });
        let net_cfg = NetConfig {
            listen: multiaddrs(&cfg.listen, "listen")?,
            bootstrap: multiaddrs(&cfg.bootstrap, "bootstrap")?,
            domains: cfg.domains.clone(),
            // Redis-only (no listen address): nothing to find on the LAN.
            mdns: cfg.mdns && !(cfg.listen.is_empty() && cfg.redis_url.is_some()),
            max_message_bytes: cfg.max_message_bytes,
            queue_capacity: cfg.queue_capacity,
            mesh_degree: cfg.gossip_mesh_degree,
        };
        let (client, events, event_loop) = p2p::new(peer_key, &net_cfg)?;
        let peer_id = client.local_peer_id();
        let (mut core, handle) = Core::new(
            agent.clone(),
            store,
            client,
            events,
            CoreConfig {
                domains: cfg.domains.clone(),
                anchors: cfg.anchors.clone(),
                data_dir: dir.map(ToOwned::to_owned),
                sync_interval: Duration::from_secs(cfg.sync_interval_secs),
                sync_batch: cfg.sync_batch,
                queue_capacity: cfg.queue_capacity,
            },
        )?;
        let (listen_tx, listen) = watch::channel(Vec::new());
        core.on_listen(move |addr| listen_tx.send_modify(|v| v.push(addr.clone())));
        let mut tasks = Vec::new();
        if let Some(url) = &cfg.redis_url {
            let (link, redis_tasks) = redis::open(
                url,
                cfg.domains.clone(),
                cfg.max_message_bytes,
                cfg.queue_capacity,
            )
            .await?;
            core.attach_redis(link);
            tasks.push(tokio::spawn(redis_tasks.run()));
        }
        let bind = |what, addr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let control_listener = bind("control channel", cfg.control_addr).await?;
        let http_listener = bind("HTTP API", cfg.http_addr).await?;
        let local = |l: &tokio::net::TcpListener, what, addr| {
            l.local_addr()
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let control_addr = local(&control_listener, "control channel", cfg.control_addr)?;
        let http_addr = local(&http_listener, "HTTP API", cfg.http_addr)?;
        let state = ApiState::with_rate_limit(
            handle.clone(),
            token.clone(),
            ApiKeys {
                agent: agent.clone(),
                human,
                reporter,
            },
            api::RateLimit {
                per_sec: cfg.api_rate_per_sec,
                burst: cfg.api_rate_burst,
            },
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = api::serve(http_listener, state).await {
                tracing::error!(error = %e, "HTTP api stopped");
            }
        }));
        tasks.push(tokio::spawn(event_loop.run()));
        tasks.push(tokio::spawn(control::serve(
            control_listener,
            handle.clone(),
        )));
        let core = tokio::spawn(core.run());
        tracing::info!(%peer_id, control = %control_addr, http = %http_addr, agent = %agent.public(), "node started");
        Ok(Node {
            handle,
            peer_id,
            agent: agent.public(),
            http_addr,
            control_addr,
            token,
            listen,
            core,
            tasks,
        })
    }
}

fn multiaddrs(v: &[String], what: &'static str) -> Result<Vec<Multiaddr>, StartError> {
    v.iter()
        .map(|s| {
            s.parse()
                .map_err(|e: libp2p::multiaddr::Error| StartError::Address {
                    what,
                    addr: s.clone(),
                    message: e.to_string(),
                })
        })
        .collect()
}
