//! The one test harness of the `it` binary.
//!
//! Nodes are started in process through the library's entry point,
//! [`acp_node::Node::builder`], each on its own small tokio runtime, on
//! 127.0.0.1 with ephemeral ports and mDNS off ([`TestNode::ephemeral`],
//! [`TestNode::in_dir`], [`Net`]). A real `acp node` process
//! ([`TestNode::launch`], [`TestNode::process`]) is used only where the
//! process boundary is the point: kill -9 and restart, network namespaces,
//! a node's own memory. Either kind is driven the same way: its HTTP API
//! and its JSON-lines control channel, their answers read as the
//! library's typed bodies (`acp_node::surface::api::types`).
//!
//! Waiting is [`wait_until`]: a condition polled against a deadline.
//! Tools the machine may lack (chromium, redis-server, iproute2, root,
//! python3 with httpx and pytest) go through [`require`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acp_node::config::Config;
use acp_node::launch::{Launch, Started};
use acp_protocol::build::PolicyBuilder;
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, Keypair, Proposal, PublicKey, Response, SignedMessage,
    Stance, Timestamp,
};
// The API's bodies and the enums they carry, for every test module.
pub use acp_node::surface::api::types::{
    AnchorAdded, AnchorList, ControlOk, ControlRequest, ControlSubmitted, ErrorBody, ErrorDetail,
    Held, IdList, NodeStatus, ProposalDetail, ProposalList, ResolutionAnswer, StatusBody,
    StreamEvent, SubmittedBody, TrustTable,
};
use acp_node::surface::control::read_answer;
pub use acp_protocol::Status;
pub use acp_protocol::finality::State;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The domain every test node joins unless a test names another.
pub const DOMAIN: &str = "test";
/// The `acp` binary built with this package.
pub const BIN: &str = env!("CARGO_BIN_EXE_acp");
/// The repository's root (this package is `node/cli`).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub fn now() -> Timestamp {
    acp_node::service::now()
}

// ---------------------------------------------------------------- waiting

/// Polls `f` every 50 ms until it returns `Some`, or panics after `secs`
/// naming `what`. The one way tests wait for something to happen.
pub fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ tools

/// Whether `tool` is available. When it is not: under CI (env `CI` set)
/// the test fails with a plain message; elsewhere it prints a SKIPPED line
/// and the caller returns. `tool` is a command on `PATH`, or `root`,
/// `chromium` (any of its usual names), or `httpx+pytest` (importable by
/// `python3`).
pub fn require(tool: &str, why: &str) -> bool {
    let present = match tool {
        "root" => is_root(),
        "chromium" => chromium().is_some(),
        "httpx+pytest" => Command::new("python3")
            .args(["-c", "import httpx, pytest"])
            .output()
            .is_ok_and(|o| o.status.success()),
        t => on_path(t),
    };
    present || skip_or_fail(tool, why)
}

/// What [`require`] does when `tool` is missing: fails under CI, else
/// prints a SKIPPED line. Always `false` (the test does not run).
pub fn skip_or_fail(tool: &str, why: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is required under CI: {why}"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    eprintln!("SKIPPED {test}: {tool} missing (not under CI)");
    false
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(cmd);
            f.is_file()
                && std::fs::metadata(&f).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
        })
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The headless browser's command name, if one is installed.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| on_path(b))
}

// -------------------------------------------------------------- data dirs

/// A data directory initialized by `acp init` (loopback, ephemeral ports,
/// mDNS off, sync every second): keys, token and config on disk, for tests
/// that run the CLI against a node or restart one.
pub struct DataDir {
    pub dir: tempfile::TempDir,
    pub agent: Keypair,
}

impl DataDir {
    pub fn new() -> Self {
        Self::for_domain(DOMAIN, &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])
    }

    /// A directory joining `domain`, with `extra` `acp init` arguments.
    pub fn for_domain(domain: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Launch::new(BIN, dir.path())
            .init_loopback(domain, 1, extra)
            .unwrap_or_else(|e| panic!("{e}"));
        let agent = key_file(dir.path(), "agent.key");
        Self { dir, agent }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A key `acp init` wrote here (`human.key`, `reporter.key`, ...).
    pub fn key(&self, file: &str) -> Keypair {
        key_file(self.path(), file)
    }

    /// An in-process node on this directory.
    pub fn start(&self, bootstrap: &[&str]) -> TestNode {
        TestNode::in_dir(self.path(), bootstrap)
    }

    /// A real `acp node` process on this directory.
    pub fn process(&self, bootstrap: &[&str]) -> TestNode {
        TestNode::process(self.path(), bootstrap)
    }
}

