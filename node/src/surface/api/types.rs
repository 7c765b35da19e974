//! The request and response bodies of the node's API, one definition for
//! every side: the HTTP handlers serialize them, the OpenAPI document is
//! generated from them, and the CLI, the MCP server and the examples
//! deserialize into them. The control channel's answers live here too, as
//! they share the proposal views.
//!
//! The JSON is the wire format the Python client and the escalation page
//! read: field names, nesting and enum spellings are part of the contract.
//! Ids and keys are typed ([`ContentId`], [`PublicKey`]) and cross the wire
//! as their lowercase hex text; statuses and stances are the protocol's own
//! enums, whose snake_case names are the API's.

use std::collections::BTreeMap;

use acp_protocol::finality::State;
use acp_protocol::resolve::{DecisionPackage, Tally};
use acp_protocol::{ContentId, Kind, Outcome, PublicKey, Reason, Stance, Status, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::transport::p2p::MetricsSnapshot;

// ------------------------------------------------------------ errors

/// The JSON shape of every error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code and a one-line message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable, one line.
    pub message: String,
    /// With `not_authorized`: the admission refusal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With `depends_on_unknown`: the id of the missing policy or proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

// ------------------------------------------------------------ requests

/// Create a proposal, signed by the node's agent key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewProposal {
    /// Domain, e.g. `loans.approval`.
    pub domain: String,
    /// Policy id; default: the newest policy the node holds for the domain.
    #[serde(default)]
    pub policy: Option<String>,
    /// Action kind, e.g. `loan.approve`.
    pub kind: String,
    /// Action payload: any JSON value (a string is used verbatim, anything
    /// else as its compact JSON text).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Proposer confidence in `[0, 1]` (default 1).
    #[serde(default = "one")]
    pub confidence: f64,
    /// Stakes (compared with the policy's `high_stakes`).
    #[serde(default)]
    pub stakes: u64,
    /// Evidence references.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Responses close this many milliseconds from now (default 60000).
    #[serde(default = "default_window")]
    pub closes_in_ms: u64,
    /// Id of a proposal this one replaces.
    #[serde(default)]
    pub supersedes: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Default of [`NewProposal::closes_in_ms`].
pub const DEFAULT_WINDOW_MS: u64 = 60_000;

fn default_window() -> u64 {
    DEFAULT_WINDOW_MS
}

/// Respond to a proposal, signed by the node's agent key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewResponse {
    /// `endorse`, `challenge` or `abstain`.
    pub stance: Stance,
    /// Confidence in `[0, 1]`.
    pub confidence: f64,
    /// Reasoning, shown to humans and auditors.
    #[serde(default)]
    pub reasoning: String,
    /// Evidence references.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// A human decision, signed by the node's human key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewDecision {
    /// `approve` or `reject`.
    pub verdict: Verdict,
    /// Why.
    #[serde(default)]
    pub rationale: String,
}

/// An outcome report, signed by the node's reporter key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewOutcome {
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// A note.
    #[serde(default)]
    pub note: String,
}

/// Filters of the proposal list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only this status: pending, approved, rejected, escalated, invalid.
    pub status: Option<String>,
}

/// A trust anchor: the genesis policy of a domain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorBody {
    /// The domain (one this node joins).
    pub domain: String,
    /// The genesis policy id (`1220…`).
    pub genesis: String,
}

/// Which domain's trust to read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrustQuery {
    /// The domain.
    pub domain: Option<String>,
}

// ------------------------------------------------------------ answers

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always true: the node answers.
    pub ok: bool,
}

/// A submitted message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmittedBody {
    /// Content id (multihash hex, `1220…`).
    #[schema(value_type = String)]
    pub id: ContentId,
    /// False when the node already held it.
    pub new: bool,
}

/// A human decision taken in, with where the proposal stands now: the
/// decision counts once the round-0 receipts open the human round, and the
/// result is final once the attestors certify it (follow `finality.state`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecisionSubmitted {
    /// The decision's content id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// False when the node already held it.
    pub new: bool,
    /// The proposal's status to act on now.
    pub status: Status,
    /// The proposal's finality now (as in `GET /v1/proposals/{id}`).
    pub finality: FinalityView,
}

/// The node's status, as the control channel answers it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeStatus {
    /// Always true in an answer.
    pub ok: bool,
    /// The libp2p peer id.
    pub peer_id: String,
    /// The agent key the node signs receipts with.
    #[schema(value_type = String)]
    pub agent: PublicKey,
    /// Messages in the engine.
    pub messages: usize,
    /// Messages in the store.
    pub stored: usize,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Listen addresses.
    pub listen: Vec<String>,
    /// Domains the node joins.
    pub domains: Vec<String>,
    /// Trust anchors: domain to genesis policy id.
    #[schema(value_type = BTreeMap<String, String>)]
    pub anchors: BTreeMap<String, ContentId>,
    /// Transport counters.
    pub metrics: MetricsSnapshot,
}

