//! Scenario files: TOML, every field optional (defaults below). See
//! `docs/SIMULATIONS.md` for the reference and `simulations/scenarios/` for
//! the shipped examples.

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// A whole scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name used in output file names and tables.
    pub name: String,
    /// Seed used when the command line gives none.
    pub seed: u64,
    /// Virtual time at which the run stops.
    pub duration_ms: u64,
    /// How often agreement across nodes is sampled.
    pub sample_ms: u64,
    /// Nodes, domains, organizations.
    pub topology: Topology,
    /// Agent population and behaviour.
    pub agents: Agents,
    /// Byzantine behaviours.
    pub byzantine: Byzantine,
    /// Proposal schedule.
    pub proposals: Proposals,
    /// The policy's decision rules and engine settings.
    pub rules: Rules,
    /// Links, loss, skew, anti-entropy.
    pub network: Network,
    /// Scheduled faults: partitions, heals, crashes, restarts.
    pub events: Vec<FaultEvent>,
    /// Optional parameter sweep: one run per value.
    pub sweep: Option<Sweep>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "unnamed".into(),
            seed: 1,
            duration_ms: 120_000,
            sample_ms: 500,
            topology: Topology::default(),
            agents: Agents::default(),
            byzantine: Byzantine::default(),
            proposals: Proposals::default(),
            rules: Rules::default(),
            network: Network::default(),
            events: Vec::new(),
            sweep: None,
        }
    }
}

/// Nodes and domains.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topology {
    /// Nodes (each runs one `Engine`). Node `i` serves domain `i % domains`.
    pub nodes: usize,
    /// Domains (one policy and one gossip topic each).
    pub domains: usize,
    /// Honest organizations per domain; members are spread round-robin.
    /// Each organization's attestor runs on a node of the domain, so a
    /// domain needs at least this many nodes (one more with a sybil).
    pub organizations: usize,
    /// Eager-push mesh degree per topic (gossipsub `D`).
    pub mesh_degree: usize,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            nodes: 8,
            domains: 1,
            organizations: 4,
            mesh_degree: 6,
        }
    }
}

/// Honest and miscalibrated agents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agents {
    /// Agents in total (all domains), Byzantine ones included.
    pub count: usize,
    /// Probability an agent answers a given proposal.
    pub response_rate: f64,
    /// Range of honest signal accuracy (probability the private signal is right).
    pub accuracy: [f64; 2],
    /// Spread of a calibrated agent's stated confidence around its accuracy.
    pub confidence_noise: f64,
    /// Share of agents that are overconfident: accuracy `overconfident_accuracy`, confidence 0.95.
    pub overconfident_share: f64,
    /// Their signal accuracy.
    pub overconfident_accuracy: f64,
    /// Share of agents that are underconfident: accurate but state ~0.55.
    pub underconfident_share: f64,
    /// Median think time before responding (lognormal).
    pub think_median_ms: f64,
    /// Lognormal sigma of the think time.
    pub think_sigma: f64,
}

impl Default for Agents {
    fn default() -> Self {
        Self {
            count: 100,
            response_rate: 0.9,
            accuracy: [0.65, 0.9],
            confidence_noise: 0.03,
            overconfident_share: 0.0,
            overconfident_accuracy: 0.5,
            underconfident_share: 0.0,
            think_median_ms: 400.0,
            think_sigma: 0.6,
        }
    }
}

/// Byzantine behaviours. Shares are of all agents (members); counts are
/// outsiders (valid keys not in any policy).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Byzantine {
    /// Members that collude to vote against the truth at confidence 0.95.
    pub liar_share: f64,
    /// Members that sign two opposite responses; the second, signed with
    /// `issued_at = closes_at`, is published late (see `late_ms`).
    pub equivocator_share: f64,
    /// Members that answer only late (see `late_ms`), with `issued_at`
    /// backdated to `closes_at`.
    pub backdater_share: f64,
    /// Late messages are published `finalize_grace_ms + late_ms` after
    /// `closes_at`: after nodes finalized and attestors signed when
    /// positive, inside the grace period (while attestors sign) when
    /// negative. Before `closes_at`, a response carries its true time.
    pub late_ms: i64,
    /// Organizations per domain whose attestor, besides its honest receipt,
    /// signs every other round-0 result an attestor signed and a fabricated
    /// result shared with the other equivocating attestors (`late_ms` after
    /// finalizing).
    pub equivocating_attestors: usize,
    /// Share of members placed in one extra organization whose agents all lie together.
    pub sybil_share: f64,
    /// Outsiders that re-send honest responses with a corrupted signature.
    pub forgers: usize,
    /// Probability a forger copies a given response it sees.
    pub forge_prob: f64,
    /// Outsiders that re-send old valid messages.
    pub replayers: usize,
    /// Outsiders that send validly signed responses from a non-member key.
    pub flooders: usize,
    /// Messages per second per flooder.
    pub flood_rate_per_s: f64,
    /// Proposals whose ground truth is "bad" but which the proposer claims at 0.95.
    pub lying_proposal_share: f64,
}

impl Default for Byzantine {
    fn default() -> Self {
        Self {
            liar_share: 0.0,
            equivocator_share: 0.0,
            backdater_share: 0.0,
            late_ms: 500,
            equivocating_attestors: 0,
            sybil_share: 0.0,
            forgers: 0,
            forge_prob: 0.5,
            replayers: 0,
            flooders: 0,
            flood_rate_per_s: 20.0,
            lying_proposal_share: 0.0,
        }
    }
}

