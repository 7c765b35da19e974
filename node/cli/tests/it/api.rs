//! The sidecar HTTP API and the CLI as its client, against one node (in
//! process, on an `acp init` directory): auth, typed errors, trust anchors (API and CLI, kept in config.toml), the
//! confidence rule, proposals, responses, certification by the node's own
//! receipts (its agent attests for the policy's one organization), an
//! escalation decided by the node's human key and certified, outcome
//! reports, trust, the event stream, audit export and offline verification
//! (any changed byte is rejected, another genesis is refused).

use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use acp_node::surface::api::types::AuditVerified;
use acp_protocol::resolve::Reason;
use acp_protocol::{Keypair, Stance};
use serde_json::json;

/// Policy: the node's agent (also the one organization's attestor) and two
/// outside agents vote; the node's human key decides escalations; its
/// reporter key reports outcomes. Anchored through the CLI, then posted.
fn setup(dir: &DataDir, node: &TestNode, k1: &Keypair, k2: &Keypair) -> String {
    let org = Keypair::from_seed([7; 32]);
    let human = dir.key("human.key");
    let reporter = dir.key("reporter.key");
    let policy = acme_policy(
        &org,
        &dir.agent.public(),
        &[&k1.public(), &k2.public()],
        Some(&human.public()),
        Some(&reporter.public()),
    );
    // Before the anchor the node refuses the policy: 403 with the reason.
    let (s, v) = node.post_refused(&policy.bytes);
    assert_eq!(s, 403);
    assert_eq!(
        (v.code.as_str(), v.reason.as_deref()),
        ("not_authorized", Some("no_anchor")),
        "{v:?}"
    );
    let genesis = policy.id.to_string();
    let out = ok(&acp(
        dir.path(),
        &[
            "anchor",
            "add",
            "--domain",
            DOMAIN,
            "--genesis",
            &genesis,
            "--url",
            &node.http,
        ],
    ));
    assert_eq!(out.trim(), format!("anchor {DOMAIN} {genesis}"));
    // Again: idempotent. Another genesis: refused, the anchor kept.
    let out = ok(&acp(
        dir.path(),
        &[
            "anchor",
            "add",
            "--domain",
            DOMAIN,
            "--genesis",
            &genesis,
            "--url",
            &node.http,
        ],
    ));
    assert!(out.contains("already there"), "{out}");
    let other = format!("1220{}", "cd".repeat(32));
    let (s, v) = node.refused(
        "POST",
        "/anchors",
        Some(json!({"domain": DOMAIN, "genesis": other})),
    );
    assert_eq!((s, v.code.as_str()), (409, "anchor_exists"));
    let (s, v) = node.refused(
        "POST",
        "/anchors",
        Some(json!({"domain": "not.joined", "genesis": other})),
    );
    assert_eq!((s, v.code.as_str()), (409, "domain_not_joined"));
    let (s, v) = node.refused(
        "POST",
        "/anchors",
        Some(json!({"domain": DOMAIN, "genesis": "nope"})),
    );
    assert_eq!((s, v.code.as_str()), (400, "bad_request"), "{v:?}");
    // Kept in config.toml for the next start.
    let cfg = acp_node::config::Config::load(dir.path()).unwrap();
    assert_eq!(cfg.anchors.get(DOMAIN), Some(&policy.id));
    // Anchored, but the genesis has not arrived: nothing to propose under.
    let (s, v) = node.refused(
        "POST",
        "/proposals",
        Some(json!({"domain": DOMAIN, "kind": "loan.approve"})),
    );
    assert_eq!((s, v.code.as_str()), (409, "no_policy"));
    node.post_message(&policy.bytes);
    let listed = ok(&acp(dir.path(), &["anchor", "list", "--url", &node.http]));
    assert_eq!(
        listed.trim(),
        format!("{DOMAIN}  genesis {genesis}  current {genesis}")
    );
    genesis
}

/// A proposal signed by `by`, closing in `ms`, submitted raw; then `voters`
/// respond (raw). Returns the proposal id.
fn raw_case(
    node: &TestNode,
    policy: &str,
    by: &Keypair,
    ms: u64,
    voters: &[(&Keypair, Stance)],
) -> String {
    let (pid, bytes) = proposal(by, policy.parse().unwrap(), ms);
    node.post_message(&bytes);
    for (k, s) in voters {
        let (_, r) = response(k, pid, *s);
        node.post_message(&r);
    }
    pid.to_string()
}

