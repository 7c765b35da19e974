//! `acp demo`: four real `acp node` processes on loopback with fresh
//! temporary data directories, driven through their HTTP APIs. Three
//! organizations — credit risk, compliance, customer experience — each run
//! a node whose agent votes and attests for its organization; the loan desk
//! runs the fourth node, proposes, and holds the loan officer's key. Every
//! node trusts the domain's genesis policy before it is posted. A small loan
//! is approved and certified by the attestors of all three organizations; a
//! larger one splits the agents and escalates (the escalation is certified
//! too), the loan officer approves it, and the three attestors certify the
//! human's decision.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use acp_node::keys;
use acp_node::launch::{Launch, Started};
use acp_node::service::now;
use acp_node::surface::api::types::{
    AnchorAdded, AnchorBody, AnchorList, DecisionSubmitted, NewDecision, NewProposal, NewResponse,
    ProposalDetail, StatusBody, SubmittedBody,
};
use acp_node::surface::view::status_str;
use acp_protocol::build::PolicyBuilder;
use acp_protocol::finality::State;
use acp_protocol::{ContentId, DecisionRules, Keypair, Stance, Status, Verdict};
use anyhow::{Context, bail};
use serde_json::json;

use crate::client::{self, ApiClient};

const DOMAIN: &str = "loans.retail";

struct DemoNode {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    api: ApiClient,
    page: String,
    tcp: String,
    agent: Keypair,
    human: Keypair,
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    acp_node::launch::poll(Duration::from_secs(secs), f)
        .ok_or_else(|| anyhow::anyhow!("timed out waiting for {what}"))
}

fn start(
    exe: &Path,
    name: &'static str,
    dir: &Path,
    bootstrap: Option<&str>,
) -> anyhow::Result<DemoNode> {
    let launch = Launch::new(exe, dir).bootstrap(bootstrap);
    launch.init_loopback(DOMAIN, 2, &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])?;
    let agent = Keypair::from_seed(keys::read_seed_file(&dir.join(keys::AGENT_KEY_FILE))?);
    let human = Keypair::from_seed(keys::read_seed_file(&dir.join(keys::HUMAN_KEY_FILE))?);
    let token = std::fs::read_to_string(dir.join(keys::TOKEN_FILE))?;
    let Started {
        child, announced, ..
    } = launch
        .start()
        .with_context(|| format!("starting node {name}"))?;
    Ok(DemoNode {
        name,
        child,
        dir: dir.to_owned(),
        api: ApiClient::new(&format!("http://{}", announced.http), &token)?,
        page: announced.page,
        tcp: announced.tcp,
        agent,
        human,
    })
}

/// Runs the demo in a fresh temporary directory, removed afterwards.
pub fn run(keep_running: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let root: PathBuf =
        std::env::temp_dir().join(format!("acp-demo-{}-{}", std::process::id(), now().0));
    std::fs::create_dir_all(&root)?;
    let result = run_in(&exe, &root, keep_running);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!("node logs kept in {}", root.display());
    }
    result
}

fn short(k: &impl ToString) -> String {
    let s = k.to_string();
    s.get(..12).unwrap_or(&s).to_owned()
}

/// Waits until every node has the proposal (it travelled by gossip).
fn spread(nodes: &[&DemoNode], id: &ContentId) -> anyhow::Result<()> {
    for n in nodes {
        wait_for(15, "the proposal to reach every node", || {
            n.api
                .get::<ProposalDetail>(&format!("/proposals/{id}"))
                .ok()
                .map(|_| ())
        })?;
    }
    Ok(())
}

/// Waits until every node shows `id` in finality state `state` with status
/// `want`; returns each node's answer.
fn settled(
    nodes: &[&DemoNode],
    id: &ContentId,
    state: State,
    want: Status,
) -> anyhow::Result<Vec<ProposalDetail>> {
    wait_for(40, "every node to see the certificate", || {
        let mut out = Vec::new();
        for n in nodes {
            let v: ProposalDetail = n.api.get(&format!("/proposals/{id}")).ok()?;
            if v.finality.state != state || v.status != want {
                return None;
            }
            out.push(v);
        }
        Some(out)
    })
}

