//! End-to-end tests with real `acp node` processes on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use acp_protocol::{Keypair, Stance};
use common::*;

/// A proposal made on one node reaches all three; the responses submitted on
/// the other two are counted everywhere, and every node signs a receipt with
/// the same resolution digest and counted root.
#[test]
fn three_nodes_agree_on_a_proposal() {
    let dirs: Vec<DataDir> = (0..3).map(|_| DataDir::new()).collect();
    let n1 = dirs[0].start(&[]);
    let n2 = dirs[1].start(&[&n1.tcp]);
    // n3 joins over QUIC, n2 over TCP.
    let n3 = dirs[2].start(&[&n1.quic]);
    wait_for(20, "mesh", || (n1.peers() >= 2).then_some(()));

    let agents: Vec<&Keypair> = dirs.iter().map(|d| &d.agent).collect();
    let (pol, pol_bytes) = policy(&agents);
    n1.submit(&pol_bytes);
    let (p, p_bytes) = proposal(&dirs[0].agent, pol, 4_000);
    n1.submit(&p_bytes);
    for n in [&n2, &n3] {
        wait_for(15, "proposal everywhere", || n.has(&p).0.then_some(()));
    }
    n2.submit(&response(&dirs[1].agent, p, Stance::Endorse).1);
    n3.submit(&response(&dirs[2].agent, p, Stance::Endorse).1);

    let r = identical_receipts(&[&n1, &n2, &n3], &p, 3, 30);
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["counted"], 2, "{r}");
    let roots: Vec<Value> = [&n1, &n2, &n3]
        .iter()
        .map(|n| n.resolution(&p)["counted_root"].clone())
        .collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    // Same set everywhere (receipts included).
    wait_for(15, "same set", || {
        let a = n1.ids();
        (a == n2.ids() && a == n3.ids()).then_some(())
    });
}

use serde_json::Value;

/// Two groups that cannot reach each other each accept messages; after they
/// connect, anti-entropy alone (no new gossip of the old messages) brings
/// every node to the same set and identical receipts.
#[test]
fn partition_heals_through_sync() {
    let dirs: Vec<DataDir> = (0..3).map(|_| DataDir::new()).collect();
    // Group A: n1 + n2. Group B: n3 alone.
    let n1 = dirs[0].start(&[]);
    let n2 = dirs[1].start(&[&n1.tcp]);
    let n3 = dirs[2].start(&[]);
    wait_for(20, "group A connected", || (n1.peers() == 1).then_some(()));
    assert_eq!(n3.peers(), 0);

    let agents: Vec<&Keypair> = dirs.iter().map(|d| &d.agent).collect();
    let (pol, pol_bytes) = policy(&agents);
    let (p, p_bytes) = proposal(&dirs[0].agent, pol, 6_000);
    // The policy and proposal are known on both sides of the partition.
    for n in [&n1, &n3] {
        n.submit(&pol_bytes);
        n.submit(&p_bytes);
    }
    let (r2, r2_bytes) = response(&dirs[1].agent, p, Stance::Endorse);
    let (r3, r3_bytes) = response(&dirs[2].agent, p, Stance::Endorse);
    n2.submit(&r2_bytes);
    n3.submit(&r3_bytes);
    wait_for(10, "r2 within group A", || n1.has(&r2).0.then_some(()));
    assert!(!n3.has(&r2).0 && !n1.has(&r3).0 && !n2.has(&r3).0);

    // Heal.
    n3.dial(&n1.tcp);
    wait_for(15, "r3 reaches group A and r2 reaches n3", || {
        (n1.has(&r3).0 && n2.has(&r3).0 && n3.has(&r2).0 && n3.has(&r2).1).then_some(())
    });
    let r = identical_receipts(&[&n1, &n2, &n3], &p, 3, 30);
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["counted"], 2, "{r}");
    wait_for(15, "same set", || {
        let a = n1.ids();
        (a == n2.ids() && a == n3.ids()).then_some(())
    });
    assert!(
        n3.log_text().contains("sync fetched messages"),
        "n3 should have caught up through sync"
    );
}

