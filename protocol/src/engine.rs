//! The per-node state machine, sans IO: bytes and a logical time in,
//! [`Effect`]s out. The node and the simulator are two drivers of it.
//!
//! Driving contract: call [`Engine::ingest`] (or [`Engine::ingest_batch`])
//! for every message, then [`Engine::tick`] with the current time — after a
//! batch of ingests and whenever [`Engine::next_wakeup`] comes due. Apply
//! every effect in order: `Store` must be durable before a local submission
//! is acknowledged; `Publish` goes to the domain's topic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::admission::{Admission, Refusal, admit};
use crate::crypto::{KeyCache, Keypair, PublicKey, VerifyItem};
use crate::finality::{Attested, State};
use crate::id::ContentId;
use crate::message::{
    Body, Envelope, Kind, Receipt, Rejection, SignedMessage, Stance, Status, Timestamp,
    decode_unverified, signature_items, verify_signatures_with,
};
use crate::resolve::{
    DecisionPackage, Resolution, ResolveError, decision_package, resolve_with_trust,
};
use crate::set::MessageSet;
use crate::sync::{self, Summary, SyncRequest, SyncResponse};
use crate::trust::{TrustTable, trust_table};

/// Local settings of one engine. None of them changes what `resolve`
/// computes; they change when this node looks and what it signs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Key this node signs receipts with (its agent key); `None` for observers.
    pub receipt_key: Option<Keypair>,
    /// How long after `closes_at` to wait for in-flight responses before
    /// finalizing and signing a receipt.
    pub finalize_grace_ms: u64,
    /// Messages signed further than this ahead of `now` are ignored for now
    /// (sync fetches them again later), so a skewed clock cannot plant them.
    pub max_future_skew_ms: u64,
    /// How long a message that arrived before its policy or proposal waits
    /// for it before it is dropped.
    pub pending_ttl_ms: u64,
    /// Messages waiting for a dependency, at most (all dependencies).
    pub max_pending: usize,
    /// Bytes of messages waiting for a dependency, at most.
    pub max_pending_bytes: usize,
    /// Messages from one source (see [`Unverified::from_source`]) waiting
    /// for a dependency, at most.
    pub max_pending_per_source: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            receipt_key: None,
            finalize_grace_ms: 2_000,
            max_future_skew_ms: 60_000,
            pending_ttl_ms: 30_000,
            max_pending: 4_096,
            max_pending_bytes: 16 * 1024 * 1024,
            max_pending_per_source: 512,
        }
    }
}

/// A message that passed every check of [`crate::decode_message`] but its
/// signatures; only [`Unverified::decode`] makes one, so its id and
/// envelope always belong to its bytes.
#[derive(Debug)]
pub struct Unverified<'a> {
    envelope: Envelope,
    id: ContentId,
    bytes: &'a [u8],
    origin: Origin,
    source: Option<u64>,
}

impl<'a> Unverified<'a> {
    /// Tag the message with the peer it came from (any stable number per
    /// peer), so that one peer cannot fill the buffer of messages waiting
    /// for a dependency ([`EngineConfig::max_pending_per_source`]).
    pub fn from_source(mut self, source: u64) -> Self {
        self.source = Some(source);
        self
    }

    /// [`decode_unverified`] of `bytes`, kept with them and their origin.
    pub fn decode(bytes: &'a [u8], origin: Origin) -> Result<Self, Rejection> {
        let (envelope, id) = decode_unverified(bytes)?;
        Ok(Self {
            envelope,
            id,
            bytes,
            origin,
            source: None,
        })
    }

    /// The decoded envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

/// Where a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Submitted by this node's own agent: stored and published.
    Local,
    /// Delivered by gossip (the transport forwards accepted messages).
    Peer,
    /// Fetched by anti-entropy.
    Sync,
    /// Read back from this node's store at start-up.
    Store,
}

/// Something the driver must do.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Persist these canonical bytes under their id.
    Store {
        /// Content id.
        id: ContentId,
        /// Canonical bytes.
        bytes: Vec<u8>,
    },
    /// Publish on the domain's topic.
    Publish {
        /// Domain (topic `acp/2/<domain>`).
        domain: String,
        /// Content id.
        id: ContentId,
        /// Canonical bytes.
        bytes: Vec<u8>,
    },
    /// Fetch these messages from peers (sync `Fetch`): messages are waiting
    /// for them.
    Fetch {
        /// Domain of the waiting messages.
        domain: String,
        /// The missing ids.
        ids: Vec<ContentId>,
    },
    /// Run one anti-entropy round for the domain now: this node signs
    /// receipts soon and should hold what its peers hold first.
    Sync {
        /// Domain.
        domain: String,
    },
    /// Tell the agents and the logs.
    Event(Event),
}