pub fn key_file(dir: &Path, file: &str) -> Keypair {
    Keypair::from_seed(acp_node::keys::read_seed_file(&dir.join(file)).unwrap())
}

/// Runs `acp --data-dir DIR ARGS` without the client's environment.
pub fn acp(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ACP_DATA_DIR")
        .env_remove("ACP_URL")
        .env_remove("ACP_TOKEN")
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded.
pub fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "acp failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

// ------------------------------------------------------------------ nodes

/// How a node's control channel is reached.
pub enum Control {
    /// A TCP address on this machine.
    Tcp(SocketAddr),
    /// `127.0.0.1:<port>` inside network namespace `ns`, through a helper
    /// process run with `ip netns exec`.
    Netns { ns: String, port: u16 },
}

enum Kind {
    InProcess {
        // Boxed: a node is large, and a process kind is not.
        node: Option<Box<acp_node::Node>>,
        rt: Option<tokio::runtime::Runtime>,
    },
    Process {
        child: Child,
        log: PathBuf,
    },
}

/// A running node, in process or a child process (killed on drop).
pub struct TestNode {
    kind: Kind,
    pub control: Control,
    pub peer_id: String,
    /// The agent key's public half.
    pub agent: PublicKey,
    /// TCP listen multiaddr with `/p2p/<id>` (empty for a node without one).
    pub tcp: String,
    /// QUIC listen multiaddr with `/p2p/<id>`, when the node listens on one.
    pub quic: Option<String>,
    /// HTTP API base, `http://127.0.0.1:<port>`.
    pub http: String,
    /// The escalation page address with the token in the fragment.
    pub page: String,
    /// The API bearer token.
    pub token: String,
}

/// A config for an in-process node of `domains` on loopback: TCP listen,
/// ephemeral ports, mDNS off, anti-entropy every second.
pub fn loopback_config(domains: &[&str]) -> Config {
    let mut cfg = Config::ephemeral(domains.iter().copied());
    cfg.sync_interval_secs = 1;
    cfg
}

impl TestNode {
    /// An in-process node with `cfg`, `agent` as its agent key (fresh
    /// peer identity, temporary store), bootstrapping from `bootstrap`.
    pub fn ephemeral(mut cfg: Config, agent: Keypair, bootstrap: &[&str]) -> Self {
        cfg.bootstrap
            .extend(bootstrap.iter().map(|s| (*s).to_owned()));
        Self::spawn(cfg, None, Some(agent))
    }

    /// An in-process node on an `acp init` directory: its config (with
    /// `bootstrap` added), keys, token and store.
    pub fn in_dir(dir: &Path, bootstrap: &[&str]) -> Self {
        let mut cfg = Config::load(dir).unwrap_or_else(|e| panic!("{e}"));
        cfg.bootstrap
            .extend(bootstrap.iter().map(|s| (*s).to_owned()));
        Self::spawn(cfg, Some(dir.to_owned()), None)
    }

    fn spawn(cfg: Config, dir: Option<PathBuf>, agent: Option<Keypair>) -> Self {
        let quic_wanted = cfg.listen.iter().any(|a| a.contains("/quic-v1"));
        let tcp_wanted = cfg.listen.iter().any(|a| a.contains("/tcp/"));
        // Its own runtime: the node keeps running while the test thread
        // blocks on HTTP calls, and nodes of parallel tests do not share
        // workers.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-node")
            .enable_all()
            .build()
            .unwrap();
        let node = rt.block_on(async {
            let mut b = acp_node::Node::builder(cfg);
            if let Some(d) = dir {
                b = b.data_dir(d);
            }
            if let Some(a) = agent {
                // Without a directory the API signs human decisions and
                // outcome reports with keys of its own.
                b = b
                    .agent(a)
                    .human(Keypair::from_seed(acp_node::keys::random_seed().unwrap()))
                    .reporter(Keypair::from_seed(acp_node::keys::random_seed().unwrap()));
            }
            b.spawn()
                .await
                .unwrap_or_else(|e| panic!("node start: {e}"))
        });
        let (tcp, quic) = rt.block_on(async {
            let limit = Duration::from_secs(20);
            let tcp = if tcp_wanted {
                node.tcp_addr(limit)
                    .await
                    .expect("no TCP listen address")
                    .to_string()
            } else {
                String::new()
            };
            let quic = if quic_wanted {
                let mut rx = node.listen_addrs();
                let is_quic = |a: &libp2p::Multiaddr| a.to_string().contains("/quic-v1");
                let found = tokio::time::timeout(limit, rx.wait_for(|v| v.iter().any(is_quic)))
                    .await
                    .expect("no QUIC listen address")
                    .unwrap()
                    .iter()
                    .find(|a| is_quic(a))
                    .cloned()
                    .unwrap();
                Some(format!("{found}/p2p/{}", node.peer_id()))
            } else {
                None
            };
            (tcp, quic)
        });
        let http = format!("http://{}", node.http_addr());
        Self {
            control: Control::Tcp(node.control_addr()),
            peer_id: node.peer_id().to_string(),
            agent: node.agent(),
            tcp,
            quic,
            page: format!("{http}/ui/#token={}", node.token()),
            http,
            token: node.token().to_owned(),
            kind: Kind::InProcess {
                node: Some(Box::new(node)),
                rt: Some(rt),
            },
        }
    }

    /// A real `acp node` process on `dir`, bootstrapping from `bootstrap`,
    /// logging to `dir/node.log`.
    pub fn process(dir: &Path, bootstrap: &[&str]) -> Self {
        Self::launch(
            Launch::new(BIN, dir)
                .bootstrap(bootstrap.iter().copied())
                .env("RUST_LOG", "info,libp2p=warn")
                .log(dir.join("node.log"), true),
            dir,
        )
    }

    /// Starts the process `launch` describes, on data directory `dir`.
    pub fn launch(launch: Launch, dir: &Path) -> Self {
        let log = launch.log_path().to_owned();
        let Started {
            child, announced, ..
        } = launch.start().unwrap_or_else(|e| panic!("{e}"));
        let token = std::fs::read_to_string(dir.join("api.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            kind: Kind::Process { child, log },
            control: Control::Tcp(announced.control),
            peer_id: announced.peer,
            agent: key_file(dir, "agent.key").public(),
            tcp: announced.tcp,
            quic: announced.quic,
            http: format!("http://{}", announced.http),
            page: announced.page,
            token,
        }
    }

    /// The child process, for a node started as one.
    pub fn child(&self) -> &Child {
        match &self.kind {
            Kind::Process { child, .. } => child,
            Kind::InProcess { .. } => panic!("an in-process node has no child process"),
        }
    }

    /// SIGKILL, no shutdown path at all (a process node).
    pub fn kill9(&mut self) {
        match &mut self.kind {
            Kind::Process { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Kind::InProcess { .. } => panic!("kill -9 needs a process node"),
        }
    }

    /// The process node's log so far.
    pub fn log_text(&self) -> String {
        match &self.kind {
            Kind::Process { log, .. } => std::fs::read_to_string(log).unwrap_or_default(),
            Kind::InProcess { .. } => String::new(),
        }
    }

    // ---------------------------------------------------------- HTTP API

    /// An HTTP request to the node's `/v1` API with its token: `(status,
    /// body)`, the body raw (JSON, or the text as a string): for answers
    /// whose wire form is the point, and for errors ([`TestNode::refused`]).
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
        send(rb)
    }

    /// A request the node must refuse: `(status, the error)`, the body read
    /// as the API's [`ErrorBody`].
    pub fn refused(&self, method: &str, path: &str, body: Option<Value>) -> (u16, ErrorDetail) {
        let (s, v) = self.http(method, path, body);
        assert!(
            !(200..300).contains(&s),
            "{method} {path} succeeded: {s} {v}"
        );
        (s, error_body(&v))
    }

    /// GET that must succeed, the body raw (for the wire form itself, e.g.
    /// the OpenAPI document).
    pub fn get_json(&self, path: &str) -> Value {
        let (s, v) = self.http("GET", path, None);
        assert!((200..300).contains(&s), "GET {path}: {s} {v}");
        v
    }

    /// GET that must succeed, the body read as `T`.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> T {
        let v = self.get_json(path);
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("GET {path}: {e}: {v}"))
    }

    /// `GET /v1/proposals/{p}`.
    pub fn proposal(&self, p: impl std::fmt::Display) -> ProposalDetail {
        self.get_as(&format!("/proposals/{p}"))
    }

    /// POST that must succeed, the body read as `T`.
    pub fn post_as<T: DeserializeOwned>(&self, path: &str, body: Value) -> T {
        let (s, v) = self.http("POST", path, Some(body));
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("POST {path}: {e}: {v}"))
    }

    /// Trusts `genesis` as the genesis policy of `DOMAIN`.
    pub fn anchor(&self, genesis: ContentId) -> AnchorAdded {
        self.anchor_in(DOMAIN, genesis)
    }

    /// Trusts `genesis` as the genesis policy of `domain`.
    pub fn anchor_in(&self, domain: &str, genesis: ContentId) -> AnchorAdded {
        self.post_as(
            "/anchors",
            json!({"domain": domain, "genesis": genesis.to_string()}),
        )
    }

    /// Raw signed bytes to `POST /v1/messages`: `(status, body)`, raw.
    pub fn post_raw(&self, bytes: &[u8]) -> (u16, Value) {
        send(
            reqwest::blocking::Client::new()
                .post(format!("{}/v1/messages", self.http))
                .bearer_auth(&self.token)
                .body(bytes.to_vec()),
        )
    }

    /// Raw signed bytes the node must refuse: `(status, the error)`.
    pub fn post_refused(&self, bytes: &[u8]) -> (u16, ErrorDetail) {
        let (s, v) = self.post_raw(bytes);
        assert!(!(200..300).contains(&s), "submit succeeded: {s} {v}");
        (s, error_body(&v))
    }

    /// Submits raw signed bytes through `POST /v1/messages`; must succeed.
    pub fn post_message(&self, bytes: &[u8]) -> ContentId {
        let (status, v) = self.post_raw(bytes);
        assert!((200..300).contains(&status), "submit: {status} {v}");
        let s: SubmittedBody =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("submit answer: {e}: {v}"));
        s.id
    }

    /// `GET /metrics` with the token: the Prometheus text.
    pub fn metrics(&self) -> String {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/metrics", self.http))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET /metrics");
        r.text().unwrap()
    }

    /// Opens `GET /v1/events` and returns once the stream is open (the
    /// response headers arrived, so the node has subscribed this client);
    /// the events then arrive on the receiver, each read from its SSE name
    /// and data (an event that does not read fails the reading thread, and
    /// the receiver sees the stream end).
    pub fn events(&self) -> mpsc::Receiver<StreamEvent> {
        let (tx, rx) = mpsc::channel();
        let (open_tx, open_rx) = mpsc::channel();
        let (url, token) = (format!("{}/v1/events", self.http), self.token.clone());
        std::thread::spawn(move || {
            let r = reqwest::blocking::Client::builder()
                .timeout(None)
                .build()
                .unwrap()
                .get(url)
                .bearer_auth(token)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "GET /v1/events");
            let _ = open_tx.send(());
            let mut name = String::from("message");
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if let Some(e) = line.strip_prefix("event:") {
                    name = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    let ev = StreamEvent::parse(&name, d.trim())
                        .unwrap_or_else(|e| panic!("event {name}: {e}: {d}"));
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            }
        });
        open_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the event stream did not open");
        rx
    }

    // --------------------------------------------------- control channel

    /// The control channel's TCP address.
    pub fn control_addr(&self) -> SocketAddr {
        match &self.control {
            Control::Tcp(a) => *a,
            Control::Netns { .. } => panic!("the control channel is inside a namespace"),
        }
    }

    /// One control request, the answer raw (a refusal included).
    pub fn call_raw(&self, req: &ControlRequest) -> Value {
        let req = serde_json::to_value(req).unwrap();
        match &self.control {
            Control::Tcp(addr) => {
                call(*addr, &req).unwrap_or_else(|e| panic!("control {req}: {e}"))
            }
            Control::Netns { ns, port } => netns_call(ns, *port, &req),
        }
    }

    /// One control request that must be answered, the answer read as `T`.
    pub fn call_as<T: DeserializeOwned>(&self, req: &ControlRequest) -> T {
        let v = self.call_raw(req);
        read_answer(&v.to_string()).unwrap_or_else(|e| match e {
            Some(refused) => panic!("control {req:?} refused: {refused}"),
            None => panic!("control {req:?}: not the answer expected: {v}"),
        })
    }

    pub fn submit(&self, bytes: &[u8]) -> ContentId {
        let a: ControlSubmitted = self.call_as(&ControlRequest::Submit {
            hex: hex::encode(bytes),
        });
        assert!(a.ok, "submit failed: {a:?}");
        a.id
    }

    /// The ids the node holds in `DOMAIN`.
    pub fn ids(&self) -> Vec<ContentId> {
        self.ids_in(DOMAIN)
    }

    pub fn ids_in(&self, domain: &str) -> Vec<ContentId> {
        let a: IdList = self.call_as(&ControlRequest::Ids {
            domain: Some(domain.to_owned()),
        });
        a.ids
    }

    /// Whether the engine and the store hold `id`.
    pub fn has(&self, id: &ContentId) -> Held {
        self.call_as(&ControlRequest::Has { id: id.to_string() })
    }

    /// The node's status (control channel).
    pub fn status(&self) -> NodeStatus {
        self.call_as(&ControlRequest::Status)
    }

    /// The peer ids the node is connected to.
    pub fn peer_ids(&self) -> Vec<String> {
        self.status().peers
    }

    pub fn peers(&self) -> usize {
        self.peer_ids().len()
    }

    /// The control channel's gossip-received counter.
    pub fn gossip_received(&self) -> u64 {
        self.status().metrics.gossip_received
    }

    /// `p`'s resolution (control channel).
    pub fn resolution(&self, p: &ContentId) -> ResolutionAnswer {
        self.call_as(&ControlRequest::Resolution {
            proposal: p.to_string(),
        })
    }

    pub fn dial(&self, addr: &str) {
        let a: ControlOk = self.call_as(&ControlRequest::Dial {
            addr: addr.to_owned(),
        });
        assert!(a.ok, "dial failed: {a:?}");
    }
}

