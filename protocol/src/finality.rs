//! Certified finality: when a proposal's result can no longer change.
//!
//! Every organization of a policy names one **attestor** key. When a node
//! holding an attestor key finalizes a proposal it signs one receipt — an
//! acknowledgment of `(status, resolution digest, counted root)` — and never
//! signs another for that proposal and round. A **certificate** is a result
//! signed by the attestors of at least the policy's `finality_quorum` of
//! organizations. Once the set holds one, the proposal's status and digest
//! are the certified ones whatever else the set holds or later receives.
//!
//! Everything here counts *what a key signed*: an attestor that signs two
//! results counts for both and is listed as an equivocator with both
//! receipts as evidence. Counting this way makes every state below monotone
//! in the set — adding messages can never remove a certificate — where
//! dropping an equivocator's receipts would let it un-certify its own past
//! result. Because the quorum is a strict majority, two certificates for
//! different results of one round need at least `2q - n` equivocating
//! organizations; honest attestors never sign two.
//!
//! Rounds: round 0 is the result of the votes. Round 1 opens when round 0
//! certifies an escalation or is **contested** (for every result, at least
//! `q` organizations signed a different one, so no result can be certified
//! without `2q - n` equivocations); it certifies the result a listed human's
//! decision settles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::ContentId;
use crate::lineage::{Membership, membership};
use crate::message::{Body, Proposal, Status};
use crate::set::MessageSet;

/// A result an attestor can sign: the round (the settling human decision,
/// `None` for the votes), the status, the resolution digest and the counted
/// root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attested {
    /// `None` for round 0 (the votes); the human decision for round 1.
    pub human_decision: Option<ContentId>,
    /// The status signed.
    pub status: Status,
    /// The resolution digest signed.
    pub resolution: ContentId,
    /// The counted root signed.
    pub counted_root: ContentId,
}

impl Attested {
    /// Round 1 (settled by a human) or round 0 (the votes).
    pub fn is_human(&self) -> bool {
        self.human_decision.is_some()
    }
}

/// One result and the organizations whose attestors signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The result.
    pub result: Attested,
    /// Organizations (indexes into the policy) that signed it, ascending.
    pub organizations: Vec<u16>,
    /// Their receipts, one per organization, in the same order.
    pub receipts: Vec<ContentId>,
}

/// An attestor that signed two different results in one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestorEquivocation {
    /// The organization.
    pub organization: u16,
    /// Round 1 (human) or round 0.
    pub human_round: bool,
    /// Its receipts for different results (the evidence), ascending.
    pub receipts: Vec<ContentId>,
}

/// Where a proposal stands on the way to finality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum State {
    /// No certificate: the status is what the votes give now, and may change.
    Provisional,
    /// Round 0 certified an escalation: waiting for a human's decision to be
    /// certified.
    Escalated,
    /// No round-0 result can be certified: escalated, a human decides.
    Contested,
    /// A certificate fixes the status and digest for good.
    Certified,
}

/// A proposal's finality, derived from the receipts in the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finality {
    /// The state.
    pub state: State,
    /// The status to act on: the certified status, `Escalated` while a human
    /// must decide, else the computed status.
    pub status: Status,
    /// Organizations whose attestors must sign one result.
    pub quorum: u16,
    /// Organizations of the pinned policy.
    pub organizations: u16,
    /// The certificate in force (for `Escalated`, round 0's escalation).
    pub certificate: Option<Attestation>,
    /// Every result signed by attestors, by result.
    pub attestations: Vec<Attestation>,
    /// Attestors that signed two different results in one round.
    pub equivocations: Vec<AttestorEquivocation>,
    /// Certificates for other results than the one in force, in the same
    /// round: proof that at least `2q - n` organizations equivocated.
    pub conflicting: Vec<Attestation>,
    /// No round-0 result can be certified without `2q - n` equivocations.
    pub contested: bool,
    /// Human decisions may settle the proposal (round 1 is open).
    pub human_round_open: bool,
}

impl Finality {
    /// No receipts counted (policy missing or outside the lineage).
    pub fn none(status: Status) -> Self {
        Self {
            state: State::Provisional,
            status,
            quorum: 0,
            organizations: 0,
            certificate: None,
            attestations: Vec::new(),
            equivocations: Vec::new(),
            conflicting: Vec::new(),
            contested: false,
            human_round_open: false,
        }
    }

    /// Certified: the status and digest will never change.
    pub fn is_certified(&self) -> bool {
        self.state == State::Certified
    }
}

