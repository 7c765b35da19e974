//! The discrete-event world: a virtual clock, an event queue ordered by
//! `(time, sequence)`, simulated nodes each running the real
//! [`acp_protocol::Engine`], the links between them, and the agents.
//!
//! Nothing here reads the wall clock or spawns a thread; every random draw
//! comes from one seeded [`Rng`], so a scenario and a seed fix the run.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use acp_protocol::build::default_quorum;
use acp_protocol::finality::{Attested, Finality, State};
use acp_protocol::sync::{MAX_FETCH_IDS, SyncSession};
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, DomainPolicy, Effect, Engine, EngineConfig, Event,
    IngestError, Keypair, Kind, Member, Organization, Origin, Outcome, OutcomeReport, Proposal,
    PublicKey, Receipt, Resolution, Response, Stance, Status, Timestamp, Unverified,
    decode_unverified,
};

use crate::error::{SimError, ensure};
use crate::rng::Rng;
use crate::scenario::{FaultKind, Latency, Scenario};

/// Virtual time in microseconds since the start of the run.
pub type Micros = u64;

/// Signed timestamps are `EPOCH_MS + virtual ms + node skew` (2026-11-30T00:00Z).
pub const EPOCH_MS: u64 = 1_796_083_200_000;

/// What an agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Noisy signal, calibrated confidence.
    Honest,
    /// Weak signal, states 0.95.
    Overconfident,
    /// Good signal, states about 0.55.
    Underconfident,
    /// Colludes against the truth at 0.95.
    Liar,
    /// Signs two opposite responses.
    Equivocator,
    /// Answers after finalization with a backdated `issued_at`.
    Backdater,
    /// Member of the sybil organization (colluding liar).
    Sybil,
}

impl Class {
    /// Every class, in output order.
    pub const ALL: [Class; 7] = [
        Class::Honest,
        Class::Overconfident,
        Class::Underconfident,
        Class::Liar,
        Class::Equivocator,
        Class::Backdater,
        Class::Sybil,
    ];

    /// Name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Class::Honest => "honest",
            Class::Overconfident => "overconfident",
            Class::Underconfident => "underconfident",
            Class::Liar => "liar",
            Class::Equivocator => "equivocator",
            Class::Backdater => "backdater",
            Class::Sybil => "sybil",
        }
    }
}

/// A simulated agent (a member of one domain's policy).
#[derive(Debug)]
pub struct Agent {
    key: Keypair,
    /// Public key.
    pub pk: PublicKey,
    /// Behaviour.
    pub class: Class,
    /// Domain index.
    pub domain: usize,
    /// Hosting node.
    pub node: usize,
    accuracy: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutsiderKind {
    Forger,
    Replayer,
    Flooder,
}

#[derive(Debug)]
struct Outsider {
    key: Keypair,
    kind: OutsiderKind,
    node: usize,
    sent: u64,
}

#[derive(Debug)]
struct DomainInfo {
    name: String,
    /// The genesis policy: every node of the domain holds it as its trust anchor.
    policy: ContentId,
    policy_bytes: Arc<[u8]>,
    members: Vec<usize>,
    nodes: Vec<usize>,
    reporter: Keypair,
    /// The one key allowed to propose (listed in the policy's `proposers`):
    /// proposals come from a service, not from a voting member.
    proposer: Keypair,
}

/// What the world knows about a proposal it created.
#[derive(Debug)]
pub struct ProposalInfo {
    /// Content id.
    pub id: ContentId,
    /// Domain index.
    pub domain: usize,
    /// Round.
    pub round: usize,
    /// Hidden ground truth: taking the action is right.
    pub good: bool,
    /// Virtual creation time.
    pub created_us: Micros,
    /// Signed `closes_at`.
    pub closes_at: Timestamp,
    /// Virtual time of `closes_at` (creation plus the window).
    pub close_us: Micros,
    /// The resolution on the domain's first live honest node at the end of the run.
    pub reference: Option<Arc<Resolution>>,
    /// Divergence events raised on any node.
    pub divergences: u32,
}

/// One node's view of a proposal.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// First time this node finalized it (`u64::MAX` until then).
    pub first_final_us: Micros,
    /// First time this node announced a decision (maybe early).
    pub decided_us: Option<Micros>,
    /// Latest finalized resolution digest (the computed result).
    pub digest: ContentId,
    /// Its status.
    pub status: Status,
    /// Times the finalized (status, digest) changed after the first
    /// finalization: what v0.1 called final.
    pub final_changes: u32,
    /// The certificate in force as this node last saw it (a certified
    /// result, or round 0's certified escalation).
    pub cert: Option<Attested>,
    /// First time this node saw a certificate.
    pub cert_us: Option<Micros>,
    /// Times the certificate in force changed (or vanished) after this node
    /// first saw one; certified finality promises zero.
    pub cert_changes: u32,
    /// The finality state at the end of the run (live nodes only).
    pub end_state: Option<State>,
}

impl View {
    /// What a node that heard nothing of a proposal knows.
    pub fn empty() -> Self {
        Self {
            first_final_us: u64::MAX,
            decided_us: None,
            digest: ContentId([0; 32]),
            status: Status::Pending,
            final_changes: 0,
            cert: None,
            cert_us: None,
            cert_changes: 0,
            end_state: None,
        }
    }

    /// Fold in the finality of a resolution this node computed now.
    fn observe(&mut self, f: &Finality, now: Micros) {
        let current = match f.state {
            State::Certified | State::Escalated => f.certificate.as_ref().map(|c| c.result),
            State::Provisional | State::Contested => None,
        };
        match (self.cert, current) {
            (None, None) => {}
            (None, Some(c)) => {
                self.cert = Some(c);
                self.cert_us.get_or_insert(now);
            }
            // No human decides in the simulator, so round 1 never opens and
            // any move away from a certificate breaks finality.
            (Some(old), new) if Some(old) != new => {
                self.cert_changes += 1;
                self.cert = new;
            }
            (Some(_), _) => {}
        }
    }
}

/// Traffic and validation counters of one node.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NodeStats {
    /// Gossip transmissions sent.
    pub msgs_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Gossip transmissions received (duplicates included).
    pub msgs_recv: u64,
    /// Their bytes.
    pub bytes_recv: u64,
    /// Anti-entropy bytes sent and received.
    pub sync_bytes: u64,
    /// Messages fetched by anti-entropy.
    pub sync_msgs: u64,
    /// Dropped by the gossip seen-cache (same content id).
    pub duplicates: u64,
    /// Rejected by the engine (bad signature, bad encoding).
    pub rejected: u64,
    /// Valid but refused by admission (the lineage gives the author no role).
    pub refused: u64,
    /// Valid but waiting for their policy or proposal (parked, fetched).
    pub pending: u64,
    /// Messages received through `Effect::Fetch` requests.
    pub fetched: u64,
    /// Ignored as signed too far in the future.
    pub future: u64,
}

#[derive(Debug)]
struct InboxItem {
    bytes: Arc<[u8]>,
    origin: Origin,
    from: Option<usize>,
}

/// A simulated node.
#[derive(Debug)]
pub struct Node {
    key: Keypair,
    engine: Option<Engine>,
    /// Clock offset in ms.
    pub skew_ms: i64,
    /// Domain served.
    pub domain: usize,
    group: u32,
    store: Vec<Arc<[u8]>>,
    inbox: Vec<InboxItem>,
    process_scheduled: bool,
    wake_at: Option<Micros>,
    seen: HashSet<ContentId>,
    perm: Vec<usize>,
    mesh: Vec<usize>,
    agents: Vec<usize>,
    uplink_free: Micros,
    /// This node runs its organization's attestor key and also signs
    /// receipts for results it did not compute.
    pub equivocating_attestor: bool,
    /// Round-0 results this node's key signed, by proposal (its engine's
    /// receipt and, for an equivocating attestor, the extra ones).
    signed: HashSet<(ContentId, Attested)>,
    /// Views by proposal index.
    pub views: Vec<Option<View>>,
    /// Counters.
    pub stats: NodeStats,
}