/// An error answer read as the API's [`ErrorBody`].
pub fn error_body(v: &Value) -> ErrorDetail {
    let b: ErrorBody =
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not an error body: {e}: {v}"));
    b.error
}

/// Whether a message is held in neither the engine nor the store.
pub fn in_neither(h: &Held) -> bool {
    !h.engine && !h.store
}

/// Whether a message is held in both the engine and the store.
pub fn in_both(h: &Held) -> bool {
    h.engine && h.store
}

impl Drop for TestNode {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Process { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Kind::InProcess { node, rt } => {
                // Stop the node's tasks, then let the runtime go without
                // blocking: this may run inside another runtime's thread.
                drop(node.take());
                if let Some(rt) = rt.take() {
                    rt.shutdown_background();
                }
            }
        }
    }
}

/// Sends a request: `(status, JSON body or the text as a string)`.
pub fn send(rb: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let r = rb.send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One JSON-lines control call; `Err` when the connection fails (a node
/// may have just been killed).
pub fn call(addr: SocketAddr, req: &Value) -> std::io::Result<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| std::io::Error::other(format!("{e}: {answer:?}")))
}

/// [`call`], the answer read as `T`: `Ok(Err(message))` when the node
/// refused the request.
pub fn call_as<T: DeserializeOwned>(
    addr: SocketAddr,
    req: &ControlRequest,
) -> std::io::Result<Result<T, String>> {
    let v = call(addr, &serde_json::to_value(req).unwrap())?;
    match read_answer(&v.to_string()) {
        Ok(t) => Ok(Ok(t)),
        Err(Some(refused)) => Ok(Err(refused.to_string())),
        Err(None) => Err(std::io::Error::other(format!(
            "not the answer expected: {v}"
        ))),
    }
}

