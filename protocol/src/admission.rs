//! Admission: which valid messages a node takes into its set at all.
//!
//! Validity (section 6 of the spec) is context-free; admission is not. A
//! node stores and forwards a message only if its domain's lineage
//! authorizes the author for that kind of message: lineage policies,
//! proposals by members or listed proposers under a lineage policy,
//! responses by members, human decisions by listed humans, outcome reports
//! by listed reporters, receipts by attestors and members. Anything else
//! is refused — not stored, not forwarded — so nobody outside a domain can
//! fill it with weightless messages. A message whose policy or proposal has
//! not arrived yet *waits* for it.

use crate::id::ContentId;
use crate::lineage::{Membership, amends, membership};
use crate::message::{Body, DomainPolicy};
use crate::set::MessageSet;

/// Why a valid message is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// This node has no trust anchor for the message's domain.
    #[error("no trust anchor for the domain")]
    NoAnchor,
    /// A policy that is neither the genesis nor a valid amendment of a
    /// lineage policy.
    #[error("the policy is not in the domain's lineage")]
    NotInLineage,
    /// A proposal pinning a policy outside the lineage.
    #[error("the pinned policy is not in the domain's lineage")]
    PolicyNotInLineage,
    /// The message names another domain than the proposal or policy it
    /// refers to.
    #[error("the message's domain differs from its proposal's")]
    WrongDomain,
    /// The author has no role for this kind of message in the policy.
    #[error("the author is not authorized by the policy")]
    NotAuthorized,
}

impl Refusal {
    /// A stable machine-readable code (metrics labels, API errors).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoAnchor => "no_anchor",
            Refusal::NotInLineage => "not_in_lineage",
            Refusal::PolicyNotInLineage => "policy_not_in_lineage",
            Refusal::WrongDomain => "wrong_domain",
            Refusal::NotAuthorized => "not_authorized",
        }
    }

    /// Every refusal, for metrics that list each reason.
    pub const ALL: [Refusal; 5] = [
        Refusal::NoAnchor,
        Refusal::NotInLineage,
        Refusal::PolicyNotInLineage,
        Refusal::WrongDomain,
        Refusal::NotAuthorized,
    ];
}

/// The admission decision for one valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Store and forward it.
    Admit,
    /// It depends on this message (a policy or proposal), not in the set yet.
    Wait(ContentId),
    /// Never store or forward it (until the node's anchors change).
    Refuse(Refusal),
}

/// Decide whether the set's lineage admits message `id` with `body`.
pub fn admit(set: &MessageSet, id: &ContentId, body: &Body) -> Admission {
    match body {
        Body::Policy(p) => admit_policy(set, id, p),
        Body::Proposal(p) => {
            let Some(policy) = set.policy(&p.policy) else {
                return match set.anchor(&p.domain) {
                    None => Admission::Refuse(Refusal::NoAnchor),
                    Some(_) => Admission::Wait(p.policy),
                };
            };
            match membership(set, &p.policy) {
                Membership::In => {}
                Membership::NoAnchor => return Admission::Refuse(Refusal::NoAnchor),
                Membership::Waiting(dep) => return Admission::Wait(dep),
                Membership::Out => return Admission::Refuse(Refusal::PolicyNotInLineage),
            }
            if policy.domain != p.domain {
                Admission::Refuse(Refusal::WrongDomain)
            } else if !policy.may_propose(&p.proposer) {
                Admission::Refuse(Refusal::NotAuthorized)
            } else {
                Admission::Admit
            }
        }
        Body::Response(_) | Body::HumanDecision(_) | Body::OutcomeReport(_) | Body::Receipt(_) => {
            let Some(pid) = body.proposal_ref() else {
                return Admission::Refuse(Refusal::NotAuthorized);
            };
            let Some(p) = set.proposal(pid) else {
                return match set.anchor(body.domain()) {
                    None => Admission::Refuse(Refusal::NoAnchor),
                    Some(_) => Admission::Wait(*pid),
                };
            };
            if p.domain != body.domain() {
                return Admission::Refuse(Refusal::WrongDomain);
            }
            let Some(policy) = set.policy(&p.policy) else {
                return Admission::Wait(p.policy);
            };
            if authorized(policy, body) {
                Admission::Admit
            } else {
                Admission::Refuse(Refusal::NotAuthorized)
            }
        }
    }
}

fn authorized(policy: &DomainPolicy, body: &Body) -> bool {
    match body {
        Body::Response(r) => policy.member(&r.responder).is_some(),
        Body::HumanDecision(d) => policy.humans.binary_search(&d.human).is_ok(),
        Body::OutcomeReport(o) => policy.reporters.binary_search(&o.reporter).is_ok(),
        Body::Receipt(r) => {
            policy.attestor_of(&r.node).is_some() || policy.member(&r.node).is_some()
        }
        Body::Policy(_) | Body::Proposal(_) => false,
    }
}

fn admit_policy(set: &MessageSet, id: &ContentId, p: &DomainPolicy) -> Admission {
    let Some(genesis) = set.anchor(&p.domain) else {
        return Admission::Refuse(Refusal::NoAnchor);
    };
    if *id == genesis {
        return if p.supersedes.is_none() {
            Admission::Admit
        } else {
            Admission::Refuse(Refusal::NotInLineage)
        };
    }
    let Some(parent_id) = p.supersedes else {
        return Admission::Refuse(Refusal::NotInLineage);
    };
    let Some(parent) = set.policy(&parent_id) else {
        return Admission::Wait(parent_id);
    };
    match membership(set, &parent_id) {
        Membership::In if amends(&parent_id, parent, p) => Admission::Admit,
        Membership::Waiting(dep) => Admission::Wait(dep),
        Membership::NoAnchor => Admission::Refuse(Refusal::NoAnchor),
        _ => Admission::Refuse(Refusal::NotInLineage),
    }
}