impl Node {
    /// True while running.
    pub fn alive(&self) -> bool {
        self.engine.is_some()
    }

    /// Runs an unmodified engine and signs only what it computes.
    pub fn honest(&self) -> bool {
        !self.equivocating_attestor
    }

    /// Messages in the durable store.
    pub fn stored(&self) -> usize {
        self.store.len()
    }
}

/// A gossip message on a link. Its gossip id is the hash of all its bytes,
/// signatures included, as in the node: a forged copy of a genuine body has
/// another id and cannot make peers drop the genuine one as a duplicate.
#[derive(Clone, Debug)]
struct Wire {
    gid: ContentId,
    bytes: Arc<[u8]>,
}

impl Wire {
    fn new(bytes: Arc<[u8]>) -> Self {
        Self {
            gid: ContentId::of(&bytes),
            bytes,
        }
    }
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: usize,
        wire: Wire,
    },
    Process {
        node: usize,
    },
    Wake {
        node: usize,
    },
    Propose {
        domain: usize,
        round: usize,
        k: usize,
    },
    Respond {
        agent: usize,
        proposal: usize,
    },
    Equivocate {
        agent: usize,
        proposal: usize,
    },
    Backdate {
        agent: usize,
        proposal: usize,
    },
    Report {
        domain: usize,
        round: usize,
    },
    Fault(usize),
    Sync {
        node: usize,
    },
    SyncDone {
        node: usize,
        msgs: Vec<Arc<[u8]>>,
    },
    Outsider(usize),
    Sample,
    ExtraReceipt {
        node: usize,
        proposal: usize,
    },
}

impl Ev {
    fn tag(&self) -> u64 {
        match self {
            Ev::Deliver { to, from, .. } => 1 | (*to as u64) << 8 | (*from as u64) << 32,
            Ev::Process { node } => 2 | (*node as u64) << 8,
            Ev::Wake { node } => 3 | (*node as u64) << 8,
            Ev::Propose { domain, round, k } => {
                4 | (*domain as u64) << 8 | (*round as u64) << 24 | (*k as u64) << 40
            }
            Ev::Respond { agent, proposal } => 5 | (*agent as u64) << 8 | (*proposal as u64) << 40,
            Ev::Equivocate { agent, .. } => 6 | (*agent as u64) << 8,
            Ev::Backdate { agent, .. } => 7 | (*agent as u64) << 8,
            Ev::Report { domain, round } => 8 | (*domain as u64) << 8 | (*round as u64) << 32,
            Ev::Fault(i) => 9 | (*i as u64) << 8,
            Ev::Sync { node } => 10 | (*node as u64) << 8,
            Ev::SyncDone { node, msgs } => 11 | (*node as u64) << 8 | (msgs.len() as u64) << 32,
            Ev::Outsider(i) => 12 | (*i as u64) << 8,
            Ev::Sample => 13,
            Ev::ExtraReceipt { node, proposal } => {
                14 | (*node as u64) << 8 | (*proposal as u64) << 32
            }
        }
    }
}

/// Round trips and encoded bytes both ways of one session with a peer.
#[derive(Default)]
struct Exchange {
    trips: u64,
    bytes: u64,
}

impl Exchange {
    /// Drive `session` to its end against the peer's current state, as the
    /// node drives it over `/acp/sync/2`. What it fetches is returned, not
    /// ingested: it arrives after the round trips, so the local state the
    /// session reads stays the one at the start of the exchange.
    fn run(&mut self, mut session: SyncSession, local: &Engine, peer: &Engine) -> Vec<Arc<[u8]>> {
        let mut msgs = Vec::new();
        while let Some(req) = session.poll_request() {
            self.trips += 1;
            self.bytes += req.to_bytes().map_or(0, |v| v.len() as u64);
            let resp = peer.answer(&req);
            self.bytes += resp.to_bytes().map_or(0, |v| v.len() as u64);
            match session.handle_response(resp, local.set()) {
                Ok(m) => msgs.extend(m.into_iter().map(Arc::from)),
                Err(_) => break,
            }
        }
        msgs
    }
}

struct Entry {
    t: Micros,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on (time, seq).
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

/// One sample of agreement over time.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    /// Virtual time in ms.
    pub t_ms: u64,
    /// Share of closed proposals on which every live node of the domain holds the same final digest.
    pub agreed_share: f64,
    /// Whether every live node of each domain holds the same set (only checked after a heal).
    pub sets_equal: Option<bool>,
    /// Nodes alive.
    pub alive: usize,
}

/// Trust of each class at the start of a round (as the domain's first node computes it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrustPoint {
    /// Round.
    pub round: usize,
    /// Class.
    pub class: Class,
    /// Mean trust in bps.
    pub mean_trust_bps: f64,
}

/// The world.
pub struct World {
    /// The scenario.
    pub sc: Scenario,
    rng: Rng,
    queue: BinaryHeap<Entry>,
    seq: u64,
    /// Current virtual time.
    pub now: Micros,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Agents.
    pub agents: Vec<Agent>,
    outsiders: Vec<Outsider>,
    domains: Vec<DomainInfo>,
    /// Proposals created so far.
    pub proposals: Vec<ProposalInfo>,
    by_id: HashMap<ContentId, usize>,
    agent_by_pk: HashMap<PublicKey, usize>,
    answered: HashSet<(usize, usize)>,
    /// Events processed.
    pub events: u64,
    trace: u64,
    /// Agreement over time.
    pub samples: Vec<Sample>,
    /// Trust per class per round.
    pub trust: Vec<TrustPoint>,
    heal_at: Option<Micros>,
    /// Convergence time after each heal (ms), `None` if not reached by the end.
    pub convergence_ms: Vec<Option<u64>>,
    /// Equivocation events seen (over all nodes).
    pub equivocation_events: u64,
    /// Receipt mismatches seen (over all nodes).
    pub receipt_mismatches: u64,
    /// Attestor equivocations seen (over all nodes).
    pub attestor_equivocations: u64,
    /// Responses and decisions that arrived after certification (over all nodes).
    pub after_certification: u64,
    /// Engine ingests (all nodes).
    pub ingests: u64,
    /// Responses signed by agents.
    pub responses_signed: u64,
}

fn mix(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn id_word(id: &ContentId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(b)
}

/// The result a receipt signs.
fn attested(r: &Receipt) -> Attested {
    Attested {
        human_decision: r.human_decision,
        status: r.status,
        resolution: r.resolution,
        counted_root: r.counted_root,
    }
}

fn bps(x: f64) -> u16 {
    (x.clamp(0.0, 1.0) * 10_000.0).round() as u16
}

fn ms(t: Micros) -> u64 {
    t / 1_000
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World(t={}us, events={})", self.now, self.events)
    }
}

