//! The signed messages of ACP and their context-free validation.
//!
//! A message is an [`Envelope`]: a version byte, a [`Body`] and the
//! signatures. The content id covers the version and body only, so a
//! re-signed copy of the same body is the same message. Each signature covers
//! `tag || 0x00 || id` where the tag names the protocol version and the kind.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::crypto::{self, AgentId, Keypair, PublicKey, Signature, SignatureError, VerifyItem};
use crate::id::ContentId;
use crate::limits::*;

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 2;

/// Milliseconds since the Unix epoch, as signed by the message's author.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + ms`, saturating.
    pub fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// A quantity in basis points, `0..=10000` (confidence, authority, trust).
pub type Bps = u16;
/// One whole, in basis points.
pub const BPS_ONE: Bps = 10_000;

/// The signed envelope every message travels in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub version: u8,
    /// What is said.
    pub body: Body,
    /// Who says it: one signature for every kind but a policy, which carries
    /// one per organization it names, sorted by signer.
    pub signatures: Vec<SignatureEntry>,
}

/// One signer and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// The signing key.
    pub signer: PublicKey,
    /// Signature over the kind's tag and the content id.
    pub signature: Signature,
}

/// The message kinds. The variant order is the wire tag: never reorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Tag 0.
    Policy(DomainPolicy),
    /// Tag 1.
    Proposal(Proposal),
    /// Tag 2.
    Response(Response),
    /// Tag 3.
    HumanDecision(HumanDecision),
    /// Tag 4.
    OutcomeReport(OutcomeReport),
    /// Tag 5.
    Receipt(Receipt),
}

/// The kind of a message, without its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Kind {
    /// [`DomainPolicy`].
    Policy,
    /// [`Proposal`].
    Proposal,
    /// [`Response`].
    Response,
    /// [`HumanDecision`].
    HumanDecision,
    /// [`OutcomeReport`].
    OutcomeReport,
    /// [`Receipt`].
    Receipt,
}

impl Kind {
    /// The domain-separation tag signatures of this kind are made under.
    pub fn tag(self) -> &'static [u8] {
        match self {
            Kind::Policy => b"acp/v2/policy",
            Kind::Proposal => b"acp/v2/proposal",
            Kind::Response => b"acp/v2/response",
            Kind::HumanDecision => b"acp/v2/human-decision",
            Kind::OutcomeReport => b"acp/v2/outcome-report",
            Kind::Receipt => b"acp/v2/receipt",
        }
    }

    /// Largest encoded envelope of this kind.
    pub fn max_bytes(self) -> usize {
        match self {
            Kind::Policy => MAX_POLICY_BYTES,
            _ => MAX_OTHER_BYTES,
        }
    }
}

/// Who may vote in a domain, with what authority, and by which rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainPolicy {
    /// The domain governed, e.g. `fraud.detection`.
    pub domain: String,
    /// Revision number chosen by the organizations (informational).
    pub revision: u64,
    /// When the organizations signed it.
    pub issued_at: Timestamp,
    /// The organizations, sorted by root key, unique. Each must sign.
    pub organizations: Vec<Organization>,
    /// Voting members, sorted by agent key, unique.
    pub members: Vec<Member>,
    /// Keys of humans who may decide escalations, sorted, unique.
    pub humans: Vec<PublicKey>,
    /// Keys that may report outcomes, sorted, unique.
    pub reporters: Vec<PublicKey>,
    /// Decision rules.
    pub rules: DecisionRules,
    /// Keys that may propose without being members, sorted, unique.
    pub proposers: Vec<PublicKey>,
    /// The lineage policy this one amends; `None` for a genesis policy.
    pub supersedes: Option<ContentId>,
    /// Roots of the amended policy's organizations that approve this
    /// amendment without being organizations of it (an organization that
    /// leaves, or rotates its root), sorted, unique, disjoint from the roots.
    pub approvers: Vec<PublicKey>,
    /// Organizations of this policy whose roots must sign its successor.
    pub amendment_quorum: u16,
    /// Organizations whose attestors must sign one result to certify it.
    pub finality_quorum: u16,
}

