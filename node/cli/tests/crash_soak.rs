//! Crash soak: a real `acp node` process is killed with SIGKILL (`kill -9`)
//! and restarted, in a bounded loop, while a steady stream of local
//! submissions goes to it and gossip from a peer reaches it. Afterwards the
//! test counts acknowledged-but-lost, duplicated and corrupted messages (all
//! must be 0) and checks that the crashed node's receipts match its peer's.
//!
//! Figures are printed as `CRASH-SOAK ...` lines (`--nocapture` shows them)
//! and recorded in `docs/RELIABILITY.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acp_node::launch::{Launch, Started};
use acp_node::storage::store::{SledStore, Store};
use acp_protocol::build::PolicyBuilder;
use acp_protocol::{ContentId, Keypair, Stance};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_acp");
const DOMAIN: &str = "soak";
/// Kill/restart cycles (the issue asks for at least 20).
const CYCLES: usize = 24;

struct Dir {
    dir: tempfile::TempDir,
    agent: Keypair,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Launch::new(BIN, dir.path())
            .init_loopback(DOMAIN, 1, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let seed = acp_node::keys::read_seed_file(&dir.path().join("agent.key")).unwrap();
        Self {
            dir,
            agent: Keypair::from_seed(seed),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A running `acp node` (SIGKILLed on drop).
struct Node {
    child: Child,
    api: SocketAddr,
    tcp: String,
}

impl Node {
    fn start(dir: &Path, bootstrap: &[&str]) -> Self {
        let Started {
            child, announced, ..
        } = Launch::new(BIN, dir)
            .bootstrap(bootstrap.iter().copied())
            .env("RUST_LOG", "info,libp2p=warn")
            .log(dir.join("node.log"), true)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            child,
            api: announced.control,
            tcp: announced.tcp,
        }
    }

    fn call(&self, req: &Value) -> Value {
        call(self.api, req).unwrap_or_else(|e| panic!("control call {req}: {e}"))
    }

    fn submit(&self, bytes: &[u8]) -> ContentId {
        let v = self.call(&json!({"op": "submit", "hex": hex::encode(bytes)}));
        assert_eq!(v["ok"], true, "submit failed: {v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    fn has(&self, id: &ContentId) -> (bool, bool) {
        let v = self.call(&json!({"op": "has", "id": id.to_string()}));
        (v["engine"] == true, v["store"] == true)
    }

    fn ids(&self) -> Vec<String> {
        let v = self.call(&json!({"op": "ids", "domain": DOMAIN}));
        serde_json::from_value(v["ids"].clone()).unwrap()
    }

    fn peers(&self) -> usize {
        self.call(&json!({"op": "status"}))["peers"]
            .as_array()
            .map_or(0, Vec::len)
    }

    fn resolution(&self, p: &ContentId) -> Value {
        self.call(&json!({"op": "resolution", "proposal": p.to_string()}))
    }

    /// SIGKILL: no shutdown path runs.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One JSON-lines control call; `Err` when the connection fails (the node
/// may have just been killed).
fn call(api: SocketAddr, req: &Value) -> std::io::Result<Value> {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| std::io::Error::other(format!("{e}: {answer:?}")))
}

/// Observers: members with authority 0, so the nodes admit their
/// responses (stored and gossiped) but they weigh nothing.
const OBSERVERS: u64 = 1_000;
/// Long-lived proposals the observers abstain on; message `n` is observer
/// `n % OBSERVERS` on proposal `n / OBSERVERS - 1`, a first response each.
const STREAM_PROPOSALS: u64 = 16;
/// The stream's first message number.
const FIRST_MESSAGE: u64 = OBSERVERS;

fn observer(i: u64) -> Keypair {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

/// The next message of the submission stream: an abstention, numbered from
/// the shared counter.
fn stream_response(next: &Mutex<u64>, proposals: &[ContentId]) -> (ContentId, Vec<u8>) {
    let n = {
        let mut g = next.lock().unwrap();
        *g += 1;
        *g
    };
    let proposal = proposals[usize::try_from(n / OBSERVERS - 1).unwrap()];
    common::response_in(
        DOMAIN,
        &observer(n % OBSERVERS),
        proposal,
        Stance::Abstain,
        &format!("soak message {n}"),
    )
}

/// Waits until both nodes hold `p` certified with the same certificate and
/// one receipt per node, all signing the certified digest and counted root;
/// returns the first node's resolution.
fn receipts_match(nodes: &[&Node], p: &ContentId, secs: u64) -> Value {
    common::wait_for(secs, "identical receipts on both nodes", || {
        let rs: Vec<Value> = nodes.iter().map(|n| n.resolution(p)).collect();
        let ok = rs.iter().all(|r| {
            let cert = &r["finality"]["certificate"];
            r["finality"]["state"] == "certified"
                && r["receipts"].as_array().is_some_and(|a| {
                    let signers: BTreeSet<&str> =
                        a.iter().map(|x| x["node"].as_str().unwrap_or("")).collect();
                    a.len() == nodes.len()
                        && signers.len() == nodes.len()
                        && a.iter().all(|x| {
                            x["resolution"] == cert["resolution"]
                                && x["counted_root"] == cert["counted_root"]
                        })
                })
        });
        let same = rs
            .windows(2)
            .all(|w| w[0]["finality"]["certificate"] == w[1]["finality"]["certificate"]);
        (ok && same).then(|| rs[0].clone())
    })
}

/// What the submitter thread saw in one cycle.
#[derive(Default)]
struct Sent {
    /// Acknowledged by the victim: id -> submitted bytes.
    acked: BTreeMap<ContentId, Vec<u8>>,
    /// Sent but the node died before answering (may or may not be held).
    in_flight: usize,
}

#[test]
fn kill9_restart_soak_loses_nothing_acknowledged() {
    let started = Instant::now();
    let d1 = Dir::new();
    let d2 = Dir::new();
    // Two organizations, each attested by one node's agent, so the victim
    // signs receipts too — the thing a kill -9 must never make it do twice.
    let (org, org2) = (common::org_root(0), common::org_root(1));
    let mut b = PolicyBuilder::new(DOMAIN)
        .organization_attested(&org, "acme", 10_000, &d1.agent.public())
        .organization_attested(&org2, "globex", 10_000, &d2.agent.public())
        .member(&d1.agent.public(), 0, 5000)
        .member(&d2.agent.public(), 1, 5000);
    for i in 0..OBSERVERS {
        b = b.member(&observer(i).public(), 0, 0);
    }
    let pol_msg = b
        .rules(common::test_rules())
        .issued(1, common::now())
        .sign(&[&org, &org2])
        .unwrap();
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes);
    // Both trust the genesis from config.toml, through every restart.
    for d in [&d1, &d2] {
        acp_node::config::persist_anchor(d.path(), DOMAIN, pol).unwrap();
    }
    let peer = Node::start(d1.path(), &[]);
    let mut victim = Node::start(d2.path(), &[&peer.tcp]);
    common::wait_for(20, "connected", || (peer.peers() == 1).then_some(()));
    peer.submit(&pol_bytes);
    // Long-lived proposals that collect the observer stream, and one that
    // closes in the middle of the soak, so the victim finalizes it and
    // signs its receipt between kills.
    let stream_ps: Vec<ContentId> = (0..STREAM_PROPOSALS)
        .map(|i| {
            let (id, bytes) = common::proposal_in(
                DOMAIN,
                &d1.agent,
                pol,
                3_600_000,
                "loan.approve",
                &format!("{{\"amount\":1,\"stream\":{i}}}"),
            );
            peer.submit(&bytes);
            id
        })
        .collect();
    let stream_ps = Arc::new(stream_ps);
    let (mid_p, mid_bytes) = common::proposal_in(
        DOMAIN,
        &d1.agent,
        pol,
        6_000,
        "loan.approve",
        "{\"amount\":2}",
    );
    peer.submit(&mid_bytes);
    common::wait_for(15, "proposals reach the victim", || {
        (stream_ps.iter().all(|p| victim.has(p).0) && victim.has(&mid_p).0).then_some(())
    });
    victim.submit(
        &common::response_in(
            DOMAIN,
            &d2.agent,
            mid_p,
            Stance::Endorse,
            &format!("soak message {}", 0),
        )
        .1,
    );
    peer.submit(
        &common::response_in(
            DOMAIN,
            &d1.agent,
            mid_p,
            Stance::Endorse,
            &format!("soak message {}", 0),
        )
        .1,
    );

    // Every message the victim ever acknowledged, with its bytes.
    let mut acked: BTreeMap<ContentId, Vec<u8>> = BTreeMap::new();
    // Everything submitted anywhere (for the final same-set check).
    let mut all: BTreeSet<ContentId> = [pol, mid_p].into_iter().collect();
    all.extend(stream_ps.iter().copied());
    let mut in_flight_total = 0usize;
    let mut restarts_checked = 0usize;
    let mut lost_after_restart = 0usize;
    let next = Arc::new(Mutex::new(FIRST_MESSAGE));

    for cycle in 0..CYCLES {
        // A steady stream: the submitter thread submits to the victim until
        // its connection fails; a second thread submits to the peer, whose
        // gossip reaches the victim at the moment of the kill.
        let stop = Arc::new(AtomicBool::new(false));
        let api = victim.api;
        let (next_a, stop_a, ps_a) = (next.clone(), stop.clone(), stream_ps.clone());
        let to_victim = std::thread::spawn(move || {
            let mut sent = Sent::default();
            // Bounded: at most 400 submissions per cycle.
            for _ in 0..400 {
                if stop_a.load(Ordering::Relaxed) {
                    break;
                }
                let (id, bytes) = stream_response(&next_a, &ps_a);
                match call(api, &json!({"op": "submit", "hex": hex::encode(&bytes)})) {
                    Ok(v) if v["ok"] == true => {
                        assert_eq!(v["id"].as_str().unwrap(), id.to_string());
                        sent.acked.insert(id, bytes);
                    }
                    Ok(v) => panic!("victim refused a valid message: {v}"),
                    Err(_) => {
                        sent.in_flight += 1;
                        break;
                    }
                }
            }
            sent
        });
        let peer_api = peer.api;
        let (next_b, stop_b, ps_b) = (next.clone(), stop.clone(), stream_ps.clone());
        let to_peer = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for _ in 0..200 {
                if stop_b.load(Ordering::Relaxed) {
                    break;
                }
                let (id, bytes) = stream_response(&next_b, &ps_b);
                let v = call(
                    peer_api,
                    &json!({"op": "submit", "hex": hex::encode(&bytes)}),
                )
                .unwrap();
                assert_eq!(v["ok"], true, "peer refused: {v}");
                ids.push(id);
                std::thread::sleep(Duration::from_millis(10));
            }
            ids
        });
        // Kill at a different point in each cycle (150..=430 ms in).
        std::thread::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 281));
        victim.kill9();
        stop.store(true, Ordering::Relaxed);
        let sent = to_victim.join().unwrap();
        for id in to_peer.join().unwrap() {
            all.insert(id);
        }
        in_flight_total += sent.in_flight;
        all.extend(sent.acked.keys().copied());
        acked.extend(sent.acked);

