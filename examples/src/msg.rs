//! Signing the scenarios' messages: proposals with stakes and evidence, and
//! responses with evidence (the `acp_protocol::build` helpers cover the rest).

use acp_protocol::{
    Action, Body, Bps, ContentId, Keypair, Outcome, OutcomeReport, Proposal, Response,
    SignedMessage, Stance, Timestamp,
};

/// What a proposer asks for.
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
    /// Milliseconds until the proposal closes.
    pub window_ms: u64,
}

/// Signs a proposal.
pub fn proposal(proposer: &Keypair, ask: Ask<'_>) -> anyhow::Result<SignedMessage> {
    Ok(Body::Proposal(Proposal {
        proposer: proposer.public(),
        domain: ask.domain.to_owned(),
        policy: ask.policy,
        action: Action {
            kind: ask.kind.to_owned(),
            payload: ask.payload,
        },
        confidence_bps: ask.confidence_bps,
        stakes: ask.stakes,
        evidence: ask.evidence,
        created_at: ask.created_at,
        closes_at: ask.created_at.plus_ms(ask.window_ms),
        supersedes: None,
    })
    .sign(&[proposer])?)
}

/// Signs a response with evidence references.
pub fn response(
    responder: &Keypair,
    proposal: &SignedMessage,
    stance: Stance,
    confidence_bps: Bps,
    reasoning: &str,
    evidence: &[&str],
    issued_at: Timestamp,
) -> anyhow::Result<SignedMessage> {
    Ok(Body::Response(Response {
        responder: responder.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        stance,
        confidence_bps,
        reasoning: reasoning.to_owned(),
        evidence: evidence.iter().map(|e| (*e).to_owned()).collect(),
        issued_at,
    })
    .sign(&[responder])?)
}

/// A fresh key from the operating system's random source.
pub fn fresh_key() -> anyhow::Result<Keypair> {
    Ok(Keypair::from_seed(acp_node::keys::random_seed()?))
}

/// Signs an outcome report with a note.
pub fn outcome(
    reporter: &Keypair,
    proposal: &SignedMessage,
    outcome: Outcome,
    note: &str,
    reported_at: Timestamp,
) -> anyhow::Result<SignedMessage> {
    Ok(Body::OutcomeReport(OutcomeReport {
        reporter: reporter.public(),
        domain: proposal.body().domain().to_owned(),
        proposal: proposal.id,
        outcome,
        note: note.to_owned(),
        reported_at,
    })
    .sign(&[reporter])?)
}