/// The attestations on proposal `id` by the attestors of its pinned policy,
/// with the state they put it in; `computed` is the status the votes give
/// now (shown while provisional).
///
/// Receipts count only when the pinned policy belongs to the domain's
/// lineage tree, so attestors named by a policy nobody authorized certify
/// nothing.
pub fn finality(set: &MessageSet, id: &ContentId, p: &Proposal, computed: Status) -> Finality {
    let Some(policy) = set.policy(&p.policy) else {
        return Finality::none(computed);
    };
    if policy.domain != p.domain || membership(set, &p.policy) != Membership::In {
        return Finality::none(computed);
    }
    let q = policy.finality_quorum;
    let mut f = Finality::none(computed);
    f.quorum = q;
    f.organizations = policy.organizations.len() as u16;

    // result -> organization -> its receipt (the smallest id if it signed copies).
    let mut by_result: BTreeMap<Attested, BTreeMap<u16, ContentId>> = BTreeMap::new();
    for rid in set.refs(id).into_iter().flat_map(|r| r.receipts.iter()) {
        let Some(Body::Receipt(r)) = set.get(rid).map(|m| m.body()) else {
            continue;
        };
        let Some(org) = policy.attestor_of(&r.node) else {
            continue;
        };
        let binding = match r.human_decision {
            None => r.status != Status::Pending,
            Some(_) => matches!(r.status, Status::Approved | Status::Rejected),
        };
        if r.domain != p.domain || !binding {
            continue;
        }
        let result = Attested {
            human_decision: r.human_decision,
            status: r.status,
            resolution: r.resolution,
            counted_root: r.counted_root,
        };
        by_result
            .entry(result)
            .or_default()
            .entry(org)
            .and_modify(|cur| *cur = (*cur).min(*rid))
            .or_insert(*rid);
    }
    f.attestations = by_result
        .into_iter()
        .map(|(result, orgs)| Attestation {
            result,
            organizations: orgs.keys().copied().collect(),
            receipts: orgs.values().copied().collect(),
        })
        .collect();

    // Per organization and round, every receipt for a distinct result.
    let mut signed: BTreeMap<(u16, bool), Vec<ContentId>> = BTreeMap::new();
    for a in &f.attestations {
        for (org, rid) in a.organizations.iter().zip(&a.receipts) {
            signed
                .entry((*org, a.result.is_human()))
                .or_default()
                .push(*rid);
        }
    }
    let round0_signers = signed.keys().filter(|(_, human)| !human).count();
    f.equivocations = signed
        .into_iter()
        .filter(|(_, receipts)| receipts.len() > 1)
        .map(|((organization, human_round), mut receipts)| {
            receipts.sort();
            AttestorEquivocation {
                organization,
                human_round,
                receipts,
            }
        })
        .collect();

    let quorum = usize::from(q);
    let round0: Vec<&Attestation> = f
        .attestations
        .iter()
        .filter(|a| !a.result.is_human())
        .collect();
    // For each result X, the organizations that signed something other than
    // X; for a result nobody signed, every round-0 signer.
    let dissent = |a: &Attestation| {
        let mut others: std::collections::BTreeSet<u16> = std::collections::BTreeSet::new();
        for b in &round0 {
            if b.result != a.result {
                others.extend(&b.organizations);
            }
        }
        others.len()
    };
    let contested = round0_signers >= quorum && round0.iter().all(|a| dissent(a) >= quorum);
    let certs = |human: bool| -> Vec<&Attestation> {
        f.attestations
            .iter()
            .filter(|a| a.result.is_human() == human && a.organizations.len() >= quorum)
            .collect()
    };
    let (round0_certs, round1_certs) = (certs(false), certs(true));
    let decided0: Vec<&Attestation> = round0_certs
        .iter()
        .copied()
        .filter(|a| a.result.status != Status::Escalated)
        .collect();
    let escalated0 = round0_certs
        .iter()
        .copied()
        .find(|a| a.result.status == Status::Escalated);
    f.contested = contested;
    f.human_round_open = contested || escalated0.is_some();

    // Attestations are sorted by result, so the first certificate of a list
    // is the smallest result: the deterministic pick when, beyond the fault
    // bound, a round holds two.
    let (state, cert, rivals) = if let Some(first) = decided0.first() {
        let rivals: Vec<&Attestation> = round0_certs
            .iter()
            .copied()
            .filter(|a| a.result != first.result)
            .collect();
        (State::Certified, Some(*first), rivals)
    } else if f.human_round_open
        && let Some(first) = round1_certs.first()
    {
        (State::Certified, Some(*first), round1_certs[1..].to_vec())
    } else if let Some(esc) = escalated0 {
        (State::Escalated, Some(esc), Vec::new())
    } else if contested {
        (State::Contested, None, Vec::new())
    } else {
        (State::Provisional, None, Vec::new())
    };
    f.state = state;
    f.status = match (state, cert) {
        (State::Certified, Some(c)) => c.result.status,
        (State::Escalated | State::Contested, _) => Status::Escalated,
        _ => computed,
    };
    f.certificate = cert.cloned();
    f.conflicting = rivals.into_iter().cloned().collect();
    f
}