impl World {
    /// Build the world of a scenario with a seed: keys, policies, nodes, schedule.
    pub fn new(sc: Scenario, seed: u64) -> Result<Self, SimError> {
        let mut rng = Rng::new(seed);
        let t = &sc.topology;
        ensure(t.nodes >= 1 && t.domains >= 1, || {
            "need at least one node and domain".into()
        })?;
        ensure(t.nodes >= t.domains, || "every domain needs a node".into())?;
        ensure(sc.agents.count >= 2 * t.domains, || "too few agents".into())?;
        let mut keys = rng.fork(1);
        let mut nodes: Vec<Node> = (0..t.nodes)
            .map(|i| {
                let key = Keypair::from_seed(keys.bytes32());
                let skew = sc.network.clock_skew_ms as i64;
                let skew_ms = if skew > 0 {
                    rng.below(2 * skew as u64 + 1) as i64 - skew
                } else {
                    0
                };
                Node {
                    engine: None,
                    key,
                    skew_ms,
                    domain: i % t.domains,
                    group: 0,
                    store: Vec::new(),
                    inbox: Vec::new(),
                    process_scheduled: false,
                    wake_at: None,
                    seen: HashSet::new(),
                    perm: Vec::new(),
                    mesh: Vec::new(),
                    agents: Vec::new(),
                    uplink_free: 0,
                    equivocating_attestor: false,
                    signed: HashSet::new(),
                    views: Vec::new(),
                    stats: NodeStats::default(),
                }
            })
            .collect();
        // Agents, spread over domains round-robin, then classes per domain.
        let mut agents: Vec<Agent> = Vec::with_capacity(sc.agents.count);
        let mut domains = Vec::new();
        let (a, b) = (&sc.agents, &sc.byzantine);
        for d in 0..t.domains {
            let dnodes: Vec<usize> = (0..t.nodes).filter(|i| i % t.domains == d).collect();
            let count = sc.agents.count / t.domains + usize::from(d < sc.agents.count % t.domains);
            let share = |s: f64| (s * count as f64).round() as usize;
            let mut classes = Vec::with_capacity(count);
            for (class, s) in [
                (Class::Overconfident, a.overconfident_share),
                (Class::Underconfident, a.underconfident_share),
                (Class::Liar, b.liar_share),
                (Class::Equivocator, b.equivocator_share),
                (Class::Backdater, b.backdater_share),
                (Class::Sybil, b.sybil_share),
            ] {
                classes.extend(std::iter::repeat_n(class, share(s)));
            }
            ensure(classes.len() < count, || {
                "Byzantine/miscalibrated shares leave no honest agent".into()
            })?;
            classes.resize(count, Class::Honest);
            rng.shuffle(&mut classes);
            let mut members = Vec::new();
            for (j, class) in classes.into_iter().enumerate() {
                let key = Keypair::from_seed(keys.bytes32());
                let accuracy = match class {
                    Class::Honest | Class::Equivocator | Class::Backdater => {
                        rng.range_f64(a.accuracy[0], a.accuracy[1])
                    }
                    Class::Overconfident => a.overconfident_accuracy,
                    Class::Underconfident => a.accuracy[1],
                    Class::Liar | Class::Sybil => 0.0,
                };
                let node = dnodes[j % dnodes.len()];
                let idx = agents.len();
                nodes[node].agents.push(idx);
                members.push(idx);
                agents.push(Agent {
                    pk: key.public(),
                    key,
                    class,
                    domain: d,
                    node,
                    accuracy,
                });
            }
            let name = format!("sim.d{d}");
            let has_sybil = members.iter().any(|&m| agents[m].class == Class::Sybil);
            let n_orgs = t.organizations.max(1) + usize::from(has_sybil);
            ensure(dnodes.len() >= n_orgs, || {
                format!(
                    "domain {d} has {} nodes for {n_orgs} organizations: every organization needs a node to run its attestor",
                    dnodes.len()
                )
            })?;
            ensure(b.equivocating_attestors <= n_orgs, || {
                format!(
                    "{} equivocating attestors for {n_orgs} organizations",
                    b.equivocating_attestors
                )
            })?;
            let mut org_keys: Vec<Keypair> = (0..n_orgs)
                .map(|_| Keypair::from_seed(keys.bytes32()))
                .collect();
            // The last generated org is the sybil one; remember it before sorting.
            let sybil_root = has_sybil.then(|| org_keys[n_orgs - 1].public());
            org_keys.sort_by_key(Keypair::public);
            // One node per organization runs its attestor key; the others
            // observe. Placement is drawn per seed so that, over a sweep,
            // partitions split the attestors in every way.
            let mut placed = dnodes.clone();
            rng.shuffle(&mut placed);
            let attestors = &placed[..n_orgs];
            for &node in attestors.iter().take(b.equivocating_attestors) {
                nodes[node].equivocating_attestor = true;
            }
            let organizations: Vec<Organization> = org_keys
                .iter()
                .zip(attestors)
                .enumerate()
                .map(|(i, (k, &node))| Organization {
                    root: k.public(),
                    name: if Some(k.public()) == sybil_root {
                        "sybil".into()
                    } else {
                        format!("org{i}")
                    },
                    weight_cap_bps: sc.rules.weight_cap_bps,
                    attestor: nodes[node].key.public(),
                })
                .collect();
            let sybil_idx = organizations
                .iter()
                .position(|o| Some(o.root) == sybil_root);
            let honest_orgs: Vec<u16> = (0..n_orgs as u16)
                .filter(|i| Some(usize::from(*i)) != sybil_idx)
                .collect();
            let mut policy_members: Vec<Member> = members
                .iter()
                .enumerate()
                .map(|(j, &m)| Member {
                    agent: agents[m].pk,
                    organization: match (agents[m].class, sybil_idx) {
                        (Class::Sybil, Some(s)) => s as u16,
                        _ => honest_orgs[j % honest_orgs.len()],
                    },
                    authority_bps: 10_000,
                })
                .collect();
            policy_members.sort_by_key(|m| m.agent);
            let reporter = Keypair::from_seed(keys.bytes32());
            let proposer = Keypair::from_seed(keys.bytes32());
            let r = &sc.rules;
            let policy = Body::Policy(DomainPolicy {
                domain: name.clone(),
                revision: 1,
                issued_at: Timestamp(EPOCH_MS),
                organizations,
                members: policy_members,
                humans: Vec::new(),
                reporters: vec![reporter.public()],
                rules: DecisionRules {
                    quorum_margin_bps: r.quorum_margin_bps,
                    min_participation_bps: r.min_participation_bps,
                    low_confidence_bps: r.low_confidence_bps,
                    high_stakes: None,
                    min_window_ms: 1_000,
                    max_window_ms: 3_600_000,
                },
                proposers: vec![proposer.public()],
                supersedes: None,
                approvers: Vec::new(),
                amendment_quorum: default_quorum(n_orgs),
                finality_quorum: default_quorum(n_orgs),
            });
            let refs: Vec<&Keypair> = org_keys.iter().collect();
            let signed = policy.sign(&refs)?;
            domains.push(DomainInfo {
                name,
                policy: signed.id,
                policy_bytes: signed.bytes.into(),
                members,
                nodes: dnodes,
                reporter,
                proposer,
            });
        }
        for n in &mut nodes {
            n.engine = Some(Self::engine(&sc, &n.key, &domains[n.domain]));
        }
        let mut outsiders = Vec::new();
        for (kind, count) in [
            (OutsiderKind::Forger, b.forgers),
            (OutsiderKind::Replayer, b.replayers),
            (OutsiderKind::Flooder, b.flooders),
        ] {
            for _ in 0..count {
                outsiders.push(Outsider {
                    key: Keypair::from_seed(keys.bytes32()),
                    kind,
                    node: rng.below(t.nodes as u64) as usize,
                    sent: 0,
                });
            }
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            let mut perm: Vec<usize> = domains[n.domain]
                .nodes
                .iter()
                .copied()
                .filter(|&j| j != i)
                .collect();
            rng.shuffle(&mut perm);
            n.perm = perm;
        }
        let agent_by_pk = agents.iter().enumerate().map(|(i, a)| (a.pk, i)).collect();
        let mut w = Self {
            sc,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            nodes,
            agents,
            outsiders,
            domains,
            proposals: Vec::new(),
            by_id: HashMap::new(),
            agent_by_pk,
            answered: HashSet::new(),
            events: 0,
            trace: seed,
            samples: Vec::new(),
            trust: Vec::new(),
            heal_at: None,
            convergence_ms: Vec::new(),
            equivocation_events: 0,
            receipt_mismatches: 0,
            attestor_equivocations: 0,
            after_certification: 0,
            ingests: 0,
            responses_signed: 0,
        };
        w.rebuild_mesh();
        w.schedule_initial();
        Ok(w)
    }

