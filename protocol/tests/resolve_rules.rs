//! `resolve` at the boundaries of every rule.

mod common;

use acp_protocol::build::{default_rules, human_decision, outcome_report};
use acp_protocol::resolve::Reason;
use acp_protocol::trust::INITIAL_TRUST;
use acp_protocol::{DecisionRules, Outcome, Stance, Status, Timestamp, Verdict};
use common::*;

fn rules(margin: u16, participation: u16, low_conf: u16) -> DecisionRules {
    DecisionRules {
        quorum_margin_bps: margin,
        min_participation_bps: participation,
        low_confidence_bps: low_conf,
        ..default_rules()
    }
}

#[test]
fn margin_boundary_one_basis_point_either_side() {
    // Two equal members, margin 10%: approve iff 9 cE > 11 cC.
    let f = Fixture::new(&[10_000, 10_000], rules(1_000, 0, 0));
    let challenge = f.vote(1, Stance::Challenge, 4_500);
    let at = f.resolve_final(&[f.vote(0, Stance::Endorse, 5_500), challenge.clone()]);
    assert_eq!(at.status, Status::Escalated);
    assert_eq!(at.reasons, vec![Reason::NoMargin]);
    let above = f.resolve_final(&[f.vote(0, Stance::Endorse, 5_501), challenge.clone()]);
    assert_eq!(above.status, Status::Approved);
    assert_eq!(
        above.tally.endorse,
        10_000 * 5_501 * u64::from(INITIAL_TRUST)
    );
    // Mirror: reject iff 9 cC > 11 cE.
    let endorse = f.vote(0, Stance::Endorse, 4_500);
    let at = f.resolve_final(&[endorse.clone(), f.vote(1, Stance::Challenge, 5_500)]);
    assert_eq!(at.status, Status::Escalated);
    let above = f.resolve_final(&[endorse, f.vote(1, Stance::Challenge, 5_501)]);
    assert_eq!(above.status, Status::Rejected);
}

#[test]
fn exact_tie_escalates_even_without_margin() {
    let f = Fixture::new(&[10_000, 10_000], rules(0, 0, 0));
    let r = f.resolve_final(&[
        f.vote(0, Stance::Endorse, 7_000),
        f.vote(1, Stance::Challenge, 7_000),
    ]);
    assert_eq!(r.status, Status::Escalated);
    assert_eq!(r.reasons, vec![Reason::NoMargin]);
    assert_eq!(r.tally.endorse, r.tally.challenge);
}

#[test]
fn participation_boundary() {
    // Four equal members, 50% participation: two responses suffice, one does not.
    let f = Fixture::new(&[10_000; 4], rules(1_000, 5_000, 0));
    let one = f.resolve_final(&[f.vote(0, Stance::Endorse, 9_000)]);
    assert_eq!(one.status, Status::Escalated);
    assert_eq!(one.reasons, vec![Reason::LowParticipation]);
    let two = f.resolve_final(&[
        f.vote(0, Stance::Endorse, 9_000),
        f.vote(1, Stance::Abstain, 5_000),
    ]);
    assert_eq!(two.status, Status::Approved);
    assert_eq!(two.tally.responded_potential * 2, two.tally.total_potential);
}

#[test]
fn low_confidence_boundary() {
    let f = Fixture::new(&[10_000, 10_000], rules(0, 0, 3_000));
    let at_floor = f.resolve_final(&[f.vote(0, Stance::Endorse, 3_000)]);
    assert_eq!(at_floor.status, Status::Approved);
    let below = f.resolve_final(&[f.vote(0, Stance::Endorse, 2_999)]);
    assert_eq!(below.status, Status::Escalated);
    assert_eq!(below.reasons, vec![Reason::LowConfidence]);
}

