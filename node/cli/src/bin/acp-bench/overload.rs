//! Item 5: resources under overload.
//!
//! One `acp node` (fresh data directory per phase) and, in this process,
//! `--publishers` libp2p peers (each on its own thread and connection, built
//! with the node's own `p2p::build_swarm`) that publish valid signed
//! responses on the domain's topic. Each node trusts the benchmark's genesis
//! policy, which names [`MEMBERS`] members, and holds [`PROPOSALS`]-many
//! open proposals before the publishers start; every response is one
//! member's first vote on one proposal, so the node admits and stores each:
//! decode, verify, admission, engine insert, the sled write, and the resolve
//! of the proposals a burst touched.
//!
//! Phases, each on a fresh node, each bounded in time:
//! 1. saturation: publish at `--saturation-rate` (far above what the node
//!    takes) for `--secs`; the node's sustainable rate C is the number of
//!    messages it took in per second;
//! 2. 1×: publish at C for `--secs`;
//! 3. 10×: publish at 10·C for `--secs` (the achieved offered rate is printed).
//!
//! With `--cpu-quota Q` the node runs in a cgroup limited to Q cores (as a
//! container CPU limit would), so that ten times its sustainable rate is
//! within what the publishers on the remaining CPU can offer; without it a
//! node with a whole core outruns publishers sharing a two-core machine.
//!
//! `offered/s` counts every publish attempted at the phase's rate; `sender
//! full` counts those the publisher's own bounded queue refused because the
//! node's connection pushed back (flow control): load shed before it reached
//! the node. `received` is gossip handed to the node's core, `dropped` what
//! its bounded core queue refused (counted, then ignored).
//!
//! Sampled every 200 ms from `/proc/<pid>`: resident memory (VmRSS) and CPU
//! time; from the node's status: messages held, dropped events (core queue
//! full), gossip received.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acp_node::transport::p2p::{self, BehaviourEvent, NetConfig};
use acp_protocol::{Body, Keypair, Response, SignedMessage, Stance};
use anyhow::{Context, anyhow};
use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;

use crate::cluster::{self, DOMAIN, Node};
use crate::util::{Scratch, key, load, proc_sample};

/// Options of `acp-bench overload`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Overload factor of the last phase.
    #[arg(long, default_value_t = 10)]
    factor: u64,
    /// The `acp` binary (default: next to this one).
    #[arg(long)]
    acp: Option<PathBuf>,
    /// Offered rate of the saturation phase, messages/s in total; it must be
    /// well above what the node takes (check that `dropped` is not zero).
    #[arg(long, default_value_t = 10_000)]
    saturation_rate: u64,
    /// Publishing peers, each with its own connection to the node.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Limit the node to this many cores with a cgroup (needs a writable
    /// cgroup v1 `cpu` or v2 `cpu.max`; 0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    cpu_quota: f64,
}

/// A CPU-limited cgroup the node is moved into; removed on drop.
struct CpuLimit(PathBuf);