/// An organization taking part in a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// The organization's root key; it signs the policy.
    pub root: PublicKey,
    /// Display name.
    pub name: String,
    /// Largest share of the domain's total potential weight this
    /// organization's endorsements (and, separately, challenges) may carry.
    pub weight_cap_bps: Bps,
    /// The one key whose receipts count for this organization in
    /// certificates, however many nodes it runs.
    pub attestor: PublicKey,
}

/// A voting member of a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The agent's key.
    pub agent: AgentId,
    /// Index into [`DomainPolicy::organizations`].
    pub organization: u16,
    /// Domain authority.
    pub authority_bps: Bps,
}

/// The thresholds a domain decides by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRules {
    /// Approve iff `10000 E > 10000 C + m (E + C)`; reject mirrored.
    pub quorum_margin_bps: Bps,
    /// Share of total potential weight that must respond.
    pub min_participation_bps: Bps,
    /// Escalate when the weighted mean confidence of decisive votes is below.
    pub low_confidence_bps: Bps,
    /// Proposals with `stakes >= high_stakes` always go to a human.
    pub high_stakes: Option<u64>,
    /// Smallest allowed `closes_at - created_at`.
    pub min_window_ms: u64,
    /// Largest allowed `closes_at - created_at`.
    pub max_window_ms: u64,
}

/// What a proposal asks to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Kind of action, e.g. `loan.approve`.
    pub kind: String,
    /// Structured payload, canonical JSON text.
    pub payload: String,
}

/// A signed, immutable request for a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Author.
    pub proposer: AgentId,
    /// Domain, e.g. `fraud.detection`.
    pub domain: String,
    /// The policy this proposal is decided under.
    pub policy: ContentId,
    /// What is proposed.
    pub action: Action,
    /// The proposer's own confidence (informational; the proposer does not vote).
    pub confidence_bps: Bps,
    /// Stakes in the domain's unit (e.g. cents).
    pub stakes: u64,
    /// References to evidence.
    pub evidence: Vec<String>,
    /// Signed creation time.
    pub created_at: Timestamp,
    /// Responses issued after this do not count.
    pub closes_at: Timestamp,
    /// A proposal this one replaces.
    pub supersedes: Option<ContentId>,
}

/// How a responder stands on a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Stance {
    /// For.
    Endorse,
    /// Against.
    Challenge,
    /// Takes part without weighing in.
    Abstain,
}

/// An agent's signed stance on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Author.
    pub responder: AgentId,
    /// Domain of the proposal (routes the message).
    pub domain: String,
    /// The proposal answered.
    pub proposal: ContentId,
    /// For, against, or abstain.
    pub stance: Stance,
    /// Confidence.
    pub confidence_bps: Bps,
    /// Why, in the agent's words.
    pub reasoning: String,
    /// References to evidence.
    pub evidence: Vec<String>,
    /// Signed issue time; counts iff `<= closes_at`.
    pub issued_at: Timestamp,
}

/// A human's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Verdict {
    /// Take the action.
    Approve,
    /// Do not.
    Reject,
}

/// A human's signed decision on an escalated proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanDecision {
    /// The human's key (must be in the policy's `humans`).
    pub human: PublicKey,
    /// Domain of the proposal.
    pub domain: String,
    /// The proposal decided.
    pub proposal: ContentId,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub rationale: String,
    /// Signed time; counts iff `>= closes_at`.
    pub decided_at: Timestamp,
}

/// How an executed decision turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// The action was right.
    Succeeded,
    /// The action was wrong.
    Failed,
}

/// An authorized reporter's statement of how a decision turned out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// The reporter (must be in the proposal's policy's `reporters`).
    pub reporter: PublicKey,
    /// Domain of the proposal.
    pub domain: String,
    /// The proposal whose outcome is reported.
    pub proposal: ContentId,
    /// The outcome.
    pub outcome: Outcome,
    /// Free text.
    pub note: String,
    /// Signed time; a proposal's trust reads reports strictly before its `created_at`.
    pub reported_at: Timestamp,
}

/// The status a resolution reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Status {
    /// Not decided yet.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Sent to a human.
    Escalated,
    /// Can never be decided (e.g. deadline outside the policy's bounds).
    Invalid,
}

