//! `resolve`: the pure function from (message set, proposal id, logical time)
//! to a [`Resolution`]. Everything it reads is a message in the set; the only
//! arithmetic is on integers, thresholds compared by cross-multiplication.
//!
//! Units: authority, confidence and trust are basis points, so a vote's
//! weight `authority * confidence * trust` is at most `10^12` and every tally
//! of at most [`crate::limits::MAX_MEMBERS`] members fits in a `u64`.
//! Inequalities multiply by up to `2 * 10^4` and are evaluated in `u128`.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::AgentId;
use crate::finality::{Finality, finality};
use crate::id::ContentId;
use crate::lineage::{InForce, in_force};
use crate::message::{
    BPS_ONE, Body, Bps, DomainPolicy, Proposal, Stance, Status, Timestamp, Verdict,
};
use crate::set::MessageSet;
use crate::trust::{TrustTable, trust_table};

/// Why a response is not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// The responder is not a member of the pinned policy.
    NotMember,
    /// The proposer does not vote on its own proposal.
    Proposer,
    /// Signed after `closes_at`.
    Late,
    /// Signed before the proposal's `created_at`.
    BeforeProposal,
    /// The response names another domain than the proposal.
    WrongDomain,
    /// The responder signed two different responses to this proposal.
    Equivocation,
}

/// Why a resolution is escalated, pending or invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Reason {
    /// Neither side beat the other by the quorum margin (including a tie).
    NoMargin,
    /// Too little of the potential weight responded.
    LowParticipation,
    /// The weighted mean confidence of decisive votes is below the floor.
    LowConfidence,
    /// The stakes require a human.
    HighStakes,
    /// Some eligible member equivocated (their votes were excluded).
    Equivocation,
    /// The pinned policy is not in the set (yet).
    PolicyMissing,
    /// The pinned policy governs another domain.
    PolicyDomainMismatch,
    /// `closes_at - created_at` is outside the policy's window bounds.
    WindowOutOfBounds,
    /// The pinned policy is not the domain's lineage policy in force at the
    /// proposal's `created_at`.
    PolicyNotInForce,
    /// The node has no trust anchor (genesis policy) for the domain.
    NoTrustAnchor,
    /// No result of the votes can be certified: a human decides.
    Contested,
}

/// A counted response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountedResponse {
    /// The response's id.
    pub response: ContentId,
    /// Who responded.
    pub responder: AgentId,
    /// Stance.
    pub stance: Stance,
    /// Confidence.
    pub confidence_bps: Bps,
}

/// A response that was not counted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedResponse {
    /// The response's id.
    pub response: ContentId,
    /// Who responded.
    pub responder: AgentId,
    /// Why it does not count.
    pub reason: Exclusion,
}

/// A proposal together with the policy it pins.
#[derive(Clone, Copy, Debug)]
pub struct Counting<'a> {
    /// Proposal id.
    pub id: ContentId,
    /// The proposal.
    pub proposal: &'a Proposal,
    /// The pinned policy.
    pub policy: &'a DomainPolicy,
}

impl<'a> Counting<'a> {
    /// The proposal and its policy, when both are in the set and agree on the domain.
    pub fn of(set: &'a MessageSet, id: &ContentId) -> Option<Self> {
        let proposal = set.proposal(id)?;
        let policy = set.policy(&proposal.policy)?;
        (policy.domain == proposal.domain).then_some(Self {
            id: *id,
            proposal,
            policy,
        })
    }
}

/// Responses to a proposal split into counted and excluded.
#[derive(Clone, Debug, Default)]
pub struct Classified {
    /// Counted responses, ordered by responder.
    pub counted: Vec<CountedResponse>,
    /// Excluded responses, ordered by responder then id.
    pub excluded: Vec<ExcludedResponse>,
    /// Members who equivocated, ordered.
    pub equivocators: Vec<AgentId>,
}