fn print_votes(nodes: &[&DemoNode], v: &ProposalDetail) {
    for c in &v.package.counted {
        let vote = &c.vote;
        let name = nodes
            .iter()
            .find(|n| n.agent.public() == vote.responder)
            .map_or_else(|| short(&vote.responder), |n| n.name.to_owned());
        println!(
            "    {name:<20} {:<9} confidence {}  authority {}  trust {}  weight {}",
            client::name_of(&vote.stance),
            client::conf(vote.confidence_bps),
            client::conf(vote.authority_bps),
            client::conf(vote.trust_bps),
            vote.weight
        );
    }
}

/// Prints each node's view of the certificate; fails unless every node
/// holds the same certified result.
fn print_agreement(nodes: &[&DemoNode], answers: &[ProposalDetail]) -> anyhow::Result<()> {
    for (n, v) in nodes.iter().zip(answers) {
        println!(
            "    {:<20} {:<9} certified resolution {}",
            n.name,
            status_str(v.status),
            v.finality
                .certificate
                .as_ref()
                .map_or_else(|| "?".to_owned(), |c| c.resolution.to_string())
        );
    }
    if !answers
        .windows(2)
        .all(|w| w[0].finality.certificate == w[1].finality.certificate)
    {
        bail!("the nodes hold different certificates");
    }
    let names: Vec<&str> = answers
        .first()
        .and_then(|a| a.finality.certificate.as_ref())
        .into_iter()
        .flat_map(|c| &c.organizations)
        .filter_map(|o| o.name.as_deref())
        .collect();
    println!("  signed by the attestors of: {}", names.join(", "));
    Ok(())
}

/// The first node's finality summary.
fn summary_of(answers: &[ProposalDetail]) -> &str {
    answers.first().map_or("?", |a| a.finality.summary.as_str())
}

fn respond_all(
    proposal: &ContentId,
    votes: &[(&DemoNode, Stance, f64, &str)],
) -> anyhow::Result<()> {
    for (n, stance, confidence, why) in votes {
        let _: SubmittedBody = n.api.post(
            &format!("/proposals/{proposal}/responses"),
            &NewResponse {
                stance: *stance,
                confidence: *confidence,
                reasoning: (*why).to_owned(),
                evidence: Vec::new(),
            },
        )?;
        println!(
            "  {:<20} {:<9} confidence {confidence:.2}  \"{why}\"",
            n.name,
            client::name_of(stance)
        );
    }
    Ok(())
}