/// The proposal schedule: `rounds` rounds, `per_round` proposals per domain each.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Proposals {
    /// Rounds.
    pub rounds: usize,
    /// Proposals per domain per round.
    pub per_round: usize,
    /// First round starts here.
    pub start_ms: u64,
    /// Time between round starts.
    pub round_interval_ms: u64,
    /// `closes_at - created_at`.
    pub window_ms: u64,
    /// Share of proposals whose hidden ground truth is "good".
    pub good_share: f64,
    /// Outcome reports (the trust input) are published this long after finalization.
    pub report_delay_ms: u64,
    /// Publish outcome reports at all.
    pub reports: bool,
}

impl Default for Proposals {
    fn default() -> Self {
        Self {
            rounds: 5,
            per_round: 4,
            start_ms: 1_000,
            round_interval_ms: 15_000,
            window_ms: 8_000,
            good_share: 0.5,
            report_delay_ms: 1_000,
            reports: true,
        }
    }
}

/// Decision rules written into every domain policy, and engine settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Quorum margin.
    pub quorum_margin_bps: u16,
    /// Minimum participation.
    pub min_participation_bps: u16,
    /// Low-confidence floor.
    pub low_confidence_bps: u16,
    /// Weight cap of every organization.
    pub weight_cap_bps: u16,
    /// Engine `finalize_grace_ms`.
    pub finalize_grace_ms: u64,
    /// Engine `max_future_skew_ms`.
    pub max_future_skew_ms: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            quorum_margin_bps: 2_000,
            min_participation_bps: 5_000,
            low_confidence_bps: 5_500,
            weight_cap_bps: 10_000,
            finalize_grace_ms: 2_000,
            max_future_skew_ms: 60_000,
        }
    }
}

/// The network.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// One-way latency distribution of every link.
    pub latency: Latency,
    /// Probability a single transmission is lost.
    pub loss: f64,
    /// Uplink bandwidth per node in bytes per second (0 = unlimited).
    pub bandwidth_bytes_per_s: u64,
    /// Each node's clock is off by a uniform amount in `[-skew, +skew]`.
    pub clock_skew_ms: u64,
    /// Every node runs an anti-entropy round with one random reachable peer this often (0 = never).
    pub sync_interval_ms: u64,
    /// Gossip arrivals are batched per node for this long before ingesting.
    pub process_delay_ms: u64,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            loss: 0.0,
            bandwidth_bytes_per_s: 0,
            clock_skew_ms: 0,
            sync_interval_ms: 5_000,
            process_delay_ms: 5,
        }
    }
}

/// A latency distribution.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always `ms`.
    Constant {
        /// Milliseconds.
        ms: f64,
    },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform {
        /// Lower bound.
        min_ms: f64,
        /// Upper bound.
        max_ms: f64,
    },
    /// Lognormal with the given median and sigma, plus a floor.
    Lognormal {
        /// Median.
        median_ms: f64,
        /// Sigma of the underlying normal.
        sigma: f64,
        /// Added to every draw.
        floor_ms: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Lognormal {
            median_ms: 40.0,
            sigma: 0.5,
            floor_ms: 2.0,
        }
    }
}

/// A scheduled fault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// Kinds of scheduled faults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Split the nodes: explicit `groups` of node indices (unlisted nodes
    /// form one more group), or `split` contiguous groups of equal size.
    Partition {
        /// Explicit groups.
        #[serde(default)]
        groups: Vec<Vec<usize>>,
        /// Number of equal groups when `groups` is empty.
        #[serde(default)]
        split: usize,
    },
    /// Every link works again.
    Heal,
    /// A node stops; its store survives.
    Crash {
        /// Node index.
        node: usize,
    },
    /// A crashed node restarts from its store.
    Restart {
        /// Node index.
        node: usize,
    },
}

/// One run per value of a dotted scenario path, e.g. `byzantine.liar_share`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Dotted path into this scenario.
    pub path: String,
    /// Values (TOML values: numbers, booleans, strings).
    pub values: Vec<toml::Value>,
    /// Seeds per value (seed, seed+1, ...); results are averaged.
    #[serde(default = "one")]
    pub seeds: u64,
}

fn one() -> u64 {
    1
}

/// Set a dotted path in a TOML document (creating tables on the way).
pub fn set_path(doc: &mut toml::Value, path: &str, value: toml::Value) -> Result<(), SimError> {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table = cur.as_table_mut().ok_or_else(|| {
            SimError::Scenario(format!("`{path}`: `{part}` is not inside a table"))
        })?;
        if i + 1 == parts.len() {
            table.insert((*part).to_owned(), value);
            return Ok(());
        }
        cur = table
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::map::Map::new()));
    }
    Ok(())
}

/// Parse a `key=value` override; the value is read as TOML, or as a string.
pub fn parse_override(s: &str) -> Result<(String, toml::Value), SimError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| SimError::Scenario(format!("override `{s}` is not key=value")))?;
    let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()));
    Ok((k.trim().to_owned(), value))
}

impl Scenario {
    /// Parse a scenario document.
    pub fn from_value(v: toml::Value) -> Result<Self, SimError> {
        Ok(v.try_into()?)
    }

    /// Parse scenario text.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        Ok(toml::from_str(text)?)
    }
}
