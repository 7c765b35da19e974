//! Fraud screening against customer experience, over many payments. A
//! payment gateway proposes to block each flagged card payment; a calibrated
//! transaction-risk model, a customer-experience agent and a newly deployed
//! velocity-rules agent respond. The velocity agent is miscalibrated: its
//! stance is a coin flip, stated at 0.95 confidence every time. After each
//! payment the chargeback desk (the policy's outcome reporter) signs how it
//! turned out. Trust follows the Brier skill of each vote, so round by round
//! the overconfident agent's trust, and with it its share of the weight,
//! falls while the calibrated agents keep theirs.

use std::collections::BTreeMap;

use acp_protocol::build::{self, Ask, PolicyBuilder};
use acp_protocol::finality::State;
use acp_protocol::{BPS_ONE, DecisionRules, Keypair, Outcome, Stance, Status, Timestamp};

use crate::msg;
use crate::play::{Decided, Play};
use crate::show::{self, Names, Out};

/// The domain.
pub const DOMAIN: &str = "payments.fraud";
/// Payments screened.
pub const ROUNDS: usize = 12;
const WINDOW_MS: u64 = 3_000;
/// The miscalibrated agent.
pub const MISCALIBRATED: &str = "velocity-rules-v2";
/// The calibrated fraud model.
pub const CALIBRATED: &str = "txn-risk-model";
const CX: &str = "cx-retention";

/// One screened payment.
#[derive(Debug, Clone)]
pub struct Round {
    /// Whether the payment was in fact fraudulent.
    pub fraud: bool,
    /// The settled proposal to block it.
    pub decided: Decided,
    /// The miscalibrated agent's trust in this round, bps.
    pub miscalibrated_trust: u16,
    /// Its share of the round's potential weight, bps.
    pub miscalibrated_share: u16,
    /// The calibrated fraud model's trust in this round, bps.
    pub calibrated_trust: u16,
    /// The customer-experience agent's trust in this round, bps.
    pub cx_trust: u16,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct FraudReport {
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Trust after the last report: (miscalibrated, calibrated, cx), bps.
    pub final_trust: (u16, u16, u16),
}

/// A small deterministic generator (splitmix64): with a fixed seed every run
/// screens the same payments with the same votes.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn block_if(block: bool) -> Stance {
    if block {
        Stance::Endorse
    } else {
        Stance::Challenge
    }
}

