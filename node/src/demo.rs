//! `acp demo`: three real `acp node` processes on loopback, fresh temporary
//! data directories, one proposal decided end to end.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acp_node::keys;
use acp_node::node::now;
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, DomainPolicy, Keypair, Member, Organization, Proposal,
    Response, Stance,
};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

const DOMAIN: &str = "loans.approval";

struct DemoNode {
    child: Child,
    api: SocketAddr,
    tcp: String,
    agent: Keypair,
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(api: SocketAddr, req: &Value) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    let v: Value = serde_json::from_str(&answer).context("malformed control answer")?;
    if v["ok"] != true {
        bail!("node refused: {}", v["error"]);
    }
    Ok(v)
}

fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(exe: &Path, dir: &Path, bootstrap: Option<&str>) -> anyhow::Result<DemoNode> {
    let init = Command::new(exe)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "init",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "--api-addr",
            "127.0.0.1:0",
            "--no-mdns",
            "--domain",
            DOMAIN,
            "--sync-interval-secs",
            "2",
        ])
        .output()?;
    if !init.status.success() {
        bail!(
            "init failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        );
    }
    let agent = Keypair::from_seed(keys::read_seed_file(&dir.join(keys::AGENT_KEY_FILE))?);
    let log = std::fs::File::create(dir.join("node.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--data-dir").arg(dir).arg("node");
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut api, mut tcp) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.is_none() || tcp.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .map_err(|_| anyhow!("node in {} did not start", dir.display()))?;
        if let Some(a) = line.strip_prefix("ACP-API ") {
            api = Some(a.parse()?);
        } else if let Some(a) = line.strip_prefix("ACP-LISTEN ")
            && a.contains("/tcp/")
        {
            tcp = Some(a.to_owned());
        }
    }
    Ok(DemoNode {
        child,
        api: api.ok_or_else(|| anyhow!("no api"))?,
        tcp: tcp.ok_or_else(|| anyhow!("no listen address"))?,
        agent,
    })
}

fn submit(n: &DemoNode, bytes: &[u8]) -> anyhow::Result<()> {
    call(n.api, &json!({"op": "submit", "hex": hex::encode(bytes)}))?;
    Ok(())
}

fn has(n: &DemoNode, id: &ContentId) -> bool {
    call(n.api, &json!({"op": "has", "id": id.to_string()})).is_ok_and(|v| v["engine"] == true)
}

/// Runs the demo in a fresh temporary directory, removed afterwards.
pub fn run() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let root: PathBuf =
        std::env::temp_dir().join(format!("acp-demo-{}-{}", std::process::id(), now().0));
    std::fs::create_dir_all(&root)?;
    let result = run_in(&exe, &root);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!("node logs kept in {}", root.display());
    }
    result
}

fn run_in(exe: &Path, root: &Path) -> anyhow::Result<()> {
    println!(
        "Starting three nodes on 127.0.0.1 (data in {})",
        root.display()
    );
    let n1 = start(exe, &root.join("bank-a"), None)?;
    let n2 = start(exe, &root.join("bank-b"), Some(&n1.tcp))?;
    let n3 = start(exe, &root.join("credit-bureau"), Some(&n1.tcp))?;
    let nodes = [("bank-a", &n1), ("bank-b", &n2), ("credit-bureau", &n3)];
    wait_for(20, "the nodes to connect", || {
        call(n1.api, &json!({"op": "status"}))
            .ok()
            .filter(|v| v["peers"].as_array().is_some_and(|p| p.len() >= 2))
    })?;
    println!("  connected: {} peers of bank-a", 2);

    let org = Keypair::from_seed(keys::random_seed()?);
    let mut members: Vec<Member> = nodes
        .iter()
        .map(|(_, n)| Member {
            agent: n.agent.public(),
            organization: 0,
            authority_bps: 5000,
        })
        .collect();
    members.sort_by_key(|m| m.agent);
    let policy = Body::Policy(DomainPolicy {
        domain: DOMAIN.into(),
        revision: 1,
        issued_at: now(),
        organizations: vec![Organization {
            root: org.public(),
            name: "lending consortium".into(),
            weight_cap_bps: 10_000,
        }],
        members,
        humans: Vec::new(),
        reporters: Vec::new(),
        rules: DecisionRules {
            quorum_margin_bps: 1000,
            min_participation_bps: 5000,
            low_confidence_bps: 3000,
            high_stakes: None,
            min_window_ms: 1000,
            max_window_ms: 3_600_000,
        },
    })
    .sign(&[&org])?;
    submit(&n1, &policy.bytes)?;
    println!(
        "Policy {} for {DOMAIN}: three members, authority 0.50 each",
        policy.id
    );

    let t = now();
    let proposal = Body::Proposal(Proposal {
        proposer: n1.agent.public(),
        domain: DOMAIN.into(),
        policy: policy.id,
        action: Action {
            kind: "loan.approve".into(),
            payload: r#"{"applicant":"A-1042","amount_eur":25000,"term_months":48}"#.into(),
        },
        confidence_bps: 8000,
        stakes: 25_000,
        evidence: vec!["credit-report:A-1042".into()],
        created_at: t,
        closes_at: t.plus_ms(4_000),
        supersedes: None,
    })
    .sign(&[&n1.agent])?;
    submit(&n1, &proposal.bytes)?;
    println!(
        "bank-a proposes loan.approve {} (closes in 4 s)",
        proposal.id
    );
    for (name, n) in &nodes[1..] {
        wait_for(15, "the proposal to spread", || {
            has(n, &proposal.id).then_some(())
        })?;
        println!("  {name} received it");
    }
    let votes = [
        (
            &n2,
            "bank-b",
            Stance::Endorse,
            9000,
            "income verified, debt ratio 0.21",
        ),
        (
            &n3,
            "credit-bureau",
            Stance::Endorse,
            7000,
            "score 742, no defaults",
        ),
    ];
    for (n, name, stance, conf, why) in votes {
        let r = Body::Response(Response {
            responder: n.agent.public(),
            domain: DOMAIN.into(),
            proposal: proposal.id,
            stance,
            confidence_bps: conf,
            reasoning: why.into(),
            evidence: Vec::new(),
            issued_at: now(),
        })
        .sign(&[&n.agent])?;
        submit(n, &r.bytes)?;
        println!(
            "  {name}: {stance:?} at {:.2} — {why}",
            f64::from(conf) / 10_000.0
        );
    }
    println!("Waiting for every node to finalize and sign a receipt...");
    let res: Vec<Value> = wait_for(30, "receipts from every node", || {
        let rs: Vec<Value> = nodes
            .iter()
            .filter_map(|(_, n)| {
                call(
                    n.api,
                    &json!({"op": "resolution", "proposal": proposal.id.to_string()}),
                )
                .ok()
            })
            .collect();
        (rs.len() == 3
            && rs.iter().all(|r| {
                r["final"] == true && r["receipts"].as_array().is_some_and(|a| a.len() == 3)
            }))
        .then_some(rs)
    })?;
    for ((name, _), r) in nodes.iter().zip(&res) {
        println!(
            "  {name:<14} {:<9} resolution {} counted {}",
            r["status"].as_str().unwrap_or("?"),
            &r["resolution"].as_str().unwrap_or("?")[..20],
            r["counted"]
        );
    }
    let agree = res
        .windows(2)
        .all(|w| w[0]["resolution"] == w[1]["resolution"]);
    if !agree {
        bail!("the nodes disagree");
    }
    println!("All three nodes computed the same resolution, with no coordinator.");
    Ok(())
}