/// One control call through a helper process inside namespace `ns`.
fn netns_call(ns: &str, port: u16, req: &Value) -> Value {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 3; \
         printf '%s\\n' \"$ACP_REQ\" >&3; IFS= read -r line <&3; printf '%s' \"$line\""
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "20", "bash", "-c", &script])
        .env("ACP_REQ", req.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "control call in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("control answer in {ns}: {e}"))
}

// -------------------------------------------------------------- networks

/// `n` in-process nodes of `DOMAIN` on loopback, agents `agents[i]`, all
/// bootstrapping from the first; started connected.
pub struct Net {
    pub nodes: Vec<TestNode>,
    pub agents: Vec<Keypair>,
}

impl Net {
    /// `n` nodes, every one after the first bootstrapping from it; returns
    /// once the first sees all the others.
    pub fn star(n: usize) -> Self {
        let agents: Vec<Keypair> = (0..n).map(|_| fresh_key()).collect();
        let mut nodes: Vec<TestNode> = Vec::with_capacity(n);
        for a in &agents {
            let boot: Vec<String> = nodes.first().map(|f| f.tcp.clone()).into_iter().collect();
            let boot: Vec<&str> = boot.iter().map(String::as_str).collect();
            nodes.push(TestNode::ephemeral(
                loopback_config(&[DOMAIN]),
                a.clone(),
                &boot,
            ));
        }
        let net = Self { nodes, agents };
        net.wait_connected(0, n - 1);
        net
    }