fn run_in(exe: &Path, root: &Path, keep_running: bool) -> anyhow::Result<()> {
    println!(
        "Starting four nodes on 127.0.0.1 (data in {})",
        root.display()
    );
    let desk = start(exe, "loan-desk", &root.join("loan-desk"), None)?;
    // One at a time: each start waits for the node's announcement.
    let [risk, comp, cx] = ["credit-risk", "compliance", "customer-experience"]
        .map(|name| start(exe, name, &root.join(name), Some(&desk.tcp)));
    let (risk, comp, cx) = (risk?, comp?, cx?);
    let nodes = [&desk, &risk, &comp, &cx];
    wait_for(20, "the nodes to connect", || {
        desk.api
            .get::<StatusBody>("/status")
            .ok()
            .filter(|v| v.node.peers.len() >= 3)
    })?;
    for n in &nodes {
        println!(
            "  {:<20} agent {}  {}",
            n.name,
            short(&n.agent.public()),
            n.api.base()
        );
    }

    // The domain's genesis policy: three organizations, each with its own
    // root key, its voting agent, and that agent's node as its attestor (the
    // key whose receipts count for it). The loan desk may propose without
    // voting; the loan officer (the human key on the loan desk's node)
    // decides escalations.
    let roots: Vec<Keypair> = (0..3)
        .map(|_| keys::random_seed().map(Keypair::from_seed))
        .collect::<Result<_, _>>()?;
    let policy = PolicyBuilder::new(DOMAIN)
        .organization_attested(&roots[0], "Credit Risk", 10_000, &risk.agent.public())
        .organization_attested(&roots[1], "Compliance", 10_000, &comp.agent.public())
        .organization_attested(&roots[2], "Customer Experience", 10_000, &cx.agent.public())
        .member(&risk.agent.public(), 0, 6_000)
        .member(&comp.agent.public(), 1, 5_000)
        .member(&cx.agent.public(), 2, 3_000)
        .proposer(&desk.agent.public())
        .human(&desk.human.public())
        .reporter(&desk.agent.public())
        .rules(DecisionRules {
            quorum_margin_bps: 2_000,
            min_participation_bps: 5_000,
            low_confidence_bps: 3_000,
            high_stakes: Some(250_000),
            min_window_ms: 1_000,
            max_window_ms: 3_600_000,
        })
        .issued(1, now())
        .sign(&roots.iter().collect::<Vec<_>>())?;
    let pid = policy.id.to_string();
    println!("\nGenesis policy {pid} for {DOMAIN}");
    println!(
        "  organizations: Credit Risk, Compliance, Customer Experience; each node's agent attests \
         for its organization, and a result is final once all 3 attestors sign it"
    );
    println!(
        "  authority: credit-risk 0.60, compliance 0.50, customer-experience 0.30; \
         margin 20%, participation 50%, stakes >= 250000 go to a human"
    );
    // Each node trusts this genesis before the policy reaches it: without
    // an anchor a node admits nothing of the domain.
    for n in &nodes {
        let anchor = AnchorBody {
            domain: DOMAIN.to_owned(),
            genesis: pid.clone(),
        };
        n.api
            .post::<AnchorAdded>("/anchors", &anchor)
            .with_context(|| format!("adding the trust anchor on {}", n.name))?;
    }
    println!(
        "  every node trusts it as the domain's genesis (POST /v1/anchors, kept in config.toml)"
    );
    desk.api.post_bytes("/messages", policy.bytes.clone())?;
    for n in &nodes[1..] {
        wait_for(15, "the policy to spread", || {
            n.api
                .get::<AnchorList>("/anchors")
                .ok()
                .filter(|v| v.anchors.iter().any(|x| x.current == Some(policy.id)))
        })?;
    }

    // Case 1: a small loan the agents agree on.
    println!("\n1. loan-desk proposes (the node signs with its agent key):");
    let p1: SubmittedBody = desk.api.post(
        "/proposals",
        &NewProposal {
            domain: DOMAIN.to_owned(),
            policy: None,
            kind: "loan.approve".to_owned(),
            payload: json!({"applicant": "A-1042", "amount_eur": 25000, "term_months": 48}),
            confidence: 0.8,
            stakes: 25000,
            evidence: vec!["credit-report:A-1042".to_owned()],
            closes_in_ms: 4000,
            supersedes: None,
        },
    )?;
    let p1 = p1.id;
    println!("  loan.approve {{applicant A-1042, 25000 EUR, 48 months}}  id {p1}");
    spread(&nodes, &p1)?;
    println!("  each agent responds from its own node:");
    respond_all(
        &p1,
        &[
            (
                &risk,
                Stance::Endorse,
                0.9,
                "score 742, debt-to-income 0.21, no defaults",
            ),
            (
                &comp,
                Stance::Endorse,
                0.8,
                "KYC complete, no sanctions hits",
            ),
            (
                &cx,
                Stance::Endorse,
                0.7,
                "customer for 9 years, salary account",
            ),
        ],
    )?;
    println!("  waiting for the attestors' receipts...");
    let answers = settled(&nodes, &p1, State::Certified, Status::Approved)?;
    println!("  weights (authority x confidence x trust) as every node counted them:");
    print_votes(&nodes, &answers[0]);
    println!("  the certificate as each node holds it:");
    print_agreement(&nodes, &answers)?;
    println!(
        "  => {}; all four nodes hold the same certificate, with no coordinator.",
        summary_of(&answers)
    );

    // Case 2: a large loan that splits the agents.
    println!("\n2. loan-desk proposes a larger loan:");
    let p2: SubmittedBody = desk.api.post(
        "/proposals",
        &NewProposal {
            domain: DOMAIN.to_owned(),
            policy: None,
            kind: "loan.approve".to_owned(),
            payload: json!({"applicant": "B-2077", "amount_eur": 480000, "term_months": 240}),
            confidence: 0.6,
            stakes: 480000,
            evidence: vec![
                "credit-report:B-2077".to_owned(),
                "valuation:flat-31".to_owned(),
            ],
            closes_in_ms: 4000,
            supersedes: None,
        },
    )?;
    let p2 = p2.id;
    println!("  loan.approve {{applicant B-2077, 480000 EUR, 20 years}}  id {p2}");
    spread(&nodes, &p2)?;
    respond_all(
        &p2,
        &[
            (
                &risk,
                Stance::Endorse,
                0.65,
                "collateral covers 80% of the amount",
            ),
            (
                &comp,
                Stance::Challenge,
                0.9,
                "source of the down payment is not documented",
            ),
            (
                &cx,
                Stance::Endorse,
                0.6,
                "long-standing customer, first mortgage",
            ),
        ],
    )?;
    println!("  waiting for the close and the attestors' receipts...");
    let answers = settled(&nodes, &p2, State::Escalated, Status::Escalated)?;
    println!("  weights (authority x confidence x trust):");
    print_votes(&nodes, &answers[0]);
    let first = answers.first().context("no node answered")?;
    let reasons: Vec<String> = first.reasons.iter().map(client::name_of).collect();
    println!(
        "  tally: endorse {} vs challenge {} (margin 20%)",
        first.tally.endorse, first.tally.challenge
    );
    print_agreement(&nodes, &answers)?;
    println!(
        "  => escalated to a human: {}; {}",
        reasons.join(", "),
        summary_of(&answers)
    );
    println!(
        "\n  The loan officer reads the decision package on the escalation page and approves \
         (signed with the human key on loan-desk):"
    );
    // The nodes listen on ephemeral ports, so commands name the API address.
    let desk_cli = |cmd: &str| {
        format!(
            "acp --data-dir {} {cmd} --url {}",
            desk.dir.display(),
            desk.api.base()
        )
    };
    println!(
        "    {}",
        desk_cli(&format!(
            "decide {p2} approve --rationale \"down payment documented by phone\""
        ))
    );
    let _: DecisionSubmitted = desk.api.post(
        &format!("/proposals/{p2}/decision"),
        &NewDecision {
            verdict: Verdict::Approve,
            rationale: "down payment documented by phone".to_owned(),
        },
    )?;
    println!("  waiting for the attestors to certify the human's decision...");
    let answers = settled(&nodes, &p2, State::Certified, Status::Approved)?;
    print_agreement(&nodes, &answers)?;
    println!("  => {}", summary_of(&answers));
    println!(
        "\nWhere to look at it{}:",
        if keep_running {
            ""
        } else {
            "; these stop when the demo ends, `acp demo --keep-running` keeps them up"
        }
    );
    println!("  the escalation page: {}", desk.page);
    println!("  the command line:    {}", desk_cli(&format!("show {p2}")));
    println!(
        "  the audit bundle:    {} && acp audit verify p2.bundle --genesis {pid}",
        desk_cli(&format!("audit export {p2} --out p2.bundle"))
    );
    if keep_running {
        println!(
            "\nThe network and the page stay up (--keep-running). A proposal with stakes of \
             250000 or more escalates to the page:\n  {}\nPress Ctrl-C to stop; \
             the temporary data is removed.",
            desk_cli(&format!(
                "propose --domain {DOMAIN} --kind loan.approve --stakes 300000 --closes-in-ms 10000"
            ))
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(tokio::signal::ctrl_c())?;
        println!("stopped");
    }
    Ok(())
}
