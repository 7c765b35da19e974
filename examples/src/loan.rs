//! Loan approval inside one bank. Northwind Bank's credit-risk, compliance
//! and customer-experience units each run an agent on its own node; the
//! loan-origination agent proposes, the three units respond with their
//! reasoning, and every node resolves. Each unit's agent node attests for
//! its unit: once all three sign the same result it is certified. One
//! application is approved, one rejected.

use acp_protocol::build::{self, Ask, PolicyBuilder};
use acp_protocol::finality::State;
use acp_protocol::{Keypair, Stance};

use crate::msg;
use crate::play::{Decided, Play};
use crate::show::{self, Names, Out};

/// The domain.
pub const DOMAIN: &str = "loans.retail";
const WINDOW_MS: u64 = 3_000;

/// What the scenario decided.
#[derive(Debug, Clone)]
pub struct LoanReport {
    /// The car loan every unit backs.
    pub approved: Decided,
    /// The personal loan credit risk and compliance challenge.
    pub rejected: Decided,
}

type Vote<'a> = (&'a str, Stance, u16, &'a str, &'a [&'a str]);

/// Runs the scenario.
pub async fn run(out: &mut Out) -> anyhow::Result<LoanReport> {
    let units = ["Credit Risk", "Compliance", "Customer Experience"];
    let roots: Vec<Keypair> = (0..units.len())
        .map(|_| msg::fresh_key())
        .collect::<anyhow::Result<_>>()?;
    let agents = [
        "loan-origination",
        "credit-risk",
        "compliance",
        "customer-experience",
    ];
    let keys: Vec<Keypair> = (0..agents.len())
        .map(|_| msg::fresh_key())
        .collect::<anyhow::Result<_>>()?;
    let mut names = Names::default();
    for (a, k) in agents.iter().zip(&keys) {
        names.add(k.public(), a);
    }

    // Each unit signs the policy with its own root key and names its agent's
    // node as the unit's attestor: that node's receipts count for the unit.
    // Credit risk carries the most authority; the origination agent may
    // propose but does not vote.
    let mut builder = PolicyBuilder::new(DOMAIN).proposer(&keys[0].public());
    for (i, (unit, root)) in units.iter().zip(&roots).enumerate() {
        builder = builder.organization_attested(
            root,
            &format!("Northwind Bank / {unit}"),
            10_000,
            &keys[i + 1].public(),
        );
    }
    let policy = builder
        .member(&keys[1].public(), 0, 10_000)
        .member(&keys[2].public(), 1, 8_000)
        .member(&keys[3].public(), 2, 6_000)
        .issued(1, acp_node::service::now())
        .sign(&[&roots[0], &roots[1], &roots[2]])?;

    out.line("Northwind Bank: loan approval across three units, one node per agent on 127.0.0.1");
    let pairs: Vec<(&str, &Keypair)> = agents.iter().copied().zip(&keys).collect();
    let mut play = Play::start(&policy, &pairs, names).await?;
    for n in &play.net.nodes {
        out.line(format!("  node {:<20} {}", n.name, n.addr));
    }
    out.line(format!(
        "Policy {} for {DOMAIN}, signed by the three units and every node's trust anchor: \
         credit-risk authority 1.00, compliance 0.80, customer-experience 0.60; margin 10%, \
         half the weight must respond; each unit's agent node attests for it",
        show::id(&policy.id)
    ));

    let applications = [
        (
            r#"{"applicant":"A-2291","product":"car loan","amount_eur":18000,"term_months":60}"#,
            1_800_000u64,
            "application:A-2291",
            [
                (
                    "credit-risk",
                    Stance::Endorse,
                    8_200,
                    "Debt-to-income 24% after the loan, internal score 731, six years with the same employer.",
                    &["bureau-report:A-2291"][..],
                ),
                (
                    "compliance",
                    Stance::Endorse,
                    9_000,
                    "KYC complete, no sanctions or PEP hits, affordability check passed.",
                    &["kyc:A-2291"][..],
                ),
                (
                    "customer-experience",
                    Stance::Endorse,
                    6_000,
                    "Customer for nine years and holds a pre-approved offer; a decision today keeps the dealer sale.",
                    &[][..],
                ),
            ] as [Vote<'_>; 3],
        ),
        (
            r#"{"applicant":"A-2307","product":"personal loan","amount_eur":45000,"term_months":84}"#,
            4_500_000u64,
            "application:A-2307",
            [
                (
                    "credit-risk",
                    Stance::Challenge,
                    8_800,
                    "Debt-to-income would reach 58%; two missed card payments in the last twelve months.",
                    &["bureau-report:A-2307"][..],
                ),
                (
                    "compliance",
                    Stance::Challenge,
                    7_000,
                    "Payslips do not match the salary credits on the bank statements; income unverified.",
                    &["statements:A-2307"][..],
                ),
                (
                    "customer-experience",
                    Stance::Endorse,
                    5_000,
                    "Long-standing customer, but the amount is above what we would normally offer.",
                    &[][..],
                ),
            ],
        ),
    ];

    // Both applications are open at once.
    let mut proposals = Vec::new();
    for (payload, stakes, evidence, _) in &applications {
        let created_at = acp_node::service::now();
        let p = Ask {
            domain: DOMAIN,
            policy: policy.id,
            kind: "loan.approve",
            payload: (*payload).to_owned(),
            confidence_bps: 7_500,
            stakes: *stakes,
            evidence: vec![(*evidence).to_owned()],
            created_at,
            closes_at: created_at.plus_ms(WINDOW_MS),
        }
        .sign(&keys[0])?;
        play.submit("loan-origination", &p).await?;
        out.line(format!(
            "loan-origination proposes loan.approve {payload}  [{}] (closes in {} s)",
            show::id(&p.id),
            WINDOW_MS / 1000
        ));
        proposals.push(p);
    }
    for ((_, _, _, votes), p) in applications.iter().zip(&proposals) {
        play.net.wait_everywhere(&p.id).await?;
        for (agent, stance, conf, why, evidence) in votes {
            let key = play.net.node(agent)?.agent.clone();
            let r = build::response_with_evidence(
                &key,
                p,
                *stance,
                *conf,
                why,
                evidence,
                acp_node::service::now(),
            )?;
            play.submit(agent, &r).await?;
        }
    }

    out.line("Waiting for the three units' attestors to certify both results...");
    let mut decided = Vec::new();
    for (p, (payload, _, _, _)) in proposals.iter().zip(&applications) {
        let d = play.settle(&p.id, |s| s == State::Certified).await?;
        out.line(format!("\n{payload}: {}", d.headline()));
        play.print(out, &d)?;
        decided.push(d);
    }
    let mut it = decided.into_iter();
    match (it.next(), it.next()) {
        (Some(approved), Some(rejected)) => Ok(LoanReport { approved, rejected }),
        _ => anyhow::bail!("missing a decision"),
    }
}