#[test]
fn organization_cap_limits_a_crowd() {
    // Org 0 has agents 0, 2, 4 (endorse); org 1 has agent 1 (challenge).
    // Uncapped, org 0 wins 3:1. Capped at 20% of total potential each side
    // (one member's full weight), both sides weigh the same: escalated.
    let f = Fixture::with_caps(&[10_000; 5], rules(1_000, 0, 0), [2_000, 2_000]);
    let votes = [
        f.vote(0, Stance::Endorse, 10_000),
        f.vote(2, Stance::Endorse, 10_000),
        f.vote(4, Stance::Endorse, 10_000),
        f.vote(1, Stance::Challenge, 10_000),
    ];
    let r = f.resolve_final(&votes);
    let cap = r.tally.total_potential / 5;
    assert_eq!(r.tally.endorse, cap);
    assert_eq!(r.tally.challenge, cap);
    assert_eq!(r.status, Status::Escalated);
    let uncapped = Fixture::with_caps(&[10_000; 5], rules(1_000, 0, 0), [10_000, 10_000]);
    let votes: Vec<_> = [
        (0, Stance::Endorse),
        (2, Stance::Endorse),
        (4, Stance::Endorse),
        (1, Stance::Challenge),
    ]
    .iter()
    .map(|(a, s)| uncapped.vote(*a, *s, 10_000))
    .collect();
    assert_eq!(uncapped.resolve_final(&votes).status, Status::Approved);
}

#[test]
fn equivocation_excludes_both_votes() {
    let f = Fixture::new(&[10_000; 3], rules(1_000, 0, 0));
    let a = f.vote(0, Stance::Endorse, 9_000);
    let b = f.vote(0, Stance::Challenge, 9_000);
    let r = f.resolve_final(&[a, b, f.vote(1, Stance::Challenge, 6_000)]);
    assert_eq!(r.equivocators, vec![f.agents[0].public()]);
    assert_eq!(r.tally.endorse, 0);
    assert_eq!(r.status, Status::Rejected);
    assert!(r.votes.iter().all(|v| v.responder != f.agents[0].public()));
}

#[test]
fn late_early_and_outsider_responses_do_not_count() {
    let f = Fixture::new(&[10_000; 2], rules(0, 0, 0));
    let late = f.vote_at(0, Stance::Challenge, 9_000, CLOSES.plus_ms(1));
    let on_time = f.vote_at(1, Stance::Endorse, 5_000, CLOSES);
    let r = f.resolve_final(&[late, on_time]);
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.votes.len(), 1);
    // A non-member's and the proposer's responses carry no weight.
    let outsider = acp_protocol::build::response(
        &key(99),
        &f.proposal,
        Stance::Challenge,
        10_000,
        "",
        CREATED,
    )
    .expect("sign");
    let own = acp_protocol::build::response(
        &f.proposer,
        &f.proposal,
        Stance::Endorse,
        10_000,
        "",
        CREATED,
    )
    .expect("sign");
    let r = f.resolve_final(&[outsider, own]);
    assert!(r.votes.is_empty());
    assert_eq!(r.status, Status::Escalated);
}

#[test]
fn early_decision_only_when_the_rest_cannot_change_it() {
    // Three equal members, 10% margin. After two full-confidence endorsements
    // the third at full confidence against gives 2:1 — still approved.
    let f = Fixture::new(&[10_000; 3], rules(1_000, 5_000, 0));
    let before_close = CREATED.plus_ms(2_000);
    let two = f.resolve_at(
        &[
            f.vote(0, Stance::Endorse, 10_000),
            f.vote(1, Stance::Endorse, 10_000),
        ],
        before_close,
    );
    assert!(two.early && two.is_final);
    assert_eq!(two.status, Status::Approved);
    // With one endorsement the remaining two could still reject: pending.
    let one = f.resolve_at(&[f.vote(0, Stance::Endorse, 10_000)], before_close);
    assert_eq!(one.status, Status::Pending);
    assert!(!one.is_final);
    // Half confidence: 1 + 0.5 vs 1 cannot clear the margin for sure.
    let soft = f.resolve_at(
        &[
            f.vote(0, Stance::Endorse, 5_000),
            f.vote(1, Stance::Endorse, 5_000),
        ],
        before_close,
    );
    assert_eq!(soft.status, Status::Pending);
}