    /// A node's engine: its key signs receipts, and its operators configured
    /// the domain's genesis policy as the trust anchor.
    fn engine(sc: &Scenario, key: &Keypair, domain: &DomainInfo) -> Engine {
        let mut e = Engine::new(EngineConfig {
            receipt_key: Some(key.clone()),
            finalize_grace_ms: sc.rules.finalize_grace_ms,
            max_future_skew_ms: sc.rules.max_future_skew_ms,
            ..EngineConfig::default()
        });
        e.add_anchor(&domain.name, domain.policy);
        e
    }

    fn schedule_initial(&mut self) {
        // Every node starts holding its domain's policy (as configured by the operators).
        for n in 0..self.nodes.len() {
            let d = self.nodes[n].domain;
            let bytes = self.domains[d].policy_bytes.clone();
            self.nodes[n].inbox.push(InboxItem {
                bytes,
                origin: Origin::Local,
                from: None,
            });
            self.at(0, Ev::Process { node: n });
            self.nodes[n].process_scheduled = true;
        }
        let p = self.sc.proposals.clone();
        for round in 0..p.rounds {
            for d in 0..self.domains.len() {
                for k in 0..p.per_round {
                    let t = (p.start_ms + round as u64 * p.round_interval_ms) * 1_000;
                    self.at(
                        t,
                        Ev::Propose {
                            domain: d,
                            round,
                            k,
                        },
                    );
                }
            }
        }
        for i in 0..self.sc.events.len() {
            let t = self.sc.events[i].at_ms * 1_000;
            self.at(t, Ev::Fault(i));
        }
        let si = self.sc.network.sync_interval_ms;
        if si > 0 {
            for n in 0..self.nodes.len() {
                let t = self.rng.below(si * 1_000) + si * 1_000;
                self.at(t, Ev::Sync { node: n });
            }
        }
        for i in 0..self.outsiders.len() {
            let t = 1_000_000 + self.rng.below(1_000_000);
            self.at(t, Ev::Outsider(i));
        }
        if self.sc.sample_ms > 0 {
            self.at(self.sc.sample_ms * 1_000, Ev::Sample);
        }
    }

    fn at(&mut self, t: Micros, ev: Ev) {
        self.seq += 1;
        self.queue.push(Entry {
            t: t.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    fn local(&self, n: usize) -> Timestamp {
        Timestamp((EPOCH_MS as i64 + ms(self.now) as i64 + self.nodes[n].skew_ms) as u64)
    }

    /// The trace hash: every processed event and every decision folded in.
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    /// Run to `duration_ms`, calling `progress(now_ms)` now and then.
    pub fn run(&mut self, mut progress: impl FnMut(u64)) {
        let end = self.sc.duration_ms * 1_000;
        while let Some(e) = self.queue.pop() {
            if e.t > end {
                break;
            }
            self.now = e.t;
            self.events += 1;
            self.trace = mix(mix(self.trace, e.t), e.ev.tag());
            if self.events.is_multiple_of(20_000) {
                progress(ms(self.now));
            }
            self.handle(e.ev);
        }
        self.now = end;
        self.finish();
        progress(ms(end));
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, from, wire } => self.deliver(to, from, wire),
            Ev::Process { node } => self.process(node),
            Ev::Wake { node } => {
                self.nodes[node].wake_at = None;
                self.process(node);
            }
            Ev::Propose { domain, round, k } => self.propose(domain, round, k),
            Ev::Respond { agent, proposal } => self.respond(agent, proposal),
            Ev::Equivocate { agent, proposal } => self.equivocate(agent, proposal),
            Ev::Backdate { agent, proposal } => self.backdate(agent, proposal),
            Ev::Report { domain, round } => self.report(domain, round),
            Ev::Fault(i) => self.fault(i),
            Ev::Sync { node } => {
                self.sync(node);
                let si = self.sc.network.sync_interval_ms * 1_000;
                let jitter = self.rng.below(si / 5 + 1);
                self.at(self.now + si - si / 10 + jitter, Ev::Sync { node });
            }
            Ev::SyncDone { node, msgs } => {
                if self.nodes[node].alive() {
                    for bytes in msgs {
                        self.nodes[node].inbox.push(InboxItem {
                            bytes,
                            origin: Origin::Sync,
                            from: None,
                        });
                    }
                    self.schedule_process(node);
                }
            }
            Ev::Outsider(i) => self.outsider(i),
            Ev::ExtraReceipt { node, proposal } => self.fabricated_receipt(node, proposal),
            Ev::Sample => {
                self.sample();
                self.at(self.now + self.sc.sample_ms * 1_000, Ev::Sample);
            }
        }
    }

    // ---- network ----------------------------------------------------------

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.nodes[a].alive() && self.nodes[b].alive() && self.nodes[a].group == self.nodes[b].group
    }

    /// Gossipsub keeps `D` mesh peers per topic among reachable subscribers;
    /// after a partition, heal, crash or restart the mesh is re-grafted.
    fn rebuild_mesh(&mut self) {
        let d = self.sc.topology.mesh_degree.max(1);
        for i in 0..self.nodes.len() {
            let mesh: Vec<usize> = self.nodes[i]
                .perm
                .iter()
                .copied()
                .filter(|&j| self.link_up(i, j))
                .take(d)
                .collect();
            self.nodes[i].mesh = mesh;
        }
        // Make the mesh symmetric, as GRAFT is.
        for i in 0..self.nodes.len() {
            for j in self.nodes[i].mesh.clone() {
                if !self.nodes[j].mesh.contains(&i) {
                    self.nodes[j].mesh.push(i);
                }
            }
        }
    }