/// What happened, for agents, humans and logs.
#[derive(Clone, Debug)]
pub enum Event {
    /// A new proposal.
    ProposalSeen {
        /// Id.
        id: ContentId,
        /// Domain.
        domain: String,
        /// Proposer.
        proposer: PublicKey,
    },
    /// A new response.
    ResponseSeen {
        /// Id.
        id: ContentId,
        /// Proposal.
        proposal: ContentId,
        /// Responder.
        responder: PublicKey,
        /// Stance.
        stance: Stance,
    },
    /// Another kind of message was added (policy, decision, report, receipt).
    MessageSeen {
        /// Id.
        id: ContentId,
        /// Kind.
        kind: Kind,
        /// Domain.
        domain: String,
    },
    /// The outcome is known (early, at close, or by a human decision).
    Decided {
        /// The resolution.
        resolution: Arc<Resolution>,
    },
    /// The proposal closed without a decision and waits for a human.
    Escalated {
        /// The resolution with its reasons.
        resolution: Arc<Resolution>,
    },
    /// This node finalized the proposal and (with a key) signed a receipt.
    Finalized {
        /// The resolution.
        resolution: Arc<Resolution>,
        /// This node's receipt.
        receipt: Option<ContentId>,
    },
    /// An agent signed two different responses to one proposal.
    Equivocation {
        /// Proposal.
        proposal: ContentId,
        /// Agent.
        agent: PublicKey,
        /// The agent's first two responses to the proposal (the evidence;
        /// later ones raise no new event).
        responses: Vec<ContentId>,
    },
    /// A message that changes a finalized resolution arrived afterwards.
    Divergence {
        /// Proposal.
        proposal: ContentId,
        /// Previously finalized resolution digest and status.
        previous: (ContentId, Status),
        /// The resolution now.
        current: Arc<Resolution>,
    },
    /// Attestors of at least the finality quorum of organizations signed one
    /// result: the proposal's status and digest are final — or, when the
    /// resolution's finality state is `Escalated`, the escalation is, and a
    /// human's decision will be certified next.
    Certified {
        /// The resolution, whose `finality` holds the certificate.
        resolution: Arc<Resolution>,
    },
    /// No result of the votes can be certified: a human must decide.
    Contested {
        /// The resolution, with the attestations.
        resolution: Arc<Resolution>,
    },
    /// An organization's attestor signed two different results in one round.
    AttestorEquivocation {
        /// Proposal.
        proposal: ContentId,
        /// The organization (index into the pinned policy).
        organization: u16,
        /// Its receipts for different results (the evidence).
        receipts: Vec<ContentId>,
    },
    /// Two valid amendments of one lineage policy.
    PolicyFork {
        /// Domain.
        domain: String,
        /// The fork.
        fork: crate::lineage::Fork,
    },
    /// A response or human decision on a proposal this node already saw
    /// certified: stored as evidence; it cannot change the result.
    AfterCertification {
        /// Proposal.
        proposal: ContentId,
        /// The message.
        id: ContentId,
        /// Its kind.
        kind: Kind,
    },
    /// Another node's receipt disagrees with this node's resolution.
    ReceiptMismatch {
        /// Proposal.
        proposal: ContentId,
        /// The other node.
        node: PublicKey,
        /// Its resolution digest.
        theirs: ContentId,
        /// Ours.
        ours: ContentId,
    },
}

/// A message taken into the set.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// Its id.
    pub id: ContentId,
    /// Its kind.
    pub kind: Kind,
    /// Its domain (the gossip topic it belongs on).
    pub domain: String,
    /// Effects to apply.
    pub effects: Vec<Effect>,
}

/// Why a message was not taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// Invalid bytes: never stored or forwarded; the sender is at fault.
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    /// Already held: not forwarded again.
    #[error("duplicate of {0}")]
    Duplicate(ContentId),
    /// Signed time too far ahead of this node's clock; may be valid later.
    #[error("signed time {time:?} is ahead of local time {now:?}")]
    FromTheFuture {
        /// The message's signed time.
        time: Timestamp,
        /// Local logical time.
        now: Timestamp,
    },
    /// Valid, but the domain's lineage does not authorize it: not stored,
    /// not forwarded.
    #[error("not admitted: {0}")]
    NotAdmitted(Refusal),
    /// Valid, but it refers to a policy or proposal this node does not hold
    /// yet; it waits (unless submitted locally) and the dependency is fetched.
    #[error("waiting for {needs}")]
    Pending {
        /// The missing policy or proposal.
        needs: ContentId,
    },
}

impl IngestError {
    /// True when the sender should be penalized (gossip `Reject`), false
    /// when the message is merely not forwarded (gossip `Ignore`).
    pub fn is_reject(&self) -> bool {
        matches!(self, IngestError::Rejected(_))
    }
}

#[derive(Debug, Default)]
struct Track {
    /// The decided outcome already announced (early), as digest and status.
    announced: Option<(ContentId, Status)>,
    /// Digest and status as last finalized.
    finalized: Option<(ContentId, Status)>,
    /// This node's receipt for the votes (round 0), signed once.
    round0: Option<ContentId>,
    /// This node's receipt for the human decision (round 1), signed once.
    round1: Option<ContentId>,
    /// The certified result already announced.
    certified: Option<Attested>,
    /// Contest already announced.
    contested: bool,
    /// Attestor equivocations already announced (organization, round).
    equivocations: BTreeSet<(u16, bool)>,
    /// Responses and human decisions that arrived after certification.
    after_certification: Vec<ContentId>,
}