    /// Waits until node `i` is connected to at least `peers` others.
    pub fn wait_connected(&self, i: usize, peers: usize) {
        wait_until(20, "nodes connected", || {
            (self.nodes[i].peers() >= peers).then_some(())
        });
    }

    pub fn agent_refs(&self) -> Vec<&Keypair> {
        self.agents.iter().collect()
    }
}

/// A fresh random key.
pub fn fresh_key() -> Keypair {
    Keypair::from_seed(acp_node::keys::random_seed().unwrap())
}

/// Every node trusts `genesis`, then `nodes[submit_on]` receives the
/// policy, and every node holds it.
pub fn genesis_everywhere(nodes: &[&TestNode], genesis: ContentId, bytes: &[u8], submit_on: usize) {
    for n in nodes {
        n.anchor(genesis);
    }
    nodes[submit_on].submit(bytes);
    for n in nodes {
        wait_until(15, "the policy everywhere", || {
            n.has(&genesis).engine.then_some(())
        });
    }
}

/// Waits until every node holds the same message set in `DOMAIN`.
pub fn same_set(nodes: &[&TestNode], secs: u64) -> Vec<ContentId> {
    wait_until(secs, "the same set on every node", || {
        let a = nodes[0].ids();
        nodes[1..].iter().all(|n| n.ids() == a).then_some(a)
    })
}