/// A node's signed statement of the resolution it computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The node (its agent key) that computed it.
    pub node: AgentId,
    /// Domain of the proposal.
    pub domain: String,
    /// The proposal resolved.
    pub proposal: ContentId,
    /// The proposal's `closes_at` (places the receipt in time for sync).
    pub closes_at: Timestamp,
    /// The status computed.
    pub status: Status,
    /// Id of the canonical encoding of the full resolution.
    pub resolution: ContentId,
    /// Id over the sorted ids of every message the resolution counted.
    pub counted_root: ContentId,
    /// The round: `None` for the result of the votes (round 0), the human
    /// decision that settled an escalated or contested proposal (round 1).
    pub human_decision: Option<ContentId>,
}

impl Body {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Policy(_) => Kind::Policy,
            Body::Proposal(_) => Kind::Proposal,
            Body::Response(_) => Kind::Response,
            Body::HumanDecision(_) => Kind::HumanDecision,
            Body::OutcomeReport(_) => Kind::OutcomeReport,
            Body::Receipt(_) => Kind::Receipt,
        }
    }

    /// The domain the message belongs to (its gossip topic).
    pub fn domain(&self) -> &str {
        match self {
            Body::Policy(b) => &b.domain,
            Body::Proposal(b) => &b.domain,
            Body::Response(b) => &b.domain,
            Body::HumanDecision(b) => &b.domain,
            Body::OutcomeReport(b) => &b.domain,
            Body::Receipt(b) => &b.domain,
        }
    }

    /// The signed time that places the message in sync buckets.
    pub fn time(&self) -> Timestamp {
        match self {
            Body::Policy(b) => b.issued_at,
            Body::Proposal(b) => b.created_at,
            Body::Response(b) => b.issued_at,
            Body::HumanDecision(b) => b.decided_at,
            Body::OutcomeReport(b) => b.reported_at,
            Body::Receipt(b) => b.closes_at,
        }
    }

    /// The proposal a message refers to, if any.
    pub fn proposal_ref(&self) -> Option<&ContentId> {
        match self {
            Body::Policy(_) | Body::Proposal(_) => None,
            Body::Response(b) => Some(&b.proposal),
            Body::HumanDecision(b) => Some(&b.proposal),
            Body::OutcomeReport(b) => Some(&b.proposal),
            Body::Receipt(b) => Some(&b.proposal),
        }
    }

    /// The keys that must sign, in signature order.
    pub fn required_signers(&self) -> Vec<PublicKey> {
        match self {
            Body::Policy(p) => p.signers(),
            Body::Proposal(b) => vec![b.proposer],
            Body::Response(b) => vec![b.responder],
            Body::HumanDecision(b) => vec![b.human],
            Body::OutcomeReport(b) => vec![b.reporter],
            Body::Receipt(b) => vec![b.node],
        }
    }

    /// The content id: SHA-256 of the encoding of `(version, body)`.
    pub fn content_id(&self) -> Result<ContentId, CodecError> {
        let bytes = codec::encode(&(PROTOCOL_VERSION, self))?;
        Ok(ContentId::of(&bytes))
    }

    /// Sign with every key in `keys` (which must be the required signers)
    /// and return the encoded envelope and its id.
    pub fn sign(self, keys: &[&Keypair]) -> Result<SignedMessage, CodecError> {
        let id = self.content_id()?;
        let tag = self.kind().tag();
        let mut signatures: Vec<SignatureEntry> = keys
            .iter()
            .map(|k| SignatureEntry {
                signer: k.public(),
                signature: k.sign(tag, &id),
            })
            .collect();
        signatures.sort_by_key(|s| s.signer);
        let envelope = Envelope {
            version: PROTOCOL_VERSION,
            body: self,
            signatures,
        };
        let bytes = codec::encode(&envelope)?;
        Ok(SignedMessage {
            id,
            envelope,
            bytes,
        })
    }
}

/// A decoded, fully validated message with its id and canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMessage {
    /// Content id.
    pub id: ContentId,
    /// Decoded form.
    pub envelope: Envelope,
    /// Canonical bytes.
    pub bytes: Vec<u8>,
}

