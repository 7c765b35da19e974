//! Time to certificate: N real `acp node` processes, organizations whose
//! attestors are nodes of the cluster, proposals decided at their close and
//! certified by a quorum of organizations — against the central HTTP
//! coordinator of `latency`, measured in the same run.
//!
//! Node `i`'s agent is a member of organization `i mod O`; organization `o`
//! attests with node `o`'s agent key (a node signs receipts with its agent
//! key). `k` agents vote on every proposal from their own nodes; a listed
//! proposer submits on the last node. A proposal is certified when every
//! node has logged `certified` for it. The window is short and fixed, so the
//! figure "after close" is what certification itself costs: the grace
//! period, the pre-receipt sync round, and gossip of the receipts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use acp_node::launch::Launch;
use acp_protocol::build::PolicyBuilder;
use acp_protocol::{ContentId, DecisionRules, Keypair, SignedMessage};
use anyhow::{Context, bail};

use crate::cluster::{
    self, DOMAIN, LatencyArgs, Node, Stats, cpu_ticks, event_times, has_all, held, launch_node,
    pace, propose_and_vote, stats, submit, total_sent, wait_for,
};
use crate::util::{Scratch, key, load};

/// Options of `acp-bench certify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "3,10,20")]
    nodes: Vec<usize>,
    /// Organizations (at most the cluster size); the finality quorum is the
    /// default, more than two thirds of them.
    #[arg(long, default_value_t = 4)]
    orgs: usize,
    /// Voting agents per proposal (at most the cluster size).
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Measured proposals per cluster size (after 2 warm-up proposals).
    #[arg(long, default_value_t = 30)]
    proposals: usize,
    /// Milliseconds between proposal starts (bounded, paced load).
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Proposal window: every proposal is decided at its close.
    #[arg(long, default_value_t = 2_000)]
    closes_in_ms: u64,
    /// The `acp` binary (default: next to this one).
    #[arg(long)]
    acp: Option<PathBuf>,
}

const WARMUP: usize = 2;

/// What one cluster size measured.
struct Run {
    from_submit: Stats,
    from_close: Stats,
    cpu_ms: f64,
    messages: f64,
    bytes: f64,
}

fn read_agent(dir: &Path) -> anyhow::Result<Keypair> {
    let seed = acp_node::keys::read_seed_file(&dir.join(acp_node::keys::AGENT_KEY_FILE))?;
    Ok(Keypair::from_seed(seed))
}

/// The genesis: node `i` a member of organization `i mod orgs`, organization
/// `o` attested by node `o`, `proposer` listed. Participation is not
/// required (only `k` of `n` members vote), so every proposal is decided —
/// approved — at its close.
fn genesis(agents: &[Keypair], orgs: usize, proposer: &Keypair) -> anyhow::Result<SignedMessage> {
    let roots: Vec<Keypair> = (0..orgs).map(|o| key(25, o as u32)).collect();
    let mut b = PolicyBuilder::new(DOMAIN);
    for (o, root) in roots.iter().enumerate() {
        b = b.organization_attested(root, &format!("org {o}"), 10_000, &agents[o].public());
    }
    for (i, a) in agents.iter().enumerate() {
        b = b.member(&a.public(), (i % orgs) as u16, 5_000);
    }
    let refs: Vec<&Keypair> = roots.iter().collect();
    Ok(b.proposer(&proposer.public())
        .rules(DecisionRules {
            quorum_margin_bps: 1_000,
            min_participation_bps: 0,
            low_confidence_bps: 0,
            high_stakes: None,
            min_window_ms: 500,
            max_window_ms: 3_600_000,
        })
        .issued(1, acp_node::service::now())
        .sign(&refs)?)
}

