//! Marketing against finance on campaign spend. Lumen Outdoor's marketing
//! agents back a €250,000 spring campaign; the finance agents challenge it.
//! Neither side beats the other by the policy's margin, so the votes
//! escalate, and both organizations' attestors certify the escalation. The
//! CFO, whose key the policy lists as a decider, reads the decision package
//! and approves through the finance node's sidecar HTTP API, which signs the
//! HumanDecision with her key; the attestors then sign the result her
//! decision settles, and every node holds that certificate: approved.

use acp_node::surface::api::types::{DecisionSubmitted, NewDecision};
use acp_protocol::build::{self, Ask, PolicyBuilder};
use acp_protocol::finality::State;
use acp_protocol::{BPS_ONE, ContentId, Keypair, Stance, Verdict};
use anyhow::{anyhow, bail};

use crate::http;
use crate::msg;
use crate::play::{Decided, Play};
use crate::show::{self, Names, Out};

/// The domain.
pub const DOMAIN: &str = "marketing.spend";
const WINDOW_MS: u64 = 3_000;

/// What the scenario decided.
#[derive(Debug, Clone)]
pub struct SpendReport {
    /// The proposal with its escalation certified.
    pub escalated: Decided,
    /// The same proposal with the CFO's result certified.
    pub decided: Decided,
    /// The CFO's signed decision.
    pub human_decision: ContentId,
}