impl SignedMessage {
    /// The body.
    pub fn body(&self) -> &Body {
        &self.envelope.body
    }
}

/// Why a message was rejected. Every variant is a permanent property of the
/// bytes: a rejected message is never stored or forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes do not decode canonically, or exceed the size limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The version byte is not one this node speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The envelope is larger than its kind allows.
    #[error("{kind:?} message of {len} bytes exceeds {max}")]
    TooLargeForKind {
        /// Kind.
        kind: Kind,
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A field violates the spec's rules.
    #[error("invalid field `{field}`: {problem}")]
    InvalidField {
        /// Field path.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The signer set differs from the required signers.
    #[error("signers do not match the required signers")]
    WrongSigners,
    /// A signature does not verify.
    #[error("signature by {signer} does not verify: {error}")]
    BadSignature {
        /// Signer.
        signer: PublicKey,
        /// Why.
        error: SignatureError,
    },
}

impl Rejection {
    /// A stable machine-readable code: `codec.<code>` for codec errors, else
    /// the variant in snake case (used in test vectors and API errors).
    pub fn code(&self) -> String {
        match self {
            Rejection::Codec(c) => format!("codec.{}", c.code()),
            Rejection::UnsupportedVersion(_) => "unsupported_version".into(),
            Rejection::TooLargeForKind { .. } => "too_large_for_kind".into(),
            Rejection::InvalidField { .. } => "invalid_field".into(),
            Rejection::WrongSigners => "wrong_signers".into(),
            Rejection::BadSignature { .. } => "bad_signature".into(),
        }
    }
}

fn field(field: &'static str, problem: &'static str) -> Rejection {
    Rejection::InvalidField { field, problem }
}

/// Checks a domain name: 1..=128 bytes of `a-z 0-9 - _`, dot-separated
/// non-empty labels.
pub fn validate_domain(domain: &str) -> Result<(), Rejection> {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_BYTES {
        return Err(field("domain", "must be 1 to 128 bytes"));
    }
    if domain.split('.').any(|l| {
        l.is_empty()
            || !l
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }) {
        return Err(field(
            "domain",
            "labels must be non-empty [a-z0-9_-] separated by dots",
        ));
    }
    Ok(())
}

fn bps(f: &'static str, v: Bps) -> Result<(), Rejection> {
    if v > BPS_ONE {
        return Err(field(f, "basis points above 10000"));
    }
    Ok(())
}

/// A quorum of organizations: at least one, at most all, and a strict
/// majority, so that two quorums always share an organization.
fn quorum(f: &'static str, q: u16, organizations: usize) -> Result<(), Rejection> {
    let q = usize::from(q);
    if q == 0 || q > organizations || 2 * q <= organizations {
        return Err(field(
            f,
            "must be a strict majority of the organizations, at most all",
        ));
    }
    Ok(())
}

fn text(f: &'static str, s: &str, max: usize) -> Result<(), Rejection> {
    if s.len() > max {
        return Err(field(f, "text too long"));
    }
    Ok(())
}

fn evidence(f: &'static str, list: &[String]) -> Result<(), Rejection> {
    if list.len() > MAX_EVIDENCE_ITEMS {
        return Err(field(f, "too many evidence references"));
    }
    list.iter().try_for_each(|e| text(f, e, MAX_EVIDENCE_BYTES))
}

fn strictly_sorted<T: Ord>(f: &'static str, list: &[T]) -> Result<(), Rejection> {
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(field(f, "must be sorted ascending without duplicates"));
    }
    Ok(())
}

fn no_weak_keys<'a>(
    f: &'static str,
    keys: impl IntoIterator<Item = &'a PublicKey>,
) -> Result<(), Rejection> {
    if keys.into_iter().any(PublicKey::is_weak) {
        return Err(field(f, "weak (small-order or invalid) key"));
    }
    Ok(())
}

