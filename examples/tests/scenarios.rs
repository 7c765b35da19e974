//! Each scenario run end to end on real in-process nodes, with its outcome
//! checked. The scenarios run in parallel (one libtest thread each).
#![allow(clippy::unwrap_used)]

use acp_examples::show::Out;
use acp_examples::{campaign_spend, fraud_trust, loan, supply_chain};
use acp_protocol::{Reason, Stance, Status};

/// Runs a scenario quietly; on failure, shows what it printed.
macro_rules! run {
    ($f:path) => {{
        let mut out = Out::quiet();
        let r = $f(&mut out).await;
        match r {
            Ok(r) => r,
            Err(e) => panic!("{e:#}\n--- output ---\n{}", out.text),
        }
    }};
}

fn same_everywhere(d: &acp_examples::play::Decided, status: &str) {
    assert!(d.views.len() >= 3);
    for v in &d.views {
        assert_eq!(v.status, status, "{v:?}");
        assert_eq!(v.resolution, d.resolution.digest().to_string());
        assert_eq!(v.receipts.len(), d.views.len(), "a receipt from every node");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loan_one_approved_one_rejected() {
    let r = run!(loan::run);
    same_everywhere(&r.approved, "approved");
    assert_eq!(r.approved.resolution.status, Status::Approved);
    assert_eq!(r.approved.resolution.votes.len(), 3);
    same_everywhere(&r.rejected, "rejected");
    assert_eq!(r.rejected.resolution.status, Status::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supply_chain_cap_turns_the_retailers_numbers_into_one_share() {
    let r = run!(supply_chain::run);
    same_everywhere(&r.decided, "rejected");
    let t = &r.decided.resolution.tally;
    let retailer = t
        .organizations
        .iter()
        .find(|o| o.organization == r.retailer)
        .unwrap();
    // The retailer's raw endorsement is over its cap and counts only up to it.
    assert!(retailer.endorse > retailer.cap, "{t:?}");
    let counted: u64 = t.organizations.iter().map(|o| o.endorse.min(o.cap)).sum();
    assert_eq!(t.endorse, counted);
    assert!(t.endorse < r.uncapped_endorse);
    // Uncapped, the endorsement would have beaten the challenge by the margin.
    let (e, c) = (u128::from(r.uncapped_endorse), u128::from(t.challenge));
    assert!(10_000 * e > 10_000 * c + 1_000 * (e + c));
    let retailer_votes = r
        .decided
        .resolution
        .votes
        .iter()
        .filter(|v| v.organization == r.retailer && v.stance == Stance::Endorse)
        .count();
    assert_eq!(retailer_votes, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_spend_escalates_and_the_cfo_decides() {
    let r = run!(campaign_spend::run);
    same_everywhere(&r.escalated, "escalated");
    assert_eq!(r.escalated.resolution.status, Status::Escalated);
    assert!(r.escalated.resolution.reasons.contains(&Reason::NoMargin));
    assert_eq!(r.escalated.resolution.human_decision, None);
    same_everywhere(&r.decided, "approved");
    assert_eq!(r.decided.resolution.status, Status::Approved);
    assert_eq!(r.decided.resolution.human_decision, Some(r.human_decision));
    assert_ne!(
        r.escalated.resolution.digest(),
        r.decided.resolution.digest()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_trust_miscalibrated_agent_loses_influence() {
    let r = run!(fraud_trust::run);
    assert_eq!(r.rounds.len(), fraud_trust::ROUNDS);
    for round in &r.rounds {
        let d = &round.decided;
        assert!(
            d.views
                .iter()
                .all(|v| v.resolution == d.views[0].resolution)
        );
        assert!(d.resolution.is_final);
    }
    let first = r.rounds.first().unwrap();
    let last = r.rounds.last().unwrap();
    // Everyone starts equal.
    assert_eq!(first.miscalibrated_trust, first.calibrated_trust);
    // The coin-flipper ends below both calibrated agents, and its share fell.
    let (mis, cal, cx) = r.final_trust;
    assert!(mis < cal && mis < cx, "{:?}", r.final_trust);
    assert!(last.miscalibrated_trust < last.calibrated_trust);
    assert!(last.miscalibrated_share < first.miscalibrated_share);
}
