//! Test harness: real `acp node` processes on 127.0.0.1, each with its own
//! temporary data directory, ephemeral ports and mDNS off.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acp_node::launch::{self, Launch, Started};
use acp_protocol::build::PolicyBuilder;
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, Keypair, Proposal, Response, SignedMessage, Stance,
    Timestamp,
};
use serde_json::{Value, json};

pub const DOMAIN: &str = "test";
const BIN: &str = env!("CARGO_BIN_EXE_acp");

pub fn now() -> Timestamp {
    acp_node::service::now()
}

/// The lines a child prints on stdout, read by a thread as they come.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    launch::read_lines(child.stdout.take().expect("stdout is piped"))
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An initialized data directory.
pub struct DataDir {
    pub dir: tempfile::TempDir,
    pub agent: Keypair,
}

impl DataDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Launch::new(BIN, dir.path())
            .init_loopback(DOMAIN, 1, &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])
            .unwrap_or_else(|e| panic!("{e}"));
        let seed = acp_node::keys::read_seed_file(&dir.path().join("agent.key")).unwrap();
        Self {
            dir,
            agent: Keypair::from_seed(seed),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `acp node` on this directory.
    pub fn start(&self, bootstrap: &[&str]) -> TestNode {
        TestNode::start(self.path(), bootstrap)
    }
}

/// A running `acp node` process (killed on drop).
pub struct TestNode {
    pub child: Child,
    pub api: SocketAddr,
    pub peer_id: String,
    /// TCP listen multiaddr with `/p2p/<id>`.
    pub tcp: String,
    /// QUIC listen multiaddr with `/p2p/<id>`.
    pub quic: String,
    /// HTTP API base, `http://127.0.0.1:<port>`.
    pub http: String,
    /// The escalation page address with the token in the fragment.
    pub page: String,
    /// The API bearer token.
    pub token: String,
    pub log: PathBuf,
}