/// Runs the scenario.
pub async fn run(out: &mut Out) -> anyhow::Result<SpendReport> {
    let marketing = msg::fresh_key()?;
    let finance = msg::fresh_key()?;
    let cfo = msg::fresh_key()?;
    // (agent, organization index, stance, confidence, reasoning)
    let voters: [(&str, u16, Stance, u16, &str); 4] = [
        (
            "brand-strategy",
            0,
            Stance::Endorse,
            8_000,
            "Last spring's campaign lifted aided awareness 6 points; the new trail-running \
             line launches in March and needs the reach.",
        ),
        (
            "performance-marketing",
            0,
            Stance::Endorse,
            7_000,
            "Paid social CAC is 12% under target and CTV tests returned 2.1x ROAS; the plan \
             scales what already works.",
        ),
        (
            "fpa-analyst",
            1,
            Stance::Challenge,
            8_500,
            "Q1 opex is 94% committed; the modeled payback is 14 months against the 9-month \
             spend policy.",
        ),
        (
            "treasury",
            1,
            Stance::Challenge,
            7_000,
            "Cash buffer dips below six weeks in February if this and the warehouse lease both \
             land in Q1.",
        ),
    ];
    let planner = msg::fresh_key()?;
    let keys: Vec<Keypair> = voters
        .iter()
        .map(|_| msg::fresh_key())
        .collect::<anyhow::Result<_>>()?;
    let mut names = Names::default();
    names.add(planner.public(), "campaign-planner");
    names.add(cfo.public(), "Dana Okafor (CFO)");
    let mut pairs: Vec<(&str, &Keypair)> = vec![("campaign-planner", &planner)];
    for (v, k) in voters.iter().zip(&keys) {
        names.add(k.public(), v.0);
        pairs.push((v.0, k));
    }

    // Each side's lead agent node attests for it (brand strategy for
    // marketing, the FP&A analyst for finance); the planner may propose
    // without a vote.
    let attestor = |org: u16| {
        voters
            .iter()
            .zip(&keys)
            .find(|(v, _)| v.1 == org)
            .map(|(_, k)| k.public())
            .ok_or_else(|| anyhow!("organization {org} has no agent to attest for it"))
    };
    let mut builder = PolicyBuilder::new(DOMAIN)
        .organization_attested(
            &marketing,
            "Lumen Outdoor / Marketing",
            BPS_ONE,
            &attestor(0)?,
        )
        .organization_attested(&finance, "Lumen Outdoor / Finance", BPS_ONE, &attestor(1)?)
        .proposer(&planner.public())
        .human(&cfo.public());
    for (v, k) in voters.iter().zip(&keys) {
        builder = builder.member(&k.public(), v.1, BPS_ONE);
    }
    let policy = builder
        .issued(1, acp_node::service::now())
        .sign(&[&marketing, &finance])?;

    out.line("Lumen Outdoor: marketing and finance agents on campaign spend, one node per agent");
    let mut play = Play::start(&policy, &pairs, names).await?;
    out.line(format!(
        "Policy {} signed by marketing and finance and every node's trust anchor: four agents \
         at authority 1.00, margin 10%; brand-strategy attests for marketing, fpa-analyst for \
         finance; escalations are decided by the CFO's key",
        show::id(&policy.id)
    ));

    let payload = r#"{"campaign":"Spring Trail 2027","budget_eur":250000,"channels":["paid social","connected TV"],"quarter":"Q1"}"#;
    let created_at = acp_node::service::now();
    let p = Ask {
        domain: DOMAIN,
        policy: policy.id,
        kind: "campaign.launch",
        payload: payload.to_owned(),
        confidence_bps: 8_000,
        stakes: 25_000_000,
        evidence: vec!["media-plan:ST27-v3".into(), "brand-lift:SPR26".into()],
        created_at,
        closes_at: created_at.plus_ms(WINDOW_MS),
    }
    .sign(&planner)?;
    play.publish("campaign-planner", &p).await?;
    out.line(format!(
        "campaign-planner proposes campaign.launch {payload}  [{}]",
        show::id(&p.id)
    ));
    for (v, k) in voters.iter().zip(&keys) {
        let r = build::response(k, &p, v.2, v.3, v.4, acp_node::service::now())?;
        play.submit(v.0, &r).await?;
    }

    out.line("Waiting for both organizations' attestors to certify the result of the votes...");
    let escalated = play.settle(&p.id, |s| s == State::Escalated).await?;
    out.line(format!(
        "\n{}: the votes settle nothing, a human decides. The decision package every node holds:",
        escalated.headline()
    ));
    play.print(out, &escalated)?;

    let rationale = "Approved: the campaign is tied to the March product launch. Finance's \
                     payback concern stands; the spend is funded by moving the Q2 trade-show \
                     budget, keeping Q1 opex flat.";
    // The CFO decides through the finance node's sidecar API, which signs
    // with the human key the policy lists (the escalation page does the same).
    let (api, token) = play.net.serve_api("fpa-analyst", Some(cfo.clone())).await?;
    let path = format!("/v1/proposals/{}/decision", p.id);
    let (code, answer): (u16, DecisionSubmitted) = http::request(
        api,
        &token,
        "POST",
        &path,
        Some(&NewDecision {
            verdict: Verdict::Approve,
            rationale: rationale.to_owned(),
        }),
    )
    .await?;
    if code != 201 {
        bail!("the API took the decision with {code}, not 201 (it already held it)");
    }
    let decision_id = answer.id;
    let decision = play.net.message("fpa-analyst", &decision_id).await?;
    play.ledger.record(&decision);
    play.net.wait_everywhere(&decision.id).await?;
    out.line(format!(
        "\nDana Okafor (CFO) approves on the finance node's API: POST {} -> {code}, \
         decision [{}] signed with her key:\n    \"{rationale}\"",
        path.replace(&p.id.to_string(), "<id>"),
        show::id(&decision.id)
    ));
    let decided = play.settle(&p.id, |s| s == State::Certified).await?;
    out.line(format!(
        "The attestors sign the result her decision settles: {}",
        decided.headline()
    ));
    let pkg = play.ledger.package(decided.resolution.clone())?;
    show::certificate(out, &pkg, &play.names);
    show::views(out, &decided.views);
    out.line(format!(
        "    human decision counted: {}",
        decided
            .resolution
            .human_decision
            .as_ref()
            .map_or_else(|| "none".to_owned(), show::id)
    ));
    Ok(SpendReport {
        escalated,
        decided,
        human_decision: decision.id,
    })
}
