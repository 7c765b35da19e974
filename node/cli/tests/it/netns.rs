//! Partitions across real network hosts: three `acp node` processes, each in
//! a network namespace of its own, joined through a bridge in a fourth
//! namespace by veth pairs, on private addresses (10.88.0.0/24) that exist
//! only inside those namespaces. `tc netem` adds latency and loss; a link is
//! cut (the bridge port goes down) and healed. The side holding two of the
//! three organizations (finality quorum 2) certifies its result while cut;
//! after the heal every node must hold the same set and that certificate.
//!
//! It needs root and iproute2 (`ip`, `tc`); see `harness::require`.
//! Every namespace (and with it every veth and the bridge) and every process
//! it creates is removed by drop guards, on failure too.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use acp_node::launch::Launch;
use acp_protocol::{ContentId, Keypair, PublicKey, Stance};

use crate::harness::*;

const DOMAIN: &str = "netns";
const NODES: usize = 3;
const P2P_PORT: u16 = 7000;
const CONTROL_PORT: u16 = 7420;

fn run(cmd: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(cmd).args(args).stdin(Stdio::null()).output()
}

/// Runs a command that must succeed.
fn must(cmd: &str, args: &[&str]) {
    let out = run(cmd, args).unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces of one test run; dropping it kills whatever still runs in
/// them and deletes them (which deletes their veths and the bridge).
struct Namespaces {
    bridge: String,
    nodes: Vec<String>,
}

impl Namespaces {
    fn all(&self) -> Vec<&String> {
        self.nodes.iter().chain([&self.bridge]).collect()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.all() {
            if let Ok(out) = run("ip", &["netns", "pids", ns]) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = run("kill", &["-9", pid]);
                }
            }
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Whether namespaces can be used here: root, iproute2, and `ip netns add`
/// working (a container may forbid it); see [`require`].
fn namespaces_available(probe: &str) -> bool {
    let why = "the nodes run in network namespaces of their own";
    if !require("root", why) || !require("ip", why) || !require("tc", why) {
        return false;
    }
    let works = run("ip", &["netns", "add", probe]).is_ok_and(|o| o.status.success());
    let _ = run("ip", &["netns", "del", probe]);
    works || skip_or_fail("ip netns add (a working one)", why)
}

fn addr(i: usize) -> String {
    format!("10.88.0.{}", i + 1)
}

/// Builds the bridge namespace and one namespace per node, each with `eth0`
/// (its address) paired to port `p<i>` of bridge `br0`.
fn build(tag: &str) -> Namespaces {
    let net = Namespaces {
        bridge: format!("acpt{tag}br"),
        nodes: (0..NODES).map(|i| format!("acpt{tag}n{i}")).collect(),
    };
    // Created one by one after the guard exists, so a failure midway still
    // deletes what was made.
    for ns in net.all() {
        must("ip", &["netns", "add", ns]);
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }
    let br = net.bridge.as_str();
    must("ip", &["-n", br, "link", "add", "br0", "type", "bridge"]);
    must("ip", &["-n", br, "link", "set", "br0", "up"]);
    for (i, ns) in net.nodes.iter().enumerate() {
        let port = format!("p{i}");
        must(
            "ip",
            &[
                "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", br,
            ],
        );
        must("ip", &["-n", br, "link", "set", &port, "master", "br0"]);
        must("ip", &["-n", br, "link", "set", &port, "up"]);
        let cidr = format!("{}/24", addr(i));
        must("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"]);
        must("ip", &["-n", ns, "link", "set", "eth0", "up"]);
    }
    net
}

/// Shapes a node namespace's `eth0`: `tc netem` with `spec` when the kernel
/// has netem, else (said plainly in the output) a `tbf` rate limit, which
/// adds queueing delay but no random loss.
fn shape(ns: &str, spec: &str, netem: bool) {
    let mut args = vec![
        "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "eth0", "root",
    ];
    if netem {
        args.push("netem");
        args.extend(spec.split_whitespace());
    } else {
        args.extend([
            "tbf", "rate", "512kbit", "burst", "16kbit", "latency", "200ms",
        ]);
    }
    must("ip", &args);
}

/// Whether `tc netem` works in namespace `ns` (kernel module `sch_netem`).
fn netem_available(ns: &str) -> bool {
    let ok = run(
        "ip",
        &[
            "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay",
            "1ms",
        ],
    )
    .is_ok_and(|o| o.status.success());
    let _ = run(
        "ip",
        &[
            "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root",
        ],
    );
    ok
}

/// Cuts (`up = false`) or heals node `i`'s link at the bridge.
fn link(net: &Namespaces, i: usize, up: bool) {
    let port = format!("p{i}");
    let state = if up { "up" } else { "down" };
    must("ip", &["-n", &net.bridge, "link", "set", &port, state]);
}

/// `acp` run through `ip netns exec`, which execs it: the child is the
/// node itself.
fn ns_launch(ns: &str, dir: &Path) -> Launch {
    Launch::new(BIN, dir).prefix(["ip", "netns", "exec", ns])
}

/// `acp init` inside namespace `ns`, listening on `listen`; the agent key.
fn ns_init(ns: &str, dir: &Path, listen: &str) -> Keypair {
    let args = [
        "--listen",
        listen,
        "--control-addr",
        &format!("127.0.0.1:{CONTROL_PORT}"),
        "--no-mdns",
        "--domain",
        DOMAIN,
        "--sync-interval-secs",
        "1",
        "--http-addr",
        "127.0.0.1:7421",
    ];
    ns_launch(ns, dir)
        .init(args)
        .unwrap_or_else(|e| panic!("{e}"));
    key_file(dir, "agent.key")
}

/// Starts `acp node` in namespace `ns` on a directory made by [`ns_init`];
/// its control channel is on the namespace's own loopback, reached through
/// `ip netns exec`.
fn ns_start(ns: &str, dir: &Path, bootstrap: Option<&str>) -> TestNode {
    let mut n = TestNode::launch(
        ns_launch(ns, dir)
            .bootstrap(bootstrap)
            .env("RUST_LOG", "info,libp2p=warn"),
        dir,
    );
    n.control = Control::Netns {
        ns: ns.to_owned(),
        port: CONTROL_PORT,
    };
    n
}

fn ns_index(ns: &str) -> usize {
    ns.rsplit('n').next().unwrap().parse().unwrap()
}

/// Every node holds `p` certified with the same certificate, and one
/// receipt from every node.
fn certificate_agrees(nodes: &[TestNode], p: &ContentId) -> Option<ResolutionAnswer> {
    let rs: Vec<ResolutionAnswer> = nodes.iter().map(|n| n.resolution(p)).collect();
    let cert = &rs[0].finality.certificate;
    let ok = rs.iter().all(|r| {
        r.finality.state == State::Certified && &r.finality.certificate == cert && {
            let signers: BTreeSet<&PublicKey> = r.receipts.iter().map(|x| &x.node).collect();
            signers.len() == nodes.len() && r.receipts.len() == nodes.len()
        }
    });
    ok.then(|| rs[0].clone())
}

#[test]
fn partition_across_namespaces_heals_to_identical_sets_and_certificate() {
    let started = Instant::now();
    let tag = format!("{}", std::process::id() % 1_000_000);
    if !namespaces_available(&format!("acpt{tag}probe")) {
        return;
    }
    // Declared first, dropped last: nodes die before their namespaces go.
    let net = build(&tag);
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    // The policy names the nodes' agents, so they are initialized first; each
    // trusts the genesis from config.toml before it starts. Each agent
    // attests for an organization of its own; two of three certify.
    let agents: Vec<Keypair> = net
        .nodes
        .iter()
        .zip(&dirs)
        .map(|(ns, dir)| {
            ns_init(
                ns,
                dir.path(),
                &format!("/ip4/{}/tcp/{P2P_PORT}", addr(ns_index(ns))),
            )
        })
        .collect();
    let observers: Vec<Keypair> = (0..30u8)
        .map(|i| Keypair::from_seed([i + 60; 32]))
        .collect();
    // Observers are members without authority: stored and synced, weightless.
    let attestors: Vec<&Keypair> = agents.iter().collect();
    let pol_msg = orgs_policy_with(DOMAIN, &attestors, Some(2), |b| {
        observers.iter().fold(b, |b, o| b.member(&o.public(), 0, 0))
    });
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes);
    for dir in &dirs {
        acp_node::config::persist_anchor(dir.path(), DOMAIN, pol).unwrap();
    }
    let mut nodes = vec![ns_start(&net.nodes[0], dirs[0].path(), None)];
    let bootstrap = nodes[0].tcp.clone();
    for (ns, dir) in net.nodes.iter().zip(&dirs).skip(1) {
        nodes.push(ns_start(ns, dir.path(), Some(&bootstrap)));
    }
    wait_until(30, "mesh over the bridge", || {
        (nodes[0].peers() >= NODES - 1).then_some(())
    });

    // Latency and loss on every host's link for the whole run.
    let netem = netem_available(&net.nodes[0]);
    if !netem {
        println!(
            "NETNS NETEM UNAVAILABLE: this kernel has no sch_netem; links are rate-limited \
             with tbf instead, so latency/loss injection is NOT exercised in this run"
        );
    }
    for ns in &net.nodes {
        shape(ns, "delay 40ms 10ms loss 2%", netem);
    }
    nodes[0].submit(&pol_bytes);
    let (p, p_bytes) = proposal_in(
        DOMAIN,
        &agents[0],
        pol,
        3_000,
        "shipment.expedite",
        "{\"order\":7}",
    );
    nodes[0].submit(&p_bytes);
    wait_until(20, "policy and proposal on every host", || {
        nodes
            .iter()
            .all(|n| n.has(&p).engine && n.has(&pol).engine)
            .then_some(())
    });

    // Cut host 2 off; harsher loss on host 1 meanwhile.
    link(&net, 2, false);
    shape(&net.nodes[1], "delay 80ms 20ms loss 10%", netem);
    let mut all: Vec<ContentId> = vec![pol, p];
    let (r1, r1_bytes) = response_in(DOMAIN, &agents[1], p, Stance::Endorse, "side A");
    let (r2, r2_bytes) = response_in(DOMAIN, &agents[2], p, Stance::Challenge, "side B");
    nodes[1].submit(&r1_bytes);
    nodes[2].submit(&r2_bytes);
    all.extend([r1, r2]);
    for (i, o) in observers.iter().enumerate() {
        let side = if i % 2 == 0 { 0 } else { 2 };
        let (id, bytes) = response_in(DOMAIN, o, p, Stance::Abstain, "observer");
        nodes[side].submit(&bytes);
        all.push(id);
    }
    wait_until(20, "r1 within side A", || {
        nodes[0].has(&r1).engine.then_some(())
    });
    // Side A (two organizations) certifies its result; host 2 signs its
    // own receipt of another one; the partition holds.
    wait_until(20, "side A certifies, host 2 signs", || {
        let a = nodes[0].resolution(&p);
        let b = nodes[2].resolution(&p);
        (a.finality.state == State::Certified && !b.receipts.is_empty()).then_some(())
    });
    let crossed = nodes[0].has(&r2).engine || nodes[1].has(&r2).engine || nodes[2].has(&r1).engine;
    assert!(!crossed, "a message crossed the cut link");
    let cut_secs = started.elapsed().as_secs_f64();

    // Heal: the bridge port comes back up; host 2 redials host 0 in case
    // its connection timed out while the link was down.
    link(&net, 2, true);
    shape(&net.nodes[1], "delay 40ms 10ms loss 2%", netem);
    let healed = Instant::now();
    // Raw: the redial may be refused (host 2 may still be connected).
    let redial = nodes[2].call_raw(&ControlRequest::Dial {
        addr: nodes[0].tcp.clone(),
    });
    eprintln!("redial after heal: {redial}");
    let want: BTreeSet<ContentId> = all.iter().copied().collect();
    let set = wait_until(40, "identical sets on every host after heal", || {
        let sets: Vec<Vec<ContentId>> = nodes.iter().map(|n| n.ids_in(DOMAIN)).collect();
        let held: BTreeSet<ContentId> = sets[0].iter().copied().collect();
        (sets.windows(2).all(|w| w[0] == w[1]) && want.is_subset(&held)).then(|| sets[0].clone())
    });
    let sets_secs = healed.elapsed().as_secs_f64();
    let r = wait_until(40, "the same certificate on every host", || {
        certificate_agrees(&nodes, &p)
    });
    let receipts_secs = healed.elapsed().as_secs_f64();
    // The receipts are part of the set: compare once more after them.
    let sets: Vec<Vec<ContentId>> = nodes.iter().map(|n| n.ids_in(DOMAIN)).collect();
    assert!(sets.windows(2).all(|w| w[0] == w[1]), "sets differ");
    // Both votes and every (weightless) observer abstention.
    assert_eq!(r.counted, 2 + observers.len(), "{r:?}");
    // The certificate side A made while cut stands; host 2's receipt for
    // the other result stays a minority attestation.
    assert_eq!(r.status, Status::Approved, "{r:?}");
    assert_eq!(r.finality.certified_by, 2, "{r:?}");
    println!(
        "NETNS hosts={NODES} shaping={} \
         messages={} held_after_heal={} partitioned_until={cut_secs:.1}s \
         identical_sets_after={sets_secs:.1}s same_certificate_after={receipts_secs:.1}s \
         status={:?} total={:.1}s",
        if netem {
            "netem 'delay 40ms 10ms loss 2%' (80ms/10% on one host while cut)"
        } else {
            "tbf 512kbit (netem unavailable)"
        },
        all.len(),
        set.len(),
        r.status,
        started.elapsed().as_secs_f64()
    );
    drop(nodes);
    drop(net);
}
