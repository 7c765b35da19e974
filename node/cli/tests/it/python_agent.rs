//! The Python example agent (`examples/python/acp_agent.py`, standard
//! library only) follows a node's event stream and responds through the
//! sidecar API. Needs `python3` (see `harness::require`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::harness::*;
use acp_protocol::build::PolicyBuilder;
use acp_protocol::{Action, Body, Keypair, Proposal, Stance};

#[test]
fn python_agent_responds_through_the_api() {
    if !require("python3", "the example agent is a Python script") {
        return;
    }
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let k1 = Keypair::from_seed([31; 32]);
    let org = Keypair::from_seed([32; 32]);
    let policy = PolicyBuilder::new(DOMAIN)
        .organization_attested(&org, "acme", 10_000, &dir.agent.public())
        .member(&dir.agent.public(), 0, 5_000)
        .member(&k1.public(), 0, 5_000)
        .issued(1, now())
        .sign(&[&org])
        .unwrap();
    node.anchor(policy.id);
    node.post_message(&policy.bytes);
    let script = format!("{REPO}/examples/python/acp_agent.py");
    let mut agent = Command::new("python3")
        .arg(&script)
        .args(["--url", &node.http, "--domain", DOMAIN, "--count", "1"])
        .arg("--token-file")
        .arg(dir.path().join("api.token"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("watching"), "{first}");

    let t = now();
    let p = Body::Proposal(Proposal {
        proposer: k1.public(),
        domain: DOMAIN.into(),
        policy: policy.id,
        action: Action {
            kind: "loan.approve".into(),
            payload: r#"{"amount_eur":250000}"#.into(),
        },
        confidence_bps: 8000,
        stakes: 0,
        evidence: Vec::new(),
        created_at: t,
        closes_at: t.plus_ms(60_000),
        supersedes: None,
    })
    .sign(&[&k1])
    .unwrap();
    node.post_message(&p.bytes);
    let said = lines.next().unwrap().unwrap();
    assert!(said.starts_with("challenge"), "{said}");
    assert!(agent.wait().unwrap().success());
    let v = node.proposal(p.id);
    let c = &v.package.counted[0];
    assert_eq!(c.vote.responder, dir.agent.public());
    assert_eq!(c.vote.stance, Stance::Challenge);
    assert_eq!(c.vote.confidence_bps, 7000);
    assert!(c.response.reasoning.contains("above the limit"), "{v:?}");
}
