//! Builders for signed messages, for agents, tools, tests and simulations.
//!
//! ```
//! use acp_protocol::build::{PolicyBuilder, response, proposal};
//! use acp_protocol::{Keypair, Stance, Timestamp};
//!
//! let org = Keypair::from_seed([1; 32]);
//! let (alice, bob) = (Keypair::from_seed([2; 32]), Keypair::from_seed([3; 32]));
//! let policy = PolicyBuilder::new("loans.retail")
//!     .organization(&org, "bank", 10_000)
//!     .member(&alice.public(), 0, 10_000)
//!     .member(&bob.public(), 0, 8_000)
//!     .sign(&[&org])
//!     .unwrap();
//! let p = proposal(&alice, "loans.retail", policy.id, "loan.approve", "{}", Timestamp(0), Timestamp(60_000))
//!     .unwrap();
//! let r = response(&bob, &p, Stance::Endorse, 9_000, "income verified", Timestamp(1_000)).unwrap();
//! assert_eq!(r.body().proposal_ref(), Some(&p.id));
//! ```

use crate::codec::CodecError;
use crate::crypto::{Keypair, PublicKey};
use crate::id::ContentId;
use crate::message::*;

/// Rules used when a builder is not given any: 10% margin, half the
/// potential weight must respond, a 30% confidence floor, windows of one
/// second to thirty days.
pub fn default_rules() -> DecisionRules {
    DecisionRules {
        quorum_margin_bps: 1_000,
        min_participation_bps: 5_000,
        low_confidence_bps: 3_000,
        high_stakes: None,
        min_window_ms: 1_000,
        max_window_ms: 30 * 24 * 3_600_000,
    }
}

/// Builds a [`DomainPolicy`]; sorts every list as the spec requires.
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    domain: String,
    revision: u64,
    issued_at: Timestamp,
    organizations: Vec<Organization>,
    members: Vec<Member>,
    humans: Vec<PublicKey>,
    reporters: Vec<PublicKey>,
    rules: DecisionRules,
    proposers: Vec<PublicKey>,
    supersedes: Option<ContentId>,
    approvers: Vec<PublicKey>,
    amendment_quorum: Option<u16>,
    finality_quorum: Option<u16>,
}

/// The default quorum of `n` organizations: more than two thirds, so that
/// with `n >= 3f + 1` two conflicting certificates need more than `f`
/// misbehaving organizations.
pub fn default_quorum(n: usize) -> u16 {
    (2 * n / 3 + 1).min(n) as u16
}