/// Apply the counting rules to every response of a proposal.
///
/// Responses are indexed by responder and the policy's members are sorted
/// by agent, so one merge walk finds every responder's membership.
pub fn classify(set: &MessageSet, c: &Counting<'_>) -> Classified {
    let mut out = Classified::default();
    let Some(refs) = set.refs(&c.id) else {
        return out;
    };
    let mut members = c.policy.members.iter().peekable();
    let mut is_member = |agent: &AgentId| {
        while members.next_if(|m| m.agent < *agent).is_some() {}
        members.peek().is_some_and(|m| m.agent == *agent)
    };
    let mut responses = refs.responses().peekable();
    while let Some((responder, id, entry)) = responses.next() {
        let member = is_member(responder);
        if refs.equivocators().contains(responder) {
            if member && *responder != c.proposal.proposer {
                out.equivocators.push(*responder);
            }
            let mut ids = vec![*id];
            while let Some((_, next, _)) = responses.next_if(|(a, _, _)| *a == responder) {
                ids.push(*next);
            }
            out.excluded
                .extend(ids.into_iter().map(|response| ExcludedResponse {
                    response,
                    responder: *responder,
                    reason: Exclusion::Equivocation,
                }));
            continue;
        }
        let reason = if *entry.domain != *c.proposal.domain {
            Some(Exclusion::WrongDomain)
        } else if *responder == c.proposal.proposer {
            Some(Exclusion::Proposer)
        } else if !member {
            Some(Exclusion::NotMember)
        } else if entry.issued_at > c.proposal.closes_at {
            Some(Exclusion::Late)
        } else if entry.issued_at < c.proposal.created_at {
            Some(Exclusion::BeforeProposal)
        } else {
            None
        };
        match reason {
            Some(reason) => out.excluded.push(ExcludedResponse {
                response: *id,
                responder: *responder,
                reason,
            }),
            None => out.counted.push(CountedResponse {
                response: *id,
                responder: *responder,
                stance: entry.stance,
                confidence_bps: entry.confidence_bps,
            }),
        }
    }
    out
}

/// One counted vote with its weight breakdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The response's id.
    pub response: ContentId,
    /// Who voted.
    pub responder: AgentId,
    /// The voter's organization (index into the policy's list).
    pub organization: u16,
    /// Stance.
    pub stance: Stance,
    /// Confidence.
    pub confidence_bps: Bps,
    /// Domain authority from the policy.
    pub authority_bps: Bps,
    /// Trust from outcome reports.
    pub trust_bps: Bps,
    /// `authority * confidence * trust`.
    pub weight: u64,
}

/// Per-organization sums, before and after its cap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgTally {
    /// Index into the policy's organizations.
    pub organization: u16,
    /// Endorsement weight before the cap.
    pub endorse: u64,
    /// Challenge weight before the cap.
    pub challenge: u64,
    /// `weight_cap_bps * total_potential / 10000`.
    pub cap: u64,
    /// Potential weight of members who have not responded.
    pub remaining: u64,
}

/// The sums a resolution is decided by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// `E`: endorsement weight after organization caps.
    pub endorse: u64,
    /// `C`: challenge weight after organization caps.
    pub challenge: u64,
    /// Abstention weight (counts for participation only).
    pub abstain: u64,
    /// Sum over eligible members of `authority * 10000 * trust`.
    pub total_potential: u64,
    /// Potential weight of members with a counted response.
    pub responded_potential: u64,
    /// Potential weight of eligible members yet to respond.
    pub remaining_potential: u64,
    /// `sum authority * trust` over decisive votes (confidence denominator).
    pub decisive_authority_trust: u64,
    /// Per-organization sums.
    pub organizations: Vec<OrgTally>,
}

/// Counted votes per tenth of the confidence range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// Lower bound (inclusive) in basis points; the last bin includes 10000.
    pub from_bps: Bps,
    /// Endorsements in the bin.
    pub endorse: u32,
    /// Challenges in the bin.
    pub challenge: u32,
    /// Abstentions in the bin.
    pub abstain: u32,
}

/// The result of resolving a proposal. Its canonical encoding is identical
/// on every node that holds the same set (for a final resolution, whatever
/// the time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The proposal.
    pub proposal: ContentId,
    /// Its pinned policy.
    pub policy: ContentId,
    /// The status.
    pub status: Status,
    /// True at or after `closes_at`, or when decided early.
    pub is_final: bool,
    /// Decided before `closes_at` because no remaining vote could change it.
    pub early: bool,
    /// Why escalated, pending or invalid (sorted, unique).
    pub reasons: Vec<Reason>,
    /// The human decision that settled it, if any.
    pub human_decision: Option<ContentId>,
    /// The sums.
    pub tally: Tally,
    /// Counted votes, ordered by responder.
    pub votes: Vec<Vote>,
    /// Members excluded for equivocating, ordered.
    pub equivocators: Vec<AgentId>,
    /// Confidence distribution of counted votes.
    pub confidence_histogram: Vec<HistogramBin>,
    /// SHA-256 over the digests of the proposal, the policy, the counted
    /// responses (by responder) and the counted human decision, in that order.
    pub counted_root: ContentId,
    /// Where the proposal stands on the way to finality, from the receipts
    /// in the set. Not part of [`Resolution::to_bytes`]: receipts sign the
    /// digest, so it cannot cover them.
    pub finality: Finality,
}

