//! The node's data directory and its `config.toml`.
//!
//! Layout of a data directory (created by `acp init`):
//!
//! ```text
//! <data-dir>/
//!   config.toml   documented settings (this module's `Config`)
//!   agent.key     the agent's Ed25519 seed, hex, mode 0600
//!   peer.key      the libp2p identity (protobuf), mode 0600
//!   human.key     the human key that signs decisions on escalations, mode 0600
//!   reporter.key  the key that signs outcome reports, mode 0600
//!   api.token     the HTTP API bearer token, mode 0600
//!   store/        the sled database holding the message set
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the configuration file inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Name of the sled database directory inside the data directory.
pub const STORE_DIR: &str = "store";
/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "ACP_DATA_DIR";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, on one line.
        message: String,
    },
    /// A value is out of range.
    #[error("config: {0}")]
    Invalid(String),
    /// No default data directory could be found.
    #[error("no data directory: pass --data-dir or set {DATA_DIR_ENV}")]
    NoDataDir,
}

/// Node settings, read from `config.toml`. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// libp2p listen addresses (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers dialed on start, as multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Domains whose gossip topics (`acp/1/<domain>`) the node joins.
    pub domains: Vec<String>,
    /// Address of the local control API. Keep it on loopback.
    pub api_addr: SocketAddr,
    /// Address of the HTTP API and the escalation page (bearer token).
    pub http_addr: SocketAddr,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Seconds between anti-entropy rounds with every connected peer.
    pub sync_interval_secs: u64,
    /// Most messages fetched in one sync request.
    pub sync_batch: usize,
    /// Largest message accepted from the network, in bytes.
    pub max_message_bytes: usize,
    /// Capacity of each internal queue; overflow is dropped and counted.
    pub queue_capacity: usize,
    /// Gossipsub mesh degree D: peers each message is pushed to per topic.
    pub gossip_mesh_degree: usize,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
    /// HTTP API requests per second (one bucket for the whole node); 0: no limit.
    pub api_rate_per_sec: u32,
    /// HTTP API requests allowed at once after an idle period.
    pub api_rate_burst: u32,
    /// Redis URL of the second transport (Redis Streams, one stream
    /// `acp:1:<domain>` per domain). With an empty `listen` the node is
    /// Redis-only; with both it bridges the two transports.
    pub redis_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/7400".into(),
                "/ip4/0.0.0.0/udp/7400/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            domains: vec!["default".into()],
            api_addr: SocketAddr::from(([127, 0, 0, 1], 7420)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7421)),
            mdns: true,
            sync_interval_secs: 30,
            sync_batch: 256,
            max_message_bytes: acp_protocol::codec::MAX_MESSAGE_BYTES,
            queue_capacity: 1024,
            gossip_mesh_degree: crate::p2p::DEFAULT_MESH_DEGREE,
            log_json: false,
            api_rate_per_sec: crate::api::DEFAULT_RATE_PER_SEC,
            api_rate_burst: crate::api::DEFAULT_RATE_BURST,
            redis_url: None,
        }
    }
}

