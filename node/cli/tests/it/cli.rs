//! The `acp` command line: init, keys, policies, and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{BIN, acp, ok};

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
    let out = ok(&acp(
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
    let id = ok(&acp(&dir, &["id"]));
    assert!(id.lines().next().unwrap().starts_with("agent "));
    // No anchor yet: init says what that means.
    assert!(out.contains("admit no message"), "{out}");
}

#[test]
fn init_takes_a_genesis_per_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let (g1, g2) = (
        acp_protocol::ContentId::of(b"loans genesis"),
        acp_protocol::ContentId::of(b"fraud genesis"),
    );
    let (g1s, g2s) = (g1.to_string(), g2.to_string());
    // Bare ids pair with the --domain values in order.
    let a = tmp.path().join("a");
    let out = ok(&acp(
        &a,
        &[
            "init",
            "--domain",
            "loans",
            "--genesis",
            &g1s,
            "--domain",
            "fraud",
            "--genesis",
            &g2s,
        ],
    ));
    assert!(out.contains(&format!("anchor loans {g1s}")), "{out}");
    let cfg = acp_node::config::Config::load(&a).unwrap();
    assert_eq!(cfg.anchors.get("loans"), Some(&g1));
    assert_eq!(cfg.anchors.get("fraud"), Some(&g2));
    let text = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(text.contains(&format!("loans = \"{g1s}\"")), "{text}");
    // DOMAIN=ID for some domains only.
    let b = tmp.path().join("b");
    ok(&acp(
        &b,
        &[
            "init",
            "--no-mdns",
            "--http-addr",
            "127.0.0.1:0",
            "--domain",
            "loans.retail",
            "--domain",
            "fraud",
            "--genesis",
            &format!("loans.retail={g1s}"),
        ],
    ));
    let cfg = acp_node::config::Config::load(&b).unwrap();
    assert_eq!(cfg.anchors.len(), 1);
    assert_eq!(cfg.anchors.get("loans.retail"), Some(&g1));
    // With no node running, `anchor add` writes config.toml directly (the
    // configured HTTP address is the ephemeral 127.0.0.1:0: nobody answers).
    ok(&acp(
        &b,
        &["anchor", "add", "--domain", "fraud", "--genesis", &g2s],
    ));
    let cfg = acp_node::config::Config::load(&b).unwrap();
    assert_eq!(cfg.anchors.get("fraud"), Some(&g2));
    let e = one_line_error(&acp(
        &b,
        &["anchor", "add", "--domain", "fraud", "--genesis", &g1s],
    ));
    assert!(e.contains("already has the genesis"), "{e}");
    let e = one_line_error(&acp(
        &b,
        &["anchor", "add", "--domain", "elsewhere", "--genesis", &g1s],
    ));
    assert!(e.contains("does not join"), "{e}");
    // Errors: a domain not joined, a bare id without its domain, a bad id;
    // nothing is created.
    for (args, want) in [
        (
            vec![
                "init",
                "--domain",
                "loans",
                "--genesis",
                &format!("fraud={g1s}"),
            ],
            "does not join",
        ),
        (
            vec![
                "init",
                "--domain",
                "a",
                "--domain",
                "b",
                "--genesis",
                g1s.as_str(),
            ],
            "one per domain",
        ),
        (
            vec!["init", "--domain", "loans", "--genesis", "xyz"],
            "not a policy id",
        ),
    ] {
        let d = tmp.path().join("bad");
        let e = one_line_error(&acp(&d, &args));
        assert!(e.contains(want), "{e}");
        assert!(!d.join("config.toml").exists());
    }
}

#[test]
fn org_policy_propose_respond_produce_valid_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    let org = tmp.path().join("org");
    ok(&acp(&node, &["init"]));
    ok(&acp(&org, &["org", "init"]));
    #[cfg(unix)]
    assert_eq!(mode(&org.join("org.key")), 0o600);
    let id_out = ok(&acp(&node, &["id"]));
    let agent = id_out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("agent ")
        .unwrap();
    let org_key = org.join("org.key");
    let pol_file = tmp.path().join("policy.bin");
    let org_spec = format!("{}:acme:6000", org_key.display());
    let member = format!("{agent}:7000");
    let attestor = format!("0:{agent}");
    let desk = acp_protocol::Keypair::from_seed([5; 32])
        .public()
        .to_string();
    // Every organization needs an attestor: without one nothing certifies.
    let e = one_line_error(&acp(
        &node,
        &[
            "policy",
            "create",
            "--domain",
            "loans",
            "--org",
            &org_spec,
            "--member",
            &member,
            "--out",
            pol_file.to_str().unwrap(),
        ],
    ));
    assert!(e.contains("--attestor 0:"), "{e}");
    let pol = ok(&acp(
        &node,
        &[
            "policy",
            "create",
            "--domain",
            "loans",
            "--org",
            &org_spec,
            "--attestor",
            &attestor,
            "--member",
            &member,
            "--proposer",
            &desk,
            "--finality-quorum",
            "1",
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
    assert_eq!(p.organizations[0].attestor.to_string(), agent);
    assert_eq!(p.proposers[0].to_string(), desk);
    assert_eq!((p.supersedes, p.finality_quorum), (None, 1));
    // An amendment: a second organization joins; the first one's root signs
    // (amendment quorum 1 of 1), and so does the new one's.
    let org2 = tmp.path().join("org2");
    ok(&acp(&org2, &["org", "init"]));
    let amend_file = tmp.path().join("amendment.bin");
    let amend = ok(&acp(
        &node,
        &[
            "policy",
            "create",
            "--domain",
            "loans",
            "--org",
            &org_spec,
            "--org",
            &format!("{}:second:5000", org2.join("org.key").display()),
            "--attestor",
            &attestor,
            "--attestor",
            &format!("1:{desk}"),
            "--member",
            &member,
            "--supersedes",
            pol,
            "--amendment-quorum",
            "2",
            "--revision",
            "2",
            "--out",
            amend_file.to_str().unwrap(),
        ],
    ));
    let a = acp_protocol::decode_message(&std::fs::read(&amend_file).unwrap()).unwrap();
    assert_eq!(a.id.to_string(), amend.trim());
    let acp_protocol::Body::Policy(ap) = a.body() else {
        panic!("not a policy")
    };
    assert_eq!(ap.supersedes.map(|s| s.to_string()).as_deref(), Some(pol));
    assert_eq!(
        (ap.revision, ap.amendment_quorum, ap.organizations.len()),
        (2, 2, 2)
    );
    assert!(acp_protocol::lineage::amends(&m.id, p, ap));

    let prop_file = tmp.path().join("proposal.bin");
    let prop = ok(&acp(
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
    ok(&acp(
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
    ok(&acp(&dir, &["init"]));
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
    assert!(
        text.contains(
            "certified by 3 of 3 organizations: approved; all four nodes hold the same certificate"
        ),
        "{text}"
    );
    // The second case escalates, the escalation is certified, the human
    // approves and the three attestors certify that; it says where to look.
    assert!(text.contains("escalated to a human"), "{text}");
    assert!(
        text.contains("escalation certified by 3 of 3 organizations"),
        "{text}"
    );
    assert!(
        text.contains("certified by 3 of 3 organizations: approved (settled by a human)"),
        "{text}"
    );
    assert!(text.contains("/ui/#token="), "{text}");
}