/// The part of a [`Resolution`] its digest covers: everything computed from
/// the votes and the human decision, nothing derived from receipts.
#[derive(Serialize)]
struct Computed<'a> {
    proposal: &'a ContentId,
    policy: &'a ContentId,
    status: &'a Status,
    is_final: &'a bool,
    early: &'a bool,
    reasons: &'a [Reason],
    human_decision: &'a Option<ContentId>,
    tally: &'a Tally,
    votes: &'a [Vote],
    equivocators: &'a [AgentId],
    confidence_histogram: &'a [HistogramBin],
    counted_root: &'a ContentId,
}

impl Resolution {
    /// Canonical bytes of the computed result (fields 1 to 12).
    pub fn to_bytes(&self) -> Vec<u8> {
        let computed = Computed {
            proposal: &self.proposal,
            policy: &self.policy,
            status: &self.status,
            is_final: &self.is_final,
            early: &self.early,
            reasons: &self.reasons,
            human_decision: &self.human_decision,
            tally: &self.tally,
            votes: &self.votes,
            equivocators: &self.equivocators,
            confidence_histogram: &self.confidence_histogram,
            counted_root: &self.counted_root,
        };
        // Encoding a resolution cannot fail: it is bounded by the set it came from.
        codec::encode(&computed).unwrap_or_default()
    }

    /// The status to act on: certified, escalated to a human, or (while
    /// provisional) the computed one.
    pub fn final_status(&self) -> Status {
        self.finality.status
    }

    /// Id of the canonical bytes (the receipt's `resolution` field).
    pub fn digest(&self) -> ContentId {
        ContentId::of(&self.to_bytes())
    }

    /// Approved or rejected (by votes or by a human).
    pub fn is_decided(&self) -> bool {
        matches!(self.status, Status::Approved | Status::Rejected)
    }
}

/// Errors of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The id is not a proposal in the set.
    #[error("proposal {0} is not in the set")]
    UnknownProposal(ContentId),
}

/// Resolve a proposal at logical time `now`.
pub fn resolve(
    set: &MessageSet,
    id: &ContentId,
    now: Timestamp,
) -> Result<Resolution, ResolveError> {
    let p = set.proposal(id).ok_or(ResolveError::UnknownProposal(*id))?;
    let reporters = set.policy(&p.policy).map_or(&[][..], |pol| &pol.reporters);
    let trust = trust_table(set, &p.domain, p.created_at, reporters);
    resolve_with_trust(set, id, now, &trust)
}

/// [`resolve`] with a trust table the caller computed (and may cache) with
/// [`trust_table`] for the proposal's domain, `created_at` and pinned
/// policy's reporters.
pub fn resolve_with_trust(
    set: &MessageSet,
    id: &ContentId,
    now: Timestamp,
    trust: &TrustTable,
) -> Result<Resolution, ResolveError> {
    let p = set.proposal(id).ok_or(ResolveError::UnknownProposal(*id))?;
    let mut r = compute(set, id, p, now, trust, None);
    let f = finality(set, id, p, r.status);
    if f.human_round_open
        && r.is_final
        && !r.early
        && let Some(policy) = set.policy(&p.policy)
    {
        let counting = Counting {
            id: *id,
            proposal: p,
            policy,
        };
        if let Some((hid, verdict)) = human_decision(set, &counting) {
            r = compute(set, id, p, now, trust, Some((hid, verdict, f.contested)));
        }
    }
    // While provisional, the status to act on is the computed one, which a
    // human decision may just have settled.
    r.finality = if f.state == crate::finality::State::Provisional {
        Finality {
            status: r.status,
            ..f
        }
    } else {
        f
    };
    Ok(r)
}