/// Most messages remembered per proposal as "after certification".
const MAX_AFTER_CERTIFICATION: usize = 256;

/// A valid message waiting for the policy or proposal it refers to.
#[derive(Debug)]
struct Parked {
    msg: SignedMessage,
    origin: Origin,
    source: Option<u64>,
    since: Timestamp,
}

/// Admission counters, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Valid messages refused, by reason.
    pub refused: BTreeMap<Refusal, u64>,
    /// Messages parked to wait for a dependency.
    pub parked: u64,
    /// Parked messages admitted once their dependency arrived.
    pub released: u64,
    /// Parked messages dropped because the dependency did not come in time.
    pub expired: u64,
    /// Messages not parked because the buffer was full.
    pub overflow: u64,
    /// Messages waiting now.
    pub waiting: usize,
}

/// The engine: the message set plus what this node has announced.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    node: Option<PublicKey>,
    set: MessageSet,
    tracks: HashMap<ContentId, Track>,
    deadlines: BTreeSet<(Timestamp, ContentId)>,
    dirty: BTreeSet<ContentId>,
    trust_cache: HashMap<(String, Timestamp, ContentId), (u64, Arc<TrustTable>)>,
    trust_generation: HashMap<String, u64>,
    /// Agents sign again and again; their keys are decompressed once.
    keys: KeyCache,
    /// Messages waiting for a dependency, by the id they wait for.
    pending: BTreeMap<ContentId, Vec<Parked>>,
    pending_bytes: usize,
    pending_len: usize,
    pending_by_source: HashMap<u64, usize>,
    /// Dependencies to fetch at the next tick, with the domain to ask in.
    to_fetch: BTreeMap<ContentId, String>,
    /// When to run the pre-receipt anti-entropy round, per proposal.
    sync_deadlines: BTreeSet<(Timestamp, ContentId)>,
    /// Finalization postponed past the usual deadline because the
    /// pre-receipt sync was asked for late.
    finalize_after: HashMap<ContentId, Timestamp>,
    stats: AdmissionStats,
}