/// `GET /v1/status`: the node's status and the keys the API signs with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    /// The node.
    #[serde(flatten)]
    pub node: NodeStatus,
    /// The human key decisions are signed with (null: none).
    #[schema(value_type = Option<String>)]
    pub human: Option<PublicKey>,
    /// The reporter key outcome reports are signed with (null: none).
    #[schema(value_type = Option<String>)]
    pub reporter: Option<PublicKey>,
}

/// `GET /v1/proposals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalList {
    /// Oldest first within a domain, domains in name order.
    pub proposals: Vec<ProposalItem>,
}

/// One proposal in the list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalItem {
    /// Proposal id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Domain.
    pub domain: String,
    /// Action kind.
    pub kind: String,
    /// Action payload as signed.
    pub payload: String,
    /// Proposer key.
    #[schema(value_type = String)]
    pub proposer: PublicKey,
    /// Stakes.
    pub stakes: u64,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// Milliseconds since the epoch.
    pub closes_at: u64,
    /// The status to act on.
    pub status: Status,
    /// The finality state.
    pub finality: State,
    /// The one-line certificate summary.
    pub certificate: String,
    /// Responses held.
    pub responses: usize,
}

/// An organization of the pinned policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrganizationRef {
    /// Index into the policy's organizations.
    pub index: u16,
    /// Its name (null while the policy is not held).
    pub name: Option<String>,
}

/// A result attested by organizations: the certificate, or one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttestationView {
    /// 0: the votes; 1: a human decision.
    pub round: u8,
    /// The human decision it settles (round 1).
    #[schema(value_type = Option<String>)]
    pub human_decision: Option<ContentId>,
    /// The attested status.
    pub status: Status,
    /// The attested resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// Root of the counted responses.
    #[schema(value_type = String)]
    pub counted_root: ContentId,
    /// The organizations whose attestors signed it.
    pub organizations: Vec<OrganizationRef>,
    /// Their receipts.
    #[schema(value_type = Vec<String>)]
    pub receipts: Vec<ContentId>,
}

/// An organization's attestor that signed two different results in a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EquivocationView {
    /// The organization.
    pub organization: OrganizationRef,
    /// 0: the votes; 1: a human decision.
    pub round: u8,
    /// The conflicting receipts (the evidence).
    #[schema(value_type = Vec<String>)]
    pub receipts: Vec<ContentId>,
}

/// A proposal's finality: its state, the status to act on, the certificate
/// and every attestation, with organization names from the pinned policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FinalityView {
    /// provisional, escalated, contested or certified.
    pub state: State,
    /// The status to act on.
    pub status: Status,
    /// One line for people.
    pub summary: String,
    /// Organizations needed for a certificate.
    pub quorum: u16,
    /// Organizations of the pinned policy.
    pub organizations: u16,
    /// Organizations that signed the certificate (0: none).
    pub certified_by: usize,
    /// The certificate in force.
    pub certificate: Option<AttestationView>,
    /// Whether this node's own computation still gives the certified
    /// digest; false once late or equivocating messages moved it (the
    /// certified result stands either way).
    pub matches_certificate: bool,
    /// No result of the votes can be certified.
    pub contested: bool,
    /// A human decision can be certified now.
    pub human_round_open: bool,
    /// Every attested result.
    pub attestations: Vec<AttestationView>,
    /// Attestor equivocations.
    pub equivocations: Vec<EquivocationView>,
    /// Certificates that conflict with the one in force.
    pub conflicting: Vec<AttestationView>,
    /// Messages that arrived after certification (evidence only).
    #[schema(value_type = Vec<String>)]
    pub after_certification: Vec<ContentId>,
}

/// A receipt held for a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    /// Receipt id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// The signing node's agent key.
    #[schema(value_type = String)]
    pub node: PublicKey,
    /// 0: the votes; 1: a human decision.
    pub round: u8,
    /// The human decision it attests (round 1).
    #[schema(value_type = Option<String>)]
    pub human_decision: Option<ContentId>,
    /// The status the node computed.
    pub status: Status,
    /// The resolution digest the node computed.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// Root of the counted responses.
    #[schema(value_type = String)]
    pub counted_root: ContentId,
    /// The organization it counts for (null: the signer attests for none).
    pub organization: Option<OrganizationRef>,
}