impl CpuLimit {
    fn new(pid: u32, cores: f64) -> anyhow::Result<Self> {
        // A short period keeps the throttled node's stalls short.
        let period = 10_000u64;
        let quota = ((cores * period as f64) as u64).max(1_000);
        let name = format!("acp-bench-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let dir = if v1.join("cpu.cfs_quota_us").exists() {
            let d = v1.join(&name);
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("cpu.cfs_period_us"), period.to_string())?;
            std::fs::write(d.join("cpu.cfs_quota_us"), quota.to_string())?;
            d
        } else {
            let d = Path::new("/sys/fs/cgroup").join(&name);
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("cpu.max"), format!("{quota} {period}"))?;
            d
        };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving the node into {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // The node has exited by now (it is dropped first), so the group is empty.
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Members of the benchmark policy: each votes once per proposal.
const MEMBERS: usize = 2_000;
/// Open proposals per phase; with [`MEMBERS`] it bounds a phase's messages.
const PROPOSALS: usize = 256;

/// What a phase's node holds before the publishers start: the genesis
/// policy and the open proposals, which the responses vote on.
struct Setup {
    policy: SignedMessage,
    proposals: Vec<SignedMessage>,
}

fn setup(from: u32) -> anyhow::Result<Setup> {
    let members: Vec<Keypair> = (0..MEMBERS).map(|i| key(31, i as u32)).collect();
    let proposer = key(32, 0);
    let policy = cluster::policy(&members.iter().collect::<Vec<_>>(), &proposer)?;
    let proposals = (0..PROPOSALS)
        .map(|i| cluster::proposal(&proposer, policy.id, u64::from(from) + i as u64, 3_000_000))
        .collect::<anyhow::Result<_>>()?;
    Ok(Setup { policy, proposals })
}

/// `n` responses, member `i % MEMBERS` on proposal `i / MEMBERS`: each a
/// first vote, never an equivocation.
fn messages(base: &Setup, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    if n > MEMBERS * PROPOSALS {
        anyhow::bail!(
            "{n} messages in one phase; at most {} (lower --secs or the rate)",
            MEMBERS * PROPOSALS
        );
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = n.div_ceil(threads);
    let now = acp_node::service::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<Vec<Vec<u8>>> {
                    let lo = t * per;
                    let hi = ((t + 1) * per).min(n);
                    (lo..hi)
                        .map(|i| {
                            let k = key(31, (i % MEMBERS) as u32);
                            let body = Body::Response(Response {
                                responder: k.public(),
                                domain: DOMAIN.into(),
                                proposal: base.proposals[i / MEMBERS].id,
                                stance: Stance::Endorse,
                                confidence_bps: 9000,
                                reasoning: "The merchant category and velocity match a known card-testing pattern.".into(),
                                evidence: Vec::new(),
                                issued_at: now,
                            });
                            Ok(body.sign(&[&k])?.bytes)
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in hs {
            out.extend(h.join().map_err(|_| anyhow!("signer panicked"))??);
        }
        Ok(out)
    })
}

struct Phase {
    offered: f64,
    accepted: f64,
    cpu: f64,
    rss_idle_mb: f64,
    rss_peak_mb: f64,
    rss_end_mb: f64,
    dropped: u64,
    received: u64,
    publish_failed: u64,
}

fn counters(n: &Node) -> anyhow::Result<(u64, u64, u64)> {
    let v = cluster::status(n.api)?;
    Ok((
        u64::try_from(v.messages)?,
        v.metrics.dropped_events,
        v.metrics.gossip_received,
    ))
}

/// One publishing peer: connects to the node, waits for its subscription,
/// then publishes `msgs` at `rate`/s for `secs`. Returns (published, refused by its own full queue).
fn publisher(
    node_addr: &str,
    msgs: &[Vec<u8>],
    rate: u64,
    ready: &std::sync::Barrier,
    secs: u64,
) -> anyhow::Result<(u64, u64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _in_rt = rt.enter();
    let cfg = NetConfig::dialer(DOMAIN);
    let mut swarm = p2p::build_swarm(libp2p::identity::Keypair::generate_ed25519(), &cfg)?;
    let topic = p2p::topic(DOMAIN);
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    swarm.dial(node_addr.parse::<libp2p::Multiaddr>()?)?;
    let subscribed = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                    gossipsub::Event::Subscribed { .. },
                )) = swarm.select_next_some().await
                {
                    break;
                }
            }
        })
        .await
    });
    // Everyone reaches the barrier, subscribed or not, so no thread hangs.
    ready.wait();
    subscribed.map_err(|_| anyhow!("the node never subscribed"))?;
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let (mut sent, mut failed) = (0usize, 0u64);
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now >= end || sent >= msgs.len() {
                        break;
                    }
                    let due = ((now - start).as_secs_f64() * rate as f64) as usize;
                    while sent < due.min(msgs.len()) {
                        if swarm
                            .behaviour_mut()
                            .gossipsub
                            .publish(topic.clone(), msgs[sent].clone())
                            .is_err()
                        {
                            failed += 1;
                        }
                        sent += 1;
                    }
                }
            }
        }
    });
    Ok((sent as u64, failed))
}