impl DomainPolicy {
    fn validate(&self) -> Result<(), Rejection> {
        validate_domain(&self.domain)?;
        if self.organizations.is_empty() || self.organizations.len() > MAX_ORGANIZATIONS {
            return Err(field("organizations", "must list 1 to 256 organizations"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(field("members", "too many members"));
        }
        if self.humans.len() > MAX_KEY_LIST || self.reporters.len() > MAX_KEY_LIST {
            return Err(field("humans/reporters", "too many keys"));
        }
        let roots: Vec<&PublicKey> = self.organizations.iter().map(|o| &o.root).collect();
        strictly_sorted("organizations", &roots)?;
        for o in &self.organizations {
            text("organizations.name", &o.name, MAX_NAME_BYTES)?;
            bps("organizations.weight_cap_bps", o.weight_cap_bps)?;
        }
        let agents: Vec<&PublicKey> = self.members.iter().map(|m| &m.agent).collect();
        strictly_sorted("members", &agents)?;
        for m in &self.members {
            bps("members.authority_bps", m.authority_bps)?;
            if usize::from(m.organization) >= self.organizations.len() {
                return Err(field("members.organization", "no such organization"));
            }
        }
        strictly_sorted("humans", &self.humans)?;
        strictly_sorted("reporters", &self.reporters)?;
        if self.proposers.len() > MAX_KEY_LIST {
            return Err(field("proposers", "too many keys"));
        }
        strictly_sorted("proposers", &self.proposers)?;
        if self.approvers.len() > MAX_KEY_LIST {
            return Err(field("approvers", "too many keys"));
        }
        strictly_sorted("approvers", &self.approvers)?;
        if self
            .approvers
            .iter()
            .any(|a| roots.binary_search(&a).is_ok())
        {
            return Err(field(
                "approvers",
                "an approver is also an organization root",
            ));
        }
        let mut attestors: Vec<&PublicKey> =
            self.organizations.iter().map(|o| &o.attestor).collect();
        attestors.sort();
        if attestors.windows(2).any(|w| w[0] == w[1]) {
            return Err(field(
                "organizations.attestor",
                "two organizations share an attestor",
            ));
        }
        no_weak_keys("organizations.root", roots)?;
        no_weak_keys("organizations.attestor", attestors)?;
        no_weak_keys("members.agent", agents)?;
        no_weak_keys("humans", &self.humans)?;
        no_weak_keys("reporters", &self.reporters)?;
        no_weak_keys("proposers", &self.proposers)?;
        no_weak_keys("approvers", &self.approvers)?;
        let n = self.organizations.len();
        quorum("amendment_quorum", self.amendment_quorum, n)?;
        quorum("finality_quorum", self.finality_quorum, n)?;
        let r = &self.rules;
        bps("rules.quorum_margin_bps", r.quorum_margin_bps)?;
        bps("rules.min_participation_bps", r.min_participation_bps)?;
        bps("rules.low_confidence_bps", r.low_confidence_bps)?;
        if r.min_window_ms > r.max_window_ms {
            return Err(field("rules", "min_window_ms exceeds max_window_ms"));
        }
        Ok(())
    }

    /// The keys that must sign this policy, ascending: every organization
    /// root and every approver.
    pub fn signers(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .organizations
            .iter()
            .map(|o| o.root)
            .chain(self.approvers.iter().copied())
            .collect();
        keys.sort();
        keys
    }

    /// Whether `agent` may propose under this policy: a member or a listed
    /// proposer.
    pub fn may_propose(&self, agent: &AgentId) -> bool {
        self.member(agent).is_some() || self.proposers.binary_search(agent).is_ok()
    }

    /// The organization whose attestor is `key`.
    pub fn attestor_of(&self, key: &PublicKey) -> Option<u16> {
        self.organizations
            .iter()
            .position(|o| o.attestor == *key)
            .map(|i| i as u16)
    }

    /// The member entry for `agent`, by binary search.
    pub fn member(&self, agent: &AgentId) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.agent.cmp(agent))
            .ok()
            .map(|i| &self.members[i])
    }
}