impl Config {
    /// Parses and checks a configuration.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().replace('\n', " "),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Loads `config.toml` from a data directory.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&text, &path)
    }

    /// Checks value ranges.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.sync_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "sync_interval_secs must be at least 1".into(),
            ));
        }
        if self.sync_batch == 0 || self.sync_batch > 4096 {
            return Err(ConfigError::Invalid(
                "sync_batch must be in 1..=4096".into(),
            ));
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::Invalid(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if !(2..=12).contains(&self.gossip_mesh_degree) {
            return Err(ConfigError::Invalid(
                "gossip_mesh_degree must be in 2..=12".into(),
            ));
        }
        if self.max_message_bytes < 1024 || self.max_message_bytes > 16 * 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "max_message_bytes must be in 1024..=16777216".into(),
            ));
        }
        if self.api_rate_per_sec > 0 && self.api_rate_burst == 0 {
            return Err(ConfigError::Invalid(
                "api_rate_burst must be at least 1 when api_rate_per_sec is set".into(),
            ));
        }
        if let Some(u) = &self.redis_url
            && !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
        {
            return Err(ConfigError::Invalid(format!(
                "redis_url must start with redis://, rediss:// or unix:// (got {u:?})"
            )));
        }
        for d in &self.domains {
            if d.is_empty() || d.len() > 128 || d.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!("bad domain name {d:?}")));
            }
        }
        Ok(())
    }

    /// The documented `config.toml` written by `acp init`.
    pub fn to_documented_toml(&self) -> String {
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        format!(
            r#"# ACP node configuration. Every setting is optional; these are the defaults
# unless `acp init` was told otherwise.

# libp2p listen addresses: TCP (Noise + yamux) and QUIC.
listen = {listen}

# Peers dialed on start: multiaddrs ending in /p2p/<peer id>.
bootstrap = {bootstrap}

# Domains joined: one gossip topic "acp/1/<domain>" each.
domains = {domains}

# Local control API (submission, queries). Loopback only: it has no authentication.
api_addr = "{api}"

# HTTP API (/v1, OpenAPI at /v1/openapi.json) and the escalation page (/ui/).
# Every /v1 route except /v1/health needs `Authorization: Bearer <api.token>`.
http_addr = "{http}"

# Discover peers on the local network with mDNS.
mdns = {mdns}

# Seconds between anti-entropy rounds with each connected peer
# (a round also runs whenever a peer connects).
sync_interval_secs = {sync}

# Most messages fetched in one sync request.
sync_batch = {batch}

# Largest message accepted from the network, in bytes.
max_message_bytes = {max}

# Capacity of each internal queue; overflow is dropped and counted.
queue_capacity = {queue}

# Gossipsub mesh degree D: each node pushes a message to about D peers per
# topic. Wire bytes per delivered message grow about linearly with D (2.5x the
# payload at D = 3, 3.6-4x at D = 4, see docs/BENCHMARKS.md); a larger D
# delivers in fewer hops and tolerates more lost peers. Sync repairs what the
# mesh misses either way.
gossip_mesh_degree = {mesh}

# Log as JSON lines (RUST_LOG sets the filter, default "info").
log_json = {json}

# HTTP API rate limit, one token bucket for the whole node (checked before the
# token): requests per second, and requests allowed at once after an idle
# period. Over the limit: HTTP 429 with the error code "rate_limited".
# api_rate_per_sec = 0 turns the limit off.
api_rate_per_sec = {rate}
api_rate_burst = {burst}

# Redis Streams transport: the same signed messages on one stream
# "acp:1:<domain>" per domain, read from the beginning on start. With an
# empty `listen` list the node is Redis-only; with both it bridges them.
{redis}
"#,
            listen = list(&self.listen),
            bootstrap = list(&self.bootstrap),
            domains = list(&self.domains),
            api = self.api_addr,
            http = self.http_addr,
            mdns = self.mdns,
            sync = self.sync_interval_secs,
            batch = self.sync_batch,
            max = self.max_message_bytes,
            queue = self.queue_capacity,
            mesh = self.gossip_mesh_degree,
            json = self.log_json,
            rate = self.api_rate_per_sec,
            burst = self.api_rate_burst,
            redis = match &self.redis_url {
                Some(u) => format!("redis_url = {u:?}"),
                None => "# redis_url = \"redis://127.0.0.1:6379/\"".to_owned(),
            },
        )
    }
}

/// The data directory: `--data-dir`, else `ACP_DATA_DIR` (both handled by
/// clap), else `<user data dir>/acp`.
pub fn resolve_data_dir(explicit: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(p) => Ok(p),
        None => dirs::data_dir()
            .map(|d| d.join("acp"))
            .ok_or(ConfigError::NoDataDir),
    }
}

/// Creates the data directory with mode 0700 (no error if it exists).
pub fn create_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn documented_toml_round_trips() {
        let r = Config {
            listen: Vec::new(),
            redis_url: Some("redis://127.0.0.1:6379/".into()),
            ..Config::default()
        };
        assert_eq!(
            Config::from_toml(&r.to_documented_toml(), Path::new("c")).unwrap(),
            r
        );
        let c = Config {
            bootstrap: vec!["/ip4/127.0.0.1/tcp/1/p2p/x".into()],
            domains: vec!["fraud.detection".into(), "loans".into()],
            gossip_mesh_degree: 5,
            ..Config::default()
        };
        let text = c.to_documented_toml();
        assert_eq!(Config::from_toml(&text, Path::new("c")).unwrap(), c);
    }

    #[test]
    fn empty_file_gives_defaults_and_unknown_keys_fail() {
        assert_eq!(
            Config::from_toml("", Path::new("c")).unwrap(),
            Config::default()
        );
        let e = Config::from_toml("nope = 1", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let e = Config::from_toml("sync_interval_secs = 0", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("sync_interval_secs"));
        for d in ["1", "13"] {
            let e = Config::from_toml(&format!("gossip_mesh_degree = {d}"), Path::new("c"))
                .unwrap_err();
            assert!(e.to_string().contains("gossip_mesh_degree"), "{e}");
        }
    }
}