fn run(a: &Args, exe: &Path, n: usize) -> anyhow::Result<Run> {
    let scratch = Scratch::new(&format!("cert{n}"))?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| scratch.0.join(format!("n{i}"))).collect();
    // The policy names the nodes' own keys, so the nodes are initialized
    // first and trust the genesis before they start.
    let mut agents = Vec::new();
    for d in &dirs {
        Launch::new(exe, d).init_loopback(DOMAIN, 30, &["--log-json"])?;
        agents.push(read_agent(d)?);
    }
    let orgs = a.orgs.clamp(1, n);
    let proposer = key(24, 0);
    let pol = genesis(&agents, orgs, &proposer)?;
    for d in &dirs {
        let out = Command::new(exe)
            .arg("--data-dir")
            .arg(d)
            .args(["anchor", "add", "--domain", DOMAIN, "--genesis"])
            .arg(pol.id.to_string())
            .output()?;
        if !out.status.success() {
            bail!("acp anchor add: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let nodes = cluster::connect(n, |i, boot| launch_node(exe, &dirs[i], boot))?;
    submit(nodes[0].api, &pol.bytes)?;
    wait_for(30, "the policy on every node", || {
        has_all(&nodes, &pol.id).then_some(())
    })?;
    let k = a.k.min(n);
    let total = a.proposals + WARMUP;
    let (cpu0, held0, (sent0, _)) = (cpu_ticks(&nodes), held(&nodes[0]), total_sent(&nodes)?);
    let interval = Duration::from_millis(a.interval_ms);
    let start = Instant::now();
    let mut started: Vec<(ContentId, u64, u64)> = Vec::new();
    for i in 0..total {
        let (p, t0) = propose_and_vote(&nodes, &proposer, &agents[..k], pol.id, i, a.closes_in_ms)?;
        let closes_us = match p.body() {
            acp_protocol::Body::Proposal(b) => b.closes_at.0 * 1_000,
            _ => 0,
        };
        started.push((p.id, t0, closes_us));
        pace(start, i, interval);
    }
    // Every node logs `certified` once per proposal; wait for the last one
    // (bounded: the window, the grace and a generous margin).
    let logs = |nodes: &[Node]| -> Vec<HashMap<String, u64>> {
        nodes
            .iter()
            .map(|nd| event_times(&nd.log, "certified"))
            .collect()
    };
    let last = started.last().map(|s| s.0.to_string()).unwrap_or_default();
    let _ = wait_for(
        a.closes_in_ms / 1_000 + 30,
        "the last certificate on every node",
        || {
            logs(&nodes)
                .iter()
                .all(|l| l.contains_key(&last))
                .then_some(())
        },
    );
    let cpu_ms = (cpu_ticks(&nodes) - cpu0) as f64 * 10.0 / total as f64;
    let messages = held(&nodes[0]).saturating_sub(held0) as f64 / total as f64;
    let bytes = total_sent(&nodes)?.0.saturating_sub(sent0) as f64 / total as f64;
    let logs = logs(&nodes);
    let (mut submit_lat, mut close_lat, mut missing) = (Vec::new(), Vec::new(), 0);
    for (id, t0, closes_us) in started.iter().skip(WARMUP) {
        let key = id.to_string();
        let ts: Option<Vec<u64>> = logs.iter().map(|l| l.get(&key).copied()).collect();
        match ts.and_then(|t| t.into_iter().max()) {
            Some(t) => {
                submit_lat.push(t.saturating_sub(*t0) as f64 / 1000.0);
                close_lat.push(t.saturating_sub(*closes_us) as f64 / 1000.0);
            }
            None => missing += 1,
        }
    }
    drop(nodes);
    Ok(Run {
        from_submit: stats(submit_lat, missing),
        from_close: stats(close_lat, missing),
        cpu_ms,
        messages,
        bytes,
    })
}

/// `acp-bench certify`.
pub fn certify(a: &Args) -> anyhow::Result<()> {
    let exe = cluster::acp_exe(&a.acp)?;
    println!(
        "certify: {} organizations (at most N), k = {} votes, {} proposals every {} ms closing after {} ms; {} (start)",
        a.orgs,
        a.k,
        a.proposals,
        a.interval_ms,
        a.closes_in_ms,
        load()
    );
    println!(
        "{:>3} {:>2} {:<34} {:>9} {:>9} {:>5} {:>7}",
        "N", "O", "system", "p50 ms", "p99 ms", "n", "missing"
    );
    for &n in &a.nodes {
        let o = a.orgs.clamp(1, n);
        let k = a.k.min(n);
        let r = run(a, &exe, n).with_context(|| format!("N = {n}"))?;
        let row = |name: &str, s: &Stats| {
            println!(
                "{n:>3} {o:>2} {name:<34} {:>9.1} {:>9.1} {:>5} {:>7}",
                s.p50, s.p99, s.n, s.missing
            );
        };
        row("acp: submit -> certified everywhere", &r.from_submit);
        row("acp: close -> certified everywhere", &r.from_close);
        let coord = cluster::coord_run(
            &LatencyArgs {
                nodes: vec![n],
                k,
                proposals: a.proposals,
                interval_ms: a.interval_ms,
                closes_in_ms: a.closes_in_ms,
                acp: None,
            },
            n,
            k,
            true,
        )?;
        row("coordinator (fdatasync) decision", &coord);
        println!(
            "{n:>3} {o:>2} per decision: {:.1} ms CPU over all nodes ({:.2} ms per node), {:.1} messages stored, {:.0} wire bytes; ratio acp close->certified / coordinator p50 {:.1}; {}",
            r.cpu_ms,
            r.cpu_ms / n as f64,
            r.messages,
            r.bytes,
            r.from_close.p50 / coord.p50,
            load()
        );
    }
    Ok(())
}