impl PolicyBuilder {
    /// A policy for `domain` with [`default_rules`].
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            revision: 1,
            issued_at: Timestamp(0),
            organizations: Vec::new(),
            members: Vec::new(),
            humans: Vec::new(),
            reporters: Vec::new(),
            rules: default_rules(),
            proposers: Vec::new(),
            supersedes: None,
            approvers: Vec::new(),
            amendment_quorum: None,
            finality_quorum: None,
        }
    }

    /// Add an organization whose receipts its `attestor` key signs.
    pub fn organization_attested(
        mut self,
        root: &Keypair,
        name: &str,
        weight_cap_bps: Bps,
        attestor: &PublicKey,
    ) -> Self {
        self.organizations.push(Organization {
            root: root.public(),
            name: name.to_owned(),
            weight_cap_bps,
            attestor: *attestor,
        });
        self
    }

    /// Allow a key to propose without being a member.
    pub fn proposer(mut self, key: &PublicKey) -> Self {
        self.proposers.push(*key);
        self
    }

    /// Make this policy an amendment of `policy`.
    pub fn supersedes(mut self, policy: ContentId) -> Self {
        self.supersedes = Some(policy);
        self
    }

    /// A root of the amended policy that approves without being an
    /// organization of this one.
    pub fn approver(mut self, root: &PublicKey) -> Self {
        self.approvers.push(*root);
        self
    }

    /// Organizations whose roots must sign this policy's successor
    /// (default [`default_quorum`]).
    pub fn amendment_quorum(mut self, q: u16) -> Self {
        self.amendment_quorum = Some(q);
        self
    }

    /// Organizations whose attestors certify a result (default
    /// [`default_quorum`]).
    pub fn finality_quorum(mut self, q: u16) -> Self {
        self.finality_quorum = Some(q);
        self
    }

    /// Add an organization; members refer to it by the order of these calls.
    /// Its root key is also its attestor (see [`Self::organization_attested`]).
    pub fn organization(self, root: &Keypair, name: &str, weight_cap_bps: Bps) -> Self {
        let attestor = root.public();
        self.organization_attested(root, name, weight_cap_bps, &attestor)
    }

    /// Add a member of the `organization`-th organization added.
    pub fn member(mut self, agent: &PublicKey, organization: u16, authority_bps: Bps) -> Self {
        self.members.push(Member {
            agent: *agent,
            organization,
            authority_bps,
        });
        self
    }

    /// Allow a human to decide escalations.
    pub fn human(mut self, key: &PublicKey) -> Self {
        self.humans.push(*key);
        self
    }

    /// Allow a key to report outcomes.
    pub fn reporter(mut self, key: &PublicKey) -> Self {
        self.reporters.push(*key);
        self
    }

    /// Replace the rules.
    pub fn rules(mut self, rules: DecisionRules) -> Self {
        self.rules = rules;
        self
    }

    /// Set revision and issue time.
    pub fn issued(mut self, revision: u64, at: Timestamp) -> Self {
        self.revision = revision;
        self.issued_at = at;
        self
    }

    /// The policy body, lists sorted and organization indexes remapped.
    pub fn body(self) -> DomainPolicy {
        let mut order: Vec<usize> = (0..self.organizations.len()).collect();
        order.sort_by_key(|&i| self.organizations[i].root);
        let mut new_index = vec![0u16; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as u16;
        }
        let organizations = order
            .iter()
            .map(|&i| self.organizations[i].clone())
            .collect();
        let mut members: Vec<Member> = self
            .members
            .into_iter()
            .map(|mut m| {
                if let Some(&n) = new_index.get(usize::from(m.organization)) {
                    m.organization = n;
                }
                m
            })
            .collect();
        members.sort_by_key(|m| m.agent);
        let mut humans = self.humans;
        humans.sort();
        let mut reporters = self.reporters;
        reporters.sort();
        let mut proposers = self.proposers;
        proposers.sort();
        let mut approvers = self.approvers;
        approvers.sort();
        let n = order.len();
        DomainPolicy {
            domain: self.domain,
            revision: self.revision,
            issued_at: self.issued_at,
            organizations,
            members,
            humans,
            reporters,
            rules: self.rules,
            proposers,
            supersedes: self.supersedes,
            approvers,
            amendment_quorum: self.amendment_quorum.unwrap_or_else(|| default_quorum(n)),
            finality_quorum: self.finality_quorum.unwrap_or_else(|| default_quorum(n)),
        }
    }

    /// Build and sign with the organizations' root keys (and the approvers').
    pub fn sign(self, roots: &[&Keypair]) -> Result<SignedMessage, CodecError> {
        Body::Policy(self.body()).sign(roots)
    }
}

/// Everything a proposal says besides who proposes it.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// Domain.
    pub domain: &'a str,
    /// The pinned policy.
    pub policy: ContentId,
    /// Action kind, e.g. `loan.approve`.
    pub kind: &'a str,
    /// Action payload, JSON text.
    pub payload: String,
    /// The proposer's own confidence.
    pub confidence_bps: Bps,
    /// Stakes, in the domain's unit.
    pub stakes: u64,
    /// Evidence references.
    pub evidence: Vec<String>,
    /// Signed creation time.
    pub created_at: Timestamp,
    /// When responses close.
    pub closes_at: Timestamp,
}

