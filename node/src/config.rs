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
//!
//! `config.toml` also holds the node's trust anchors (`[anchors]`): the
//! genesis policy of each domain it admits messages of. [`persist_anchor`]
//! adds one to the file without touching the rest of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use acp_protocol::ContentId;
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
    /// Domains whose gossip topics (`acp/2/<domain>`) the node joins.
    pub domains: Vec<String>,
    /// Address of the local control API. Keep it on loopback.
    #[serde(alias = "api_addr")]
    pub control_addr: SocketAddr,
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
    /// `acp:2:<domain>` per domain). With an empty `listen` the node is
    /// Redis-only; with both it bridges the two transports.
    pub redis_url: Option<String>,
    /// Trust anchors: the genesis policy id of each domain, by domain. The
    /// node admits no message of a domain without one.
    pub anchors: BTreeMap<String, ContentId>,
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
            control_addr: SocketAddr::from(([127, 0, 0, 1], 7420)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7421)),
            mdns: true,
            sync_interval_secs: 30,
            sync_batch: 256,
            max_message_bytes: acp_protocol::codec::MAX_MESSAGE_BYTES,
            queue_capacity: 1024,
            gossip_mesh_degree: crate::transport::p2p::DEFAULT_MESH_DEGREE,
            log_json: false,
            api_rate_per_sec: crate::surface::api::DEFAULT_RATE_PER_SEC,
            api_rate_burst: crate::surface::api::DEFAULT_RATE_BURST,
            redis_url: None,
            anchors: BTreeMap::new(),
        }
    }
}

impl Config {
    /// A node reachable on loopback only, every port chosen by the OS, mDNS
    /// off, joined to `domains`: for tests, examples and benchmarks.
    pub fn ephemeral<I: IntoIterator<Item = S>, S: Into<String>>(domains: I) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            domains: domains.into_iter().map(Into::into).collect(),
            control_addr: loopback,
            http_addr: loopback,
            mdns: false,
            ..Self::default()
        }
    }

    /// Parses and checks a configuration.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| {
            // The line, so that a bad value (an anchor's id, say) is found
            // without the multi-line rendering toml would print.
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::Parse {
                path: path.to_owned(),
                message: match line {
                    Some(l) => format!("line {l}: {}", e.message().replace('\n', " ")),
                    None => e.message().replace('\n', " "),
                },
            }
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
        for d in self.domains.iter().chain(self.anchors.keys()) {
            check_domain(d)?;
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

# Domains joined: one gossip topic "acp/2/<domain>" each.
domains = {domains}

# Local control API (submission, queries). Loopback only: it has no authentication.
control_addr = "{api}"

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
# "acp:2:<domain>" per domain, read from the beginning on start. With an
# empty `listen` list the node is Redis-only; with both it bridges them.
{redis}

# Trust anchors: the genesis policy id of each domain, `"<domain>" = "1220…"`.
# The node admits no message of a domain it has no anchor for (refused as
# `no_anchor`), and only policies that descend from the genesis by valid
# amendments, and what they authorize. `acp anchor add --domain D --genesis ID`
# adds one to the running node and to this file.
[anchors]
{anchors}
"#,
            listen = list(&self.listen),
            bootstrap = list(&self.bootstrap),
            domains = list(&self.domains),
            api = self.control_addr,
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
            anchors = self
                .anchors
                .iter()
                .map(|(d, g)| format!("{} = \"{g}\"", toml_edit::Key::new(d.as_str())))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}

/// Checks a domain name as `domains` and `[anchors]` take it.
pub fn check_domain(d: &str) -> Result<(), ConfigError> {
    if d.is_empty() || d.len() > 128 || d.contains(char::is_whitespace) {
        return Err(ConfigError::Invalid(format!("bad domain name {d:?}")));
    }
    Ok(())
}

/// Sets the trust anchor of `domain` in the data directory's `config.toml`,
/// keeping every other line and comment of the file as it is. The result is
/// checked to load before it replaces the file (write, then rename).
pub fn persist_anchor(
    data_dir: &Path,
    domain: &str,
    genesis: ContentId,
) -> Result<(), ConfigError> {
    check_domain(domain)?;
    let path = data_dir.join(CONFIG_FILE);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ConfigError::Io { path, source }
    };
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.clone(),
                message: e.message().replace('\n', " "),
            })?;
    let anchors = doc
        .entry("anchors")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| ConfigError::Invalid("`anchors` in config.toml is not a table".into()))?;
    anchors.insert(domain, toml_edit::value(genesis.to_string()));
    let updated = doc.to_string();
    let cfg = Config::from_toml(&updated, &path)?;
    if cfg.anchors.get(domain) != Some(&genesis) {
        return Err(ConfigError::Invalid(format!(
            "the anchor of {domain:?} did not land in {}",
            path.display()
        )));
    }
    let tmp = data_dir.join(format!("{CONFIG_FILE}.tmp"));
    std::fs::write(&tmp, updated).map_err(io(&tmp))?;
    // Keep the file's permissions (the operator may have narrowed them).
    if let Ok(meta) = std::fs::metadata(&path) {
        std::fs::set_permissions(&tmp, meta.permissions()).map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))
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
            anchors: [
                ("fraud.detection".to_owned(), ContentId::of(b"g1")),
                ("loans".to_owned(), ContentId::of(b"g2")),
            ]
            .into(),
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
        let e =
            Config::from_toml("[anchors]\nloans = \"not an id\"\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("line 2: content id"), "{e}");
    }

    #[test]
    fn persist_anchor_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let edited = format!(
            "# kept: the operator's note\n{}",
            Config::default().to_documented_toml()
        );
        std::fs::write(&path, &edited).unwrap();
        let (a, b) = (ContentId::of(b"a"), ContentId::of(b"b"));
        persist_anchor(dir.path(), "loans.retail", a).unwrap();
        persist_anchor(dir.path(), "fraud", b).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# kept: the operator's note\n"), "{text}");
        assert!(
            text.contains(&format!("\"loans.retail\" = \"{a}\"")),
            "{text}"
        );
        let cfg = Config::load(dir.path()).unwrap();
        assert_eq!(
            cfg.anchors,
            [("fraud".to_owned(), b), ("loans.retail".to_owned(), a)].into()
        );
        // Replacing an anchor rewrites its line only.
        persist_anchor(dir.path(), "fraud", a).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().anchors["fraud"], a);
        assert!(persist_anchor(dir.path(), "has space", a).is_err());
    }
}