/// `GET /v1/proposals/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalDetail {
    /// Proposal id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// The status to act on (certified, escalated to a human, or provisional).
    pub status: Status,
    /// The status the votes give now.
    pub computed_status: Status,
    /// The response window is closed.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Decided before the window closed.
    pub early: bool,
    /// Why escalated, pending or invalid.
    pub reasons: Vec<Reason>,
    /// The resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// The live tally.
    #[schema(value_type = Object)]
    pub tally: Tally,
    /// The finality.
    pub finality: FinalityView,
    /// The decision package: proposal, policy, resolution, counted and
    /// excluded responses, human decisions.
    #[schema(value_type = Object)]
    pub package: DecisionPackage,
    /// Every receipt held.
    pub receipts: Vec<ReceiptView>,
}

/// The anchor added (or already there).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorAdded {
    /// The domain.
    pub domain: String,
    /// The genesis policy id.
    #[schema(value_type = String)]
    pub genesis: ContentId,
    /// False when the domain already had exactly this anchor.
    pub new: bool,
}

/// `GET /v1/anchors`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorList {
    /// One per anchored domain.
    pub anchors: Vec<AnchorView>,
}

/// A domain's trust anchor and its lineage's newest policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorView {
    /// The domain.
    pub domain: String,
    /// The genesis policy id.
    #[schema(value_type = String)]
    pub genesis: ContentId,
    /// The lineage's newest policy (null while the genesis has not arrived).
    #[schema(value_type = Option<String>)]
    pub current: Option<ContentId>,
}

/// `GET /v1/trust`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustTable {
    /// The domain.
    pub domain: String,
    /// The newest policy id (null: none held).
    #[schema(value_type = Option<String>)]
    pub policy: Option<ContentId>,
    /// Agents with a trust history.
    pub agents: Vec<TrustEntry>,
}

/// One agent's trust.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustEntry {
    /// The agent key.
    #[schema(value_type = String)]
    pub agent: PublicKey,
    /// Trust in basis points.
    pub trust_bps: u16,
    /// Trust in `[0, 1]`.
    pub trust: f64,
}

/// What `acp audit verify --json` prints about a verified bundle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerified {
    /// Always true: a bundle that does not verify is an error.
    pub ok: bool,
    /// The proposal.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The genesis the bundle verifies under.
    #[schema(value_type = String)]
    pub genesis: ContentId,
    /// The genesis the caller required, if any.
    #[schema(value_type = Option<String>)]
    pub genesis_required: Option<ContentId>,
    /// Messages in the bundle.
    pub messages: usize,
    /// The status to act on.
    pub status: Status,
    /// The status the votes give.
    pub computed_status: Status,
    /// The recomputed resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// The finality.
    pub finality: FinalityView,
    /// The one-line certificate summary.
    pub certificate: String,
    /// The recomputation gives the certified digest.
    pub recomputed_matches_certificate: bool,
    /// Receipts that did not count.
    pub receipts_ignored: usize,
}

// ------------------------------------------------------------ events

/// One server-sent event of `GET /v1/events`: the SSE event name is the
/// tag, the SSE data the payload. `acp watch --json` prints exactly this
/// object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A new proposal.
    Proposal(ProposalSeen),
    /// A new response.
    Response(ResponseSeen),
    /// Another kind of message was added.
    Message(MessageSeen),
    /// The outcome is known.
    Decided(DecidedEvent),
    /// The proposal waits for a human.
    Escalated(EscalatedEvent),
    /// This node finalized the proposal.
    Finalized(FinalizedEvent),
    /// An agent signed two different responses to one proposal.
    Equivocation(EquivocationEvent),
    /// A message changed a finalized resolution.
    Divergence(DivergenceEvent),
    /// Another node's receipt disagrees with this node's resolution.
    ReceiptMismatch(ReceiptMismatchEvent),
    /// The attestors certified a result.
    Certified(CertifiedEvent),
    /// No result of the votes can be certified.
    Contested(ContestedEvent),
    /// An organization's attestor signed two different results.
    AttestorEquivocation(AttestorEquivocationEvent),
    /// Two valid amendments of one lineage policy.
    PolicyFork(PolicyForkEvent),
    /// A message on a proposal already certified.
    AfterCertification(AfterCertificationEvent),
    /// This client fell behind and missed events.
    Lagged(LaggedEvent),
}

