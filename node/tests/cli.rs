//! The `acp` command line: init, keys, policies, and one-line errors.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_acp");

fn acp(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ACP_DATA_DIR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "acp failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn one_line_error(o: &Output) -> String {
    assert!(!o.status.success());
    let e = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e:?}");
    assert!(e.starts_with("acp: "), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    e
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_keys_0600_config_and_refuses_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let out = stdout(&acp(
        &dir,
        &["init", "--domain", "fraud.detection", "--no-mdns"],
    ));
    assert!(out.contains("agent ") && out.contains("peer 12D3"), "{out}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.join("agent.key")), 0o600);
        assert_eq!(mode(&dir.join("peer.key")), 0o600);
        assert_eq!(mode(&dir.join("human.key")), 0o600);
        assert_eq!(mode(&dir.join("reporter.key")), 0o600);
        assert_eq!(mode(&dir.join("api.token")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let cfg = acp_node::config::Config::load(&dir).unwrap();
    assert_eq!(cfg.domains, vec!["fraud.detection".to_string()]);
    assert!(!cfg.mdns);
    let e = one_line_error(&acp(&dir, &["init"]));
    assert!(e.contains("already initialized"), "{e}");
    // `acp id` reads both keys back.
    let id = stdout(&acp(&dir, &["id"]));
    assert!(id.lines().next().unwrap().starts_with("agent "));
}

#[test]
fn org_policy_propose_respond_produce_valid_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    let org = tmp.path().join("org");
    stdout(&acp(&node, &["init"]));
    stdout(&acp(&org, &["org", "init"]));
    #[cfg(unix)]
    assert_eq!(mode(&org.join("org.key")), 0o600);
    let id_out = stdout(&acp(&node, &["id"]));
    let agent = id_out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("agent ")
        .unwrap();
    let org_key = org.join("org.key");
    let pol_file = tmp.path().join("policy.bin");
    let pol = stdout(&acp(
        &node,
        &[
            "policy",
            "create",
            "--domain",
            "loans",
            "--org",
            &format!("{}:acme:6000", org_key.display()),
            "--member",
            &format!("{agent}:7000"),
            "--out",
            pol_file.to_str().unwrap(),
        ],
    ));
    let pol = pol.trim();
    let m = acp_protocol::decode_message(&std::fs::read(&pol_file).unwrap()).unwrap();
    assert_eq!(m.id.to_string(), pol);
    let acp_protocol::Body::Policy(p) = m.body() else {
        panic!("not a policy")
    };
    assert_eq!(p.members[0].authority_bps, 7000);
    assert_eq!(p.organizations[0].weight_cap_bps, 6000);

    let prop_file = tmp.path().join("proposal.bin");
    let prop = stdout(&acp(
        &node,
        &[
            "propose",
            "--domain",
            "loans",
            "--policy",
            pol,
            "--kind",
            "loan.approve",
            "--out",
            prop_file.to_str().unwrap(),
        ],
    ));
    let resp_file = tmp.path().join("response.bin");
    stdout(&acp(
        &node,
        &[
            "respond",
            prop.trim(),
            "--domain",
            "loans",
            "--stance",
            "challenge",
            "--confidence",
            "0.6",
            "--out",
            resp_file.to_str().unwrap(),
        ],
    ));
    for f in [&prop_file, &resp_file] {
        acp_protocol::decode_message(&std::fs::read(f).unwrap()).unwrap();
    }
}

#[test]
fn errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    let e = one_line_error(&acp(&missing, &["node"]));
    assert!(e.contains("config.toml"), "{e}");
    let dir = tmp.path().join("n");
    stdout(&acp(&dir, &["init"]));
    std::fs::write(dir.join("config.toml"), "sync_interval_secs = \"often\"\n").unwrap();
    let e = one_line_error(&acp(&dir, &["node"]));
    assert!(
        e.contains("sync_interval_secs") || e.contains("invalid type"),
        "{e}"
    );
    std::fs::write(dir.join("config.toml"), "listen = [\"not an address\"]\n").unwrap();
    let e = one_line_error(&acp(&dir, &["node"]));
    assert!(e.contains("not a multiaddr"), "{e}");
    let e = one_line_error(&acp(&dir, &["submit", "/definitely/not/a/file"]));
    assert!(e.contains("reading"), "{e}");
}

/// The README's first command: `acp demo` decides a proposal on four real
/// nodes and exits 0.
#[test]
fn demo_runs_end_to_end() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("same resolution"), "{text}");
    // The second case escalates and says where to look at it.
    assert!(text.contains("escalated to a human"), "{text}");
    assert!(text.contains("/ui/#token="), "{text}");
}