    fn latency_us(&mut self) -> Micros {
        let ms = match self.sc.network.latency {
            Latency::Constant { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => self.rng.range_f64(min_ms, max_ms),
            Latency::Lognormal {
                median_ms,
                sigma,
                floor_ms,
            } => floor_ms + median_ms * (sigma * self.rng.normal()).exp(),
        };
        (ms.max(0.0) * 1_000.0) as Micros
    }

    /// Transmit one message over a link: uplink serialization, loss, latency.
    fn send(&mut self, from: usize, to: usize, wire: Wire) {
        if !self.link_up(from, to) {
            return;
        }
        let len = wire.bytes.len() as u64;
        let st = &mut self.nodes[from].stats;
        st.msgs_sent += 1;
        st.bytes_sent += len;
        let bw = self.sc.network.bandwidth_bytes_per_s;
        let mut t = self.now;
        if let Some(tx) = (len * 1_000_000).checked_div(bw) {
            let start = self.nodes[from].uplink_free.max(self.now);
            t = start + tx;
            self.nodes[from].uplink_free = t;
        }
        if self.rng.chance(self.sc.network.loss) {
            return;
        }
        let lat = self.latency_us();
        self.at(t + lat, Ev::Deliver { to, from, wire });
    }

    fn gossip(&mut self, from: usize, wire: &Wire, except: Option<usize>) {
        for j in self.nodes[from].mesh.clone() {
            if Some(j) != except {
                self.send(from, j, wire.clone());
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, wire: Wire) {
        let node = &mut self.nodes[to];
        if !node.alive() {
            return;
        }
        node.stats.msgs_recv += 1;
        node.stats.bytes_recv += wire.bytes.len() as u64;
        if !node.seen.insert(wire.gid) {
            node.stats.duplicates += 1;
            return;
        }
        node.inbox.push(InboxItem {
            bytes: wire.bytes,
            origin: Origin::Peer,
            from: Some(from),
        });
        self.schedule_process(to);
    }

    fn schedule_process(&mut self, n: usize) {
        if !self.nodes[n].process_scheduled {
            self.nodes[n].process_scheduled = true;
            let t = self.now + self.sc.network.process_delay_ms * 1_000;
            self.at(t, Ev::Process { node: n });
        }
    }

    // ---- node -------------------------------------------------------------

    fn process(&mut self, n: usize) {
        self.nodes[n].process_scheduled = false;
        let now = self.local(n);
        let inbox = std::mem::take(&mut self.nodes[n].inbox);
        let node = &mut self.nodes[n];
        let Some(engine) = node.engine.as_mut() else {
            return;
        };
        let mut effects = Vec::new();
        let mut forward = Vec::new();
        if !inbox.is_empty() {
            // Tagged by sender, as the node does, so that one peer cannot
            // fill the buffer of messages waiting for a dependency.
            let decoded = inbox
                .iter()
                .map(|i| {
                    Unverified::decode(&i.bytes, i.origin)
                        .map(|u| match i.from {
                            Some(from) => u.from_source(from as u64),
                            None => u,
                        })
                        .map_err(IngestError::from)
                })
                .collect();
            let results = engine.ingest_batch_decoded(decoded, now);
            self.ingests += inbox.len() as u64;
            for (item, res) in inbox.iter().zip(results) {
                match res {
                    Ok(ing) => {
                        if item.origin == Origin::Peer {
                            forward.push((Wire::new(item.bytes.clone()), item.from));
                        }
                        effects.extend(ing.effects);
                    }
                    Err(IngestError::FromTheFuture { .. }) => node.stats.future += 1,
                    Err(IngestError::NotAdmitted(_)) => node.stats.refused += 1,
                    Err(IngestError::Pending { .. }) => node.stats.pending += 1,
                    Err(e) if e.is_reject() => node.stats.rejected += 1,
                    Err(_) => node.stats.duplicates += 1,
                }
            }
        }
        effects.extend(engine.tick(now));
        let next = engine.next_wakeup();
        for (wire, from) in forward {
            self.gossip(n, &wire, from);
        }
        self.apply(n, effects);
        if let Some(w) = next {
            let skew = self.nodes[n].skew_ms;
            let t_ms = (w.0 as i64 - EPOCH_MS as i64 - skew).max(0) as u64;
            let t = (t_ms * 1_000).max(self.now + 1);
            if self.nodes[n].wake_at.is_none_or(|x| t < x) {
                self.nodes[n].wake_at = Some(t);
                self.at(t, Ev::Wake { node: n });
            }
        }
    }

    fn apply(&mut self, n: usize, effects: Vec<Effect>) {
        // Resolutions in events are snapshots taken while the engine worked
        // (before its own receipt went in, say); the view reads the state
        // after the whole batch, once per proposal, so it only ever sees
        // the set grow.
        let mut touched = BTreeSet::new();
        for e in effects {
            match e {
                Effect::Store { bytes, .. } => self.nodes[n].store.push(bytes.into()),
                Effect::Publish { bytes, .. } => {
                    let wire = Wire::new(bytes.into());
                    self.nodes[n].seen.insert(wire.gid);
                    self.gossip(n, &wire, None);
                }
                // Each simulated node serves exactly one domain: the one named.
                Effect::Fetch { ids, .. } => self.fetch(n, ids),
                Effect::Sync { .. } => self.sync(n),
                Effect::Event(ev) => touched.extend(self.on_event(n, ev)),
            }
        }
        self.observe(n, touched);
    }

    /// Handle one event; returns the proposal whose finality it may have
    /// changed.
    fn on_event(&mut self, n: usize, ev: Event) -> Option<ContentId> {
        match ev {
            Event::ProposalSeen { id, .. } => {
                if let Some(&p) = self.by_id.get(&id) {
                    self.agents_consider(n, p);
                }
                None
            }
            Event::ResponseSeen { id, .. } => {
                if self
                    .outsiders
                    .iter()
                    .any(|o| o.kind == OutsiderKind::Forger && o.node == n)
                {
                    self.forge_copy(n, id);
                }
                None
            }
            Event::MessageSeen {
                id,
                kind: Kind::Receipt,
                ..
            } => {
                let receipt = match self.nodes[n]
                    .engine
                    .as_ref()
                    .and_then(|e| e.set().get(&id))
                    .map(|m| m.body())
                {
                    Some(Body::Receipt(r)) => r.clone(),
                    _ => return None,
                };
                if self.nodes[n].equivocating_attestor {
                    self.sign_also(n, &receipt);
                }
                Some(receipt.proposal)
            }
            Event::Decided { resolution } => {
                self.record(n, &resolution, false);
                Some(resolution.proposal)
            }
            Event::Finalized {
                resolution,
                receipt,
            } => {
                self.record(n, &resolution, true);
                if let Some(id) = receipt
                    && self.nodes[n].equivocating_attestor
                {
                    self.signed_honestly(n, id);
                }
                Some(resolution.proposal)
            }
            Event::Escalated { resolution }
            | Event::Certified { resolution }
            | Event::Contested { resolution } => Some(resolution.proposal),
            Event::Divergence { proposal, .. } => {
                if let Some(&p) = self.by_id.get(&proposal) {
                    self.proposals[p].divergences += 1;
                }
                Some(proposal)
            }
            Event::Equivocation { .. } => {
                self.equivocation_events += 1;
                None
            }
            Event::ReceiptMismatch { .. } => {
                self.receipt_mismatches += 1;
                None
            }
            Event::AttestorEquivocation { .. } => {
                self.attestor_equivocations += 1;
                None
            }
            Event::AfterCertification { .. } => {
                self.after_certification += 1;
                None
            }
            _ => None,
        }
    }

    fn view(&mut self, n: usize, p: usize) -> &mut View {
        let views = &mut self.nodes[n].views;
        if views.len() <= p {
            views.resize(p + 1, None);
        }
        views[p].get_or_insert_with(View::empty)
    }

    /// Resolve each proposal on node `n` now and fold its finality into the
    /// node's view. The engine announces new certificates of decided
    /// results only; resolving here also sees round 0's certified
    /// escalations, and any change.
    fn observe(&mut self, n: usize, proposals: BTreeSet<ContentId>) {
        let now_local = self.local(n);
        let now = self.now;
        for id in proposals {
            let Some(&p) = self.by_id.get(&id) else {
                continue;
            };
            let Some(Ok(r)) = self.nodes[n]
                .engine
                .as_mut()
                .map(|e| e.resolve(&id, now_local))
            else {
                continue;
            };
            self.view(n, p).observe(&r.finality, now);
        }
    }

    fn record(&mut self, n: usize, r: &Arc<Resolution>, fin: bool) {
        let Some(&p) = self.by_id.get(&r.proposal) else {
            return;
        };
        let digest = r.digest();
        self.trace = mix(mix(self.trace, id_word(&digest)), n as u64);
        let now = self.now;
        let v = self.view(n, p);
        v.decided_us.get_or_insert(now);
        if !fin {
            return;
        }
        if v.first_final_us == u64::MAX {
            v.first_final_us = now;
        } else if (v.digest, v.status) != (digest, r.status) {
            v.final_changes += 1;
        }
        v.digest = digest;
        v.status = r.status;
    }

    /// At the end of the run: every live node's finality state of every
    /// proposal of its domain, and the reference resolution of each proposal
    /// (the domain's first live honest node).
    fn finish(&mut self) {
        for n in 0..self.nodes.len() {
            let now = self.local(n);
            let d = self.nodes[n].domain;
            let ps: Vec<usize> = (0..self.proposals.len())
                .filter(|&p| self.proposals[p].domain == d)
                .collect();
            let honest = self.nodes[n].honest();
            let Some(engine) = self.nodes[n].engine.as_mut() else {
                continue;
            };
            let mut resolved = Vec::with_capacity(ps.len());
            for p in ps {
                if let Ok(r) = engine.resolve(&self.proposals[p].id, now) {
                    resolved.push((p, Arc::new(r)));
                }
            }
            let now = self.now;
            for (p, r) in resolved {
                let v = self.view(n, p);
                v.observe(&r.finality, now);
                v.end_state = Some(r.finality.state);
                if honest && self.proposals[p].reference.is_none() {
                    self.proposals[p].reference = Some(r);
                }
            }
        }
    }

    // ---- agents -----------------------------------------------------------

    fn propose(&mut self, d: usize, round: usize, k: usize) {
        let by = &self.sc.byzantine;
        let lying = self.rng.chance(by.lying_proposal_share);
        let good = !lying && self.rng.chance(self.sc.proposals.good_share);
        let live: Vec<usize> = self.domains[d]
            .nodes
            .iter()
            .copied()
            .filter(|&n| self.nodes[n].alive())
            .collect();
        if live.is_empty() {
            return; // every node of the domain is down: nobody can propose
        }
        let node = live[self.rng.below(live.len() as u64) as usize];
        if k == 0 {
            self.snapshot_trust(d, round);
        }
        let created_at = self.local(node);
        let closes_at = created_at.plus_ms(self.sc.proposals.window_ms);
        let body = Body::Proposal(Proposal {
            proposer: self.domains[d].proposer.public(),
            domain: self.domains[d].name.clone(),
            policy: self.domains[d].policy,
            action: Action {
                kind: "sim.action".into(),
                payload: format!("{{\"round\":{round},\"k\":{k}}}"),
            },
            confidence_bps: if lying { 9_500 } else { 7_000 },
            stakes: 100,
            evidence: Vec::new(),
            created_at,
            closes_at,
            supersedes: None,
        });
        let Ok(msg) = body.sign(&[&self.domains[d].proposer]) else {
            return;
        };
        let p = self.proposals.len();
        self.by_id.insert(msg.id, p);
        self.proposals.push(ProposalInfo {
            id: msg.id,
            domain: d,
            round,
            good,
            created_us: self.now,
            closes_at,
            close_us: self.now + self.sc.proposals.window_ms * 1_000,
            reference: None,
            divergences: 0,
        });
        self.submit(node, msg.bytes.into());
        if self.sc.proposals.reports && k == 0 {
            // The reporter publishes the outcomes of a round together.
            let t = self.now
                + (self.sc.proposals.window_ms
                    + self.sc.rules.finalize_grace_ms
                    + self.sc.proposals.report_delay_ms)
                    * 1_000;
            self.at(t, Ev::Report { domain: d, round });
        }
    }

    fn snapshot_trust(&mut self, d: usize, round: usize) {
        if d != 0 {
            return;
        }
        let n = self.domains[d].nodes[0];
        let at = self.local(n);
        let name = self.domains[d].name.clone();
        let Some(engine) = self.nodes[n].engine.as_mut() else {
            return;
        };
        let table = engine.trust_table(&name, at);
        let mut sums: HashMap<Class, (f64, usize)> = HashMap::new();
        for &m in &self.domains[d].members {
            let a = &self.agents[m];
            let t = table
                .get(&a.pk)
                .copied()
                .unwrap_or(acp_protocol::trust::INITIAL_TRUST);
            let e = sums.entry(a.class).or_default();
            e.0 += f64::from(t);
            e.1 += 1;
        }
        if d == 0 {
            for c in Class::ALL {
                if let Some((s, k)) = sums.get(&c) {
                    self.trust.push(TrustPoint {
                        round,
                        class: c,
                        mean_trust_bps: s / *k as f64,
                    });
                }
            }
        }
    }

    /// Hand a message to a node as its own agent's submission.
    fn submit(&mut self, n: usize, bytes: Arc<[u8]>) {
        if !self.nodes[n].alive() {
            return;
        }
        self.nodes[n].inbox.push(InboxItem {
            bytes,
            origin: Origin::Local,
            from: None,
        });
        self.schedule_process(n);
    }

    fn think_us(&mut self) -> Micros {
        let a = &self.sc.agents;
        let ms = a.think_median_ms * (a.think_sigma * self.rng.normal()).exp();
        (ms * 1_000.0) as Micros
    }

    fn agents_consider(&mut self, n: usize, p: usize) {
        let d = self.proposals[p].domain;
        if self.nodes[n].domain != d {
            return;
        }
        for i in 0..self.nodes[n].agents.len() {
            let a = self.nodes[n].agents[i];
            if !self.answered.insert((a, p)) {
                continue;
            }
            let class = self.agents[a].class;
            let always = matches!(class, Class::Liar | Class::Sybil | Class::Backdater);
            if !always && !self.rng.chance(self.sc.agents.response_rate) {
                continue;
            }
            match class {
                Class::Backdater => {
                    let t = self.late_us(p);
                    self.at(
                        t,
                        Ev::Backdate {
                            agent: a,
                            proposal: p,
                        },
                    );
                }
                _ => {
                    let think = self.think_us();
                    let think = if matches!(class, Class::Liar | Class::Sybil) {
                        think / 2
                    } else {
                        think
                    };
                    self.at(
                        self.now + think,
                        Ev::Respond {
                            agent: a,
                            proposal: p,
                        },
                    );
                    if class == Class::Equivocator {
                        let t = self.late_us(p).max(self.now + think + 1);
                        self.at(
                            t,
                            Ev::Equivocate {
                                agent: a,
                                proposal: p,
                            },
                        );
                    }
                }
            }
        }
    }

    /// When late messages on proposal `p` go out: `late_ms` after the
    /// finalization grace period.
    fn late_us(&self, p: usize) -> Micros {
        let grace = self.sc.rules.finalize_grace_ms as i64 + self.sc.byzantine.late_ms;
        self.proposals[p]
            .close_us
            .saturating_add_signed(grace.saturating_mul(1_000))
    }

    /// The stance and confidence an agent gives.
    fn opinion(&mut self, a: usize, p: usize) -> (Stance, u16) {
        let good = self.proposals[p].good;
        let ag = &self.agents[a];
        let (class, acc) = (ag.class, ag.accuracy);
        let truth = if good {
            Stance::Endorse
        } else {
            Stance::Challenge
        };
        let lie = if good {
            Stance::Challenge
        } else {
            Stance::Endorse
        };
        match class {
            Class::Liar | Class::Sybil | Class::Backdater => (lie, 9_500),
            _ => {
                let right = self.rng.chance(acc);
                let stance = if right { truth } else { lie };
                let conf = match class {
                    Class::Overconfident => 0.95,
                    Class::Underconfident => 0.55 + 0.02 * self.rng.normal(),
                    _ => acc + self.sc.agents.confidence_noise * self.rng.normal(),
                };
                (stance, bps(conf.clamp(0.5, 0.99)))
            }
        }
    }

    fn response(
        &self,
        a: usize,
        p: usize,
        stance: Stance,
        conf: u16,
        issued_at: Timestamp,
        note: &str,
    ) -> Option<(ContentId, Arc<[u8]>)> {
        let ag = &self.agents[a];
        let body = Body::Response(Response {
            responder: ag.pk,
            domain: self.domains[ag.domain].name.clone(),
            proposal: self.proposals[p].id,
            stance,
            confidence_bps: conf,
            reasoning: format!("{} {note}", ag.class.name()),
            evidence: Vec::new(),
            issued_at,
        });
        body.sign(&[&ag.key]).ok().map(|m| (m.id, m.bytes.into()))
    }

    fn respond(&mut self, a: usize, p: usize) {
        let n = self.agents[a].node;
        let now = self.local(n);
        if now > self.proposals[p].closes_at {
            return; // too late to count; an honest agent does not bother
        }
        if !self.nodes[n].alive() {
            // The sidecar is down: retry shortly.
            self.at(
                self.now + 500_000,
                Ev::Respond {
                    agent: a,
                    proposal: p,
                },
            );
            return;
        }
        let (stance, conf) = self.opinion(a, p);
        if let Some((_, bytes)) = self.response(a, p, stance, conf, now, "signal") {
            self.responses_signed += 1;
            self.submit(n, bytes);
        }
    }

    /// The second, opposite response of an equivocator, sent straight to
    /// the mesh so both versions spread. Published after `closes_at`, it
    /// claims to have been signed at `closes_at` so that it still counts.
    fn equivocate(&mut self, a: usize, p: usize) {
        let n = self.agents[a].node;
        let issued = self.local(n).min(self.proposals[p].closes_at);
        let Some(e) = self.nodes[n].engine.as_ref() else {
            return;
        };
        let pk = self.agents[a].pk;
        let first = e
            .set()
            .refs(&self.proposals[p].id)
            .and_then(|r| r.responses_of(&pk).next())
            .and_then(|id| e.set().get(&id))
            .and_then(|m| match m.body() {
                Body::Response(r) => Some(r.stance),
                _ => None,
            });
        let stance = match first {
            Some(Stance::Endorse) => Stance::Challenge,
            _ => Stance::Endorse,
        };
        if let Some((_, bytes)) = self.response(a, p, stance, 9_000, issued, "second") {
            self.responses_signed += 1;
            self.gossip(n, &Wire::new(bytes), None);
        }
    }

    fn backdate(&mut self, a: usize, p: usize) {
        let n = self.agents[a].node;
        let (stance, conf) = self.opinion(a, p);
        let issued = self.local(n).min(self.proposals[p].closes_at);
        if let Some((_, bytes)) = self.response(a, p, stance, conf, issued, "backdated") {
            self.responses_signed += 1;
            self.submit(n, bytes);
        }
    }

    // ---- equivocating attestors ------------------------------------------

    /// The engine of an equivocating attestor signed its honest round-0
    /// receipt `id`: remember the result, and schedule the fabricated one.
    fn signed_honestly(&mut self, n: usize, id: ContentId) {
        let Some(Body::Receipt(r)) = self.nodes[n]
            .engine
            .as_ref()
            .and_then(|e| e.set().get(&id))
            .map(|m| m.body().clone())
        else {
            return;
        };
        let Some(&p) = self.by_id.get(&r.proposal) else {
            return;
        };
        if r.human_decision.is_some() || !self.nodes[n].signed.insert((r.proposal, attested(&r))) {
            return;
        }
        let late = u64::try_from(self.sc.byzantine.late_ms).unwrap_or(0) * 1_000;
        self.at(
            self.now + late,
            Ev::ExtraReceipt {
                node: n,
                proposal: p,
            },
        );
    }

    /// A result every equivocating attestor of the domain signs alike, so
    /// that together they can reach a quorum for it: the wrong decision
    /// over a digest nobody computed.
    fn fabricated_receipt(&mut self, n: usize, p: usize) {
        let info = &self.proposals[p];
        let tag = |t: &[u8]| ContentId::of_parts(&[t, info.id.digest().as_slice()]);
        let receipt = Receipt {
            node: self.nodes[n].key.public(),
            domain: self.domains[info.domain].name.clone(),
            proposal: info.id,
            closes_at: info.closes_at,
            status: if info.good {
                Status::Rejected
            } else {
                Status::Approved
            },
            resolution: tag(b"fabricated resolution"),
            counted_root: tag(b"fabricated counted root"),
            human_decision: None,
        };
        self.publish_receipt(n, receipt);
    }

    /// An equivocating attestor sees another attestor's round-0 receipt:
    /// it signs that result too, unless it already did. With enough such
    /// attestors, two results of one round reach the quorum.
    fn sign_also(&mut self, n: usize, seen: &Receipt) {
        let me = self.nodes[n].key.public();
        if seen.node == me || seen.human_decision.is_some() || seen.status == Status::Pending {
            return;
        }
        let Some(engine) = self.nodes[n].engine.as_ref() else {
            return;
        };
        let is_attestor = engine
            .set()
            .proposal(&seen.proposal)
            .and_then(|p| engine.set().policy(&p.policy))
            .and_then(|policy| policy.attestor_of(&seen.node))
            .is_some();
        if !is_attestor {
            return;
        }
        if self.nodes[n]
            .signed
            .contains(&(seen.proposal, attested(seen)))
        {
            return;
        }
        self.publish_receipt(
            n,
            Receipt {
                node: me,
                ..seen.clone()
            },
        );
    }

    /// Sign and gossip an extra receipt of node `n`, bypassing its own
    /// engine (which would take it for its own honest one after a restart).
    fn publish_receipt(&mut self, n: usize, r: Receipt) {
        if !self.nodes[n].signed.insert((r.proposal, attested(&r))) {
            return;
        }
        let Ok(msg) = Body::Receipt(r).sign(&[&self.nodes[n].key]) else {
            return;
        };
        let wire = Wire::new(msg.bytes.into());
        self.nodes[n].seen.insert(wire.gid);
        self.gossip(n, &wire, None);
    }

    fn report(&mut self, d: usize, round: usize) {
        let n = self.domains[d].nodes[0];
        let reported_at = self.local(n);
        let ps: Vec<usize> = (0..self.proposals.len())
            .filter(|&p| self.proposals[p].domain == d && self.proposals[p].round == round)
            .collect();
        for p in ps {
            let body = Body::OutcomeReport(OutcomeReport {
                reporter: self.domains[d].reporter.public(),
                domain: self.domains[d].name.clone(),
                proposal: self.proposals[p].id,
                outcome: if self.proposals[p].good {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                },
                note: String::new(),
                reported_at,
            });
            if let Ok(m) = body.sign(&[&self.domains[d].reporter]) {
                self.submit(n, m.bytes.into());
            }
        }
    }

    // ---- outsiders --------------------------------------------------------

    fn forge_copy(&mut self, n: usize, id: ContentId) {
        let forgers = self
            .outsiders
            .iter()
            .filter(|o| o.kind == OutsiderKind::Forger && o.node == n)
            .count();
        for _ in 0..forgers {
            if !self.rng.chance(self.sc.byzantine.forge_prob) {
                continue;
            }
            let Some(bytes) = self.nodes[n].engine.as_ref().and_then(|e| e.get_bytes(&id)) else {
                return;
            };
            let mut forged = bytes.to_vec();
            if let Some(last) = forged.last_mut() {
                *last ^= 0x01; // inside the signature: decodes, never verifies
            }
            let wire = Wire::new(forged.into());
            self.gossip(n, &wire, None);
        }
    }

    fn outsider(&mut self, i: usize) {
        let n = self.outsiders[i].node;
        let kind = self.outsiders[i].kind;
        let next = match kind {
            OutsiderKind::Forger => return,
            OutsiderKind::Replayer => {
                let store = &self.nodes[n].store;
                if !store.is_empty() {
                    let bytes = store[self.rng.below(store.len() as u64) as usize].clone();
                    if decode_unverified(&bytes).is_ok() {
                        self.gossip(n, &Wire::new(bytes), None);
                    }
                }
                200_000
            }
            OutsiderKind::Flooder => {
                let now_t = self.local(n);
                let d = self.nodes[n].domain;
                let open: Vec<usize> = self
                    .proposals
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| q.domain == d && q.closes_at >= now_t)
                    .map(|(j, _)| j)
                    .collect();
                if !open.is_empty() {
                    let p = open[self.rng.below(open.len() as u64) as usize];
                    let o = &mut self.outsiders[i];
                    o.sent += 1;
                    let body = Body::Response(Response {
                        responder: o.key.public(),
                        domain: self.domains[d].name.clone(),
                        proposal: self.proposals[p].id,
                        stance: Stance::Endorse,
                        confidence_bps: 10_000,
                        reasoning: format!("flood {} {}", i, o.sent),
                        evidence: Vec::new(),
                        issued_at: now_t,
                    });
                    if let Ok(m) = body.sign(&[&o.key]) {
                        let wire = Wire::new(m.bytes.into());
                        self.gossip(n, &wire, None);
                    }
                }
                (1_000_000.0 / self.sc.byzantine.flood_rate_per_s.max(0.001)) as Micros
            }
        };
        self.at(self.now + next.max(1), Ev::Outsider(i));
    }

    // ---- faults -----------------------------------------------------------

    fn fault(&mut self, i: usize) {
        let kind = self.sc.events[i].kind.clone();
        match kind {
            FaultKind::Partition { groups, split } => {
                let n = self.nodes.len();
                for (j, node) in self.nodes.iter_mut().enumerate() {
                    node.group = if groups.is_empty() {
                        (j * split.max(1) / n) as u32
                    } else {
                        groups
                            .iter()
                            .position(|g| g.contains(&j))
                            .unwrap_or(groups.len()) as u32
                    };
                }
                self.heal_at = None;
            }
            FaultKind::Heal => {
                for node in &mut self.nodes {
                    node.group = 0;
                }
                self.heal_at = Some(self.now);
                self.convergence_ms.push(None);
                // Links come back: nodes run anti-entropy right away.
                for n in 0..self.nodes.len() {
                    let t = self.now + self.rng.below(200_000);
                    self.at(t, Ev::Sync { node: n });
                }
            }
            FaultKind::Crash { node } => {
                if let Some(nd) = self.nodes.get_mut(node) {
                    nd.engine = None;
                    nd.inbox.clear();
                    nd.seen.clear();
                }
            }
            FaultKind::Restart { node } => {
                if node < self.nodes.len() && !self.nodes[node].alive() {
                    self.restart(node);
                }
            }
        }
        self.rebuild_mesh();
    }

    /// Rebuild the engine from the node's durable store, then catch up by sync.
    fn restart(&mut self, n: usize) {
        let mut engine = Self::engine(
            &self.sc,
            &self.nodes[n].key,
            &self.domains[self.nodes[n].domain],
        );
        let now = self.local(n);
        let store = self.nodes[n].store.clone();
        let mut effects = Vec::new();
        for chunk in store.chunks(1_024) {
            let items: Vec<(&[u8], Origin)> = chunk.iter().map(|b| (&**b, Origin::Store)).collect();
            self.ingests += items.len() as u64;
            for ing in engine.ingest_batch(&items, now).into_iter().flatten() {
                effects.extend(ing.effects);
            }
        }
        for b in &store {
            self.nodes[n].seen.insert(ContentId::of(b));
        }
        self.nodes[n].engine = Some(engine);
        self.apply(n, effects);
        self.schedule_process(n);
        self.at(self.now + 1_000, Ev::Sync { node: n });
    }

    // ---- anti-entropy -----------------------------------------------------

    /// A random reachable peer of node `a` (same domain), if any.
    fn random_peer(&mut self, a: usize) -> Option<usize> {
        if !self.nodes[a].alive() {
            return None;
        }
        let peers: Vec<usize> = self.nodes[a]
            .perm
            .iter()
            .copied()
            .filter(|&j| self.link_up(a, j))
            .collect();
        if peers.is_empty() {
            return None;
        }
        Some(peers[self.rng.below(peers.len() as u64) as usize])
    }

    /// One pull round with a random reachable peer of the same domain: a
    /// [`SyncSession`] for the node's domain. The exchange is computed on
    /// the peer's state at the time of the request and delivered after the
    /// round trips it would take.
    fn sync(&mut self, a: usize) {
        let Some(b) = self.random_peer(a) else {
            return;
        };
        let mut session = SyncSession::new(MAX_FETCH_IDS);
        session.sync(&self.domains[self.nodes[a].domain].name);
        let Some((ex, msgs)) = self.exchange(a, b, session) else {
            return;
        };
        self.nodes[a].stats.sync_msgs += msgs.len() as u64;
        self.finish_exchange(a, b, ex, msgs);
    }

    /// `Effect::Fetch`: ask a random reachable peer for the messages others
    /// are waiting on, as a [`SyncSession`] with only these ids to fetch.
    fn fetch(&mut self, a: usize, ids: Vec<ContentId>) {
        let Some(b) = self.random_peer(a) else {
            return;
        };
        let mut session = SyncSession::new(MAX_FETCH_IDS);
        session.want(&ids);
        let Some((ex, msgs)) = self.exchange(a, b, session) else {
            return;
        };
        self.nodes[a].stats.fetched += msgs.len() as u64;
        self.finish_exchange(a, b, ex, msgs);
    }

    /// Run `session` from node `a` against node `b`, if both are up.
    fn exchange(
        &self,
        a: usize,
        b: usize,
        session: SyncSession,
    ) -> Option<(Exchange, Vec<Arc<[u8]>>)> {
        let (Some(ea), Some(eb)) = (self.nodes[a].engine.as_ref(), self.nodes[b].engine.as_ref())
        else {
            return None;
        };
        let mut ex = Exchange::default();
        let msgs = ex.run(session, ea, eb);
        Some((ex, msgs))
    }

    /// Count an exchange's bytes on both ends and deliver its messages after
    /// its round trips.
    fn finish_exchange(&mut self, a: usize, b: usize, ex: Exchange, msgs: Vec<Arc<[u8]>>) {
        self.nodes[a].stats.sync_bytes += ex.bytes;
        self.nodes[b].stats.sync_bytes += ex.bytes;
        let mut delay = 0;
        for _ in 0..2 * ex.trips {
            delay += self.latency_us();
        }
        if !msgs.is_empty() {
            self.at(self.now + delay, Ev::SyncDone { node: a, msgs });
        }
    }

    // ---- metrics ----------------------------------------------------------

    /// Share of node pairs of the proposal's domain holding the same final digest.
    pub fn agreement(&self, p: usize) -> f64 {
        self.agreement_among(p, false)
    }

    /// [`World::agreement`], optionally among live nodes only.
    pub fn agreement_among(&self, p: usize, alive_only: bool) -> f64 {
        let d = self.proposals[p].domain;
        let nodes: Vec<usize> = self.domains[d]
            .nodes
            .iter()
            .copied()
            .filter(|&n| !alive_only || self.nodes[n].alive())
            .collect();
        if nodes.len() < 2 {
            return 1.0;
        }
        let mut groups: HashMap<Option<ContentId>, usize> = HashMap::new();
        for &n in &nodes {
            match self.nodes[n].views.get(p).copied().flatten() {
                Some(v) if v.first_final_us != u64::MAX => {
                    *groups.entry(Some(v.digest)).or_default() += 1
                }
                _ => {}
            }
        }
        let k = nodes.len();
        let pairs = (k * (k - 1) / 2) as f64;
        let same: usize = groups.values().map(|c| c * (c - 1) / 2).sum();
        same as f64 / pairs
    }

    fn sample(&mut self) {
        let grace = self.sc.rules.finalize_grace_ms * 1_000;
        let window = self.sc.proposals.window_ms * 1_000;
        let closed: Vec<usize> = (0..self.proposals.len())
            .filter(|&p| self.proposals[p].created_us + window + grace + 500_000 <= self.now)
            .collect();
        let agreed = closed
            .iter()
            .filter(|&&p| self.agreement_among(p, true) >= 1.0)
            .count();
        let agreed_share = if closed.is_empty() {
            1.0
        } else {
            agreed as f64 / closed.len() as f64
        };
        let mut sets_equal = None;
        if let Some(h) = self.heal_at {
            let mut equal = true;
            for dom in &self.domains {
                let mut first = None;
                for &n in &dom.nodes {
                    if let Some(e) = &self.nodes[n].engine {
                        let s = e.summary(&dom.name);
                        match &first {
                            None => first = Some(s),
                            Some(f) => equal &= *f == s,
                        }
                    }
                }
            }
            let all_agree = agreed_share >= 1.0;
            sets_equal = Some(equal);
            if equal && all_agree {
                if let Some(slot) = self.convergence_ms.last_mut() {
                    *slot = Some(ms(self.now - h));
                }
                self.heal_at = None;
            }
        }
        self.samples.push(Sample {
            t_ms: ms(self.now),
            agreed_share,
            sets_equal,
            alive: self.nodes.iter().filter(|n| n.alive()).count(),
        });
    }

    /// Map a responder key to its agent index.
    pub fn agent_of(&self, pk: &PublicKey) -> Option<usize> {
        self.agent_by_pk.get(pk).copied()
    }

    /// Domain node lists.
    pub fn domain_nodes(&self, d: usize) -> &[usize] {
        &self.domains[d].nodes
    }
}