#[test]
fn high_stakes_always_go_to_a_human_who_then_decides() {
    let f = Fixture::new(
        &[10_000; 2],
        DecisionRules {
            high_stakes: Some(0),
            ..rules(0, 0, 0)
        },
    );
    let votes = [
        f.vote(0, Stance::Endorse, 10_000),
        f.vote(1, Stance::Endorse, 10_000),
    ];
    let early = f.resolve_at(&votes, CREATED.plus_ms(2_000));
    assert_eq!(early.status, Status::Pending);
    let r = f.resolve_final(&votes);
    assert_eq!(r.status, Status::Escalated);
    assert_eq!(r.reasons, vec![Reason::HighStakes]);
    // A decision signed before the close does not count; one after does,
    // and the earliest of two wins.
    let too_soon = human_decision(
        &f.human,
        &f.proposal,
        Verdict::Reject,
        "no",
        Timestamp(CLOSES.0 - 1),
    )
    .expect("sign");
    let reject = human_decision(
        &f.human,
        &f.proposal,
        Verdict::Reject,
        "too risky",
        CLOSES.plus_ms(5),
    )
    .expect("sign");
    let approve = human_decision(
        &f.human,
        &f.proposal,
        Verdict::Approve,
        "fine",
        CLOSES.plus_ms(9),
    )
    .expect("sign");
    let mut all = votes.to_vec();
    all.push(too_soon);
    all.push(approve.clone());
    all.push(reject.clone());
    // Until the escalation is certified, human decisions settle nothing.
    assert_eq!(f.resolve_final(&all).status, Status::Escalated);
    all.extend(f.attest(&votes));
    let decided = f.resolve_final(&all);
    assert_eq!(decided.status, Status::Rejected);
    assert_eq!(decided.human_decision, Some(reject.id));
    assert_eq!(
        decided.finality.state,
        acp_protocol::finality::State::Escalated
    );
    // Both attestors certify the human's result: final.
    all.extend(f.attest(&all));
    let certified = f.resolve_final(&all);
    assert_eq!(
        certified.finality.state,
        acp_protocol::finality::State::Certified
    );
    assert_eq!(certified.final_status(), Status::Rejected);
    // A human not named by the policy has no say.
    let stranger =
        human_decision(&key(77), &f.proposal, Verdict::Approve, "", CLOSES).expect("sign");
    let mut with_stranger = votes.to_vec();
    with_stranger.extend(f.attest(&votes));
    with_stranger.push(stranger);
    assert_eq!(f.resolve_final(&with_stranger).status, Status::Escalated);
    let _ = approve;
}

#[test]
fn invalid_window_and_missing_policy() {
    let f = Fixture::new(
        &[10_000; 2],
        DecisionRules {
            max_window_ms: 59_999,
            ..rules(0, 0, 0)
        },
    );
    let r = f.resolve_final(&[]);
    assert_eq!(r.status, Status::Invalid);
    assert_eq!(r.reasons, vec![Reason::WindowOutOfBounds]);
    let mut only = acp_protocol::MessageSet::new();
    only.insert(f.proposal.clone());
    let r = acp_protocol::resolve(&only, &f.proposal.id, CLOSES).expect("resolve");
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.reasons, vec![Reason::NoTrustAnchor]);
    only.set_anchor(DOMAIN, f.policy.id);
    let r = acp_protocol::resolve(&only, &f.proposal.id, CLOSES).expect("resolve");
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.reasons, vec![Reason::PolicyMissing]);
}

