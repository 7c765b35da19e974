//! Items 3 and 4: real `acp node` processes on 127.0.0.1.
//!
//! Nodes are started as the tests and `acp demo` start them (`acp init` with
//! ephemeral loopback ports and mDNS off, then `acp node`), TCP only so the
//! byte counters see every connection, logging JSON lines to a file. Node `i`
//! bootstraps to node 0 and to nodes `i-1` and `i/2`, a connected graph of
//! average degree about 5. They are driven through the control channel
//! (`acp submit`'s path: validated, stored and flushed before the answer).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acp_node::launch::{Launch, Started};
use acp_node::surface::api::types::{ControlRequest, ControlSubmitted, Held, NodeStatus};
use acp_node::surface::control::{self, ControlError};
use acp_protocol::build::{self, Ask, PolicyBuilder};
use acp_protocol::{ContentId, DecisionRules, Keypair, SignedMessage, Stance};
use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::coord::{self, Coordinator};
use crate::util::{Scratch, key, load, proc_sample, quantile};

pub const DOMAIN: &str = "bench";

/// A running `acp node` (killed on drop).
pub struct Node {
    child: Child,
    pub api: SocketAddr,
    pub http: SocketAddr,
    /// The HTTP API bearer token.
    pub token: String,
    pub tcp: String,
    pub log: PathBuf,
}