impl Body {
    fn validate(&self) -> Result<(), Rejection> {
        validate_domain(self.domain())?;
        match self {
            Body::Policy(p) => p.validate(),
            Body::Proposal(p) => {
                text("action.kind", &p.action.kind, MAX_NAME_BYTES)?;
                if p.action.kind.is_empty() {
                    return Err(field("action.kind", "must not be empty"));
                }
                text("action.payload", &p.action.payload, MAX_PAYLOAD_BYTES)?;
                bps("confidence_bps", p.confidence_bps)?;
                evidence("evidence", &p.evidence)?;
                if p.closes_at <= p.created_at {
                    return Err(field("closes_at", "must be after created_at"));
                }
                Ok(())
            }
            Body::Response(r) => {
                bps("confidence_bps", r.confidence_bps)?;
                text("reasoning", &r.reasoning, MAX_REASONING_BYTES)?;
                evidence("evidence", &r.evidence)
            }
            Body::HumanDecision(d) => text("rationale", &d.rationale, MAX_REASONING_BYTES),
            Body::OutcomeReport(o) => text("note", &o.note, MAX_REASONING_BYTES),
            Body::Receipt(_) => Ok(()),
        }
    }
}

/// Decode and validate a message: size, canonical encoding, version, kind
/// limits, fields, signer set, then signatures (in that order; the cheapest
/// checks run first and nothing is verified for bytes that fail them).
pub fn decode_message(bytes: &[u8]) -> Result<SignedMessage, Rejection> {
    let (envelope, id) = decode_unverified(bytes)?;
    verify_signatures(&envelope, &id)?;
    Ok(SignedMessage {
        id,
        envelope,
        bytes: bytes.to_vec(),
    })
}

/// Every check of [`decode_message`] except the signatures, which the caller
/// must verify (e.g. in a batch with [`signature_items`]) before trusting it.
pub fn decode_unverified(bytes: &[u8]) -> Result<(Envelope, ContentId), Rejection> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_POLICY_BYTES,
        }
        .into());
    }
    // The version byte leads the envelope and decides how the rest reads,
    // so it is checked before the body: a message of another version is
    // `UnsupportedVersion`, never a misleading `Malformed`.
    match bytes.first() {
        Some(&PROTOCOL_VERSION) => {}
        Some(&v) => return Err(Rejection::UnsupportedVersion(v)),
        None => {}
    }
    let envelope: Envelope = codec::decode(bytes, MAX_POLICY_BYTES)?;
    let kind = envelope.body.kind();
    if bytes.len() > kind.max_bytes() {
        return Err(Rejection::TooLargeForKind {
            kind,
            len: bytes.len(),
            max: kind.max_bytes(),
        });
    }
    envelope.body.validate()?;
    let required = envelope.body.required_signers();
    if envelope.signatures.len() != required.len()
        || envelope
            .signatures
            .iter()
            .zip(&required)
            .any(|(s, r)| s.signer != *r)
    {
        return Err(Rejection::WrongSigners);
    }
    // The id preimage is the envelope's prefix before the signature list.
    let sig_len = 8 + envelope.signatures.len() * (32 + 64);
    let id = ContentId::of(&bytes[..bytes.len() - sig_len]);
    Ok((envelope, id))
}

/// The signature checks an envelope needs, as signing inputs.
pub fn signature_items(
    envelope: &Envelope,
    id: &ContentId,
) -> Vec<(PublicKey, Vec<u8>, Signature)> {
    let tag = envelope.body.kind().tag();
    envelope
        .signatures
        .iter()
        .map(|s| (s.signer, crypto::signing_input(tag, id), s.signature))
        .collect()
}

fn verify_signatures(envelope: &Envelope, id: &ContentId) -> Result<(), Rejection> {
    verify_signatures_with(envelope, id, crypto::verify)
}

/// The signature checks of [`decode_message`] for an envelope that passed
/// [`decode_unverified`], through `verify` (e.g. a [`crypto::KeyCache`]).
pub fn verify_signatures_with(
    envelope: &Envelope,
    id: &ContentId,
    mut verify: impl FnMut(&VerifyItem<'_>) -> Result<(), crypto::SignatureError>,
) -> Result<(), Rejection> {
    for (signer, msg, sig) in signature_items(envelope, id) {
        verify(&VerifyItem {
            key: &signer,
            message: &msg,
            signature: &sig,
        })
        .map_err(|error| Rejection::BadSignature { signer, error })?;
    }
    Ok(())
}