/// Waits until every node shows `p` certified, all with the same
/// certificate, holding `n_receipts` receipts by distinct nodes that all
/// sign the certified digest and counted root; returns the first node's resolution (control channel).
pub fn identical_receipts(
    nodes: &[&TestNode],
    p: &ContentId,
    n_receipts: usize,
    secs: u64,
) -> ResolutionAnswer {
    wait_until(secs, "the same certificate on every node", || {
        let rs: Vec<ResolutionAnswer> = nodes.iter().map(|n| n.resolution(p)).collect();
        let ok = rs.iter().all(|r| {
            r.finality.state == State::Certified
                && r.finality.certificate.as_ref().is_some_and(|cert| {
                    r.receipts.len() == n_receipts
                        && r.receipts.iter().all(|x| {
                            x.resolution == cert.resolution && x.counted_root == cert.counted_root
                        })
                })
        });
        let same = rs
            .windows(2)
            .all(|w| w[0].finality.certificate == w[1].finality.certificate);
        (ok && same).then(|| rs[0].clone())
    })
}

// ------------------------------------------------------------- metrics

/// The value of the sample whose name-and-labels part is exactly `series`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok())?
    })
}

/// The sum of every sample of metric `name` (any labels).
pub fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            let base = k.split('{').next()?;
            (base == name).then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

// ------------------------------------------------------------- policies

/// A genesis policy for `DOMAIN`: one organization whose attestor is
/// `agents[0]` (finality quorum 1), every agent a member with authority 5000.
pub fn policy(agents: &[&Keypair]) -> (ContentId, Vec<u8>) {
    let m = orgs_policy(DOMAIN, &[agents[0]], &agents[1..], None);
    (m.id, m.bytes)
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
    orgs_policy_with(domain, attestors, finality_quorum, |b| {
        members
            .iter()
            .fold(b, |b, m| b.member(&m.public(), 0, 5000))
    })
}

/// [`orgs_policy`] with the members (and anything else) added by `more`.
pub fn orgs_policy_with(
    domain: &str,
    attestors: &[&Keypair],
    finality_quorum: Option<u16>,
    more: impl FnOnce(PolicyBuilder) -> PolicyBuilder,
) -> SignedMessage {
    let roots: Vec<Keypair> = (0..attestors.len()).map(org_root).collect();
    let mut b = PolicyBuilder::new(domain);
    for (i, (root, a)) in roots.iter().zip(attestors).enumerate() {
        b = b
            .organization_attested(root, &format!("org{i}"), 10_000, &a.public())
            .member(&a.public(), i as u16, 5000);
    }
    b = more(b);
    if let Some(q) = finality_quorum {
        b = b.finality_quorum(q);
    }
    b.rules(test_rules())
        .issued(1, now())
        .sign(&roots.iter().collect::<Vec<_>>())
        .unwrap()
}