impl Node {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `acp` binary: `--acp`, else next to this executable.
pub fn acp_exe(explicit: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name("acp");
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p acp-node --bins` or pass --acp",
            p.display()
        );
    }
    Ok(p)
}

/// Initializes and starts one node in `dir`, trusting `genesis` as the
/// domain's genesis policy (a node without the anchor admits nothing).
pub fn start_node(
    exe: &Path,
    dir: &Path,
    bootstrap: &[String],
    sync_secs: u64,
    genesis: ContentId,
) -> anyhow::Result<Node> {
    let genesis = genesis.to_string();
    Launch::new(exe, dir).init_loopback(
        DOMAIN,
        sync_secs,
        &["--log-json", "--genesis", &genesis],
    )?;
    launch_node(exe, dir, bootstrap)
}

/// Starts `acp node` in a directory `acp init` already prepared.
pub fn launch_node(exe: &Path, dir: &Path, bootstrap: &[String]) -> anyhow::Result<Node> {
    let launch = Launch::new(exe, dir)
        .bootstrap(bootstrap.iter().cloned())
        .timeout(Duration::from_secs(60));
    let Started {
        child, announced, ..
    } = launch.start()?;
    let token = std::fs::read_to_string(dir.join(acp_node::keys::TOKEN_FILE))?
        .trim()
        .to_owned();
    Ok(Node {
        child,
        api: announced.control,
        http: announced.http,
        token,
        tcp: announced.tcp,
        log: launch.log_path().to_owned(),
    })
}

/// One control-channel request on a fresh connection (as `acp submit`
/// does); the answer read as `T`, `Err(Some)` when the node refused.
fn request<T: DeserializeOwned>(
    api: SocketAddr,
    req: &ControlRequest,
) -> anyhow::Result<Result<T, ControlError>> {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    match control::read_answer(&answer) {
        Ok(v) => Ok(Ok(v)),
        Err(Some(refused)) => Ok(Err(refused)),
        Err(None) => bail!("malformed control answer: {}", answer.trim()),
    }
}

/// [`request`], failing unless the node accepted it.
pub fn call<T: DeserializeOwned>(api: SocketAddr, req: &ControlRequest) -> anyhow::Result<T> {
    request(api, req)?.map_err(|e| anyhow!("node refused: {e}"))
}

fn submit_request(bytes: &[u8]) -> ControlRequest {
    ControlRequest::Submit {
        hex: hex::encode(bytes),
    }
}

pub fn submit(api: SocketAddr, bytes: &[u8]) -> anyhow::Result<()> {
    let _: ControlSubmitted = call(api, &submit_request(bytes))?;
    Ok(())
}

/// Submits a vote as an agent on its own node would: a node refuses a vote
/// on a proposal it does not hold yet (`waiting for <id>`), so the agent
/// retries until the proposal has reached its node (within 10 s).
pub fn submit_vote(api: SocketAddr, bytes: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let req = submit_request(bytes);
    loop {
        let e = match request::<ControlSubmitted>(api, &req)? {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let waiting = matches!(&e, ControlError::Refused(m) if m.starts_with("waiting for"));
        if !waiting || Instant::now() > deadline {
            bail!("node refused: {e}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// CPU ticks (10 ms) used so far by all the nodes' processes.
pub fn cpu_ticks(nodes: &[Node]) -> u64 {
    nodes.iter().map(|nd| proc_sample(nd.pid()).cpu_ticks).sum()
}

/// Proposal number `i` submitted on the last node by `proposer`, then a vote
/// by each of `agents` on its own node; returns the proposal and the time
/// just before it was submitted.
pub fn propose_and_vote(
    nodes: &[Node],
    proposer: &Keypair,
    agents: &[Keypair],
    policy: ContentId,
    i: usize,
    closes_in_ms: u64,
) -> anyhow::Result<(SignedMessage, u64)> {
    let p = proposal(proposer, policy, i as u64, closes_in_ms)?;
    let votes: Vec<Vec<u8>> = agents
        .iter()
        .map(|ag| response(ag, &p).map(|m| m.bytes))
        .collect::<Result<_, _>>()?;
    let t0 = now_us();
    submit(nodes[nodes.len() - 1].api, &p.bytes)?;
    submit_votes(nodes, &votes)?;
    Ok((p, t0))
}

/// Vote `j` submitted on node `j`, all at once, as agents on their own
/// nodes would.
pub fn submit_votes(nodes: &[Node], votes: &[Vec<u8>]) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let hs: Vec<_> = votes
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let api = nodes[j].api;
                s.spawn(move || submit_vote(api, v))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("vote thread panicked"))?)
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    Ok(())
}

pub fn status(api: SocketAddr) -> anyhow::Result<NodeStatus> {
    call(api, &ControlRequest::Status)
}

pub fn wait_for<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    acp_node::launch::poll(Duration::from_secs(secs), f)
        .ok_or_else(|| anyhow::anyhow!("timed out waiting for {what}"))
}

/// Starts `n` connected nodes under `root`, all trusting `genesis`.
pub fn start_cluster(
    exe: &Path,
    root: &Path,
    n: usize,
    sync_secs: u64,
    genesis: ContentId,
) -> anyhow::Result<Vec<Node>> {
    connect(n, |i, boot| {
        start_node(exe, &root.join(format!("n{i}")), boot, sync_secs, genesis)
    })
}

/// Starts `n` nodes with `start(i, bootstrap)`: node `i` bootstraps to nodes
/// 0, `i-1` and `i/2`; returns once every node has a peer and the meshes had
/// time to form.
pub fn connect(
    n: usize,
    mut start: impl FnMut(usize, &[String]) -> anyhow::Result<Node>,
) -> anyhow::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let mut boot: Vec<String> = Vec::new();
        for j in [0, i.saturating_sub(1), i / 2] {
            if j < i && !boot.contains(&nodes[j].tcp) {
                boot.push(nodes[j].tcp.clone());
            }
        }
        nodes.push(start(i, &boot)?);
    }
    wait_for(60, "every node to have a peer", || {
        nodes
            .iter()
            .all(|nd| status(nd.api).is_ok_and(|v| !v.peers.is_empty()))
            .then_some(())
    })?;
    // Let gossipsub heartbeats (0.7 s) build the meshes.
    std::thread::sleep(Duration::from_secs(4));
    Ok(nodes)
}

/// A genesis policy naming `agents` (authority 5000 each) under one
/// organization, with `proposer` allowed to propose without voting.
/// `min_participation_bps` = 10000: an early decision needs every vote. The
/// organization attests with its root key, which no node holds: nodes are
/// neither members nor attestors, so they sign no receipts and the
/// benchmarks measure decisions, not certificates.
pub fn policy(agents: &[&Keypair], proposer: &Keypair) -> anyhow::Result<SignedMessage> {
    let org = key(21, 0);
    let mut b = PolicyBuilder::new(DOMAIN).organization(&org, "bench", 10_000);
    for a in agents {
        b = b.member(&a.public(), 0, 5000);
    }
    Ok(b.proposer(&proposer.public())
        .rules(DecisionRules {
            quorum_margin_bps: 1000,
            min_participation_bps: 10_000,
            low_confidence_bps: 0,
            high_stakes: None,
            min_window_ms: 500,
            max_window_ms: 3_600_000,
        })
        .issued(1, acp_node::service::now())
        .sign(&[&org])?)
}

pub fn proposal(
    by: &Keypair,
    policy: ContentId,
    n: u64,
    closes_in_ms: u64,
) -> anyhow::Result<SignedMessage> {
    let t = acp_node::service::now();
    Ok(Ask {
        domain: DOMAIN,
        policy,
        kind: "payment.block",
        payload: format!(r#"{{"payment":"p-{n}","amount_cents":125000}}"#),
        confidence_bps: 8000,
        stakes: 0,
        evidence: Vec::new(),
        created_at: t,
        closes_at: t.plus_ms(closes_in_ms),
    }
    .sign(by)?)
}

pub fn response(by: &Keypair, proposal: &SignedMessage) -> anyhow::Result<SignedMessage> {
    Ok(build::response(
        by,
        proposal,
        Stance::Endorse,
        9000,
        "The merchant category and velocity match a known card-testing pattern.",
        acp_node::service::now(),
    )?)
}

pub fn has_all(nodes: &[Node], id: &ContentId) -> bool {
    nodes.iter().all(|n| {
        let req = ControlRequest::Has { id: id.to_string() };
        call::<Held>(n.api, &req).is_ok_and(|v| v.engine)
    })
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Microseconds since the epoch of an RFC 3339 UTC timestamp
/// (`2026-11-30T01:23:45.123456Z`, as the node's JSON log writes it).
pub fn parse_ts(s: &str) -> Option<u64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let frac: String = frac.chars().take_while(char::is_ascii_digit).collect();
    let us: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + us).ok()
}

/// Time of each proposal's `resolved` (early decision) log line of a node.
fn decided_times(log: &Path) -> HashMap<String, u64> {
    event_times(log, "resolved")
}

/// The parts of a node's JSON log line the benchmarks read.
#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    fields: LogFields,
}

#[derive(Deserialize, Default)]
struct LogFields {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    proposal: Option<String>,
}

/// Time of the first log line with `message` for each proposal of a node.
pub fn event_times(log: &Path, message: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let Ok(l) = serde_json::from_str::<LogLine>(line) else {
            continue;
        };
        if l.fields.message.as_deref() == Some(message)
            && let (Some(p), Some(t)) =
                (l.fields.proposal, l.timestamp.as_deref().and_then(parse_ts))
        {
            out.entry(p).or_insert(t);
        }
    }
    out
}

/// Options of `acp-bench latency`.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "3,10,20")]
    pub nodes: Vec<usize>,
    /// Voting agents per proposal (at most the cluster size).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Measured proposals per cluster size (after 3 warm-up proposals).
    #[arg(long, default_value_t = 60)]
    pub proposals: usize,
    /// Milliseconds between proposal starts (bounded, paced load).
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// Proposal window; early decision decides long before it closes.
    #[arg(long, default_value_t = 20_000)]
    pub closes_in_ms: u64,
    /// The `acp` binary (default: next to this one).
    #[arg(long)]
    pub acp: Option<PathBuf>,
}

pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub n: usize,
    pub missing: usize,
    /// CPU time of all nodes per decision, in ms (ACP runs only).
    cpu_ms: Option<f64>,
}

pub fn stats(mut v: Vec<f64>, missing: usize) -> Stats {
    v.sort_by(f64::total_cmp);
    Stats {
        p50: quantile(&v, 0.5),
        p99: quantile(&v, 0.99),
        n: v.len(),
        missing,
        cpu_ms: None,
    }
}

pub fn pace(start: Instant, i: usize, interval: Duration) {
    let at = start + interval * u32::try_from(i + 1).unwrap_or(u32::MAX);
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// ACP: proposal submitted on the proposer's node, then each agent's vote on
/// its own node (agent `j` lives on node `j`, the proposer on node `n-1`),
/// all at once, each as soon as its node holds the proposal (a node refuses
/// a vote on a proposal it has not seen); done when every node has logged
/// the early decision.
fn acp_run(a: &LatencyArgs, exe: &Path, n: usize, k: usize) -> anyhow::Result<Stats> {
    let scratch = Scratch::new(&format!("lat{n}"))?;
    let agents: Vec<Keypair> = (0..k).map(|j| key(22, j as u32)).collect();
    let refs: Vec<&Keypair> = agents.iter().collect();
    let proposer = key(23, 0);
    let pol = policy(&refs, &proposer)?;
    let nodes = start_cluster(exe, &scratch.0, n, 30, pol.id)?;
    submit(nodes[0].api, &pol.bytes)?;
    wait_for(30, "the policy on every node", || {
        has_all(&nodes, &pol.id).then_some(())
    })?;
    let total = a.proposals + 3;
    let mut started: Vec<(ContentId, u64)> = Vec::new();
    let interval = Duration::from_millis(a.interval_ms);
    let cpu0 = cpu_ticks(&nodes);
    let start = Instant::now();
    for i in 0..total {
        let (p, t0) = propose_and_vote(&nodes, &proposer, &agents, pol.id, i, a.closes_in_ms)?;
        started.push((p.id, t0));
        pace(start, i, interval);
    }
    // Let the last decisions land in the logs.
    std::thread::sleep(Duration::from_secs(3));
    // Ticks are 10 ms; includes background (heartbeats, sync) over the run.
    let cpu_ms = (cpu_ticks(&nodes) - cpu0) as f64 * 10.0 / total as f64;
    let logs: Vec<HashMap<String, u64>> = nodes.iter().map(|nd| decided_times(&nd.log)).collect();
    let mut lat = Vec::new();
    let mut missing = 0;
    for (id, t0) in started.iter().skip(3) {
        let key = id.to_string();
        let ts: Option<Vec<u64>> = logs.iter().map(|l| l.get(&key).copied()).collect();
        match ts.and_then(|t| t.into_iter().max()) {
            Some(t) => lat.push(t.saturating_sub(*t0) as f64 / 1000.0),
            None => missing += 1,
        }
    }
    drop(nodes);
    Ok(Stats {
        cpu_ms: Some(cpu_ms),
        ..stats(lat, missing)
    })
}

/// The coordinator baseline: proposal POSTed, the same `k` vote bytes POSTed
/// at once, `n` observers long-polling the decision; done when the last
/// observer has it.
pub fn coord_run(a: &LatencyArgs, n: usize, k: usize, durable: bool) -> anyhow::Result<Stats> {
    let scratch = Scratch::new("coord")?;
    let file = scratch.0.join("votes.log");
    let c = Coordinator::start(k, durable.then_some(file.as_path()))?;
    let agents: Vec<Keypair> = (0..k).map(|j| key(22, j as u32)).collect();
    let proposer = key(23, 0);
    let pol = ContentId::of(b"policy");
    let total = a.proposals + 3;
    let interval = Duration::from_millis(a.interval_ms);
    let start = Instant::now();
    let mut lat = Vec::new();
    for i in 0..total {
        let p = proposal(&proposer, pol, i as u64, a.closes_in_ms)?;
        let votes: Vec<Vec<u8>> = agents
            .iter()
            .map(|ag| {
                response(ag, &p).map(|m| {
                    let mut b = b"E".to_vec();
                    b.extend_from_slice(hex::encode(&m.bytes).as_bytes());
                    b
                })
            })
            .collect::<Result<_, _>>()?;
        let path = format!("/decision/{i}");
        let (ready_tx, ready_rx) = mpsc::channel();
        let t_end = std::thread::scope(|s| -> anyhow::Result<u64> {
            let observers: Vec<_> = (0..n)
                .map(|_| {
                    let ready = ready_tx.clone();
                    let path = path.clone();
                    s.spawn(move || -> anyhow::Result<u64> {
                        let _ = ready.send(());
                        coord::request(c.addr, "GET", &path, b"")?;
                        Ok(now_us())
                    })
                })
                .collect();
            for _ in 0..n {
                ready_rx.recv()?;
            }
            // Let the long polls reach the server before the clock starts.
            std::thread::sleep(Duration::from_millis(20));
            let t0 = now_us();
            coord::request(
                c.addr,
                "POST",
                &format!("/proposal/{i}"),
                hex::encode(&p.bytes).as_bytes(),
            )?;
            let voters: Vec<_> = votes
                .iter()
                .map(|v| {
                    let path = format!("/vote/{i}");
                    s.spawn(move || coord::request(c.addr, "POST", &path, v))
                })
                .collect();
            for h in voters {
                h.join().map_err(|_| anyhow!("vote thread panicked"))??;
            }
            let mut end = 0;
            for h in observers {
                end = end.max(h.join().map_err(|_| anyhow!("observer panicked"))??);
            }
            Ok(end.saturating_sub(t0))
        })?;
        if i >= 3 {
            lat.push(t_end as f64 / 1000.0);
        }
        pace(start, i, interval);
    }
    Ok(stats(lat, 0))
}

/// `acp-bench latency`.
pub fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    let exe = acp_exe(&a.acp)?;
    println!(
        "latency: k = {} votes (clamped to N), {} proposals every {} ms per size; {} (start)",
        a.k,
        a.proposals,
        a.interval_ms,
        load()
    );
    println!(
        "{:>3} {:>2} {:<26} {:>9} {:>9} {:>5} {:>7}",
        "N", "k", "system", "p50 ms", "p99 ms", "n", "missing"
    );
    let row = |n: usize, k: usize, name: &str, s: &Stats| {
        println!(
            "{n:>3} {k:>2} {name:<26} {:>9.2} {:>9.2} {:>5} {:>7}",
            s.p50, s.p99, s.n, s.missing
        );
    };
    for &n in &a.nodes {
        let k = a.k.min(n);
        let acp = acp_run(a, &exe, n, k)?;
        row(n, k, "acp nodes", &acp);
        if let Some(ms) = acp.cpu_ms {
            println!(
                "{n:>3} {k:>2} acp CPU per decision: {ms:.1} ms over all nodes, {:.2} ms per node",
                ms / n as f64
            );
        }
        let durable = coord_run(a, n, k, true)?;
        row(n, k, "coordinator (fdatasync)", &durable);
        let mem = coord_run(a, n, k, false)?;
        row(n, k, "coordinator (memory)", &mem);
        println!(
            "{n:>3} {k:>2} ratio acp/coordinator: p50 {:.2} p99 {:.2} (fdatasync); p50 {:.2} p99 {:.2} (memory); {}",
            acp.p50 / durable.p50,
            acp.p99 / durable.p99,
            acp.p50 / mem.p50,
            acp.p99 / mem.p99,
            load()
        );
    }
    Ok(())
}

/// Options of `acp-bench gossip`.
#[derive(clap::Args, Debug)]
pub struct GossipArgs {
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    nodes: Vec<usize>,
    /// Messages published (responses, rotating over the nodes).
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second.
    #[arg(long, default_value_t = 40)]
    rate: u64,
    /// Seconds of idle traffic measured before the messages (background).
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// The `acp` binary (default: next to this one).
    #[arg(long)]
    acp: Option<PathBuf>,
}

pub fn total_sent(nodes: &[Node]) -> anyhow::Result<(u64, usize)> {
    let mut bytes = 0;
    let mut degree = 0;
    for n in nodes {
        let v = status(n.api)?;
        bytes += v.metrics.tcp_bytes_sent;
        degree += v.peers.len();
    }
    Ok((bytes, degree))
}

/// Mean gossipsub mesh size of the nodes (one topic), from `GET /metrics`.
fn mean_mesh(nodes: &[Node]) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for n in nodes {
        let mut s = TcpStream::connect_timeout(&n.http, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            n.http, n.token
        )?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text)?;
        let mesh = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("libp2p_gossipsub_mesh_peers{")
                    .and_then(|r| r.split_once("} "))
            })
            .with_context(|| {
                let status = text.lines().next().unwrap_or_default();
                format!("no mesh figure in /metrics ({status})")
            })?;
        sum += mesh.1.trim().parse::<f64>()?;
    }
    Ok(sum / nodes.len() as f64)
}

pub fn held(n: &Node) -> usize {
    status(n.api).map_or(0, |v| v.messages)
}

/// `acp-bench gossip`.
pub fn gossip(a: &GossipArgs) -> anyhow::Result<()> {
    let exe = acp_exe(&a.acp)?;
    println!(
        "gossip: {} responses at {}/s per size, idle window {} s; {} (start)",
        a.messages,
        a.rate,
        a.idle_secs,
        load()
    );
    for &n in &a.nodes {
        let scratch = Scratch::new(&format!("gossip{n}"))?;
        let agents: Vec<Keypair> = (0..a.messages).map(|j| key(24, j as u32)).collect();
        // Every responder is a member: the nodes admit only members' responses.
        let proposer = key(23, 1);
        let pol = policy(&agents.iter().collect::<Vec<_>>(), &proposer)?;
        // Anti-entropy every hour: only its on-connect round runs, before the window.
        let nodes = start_cluster(&exe, &scratch.0, n, 3600, pol.id)?;
        let p = proposal(&proposer, pol.id, 0, 3_000_000)?;
        submit(nodes[0].api, &pol.bytes)?;
        submit(nodes[0].api, &p.bytes)?;
        wait_for(30, "setup messages everywhere", || {
            has_all(&nodes, &p.id).then_some(())
        })?;
        let base = held(&nodes[0]);
        let msgs: Vec<SignedMessage> = agents
            .iter()
            .map(|ag| response(ag, &p))
            .collect::<Result<_, _>>()?;
        let size = msgs.iter().map(|m| m.bytes.len()).sum::<usize>() as f64 / msgs.len() as f64;
        std::thread::sleep(Duration::from_secs(2));
        let (s0, _) = total_sent(&nodes)?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(a.idle_secs));
        let (s1, degree) = total_sent(&nodes)?;
        let idle = t0.elapsed().as_secs_f64();
        let bg_rate = (s1 - s0) as f64 / idle;
        let t1 = Instant::now();
        let interval = Duration::from_micros(1_000_000 / a.rate.max(1));
        for (i, m) in msgs.iter().enumerate() {
            submit(nodes[i % n].api, &m.bytes)?;
            pace(t1, i, interval);
        }
        wait_for(60, "every message on every node", || {
            nodes
                .iter()
                .all(|nd| held(nd) >= base + msgs.len())
                .then_some(())
        })?;
        // Gossip (IHAVE) for a message goes on for a few heartbeats.
        std::thread::sleep(Duration::from_secs(3));
        let (s2, _) = total_sent(&nodes)?;
        let dt = t1.elapsed().as_secs_f64();
        let mesh = mean_mesh(&nodes)?;
        let attributable = (s2 - s1) as f64 - bg_rate * dt;
        let payload = msgs.len() as f64 * size * (n - 1) as f64;
        let edges = degree as f64 / 2.0;
        let flood_graph = (2.0 * edges - (n - 1) as f64) / (n - 1) as f64;
        println!(
            "N={n}: {} msgs of {size:.0} B, {} connections (mean degree {:.1}, mean gossipsub mesh {mesh:.1}); wire bytes sent {:.0} in {dt:.1} s, background {:.0} B/s ({:.0} B in window)",
            msgs.len(),
            edges,
            degree as f64 / n as f64,
            (s2 - s1) as f64,
            bg_rate,
            bg_rate * dt
        );
        println!(
            "N={n}: gossip bytes ratio {:.2} (attributable {:.0} B / payload×receivers {:.0} B); raw incl. background {:.2}; plain flooding payload-only: {:.2} on this graph, {:.2} on a full mesh; {}",
            attributable / payload,
            attributable,
            payload,
            (s2 - s1) as f64 / payload,
            flood_graph,
            (n - 1) as f64,
            load()
        );
        drop(nodes);
    }
    Ok(())
}