/// Runs the scenario.
pub async fn run(out: &mut Out) -> anyhow::Result<FraudReport> {
    let fraud_ops = msg::fresh_key()?;
    let cx_org = msg::fresh_key()?;
    let reporter = msg::fresh_key()?;
    let gateway = msg::fresh_key()?;
    let risk = msg::fresh_key()?;
    let velocity = msg::fresh_key()?;
    let cx = msg::fresh_key()?;
    let mut names = Names::default();
    names.add(gateway.public(), "payment-gateway");
    names.add(risk.public(), CALIBRATED);
    names.add(velocity.public(), MISCALIBRATED);
    names.add(cx.public(), CX);
    names.add(reporter.public(), "chargeback-desk");

    // The calibrated model's node attests for Fraud Operations, the
    // retention agent's for Customer Experience; the gateway may propose
    // without a vote.
    let policy = PolicyBuilder::new(DOMAIN)
        .organization_attested(&fraud_ops, "Fraud Operations", BPS_ONE, &risk.public())
        .organization_attested(&cx_org, "Customer Experience", BPS_ONE, &cx.public())
        .member(&risk.public(), 0, BPS_ONE)
        .member(&velocity.public(), 0, BPS_ONE)
        .member(&cx.public(), 1, BPS_ONE)
        .proposer(&gateway.public())
        .reporter(&reporter.public())
        .rules(DecisionRules {
            quorum_margin_bps: 1_000,
            min_participation_bps: 5_000,
            low_confidence_bps: 3_000,
            high_stakes: None,
            min_window_ms: 1_000,
            max_window_ms: 3_600_000,
        })
        .issued(1, acp_node::service::now())
        .sign(&[&fraud_ops, &cx_org])?;

    out.line(format!(
        "Card fraud screening: {ROUNDS} flagged payments, four agents, one node per agent on 127.0.0.1"
    ));
    let mut play = Play::start(
        &policy,
        &[
            ("payment-gateway", &gateway),
            (CALIBRATED, &risk),
            (MISCALIBRATED, &velocity),
            (CX, &cx),
        ],
        names,
    )
    .await?;
    out.line(format!(
        "Policy {}: {CALIBRATED}, {MISCALIBRATED} (Fraud Operations) and {CX} \
         (Customer Experience) at authority 1.00; {CALIBRATED} and {CX} attest for their \
         organizations; outcomes reported by the chargeback desk",
        show::id(&policy.id)
    ));
    out.line(format!(
        "{CALIBRATED} is right ~85% of the time and says 0.70; {CX} is right ~70% and says 0.40; \
         {MISCALIBRATED} flips a coin and says 0.95."
    ));

    let mut dice = Dice(199_807);
    let mut proposals = Vec::with_capacity(ROUNDS);
    let mut last_report = Timestamp(0);
    for round in 0..ROUNDS {
        let fraud = dice.chance(40);
        let risk_right = dice.chance(85);
        let cx_right = dice.chance(70);
        let coin = dice.chance(50);
        let amount = 40 + dice.next() % 2_400;
        let payment = format!("PAY-{}", 40_117 + round * 37);
        let mut created = acp_node::service::now();
        while created <= last_report {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            created = acp_node::service::now();
        }
        let p = Ask {
                domain: DOMAIN,
                policy: policy.id,
                kind: "payment.block",
                payload: format!(
                    r#"{{"payment":"{payment}","amount_eur":{amount},"merchant_category":"electronics","card_present":false}}"#
                ),
                confidence_bps: 5_000,
                stakes: amount * 100,
                evidence: vec![format!("auth-request:{payment}")],
                created_at: created,
                closes_at: created.plus_ms(WINDOW_MS),
            }
.sign(&gateway)?;
        play.publish("payment-gateway", &p).await?;
        let risk_block = fraud == risk_right;
        let cx_block = fraud == cx_right;
        let votes = [
            (
                CALIBRATED,
                &risk,
                block_if(risk_block),
                7_000,
                if risk_block {
                    "Device fingerprint seen on three disputed cards this week; amount is 4x this card's median."
                } else {
                    "Matches the cardholder's travel pattern and usual merchants; device known for two years."
                },
            ),
            (
                MISCALIBRATED,
                &velocity,
                block_if(coin),
                9_500,
                if coin {
                    "Velocity rule V2-17 fired: burst of card-not-present attempts. Certain fraud."
                } else {
                    "No velocity rule fired. Certainly legitimate."
                },
            ),
            (
                CX,
                &cx,
                block_if(cx_block),
                4_000,
                if cx_block {
                    "No 3-D Secure reply and a first purchase at this merchant; a block is defensible."
                } else {
                    "Loyal customer for six years; a false decline on this purchase risks churn."
                },
            ),
        ];
        let mut ids = Vec::with_capacity(votes.len());
        for (name, key, stance, conf, why) in votes {
            let r = build::response(key, &p, stance, conf, why, acp_node::service::now())?;
            ids.push(play.submit(name, &r).await?);
        }
        for id in &ids {
            play.net.wait_everywhere(id).await?;
        }
        // The outcome, known later in real life, is reported as soon as the
        // round is voted so the next payment's weights can learn from it.
        let (outcome, note) = if fraud {
            (Outcome::Succeeded, "chargeback filed: card was compromised")
        } else {
            (Outcome::Failed, "cardholder confirmed the purchase")
        };
        last_report = acp_node::service::now();
        let report = build::outcome_report_with_note(&reporter, &p, outcome, note, last_report)?;
        play.publish("payment-gateway", &report).await?;
        proposals.push((payment, amount, fraud, p));
    }

    out.line(
        "Waiting for both organizations' attestors to certify every round; \
         \"decided\" is the certified status...\n",
    );
    let left = format!(
        "{:>5} {:<10} {:>5}  {:<6} {:<10} ",
        "round", "payment", "EUR", "truth", "decided"
    );
    out.line(format!(
        "{:<w$}| {MISCALIBRATED:<25} | {CALIBRATED:>14} | {CX:>12}",
        "",
        w = left.len()
    ));
    out.line(format!(
        "{left}| {:<13} {:>5} {:>5} | {:>14} | {:>12}",
        "vote", "trust", "share", "trust", "trust"
    ));
    let share = |d: &Decided, agent: &Keypair| -> (u16, u16) {
        let t = &d.resolution.tally;
        d.resolution
            .votes
            .iter()
            .find(|v| v.responder == agent.public())
            .map_or((0, 0), |v| {
                let pot =
                    u128::from(v.authority_bps) * u128::from(BPS_ONE) * u128::from(v.trust_bps);
                let share = pot * u128::from(BPS_ONE) / u128::from(t.total_potential.max(1));
                (v.trust_bps, u16::try_from(share).unwrap_or(BPS_ONE))
            })
    };
    let mut rounds = Vec::with_capacity(ROUNDS);
    for (i, (payment, amount, fraud, p)) in proposals.into_iter().enumerate() {
        // The votes may also escalate a payment: its certificate is then
        // the escalation, and nobody decides it here.
        let d = play
            .settle(&p.id, |s| matches!(s, State::Certified | State::Escalated))
            .await?;
        let (mt, ms) = share(&d, &velocity);
        let (ct, _) = share(&d, &risk);
        let (xt, _) = share(&d, &cx);
        let v = d
            .resolution
            .votes
            .iter()
            .find(|v| v.responder == velocity.public());
        let vote = v.map_or_else(
            || "-".to_owned(),
            |v| {
                let right = (v.stance == Stance::Endorse) == fraud;
                format!(
                    "{} {}",
                    if v.stance == Stance::Endorse {
                        "block"
                    } else {
                        "allow"
                    },
                    if right { "(right)" } else { "(wrong)" }
                )
            },
        );
        let decided = match d.resolution.final_status() {
            Status::Approved => format!("block {}", if fraud { "(ok)" } else { "(x)" }),
            Status::Rejected => format!("allow {}", if fraud { "(x)" } else { "(ok)" }),
            other => show::status(other).to_owned(),
        };
        out.line(format!(
            "{:>5} {payment:<10} {amount:>5}  {:<6} {decided:<10} | {:<13} {:>5} {:>4}% | {:>14} | {:>12}",
            i + 1,
            if fraud { "fraud" } else { "legit" },
            vote,
            show::frac(mt),
            ms / 100,
            show::frac(ct),
            show::frac(xt),
        ));
        rounds.push(Round {
            fraud,
            decided: d,
            miscalibrated_trust: mt,
            miscalibrated_share: ms,
            calibrated_trust: ct,
            cx_trust: xt,
        });
    }
    out.line(format!("\nWhat each node holds for the {ROUNDS} rounds:"));
    for (i, n) in play.net.nodes.iter().enumerate() {
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for v in rounds.iter().filter_map(|r| r.decided.views.get(i)) {
            let by = v.certificate.as_ref().map_or(0, |c| c.organizations);
            *tally
                .entry(show::certification(v.state, by, v.organizations))
                .or_default() += 1;
        }
        let tally: Vec<String> = tally
            .into_iter()
            .map(|(what, count)| format!("{count} {what}"))
            .collect();
        out.line(format!("    node {:<18} {}", n.name, tally.join(", ")));
    }
    let table = play.ledger.trust(DOMAIN, &policy.id)?;
    let final_trust = (
        table.trust(&velocity.public()),
        table.trust(&risk.public()),
        table.trust(&cx.public()),
    );
    // Each node's own engine computes the same table from its own copy of the set.
    let tables = play.net.trust_tables().await?;
    for (n, t) in play.net.nodes.iter().zip(&tables) {
        let theirs = (
            t.get(&velocity.public()).copied(),
            t.get(&risk.public()).copied(),
            t.get(&cx.public()).copied(),
        );
        let ours = (
            Some(final_trust.0),
            Some(final_trust.1),
            Some(final_trust.2),
        );
        if theirs != ours {
            anyhow::bail!(
                "node {} computes trust {theirs:?}, expected {ours:?}",
                n.name
            );
        }
    }
    out.line(format!(
        "\nAfter all {ROUNDS} reports (the same on all {} nodes): {MISCALIBRATED} trust {}, {CALIBRATED} {}, {CX} {}.",
        tables.len(),
        show::frac(final_trust.0),
        show::frac(final_trust.1),
        show::frac(final_trust.2)
    ));
    if let (Some(first), Some(last)) = (rounds.first(), rounds.last()) {
        out.line(format!(
            "{MISCALIBRATED}'s share of the potential weight went from {}% to {}%; \
             every node computed every round with identical resolution digests and certificates.",
            first.miscalibrated_share / 100,
            last.miscalibrated_share / 100
        ));
    }
    Ok(FraudReport {
        rounds,
        final_trust,
    })
}