impl StreamEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Proposal(_) => "proposal",
            Self::Response(_) => "response",
            Self::Message(_) => "message",
            Self::Decided(_) => "decided",
            Self::Escalated(_) => "escalated",
            Self::Finalized(_) => "finalized",
            Self::Equivocation(_) => "equivocation",
            Self::Divergence(_) => "divergence",
            Self::ReceiptMismatch(_) => "receipt_mismatch",
            Self::Certified(_) => "certified",
            Self::Contested(_) => "contested",
            Self::AttestorEquivocation(_) => "attestor_equivocation",
            Self::PolicyFork(_) => "policy_fork",
            Self::AfterCertification(_) => "after_certification",
            Self::Lagged(_) => "lagged",
        }
    }

    /// The SSE data: the payload alone, as JSON text.
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Proposal(d) => serde_json::to_string(d),
            Self::Response(d) => serde_json::to_string(d),
            Self::Message(d) => serde_json::to_string(d),
            Self::Decided(d) => serde_json::to_string(d),
            Self::Escalated(d) => serde_json::to_string(d),
            Self::Finalized(d) => serde_json::to_string(d),
            Self::Equivocation(d) => serde_json::to_string(d),
            Self::Divergence(d) => serde_json::to_string(d),
            Self::ReceiptMismatch(d) => serde_json::to_string(d),
            Self::Certified(d) => serde_json::to_string(d),
            Self::Contested(d) => serde_json::to_string(d),
            Self::AttestorEquivocation(d) => serde_json::to_string(d),
            Self::PolicyFork(d) => serde_json::to_string(d),
            Self::AfterCertification(d) => serde_json::to_string(d),
            Self::Lagged(d) => serde_json::to_string(d),
        }
    }

    /// Reads an event from its SSE name and data.
    pub fn parse(name: &str, data: &str) -> Result<Self, serde_json::Error> {
        Ok(match name {
            "proposal" => Self::Proposal(serde_json::from_str(data)?),
            "response" => Self::Response(serde_json::from_str(data)?),
            "message" => Self::Message(serde_json::from_str(data)?),
            "decided" => Self::Decided(serde_json::from_str(data)?),
            "escalated" => Self::Escalated(serde_json::from_str(data)?),
            "finalized" => Self::Finalized(serde_json::from_str(data)?),
            "equivocation" => Self::Equivocation(serde_json::from_str(data)?),
            "divergence" => Self::Divergence(serde_json::from_str(data)?),
            "receipt_mismatch" => Self::ReceiptMismatch(serde_json::from_str(data)?),
            "certified" => Self::Certified(serde_json::from_str(data)?),
            "contested" => Self::Contested(serde_json::from_str(data)?),
            "attestor_equivocation" => Self::AttestorEquivocation(serde_json::from_str(data)?),
            "policy_fork" => Self::PolicyFork(serde_json::from_str(data)?),
            "after_certification" => Self::AfterCertification(serde_json::from_str(data)?),
            "lagged" => Self::Lagged(serde_json::from_str(data)?),
            other => {
                return Err(serde::de::Error::custom(format!("unknown event {other:?}")));
            }
        })
    }
}

/// `proposal`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalSeen {
    /// Proposal id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Domain.
    pub domain: String,
    /// Proposer key.
    #[schema(value_type = String)]
    pub proposer: PublicKey,
}

/// `response`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseSeen {
    /// Response id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// Responder key.
    #[schema(value_type = String)]
    pub responder: PublicKey,
    /// Stance.
    pub stance: Stance,
}

/// `message`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageSeen {
    /// Message id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Its kind.
    pub kind: Kind,
    /// Domain.
    pub domain: String,
}

/// `decided`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecidedEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The computed status.
    pub status: Status,
    /// Decided before the window closed.
    pub early: bool,
    /// The resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
}

/// `escalated`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EscalatedEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
}

/// `finalized`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinalizedEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The computed status.
    pub status: Status,
    /// The resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// This node's receipt (null: the node signs none).
    #[schema(value_type = Option<String>)]
    pub receipt: Option<ContentId>,
}

/// `equivocation`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EquivocationEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The equivocating agent.
    #[schema(value_type = String)]
    pub agent: PublicKey,
    /// Its first two responses (the evidence).
    #[schema(value_type = Vec<String>)]
    pub responses: Vec<ContentId>,
}

/// `divergence`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DivergenceEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The previously finalized digest.
    #[schema(value_type = String)]
    pub previous: ContentId,
    /// The previously finalized status.
    pub previous_status: Status,
    /// The digest now.
    #[schema(value_type = String)]
    pub current: ContentId,
    /// The status now.
    pub status: Status,
}

