//! The Python client package (`clients/python`) against one real node: its
//! pytest suite runs with the node's URL and token in `ACP_URL`/`ACP_TOKEN`.
//! The test prepares what Python cannot sign itself: the policy, a proposal
//! by an outside agent (endorsed by a second one) that the node's agent will
//! challenge into an escalation, and one raw signed message to submit.
//!
//! Needs `python3` with `httpx` and `pytest` (see `harness::require`).

use std::process::Command;

use crate::harness::*;
use acp_protocol::{Keypair, Stance};

#[test]
fn python_client_suite_against_a_real_node() {
    let why = "the Python client's own test suite runs against the node";
    if !require("python3", why) || !require("httpx+pytest", why) {
        return;
    }
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let (k1, k2) = (Keypair::from_seed([41; 32]), Keypair::from_seed([42; 32]));
    let org = Keypair::from_seed([43; 32]);
    let policy = acme_policy(
        &org,
        &dir.agent.public(),
        &[&k1.public(), &k2.public()],
        Some(&dir.key("human.key").public()),
        Some(&dir.key("reporter.key").public()),
    );
    node.anchor(policy.id);
    let policy_id = node.post_message(&policy.bytes);
    // To escalate: k1 proposes, k2 endorses, the node's agent (through the
    // Python client) challenges: a tie at the close.
    let (esc, bytes) = proposal(&k1, policy_id, 12_000);
    node.post_message(&bytes);
    let (_, r) = response(&k2, esc, Stance::Endorse);
    node.post_message(&r);
    // A raw signed message for the client to submit itself.
    let (raw_id, raw) = proposal(&k2, policy_id, 60_000);
    let raw_file = dir.path().join("raw-proposal.bin");
    std::fs::write(&raw_file, raw).unwrap();

    let root = REPO;
    let out = Command::new("python3")
        .current_dir(root)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "clients/python/tests",
        ])
        .env("PYTHONPATH", format!("{root}/clients/python/src"))
        .env("ACP_URL", &node.http)
        .env("ACP_TOKEN", &node.token)
        .env("ACP_DATA_DIR", dir.path())
        .env("ACP_BIN", BIN)
        .env("ACP_TEST_DOMAIN", DOMAIN)
        .env("ACP_TEST_POLICY", policy_id.to_string())
        .env("ACP_TEST_ESCALATE", esc.to_string())
        .env("ACP_TEST_RAW", &raw_file)
        .env("ACP_TEST_RAW_ID", raw_id.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pytest failed:\n{stdout}");
    // The suite really ran against the node (no skips).
    assert!(
        stdout.contains(" passed") && !stdout.contains("skipped"),
        "{stdout}"
    );
}