/// One organization `acme` (root `org`) attested by `agent`; `agent` and
/// `members` vote with authority 5000; `human`/`reporter` if given.
pub fn acme_policy(
    org: &Keypair,
    agent: &PublicKey,
    members: &[&PublicKey],
    human: Option<&PublicKey>,
    reporter: Option<&PublicKey>,
) -> SignedMessage {
    let mut b = PolicyBuilder::new(DOMAIN)
        .organization_attested(org, "acme", 10_000, agent)
        .member(agent, 0, 5_000);
    for m in members {
        b = b.member(m, 0, 5_000);
    }
    if let Some(h) = human {
        b = b.human(h);
    }
    if let Some(r) = reporter {
        b = b.reporter(r);
    }
    b.rules(test_rules()).issued(1, now()).sign(&[org]).unwrap()
}

// ------------------------------------------------------------- messages

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

/// When a proposal (given as bytes) closes.
pub fn closes_at(proposal: &[u8]) -> Timestamp {
    match acp_protocol::decode_message(proposal).unwrap().body() {
        Body::Proposal(p) => p.closes_at,
        _ => panic!("not a proposal"),
    }
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
    let m = response_signed(domain, by, by, proposal, stance, reasoning, now());
    (m.id, m.bytes)
}

/// A response naming `by` as the responder, signed by `signer` (another
/// key forges it), issued at `issued_at`, confidence 0.9.
pub fn response_signed(
    domain: &str,
    by: &Keypair,
    signer: &Keypair,
    proposal: ContentId,
    stance: Stance,
    reasoning: &str,
    issued_at: Timestamp,
) -> SignedMessage {
    Body::Response(Response {
        responder: by.public(),
        domain: domain.into(),
        proposal,
        stance,
        confidence_bps: 9000,
        reasoning: reasoning.into(),
        evidence: Vec::new(),
        issued_at,
    })
    .sign(&[signer])
    .unwrap()
}

// ------------------------------------------------------------ HTTP tap

/// A one-connection TCP relay in front of an HTTP server, for a client
/// the test cannot watch (a child process): [`HeaderTap::opened`] returns
/// once the server has sent its first bytes back to the client, i.e. the
/// response headers, so the server has run the handler.
pub struct HeaderTap {
    pub url: String,
    opened: mpsc::Receiver<()>,
}

impl HeaderTap {
    pub fn new(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, opened) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(upstream).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let mut buf = [0u8; 8192];
            let mut first = true;
            loop {
                match s_read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if first {
                            first = false;
                            let _ = tx.send(());
                        }
                    }
                }
            }
        });
        Self { url, opened }
    }

    /// Waits until the server answered the relayed request.
    pub fn opened(&self, secs: u64) {
        self.opened
            .recv_timeout(Duration::from_secs(secs))
            .expect("the server never answered through the tap");
    }
}

// ---------------------------------------------------------- hostile peer

enum HostileCmd {
    Publish(Vec<u8>),
    Close,
}