        // Restart and check every message acknowledged so far, in every
        // earlier cycle too, is held in the engine and in the store.
        victim = Node::start(d2.path(), &[&peer.tcp]);
        restarts_checked += 1;
        for id in acked.keys() {
            if victim.has(id) != (true, true) {
                lost_after_restart += 1;
                eprintln!("cycle {cycle}: acknowledged {id} missing after restart");
            }
        }
        eprintln!(
            "cycle {cycle}: {} acknowledged in total, {} in flight at kills",
            acked.len(),
            in_flight_total
        );
    }
    assert_eq!(lost_after_restart, 0, "acknowledged messages lost");

    // After the soak: a final proposal decided by both nodes' agents.
    common::wait_for(20, "victim reconnected", || {
        (peer.peers() == 1).then_some(())
    });
    let (last_p, last_bytes) = common::proposal_in(
        DOMAIN,
        &d1.agent,
        pol,
        2_000,
        "loan.approve",
        "{\"amount\":3}",
    );
    peer.submit(&last_bytes);
    common::wait_for(15, "last proposal reaches the victim", || {
        victim.has(&last_p).0.then_some(())
    });
    victim.submit(
        &common::response_in(
            DOMAIN,
            &d2.agent,
            last_p,
            Stance::Endorse,
            &format!("soak message {}", 1),
        )
        .1,
    );
    peer.submit(
        &common::response_in(
            DOMAIN,
            &d1.agent,
            last_p,
            Stance::Endorse,
            &format!("soak message {}", 1),
        )
        .1,
    );
    all.insert(last_p);

    // Same set on both nodes, holding everything anyone acknowledged.
    let want: BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    let (a, b) = common::wait_for(30, "same set on both nodes", || {
        let (a, b) = (peer.ids(), victim.ids());
        let held: BTreeSet<String> = b.iter().cloned().collect();
        (a == b && want.is_subset(&held)).then_some((a, b))
    });
    let dup_ids = b.len() - b.iter().collect::<BTreeSet<_>>().len();
    assert_eq!(a.len(), b.len());

    // Receipts: for each decided proposal, one latest receipt per node, all
    // agreeing on the resolution digest and counted root.
    let mid = receipts_match(&[&peer, &victim], &mid_p, 30);
    let last = receipts_match(&[&peer, &victim], &last_p, 30);
    assert_eq!(mid["status"], "approved", "{mid}");
    assert_eq!(last["status"], "approved", "{last}");
    // A node never signs two receipts for one proposal and round, even
    // across a crash (its receipts are durable before they are published).
    let mut receipt_dups = 0usize;
    for p in [&mid_p, &last_p] {
        for n in [&peer, &victim] {
            let r = n.resolution(p);
            let signers: Vec<&str> = r["receipts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["node"].as_str().unwrap())
                .collect();
            let distinct: BTreeSet<&str> = signers.iter().copied().collect();
            receipt_dups += signers.len() - distinct.len();
        }
    }
    // Gossip and receipts the victim wrote reach disk with sled's background
    // flush or the next group commit, so a kill -9 right now could take back
    // the newest of them (sync would fetch them again on restart, but this
    // exact comparison would not hold). Fence: once the set is quiet, one
    // local submission, acknowledged only after a flush that covers every
    // earlier write. Its window is long, so it brings no receipt before the
    // kill.
    let settled = common::wait_for(30, "the victim's set to settle", || {
        let before = victim.ids();
        std::thread::sleep(Duration::from_millis(800));
        (victim.ids() == before).then_some(before)
    });
    let (fence, fence_bytes) = common::proposal_in(
        DOMAIN,
        &d2.agent,
        pol,
        3_000_000,
        "soak.fence",
        r#"{"fence":true}"#,
    );
    victim.submit(&fence_bytes);
    acked.insert(fence, fence_bytes);
    let mut held: BTreeSet<String> = settled.into_iter().collect();
    held.insert(fence.to_string());
    assert_eq!(
        victim.ids().into_iter().collect::<BTreeSet<_>>(),
        held,
        "the victim took in more after settling"
    );
    let held_total = held.len();

    // Stop the victim one last time with kill -9 and read its store from
    // disk: every message decodes, verifies and hashes to its key; every
    // acknowledged message has exactly the bytes that were submitted; no id
    // is stored twice.
    victim.kill9();
    let store = SledStore::open(&d2.path().join("store")).unwrap();
    let mut corrupted = 0usize;
    let mut stored: HashMap<ContentId, usize> = HashMap::new();
    for item in store.iter() {
        let (id, bytes) = item.unwrap();
        *stored.entry(id).or_default() += 1;
        match acp_protocol::decode_message(&bytes) {
            Ok(m) if m.id == id => {}
            _ => corrupted += 1,
        }
    }
    let store_dups: usize = stored.values().map(|c| c - 1).sum();
    let mut lost = 0usize;
    for (id, bytes) in &acked {
        match store.get(id).unwrap() {
            None => lost += 1,
            Some(b) if &b != bytes => corrupted += 1,
            Some(_) => {}
        }
    }
    let duplicated = dup_ids + store_dups + receipt_dups;

    println!(
        "CRASH-SOAK cycles={CYCLES} restarts_checked={restarts_checked} acknowledged={} \
         in_flight_at_kill={in_flight_total} held_after={held_total} lost={lost} \
         duplicated={duplicated} corrupted={corrupted} receipts_match=2/2 secs={:.1}",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "acknowledged-but-lost messages");
    assert_eq!(duplicated, 0, "duplicated messages");
    assert_eq!(corrupted, 0, "corrupted messages");
    let stored_ids: BTreeSet<String> = stored.keys().map(ToString::to_string).collect();
    assert_eq!(stored_ids, held, "store and engine disagree");
    assert!(
        acked.len() >= CYCLES * 5,
        "too few acknowledged submissions"
    );
    drop(peer);
}