#[test]
fn trust_follows_reported_outcomes() {
    // Proposal 1: agent 0 confidently endorses, agent 1 challenges; it fails.
    let f = Fixture::new(&[10_000; 2], rules(0, 0, 0));
    let first = [
        f.vote(0, Stance::Endorse, 9_000),
        f.vote(1, Stance::Challenge, 6_000),
    ];
    let failed = outcome_report(
        &f.reporter,
        &f.proposal,
        Outcome::Failed,
        CLOSES.plus_ms(10),
    )
    .expect("sign");
    // Proposal 2, created after the report: weights read the new trust.
    let second = f.later_proposal();
    let v0 = acp_protocol::build::response(
        &f.agents[0],
        &second,
        Stance::Endorse,
        9_000,
        "",
        CLOSES.plus_ms(200),
    )
    .expect("sign");
    let v1 = acp_protocol::build::response(
        &f.agents[1],
        &second,
        Stance::Challenge,
        9_000,
        "",
        CLOSES.plus_ms(200),
    )
    .expect("sign");
    let mut extra = first.to_vec();
    extra.extend([failed.clone(), second.clone(), v0.clone(), v1.clone()]);
    let set = f.set(&extra);
    let r = acp_protocol::resolve(&set, &second.id, CLOSES.plus_ms(60_100)).expect("resolve");
    let trust_of = |k: &acp_protocol::Keypair| {
        r.votes
            .iter()
            .find(|v| v.responder == k.public())
            .map(|v| v.trust_bps)
    };
    // Wrong at 0.9: skill -(1.8 + 0.81) = -2.61, trust 0.5 - 2.61/6 = 0.065.
    // Right at 0.6: skill 1.2 - 0.36 = 0.84, trust 0.5 + 0.84/6 = 0.64.
    assert_eq!(trust_of(&f.agents[0]), Some(650));
    assert_eq!(trust_of(&f.agents[1]), Some(6_400));
    assert_eq!(r.status, Status::Rejected);
    // The report does not reach back to the first proposal.
    assert!(
        f.resolve_final(&extra)
            .votes
            .iter()
            .all(|v| v.trust_bps == INITIAL_TRUST)
    );
    // An unauthorized reporter changes nothing.
    let forged = outcome_report(
        &key(98),
        &f.proposal,
        Outcome::Succeeded,
        CLOSES.plus_ms(10),
    )
    .expect("sign");
    let mut with_forged = extra.clone();
    with_forged.push(forged);
    let r2 = acp_protocol::resolve(&f.set(&with_forged), &second.id, CLOSES.plus_ms(60_100))
        .expect("resolve");
    assert_eq!(r2.digest(), r.digest());
}

#[test]
fn trust_reads_only_reporters_of_the_proposals_own_policy() {
    // An outsider gets a second policy signed for the same domain, naming its
    // own reporter, and reports the first proposal a success. Proposals under
    // the original policy must not see that report.
    let f = Fixture::new(&[10_000; 2], rules(0, 0, 0));
    let rogue_org = key(210);
    let rogue_reporter = key(211);
    let rogue_policy = acp_protocol::build::PolicyBuilder::new(DOMAIN)
        .organization(&rogue_org, "Rogue", 10_000)
        .member(&f.agents[0].public(), 0, 10_000)
        .reporter(&rogue_reporter.public())
        .sign(&[&rogue_org])
        .expect("sign");
    let votes = [
        f.vote(0, Stance::Endorse, 9_000),
        f.vote(1, Stance::Challenge, 9_000),
    ];
    let rogue_report = outcome_report(
        &rogue_reporter,
        &f.proposal,
        Outcome::Succeeded,
        CLOSES.plus_ms(10),
    )
    .expect("sign");
    let later = f.later_proposal();
    let mut extra = votes.to_vec();
    extra.extend([rogue_policy, rogue_report, later.clone()]);
    let set = f.set(&extra);
    let trust = acp_protocol::trust::trust_table(
        &set,
        DOMAIN,
        later.body().time(),
        &set.policy(&f.policy.id).expect("policy").reporters,
    );
    assert!(trust.accounts.is_empty(), "{trust:?}");
    // The legitimate reporter's report does count.
    let real = outcome_report(
        &f.reporter,
        &f.proposal,
        Outcome::Succeeded,
        CLOSES.plus_ms(10),
    )
    .expect("sign");
    extra.push(real);
    let set = f.set(&extra);
    let trust = acp_protocol::trust::trust_table(
        &set,
        DOMAIN,
        later.body().time(),
        &set.policy(&f.policy.id).expect("policy").reporters,
    );
    assert!(trust.trust(&f.agents[0].public()) > INITIAL_TRUST);
    assert!(trust.trust(&f.agents[1].public()) < INITIAL_TRUST);
}
