//! Each scenario run end to end on real in-process nodes, with its outcome
//! checked. The scenarios run in parallel (one libtest thread each).
#![allow(clippy::unwrap_used)]

use acp_examples::play::Decided;
use acp_examples::show::Out;
use acp_examples::{campaign_spend, fraud_trust, loan, supply_chain};
use acp_protocol::finality::State;
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

/// Every node holds a certificate for `status` in finality state `state`,
/// signed by at least the policy's quorum of organizations, for the digest
/// the scenario recomputed from its own messages and those receipts.
fn certified_everywhere(d: &Decided, state: State, status: Status) {
    assert!(d.views.len() >= 3);
    let f = &d.resolution.finality;
    assert_eq!(f.state, state, "{f:?}");
    assert_eq!(d.resolution.final_status(), status);
    let cert = f.certificate.as_ref().unwrap();
    assert_eq!(cert.result.status, status);
    assert_eq!(cert.result.resolution, d.resolution.digest());
    assert!(f.quorum >= 1 && cert.organizations.len() >= usize::from(f.quorum));
    assert!(f.equivocations.is_empty() && f.conflicting.is_empty());
    for v in &d.views {
        assert_eq!((v.state, v.status), (state, status), "{v:?}");
        assert_eq!(v.resolution, d.resolution.digest(), "{v:?}");
        let c = v.certificate.as_ref().unwrap();
        assert_eq!(c.resolution, cert.result.resolution, "{v:?}");
        assert_eq!(c.human_decision, cert.result.human_decision, "{v:?}");
        assert!(c.organizations >= usize::from(f.quorum), "{v:?}");
        assert_eq!(v.organizations, f.organizations, "{v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loan_one_approved_one_rejected() {
    let r = run!(loan::run);
    certified_everywhere(&r.approved, State::Certified, Status::Approved);
    assert_eq!(r.approved.resolution.status, Status::Approved);
    assert_eq!(r.approved.resolution.votes.len(), 3);
    assert_eq!(r.approved.resolution.finality.organizations, 3);
    certified_everywhere(&r.rejected, State::Certified, Status::Rejected);
    assert_eq!(r.rejected.resolution.status, Status::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supply_chain_cap_turns_the_retailers_numbers_into_one_share() {
    let r = run!(supply_chain::run);
    certified_everywhere(&r.decided, State::Certified, Status::Rejected);
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
    // Round 0: the escalation is certified, which opens the human round.
    certified_everywhere(&r.escalated, State::Escalated, Status::Escalated);
    assert_eq!(r.escalated.resolution.status, Status::Escalated);
    assert!(r.escalated.resolution.reasons.contains(&Reason::NoMargin));
    assert_eq!(r.escalated.resolution.human_decision, None);
    let esc = &r.escalated.resolution.finality;
    assert_eq!(
        esc.certificate.as_ref().unwrap().result.human_decision,
        None
    );
    assert!(esc.human_round_open);
    // Round 1: the CFO's result is certified.
    certified_everywhere(&r.decided, State::Certified, Status::Approved);
    assert_eq!(r.decided.resolution.status, Status::Approved);
    assert_eq!(r.decided.resolution.human_decision, Some(r.human_decision));
    let cert = r.decided.resolution.finality.certificate.as_ref().unwrap();
    assert_eq!(cert.result.human_decision, Some(r.human_decision));
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
        let state = d.resolution.finality.state;
        assert!(matches!(state, State::Certified | State::Escalated));
        certified_everywhere(d, state, d.resolution.final_status());
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