/// `receipt_mismatch`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptMismatchEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The other node's agent key.
    #[schema(value_type = String)]
    pub node: PublicKey,
    /// Its digest.
    #[schema(value_type = String)]
    pub theirs: ContentId,
    /// This node's digest.
    #[schema(value_type = String)]
    pub ours: ContentId,
}

/// `certified`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertifiedEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The status to act on.
    pub status: Status,
    /// One line for people.
    pub summary: String,
    /// The certificate.
    pub certificate: Option<AttestationView>,
}

/// `contested`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContestedEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// One line for people.
    pub summary: String,
    /// Every attested result.
    pub attestations: Vec<AttestationView>,
}

/// `attestor_equivocation`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttestorEquivocationEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The organization's index in the pinned policy.
    pub organization: u16,
    /// Its conflicting receipts.
    #[schema(value_type = Vec<String>)]
    pub receipts: Vec<ContentId>,
}

/// `policy_fork`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyForkEvent {
    /// Domain.
    pub domain: String,
    /// The amended policy.
    #[schema(value_type = String)]
    pub parent: ContentId,
    /// Its valid amendments.
    #[schema(value_type = Vec<String>)]
    pub successors: Vec<ContentId>,
}

/// `after_certification`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AfterCertificationEvent {
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The late message.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// Its kind.
    pub kind: Kind,
}

/// `lagged`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LaggedEvent {
    /// Events this client missed.
    pub missed: u64,
}

// ------------------------------------------------------------ control channel

/// The control channel's answer to `submit`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ControlSubmitted {
    /// Always true in an answer.
    pub ok: bool,
    /// The message's content id.
    #[schema(value_type = String)]
    pub id: ContentId,
    /// False when the node already held it.
    pub new: bool,
}

/// The control channel's answer to `dial`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ControlOk {
    /// Always true in an answer.
    pub ok: bool,
}

/// The control channel's refusal: `{"ok": false, "error": "<one line>"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ControlRefusal {
    /// Always false.
    pub ok: bool,
    /// One line.
    pub error: String,
}

impl ControlRefusal {
    /// A refusal with `error` on one line.
    pub fn new(error: impl std::fmt::Display) -> Self {
        Self {
            ok: false,
            error: error.to_string().replace('\n', " "),
        }
    }
}

/// The control channel's answer to `ids`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdList {
    /// Always true in an answer.
    pub ok: bool,
    /// Sorted ids.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<ContentId>,
}

/// The control channel's answer to `has`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Held {
    /// Always true in an answer.
    pub ok: bool,
    /// The engine holds the message.
    pub engine: bool,
    /// The store holds the message.
    pub store: bool,
}

/// The control channel's answer to `resolution`: the status to act on, the
/// computed result, its finality and every receipt held.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResolutionAnswer {
    /// Always true in an answer.
    pub ok: bool,
    /// Proposal id.
    #[schema(value_type = String)]
    pub proposal: ContentId,
    /// The status to act on.
    pub status: Status,
    /// The status the votes give now.
    pub computed_status: Status,
    /// The response window is closed.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The resolution digest.
    #[schema(value_type = String)]
    pub resolution: ContentId,
    /// Root of the counted responses.
    #[schema(value_type = String)]
    pub counted_root: ContentId,
    /// Counted votes.
    pub counted: usize,
    /// Responses held.
    pub responses: usize,
    /// The finality.
    pub finality: FinalityView,
    /// Every receipt held.
    pub receipts: Vec<ReceiptView>,
}

/// Any answer of a [`crate::service::Query`], as the control channel
/// writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum QueryAnswer {
    /// `status`.
    Status(Box<NodeStatus>),
    /// `ids`.
    Ids(IdList),
    /// `has`.
    Has(Held),
    /// `resolution`.
    Resolution(Box<ResolutionAnswer>),
    /// Any refusal.
    Refused(ControlRefusal),
}

/// One request line of the control channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Submit a signed message.
    Submit {
        /// Its canonical bytes in hex.
        hex: String,
    },
    /// Dial a peer.
    Dial {
        /// A multiaddr ending in `/p2p/<peer id>`.
        addr: String,
    },
    /// The node's status ([`NodeStatus`]).
    Status,
    /// Sorted ids held in a domain, all domains when absent ([`IdList`]).
    Ids {
        /// Domain.
        domain: Option<String>,
    },
    /// Whether a message is held ([`Held`]).
    Has {
        /// Content id.
        id: String,
    },
    /// A proposal's resolution ([`ResolutionAnswer`]).
    Resolution {
        /// Proposal id.
        proposal: String,
    },
}

/// The body of `POST /v1/messages`: the canonical bytes of a signed message.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct MessageBytes(pub Vec<u8>);
