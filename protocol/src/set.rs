//! The message set: a grow-only set of validated messages with the indexes
//! `resolve`, `trust` and anti-entropy read. Insertion is set union, so the
//! arrival order of messages never shows in anything derived from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::crypto::AgentId;
use crate::id::ContentId;
use crate::message::{Body, Bps, DomainPolicy, Proposal, SignedMessage, Stance, Timestamp};

/// What `resolve` reads of a response, kept beside its id so counting never
/// touches the full message.
#[derive(Debug, Clone)]
pub struct ResponseEntry {
    /// Stance.
    pub stance: Stance,
    /// Confidence.
    pub confidence_bps: Bps,
    /// Signed issue time.
    pub issued_at: Timestamp,
    /// The domain the response names (interned).
    pub domain: Arc<str>,
}

/// Messages that refer to one proposal, by kind.
#[derive(Debug, Default, Clone)]
pub struct ProposalRefs {
    /// Responses keyed by (responder, id): one flat ordered map, so counting
    /// walks responders in key order without a container per responder.
    responses: BTreeMap<(AgentId, ContentId), ResponseEntry>,
    /// Responders with more than one response.
    equivocators: BTreeSet<AgentId>,
    /// Human decisions.
    pub decisions: BTreeSet<ContentId>,
    /// Outcome reports.
    pub reports: BTreeSet<ContentId>,
    /// Receipts.
    pub receipts: BTreeSet<ContentId>,
}

impl ProposalRefs {
    /// Every response as (responder, id, entry), ordered by responder then id.
    pub fn responses(&self) -> impl Iterator<Item = (&AgentId, &ContentId, &ResponseEntry)> {
        self.responses.iter().map(|((a, id), e)| (a, id, e))
    }

    /// The ids of one responder's responses.
    pub fn responses_of(&self, agent: &AgentId) -> impl Iterator<Item = ContentId> + '_ {
        let agent = *agent;
        self.responses
            .range((agent, ContentId([0; 32]))..=(agent, ContentId([0xff; 32])))
            .map(|((_, id), _)| *id)
    }

    /// Number of responses.
    pub fn response_count(&self) -> usize {
        self.responses.len()
    }

    /// Responders who signed more than one response.
    pub fn equivocators(&self) -> &BTreeSet<AgentId> {
        &self.equivocators
    }
}

#[derive(Debug, Default, Clone)]
struct DomainIndex {
    by_time: BTreeSet<(Timestamp, ContentId)>,
    policies: BTreeSet<ContentId>,
    proposals: BTreeSet<(Timestamp, ContentId)>,
    reports: BTreeSet<(Timestamp, ContentId)>,
}

/// A grow-only set of validated messages.
#[derive(Debug, Default, Clone)]
pub struct MessageSet {
    messages: HashMap<ContentId, Arc<SignedMessage>>,
    domains: BTreeMap<String, DomainIndex>,
    refs: HashMap<ContentId, ProposalRefs>,
    /// Proposals with at least one equivocating responder.
    equivocated: BTreeSet<ContentId>,
    /// Domain names, interned for the response index.
    interned: BTreeMap<String, Arc<str>>,
    /// Policies by the policy they amend.
    amendments: HashMap<ContentId, BTreeSet<ContentId>>,
    /// Trust anchors: the genesis policy id of each governed domain.
    anchors: BTreeMap<String, ContentId>,
}

