//! Cross-organization supply chain: should a delayed shipment be expedited
//! by air? A manufacturer (Acme Motors), a logistics provider (FastFreight)
//! and a retailer (MegaMart) each hold their own root key and sign one policy
//! that caps every organization at a quarter of the domain's potential
//! weight. The retailer runs three inventory agents that all want the
//! shipment expedited; the cap keeps their numbers from out-voting the two
//! other organizations, and the proposal is rejected where an uncapped count
//! would have approved it. Each organization certifies the result through
//! the node of one of its agents, its attestor.

use acp_protocol::build::{self, Ask, PolicyBuilder};
use acp_protocol::finality::State;
use acp_protocol::{BPS_ONE, Keypair, Stance};

use crate::msg;
use crate::play::{Decided, Play};
use crate::show::{self, Names, Out};

/// The domain.
pub const DOMAIN: &str = "logistics.expedite";
/// Each organization's cap, in basis points of the total potential weight.
pub const ORG_CAP_BPS: u16 = 2_500;
const WINDOW_MS: u64 = 3_000;
const RETAILER: &str = "MegaMart (retailer)";

/// What the scenario decided.
#[derive(Debug, Clone)]
pub struct SupplyReport {
    /// The expedite proposal, settled.
    pub decided: Decided,
    /// The retailer's index in the policy's organizations.
    pub retailer: u16,
    /// The endorsement weight had no cap applied (sum of raw endorsements).
    pub uncapped_endorse: u64,
}

struct Agent {
    name: &'static str,
    org: usize,
    stance: Stance,
    confidence: u16,
    reasoning: &'static str,
}