#[test]
fn api_and_cli_end_to_end() {
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let (k1, k2) = (Keypair::from_seed([11; 32]), Keypair::from_seed([12; 32]));

    // The event stream, open before anything happens.
    let events = node.events();

    // Auth: every /v1 route but health needs the token.
    let c = reqwest::blocking::Client::new();
    let r = c.get(format!("{}/v1/status", node.http)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: ErrorBody = r.json().unwrap();
    assert_eq!(v.error.code, "unauthorized");
    let r = c
        .get(format!("{}/v1/proposals", node.http))
        .bearer_auth("0".repeat(64))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.get(format!("{}/v1/health", node.http)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, v) = node.refused("POST", "/status", Some(json!({})));
    assert_eq!((s, v.code.as_str()), (405, "method_not_allowed"));
    let (s, v) = node.refused("GET", "/nothing", None);
    assert_eq!((s, v.code.as_str()), (404, "not_found"));
    // The OpenAPI document is checked as the JSON it is on the wire.
    let doc = node.get_json("/openapi.json");
    assert!(
        doc["paths"]["/v1/proposals/{id}/decision"].is_object(),
        "{doc}"
    );

    // Without a trust anchor the node admits nothing of the domain.
    let (s, v) = node.refused(
        "POST",
        "/proposals",
        Some(json!({"domain": DOMAIN, "kind": "loan.approve"})),
    );
    assert_eq!(
        (s, v.code.as_str(), v.reason.as_deref()),
        (403, "not_authorized", Some("no_anchor")),
        "{v:?}"
    );
    assert!(
        doc["paths"]["/v1/anchors"]["post"].is_object(),
        "{}",
        doc["paths"]
    );
    let policy = setup(&dir, &node, &k1, &k2);
    // `acp watch` follows the same stream from the command line, through a
    // relay that shows when the node has answered it (and so subscribed it)
    // before the proposal it must see is made.
    let tap = HeaderTap::new(node.http.trim_start_matches("http://").parse().unwrap());
    let watch = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["watch", "--count", "1", "--json", "--url", &tap.url])
        .env_remove("ACP_URL")
        .env_remove("ACP_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tap.opened(20);
    // `acp propose` through the API (the policy found by domain).
    let out = ok(&acp(
        dir.path(),
        &[
            "propose",
            "--domain",
            DOMAIN,
            "--kind",
            "card.block",
            "--payload",
            "{\"card\":1}",
            "--confidence",
            "0.7",
            "--closes-in-ms",
            "600000",
            "--url",
            &node.http,
        ],
    ));
    assert!(out.starts_with("proposal 1220"), "{out}");
    let watched = String::from_utf8(watch.wait_with_output().unwrap().stdout).unwrap();
    let first: StreamEvent = serde_json::from_str(watched.lines().next().unwrap()).unwrap();
    assert!(matches!(first, StreamEvent::Proposal(_)), "{watched}");
    let page = ok(&acp(dir.path(), &["page", "--url", &node.http]));
    assert_eq!(page.trim(), node.page);

    // The confidence rule and its errors.
    for bad in [json!(1.5), json!(-0.1)] {
        let (s, v) = node.refused(
            "POST",
            "/proposals",
            Some(json!({"domain": DOMAIN, "kind": "x", "confidence": bad})),
        );
        assert_eq!(s, 400);
        assert_eq!(v.code, "invalid_confidence", "{v:?}");
    }
    let (s, v) = node.refused(
        "POST",
        "/proposals",
        Some(json!({"domain": DOMAIN, "kind": "x", "confidence": "NaN"})),
    );
    assert_eq!((s, v.code.as_str()), (400, "bad_request"));
    let (s, v) = node.refused("GET", "/proposals/nothex", None);
    assert_eq!((s, v.code.as_str()), (400, "bad_request"));
    let missing = format!("1220{}", "ab".repeat(32));
    let (s, v) = node.refused("GET", &format!("/proposals/{missing}"), None);
    assert_eq!((s, v.code.as_str()), (404, "not_found"));
    // Body size limit.
    let big = "x".repeat(acp_node::surface::api::MAX_BODY_BYTES + 10);
    let r = c
        .post(format!("{}/v1/proposals", node.http))
        .bearer_auth(&node.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: ErrorBody = r.json().unwrap();
    assert_eq!(v.error.code, "payload_too_large");

    // A: proposed by the node's agent through the API, endorsed by both others.
    let a: SubmittedBody = node.post_as(
        "/proposals",
        json!({"domain": DOMAIN, "kind": "loan.approve", "payload": {"amount": 100},
               "confidence": 0.12345, "closes_in_ms": 1500}),
    );
    let a = a.id.to_string();
    for k in [&k1, &k2] {
        let (_, r) = response(k, a.parse().unwrap(), Stance::Endorse);
        node.post_message(&r);
    }
    let va = wait_until(15, "A approved and certified", || {
        let v = node.proposal(&a);
        (v.finality.state == State::Certified).then_some(v)
    });
    assert_eq!(va.status, Status::Approved, "{va:?}");
    assert_eq!(
        va.finality.summary,
        "certified by 1 of 1 organizations: approved"
    );
    let cert = va.finality.certificate.as_ref().expect("a certificate");
    assert_eq!(cert.organizations[0].name.as_deref(), Some("acme"));
    assert_eq!(cert.receipts.first(), Some(&va.receipts[0].id));
    assert!(va.finality.matches_certificate);
    assert_eq!(va.package.proposal.confidence_bps, 1235);
    assert_eq!(va.package.counted.len(), 2);
    assert_eq!(va.package.counted[0].response.reasoning, "looks right");
    // A human decision needs an escalation.
    let (s, v) = node.refused(
        "POST",
        &format!("/proposals/{a}/decision"),
        Some(json!({"verdict": "approve", "rationale": "no"})),
    );
    assert_eq!((s, v.code.as_str()), (409, "not_escalated"));

    // B: proposed by k1, the node's agent challenges through the CLI, k2
    // endorses: a tie, escalated at the close.
    let b = raw_case(&node, &policy, &k1, 1500, &[(&k2, Stance::Endorse)]);
    let out = ok(&acp(
        dir.path(),
        &[
            "respond",
            &b,
            "--stance",
            "challenge",
            "--confidence",
            "0.9",
            "--reasoning",
            "income not verified",
            "--url",
            &node.http,
        ],
    ));
    assert!(out.starts_with("response 1220"), "{out}");
    let vb = wait_until(15, "B escalated", || {
        let v = node.proposal(&b);
        // This node's receipt certifies the escalation: a human decides.
        (v.finality.state == State::Escalated).then_some(v)
    });
    assert_eq!(vb.status, Status::Escalated);
    assert_eq!(vb.reasons, vec![Reason::NoMargin]);
    assert!(vb.finality.human_round_open);
    // Raw once: the wire spelling of a status, a reason and a finality
    // state, which the Python client and the escalation page read as text.
    let raw = node.get_json(&format!("/proposals/{b}"));
    assert_eq!(
        (&raw["status"], &raw["reasons"], &raw["finality"]["state"]),
        (
            &json!("escalated"),
            &json!(["no_margin"]),
            &json!("escalated")
        ),
        "{raw}"
    );
    let list: ProposalList = node.get_as(&format!("/proposals?domain={DOMAIN}&status=escalated"));
    let ids: Vec<String> = list.proposals.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids, vec![b.clone()]);
    let (s, _) = node.http("GET", "/proposals?status=bogus", None);
    assert_eq!(s, 400);
    // The CLI shows the package for people, and as JSON.
    let show = ok(&acp(dir.path(), &["show", &b, "--url", &node.http]));
    assert!(
        show.contains("escalated") && show.contains("income not verified"),
        "{show}"
    );
    let listed = ok(&acp(
        dir.path(),
        &[
            "list",
            "--status",
            "escalated",
            "--json",
            "--url",
            &node.http,
        ],
    ));
    let listed: ProposalList = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.proposals[0].id.to_string(), b);
    // The human decides through the CLI: signed by the node's human key.
    let out = ok(&acp(
        dir.path(),
        &[
            "decide",
            &b,
            "reject",
            "--rationale",
            "verify income first",
            "--url",
            &node.http,
        ],
    ));
    assert!(out.contains("human decision (reject) 1220"), "{out}");
    // It says where the proposal stands: the human round is open until this
    // node's receipt certifies the decision.
    assert!(
        out.contains("proposal escalated: escalation certified by 1 of 1")
            || out.contains("proposal rejected: certified by 1 of 1 organizations: rejected"),
        "{out}"
    );
    // The node signs a receipt of the human's result: certified in round 1.
    let vb = wait_until(15, "B's decision certified", || {
        let v = node.proposal(&b);
        (v.finality.state == State::Certified).then_some(v)
    });
    assert_eq!(vb.status, Status::Rejected);
    assert_eq!(vb.finality.certificate.as_ref().map(|c| c.round), Some(1));
    assert_eq!(
        vb.finality.summary,
        "certified by 1 of 1 organizations: rejected (settled by a human)"
    );
    assert_eq!(
        vb.package.human_decisions[0].1.rationale,
        "verify income first"
    );

    // Outcome report and trust.
    let out = ok(&acp(
        dir.path(),
        &["outcome", &a, "succeeded", "--url", &node.http],
    ));
    assert!(out.contains("outcome report"), "{out}");
    let t: TrustTable = node.get_as(&format!("/trust?domain={DOMAIN}"));
    assert_eq!(t.policy.map(|p| p.to_string()), Some(policy.clone()));
    assert!(!t.agents.is_empty(), "{t:?}");
    let trust = ok(&acp(
        dir.path(),
        &["trust", "--domain", DOMAIN, "--url", &node.http],
    ));
    assert!(trust.contains("trust 0."), "{trust}");

    // Audit: export through the CLI, verify offline, reject any changed byte.
    let file = dir.path().join("a.bundle");
    ok(&acp(
        dir.path(),
        &[
            "audit",
            "export",
            &a,
            "--out",
            file.to_str().unwrap(),
            "--url",
            &node.http,
        ],
    ));
    let bundle = std::fs::read(&file).unwrap();
    // The API names the bundle's lineage and finality alongside it.
    let r = c
        .get(format!("{}/v1/proposals/{a}/audit", node.http))
        .bearer_auth(&node.token)
        .send()
        .unwrap();
    let header = |k: &str| r.headers()[k].to_str().unwrap().to_owned();
    assert_eq!(
        (
            header("x-acp-status"),
            header("x-acp-finality"),
            header("x-acp-genesis")
        ),
        (
            "approved".to_owned(),
            "certified".to_owned(),
            policy.clone()
        )
    );
    let status: StatusBody = node.get_as("/status");
    assert_eq!(
        status.node.anchors.get(DOMAIN).map(|g| g.to_string()),
        Some(policy.clone())
    );
    let report = acp_protocol::bundle::verify_bundle(&bundle).unwrap();
    assert_eq!(report.proposal.to_string(), a);
    for i in 0..bundle.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = bundle.clone();
            t[i] ^= flip;
            assert!(
                acp_protocol::bundle::verify_bundle(&t).is_err(),
                "bundle with byte {i} xor {flip:#x} still verifies"
            );
        }
    }
    let good = ok(&Command::new(BIN)
        .args([
            "audit",
            "verify",
            file.to_str().unwrap(),
            "--genesis",
            &policy,
        ])
        .output()
        .unwrap());
    assert!(good.contains("verifies"), "{good}");
    assert!(
        good.contains("certified by 1 of 1 organizations: approved"),
        "{good}"
    );
    assert!(
        good.contains("recompute exactly the certified digest"),
        "{good}"
    );
    assert!(
        good.contains(&format!("genesis     {policy} (the required one)")),
        "{good}"
    );
    let json_out = ok(&Command::new(BIN)
        .args(["audit", "verify", file.to_str().unwrap(), "--json"])
        .output()
        .unwrap());
    let j: AuditVerified = serde_json::from_str(&json_out).unwrap();
    assert_eq!(j.genesis.to_string(), policy);
    assert_eq!(j.finality.state, State::Certified);
    assert!(j.recomputed_matches_certificate);
    // Someone else's lineage: the auditor's own anchor differs.
    let o = Command::new(BIN)
        .args([
            "audit",
            "verify",
            file.to_str().unwrap(),
            "--genesis",
            &format!("1220{}", "ef".repeat(32)),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not the required"), "{e}");
    for i in [0, bundle.len() / 3, bundle.len() / 2, bundle.len() - 1] {
        let mut t = bundle.clone();
        t[i] ^= 0x04;
        let bad = dir.path().join(format!("bad-{i}.bundle"));
        std::fs::write(&bad, &t).unwrap();
        let o = Command::new(BIN)
            .args(["audit", "verify", bad.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!o.status.success(), "tampered byte {i} accepted");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("does NOT verify"), "{e}");
    }

    // The event stream saw proposals, responses and the escalation.
    let want = ["proposal", "response", "escalated", "decided", "certified"];
    let mut seen = std::collections::BTreeSet::new();
    wait_until(20, "every kind of event on the stream", || {
        while let Ok(ev) = events.recv_timeout(Duration::from_millis(100)) {
            seen.insert(ev.name());
        }
        want.iter().all(|w| seen.contains(*w)).then_some(())
    });
}
