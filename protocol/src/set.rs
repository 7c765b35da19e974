//! The message set: a grow-only set of validated messages with the indexes
//! `resolve`, `trust` and anti-entropy read. Insertion is set union, so the
//! arrival order of messages never shows in anything derived from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::crypto::AgentId;
use crate::id::ContentId;
use crate::message::{Body, DomainPolicy, Proposal, SignedMessage, Timestamp};

/// Messages that refer to one proposal, by kind.
#[derive(Debug, Default, Clone)]
pub struct ProposalRefs {
    /// Response ids by responder (more than one means equivocation).
    pub responses: BTreeMap<AgentId, BTreeSet<ContentId>>,
    /// Human decisions.
    pub decisions: BTreeSet<ContentId>,
    /// Outcome reports.
    pub reports: BTreeSet<ContentId>,
    /// Receipts.
    pub receipts: BTreeSet<ContentId>,
}

#[derive(Debug, Default, Clone)]
struct DomainIndex {
    by_time: BTreeSet<(Timestamp, ContentId)>,
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
            _ => {}
        }
        if let Some(p) = body.proposal_ref() {
            let refs = self.refs.entry(*p).or_default();
            match body {
                Body::Response(r) => {
                    let ids = refs.responses.entry(r.responder).or_default();
                    ids.insert(id);
                    if ids.len() > 1 {
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

    /// Ids of a domain ordered by `(time, id)` within `[from, to)`.
    pub fn ids_in_range(
        &self,
        domain: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = ContentId> + '_ {
        self.domains.get(domain).into_iter().flat_map(move |d| {
            d.by_time
                .range((from, ContentId([0; 32]))..(to, ContentId([0; 32])))
                .map(|(_, id)| *id)
        })
    }
}