impl MessageSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a validated message. Returns false if it was already present.
    pub fn insert(&mut self, msg: SignedMessage) -> bool {
        if self.messages.contains_key(&msg.id) {
            return false;
        }
        let id = msg.id;
        let body = msg.body();
        let idx = self.domains.entry(body.domain().to_owned()).or_default();
        idx.by_time.insert((body.time(), id));
        match body {
            Body::Proposal(p) => {
                idx.proposals.insert((p.created_at, id));
            }
            Body::OutcomeReport(r) => {
                idx.reports.insert((r.reported_at, id));
            }
            Body::Policy(p) => {
                idx.policies.insert(id);
                if let Some(parent) = p.supersedes {
                    self.amendments.entry(parent).or_default().insert(id);
                }
            }
            _ => {}
        }
        if let Some(p) = body.proposal_ref() {
            let domain = self
                .interned
                .entry(body.domain().to_owned())
                .or_insert_with(|| Arc::from(body.domain()))
                .clone();
            let refs = self.refs.entry(*p).or_default();
            match body {
                Body::Response(r) => {
                    refs.responses.insert(
                        (r.responder, id),
                        ResponseEntry {
                            stance: r.stance,
                            confidence_bps: r.confidence_bps,
                            issued_at: r.issued_at,
                            domain,
                        },
                    );
                    if refs.responses_of(&r.responder).nth(1).is_some() {
                        refs.equivocators.insert(r.responder);
                        self.equivocated.insert(*p);
                    }
                }
                Body::HumanDecision(_) => {
                    refs.decisions.insert(id);
                }
                Body::OutcomeReport(_) => {
                    refs.reports.insert(id);
                }
                Body::Receipt(_) => {
                    refs.receipts.insert(id);
                }
                Body::Policy(_) | Body::Proposal(_) => {}
            }
        }
        self.messages.insert(id, Arc::new(msg));
        true
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether the set holds `id`.
    pub fn contains(&self, id: &ContentId) -> bool {
        self.messages.contains_key(id)
    }

    /// A message by id.
    pub fn get(&self, id: &ContentId) -> Option<&Arc<SignedMessage>> {
        self.messages.get(id)
    }

    /// Every message, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<SignedMessage>> {
        self.messages.values()
    }

    /// A proposal body by id.
    pub fn proposal(&self, id: &ContentId) -> Option<&Proposal> {
        match self.get(id).map(|m| m.body()) {
            Some(Body::Proposal(p)) => Some(p),
            _ => None,
        }
    }

    /// A policy body by id.
    pub fn policy(&self, id: &ContentId) -> Option<&DomainPolicy> {
        match self.get(id).map(|m| m.body()) {
            Some(Body::Policy(p)) => Some(p),
            _ => None,
        }
    }

    /// Messages that refer to a proposal.
    pub fn refs(&self, proposal: &ContentId) -> Option<&ProposalRefs> {
        self.refs.get(proposal)
    }

    /// The domains present.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// Proposal ids of a domain ordered by `(created_at, id)`.
    pub fn proposals_in(&self, domain: &str) -> impl Iterator<Item = (Timestamp, ContentId)> + '_ {
        self.domains
            .get(domain)
            .into_iter()
            .flat_map(|d| d.proposals.iter().copied())
    }

    /// The current lineage policy of a domain: the newest policy of the
    /// chain from its trust anchor.
    pub fn latest_policy(&self, domain: &str) -> Option<ContentId> {
        crate::lineage::lineage(self, domain).current()
    }

    /// Trust `genesis` as the genesis policy of `domain` (replacing any
    /// earlier anchor of that domain).
    pub fn set_anchor(&mut self, domain: &str, genesis: ContentId) {
        self.anchors.insert(domain.to_owned(), genesis);
    }

    /// The trust anchor (genesis policy id) of a domain.
    pub fn anchor(&self, domain: &str) -> Option<ContentId> {
        self.anchors.get(domain).copied()
    }

    /// Every trust anchor, by domain.
    pub fn anchors(&self) -> &BTreeMap<String, ContentId> {
        &self.anchors
    }

    /// Policies that name `policy` in `supersedes` (valid amendments or not).
    pub fn amendments_of(&self, policy: &ContentId) -> impl Iterator<Item = &ContentId> {
        self.amendments.get(policy).into_iter().flatten()
    }

    /// Outcome reports of a domain with `reported_at < before`, in order.
    pub fn reports_before(
        &self,
        domain: &str,
        before: Timestamp,
    ) -> impl Iterator<Item = ContentId> + '_ {
        self.domains.get(domain).into_iter().flat_map(move |d| {
            d.reports
                .range(..(before, ContentId([0; 32])))
                .map(|(_, id)| *id)
        })
    }

    /// Proposals with an equivocating responder.
    pub fn equivocated_proposals(&self) -> impl Iterator<Item = &ContentId> {
        self.equivocated.iter()
    }

    /// `(time, id)` of a domain's messages in that order, within `[from, to)`.
    pub fn timed_ids_in_range(
        &self,
        domain: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = (Timestamp, ContentId)> + '_ {
        self.domains.get(domain).into_iter().flat_map(move |d| {
            d.by_time
                .range((from, ContentId([0; 32]))..(to, ContentId([0; 32])))
                .copied()
        })
    }

    /// Ids of a domain ordered by `(time, id)` within `[from, to)`.
    pub fn ids_in_range(
        &self,
        domain: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = ContentId> + '_ {
        self.timed_ids_in_range(domain, from, to).map(|(_, id)| id)
    }
}
