//! Trust: how much an agent's past judgments in a domain were worth.
//!
//! A vote's confidence `c` (in `[0, 1]`) states how sure the agent is of its
//! stance: 0 is a coin flip, 1 is certainty, i.e. a probability `(1 + c) / 2`
//! that the stance is right. When an authorized reporter says how a proposal
//! turned out, every counted decisive vote on it is scored with the Brier
//! skill of that probability against a coin flip: `2c - c^2` when the stance
//! was right (0 to 1) and `-(2c + c^2)` when it was wrong (0 to -3). The rule
//! is proper: an agent maximizes its expected score by stating its true
//! confidence, so an overconfident agent loses trust that a calibrated one
//! keeps, and a confident wrong vote costs up to three times what a right one
//! earns. Each proposal the agent equivocated on scores -3.
//!
//! In integers (basis points, `c` in `0..=10000`): skill sums `S` over `n`
//! scored events, and `trust = clamp(5000 + floor(S / (2 (n + 2))), 0, 10000)`
//! — half a point of trust per point of mean skill, with two neutral events
//! of prior so one report does not swing trust fully. Sums commute, so the
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

/// Neutral events of prior in the mean.
pub const PRIOR_EVENTS: i64 = 2;
/// Skill of an equivocation: that of a fully confident wrong vote.
pub const EQUIVOCATION_SKILL: i64 = -30_000;
/// Trust of an agent with no history.
pub const INITIAL_TRUST: Bps = 5_000;

/// Brier skill, in basis points, of a vote with confidence `c` that turned
/// out `right` (or not).
pub fn skill(c: Bps, right: bool) -> i64 {
    let c = i64::from(c);
    let sq = c * c / i64::from(BPS_ONE);
    if right { 2 * c - sq } else { -(2 * c + sq) }
}

/// An agent's scored history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAccount {
    /// Sum of skills, in basis points.
    pub skill: i64,
    /// Scored events (reported votes and equivocations).
    pub events: u32,
}

impl TrustAccount {
    /// Add one scored event.
    pub fn add(&mut self, skill: i64) {
        self.skill += skill;
        self.events += 1;
    }

    /// Trust in basis points.
    pub fn score(&self) -> Bps {
        let n = i64::from(self.events) + PRIOR_EVENTS;
        let t = i64::from(INITIAL_TRUST) + self.skill.div_euclid(2 * n);
        t.clamp(0, i64::from(BPS_ONE)) as Bps
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
            table
                .accounts
                .entry(v.responder)
                .or_default()
                .add(skill(v.confidence_bps, right));
        }
    }
    for qid in set.equivocated_proposals() {
        let Some(q) = set.proposal(qid) else { continue };
        if q.domain != domain || q.created_at >= before {
            continue;
        }
        let Some(refs) = set.refs(qid) else { continue };
        for agent in refs.equivocators() {
            table
                .accounts
                .entry(*agent)
                .or_default()
                .add(EQUIVOCATION_SKILL);
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
        let after = |c, right| {
            let mut a = TrustAccount::default();
            a.add(skill(c, right));
            a.score()
        };
        // A confident failure costs more than a hesitant one; right earns.
        assert!(after(9_000, false) < after(2_000, false));
        assert!(after(2_000, false) < INITIAL_TRUST);
        assert!(after(9_000, true) > INITIAL_TRUST);
        assert_eq!(after(10_000, true), 5_000 + 10_000 / 6);
        assert_eq!(after(10_000, false), 0);
        assert_eq!(skill(0, true), 0);
        assert_eq!(skill(0, false), 0);
    }

    /// The rule is proper: for an agent right with probability p, the
    /// expected skill is maximized by stating confidence 2p - 1.
    #[test]
    fn honest_confidence_maximizes_expected_skill() {
        for p in [5_000i64, 6_000, 7_500, 9_000, 10_000] {
            let expected = |c: Bps| p * skill(c, true) + (10_000 - p) * skill(c, false);
            let honest = (2 * p - 10_000) as Bps;
            let best = (0..=10_000u16)
                .step_by(50)
                .max_by_key(|c| expected(*c))
                .unwrap_or(0);
            assert!(
                (i64::from(best) - i64::from(honest)).abs() <= 50,
                "p={p}: best {best}, honest {honest}"
            );
        }
    }
}