/// The computed result: the votes (round 0), or with `human` the result a
/// human decision settles (round 1), which keeps round 0's reasons.
fn compute(
    set: &MessageSet,
    id: &ContentId,
    p: &Proposal,
    now: Timestamp,
    trust: &TrustTable,
    human: Option<(ContentId, Verdict, bool)>,
) -> Resolution {
    let closed = now >= p.closes_at;
    let mut r = Resolution {
        proposal: *id,
        policy: p.policy,
        status: Status::Pending,
        is_final: false,
        early: false,
        reasons: Vec::new(),
        human_decision: None,
        tally: Tally::default(),
        votes: Vec::new(),
        equivocators: Vec::new(),
        confidence_histogram: Vec::new(),
        counted_root: ContentId::of(b""),
        finality: Finality::none(Status::Pending),
    };
    if set.anchor(&p.domain).is_none() {
        r.reasons.push(Reason::NoTrustAnchor);
        return r;
    }
    let Some(policy) = set.policy(&p.policy) else {
        r.reasons.push(Reason::PolicyMissing);
        return r;
    };
    let invalid = if policy.domain != p.domain {
        Some(Reason::PolicyDomainMismatch)
    } else {
        match in_force(set, &p.domain, p.created_at) {
            InForce::Policy(pid) if pid == p.policy => {
                let window = p.closes_at.0 - p.created_at.0;
                (window < policy.rules.min_window_ms || window > policy.rules.max_window_ms)
                    .then_some(Reason::WindowOutOfBounds)
            }
            InForce::GenesisMissing(_) => {
                r.reasons.push(Reason::PolicyMissing);
                return r;
            }
            _ => Some(Reason::PolicyNotInForce),
        }
    };
    if let Some(reason) = invalid {
        r.status = Status::Invalid;
        r.is_final = true;
        r.reasons.push(reason);
        r.counted_root = root(&[*id, p.policy]);
        return r;
    }
    let counting = Counting {
        id: *id,
        proposal: p,
        policy,
    };
    let classified = classify(set, &counting);
    tally(&counting, &classified, trust, &mut r);
    r.equivocators = classified.equivocators;
    r.confidence_histogram = histogram(&r.votes);

    let mut counted_ids: Vec<ContentId> = vec![*id, p.policy];
    counted_ids.extend(r.votes.iter().map(|v| v.response));

    if closed {
        r.is_final = true;
        decide_final(p, policy, &mut r);
        if let Some((hid, verdict, contested)) = human {
            r.human_decision = Some(hid);
            r.status = match verdict {
                Verdict::Approve => Status::Approved,
                Verdict::Reject => Status::Rejected,
            };
            if contested {
                r.reasons.push(Reason::Contested);
                r.reasons.sort();
            }
            counted_ids.push(hid);
        }
    } else if let Some(status) = decide_early(p, policy, &r.tally) {
        r.status = status;
        r.is_final = true;
        r.early = true;
    }
    r.counted_root = root(&counted_ids);
    r
}

/// SHA-256 over the digests of the counted messages in resolution order:
/// proposal, policy, counted responses by responder, the human decision.
fn root(ids: &[ContentId]) -> ContentId {
    let parts: Vec<&[u8]> = ids.iter().map(|i| i.digest().as_slice()).collect();
    ContentId::of_parts(&parts)
}

fn potential(authority: Bps, trust: Bps) -> u64 {
    u64::from(authority) * u64::from(BPS_ONE) * u64::from(trust)
}

fn tally(c: &Counting<'_>, cl: &Classified, trust: &TrustTable, r: &mut Resolution) {
    let policy = c.policy;
    let mut orgs: Vec<OrgTally> = (0..policy.organizations.len())
        .map(|i| OrgTally {
            organization: i as u16,
            ..OrgTally::default()
        })
        .collect();
    let t = &mut r.tally;
    // Members and counted votes are both sorted by agent: one merge walk.
    // Everyone who may still respond: members, minus the proposer, minus
    // those already counted or excluded for equivocating.
    let mut counted = cl.counted.iter().peekable();
    let mut equivocators = cl.equivocators.iter().peekable();
    r.votes.reserve(cl.counted.len());
    for m in &policy.members {
        if m.agent == c.proposal.proposer {
            continue;
        }
        let tr = trust.trust(&m.agent);
        let pot = potential(m.authority_bps, tr);
        t.total_potential += pot;
        let o = &mut orgs[usize::from(m.organization)];
        let equivocated = equivocators.next_if(|e| **e == m.agent).is_some();
        let Some(v) = counted.next_if(|v| v.responder == m.agent) else {
            if !equivocated {
                o.remaining += pot;
                t.remaining_potential += pot;
            }
            continue;
        };
        let weight = u64::from(m.authority_bps) * u64::from(v.confidence_bps) * u64::from(tr);
        t.responded_potential += pot;
        match v.stance {
            Stance::Endorse => o.endorse += weight,
            Stance::Challenge => o.challenge += weight,
            Stance::Abstain => t.abstain += weight,
        }
        if v.stance != Stance::Abstain {
            t.decisive_authority_trust += u64::from(m.authority_bps) * u64::from(tr);
        }
        r.votes.push(Vote {
            response: v.response,
            responder: v.responder,
            organization: m.organization,
            stance: v.stance,
            confidence_bps: v.confidence_bps,
            authority_bps: m.authority_bps,
            trust_bps: tr,
            weight,
        });
    }
    for (o, org) in orgs.iter_mut().zip(&policy.organizations) {
        o.cap = cap(org.weight_cap_bps, t.total_potential);
        t.endorse += o.endorse.min(o.cap);
        t.challenge += o.challenge.min(o.cap);
    }
    t.organizations = orgs;
}