impl Ask<'_> {
    /// Signs the proposal with the proposer's key.
    pub fn sign(self, proposer: &Keypair) -> Result<SignedMessage, CodecError> {
        Body::Proposal(Proposal {
            proposer: proposer.public(),
            domain: self.domain.to_owned(),
            policy: self.policy,
            action: Action {
                kind: self.kind.to_owned(),
                payload: self.payload,
            },
            confidence_bps: self.confidence_bps,
            stakes: self.stakes,
            evidence: self.evidence,
            created_at: self.created_at,
            closes_at: self.closes_at,
            supersedes: None,
        })
        .sign(&[proposer])
    }
}

/// A proposal with no evidence, stakes 0 and proposer confidence 10000.
pub fn proposal(
    proposer: &Keypair,
    domain: &str,
    policy: ContentId,
    action_kind: &str,
    payload: &str,
    created_at: Timestamp,
    closes_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    Ask {
        domain,
        policy,
        kind: action_kind,
        payload: payload.to_owned(),
        confidence_bps: BPS_ONE,
        stakes: 0,
        evidence: Vec::new(),
        created_at,
        closes_at,
    }
    .sign(proposer)
}

/// A response to `proposal` (which must be a proposal message).
pub fn response(
    responder: &Keypair,
    proposal: &SignedMessage,
    stance: Stance,
    confidence_bps: Bps,
    reasoning: &str,
    issued_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    response_with_evidence(
        responder,
        proposal,
        stance,
        confidence_bps,
        reasoning,
        &[],
        issued_at,
    )
}

/// A response to `proposal` citing evidence references.
pub fn response_with_evidence(
    responder: &Keypair,
    proposal: &SignedMessage,
    stance: Stance,
    confidence_bps: Bps,
    reasoning: &str,
    evidence: &[&str],
    issued_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    Body::Response(Response {
        responder: responder.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        stance,
        confidence_bps,
        reasoning: reasoning.to_owned(),
        evidence: evidence.iter().map(|e| (*e).to_owned()).collect(),
        issued_at,
    })
    .sign(&[responder])
}

/// A human decision on `proposal`.
pub fn human_decision(
    human: &Keypair,
    proposal: &SignedMessage,
    verdict: Verdict,
    rationale: &str,
    decided_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    Body::HumanDecision(HumanDecision {
        human: human.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        verdict,
        rationale: rationale.to_owned(),
        decided_at,
    })
    .sign(&[human])
}

/// An outcome report on `proposal`.
pub fn outcome_report(
    reporter: &Keypair,
    proposal: &SignedMessage,
    outcome: Outcome,
    reported_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    outcome_report_with_note(reporter, proposal, outcome, "", reported_at)
}

/// An outcome report on `proposal` with a note.
pub fn outcome_report_with_note(
    reporter: &Keypair,
    proposal: &SignedMessage,
    outcome: Outcome,
    note: &str,
    reported_at: Timestamp,
) -> Result<SignedMessage, CodecError> {
    Body::OutcomeReport(OutcomeReport {
        reporter: reporter.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        outcome,
        note: note.to_owned(),
        reported_at,
    })
    .sign(&[reporter])
}

/// A receipt by `node` for `resolution` of `proposal` (a proposal message):
/// the acknowledgment an attestor signs once per round.
pub fn receipt(
    node: &Keypair,
    proposal: &SignedMessage,
    resolution: &crate::resolve::Resolution,
) -> Result<SignedMessage, CodecError> {
    let closes_at = match proposal.body() {
        Body::Proposal(p) => p.closes_at,
        _ => Timestamp(0),
    };
    Body::Receipt(Receipt {
        node: node.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        closes_at,
        status: resolution.status,
        resolution: resolution.digest(),
        counted_root: resolution.counted_root,
        human_decision: resolution.human_decision,
    })
    .sign(&[node])
}