impl TestNode {
    pub fn start(dir: &Path, bootstrap: &[&str]) -> Self {
        let log = dir.join(format!("node-{}.log", std::process::id()));
        let Started {
            child, announced, ..
        } = Launch::new(BIN, dir)
            .bootstrap(bootstrap.iter().copied())
            .env("RUST_LOG", "info,libp2p=warn")
            .log(&log, true)
            .wait_quic()
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let token = std::fs::read_to_string(dir.join("api.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            child,
            api: announced.control,
            peer_id: announced.peer,
            tcp: announced.tcp,
            quic: announced.quic.expect("waited for"),
            http: format!("http://{}", announced.http),
            page: announced.page,
            token,
            log,
        }
    }

    /// An HTTP request to the node's `/v1` API with its token: `(status, body)`.
    pub fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let c = reqwest::blocking::Client::new();
        let url = format!("{}/v1{path}", self.http);
        let mut rb = match method {
            "GET" => c.get(&url),
            "POST" => c.post(&url),
            m => panic!("method {m}"),
        };
        rb = rb.bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GET that must succeed.
    pub fn get(&self, path: &str) -> Value {
        let (s, v) = self.http("GET", path, None);
        assert!((200..300).contains(&s), "GET {path}: {s} {v}");
        v
    }

    /// POST that must succeed.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.http("POST", path, Some(body));
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    /// Trusts `genesis` as the genesis policy of `DOMAIN` (`POST /v1/anchors`).
    pub fn anchor(&self, genesis: ContentId) {
        self.anchor_in(DOMAIN, genesis);
    }

    /// Trusts `genesis` as the genesis policy of `domain`.
    pub fn anchor_in(&self, domain: &str, genesis: ContentId) {
        self.post(
            "/anchors",
            json!({"domain": domain, "genesis": genesis.to_string()}),
        );
    }

    /// Submits raw signed bytes through `POST /v1/messages`.
    pub fn post_message(&self, bytes: &[u8]) -> ContentId {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/messages", self.http))
            .bearer_auth(&self.token)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().unwrap();
        assert!((200..300).contains(&status), "submit: {status} {v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub fn call(&self, req: Value) -> Value {
        call(self.api, &req)
    }

    pub fn submit(&self, bytes: &[u8]) -> ContentId {
        let v = self.call(json!({"op": "submit", "hex": hex::encode(bytes)}));
        assert_eq!(v["ok"], true, "submit failed: {v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub fn ids(&self) -> Vec<String> {
        let v = self.call(json!({"op": "ids", "domain": DOMAIN}));
        serde_json::from_value(v["ids"].clone()).unwrap()
    }

    pub fn has(&self, id: &ContentId) -> (bool, bool) {
        let v = self.call(json!({"op": "has", "id": id.to_string()}));
        (v["engine"] == true, v["store"] == true)
    }

    pub fn peers(&self) -> usize {
        self.call(json!({"op": "status"}))["peers"]
            .as_array()
            .map_or(0, Vec::len)
    }

    pub fn resolution(&self, p: &ContentId) -> Value {
        self.call(json!({"op": "resolution", "proposal": p.to_string()}))
    }

    pub fn dial(&self, addr: &str) {
        let v = self.call(json!({"op": "dial", "addr": addr}));
        assert_eq!(v["ok"], true, "dial failed: {v}");
    }

    /// SIGKILL, no shutdown path at all.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn call(api: SocketAddr, req: &Value) -> Value {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

/// A genesis policy for `DOMAIN`: one organization `acme` whose attestor is
/// `agents[0]` (a node's agent key: that node's receipts certify, finality
/// quorum 1), every agent a member with authority 5000.
pub fn policy(agents: &[&Keypair]) -> (ContentId, Vec<u8>) {
    policy_in(DOMAIN, agents)
}

/// The decision rules of the test policies: 10% margin, half the potential
/// weight must respond, windows from 0.5 s to an hour.
pub fn test_rules() -> DecisionRules {
    DecisionRules {
        quorum_margin_bps: 1_000,
        min_participation_bps: 5_000,
        low_confidence_bps: 0,
        high_stakes: None,
        min_window_ms: 500,
        max_window_ms: 3_600_000,
    }
}

/// [`policy`] for `domain`.
pub fn policy_in(domain: &str, agents: &[&Keypair]) -> (ContentId, Vec<u8>) {
    let m = orgs_policy(domain, &[agents[0]], &agents[1..], None);
    (m.id, m.bytes)
}

/// The root key of the `i`-th test organization.
pub fn org_root(i: usize) -> Keypair {
    Keypair::from_seed([42 + i as u8; 32])
}

/// A genesis policy for `domain` with one organization per attestor (the
/// `i`-th named `org<i>`, root [`org_root`]`(i)`), each attestor a member of
/// its organization; `members` join the first organization; every member
/// has authority 5000. `finality_quorum` defaults to more than two thirds.
pub fn orgs_policy(
    domain: &str,
    attestors: &[&Keypair],
    members: &[&Keypair],
    finality_quorum: Option<u16>,
) -> SignedMessage {
    let roots: Vec<Keypair> = (0..attestors.len()).map(org_root).collect();
    let mut b = PolicyBuilder::new(domain);
    for (i, (root, a)) in roots.iter().zip(attestors).enumerate() {
        b = b
            .organization_attested(root, &format!("org{i}"), 10_000, &a.public())
            .member(&a.public(), i as u16, 5000);
    }
    for m in members {
        b = b.member(&m.public(), 0, 5000);
    }
    if let Some(q) = finality_quorum {
        b = b.finality_quorum(q);
    }
    b.rules(test_rules())
        .issued(1, now())
        .sign(&roots.iter().collect::<Vec<_>>())
        .unwrap()
}

pub fn proposal(by: &Keypair, policy: ContentId, closes_in_ms: u64) -> (ContentId, Vec<u8>) {
    proposal_in(
        DOMAIN,
        by,
        policy,
        closes_in_ms,
        "loan.approve",
        "{\"amount\":100}",
    )
}

/// A proposal in `domain` closing `closes_in_ms` from now.
pub fn proposal_in(
    domain: &str,
    by: &Keypair,
    policy: ContentId,
    closes_in_ms: u64,
    kind: &str,
    payload: &str,
) -> (ContentId, Vec<u8>) {
    let t = now();
    let m = Body::Proposal(Proposal {
        proposer: by.public(),
        domain: domain.into(),
        policy,
        action: Action {
            kind: kind.into(),
            payload: payload.into(),
        },
        confidence_bps: 8000,
        stakes: 100,
        evidence: Vec::new(),
        created_at: t,
        closes_at: t.plus_ms(closes_in_ms),
        supersedes: None,
    })
    .sign(&[by])
    .unwrap();
    (m.id, m.bytes)
}

pub fn response(by: &Keypair, proposal: ContentId, stance: Stance) -> (ContentId, Vec<u8>) {
    response_in(DOMAIN, by, proposal, stance, "looks right")
}

/// A response at confidence 0.9 in `domain`, issued now.
pub fn response_in(
    domain: &str,
    by: &Keypair,
    proposal: ContentId,
    stance: Stance,
    reasoning: &str,
) -> (ContentId, Vec<u8>) {
    let m = Body::Response(Response {
        responder: by.public(),
        domain: domain.into(),
        proposal,
        stance,
        confidence_bps: 9000,
        reasoning: reasoning.into(),
        evidence: Vec::new(),
        issued_at: now(),
    })
    .sign(&[by])
    .unwrap();
    (m.id, m.bytes)
}

/// Waits until every node shows `p` certified, all with the same
/// certificate, holding `n_receipts` receipts that all sign the certified
/// digest; returns the first node's resolution (control channel).
pub fn identical_receipts(
    nodes: &[&TestNode],
    p: &ContentId,
    n_receipts: usize,
    secs: u64,
) -> Value {
    wait_for(secs, "the same certificate on every node", || {
        let rs: Vec<Value> = nodes.iter().map(|n| n.resolution(p)).collect();
        let ok = rs.iter().all(|r| {
            let cert = &r["finality"]["certificate"];
            r["finality"]["state"] == "certified"
                && r["receipts"].as_array().is_some_and(|a| {
                    a.len() == n_receipts && a.iter().all(|x| x["resolution"] == cert["resolution"])
                })
        });
        let same = rs
            .windows(2)
            .all(|w| w[0]["finality"]["certificate"] == w[1]["finality"]["certificate"]);
        (ok && same).then(|| rs[0].clone())
    })
}