/// A hostile libp2p peer connected to one honest node, speaking the node's
/// own protocols. Its swarm runs in a task on the caller's tokio runtime;
/// messages given to [`Hostile::send`] are published on the domain topic
/// one by one. It does not subscribe: it never receives the honest
/// messages, so nothing stops it from replaying them.
pub struct Hostile {
    tx: tokio::sync::mpsc::UnboundedSender<HostileCmd>,
    pub peer_id: String,
    queued: u64,
    pub published: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub failed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Connects to `target` and returns once it has seen `target`
    /// subscribed to `DOMAIN`'s topic (so publishing reaches it).
    pub async fn connect(target: &TestNode) -> Self {
        use acp_node::transport::p2p::{self, BehaviourEvent, NetConfig};
        use futures::StreamExt;
        use libp2p::gossipsub;
        use libp2p::swarm::SwarmEvent;
        use std::sync::atomic::{AtomicU64, Ordering};
        let cfg = NetConfig {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            domains: vec![DOMAIN.into()],
            mdns: false,
            max_message_bytes: 1 << 20,
            queue_capacity: 4096,
            mesh_degree: p2p::DEFAULT_MESH_DEGREE,
        };
        let key = libp2p::identity::Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id().to_string();
        let mut swarm = p2p::build_swarm(key, &cfg).unwrap();
        swarm
            .dial(target.tcp.parse::<libp2p::Multiaddr>().unwrap())
            .unwrap();
        let target_peer: libp2p::PeerId = target.peer_id.parse().unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                        gossipsub::Event::Subscribed { peer_id, .. },
                    )) if peer_id == target_peer => break,
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id != target_peer => {
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("hostile peer never saw the honest node subscribe");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<HostileCmd>();
        let published = std::sync::Arc::new(AtomicU64::new(0));
        let failed = std::sync::Arc::new(AtomicU64::new(0));
        let (p, f) = (published.clone(), failed.clone());
        let topic = p2p::topic(DOMAIN);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    ev = swarm.select_next_some() => {
                        // Talk to the target only (its DHT would dial the
                        // other honest node), so that anything the other
                        // node receives was forwarded by the target.
                        if let SwarmEvent::ConnectionEstablished { peer_id, .. } = ev
                            && peer_id != target_peer
                        {
                            let _ = swarm.disconnect_peer_id(peer_id);
                        }
                    }
                    m = rx.recv() => {
                        let bytes = match m {
                            Some(HostileCmd::Publish(b)) => b,
                            // Closing gracefully: the target reads the
                            // connection to its end, then drops the peer.
                            Some(HostileCmd::Close) => {
                                let _ = swarm.disconnect_peer_id(target_peer);
                                continue;
                            }
                            None => break,
                        };
                        // Retry while the per-peer send queue is full.
                        let mut sent = false;
                        for _ in 0..50 {
                            let r = swarm
                                .behaviour_mut()
                                .gossipsub
                                .publish(topic.clone(), bytes.clone());
                            match r {
                                Ok(_) => {
                                    sent = true;
                                    break;
                                }
                                Err(gossipsub::PublishError::AllQueuesFull(_)) => {
                                    // Drive the swarm a little so the queue
                                    // drains, then retry.
                                    let wait = Duration::from_millis(5);
                                    let _ = tokio::time::timeout(wait, swarm.select_next_some())
                                        .await;
                                }
                                Err(_) => break,
                            }
                        }
                        let counter = if sent { &p } else { &f };
                        counter.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
        Self {
            tx,
            peer_id,
            queued: 0,
            published,
            failed,
            task,
        }
    }

    pub fn send(&mut self, bytes: Vec<u8>) {
        self.queued += 1;
        let _ = self.tx.send(HostileCmd::Publish(bytes));
    }

    /// Messages that could not be published (locally).
    pub fn failed(&self) -> u64 {
        self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until every queued message was handed to gossipsub (or failed
    /// locally). Needs a multi-thread runtime: it blocks this worker while
    /// the swarm task runs on another.
    pub fn flush(&self) {
        use std::sync::atomic::Ordering;
        tokio::task::block_in_place(|| {
            wait_until(30, "the hostile peer to publish its queue", || {
                (self.published.load(Ordering::SeqCst) + self.failed.load(Ordering::SeqCst)
                    >= self.queued)
                    .then_some(())
            });
        });
    }

    /// Flushes, closes the connection, and waits until `target` has dropped
    /// this peer: `target` read the connection to its end, so it has taken
    /// in every frame that was written before the close.
    pub fn close(&self, target: &TestNode) {
        self.flush();
        let _ = self.tx.send(HostileCmd::Close);
        tokio::task::block_in_place(|| {
            wait_until(20, "the honest node to drop the hostile peer", || {
                (!target.peer_ids().contains(&self.peer_id)).then_some(())
            });
        });
    }
}

/// Whether `n`'s core has judged every gossip message its transport took
/// in (each is counted in `acp_messages_in_total{origin="peer"}`, or as
/// dropped when the core's queue was full): with a barrier that proves the
/// bytes arrived, this proves they were processed.
pub fn core_caught_up(n: &TestNode) -> bool {
    let m = n.metrics();
    let received = sample(&m, "acp_gossip_received_total").unwrap_or(0.0);
    let judged = sample(&m, "acp_messages_in_total{origin=\"peer\"}").unwrap_or(0.0)
        + sample(&m, "acp_queue_dropped_events_total").unwrap_or(0.0);
    judged >= received
}