/// Runs the scenario.
pub async fn run(out: &mut Out) -> anyhow::Result<SupplyReport> {
    let orgs = [
        "Acme Motors (manufacturer)",
        "FastFreight (logistics)",
        RETAILER,
    ];
    let roots: Vec<Keypair> = (0..orgs.len())
        .map(|_| msg::fresh_key())
        .collect::<anyhow::Result<_>>()?;
    let voters = [
        Agent {
            name: "acme-demand-forecast",
            org: 0,
            stance: Stance::Challenge,
            confidence: 9_000,
            reasoning: "Sell-through of the e-bike battery pack fell 18% in four weeks; \
                        network cover is 19 days if the DCs rebalance, and the ship lands in 12.",
        },
        Agent {
            name: "fastfreight-routing",
            org: 1,
            stance: Stance::Challenge,
            confidence: 8_000,
            reasoning: "Rail from Koper arrives three days after air at a fifth of the cost \
                        and still beats every stockout date.",
        },
        Agent {
            name: "megamart-inventory-east",
            org: 2,
            stance: Stance::Endorse,
            confidence: 9_000,
            reasoning: "East DC runs out in 6 days; 41 stores would show empty shelves.",
        },
        Agent {
            name: "megamart-inventory-west",
            org: 2,
            stance: Stance::Endorse,
            confidence: 9_000,
            reasoning: "West DC is below safety stock and the spring promotion starts Monday.",
        },
        Agent {
            name: "megamart-inventory-central",
            org: 2,
            stance: Stance::Endorse,
            confidence: 8_500,
            reasoning: "Central cannot cover the other DCs; it is short on the same SKU.",
        },
    ];
    let tracker = msg::fresh_key()?;
    let keys: Vec<Keypair> = voters
        .iter()
        .map(|_| msg::fresh_key())
        .collect::<anyhow::Result<_>>()?;
    let mut names = Names::default();
    names.add(tracker.public(), "fastfreight-tracker");
    let mut pairs: Vec<(&str, &Keypair)> = vec![("fastfreight-tracker", &tracker)];
    for (a, k) in voters.iter().zip(&keys) {
        names.add(k.public(), a.name);
        pairs.push((a.name, k));
    }

    // Each organization's attestor is the node of its first agent listed;
    // the tracker may propose without a vote.
    let mut builder = PolicyBuilder::new(DOMAIN).proposer(&tracker.public());
    for (i, (root, name)) in roots.iter().zip(orgs).enumerate() {
        let attestor = voters
            .iter()
            .zip(&keys)
            .find(|(a, _)| a.org == i)
            .map(|(_, k)| k.public())
            .ok_or_else(|| anyhow::anyhow!("{name} has no agent to attest for it"))?;
        builder = builder.organization_attested(root, name, ORG_CAP_BPS, &attestor);
    }
    for (a, k) in voters.iter().zip(&keys) {
        builder = builder.member(&k.public(), a.org as u16, BPS_ONE);
    }
    let body = builder.clone().body();
    let retailer =
        body.organizations
            .iter()
            .position(|o| o.name == RETAILER)
            .ok_or_else(|| anyhow::anyhow!("retailer missing from the policy"))? as u16;
    let policy = builder
        .issued(1, acp_node::service::now())
        .sign(&[&roots[0], &roots[1], &roots[2]])?;

    out.line("Supply chain: three organizations, six agents, one node per agent on 127.0.0.1");
    let mut play = Play::start(&policy, &pairs, names).await?;
    out.line(format!(
        "Policy {} signed by all three root keys and every node's trust anchor: every agent \
         authority 1.00, each organization capped at {}% of the potential weight; attestors: {}",
        show::id(&policy.id),
        ORG_CAP_BPS / 100,
        body.organizations
            .iter()
            .map(|o| format!("{} for {}", play.names.of(&o.attestor), o.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let payload = r#"{"shipment":"SHP-88213","cargo":"1200 e-bike battery packs","from":"Acme Ostrava plant","to":"MegaMart DCs","mode":"air","extra_cost_eur":14200}"#;
    let created_at = acp_node::service::now();
    let p = Ask {
        domain: DOMAIN,
        policy: policy.id,
        kind: "shipment.expedite",
        payload: payload.to_owned(),
        confidence_bps: 6_000,
        stakes: 1_420_000,
        evidence: vec!["port-notice:KOP-2026-311 (strike, 9 days)".into()],
        created_at,
        closes_at: created_at.plus_ms(WINDOW_MS),
    }
    .sign(&tracker)?;
    play.publish("fastfreight-tracker", &p).await?;
    out.line(format!(
        "fastfreight-tracker proposes shipment.expedite {payload}  [{}]",
        show::id(&p.id)
    ));
    for (a, k) in voters.iter().zip(&keys) {
        let r = build::response(
            k,
            &p,
            a.stance,
            a.confidence,
            a.reasoning,
            acp_node::service::now(),
        )?;
        play.submit(a.name, &r).await?;
    }

    out.line("Waiting for the three organizations' attestors to certify the result...");
    let d = play.settle(&p.id, |s| s == State::Certified).await?;
    out.line(format!("\nExpedite SHP-88213 by air: {}", d.headline()));
    play.print(out, &d)?;

    let t = &d.resolution.tally;
    out.line("    per organization (weights before and after the cap):");
    out.line(format!(
        "      {:<28} {:>8} {:>10} {:>7} {:>8}",
        "organization", "endorse", "challenge", "cap", "counted"
    ));
    for o in &t.organizations {
        let name = body
            .organizations
            .get(usize::from(o.organization))
            .map_or("?", |x| x.name.as_str());
        let counted = o.endorse.min(o.cap) + o.challenge.min(o.cap);
        out.line(format!(
            "      {:<28} {:>8} {:>10} {:>7} {:>8}{}",
            name,
            show::weight(o.endorse),
            show::weight(o.challenge),
            show::weight(o.cap),
            show::weight(counted),
            if o.endorse > o.cap || o.challenge > o.cap {
                "  <- capped"
            } else {
                ""
            }
        ));
    }
    let uncapped_endorse: u64 = t.organizations.iter().map(|o| o.endorse).sum();
    out.line(format!(
        "    Without the cap the retailer's three agents would put E at {} against C = {} and \
         approve; capped, E = {} and the other two organizations' challenge carries.",
        show::weight(uncapped_endorse),
        show::weight(t.challenge),
        show::weight(t.endorse)
    ));
    Ok(SupplyReport {
        decided: d,
        retailer,
        uncapped_endorse,
    })
}