/// One phase on a fresh node: `--publishers` peers publish `msgs` at a
/// total of `rate`/s for at most `secs`.
fn phase(a: &Args, exe: &Path, s: &Setup, msgs: &[Vec<u8>], rate: u64) -> anyhow::Result<Phase> {
    let scratch = Scratch::new("overload")?;
    let node = cluster::start_node(exe, &scratch.0.join("node"), &[], 3600, s.policy.id)?;
    cluster::submit(node.api, &s.policy.bytes)?;
    for p in &s.proposals {
        cluster::submit(node.api, &p.bytes)?;
    }
    let pid = node.pid();
    let _limit = if a.cpu_quota > 0.0 {
        Some(CpuLimit::new(pid, a.cpu_quota)?)
    } else {
        None
    };
    let n = a.publishers.max(1);
    let ready = std::sync::Barrier::new(n + 1);
    let per = msgs.len().div_ceil(n);
    let (idle, held0, drop0, recv0, start, results, peak) = std::thread::scope(|s| {
        let hs: Vec<_> = msgs
            .chunks(per.max(1))
            .map(|chunk| {
                let (tcp, ready) = (node.tcp.as_str(), &ready);
                s.spawn(move || publisher(tcp, chunk, rate / n as u64, ready, a.secs))
            })
            .collect();
        // Fewer chunks than publishers: stand in for the missing ones.
        for _ in hs.len()..n {
            ready.wait();
        }
        ready.wait();
        let idle = proc_sample(pid);
        let counters0 = counters(&node);
        let start = Instant::now();
        let mut peak = idle.rss_kb;
        while !hs.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            peak = peak.max(proc_sample(pid).rss_kb);
        }
        let results: Vec<anyhow::Result<(u64, u64)>> = hs
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("publisher panicked"))?)
            .collect();
        counters0.map(|(h, d, r)| (idle, h, d, r, start, results, peak))
    })?;
    let (mut sent, mut failed) = (0u64, 0u64);
    for r in results {
        let (s, f) = r?;
        sent += s;
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let at_end = proc_sample(pid);
    let peak = peak.max(at_end.rss_kb);
    let (held1, drop1, recv1) = counters(&node)?;
    let tck = 100.0; // USER_HZ on Linux
    Ok(Phase {
        offered: sent as f64 / elapsed,
        accepted: (held1 - held0) as f64 / elapsed,
        cpu: (at_end.cpu_ticks - idle.cpu_ticks) as f64 / tck / elapsed,
        rss_idle_mb: idle.rss_kb as f64 / 1024.0,
        rss_peak_mb: peak as f64 / 1024.0,
        rss_end_mb: at_end.rss_kb as f64 / 1024.0,
        dropped: drop1 - drop0,
        received: recv1 - recv0,
        publish_failed: failed,
    })
}

fn print(name: &str, p: &Phase) {
    println!(
        "{name:<12} {:>9.0} {:>9.0} {:>6.2} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>9} {:>8}",
        p.offered,
        p.accepted,
        p.cpu,
        p.rss_idle_mb,
        p.rss_peak_mb,
        p.rss_end_mb,
        p.received,
        p.dropped,
        p.publish_failed
    );
}

/// `acp-bench overload`.
pub fn run(a: &Args) -> anyhow::Result<()> {
    let exe = cluster::acp_exe(&a.acp)?;
    println!(
        "overload: {} s per phase, {} publishers, node cpu quota {}; {} (start)",
        a.secs,
        a.publishers,
        if a.cpu_quota > 0.0 {
            format!("{} cores", a.cpu_quota)
        } else {
            "none".into()
        },
        load()
    );
    let sat_setup = setup(0)?;
    let sat_msgs = messages(&sat_setup, (a.saturation_rate * a.secs) as usize)?;
    println!(
        "{:<12} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "phase",
        "offered/s",
        "taken/s",
        "cpus",
        "rss0 MB",
        "peak MB",
        "end MB",
        "received",
        "dropped",
        "sender full"
    );
    let sat = phase(a, &exe, &sat_setup, &sat_msgs, a.saturation_rate)?;
    print("saturation", &sat);
    drop(sat_msgs);
    let c = sat.accepted.max(1.0) as u64;
    let one_setup = setup(1_000_000)?;
    let one = messages(&one_setup, (c * a.secs) as usize)?;
    let p1 = phase(a, &exe, &one_setup, &one, c)?;
    print("1x", &p1);
    drop(one);
    let ten_setup = setup(2_000_000)?;
    let ten = messages(&ten_setup, (a.factor * c * a.secs) as usize)?;
    let p10 = phase(a, &exe, &ten_setup, &ten, a.factor * c)?;
    print(&format!("{}x", a.factor), &p10);
    println!(
        "sustainable rate C = {c}/s; memory {}x / 1x: peak {:.2}, end {:.2}; cpu {}x / 1x {:.2}; {} (end)",
        a.factor,
        p10.rss_peak_mb / p1.rss_peak_mb,
        p10.rss_end_mb / p1.rss_end_mb,
        a.factor,
        p10.cpu / p1.cpu,
        load()
    );
    Ok(())
}
