//! The Python client package (`clients/python`) against one real node: its
//! pytest suite runs with the node's URL and token in `ACP_URL`/`ACP_TOKEN`.
//! The test prepares what Python cannot sign itself: the policy, a proposal
//! by an outside agent (endorsed by a second one) that the node's agent will
//! challenge into an escalation, and one raw signed message to submit.
//!
//! Needs `python3` with `httpx` and `pytest` (installed here with pip when
//! missing); when neither is possible the test prints a SKIPPED line.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use acp_protocol::build::PolicyBuilder;
use acp_protocol::{Keypair, Stance};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_acp");

fn importable() -> bool {
    Command::new("python3")
        .args(["-c", "import httpx, pytest"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `python3` with `httpx` and `pytest`, installing them if needed; `false`
/// (with the reason printed) when that is not possible.
fn python_ready() -> bool {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED python_client_suite_against_a_real_node: python3 is not installed");
        return false;
    }
    if importable() {
        return true;
    }
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "httpx", "pytest"])
        .status();
    if importable() {
        return true;
    }
    eprintln!(
        "SKIPPED python_client_suite_against_a_real_node: httpx and pytest are not importable \
         and `python3 -m pip install httpx pytest` failed"
    );
    false
}

fn key(dir: &Path, file: &str) -> Keypair {
    Keypair::from_seed(acp_node::keys::read_seed_file(&dir.join(file)).unwrap())
}

#[test]
fn python_client_suite_against_a_real_node() {
    if !python_ready() {
        return;
    }
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let (k1, k2) = (Keypair::from_seed([41; 32]), Keypair::from_seed([42; 32]));
    let org = Keypair::from_seed([43; 32]);
    let policy = PolicyBuilder::new(DOMAIN)
        .organization_attested(&org, "acme", 10_000, &dir.agent.public())
        .member(&dir.agent.public(), 0, 5_000)
        .member(&k1.public(), 0, 5_000)
        .member(&k2.public(), 0, 5_000)
        .human(&key(dir.path(), "human.key").public())
        .reporter(&key(dir.path(), "reporter.key").public())
        .rules(common::test_rules())
        .issued(1, now())
        .sign(&[&org])
        .unwrap();
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

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
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
    assert!(
        out.status.success(),
        "pytest failed:\n{stdout}\nnode log:\n{}",
        node.log_text()
    );
    // The suite really ran against the node (no skips).
    assert!(
        stdout.contains(" passed") && !stdout.contains("skipped"),
        "{stdout}"
    );
}
