//! Trust: how much an agent's past judgments in a domain were worth.
//!
//! A Beta reputation in integer basis points. Each agent has a `right` and a
//! `wrong` account that start at a prior of [`PRIOR`] each (trust 5000). When
//! an authorized reporter says how a proposal turned out, every counted
//! decisive vote on it moves one account by the vote's confidence: an
//! endorsement of a success or a challenge of a failure is right, the
//! opposite is wrong. A confident wrong vote therefore costs more than a
//! hesitant one, and right votes earn trust back. Each proposal on which the
//! agent equivocated adds [`EQUIVOCATION_PENALTY`] to `wrong`.
//!
//! `trust = floor(10000 * right / (right + wrong))`. Sums commute, so the
//! order reports arrive in cannot matter. A proposal's weights read the
//! reports of its domain with `reported_at < created_at`, signed by a
//! reporter its own pinned policy names: whoever can get some policy signed
//! for a domain cannot farm trust for proposals under another one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{AgentId, PublicKey};
use crate::id::ContentId;
use crate::message::{BPS_ONE, Body, Bps, Outcome, Stance, Timestamp};
use crate::resolve::{Counting, classify};
use crate::set::MessageSet;

/// Prior weight of each account, in confidence basis points (= 2 votes).
pub const PRIOR: u64 = 20_000;
/// Added to `wrong` per proposal an agent equivocated on.
pub const EQUIVOCATION_PENALTY: u64 = 20_000;
/// Trust of an agent with no history.
pub const INITIAL_TRUST: Bps = 5_000;

/// An agent's accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAccount {
    /// Confidence spent on votes that turned out right (without the prior).
    pub right: u64,
    /// Confidence spent on votes that turned out wrong, plus penalties.
    pub wrong: u64,
    /// Reported votes and equivocations that moved the accounts.
    pub events: u32,
}

impl TrustAccount {
    /// Trust in basis points.
    pub fn score(&self) -> Bps {
        let r = u128::from(PRIOR + self.right);
        let w = u128::from(PRIOR + self.wrong);
        // r <= r + w, so the quotient fits in 0..=10000.
        (u128::from(BPS_ONE) * r / (r + w)) as Bps
    }
}

/// Trust of every agent with history in a domain, as seen by proposals
/// created at `before`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustTable {
    /// Accounts by agent.
    pub accounts: BTreeMap<AgentId, TrustAccount>,
}

impl TrustTable {
    /// An agent's trust (the initial value without history).
    pub fn trust(&self, agent: &AgentId) -> Bps {
        self.accounts
            .get(agent)
            .map_or(INITIAL_TRUST, TrustAccount::score)
    }
}

/// Compute the trust table of `domain` for a proposal created at `before`
/// whose pinned policy names `reporters` (sorted).
pub fn trust_table(
    set: &MessageSet,
    domain: &str,
    before: Timestamp,
    reporters: &[PublicKey],
) -> TrustTable {
    let mut table = TrustTable::default();
    // Group the authorized reports per proposal; conflicting reports void it.
    let mut outcomes: BTreeMap<ContentId, Option<Outcome>> = BTreeMap::new();
    for rid in set.reports_before(domain, before) {
        let Some(Body::OutcomeReport(r)) = set.get(&rid).map(|m| m.body()) else {
            continue;
        };
        let Some(q) = set.proposal(&r.proposal) else {
            continue;
        };
        if q.domain != domain || reporters.binary_search(&r.reporter).is_err() {
            continue;
        }
        outcomes
            .entry(r.proposal)
            .and_modify(|o| {
                if *o != Some(r.outcome) {
                    *o = None;
                }
            })
            .or_insert(Some(r.outcome));
    }
    for (qid, outcome) in outcomes {
        let Some(outcome) = outcome else { continue };
        let Some(counting) = Counting::of(set, &qid) else {
            continue;
        };
        for v in classify(set, &counting).counted {
            let right = match (v.stance, outcome) {
                (Stance::Abstain, _) => continue,
                (Stance::Endorse, Outcome::Succeeded) | (Stance::Challenge, Outcome::Failed) => {
                    true
                }
                _ => false,
            };
            let acc = table.accounts.entry(v.responder).or_default();
            let c = u64::from(v.confidence_bps);
            if right {
                acc.right += c;
            } else {
                acc.wrong += c;
            }
            acc.events += 1;
        }
    }
    for qid in set.equivocated_proposals() {
        let Some(q) = set.proposal(qid) else { continue };
        if q.domain != domain || q.created_at >= before {
            continue;
        }
        let Some(refs) = set.refs(qid) else { continue };
        for agent in refs.equivocators() {
            let acc = table.accounts.entry(*agent).or_default();
            acc.wrong += EQUIVOCATION_PENALTY;
            acc.events += 1;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_moves_with_confidence() {
        assert_eq!(TrustAccount::default().score(), INITIAL_TRUST);
        let hesitant = TrustAccount {
            right: 0,
            wrong: 2_000,
            events: 1,
        };
        let confident = TrustAccount {
            right: 0,
            wrong: 9_000,
            events: 1,
        };
        assert!(confident.score() < hesitant.score());
        assert!(hesitant.score() < INITIAL_TRUST);
        let redeemed = TrustAccount {
            right: 9_000,
            ..confident
        };
        assert!(redeemed.score() > confident.score());
        assert_eq!(
            TrustAccount {
                right: u64::MAX / 4,
                wrong: 0,
                events: 0
            }
            .score(),
            9_999
        );
    }
}