fn cap(cap_bps: Bps, total: u64) -> u64 {
    (u128::from(cap_bps) * u128::from(total) / u128::from(BPS_ONE)) as u64
}

/// `10000 E > 10000 C + m (E + C)`: `E` beats `C` by the margin.
fn beats(e: u64, c: u64, margin: Bps) -> bool {
    let (e, c, m, one) = (
        u128::from(e),
        u128::from(c),
        u128::from(margin),
        u128::from(BPS_ONE),
    );
    one * e > one * c + m * (e + c)
}

fn participation_ok(policy: &DomainPolicy, t: &Tally) -> bool {
    u128::from(t.responded_potential) * u128::from(BPS_ONE)
        >= u128::from(policy.rules.min_participation_bps) * u128::from(t.total_potential)
}

/// `sum(a t c) >= floor * (sum(a t) + extra)` over decisive votes.
fn confidence_ok(policy: &DomainPolicy, t: &Tally, extra_authority_trust: u64) -> bool {
    let raw: u64 = t
        .organizations
        .iter()
        .map(|o| o.endorse + o.challenge)
        .sum();
    u128::from(raw)
        >= u128::from(policy.rules.low_confidence_bps)
            * (u128::from(t.decisive_authority_trust) + u128::from(extra_authority_trust))
}

fn high_stakes(p: &Proposal, policy: &DomainPolicy) -> bool {
    policy.rules.high_stakes.is_some_and(|h| p.stakes >= h)
}

fn decide_final(p: &Proposal, policy: &DomainPolicy, r: &mut Resolution) {
    let t = &r.tally;
    let margin = policy.rules.quorum_margin_bps;
    let mut reasons = Vec::new();
    if !participation_ok(policy, t) {
        reasons.push(Reason::LowParticipation);
    }
    let decisive = t.decisive_authority_trust > 0;
    if decisive && !confidence_ok(policy, t, 0) {
        reasons.push(Reason::LowConfidence);
    }
    if high_stakes(p, policy) {
        reasons.push(Reason::HighStakes);
    }
    let by_votes = if beats(t.endorse, t.challenge, margin) {
        Some(Status::Approved)
    } else if beats(t.challenge, t.endorse, margin) {
        Some(Status::Rejected)
    } else {
        reasons.push(Reason::NoMargin);
        None
    };
    r.status = match (by_votes, reasons.is_empty()) {
        (Some(s), true) => s,
        _ => {
            if !r.equivocators.is_empty() {
                reasons.push(Reason::Equivocation);
            }
            reasons.sort();
            r.reasons = reasons;
            Status::Escalated
        }
    };
}

/// Decided before `closes_at` when no completion of the remaining votes can
/// change the outcome: participation is already met, the confidence floor
/// holds even if everyone left votes decisively at zero confidence, and the
/// outcome holds even if everyone left votes the other way at full
/// confidence (both within organization caps). High-stakes proposals always
/// wait for `closes_at`.
fn decide_early(p: &Proposal, policy: &DomainPolicy, t: &Tally) -> Option<Status> {
    if high_stakes(p, policy) || !participation_ok(policy, t) {
        return None;
    }
    let remaining_at: u64 = t.remaining_potential / u64::from(BPS_ONE);
    if !confidence_ok(policy, t, remaining_at) {
        return None;
    }
    let worst = |pick: fn(&OrgTally) -> u64| -> u64 {
        t.organizations
            .iter()
            .map(|o| (pick(o) + o.remaining).min(o.cap))
            .sum()
    };
    let margin = policy.rules.quorum_margin_bps;
    if beats(t.endorse, worst(|o| o.challenge), margin) {
        Some(Status::Approved)
    } else if beats(t.challenge, worst(|o| o.endorse), margin) {
        Some(Status::Rejected)
    } else {
        None
    }
}