impl Engine {
    /// A fresh engine with an empty set.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            node: config.receipt_key.as_ref().map(Keypair::public),
            config,
            set: MessageSet::new(),
            tracks: HashMap::new(),
            deadlines: BTreeSet::new(),
            dirty: BTreeSet::new(),
            trust_cache: HashMap::new(),
            trust_generation: HashMap::new(),
            keys: KeyCache::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            pending_len: 0,
            pending_by_source: HashMap::new(),
            to_fetch: BTreeMap::new(),
            sync_deadlines: BTreeSet::new(),
            finalize_after: HashMap::new(),
            stats: AdmissionStats::default(),
        }
    }

    /// Trust `genesis` as the genesis policy of `domain`. Messages of the
    /// domain are admitted only under the lineage that starts there.
    pub fn add_anchor(&mut self, domain: &str, genesis: ContentId) {
        self.set.set_anchor(domain, genesis);
        self.touch_domain(domain, Timestamp(0));
    }

    /// Admission counters.
    pub fn admission_stats(&self) -> AdmissionStats {
        AdmissionStats {
            waiting: self.pending_len,
            ..self.stats.clone()
        }
    }

    /// The message set.
    pub fn set(&self) -> &MessageSet {
        &self.set
    }

    /// Validate and take in one message.
    pub fn ingest(
        &mut self,
        bytes: &[u8],
        origin: Origin,
        now: Timestamp,
    ) -> Result<Ingested, IngestError> {
        let (envelope, id) = decode_unverified(bytes)?;
        verify_signatures_with(&envelope, &id, |item| self.keys.verify(item))?;
        let msg = SignedMessage {
            id,
            envelope,
            bytes: bytes.to_vec(),
        };
        self.admit(msg, origin, None, now)
    }

    /// Take in a message that [`crate::decode_message`] already validated,
    /// signatures included — for drivers that hold many engines over the
    /// same messages (the simulator) and verify each message once. Handing
    /// it anything else breaks the engine's guarantees.
    pub fn ingest_decoded(
        &mut self,
        msg: SignedMessage,
        origin: Origin,
        now: Timestamp,
    ) -> Result<Ingested, IngestError> {
        self.admit(msg, origin, None, now)
    }

    /// Take in many messages, verifying their signatures as one batch. Each
    /// result is exactly what [`Engine::ingest`] would return for it, in order.
    pub fn ingest_batch(
        &mut self,
        items: &[(&[u8], Origin)],
        now: Timestamp,
    ) -> Vec<Result<Ingested, IngestError>> {
        let decoded = items
            .iter()
            .map(|(b, origin)| Unverified::decode(b, *origin).map_err(IngestError::from))
            .collect();
        self.ingest_batch_decoded(decoded, now)
    }

    /// [`Engine::ingest_batch`] for messages the caller has already decoded
    /// with [`Unverified::decode`] (e.g. to check the topic they came on), so
    /// nothing is decoded twice. Errors pass through in their place.
    pub fn ingest_batch_decoded(
        &mut self,
        decoded: Vec<Result<Unverified<'_>, IngestError>>,
        now: Timestamp,
    ) -> Vec<Result<Ingested, IngestError>> {
        // Every signature of every decodable message, with its owner's index.
        let mut owners = Vec::new();
        let mut checks = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            if let Ok(u) = d {
                for c in signature_items(&u.envelope, &u.id) {
                    owners.push(i);
                    checks.push(c);
                }
            }
        }
        let verify_items: Vec<VerifyItem<'_>> = checks
            .iter()
            .map(|(k, m, s)| VerifyItem {
                key: k,
                message: m,
                signature: s,
            })
            .collect();
        let verdicts = self.keys.verify_batch(&verify_items);
        let mut bad: HashMap<usize, Rejection> = HashMap::new();
        for ((owner, verdict), (signer, _, _)) in owners.iter().zip(verdicts).zip(&checks) {
            if let Err(error) = verdict {
                bad.entry(*owner).or_insert(Rejection::BadSignature {
                    signer: *signer,
                    error,
                });
            }
        }
        decoded
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let u = d?;
                if let Some(r) = bad.remove(&i) {
                    return Err(r.into());
                }
                let msg = SignedMessage {
                    id: u.id,
                    envelope: u.envelope,
                    bytes: u.bytes.to_vec(),
                };
                self.admit(msg, u.origin, u.source, now)
            })
            .collect()
    }

    fn admit(
        &mut self,
        msg: SignedMessage,
        origin: Origin,
        source: Option<u64>,
        now: Timestamp,
    ) -> Result<Ingested, IngestError> {
        if self.set.contains(&msg.id) {
            return Err(IngestError::Duplicate(msg.id));
        }
        let time = msg.body().time();
        if origin != Origin::Store && time > now.plus_ms(self.config.max_future_skew_ms) {
            return Err(IngestError::FromTheFuture { time, now });
        }
        match admit(&self.set, &msg.id, msg.body()) {
            Admission::Admit => {}
            Admission::Refuse(r) => {
                *self.stats.refused.entry(r).or_default() += 1;
                return Err(IngestError::NotAdmitted(r));
            }
            Admission::Wait(needs) => {
                // A local submission is answered at once instead.
                if origin != Origin::Local {
                    self.park(needs, msg, origin, source, now);
                }
                return Err(IngestError::Pending { needs });
            }
        }
        let id = msg.id;
        let kind = msg.body().kind();
        let domain = msg.body().domain().to_owned();
        let mut effects = Vec::new();
        if origin != Origin::Store {
            effects.push(Effect::Store {
                id,
                bytes: msg.bytes.clone(),
            });
        }
        if origin == Origin::Local {
            effects.push(Effect::Publish {
                domain: domain.clone(),
                id,
                bytes: msg.bytes.clone(),
            });
        }
        let body = msg.body().clone();
        self.set.insert(msg);
        self.after_insert(id, &body, &mut effects);
        self.release(id, now, &mut effects);
        Ok(Ingested {
            id,
            kind,
            domain,
            effects,
        })
    }

    /// Keep a message until `needs` arrives, within the buffer's bounds.
    fn park(
        &mut self,
        needs: ContentId,
        msg: SignedMessage,
        origin: Origin,
        source: Option<u64>,
        now: Timestamp,
    ) {
        let from_source =
            source.map_or(0, |s| self.pending_by_source.get(&s).copied().unwrap_or(0));
        let waiting = self.pending.entry(needs).or_default();
        if waiting.iter().any(|p| p.msg.id == msg.id) {
            return;
        }
        if self.pending_len >= self.config.max_pending
            || from_source >= self.config.max_pending_per_source
            || self.pending_bytes + msg.bytes.len() > self.config.max_pending_bytes
        {
            self.stats.overflow += 1;
            if waiting.is_empty() {
                self.pending.remove(&needs);
            }
            return;
        }
        self.pending_bytes += msg.bytes.len();
        self.pending_len += 1;
        if let Some(s) = source {
            *self.pending_by_source.entry(s).or_default() += 1;
        }
        self.stats.parked += 1;
        self.to_fetch
            .entry(needs)
            .or_insert_with(|| msg.body().domain().to_owned());
        waiting.push(Parked {
            msg,
            origin,
            source,
            since: now,
        });
    }

    /// Admit the messages that waited for `id`, and those waiting for them.
    fn release(&mut self, id: ContentId, now: Timestamp, effects: &mut Vec<Effect>) {
        let Some(waiting) = self.pending.remove(&id) else {
            return;
        };
        self.to_fetch.remove(&id);
        for p in waiting {
            self.pending_bytes -= p.msg.bytes.len();
            self.pending_len -= 1;
            self.unpark_source(p.source);
            self.stats.released += 1;
            // Admission may refuse it now, or park it again on a further
            // dependency; either way the result is the same as if it had
            // arrived after its dependency.
            if let Ok(ingested) = self.admit(p.msg, p.origin, p.source, now) {
                effects.extend(ingested.effects);
            }
        }
    }

    fn unpark_source(&mut self, source: Option<u64>) {
        if let Some(s) = source
            && let Some(n) = self.pending_by_source.get_mut(&s)
        {
            *n -= 1;
            if *n == 0 {
                self.pending_by_source.remove(&s);
            }
        }
    }

    /// Drop parked messages whose dependency did not come in time.
    fn expire_pending(&mut self, now: Timestamp) {
        let ttl = self.config.pending_ttl_ms;
        let mut freed = 0;
        let mut expired = 0;
        let mut sources = Vec::new();
        self.pending.retain(|_, waiting| {
            waiting.retain(|p| {
                let keep = p.since.plus_ms(ttl) > now;
                if !keep {
                    freed += p.msg.bytes.len();
                    expired += 1;
                    sources.push(p.source);
                }
                keep
            });
            !waiting.is_empty()
        });
        for s in sources {
            self.unpark_source(s);
        }
        self.pending_bytes -= freed;
        self.pending_len -= expired as usize;
        self.stats.expired += expired;
        let pending = &self.pending;
        self.to_fetch.retain(|id, _| pending.contains_key(id));
    }

    fn after_insert(&mut self, id: ContentId, body: &Body, effects: &mut Vec<Effect>) {
        let domain = body.domain().to_owned();
        match body {
            Body::Proposal(p) => {
                let grace = self.config.finalize_grace_ms;
                self.deadlines.insert((p.closes_at.plus_ms(grace), id));
                // Only attestors sign, so only they sync before signing.
                if let Some(node) = self.node
                    && self
                        .set
                        .policy(&p.policy)
                        .is_some_and(|pol| pol.attestor_of(&node).is_some())
                {
                    self.sync_deadlines
                        .insert((p.closes_at.plus_ms(grace / 2), id));
                }
                self.dirty.insert(id);
                // Reports or equivocations that arrived before the proposal
                // start to count toward trust only now.
                if let Some(since) = self.feeds_trust(&id) {
                    self.touch_domain(&domain, since);
                }
                effects.push(Effect::Event(Event::ProposalSeen {
                    id,
                    domain,
                    proposer: p.proposer,
                }));
            }
            Body::Response(r) => {
                self.dirty.insert(r.proposal);
                self.note_after_certification(r.proposal, id, Kind::Response, effects);
                effects.push(Effect::Event(Event::ResponseSeen {
                    id,
                    proposal: r.proposal,
                    responder: r.responder,
                    stance: r.stance,
                }));
                let refs = self.set.refs(&r.proposal);
                let reported = refs.is_some_and(|refs| !refs.reports.is_empty());
                // The second response makes an equivocator; later ones add
                // nothing (the penalty is once per proposal), so a flood of
                // responses by one key raises one event, not one each.
                let ids: Vec<ContentId> = refs
                    .map(|refs| refs.responses_of(&r.responder).take(3).collect())
                    .unwrap_or_default();
                let new_equivocator = ids.len() == 2;
                if new_equivocator {
                    effects.push(Effect::Event(Event::Equivocation {
                        proposal: r.proposal,
                        agent: r.responder,
                        responses: ids,
                    }));
                }
                // A vote on a reported proposal moves trust, and a new
                // equivocator adds a penalty: both in the proposal's domain.
                if (reported || new_equivocator)
                    && let Some(since) = self.feeds_trust(&r.proposal)
                    && let Some(d) = self.set.proposal(&r.proposal).map(|q| q.domain.clone())
                {
                    self.touch_domain(&d, since);
                }
            }
            Body::Policy(_) | Body::OutcomeReport(_) => {
                if matches!(body, Body::Policy(_)) {
                    let forks = crate::lineage::lineage(&self.set, &domain).forks;
                    for fork in forks.into_iter().filter(|f| f.successors.contains(&id)) {
                        effects.push(Effect::Event(Event::PolicyFork {
                            domain: domain.clone(),
                            fork,
                        }));
                    }
                }
                let since = match body {
                    Body::OutcomeReport(r) => r.reported_at,
                    _ => Timestamp(0),
                };
                self.touch_domain(&domain, since);
                effects.push(Effect::Event(Event::MessageSeen {
                    id,
                    kind: body.kind(),
                    domain,
                }));
            }
            Body::HumanDecision(d) => {
                self.dirty.insert(d.proposal);
                self.note_after_certification(d.proposal, id, Kind::HumanDecision, effects);
                effects.push(Effect::Event(Event::MessageSeen {
                    id,
                    kind: body.kind(),
                    domain,
                }));
            }
            Body::Receipt(r) => {
                // Receipts move the proposal toward certification.
                self.dirty.insert(r.proposal);
                if Some(r.node) == self.node {
                    // Our own receipts read back after a restart: we signed
                    // these, and never sign another for the same round.
                    let t = self.tracks.entry(r.proposal).or_default();
                    if r.human_decision.is_some() {
                        t.round1 = Some(id);
                        t.finalized = Some((r.resolution, r.status));
                    } else {
                        t.round0 = Some(id);
                        t.announced = Some((r.resolution, r.status));
                        if t.round1.is_none() {
                            t.finalized = Some((r.resolution, r.status));
                        }
                    }
                } else if r.human_decision.is_none()
                    && let Some(ours) = self.own_round0_digest(&r.proposal)
                    && ours != r.resolution
                {
                    effects.push(Effect::Event(Event::ReceiptMismatch {
                        proposal: r.proposal,
                        node: r.node,
                        theirs: r.resolution,
                        ours,
                    }));
                }
                effects.push(Effect::Event(Event::MessageSeen {
                    id,
                    kind: body.kind(),
                    domain,
                }));
            }
        }
    }

    /// The resolution digest of this node's own round-0 receipt: what another
    /// node's round-0 receipt is compared with (a later round-1 digest of
    /// ours is a different question).
    fn own_round0_digest(&self, proposal: &ContentId) -> Option<ContentId> {
        let id = self.tracks.get(proposal)?.round0?;
        match self.set.get(&id).map(|m| m.body()) {
            Some(Body::Receipt(r)) => Some(r.resolution),
            _ => None,
        }
    }

    /// Remember a message on a proposal this node already saw certified.
    fn note_after_certification(
        &mut self,
        proposal: ContentId,
        id: ContentId,
        kind: Kind,
        effects: &mut Vec<Effect>,
    ) {
        let Some(t) = self.tracks.get_mut(&proposal) else {
            return;
        };
        if t.certified.is_none() {
            return;
        }
        if t.after_certification.len() < MAX_AFTER_CERTIFICATION {
            t.after_certification.push(id);
        }
        effects.push(Effect::Event(Event::AfterCertification {
            proposal,
            id,
            kind,
        }));
    }

    /// Whether messages about proposal `q` are trust inputs: it has outcome
    /// reports or an equivocating responder.
    ///
    /// Returns the earliest time from which trust can have changed: the
    /// proposal's `created_at` or its earliest report, whichever is first.
    fn feeds_trust(&self, q: &ContentId) -> Option<Timestamp> {
        let refs = self.set.refs(q)?;
        if refs.reports.is_empty() && refs.equivocators().is_empty() {
            return None;
        }
        let created = self.set.proposal(q).map(|p| p.created_at);
        let first_report = refs
            .reports
            .iter()
            .filter_map(|r| self.set.get(r).map(|m| m.body().time()))
            .min();
        created.into_iter().chain(first_report).min()
    }

    /// Trust inputs of a domain changed: every proposal in it may resolve
    /// differently.
    ///
    /// A proposal's trust reads only inputs older than its `created_at`, so
    /// only proposals created at or after `since` need resolving again.
    fn touch_domain(&mut self, domain: &str, since: Timestamp) {
        *self.trust_generation.entry(domain.to_owned()).or_default() += 1;
        let ids: Vec<ContentId> = self
            .set
            .proposals_in(domain)
            .skip_while(|(t, _)| *t < since)
            .map(|(_, id)| id)
            .collect();
        self.dirty.extend(ids);
    }

    /// The trust table a proposal created at `at` under `policy` reads.
    fn trust_for(&mut self, domain: &str, at: Timestamp, policy: &ContentId) -> Arc<TrustTable> {
        let generation = self.trust_generation.get(domain).copied().unwrap_or(0);
        let key = (domain.to_owned(), at, *policy);
        if let Some((g, t)) = self.trust_cache.get(&key)
            && *g == generation
        {
            return t.clone();
        }
        let reporters = self.set.policy(policy).map_or(&[][..], |p| &p.reporters);
        let t = Arc::new(trust_table(&self.set, domain, at, reporters));
        self.trust_cache.insert(key, (generation, t.clone()));
        t
    }

    /// Resolve a proposal at `now`.
    pub fn resolve(&mut self, id: &ContentId, now: Timestamp) -> Result<Resolution, ResolveError> {
        let p = self
            .set
            .proposal(id)
            .ok_or(ResolveError::UnknownProposal(*id))?;
        let (domain, at, policy) = (p.domain.clone(), p.created_at, p.policy);
        let trust = self.trust_for(&domain, at, &policy);
        resolve_with_trust(&self.set, id, now, &trust)
    }

    /// The decision package of a proposal at `now`.
    pub fn decision_package(
        &mut self,
        id: &ContentId,
        now: Timestamp,
    ) -> Result<DecisionPackage, ResolveError> {
        let r = self.resolve(id, now)?;
        let mut package =
            decision_package(&self.set, r).ok_or(ResolveError::UnknownProposal(*id))?;
        if let Some(t) = self.tracks.get(id) {
            package.after_certification = t.after_certification.clone();
        }
        Ok(package)
    }

    /// When [`Engine::tick`] next has work that time alone triggers.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        let expiry = self
            .pending
            .values()
            .flatten()
            .map(|p| p.since.plus_ms(self.config.pending_ttl_ms))
            .min();
        [
            self.deadlines.first().map(|(t, _)| *t),
            self.sync_deadlines.first().map(|(t, _)| *t),
            expiry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Resolve what changed or came due; announce, finalize and sign receipts.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        while let Some(&(due, id)) = self.deadlines.first() {
            if due > now {
                break;
            }
            self.deadlines.pop_first();
            self.dirty.insert(id);
        }
        let mut effects = Vec::new();
        let mut sync_domains = BTreeSet::new();
        let half_grace = self.config.finalize_grace_ms / 2;
        while let Some(&(due, id)) = self.sync_deadlines.first() {
            if due > now {
                break;
            }
            self.sync_deadlines.pop_first();
            if let Some(p) = self.set.proposal(&id) {
                sync_domains.insert(p.domain.clone());
                // Overdue (after a restart or a stall): the sync asked for
                // now must have time to land before this node signs.
                let signs_at = p.closes_at.plus_ms(self.config.finalize_grace_ms);
                if now.plus_ms(half_grace) > signs_at {
                    let after = now.plus_ms(half_grace);
                    self.finalize_after.insert(id, after);
                    self.deadlines.insert((after, id));
                }
            }
        }
        effects.extend(
            sync_domains
                .into_iter()
                .map(|domain| Effect::Sync { domain }),
        );
        self.expire_pending(now);
        let mut fetch: BTreeMap<String, Vec<ContentId>> = BTreeMap::new();
        for (id, domain) in std::mem::take(&mut self.to_fetch) {
            fetch.entry(domain).or_default().push(id);
        }
        effects.extend(
            fetch
                .into_iter()
                .map(|(domain, ids)| Effect::Fetch { domain, ids }),
        );
        for id in std::mem::take(&mut self.dirty) {
            let Some(p) = self.set.proposal(&id) else {
                continue; // a response whose proposal has not arrived yet
            };
            let finalize_at = p
                .closes_at
                .plus_ms(self.config.finalize_grace_ms)
                .max(self.finalize_after.get(&id).copied().unwrap_or_default());
            let Ok(r) = self.resolve(&id, now) else {
                continue;
            };
            let finalize = now >= finalize_at;
            if finalize {
                self.finalize_after.remove(&id);
            }
            self.step(id, r, finalize, &mut effects);
        }
        effects
    }

    fn step(&mut self, id: ContentId, r: Resolution, finalize: bool, effects: &mut Vec<Effect>) {
        let r = Arc::new(r);
        self.finality_events(id, &r, effects);
        let track = self.tracks.entry(id).or_default();
        // Hashing a resolution costs as much as resolving it; while votes
        // come in and nothing is decided, no digest is needed.
        let needs_digest = track.finalized.is_some()
            || (r.is_final && (finalize || (r.is_decided() && track.announced.is_none())));
        if !needs_digest {
            return;
        }
        let digest = r.digest();
        match track.finalized {
            None if finalize && r.is_final => {
                let announce = match track.announced {
                    None => true,
                    // An early decision that no longer holds (an equivocation
                    // or a late trust input withdrew weight) is a divergence.
                    Some(previous) if previous.1 != r.status => {
                        effects.push(Effect::Event(Event::Divergence {
                            proposal: id,
                            previous,
                            current: r.clone(),
                        }));
                        true
                    }
                    Some(_) => false,
                };
                if announce {
                    effects.push(Effect::Event(if r.status == Status::Escalated {
                        Event::Escalated {
                            resolution: r.clone(),
                        }
                    } else {
                        Event::Decided {
                            resolution: r.clone(),
                        }
                    }));
                }
                track.announced = Some((digest, r.status));
                track.finalized = Some((digest, r.status));
                let receipt = self.sign_receipt(&r, digest, effects);
                effects.push(Effect::Event(Event::Finalized {
                    resolution: r,
                    receipt,
                }));
            }
            None => {
                if r.is_final && r.is_decided() && track.announced.is_none() {
                    track.announced = Some((digest, r.status));
                    effects.push(Effect::Event(Event::Decided { resolution: r }));
                }
            }
            Some((prev, status)) if prev != digest => {
                track.finalized = Some((digest, r.status));
                if status == Status::Escalated && r.human_decision.is_some() {
                    // A human settling an escalation is the protocol working.
                    effects.push(Effect::Event(Event::Decided {
                        resolution: r.clone(),
                    }));
                } else if r.finality.certificate.is_none() {
                    // Before certification a late message can still change
                    // the result; after it, it is evidence and was reported
                    // as it arrived.
                    effects.push(Effect::Event(Event::Divergence {
                        proposal: id,
                        previous: (prev, status),
                        current: r.clone(),
                    }));
                }
                let receipt = self.sign_receipt(&r, digest, effects);
                effects.push(Effect::Event(Event::Finalized {
                    resolution: r,
                    receipt,
                }));
            }
            Some(_) => {}
        }
    }

    /// Announce what the receipts in the set say: a new certificate, a
    /// contest, attestor equivocations.
    fn finality_events(&mut self, id: ContentId, r: &Arc<Resolution>, effects: &mut Vec<Effect>) {
        let f = &r.finality;
        let track = self.tracks.entry(id).or_default();
        for e in &f.equivocations {
            if track.equivocations.insert((e.organization, e.human_round)) {
                effects.push(Effect::Event(Event::AttestorEquivocation {
                    proposal: id,
                    organization: e.organization,
                    receipts: e.receipts.clone(),
                }));
            }
        }
        match (f.state, &f.certificate) {
            // A certified escalation fixes round 0 too: what arrives later
            // is evidence, and the event says a human must now decide.
            (State::Certified | State::Escalated, Some(cert))
                if track.certified != Some(cert.result) =>
            {
                track.certified = Some(cert.result);
                effects.push(Effect::Event(Event::Certified {
                    resolution: r.clone(),
                }));
            }
            (State::Contested, _) if !track.contested => {
                track.contested = true;
                effects.push(Effect::Event(Event::Contested {
                    resolution: r.clone(),
                }));
            }
            _ => {}
        }
    }

    /// Sign this node's receipt for the round `r` belongs to, unless it
    /// already did: an honest attestor signs one result per proposal and
    /// round, whatever it computes later. Returns this node's newest receipt.
    fn sign_receipt(
        &mut self,
        r: &Resolution,
        digest: ContentId,
        effects: &mut Vec<Effect>,
    ) -> Option<ContentId> {
        let key = self.config.receipt_key.clone()?;
        let p = self.set.proposal(&r.proposal)?;
        let track = self.tracks.get(&r.proposal)?;
        let newest = track.round1.or(track.round0);
        let human_round = r.human_decision.is_some();
        let signed = if human_round {
            track.round1.is_some() || !r.finality.human_round_open
        } else {
            // Once round 1 is open the votes are settled without us.
            track.round0.is_some() || r.finality.human_round_open
        };
        // Only an organization's attestor signs: its receipt is what counts,
        // and receipts by every member would cost every node N signature
        // checks per decision for nothing a certificate reads.
        let policy = self.set.policy(&p.policy)?;
        let attests = policy.attestor_of(&key.public()).is_some();
        if signed || !attests || !r.is_final || r.status == Status::Pending {
            return newest;
        }
        let body = Body::Receipt(Receipt {
            node: key.public(),
            domain: p.domain.clone(),
            proposal: r.proposal,
            closes_at: p.closes_at,
            status: r.status,
            resolution: digest,
            counted_root: r.counted_root,
            human_decision: r.human_decision,
        });
        let msg = body.sign(&[&key]).ok()?;
        let (id, bytes, domain) = (msg.id, msg.bytes.clone(), p.domain.clone());
        let track = self.tracks.entry(r.proposal).or_default();
        if human_round {
            track.round1 = Some(id);
        } else {
            track.round0 = Some(id);
        }
        let proposal = r.proposal;
        if self.set.insert(msg) {
            effects.push(Effect::Store {
                id,
                bytes: bytes.clone(),
            });
            effects.push(Effect::Publish { domain, id, bytes });
            // Our receipt may complete a certificate.
            self.dirty.insert(proposal);
        }
        Some(id)
    }

    /// The proposals of a domain with their current status, oldest first.
    pub fn proposals(&mut self, domain: &str, now: Timestamp) -> Vec<(ContentId, Status)> {
        let ids: Vec<ContentId> = self.set.proposals_in(domain).map(|(_, id)| id).collect();
        ids.into_iter()
            .filter_map(|id| self.resolve(&id, now).ok().map(|r| (id, r.final_status())))
            .collect()
    }

    /// The canonical bytes of a message.
    pub fn get_bytes(&self, id: &ContentId) -> Option<&[u8]> {
        self.set.get(id).map(|m| m.bytes.as_slice())
    }

    /// The anti-entropy summary of a domain.
    pub fn summary(&self, domain: &str) -> Summary {
        Summary::of(&self.set, domain)
    }

    /// Answer a peer's sync request.
    pub fn answer(&self, req: &SyncRequest) -> SyncResponse {
        sync::answer(&self.set, req)
    }

    /// The ids this engine lacks.
    pub fn missing(&self, ids: &[ContentId]) -> Vec<ContentId> {
        sync::missing(&self.set, ids)
    }

    /// Trust of every agent with history in a domain, as a proposal created
    /// at `at` under the domain's newest policy would read it.
    pub fn trust_table(&mut self, domain: &str, at: Timestamp) -> BTreeMap<PublicKey, u16> {
        let Some(policy) = self.set.latest_policy(domain) else {
            return BTreeMap::new();
        };
        let t = self.trust_for(domain, at, &policy);
        t.accounts.iter().map(|(k, a)| (*k, a.score())).collect()
    }
}
