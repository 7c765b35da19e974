//! Crash soak: a real `acp node` process is killed with SIGKILL (`kill -9`)
//! and restarted, in a bounded loop, while a steady stream of local
//! submissions goes to it and gossip from a peer reaches it. Afterwards the
//! test counts acknowledged-but-lost, duplicated and corrupted messages (all
//! must be 0) and checks that the crashed node's receipts match its peer's.
//!
//! Figures are printed as `CRASH-SOAK ...` lines (`--nocapture` shows them)
//! and recorded in `docs/RELIABILITY.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acp_node::storage::store::{SledStore, Store};
use acp_protocol::{ContentId, Keypair, PublicKey, Stance};

use crate::harness::*;
const DOMAIN: &str = "soak";
/// Kill/restart cycles (at least 20 by design).
const CYCLES: usize = 24;

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
    response_in(
        DOMAIN,
        &observer(n % OBSERVERS),
        proposal,
        Stance::Abstain,
        &format!("soak message {n}"),
    )
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
    let d1 = DataDir::for_domain(DOMAIN, &[]);
    let d2 = DataDir::for_domain(DOMAIN, &[]);
    // Two organizations, each attested by one node's agent, so the victim
    // signs receipts too — the thing a kill -9 must never make it do twice.
    let pol_msg = orgs_policy_with(DOMAIN, &[&d1.agent, &d2.agent], None, |b| {
        (0..OBSERVERS).fold(b, |b, i| b.member(&observer(i).public(), 0, 0))
    });
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes);
    // Both trust the genesis from config.toml, through every restart.
    for d in [&d1, &d2] {
        acp_node::config::persist_anchor(d.path(), DOMAIN, pol).unwrap();
    }
    let peer = d1.process(&[]);
    let mut victim = d2.process(&[&peer.tcp]);
    wait_until(20, "connected", || (peer.peers() == 1).then_some(()));
    peer.submit(&pol_bytes);
    // Long-lived proposals that collect the observer stream, and one that
    // closes in the middle of the soak, so the victim finalizes it and
    // signs its receipt between kills.
    let stream_ps: Vec<ContentId> = (0..STREAM_PROPOSALS)
        .map(|i| {
            let (id, bytes) = proposal_in(
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
    let (mid_p, mid_bytes) = proposal_in(
        DOMAIN,
        &d1.agent,
        pol,
        6_000,
        "loan.approve",
        "{\"amount\":2}",
    );
    peer.submit(&mid_bytes);
    wait_until(15, "proposals reach the victim", || {
        (stream_ps.iter().all(|p| victim.has(p).engine) && victim.has(&mid_p).engine).then_some(())
    });
    victim.submit(
        &response_in(
            DOMAIN,
            &d2.agent,
            mid_p,
            Stance::Endorse,
            &format!("soak message {}", 0),
        )
        .1,
    );
    peer.submit(
        &response_in(
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
        let api = victim.control_addr();
        let (next_a, stop_a, ps_a) = (next.clone(), stop.clone(), stream_ps.clone());
        let acks = Arc::new(AtomicUsize::new(0));
        let acks_a = acks.clone();
        let to_victim = std::thread::spawn(move || {
            let mut sent = Sent::default();
            // Bounded: at most 400 submissions per cycle.
            for _ in 0..400 {
                if stop_a.load(Ordering::Relaxed) {
                    break;
                }
                let (id, bytes) = stream_response(&next_a, &ps_a);
                let req = ControlRequest::Submit {
                    hex: hex::encode(&bytes),
                };
                match call_as::<ControlSubmitted>(api, &req) {
                    Ok(Ok(v)) => {
                        assert!(v.ok, "{v:?}");
                        assert_eq!(v.id, id);
                        sent.acked.insert(id, bytes);
                        acks_a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Err(e)) => panic!("victim refused a valid message: {e}"),
                    Err(_) => {
                        sent.in_flight += 1;
                        break;
                    }
                }
            }
            sent
        });
        let peer_api = peer.control_addr();
        let (next_b, stop_b, ps_b) = (next.clone(), stop.clone(), stream_ps.clone());
        let to_peer = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for _ in 0..200 {
                if stop_b.load(Ordering::Relaxed) {
                    break;
                }
                let (id, bytes) = stream_response(&next_b, &ps_b);
                let req = ControlRequest::Submit {
                    hex: hex::encode(&bytes),
                };
                let v = call_as::<ControlSubmitted>(peer_api, &req)
                    .unwrap()
                    .unwrap_or_else(|e| panic!("peer refused: {e}"));
                assert!(v.ok, "peer refused: {v:?}");
                ids.push(id);
                // Pacing, not waiting: a steady trickle of gossip.
                std::thread::sleep(Duration::from_millis(10));
            }
            ids
        });
        // Kill at a different point of the stream in each cycle: after
        // 10..=169 acknowledged submissions.
        let kill_after = 10 + (cycle * 37) % 160;
        wait_until(60, "the victim acknowledging submissions", || {
            (acks.load(Ordering::SeqCst) >= kill_after || to_victim.is_finished()).then_some(())
        });
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
        victim = d2.process(&[&peer.tcp]);
        restarts_checked += 1;
        for id in acked.keys() {
            if !in_both(&victim.has(id)) {
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
    wait_until(20, "victim reconnected", || {
        (peer.peers() == 1).then_some(())
    });
    let (last_p, last_bytes) = proposal_in(
        DOMAIN,
        &d1.agent,
        pol,
        2_000,
        "loan.approve",
        "{\"amount\":3}",
    );
    peer.submit(&last_bytes);
    wait_until(15, "last proposal reaches the victim", || {
        victim.has(&last_p).engine.then_some(())
    });
    victim.submit(
        &response_in(
            DOMAIN,
            &d2.agent,
            last_p,
            Stance::Endorse,
            &format!("soak message {}", 1),
        )
        .1,
    );
    peer.submit(
        &response_in(
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
    let want: BTreeSet<ContentId> = all.iter().copied().collect();
    let (a, b) = wait_until(30, "same set on both nodes", || {
        let (a, b) = (peer.ids_in(DOMAIN), victim.ids_in(DOMAIN));
        let held: BTreeSet<ContentId> = b.iter().copied().collect();
        (a == b && want.is_subset(&held)).then_some((a, b))
    });
    let dup_ids = b.len() - b.iter().collect::<BTreeSet<_>>().len();
    assert_eq!(a.len(), b.len());

    // Receipts: for each decided proposal, one latest receipt per node, all
    // agreeing on the resolution digest and counted root.
    let mid = identical_receipts(&[&peer, &victim], &mid_p, 2, 30);
    let last = identical_receipts(&[&peer, &victim], &last_p, 2, 30);
    assert_eq!(mid.status, Status::Approved, "{mid:?}");
    assert_eq!(last.status, Status::Approved, "{last:?}");
    // A node never signs two receipts for one proposal and round, even
    // across a crash (its receipts are durable before they are published).
    let mut receipt_dups = 0usize;
    for p in [&mid_p, &last_p] {
        for n in [&peer, &victim] {
            let r = n.resolution(p);
            let signers: Vec<&PublicKey> = r.receipts.iter().map(|x| &x.node).collect();
            let distinct: BTreeSet<&PublicKey> = signers.iter().copied().collect();
            receipt_dups += signers.len() - distinct.len();
        }
    }
    // Gossip and receipts the victim wrote reach disk with sled's background
    // flush or the next group commit, so a kill -9 right now could take back
    // the newest of them (sync would fetch them again on restart, but this
    // exact comparison would not hold). Fence: once the victim holds what
    // the peer holds (everything was submitted and both receipts of both
    // decided proposals are in, so nothing more is coming), one local
    // submission, acknowledged only after a flush that covers every earlier
    // write. Its window is long, so it brings no receipt before the kill.
    let settled = wait_until(30, "the victim to hold the peer's set", || {
        let held = victim.ids_in(DOMAIN);
        (held == peer.ids_in(DOMAIN)).then_some(held)
    });
    let (fence, fence_bytes) = proposal_in(
        DOMAIN,
        &d2.agent,
        pol,
        3_000_000,
        "soak.fence",
        r#"{"fence":true}"#,
    );
    victim.submit(&fence_bytes);
    acked.insert(fence, fence_bytes);
    let mut held: BTreeSet<ContentId> = settled.into_iter().collect();
    held.insert(fence);
    assert_eq!(
        victim.ids_in(DOMAIN).into_iter().collect::<BTreeSet<_>>(),
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
    let stored_ids: BTreeSet<ContentId> = stored.keys().copied().collect();
    assert_eq!(stored_ids, held, "store and engine disagree");
    assert!(
        acked.len() >= CYCLES * 5,
        "too few acknowledged submissions"
    );
    drop(peer);
}