fn human_decision(set: &MessageSet, c: &Counting<'_>) -> Option<(ContentId, Verdict)> {
    let refs = set.refs(&c.id)?;
    refs.decisions
        .iter()
        .filter_map(|id| match set.get(id).map(|m| m.body()) {
            Some(Body::HumanDecision(d))
                if d.decided_at >= c.proposal.closes_at
                    && d.domain == c.proposal.domain
                    && c.policy.humans.binary_search(&d.human).is_ok() =>
            {
                Some((d.decided_at, *id, d.verdict))
            }
            _ => None,
        })
        .min_by_key(|(at, id, _)| (*at, *id))
        .map(|(_, id, v)| (id, v))
}

fn histogram(votes: &[Vote]) -> Vec<HistogramBin> {
    let mut bins: Vec<HistogramBin> = (0..10)
        .map(|i| HistogramBin {
            from_bps: i * 1000,
            ..HistogramBin::default()
        })
        .collect();
    for v in votes {
        let b = &mut bins[usize::from(v.confidence_bps / 1000).min(9)];
        match v.stance {
            Stance::Endorse => b.endorse += 1,
            Stance::Challenge => b.challenge += 1,
            Stance::Abstain => b.abstain += 1,
        }
    }
    bins
}

/// Everything a human needs to decide an escalation, or an auditor to read a
/// decision: the proposal and policy, the resolution, every response with
/// its reasoning (counted or not, and why not), and the human decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionPackage {
    /// The proposal's id.
    pub proposal_id: ContentId,
    /// The proposal.
    pub proposal: Proposal,
    /// The pinned policy, when known.
    pub policy: Option<DomainPolicy>,
    /// The resolution at the time the package was made.
    pub resolution: Resolution,
    /// Counted responses with their weight breakdown, ordered by responder.
    pub counted: Vec<PackagedResponse>,
    /// Responses that do not count, and why.
    pub excluded: Vec<PackagedExclusion>,
    /// Every human decision on the proposal, counted or not.
    pub human_decisions: Vec<(ContentId, crate::message::HumanDecision)>,
    /// Responses and human decisions that reached the node after it saw the
    /// proposal certified: evidence that cannot change the result (filled
    /// by the engine, which knows arrival order; empty from the pure function).
    pub after_certification: Vec<ContentId>,
}

/// A counted response with its vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagedResponse {
    /// Weight breakdown.
    pub vote: Vote,
    /// The response as signed.
    pub response: crate::message::Response,
}

/// A response that does not count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagedExclusion {
    /// Why.
    pub reason: Exclusion,
    /// The response's id.
    pub id: ContentId,
    /// The response as signed.
    pub response: crate::message::Response,
}

/// Build the decision package of a proposal from a set and its resolution.
pub fn decision_package(set: &MessageSet, resolution: Resolution) -> Option<DecisionPackage> {
    let proposal = set.proposal(&resolution.proposal)?.clone();
    let policy = set.policy(&proposal.policy).cloned();
    let response = |id: &ContentId| match set.get(id).map(|m| m.body()) {
        Some(Body::Response(r)) => Some(r.clone()),
        _ => None,
    };
    let counted = resolution
        .votes
        .iter()
        .filter_map(|v| {
            Some(PackagedResponse {
                vote: v.clone(),
                response: response(&v.response)?,
            })
        })
        .collect();
    let excluded = Counting::of(set, &resolution.proposal)
        .map(|c| classify(set, &c).excluded)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            Some(PackagedExclusion {
                reason: e.reason,
                id: e.response,
                response: response(&e.response)?,
            })
        })
        .collect();
    let human_decisions = set
        .refs(&resolution.proposal)
        .map(|r| {
            r.decisions
                .iter()
                .filter_map(|id| match set.get(id).map(|m| m.body()) {
                    Some(Body::HumanDecision(d)) => Some((*id, d.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(DecisionPackage {
        proposal_id: resolution.proposal,
        proposal,
        policy,
        resolution,
        counted,
        excluded,
        human_decisions,
        after_certification: Vec::new(),
    })
}