/// `kill -9` a node while it receives local submissions and gossip: after a
/// restart it still holds every message it acknowledged, and it catches up
/// on what it missed once it reconnects.
#[test]
fn crash_loses_nothing_acknowledged() {
    let d1 = DataDir::new();
    let d2 = DataDir::new();
    let n1 = d1.start(&[]);
    let mut n2 = d2.start(&[&n1.tcp]);
    wait_for(20, "connected", || (n1.peers() == 1).then_some(()));
    let (pol, pol_bytes) = policy(&[&d1.agent, &d2.agent]);
    n1.submit(&pol_bytes);
    let (p, p_bytes) = proposal(&d1.agent, pol, 3_600_000);
    n1.submit(&p_bytes);

    // Responses from many observers, alternately submitted on n2 directly
    // and on n1 (so n2 also receives them by gossip).
    let observers: Vec<Keypair> = (0..60u8)
        .map(|i| Keypair::from_seed([i + 100; 32]))
        .collect();
    let mut acked_on_n2 = Vec::new();
    let mut all = vec![pol, p];
    for (i, o) in observers.iter().enumerate().take(40) {
        let (id, bytes) = response(o, p, Stance::Abstain);
        if i % 2 == 0 {
            assert_eq!(n2.submit(&bytes), id);
            acked_on_n2.push(id);
        } else {
            n1.submit(&bytes);
        }
        all.push(id);
    }
    n2.kill9();
    // While n2 is down, n1 goes on.
    for o in &observers[40..] {
        let (id, bytes) = response(o, p, Stance::Abstain);
        n1.submit(&bytes);
        all.push(id);
    }

    // Restart alone: everything acknowledged is on disk.
    let n2 = d2.start(&[]);
    for id in &acked_on_n2 {
        assert_eq!(n2.has(id), (true, true), "acknowledged {id} lost");
    }
    // Reconnect: it catches up on the rest.
    n2.dial(&n1.tcp);
    wait_for(20, "n2 catches up", || {
        all.iter().all(|id| n2.has(id).0).then_some(())
    });
    assert_eq!(n1.ids(), n2.ids());
}

/// Both sides of a partition finalize the same proposal on different
/// response sets and sign receipts; after the heal, sync brings every node
/// to the same set, each node re-finalizes (a logged divergence) and signs a
/// superseding receipt, and every node's latest receipt agrees.
#[test]
fn heal_after_finalization_converges_with_superseding_receipts() {
    let dirs: Vec<DataDir> = (0..3).map(|_| DataDir::new()).collect();
    let n1 = dirs[0].start(&[]);
    let n2 = dirs[1].start(&[&n1.tcp]);
    let n3 = dirs[2].start(&[]);
    wait_for(20, "group A connected", || (n1.peers() == 1).then_some(()));

    let agents: Vec<&Keypair> = dirs.iter().map(|d| &d.agent).collect();
    let (pol, pol_bytes) = policy(&agents);
    let (p, p_bytes) = proposal(&dirs[0].agent, pol, 1_500);
    for n in [&n1, &n3] {
        n.submit(&pol_bytes);
        n.submit(&p_bytes);
    }
    n2.submit(&response(&dirs[1].agent, p, Stance::Endorse).1);
    n3.submit(&response(&dirs[2].agent, p, Stance::Challenge).1);
    // Each side finalizes on its own.
    let before: Vec<Value> = [&n1, &n3]
        .iter()
        .map(|n| {
            wait_for(20, "finalized on both sides", || {
                let r = n.resolution(&p);
                (r["final"] == true && !r["receipts"].as_array().unwrap().is_empty()).then_some(r)
            })
        })
        .collect();
    assert_ne!(before[0]["resolution"], before[1]["resolution"]);

    n3.dial(&n1.tcp);
    wait_for(30, "latest receipts agree everywhere", || {
        let rs: Vec<Value> = [&n1, &n2, &n3].iter().map(|n| n.resolution(&p)).collect();
        let digest = &rs[0]["resolution"];
        let agree = rs.iter().all(|r| {
            &r["resolution"] == digest && r["counted"] == 2 && {
                let latest: Vec<&Value> = r["receipts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["latest"] == true)
                    .collect();
                latest.len() == 3 && latest.iter().all(|x| &x["resolution"] == digest)
            }
        });
        agree.then_some(())
    });
    wait_for(15, "same set", || {
        let a = n1.ids();
        (a == n2.ids() && a == n3.ids()).then_some(())
    });
    assert!(n3.log_text().contains("divergence"));
}
