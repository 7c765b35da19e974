//! Domain lineage: which policies govern a domain.
//!
//! A node trusts one policy per domain by configuration, the domain's
//! *genesis* (its trust anchor, held by the [`MessageSet`]). Every other
//! policy of the domain counts only if it amends a lineage policy: it names
//! that policy in `supersedes`, is signed later, and is signed by the roots
//! of at least the amended policy's `amendment_quorum` of organizations.
//! Policies that anyone else signs for the domain govern nothing.
//!
//! The lineage is a tree (two valid amendments of one policy are a *fork*);
//! the *chain* in force follows, from the genesis, the valid amendment with
//! the smallest `(issued_at, id)`. A proposal is valid only if it pins the
//! chain policy in force at its `created_at`. All of it is a function of the
//! set and its anchors.

use serde::{Deserialize, Serialize};

use crate::id::ContentId;
use crate::message::{DomainPolicy, Timestamp};
use crate::set::MessageSet;

/// Whether `child` is a valid amendment of `parent` (whose id is
/// `parent_id`): it names the parent, governs the same domain, is signed
/// later, and is signed by the roots of at least the parent's
/// `amendment_quorum` of organizations (as organizations of the child or as
/// its approvers; a signed policy carries a signature by each).
pub fn amends(parent_id: &ContentId, parent: &DomainPolicy, child: &DomainPolicy) -> bool {
    if child.supersedes != Some(*parent_id)
        || child.domain != parent.domain
        || child.issued_at <= parent.issued_at
    {
        return false;
    }
    let signers = child.signers();
    let approving = parent
        .organizations
        .iter()
        .filter(|o| signers.binary_search(&o.root).is_ok())
        .count();
    approving >= usize::from(parent.amendment_quorum)
}

/// Why a policy is not in its domain's lineage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// In the lineage tree (the genesis or a chain of valid amendments of it).
    In,
    /// The domain has no trust anchor.
    NoAnchor,
    /// It amends a policy that is not in the set (yet).
    Waiting(ContentId),
    /// Neither the genesis nor a valid amendment of a lineage policy.
    Out,
}

/// Whether policy `id` (in the set) belongs to its domain's lineage tree.
pub fn membership(set: &MessageSet, id: &ContentId) -> Membership {
    let Some(policy) = set.policy(id) else {
        return Membership::Out;
    };
    let Some(genesis) = set.anchor(&policy.domain) else {
        return Membership::NoAnchor;
    };
    let (mut id, mut policy) = (*id, policy);
    // Every step goes to a strictly earlier `issued_at`, so the walk ends;
    // the bound only guards against a pathological set.
    for _ in 0..=set.len() {
        if id == genesis {
            return if policy.supersedes.is_none() {
                Membership::In
            } else {
                Membership::Out
            };
        }
        let Some(parent_id) = policy.supersedes else {
            return Membership::Out;
        };
        let Some(parent) = set.policy(&parent_id) else {
            return Membership::Waiting(parent_id);
        };
        if !amends(&parent_id, parent, policy) {
            return Membership::Out;
        }
        (id, policy) = (parent_id, parent);
    }
    Membership::Out
}

/// Two or more valid amendments of one lineage policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The amended policy.
    pub parent: ContentId,
    /// Its valid amendments, by `(issued_at, id)`; the first one is followed.
    pub successors: Vec<ContentId>,
}

/// The lineage of a domain as the set holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The genesis policy id (the anchor), whether or not the set holds it.
    pub genesis: Option<ContentId>,
    /// The policies in force one after the other, genesis first (empty while
    /// the genesis is missing).
    pub chain: Vec<ContentId>,
    /// Forks met along the chain (evidence against the parent's organizations).
    pub forks: Vec<Fork>,
}

impl Lineage {
    /// The newest policy of the chain.
    pub fn current(&self) -> Option<ContentId> {
        self.chain.last().copied()
    }
}

/// The lineage of `domain`: the chain from its genesis, and its forks.
pub fn lineage(set: &MessageSet, domain: &str) -> Lineage {
    let mut out = Lineage {
        genesis: set.anchor(domain),
        ..Lineage::default()
    };
    let Some(genesis) = out.genesis else {
        return out;
    };
    let Some(mut policy) = set
        .policy(&genesis)
        .filter(|p| p.domain == domain && p.supersedes.is_none())
    else {
        return out;
    };
    let mut id = genesis;
    out.chain.push(id);
    loop {
        let mut valid: Vec<(crate::message::Timestamp, ContentId)> = set
            .amendments_of(&id)
            .filter_map(|c| {
                let child = set.policy(c)?;
                amends(&id, policy, child).then_some((child.issued_at, *c))
            })
            .collect();
        valid.sort();
        if valid.len() > 1 {
            out.forks.push(Fork {
                parent: id,
                successors: valid.iter().map(|(_, c)| *c).collect(),
            });
        }
        let Some(&(_, next)) = valid.first() else {
            return out;
        };
        let Some(next_policy) = set.policy(&next) else {
            return out;
        };
        out.chain.push(next);
        (id, policy) = (next, next_policy);
    }
}

/// Which policy governs proposals of a domain created at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InForce {
    /// The domain has no trust anchor.
    NoAnchor,
    /// The genesis policy is not in the set (yet).
    GenesisMissing(ContentId),
    /// The genesis was signed after the time: nothing governs it.
    BeforeGenesis,
    /// This policy.
    Policy(ContentId),
}

/// The chain policy in force at `at`: the last one with `issued_at <= at`.
pub fn in_force(set: &MessageSet, domain: &str, at: Timestamp) -> InForce {
    let l = lineage(set, domain);
    let Some(genesis) = l.genesis else {
        return InForce::NoAnchor;
    };
    if l.chain.is_empty() {
        return InForce::GenesisMissing(genesis);
    }
    l.chain
        .iter()
        .rev()
        .find(|id| set.policy(id).is_some_and(|p| p.issued_at <= at))
        .map_or(InForce::BeforeGenesis, |id| InForce::Policy(*id))
}
